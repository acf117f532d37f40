"""The job queue in PostgreSQL: enqueue in the caller's transaction, workers that claim with
SKIP LOCKED and wake on LISTEN/NOTIFY, retries, recurring jobs, and crash recovery through
process heartbeats."""
