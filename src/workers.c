/*-------------------------------------------------------------------------
 *
 * workers.c
 *	  pg_ingest's background workers: started, attached to their slots,
 *	  signalled and woken; the migration a worker serves (MyMigration).
 *
 * A migration's slot is reserved by the SQL functions (slots.c); once its
 * transaction commits, the supervisor launches its coordinator.  The
 * coordinator launches the copy and index workers itself (pool.c); every
 * worker claims a worker slot at start, which the views read, and frees it
 * on exit.  ingest_worker_init is what every worker does first.
 *
 * State: the worker slots in shared memory (shmem.c); in each worker, its
 * own slot (MyIngestWorker) and the migration it serves (MyMigration and
 * the rest, read from the catalog once at start).
 *
 * Locking: IngestShared->lock in exclusive mode to change a slot, shared to
 * read several fields together; pg_ingest.h has the whole protocol (who
 * writes each field, under which lock).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <unistd.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "conn.h"
#include "pg_ingest.h"
#include "source.h"

IngestWorkerSlot *MyIngestWorker = NULL;

/*
 * The migration a migration's worker serves, read once by
 * ingest_worker_init() (PostgreSQL's MySubscription and MyLogicalRepWorker
 * play the same part for a subscription's workers): its catalog row, the
 * parsed source connection string and its filters, all in
 * TopMemoryContext, and its slot in shared memory.  Each process keeps its
 * own copy of the row; MyMigration->phase is what that process last read.
 * Unset (NULL, -1) in the scan and abort workers and in backends.
 */
IngestMigration *MyMigration = NULL;
struct IngestConnInfo *MySource = NULL;
struct IngestFilters *MyFilters = NULL;
int			MyMigrationSlotNo = -1;
IngestMigrationSlot *MyMigrationSlot = NULL;

/* What the bgw_extra of every worker carries. */
typedef struct IngestWorkerArgs
{
	Oid			dboid;
	int32		migration_id;
	Oid			owner;
	int32		job;
	uint64		generation;		/* of the migration slot at registration */
} IngestWorkerArgs;

/*
 * ingest_remember_database
 *		Add a database to those the supervisor scans at server start.
 */
void
ingest_remember_database(Oid dboid)
{
	int			i;
	bool		added = false;

	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	for (i = 0; i < IngestShared->ndatabases; i++)
		if (IngestShared->databases[i] == dboid)
			break;
	if (i == IngestShared->ndatabases && i < INGEST_MAX_DATABASES)
	{
		IngestShared->databases[IngestShared->ndatabases++] = dboid;
		IngestShared->databases_dirty = true;
		added = true;
	}
	LWLockRelease(IngestShared->lock);
	if (added)
		ingest_wake_supervisor();
}

void
ingest_wake_supervisor(void)
{
	Latch	   *latch;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	latch = IngestShared->supervisor_latch;
	LWLockRelease(IngestShared->lock);
	if (latch)
		SetLatch(latch);
}

const char *
ingest_worker_kind_name(IngestWorkerKind kind)
{
	switch (kind)
	{
		case INGEST_WORKER_SCAN:
			return "scan";
		case INGEST_WORKER_COORDINATOR:
			return "coordinator";
		case INGEST_WORKER_COPY:
			return "copy";
		case INGEST_WORKER_INDEX:
			return "index";
		case INGEST_WORKER_RECEIVER:
			return "receiver";
		case INGEST_WORKER_APPLIER:
			return "applier";
		case INGEST_WORKER_ABORT:
			return "abort";
		case INGEST_WORKER_NONE:
			break;
	}
	return "none";
}

static const char *
kind_function(IngestWorkerKind kind)
{
	switch (kind)
	{
		case INGEST_WORKER_SCAN:
			return "ingest_scan_main";
		case INGEST_WORKER_COORDINATOR:
			return "ingest_coordinator_main";
		case INGEST_WORKER_COPY:
			return "ingest_copy_main";
		case INGEST_WORKER_INDEX:
			return "ingest_index_main";
		case INGEST_WORKER_RECEIVER:
			return "ingest_receiver_main";
		case INGEST_WORKER_APPLIER:
			return "ingest_applier_main";
		case INGEST_WORKER_ABORT:
			return "ingest_abort_main";
		case INGEST_WORKER_NONE:
			break;
	}
	elog(ERROR, "unknown pg_ingest worker kind %d", (int) kind);
	return NULL;
}

/*
 * ingest_start_worker
 *		Register a dynamic background worker of pg_ingest.
 *
 * migration is the migration slot (or, for a scan, the database index);
 * the worker connects to dboid as owner (InvalidOid: bootstrap superuser).
 * Returns false when no background worker slot is free.
 */
bool
ingest_start_worker(IngestWorkerKind kind, int migration, int job,
					Oid dboid, int32 migration_id, Oid owner,
					BackgroundWorkerHandle **handle)
{
	BackgroundWorker bgw;
	IngestWorkerArgs args;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "pg_ingest");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "%s", kind_function(kind));
	if (kind == INGEST_WORKER_COPY || kind == INGEST_WORKER_INDEX)
		snprintf(bgw.bgw_name, BGW_MAXLEN, "pg_ingest %s %d of migration %d",
				 ingest_worker_kind_name(kind), job, migration_id);
	else if (kind != INGEST_WORKER_SCAN)
		snprintf(bgw.bgw_name, BGW_MAXLEN, "pg_ingest %s of migration %d",
				 ingest_worker_kind_name(kind), migration_id);
	else
		snprintf(bgw.bgw_name, BGW_MAXLEN, "pg_ingest scan of database %u", dboid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "pg_ingest %s", ingest_worker_kind_name(kind));
	bgw.bgw_main_arg = Int32GetDatum(migration);
	args.dboid = dboid;
	args.migration_id = migration_id;
	args.owner = owner;
	args.job = job;
	args.generation = 0;
	if (kind != INGEST_WORKER_SCAN && migration >= 0)
	{
		LWLockAcquire(IngestShared->lock, LW_SHARED);
		args.generation = IngestShared->migrations[migration].generation;
		LWLockRelease(IngestShared->lock);
	}
	StaticAssertStmt(sizeof(args) <= BGW_EXTRALEN, "worker arguments too long");
	memcpy(bgw.bgw_extra, &args, sizeof(args));
	bgw.bgw_notify_pid = MyProcPid;

	return RegisterDynamicBackgroundWorker(&bgw, handle);
}

static void
release_worker_slot(int code, Datum arg)
{
	IngestWorkerSlot *w = MyIngestWorker;

	if (w == NULL)
		return;
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	w->pid = 0;
	w->kind = INGEST_WORKER_NONE;
	w->latch = NULL;
	w->item_id = 0;
	LWLockRelease(IngestShared->lock);
	MyIngestWorker = NULL;
}

/*
 * ingest_attach_worker
 *		Claim a worker slot for this process, freed at exit.
 *
 * Returns NULL, claiming nothing, when the migration slot no longer holds
 * the migration the worker was started for (generation), or when that
 * migration was aborted or finished in the meantime (stop, terminal): a
 * late worker must not act on whatever now uses the slot.  The check and
 * the claim are made under the lock, so whoever sets stop and then signals
 * the migration's workers either finds this one or is seen by it.
 */
IngestWorkerSlot *
ingest_attach_worker(IngestWorkerKind kind, int migration, int job,
					 int32 migration_id, uint64 generation)
{
	int			i;
	IngestWorkerSlot *w = NULL;
	IngestMigrationSlot *s = &IngestShared->migrations[migration];

	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	if (s->dboid != MyDatabaseId || s->migration_id != migration_id ||
		s->generation != generation || s->stop || s->terminal)
	{
		LWLockRelease(IngestShared->lock);
		return NULL;
	}
	for (i = 0; i < IngestShared->nworkers; i++)
	{
		if (IngestShared->workers[i].pid == 0)
		{
			w = &IngestShared->workers[i];
			w->pid = MyProcPid;
			w->kind = kind;
			w->migration = migration;
			w->job = job;
			w->latch = MyLatch;
			w->item_id = 0;
			w->item_started = 0;
			pg_atomic_write_u64(&w->bytes, 0);
			pg_atomic_write_u64(&w->rows, 0);
			break;
		}
	}
	LWLockRelease(IngestShared->lock);
	if (w == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no free pg_ingest worker slot")));
	MyIngestWorker = w;
	on_shmem_exit(release_worker_slot, (Datum) 0);
	return w;
}

/*
 * ingest_worker_init
 *		What every dynamic worker of pg_ingest does first: signals, the
 *		database connection (as the migration's owner), search_path pinned
 *		to pg_catalog, its worker slot; for a migration's worker, the
 *		migration read into MyMigration, MySource, MyFilters (not for an
 *		index worker) and its slot in MyMigrationSlot (above).
 */
void
ingest_worker_init(Datum main_arg, IngestWorkerKind kind, int *slot_out,
				   int32 *migration_id_out)
{
	IngestWorkerArgs args;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnectionByOid(args.dboid, args.owner, 0);

	/*
	 * Whatever a worker commits carries its own completion record (a table
	 * with its "done", a statement with its own): a commit lost in a crash
	 * is work done again, not lost, so no commit needs to wait for its
	 * WAL flush.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_OVERRIDE);

	/*
	 * Nothing a user's schema defines (functions, operators, tables that
	 * shadow others) may be picked up by name in a worker, whatever
	 * search_path the database or the role sets: every name a worker uses
	 * is qualified or in pg_catalog.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	*slot_out = DatumGetInt32(main_arg);
	*migration_id_out = args.migration_id;
	if (kind != INGEST_WORKER_SCAN && kind != INGEST_WORKER_ABORT &&
		ingest_attach_worker(kind, *slot_out, args.job, args.migration_id,
							 args.generation) == NULL)
	{
		ereport(DEBUG1,
				(errmsg_internal("pg_ingest %s of migration %d: the migration was stopped or its slot reused",
								 ingest_worker_kind_name(kind), args.migration_id)));
		proc_exit(0);
	}
	pgstat_report_appname(MyBgworkerEntry->bgw_name);

	if (kind != INGEST_WORKER_SCAN && kind != INGEST_WORKER_ABORT)
	{
		MyMigrationSlotNo = *slot_out;
		MyMigrationSlot = &IngestShared->migrations[MyMigrationSlotNo];
		ingest_worker_read_migration(args.migration_id,
									 kind != INGEST_WORKER_INDEX);
	}

	/* for tests: pg_ingest.debug_crash_worker */
	if (ingest_debug_crash_worker &&
		strcmp(ingest_debug_crash_worker, ingest_worker_kind_name(kind)) == 0)
	{
		ereport(LOG,
				(errmsg("pg_ingest %s of migration %d crashes as pg_ingest.debug_crash_worker asks",
						ingest_worker_kind_name(kind), args.migration_id)));
		abort();
	}
}

/*
 * ingest_worker_read_migration
 *		Read the migration this worker serves into MyMigration (and, with
 *		with_source, MySource and MyFilters: an index worker never talks to
 *		the source, so a connection string its owner could no longer use
 *		does not stop it), in TopMemoryContext, in a transaction of its own.
 *		Called by ingest_worker_init, and again by a coordinator once the
 *		workers of an earlier one are gone (what changed meanwhile).
 */
void
ingest_worker_read_migration(int32 migration_id, bool with_source)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	ingest_xact_start();
	MyMigration = ingest_load_migration(migration_id);
	if (with_source)
	{
		MyFilters = ingest_load_filters(migration_id);
		MySource = ingest_conninfo_parse(MyMigration->source,
										 !superuser_arg(MyMigration->owner), NULL, NULL);
	}
	ingest_xact_commit();
	MemoryContextSwitchTo(old);
}

/*
 * ingest_log_recovered_error
 *		Put an error that a worker caught and recovered from (a retry, a
 *		statement recorded as failed) in the server log, as a WARNING with
 *		its own SQLSTATE, message, detail, hint and context: the error was
 *		flushed, so PostgreSQL itself would never log it.  (Called in a
 *		backend, the client sees the WARNING too.)  Messages pg_ingest
 *		builds are scrubbed of passwords already.
 */
void
ingest_log_recovered_error(ErrorData *edata)
{
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg_internal("%s", edata->message ? edata->message : "unknown error"),
			 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
			 edata->hint ? errhint("%s", edata->hint) : 0,
			 edata->context ? errcontext("%s", edata->context) : 0));
}

/*
 * ingest_slot_set_flag, ingest_slot_set_rate
 *		Write a flag or a rate of a migration slot, as its one writer does:
 *		under the lock (pg_ingest.h).
 */
void
ingest_slot_set_flag(bool *field, bool value)
{
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	*field = value;
	LWLockRelease(IngestShared->lock);
}

void
ingest_slot_set_rate(double *field, double value)
{
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	*field = value;
	LWLockRelease(IngestShared->lock);
}

/* The item (copy or schema item) this worker has in hand; 0: none. */
void
ingest_worker_set_item(int32 item_id, TimestampTz started)
{
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	MyIngestWorker->item_id = item_id;
	MyIngestWorker->item_started = started;
	LWLockRelease(IngestShared->lock);
}

/* The job number the worker was started with (a scan: 1 after a crash). */
int
ingest_worker_job(void)
{
	IngestWorkerArgs args;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	return args.job;
}

/*
 * ingest_signal_workers
 *		Send signo to the workers of a migration slot (kind NONE: all).
 */
int
ingest_signal_workers(int migration, IngestWorkerKind kind, int signo,
					  bool exclude_self)
{
	int			i;
	int			n = 0;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	for (i = 0; i < IngestShared->nworkers; i++)
	{
		IngestWorkerSlot *w = &IngestShared->workers[i];

		if (w->pid == 0 || w->migration != migration ||
			w->kind == INGEST_WORKER_SCAN ||
			(kind != INGEST_WORKER_NONE && w->kind != kind) ||
			(exclude_self && w->pid == MyProcPid))
			continue;
		if (kill(w->pid, signo) == 0)
			n++;
	}
	LWLockRelease(IngestShared->lock);
	return n;
}

/*
 * ingest_wait_workers_gone
 *		Wait until no worker but this process holds a slot of the migration.
 */
bool
ingest_wait_workers_gone(int migration, long timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   timeout_ms);

	for (;;)
	{
		int			i;
		bool		any = false;

		LWLockAcquire(IngestShared->lock, LW_SHARED);
		for (i = 0; i < IngestShared->nworkers && !any; i++)
		{
			IngestWorkerSlot *w = &IngestShared->workers[i];

			any = (w->pid != 0 && w->pid != MyProcPid &&
				   w->migration == migration && w->kind != INGEST_WORKER_SCAN);
		}
		LWLockRelease(IngestShared->lock);
		if (!any)
			return true;
		if (GetCurrentTimestamp() >= deadline)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Set the latches of a migration's workers of one kind (NONE: all). */
void
ingest_wake_workers(int migration, IngestWorkerKind kind)
{
	int			i;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	for (i = 0; i < IngestShared->nworkers; i++)
	{
		IngestWorkerSlot *w = &IngestShared->workers[i];

		if (w->pid != 0 && w->migration == migration && w->latch &&
			(kind == INGEST_WORKER_NONE || w->kind == kind))
			SetLatch(w->latch);
	}
	LWLockRelease(IngestShared->lock);
}

/*
 * ingest_sleep_ms
 *		Interruptible sleep; false if the latch woke us early.
 */
bool
ingest_sleep_ms(long ms)
{
	int			rc;

	rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
				   ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	return (rc & WL_TIMEOUT) != 0;
}
