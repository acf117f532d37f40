-- Notifications, written by jobs. A notification exists at most once per recipient, actor,
-- kind and post, so a job that runs twice, or a like taken back and given again, adds nothing.
CREATE TABLE notifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('reply', 'mention', 'like', 'follow')),
    post_id      bigint REFERENCES posts (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    read_at      timestamptz,
    CHECK (recipient_id <> actor_id),
    UNIQUE NULLS NOT DISTINCT (recipient_id, actor_id, kind, post_id)
);

CREATE INDEX notifications_recipient_id_id_idx ON notifications (recipient_id, id DESC);
CREATE INDEX notifications_post_id_idx ON notifications (post_id) WHERE post_id IS NOT NULL;

-- Shown in the navigation of every page, so it lives on the row the page already loads.
ALTER TABLE users ADD COLUMN unread_notifications integer NOT NULL DEFAULT 0
    CHECK (unread_notifications >= 0);
