-- The shared cache and the rate-limit counters, in the infrastructure schema.
-- UNLOGGED: no WAL is written for them, which makes every write several times cheaper. The
-- price: after a crash of PostgreSQL they come back empty, and streaming replicas do not
-- have them. Both are fine for data that is recomputed on a miss or merely resets a counter.
CREATE SCHEMA IF NOT EXISTS infra;

-- key_hash is the index; the full key is stored and compared on every read, so a hash
-- collision can evict an entry but never return another key's value.
CREATE UNLOGGED TABLE infra.cache_entries (
    key_hash   bigint PRIMARY KEY,
    key        text NOT NULL,
    value      jsonb NOT NULL,
    byte_size  integer NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Trimming deletes expired entries, then the oldest ones.
CREATE INDEX cache_entries_created_at_idx ON infra.cache_entries (created_at);
CREATE INDEX cache_entries_expires_at_idx ON infra.cache_entries (expires_at);

-- One row per rate-limit key: its theoretical arrival time (GCRA) and the rule's period.
-- A row whose tat has passed means the same as no row; pruning deletes those.
CREATE UNLOGGED TABLE infra.rate_limits (
    key    text PRIMARY KEY,
    tat    timestamptz NOT NULL,
    period interval NOT NULL
);

CREATE INDEX rate_limits_tat_idx ON infra.rate_limits (tat);
