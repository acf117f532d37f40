-- Search (microblog/search/): posts by their words, people by their names.
--
-- Posts: a stored tsvector of the body, kept by PostgreSQL itself, under a GIN index that
-- websearch_to_tsquery's queries (quotes, or, -word) are answered from. 'english' stems, so
-- "running" finds "runs".
ALTER TABLE posts
    ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('english', body)) STORED;

CREATE INDEX posts_search_vector_idx ON posts USING gin (search_vector);

-- The statement that finds the newest matches of a search, with these parts: $1 the viewer
-- (what hidden_from hides stays out), $2 the words, $3 the author's lower-cased name, $4 the
-- tags (every one of them), $5 how many. Only the parts present are conditions, each one an
-- index's: the GIN index of the words, the author's (author_id, id), post_tags.
CREATE FUNCTION search_posts_statement(words boolean, author boolean, tags boolean)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT 'SELECT p.id FROM posts p WHERE p.author_id NOT IN (SELECT * FROM hidden_from($1))'
        || CASE WHEN words
           THEN ' AND p.search_vector @@ websearch_to_tsquery(''english'', $2)' ELSE '' END
        || CASE WHEN author
           THEN ' AND p.author_id = (SELECT id FROM users WHERE lower(username) = $3)' ELSE '' END
        || CASE WHEN tags
           THEN ' AND p.id IN (SELECT post_id FROM post_tags WHERE tag = $4[1])'
             || ' AND $4 <@ ARRAY(SELECT tag FROM post_tags t WHERE t.post_id = p.id)' ELSE '' END
        || ' ORDER BY p.id DESC LIMIT $5'
$$;

-- The ids of the newest `size` posts that match, newest first. Run as dynamic SQL so that it
-- is planned for the values at hand, whatever plan_cache_mode the session has: a word in a
-- fifth of all posts is found fastest walking the posts newest first until enough match, a
-- rare one from the GIN index, and only the statistics of the word itself can tell which.
CREATE FUNCTION search_posts(viewer bigint, words text, author text, tags text[], size integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE
ROWS 400
AS $$
BEGIN
    RETURN QUERY EXECUTE search_posts_statement(
        words IS NOT NULL, author IS NOT NULL, tags IS NOT NULL
    ) USING viewer, words, author, tags, size;
END
$$;

-- People: by names that hold every word of the query as the start of a word (a prefix), or
-- that share enough trigrams with it, which forgives a typo. pg_trgm would do the second, but the embedded PostgreSQL (pgserver) ships
-- without it, so the trigrams are ours: the same ones pg_trgm takes (each word lower-cased,
-- padded with two spaces before and one after), in an array under a built-in GIN index.
CREATE FUNCTION name_trigrams(name text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT coalesce(array_agg(DISTINCT substr(padded, i, 3)), '{}')
    FROM (
        SELECT '  ' || word || ' ' AS padded
        FROM regexp_split_to_table(lower(name), '[^[:alnum:]]+') AS word
        WHERE word <> ''
    ) AS words,
    generate_series(1, length(padded) - 2) AS i
$$;

-- The share of the query's trigrams that a name has: 1 when the name holds the query's words,
-- 0.5 for a word of five letters with one of them wrong ("grase" of "Grace"), however long the
-- rest of the name (as pg_trgm's word_similarity()). Counted with = ANY, which for arrays of a
-- dozen is several times faster than INTERSECT.
CREATE FUNCTION trigram_share(name text[], query text[]) RETURNS real
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT coalesce(count(*)::real / nullif(cardinality(query), 0), 0)
    FROM unnest(query) AS t WHERE t = ANY (name)
$$;

ALTER TABLE users
    ADD COLUMN name_trigrams text[]
    GENERATED ALWAYS AS (name_trigrams(username || ' ' || display_name)) STORED;

CREATE INDEX users_name_trigrams_idx ON users USING gin (name_trigrams);

-- A name starts a word with `query` when it holds all of the query's trigrams but those that
-- end its words ("li " of "ali"): "ali" is a prefix of "Alice".
CREATE FUNCTION name_prefix_trigrams(query text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT ARRAY(SELECT t FROM unnest(name_trigrams(query)) AS t WHERE t NOT LIKE '% ')
$$;

-- The query's trigrams but those at the very start or end of a word ("  a", "e "), which
-- thousands of names share: the candidates of a typo, among which trigram_share decides.
-- A name with one letter of a word wrong still shares one of them ("grase": " gr" of "grace").
CREATE FUNCTION name_inner_trigrams(query text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT ARRAY(
        SELECT t FROM unnest(name_trigrams(query)) AS t WHERE t NOT LIKE '  %' AND t NOT LIKE '% '
    )
$$;
