-- Renaming users.full_name to display_name without breaking the running application: this
-- is the expand step. The new column is added and kept in step with the old one by a
-- trigger, so old code (writing full_name) and new code (writing display_name) both work.
-- Existing rows are copied by the backfill at the end, in batches; a later migration drops
-- full_name once no deployed code reads it.
ALTER TABLE users ADD COLUMN display_name text;

-- The trigger takes the direction from the column the statement changed: an old-version
-- UPDATE of full_name must reach display_name, and a new-version UPDATE of display_name
-- must reach full_name. (Deciding from which column is NULL would silently undo an
-- old-version update once display_name is filled.)
CREATE FUNCTION users_sync_display_name() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.display_name := coalesce(NEW.display_name, NEW.full_name);
        NEW.full_name := coalesce(NEW.full_name, NEW.display_name);
    ELSIF NEW.display_name IS DISTINCT FROM OLD.display_name THEN
        NEW.full_name := NEW.display_name;
    ELSIF NEW.full_name IS DISTINCT FROM OLD.full_name THEN
        NEW.display_name := NEW.full_name;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_sync_display_name
    BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_sync_display_name();

-- pgshift:backfill
UPDATE users SET display_name = full_name WHERE display_name IS NULL;
