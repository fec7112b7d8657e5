/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Access to pg_ingest's catalog tables (schema ingest) through SPI.
 *
 * The tables belong to the extension's owner and nobody else may write
 * them; the workers act as the role that started the migration, and the
 * SQL functions as their caller.  So every catalog access runs between
 * ingest_catalog_begin() and ingest_catalog_end(), which switch to the
 * owner of schema ingest (SECURITY_LOCAL_USERID_CHANGE) and pin
 * search_path to pg_catalog, so that nothing the user's schema defines
 * (operators, functions) can run with the owner's rights.
 *
 * The switch belongs to the (sub)transaction that made it.  An error in
 * between needs no cleanup of the user or the GUCs: the abort of that
 * (sub)transaction restores both; the transaction callbacks below then
 * forget the switch, so the next call switches again (without them, one
 * lock_timeout inside a catalog call left every later call of the session
 * running as the caller: "permission denied for table migration").
 *
 * Callers must be in a transaction.  Memory returned by the query helpers
 * lives in SPI's context until ingest_catalog_end(); copy what is kept.
 *
 * State: the catalog tables themselves; the plans kept across calls
 * (ingest_catalog_query_kept), per process.
 *
 * Locking: row locks taken by the statements themselves.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "citus.h"
#include "pg_ingest.h"

static int	catalog_depth = 0;
static Oid	saved_userid;
static int	saved_sec_context;
static int	saved_nestlevel;
static SubTransactionId saved_subid;	/* where the switch was made */
static bool catalog_callbacks = false;

/* A transaction that ends has undone the switch: forget it. */
static void
catalog_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE)
		catalog_depth = 0;
}

/* So has a subtransaction that aborts, if the switch was made in it. */
static void
catalog_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (catalog_depth == 0)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB && saved_subid == mySubid)
		catalog_depth = 0;
	else if (event == SUBXACT_EVENT_COMMIT_SUB && saved_subid == mySubid)
		saved_subid = parentSubid;
}

/* owner of schema ingest, i.e. of the extension's tables */
static Oid
catalog_owner(void)
{
	Oid			nsp = get_namespace_oid("ingest", false);
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * ingest_catalog_begin
 *		Connect to SPI acting as the catalog's owner.  Calls nest.
 */
void
ingest_catalog_begin(void)
{
	if (!catalog_callbacks)
	{
		RegisterXactCallback(catalog_xact_callback, NULL);
		RegisterSubXactCallback(catalog_subxact_callback, NULL);
		catalog_callbacks = true;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (catalog_depth++ > 0)
		return;
	saved_subid = GetCurrentSubTransactionId();
	GetUserIdAndSecContext(&saved_userid, &saved_sec_context);
	SetUserIdAndSecContext(catalog_owner(),
						   saved_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	saved_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
ingest_catalog_end(void)
{
	if (--catalog_depth == 0)
	{
		AtEOXact_GUC(false, saved_nestlevel);
		SetUserIdAndSecContext(saved_userid, saved_sec_context);
	}
	SPI_finish();
}

/*
 * Forget the catalog context after an error: transaction abort has already
 * undone the user switch and the GUC nest level.
 */
void
ingest_catalog_reset(void)
{
	catalog_depth = 0;
}

/*
 * ingest_catalog_query
 *		Run a statement of ours and return its rows.
 */
SPITupleTable *
ingest_catalog_query(const char *sql, int nargs, Oid *argtypes,
					 Datum *values, const char *nulls)
{
	int			rc;

	Assert(catalog_depth > 0);
	rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "catalog statement failed (%s): %s",
			 SPI_result_code_string(rc), sql);
	return SPI_tuptable;
}

/*
 * ingest_catalog_query_kept
 *		As ingest_catalog_query, for a statement run once per item: its plan
 *		is prepared on first use, in *plan (the caller's static), and kept
 *		for the life of the process (the plan cache revalidates it).
 */
SPITupleTable *
ingest_catalog_query_kept(SPIPlanPtr *plan, const char *sql, int nargs,
						  Oid *argtypes, Datum *values, const char *nulls)
{
	int			rc;

	Assert(catalog_depth > 0);
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare catalog statement (%s): %s",
				 SPI_result_code_string(SPI_result), sql);
		*plan = p;
	}
	rc = SPI_execute_plan(*plan, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "catalog statement failed (%s): %s",
			 SPI_result_code_string(rc), sql);
	return SPI_tuptable;
}

uint64
ingest_catalog_exec(const char *sql, int nargs, Oid *argtypes, Datum *values,
					const char *nulls)
{
	(void) ingest_catalog_query(sql, nargs, argtypes, values, nulls);
	return SPI_processed;
}

/* Column col (1-based) of row as a string palloc'd in SPI memory, or NULL. */
char *
ingest_getstr(SPITupleTable *tab, uint64 row, int col)
{
	return SPI_getvalue(tab->vals[row], tab->tupdesc, col);
}

int64
ingest_getint(SPITupleTable *tab, uint64 row, int col, int64 if_null)
{
	char	   *s = SPI_getvalue(tab->vals[row], tab->tupdesc, col);

	return s ? strtoll(s, NULL, 10) : if_null;
}

bool
ingest_getbool(SPITupleTable *tab, uint64 row, int col)
{
	char	   *s = SPI_getvalue(tab->vals[row], tab->tupdesc, col);

	return s != NULL && s[0] == 't';
}

static char *
dupstr(MemoryContext cxt, const char *s)
{
	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

#define MIGRATION_COLUMNS \
	"id, name, owner, source, source_display, mode, schema_mode, table_jobs," \
	" index_jobs, split_bytes, phase, slot_name, snapshot_name, snapshot_lsn," \
	" postdata_loaded, restarts, slot_lsn, stop_lsn, resume_phase, last_error, source_encoding," \
	" untracked_tables, resync, ddl, ddl_via"

static XLogRecPtr
lsn_value(const char *s)
{
	return s ? DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(s))) :
		InvalidXLogRecPtr;
}

static IngestMigration *
migration_from_row(SPITupleTable *tab, MemoryContext cxt)
{
	IngestMigration *m = MemoryContextAllocZero(cxt, sizeof(IngestMigration));

	m->id = (int32) ingest_getint(tab, 0, 1, 0);
	m->name = dupstr(cxt, ingest_getstr(tab, 0, 2));
	m->owner = (Oid) ingest_getint(tab, 0, 3, 0);
	m->source = dupstr(cxt, ingest_getstr(tab, 0, 4));
	m->source_display = dupstr(cxt, ingest_getstr(tab, 0, 5));
	m->mode = dupstr(cxt, ingest_getstr(tab, 0, 6));
	m->schema_mode = dupstr(cxt, ingest_getstr(tab, 0, 7));
	m->table_jobs = (int) ingest_getint(tab, 0, 8, 1);
	m->index_jobs = (int) ingest_getint(tab, 0, 9, 1);
	m->split_bytes = ingest_getint(tab, 0, 10, 0);
	m->phase = dupstr(cxt, ingest_getstr(tab, 0, 11));
	m->slot_name = dupstr(cxt, ingest_getstr(tab, 0, 12));
	m->snapshot_name = dupstr(cxt, ingest_getstr(tab, 0, 13));
	m->snapshot_lsn = lsn_value(ingest_getstr(tab, 0, 14));
	m->postdata_loaded = ingest_getbool(tab, 0, 15);
	m->restarts = (int) ingest_getint(tab, 0, 16, 0);
	m->slot_lsn = lsn_value(ingest_getstr(tab, 0, 17));
	m->stop_lsn = lsn_value(ingest_getstr(tab, 0, 18));
	m->resume_phase = dupstr(cxt, ingest_getstr(tab, 0, 19));
	m->last_error = dupstr(cxt, ingest_getstr(tab, 0, 20));
	m->source_encoding = ingest_getstr(tab, 0, 21) ?
		pg_char_to_encoding(ingest_getstr(tab, 0, 21)) : -1;
	m->untracked_tables = dupstr(cxt, ingest_getstr(tab, 0, 22));
	m->resync = dupstr(cxt, ingest_getstr(tab, 0, 23));
	m->ddl = dupstr(cxt, ingest_getstr(tab, 0, 24));
	m->ddl_via = dupstr(cxt, ingest_getstr(tab, 0, 25));
	return m;
}

/*
 * ingest_load_migration
 *		The migration with this id, allocated in the caller's context.
 */
IngestMigration *
ingest_load_migration(int32 id)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(id)};
	SPITupleTable *tab;
	IngestMigration *m = NULL;

	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT " MIGRATION_COLUMNS
							   " FROM ingest.migration WHERE id = $1",
							   1, types, vals, NULL);
	if (SPI_processed == 1)
		m = migration_from_row(tab, cxt);
	ingest_catalog_end();
	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("migration %d does not exist", id)));
	return m;
}

/*
 * ingest_load_migration_by_name
 *		The latest migration with this name (the unfinished one, if any).
 */
IngestMigration *
ingest_load_migration_by_name(const char *name, bool unfinished_only,
							  bool missing_ok)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			types[1] = {TEXTOID};
	Datum		vals[1];
	SPITupleTable *tab;
	IngestMigration *m = NULL;

	ingest_catalog_begin();
	vals[0] = CStringGetTextDatum(name);
	tab = ingest_catalog_query(unfinished_only ?
							   "SELECT " MIGRATION_COLUMNS " FROM ingest.migration"
							   " WHERE name = $1 AND phase NOT IN ('completed', 'aborted')" :
							   "SELECT " MIGRATION_COLUMNS " FROM ingest.migration"
							   " WHERE name = $1"
							   " ORDER BY phase NOT IN ('completed', 'aborted') DESC, id DESC LIMIT 1",
							   1, types, vals, NULL);
	if (SPI_processed == 1)
		m = migration_from_row(tab, cxt);
	ingest_catalog_end();
	if (m == NULL && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 unfinished_only ?
				 errmsg("no unfinished migration is named \"%s\"", name) :
				 errmsg("no migration is named \"%s\"", name),
				 errhint("SELECT name, phase FROM ingest.status; lists the migrations.")));
	return m;
}

/*
 * ingest_event
 *		Append to ingest.events; with migration_id 0, to no migration.
 */
void
ingest_event(int32 migration_id, const char *level, const char *kind,
			 const char *object, const char *message, const char *detail)
{
	Oid			types[6] = {INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		vals[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	/* what is allocated from here on goes with SPI's memory */
	ingest_catalog_begin();
	vals[0] = Int32GetDatum(migration_id);
	vals[1] = CStringGetTextDatum(level);
	vals[2] = CStringGetTextDatum(kind);
	if (object)
		vals[3] = CStringGetTextDatum(object);
	else
		nulls[3] = 'n';
	vals[4] = CStringGetTextDatum(message);
	if (detail)
		vals[5] = CStringGetTextDatum(detail);
	else
		nulls[5] = 'n';

	ingest_catalog_exec("INSERT INTO ingest.events"
						" (migration_id, name, phase, level, kind, object, message, detail)"
						" SELECT m.id, m.name, m.phase, $2, $3, $4, $5, $6"
						" FROM ingest.migration m WHERE m.id = $1",
						6, types, vals, nulls);
	/* errors counts the ERROR events; last_error is the latest of them */
	if (strcmp(level, "ERROR") == 0)
		ingest_catalog_exec("UPDATE ingest.migration SET errors = errors + 1,"
							" last_error = CASE WHEN $4 IS NULL THEN $5"
							"  ELSE $4 || ': ' || $5 END,"
							" updated_at = now() WHERE id = $1",
							6, types, vals, nulls);
	ingest_catalog_end();
}

/*
 * ingest_phase_name
 *		The phase's name as a constant string: m->phase points there, so
 *		that a phase change allocates nothing (a long-lived worker changes
 *		or re-reads it again and again).
 */
const char *
ingest_phase_name(const char *phase)
{
	static const char *const phases[] = {
		"starting", "schema", "copying", "indexing", "finalizing",
		"catching_up", "streaming", "stopping", "paused", "completed",
		"failed", "aborted", NULL
	};
	int			i;

	for (i = 0; phases[i]; i++)
		if (strcmp(phases[i], phase) == 0)
			return phases[i];
	return MemoryContextStrdup(TopMemoryContext, phase);	/* can't happen */
}

/* The migration's phase as committed, into m->phase. */
static void
reload_phase(IngestMigration *m)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};
	SPITupleTable *tab;
	const char *phase = NULL;

	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT phase FROM ingest.migration WHERE id = $1",
							   1, types, vals, NULL);
	if (SPI_processed == 1)
		phase = ingest_phase_name(ingest_getstr(tab, 0, 1));
	ingest_catalog_end();
	if (phase)
		m->phase = (char *) phase;
}

/*
 * ingest_set_phase
 *		Move a migration to a new phase, with its event, if it is in one of
 *		the expected phases (a comma-separated list): a compare-and-set, so
 *		that two writers never overwrite each other (a pause by the
 *		coordinator's caught-up, a failure by a stop request).  Returns
 *		whether it moved; if not, m->phase is the phase it is in.
 *
 * Every writer of ingest.migration.phase goes through here or through
 * ingest_fail_migration, each with the phases it may move from:
 *	coordinator		the phase it is working on -> the next one;
 *					catching_up, streaming -> stopping (stop request);
 *					stopping -> completed; catching_up -> streaming
 *	pause			catching_up, streaming -> paused
 *	resume			paused, failed -> the phase to resume
 *	abort worker	any unfinished phase, failed -> aborted
 *	failure			any unfinished phase -> failed
 * A phase reached resets the crash count (supervisor.c).
 */
bool
ingest_set_phase(IngestMigration *m, const char *phase, const char *expected)
{
	Oid			types[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		vals[3];
	const char *old = m->phase ? ingest_phase_name(m->phase) : NULL;
	uint64		n;

	ingest_catalog_begin();
	vals[0] = Int32GetDatum(m->id);
	vals[1] = CStringGetTextDatum(phase);
	vals[2] = CStringGetTextDatum(expected);
	n = ingest_catalog_exec("UPDATE ingest.migration SET phase = $2, updated_at = now(), crashes = 0,"
							" finished_at = CASE WHEN $2 IN ('completed', 'aborted')"
							"  THEN now() END,"
							" copy_started_at = CASE WHEN $2 = 'copying'"
							"  THEN COALESCE(copy_started_at, now()) ELSE copy_started_at END,"
							" copy_finished_at = CASE WHEN $2 IN ('indexing', 'finalizing', 'completed')"
							"  THEN COALESCE(copy_finished_at, now()) ELSE copy_finished_at END"
							" WHERE id = $1 AND phase = ANY (pg_catalog.string_to_array($3, ','))",
							3, types, vals, NULL);
	if (n == 0)
	{
		ingest_catalog_end();
		reload_phase(m);
		return false;
	}
	m->phase = (char *) ingest_phase_name(phase);
	ingest_event(m->id, "INFO", "phase", NULL,
				 psprintf("phase %s", phase),
				 old ? psprintf("previous phase: %s", old) : NULL);
	ingest_notify(m, "phase", psprintf("phase %s", phase));
	ingest_catalog_end();
	return true;
}

/* Phases a migration can fail or be aborted from. */
#define UNFINISHED_PHASES \
	"starting,schema,copying,indexing,finalizing,catching_up,streaming,stopping,paused"

/*
 * ingest_fail_migration
 *		Mark a migration failed; the caller stops its work.
 *
 * Only a migration still unfinished fails, once: the phase event and the
 * "failed" notification go out with that change alone.  A failure of a
 * migration failed already is recorded as an error, and one that ended
 * meanwhile (completed, aborted) only in the server log.
 */
bool
ingest_fail_migration(IngestMigration *m, const char *message)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};
	uint64		n;

	ingest_catalog_begin();
	n = ingest_catalog_exec("UPDATE ingest.migration SET resume_phase = CASE WHEN phase"
							"  <> 'paused' THEN phase ELSE resume_phase END,"
							" phase = 'failed', updated_at = now() WHERE id = $1"
							" AND phase = ANY (pg_catalog.string_to_array('" UNFINISHED_PHASES "', ','))",
							1, types, vals, NULL);
	if (n == 0)
	{
		ingest_catalog_end();
		reload_phase(m);
		if (strcmp(m->phase, "failed") == 0)
			ingest_event(m->id, "ERROR", "failure", NULL, message, NULL);
		else
			ereport(LOG,
					(errmsg("pg_ingest migration \"%s\" is %s already: %s",
							m->name, m->phase, message)));
		return false;
	}
	m->phase = (char *) ingest_phase_name("failed");
	ingest_event(m->id, "ERROR", "failure", NULL, message, NULL);
	ingest_notify(m, "failed", message);
	ingest_catalog_end();
	return true;
}

/* ingest_event in a transaction of its own (workers between transactions). */
void
ingest_event_tx(int32 migration_id, const char *level, const char *kind,
				const char *object, const char *message, const char *detail)
{
	ingest_xact_start();
	ingest_event(migration_id, level, kind, object, message, detail);
	ingest_xact_commit();
}

/*
 * ingest_notify_payload
 *		{"name":..,"phase":..,"event":..,"lsn":..,"message":..}: what
 *		ingest_notify sends.
 */
char *
ingest_notify_payload(const char *name, const char *phase, const char *event,
					  XLogRecPtr lsn, const char *message)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"name\":");
	escape_json(&buf, name);
	appendStringInfoString(&buf, ",\"phase\":");
	escape_json(&buf, phase);
	appendStringInfoString(&buf, ",\"event\":");
	escape_json(&buf, event);
	appendStringInfoString(&buf, ",\"lsn\":");
	if (lsn != InvalidXLogRecPtr)
		appendStringInfo(&buf, "\"%X/%X\"", LSN_FORMAT_ARGS(lsn));
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ",\"message\":");
	/* NOTIFY payloads stop short of 8000 bytes; never cut a character */
	if (strlen(message) > 1000)
	{
		int			len = pg_mbcliplen(message, strlen(message), 1000);
		char	   *cut = psprintf("%.*s...", len, message);

		escape_json(&buf, cut);
		pfree(cut);
	}
	else
		escape_json(&buf, message);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * ingest_notify
 *		NOTIFY pg_ingest with the payload above when the current transaction
 *		commits: phase changes, caught up, failures, for scripts that LISTEN.
 */
void
ingest_notify(IngestMigration *m, const char *event, const char *message)
{
	XLogRecPtr	lsn = ingest_migration_applied_lsn(MyDatabaseId, m->id);
	char	   *payload;

	payload = ingest_notify_payload(m->name, m->phase, event, lsn, message);
	Async_Notify("pg_ingest", payload);	/* copies it */
	pfree(payload);
}

/*
 * Phases in the order a migration goes through them; paused, failed and
 * aborted stand apart (rank -1).
 */
static const char *const phase_order[] = {
	"starting", "schema", "copying", "indexing", "finalizing",
	"catching_up", "streaming", "stopping", "completed", NULL
};

int
ingest_phase_rank(const char *phase)
{
	int			i;

	for (i = 0; phase_order[i]; i++)
		if (strcmp(phase_order[i], phase) == 0)
			return i;
	return -1;
}

/* No worker runs for a migration in one of these phases. */
bool
ingest_phase_is_terminal(const char *phase)
{
	return strcmp(phase, "completed") == 0 ||
		strcmp(phase, "failed") == 0 ||
		strcmp(phase, "aborted") == 0;
}

/*
 * Transactions of the background workers.  CommitTransactionCommand()
 * leaves CurrentMemoryContext at TopMemoryContext and Start... at the
 * transaction's context; these keep the caller's context on both sides, so
 * what a transaction computes for the worker outlives it and nothing leaks
 * into TopMemoryContext.  The transaction has an active snapshot, which SPI
 * needs as an outer snapshot (SPI takes a fresh one for each statement).
 */
static MemoryContext xact_caller_context = NULL;

void
ingest_xact_start(void)
{
	xact_caller_context = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(xact_caller_context);
}

void
ingest_xact_commit(void)
{
	if (ActiveSnapshotSet())
		PopActiveSnapshot();
	ingest_citus_end_block(true);	/* a block Citus needed (citus.c) */
	CommitTransactionCommand();
	MemoryContextSwitchTo(xact_caller_context);
}

/* After an error was caught: abort, and forget the catalog context. */
void
ingest_xact_abort(void)
{
	ingest_citus_end_block(false);	/* AbortCurrentTransaction(), or out of a block */
	ingest_catalog_reset();
	if (xact_caller_context)
		MemoryContextSwitchTo(xact_caller_context);
}

/*
 * ingest_origin_name
 *		The replication origin of a migration.  Origins belong to the
 *		cluster, so the name carries the database.
 */
char *
ingest_origin_name(IngestMigration *m)
{
	return psprintf("pg_ingest_%u_%d", MyDatabaseId, m->id);
}
