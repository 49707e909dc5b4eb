-- Renaming users.full_name to display_name without breaking the running application: this
-- is the expand step. The new column is added and kept in step with the old one by a
-- trigger, so old code (writing full_name) and new code (writing display_name) both work.
-- Existing rows are copied by `pgshift backfill`; a later migration drops full_name once no
-- deployed code reads it.
ALTER TABLE users ADD COLUMN display_name text;

CREATE FUNCTION users_sync_display_name() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.display_name IS NULL THEN
        NEW.display_name := NEW.full_name;
    ELSIF NEW.full_name IS DISTINCT FROM NEW.display_name THEN
        NEW.full_name := NEW.display_name;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_sync_display_name
    BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_sync_display_name();
