/*-------------------------------------------------------------------------
 *
 * stop.c
 *	  The stop protocol of a migration with change data capture: a stop
 *	  LSN asked for (ingest.stop_at, ingest.cutover), recorded, reached,
 *	  and what the coordinator does once the applier reached it.
 *
 *	1. ingest.stop_at / ingest.cutover write the LSN to the migration
 *	   slot's stop_request when their transaction commits (slots.c);
 *	2. the coordinator records it (ingest_stop_record_request): the
 *	   catalog's stop_lsn, an event, phase stopping, and wakes the applier;
 *	3. the applier applies up to that LSN, commits, and sets reached_stop
 *	   (apply.c);
 *	4. the coordinator finishes the stream (ingest_stop_finish_stream):
 *	   the receiver and applier stopped, the applied LSN recorded, the
 *	   tables of resync => 'at_cutover' copied again (resync.c), sequences
 *	   set from the source's current values (plus
 *	   pg_ingest.sequence_margin), the large objects created, changed or
 *	   removed since the snapshot (largeobject_stop.c), materialized views
 *	   refreshed (matview.c), the event trigger removed (ddl.c), the slot
 *	   dropped unless pg_ingest.drop_slot_at_stop is off (the spool and the
 *	   origin with it); then the phase machine completes the migration.
 *
 * State: stop_request, reached_stop and stop_streaming in the migration
 * slot (shared memory); stop_lsn and applied_lsn in ingest.migration.
 *
 * Locking: the flags are written through ingest_slot_set_flag
 * (pg_ingest.h); stop_request and applied_lsn are atomics.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"

#include "conn.h"
#include "coordinator.h"
#include "ddl.h"
#include "pg_ingest.h"
#include "plan.h"
#include "resync.h"
#include "schema.h"
#include "snapshot.h"
#include "source.h"

/*
 * ingest_stop_record_request
 *		Step 2 of the file header: record a stop asked for through shared
 *		memory (ingest.stop_at, cutover).
 */
void
ingest_stop_record_request(void)
{
	XLogRecPtr	lsn = pg_atomic_read_u64(&MyMigrationSlot->stop_request);
	Oid			types[2] = {INT4OID, PG_LSNOID};
	Datum		vals[2];

	if (lsn == InvalidXLogRecPtr || lsn == MyMigration->stop_lsn)
		return;
	vals[0] = Int32GetDatum(MyMigration->id);
	vals[1] = LSNGetDatum(lsn);
	ingest_xact_start();
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET stop_lsn = $2 WHERE id = $1",
						2, types, vals, NULL);
	ingest_catalog_end();
	ingest_event(MyMigration->id, "INFO", "stop", NULL,
				 psprintf("stop at %X/%X", LSN_FORMAT_ARGS(lsn)), NULL);
	if (strcmp(MyMigration->phase, "stopping") != 0)
		ingest_set_phase(MyMigration, "stopping", "catching_up,streaming");
	ingest_xact_commit();
	MyMigration->stop_lsn = lsn;
	ingest_wake_workers(MyMigrationSlotNo, INGEST_WORKER_APPLIER);
}

/*
 * ingest_stop_finish_stream
 *		Step 4 of the file header, once the applier reached the stop.
 */
void
ingest_stop_finish_stream(void)
{
	PGconn	   *conn;
	List	   *rels;
	List	   *items;
	bool		pending;
	char	   *error = NULL;

	ingest_slot_set_flag(&MyMigrationSlot->stop_streaming, true);
	(void) ingest_signal_workers(MyMigrationSlotNo, INGEST_WORKER_RECEIVER, SIGTERM, true);
	(void) ingest_signal_workers(MyMigrationSlotNo, INGEST_WORKER_APPLIER, SIGTERM, true);
	(void) ingest_wait_workers_gone(MyMigrationSlotNo, 30000L);

	/* where the stream ended stays visible once shared memory forgets it */
	{
		Oid			types[2] = {INT4OID, PG_LSNOID};
		Datum		vals[2];

		vals[0] = Int32GetDatum(MyMigration->id);
		vals[1] = LSNGetDatum(pg_atomic_read_u64(&MyMigrationSlot->applied_lsn));
		IN_TRANSACTION(ingest_catalog_begin();
					   ingest_catalog_exec("UPDATE ingest.migration SET applied_lsn = $2 WHERE id = $1",
										   2, types, vals, NULL);
					   ingest_catalog_end());
	}

	/* resync => 'at_cutover': tables decoding cannot follow, copied again */
	ingest_resync_at_stop(MyMigration, MySource);

	WITH_SOURCE_SESSION(conn, MySource, INGEST_CONN_SQL,
						psprintf("pg_ingest %s coordinator", MyMigration->name), NULL,
	{
		rels = ingest_source_relations(conn, false, MySource->password);
		ingest_apply_filters(rels, MyFilters);
		items = ingest_plan_sequences(conn, rels, MySource->password);
	});
	IN_TRANSACTION(ingest_store_schema_items(MyMigration->id, items));
	(void) ingest_run_schema_items(MyMigration, STAGE_LAST, STAGE_LAST, &pending);
	/* large objects are not decoded: those changed since the snapshot */
	ingest_lo_sync_at_stop(MyMigration, MySource);
	ingest_refresh_matviews(MyMigration, MySource, MyFilters);
	(void) ingest_ddl_remove(MyMigration, MySource);

	if (ingest_drop_slot_at_stop)
	{
		if (!ingest_drop_source_slot(MyMigration, MySource, &error))
			IN_TRANSACTION(ingest_event(MyMigration->id, "WARNING", "slot", MyMigration->slot_name,
										psprintf("could not drop the replication slot: %s", error),
										"Drop it with ingest.cleanup() or pg_drop_replication_slot() on the source."));
		else
			IN_TRANSACTION(ingest_drop_local(MyMigration));
	}
}
