-- Posts, likes and hashtags. Reply and like counts live on the row and are kept in the writing
-- transaction, so no page counts rows at render time.
CREATE TABLE posts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body        text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 500),
    in_reply_to bigint REFERENCES posts (id) ON DELETE SET NULL,
    reply_count integer NOT NULL DEFAULT 0 CHECK (reply_count >= 0),
    like_count  integer NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Profile and home timelines walk one author's posts newest first.
CREATE INDEX posts_author_id_id_idx ON posts (author_id, id DESC);
CREATE INDEX posts_in_reply_to_id_idx ON posts (in_reply_to, id) WHERE in_reply_to IS NOT NULL;

CREATE TABLE likes (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id    bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, post_id)
);

CREATE INDEX likes_post_id_idx ON likes (post_id);

CREATE TABLE post_tags (
    tag     text NOT NULL CHECK (char_length(tag) BETWEEN 1 AND 100),
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, post_id)
);

CREATE INDEX post_tags_post_id_idx ON post_tags (post_id);
