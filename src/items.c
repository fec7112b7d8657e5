/*-------------------------------------------------------------------------
 *
 * items.c
 *	  The schema items of a migration (schema.c): stored, claimed, and
 *	  executed inside this server, each recorded as done in the transaction
 *	  that ran it: a committed item is not run again, one rolled back (a
 *	  worker killed) stays pending and runs again.
 *
 * The index workers (stages 1 to 4) run one item a transaction.  The
 * coordinator (stages 0 and 5, alone, in order) runs up to BATCH_ITEMS
 * items a transaction, for at most BATCH_MS, each in a subtransaction of
 * its own: an item that fails is rolled back alone and recorded (failed,
 * or pending for a retry) in that transaction, exactly as when it ran
 * alone; one that cannot run in a subtransaction runs alone.  An index
 * build's transaction gets its max_parallel_maintenance_workers from
 * ingest_index_item_settings (see index.c).
 *
 * Claiming (claim_items) must cost little however many items there are:
 * it reads the pending items in claiming order through a partial index and
 * stops at the first ready ones; readiness is probed per row only for the
 * row's own table (partial indexes of pending rows), and once per claim
 * for the whole migration.  Stores of many items ANALYZE the table in
 * their transaction, or the plans would assume it empty.
 *
 * A statement that fails is recorded in ingest.events with its text (cut
 * on a character boundary); it is retried only for transient errors
 * (deadlock, serialization, resources).  The migration goes on, as
 * pg_restore does; what depends on the failed statement fails in its turn
 * and is recorded too, and a table that cannot be copied fails the
 * migration.  Ownership and privilege statements that name a role missing
 * on this server are recorded as warnings.
 *
 * State: ingest.schema_item (the catalog); nothing in shared memory.
 *
 * Locking: items are claimed with FOR UPDATE SKIP LOCKED, so a statement
 * runs once however many workers look for work; the row lock is held until
 * the statement commits (with its batch, for the coordinator's items).
 * Index workers are not batched: a transaction holding the locks of several
 * tables' DDL would make the workers wait for (or deadlock with) each other.
 * An index worker wakes the others after each item it commits, since that
 * may have made items ready.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "optimizer/paths.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ddl.h"
#include "schema.h"

#define STATEMENT_IN_EVENT_MAX 4000

/* a store of this many items analyzes the table (plans of claim_items) */
#define ANALYZE_AFTER_ITEMS 100
/* schema items stored per INSERT (as arrays of their columns) */
#define STORE_ITEMS_PER_INSERT 1000

/*
 * The coordinator runs up to this many items of stages 0 and 5 in one
 * transaction, one subtransaction each, for at most BATCH_MS.
 */
#define BATCH_ITEMS 64
#define BATCH_MS 200

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

/* A one-dimensional array of n values of type typid. */
static Datum
item_array(Datum *values, bool *nulls, int n, Oid typid)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(typid, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, typid,
											  typlen, typbyval, typalign));
}

/*
 * ingest_store_schema_items
 *		Insert items after those the migration has, keeping their order.
 *
 * The INSERT is planned once and takes STORE_ITEMS_PER_INSERT items at a
 * time, as arrays of their columns (a statement per item cost more than
 * the rows: 20,000 items took 1.6 s).  After a large batch the
 * table is analyzed, in this transaction (ANALYZE counts the rows it
 * inserted): the claim query's plan (claim_items) must know that there
 * are thousands of pending items, or it scans them all for each claim.
 */
void
ingest_store_schema_items(int32 migration_id, List *items)
{
	Oid			types[9] = {INT4OID, INT4OID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		vals[9];
	int			n = list_length(items);
	int			done;
	int32		next;
	SPITupleTable *tab;
	SPIPlanPtr	plan;

	ingest_catalog_begin();
	vals[0] = Int32GetDatum(migration_id);
	tab = ingest_catalog_query("SELECT COALESCE(max(id), 0) FROM ingest.schema_item"
							   " WHERE migration_id = $1", 1, types, vals, NULL);
	next = (int32) ingest_getint(tab, 0, 1, 0) + 1;
	plan = SPI_prepare("INSERT INTO ingest.schema_item"
					   " (migration_id, id, stage, kind, nspname, relname, cost, prelude, statement)"
					   " SELECT $1, $2 + u.ord::int4 - 1, u.stage, u.kind, u.nspname, u.relname,"
					   "  u.cost, u.prelude, u.statement"
					   " FROM unnest($3, $4, $5, $6, $7, $8, $9) WITH ORDINALITY"
					   "  AS u(stage, kind, nspname, relname, cost, prelude, statement, ord)",
					   9, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare the insertion of schema items: %s",
			 SPI_result_code_string(SPI_result));
	/* STORE_ITEMS_PER_INSERT rows per statement, as arrays of their columns */
	for (done = 0; done < n; done += STORE_ITEMS_PER_INSERT)
	{
		int			count = Min(STORE_ITEMS_PER_INSERT, n - done);
		Datum	   *cols[7];
		bool	   *isnull[7];
		int			c;
		int			i;

		for (c = 0; c < 7; c++)
		{
			cols[c] = palloc(sizeof(Datum) * count);
			isnull[c] = palloc0(sizeof(bool) * count);
		}
		for (i = 0; i < count; i++)
		{
			SchemaItem *it = list_nth(items, done + i);

			cols[0][i] = Int32GetDatum(it->stage);
			cols[1][i] = CStringGetTextDatum(it->kind);
			isnull[2][i] = it->nspname == NULL;
			if (it->nspname)
				cols[2][i] = CStringGetTextDatum(it->nspname);
			isnull[3][i] = it->relname == NULL;
			if (it->relname)
				cols[3][i] = CStringGetTextDatum(it->relname);
			/* stages 0 and 5 run in dump order, whatever their table's size */
			cols[4][i] = Int64GetDatum(it->stage == STAGE_PRE_DATA ||
									   it->stage == STAGE_LAST ? 0 : it->cost);
			isnull[5][i] = it->prelude == NULL;
			if (it->prelude)
				cols[5][i] = CStringGetTextDatum(it->prelude);
			cols[6][i] = CStringGetTextDatum(it->statement);
		}
		vals[0] = Int32GetDatum(migration_id);
		vals[1] = Int32GetDatum(next + done);
		vals[2] = item_array(cols[0], isnull[0], count, INT4OID);
		vals[3] = item_array(cols[1], isnull[1], count, TEXTOID);
		vals[4] = item_array(cols[2], isnull[2], count, TEXTOID);
		vals[5] = item_array(cols[3], isnull[3], count, TEXTOID);
		vals[6] = item_array(cols[4], isnull[4], count, INT8OID);
		vals[7] = item_array(cols[5], isnull[5], count, TEXTOID);
		vals[8] = item_array(cols[6], isnull[6], count, TEXTOID);
		if (SPI_execute_plan(plan, vals, NULL, false, 0) != SPI_OK_INSERT ||
			SPI_processed != (uint64) count)
			elog(ERROR, "could not insert schema items %d to %d", next + done,
				 next + done + count - 1);
		for (c = 0; c < 7; c++)
		{
			pfree(cols[c]);
			pfree(isnull[c]);
		}
		for (c = 2; c < 9; c++)
			pfree(DatumGetPointer(vals[c]));
	}
	SPI_freeplan(plan);
	if (n >= ANALYZE_AFTER_ITEMS)
		ingest_catalog_exec("ANALYZE ingest.schema_item", 0, NULL, NULL, NULL);
	ingest_catalog_end();
}

/*
 * ingest_count_pending
 *		Whether items of these stages are not yet done, failed or skipped:
 *		1 if some are, else 0 (a count would read them all, for each
 *		question).
 */
int64
ingest_count_pending(int32 migration_id, int stage_lo, int stage_hi)
{
	Oid			types[3] = {INT4OID, INT4OID, INT4OID};
	Datum		vals[3] = {Int32GetDatum(migration_id), Int32GetDatum(stage_lo),
	Int32GetDatum(stage_hi)};
	int64		n;

	ingest_catalog_begin();
	(void) ingest_catalog_query("SELECT 1 FROM ingest.schema_item"
								" WHERE migration_id = $1 AND stage BETWEEN $2 AND $3"
								" AND state = 'pending' LIMIT 1", 3, types, vals, NULL);
	n = SPI_processed;
	ingest_catalog_end();
	return n;
}

typedef struct ClaimedItem
{
	int32		id;
	int			stage;
	char	   *kind;
	char	   *object;
	char	   *prelude;
	char	   *statement;
	int			attempts;
	int64		cost;			/* bytes of its table; 0 if none or partitioned */
} ClaimedItem;

/*
 * Claim up to "limit" ready items of the stages, in claiming order; see the
 * file header for what "ready" means.  Caller is in a transaction, which
 * holds the claims.
 *
 * The scan follows index schema_item_pending in the ORDER BY's order and
 * stops at the first ready rows: what makes a row ready is tested per row
 * only for the conditions of its own table (probes of the partial indexes
 * copy_item_unfinished and schema_item_pending_table), and once per query
 * for the conditions of the whole migration (stages 3 to 5: nothing of an
 * earlier post-data stage pending, every table copied).
 */
static List *
claim_items(int32 migration_id, int stage_lo, int stage_hi, int limit,
			MemoryContext cxt)
{
	Oid			types[4] = {INT4OID, INT4OID, INT4OID, INT4OID};
	Datum		vals[4] = {Int32GetDatum(migration_id), Int32GetDatum(stage_lo),
	Int32GetDatum(stage_hi), Int32GetDatum(limit)};
	static SPIPlanPtr plan = NULL;
	SPITupleTable *tab;
	List	   *items = NIL;
	uint64		i;

	ingest_catalog_begin();
	tab = ingest_catalog_query_kept(&plan,
							   "SELECT s.id, s.stage, s.kind,"
							   "  CASE WHEN s.relname IS NOT NULL"
							   "   THEN pg_catalog.format('%I.%I', s.nspname, s.relname) END,"
							   "  s.prelude, s.statement, s.attempts, s.cost"
							   " FROM ingest.schema_item s"
							   " WHERE s.migration_id = $1 AND s.state = 'pending'"
							   "  AND s.stage BETWEEN $2 AND $3"
							   /* OFFSET 0: a probe per row, not a hash of every pending row */
							   "  AND (s.stage NOT IN (1, 2) OR NOT EXISTS ("
							   "   SELECT 1 FROM ingest.copy_item c WHERE c.migration_id = s.migration_id"
							   "   AND c.nspname = s.nspname AND c.relname = s.relname"
							   "   AND c.state NOT IN ('done', 'skipped') OFFSET 0))"
							   "  AND (s.stage <> 2 OR NOT EXISTS ("
							   "   SELECT 1 FROM ingest.schema_item o WHERE o.migration_id = s.migration_id"
							   "   AND o.nspname = s.nspname AND o.relname = s.relname AND o.stage = 1"
							   "   AND o.state = 'pending' OFFSET 0))"
							   /* ANALYZE would make ADD CONSTRAINT wait for its lock */
							   "  AND (s.kind <> 'analyze' OR NOT EXISTS ("
							   "   SELECT 1 FROM ingest.schema_item o WHERE o.migration_id = s.migration_id"
							   "   AND o.nspname = s.nspname AND o.relname = s.relname"
							   "   AND o.stage <= s.stage AND o.kind <> 'analyze' AND o.state = 'pending'"
							   "   OFFSET 0))"
							   /* computed once (uncorrelated): no copy unfinished... */
							   "  AND (s.stage < 3 OR (NOT EXISTS ("
							   "   SELECT 1 FROM ingest.copy_item c WHERE c.migration_id = $1"
							   "   AND c.state NOT IN ('done', 'skipped'))"
							   /* ...and nothing of stages 1 to stage - 1 pending */
							   "   AND s.stage <= COALESCE(("
							   "    SELECT o.stage FROM ingest.schema_item o WHERE o.migration_id = $1"
							   "    AND o.stage BETWEEN 1 AND 4 AND o.state = 'pending'"
							   "    ORDER BY o.stage LIMIT 1), 5)))"
							   /* a stage's ANALYZEs after its other items (they wait for them) */
							   " ORDER BY s.stage, s.attempts, s.kind = 'analyze', s.cost DESC, s.id"
							   " LIMIT $4 FOR UPDATE OF s SKIP LOCKED",
							   4, types, vals, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		ClaimedItem *it = palloc0(sizeof(ClaimedItem));

		it->id = (int32) ingest_getint(tab, i, 1, 0);
		it->stage = (int) ingest_getint(tab, i, 2, 0);
		it->kind = ingest_getstr(tab, i, 3);
		it->object = ingest_getstr(tab, i, 4);
		it->prelude = ingest_getstr(tab, i, 5);
		it->statement = ingest_getstr(tab, i, 6);
		it->attempts = (int) ingest_getint(tab, i, 7, 0);
		it->cost = ingest_getint(tab, i, 8, 0);
		items = lappend(items, it);
		MemoryContextSwitchTo(old);
	}
	ingest_catalog_end();
	return items;
}

/*
 * Record an item's state.  Called once per item: the statement is planned
 * once per process and kept.
 */
static void
mark_item(int32 migration_id, int32 id, const char *state, const char *error,
		  bool count_attempt)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[5] = {INT4OID, INT4OID, TEXTOID, TEXTOID, BOOLOID};
	Datum		vals[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	vals[0] = Int32GetDatum(migration_id);
	vals[1] = Int32GetDatum(id);
	vals[2] = CStringGetTextDatum(state);
	if (error)
		vals[3] = CStringGetTextDatum(error);
	else
		nulls[3] = 'n';
	vals[4] = BoolGetDatum(count_attempt);
	ingest_catalog_begin();
	(void) ingest_catalog_query_kept(&plan,
									 "UPDATE ingest.schema_item SET state = $3, error = $4,"
									 " attempts = attempts + CASE WHEN $5 THEN 1 ELSE 0 END,"
									 " started_at = COALESCE(started_at, now()),"
									 " finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE clock_timestamp() END"
									 " WHERE migration_id = $1 AND id = $2",
									 5, types, vals, nulls);
	ingest_catalog_end();
}

/* A transient error: worth running the statement again. */
static bool
transient_error(int sqlerrcode)
{
	char	   *state = unpack_sql_state(sqlerrcode);

	return strncmp(state, "40", 2) == 0 ||	/* deadlock, serialization */
		strncmp(state, "53", 2) == 0 ||	/* out of resources */
		strcmp(state, "55P03") == 0;	/* lock not available */
}

/* A statement about roles and rights that names a role missing here. */
bool
ingest_missing_role_statement(const char *statement, int sqlerrcode)
{
	List	   *raw;
	Node	   *stmt;
	bool		result = false;

	if (sqlerrcode != ERRCODE_UNDEFINED_OBJECT)
		return false;
	raw = raw_parser(statement, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		return false;
	stmt = linitial_node(RawStmt, raw)->stmt;
	if (IsA(stmt, AlterOwnerStmt) || IsA(stmt, GrantStmt) ||
		IsA(stmt, GrantRoleStmt) || IsA(stmt, AlterDefaultPrivilegesStmt))
		result = true;
	else if (IsA(stmt, AlterTableStmt))
	{
		ListCell   *lc;

		result = true;
		foreach(lc, ((AlterTableStmt *) stmt)->cmds)
			if (((AlterTableCmd *) lfirst(lc))->subtype != AT_ChangeOwner)
				result = false;
	}
	return result;
}

/*
 * Record a failed item in the current transaction: retried later if the
 * error is transient and attempts remain, else failed (or, for a missing
 * role, failed as a warning).
 */
static void
record_failure(IngestMigration *m, ClaimedItem *it, ErrorData *edata)
{
	bool		retry = transient_error(edata->sqlerrcode) &&
		it->attempts + 1 < ingest_max_retries;
	bool		role = !retry && ingest_missing_role_statement(it->statement, edata->sqlerrcode);
	char	   *text = it->statement;

	if (strlen(text) > STATEMENT_IN_EVENT_MAX)
		text = psprintf("%.*s...",
						pg_mbcliplen(text, strlen(text), STATEMENT_IN_EVENT_MAX),
						text);

	mark_item(m->id, it->id, retry ? "pending" : "failed", edata->message, true);
	if (retry)
		ingest_event(m->id, "WARNING", "retry", it->object,
					 psprintf("%s failed (attempt %d of %d), will run again: %s",
							  it->kind, it->attempts + 1, ingest_max_retries,
							  edata->message),
					 text);
	else
		ingest_event(m->id, role ? "WARNING" : "ERROR", "schema", it->object,
					 psprintf("%s failed: %s", it->kind, edata->message),
					 text);
}

/* Run the item's SET statements and its statement. */
static void
run_statement(IngestMigration *m, ClaimedItem *it)
{
	if (it->stage == STAGE_INDEX)
		ingest_index_item_settings(m, it->id, it->cost);	/* index.c */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (it->prelude && SPI_execute(it->prelude, false, 0) < 0)
		elog(ERROR, "could not run the SET statements of schema item %d", it->id);
	if (SPI_execute(it->statement, false, 0) < 0)
		elog(ERROR, "could not run schema item %d", it->id);
	SPI_finish();
}

static void
item_begin(ClaimedItem *it)
{
	if (MyIngestWorker)
		ingest_worker_set_item(it->id, GetCurrentTimestamp());
	pgstat_report_activity(STATE_RUNNING, it->statement);
}

static void
item_end(void)
{
	pgstat_report_activity(STATE_IDLE, NULL);
	if (MyIngestWorker)
		ingest_worker_set_item(0, 0);
}

/*
 * Run one claimed item in the transaction that claimed it, and end that
 * transaction: committed with the item marked done, or aborted and the
 * failure recorded in a fresh one.  True if it ran.
 */
static bool
run_alone(IngestMigration *m, ClaimedItem *it, MemoryContext cxt)
{
	MemoryContext old = CurrentMemoryContext;
	volatile bool ok = false;

	item_begin(it);
	PG_TRY();
	{
		run_statement(m, it);
		mark_item(m->id, it->id, "done", NULL, true);
		ingest_xact_commit();
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		ingest_xact_abort();
		/* recorded as an event, and never silently: the log has it */
		ingest_log_recovered_error(edata);
		MemoryContextSwitchTo(old);
		ingest_xact_start();
		record_failure(m, it, edata);
		ingest_xact_commit();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	item_end();
	return ok;
}

/*
 * Run claimed items of stage 0 or 5 in the transaction that claimed them,
 * in their order, each in a subtransaction of its own: an item that fails
 * is rolled back alone and its failure recorded in the transaction, as
 * run_alone would.  Stops after BATCH_MS; the caller commits, which marks
 * them all done at once.  Returns how many ran; *solo is set when an item
 * refused to run in a subtransaction (it stays pending, to run alone).
 */
static int
run_batch(IngestMigration *m, List *claimed, MemoryContext cxt, bool *solo)
{
	MemoryContext xact_cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	TimestampTz start = GetCurrentTimestamp();
	volatile int ran = 0;
	ListCell   *lc;

	*solo = false;
	foreach(lc, claimed)
	{
		ClaimedItem *it = lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		item_begin(it);
		BeginInternalSubTransaction(NULL);
		PG_TRY();
		{
			run_statement(m, it);
			mark_item(m->id, it->id, "done", NULL, true);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(xact_cxt);
			CurrentResourceOwner = owner;
			ran++;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(xact_cxt);
			CurrentResourceOwner = owner;
			if (edata->sqlerrcode == ERRCODE_ACTIVE_SQL_TRANSACTION)
				*solo = true;	/* not in a subtransaction: run it alone */
			else
			{
				ingest_log_recovered_error(edata);
				record_failure(m, it, edata);
			}
		}
		PG_END_TRY();
		item_end();
		if (*solo ||
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), BATCH_MS))
			break;
	}
	return ran;
}

/*
 * ingest_run_schema_items
 *		Run ready items of stages [lo, hi] until none is ready.
 *
 * Items run with the current user's rights (the migration's owner), each
 * marked done in the transaction that ran it.  Stages 1 to 4 (the index
 * workers): one item a transaction, and the other index workers are woken
 * after each, since it may have made items ready.  Stages 0 and 5 (the
 * coordinator, alone, in order): a batch of items a transaction, one
 * subtransaction each (run_batch).  Returns how many ran; *pending_left
 * says whether items of those stages are still to do.
 */
int
ingest_run_schema_items(IngestMigration *m, int stage_lo, int stage_hi,
						bool *pending_left)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "pg_ingest schema item",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = CurrentMemoryContext;
	bool		batch = stage_hi == STAGE_PRE_DATA || stage_lo == STAGE_LAST;
	bool		solo = false;
	int			ran = 0;

	for (;;)
	{
		List	   *claimed;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(cxt);
		ingest_xact_start();
		claimed = claim_items(m->id, stage_lo, stage_hi,
							  batch && !solo ? BATCH_ITEMS : 1, cxt);
		if (claimed == NIL)
		{
			ingest_xact_commit();
			break;
		}
		if (!batch || solo)
		{
			solo = false;
			if (run_alone(m, linitial(claimed), cxt))
				ran++;
			if (!batch && MyIngestWorker)
				ingest_wake_workers(MyIngestWorker->migration, INGEST_WORKER_INDEX);
		}
		else
		{
			ran += run_batch(m, claimed, cxt, &solo);
			ingest_xact_commit();
		}
		MemoryContextSwitchTo(old);
	}

	MemoryContextDelete(cxt);
	if (pending_left)
	{
		ingest_xact_start();
		*pending_left = ingest_count_pending(m->id, stage_lo, stage_hi) > 0;
		ingest_xact_commit();
	}
	return ran;
}
