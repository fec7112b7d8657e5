/*-------------------------------------------------------------------------
 *
 * apply_row.c
 *	  How the applier writes a row change: values converted to the target
 *	  table's columns, the executor state of one change, the partition a
 *	  row is routed to, and the target row a change names.
 *
 * Each change goes through the executor as native logical replication
 * does (ExecSimpleRelationInsert/Update/Delete, rows found with
 * RelationFindReplTupleByIndex or ...Seq, which replident.c extends to
 * types without an equality operator).  Values are converted with the
 * target columns' input functions; generated columns are left for the
 * target to compute; a column an UPDATE leaves out (an unchanged TOASTed
 * value) keeps the target's value.
 *
 * A partitioned target routes each row as native apply does
 * (apply_handle_tuple_routing in worker.c): ExecFindPartition() for an
 * insert; for an update or delete, the old row is looked for in the
 * partition its identity routes to (whose key the identity must hold), and
 * an update whose new row belongs in another partition is a delete there
 * and an insert in the other (apply.c).  Each partition routed to is
 * checked as the table is (ingest_apply_check_leaf, apply_tables.c).
 *
 * With wal2json before 2.6, NaN and Infinity in numeric, real and double
 * precision columns arrive as JSON null, like a NULL; for such a column the
 * applier reads the row's value back from the source by its key.  The value
 * read may be newer than the change, but the changes that made it newer
 * follow in the stream, so the target ends where the source is.
 *
 * State: in this process only: the executor state of the change being
 * applied, in the change's memory, and the source session values are read
 * back over (apply_source), opened when first needed and closed when the
 * applier exits (apply.c); nothing in the catalog or shared memory.
 *
 * Locking: the tables are opened by apply.c under RowExclusiveLock; the
 * partitions routed to are opened by ExecFindPartition() under the same;
 * the row found is locked LockTupleExclusive; a key index read back by is
 * opened AccessShareLock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/partcache.h"
#include "utils/rel.h"

#include "apply_int.h"
#include "conn.h"
#include "pg_ingest.h"
#include "replident.h"
#include "source.h"
#include "target.h"

PGconn	   *apply_source = NULL;	/* for values read back, opened when needed */

/*
 * Read a row's value of a column back from the source, by the row's key
 * (wal2json before 2.6 sends NaN and Infinity as null).  NULL if the row
 * is gone or has no key here.
 */
static char *
read_back(Relation rel, ApplyRel *r, W2JColumn *cols, int ncols, const char *column)
{
	Relation	idx;
	StringInfoData sql;
	const char **params;
	int			nkeys;
	int			i;
	PGresult   *res;
	char	   *value = NULL;

	if (!OidIsValid(r->keyidx))
		return NULL;
	if (apply_source == NULL)
		apply_source = ingest_connect_or_error(MySource, INGEST_CONN_SQL,
										 psprintf("pg_ingest %s applier", MyMigration->name));
	idx = index_open(r->keyidx, AccessShareLock);
	nkeys = idx->rd_index->indnkeyatts;
	params = palloc(sizeof(char *) * nkeys);
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s::text FROM ONLY %s WHERE ",
					 quote_identifier(column),
					 ingest_qualified(NameStr(r->nspname), NameStr(r->relname)));
	for (i = 0; i < nkeys; i++)
	{
		const char *att = NameStr(TupleDescAttr(RelationGetDescr(rel),
												idx->rd_index->indkey.values[i] - 1)->attname);
		int			j;

		params[i] = NULL;
		for (j = 0; j < ncols; j++)
			if (strcmp(cols[j].name, att) == 0)
				params[i] = cols[j].value;
		appendStringInfo(&sql, "%s%s::text = $%d", i ? " AND " : "",
						 quote_identifier(att), i + 1);
	}
	index_close(idx, AccessShareLock);

	res = PQexecParams(apply_source, sql.data, nkeys, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		ingest_report_result_error(apply_source, res, ERROR, "read a value back",
								   MySource->password);
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		value = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return value;
}

/*
 * Store values into slot (which holds the row to start from, or nothing):
 * the columns given; the others keep what slot has.
 */
void
ingest_apply_store_values(Relation rel, ApplyRel *r, TupleTableSlot *slot,
			 W2JColumn *cols, int ncols, bool is_key)
{
	int			i;

	slot_getallattrs(slot);
	for (i = 0; i < ncols; i++)
	{
		int			att = ingest_target_column(rel, cols[i].name);
		ApplyAttr  *a = &r->attrs[att];
		char	   *value = cols[i].value;

		if (a->skip && !is_key)
			continue;
		if (value == NULL && a->numeric && !is_key &&
			!(MyMigrationSlot->numeric_probed && MyMigrationSlot->numeric_as_string))
			value = read_back(rel, r, cols, ncols, cols[i].name);
		if (value == NULL)
		{
			slot->tts_values[att] = (Datum) 0;
			slot->tts_isnull[att] = true;
			continue;
		}
		if (a->is_bytea && !cols[i].is_number)
			value = psprintf("\\x%s", value);	/* wal2json drops the \x */
		slot->tts_values[att] = InputFunctionCall(&a->input, value, a->ioparam, a->typmod);
		slot->tts_isnull[att] = false;
	}
}

void
ingest_apply_begin(ApplyState *st, Relation rel, CmdType operation)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	st->estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(st->estate, list_make1(rte));
	st->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(st->rri, rel, 1, NULL, 0);
	st->estate->es_output_cid = GetCurrentCommandId(true);
	st->mtstate = NULL;
	st->proute = NULL;
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		/*
		 * As native apply does: ExecFindPartition() wants a ModifyTableState
		 * and opens each partition it routes to, with its indexes.
		 */
		st->mtstate = makeNode(ModifyTableState);
		st->mtstate->ps.plan = NULL;
		st->mtstate->ps.state = st->estate;
		st->mtstate->operation = operation;
		st->mtstate->resultRelInfo = st->rri;
		st->mtstate->rootResultRelInfo = st->rri;
		st->proute = ExecSetupPartitionTupleRouting(st->estate, rel);
	}
	else
		ExecOpenIndices(st->rri, false);
	EvalPlanQualInit(&st->epq, st->estate, NULL, NIL, -1);
	AfterTriggerBeginQuery();
}

void
ingest_apply_end(ApplyState *st)
{
	AfterTriggerEndQuery(st->estate);
	EvalPlanQualEnd(&st->epq);
	if (st->proute)
		ExecCleanupTupleRouting(st->mtstate, st->proute);
	else
		ExecCloseIndices(st->rri);
	ExecResetTupleTable(st->estate->es_tupleTable, false);
	FreeExecutorState(st->estate);
}

/*
 * The partition of r's partitioned target that a row (in the target's
 * rowtype) belongs in, checked for needed (ingest_apply_check_leaf()); *converted is the
 * row in the partition's rowtype.
 */
ResultRelInfo *
ingest_apply_route(ApplyState *st, ApplyRel *r, AclMode needed, TupleTableSlot *row,
	  TupleTableSlot **converted)
{
	ResultRelInfo *part;
	TupleConversionMap *map;
	TupleTableSlot *out;

	part = ExecFindPartition(st->mtstate, st->rri, st->proute, row, st->estate);
	ingest_apply_check_leaf(r, part, needed);
	out = table_slot_create(part->ri_RelationDesc, &st->estate->es_tupleTable);
	map = part->ri_RootToPartitionMap;
	if (map != NULL)
		out = execute_attr_map_slot(map->attrMap, row, out);
	else
	{
		ExecCopySlot(out, row);
		slot_getallattrs(out);
	}
	*converted = out;
	return part;
}

/*
 * Find the target row a change names by its identity; locked if found, in
 * *found.  *part is where it is: the target table, or the partition of a
 * partitioned target the identity routes to (searched by that partition's
 * replica identity or primary key).
 */
bool
ingest_apply_find_row(Relation rel, ApplyRel *r, ApplyState *st, W2JChange *c,
		 ResultRelInfo **part, TupleTableSlot **found)
{
	TupleTableSlot *key = ExecInitExtraTupleSlot(st->estate, RelationGetDescr(rel),
												 &TTSOpsVirtual);
	Relation	searchrel = rel;
	Oid			keyidx = r->keyidx;

	if (c->nidentity == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the source sent no key for a change of %s.%s",
						quote_identifier(NameStr(r->nspname)), quote_identifier(NameStr(r->relname))),
				 errhint("ALTER TABLE ... REPLICA IDENTITY FULL on the source, or add a primary key.")));
	ExecClearTuple(key);
	memset(key->tts_isnull, true, sizeof(bool) * key->tts_tupleDescriptor->natts);
	ExecStoreVirtualTuple(key);
	ingest_apply_store_values(rel, r, key, c->identity, c->nidentity, true);
	*part = st->rri;
	if (st->proute)
	{
		PartitionKey pkey = RelationGetPartitionKey(rel);
		int			i;
		int			j;

		/*
		 * The identity must hold the partition key to say where the row is
		 * (a source table whose key lacks the target's partition key sends
		 * only its key): else the migration fails here, not on a row not
		 * found.  Partitions of partitions check theirs in
		 * ExecFindPartition(), which fails on a row that fits none.
		 */
		for (i = 0; i < pkey->partnatts; i++)
		{
			const char *att;
			bool		sent = false;

			if (pkey->partattrs[i] == 0)
				continue;		/* an expression */
			att = NameStr(TupleDescAttr(RelationGetDescr(rel), pkey->partattrs[i] - 1)->attname);
			for (j = 0; j < c->nidentity; j++)
				sent |= strcmp(c->identity[j].name, att) == 0;
			if (!sent)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the source's key of %s.%s lacks column \"%s\" of the partition key of %s",
								quote_identifier(NameStr(r->nspname)),
								quote_identifier(NameStr(r->relname)),
								att, ingest_relid_name(RelationGetRelid(rel))),
						 errdetail("Without it, the partition that holds the row to change is unknown."),
						 errhint("ALTER TABLE ... REPLICA IDENTITY FULL on the source, or add the column to its primary key.")));
		}
		*part = ingest_apply_route(st, r, c->action == 'U' ? ACL_UPDATE : ACL_DELETE, key, &key);
		searchrel = (*part)->ri_RelationDesc;
		keyidx = RelationGetReplicaIndex(searchrel);
		if (!OidIsValid(keyidx))
			keyidx = RelationGetPrimaryKeyIndex(searchrel);
	}
	*found = table_slot_create(searchrel, &st->estate->es_tupleTable);
	if (OidIsValid(keyidx))
		return RelationFindReplTupleByIndex(searchrel, keyidx, LockTupleExclusive, key, *found);
	/* images for types without equality (replident.c) */
	return ingest_find_repl_tuple_seq(searchrel, LockTupleExclusive, key, *found);
}
