-- Reposts. A repost is an entry of the timelines it shows in, beside posts: its id is drawn
-- from the posts' own sequence, so posts and reposts share one order (newest first) and one
-- keyset cursor (`?before=`) names an entry of either kind. post_author_id is the reposted
-- post's author, which never changes, kept here so that a timeline can leave out the reposts
-- of posts its reader must not see without reading those posts.
CREATE TABLE reposts (
    id             bigint PRIMARY KEY DEFAULT nextval('posts_id_seq'),
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id        bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    post_author_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, post_id)
);

-- Home and profile timelines walk one reposter's reposts newest first, without the table.
CREATE INDEX reposts_user_id_id_idx ON reposts (user_id, id DESC) INCLUDE (post_id, post_author_id);
-- Whether a post was reposted again later (home timelines), and deleting a post.
CREATE INDEX reposts_post_id_id_idx ON reposts (post_id, id);

-- Kept in the writing transaction, as reply and like counts are.
ALTER TABLE posts ADD COLUMN repost_count integer NOT NULL DEFAULT 0 CHECK (repost_count >= 0);

ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check,
    ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('reply', 'mention', 'like', 'follow', 'repost'));
