ALTER TABLE orders
    DROP COLUMN note,
    DROP COLUMN shipped_at;
