-- Operators of /admin: an account is one while it has a row here (`admin grant USERNAME`).
-- A table of its own rather than a column of users: the users' row is kept by every web
-- process (users/known.py) and drawn on every page, and being an operator is neither.
CREATE TABLE operators (
    user_id    bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now()
);

-- What operators did, newest last: who (the account, or the command line), what, when.
-- The name is kept beside the id so the log still says who once the account is gone.
CREATE TABLE admin_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator_id bigint REFERENCES users (id) ON DELETE SET NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    details     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
