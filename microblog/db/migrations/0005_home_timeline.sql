-- The ids of one page of a home timeline: the newest $3 posts below id $2 written by user $1 or
-- by anyone they follow. For each author at most $3 ids are read, newest first, from the
-- (author_id, id) index, so the work is bounded by how many people the user follows.
--
-- It is a function only so that it can plan without bitmap scans. The planner assumes every
-- author has the average number of posts; for the few authors with thousands, a bitmap scan
-- reads all of them and sorts them to keep $3, where an ordered index scan stops after $3.
CREATE FUNCTION home_timeline_ids(bigint, bigint, integer) RETURNS SETOF bigint
LANGUAGE sql STABLE
SET enable_bitmapscan = off
ROWS 20
AS $$
    SELECT recent.id
    FROM (
        SELECT followee_id AS author_id FROM follows WHERE follower_id = $1
        UNION ALL SELECT $1
    ) AS authors
    CROSS JOIN LATERAL (
        SELECT posts.id FROM posts
        WHERE posts.author_id = authors.author_id AND posts.id < $2
        ORDER BY posts.id DESC LIMIT $3
    ) AS recent
    ORDER BY recent.id DESC LIMIT $3
$$;
