-- Claiming as a function, so that it always walks jobs_pending_idx in order and stops after
-- the jobs it takes. As a plain statement its plan followed the table's statistics, and a
-- backlog that arrives before autovacuum has analyzed the table (a burst after a quiet spell,
-- a worker started on a full queue) got a plan that read and sorted every waiting job on
-- every claim. Without sequential and bitmap scans the ordered index scan is the only plan.
--
-- $1 process, $2 queues (empty: all), $3 how many, $4 kinds to skip, $5 the only kind to take
-- (NULL: any but $4), $6 jobs this process finished, marked done in the same statement.
-- The casts repeat the argument types so that the body can also be explained on its own.
CREATE FUNCTION infra.claim_jobs(uuid, text[], integer, text[], text, bigint[])
RETURNS SETOF infra.jobs
LANGUAGE sql VOLATILE
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
    WITH finished AS (
        UPDATE infra.jobs SET state = 'finished', finished_at = now(), locked_by = NULL
        WHERE id = ANY($6::bigint[]) AND locked_by = $1::uuid AND state = 'running'
    ), next AS (
        SELECT id FROM infra.jobs
        WHERE state = 'pending' AND run_at <= now()
          AND (cardinality($2::text[]) = 0 OR queue = ANY($2::text[]))
          AND CASE WHEN $5::text IS NULL THEN kind <> ALL($4::text[]) ELSE kind = $5::text END
        ORDER BY priority DESC, run_at, id
        LIMIT $3::integer
        FOR UPDATE SKIP LOCKED
    )
    UPDATE infra.jobs j
    SET state = 'running', locked_by = $1::uuid, attempts = j.attempts + 1, started_at = now()
    FROM next WHERE j.id = next.id
    RETURNING j.*
$$;
