/*-------------------------------------------------------------------------
 *
 * control.c
 *	  The functions that watch and steer a running migration:
 *	  ingest.wait(), ingest.abort(), and ingest._live() behind the views.
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
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "conn.h"
#include "pg_ingest.h"

PG_FUNCTION_INFO_V1(ingest_wait);
PG_FUNCTION_INFO_V1(ingest_abort);
PG_FUNCTION_INFO_V1(ingest_live);

static const char *const known_phases[] = {
	"starting", "schema", "copying", "indexing", "finalizing", "catching_up",
	"streaming", "stopping", "paused", "completed", "failed", "aborted", NULL
};

/*
 * ingest.wait(name, phase, timeout) returns bool
 *
 * True once the migration is in phase, or past it; false when it ends
 * elsewhere (failed, aborted, or completed without going through phase)
 * or when the timeout passes.  Each look is a fresh snapshot.
 */
Datum
ingest_wait(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *phase;
	Interval   *timeout;
	int64		timeout_us;
	TimestampTz deadline;
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

	deadline = GetCurrentTimestamp() + timeout_us;
	for (;;)
	{
		IngestMigration *m = ingest_load_migration_by_name(name, false, false);
		int			want = ingest_phase_rank(phase);
		int			have = ingest_phase_rank(m->phase);

		if (ingest_find_migration_slot(MyDatabaseId, m->id) >= 0 &&
			IngestShared->migrations[ingest_find_migration_slot(MyDatabaseId, m->id)].reserved)
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

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * ingest.abort(name)
 *
 * Stops the workers at once (SIGTERM; a COPY in progress rolls back),
 * and marks the migration aborted.  What was copied stays; ingest.tables
 * says what.  A full load leaves nothing on the source: its slot was
 * temporary and went with the coordinator's session.
 */
Datum
ingest_abort(PG_FUNCTION_ARGS)
{
	char	   *name;
	IngestMigration *m;
	int			slot;
	Oid			types[1] = {INT4OID};
	Datum		vals[1];

	ingest_check_caller();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	m = ingest_load_migration_by_name(name, true, false);

	slot = ingest_find_migration_slot(MyDatabaseId, m->id);
	if (slot >= 0)
	{
		ingest_stop_at_commit(slot);
		(void) ingest_signal_workers(slot, INGEST_WORKER_NONE, SIGTERM, false);
		if (!ingest_wait_workers_gone(slot, 30000L))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("the workers of migration \"%s\" did not stop within 30 s", name),
					 errhint("Try again; pg_stat_activity shows them as \"pg_ingest ...\".")));
	}

	vals[0] = Int32GetDatum(m->id);
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET phase = 'aborted', updated_at = now(),"
						" finished_at = now() WHERE id = $1", 1, types, vals, NULL);
	ingest_catalog_end();
	m->phase = "aborted";
	ingest_event(m->id, "INFO", "phase", NULL, "phase aborted",
				 psprintf("aborted by %s", GetUserNameFromId(GetUserId(), false)));
	PG_RETURN_VOID();
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
