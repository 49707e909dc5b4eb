-- pgshift:no-transaction
-- orders already takes writes: build the index without blocking them.
CREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);
