/* pg_ingest upgrade script 0.1.0 -> 0.2.0 (ALTER EXTENSION pg_ingest UPDATE). */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_ingest UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0: the copy workers' claim reads an index in claiming order (copy.c):
-- the size of the whole table (its parts' sum) of each copy item
ALTER TABLE @extschema@.copy_item ADD COLUMN table_bytes bigint;
COMMENT ON COLUMN @extschema@.copy_item.table_bytes IS 'size of the whole table on the source (the sum of its parts): the claiming order';
UPDATE @extschema@.copy_item c SET table_bytes = t.bytes
FROM (SELECT migration_id, nspname, relname, sum(bytes_total) AS bytes
	FROM @extschema@.copy_item GROUP BY 1, 2, 3) t
WHERE c.migration_id = t.migration_id AND c.nspname = t.nspname AND c.relname = t.relname;
CREATE INDEX copy_item_pending ON @extschema@.copy_item
	(migration_id, attempts, table_bytes DESC NULLS LAST, nspname, relname, part, id)
	WHERE state = 'pending';

-- 0.2.0: metrics and progress (issue 10)
--
-- ingest.metric_values: one row per migration name (the one ingest.wait
-- would watch: the unfinished one, else the latest), one column per figure,
-- each a number in the unit its name ends with.  It is the single source of
-- ingest.metrics() (Prometheus text exposition), ingest.progress (psql)
-- and contrib/postgres_exporter.yml; it reads ingest.status and
-- ingest.events only, so it never shows the source connection string.
-- Events belong to a migration by name and time: those at or after its
-- start (a name is reused only once the previous migration has finished).
CREATE VIEW @extschema@.metric_values AS
SELECT DISTINCT ON (s.name)
	s.name AS migration,
	pg_catalog.current_database()::text AS database,
	s.phase,
	extract(epoch FROM s.started_at) AS started_timestamp_seconds,
	s.tables_total AS tables,
	s.tables_done AS tables_copied,
	s.bytes_total AS table_size_bytes,
	s.bytes_done AS copied_bytes,
	s.rows_done AS copied_rows,
	round(s.progress_pct / 100, 4) AS copy_progress_ratio,
	s.copy_rate_bytes_per_s::bigint AS copy_rate_bytes_per_second,
	extract(epoch FROM s.eta) AS copy_eta_seconds,
	s.indexes_total AS indexes,
	s.indexes_done AS indexes_built,
	s.errors AS errors_total,
	e.retries AS retries_total,
	s.received_lsn - '0/0'::pg_lsn AS received_lsn,
	s.applied_lsn - '0/0'::pg_lsn AS applied_lsn,
	s.lag_bytes,
	s.lag_seconds,
	s.apply_rate AS apply_rate_changes_per_second,
	s.spool_bytes,
	s.caught_up::int AS caught_up,
	-- a finished migration has no source to reach: no sample, no alert
	CASE WHEN s.phase NOT IN ('completed', 'aborted') THEN s.source_connected::int END AS source_reachable,
	extract(epoch FROM e.last_error_at) AS last_error_timestamp_seconds
FROM @extschema@.status s
LEFT JOIN LATERAL (
	SELECT count(*) FILTER (WHERE ev.kind = 'retry') AS retries,
		max(ev.at) FILTER (WHERE ev.level = 'ERROR') AS last_error_at
	FROM @extschema@.events ev
	WHERE ev.name = s.name AND ev.at >= s.started_at) e ON true
ORDER BY s.name, s.phase NOT IN ('completed', 'aborted') DESC, s.started_at DESC;
COMMENT ON VIEW @extschema@.metric_values IS 'one row per migration name (the unfinished one, else the latest): every figure of ingest.metrics() as a number';

-- The Prometheus text exposition format (version 0.0.4) of
-- ingest.metric_values: HELP and TYPE of every family, then one sample per
-- migration, labelled with its name and the database; a figure that does
-- not apply (no stream yet, no error) has no sample.  The phase is a state
-- set: pg_ingest_phase{phase="..."} is 1 for the current phase, 0 for the
-- others.
CREATE FUNCTION @extschema@.metrics()
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
WITH families(ord, col, type, help) AS (VALUES
	(1, 'phase', 'gauge', 'Phase of the migration, one series per phase: 1 for the current one.'),
	(2, 'started_timestamp_seconds', 'gauge', 'When the migration started, in seconds since the epoch.'),
	(3, 'tables', 'gauge', 'Tables to copy.'),
	(4, 'tables_copied', 'gauge', 'Tables copied.'),
	(5, 'table_size_bytes', 'gauge', 'Size on the source of the tables to copy.'),
	(6, 'copied_bytes', 'gauge', 'Bytes of those tables copied so far.'),
	(7, 'copied_rows', 'gauge', 'Rows copied so far.'),
	(8, 'copy_progress_ratio', 'gauge', 'Share of the bytes to copy that are copied, 0 to 1.'),
	(9, 'copy_rate_bytes_per_second', 'gauge', 'Recent copy rate while the full load runs.'),
	(10, 'copy_eta_seconds', 'gauge', 'Estimated time until the full load is copied, at the recent rate.'),
	(11, 'indexes', 'gauge', 'Indexes and keys to build.'),
	(12, 'indexes_built', 'gauge', 'Indexes and keys built or given up.'),
	(13, 'errors_total', 'counter', 'Errors the migration met.'),
	(14, 'retries_total', 'counter', 'Retries of failed work.'),
	(15, 'received_lsn', 'gauge', 'Source WAL position received by the stream, as a byte offset.'),
	(16, 'applied_lsn', 'gauge', 'Source WAL position applied here, as a byte offset.'),
	(17, 'lag_bytes', 'gauge', 'Source WAL not yet applied here.'),
	(18, 'lag_seconds', 'gauge', 'Age of the oldest change not yet applied here.'),
	(19, 'apply_rate_changes_per_second', 'gauge', 'Recent rate of changes applied.'),
	(20, 'spool_bytes', 'gauge', 'Changes received and spooled, not yet applied.'),
	(21, 'caught_up', 'gauge', '1 when the stream is within pg_ingest.caught_up_threshold of the source.'),
	(22, 'source_reachable', 'gauge', '1 when the stream is connected to the source.'),
	(23, 'last_error_timestamp_seconds', 'gauge', 'When the last error was recorded, in seconds since the epoch.')),
phases(n, phase) AS (
	SELECT n, phase FROM unnest(ARRAY['starting', 'schema', 'copying', 'indexing',
		'finalizing', 'catching_up', 'streaming', 'stopping', 'paused', 'completed',
		'failed', 'aborted']) WITH ORDINALITY AS p(phase, n)),
m AS (
	SELECT to_jsonb(v) AS j, v.phase, v.migration,
		-- label values escaped as the format requires: \ " and newline
		format('migration="%s",database="%s"',
			replace(replace(replace(v.migration, '\', '\\'), '"', '\"'), E'\n', '\n'),
			replace(replace(replace(v.database, '\', '\\'), '"', '\"'), E'\n', '\n')) AS labels
	FROM @extschema@.metric_values v),
samples(ord, line) AS (
	SELECT 1, format(E'pg_ingest_phase{%s,phase="%s"} %s\n', m.labels, p.phase,
		(p.phase = m.phase)::int)
	FROM m CROSS JOIN phases p
	UNION ALL
	SELECT f.ord, format(E'pg_ingest_%s{%s} %s\n', f.col, m.labels, m.j ->> f.col)
	FROM m CROSS JOIN families f
	WHERE f.col <> 'phase' AND m.j ->> f.col IS NOT NULL)
SELECT string_agg(format(E'# HELP pg_ingest_%s %s\n# TYPE pg_ingest_%s %s\n', f.col, f.help, f.col, f.type)
		|| COALESCE((SELECT string_agg(s.line, '' ORDER BY s.line) FROM samples s WHERE s.ord = f.ord), ''),
	'' ORDER BY f.ord)
FROM families f
$$;
COMMENT ON FUNCTION @extschema@.metrics()
	IS 'every migration''s figures in the Prometheus text exposition format, for a scrape';

-- For psql's \watch: one line per migration name, as ingest.metric_values
-- picks it, in words and sizes a DBA reads at a glance.
CREATE VIEW @extschema@.progress AS
SELECT v.migration AS name,
	v.phase,
	round(v.copy_progress_ratio * 100, 1) AS pct,
	pg_catalog.format('%s of %s', pg_catalog.pg_size_pretty(v.copied_bytes),
		pg_catalog.pg_size_pretty(v.table_size_bytes)) AS copied,
	v.tables_copied || '/' || v.tables AS tables,
	v.indexes_built || '/' || v.indexes AS indexes,
	pg_catalog.pg_size_pretty(v.copy_rate_bytes_per_second) || '/s' AS rate,
	pg_catalog.make_interval(secs => v.copy_eta_seconds) AS eta,
	pg_catalog.pg_size_pretty(v.lag_bytes) AS lag,
	pg_catalog.make_interval(secs => v.lag_seconds) AS lag_time,
	v.apply_rate_changes_per_second AS apply_rate,
	v.errors_total AS errors
FROM @extschema@.metric_values v
ORDER BY v.phase IN ('completed', 'aborted', 'failed'), v.started_timestamp_seconds DESC, v.migration;
COMMENT ON VIEW @extschema@.progress IS 'one line per migration, for \watch: phase, percent copied, copy rate, time left, lag, apply rate';

-- ingest.wait gains progress: a NOTICE every progress interval (NULL: none).
-- The library reads the fourth argument only when it is passed, so the
-- three-argument definition of 0.1.0 keeps working until the update.
DROP FUNCTION @extschema@.wait(text, text, interval);
CREATE FUNCTION @extschema@.wait(
	name text DEFAULT 'default',
	phase text DEFAULT 'completed',
	timeout interval DEFAULT '1 hour',
	progress interval DEFAULT '5 s')
RETURNS bool
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_wait';
COMMENT ON FUNCTION @extschema@.wait(text, text, interval, interval)
	IS 'waits until the migration reaches phase (true), ends elsewhere or the timeout passes (false); a NOTICE every progress interval says how it moves (NULL: silent)';

REVOKE ALL ON FUNCTION @extschema@.metrics(),
	@extschema@.wait(text, text, interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.metrics(),
	@extschema@.wait(text, text, interval, interval) TO ingest_admin;
GRANT SELECT ON @extschema@.metric_values, @extschema@.progress TO ingest_admin;

-- 0.2.0: migrating into Citus (issue 11)
--
-- How Citus holds a table of this server: 'hash(column)' for a
-- hash-distributed table, 'reference' for a reference (or Citus local)
-- table, NULL for a table Citus does not know or without Citus.
CREATE FUNCTION @extschema@.distribution(rel regclass)
RETURNS text
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'ingest_distribution';
COMMENT ON FUNCTION @extschema@.distribution(regclass)
	IS 'how Citus holds a table here: hash(column), reference, or NULL when it does not';

-- ingest.tables gains the target table's distribution (the column is added last)
CREATE OR REPLACE VIEW @extschema@.tables AS
SELECT m.name,
	pg_catalog.format('%I.%I', c.nspname, c.relname) AS source_table,
	-- a leaf partition of the source not on the target goes to its root's table
	CASE WHEN c.root_relname IS NOT NULL
		AND pg_catalog.to_regclass(pg_catalog.format('%I.%I', c.nspname, c.relname)) IS NULL
		THEN pg_catalog.format('%I.%I', c.root_nspname, c.root_relname)
		ELSE pg_catalog.format('%I.%I', c.nspname, c.relname) END AS target_table,
	CASE WHEN w.item_id IS NOT NULL AND c.state = 'pending' THEN 'copying' ELSE c.state END AS state,
	c.parts,
	c.part,
	COALESCE(c.rows_done, w.rows) AS rows_done,
	LEAST(COALESCE(c.bytes_done, w.bytes), c.bytes_total) AS bytes_done,
	c.bytes_total,
	COALESCE(c.started_at, w.item_started) AS started_at,
	c.finished_at,
	c.format,
	c.attempts,
	c.sync_lsn,
	c.error,
	-- how Citus holds the target table: hash(column), reference, or NULL
	@extschema@.distribution(pg_catalog.to_regclass(CASE WHEN c.root_relname IS NOT NULL
		AND pg_catalog.to_regclass(pg_catalog.format('%I.%I', c.nspname, c.relname)) IS NULL
		THEN pg_catalog.format('%I.%I', c.root_nspname, c.root_relname)
		ELSE pg_catalog.format('%I.%I', c.nspname, c.relname) END)) AS distribution
FROM @extschema@.migration m
JOIN @extschema@.copy_item c ON c.migration_id = m.id
LEFT JOIN @extschema@._live() w ON w.migration_id = c.migration_id
	AND w.kind = 'copy' AND w.item_id = c.id;
REVOKE ALL ON FUNCTION @extschema@.distribution(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.distribution(regclass) TO ingest_admin;

-- ingest.start gains distribute: a map of the tables to make Citus
-- distributed or reference tables (checked at start, applied by the schema
-- phase right after the pre-data CREATE TABLEs).  The library reads the
-- seventeenth argument only when it is passed, so the definition of 0.1.0
-- keeps working until the update.
ALTER TABLE @extschema@.migration ADD COLUMN distribute jsonb;
COMMENT ON COLUMN @extschema@.migration.distribute IS 'the checked map of ingest.start''s distribute: [{schema, table, method, column, colocate_schema, colocate_table}]';
DROP FUNCTION @extschema@.start(text, text, text, text, int, int, text, text[], text[], text[], text[], text[], text, text, text, text);
CREATE FUNCTION @extschema@.start(
	source text,
	name text DEFAULT 'default',
	mode text DEFAULT 'full-load-and-cdc',
	schema text DEFAULT 'copy',
	table_jobs int DEFAULT 4,
	index_jobs int DEFAULT 4,
	split_tables_larger_than text DEFAULT 'auto',
	include_schemas text[] DEFAULT NULL,
	exclude_schemas text[] DEFAULT NULL,
	include_tables text[] DEFAULT NULL,
	exclude_tables text[] DEFAULT NULL,
	exclude_extensions text[] DEFAULT NULL,
	existing_rows text DEFAULT 'refuse',
	untracked_tables text DEFAULT 'refuse',
	resync text DEFAULT 'none',
	ddl text DEFAULT 'replicate',
	distribute jsonb DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_start';
COMMENT ON FUNCTION @extschema@.start(text, text, text, text, int, int, text, text[], text[], text[], text[], text[], text, text, text, text, jsonb)
	IS 'starts a migration from source into this database; returns at once (watch ingest.status); distribute: a map of Citus distributed and reference tables';
REVOKE ALL ON FUNCTION @extschema@.start(text, text, text, text, int, int, text, text[], text[], text[], text[], text[], text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.start(text, text, text, text, int, int, text, text[], text[], text[], text[], text[], text, text, text, text, jsonb) TO ingest_admin;

-- ingest.preflight gains distribute: the map checked as ingest.start
-- checks it (one row, citus_distribution).  Read only when passed.
DROP FUNCTION @extschema@.preflight(text);
CREATE FUNCTION @extschema@.preflight(source text, distribute jsonb DEFAULT NULL)
RETURNS TABLE(check_name text, status text, detail text, hint text)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_preflight';
COMMENT ON FUNCTION @extschema@.preflight(text, jsonb) IS 'checks a source and this server before a migration: one row per check, PASS, WARN or FAIL; with distribute, the Citus distribution map too';
REVOKE ALL ON FUNCTION @extschema@.preflight(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.preflight(text, jsonb) TO ingest_admin;
