-- Live updates (microblog/live/): what writes showed, for the streams of every instance to
-- fan out and for a stream that reconnects to replay. A row is written by the transaction of
-- the write it follows from, last, under a transaction-scoped advisory lock, so ids are taken
-- in commit order: a reader that has seen id N has seen every event up to N. Rows hold ids and
-- counts, never a post's text. Trimmed by the recurring job `trim-events`.
CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('post', 'counts', 'unread', 'follows')),
    post_id      bigint,       -- post, counts
    author_id    bigint,       -- post, counts: whose followers see it
    in_reply_to  bigint,       -- post, counts: the post whose thread shows it
    recipient_id bigint,       -- unread, follows: the only user it is for
    like_count   integer,      -- counts
    reply_count  integer,      -- counts
    unread       integer,      -- unread: the recipient's count of unread notifications
    -- The clock, not the transaction's start: rows are inserted in id order, and the trim
    -- finds its boundary walking ids forward.
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Events with ids up to up_to are gone: a stream asking to replay from before that is told to
-- reload instead of being given a gap.
CREATE TABLE events_trimmed (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    up_to    bigint NOT NULL
);
INSERT INTO events_trimmed (up_to) VALUES (0);
