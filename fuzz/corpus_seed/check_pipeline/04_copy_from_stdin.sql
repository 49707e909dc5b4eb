CREATE TABLE cities (id int PRIMARY KEY, name text);
COPY cities (id, name) FROM stdin;
1	Paris
2	São Paulo
3	\N
\.
UPDATE cities SET name = upper(name);
DELETE FROM cities WHERE id > 2;
