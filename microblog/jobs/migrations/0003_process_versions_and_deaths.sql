-- Which build each process runs, and the processes that stopped lately: the /admin console
-- shows both (a rolling deploy runs two versions at once; a crash loop shows as deaths).
ALTER TABLE infra.processes ADD COLUMN version text NOT NULL DEFAULT '';

CREATE TABLE infra.process_deaths (
    id         uuid PRIMARY KEY,
    role       text NOT NULL,
    name       text NOT NULL,
    hostname   text NOT NULL,
    pid        integer NOT NULL,
    version    text NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    how        text NOT NULL CHECK (how IN ('stopped', 'stopped heartbeating')),
    ended_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX process_deaths_ended_at_idx ON infra.process_deaths (ended_at);
