-- Blocks and mutes, and the rule every read path applies (microblog/blocks/__init__.py).
--
-- A block parts two accounts both ways: neither sees the other's posts, follows the other,
-- replies to or reposts the other, or hears from the other. A mute is one-sided and silent:
-- the muted account's posts and reposts stay out of the muter's timelines and notifications.
-- id orders the lists in settings (newest first) for keyset paging, as follows.id does.
CREATE TABLE blocks (
    id         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    blocker_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);

CREATE INDEX blocks_blocked_id_idx ON blocks (blocked_id, blocker_id);
CREATE INDEX blocks_blocker_id_id_idx ON blocks (blocker_id, id DESC);

CREATE TABLE mutes (
    id         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    muter_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    muted_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (muter_id, muted_id),
    CHECK (muter_id <> muted_id)
);

CREATE INDEX mutes_muter_id_id_idx ON mutes (muter_id, id DESC);
CREATE INDEX mutes_muted_id_idx ON mutes (muted_id);

-- The rule, in one place. Over many rows, a query filters with the set:
--     p.author_id NOT IN (SELECT * FROM hidden_from($1))
-- which PostgreSQL inlines and reads once per query, into a hash table. For one pair, the
-- predicates below say the same. A NULL viewer (nobody logged in) blocks and mutes no one.

-- Everyone `viewer` has blocked or been blocked by.
CREATE FUNCTION blocked_with(viewer bigint) RETURNS SETOF bigint
LANGUAGE sql STABLE PARALLEL SAFE
ROWS 10
AS $$
    SELECT blocked_id FROM blocks WHERE blocker_id = viewer
    UNION ALL
    SELECT blocker_id FROM blocks WHERE blocked_id = viewer
$$;

-- Everyone whose posts, reposts and notifications stay out of `viewer`'s timelines, threads,
-- search results, notifications and live updates: blocked either way, or muted.
CREATE FUNCTION hidden_from(viewer bigint) RETURNS SETOF bigint
LANGUAGE sql STABLE PARALLEL SAFE
ROWS 10
AS $$
    SELECT * FROM blocked_with(viewer)
    UNION ALL
    SELECT muted_id FROM mutes WHERE muter_id = viewer
$$;

-- Whether `viewer` may see `author`'s posts at all: a profile, a post opened by its address.
CREATE FUNCTION may_see(viewer bigint, author bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT author NOT IN (SELECT * FROM blocked_with(viewer))
$$;

-- Whether what `author` writes reaches `viewer` where hidden_from says it does not.
CREATE FUNCTION shows_to(viewer bigint, author bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT author NOT IN (SELECT * FROM hidden_from(viewer))
$$;
