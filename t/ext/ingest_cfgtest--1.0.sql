-- A configuration table with a condition of its own (rows with id >= 100
-- are the user's), a configuration sequence, and an ordinary member table
-- the migration must never write into.
CREATE TABLE cfgtest.settings (id int PRIMARY KEY, v text);
INSERT INTO cfgtest.settings VALUES (1, 'shipped'), (2, 'shipped');
SELECT pg_catalog.pg_extension_config_dump('cfgtest.settings', 'WHERE id >= 100');
CREATE SEQUENCE cfgtest.ticket;
SELECT pg_catalog.pg_extension_config_dump('cfgtest.ticket', '');
CREATE TABLE cfgtest.internal (id int PRIMARY KEY);
GRANT USAGE ON SCHEMA cfgtest TO PUBLIC;
GRANT SELECT ON cfgtest.settings, cfgtest.internal TO PUBLIC;
GRANT SELECT ON cfgtest.ticket TO PUBLIC;
