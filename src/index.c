/*-------------------------------------------------------------------------
 *
 * index.c
 *	  The index worker: builds indexes, constraints and statistics of the
 *	  post-data stages 1 to 4 as soon as they are ready (see schema.c and items.c).
 *
 * A migration has index_jobs of them.  They start as soon as the
 * post-data section is known, while tables are still being copied; a copy
 * worker that finishes a table wakes them, and so does an index worker
 * after each item it commits (items.c).  A worker leaves when nothing of
 * stages 1 to 4 is pending.
 *
 * Parallel builds: with pg_ingest.index_parallel_workers = -1 (the
 * default) the session of each stage-1 item (an index) sets
 * max_parallel_maintenance_workers, for that transaction only, to the
 * number of the migration's jobs (table_jobs + index_jobs) that nothing
 * else keeps busy at that moment: none while copies are still to do
 * (indexes built beside copies stay serial), and then the jobs less the
 * other index builds ready to run.  So the last large index, built when
 * the copies are over, gets the cores the idle jobs leave.  (An index of a
 * table below min_parallel_table_scan_size is built serially, without
 * this look at the catalog.)  The server's own
 * max_parallel_maintenance_workers bounds it, and the server launches only
 * the workers that max_worker_processes and max_parallel_workers leave
 * (the build does not wait for them).  A value of 0 or more is the
 * workers' fixed setting instead.
 *
 * The settings of each item's transaction are set by items.c, which runs
 * the items (ingest_index_item_settings).
 *
 * State: none of its own; the items in ingest.schema_item (items.c).
 *
 * Locking: what the statements take (CREATE INDEX: ShareLock on its table);
 * items are claimed with row locks, see items.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "optimizer/paths.h"
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
