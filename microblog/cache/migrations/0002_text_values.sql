-- Cache values are JSON, stored as text: a cache reads and writes whole values and never
-- looks inside them, so parsing them into jsonb on every write and printing them back on every
-- read was work for nothing.
ALTER TABLE infra.cache_entries ALTER COLUMN value TYPE text USING value::text;
