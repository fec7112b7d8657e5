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
 * Locking: what the statements take (CREATE INDEX: ShareLock on its table);
 * items are claimed with row locks, see schema.c.
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

/*
 * ingest_index_item_settings
 *		In the transaction of schema item item_id, of stage 1, before it
 *		runs: its max_parallel_maintenance_workers (see the file header).
 *		Reset at the end of the transaction.  table_bytes is the size of its
 *		table (0 for a partitioned table): a table smaller than
 *		min_parallel_table_scan_size is built serially (0), without a look
 *		at the catalog; 0 rather than the server's setting, which a
 *		parallel_workers reloption of the table would use whatever its
 *		size (plan_create_index_workers).
 */
void
ingest_index_item_settings(IngestMigration *m, int32 item_id, int64 table_bytes)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		vals[2];
	SPITupleTable *tab;
	int64		copies;
	int64		indexes;
	int			idle;

	if (ingest_index_parallel_workers != -1 || max_parallel_maintenance_workers <= 0)
		return;
	if (table_bytes > 0 &&
		table_bytes / BLCKSZ < (int64) min_parallel_table_scan_size)
	{
		/* serial: but a parallel_workers reloption would ask for workers */
		(void) set_config_option("max_parallel_maintenance_workers", "0",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
								 true, 0, false);
		return;
	}
	vals[0] = Int32GetDatum(m->id);
	vals[1] = Int32GetDatum(item_id);
	ingest_catalog_begin();
	tab = ingest_catalog_query_kept(&plan,
									"SELECT"
									" (SELECT count(*) FROM ingest.copy_item c"
									"   WHERE c.migration_id = $1 AND c.state = 'pending'),"
									" (SELECT count(*) FROM ingest.schema_item s"
									"   WHERE s.migration_id = $1 AND s.stage = 1 AND s.state = 'pending'"
									"   AND s.id <> $2 AND NOT EXISTS ("
									"    SELECT 1 FROM ingest.copy_item c WHERE c.migration_id = s.migration_id"
									"    AND c.nspname = s.nspname AND c.relname = s.relname"
									"    AND c.state NOT IN ('done', 'skipped')))",
									2, types, vals, NULL);
	copies = ingest_getint(tab, 0, 1, 0);
	indexes = ingest_getint(tab, 0, 2, 0);
	ingest_catalog_end();

	/* serial beside copies, and beside other ready index builds */
	idle = copies > 0 ? 0 :
		m->table_jobs + m->index_jobs - 1 -
		(int) Min(indexes, (int64) Max(m->index_jobs - 1, 0));
	idle = Max(Min(idle, max_parallel_maintenance_workers), 0);
	(void) set_config_option("max_parallel_maintenance_workers", psprintf("%d", idle),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
}

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
