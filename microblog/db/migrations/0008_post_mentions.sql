-- The accounts a post mentions, found when the post is written, as post_tags holds its tags.
-- A mention links to the account that had the name when the post was written: an account
-- made later under a name that an old post happens to mention is neither linked from it nor
-- told about it, and a page needs no lookup of the names it shows. `name` is the account's
-- lower-cased username, which never changes, kept here so pages read this table alone.
CREATE TABLE post_mentions (
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name    text NOT NULL,
    PRIMARY KEY (post_id, user_id)
);

CREATE INDEX post_mentions_user_idx ON post_mentions (user_id);

-- Posts written before this table existed, by the rule posts/render.py applies to new ones.
-- Unlike it, this expression also finds a name inside a web address; that does no harm:
-- a page links only the @mentions of a body, never part of an address.
INSERT INTO post_mentions (post_id, user_id, name)
SELECT DISTINCT p.id, u.id, lower(u.username)
FROM posts p
CROSS JOIN LATERAL regexp_matches(
    p.body, '(?<![\w@/.])@([A-Za-z0-9_]{1,30})(?![\w@])', 'g'
) AS found (names)
JOIN users u ON lower(u.username) = lower(found.names[1])
WHERE strpos(p.body, '@') > 0;

-- Statistics now, so that the first pages after the migration are planned for what is here.
ANALYZE post_mentions;
