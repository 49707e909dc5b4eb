-- Nullable columns without a default: a catalog-only change, no rewrite.
ALTER TABLE orders
    ADD COLUMN shipped_at timestamptz,
    ADD COLUMN note text;
