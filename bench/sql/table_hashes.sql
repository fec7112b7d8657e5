-- bench/sql/table_hashes.sql: one line per user table,
--   schema.table|row count|sum of the rows' 64-bit text hashes
-- run identically on the source and on a target (psql -At -f), so that the
-- two outputs can be compared line by line.  Tables that belong to an
-- extension (pg_ingest's own catalog on the target) are left out.

-- the text form of a row depends on these: make them the same on both sides
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 1;
SET bytea_output = 'hex';

SELECT format('SELECT %L, count(*), coalesce(sum(hashtextextended(t::text, 0)), 0) FROM %s t',
              c.oid::regclass::text, c.oid::regclass)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition        -- a parent's scan already covers them
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND NOT EXISTS (SELECT FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
ORDER BY 1
\gexec
