-- Every author's entries, posts and reposts, in one index.
--
-- The walk by author (migration 0012) read two indexes for each person followed, their posts'
-- (author_id, id) and their reposts' (user_id, id), a reach of each: twice the descents and
-- up to twice the rows of the walk before reposts, which made it take twice as long
-- (docs/benchmarks.md). timeline_entries holds each post (id = post_id) and each repost (its
-- own id, and the post's) under the account that made it, kept by the triggers below in the
-- writing statement, so the walk reads one index per author, newest first.
--
-- The triggers are statement-level, with the statement's rows as a transition table: one
-- INSERT for `microblog seed`'s half a million posts as for one post. A post's reposts go
-- with it through their own foreign key (migration 0011), and so do their entries, through
-- the reposts' trigger; an account's through author_id. The backfill runs after the triggers
-- exist, in this migration's transaction, whose CREATE TRIGGER holds off writes to posts and
-- reposts until it commits: no entry is missed or made twice.
CREATE TABLE timeline_entries (
    id             bigint PRIMARY KEY,
    author_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id        bigint NOT NULL,
    post_author_id bigint NOT NULL
);

CREATE INDEX timeline_entries_author_id_id_idx
    ON timeline_entries (author_id, id DESC) INCLUDE (post_id, post_author_id);

CREATE FUNCTION timeline_entries_of_posts() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO timeline_entries (id, author_id, post_id, post_author_id)
        SELECT added.id, added.author_id, added.id, added.author_id FROM added;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM timeline_entries e USING removed WHERE e.id = removed.id;
    ELSE
        DELETE FROM timeline_entries;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER timeline_entries_posts_added AFTER INSERT ON posts
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION timeline_entries_of_posts();
CREATE TRIGGER timeline_entries_posts_removed AFTER DELETE ON posts
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION timeline_entries_of_posts();
CREATE TRIGGER timeline_entries_posts_truncated AFTER TRUNCATE ON posts
    FOR EACH STATEMENT EXECUTE FUNCTION timeline_entries_of_posts();

CREATE FUNCTION timeline_entries_of_reposts() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO timeline_entries (id, author_id, post_id, post_author_id)
        SELECT added.id, added.user_id, added.post_id, added.post_author_id FROM added;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM timeline_entries e USING removed WHERE e.id = removed.id;
    ELSE
        DELETE FROM timeline_entries e WHERE e.id <> e.post_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER timeline_entries_reposts_added AFTER INSERT ON reposts
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION timeline_entries_of_reposts();
CREATE TRIGGER timeline_entries_reposts_removed AFTER DELETE ON reposts
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION timeline_entries_of_reposts();
CREATE TRIGGER timeline_entries_reposts_truncated AFTER TRUNCATE ON reposts
    FOR EACH STATEMENT EXECUTE FUNCTION timeline_entries_of_reposts();

INSERT INTO timeline_entries (id, author_id, post_id, post_author_id)
SELECT p.id, p.author_id, p.id, p.author_id FROM posts p
UNION ALL
SELECT r.id, r.user_id, r.post_id, r.post_author_id FROM reposts r;

-- The newest entries below `before`: at most `reach` of each author, read newest first from
-- timeline_entries, leaving out reposts of posts the reader must not see; of those, the
-- newest 2 * reach, as before (migration 0012). Without the kind of each (`repost`): the
-- walk below counts an author's entries of both kinds together. Only home_timeline_by_author
-- calls it, replaced below in this transaction.
DROP FUNCTION home_timeline_candidates(bigint, bigint, integer);
CREATE FUNCTION home_timeline_candidates(viewer bigint, before bigint, reach integer)
RETURNS TABLE (author_id bigint, entry_id bigint, post_id bigint, newest boolean)
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
        SELECT authors.author_id, stream.entry_id, stream.post_id
        FROM authors CROSS JOIN LATERAL (
            SELECT e.id AS entry_id, e.post_id FROM timeline_entries e
            WHERE e.author_id = authors.author_id AND e.id < before
              AND e.post_author_id NOT IN (SELECT * FROM hidden_from(viewer))
            ORDER BY e.id DESC LIMIT reach
        ) AS stream
        ORDER BY stream.entry_id DESC LIMIT 2 * reach
    ) AS entries
$$;

-- The page, as migration 0012 made it, from the candidates above: an author passed over may
-- have more entries than the `reach` read above the page's last, of either kind now, so the
-- check counts their entries together.
CREATE OR REPLACE FUNCTION home_timeline_by_author(viewer bigint, before bigint, size integer)
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
    lowest bigint;
    complete boolean;
BEGIN
    LOOP
        read := 0;
        entries := '{}';
        posts := '{}';
        passed_authors := '{}';
        FOR candidate IN SELECT * FROM home_timeline_candidates(viewer, before, reach) LOOP
            read := read + 1;
            IF candidate.newest THEN
                entries := entries || candidate.entry_id;
                posts := posts || candidate.post_id;
                EXIT WHEN cardinality(entries) = size;
            ELSE
                passed_authors := passed_authors || candidate.author_id;
            END IF;
        END LOOP;
        -- A full page, or every candidate there was.
        complete := cardinality(entries) = size OR read < 2 * reach;
        IF complete AND cardinality(passed_authors) > 0 THEN
            lowest := CASE WHEN cardinality(entries) = size THEN entries[size] ELSE 0 END;
            complete := NOT EXISTS (
                SELECT FROM unnest(passed_authors) AS passed (author_id)
                WHERE reach = (
                    SELECT count(*) FROM (
                        SELECT FROM timeline_entries e
                        WHERE e.author_id = passed.author_id AND e.id > lowest AND e.id < before
                          AND e.post_author_id NOT IN (SELECT * FROM hidden_from(viewer))
                        LIMIT reach
                    ) AS above
                )
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
