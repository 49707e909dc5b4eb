-- migrate:up transaction:false
ALTER TABLE accounts ADD COLUMN plan text NOT NULL DEFAULT 'free';
ALTER TABLE accounts ADD CONSTRAINT accounts_owner_fk FOREIGN KEY (owner_id) REFERENCES users (id) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_owner_fk;

-- migrate:down
ALTER TABLE accounts DROP COLUMN plan;
