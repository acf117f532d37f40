-- Search (microblog/search/): posts by their words, people by their names.
--
-- Posts: a stored tsvector of the body, kept by PostgreSQL itself, under a GIN index that
-- websearch_to_tsquery's queries (quotes, or, -word) are answered from. 'english' stems, so
-- "running" finds "runs".
ALTER TABLE posts
    ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('english', body)) STORED;

CREATE INDEX posts_search_vector_idx ON posts USING gin (search_vector);

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

-- Of two names' trigrams, the share they have in common (pg_trgm's similarity()).
CREATE FUNCTION trigram_similarity(a text[], b text[]) RETURNS real
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT CASE WHEN cardinality(a) + cardinality(b) = 0 THEN 0 ELSE
        (SELECT count(*) FROM (SELECT unnest(a) INTERSECT SELECT unnest(b)) AS common)::real
        / (SELECT count(*) FROM (SELECT unnest(a) UNION SELECT unnest(b)) AS every)
    END
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

-- The query's trigrams but those that begin a word ("  a"), which a twentieth of all names
-- share: the candidates of a typo, among which trigram_similarity decides.
CREATE FUNCTION name_inner_trigrams(query text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT ARRAY(SELECT t FROM unnest(name_trigrams(query)) AS t WHERE t NOT LIKE '  %')
$$;
