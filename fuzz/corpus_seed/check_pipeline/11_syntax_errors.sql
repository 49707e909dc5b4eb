SELECT 1;
ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT;
CREATE TABLE ok (id int);
CREATE INDEX ON ;
$$ unterminated dollar quote
