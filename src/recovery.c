/*-------------------------------------------------------------------------
 *
 * recovery.c
 *	  Restart recovery of the coordinator: the copy after a restart or
 *	  after the loss of the snapshot, and the count of its errors.
 *
 * Everything a migration does is recorded in the transaction that did it,
 * so a coordinator that starts again resumes its phase.  Two things do not
 * survive it:
 *	 - the snapshot of the copy (the idle source session that keeps it,
 *	   snapshot.c): in phase copying, a new coordinator exports a new one;
 *	   so does a coordinator whose snapshot session the source ended
 *	   (ingest_recover_snapshot: the copy workers on the dead snapshot stop,
 *	   their items stay pending and their attempts do not count; a new
 *	   snapshot once the source is back, for up to
 *	   pg_ingest.stream_failure_timeout).  What is copied from then on
 *	   carries the new snapshot's LSN as its sync LSN.
 *	 - a split table of which only some parts were copied: its parts must
 *	   come from one snapshot, or a row that moved between them would be
 *	   copied twice or not at all; it is emptied and copied again whole
 *	   (recopy_partial_tables; a table is split only if its target is its
 *	   own, neither partitioned nor a root that leaves of the source share,
 *	   see target.c).
 * An error of the coordinator itself is counted (ingest.migration.restarts,
 * ingest_recover_count_error); the supervisor starts the coordinator again
 * after a growing delay, and after pg_ingest.max_retries the migration
 * fails.
 *
 * State: in the catalog (copy items, restarts); the snapshot in snapshot.c.
 *
 * Locking: the target tables copied again are truncated under
 * AccessExclusiveLock (ingest_target_relid).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "citus.h"
#include "conn.h"
#include "coordinator.h"
#include "pg_ingest.h"
#include "receiver.h"
#include "snapshot.h"
#include "source.h"
#include "target.h"

/*
 * recopy_partial_tables
 *		After a restart, a table split in parts some of which were copied
 *		under the old snapshot is copied again whole under the new one: its
 *		parts must come from one snapshot, or a row that moved between
 *		parts in between would be copied twice or not at all.
 */
static void
recopy_partial_tables(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(MyMigration->id)};
	SPITupleTable *tab;
	List	   *tables = NIL;
	List	   *only = NIL;
	List	   *relids = NIL;
	ListCell   *lc;
	uint64		i;

	ingest_xact_start();
	ingest_catalog_begin();
	tab = ingest_catalog_query("WITH partial AS ("
							   "  SELECT nspname, relname FROM ingest.copy_item"
							   "  WHERE migration_id = $1"
							   /* large objects: each item on its own (largeobject.c) */
							   "  AND (nspname, relname) <> ('pg_catalog', 'pg_largeobject')"
							   "  GROUP BY 1, 2"
							   "  HAVING count(*) > 1 AND bool_or(state = 'done')"
							   "  AND bool_or(state <> 'done'))"
							   " UPDATE ingest.copy_item c SET state = 'pending', rows_done = NULL,"
							   "  bytes_done = NULL, sync_lsn = NULL, finished_at = NULL"
							   " FROM partial p WHERE c.migration_id = $1"
							   " AND c.nspname = p.nspname AND c.relname = p.relname AND c.part = 1"
							   " RETURNING c.nspname, c.relname, c.root_nspname, c.root_relname",
							   1, types, vals, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		mapped;
		Oid			relid;

		/* the table the rows went to (target.c); split only if its own */
		relid = ingest_target_relid(ingest_getstr(tab, i, 1), ingest_getstr(tab, i, 2),
									ingest_getstr(tab, i, 3), ingest_getstr(tab, i, 4),
									AccessExclusiveLock, &mapped);
		if (!OidIsValid(relid) || mapped)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot copy table %s again: %s",
							ingest_qualified(ingest_getstr(tab, i, 1), ingest_getstr(tab, i, 2)),
							OidIsValid(relid) ? "its rows share a table with those of other partitions" :
							"it does not exist on the target")));
		tables = lappend(tables, ingest_relid_name(relid));
		relids = lappend_oid(relids, relid);
		/* a partitioned table goes with its partitions */
		only = lappend_int(only, get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE);
	}
	ingest_catalog_exec("WITH partial AS ("
						"  SELECT nspname, relname FROM ingest.copy_item"
						"  WHERE migration_id = $1"
						"  AND (nspname, relname) <> ('pg_catalog', 'pg_largeobject')"
						"  GROUP BY 1, 2"
						"  HAVING count(*) > 1 AND bool_or(state = 'done'))"
						" UPDATE ingest.copy_item c SET state = 'pending', rows_done = NULL,"
						"  bytes_done = NULL, sync_lsn = NULL, finished_at = NULL"
						" FROM partial p WHERE c.migration_id = $1"
						" AND c.nspname = p.nspname AND c.relname = p.relname",
						1, types, vals, NULL);
	ingest_catalog_end();
	foreach(lc, tables)
	{
		Oid			relid = list_nth_oid(relids, foreach_current_index(lc));

		/*
		 * As the migration's owner, like the copy; a Citus table through
		 * Citus (its shards, not only its shell), in a transaction block
		 * that commits the shards' writes with the rest (citus.c).
		 */
		if (ingest_citus_table(relid))
			ingest_citus_begin_block();
		ingest_citus_truncate(psprintf("TRUNCATE %s%s",
									   list_nth_int(only, foreach_current_index(lc)) ? "ONLY " : "",
									   (char *) lfirst(lc)),
							  list_make1_oid(relid));
		ingest_event(MyMigration->id, "INFO", "copy", lfirst(lc),
					 "part of this split table was copied under the previous snapshot: copied again whole",
					 NULL);
	}
	ingest_xact_commit();
}

/*
 * ingest_recover_snapshot
 *		In the copying phase: when the session keeping the snapshot is gone,
 *		stop the copy workers, export a new snapshot once the source is
 *		back, and have the tables not yet copied copied under it (see the
 *		file header).  False if the migration ended meanwhile (stopped
 *		says).
 */
bool
ingest_recover_snapshot(bool (*stopped) (void))
{
	TimestampTz since;
	int			attempt = 0;
	char	   *why;
	char	   *old_snapshot = MyMigration->snapshot_name ? pstrdup(MyMigration->snapshot_name) : NULL;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(MyMigration->id)};

	if (ingest_snapshot_alive())
		return true;
	why = ingest_snapshot_error(MySource->password);
	ingest_snapshot_release();
	ereport(WARNING,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("pg_ingest coordinator of migration \"%s\": the source session keeping snapshot %s is gone: %s",
					MyMigration->name, old_snapshot ? old_snapshot : "(none)", why)));
	IN_TRANSACTION(ingest_event(MyMigration->id, "WARNING", "snapshot", NULL,
								psprintf("the source session keeping snapshot %s is gone (%s): the tables not yet copied will be copied under a new snapshot",
										 old_snapshot ? old_snapshot : "(none)", why),
								NULL));

	/* the copy workers on the dead snapshot stop; their items stay pending */
	ingest_pool_stop_copy_workers(30000L);

	/* a new snapshot, once the source is back */
	since = GetCurrentTimestamp();
	for (;;)
	{
		volatile bool exported = false;
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			ingest_snapshot_export(MyMigration, MySource);
			exported = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			ingest_xact_abort();
			MemoryContextSwitchTo(cxt);
			ingest_snapshot_release();
			if (TimestampDifferenceExceeds(since, GetCurrentTimestamp(),
										   ingest_stream_failure_timeout * 1000))
				ereport(ERROR,
						(errcode(edata->sqlerrcode),
						 errmsg("could not export a new snapshot for %d s (pg_ingest.stream_failure_timeout): %s",
								ingest_stream_failure_timeout, edata->message)));
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("pg_ingest coordinator of migration \"%s\": could not export a new snapshot, retrying: %s",
							MyMigration->name, edata->message)));
		}
		PG_END_TRY();
		if (exported)
			break;
		if (stopped())
			return false;
		(void) ingest_sleep_ms(Min(10000L, (long) Max(ingest_retry_delay, 100) << Min(attempt, 5)));
		attempt++;
	}

	/* what the dead snapshot made fail is not the tables' fault */
	IN_TRANSACTION(ingest_catalog_begin();
				   ingest_catalog_exec("UPDATE ingest.copy_item SET attempts = 0"
									   " WHERE migration_id = $1 AND state = 'pending'",
									   1, types, vals, NULL);
				   ingest_catalog_end());
	recopy_partial_tables();
	return !stopped();
}

/*
 * ingest_recover_copy
 *		Phase copying, entered by a coordinator that did not export the
 *		snapshot of the start (a restart): a new snapshot, and the split
 *		tables copied in part copied again whole.
 */
void
ingest_recover_copy(void)
{
	ingest_snapshot_export(MyMigration, MySource);
	recopy_partial_tables();
}

/*
 * ingest_recover_count_error
 *		Record an error of the coordinator; fail the migration once it has
 *		happened more than pg_ingest.max_retries times (then true: the
 *		coordinator ends for good).
 */
bool
ingest_recover_count_error(ErrorData *edata)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(MyMigration->id)};
	bool		give_up = MyMigration->restarts + 1 > ingest_max_retries;

	ingest_xact_start();
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET restarts = restarts + 1 WHERE id = $1",
						1, types, vals, NULL);
	ingest_catalog_end();
	if (give_up)
		ingest_fail_migration(MyMigration, psprintf("%s (phase %s, after %d attempts)",
										  edata->message, MyMigration->phase, MyMigration->restarts + 1));
	else
		ingest_event(MyMigration->id, "WARNING", "retry", NULL,
					 psprintf("coordinator error in phase %s, restarting (attempt %d of %d): %s",
							  MyMigration->phase, MyMigration->restarts + 1, ingest_max_retries, edata->message),
					 edata->detail);
	ingest_xact_commit();
	return give_up;
}
