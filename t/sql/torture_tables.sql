-- Every table of the current database whose contents a copy must reproduce,
-- one per row, as a quoted, schema-qualified name (format('%I.%I')), in a
-- stable order (byte order, whatever the collation).
--
-- Included: ordinary tables (leaf partitions, inheritance parents and
-- children, unlogged tables, empty tables) and populated materialized views.
-- Left out: partitioned parents (no storage of their own; their leaves are
-- listed), views, foreign tables, unpopulated materialized views (reading
-- them is an error), the system schemas, and tables that belong to an
-- extension (e.g. pg_ingest's own tables when run on the target).
--
-- Hash each one with FROM ONLY, so that an inheritance parent is not
-- counted with its children's rows, and with (t.*)::text, not t::text:
-- several tables have a column named "t", which t::text would hash alone.
--   SELECT count(*), md5(string_agg(md5((t.*)::text), '' ORDER BY md5((t.*)::text)))
--   FROM ONLY <name> AS t
-- Run it on the source: a copy that wrongly refreshes mv_never_filled would
-- add it to the list on the target.
SELECT format('%I.%I', n.nspname, c.relname) AS table_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated))
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C";
