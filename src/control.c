/*-------------------------------------------------------------------------
 *
 * control.c
 *	  The functions that watch and steer a running migration:
 *	  ingest.wait(), ingest.abort(), and ingest._live() behind the views.
 *
 * Transactions: these functions follow PostgreSQL's rules.  What they
 * change in the catalog (pause, resume) commits or rolls back with the
 * caller's transaction, and the workers act only on what is committed;
 * requests through shared memory (stop_at, a relaunch by resume) are
 * handed over at commit (slots.c), and so is the wake-up of a pause or a
 * resume: the coordinator, woken once the phase is committed, sets the
 * applier's paused flag and wakes it; the commit itself also sets the flag
 * (a pause) or clears it (a resume) and wakes the applier, so that it
 * stops or applies at once.
 * What cannot be undone (abort, which
 * drops the source's slot through a worker of its own, cleanup, and
 * cutover, which waits for the migration to complete) refuses to run in a
 * transaction block.  A transaction that changed a migration cannot be
 * prepared.  wait, verify and preflight only read.
 *
 * State: the migrations' rows in the catalog, changed in the caller's
 * transaction; what the workers must do about it reaches shared memory
 * only when that transaction commits (slots.c).
 *
 * Locking: IngestShared->lock, shared, to read the worker slots.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "replication/origin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "conn.h"
#include "ddl.h"
#include "pg_ingest.h"
#include "progress.h"
#include "spool.h"

PG_FUNCTION_INFO_V1(ingest_wait);
PG_FUNCTION_INFO_V1(ingest_abort);
PG_FUNCTION_INFO_V1(ingest_live);
PG_FUNCTION_INFO_V1(ingest_stop_at);
PG_FUNCTION_INFO_V1(ingest_cutover);
PG_FUNCTION_INFO_V1(ingest_cleanup);
PG_FUNCTION_INFO_V1(ingest_pause);
PG_FUNCTION_INFO_V1(ingest_resume);
PG_FUNCTION_INFO_V1(ingest_stream);
PG_FUNCTION_INFO_V1(ingest_notification);

static const char *const known_phases[] = {
	"starting", "schema", "copying", "indexing", "finalizing", "catching_up",
	"streaming", "stopping", "paused", "completed", "failed", "aborted", NULL
};

/*
 * Ownership: a migration may be changed (aborted, cleaned up, paused,
 * resumed, stopped, cut over) only by the role that started it, a member
 * of that role, or a superuser; the other members of ingest_admin may only
 * watch it.  The workers act with the owner's rights, so another member
 * could otherwise act on the source and the target with rights it does not
 * have.
 */
static IngestMigration *
owned_migration(const char *name, bool unfinished_only)
{
	IngestMigration *m = ingest_load_migration_by_name(name, unfinished_only, false);

	if (!has_privs_of_role(GetUserId(), m->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be the owner of migration \"%s\"", name),
				 errdetail("Migration \"%s\" was started by role \"%s\"; only that role and superusers may change it.",
						   name, GetUserNameFromId(m->owner, true) ? GetUserNameFromId(m->owner, true) : "?")));
	return m;
}

/*
 * ingest_forget_password
 *		Replace the source connection string in the catalog by the same
 *		without its password, once nothing needs to connect any more (the
 *		migration is aborted, or cleaned up, and its slot on the source is
 *		gone: slot_name is cleared too, so a second cleanup does not try to
 *		connect).  In a transaction.
 */
void
ingest_forget_password(IngestMigration *m)
{
	PQconninfoOption *opts;
	PQconninfoOption *o;
	char	   *err = NULL;
	StringInfoData buf;
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		vals[2];

	opts = PQconninfoParse(m->source, &err);
	if (opts == NULL)
	{
		if (err)
			PQfreemem(err);
		return;
	}
	initStringInfo(&buf);
	for (o = opts; o->keyword; o++)
	{
		const char *p;

		if (o->val == NULL || strcmp(o->keyword, "password") == 0)
			continue;
		appendStringInfo(&buf, "%s%s='", buf.len > 0 ? " " : "", o->keyword);
		for (p = o->val; *p; p++)
		{
			if (*p == '\\' || *p == '\'')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *p);
		}
		appendStringInfoChar(&buf, '\'');
	}
	PQconninfoFree(opts);
	vals[0] = Int32GetDatum(m->id);
	vals[1] = CStringGetTextDatum(buf.data);
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET source = $2, slot_name = NULL WHERE id = $1",
						2, types, vals, NULL);
	ingest_catalog_end();
	pfree(buf.data);
}

/*
 * ingest.wait(name, phase, timeout) returns bool
 *
 * True once the migration is in phase, or past it; false when it ends
 * elsewhere (failed, aborted, or completed without going through phase)
 * or when the timeout passes.  Each look is a fresh snapshot.  Every
 * progress interval (the fourth argument, 0.2.0 on; NULL or not positive:
 * never) it says how the migration moves in a NOTICE (progress.c).
 */
Datum
ingest_wait(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *phase;
	Interval   *timeout;
	int64		timeout_us;
	TimestampTz deadline;
	int64		progress_us = 0;
	TimestampTz next_progress;
	int			i;
	bool		known = false;

	ingest_check_caller();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name, phase and timeout must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	phase = text_to_cstring(PG_GETARG_TEXT_PP(1));
	timeout = PG_GETARG_INTERVAL_P(2);

	for (i = 0; known_phases[i]; i++)
		known |= strcmp(known_phases[i], phase) == 0;
	if (!known)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown phase \"%s\"", phase),
				 errhint("Phases are starting, schema, copying, indexing, finalizing, catching_up, streaming, stopping, paused, completed, failed and aborted.")));
	timeout_us = timeout->time + (int64) timeout->day * USECS_PER_DAY +
		(int64) timeout->month * DAYS_PER_MONTH * USECS_PER_DAY;
	if (timeout_us <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must be positive")));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("ingest.wait cannot run in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errhint("It would never see the migration move; call it in READ COMMITTED.")));

	/* the three-argument definition of 0.1.0 has no progress */
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		Interval   *every = PG_GETARG_INTERVAL_P(3);

		progress_us = every->time + (int64) every->day * USECS_PER_DAY +
			(int64) every->month * DAYS_PER_MONTH * USECS_PER_DAY;
	}

	deadline = GetCurrentTimestamp() + timeout_us;
	next_progress = GetCurrentTimestamp() + progress_us;
	for (;;)
	{
		IngestMigration *m = ingest_load_migration_by_name(name, false, false);
		int			want = ingest_phase_rank(phase);
		int			have = ingest_phase_rank(m->phase);

		if (ingest_slot_reserved(MyDatabaseId, m->id))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("migration \"%s\" was started in this transaction, which must commit before it runs",
							name)));
		if (strcmp(m->phase, phase) == 0 ||
			(want >= 0 && have >= 0 && have >= want))
			PG_RETURN_BOOL(true);
		if (ingest_phase_is_terminal(m->phase))
			PG_RETURN_BOOL(false);
		if (GetCurrentTimestamp() >= deadline)
			PG_RETURN_BOOL(false);
		if (progress_us > 0 && GetCurrentTimestamp() >= next_progress)
		{
			ingest_progress_notice(name);
			next_progress = GetCurrentTimestamp() + progress_us;
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * ingest.abort(name)
 *
 * Stops the workers at once (SIGTERM; a COPY in progress rolls back), then
 * an abort worker, in transactions of its own, marks the migration aborted,
 * drops its replication slot on the source, its replication origin and its
 * spool.  None of that can be rolled back, so the function refuses to run
 * in a transaction block (as DROP SUBSCRIPTION with a slot does), and what
 * it does is committed by the worker, whatever becomes of the caller's
 * statement afterwards.  What was copied stays; ingest.tables says what.
 */
Datum
ingest_abort(PG_FUNCTION_ARGS)
{
	char	   *name;
	IngestMigration *m;
	int			slot;
	BackgroundWorkerHandle *handle;
	int64		last_event;
	SPITupleTable *tab;
	Oid			types[2] = {INT4OID, INT8OID};
	Datum		vals[2];
	uint64		i;

	ingest_check_caller();
	PreventInTransactionBlock(true, "ingest.abort()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	m = owned_migration(name, true);

	slot = ingest_find_migration_slot(MyDatabaseId, m->id);
	if (slot >= 0)
	{
		/* no relaunch from now on; if this statement fails, relaunch again */
		ingest_stop_at_commit(slot, m->id);
		(void) ingest_signal_workers(slot, INGEST_WORKER_NONE, SIGTERM, false);
		if (!ingest_wait_workers_gone(slot, 30000L))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("the workers of migration \"%s\" did not stop within 30 s", name),
					 errhint("Try again; pg_stat_activity shows them as \"pg_ingest ...\".")));
	}

	vals[0] = Int32GetDatum(m->id);
	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT COALESCE(max(id), 0) FROM ingest.events",
							   0, NULL, NULL, NULL);
	last_event = ingest_getint(tab, 0, 1, 0);
	ingest_catalog_end();

	/*
	 * The worker connects as the bootstrap superuser, as the scan does: it
	 * changes only the catalog (as its owner) and drops the slot with the
	 * migration's own connection string, and an abort must work even if
	 * the owner can no longer log in.
	 */
	if (!ingest_start_worker(INGEST_WORKER_ABORT, slot, 0, MyDatabaseId, m->id,
							 InvalidOid, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the worker that aborts migration \"%s\"", name),
				 errdetail("No background worker slot is free."),
				 errhint("Try again, or raise max_worker_processes.")));
	(void) WaitForBackgroundWorkerShutdown(handle);

	m = ingest_load_migration(m->id);
	if (strcmp(m->phase, "aborted") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration \"%s\" could not be aborted (phase %s)", name, m->phase),
				 m->last_error ? errdetail("%s", m->last_error) : 0,
				 errhint("See ingest.events and the server log.")));

	/* what the worker could not do */
	vals[1] = Int64GetDatum(last_event);
	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT message, detail FROM ingest.events"
							   " WHERE migration_id = $1 AND id > $2 AND level = 'WARNING'"
							   " ORDER BY id", 2, types, vals, NULL);
	for (i = 0; i < SPI_processed; i++)
		ereport(WARNING,
				(errmsg("%s", ingest_getstr(tab, i, 1)),
				 ingest_getstr(tab, i, 2) ? errhint("%s", ingest_getstr(tab, i, 2)) : 0));
	ingest_catalog_end();
	ingest_event(m->id, "INFO", "abort", NULL,
				 psprintf("migration aborted by %s", GetUserNameFromId(GetUserId(), false)),
				 NULL);
	PG_RETURN_VOID();
}

/*
 * ingest_abort_main
 *		The abort worker: marks the migration aborted (committed at once),
 *		then drops what it made on the source and here.
 */
void
ingest_abort_main(Datum main_arg)
{
	int			slot;
	int32		id;
	IngestMigration *m;
	bool		owner_is_superuser;

	ingest_worker_init(main_arg, INGEST_WORKER_ABORT, &slot, &id);

	ingest_xact_start();
	m = ingest_load_migration(id);
	/* a catalog lookup: in the transaction */
	owner_is_superuser = superuser_arg(m->owner);
	if (strcmp(m->phase, "completed") == 0 || strcmp(m->phase, "aborted") == 0)
	{
		ingest_xact_commit();
		proc_exit(0);
	}
	if (!ingest_set_phase(m, "aborted",
						  "starting,schema,copying,indexing,finalizing,catching_up,"
						  "streaming,stopping,paused,failed"))
	{
		ingest_xact_commit();
		proc_exit(0);
	}
	ingest_xact_commit();

	/* what it made on the source, and its origin and spool here */
	(void) ingest_ddl_remove(m, ingest_conninfo_parse(m->source, !owner_is_superuser,
													  NULL, NULL));
	if (m->slot_name)
	{
		IngestConnInfo *info = ingest_conninfo_parse(m->source, !owner_is_superuser,
													 NULL, NULL);
		char	   *error = NULL;

		if (ingest_drop_source_slot(m, info, &error))
		{
			ingest_xact_start();
			ingest_drop_local(m);
			ingest_forget_password(m);
			ingest_xact_commit();
		}
		else
			ingest_event_tx(m->id, "WARNING", "slot", m->slot_name,
							psprintf("could not drop replication slot \"%s\" on the source: %s",
									 m->slot_name, error),
							psprintf("The source keeps its WAL for that slot: run ingest.cleanup('%s') once it is reachable.",
									 m->name));
	}
	else
	{
		ingest_xact_start();
		ingest_forget_password(m);
		ingest_xact_commit();
	}
	proc_exit(0);
}

/*
 * ingest._live() - what the workers of this database's migrations are
 * doing now, from shared memory.
 */
Datum
ingest_live(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	ingest_check_caller();
	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	for (i = 0; i < IngestShared->nworkers; i++)
	{
		IngestWorkerSlot *w = &IngestShared->workers[i];
		IngestMigrationSlot *s;
		Datum		values[9];
		bool		nulls[9] = {false};

		if (w->pid == 0 || w->kind == INGEST_WORKER_SCAN)
			continue;
		s = &IngestShared->migrations[w->migration];
		if (s->dboid != MyDatabaseId)
			continue;
		values[0] = Int32GetDatum(s->migration_id);
		values[1] = CStringGetTextDatum(ingest_worker_kind_name(w->kind));
		values[2] = Int32GetDatum(w->job);
		values[3] = Int32GetDatum(w->pid);
		if (w->item_id != 0)
		{
			values[4] = Int32GetDatum(w->item_id);
			values[5] = TimestampTzGetDatum(w->item_started);
		}
		else
			nulls[4] = nulls[5] = true;
		values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&w->bytes));
		values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&w->rows));
		if (w->kind == INGEST_WORKER_COORDINATOR)
			values[8] = Float8GetDatum(s->copy_rate);
		else
			nulls[8] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(IngestShared->lock);
	return (Datum) 0;
}

static IngestMigration *
cdc_migration(const char *name, const char *what)
{
	IngestMigration *m = owned_migration(name, true);

	if (strcmp(m->mode, "full-load") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration \"%s\" has no change data capture to %s", name, what),
				 errdetail("It runs in mode full-load.")));
	return m;
}

/*
 * Move a migration from the phase the caller saw (m->phase) to phase;
 * error out if it moved meanwhile.
 */
static void
set_phase_locked(IngestMigration *m, const char *phase, const char *resume_phase)
{
	char	   *seen = pstrdup(m->phase);

	Oid			types[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		vals[3];
	char		nulls[3] = {' ', ' ', ' '};

	vals[0] = Int32GetDatum(m->id);
	vals[1] = CStringGetTextDatum(phase);
	if (resume_phase)
		vals[2] = CStringGetTextDatum(resume_phase);
	else
		nulls[2] = 'n';
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET resume_phase = COALESCE($3, resume_phase)"
						" WHERE id = $1", 3, types, vals, nulls);
	ingest_catalog_end();
	if (!ingest_set_phase(m, phase, seen))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration \"%s\" moved from phase %s to %s meanwhile",
						m->name, seen, m->phase),
				 errhint("Look at ingest.status and try again if it still applies.")));
}

/*
 * Ask a streaming migration to stop at lsn.  The request goes through
 * shared memory, which the applier and the coordinator read at once; the
 * coordinator records it in the catalog (stop_lsn, phase stopping) in its
 * own transaction, so the caller's transaction holds no lock they need.
 * at_commit: the request is handed over when the caller's transaction
 * commits (ingest.stop_at), else at once (ingest.cutover, which refuses to
 * run in a transaction block).
 */
static void
request_stop(IngestMigration *m, XLogRecPtr lsn, bool at_commit)
{
	int			slot;

	if (lsn == InvalidXLogRecPtr)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid stop LSN 0/0")));
	if (strcmp(m->phase, "catching_up") != 0 && strcmp(m->phase, "streaming") != 0 &&
		strcmp(m->phase, "stopping") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration \"%s\" is not streaming (phase %s)", m->name, m->phase),
				 m->last_error ? errdetail("%s", m->last_error) : 0,
				 strcmp(m->phase, "failed") == 0 ?
				 errhint("Fix the cause, then ingest.resume('%s').", m->name) :
				 strcmp(m->phase, "paused") == 0 ?
				 errhint("ingest.resume('%s') first.", m->name) :
				 errhint("A stop LSN can be set once the full load is done: ingest.wait('%s', 'catching_up').",
						 m->name)));
	slot = ingest_find_migration_slot(MyDatabaseId, m->id);
	if (slot < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration \"%s\" has no running workers", m->name)));
	if (at_commit)
		ingest_stop_lsn_at_commit(slot, m->id, lsn);
	else if (!ingest_request_stop_now(MyDatabaseId, m->id, lsn))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration \"%s\" has no running workers", m->name)));
}

/*
 * ingest.stop_at(lsn, name)
 *
 * The migration stops once every source transaction committed at or before
 * lsn is applied and the stream has passed lsn (at once if it is already
 * applied); then it is completed.  The request takes effect when the
 * caller's transaction commits.
 */
Datum
ingest_stop_at(PG_FUNCTION_ARGS)
{
	ingest_check_caller();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("lsn and name must not be null")));
	request_stop(cdc_migration(text_to_cstring(PG_GETARG_TEXT_PP(1)), "stop"),
				 PG_GETARG_LSN(0), true);
	PG_RETURN_VOID();
}

/*
 * ingest.cutover(name, timeout) returns pg_lsn
 *
 * Stop at the source's pg_current_wal_lsn(), then wait until completed.
 * For when the application has stopped writing to the source.  The stop
 * cannot wait for the caller's commit, since the function waits for its
 * outcome: it refuses to run in a transaction block.
 */
Datum
ingest_cutover(PG_FUNCTION_ARGS)
{
	char	   *name;
	IngestMigration *m;
	IngestConnInfo *info;
	PGconn	   *conn;
	PGresult   *res;
	XLogRecPtr	lsn = InvalidXLogRecPtr;
	bool		bad = false;

	ingest_check_caller();
	PreventInTransactionBlock(true, "ingest.cutover()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name and timeout must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	m = cdc_migration(name, "cut over");
	info = ingest_conninfo_parse(m->source, !superuser(), NULL, NULL);
	WITH_SOURCE_SESSION(conn, info, INGEST_CONN_SQL,
						psprintf("pg_ingest %s cutover", name), NULL,
	{
		res = ingest_exec(conn, "SELECT pg_catalog.pg_current_wal_lsn()",
						  PGRES_TUPLES_OK, "read the current WAL position", info->password);
		lsn = pg_lsn_in_internal(PQgetvalue(res, 0, 0), &bad);
		PQclear(res);
	});

	request_stop(m, lsn, false);
	if (!DatumGetBool(DirectFunctionCall3(ingest_wait, PG_GETARG_DATUM(0),
										  CStringGetTextDatum("completed"),
										  PG_GETARG_DATUM(1))))
	{
		IngestMigration *now = ingest_load_migration_by_name(name, false, false);

		if (ingest_phase_is_terminal(now->phase))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("migration \"%s\" is %s instead of stopping at %X/%X",
							name, now->phase, LSN_FORMAT_ARGS(lsn)),
					 now->last_error ? errdetail("%s", now->last_error) : 0,
					 errhint("See ingest.status and ingest.events.")));
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("migration \"%s\" did not complete at %X/%X within the timeout",
						name, LSN_FORMAT_ARGS(lsn)),
				 errhint("It goes on stopping: watch ingest.status, or ingest.wait('%s').", name)));
	}
	PG_RETURN_LSN(lsn);
}

/*
 * ingest.cleanup(name)
 *
 * For a finished migration (completed, failed or aborted): drops its slot
 * on the source, its replication origin and its spool.  Safe to call again.
 * A dropped slot cannot be rolled back: no transaction block.
 */
Datum
ingest_cleanup(PG_FUNCTION_ARGS)
{
	char	   *name;
	IngestMigration *m;
	IngestConnInfo *info;
	char	   *error = NULL;
	int			slot;

	ingest_check_caller();
	PreventInTransactionBlock(true, "ingest.cleanup()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	m = owned_migration(name, false);
	if (!ingest_phase_is_terminal(m->phase))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("migration \"%s\" is still running (phase %s)", name, m->phase),
				 errhint("Wait until it is completed, or ingest.abort('%s') it first.", name)));
	slot = ingest_find_migration_slot(MyDatabaseId, m->id);
	if (slot >= 0 && !ingest_wait_workers_gone(slot, 10000L))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("workers of migration \"%s\" are still running", name)));

	info = ingest_conninfo_parse(m->source, !superuser(), NULL, NULL);
	(void) ingest_ddl_remove(m, info);
	if (!ingest_drop_source_slot(m, info, &error))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not drop replication slot \"%s\" on the source: %s",
						m->slot_name, error),
				 errhint("Run ingest.cleanup again once the source is reachable, or drop the slot there.")));
	ingest_drop_local(m);
	ingest_forget_password(m);
	ingest_event(m->id, "INFO", "cleanup", NULL,
				 m->slot_name ? psprintf("dropped slot %s, the replication origin and the spool",
										 m->slot_name) :
				 "dropped the replication origin and the spool",
				 NULL);
	PG_RETURN_VOID();
}

/*
 * ingest.pause(name): stop applying; the receiver keeps spooling, so the
 * source keeps no WAL for it.
 */
Datum
ingest_pause(PG_FUNCTION_ARGS)
{
	IngestMigration *m;
	char	   *name;

	ingest_check_caller();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	m = cdc_migration(name, "pause");
	if (strcmp(m->phase, "catching_up") != 0 && strcmp(m->phase, "streaming") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration \"%s\" cannot be paused in phase %s", name, m->phase),
				 errhint("Changes are applied, and can be paused, in phases catching_up and streaming.")));
	set_phase_locked(m, "paused", m->phase);
	ingest_changed_in_xact(m->id);
	ingest_wake_stream_at_commit(m->id, false);
	PG_RETURN_VOID();
}

/*
 * ingest.resume(name): a paused migration goes back to applying; a failed
 * one starts again from where it failed (the change that failed, for the
 * applier).
 */
Datum
ingest_resume(PG_FUNCTION_ARGS)
{
	IngestMigration *m;
	char	   *name;
	const char *back;

	ingest_check_caller();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	m = owned_migration(name, true);
	if (strcmp(m->phase, "paused") != 0 && strcmp(m->phase, "failed") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration \"%s\" is neither paused nor failed (phase %s)", name, m->phase)));
	back = m->resume_phase ? m->resume_phase : "starting";
	ingest_changed_in_xact(m->id);
	if (strcmp(m->phase, "failed") == 0)
	{
		Oid			types[1] = {INT4OID};
		Datum		vals[1] = {Int32GetDatum(m->id)};
		int			slot;

		/* attempts start over */
		ingest_catalog_begin();
		ingest_catalog_exec("UPDATE ingest.migration SET restarts = 0, crashes = 0, last_error = NULL WHERE id = $1",
							1, types, vals, NULL);
		ingest_catalog_exec("UPDATE ingest.copy_item SET state = 'pending', attempts = 0"
							" WHERE migration_id = $1 AND state = 'failed'", 1, types, vals, NULL);
		ingest_catalog_exec("UPDATE ingest.schema_item SET attempts = 0"
							" WHERE migration_id = $1 AND state = 'pending'", 1, types, vals, NULL);
		ingest_catalog_end();
		set_phase_locked(m, back, NULL);
		slot = ingest_reserve_migration_slot(MyDatabaseId, m->id, m->owner, false);
		ingest_launch_at_commit(slot);
	}
	else
	{
		set_phase_locked(m, back, NULL);
		/* at commit: woken now, the coordinator would read 'paused' still */
		ingest_wake_stream_at_commit(m->id, true);
	}
	PG_RETURN_VOID();
}

/*
 * ingest._stream() - change data capture figures of this database's
 * migrations, from shared memory.
 */
Datum
ingest_stream(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	ingest_check_caller();
	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	for (i = 0; i < ingest_max_migrations; i++)
	{
		IngestMigrationSlot *s = &IngestShared->migrations[i];
		Datum		values[10];
		bool		nulls[10] = {false};
		XLogRecPtr	lsns[4];
		int			j;
		TimestampTz commit;

		if (s->dboid != MyDatabaseId || s->reserved)
			continue;
		lsns[0] = pg_atomic_read_u64(&s->received_lsn);
		lsns[1] = pg_atomic_read_u64(&s->flushed_lsn);
		lsns[2] = pg_atomic_read_u64(&s->source_lsn);
		lsns[3] = pg_atomic_read_u64(&s->applied_lsn);
		values[0] = Int32GetDatum(s->migration_id);
		for (j = 0; j < 4; j++)
		{
			values[1 + j] = LSNGetDatum(lsns[j]);
			nulls[1 + j] = lsns[j] == InvalidXLogRecPtr;
		}
		commit = (TimestampTz) pg_atomic_read_u64(&s->applied_commit_ts);
		values[5] = TimestampTzGetDatum(commit);
		nulls[5] = commit == 0;
		values[6] = BoolGetDatum(s->apply_idle);
		values[7] = Float8GetDatum(s->apply_rate);
		values[8] = Int64GetDatum((int64) pg_atomic_read_u64(&s->spool_bytes));
		values[9] = BoolGetDatum(s->receiver_connected);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(IngestShared->lock);
	return (Datum) 0;
}

/*
 * ingest._notification(name, phase, event, lsn, message) returns json -
 * the payload that NOTIFY pg_ingest carries, for tests and for scripts
 * that want to know its shape.
 */
Datum
ingest_notification(PG_FUNCTION_ARGS)
{
	ingest_check_caller();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("only lsn may be null")));
	PG_RETURN_DATUM(DirectFunctionCall1(json_in, CStringGetDatum(
															  ingest_notify_payload(text_to_cstring(PG_GETARG_TEXT_PP(0)),
																					text_to_cstring(PG_GETARG_TEXT_PP(1)),
																					text_to_cstring(PG_GETARG_TEXT_PP(2)),
																					PG_ARGISNULL(3) ? InvalidXLogRecPtr : PG_GETARG_LSN(3),
																					text_to_cstring(PG_GETARG_TEXT_PP(4))))));
}
