-- One row per logged-in session: the signed cookie names its row, and logging out deletes it,
-- so a copy of the cookie is worth nothing afterwards, on every instance, while the user's
-- other sessions stay. (A password change still ends every other session at once by bumping
-- users.session_epoch.) Each web process keeps a user's live sessions with their row
-- (users/known.py): every change is announced on the users' channel, as for the row itself.
CREATE TABLE user_sessions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX user_sessions_user_id_idx ON user_sessions (user_id);

CREATE FUNCTION notify_user_sessions_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('users_changed', '');  -- every user's
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('users_changed', NEW.user_id::text);
    ELSE
        PERFORM pg_notify('users_changed', OLD.user_id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER user_sessions_changed AFTER INSERT OR DELETE ON user_sessions
FOR EACH ROW EXECUTE FUNCTION notify_user_sessions_changed();

CREATE TRIGGER user_sessions_truncated AFTER TRUNCATE ON user_sessions
FOR EACH STATEMENT EXECUTE FUNCTION notify_user_sessions_changed();
