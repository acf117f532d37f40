-- The home timeline with reposts, and without muted or blocked accounts.
--
-- Its entries are the posts of the reader and of everyone they follow and have not muted, and
-- those people's reposts, except reposts of posts the reader must not see (hidden_from,
-- migration 0010). An entry is named by its id, a post's or a repost's, which come from one
-- sequence (migration 0011). A post is shown once, at its newest entry: reposted later, it
-- moves up to the repost, and of several reposts of it the newest wins. A page is the newest
-- `size` posts whose newest entry lies below the cursor `before`.

-- The newest entries below `before`: at most `reach` posts and `reach` reposts of each author,
-- read newest first from the (author_id, id) and (user_id, id) indexes, as home_timeline_ids
-- (migrations 0005 and 0007) read posts, so the work is bounded by how many people the reader
-- follows; of those, the newest 2 * reach, with whether each is its post's newest entry
-- (`newest`, looked up only for the rows a reader takes). A SQL function that PostgreSQL
-- inlines into the loop of home_timeline, where it is planned under that function's settings.
CREATE FUNCTION home_timeline_candidates(viewer bigint, before bigint, reach integer)
RETURNS TABLE (author_id bigint, repost boolean, entry_id bigint, post_id bigint, newest boolean)
LANGUAGE sql STABLE
AS $$
    WITH authors AS (
        SELECT f.followee_id AS author_id FROM follows f
        WHERE f.follower_id = viewer AND f.followee_id NOT IN (SELECT * FROM hidden_from(viewer))
        UNION ALL SELECT viewer
    )
    SELECT entries.*, NOT EXISTS (
        SELECT FROM reposts later
        WHERE later.post_id = entries.post_id AND later.id > entries.entry_id
          AND later.user_id IN (SELECT authors.author_id FROM authors)
    )
    FROM (
        SELECT authors.author_id, stream.repost, stream.entry_id, stream.post_id
        FROM authors CROSS JOIN LATERAL (
            (SELECT false AS repost, p.id AS entry_id, p.id AS post_id FROM posts p
             WHERE p.author_id = authors.author_id AND p.id < before
             ORDER BY p.id DESC LIMIT reach)
            UNION ALL
            (SELECT true, r.id, r.post_id FROM reposts r
             WHERE r.user_id = authors.author_id AND r.id < before
               AND r.post_author_id NOT IN (SELECT * FROM hidden_from(viewer))
             ORDER BY r.id DESC LIMIT reach)
        ) AS stream
        ORDER BY stream.entry_id DESC LIMIT 2 * reach
    ) AS entries
$$;

-- The page: (entry id, post id) of up to `size` posts of `viewer`'s home timeline below entry
-- `before`, newest first. It takes candidates until `size` are their posts' newest entries.
--
-- An entry passed over (a newer one of its post exists) may have kept an entry of the page
-- out of the candidates: its author's `reach` entries of that kind may all lie above the
-- page's last. If any did, it reads again, further back. Without an entry passed over that
-- cannot happen, so most pages read once; it is also why the check runs only then (its
-- statement is planned only when it runs).
--
-- It is a PL/pgSQL function so that it plans without bitmap scans, which would read every post
-- of a prolific author to keep a few (migration 0005), and keeps its plans for the session
-- (migration 0007).
CREATE FUNCTION home_timeline(viewer bigint, before bigint, size integer)
RETURNS TABLE (entry_id bigint, post_id bigint)
LANGUAGE plpgsql STABLE
SET enable_bitmapscan = off
ROWS 20
AS $$
DECLARE
    reach integer := size;
    candidate record;
    read integer;
    entries bigint[];
    posts bigint[];
    passed_authors bigint[];
    passed_reposts boolean[];
    lowest bigint;
    complete boolean;
BEGIN
    LOOP
        read := 0;
        entries := '{}';
        posts := '{}';
        passed_authors := '{}';
        passed_reposts := '{}';
        FOR candidate IN SELECT * FROM home_timeline_candidates(viewer, before, reach) LOOP
            read := read + 1;
            IF candidate.newest THEN
                entries := entries || candidate.entry_id;
                posts := posts || candidate.post_id;
                EXIT WHEN cardinality(entries) = size;
            ELSE
                passed_authors := passed_authors || candidate.author_id;
                passed_reposts := passed_reposts || candidate.repost;
            END IF;
        END LOOP;
        -- A full page, or every candidate there was.
        complete := cardinality(entries) = size OR read < 2 * reach;
        IF complete AND cardinality(passed_authors) > 0 THEN
            lowest := CASE WHEN cardinality(entries) = size THEN entries[size] ELSE 0 END;
            complete := NOT EXISTS (
                SELECT FROM unnest(passed_authors, passed_reposts) AS passed (author_id, repost)
                WHERE reach = CASE WHEN passed.repost THEN (
                    SELECT count(*) FROM (
                        SELECT FROM reposts r
                        WHERE r.user_id = passed.author_id AND r.id > lowest AND r.id < before
                          AND r.post_author_id NOT IN (SELECT * FROM hidden_from(viewer))
                        LIMIT reach
                    ) AS above
                ) ELSE (
                    SELECT count(*) FROM (
                        SELECT FROM posts p
                        WHERE p.author_id = passed.author_id AND p.id > lowest AND p.id < before
                        LIMIT reach
                    ) AS above
                ) END
            );
        END IF;
        IF complete THEN
            RETURN QUERY SELECT * FROM unnest(entries, posts);
            RETURN;
        END IF;
        reach := reach * 4;
    END LOOP;
END
$$;

-- home_timeline_ids (migration 0007) stays while instances of the release before this one may
-- still be serving (docs/scaling.md, "Migrations"); a later release drops it.
