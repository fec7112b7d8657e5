/* pg_ingest install script: the SQL objects of the extension (schema ingest). */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_ingest" to load this file. \quit

-- The operators' role.  Roles belong to the cluster, so another database
-- may have created it already; it stays when the extension is dropped.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ingest_admin') THEN
		CREATE ROLE ingest_admin NOLOGIN;
	END IF;
END
$$;
COMMENT ON ROLE ingest_admin IS 'members may run pg_ingest migrations (functions and views of schema ingest)';

GRANT USAGE ON SCHEMA @extschema@ TO ingest_admin;

CREATE FUNCTION @extschema@.version()
RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ingest_version';
COMMENT ON FUNCTION @extschema@.version() IS 'version of the loaded pg_ingest library';

CREATE FUNCTION @extschema@.preflight(source text)
RETURNS TABLE(check_name text, status text, detail text, hint text)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_preflight';
COMMENT ON FUNCTION @extschema@.preflight(text) IS 'checks a source and this server before a migration: one row per check, PASS, WARN or FAIL';
REVOKE ALL ON FUNCTION @extschema@.preflight(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.preflight(text) TO ingest_admin;

--
-- Catalog.  Written only by pg_ingest's functions and workers (acting as
-- the extension's owner); operators read it through the views below.
-- ingest.migration holds the source connection string with its password,
-- so only its owner may read it.
--
CREATE TABLE @extschema@.migration (
	id serial PRIMARY KEY,
	name text NOT NULL,
	owner oid NOT NULL,				-- role that started it; the workers act as it
	source text NOT NULL,			-- as given, password included: never shown
	source_display text NOT NULL,	-- the same, password masked
	mode text NOT NULL,
	schema_mode text NOT NULL,
	table_jobs int NOT NULL,
	index_jobs int NOT NULL,
	split_bytes bigint NOT NULL,	-- 0: never split; -1: 'auto'
	include_schemas text[],
	exclude_schemas text[],
	include_tables text[],
	exclude_tables text[],
	exclude_extensions text[],
	existing_rows text NOT NULL DEFAULT 'refuse',	-- refuse, truncate: target tables with rows at start
	untracked_tables text NOT NULL DEFAULT 'refuse',	-- refuse, copy_only: tables whose changes cannot be decoded
	resync text NOT NULL DEFAULT 'none'	-- none, at_cutover: untracked tables copied again at the stop
		CONSTRAINT migration_resync_check CHECK (resync IN ('none', 'at_cutover')),
	ddl text NOT NULL DEFAULT 'replicate'	-- replicate, infer, off: schema changes on the source while streaming
		CONSTRAINT migration_ddl_check CHECK (ddl IN ('replicate', 'infer', 'off')),
	phase text NOT NULL DEFAULT 'starting'
		CONSTRAINT migration_phase_check CHECK (phase IN ('starting', 'schema', 'copying',
			'indexing', 'finalizing', 'catching_up', 'streaming', 'stopping', 'paused',
			'completed', 'failed', 'aborted')),
	slot_name text,					-- replication slot on the source
	snapshot_name text,				-- snapshot the copy workers import now
	snapshot_lsn pg_lsn,			-- its consistent point: sync LSN of what is copied under it
	postdata_loaded bool NOT NULL DEFAULT false,
	restarts int NOT NULL DEFAULT 0,	-- coordinator restarts after errors
	crashes int NOT NULL DEFAULT 0,		-- server crash-restarts in a row while it ran (pg_ingest.max_crashes)
	slot_lsn pg_lsn,				-- consistent point of the slot: the stream starts there
	stop_lsn pg_lsn,				-- ingest.stop_at
	applied_lsn pg_lsn,				-- where the stream ended (live figures are in shared memory)
	source_encoding name,			-- the source's server_encoding: wal2json writes in it
	resume_phase text				-- where ingest.resume goes back to (pause, failure)
		CONSTRAINT migration_resume_phase_check CHECK (resume_phase IN ('starting', 'schema',
			'copying', 'indexing', 'finalizing', 'catching_up', 'streaming', 'stopping')),
	started_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	copy_started_at timestamptz,
	copy_finished_at timestamptz,
	finished_at timestamptz,
	last_error text,
	errors int NOT NULL DEFAULT 0,
	ddl_via text					-- how schema changes on the source are replicated (ddl.c)
		CONSTRAINT migration_ddl_via_check CHECK (ddl_via IN ('event_trigger', 'stream')),
	ddl_installed bool NOT NULL DEFAULT false,	-- its event trigger is on the source: to remove
	ddl_token text					-- secret its event trigger's messages carry
);
-- a name is taken while its migration is not finished
CREATE UNIQUE INDEX migration_name_unfinished ON @extschema@.migration (name)
	WHERE phase NOT IN ('completed', 'aborted');

-- One row per table to copy, or per part of a split table.
CREATE TABLE @extschema@.copy_item (
	migration_id int NOT NULL REFERENCES @extschema@.migration ON DELETE CASCADE,
	id int NOT NULL,
	nspname text NOT NULL,			-- source table; the target table has the same name
	relname text NOT NULL,
	root_nspname text,				-- a leaf partition's root on the source: the target table
	root_relname text,				-- when the leaf itself is not on the target (target.c)
	part int NOT NULL DEFAULT 1,
	parts int NOT NULL DEFAULT 1,
	page_from bigint,				-- ctid page range of a part; NULL: whole table
	page_to bigint,					-- NULL: to the end
	columns text NOT NULL,			-- quoted column list, generated columns left out
	bytes_total bigint NOT NULL,	-- source size of the table or part
	use_freeze bool NOT NULL DEFAULT true,	-- truncate and COPY FREEZE (whole tables)
	state text NOT NULL DEFAULT 'pending',	-- pending, done, failed; skipped (mode cdc)
	format text,					-- binary or text, once copied
	rows_done bigint,
	bytes_done bigint,				-- COPY stream bytes received
	sync_lsn pg_lsn,				-- consistent point of the snapshot it was copied under
	attempts int NOT NULL DEFAULT 0,
	started_at timestamptz,
	finished_at timestamptz,
	error text,
	PRIMARY KEY (migration_id, id)
);
CREATE INDEX copy_item_table ON @extschema@.copy_item (migration_id, nspname, relname);
-- what is still to copy, by table: the schema items' readiness probes (schema.c)
CREATE INDEX copy_item_unfinished ON @extschema@.copy_item (migration_id, nspname, relname)
	WHERE state NOT IN ('done', 'skipped');

-- Schema statements (pg_dump's pre-data and post-data sections, split and
-- classified) and the finishing work (ANALYZE, REFRESH, setval), in order.
-- stage: 0 pre-data; post-data 1 indexes (when their table is copied),
-- 2 constraints using them and statistics, 3 index attachment, 4 foreign
-- keys and checks, 5 the rest, one at a time.
CREATE TABLE @extschema@.schema_item (
	migration_id int NOT NULL REFERENCES @extschema@.migration ON DELETE CASCADE,
	id int NOT NULL,
	stage int NOT NULL,
	kind text NOT NULL,
	nspname text,					-- table it belongs to, for stages 1 and 2
	relname text,
	cost bigint NOT NULL DEFAULT 0,	-- size of that table: big ones first (0 in stages 0 and 5)
	prelude text,					-- the SET statements in force where it stood in the dump
	statement text NOT NULL,
	state text NOT NULL DEFAULT 'pending',	-- pending, done, failed, skipped
	attempts int NOT NULL DEFAULT 0,
	started_at timestamptz,
	finished_at timestamptz,
	error text,
	PRIMARY KEY (migration_id, id)
);
-- pending items in the order they are claimed (schema.c claim_items), and
-- by table for the readiness probes; done items leave both
CREATE INDEX schema_item_pending ON @extschema@.schema_item
	(migration_id, stage, attempts, (kind = 'analyze'), cost DESC, id) WHERE state = 'pending';
CREATE INDEX schema_item_pending_table ON @extschema@.schema_item
	(migration_id, nspname, relname, stage) WHERE state = 'pending';

-- The audit trail: phase changes, failed statements, retries, failures.
CREATE TABLE @extschema@.events (
	id bigserial PRIMARY KEY,
	migration_id int REFERENCES @extschema@.migration ON DELETE CASCADE,
	name text,						-- the migration's name
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	phase text,
	level text NOT NULL,			-- INFO, WARNING, ERROR
	kind text NOT NULL,				-- phase, schema, copy, retry, failure, ...
	object text,					-- table or statement concerned
	message text NOT NULL,
	detail text
);
CREATE INDEX events_migration ON @extschema@.events (migration_id, id);
COMMENT ON TABLE @extschema@.events IS 'what happened to each migration: phase changes, failed schema statements, retries and failures';

-- resync => 'at_cutover' (resync.c): tables whose changes cannot be decoded
-- (unlogged, or neither a key nor a replica identity).  Their changes are
-- skipped while streaming; at the stop they are all copied again, in one
-- snapshot of the source and one transaction here.
CREATE TABLE @extschema@.resync_table (
	migration_id int NOT NULL REFERENCES @extschema@.migration ON DELETE CASCADE,
	nspname text NOT NULL,			-- source table, as in copy_item
	relname text NOT NULL,
	reason text NOT NULL,			-- unlogged, no identity
	rows_done bigint,				-- copied at the stop
	bytes_done bigint,
	resynced_at timestamptz,		-- when; set by the transaction that copied them all
	PRIMARY KEY (migration_id, nspname, relname)
);
REVOKE ALL ON @extschema@.resync_table FROM PUBLIC;

REVOKE ALL ON @extschema@.migration, @extschema@.copy_item,
	@extschema@.schema_item, @extschema@.events FROM PUBLIC;
GRANT SELECT ON @extschema@.events TO ingest_admin;

-- What the workers are doing now (shared memory), for the views.
CREATE FUNCTION @extschema@._live(
	OUT migration_id int, OUT kind text, OUT job int, OUT pid int,
	OUT item_id int, OUT item_started timestamptz,
	OUT bytes bigint, OUT rows bigint, OUT copy_rate float8)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_live';

-- Change data capture of the running migrations (shared memory).
CREATE FUNCTION @extschema@._stream(
	OUT migration_id int, OUT received_lsn pg_lsn, OUT flushed_lsn pg_lsn,
	OUT source_lsn pg_lsn, OUT applied_lsn pg_lsn, OUT applied_commit_time timestamptz,
	OUT apply_idle bool, OUT apply_rate float8, OUT spool_bytes bigint,
	OUT connected bool)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_stream';

-- The stream as the receiver sees it (shared memory): whether it is
-- connected to the source, the last contact, since when and why it fails;
-- caught_up is computed in C, where pg_ingest.caught_up_threshold is read
-- in its unit, and is never true while the stream is down.
CREATE FUNCTION @extschema@._receiver(
	OUT migration_id int, OUT connected bool, OUT last_contact timestamptz,
	OUT failing_since timestamptz, OUT stream_error text, OUT caught_up bool)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_receiver_status';

-- The payload of NOTIFY pg_ingest.
CREATE FUNCTION @extschema@._notification(name text, phase text, event text,
										  lsn pg_lsn, message text)
RETURNS json
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_notification';

REVOKE ALL ON FUNCTION @extschema@._live(), @extschema@._stream(), @extschema@._receiver(),
	@extschema@._notification(text, text, text, pg_lsn, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._live(), @extschema@._stream(), @extschema@._receiver(),
	@extschema@._notification(text, text, text, pg_lsn, text) TO ingest_admin;

CREATE VIEW @extschema@.tables AS
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
	c.error
FROM @extschema@.migration m
JOIN @extschema@.copy_item c ON c.migration_id = m.id
LEFT JOIN @extschema@._live() w ON w.migration_id = c.migration_id
	AND w.kind = 'copy' AND w.item_id = c.id;
COMMENT ON VIEW @extschema@.tables IS 'one row per table of each migration, or per part of a split table';

CREATE VIEW @extschema@.status AS
SELECT m.name,
	m.phase,
	m.source_display AS source,
	m.started_at,
	m.updated_at,
	t.tables_total,
	t.tables_done,
	t.bytes_total,
	t.bytes_done + COALESCE(l.bytes, 0) AS bytes_done,
	t.rows_done + COALESCE(l.rows, 0) AS rows_done,
	CASE WHEN m.phase = 'completed' THEN 100.0
		 WHEN t.bytes_total > 0
		 THEN round(100.0 * LEAST(t.bytes_done + COALESCE(l.bytes, 0), t.bytes_total) / t.bytes_total, 1)
	END AS progress_pct,
	CASE WHEN m.copy_started_at IS NOT NULL AND m.copy_finished_at IS NULL
		 THEN round(COALESCE(l.copy_rate, 0)) END AS copy_rate_bytes_per_s,
	CASE WHEN m.copy_started_at IS NOT NULL AND m.copy_finished_at IS NULL AND l.copy_rate > 0
		 THEN pg_catalog.make_interval(secs => round(GREATEST(t.bytes_total - t.bytes_done - COALESCE(l.bytes, 0), 0) / l.copy_rate))
	END AS eta,
	i.indexes_total,
	i.indexes_done,
	-- why it failed; while it runs, why its stream cannot reach the source
	COALESCE(m.last_error, r.stream_error) AS last_error,
	m.errors,
	m.slot_name,
	s.received_lsn,
	COALESCE(s.applied_lsn, m.applied_lsn) AS applied_lsn,
	GREATEST(s.source_lsn, s.received_lsn) AS source_lsn,
	-- the source is at least where the stream has got to, whenever it was polled
	CASE WHEN COALESCE(s.source_lsn, s.received_lsn) IS NOT NULL AND s.applied_lsn IS NOT NULL
		 THEN GREATEST(GREATEST(s.source_lsn, s.received_lsn) - s.applied_lsn, 0) END AS lag_bytes,
	-- while the stream is down, at least the time since the last contact
	CASE WHEN s.migration_id IS NULL OR s.applied_lsn IS NULL THEN NULL
		 ELSE round(GREATEST(
			CASE WHEN s.apply_idle AND s.applied_lsn >= s.received_lsn THEN 0.0
				 ELSE extract(epoch FROM now() - s.applied_commit_time) END,
			CASE WHEN NOT r.connected THEN extract(epoch FROM now() - r.last_contact) END,
			0), 3) END AS lag_seconds,
	round(s.apply_rate::numeric, 1) AS apply_rate,
	-- the same test as the coordinator's, in C (no GUC text parsed here)
	CASE WHEN s.migration_id IS NULL OR s.applied_lsn IS NULL THEN NULL
		 ELSE r.caught_up END AS caught_up,
	m.stop_lsn,
	s.spool_bytes,
	r.connected AS source_connected,
	r.last_contact AS source_last_contact
FROM @extschema@.migration m
LEFT JOIN LATERAL (
	SELECT count(*) FILTER (WHERE p.first) AS tables_total,
		count(*) FILTER (WHERE p.first AND p.all_done) AS tables_done,
		COALESCE(sum(c.bytes_total), 0) AS bytes_total,
		COALESCE(sum(c.bytes_total) FILTER (WHERE c.state IN ('done', 'skipped')), 0) AS bytes_done,
		COALESCE(sum(c.rows_done), 0) AS rows_done
	FROM @extschema@.copy_item c
	CROSS JOIN LATERAL (
		SELECT c.part = 1 AS first,
			NOT EXISTS (SELECT 1 FROM @extschema@.copy_item o
						WHERE o.migration_id = c.migration_id AND o.nspname = c.nspname
						AND o.relname = c.relname AND o.state NOT IN ('done', 'skipped')) AS all_done) p
	WHERE c.migration_id = m.id) t ON true
LEFT JOIN LATERAL (
	SELECT count(*) AS indexes_total,
		count(*) FILTER (WHERE s.state IN ('done', 'failed')) AS indexes_done
	FROM @extschema@.schema_item s
	WHERE s.migration_id = m.id AND s.kind IN ('index', 'primary key', 'unique', 'exclusion')) i ON true
LEFT JOIN LATERAL (
	SELECT sum(LEAST(w.bytes, c.bytes_total)) AS bytes, sum(w.rows) AS rows, max(w.copy_rate) AS copy_rate
	FROM @extschema@._live() w
	LEFT JOIN @extschema@.copy_item c ON c.migration_id = w.migration_id AND c.id = w.item_id
		AND c.state = 'pending'
	WHERE w.migration_id = m.id AND (w.kind = 'copy' AND c.id IS NOT NULL OR w.kind = 'coordinator')) l ON true
LEFT JOIN @extschema@._stream() s ON s.migration_id = m.id
LEFT JOIN @extschema@._receiver() r ON r.migration_id = m.id;
COMMENT ON VIEW @extschema@.status IS 'one row per migration: phase, progress, rates and errors';

GRANT SELECT ON @extschema@.status, @extschema@.tables TO ingest_admin;

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
	ddl text DEFAULT 'replicate')
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_start';
COMMENT ON FUNCTION @extschema@.start(text, text, text, text, int, int, text, text[], text[], text[], text[], text[], text, text, text, text)
	IS 'starts a migration from source into this database; returns at once (watch ingest.status)';

CREATE FUNCTION @extschema@.wait(
	name text DEFAULT 'default',
	phase text DEFAULT 'completed',
	timeout interval DEFAULT '1 hour')
RETURNS bool
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_wait';
COMMENT ON FUNCTION @extschema@.wait(text, text, interval)
	IS 'waits until the migration reaches phase (true), ends elsewhere or the timeout passes (false)';

CREATE FUNCTION @extschema@.abort(name text DEFAULT 'default')
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_abort';
COMMENT ON FUNCTION @extschema@.abort(text)
	IS 'stops a migration''s workers, drops what it created on the source, and marks it aborted';

CREATE FUNCTION @extschema@.stop_at(lsn pg_lsn, name text DEFAULT 'default')
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_stop_at';
COMMENT ON FUNCTION @extschema@.stop_at(pg_lsn, text)
	IS 'ends a streaming migration once every source transaction committed at or before lsn is applied';

CREATE FUNCTION @extschema@.cutover(name text DEFAULT 'default', timeout interval DEFAULT '5 min')
RETURNS pg_lsn
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_cutover';
COMMENT ON FUNCTION @extschema@.cutover(text, interval)
	IS 'stops at the source''s current WAL position and waits until the migration is completed; for when the application has stopped writing';

CREATE FUNCTION @extschema@.cleanup(name text DEFAULT 'default')
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_cleanup';
COMMENT ON FUNCTION @extschema@.cleanup(text)
	IS 'drops a finished migration''s slot on the source, its replication origin and its spool';

CREATE FUNCTION @extschema@.pause(name text DEFAULT 'default')
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_pause';
COMMENT ON FUNCTION @extschema@.pause(text)
	IS 'stops applying changes; the receiver keeps spooling them';

CREATE FUNCTION @extschema@.resume(name text DEFAULT 'default')
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_resume';
COMMENT ON FUNCTION @extschema@.resume(text)
	IS 'goes on with a paused migration, or with a failed one from where it failed';

CREATE FUNCTION @extschema@.verify(
	name text DEFAULT 'default',
	mode text DEFAULT 'hash')
RETURNS TABLE(table_name text, source_rows bigint, target_rows bigint,
			  source_hash text, target_hash text, status text)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_verify';
COMMENT ON FUNCTION @extschema@.verify(text, text)
	IS 'compares every table of a migration on source and target: row counts, and in hash mode an order-independent hash of the rows';

DO $$
DECLARE
	f text;
BEGIN
	FOREACH f IN ARRAY ARRAY[
		'start(text, text, text, text, int, int, text, text[], text[], text[], text[], text[], text, text, text, text)',
		'wait(text, text, interval)', 'abort(text)', 'verify(text, text)',
		'stop_at(pg_lsn, text)', 'cutover(text, interval)', 'cleanup(text)',
		'pause(text)', 'resume(text)']
	LOOP
		EXECUTE format('REVOKE ALL ON FUNCTION @extschema@.%s FROM PUBLIC', f);
		EXECUTE format('GRANT EXECUTE ON FUNCTION @extschema@.%s TO ingest_admin', f);
	END LOOP;
END
$$;
