-- Cache entries and rate-limit counters are rewritten far more often than they are swept.
-- An UPDATE that changes no indexed column, and finds room on its page, is a HOT update: no
-- index is touched. So the only index left on each table is its key, and pages keep room for
-- new row versions. The minute's trim and the five minutes' prune scan these tables instead;
-- they are bounded (CACHE_MAX_ENTRIES) or short-lived (a counter lives one period).
DROP INDEX infra.cache_entries_created_at_idx;
DROP INDEX infra.cache_entries_expires_at_idx;
DROP INDEX infra.rate_limits_tat_idx;
ALTER TABLE infra.cache_entries SET (fillfactor = 70);
ALTER TABLE infra.rate_limits SET (fillfactor = 70);
