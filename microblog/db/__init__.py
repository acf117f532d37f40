"""Database plumbing: where PostgreSQL is, the pools every run mode opens, and migrations."""
