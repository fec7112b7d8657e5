/*-------------------------------------------------------------------------
 *
 * coordinator.c
 *	  The coordinator: one background worker per migration, which takes it
 *	  through its phases and launches the copy and index workers.
 *
 *	starting	export a snapshot from a replication slot on the source, read
 *				the source's catalog under it, record the copy items (tables
 *				split into ctid page ranges above split_tables_larger_than),
 *				take pg_dump's pre-data section;
 *	schema		run the pre-data statements, in order;
 *	copying		the copy workers copy under the snapshot; meanwhile the
 *				coordinator takes the post-data section and the index workers
 *				build each table's indexes as soon as the table is copied;
 *	indexing	the copy is done and the snapshot released; indexes,
 *				constraints, foreign keys go on;
 *	finalizing	the remaining statements (triggers, rules, policies...),
 *				REFRESH MATERIALIZED VIEW, setval of every sequence;
 *	completed.
 *
 * Each phase resumes where it stopped: everything done is recorded in the
 * same transaction that did it.  After a restart in the copying phase the
 * snapshot is gone; the coordinator exports a new one (from a temporary
 * slot), and what is copied from then on carries that snapshot's LSN as
 * its sync LSN.
 *
 * An error of the coordinator itself is recorded and the coordinator exits;
 * the supervisor starts it again after a growing delay, and after
 * pg_ingest.max_retries restarts the migration fails.
 *
 * Locking: none of its own; see workers.c for the slots.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "conn.h"
#include "pg_ingest.h"
#include "schema.h"
#include "source.h"

static IngestMigration *m;
static IngestConnInfo *info;
static IngestFilters *filters;
static int	my_slot;
static IngestMigrationSlot *me;

/* replication connection whose idle session keeps the exported snapshot */
static PGconn *exporter = NULL;

static BackgroundWorkerHandle *copy_workers[INGEST_MAX_JOBS];
static BackgroundWorkerHandle *index_workers[INGEST_MAX_JOBS];

/* copy rate sampling */
static TimestampTz rate_at = 0;
static uint64 rate_bytes = 0;

static void
coordinator_on_exit(int code, Datum arg)
{
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	if (me->coordinator_pid == MyProcPid)
		me->coordinator_pid = 0;
	LWLockRelease(IngestShared->lock);
}

/* Run code in a transaction of its own. */
#define IN_TRANSACTION(code) \
	do { \
		ingest_xact_start(); \
		code; \
		ingest_xact_commit(); \
	} while (0)

static char *
current_phase(void)
{
	IngestMigration *now;
	char	   *phase;

	ingest_xact_start();
	now = ingest_load_migration(m->id);
	phase = MemoryContextStrdup(TopMemoryContext, now->phase);
	ingest_xact_commit();
	return phase;
}

static void
set_phase(const char *phase)
{
	IN_TRANSACTION(ingest_set_phase(m, phase));
}

/*
 * export_snapshot
 *		Create a slot on the source with an exported snapshot and keep its
 *		session open; record the snapshot for the copy workers.
 *
 * A full load needs the slot only for the snapshot: it is temporary, and
 * goes when the session closes.
 */
static void
export_snapshot(void)
{
	char	   *slot;
	char	   *sql;
	PGresult   *res;
	char	   *snapshot;
	char	   *lsn;
	Oid			types[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		vals[3];

	if (exporter)
		ingest_disconnect(exporter);
	exporter = ingest_connect_or_error(info, INGEST_CONN_REPLICATION,
									   psprintf("pg_ingest %s snapshot", m->name));
	slot = psprintf("pg_ingest_%u_%d_snap_%d", MyDatabaseId, m->id, MyProcPid);
	if (PQserverVersion(exporter) >= 150000)
		sql = psprintf("CREATE_REPLICATION_SLOT %s TEMPORARY LOGICAL wal2json (SNAPSHOT 'export')",
					   slot);
	else
		sql = psprintf("CREATE_REPLICATION_SLOT %s TEMPORARY LOGICAL wal2json EXPORT_SNAPSHOT",
					   slot);
	pgstat_report_activity(STATE_RUNNING, "waiting for the source to create a replication slot");
	res = ingest_exec(exporter, sql, PGRES_TUPLES_OK,
					  "create a replication slot", info->password);
	pgstat_report_activity(STATE_IDLE, NULL);
	lsn = pstrdup(PQgetvalue(res, 0, 1));
	snapshot = pstrdup(PQgetvalue(res, 0, 2));
	PQclear(res);

	vals[0] = Int32GetDatum(m->id);
	vals[1] = CStringGetTextDatum(snapshot);
	vals[2] = CStringGetTextDatum(lsn);
	IN_TRANSACTION(
				   ingest_catalog_begin();
				   ingest_catalog_exec("UPDATE ingest.migration SET snapshot_name = $2,"
									   " snapshot_lsn = $3::pg_catalog.pg_lsn, updated_at = now()"
									   " WHERE id = $1", 3, types, vals, NULL);
				   ingest_catalog_end();
				   ingest_event(m->id, "INFO", "snapshot", NULL,
								psprintf("exported snapshot %s, consistent at %s", snapshot, lsn),
								NULL));
	m->snapshot_name = MemoryContextStrdup(TopMemoryContext, snapshot);
	m->snapshot_lsn = DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(lsn)));
}

static void
release_snapshot(void)
{
	if (exporter)
		ingest_disconnect(exporter);
	exporter = NULL;
}

/* A plain source session in the migration's snapshot. */
static PGconn *
snapshot_session(void)
{
	PGconn	   *conn;
	PGresult   *res;

	conn = ingest_connect_or_error(info, INGEST_CONN_SQL,
								   psprintf("pg_ingest %s coordinator", m->name));
	res = ingest_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
					  PGRES_COMMAND_OK, "begin a transaction", info->password);
	PQclear(res);
	res = ingest_exec(conn, psprintf("SET TRANSACTION SNAPSHOT %s",
									 quote_literal_cstr(m->snapshot_name)),
					  PGRES_COMMAND_OK, "import the snapshot", info->password);
	PQclear(res);
	return conn;
}

/* Values of the sequences in scope, as setval items. */
static List *
sequence_items(PGconn *conn, List *rels)
{
	StringInfoData sql;
	List	   *items = NIL;
	ListCell   *lc;
	int			n = 0;
	PGresult   *res;
	int			i;

	initStringInfo(&sql);
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);

		if (r->relkind != 'S' || !r->in_scope)
			continue;
		appendStringInfo(&sql, "%sSELECT %s, last_value, is_called FROM %s",
						 n++ ? " UNION ALL " : "",
						 quote_literal_cstr(ingest_qualified(r->nspname, r->relname)),
						 ingest_qualified(r->nspname, r->relname));
	}
	if (n == 0)
		return NIL;
	res = ingest_exec(conn, sql.data, PGRES_TUPLES_OK, "read the sequences",
					  info->password);
	for (i = 0; i < PQntuples(res); i++)
	{
		SchemaItem *it = palloc0(sizeof(SchemaItem));

		it->stage = STAGE_LAST;
		it->kind = "setval";
		it->statement = psprintf("SELECT pg_catalog.setval(%s, %s, %s)",
								 quote_literal_cstr(PQgetvalue(res, i, 0)),
								 PQgetvalue(res, i, 1),
								 PQgetvalue(res, i, 2)[0] == 't' ? "true" : "false");
		items = lappend(items, it);
	}
	PQclear(res);
	return items;
}

/* Materialized views the source has populated, to refresh at the end. */
static List *
populated_matviews(PGconn *conn)
{
	PGresult   *res = ingest_exec(conn,
								  "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)"
								  " FROM pg_catalog.pg_class c"
								  " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
								  " WHERE c.relkind = 'm' AND c.relispopulated",
								  PGRES_TUPLES_OK, "list materialized views", info->password);
	List	   *out = NIL;
	int			i;

	for (i = 0; i < PQntuples(res); i++)
		out = lappend(out, pstrdup(PQgetvalue(res, i, 0)));
	PQclear(res);
	return out;
}

static bool
string_in(List *list, const char *s)
{
	ListCell   *lc;

	foreach(lc, list)
		if (strcmp(lfirst(lc), s) == 0)
			return true;
	return false;
}

/* Record the copy items of the tables in scope. */
static void
store_copy_items(List *rels, int64 block_size)
{
	Oid			types[9] = {INT4OID, INT4OID, TEXTOID, TEXTOID, INT4OID, INT4OID,
	INT8OID, INT8OID, TEXTOID};
	Oid			types2[10];
	Datum		vals[10];
	char		nulls[10];
	ListCell   *lc;
	int32		id = 0;

	memcpy(types2, types, sizeof(types));
	types2[9] = INT8OID;
	ingest_catalog_begin();
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);
		int64		pages = r->bytes_main / block_size;
		int64		per_part = m->split_bytes / block_size;
		int			parts = 1;
		int			p;

		if (r->relkind != 'r' || !r->in_scope)
			continue;
		if (m->split_bytes > 0 && per_part > 0 && r->bytes_main > m->split_bytes)
			parts = (int) ((pages + per_part - 1) / per_part);
		for (p = 0; p < parts; p++)
		{
			int64		from = p * per_part;
			int64		to = (p + 1) * per_part;
			int64		bytes;

			memset(nulls, ' ', sizeof(nulls));
			vals[0] = Int32GetDatum(m->id);
			vals[1] = Int32GetDatum(++id);
			vals[2] = CStringGetTextDatum(r->nspname);
			vals[3] = CStringGetTextDatum(r->relname);
			vals[4] = Int32GetDatum(p + 1);
			vals[5] = Int32GetDatum(parts);
			if (parts == 1)
			{
				nulls[6] = nulls[7] = 'n';
				bytes = r->bytes_table;
			}
			else
			{
				vals[6] = Int64GetDatum(from);
				if (p == parts - 1)
				{
					nulls[7] = 'n';
					to = pages;
				}
				else
					vals[7] = Int64GetDatum(to);
				bytes = pages > 0 ? r->bytes_table * (to - from) / pages : 0;
			}
			vals[8] = CStringGetTextDatum(r->columns);
			vals[9] = Int64GetDatum(bytes);
			ingest_catalog_exec("INSERT INTO ingest.copy_item (migration_id, id, nspname, relname,"
								" part, parts, page_from, page_to, columns, bytes_total, use_freeze)"
								" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $6 = 1)",
								10, types2, vals, nulls);
		}
	}
	ingest_catalog_end();
}

/* ANALYZE items: tables after their indexes, partitioned roots at the end. */
static List *
analyze_items(List *rels)
{
	List	   *items = NIL;
	ListCell   *lc;

	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);
		SchemaItem *it;

		if (!r->in_scope || !ingest_is_table(r->relkind))
			continue;
		/* a partition is analyzed with its root */
		if (r->root_rel != NULL)
			continue;
		it = palloc0(sizeof(SchemaItem));
		it->kind = "analyze";
		it->nspname = r->nspname;
		it->relname = r->relname;
		it->cost = r->bytes_table;
		it->stage = r->relkind == 'p' ? STAGE_FOREIGN_KEY : STAGE_CONSTRAINT;
		it->statement = psprintf("ANALYZE %s", ingest_qualified(r->nspname, r->relname));
		items = lappend(items, it);
	}
	return items;
}

/*
 * phase_starting
 *		Snapshot, source catalog, copy items, pre-data.
 */
static void
phase_starting(void)
{
	PGconn	   *conn;
	PGresult   *res;
	List	   *rels;
	List	   *matviews;
	List	   *sequences;
	List	   *items = NIL;
	int64		block_size;
	SplitContext ctx;
	ListCell   *lc;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};

	/* what an interrupted earlier attempt left */
	IN_TRANSACTION(
				   ingest_catalog_begin();
				   ingest_catalog_exec("DELETE FROM ingest.copy_item WHERE migration_id = $1",
									   1, types, vals, NULL);
				   ingest_catalog_exec("DELETE FROM ingest.schema_item WHERE migration_id = $1",
									   1, types, vals, NULL);
				   ingest_catalog_exec("UPDATE ingest.migration SET postdata_loaded = false"
									   " WHERE id = $1", 1, types, vals, NULL);
				   ingest_catalog_end());
	m->postdata_loaded = false;

	export_snapshot();
	conn = snapshot_session();
	PG_TRY();
	{
		res = ingest_exec(conn, "SELECT current_setting('block_size')::bigint",
						  PGRES_TUPLES_OK, "read the block size", info->password);
		block_size = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		rels = ingest_source_relations(conn, true, info->password);
		ingest_apply_filters(rels, filters);
		sequences = sequence_items(conn, rels);
		matviews = populated_matviews(conn);
		res = ingest_exec(conn, "COMMIT", PGRES_COMMAND_OK, "end the transaction",
						  info->password);
		PQclear(res);
	}
	PG_FINALLY();
	{
		ingest_disconnect(conn);
	}
	PG_END_TRY();

	memset(&ctx, 0, sizeof(ctx));
	ctx.rels = rels;
	ctx.exclude_extensions = filters->exclude_extensions;
	ctx.migration_id = m->id;
	if (strcmp(m->schema_mode, "copy") == 0)
	{
		char	   *dump = ingest_pg_dump(m, info, m->snapshot_name, "pre-data",
										  rels, filters);

		IN_TRANSACTION(items = ingest_split_dump(dump, false, &ctx));
	}
	else
	{
		/* the target has the schema: refresh in the source's order */
		foreach(lc, rels)
		{
			SourceRel  *r = lfirst(lc);

			if (r->relkind == 'm' && r->in_scope)
				ctx.matviews = lappend(ctx.matviews,
									   ingest_qualified(r->nspname, r->relname));
		}
	}

	items = list_concat(items, analyze_items(rels));
	foreach(lc, ctx.matviews)
	{
		SchemaItem *it;

		if (!string_in(matviews, lfirst(lc)))
			continue;
		it = palloc0(sizeof(SchemaItem));
		it->stage = STAGE_LAST;
		it->kind = "refresh";
		it->statement = psprintf("REFRESH MATERIALIZED VIEW %s", (char *) lfirst(lc));
		items = lappend(items, it);
	}
	items = list_concat(items, sequences);

	ingest_xact_start();
	store_copy_items(rels, block_size);
	ingest_store_schema_items(m->id, items);
	ingest_set_phase(m, "schema");
	ingest_xact_commit();
}

static void
phase_schema(void)
{
	bool		pending;

	if (strcmp(m->schema_mode, "copy") == 0)
		(void) ingest_run_schema_items(m, STAGE_PRE_DATA, STAGE_PRE_DATA, &pending);
	set_phase("copying");
}

/* Take the post-data section, under the snapshot, and store its items. */
static void
load_post_data(void)
{
	char	   *dump;
	PGconn	   *conn;
	List	   *rels;
	SplitContext ctx;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};

	conn = snapshot_session();
	PG_TRY();
	{
		rels = ingest_source_relations(conn, true, info->password);
		ingest_apply_filters(rels, filters);
	}
	PG_FINALLY();
	{
		ingest_disconnect(conn);
	}
	PG_END_TRY();

	dump = ingest_pg_dump(m, info, m->snapshot_name, "post-data", rels, filters);
	memset(&ctx, 0, sizeof(ctx));
	ctx.rels = rels;
	ctx.exclude_extensions = filters->exclude_extensions;
	ctx.migration_id = m->id;

	ingest_xact_start();
	ingest_store_schema_items(m->id, ingest_split_dump(dump, true, &ctx));
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET postdata_loaded = true WHERE id = $1",
						1, types, vals, NULL);
	ingest_catalog_end();
	ingest_xact_commit();
	m->postdata_loaded = true;
}

static int
running(BackgroundWorkerHandle **handles, int n)
{
	int			i;
	int			alive = 0;

	for (i = 0; i < n; i++)
	{
		pid_t		pid;

		if (handles[i] == NULL)
			continue;
		if (GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED)
		{
			pfree(handles[i]);
			handles[i] = NULL;
		}
		else
			alive++;
	}
	return alive;
}

/* Start workers of a kind up to want; false if none could start. */
static void
launch(IngestWorkerKind kind, BackgroundWorkerHandle **handles, int want)
{
	int			i;
	static bool warned = false;

	for (i = 0; i < Min(want, INGEST_MAX_JOBS); i++)
	{
		MemoryContext old;
		bool		started;

		if (handles[i] != NULL)
			continue;
		/* the handle lives as long as the worker, across phases */
		old = MemoryContextSwitchTo(TopMemoryContext);
		started = ingest_start_worker(kind, my_slot, i + 1, MyDatabaseId, m->id,
									  m->owner, &handles[i]);
		MemoryContextSwitchTo(old);
		if (!started)
		{
			handles[i] = NULL;
			if (!warned)
				IN_TRANSACTION(ingest_event(m->id, "WARNING", "workers", NULL,
											psprintf("could not start every %s worker: no background worker slot free",
													 ingest_worker_kind_name(kind)),
											"Raise max_worker_processes; pg_ingest goes on with fewer workers."));
			warned = true;
			break;
		}
	}
}

/* Copy progress: bytes of finished items plus those in flight. */
static void
sample_rate(void)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		bytes = pg_atomic_read_u64(&me->bytes_received);
	int			i;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	for (i = 0; i < IngestShared->nworkers; i++)
	{
		IngestWorkerSlot *w = &IngestShared->workers[i];

		if (w->pid != 0 && w->migration == my_slot && w->kind == INGEST_WORKER_COPY &&
			w->item_id != 0)
			bytes += pg_atomic_read_u64(&w->bytes);
	}
	LWLockRelease(IngestShared->lock);

	if (rate_at != 0)
	{
		double		secs = (double) (now - rate_at) / USECS_PER_SEC;

		if (secs > 0.2)
		{
			double		rate = bytes >= rate_bytes ? (bytes - rate_bytes) / secs : 0;

			me->copy_rate = me->copy_rate == 0 ? rate : 0.5 * me->copy_rate + 0.5 * rate;
			rate_at = now;
			rate_bytes = bytes;
		}
	}
	else
	{
		rate_at = now;
		rate_bytes = bytes;
	}
}

static int64
pending_copies(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};
	SPITupleTable *tab;
	int64		n = 0;

	IN_TRANSACTION(
				   ingest_catalog_begin();
				   tab = ingest_catalog_query("SELECT count(*) FROM ingest.copy_item"
											  " WHERE migration_id = $1 AND state <> 'done'",
											  1, types, vals, NULL);
				   n = ingest_getint(tab, 0, 1, 0);
				   ingest_catalog_end());
	return n;
}

/* Whether the migration has been failed (by a worker) or aborted. */
static bool
stopped(void)
{
	char	   *phase = current_phase();

	if (ingest_phase_is_terminal(phase))
	{
		m->phase = phase;
		return true;
	}
	return false;
}

static void
wait_a_moment(void)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 1000L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static void
ensure_index_workers(void)
{
	int64		pending;

	if (!m->postdata_loaded && strcmp(m->schema_mode, "copy") == 0)
		return;
	IN_TRANSACTION(pending = ingest_count_pending(m->id, STAGE_INDEX, STAGE_FOREIGN_KEY));
	if (pending > 0 && running(index_workers, INGEST_MAX_JOBS) < m->index_jobs)
		launch(INGEST_WORKER_INDEX, index_workers, m->index_jobs);
}

static void
phase_copying(void)
{
	int64		pending = pending_copies();

	if (pending > 0 && exporter == NULL)
		export_snapshot();

	while (pending > 0)
	{
		if (running(copy_workers, INGEST_MAX_JOBS) < Min(m->table_jobs, pending))
			launch(INGEST_WORKER_COPY, copy_workers, Min(m->table_jobs, pending));
		if (!m->postdata_loaded && strcmp(m->schema_mode, "copy") == 0)
			load_post_data();
		ensure_index_workers();
		sample_rate();
		wait_a_moment();
		if (stopped())
			return;
		pending = pending_copies();
	}

	/* every table is copied: the snapshot has served */
	if (!m->postdata_loaded && strcmp(m->schema_mode, "copy") == 0)
	{
		if (exporter == NULL)
			export_snapshot();
		load_post_data();
	}
	release_snapshot();
	me->copy_rate = 0;
	set_phase("indexing");
}

static void
phase_indexing(void)
{
	int64		pending;

	for (;;)
	{
		IN_TRANSACTION(pending = ingest_count_pending(m->id, STAGE_INDEX, STAGE_FOREIGN_KEY));
		if (pending == 0)
			break;
		ensure_index_workers();
		wait_a_moment();
		if (stopped())
			return;
	}
	/* index workers leave once nothing is pending; wait for the last */
	while (running(index_workers, INGEST_MAX_JOBS) > 0)
		wait_a_moment();
	set_phase("finalizing");
}

static void
phase_finalizing(void)
{
	bool		pending;
	int			round;

	/*
	 * Stage 5 in order; a REFRESH that needs a materialized view not yet
	 * populated waits for the next round.
	 */
	for (round = 0; round < 3; round++)
	{
		(void) ingest_run_schema_items(m, STAGE_LAST, STAGE_LAST, &pending);
		if (!pending)
			break;
	}
	set_phase("completed");
}

/* The summary event of a finished migration. */
static void
completed(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};
	SPITupleTable *tab;

	IN_TRANSACTION(
				   ingest_catalog_begin();
				   tab = ingest_catalog_query(
											  "SELECT pg_catalog.format('%s tables, %s rows, %s in %s; %s errors',"
											  " (SELECT count(DISTINCT (nspname, relname)) FROM ingest.copy_item WHERE migration_id = $1),"
											  " (SELECT COALESCE(sum(rows_done), 0) FROM ingest.copy_item WHERE migration_id = $1),"
											  " pg_catalog.pg_size_pretty((SELECT COALESCE(sum(bytes_total), 0) FROM ingest.copy_item WHERE migration_id = $1)),"
											  " pg_catalog.date_trunc('second', m.finished_at - m.started_at), m.errors)"
											  " FROM ingest.migration m WHERE m.id = $1",
											  1, types, vals, NULL);
				   ingest_event(m->id, "INFO", "summary", NULL,
								psprintf("migration completed: %s", ingest_getstr(tab, 0, 1)),
								NULL);
				   ingest_catalog_end());
}

/* Stop the workers and end this coordinator for good. */
static void
finish(void)
{
	(void) ingest_signal_workers(my_slot, INGEST_WORKER_NONE, SIGTERM, true);
	(void) ingest_wait_workers_gone(my_slot, 30000L);
	release_snapshot();
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	me->terminal = true;
	LWLockRelease(IngestShared->lock);
	ingest_wake_supervisor();
	proc_exit(0);
}

/*
 * Record an error of the coordinator; fail the migration once it has
 * happened more than pg_ingest.max_retries times.
 */
static void
coordinator_failed(ErrorData *edata)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};
	bool		give_up = m->restarts + 1 > ingest_max_retries;

	ingest_xact_start();
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET restarts = restarts + 1 WHERE id = $1",
						1, types, vals, NULL);
	ingest_catalog_end();
	if (give_up)
		ingest_fail_migration(m, psprintf("%s (phase %s, after %d attempts)",
										  edata->message, m->phase, m->restarts + 1));
	else
		ingest_event(m->id, "WARNING", "retry", NULL,
					 psprintf("coordinator error in phase %s, restarting (attempt %d of %d): %s",
							  m->phase, m->restarts + 1, ingest_max_retries, edata->message),
					 edata->detail);
	ingest_xact_commit();
	if (give_up)
		finish();
}

/*
 * ingest_coordinator_main
 *		Entry point of a coordinator.
 */
void
ingest_coordinator_main(Datum main_arg)
{
	int32		migration_id;
	MemoryContext cxt;

	ingest_worker_init(main_arg, INGEST_WORKER_COORDINATOR, &my_slot, &migration_id);
	me = &IngestShared->migrations[my_slot];

	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	if (me->coordinator_pid != 0 && me->coordinator_pid != MyProcPid &&
		kill(me->coordinator_pid, 0) == 0)
	{
		LWLockRelease(IngestShared->lock);
		proc_exit(0);			/* another one is at work */
	}
	me->coordinator_pid = MyProcPid;
	LWLockRelease(IngestShared->lock);
	on_shmem_exit(coordinator_on_exit, (Datum) 0);

	/* workers of an earlier coordinator of this migration */
	(void) ingest_signal_workers(my_slot, INGEST_WORKER_NONE, SIGTERM, true);
	(void) ingest_wait_workers_gone(my_slot, 30000L);

	cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest coordinator",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(TopMemoryContext);
	ingest_xact_start();
	m = ingest_load_migration(migration_id);
	filters = ingest_load_filters(migration_id);
	info = ingest_conninfo_parse(m->source, !superuser_arg(m->owner), NULL, NULL);
	ingest_xact_commit();
	MemoryContextSwitchTo(cxt);

	PG_TRY();
	{
		for (;;)
		{
			const char *phase = m->phase;

			MemoryContextSwitchTo(cxt);
			if (strcmp(phase, "starting") == 0)
				phase_starting();
			else if (strcmp(phase, "schema") == 0)
				phase_schema();
			else if (strcmp(phase, "copying") == 0)
				phase_copying();
			else if (strcmp(phase, "indexing") == 0)
				phase_indexing();
			else if (strcmp(phase, "finalizing") == 0)
				phase_finalizing();
			else if (strcmp(phase, "completed") == 0)
			{
				completed();
				break;
			}
			else if (ingest_phase_is_terminal(phase))
				break;
			else
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("phase \"%s\" is not supported yet", phase)));
			MemoryContextReset(cxt);
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		ingest_catalog_reset();
		MemoryContextSwitchTo(TopMemoryContext);
		ereport(LOG,
				(errmsg("pg_ingest coordinator of migration \"%s\": %s", m->name,
						edata->message),
				 edata->context ? errcontext("%s", edata->context) : 0,
				 edata->internalquery ? errdetail_internal("query: %s", edata->internalquery) : 0));
		release_snapshot();
		coordinator_failed(edata);
		proc_exit(1);
	}
	PG_END_TRY();

	finish();
}
