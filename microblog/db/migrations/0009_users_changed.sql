-- Tell every listening process which user's row changed: web processes keep recent rows
-- (users/known.py) and forget one when told. NOTIFY is delivered when the transaction commits,
-- and PostgreSQL folds a transaction's identical notifications into one.
CREATE FUNCTION notify_user_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('users_changed', '');  -- every row
    ELSE
        PERFORM pg_notify('users_changed', OLD.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_updated AFTER UPDATE ON users
FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
EXECUTE FUNCTION notify_user_changed();

CREATE TRIGGER users_deleted AFTER DELETE ON users
FOR EACH ROW EXECUTE FUNCTION notify_user_changed();

CREATE TRIGGER users_truncated AFTER TRUNCATE ON users
FOR EACH STATEMENT EXECUTE FUNCTION notify_user_changed();
