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
 * same transaction that did it.  After a restart in the copying phase the
 * snapshot is gone; the coordinator exports a new one (from a temporary
 * slot), and what is copied from then on carries that snapshot's LSN as
 * its sync LSN.  The same happens, without a restart of the coordinator,
 * when the source session that keeps the snapshot goes away (the source
 * restarted, or the session was ended): the coordinator watches that idle
 * session, stops the copy workers still on the dead snapshot (their items
 * stay pending; the attempts the dead snapshot cost do not count), exports
 * a new snapshot once the source is back (for up to
 * pg_ingest.stream_failure_timeout), and the tables not yet copied, and
 * split tables of which only some parts were copied, are copied under it
 * (emptied first: a table is split only if its target is its own, neither
 * partitioned nor a root that leaves of the source share, see target.c).
 *
 * An error of the coordinator itself is recorded and the coordinator exits;
 * the supervisor starts it again after a growing delay, and after
 * pg_ingest.max_retries restarts the migration fails.
 *
 * Other roles live in their own files: planning the copy items, the
 * sequences and ANALYZE in plan.c, the slot and the snapshot (and the idle
 * session that keeps it) in snapshot.c.
 *
 * Locking: none of its own; see workers.c for the slots.
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

static IngestMigration *m;
static IngestConnInfo *info;
static IngestFilters *filters;
static int	my_slot;
static IngestMigrationSlot *me;


static BackgroundWorkerHandle *copy_workers[INGEST_MAX_JOBS];
static BackgroundWorkerHandle *index_workers[INGEST_MAX_JOBS];

/* copy rate sampling */
/* A rate of a counter, smoothed over the coordinator's samples. */
typedef struct RateSample
{
	TimestampTz at;				/* when count was read; 0 before the first */
	uint64		count;
} RateSample;

static RateSample copy_sample;

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

static void recopy_partial_tables(void);
static void ensure_receiver(void);
static int	running(BackgroundWorkerHandle **handles, int n);
static bool stopped(void);

static void
coordinator_on_exit(int code, Datum arg)
{
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	if (me->coordinator_pid == MyProcPid)
		me->coordinator_pid = 0;
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
	if (m->phase != NULL && strcmp(m->phase, phase) == 0)
		return;
	m->phase = MemoryContextStrdup(TopMemoryContext, phase);
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
	now = ingest_load_migration(m->id);
	phase = pstrdup(now->phase);
	if (!crashes_forgotten &&
		TimestampDifferenceExceeds(started, GetCurrentTimestamp(), CRASH_FORGET_MS))
	{
		Oid			types[1] = {INT4OID};
		Datum		vals[1] = {Int32GetDatum(m->id)};

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
	IN_TRANSACTION(ingest_set_phase(m, phase, m->phase));
}

static bool
cdc_mode(void)
{
	return strcmp(m->mode, "full-load") != 0;
}


/* In the transaction that stores the post-data items: they are in. */
static void
mark_post_data_loaded(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};

	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET postdata_loaded = true WHERE id = $1",
						1, types, vals, NULL);
	ingest_catalog_end();
	m->postdata_loaded = true;
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

	ingest_snapshot_create_slot(m, info, false);
	ingest_snapshot_release();
	conn = ingest_connect_or_error(info, INGEST_CONN_SQL,
								   psprintf("pg_ingest %s coordinator", m->name));
	PG_TRY();
	{
		rels = ingest_source_relations(conn, false, info->password);
	}
	PG_FINALLY();
	{
		ingest_disconnect(conn);
	}
	PG_END_TRY();
	ingest_apply_filters(rels, filters);

	ingest_xact_start();
	ingest_catalog_begin();
	vals[0] = Int32GetDatum(m->id);
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
	ingest_resync_record(m, rels);
	ingest_event(m->id, "INFO", "start", NULL,
				 psprintf("mode cdc: %d tables taken as they are on the target, changes from %X/%X on",
						  id, LSN_FORMAT_ARGS(m->slot_lsn)),
				 NULL);
	ingest_set_phase(m, "catching_up", "starting");
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

	/* schema changes: the event trigger goes in before the slot (ddl.c) */
	if (cdc_mode())
		ingest_ddl_install(m, info);

	if (strcmp(m->mode, "cdc") == 0)
	{
		phase_starting_cdc();
		return;
	}
	if (cdc_mode())
		ingest_snapshot_create_slot(m, info, true);
	else
		ingest_snapshot_export(m, info);
	conn = ingest_snapshot_session(m, info);
	PG_TRY();
	{
		res = ingest_exec(conn, "SELECT current_setting('block_size')::bigint",
						  PGRES_TUPLES_OK, "read the block size", info->password);
		block_size = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		rels = ingest_source_relations(conn, true, info->password);
		ingest_apply_filters(rels, filters);
		left_out = ingest_left_out_dependents(conn, rels, filters, info->password);
		sequences = ingest_plan_sequences(conn, rels, info->password);
		matviews = ingest_source_matviews(conn, info->password);
		lo_ranges = ingest_lo_ranges(conn, info->password, m->table_jobs);
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
	ctx.left_out = left_out;
	if (strcmp(m->schema_mode, "copy") == 0)
	{
		char	   *pre_data;
		char	   *post_data;
		SplitContext post_ctx;

		/* one pg_dump for both sections, stored together */
		ingest_pg_dump_sections(m, info, m->snapshot_name, rels, filters,
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
	ingest_plan_copy_items(m, rels, block_size);
	ingest_lo_store_items(m->id, lo_ranges);
	/* statistics for the claim queries (copy.c, schema.c): never guessed */
	ingest_catalog_begin();
	ingest_catalog_exec("ANALYZE ingest.copy_item", 0, NULL, NULL, NULL);
	ingest_set_copy_order(m->id);
	ingest_catalog_end();
	ingest_resync_record(m, rels);
	ingest_store_schema_items(m->id, list_concat(items, post_items));
	if (post_loaded)
		mark_post_data_loaded();
	ingest_set_phase(m, "schema", "starting");
	ingest_xact_commit();
}

static void
phase_schema(void)
{
	bool		pending;

	if (strcmp(m->schema_mode, "copy") == 0)
	{
		(void) ingest_run_schema_items(m, STAGE_PRE_DATA, STAGE_PRE_DATA, &pending);
		/* the map of distribute =>: Citus tables before the copy (citus.c) */
		ingest_citus_distribute(m);
	}
	set_phase("copying");
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

/*
 * Fold a new reading of a counter into *rate (per second), half the old
 * rate and half the rate since the previous reading, at most every 0.2 s.
 */
static void
update_rate(RateSample *sample, TimestampTz now, uint64 count, double *rate)
{
	double		secs = (double) (now - sample->at) / USECS_PER_SEC;
	double		recent;

	if (sample->at != 0 && secs <= 0.2)
		return;
	if (sample->at != 0)
	{
		recent = count >= sample->count ? (count - sample->count) / secs : 0;
		ingest_slot_set_rate(rate, *rate == 0 ? recent : 0.5 * *rate + 0.5 * recent);
	}
	sample->at = now;
	sample->count = count;
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
	update_rate(&copy_sample, now, bytes, &me->copy_rate);
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

/*
 * ensure_snapshot
 *		In the copying phase: when the session keeping the snapshot is gone,
 *		stop the copy workers, export a new snapshot once the source is
 *		back, and have the tables not yet copied copied under it (see the
 *		file header).  False if the migration ended meanwhile.
 */
static bool
ensure_snapshot(void)
{
	TimestampTz since;
	int			attempt = 0;
	char	   *why;
	char	   *old_snapshot = m->snapshot_name ? pstrdup(m->snapshot_name) : NULL;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};

	if (ingest_snapshot_alive())
		return true;
	why = ingest_snapshot_error(info->password);
	ingest_snapshot_release();
	ereport(WARNING,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("pg_ingest coordinator of migration \"%s\": the source session keeping snapshot %s is gone: %s",
					m->name, old_snapshot ? old_snapshot : "(none)", why)));
	IN_TRANSACTION(ingest_event(m->id, "WARNING", "snapshot", NULL,
								psprintf("the source session keeping snapshot %s is gone (%s): the tables not yet copied will be copied under a new snapshot",
										 old_snapshot ? old_snapshot : "(none)", why),
								NULL));

	/* the copy workers on the dead snapshot stop; their items stay pending */
	(void) ingest_signal_workers(my_slot, INGEST_WORKER_COPY, SIGTERM, true);
	since = GetCurrentTimestamp();
	while (running(copy_workers, INGEST_MAX_JOBS) > 0 &&
		   !TimestampDifferenceExceeds(since, GetCurrentTimestamp(), 30000))
		wait_a_moment();

	/* a new snapshot, once the source is back */
	since = GetCurrentTimestamp();
	for (;;)
	{
		volatile bool exported = false;
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			ingest_snapshot_export(m, info);
			exported = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			ingest_xact_abort();
			MemoryContextSwitchTo(cxt);
			ingest_snapshot_release();
			if (TimestampDifferenceExceeds(since, GetCurrentTimestamp(),
										   ingest_stream_failure_timeout * 1000))
				ereport(ERROR,
						(errcode(edata->sqlerrcode),
						 errmsg("could not export a new snapshot for %d s (pg_ingest.stream_failure_timeout): %s",
								ingest_stream_failure_timeout, edata->message)));
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("pg_ingest coordinator of migration \"%s\": could not export a new snapshot, retrying: %s",
							m->name, edata->message)));
		}
		PG_END_TRY();
		if (exported)
			break;
		if (stopped())
			return false;
		(void) ingest_sleep_ms(Min(10000L, (long) Max(ingest_retry_delay, 100) << Min(attempt, 5)));
		attempt++;
	}

	/* what the dead snapshot made fail is not the tables' fault */
	IN_TRANSACTION(ingest_catalog_begin();
				   ingest_catalog_exec("UPDATE ingest.copy_item SET attempts = 0"
									   " WHERE migration_id = $1 AND state = 'pending'",
									   1, types, vals, NULL);
				   ingest_catalog_end());
	recopy_partial_tables();
	return !stopped();
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
	if (!m->postdata_loaded && strcmp(m->schema_mode, "copy") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("migration \"%s\" was started by an earlier pg_ingest that had not yet taken the post-data section of the schema",
						m->name),
				 errdetail("This pg_ingest takes it when a migration starts; without it the indexes, keys and foreign keys would be missing."),
				 errhint("Abort the migration with ingest.abort() and start it again.")));
	IN_TRANSACTION(pending = ingest_count_pending(m->id, STAGE_INDEX, STAGE_FOREIGN_KEY));
	if (pending > 0 && running(index_workers, INGEST_MAX_JOBS) < m->index_jobs)
		launch(INGEST_WORKER_INDEX, index_workers, m->index_jobs);
}

static void
phase_copying(void)
{
	MemoryContext phase_cxt = CurrentMemoryContext;
	int64		pending = pending_copies();

	if (pending > 0 && !ingest_snapshot_held())
	{
		/* the snapshot of the start is gone: a restart */
		ingest_snapshot_export(m, info);
		recopy_partial_tables();
	}

	while (pending > 0)
	{
		tick();
		ensure_receiver();
		if (!ensure_snapshot())
		{
			MemoryContextSwitchTo(phase_cxt);
			return;
		}
		if (running(copy_workers, INGEST_MAX_JOBS) < Min(m->table_jobs, pending))
			launch(INGEST_WORKER_COPY, copy_workers, Min(m->table_jobs, pending));
		ensure_index_workers();
		sample_rate();
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
	ingest_slot_set_rate(&me->copy_rate, 0);
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
		IN_TRANSACTION(pending = ingest_count_pending(m->id, STAGE_INDEX, STAGE_FOREIGN_KEY));
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
		ensure_receiver();
		(void) ingest_run_schema_items(m, STAGE_LAST, STAGE_LAST, &pending);
		if (!pending)
			break;
	}
	set_phase(cdc_mode() ? "catching_up" : "completed");
}

/*
 * recopy_partial_tables
 *		After a restart, a table split in parts some of which were copied
 *		under the old snapshot is copied again whole under the new one: its
 *		parts must come from one snapshot, or a row that moved between
 *		parts in between would be copied twice or not at all.
 */
static void
recopy_partial_tables(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};
	SPITupleTable *tab;
	List	   *tables = NIL;
	List	   *only = NIL;
	ListCell   *lc;
	uint64		i;

	ingest_xact_start();
	ingest_catalog_begin();
	tab = ingest_catalog_query("WITH partial AS ("
							   "  SELECT nspname, relname FROM ingest.copy_item"
							   "  WHERE migration_id = $1"
							   /* large objects: each item on its own (largeobject.c) */
							   "  AND (nspname, relname) <> ('pg_catalog', 'pg_largeobject')"
							   "  GROUP BY 1, 2"
							   "  HAVING count(*) > 1 AND bool_or(state = 'done')"
							   "  AND bool_or(state <> 'done'))"
							   " UPDATE ingest.copy_item c SET state = 'pending', rows_done = NULL,"
							   "  bytes_done = NULL, sync_lsn = NULL, finished_at = NULL"
							   " FROM partial p WHERE c.migration_id = $1"
							   " AND c.nspname = p.nspname AND c.relname = p.relname AND c.part = 1"
							   " RETURNING c.nspname, c.relname, c.root_nspname, c.root_relname",
							   1, types, vals, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		mapped;
		Oid			relid;

		/* the table the rows went to (target.c); split only if its own */
		relid = ingest_target_relid(ingest_getstr(tab, i, 1), ingest_getstr(tab, i, 2),
									ingest_getstr(tab, i, 3), ingest_getstr(tab, i, 4),
									AccessExclusiveLock, &mapped);
		if (!OidIsValid(relid) || mapped)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot copy table %s again: %s",
							ingest_qualified(ingest_getstr(tab, i, 1), ingest_getstr(tab, i, 2)),
							OidIsValid(relid) ? "its rows share a table with those of other partitions" :
							"it does not exist on the target")));
		tables = lappend(tables, ingest_relid_name(relid));
		/* a partitioned table goes with its partitions */
		only = lappend_int(only, get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE);
	}
	ingest_catalog_exec("WITH partial AS ("
						"  SELECT nspname, relname FROM ingest.copy_item"
						"  WHERE migration_id = $1"
						"  AND (nspname, relname) <> ('pg_catalog', 'pg_largeobject')"
						"  GROUP BY 1, 2"
						"  HAVING count(*) > 1 AND bool_or(state = 'done'))"
						" UPDATE ingest.copy_item c SET state = 'pending', rows_done = NULL,"
						"  bytes_done = NULL, sync_lsn = NULL, finished_at = NULL"
						" FROM partial p WHERE c.migration_id = $1"
						" AND c.nspname = p.nspname AND c.relname = p.relname",
						1, types, vals, NULL);
	ingest_catalog_end();
	foreach(lc, tables)
	{
		/* as the migration's owner, like the copy */
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(psprintf("TRUNCATE %s%s",
								 list_nth_int(only, foreach_current_index(lc)) ? "ONLY " : "",
								 (char *) lfirst(lc)), false, 0) < 0)
			elog(ERROR, "could not truncate %s", (char *) lfirst(lc));
		SPI_finish();
		ingest_event(m->id, "INFO", "copy", lfirst(lc),
					 "part of this split table was copied under the previous snapshot: copied again whole",
					 NULL);
	}
	ingest_xact_commit();
}

/* A worker of which a migration has one: receiver, applier. */
typedef struct SingleWorker
{
	IngestWorkerKind kind;
	BackgroundWorkerHandle *handle[1];
	TimestampTz started;
	TimestampTz stopped;		/* when it was found stopped, 0 if running */
	int			quick_stops;	/* stops within a minute of the start, in a row */
} SingleWorker;

static SingleWorker receiver = {INGEST_WORKER_RECEIVER};
static SingleWorker applier = {INGEST_WORKER_APPLIER};

/*
 * Start it if it does not run; after a stop within a minute of its start,
 * only once pg_ingest.retry_delay has passed, doubled at each such stop.
 */
static void
ensure_single(SingleWorker *w)
{
	TimestampTz now = GetCurrentTimestamp();

	if (running(w->handle, 1) > 0)
		return;
	if (w->started != 0 && w->stopped == 0)
	{
		w->stopped = now;
		if (TimestampDifferenceExceeds(w->started, now, 60000))
			w->quick_stops = 0;
		else
			w->quick_stops++;
	}
	if (w->quick_stops > 0 &&
		!TimestampDifferenceExceeds(w->stopped, now,
									Min(60000L, (long) ingest_retry_delay << Min(w->quick_stops - 1, 6))))
		return;
	w->started = now;
	w->stopped = 0;
	launch(w->kind, w->handle, 1);
}

/* Start the change receiver if it does not run (change data capture). */
static void
ensure_receiver(void)
{
	if (cdc_mode())
		ensure_single(&receiver);
}

/* Whether the applier has caught up: ingest.status's caught_up. */
static bool
caught_up(void)
{
	bool		result;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	result = ingest_stream_caught_up(me, GetCurrentTimestamp());
	LWLockRelease(IngestShared->lock);
	return result;
}

/* Apply rate: changes/s, recent. */
static void
sample_apply_rate(void)
{
	static RateSample sample;

	update_rate(&sample, GetCurrentTimestamp(),
				pg_atomic_read_u64(&me->changes_applied), &me->apply_rate);
}

/*
 * At the stop: the tables of resync => 'at_cutover' copied again
 * (resync.c), sequences from the source's current values (plus
 * pg_ingest.sequence_margin), the large objects created, changed or
 * removed since the snapshot (largeobject.c), materialized views
 * refreshed (matview.c), the slot dropped (unless
 * pg_ingest.drop_slot_at_stop is off), the spool and origin with it.
 */
static void
finish_stream(void)
{
	PGconn	   *conn;
	List	   *rels;
	List	   *items;
	bool		pending;
	char	   *error = NULL;

	ingest_slot_set_flag(&me->stop_streaming, true);
	(void) ingest_signal_workers(my_slot, INGEST_WORKER_RECEIVER, SIGTERM, true);
	(void) ingest_signal_workers(my_slot, INGEST_WORKER_APPLIER, SIGTERM, true);
	(void) ingest_wait_workers_gone(my_slot, 30000L);

	/* where the stream ended stays visible once shared memory forgets it */
	{
		Oid			types[2] = {INT4OID, PG_LSNOID};
		Datum		vals[2];

		vals[0] = Int32GetDatum(m->id);
		vals[1] = LSNGetDatum(pg_atomic_read_u64(&me->applied_lsn));
		IN_TRANSACTION(ingest_catalog_begin();
					   ingest_catalog_exec("UPDATE ingest.migration SET applied_lsn = $2 WHERE id = $1",
										   2, types, vals, NULL);
					   ingest_catalog_end());
	}

	/* resync => 'at_cutover': tables decoding cannot follow, copied again */
	ingest_resync_at_stop(m, info);

	conn = ingest_connect_or_error(info, INGEST_CONN_SQL,
								   psprintf("pg_ingest %s coordinator", m->name));
	PG_TRY();
	{
		rels = ingest_source_relations(conn, false, info->password);
		ingest_apply_filters(rels, filters);
		items = ingest_plan_sequences(conn, rels, info->password);
	}
	PG_FINALLY();
	{
		ingest_disconnect(conn);
	}
	PG_END_TRY();
	IN_TRANSACTION(ingest_store_schema_items(m->id, items));
	(void) ingest_run_schema_items(m, STAGE_LAST, STAGE_LAST, &pending);
	/* large objects are not decoded: those changed since the snapshot */
	ingest_lo_sync_at_stop(m, info);
	ingest_refresh_matviews(m, info, filters);
	(void) ingest_ddl_remove(m, info);

	if (ingest_drop_slot_at_stop)
	{
		if (!ingest_drop_source_slot(m, info, &error))
			IN_TRANSACTION(ingest_event(m->id, "WARNING", "slot", m->slot_name,
										psprintf("could not drop the replication slot: %s", error),
										"Drop it with ingest.cleanup() or pg_drop_replication_slot() on the source."));
		else
			IN_TRANSACTION(ingest_drop_local(m));
	}
}

/* Record a stop asked for through shared memory (ingest.stop_at, cutover). */
static void
record_stop_request(void)
{
	XLogRecPtr	lsn = pg_atomic_read_u64(&me->stop_request);
	Oid			types[2] = {INT4OID, PG_LSNOID};
	Datum		vals[2];

	if (lsn == InvalidXLogRecPtr || lsn == m->stop_lsn)
		return;
	vals[0] = Int32GetDatum(m->id);
	vals[1] = LSNGetDatum(lsn);
	ingest_xact_start();
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET stop_lsn = $2 WHERE id = $1",
						2, types, vals, NULL);
	ingest_catalog_end();
	ingest_event(m->id, "INFO", "stop", NULL,
				 psprintf("stop at %X/%X", LSN_FORMAT_ARGS(lsn)), NULL);
	if (strcmp(m->phase, "stopping") != 0)
		ingest_set_phase(m, "stopping", "catching_up,streaming");
	ingest_xact_commit();
	m->stop_lsn = lsn;
	ingest_wake_workers(my_slot, INGEST_WORKER_APPLIER);
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
		 * it too, workers.c): a change reaches the applier at once */
		if (me->paused != (strcmp(phase, "paused") == 0))
		{
			ingest_slot_set_flag(&me->paused, strcmp(phase, "paused") == 0);
			ingest_wake_workers(my_slot, INGEST_WORKER_APPLIER);
		}
		remember_phase(phase);
		record_stop_request();

		if (me->reached_stop)
		{
			finish_stream();
			set_phase("completed");
			break;
		}
		ensure_receiver();
		ensure_single(&applier);
		ingest_sequence_sync(m, info, filters, phase);

		if (strcmp(phase, "catching_up") == 0 && caught_up())
		{
			IN_TRANSACTION(
						   ingest_set_phase(m, "streaming", "catching_up");
						   ingest_event(m->id, "INFO", "caught_up", NULL,
										psprintf("caught up: applied up to %X/%X",
												 LSN_FORMAT_ARGS(pg_atomic_read_u64(&me->applied_lsn))),
										NULL);
						   ingest_notify(m, "caught_up", "the target has caught up with the source"));
		}
		sample_apply_rate();
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
	Datum		vals[1] = {Int32GetDatum(m->id)};
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
	ingest_snapshot_release();
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
				 errmsg("pg_ingest coordinator of migration \"%s\": %s", m->name,
						edata->message),
				 edata->context ? errcontext("%s", edata->context) : 0,
				 edata->internalquery ? errdetail_internal("query: %s", edata->internalquery) : 0));
		ingest_snapshot_release();
		coordinator_failed(edata);
		proc_exit(1);
	}
	PG_END_TRY();

	finish();
}
