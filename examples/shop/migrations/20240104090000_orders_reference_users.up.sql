-- pgshift:no-transaction
-- Two steps, each committed on its own: adding the key NOT VALID takes a brief lock and
-- checks nothing; VALIDATE then scans orders under a lock that lets writes continue.
ALTER TABLE orders
    ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;
