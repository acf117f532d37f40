-- Pictures on posts, in PostgreSQL as avatars are: any instance serves them, none keeps files.
-- An upload is kept as sent (bounded as avatars are) only until a job has re-encoded it: then
-- the served picture and its thumbnail replace it, and nothing of the original file remains.
-- posts.picture_count lets a post with pictures have no text, and lets pages look for pictures
-- only on the posts that have some.
ALTER TABLE posts ADD COLUMN picture_count smallint NOT NULL DEFAULT 0
    CHECK (picture_count BETWEEN 0 AND 4);

ALTER TABLE posts DROP CONSTRAINT posts_body_check;
ALTER TABLE posts ADD CONSTRAINT posts_body_check
    CHECK (char_length(body) <= 500 AND (char_length(body) >= 1 OR picture_count > 0));

CREATE TABLE post_pictures (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id      bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    position     smallint NOT NULL CHECK (position BETWEEN 1 AND 4),
    alt          text NOT NULL CHECK (char_length(alt) BETWEEN 1 AND 1000),
    -- pending: the upload waits for its job; ready: served; failed: it could not be decoded.
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'ready', 'failed')),
    original     bytea CHECK (octet_length(original) BETWEEN 1 AND 524288),
    content_type text CHECK (content_type = 'image/webp'),
    image        bytea,
    thumb        bytea,
    thumb_width  integer,
    thumb_height integer,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (post_id, position),
    CHECK ((state = 'pending') = (original IS NOT NULL)),
    CHECK ((state = 'ready') = (image IS NOT NULL AND thumb IS NOT NULL))
);
