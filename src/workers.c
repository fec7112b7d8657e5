/*-------------------------------------------------------------------------
 *
 * workers.c
 *	  The shared-memory slots of migrations and workers, and the launching
 *	  of background workers.
 *
 * A migration gets a slot when ingest.start (or the database scan after a
 * restart) asks for it; the slot is "reserved" until that transaction
 * commits, then the supervisor launches its coordinator.  A transaction
 * that aborts gives the slot back.  The coordinator launches the copy and
 * index workers itself; every worker claims a worker slot at start, which
 * the views read, and frees it on exit.
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
 * What the SQL functions ask for, done when the current transaction ends
 * (pg_ingest's functions are transactional):
 *	LAUNCH (ingest.start, ingest.resume of a failed migration): on commit
 *		the supervisor launches the coordinator; on abort a slot reserved
 *		by this transaction is released.
 *	STOP (ingest.abort): the supervisor must not relaunch the coordinator;
 *		on commit the slot is done with, on abort it may be launched again.
 *	STOP_AT (ingest.stop_at): on commit the stop LSN goes to the workers.
 *	CHANGED (ingest.pause, ingest.resume): the catalog was changed; nothing
 *		to do at the end, but the transaction cannot be prepared.
 * Each entry belongs to the subtransaction that made it: a rolled-back
 * savepoint drops its entries (and releases what they reserved), a
 * released one hands them to its parent.  A transaction with entries
 * cannot be prepared: the workers would act on a request whose fate is
 * decided by a later COMMIT PREPARED in some other session.  This is
 * postgres_fdw's scheme (connection.c).
 */
typedef enum PendingAction
{
	PENDING_LAUNCH,
	PENDING_STOP,
	PENDING_STOP_AT,
	PENDING_CHANGED,
	PENDING_WAKE_STREAM,
	PENDING_RESUME
} PendingAction;

typedef struct PendingSlot
{
	int			slot;			/* migration slot, or -1 */
	int32		migration_id;
	uint64		generation;		/* of the slot when the entry was made */
	PendingAction action;
	XLogRecPtr	lsn;			/* STOP_AT */
	SubTransactionId subid;
} PendingSlot;

static List *pending_slots = NIL;
static bool xact_callback_registered = false;

static void ingest_xact_callback(XactEvent event, void *arg);
static void ingest_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									SubTransactionId parentSubid, void *arg);
static void release_reserved(IngestMigrationSlot *s);

/*
 * ingest_reserve_migration_slot
 *		Claim a migration slot for (dboid, migration_id).
 *
 * The slot stays reserved, launching nothing, until ingest_launch_at_commit()
 * says what to do with it.  An existing slot of the same migration is
 * returned as it is.  Errors out when all pg_ingest.max_migrations are taken.
 */
int
ingest_reserve_migration_slot(Oid dboid, int32 migration_id, Oid owner,
							  bool must_be_new)
{
	int			i;
	int			free_slot = -1;

	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	for (i = 0; i < ingest_max_migrations; i++)
	{
		IngestMigrationSlot *s = &IngestShared->migrations[i];

		if (s->dboid == dboid && s->migration_id == migration_id)
		{
			LWLockRelease(IngestShared->lock);
			if (must_be_new)
				elog(ERROR, "migration %d already has a slot", migration_id);
			return i;
		}
		if (s->dboid == InvalidOid && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
	{
		LWLockRelease(IngestShared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many migrations in progress"),
				 errdetail("pg_ingest.max_migrations = %d migrations are running already.",
						   ingest_max_migrations),
				 errhint("Wait for one to finish or abort it, or raise pg_ingest.max_migrations (restart needed).")));
	}
	{
		IngestMigrationSlot *s = &IngestShared->migrations[free_slot];

		s->dboid = dboid;
		s->migration_id = migration_id;
		s->generation++;
		s->owner = owner;
		s->launch = false;
		s->stop = false;
		s->terminal = false;
		s->reserved = true;
		s->restarts = 0;
		s->next_launch = 0;
		s->coordinator_pid = 0;
		ingest_clear_migration_slot(s, false);
	}
	LWLockRelease(IngestShared->lock);
	return free_slot;
}

static void
register_callbacks(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(ingest_xact_callback, NULL);
		RegisterSubXactCallback(ingest_subxact_callback, NULL);
		xact_callback_registered = true;
	}
}

static void
at_end_of_xact(int slot, int32 migration_id, PendingAction action,
			   XLogRecPtr lsn)
{
	MemoryContext old;
	PendingSlot *p;

	if (!IsTransactionState())
		elog(ERROR, "pg_ingest request outside of a transaction");
	register_callbacks();
	old = MemoryContextSwitchTo(TopMemoryContext);
	p = palloc0(sizeof(PendingSlot));
	p->slot = slot;
	p->migration_id = migration_id;
	p->action = action;
	p->lsn = lsn;
	p->subid = GetCurrentSubTransactionId();
	if (slot >= 0)
	{
		LWLockAcquire(IngestShared->lock, LW_SHARED);
		p->generation = IngestShared->migrations[slot].generation;
		LWLockRelease(IngestShared->lock);
	}
	pending_slots = lappend(pending_slots, p);
	MemoryContextSwitchTo(old);
}

/*
 * ingest_launch_at_commit
 *		Have the supervisor launch the slot's coordinator once the current
 *		transaction commits; release the slot if it aborts.
 */
void
ingest_launch_at_commit(int slot)
{
	at_end_of_xact(slot, IngestShared->migrations[slot].migration_id,
				   PENDING_LAUNCH, InvalidXLogRecPtr);
}

/*
 * ingest_stop_at_commit
 *		Keep the supervisor from relaunching the slot's coordinator; the
 *		slot is done with if the current transaction commits.
 */
void
ingest_stop_at_commit(int slot, int32 migration_id)
{
	IngestMigrationSlot *s = &IngestShared->migrations[slot];
	bool		holds;

	/* the slot may have been freed and reused since it was looked up */
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	holds = s->dboid == MyDatabaseId && s->migration_id == migration_id;
	if (holds)
		s->stop = true;
	LWLockRelease(IngestShared->lock);
	if (holds)
		at_end_of_xact(slot, migration_id, PENDING_STOP, InvalidXLogRecPtr);
}

/*
 * ingest_stop_lsn_at_commit
 *		Hand a stop LSN to the migration's workers once the current
 *		transaction commits.
 */
void
ingest_stop_lsn_at_commit(int slot, int32 migration_id, XLogRecPtr lsn)
{
	at_end_of_xact(slot, migration_id, PENDING_STOP_AT, lsn);
}

/*
 * ingest_changed_in_xact
 *		The current transaction changed a migration in the catalog: it may
 *		commit or abort, not be prepared.
 */
void
ingest_changed_in_xact(int32 migration_id)
{
	at_end_of_xact(-1, migration_id, PENDING_CHANGED, InvalidXLogRecPtr);
}

/*
 * ingest_wake_stream_at_commit
 *		Wake the migration's coordinator and applier once the current
 *		transaction commits (a pause or a resume): the coordinator reads the
 *		phase then, not before the change is visible, sets the applier's
 *		paused flag and wakes it.  The commit also sets the flag itself
 *		(cleared by a resume, set by a pause), so that the applier goes on
 *		or stops without waiting for the coordinator; entries are applied
 *		in their order, so the last pause or resume of the transaction is
 *		what the flag says, as its committed phase does.  A coordinator that
 *		read the phase just before the commit may write the old value
 *		again, but it was woken and writes the new one at once.  Two
 *		sessions cannot interleave here: each updates the migration's row,
 *		whose lock is held until after these callbacks have run.
 */
void
ingest_wake_stream_at_commit(int32 migration_id, bool resume)
{
	int			slot = ingest_find_migration_slot(MyDatabaseId, migration_id);

	if (slot >= 0)
		at_end_of_xact(slot, migration_id, resume ? PENDING_RESUME : PENDING_WAKE_STREAM,
					   InvalidXLogRecPtr);
}

/* Give back a slot reserved by a transaction that did not commit. */
static void
release_reserved(IngestMigrationSlot *s)
{
	if (s->reserved)
		memset(s, 0, offsetof(IngestMigrationSlot, bytes_received));
}

/* Whether a slot still holds the migration an entry was made for. */
static bool
same_migration(IngestMigrationSlot *s, PendingSlot *p)
{
	return s->dboid == MyDatabaseId && s->migration_id == p->migration_id &&
		s->generation == p->generation;
}

static void
ingest_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;
	bool		wake = false;
	bool		commit;

	if (pending_slots == NIL)
		return;
	if (event == XACT_EVENT_PRE_PREPARE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot prepare a transaction that has changed a pg_ingest migration"),
				 errdetail("The workers of a migration act on what its caller commits."),
				 errhint("COMMIT or ROLLBACK the change to the migration instead.")));
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	commit = (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT);

	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	foreach(lc, pending_slots)
	{
		PendingSlot *p = lfirst(lc);
		IngestMigrationSlot *s;

		if (p->slot < 0)
			continue;
		s = &IngestShared->migrations[p->slot];
		if (!same_migration(s, p))
			continue;
		switch (p->action)
		{
			case PENDING_LAUNCH:
				if (commit)
				{
					s->reserved = false;
					s->launch = true;
					s->stop = false;
					s->terminal = false;	/* a slot not yet freed: taken again */
					s->next_launch = 0;
				}
				else
					release_reserved(s);
				break;
			case PENDING_STOP:
				if (commit)
				{
					s->terminal = true;
					s->launch = false;
				}
				else
				{
					s->stop = false;
					s->next_launch = 0;
				}
				break;
			case PENDING_STOP_AT:
				if (commit)
					pg_atomic_write_u64(&s->stop_request, p->lsn);
				break;
			case PENDING_RESUME:
				/* the phase committed is no longer paused: apply at once */
				if (commit)
					s->paused = false;
				break;
			case PENDING_WAKE_STREAM:
				/* a pause: stop at once (a later resume of the xact clears it) */
				if (commit)
					s->paused = true;
				break;
			case PENDING_CHANGED:
				break;
		}
		wake = true;
	}
	LWLockRelease(IngestShared->lock);
	if (commit)
	{
		foreach(lc, pending_slots)
		{
			PendingSlot *p = lfirst(lc);

			if (p->action == PENDING_STOP_AT || p->action == PENDING_WAKE_STREAM ||
				p->action == PENDING_RESUME)
			{
				ingest_wake_workers(p->slot, INGEST_WORKER_COORDINATOR);
				ingest_wake_workers(p->slot, INGEST_WORKER_APPLIER);
			}
		}
	}
	list_free_deep(pending_slots);
	pending_slots = NIL;
	if (wake)
		ingest_wake_supervisor();
}

/*
 * A savepoint rolled back takes its requests with it; a savepoint released
 * hands them to its parent.
 */
static void
ingest_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (pending_slots == NIL)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_slots)
		{
			PendingSlot *p = lfirst(lc);

			if (p->subid == mySubid)
				p->subid = parentSubid;
		}
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		bool		wake = false;

		LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
		foreach(lc, pending_slots)
		{
			PendingSlot *p = lfirst(lc);
			IngestMigrationSlot *s;

			if (p->subid != mySubid)
				continue;
			if (p->slot >= 0)
			{
				s = &IngestShared->migrations[p->slot];
				if (same_migration(s, p))
				{
					if (p->action == PENDING_LAUNCH)
						release_reserved(s);
					else if (p->action == PENDING_STOP)
					{
						s->stop = false;
						s->next_launch = 0;
					}
					wake = true;
				}
			}
			pending_slots = foreach_delete_current(pending_slots, lc);
			pfree(p);
		}
		LWLockRelease(IngestShared->lock);
		if (wake)
			ingest_wake_supervisor();
	}
}

/*
 * ingest_request_stop_now
 *		Hand a stop LSN to the workers of a migration at once, if it still
 *		has its slot (found and written under the lock: never another
 *		migration's).
 */
bool
ingest_request_stop_now(Oid dboid, int32 migration_id, XLogRecPtr lsn)
{
	int			i;
	int			found = -1;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	for (i = 0; i < ingest_max_migrations; i++)
		if (IngestShared->migrations[i].dboid == dboid &&
			IngestShared->migrations[i].migration_id == migration_id)
		{
			pg_atomic_write_u64(&IngestShared->migrations[i].stop_request, lsn);
			found = i;
		}
	LWLockRelease(IngestShared->lock);
	if (found >= 0)
	{
		ingest_wake_workers(found, INGEST_WORKER_COORDINATOR);
		ingest_wake_workers(found, INGEST_WORKER_APPLIER);
	}
	return found >= 0;
}

/* Whether the migration's slot is reserved by a transaction not committed. */
bool
ingest_slot_reserved(Oid dboid, int32 migration_id)
{
	int			i;
	bool		reserved = false;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	for (i = 0; i < ingest_max_migrations; i++)
		if (IngestShared->migrations[i].dboid == dboid &&
			IngestShared->migrations[i].migration_id == migration_id)
			reserved = IngestShared->migrations[i].reserved;
	LWLockRelease(IngestShared->lock);
	return reserved;
}

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
 *		migration read into MyMigration, MySource, MyFilters and its slot
 *		in MyMigrationSlot (above).
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
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		MyMigrationSlotNo = *slot_out;
		MyMigrationSlot = &IngestShared->migrations[MyMigrationSlotNo];
		ingest_xact_start();
		MyMigration = ingest_load_migration(args.migration_id);
		MyFilters = ingest_load_filters(args.migration_id);
		MySource = ingest_conninfo_parse(MyMigration->source,
										 !superuser_arg(MyMigration->owner), NULL, NULL);
		ingest_xact_commit();
		MemoryContextSwitchTo(old);
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
