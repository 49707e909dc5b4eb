ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;
ALTER TABLE users ALTER COLUMN email SET NOT NULL; -- pgshift:allow set-not-null checked by the constraint above
ALTER TABLE users DROP CONSTRAINT users_email_not_null;
ALTER TABLE users RENAME COLUMN login TO username;
ALTER TABLE "Weird ""Name""; DROP TABLE x" ALTER COLUMN id TYPE bigint USING id::bigint;
