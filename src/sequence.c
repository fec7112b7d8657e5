/*-------------------------------------------------------------------------
 *
 * sequence.c
 *	  Sequences kept current while a migration streams.
 *
 * Logical decoding does not carry sequences: the stop sets every sequence
 * in scope to the source's value (plus pg_ingest.sequence_margin, the
 * coordinator's finish_stream).  A target taken over before that (a source
 * lost while streaming) would hand out values its copied rows already use.
 * So every pg_ingest.sequence_sync_interval seconds while the migration is
 * catching_up, streaming or stopping, the coordinator (one call per turn of
 * its phase_streaming loop, where it is otherwise idle: the applier is
 * never held up by a round trip to the source) reads every migrated
 * sequence's value on the source in one query, on one source connection
 * kept open for this, and moves each sequence here to it when it is behind
 * (never backwards: one already ahead, by the target's own use or an
 * earlier round, is left alone).
 *
 * The sequences in scope are those the stop sets: the source's sequences
 * the migration's filters keep (source.c), found again every
 * SCOPE_REFRESH_MS (sequences created on the source meanwhile join) or
 * after a failure.  One that does not exist here, or belongs to an
 * extension here, is left out (the stop names it).  A round that fails (the
 * source gone, a sequence dropped) closes the connection and is tried again
 * after twice the interval, then four times... (up to 16 times: connecting
 * to a source that does not answer holds the coordinator up to
 * pg_ingest.connect_timeout): the first failure of a run of them is a
 * WARNING event, never a failure of the migration, since the stop still
 * sets every sequence exactly.
 *
 * State: all in this process (the connection, the names in scope, the time
 * of the last round); nothing in the catalog or shared memory.
 *
 * Locking: setval takes the sequences' own locks; nothing else.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "storage/ipc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "conn.h"
#include "pg_ingest.h"
#include "source.h"

#define SCOPE_REFRESH_MS 60000
#define ROUND_TIMEOUT_MS 30000

typedef struct SyncedSequence
{
	char	   *nspname;
	char	   *relname;
} SyncedSequence;

static PGconn *seq_conn = NULL;
static MemoryContext seq_cxt = NULL;	/* the names in scope */
static List *scope = NIL;		/* SyncedSequence, in seq_cxt */
static TimestampTz scope_at = 0;	/* when scope was found; 0: to find */
static TimestampTz last_round = 0;
static int	failures = 0;		/* rounds failed in a row (the first warned) */
static bool announced = false;

static void
close_connection(void)
{
	if (seq_conn != NULL)
		ingest_disconnect(seq_conn);
	seq_conn = NULL;
}

static void
sequence_sync_exit(int code, Datum arg)
{
	close_connection();
}

/* The source's sequences the migration keeps, found anew. */
static void
load_scope(IngestFilters *filters, IngestConnInfo *info)
{
	List	   *rels = ingest_source_relations(seq_conn, false, info->password);
	ListCell   *lc;
	MemoryContext old;

	ingest_apply_filters(rels, filters);
	if (seq_cxt == NULL)
		seq_cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest sequence sync",
										ALLOCSET_SMALL_SIZES);
	MemoryContextReset(seq_cxt);
	scope = NIL;
	old = MemoryContextSwitchTo(seq_cxt);
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);
		SyncedSequence *s;

		if (r->relkind != 'S' || !r->in_scope)
			continue;
		s = palloc(sizeof(SyncedSequence));
		s->nspname = pstrdup(r->nspname);
		s->relname = pstrdup(r->relname);
		scope = lappend(scope, s);
	}
	MemoryContextSwitchTo(old);
	scope_at = GetCurrentTimestamp();
}

/*
 * One round: the source's values in one query (the names quoted), then one
 * setval statement here.  Returns how many sequences
 * were moved.
 */
static int
sync_round(IngestMigration *m, IngestConnInfo *info, IngestFilters *filters)
{
	StringInfoData names;
	PGresult   *res;
	bool		timed_out = false;
	ListCell   *lc;
	int			n = 0;
	int			i;
	Oid		   *oids;
	int64	   *values;
	Datum	   *oid_datums;
	Datum	   *value_datums;
	int			nset = 0;
	int			moved = 0;

	if (seq_conn == NULL)
	{
		seq_conn = ingest_connect_or_error(info, INGEST_CONN_SQL,
										   psprintf("pg_ingest %s sequences", m->name));
		scope_at = 0;
	}
	if (scope_at == 0 || TimestampDifferenceExceeds(scope_at, GetCurrentTimestamp(),
													SCOPE_REFRESH_MS))
		load_scope(filters, info);
	if (scope == NIL)
		return 0;

	initStringInfo(&names);
	foreach(lc, scope)
	{
		SyncedSequence *s = lfirst(lc);

		appendStringInfo(&names, "%s%s", n > 0 ? ", " : "",
						 quote_literal_cstr(ingest_qualified(s->nspname, s->relname)));
		n++;
	}
	res = ingest_query(seq_conn,
					   psprintf("SELECT u.i, pg_catalog.pg_sequence_last_value(pg_catalog.to_regclass(u.n))"
								" FROM pg_catalog.unnest(ARRAY[%s]::pg_catalog.text[]) WITH ORDINALITY AS u(n, i)",
								names.data),
					   ROUND_TIMEOUT_MS, &timed_out);
	if (timed_out)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the source did not answer within %d s", ROUND_TIMEOUT_MS / 1000)));
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		ingest_report_result_error(seq_conn, res, ERROR,
								   "read the sequences", info->password);
	}

	/* the sequences here, behind the source's value: one statement */
	oids = palloc(sizeof(Oid) * n);
	values = palloc(sizeof(int64) * n);
	ingest_xact_start();
	for (i = 0; i < PQntuples(res); i++)
	{
		int			ordinal = atoi(PQgetvalue(res, i, 0));
		SyncedSequence *s;
		Oid			nspid;
		Oid			relid;

		if (ordinal < 1 || ordinal > n)
		{
			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("the source sent an unexpected row for its sequences")));
		}
		if (PQgetisnull(res, i, 1))
			continue;			/* never called there, or gone */
		s = list_nth(scope, ordinal - 1);
		nspid = get_namespace_oid(s->nspname, true);
		relid = OidIsValid(nspid) ? get_relname_relid(s->relname, nspid) : InvalidOid;
		if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_SEQUENCE ||
			OidIsValid(getExtensionOfObject(RelationRelationId, relid)))
			continue;
		oids[nset] = relid;
		values[nset] = strtoi64(PQgetvalue(res, i, 1), NULL, 10);
		nset++;
	}
	PQclear(res);
	if (nset > 0)
	{
		Oid			types[2] = {OIDARRAYOID, INT8ARRAYOID};
		Datum		args[2];

		oid_datums = palloc(sizeof(Datum) * nset);
		value_datums = palloc(sizeof(Datum) * nset);
		for (i = 0; i < nset; i++)
		{
			oid_datums[i] = ObjectIdGetDatum(oids[i]);
			value_datums[i] = Int64GetDatum(values[i]);
		}
		args[0] = PointerGetDatum(construct_array(oid_datums, nset, OIDOID,
												  sizeof(Oid), true, TYPALIGN_INT));
		args[1] = PointerGetDatum(construct_array(value_datums, nset, INT8OID,
												  sizeof(int64), FLOAT8PASSBYVAL,
												  TYPALIGN_DOUBLE));
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");

		/*
		 * Behind: its next value would not pass the source's last one.  One
		 * never called here (pg_sequence_last_value is NULL) is behind.
		 */
		if (SPI_execute_with_args("SELECT pg_catalog.setval(v.id, v.val, true)"
								  " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS v(id, val)"
								  " JOIN pg_catalog.pg_sequence s ON s.seqrelid = v.id"
								  " WHERE COALESCE(CASE WHEN s.seqincrement > 0"
								  "  THEN pg_catalog.pg_sequence_last_value(v.id) < v.val"
								  "  ELSE pg_catalog.pg_sequence_last_value(v.id) > v.val END, true)",
								  2, types, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not set the sequences");
		moved = (int) SPI_processed;
		SPI_finish();
	}
	ingest_xact_commit();
	if (!announced)
	{
		ingest_event_tx(m->id, "INFO", "sequences", NULL,
						psprintf("%d sequences kept at least at the source's values every %d s while streaming",
								 list_length(scope), ingest_sequence_sync_interval),
						NULL);
		announced = true;
	}
	return moved;
}

/*
 * ingest_sequence_sync
 *		Called at each turn of the coordinator's streaming loop, outside any
 *		transaction; does a round when pg_ingest.sequence_sync_interval has
 *		passed (see the header).  Never throws.
 */
void
ingest_sequence_sync(IngestMigration *m, IngestConnInfo *info,
					 IngestFilters *filters, const char *phase)
{
	static bool exit_registered = false;
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz now = GetCurrentTimestamp();

	if (ingest_sequence_sync_interval <= 0 ||
		(strcmp(phase, "catching_up") != 0 && strcmp(phase, "streaming") != 0 &&
		 strcmp(phase, "stopping") != 0))
	{
		close_connection();
		return;
	}
	/* after failures, less often: a connection attempt may wait long */
	if (last_round != 0 &&
		!TimestampDifferenceExceeds(last_round, now,
									ingest_sequence_sync_interval * 1000 * (1 << Min(failures, 4))))
		return;
	last_round = now;
	if (!exit_registered)
	{
		on_proc_exit(sequence_sync_exit, (Datum) 0);
		exit_registered = true;
	}

	PG_TRY();
	{
		int			moved = sync_round(m, info, filters);

		ereport(DEBUG1,
				(errmsg_internal("pg_ingest migration \"%s\": %d sequences moved to the source's values",
								 m->name, moved)));
		failures = 0;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		ingest_catalog_reset();
		MemoryContextSwitchTo(cxt);
		close_connection();
		scope_at = 0;
		if (failures == 0)
		{
			ingest_log_recovered_error(edata);
			ingest_event_tx(m->id, "WARNING", "sequences", NULL,
							psprintf("could not bring the sequences to the source's values: %s",
									 edata->message),
							"Tried again every pg_ingest.sequence_sync_interval; the stop sets every sequence all the same.");
		}
		failures++;
		FreeErrorData(edata);
	}
	PG_END_TRY();
}
