-- Up Migration
ALTER TABLE products ADD COLUMN sku varchar(64);
ALTER TABLE products ALTER COLUMN sku TYPE text;
CREATE INDEX products_sku_idx ON products (sku);
-- Down Migration
DROP INDEX products_sku_idx;
ALTER TABLE products DROP COLUMN sku;
