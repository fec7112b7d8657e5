/*-------------------------------------------------------------------------
 *
 * rates.c
 *	  The rates ingest.status shows: bytes copied per second and changes
 *	  applied per second, sampled by the coordinator on each turn of its
 *	  loops.
 *
 * A rate is smoothed: each sample, at most every 0.2 s, counts half, and
 * the rate before it the other half.  The copy rate counts the bytes of
 * finished items (MyMigrationSlot->bytes_received) and those of the items
 * the copy workers have in flight (their worker slots' bytes); the apply
 * rate counts MyMigrationSlot->changes_applied.
 *
 * State: the previous sample of each counter, in this process (the
 * coordinator); the rates themselves in its migration slot in shared
 * memory, which the views read; nothing in the catalog.
 *
 * Locking: IngestShared->lock shared to read the worker slots together;
 * the rates are written through ingest_slot_set_rate (pg_ingest.h: the
 * coordinator is their one writer).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "coordinator.h"
#include "pg_ingest.h"

/* A rate of a counter, smoothed over the coordinator's samples. */
typedef struct RateSample
{
	TimestampTz at;				/* when count was read; 0 before the first */
	uint64		count;
} RateSample;

static RateSample copy_sample;

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

/*
 * ingest_rate_sample_copy
 *		Copy progress: bytes of finished items plus those in flight.
 */
void
ingest_rate_sample_copy(void)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		bytes = pg_atomic_read_u64(&MyMigrationSlot->bytes_received);
	int			i;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	for (i = 0; i < IngestShared->nworkers; i++)
	{
		IngestWorkerSlot *w = &IngestShared->workers[i];

		if (w->pid != 0 && w->migration == MyMigrationSlotNo && w->kind == INGEST_WORKER_COPY &&
			w->item_id != 0)
			bytes += pg_atomic_read_u64(&w->bytes);
	}
	LWLockRelease(IngestShared->lock);
	update_rate(&copy_sample, now, bytes, &MyMigrationSlot->copy_rate);
}

/*
 * ingest_rate_sample_apply
 *		Apply rate: changes/s, recent.
 */
void
ingest_rate_sample_apply(void)
{
	static RateSample sample;

	update_rate(&sample, GetCurrentTimestamp(),
				pg_atomic_read_u64(&MyMigrationSlot->changes_applied), &MyMigrationSlot->apply_rate);
}
