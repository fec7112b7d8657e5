/*-------------------------------------------------------------------------
 *
 * coordinator.c
 *	  The coordinator: one background worker per migration, which takes it
 *	  through its phases and launches the copy and index workers.
 *
 *	starting	export a snapshot from a replication slot on the source, read
 *				the source's catalog under it, record the copy items (plan.c:
 *				tables split into ctid page ranges above
 *				split_tables_larger_than, which 'auto' sizes from the bytes
 *				to copy and table_jobs; large objects as OID ranges, see
 *				largeobject.c), and
 *				the schema items of both sections: one pg_dump of the
 *				schema under the snapshot (one read of the source's
 *				catalog), split by pg_restore into pre-data and post-data;
 *	schema		run the pre-data statements, in order;
 *	copying		the copy workers copy under the snapshot; meanwhile the
 *				index workers build each table's indexes as soon as the
 *				table is copied;
 *	indexing	the copy is done and the snapshot released; indexes,
 *				constraints, foreign keys go on;
 *	finalizing	the remaining statements (triggers, rules, policies...),
 *				REFRESH MATERIALIZED VIEW, setval of every sequence
 *				(named here, not by the source's text; one that
 *				belongs to an extension here is refused, unless it is
 *				a configuration sequence of it: extconfig.c);
 *	completed.
 *
 * Each phase resumes where it stopped: everything done is recorded in the
 * same transaction that did it.  What a restart loses (the snapshot of the
 * copy) is recovered by recovery.c, which also counts the coordinator's
 * own errors: after pg_ingest.max_retries restarts the migration fails.
 *
 * This file is the phase machine.  The other roles of the coordinator live
 * in their own files, each called from here:
 *	plan.c		planning: the copy items, the sequences' values, ANALYZE;
 *	snapshot.c	the migration's slot, the exported snapshot and the idle
 *				session that keeps it;
 *	pool.c		the copy, index, receiver and applier workers it runs;
 *	rates.c		the copy and apply rates of ingest.status;
 *	recovery.c	the copy after a restart or a lost snapshot, the count of
 *				its errors;
 *	stop.c		the stop protocol of change data capture.
 *
 * State: the migration's row in ingest.migration (its phase: the catalog
 * is the truth, MyMigration->phase what this process last read), its copy
 * and schema items; in shared memory its migration slot (MyMigrationSlot:
 * coordinator_pid, paused, terminal, the rates).
 *
 * Locking: IngestShared->lock exclusive to claim the slot's coordinator_pid
 * and to set terminal; otherwise the slot's fields are written as
 * pg_ingest.h says (ingest_slot_set_flag, atomics).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "replication/origin.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "citus.h"
#include "conn.h"
#include "coordinator.h"
#include "copy.h"
#include "depend.h"
#include "extconfig.h"
#include "ddl.h"
#include "pg_ingest.h"
#include "plan.h"
#include "receiver.h"
#include "resync.h"
#include "schema.h"
#include "snapshot.h"
#include "source.h"
#include "target.h"

/* memory of one turn of a monitoring loop */
static MemoryContext tick_cxt = NULL;

static void
tick(void)
{
	if (tick_cxt == NULL)
		tick_cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest coordinator tick",
										 ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(tick_cxt);
	MemoryContextSwitchTo(tick_cxt);
}

static bool stopped(void);
static void ensure_receiver(void);

static void
coordinator_on_exit(int code, Datum arg)
{
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	if (MyMigrationSlot->coordinator_pid == MyProcPid)
		MyMigrationSlot->coordinator_pid = 0;
	LWLockRelease(IngestShared->lock);
}


/*
 * Keep the phase read from the catalog in m->phase.  It lives as long as
 * m (TopMemoryContext), so it is copied only when it changed: the loops
 * read the phase every second.
 */
static void
remember_phase(const char *phase)
{
	if (MyMigration->phase != NULL && strcmp(MyMigration->phase, phase) == 0)
		return;
	MyMigration->phase = MemoryContextStrdup(TopMemoryContext, phase);
}

/*
 * How long a coordinator must run before the crashes counted so far
 * (supervisor.c) stop counting as "in a row": a migration that streams for
 * days is not failed by server crashes that are weeks apart, or that had
 * nothing to do with it.
 */
#define CRASH_FORGET_MS		(60 * 1000)

static char *
current_phase(void)
{
	IngestMigration *now;
	char	   *phase;
	static TimestampTz started = 0;
	static bool crashes_forgotten = false;

	if (started == 0)
		started = GetCurrentTimestamp();
	ingest_xact_start();
	now = ingest_load_migration(MyMigration->id);
	phase = pstrdup(now->phase);
	if (!crashes_forgotten &&
		TimestampDifferenceExceeds(started, GetCurrentTimestamp(), CRASH_FORGET_MS))
	{
		Oid			types[1] = {INT4OID};
		Datum		vals[1] = {Int32GetDatum(MyMigration->id)};

		ingest_catalog_begin();
		ingest_catalog_exec("UPDATE ingest.migration SET crashes = 0 WHERE id = $1 AND crashes > 0",
							1, types, vals, NULL);
		ingest_catalog_end();
		crashes_forgotten = true;
	}
	ingest_xact_commit();
	return phase;
}

static void
set_phase(const char *phase)
{
	IN_TRANSACTION(ingest_set_phase(MyMigration, phase, MyMigration->phase));
}

static bool
cdc_mode(void)
{
	return strcmp(MyMigration->mode, "full-load") != 0;
}


/* In the transaction that stores the post-data items: they are in. */
static void
mark_post_data_loaded(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(MyMigration->id)};

	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET postdata_loaded = true WHERE id = $1",
						1, types, vals, NULL);
	ingest_catalog_end();
	MyMigration->postdata_loaded = true;
}

/*
 * phase_starting_cdc
 *		Mode cdc: the target holds the data already (the operator says so);
 *		a new slot, and every table in scope treated as copied at its
 *		consistent point.
 */
static void
phase_starting_cdc(void)
{
	PGconn	   *conn;
	List	   *rels = NIL;
	ListCell   *lc;
	Oid			types[6] = {INT4OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		vals[6];
	char		nulls[6];
	int32		id = 0;

	ingest_snapshot_create_slot(MyMigration, MySource, false);
	ingest_snapshot_release();
	WITH_SOURCE_SESSION(conn, MySource, INGEST_CONN_SQL,
						psprintf("pg_ingest %s coordinator", MyMigration->name), NULL,
	{
		rels = ingest_source_relations(conn, false, MySource->password);
	});
	ingest_apply_filters(rels, MyFilters);

	ingest_xact_start();
	ingest_catalog_begin();
	vals[0] = Int32GetDatum(MyMigration->id);
	ingest_catalog_exec("DELETE FROM ingest.copy_item WHERE migration_id = $1",
						1, types, vals, NULL);
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);

		if (r->relkind != 'r' || !r->in_scope)
			continue;
		vals[1] = Int32GetDatum(++id);
		vals[2] = CStringGetTextDatum(r->nspname);
		vals[3] = CStringGetTextDatum(r->relname);
		/* a leaf partition's root: its target table if the leaf is not there */
		memset(nulls, ' ', sizeof(nulls));
		vals[4] = r->root_nsp ? CStringGetTextDatum(r->root_nsp) : (Datum) 0;
		vals[5] = r->root_rel ? CStringGetTextDatum(r->root_rel) : (Datum) 0;
		nulls[4] = nulls[5] = r->root_rel ? ' ' : 'n';
		ingest_catalog_exec("INSERT INTO ingest.copy_item (migration_id, id, nspname, relname,"
							" columns, bytes_total, state, sync_lsn, root_nspname, root_relname)"
							" SELECT $1, $2, $3, $4, '', 0, 'skipped', m.slot_lsn, $5, $6"
							" FROM ingest.migration m WHERE m.id = $1",
							6, types, vals, nulls);
	}
	ingest_catalog_end();
	ingest_resync_record(MyMigration, rels);
	ingest_event(MyMigration->id, "INFO", "start", NULL,
				 psprintf("mode cdc: %d tables taken as they are on the target, changes from %X/%X on",
						  id, LSN_FORMAT_ARGS(MyMigration->slot_lsn)),
				 NULL);
	ingest_set_phase(MyMigration, "catching_up", "starting");
	ingest_xact_commit();
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
	List	   *post_items = NIL;
	bool		post_loaded = false;
	List	   *lo_ranges;
	List	   *left_out = NIL;
	int64		block_size;
	SplitContext ctx;
	ListCell   *lc;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(MyMigration->id)};

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
	MyMigration->postdata_loaded = false;

	/* schema changes: the event trigger goes in before the slot (ddl.c) */
	if (cdc_mode())
		ingest_ddl_install(MyMigration, MySource);

	if (strcmp(MyMigration->mode, "cdc") == 0)
	{
		phase_starting_cdc();
		return;
	}
	if (cdc_mode())
		ingest_snapshot_create_slot(MyMigration, MySource, true);
	else
		ingest_snapshot_export(MyMigration, MySource);
	conn = ingest_snapshot_session(MyMigration, MySource);
	PG_TRY();
	{
		res = ingest_exec(conn, "SELECT current_setting('block_size')::bigint",
						  PGRES_TUPLES_OK, "read the block size", MySource->password);
		block_size = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		rels = ingest_source_relations(conn, true, MySource->password);
		ingest_apply_filters(rels, MyFilters);
		left_out = ingest_left_out_dependents(conn, rels, MyFilters, MySource->password);
		sequences = ingest_plan_sequences(conn, rels, MySource->password);
		matviews = ingest_source_matviews(conn, MySource->password);
		lo_ranges = ingest_lo_ranges(conn, MySource->password, MyMigration->table_jobs);
		res = ingest_exec(conn, "COMMIT", PGRES_COMMAND_OK, "end the transaction",
						  MySource->password);
		PQclear(res);
	}
	PG_FINALLY();
	{
		ingest_disconnect(conn);
	}
	PG_END_TRY();

	memset(&ctx, 0, sizeof(ctx));
	ctx.rels = rels;
	ctx.exclude_extensions = MyFilters->exclude_extensions;
	ctx.migration_id = MyMigration->id;
	ctx.left_out = left_out;
	if (strcmp(MyMigration->schema_mode, "copy") == 0)
	{
		char	   *pre_data;
		char	   *post_data;
		SplitContext post_ctx;

		/* one pg_dump for both sections, stored together */
		ingest_pg_dump_sections(MyMigration, MySource, MyMigration->snapshot_name, rels, MyFilters,
								&pre_data, &post_data);
		post_ctx = ctx;
		IN_TRANSACTION(items = ingest_split_dump(pre_data, false, &ctx);
					   post_items = ingest_split_dump(post_data, true, &post_ctx));
		post_loaded = true;
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

	items = list_concat(items, ingest_plan_analyze_items(rels));
	foreach(lc, ctx.matviews)
	{
		SchemaItem *it;

		if (!ingest_string_in(matviews, lfirst(lc)))
			continue;
		it = palloc0(sizeof(SchemaItem));
		it->stage = STAGE_LAST;
		it->kind = "refresh";
		it->statement = psprintf("REFRESH MATERIALIZED VIEW %s", (char *) lfirst(lc));
		items = lappend(items, it);
	}
	/* with change data capture, sequences are set at the stop */
	if (!cdc_mode())
		items = list_concat(items, sequences);

	ingest_xact_start();
	ingest_plan_copy_items(MyMigration, rels, block_size);
	ingest_lo_store_items(MyMigration->id, lo_ranges);
	/* statistics for the claim queries (copy.c, schema.c): never guessed */
	ingest_catalog_begin();
	ingest_catalog_exec("ANALYZE ingest.copy_item", 0, NULL, NULL, NULL);
	ingest_set_copy_order(MyMigration->id);
	ingest_catalog_end();
	ingest_resync_record(MyMigration, rels);
	ingest_store_schema_items(MyMigration->id, list_concat(items, post_items));
	if (post_loaded)
		mark_post_data_loaded();
	ingest_set_phase(MyMigration, "schema", "starting");
	ingest_xact_commit();
}

static void
phase_schema(void)
{
	bool		pending;

	if (strcmp(MyMigration->schema_mode, "copy") == 0)
	{
		(void) ingest_run_schema_items(MyMigration, STAGE_PRE_DATA, STAGE_PRE_DATA, &pending);
		/* the map of distribute =>: Citus tables before the copy (citus.c) */
		ingest_citus_distribute(MyMigration);
	}
	set_phase("copying");
}

static int64
pending_copies(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(MyMigration->id)};
	SPITupleTable *tab;
	int64		n = 0;

	IN_TRANSACTION(
				   ingest_catalog_begin();
				   tab = ingest_catalog_query("SELECT count(*) FROM ingest.copy_item"
											  " WHERE migration_id = $1 AND state NOT IN ('done', 'skipped')",
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
		remember_phase(phase);
		return true;
	}
	return false;
}

/* A second, or less when a worker or the snapshot's session has news. */
static void
wait_a_moment(void)
{
	pgsocket	sock = ingest_snapshot_socket();

	if (sock != PGINVALID_SOCKET)
		(void) WaitLatchOrSocket(MyLatch,
								 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH |
								 WL_SOCKET_READABLE,
								 sock, 1000L, PG_WAIT_EXTENSION);
	else
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static void
ensure_index_workers(void)
{
	int64		pending;

	/*
	 * The start stores the post-data items with the pre-data ones.  A
	 * migration begun by a library before 0.2.0, which took the post-data
	 * section later, has none: going on would complete it without its
	 * indexes, keys and foreign keys.
	 */
	if (!MyMigration->postdata_loaded && strcmp(MyMigration->schema_mode, "copy") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("migration \"%s\" was started by an earlier pg_ingest that had not yet taken the post-data section of the schema",
						MyMigration->name),
				 errdetail("This pg_ingest takes it when a migration starts; without it the indexes, keys and foreign keys would be missing."),
				 errhint("Abort the migration with ingest.abort() and start it again.")));
	IN_TRANSACTION(pending = ingest_count_pending(MyMigration->id, STAGE_INDEX, STAGE_FOREIGN_KEY));
	if (pending > 0)
		ingest_pool_ensure(INGEST_WORKER_INDEX, MyMigration->index_jobs);
}

static void
phase_copying(void)
{
	MemoryContext phase_cxt = CurrentMemoryContext;
	int64		pending = pending_copies();

	if (pending > 0 && !ingest_snapshot_held())
	{
		/* the snapshot of the start is gone: a restart */
		ingest_recover_copy();
	}

	while (pending > 0)
	{
		tick();
		ensure_receiver();
		if (!ingest_recover_snapshot(stopped))
		{
			MemoryContextSwitchTo(phase_cxt);
			return;
		}
		ingest_pool_ensure(INGEST_WORKER_COPY, Min(MyMigration->table_jobs, pending));
		ensure_index_workers();
		ingest_rate_sample_copy();
		wait_a_moment();
		if (stopped())
		{
			MemoryContextSwitchTo(phase_cxt);
			return;
		}
		pending = pending_copies();
	}
	MemoryContextSwitchTo(phase_cxt);

	/* every table is copied: the snapshot has served */
	ingest_snapshot_release();
	ingest_slot_set_rate(&MyMigrationSlot->copy_rate, 0);
	set_phase("indexing");
}

static void
phase_indexing(void)
{
	MemoryContext phase_cxt = CurrentMemoryContext;
	int64		pending;

	for (;;)
	{
		tick();
		IN_TRANSACTION(pending = ingest_count_pending(MyMigration->id, STAGE_INDEX, STAGE_FOREIGN_KEY));
		if (pending == 0)
			break;
		ensure_index_workers();
		ensure_receiver();
		wait_a_moment();
		if (stopped())
		{
			MemoryContextSwitchTo(phase_cxt);
			return;
		}
	}
	MemoryContextSwitchTo(phase_cxt);
	/* index workers leave once nothing is pending; wait for the last */
	while (ingest_pool_running(INGEST_WORKER_INDEX) > 0)
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
		ensure_receiver();
		(void) ingest_run_schema_items(MyMigration, STAGE_LAST, STAGE_LAST, &pending);
		if (!pending)
			break;
	}
	set_phase(cdc_mode() ? "catching_up" : "completed");
}

/* Start the change receiver if it does not run (change data capture). */
static void
ensure_receiver(void)
{
	if (cdc_mode())
		ingest_pool_ensure_single(INGEST_WORKER_RECEIVER);
}

/* Whether the applier has caught up: ingest.status's caught_up. */
static bool
caught_up(void)
{
	bool		result;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	result = ingest_stream_caught_up(MyMigrationSlot, GetCurrentTimestamp());
	LWLockRelease(IngestShared->lock);
	return result;
}

/*
 * phase_streaming
 *		catching_up, streaming, stopping, paused: the receiver and the
 *		applier run; the coordinator watches for caught-up, the stop, a
 *		pause or a failure, and keeps the sequences current (sequence.c).
 */
static void
phase_streaming(void)
{
	MemoryContext phase_cxt = CurrentMemoryContext;

	for (;;)
	{
		char	   *phase;

		tick();
		phase = current_phase();
		if (ingest_phase_is_terminal(phase))
		{
			remember_phase(phase);
			break;
		}
		/* the flag follows the phase (the commit of a pause or resume sets
		 * it too, slots.c): a change reaches the applier at once */
		if (MyMigrationSlot->paused != (strcmp(phase, "paused") == 0))
		{
			ingest_slot_set_flag(&MyMigrationSlot->paused, strcmp(phase, "paused") == 0);
			ingest_wake_workers(MyMigrationSlotNo, INGEST_WORKER_APPLIER);
		}
		remember_phase(phase);
		ingest_stop_record_request();

		if (MyMigrationSlot->reached_stop)
		{
			ingest_stop_finish_stream();
			set_phase("completed");
			break;
		}
		ensure_receiver();
		ingest_pool_ensure_single(INGEST_WORKER_APPLIER);
		ingest_sequence_sync(MyMigration, MySource, MyFilters, phase);

		if (strcmp(phase, "catching_up") == 0 && caught_up())
		{
			IN_TRANSACTION(
						   ingest_set_phase(MyMigration, "streaming", "catching_up");
						   ingest_event(MyMigration->id, "INFO", "caught_up", NULL,
										psprintf("caught up: applied up to %X/%X",
												 LSN_FORMAT_ARGS(pg_atomic_read_u64(&MyMigrationSlot->applied_lsn))),
										NULL);
						   ingest_notify(MyMigration, "caught_up", "the target has caught up with the source"));
		}
		ingest_rate_sample_apply();
		wait_a_moment();
	}
	MemoryContextSwitchTo(phase_cxt);
}

/*
 * The summary event of a finished migration.  Every object recorded at the
 * start as not carried (kind 'not carried': unlogged tables, large
 * objects, ...) gets its WARNING again, so that the completion is never
 * silent about what the target lacks; once, even if this runs again.
 */
static void
completed(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(MyMigration->id)};
	SPITupleTable *tab;

	IN_TRANSACTION(
				   ingest_catalog_begin();
				   ingest_catalog_exec("INSERT INTO ingest.events"
									   " (migration_id, name, phase, level, kind, object, message, detail)"
									   " SELECT m.id, m.name, m.phase, 'WARNING', 'not carried', e.object,"
									   "  'completed without it: ' || e.message, e.detail"
									   " FROM ingest.migration m"
									   " CROSS JOIN LATERAL (SELECT DISTINCT ON (o.object, o.message)"
									   "   o.object, o.message, o.detail, o.id FROM ingest.events o"
									   "   WHERE o.migration_id = m.id AND o.kind = 'not carried'"
									   "   AND o.phase IS DISTINCT FROM 'completed'"
									   "   ORDER BY o.object, o.message, o.id) e"
									   " WHERE m.id = $1 AND NOT EXISTS (SELECT 1 FROM ingest.events d"
									   "  WHERE d.migration_id = m.id AND d.kind = 'not carried'"
									   "  AND d.phase = 'completed')"
									   " ORDER BY e.id",
									   1, types, vals, NULL);
				   tab = ingest_catalog_query(
											  "SELECT pg_catalog.format('%s tables, %s rows%s, %s in %s; %s errors%s',"
											  " (SELECT count(DISTINCT (nspname, relname)) FROM ingest.copy_item WHERE migration_id = $1"
											  "  AND (nspname, relname) <> ('pg_catalog', 'pg_largeobject')),"
											  " (SELECT COALESCE(sum(rows_done), 0) FROM ingest.copy_item WHERE migration_id = $1"
											  "  AND (nspname, relname) <> ('pg_catalog', 'pg_largeobject')),"
											  /* large objects: copy items of pg_largeobject (largeobject.c) */
											  " (SELECT ', ' || sum(rows_done) || ' large objects' FROM ingest.copy_item"
											  "  WHERE migration_id = $1 AND (nspname, relname) = ('pg_catalog', 'pg_largeobject')"
											  "  HAVING sum(rows_done) > 0),"
											  " pg_catalog.pg_size_pretty((SELECT COALESCE(sum(bytes_total), 0) FROM ingest.copy_item WHERE migration_id = $1)),"
											  " pg_catalog.date_trunc('second', m.finished_at - m.started_at), m.errors,"
											  " (SELECT '; ' || count(*) || ' objects not carried (WARNING events)'"
											  "  FROM ingest.events e WHERE e.migration_id = m.id AND e.kind = 'not carried'"
											  "  AND e.phase = 'completed' HAVING count(*) > 0))"
											  " FROM ingest.migration m WHERE m.id = $1",
											  1, types, vals, NULL);
				   ingest_event(MyMigration->id, "INFO", "summary", NULL,
								psprintf("migration completed: %s", ingest_getstr(tab, 0, 1)),
								NULL);
				   ingest_catalog_end());
}

/* Stop the workers and end this coordinator for good. */
static void
finish(void)
{
	(void) ingest_signal_workers(MyMigrationSlotNo, INGEST_WORKER_NONE, SIGTERM, true);
	(void) ingest_wait_workers_gone(MyMigrationSlotNo, 30000L);
	ingest_snapshot_release();
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	MyMigrationSlot->terminal = true;
	LWLockRelease(IngestShared->lock);
	ingest_wake_supervisor();
	proc_exit(0);
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

	ingest_worker_init(main_arg, INGEST_WORKER_COORDINATOR, &MyMigrationSlotNo, &migration_id);

	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	if (MyMigrationSlot->coordinator_pid != 0 && MyMigrationSlot->coordinator_pid != MyProcPid &&
		kill(MyMigrationSlot->coordinator_pid, 0) == 0)
	{
		LWLockRelease(IngestShared->lock);
		proc_exit(0);			/* another one is at work */
	}
	MyMigrationSlot->coordinator_pid = MyProcPid;
	LWLockRelease(IngestShared->lock);
	on_shmem_exit(coordinator_on_exit, (Datum) 0);

	/* workers of an earlier coordinator of this migration */
	(void) ingest_signal_workers(MyMigrationSlotNo, INGEST_WORKER_NONE, SIGTERM, true);
	(void) ingest_wait_workers_gone(MyMigrationSlotNo, 30000L);
	/* what they (or the SQL functions) changed while we waited */
	ingest_worker_read_migration(migration_id, true);

	cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest coordinator",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);

	PG_TRY();
	{
		for (;;)
		{
			const char *phase = MyMigration->phase;

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
			else if (strcmp(phase, "catching_up") == 0 ||
					 strcmp(phase, "streaming") == 0 ||
					 strcmp(phase, "stopping") == 0 ||
					 strcmp(phase, "paused") == 0)
				phase_streaming();
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
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("pg_ingest coordinator of migration \"%s\": %s", MyMigration->name,
						edata->message),
				 edata->context ? errcontext("%s", edata->context) : 0,
				 edata->internalquery ? errdetail_internal("query: %s", edata->internalquery) : 0));
		ingest_snapshot_release();
		if (ingest_recover_count_error(edata))
			finish();
		proc_exit(1);
	}
	PG_END_TRY();

	finish();
}
