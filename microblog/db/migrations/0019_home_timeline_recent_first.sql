-- The home timeline of a reader who follows many people, at the cost of a page.
--
-- home_timeline (migration 0012) reads each followed author's newest entries: its work grows
-- with the number followed, about 5 times from 10 to 5,000 (docs/benchmarks.md). Most readers
-- who follow many people find their page among the newest entries of everyone, so it now
-- reads those first: the newest `scan` posts and `scan` reposts below the cursor, through the
-- primary keys, keeping the ones by the reader and the people they follow (a probe each of
-- the follows key). Every entry above the lower of the two windows' ends has been looked at,
-- so the page found there is the page, whoever the reader follows. When the windows hold too
-- few of the reader's entries, they read again, four times as wide, up to a width that costs
-- about what reading each author would; then the walk by author (renamed below) reads it.

ALTER FUNCTION home_timeline(bigint, bigint, integer) RENAME TO home_timeline_by_author;

-- The reader's entries from `lowest` up to `before`, newest first, at most `size`, each its
-- post's newest entry: the page, when every entry in that range is looked at. A SQL function,
-- inlined into home_timeline_recent and planned under its settings.
CREATE FUNCTION home_timeline_window(viewer bigint, before bigint, lowest bigint, size integer)
RETURNS TABLE (entry_id bigint, post_id bigint)
LANGUAGE sql STABLE
AS $$
    SELECT found.entry_id, found.post_id
    FROM (
        SELECT p.id AS entry_id, p.id AS post_id, p.author_id FROM posts p
        WHERE p.id >= lowest AND p.id < before
        UNION ALL
        SELECT r.id, r.post_id, r.user_id FROM reposts r
        WHERE r.id >= lowest AND r.id < before
          AND r.post_author_id NOT IN (SELECT * FROM hidden_from(viewer))
    ) AS found
    -- By the reader or someone they follow and have not muted or blocked, and the post's
    -- newest entry: no later repost of it by those. Each a probe of the follows key: a
    -- LATERAL subquery with a LIMIT runs for each row, where a join could read every follow
    -- of the reader (a generic plan, guessing a reader follows a few, would).
    LEFT JOIN LATERAL (
        SELECT true AS followed FROM follows f
        WHERE f.follower_id = viewer AND f.followee_id = found.author_id LIMIT 1
    ) AS author ON true
    WHERE (found.author_id = viewer OR author.followed)
      AND found.author_id NOT IN (SELECT * FROM hidden_from(viewer))
      AND NOT EXISTS (
        SELECT FROM reposts later
        LEFT JOIN LATERAL (
            SELECT true AS followed FROM follows f
            WHERE f.follower_id = viewer AND f.followee_id = later.user_id LIMIT 1
        ) AS reposter ON true
        WHERE later.post_id = found.post_id AND later.id > found.entry_id
          AND (later.user_id = viewer OR reposter.followed)
          AND later.user_id NOT IN (SELECT * FROM hidden_from(viewer))
      )
    ORDER BY found.entry_id DESC
    LIMIT size
$$;

-- The page, as home_timeline_by_author makes it, from the newest `scan` posts and `scan`
-- reposts below `before`; `complete` is false when those cannot tell it (too few of the
-- reader's entries among them), and the page is then empty.
CREATE FUNCTION home_timeline_recent(
    viewer bigint, before bigint, size integer, scan integer,
    OUT page_entries bigint[], OUT page_posts bigint[], OUT complete boolean
)
LANGUAGE plpgsql STABLE
-- Index scans through the keys: a window's rows are few.
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    posts_floor bigint;
    reposts_floor bigint;
    lowest bigint;
BEGIN
    -- The lowest id of each window, or 0 when it holds every entry below `before`.
    SELECT CASE WHEN count(*) < scan THEN 0 ELSE min(w.id) END INTO posts_floor
    FROM (SELECT p.id FROM posts p WHERE p.id < before ORDER BY p.id DESC LIMIT scan) AS w;
    SELECT CASE WHEN count(*) < scan THEN 0 ELSE min(w.id) END INTO reposts_floor
    FROM (SELECT r.id FROM reposts r WHERE r.id < before ORDER BY r.id DESC LIMIT scan) AS w;
    lowest := greatest(posts_floor, reposts_floor);

    SELECT coalesce(array_agg(page.entry_id ORDER BY page.entry_id DESC), '{}'),
           coalesce(array_agg(page.post_id ORDER BY page.entry_id DESC), '{}')
    INTO page_entries, page_posts
    FROM home_timeline_window(viewer, before, lowest, size) AS page;
    complete := cardinality(page_entries) = size OR lowest = 0;
    IF NOT complete THEN
        page_entries := '{}';
        page_posts := '{}';
    END IF;
END
$$;

-- The page: (entry id, post id) of up to `size` posts of `viewer`'s home timeline below entry
-- `before`, newest first (what migration 0012 defines). The newest entries of everyone first,
-- in windows of 4, 16, ... pages, while a window costs less than reading each author: about
-- four rows of it for each author followed.
CREATE FUNCTION home_timeline(viewer bigint, before bigint, size integer)
RETURNS TABLE (entry_id bigint, post_id bigint)
LANGUAGE plpgsql STABLE
ROWS 20
AS $$
DECLARE
    widest integer;
    scan integer := 4 * size;
    found record;
BEGIN
    SELECT 4 * (u.following_count + 1) INTO widest FROM users u WHERE u.id = viewer;
    WHILE scan <= widest LOOP
        SELECT * INTO found FROM home_timeline_recent(viewer, before, size, scan);
        IF found.complete THEN
            RETURN QUERY SELECT * FROM unnest(found.page_entries, found.page_posts);
            RETURN;
        END IF;
        scan := scan * 4;
    END LOOP;
    RETURN QUERY SELECT * FROM home_timeline_by_author(viewer, before, size);
END
$$;
