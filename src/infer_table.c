/*-------------------------------------------------------------------------
 *
 * infer_table.c
 *	  A table created on the source while a migration streams, inferred
 *	  from the change stream (ddl => 'infer'): created here and copied, in
 *	  the applier's transaction.
 *
 * A change of a table the migration does not know, in scope of its filters
 * (created on the source after the snapshot): under 'infer',
 * ingest_infer_new_table() creates it from pg_dump --table (pre-data, then
 * post-data once the rows are in) and copies its rows under the snapshot of
 * a temporary slot, in the applier's transaction; its ingest.copy_item row
 * has that slot's consistent point as sync LSN, so the changes before it,
 * which the copy has, are skipped.  Under 'off' apply.c fails the migration,
 * naming the table.
 *
 * The table is created by the statements of pg_dump --table, run as the
 * migration's owner; its rows are read with COPY from the source and
 * written with the server's COPY FROM.
 *
 * State: the feed of the COPY in progress, in this process (the applier);
 * the table's copy item in ingest.copy_item; nothing in shared memory.
 *
 * Locking: the new table's statements take their own locks, held until the
 * applier's transaction commits.  The snapshot comes from a temporary
 * slot, whose creation waits for the transactions running on the source
 * to end (as the migration's own slot did).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/pg_list.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "parser/parse_type.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/resowner.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "conn.h"
#include "infer.h"
#include "schema.h"
#include "source.h"
#include "target.h"

/* The COPY of a new table from the source, for BeginCopyFrom(). */
static IngestCopyFeed feed;

static int
feed_cb(void *outbuf, int minread, int maxread)
{
	return ingest_copy_feed_read(&feed, outbuf, minread, maxread);
}

static int
item_stage_cmp(const ListCell *a, const ListCell *b)
{
	return ((SchemaItem *) lfirst(a))->stage - ((SchemaItem *) lfirst(b))->stage;
}

/*
 * Run the statements pg_dump gave for a new table, each in a
 * subtransaction: one that fails is an ERROR event, counted in the
 * migration's errors (a WARNING if it names a role this server lacks);
 * the settings of their preludes are undone afterwards.
 */
static void
run_dump_items(IngestMigration *m, const char *object, List *items)
{
	int			nest = NewGUCNestLevel();
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ListCell   *lc;

	list_sort(items, item_stage_cmp);
	foreach(lc, items)
	{
		SchemaItem *it = lfirst(lc);

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			if (it->prelude && SPI_execute(it->prelude, false, 0) < 0)
				elog(ERROR, "could not run the SET statements of: %s", it->statement);
			if (SPI_execute(it->statement, false, 0) < 0)
				elog(ERROR, "could not run: %s", it->statement);
			SPI_finish();
			PopActiveSnapshot();
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			/* as in the schema phase: only a role missing here is a warning */
			ingest_event(m->id,
						 ingest_missing_role_statement(it->statement, edata->sqlerrcode) ?
						 "WARNING" : "ERROR", "ddl", object,
						 psprintf("statement of the new table failed: %s", edata->message),
						 it->statement);
		}
		PG_END_TRY();
	}
	AtEOXact_GUC(false, nest);
}

/*
 * ingest_infer_new_table
 *		A change of a table the migration does not know, in scope of its
 *		filters: under ddl => 'infer', the table was created on the source
 *		after the snapshot.  Create it from the source's catalog (the
 *		target's pg_dump --table, pre-data and post-data) and copy its rows
 *		under a snapshot of its own (a temporary slot's), in the applier's
 *		transaction; record it in ingest.copy_item with that snapshot's LSN
 *		as its sync LSN, so that the stream's changes before it are skipped.
 *		False if not under 'infer' (the caller fails the migration).
 */
bool
ingest_infer_new_table(IngestMigration *m, IngestConnInfo *info,
					   const char *nspname, const char *relname,
					   XLogRecPtr change_lsn, XLogRecPtr *sync_lsn)
{
	PGconn	   *repl;
	PGconn	   *conn;
	PGresult   *res;
	char	   *snapshot;
	char	   *slot;
	char	   *object = ingest_qualified(nspname, relname);
	IngestFilters *only;
	QualName   *qn;
	SourceRel  *sr;
	SplitContext ctx;
	Oid			relid;
	Relation	rel;
	TupleDesc	desc;
	StringInfoData cols;
	List	   *attnames = NIL;
	ParseState *pstate;
	CopyFromState cstate;
	uint64		rows;
	int			i;
	Oid			types[7] = {INT4OID, TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID};
	Datum		vals[7];

	if (!ingest_infer_enabled(m))
		return false;

	/* a snapshot and its LSN: a temporary slot's, as the migration's own */
	repl = ingest_connect_or_error(info, INGEST_CONN_REPLICATION,
								   psprintf("pg_ingest %s applier (new table)", m->name));
	slot = psprintf("pg_ingest_new_%d_%d", m->id, MyProcPid);
	res = ingest_exec(repl,
					  ingest_create_slot_sql(repl, slot, true, true),
					  PGRES_TUPLES_OK, "create a temporary replication slot", info->password);
	*sync_lsn = DatumGetLSN(DirectFunctionCall1(pg_lsn_in,
												CStringGetDatum(PQgetvalue(res, 0, 1))));
	snapshot = pstrdup(PQgetvalue(res, 0, 2));
	PQclear(res);

	/* its schema, as pg_dump gives it under that snapshot */
	only = palloc0(sizeof(IngestFilters));
	qn = palloc0(sizeof(QualName));
	qn->nspname = (char *) nspname;
	qn->relname = (char *) relname;
	only->dump_tables = list_make1(qn);
	sr = palloc0(sizeof(SourceRel));
	sr->nspname = (char *) nspname;
	sr->relname = (char *) relname;
	sr->relkind = 'r';
	sr->in_scope = true;
	memset(&ctx, 0, sizeof(ctx));
	ctx.rels = list_make1(sr);
	ctx.migration_id = m->id;
	run_dump_items(m, object,
				   ingest_split_dump(ingest_pg_dump(m, info, snapshot, "pre-data", NIL, only),
									 false, &ctx));
	CommandCounterIncrement();
	relid = get_relname_relid(relname, get_namespace_oid(nspname, true));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s of the source is not part of the migration and could not be created on the target",
						object),
				 errdetail("It was created on the source after the migration started (seen in the stream at LSN %X/%X); ingest.events has the statements that failed.",
						   LSN_FORMAT_ARGS(change_lsn)),
				 errhint("Create it on the target by hand, or use ddl => 'replicate'.")));

	/* its rows, under the snapshot */
	conn = ingest_connect_or_error(info, INGEST_CONN_SQL,
								   psprintf("pg_ingest %s applier (new table)", m->name));
	ingest_begin_read(conn, snapshot, "import the new table's snapshot", info->password);
	rel = table_open(relid, RowExclusiveLock);
	ingest_check_target(relid, m->owner, ACL_INSERT);
	desc = RelationGetDescr(rel);
	initStringInfo(&cols);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated != '\0')
			continue;
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "",
						 quote_identifier(NameStr(att->attname)));
		attnames = lappend(attnames, makeString(pstrdup(NameStr(att->attname))));
	}
	PQclear(ingest_exec(conn, psprintf("COPY %s (%s) TO STDOUT", object, cols.data),
						PGRES_COPY_OUT, psprintf("read table %s", object), info->password));
	memset(&feed, 0, sizeof(feed));
	feed.conn = conn;
	feed.password = info->password;
	feed.what = "the new table";
	pstate = make_parsestate(NULL);
	(void) addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL,
										 false, false);
	PushActiveSnapshot(GetTransactionSnapshot());
	cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, feed_cb, attnames, NIL);
	rows = CopyFrom(cstate);
	EndCopyFrom(cstate);
	PopActiveSnapshot();
	table_close(rel, NoLock);
	if (!feed.eof)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the COPY of %s ended before the source finished sending", object)));
	if (feed.buf)
		PQfreemem(feed.buf);
	feed.buf = NULL;
	ingest_disconnect(conn);

	/* its indexes and constraints, once the rows are in */
	run_dump_items(m, object,
				   ingest_split_dump(ingest_pg_dump(m, info, snapshot, "post-data", NIL, only),
									 true, &ctx));
	ingest_disconnect(repl);	/* the temporary slot goes with it */
	CommandCounterIncrement();

	/* the migration has it now, copied as of sync_lsn */
	vals[0] = Int32GetDatum(m->id);
	vals[1] = CStringGetTextDatum(nspname);
	vals[2] = CStringGetTextDatum(relname);
	vals[3] = CStringGetTextDatum(cols.data);
	vals[4] = Int64GetDatum((int64) rows);
	vals[5] = Int64GetDatum((int64) feed.bytes);
	vals[6] = CStringGetTextDatum(psprintf("%X/%X", LSN_FORMAT_ARGS(*sync_lsn)));
	ingest_catalog_begin();
	ingest_catalog_exec("INSERT INTO ingest.copy_item (migration_id, id, nspname, relname,"
						" columns, bytes_total, use_freeze, state, format, rows_done,"
						" bytes_done, sync_lsn, finished_at)"
						" SELECT $1, COALESCE(max(id), 0) + 1, $2, $3, $4, $6, false, 'done',"
						" 'text', $5, $6, $7::pg_lsn, now()"
						" FROM ingest.copy_item WHERE migration_id = $1",
						7, types, vals, NULL);
	ingest_catalog_end();
	ingest_inferred(m, object, change_lsn,
			 psprintf("created table %s and copied its " UINT64_FORMAT " rows as of LSN %X/%X",
					  object, rows, LSN_FORMAT_ARGS(*sync_lsn)),
			 "The table was created on the source after the migration started; its schema is pg_dump's of it under the new snapshot.");
	return true;
}
