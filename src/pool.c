/*-------------------------------------------------------------------------
 *
 * pool.c
 *	  The coordinator's worker pool: the copy, index, receiver and applier
 *	  workers of its migration, started and counted.
 *
 * The coordinator asks for a number of workers of a kind
 * (ingest_pool_ensure: the copy workers up to table_jobs, the index workers
 * up to index_jobs) or for the one worker of a kind a migration has
 * (ingest_pool_ensure_single: receiver, applier); a worker that stopped is
 * forgotten and started again on the next call.  A receiver or applier
 * that stops within a minute of its start is started again only after
 * pg_ingest.retry_delay, doubled at each such stop (at most a minute), so a
 * worker that cannot run does not spin.  When no background worker slot is
 * free, the migration goes on with fewer workers and says so once (a
 * WARNING event).
 *
 * State: the handles of the workers this coordinator started, in its own
 * memory (TopMemoryContext: they outlive a phase); nothing in the catalog.
 * A worker's own slot in shared memory is claimed by the worker
 * (workers.c).
 *
 * Locking: none of its own; workers.c takes IngestShared->lock to start
 * and signal workers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "coordinator.h"
#include "pg_ingest.h"

static BackgroundWorkerHandle *copy_workers[INGEST_MAX_JOBS];
static BackgroundWorkerHandle *index_workers[INGEST_MAX_JOBS];

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
		started = ingest_start_worker(kind, MyMigrationSlotNo, i + 1, MyDatabaseId, MyMigration->id,
									  MyMigration->owner, &handles[i]);
		MemoryContextSwitchTo(old);
		if (!started)
		{
			handles[i] = NULL;
			if (!warned)
				IN_TRANSACTION(ingest_event(MyMigration->id, "WARNING", "workers", NULL,
											psprintf("could not start every %s worker: no background worker slot free",
													 ingest_worker_kind_name(kind)),
											"Raise max_worker_processes; pg_ingest goes on with fewer workers."));
			warned = true;
			break;
		}
	}
}

/* The handles of the workers of a kind this coordinator runs, and how many. */
static BackgroundWorkerHandle **
handles_of(IngestWorkerKind kind, int *n)
{
	*n = INGEST_MAX_JOBS;
	if (kind == INGEST_WORKER_COPY)
		return copy_workers;
	if (kind == INGEST_WORKER_INDEX)
		return index_workers;
	*n = 1;
	if (kind == INGEST_WORKER_RECEIVER)
		return receiver.handle;
	if (kind == INGEST_WORKER_APPLIER)
		return applier.handle;
	elog(ERROR, "pg_ingest: no pool of %s workers", ingest_worker_kind_name(kind));
	return NULL;				/* keep compiler quiet */
}

/*
 * ingest_pool_running
 *		How many workers of a kind run (forgetting those that stopped).
 */
int
ingest_pool_running(IngestWorkerKind kind)
{
	int			n;
	BackgroundWorkerHandle **handles = handles_of(kind, &n);

	return running(handles, n);
}

/*
 * ingest_pool_ensure
 *		Start copy or index workers until want of them run (at most
 *		INGEST_MAX_JOBS).
 */
void
ingest_pool_ensure(IngestWorkerKind kind, int want)
{
	int			n;
	BackgroundWorkerHandle **handles = handles_of(kind, &n);

	if (running(handles, n) < want)
		launch(kind, handles, want);
}

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

/*
 * ingest_pool_ensure_single
 *		Start the receiver or the applier if it does not run (see the file
 *		header for the delay after quick stops).
 */
void
ingest_pool_ensure_single(IngestWorkerKind kind)
{
	ensure_single(kind == INGEST_WORKER_RECEIVER ? &receiver : &applier);
}

/*
 * ingest_pool_stop_copy_workers
 *		Have the copy workers stop (their items stay pending) and wait up
 *		to timeout_ms for them to be gone.
 */
void
ingest_pool_stop_copy_workers(long timeout_ms)
{
	TimestampTz since = GetCurrentTimestamp();

	(void) ingest_signal_workers(MyMigrationSlotNo, INGEST_WORKER_COPY, SIGTERM, true);
	while (running(copy_workers, INGEST_MAX_JOBS) > 0 &&
		   !TimestampDifferenceExceeds(since, GetCurrentTimestamp(), timeout_ms))
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
