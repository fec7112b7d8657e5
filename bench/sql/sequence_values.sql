-- bench/sql/sequence_values.sql: one line per user sequence,
--   schema.sequence|last_value|is_called
-- run identically on the source and on a target (psql -At -f).  Native
-- logical replication does not copy sequences: the benchmark reports this
-- comparison but does not fail a tool on it.

SELECT format('SELECT %L, last_value, is_called FROM %s',
              c.oid::regclass::text, c.oid::regclass)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (SELECT FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
ORDER BY 1
\gexec
