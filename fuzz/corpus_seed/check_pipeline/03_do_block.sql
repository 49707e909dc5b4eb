DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  END IF;
END
$$;
ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ecstatic' AFTER 'happy';
