CREATE OR REPLACE FUNCTION sync_full_name() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  NEW.full_name := NEW.first_name || ' ' || NEW.last_name; -- not a ; statement end
  RETURN NEW;
END;
$body$;
CREATE TRIGGER users_full_name BEFORE INSERT OR UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION sync_full_name();
COMMENT ON COLUMN users.full_name IS $$it's "derived"$$;
