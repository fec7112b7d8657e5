/*-------------------------------------------------------------------------
 *
 * slots.c
 *	  The migration slots in shared memory as the SQL functions use them:
 *	  a slot reserved for a migration, and what the functions ask of the
 *	  workers (launch, stop, stop at an LSN, wake), done only when their
 *	  transaction commits.
 *
 * A migration gets a slot when ingest.start (or the database scan after a
 * restart) asks for it; the slot is "reserved" until that transaction
 * commits, then the supervisor launches its coordinator.  A transaction
 * that aborts gives the slot back.  Requests are remembered per
 * subtransaction and carried out by the transaction callbacks below
 * (postgres_fdw's scheme, connection.c); a transaction holding any cannot
 * be prepared.
 *
 * State: the requests of the current transaction, in this backend
 * (TopMemoryContext); the slots in shared memory (shmem.c); nothing in the
 * catalog.
 *
 * Locking: IngestShared->lock exclusive to change a slot, shared to read
 * several fields together; pg_ingest.h has the whole protocol (who writes
 * each field, under which lock).
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
	int			found;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	found = ingest_find_migration_slot_locked(dboid, migration_id);
	if (found >= 0)
		pg_atomic_write_u64(&IngestShared->migrations[found].stop_request, lsn);
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
	int			found;
	bool		reserved = false;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	found = ingest_find_migration_slot_locked(dboid, migration_id);
	if (found >= 0)
		reserved = IngestShared->migrations[found].reserved;
	LWLockRelease(IngestShared->lock);
	return reserved;
}
