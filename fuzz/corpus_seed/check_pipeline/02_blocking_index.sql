BEGIN;
SET lock_timeout = '2s';
CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email) INCLUDE (id);
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;
COMMIT;
