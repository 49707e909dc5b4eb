BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 1975ea83b712

ALTER TABLE account ADD COLUMN last_transaction_date TIMESTAMP WITHOUT TIME ZONE DEFAULT now();

UPDATE alembic_version SET version_num='1975ea83b712' WHERE alembic_version.version_num = '';

COMMIT;
