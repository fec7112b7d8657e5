/*-------------------------------------------------------------------------
 *
 * index.c
 *	  The index worker: builds indexes, constraints and statistics of the
 *	  post-data stages 1 to 4 as soon as they are ready (see schema.c).
 *
 * A migration has index_jobs of them.  They start as soon as the
 * post-data section is known, while tables are still being copied; a copy
 * worker that finishes a table wakes them, and so does an index worker
 * after each item it commits (schema.c).  A worker leaves when nothing of
 * stages 1 to 4 is pending.
 *
 * Locking: what the statements take (CREATE INDEX: ShareLock on its table);
 * items are claimed with row locks, see schema.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "pg_ingest.h"
#include "schema.h"

void
ingest_index_main(Datum main_arg)
{
	int			slot;
	int32		migration_id;
	IngestMigration *m;
	MemoryContext cxt;

	ingest_worker_init(main_arg, INGEST_WORKER_INDEX, &slot, &migration_id);
	if (ingest_index_parallel_workers >= 0)
		SetConfigOption("max_parallel_maintenance_workers",
						psprintf("%d", ingest_index_parallel_workers),
						PGC_USERSET, PGC_S_SESSION);
	cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest index worker",
								ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		bool		pending;
		int			ran;

		MemoryContextSwitchTo(cxt);
		MemoryContextReset(cxt);
		ingest_xact_start();
		m = ingest_load_migration(migration_id);
		ingest_xact_commit();
		if (ingest_phase_is_terminal(m->phase))
			break;

		ran = ingest_run_schema_items(m, 1, 4, &pending);
		if (!pending)
			break;
		/* nothing ready: wait for a copy to finish (it sets our latch) */
		if (ran == 0)
			(void) ingest_sleep_ms(1000L);
	}
	ingest_wake_workers(slot, INGEST_WORKER_COORDINATOR);
	proc_exit(0);
}
