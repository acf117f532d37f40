-- Accounts. Usernames are unique regardless of case (the lower() index); session_epoch is bumped
-- by a password change so every other signed session cookie stops being honoured.
CREATE TABLE users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL CHECK (username ~ '^[A-Za-z0-9_]{1,30}$'),
    password_hash   text NOT NULL,
    display_name    text NOT NULL DEFAULT '' CHECK (char_length(display_name) <= 50),
    bio             text NOT NULL DEFAULT '' CHECK (char_length(bio) <= 300),
    session_epoch   integer NOT NULL DEFAULT 0,
    post_count      integer NOT NULL DEFAULT 0 CHECK (post_count >= 0),
    follower_count  integer NOT NULL DEFAULT 0 CHECK (follower_count >= 0),
    following_count integer NOT NULL DEFAULT 0 CHECK (following_count >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
