-- An account its owner deleted: from that moment nobody can log in to it, its profile is
-- gone, and its sessions are ended; a job then erases its rows (account_deletion/queries.py)
-- and with them the row itself, which frees its username.
ALTER TABLE users ADD COLUMN deleted_at timestamptz;
