"""Live updates: events written with the writes they follow (publish.py, queries.py), fanned
out to every open stream of a process (hub.py, stream.py), served as server-sent events
(routes.py), trimmed by a recurring job (jobs.py)."""
