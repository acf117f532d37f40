-- The newest entries' windows (migration 0019) only for readers who follow enough people to
-- gain from them.
--
-- A window of four pages costs about what reading 17 authors does (0.47 ms against 0.03 ms an
-- author on the benchmark's data set), and a reader of 10 to 40 people finds their page in it
-- only about half of the time: trying it first made their pages slower on average, and a
-- miss cost the window on top of the walk. Windows are now read while they hold at most two
-- rows for each author followed, half as wide as before: from 41 authors followed for a page
-- of 21, the first window; at 5,000, the same four windows as before.

CREATE OR REPLACE FUNCTION home_timeline(viewer bigint, before bigint, size integer)
RETURNS TABLE (entry_id bigint, post_id bigint)
LANGUAGE plpgsql STABLE
ROWS 20
AS $$
DECLARE
    widest integer;
    scan integer := 4 * size;
    found record;
BEGIN
    SELECT 2 * (u.following_count + 1) INTO widest FROM users u WHERE u.id = viewer;
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
