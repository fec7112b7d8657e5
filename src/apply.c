/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  The applier: applies the spooled change stream to the target,
 *	  exactly once, in commit order.  This file is its loop: the spool
 *	  read, source transactions batched into target transactions, the
 *	  origin's progress, the spool segments removed, the pause and the
 *	  stop; and each change dispatched (apply_change, apply_ddl).
 *
 * It starts once the full load is done (tables copied, their indexes
 * built: keys are looked up through them) and reads the spool, whole
 * transactions only, with session_replication_role = replica: the
 * target's triggers and foreign keys do not fire.  What it knows of each
 * source table and the target table its changes go to (the sync LSN, the
 * mapping, the privileges checked, the TRUNCATEs pending) is
 * apply_tables.c's; how a row change goes through the executor (values
 * converted, partitions routed, rows found) is apply_row.c's.  A Citus
 * distributed or reference table's changes go through Citus, as SPI
 * prepared statements its planner routes to the shards (citus.c); with
 * Citus installed each batch is a transaction block.
 *
 * Exactly once: progress is the replication origin pg_ingest_<migration>,
 * advanced to the end LSN of the last source transaction applied in the
 * same target transaction (replorigin_session_origin_lsn), so it commits
 * atomically with the data.  Consecutive source transactions share a
 * target transaction, up to pg_ingest.apply_batch_size of them or
 * pg_ingest.apply_batch_delay.  Transactions the origin has passed are
 * skipped.  A change to a table is applied only if its transaction
 * committed at or after the LSN of the snapshot the table was copied under
 * (its sync LSN): earlier ones are in the copy.  No change to a table
 * that resync => 'at_cutover' copies again at the stop (resync.c) is
 * applied.
 *
 * Memory is bounded whatever the size of a source transaction: changes are
 * applied as they are read, each in a context reset afterwards.  Spool
 * segments the reader is done with are removed once what they held is
 * committed and flushed, and the spool's size published then.
 * ingest.pause() holds the applier between source transactions, never
 * inside one.  The applier waits on its latch: the receiver sets it at each
 * transaction spooled, the coordinator when it pauses or resumes the
 * applier, a stop request when it arrives.
 *
 * The receiver has converted each message to this database's encoding and
 * parsed it (wal2json.c).  Values are read with the DateStyle, IntervalStyle
 * and lc_monetary the source sessions write them in (conn.c).
 *
 * A logical message of the migration's event trigger on the source is a
 * schema change (ddl_apply.c), applied where it stands in its transaction,
 * pending truncates first; afterwards every table is looked up anew, and
 * the source transaction holding it commits alone.  Rows of a materialized
 * view made while streaming are not applied: the target's view fills
 * itself.
 *
 * A change that cannot be applied fails the migration: last_error, the
 * event and the server log say which table, which LSN and which values
 * (and the error's hint).  Nothing is skipped (but the changes of a
 * materialized view, refreshed at the stop instead: matview.c, and of the
 * tables resync => 'at_cutover' copies again: resync.c); ingest.resume()
 * starts again from the same change.
 *
 * Schema changes of the source (ddl => 'infer' or 'off'): before a change
 * is applied, infer.c compares its columns with the target table's and
 * alters the table (or fails); a change of a table the migration does not
 * know, in scope of its filters, has infer.c create and copy the table
 * under 'infer' (apply_tables.c), with a sync LSN of its own.
 *
 * The stop: the stop LSN is read from the catalog between batches, and
 * from shared memory as soon as ingest.stop() asks (stop_request); once
 * the stream has passed it, what was applied is flushed and the applier
 * sets reached_stop and wakes the coordinator (stop.c), which drops the
 * slot and the spool.
 *
 * State: in the catalog, the stop LSN (read); the progress in the
 * replication origin, committed with the data; in shared memory
 * (MyMigrationSlot), applied_lsn, applied_commit_ts, changes_applied,
 * apply_pos, spool_bytes, apply_idle and reached_stop, written by this
 * process only; in this process, the source transaction being read
 * (apply_src, apply_int.h) and the batch open.
 *
 * Locking: RowExclusiveLock on the tables it writes (apply_tables.c,
 * apply_row.c); the origin is held by this process
 * (replorigin_session_setup); IngestShared->lock only to change a flag
 * (ingest_slot_set_flag, exclusive) and to wake the coordinator
 * (ingest_wake_workers, shared), the counters being atomics.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "replication/origin.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "apply_int.h"
#include "citus.h"
#include "conn.h"
#include "ddl.h"
#include "infer.h"
#include "pg_ingest.h"
#include "spool.h"
#include "target.h"
#include "wal2json.h"

#define VALUE_IN_MESSAGE_MAX 64

static MemoryContext change_cxt;
static SpoolReader reader;
static char *spool_dir;
static uint32 removed_before = 0;	/* segments before this one are gone */

/* the source transaction being applied */
ApplySourceTxn apply_src;

/* the target transaction open, holding a batch of source transactions */
static struct
{
	bool		open;
	int			txns;
	int64		changes;
	TimestampTz started;
	XLogRecPtr	end_lsn;		/* of its last source transaction */
	TimestampTz commit_time;
} batch;

static bool ddl_in_txn = false;		/* the source transaction changed the schema */

/*
 * A schema change of the source, applied here (ddl_apply.c): pending truncates
 * go first; afterwards every table is looked up anew, the migration's
 * tables read again from the catalog (created, renamed, dropped).
 */
static void
apply_ddl(W2JChange *c)
{
	ingest_apply_flush_truncates();
	if (!ingest_ddl_apply(MyMigration, MyFilters, c, apply_src.final_lsn))
		return;
	ddl_in_txn = true;
	ingest_apply_forget_tables();
	ingest_apply_load_tables();
}

/* Apply one change of the current source transaction. */
static void
apply_change(W2JChange *c)
{
	ApplyRel   *r;
	Relation	rel;
	ApplyState	st;
	TupleTableSlot *newrow;
	TupleTableSlot *oldrow;
	ResultRelInfo *part;
	ResultRelInfo *newpart;
	TupleTableSlot *newslot;
	TupleConversionMap *map;

	if (c->action == 'T' && ingest_apply_is_root_of_known_leaves(c->schema, c->table))
		return;
	r = ingest_apply_lookup_rel(c->schema, c->table);
	if (r->skip)
	{
		if (c->action == 'T')
			apply_truncate_left_out = true;
		return;
	}
	/* a change the table's copy already has */
	if (apply_src.final_lsn < r->sync_lsn)
		return;
	/* resync => 'at_cutover': the table is copied again at the stop */
	if (r->resync)
		return;
	/* its columns differ from the target's: a schema change (infer.c) */
	if (c->action != 'T' && ingest_infer_change(MyMigration, MySource, r->relid, c))
		r = ingest_apply_lookup_rel(c->schema, c->table);

	/*
	 * Locking the table may process invalidations (a REVOKE, an ALTER): its
	 * entry is then looked up, and checked, anew.
	 */
	for (;;)
	{
		rel = table_open(r->relid, RowExclusiveLock);
		if (r->valid)
			break;
		table_close(rel, RowExclusiveLock);
		r = ingest_apply_lookup_rel(c->schema, c->table);
	}
	ingest_apply_check_target(r, c->action);

	if (c->action == 'T')
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		table_close(rel, NoLock);
		if (!list_member_ptr(apply_truncates, r))
			apply_truncates = lappend(apply_truncates, r);
		MemoryContextSwitchTo(old);
		return;
	}
	if (apply_truncates != NIL)
	{
		table_close(rel, NoLock);
		ingest_apply_flush_truncates();
		rel = table_open(r->relid, RowExclusiveLock);
	}

	/* a Citus table: through Citus, to the shard (citus.c) */
	if (ingest_citus_table(r->relid))
	{
		ingest_citus_apply_change(r->relid, c);
		table_close(rel, NoLock);
		CommandCounterIncrement();
		batch.changes++;
		return;
	}

	ingest_apply_begin(&st, rel, c->action == 'I' ? CMD_INSERT :
				c->action == 'U' ? CMD_UPDATE : CMD_DELETE);
	newrow = ExecInitExtraTupleSlot(st.estate, RelationGetDescr(rel), &TTSOpsVirtual);

	switch (c->action)
	{
		case 'I':
			ExecClearTuple(newrow);
			memset(newrow->tts_isnull, true, sizeof(bool) * RelationGetDescr(rel)->natts);
			ExecStoreVirtualTuple(newrow);
			ingest_apply_store_values(rel, r, newrow, c->columns, c->ncolumns, false);
			if (st.proute)
			{
				part = ingest_apply_route(&st, r, ACL_INSERT, newrow, &newslot);
				ExecSimpleRelationInsert(part, st.estate, newslot);
			}
			else
				ExecSimpleRelationInsert(st.rri, st.estate, newrow);
			break;
		case 'U':
			if (!ingest_apply_find_row(rel, r, &st, c, &part, &oldrow))
				ereport(ERROR,
						(errcode(ERRCODE_NO_DATA_FOUND),
						 errmsg("row to update not found in %s.%s",
								quote_identifier(c->schema), quote_identifier(c->table))));

			/*
			 * The new row, in the target's rowtype: columns the source left
			 * out (unchanged TOAST) keep their value.
			 */
			map = part != st.rri ? ExecGetChildToRootMap(part) : NULL;
			if (map != NULL)
				newrow = execute_attr_map_slot(map->attrMap, oldrow, newrow);
			else
				ExecCopySlot(newrow, oldrow);
			slot_getallattrs(newrow);
			ingest_apply_store_values(rel, r, newrow, c->columns, c->ncolumns, false);
			if (st.proute == NULL)
			{
				EvalPlanQualSetSlot(&st.epq, newrow);
				ExecSimpleRelationUpdate(st.rri, st.estate, &st.epq, oldrow, newrow);
				break;
			}
			newpart = ingest_apply_route(&st, r, ACL_UPDATE, newrow, &newslot);
			if (newpart == part)
			{
				EvalPlanQualSetSlot(&st.epq, newslot);
				ExecSimpleRelationUpdate(part, st.estate, &st.epq, oldrow, newslot);
			}
			else
			{
				/* the row moves to another partition, as native apply does it */
				ingest_apply_check_leaf(r, part, ACL_DELETE);
				ingest_apply_check_leaf(r, newpart, ACL_INSERT);
				EvalPlanQualSetSlot(&st.epq, oldrow);
				ExecSimpleRelationDelete(part, st.estate, &st.epq, oldrow);
				ExecSimpleRelationInsert(newpart, st.estate, newslot);
			}
			break;
		case 'D':
			if (!ingest_apply_find_row(rel, r, &st, c, &part, &oldrow))
				ereport(ERROR,
						(errcode(ERRCODE_NO_DATA_FOUND),
						 errmsg("row to delete not found in %s.%s",
								quote_identifier(c->schema), quote_identifier(c->table))));
			EvalPlanQualSetSlot(&st.epq, oldrow);
			ExecSimpleRelationDelete(part, st.estate, &st.epq, oldrow);
			break;
	}
	ingest_apply_end(&st);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	batch.changes++;
}

static void
publish(void)
{
	pg_atomic_write_u64(&MyMigrationSlot->applied_lsn, batch.end_lsn);
	pg_atomic_write_u64(&MyMigrationSlot->applied_commit_ts, (uint64) batch.commit_time);
}

/* Commit the open target transaction with the origin's progress. */
static void
commit_batch(void)
{
	if (!batch.open)
		return;
	ingest_apply_flush_truncates();
	replorigin_session_origin_lsn = batch.end_lsn;
	replorigin_session_origin_timestamp = batch.commit_time;
	ingest_xact_commit();
	pg_atomic_fetch_add_u64(&MyMigrationSlot->changes_applied, batch.changes);
	if (batch.end_lsn != InvalidXLogRecPtr)
		publish();
	batch.open = false;
	batch.txns = 0;
	batch.changes = 0;
	pgstat_report_activity(STATE_IDLE, NULL);
}


static void
open_batch(void)
{
	if (batch.open)
		return;
	ingest_apply_forget_checks();
	ingest_xact_start();
	ingest_citus_apply_batch_begun();	/* a block, with Citus (citus.c) */
	batch.open = true;
	batch.started = GetCurrentTimestamp();
	pgstat_report_activity(STATE_RUNNING, "applying changes");
}

/*
 * Publish whether the applier is idle, taking the lock only when that
 * changes, not for every change.  The applier is the only writer of the
 * flag: reading it without the lock is reading its own value.
 */
static void
set_idle(bool idle)
{
	if (MyMigrationSlot->apply_idle != idle)
		ingest_slot_set_flag(&MyMigrationSlot->apply_idle, idle);
}

static TimestampTz
parse_timestamp(const char *s)
{
	if (s == NULL)
		return 0;
	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(s),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
}

static void
change_error_context(void *arg)
{
	errcontext("applying %s", ingest_w2j_describe((W2JChange *) arg, VALUE_IN_MESSAGE_MAX));
}

/*
 * Make what was applied durable: the workers commit asynchronously.
 *
 * Not XLogFlush(GetXLogInsertRecPtr()): when the insert position sits at
 * the start of a WAL page, GetXLogInsertRecPtr() points past that page's
 * header, beyond anything written, and XLogFlush() fails with "xlog flush
 * request ... is not satisfied".  The flush goes to ends of commit records
 * really written instead: the local commit of the origin's last advance
 * (replorigin_session_get_progress(true) flushes up to it), which is the
 * last batch applied, by this process or by an applier of this migration
 * before it (whose spool segments this one may remove); and this process's
 * last commit (XactLastCommitEnd), whatever it wrote.
 */
static void
flush_applied(void)
{
	(void) replorigin_session_get_progress(true);
	if (XactLastCommitEnd != InvalidXLogRecPtr)
		XLogFlush(XactLastCommitEnd);
}

/*
 * Remove the spool segments the reader is done with.  Everything read from
 * them is committed (no batch open), and made durable first.
 */
static void
remove_applied_segments(void)
{
	if (batch.open || reader.segno <= removed_before)
		return;
	flush_applied();
	ingest_spool_remove_before(spool_dir, reader.segno);
	removed_before = reader.segno;
	/* seen at once (ingest.status, the receiver's limit), not at its next sync */
	pg_atomic_write_u64(&MyMigrationSlot->spool_bytes, ingest_spool_size(spool_dir));
}

/*
 * The stop LSN is reached: tell the coordinator, which drops the slot and
 * the spool, once what was applied is durable.
 */
static void
reach_stop(void)
{
	flush_applied();
	ingest_slot_set_flag(&MyMigrationSlot->reached_stop, true);
	ingest_wake_workers(MyMigrationSlotNo, INGEST_WORKER_COORDINATOR);
}

/* The stop LSN, as the catalog has it now.  No transaction may be open. */
static XLogRecPtr
read_stop_lsn(void)
{
	IngestMigration *now;
	XLogRecPtr	stop;

	ingest_xact_start();
	now = ingest_load_migration(MyMigration->id);
	stop = now->stop_lsn;
	ingest_xact_commit();
	return stop;
}

/*
 * ingest_applier_main
 *		Entry point of the applier.
 */
void
ingest_applier_main(Datum main_arg)
{
	int32		migration_id;
	RepOriginId origin;
	XLogRecPtr	origin_lsn;
	StringInfoData payload;
	XLogRecPtr	stop_lsn;
	TimestampTz stop_checked = 0;
	W2JChange	change;
	volatile bool failed = false;

	ingest_worker_init(main_arg, INGEST_WORKER_APPLIER, &MyMigrationSlotNo, &migration_id);
	SetConfigOption("session_replication_role", "replica", PGC_SUSET, PGC_S_OVERRIDE);
	/* read values as the source's sessions write them (conn.c) */
	SetConfigOption("datestyle", "ISO", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("intervalstyle", "postgres", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lc_monetary", "C", PGC_SUSET, PGC_S_OVERRIDE);

	change_cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest applier change",
									   ALLOCSET_DEFAULT_SIZES);
	ingest_apply_init_tables();

	MemoryContextSwitchTo(TopMemoryContext);
	ingest_xact_start();
	ingest_apply_load_tables();
	ingest_w2j_setup_conversion(MyMigration->source_encoding);
	origin = replorigin_by_name(ingest_origin_name(MyMigration), true);
	if (origin == InvalidRepOriginId)
		origin = replorigin_create(ingest_origin_name(MyMigration));
	ingest_xact_commit();
	replorigin_session_setup(origin);
	replorigin_session_origin = origin;
	origin_lsn = replorigin_session_get_progress(false);
	/* nothing applied yet: the copy (or mode cdc's start) stands at the slot's point */
	pg_atomic_write_u64(&MyMigrationSlot->applied_lsn, Max(origin_lsn, MyMigration->slot_lsn));
	stop_lsn = MyMigration->stop_lsn;

	spool_dir = ingest_spool_dir(MyDatabaseId, MyMigration->id);
	ingest_spool_open_reader(&reader, spool_dir);
	initStringInfo(&payload);
	memset(&batch, 0, sizeof(batch));
	memset(&apply_src, 0, sizeof(apply_src));

	PG_TRY();
	{
		for (;;)
		{
			char		kind;
			XLogRecPtr	lsn;
			XLogRecPtr	flushed;
			char	   *error;
			bool		have;
			TimestampTz now;

			CHECK_FOR_INTERRUPTS();
			if (ConfigReloadPending)
			{
				ConfigReloadPending = false;
				ProcessConfigFile(PGC_SIGHUP);
			}
			MemoryContextReset(change_cxt);
			MemoryContextSwitchTo(change_cxt);

			/*
			 * The catalog's stop LSN (set before a restart) is read between
			 * batches, in a transaction of its own.
			 */
			now = GetCurrentTimestamp();
			if (!batch.open && TimestampDifferenceExceeds(stop_checked, now, 1000))
			{
				stop_lsn = read_stop_lsn();
				stop_checked = now;
				MemoryContextSwitchTo(change_cxt);
			}
			/* a stop just asked for is in shared memory before the catalog */
			if (pg_atomic_read_u64(&MyMigrationSlot->stop_request) != InvalidXLogRecPtr)
				stop_lsn = pg_atomic_read_u64(&MyMigrationSlot->stop_request);

			/*
			 * An operator's pause holds between source transactions: one
			 * begun is read to its end first.
			 */
			if (MyMigrationSlot->paused && !apply_src.begun)
			{
				commit_batch();
				remove_applied_segments();
				set_idle(true);
				(void) ingest_sleep_ms(1000L);
				continue;
			}

			/*
			 * The flushed position is read before the spool's limit: the
			 * receiver publishes a transaction's place in the spool before it
			 * confirms the transaction flushed, so once the stream has
			 * passed the stop LSN, every transaction before it is readable.
			 */
			flushed = pg_atomic_read_u64(&MyMigrationSlot->flushed_lsn);
			pg_read_barrier();
			have = ingest_spool_read(&reader, pg_atomic_read_u64(&MyMigrationSlot->spool_limit),
									 &kind, &lsn, &payload);
			if (!have)
			{
				/* the limit is a transaction's end: what was applied commits */
				Assert(!apply_src.begun);
				pg_atomic_write_u64(&MyMigrationSlot->apply_pos, SPOOL_POS(reader.segno, reader.offset));
				commit_batch();
				remove_applied_segments();
				set_idle(true);

				/* stopped once the stream has passed the stop LSN */
				if (stop_lsn != InvalidXLogRecPtr &&
					(pg_atomic_read_u64(&MyMigrationSlot->applied_lsn) >= stop_lsn || flushed >= stop_lsn))
				{
					reach_stop();
					break;
				}
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 200L, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				continue;
			}
			set_idle(false);

			if (!ingest_w2j_decode(payload.data, payload.len, &change, &error))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("could not parse a change at %X/%X: %s",
								LSN_FORMAT_ARGS(lsn), error)));

			switch (change.action)
			{
				case 'B':
					if (apply_src.begun)
						ereport(ERROR,
								(errcode(ERRCODE_DATA_CORRUPTED),
								 errmsg("the spool holds a transaction without its commit before %X/%X",
										LSN_FORMAT_ARGS(change.lsn))));
					apply_src.begun = true;
					apply_src.final_lsn = change.lsn;
					apply_src.end_lsn = change.nextlsn;
					apply_src.commit_time = parse_timestamp(change.timestamp);
					apply_src.skip = apply_src.end_lsn <= origin_lsn ||
						(stop_lsn != InvalidXLogRecPtr && apply_src.final_lsn > stop_lsn);
					ddl_in_txn = false;
					if (!apply_src.skip)
						open_batch();
					break;
				case 'C':
					if (!apply_src.begun)
						break;
					apply_src.begun = false;
					if (apply_src.skip)
					{
						/* past the stop LSN: nothing after it is applied */
						if (stop_lsn != InvalidXLogRecPtr && apply_src.final_lsn > stop_lsn)
						{
							commit_batch();
							reach_stop();
							goto done;
						}
						break;
					}
					batch.txns++;
					batch.end_lsn = apply_src.end_lsn;
					batch.commit_time = apply_src.commit_time;
					/* a schema change commits alone (ALTER TYPE ... ADD VALUE) */
					if (batch.txns >= ingest_apply_batch_size || ddl_in_txn ||
						TimestampDifferenceExceeds(batch.started, GetCurrentTimestamp(),
												   ingest_apply_batch_delay))
					{
						commit_batch();
						remove_applied_segments();
					}
					break;
				case 'I':
				case 'U':
				case 'D':
				case 'T':
					/*
					 * A change with no BEGIN before it ends a transaction
					 * whose start was in a spool segment already removed:
					 * segments go only once all they hold is committed, so
					 * it was applied.
					 */
					if (apply_src.begun && !apply_src.skip)
					{
						ErrorContextCallback callback;

						/* an error says which change */
						callback.callback = change_error_context;
						callback.arg = &change;
						callback.previous = error_context_stack;
						error_context_stack = &callback;
						apply_change(&change);
						error_context_stack = callback.previous;
					}
					break;
				case 'M':
					/* a schema change where it committed (ddl_apply.c) */
					if (apply_src.begun && !apply_src.skip)
						apply_ddl(&change);
					break;
				default:
					break;
			}
		}
done:	;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		/* the server log has it too, with its context */
		EmitErrorReport();
		edata = CopyErrorData();
		FlushErrorState();
		ingest_xact_abort();
		replorigin_session_origin_lsn = InvalidXLogRecPtr;
		ingest_xact_start();
		ingest_fail_migration(MyMigration, psprintf("%s%s%s%s%s", edata->message,
										  edata->context ? " (" : "",
										  edata->context ? edata->context : "",
										  edata->context ? ")" : "",
										  edata->hint ? psprintf(" Hint: %s", edata->hint) : ""));
		ingest_xact_commit();
		failed = true;
	}
	PG_END_TRY();

	ingest_spool_close_reader(&reader);
	if (apply_source)
		ingest_disconnect(apply_source);
	ingest_wake_workers(MyMigrationSlotNo, INGEST_WORKER_COORDINATOR);
	proc_exit(failed ? 1 : 0);
}
