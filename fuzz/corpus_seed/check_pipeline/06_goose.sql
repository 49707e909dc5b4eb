-- +goose NO TRANSACTION
-- +goose Up
-- +goose StatementBegin
CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);
-- +goose StatementEnd
ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS orders_created_at_idx;
