-- The follow graph. id orders the follower/following lists (newest first) for keyset paging;
-- the counts on users are kept in the same transaction as the row.
CREATE TABLE follows (
    id          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    follower_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);

CREATE INDEX follows_follower_id_id_idx ON follows (follower_id, id DESC);
CREATE INDEX follows_followee_id_id_idx ON follows (followee_id, id DESC);
