-- Profile pictures, in PostgreSQL like every other piece of state: any instance can serve
-- them and none keeps files of its own. users.avatar_digest changes with the picture, so pages
-- can link to it by a URL that changes too (and that browsers may therefore cache for good).
CREATE TABLE avatars (
    user_id      bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    content_type text NOT NULL
                 CHECK (content_type IN ('image/png', 'image/jpeg', 'image/gif', 'image/webp')),
    image        bytea NOT NULL CHECK (octet_length(image) BETWEEN 1 AND 524288),
    digest       text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE users ADD COLUMN avatar_digest text;
