/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  The applier: applies the spooled change stream to the target,
 *	  exactly once, in commit order.
 *
 * It starts once the full load is done (tables copied, their indexes
 * built: keys are looked up through them) and reads the spool, whole
 * transactions only.  Each change goes through the executor as native
 * logical replication does (ExecSimpleRelationInsert/Update/Delete, rows
 * found with RelationFindReplTupleByIndex or ...Seq, which replident.c
 * extends to types without an equality operator), with
 * session_replication_role = replica: the target's triggers and foreign
 * keys do not fire.  Values are converted with the target columns' input
 * functions; generated columns are left for the target to compute; a
 * column an UPDATE leaves out (an unchanged TOASTed value) keeps the
 * target's value.
 *
 * The target table of a source table is the one target.c names (a leaf
 * partition of the source that is not here goes to its root's table).  A
 * partitioned target routes each row as native apply does
 * (apply_handle_tuple_routing in worker.c): ExecFindPartition() for an
 * insert; for an update or delete, the old row is looked for in the
 * partition its identity routes to, and an update whose new row belongs in
 * another partition is a delete there and an insert in the other.  A
 * partition routed to that is not a plain table (a foreign table) is
 * refused, as native apply refuses it, and each partition routed to gets
 * the checks of ingest_check_target() below, as the table does.  A
 * TRUNCATE of a leaf sharing its target table with other leaves is applied
 * only when the same statement truncates all of them and no table the
 * migration leaves out; so is one of a partition here that rows of such
 * leaves are routed into (the copy never truncates either); otherwise it fails
 * the migration.  Before its first change of each kind to a table in each
 * batch (and again after any invalidation of the table, which GRANT and
 * REVOKE send; a change of role membership or attributes sends none), the
 * applier checks with ingest_check_target() that the migration's owner has
 * the privilege, that row-level security does not apply, and that the
 * table is not an extension's: it never writes where the owner could not.
 * A Citus distributed or reference table's changes go through Citus, as
 * SPI prepared statements its planner routes to the shards (citus.c); with
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
 * schema change (ddl.c), applied where it stands in its transaction, pending
 * truncates first; afterwards every table is looked up anew, and the source
 * transaction holding it commits alone.  Rows of a materialized view made
 * while streaming are not applied: the target's view fills itself.
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
 * under 'infer' (ingest_infer_new_table), with a sync LSN of its own.
 *
 * With wal2json before 2.6, NaN and Infinity in numeric, real and double
 * precision columns arrive as JSON null, like a NULL; for such a column the
 * applier reads the row's value back from the source by its key.  The value
 * read may be newer than the change, but the changes that made it newer
 * follow in the stream, so the target ends where the source is.
 *
 * Locking: RowExclusiveLock on the tables it writes; the origin is held by
 * this process (replorigin_session_setup).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "replication/origin.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/pg_lsn.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "citus.h"
#include "conn.h"
#include "ddl.h"
#include "infer.h"
#include "pg_ingest.h"
#include "replident.h"
#include "source.h"
#include "spool.h"
#include "target.h"
#include "wal2json.h"

#define VALUE_IN_MESSAGE_MAX 64

/* A target column, by its attnum - 1. */
typedef struct ApplyAttr
{
	bool		skip;			/* dropped or generated */
	bool		numeric;		/* numeric, real or double precision */
	FmgrInfo	input;
	Oid			ioparam;
	int32		typmod;
	bool		is_bytea;		/* bytea itself: wal2json drops its \\x */
} ApplyAttr;

/* What the applier knows of a source table. */
typedef struct ApplyRel
{
	NameData	nspname;		/* hash key, with relname */
	NameData	relname;
	bool		valid;			/* cleared by relcache invalidation */
	bool		skip;			/* left out by the migration's filters */
	bool		known;			/* in the migration */
	bool		resync;			/* copied again at the stop (resync.c) */
	bool		has_root;		/* a leaf partition on the source */
	NameData	root_nsp;		/* its partition root there */
	NameData	root_rel;
	XLogRecPtr	sync_lsn;
	Oid			relid;			/* the target table (target.c) */
	bool		mapped;			/* that of the root: the leaf is not here */
	char		relkind;		/* of the target table */
	AclMode		checked;		/* privileges checked in this batch */
	List	   *leaves_checked; /* LeafChecked of partitions routed to, in cxt */
	Oid			keyidx;			/* replica identity or primary key, or Invalid */
	int			natts;
	ApplyAttr  *attrs;
	MemoryContext cxt;			/* attrs and their input functions' state */
} ApplyRel;

/* a partition of a partitioned target, checked like the table (route()) */
typedef struct LeafChecked
{
	Oid			relid;
	AclMode		checked;
} LeafChecked;

typedef struct ApplyRelKey
{
	NameData	nspname;
	NameData	relname;
} ApplyRelKey;

static IngestMigration *m;
static IngestMigrationSlot *me;
static int	my_slot;
static IngestFilters *filters;
static IngestConnInfo *info;
static HTAB *rels = NULL;
static MemoryContext change_cxt;
static MemoryContext rel_cxt;
static PGconn *source = NULL;	/* for values read back, opened when needed */
static SpoolReader reader;
static char *spool_dir;
static uint32 removed_before = 0;	/* segments before this one are gone */

/* the source transaction being applied */
static struct
{
	bool		begun;			/* its BEGIN was read */
	bool		skip;			/* already applied (origin has passed it) */
	XLogRecPtr	final_lsn;		/* its commit record */
	XLogRecPtr	end_lsn;
	TimestampTz commit_time;
} src;

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

/*
 * TRUNCATEs of one source statement come one message per table: their
 * ApplyRel entries, applied together before the next change or commit.
 */
static List *truncates = NIL;
static bool truncate_left_out = false;	/* of a table the filters leave out */

static ApplyRel *last_rel = NULL;	/* lookup_rel(): changes come in runs */
static bool ddl_in_txn = false;		/* the source transaction changed the schema */

static void
invalidate_rels(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	ApplyRel   *r;

	if (rels == NULL)
		return;
	hash_seq_init(&status, rels);
	while ((r = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || r->relid == relid)
		{
			r->valid = false;
			r->checked = 0;		/* a GRANT or REVOKE, maybe */
			r->leaves_checked = NIL;	/* in r->cxt, reset on lookup */
		}
}

/* Sync LSNs of the migration's tables (the catalog is read again each time). */
static void
load_tables(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};
	SPITupleTable *tab;
	uint64		i;

	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT nspname, relname, max(sync_lsn)::text,"
							   " max(root_nspname), max(root_relname),"
							   " (nspname, relname) IN (SELECT nspname, relname"
							   "  FROM ingest.resync_table WHERE migration_id = $1)"
							   " FROM ingest.copy_item WHERE migration_id = $1"
							   " GROUP BY 1, 2", 1, types, vals, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		ApplyRelKey key;
		ApplyRel   *r;
		bool		found;
		char	   *lsn = ingest_getstr(tab, i, 3);

		memset(&key, 0, sizeof(key));
		namestrcpy(&key.nspname, ingest_getstr(tab, i, 1));
		namestrcpy(&key.relname, ingest_getstr(tab, i, 2));
		r = hash_search(rels, &key, HASH_ENTER, &found);
		if (!found)
		{
			memset(((char *) r) + sizeof(ApplyRelKey), 0, sizeof(ApplyRel) - sizeof(ApplyRelKey));
		}
		r->known = true;
		r->resync = ingest_getbool(tab, i, 6);
		r->has_root = ingest_getstr(tab, i, 5) != NULL;
		if (r->has_root)
		{
			namestrcpy(&r->root_nsp, ingest_getstr(tab, i, 4));
			namestrcpy(&r->root_rel, ingest_getstr(tab, i, 5));
		}
		r->sync_lsn = lsn ? DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(lsn))) :
			m->slot_lsn;
	}
	ingest_catalog_end();
}

/*
 * Whether wal2json writes this type as a bare JSON number (NaN and Infinity
 * as null before 2.6).  wal2json goes by the column's own type: a domain
 * over numeric is quoted like any other type.
 */
static bool
is_numeric_type(Oid typid)
{
	return typid == NUMERICOID || typid == FLOAT4OID || typid == FLOAT8OID;
}

/* The entry of a table, its target columns looked up again if needed. */
static ApplyRel *
lookup_rel(const char *nspname, const char *relname)
{
	ApplyRelKey key;
	ApplyRel   *r;
	bool		found;
	Relation	rel;
	TupleDesc	desc;
	int			i;

	/* changes come in runs of the same table */
	if (last_rel && last_rel->valid && strcmp(NameStr(last_rel->relname), relname) == 0 &&
		strcmp(NameStr(last_rel->nspname), nspname) == 0)
		return last_rel;

	memset(&key, 0, sizeof(key));
	namestrcpy(&key.nspname, nspname);
	namestrcpy(&key.relname, relname);
	r = hash_search(rels, &key, HASH_ENTER, &found);
	last_rel = r;
	if (!found)
		memset(((char *) r) + sizeof(ApplyRelKey), 0, sizeof(ApplyRel) - sizeof(ApplyRelKey));
	if (r->valid)
		return r;

	if (!r->known)
	{
		/* not in the migration: left out by its filters, or unknown */
		SourceRel	sr;

		memset(&sr, 0, sizeof(sr));
		sr.nspname = (char *) nspname;
		sr.relname = (char *) relname;
		sr.relkind = 'r';
		ingest_apply_filters(list_make1(&sr), filters);
		/* a materialized view: refreshed at the stop (matview.c) */
		if (!sr.in_scope || ingest_matview_skip(m->id, nspname, relname))
		{
			r->skip = true;
			r->valid = true;
			return r;
		}
		/* created on the source since: ddl => 'infer' creates and copies it */
		if (ingest_infer_new_table(m, info, nspname, relname, src.final_lsn, &r->sync_lsn))
			r->known = true;
		else
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table %s.%s of the source is not part of the migration",
							quote_identifier(nspname), quote_identifier(relname)),
					 errdetail("It was created on the source after the migration started; under ddl => '%s' it is not created here.", m->ddl),
					 errhint("Create it on the target, copy its rows, and add it: or leave it out with a filter in a new migration.")));
	}

	r->relid = ingest_target_relid(nspname, relname,
								   r->has_root ? NameStr(r->root_nsp) : NULL,
								   r->has_root ? NameStr(r->root_rel) : NULL,
								   RowExclusiveLock, &r->mapped);
	if (!OidIsValid(r->relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s.%s does not exist on the target",
						quote_identifier(nspname), quote_identifier(relname)),
				 r->has_root ?
				 errdetail("Neither does %s, the root of its partition tree on the source.",
						   ingest_qualified(NameStr(r->root_nsp), NameStr(r->root_rel))) : 0));
	r->checked = 0;
	r->leaves_checked = NIL;
	rel = table_open(r->relid, NoLock);
	r->relkind = rel->rd_rel->relkind;
	desc = RelationGetDescr(rel);
	if (r->cxt == NULL)
		r->cxt = AllocSetContextCreate(rel_cxt, "pg_ingest applier table",
									   ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(r->cxt);
	r->natts = desc->natts;
	r->attrs = MemoryContextAllocZero(r->cxt, sizeof(ApplyAttr) * desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		ApplyAttr  *a = &r->attrs[i];
		Oid			infunc;

		a->skip = att->attisdropped || att->attgenerated != '\0';
		if (att->attisdropped)
			continue;
		getTypeInputInfo(att->atttypid, &infunc, &a->ioparam);
		fmgr_info_cxt(infunc, &a->input, r->cxt);
		a->typmod = att->atttypmod;
		a->numeric = is_numeric_type(att->atttypid);
		a->is_bytea = att->atttypid == BYTEAOID;
	}
	r->keyidx = RelationGetReplicaIndex(rel);
	if (!OidIsValid(r->keyidx))
		r->keyidx = RelationGetPrimaryKeyIndex(rel);
	table_close(rel, NoLock);
	r->valid = true;
	return r;
}

static int
attnum_of(Relation rel, ApplyRel *r, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of table %s.%s does not exist on the target",
					name, quote_identifier(NameStr(r->nspname)),
					quote_identifier(NameStr(r->relname)))));
	return -1;					/* keep compiler quiet */
}

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
	if (source == NULL)
		source = ingest_connect_or_error(info, INGEST_CONN_SQL,
										 psprintf("pg_ingest %s applier", m->name));
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

	res = PQexecParams(source, sql.data, nkeys, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		PG_TRY();
		{
			ingest_report_result_error(source, res, ERROR, "read a value back",
									   info->password);
		}
		PG_FINALLY();
		{
			PQclear(res);
		}
		PG_END_TRY();
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
static void
store_values(Relation rel, ApplyRel *r, TupleTableSlot *slot,
			 W2JColumn *cols, int ncols, bool is_key)
{
	int			i;

	slot_getallattrs(slot);
	for (i = 0; i < ncols; i++)
	{
		int			att = attnum_of(rel, r, cols[i].name);
		ApplyAttr  *a = &r->attrs[att];
		char	   *value = cols[i].value;

		if (a->skip && !is_key)
			continue;
		if (value == NULL && a->numeric && !is_key &&
			!(me->numeric_probed && me->numeric_as_string))
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

typedef struct ApplyState
{
	EState	   *estate;
	ResultRelInfo *rri;
	EPQState	epq;
	/* a partitioned target: rows are routed to its partitions */
	ModifyTableState *mtstate;
	PartitionTupleRouting *proute;
} ApplyState;

static void
begin_apply(ApplyState *st, Relation rel, CmdType operation)
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

static void
end_apply(ApplyState *st)
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
 * Check a partition a row of r's table is routed to as the table itself is
 * checked (check_target()): a plain table, not an extension's nor Citus's,
 * the owner having the privileges in needed; once, cached with r.  Native
 * apply refuses a partition that is not a plain table likewise
 * (CheckSubscriptionRelkind); the executor's simple insert, update and
 * delete cannot write anywhere else.
 */
static void
check_leaf(ApplyRel *r, ResultRelInfo *part, AclMode needed)
{
	Relation	leaf = part->ri_RelationDesc;
	LeafChecked *lc = NULL;
	ListCell   *cell;
	MemoryContext old;

	foreach(cell, r->leaves_checked)
		if (((LeafChecked *) lfirst(cell))->relid == RelationGetRelid(leaf))
			lc = lfirst(cell);
	if (lc != NULL && (lc->checked & needed) == needed)
		return;
	if (leaf->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot apply a change of %s.%s to partition %s of %s: it is not a plain table",
						quote_identifier(NameStr(r->nspname)),
						quote_identifier(NameStr(r->relname)),
						ingest_relid_name(RelationGetRelid(leaf)),
						ingest_relid_name(r->relid)),
				 errdetail("Rows are applied only to plain tables (native logical replication refuses such a partition too)."),
				 errhint("Make the partition a plain table on the target, or leave the source table out.")));
	ingest_check_target(RelationGetRelid(leaf), m->owner, needed);
	old = MemoryContextSwitchTo(r->cxt);
	if (lc == NULL)
	{
		lc = palloc0(sizeof(LeafChecked));
		lc->relid = RelationGetRelid(leaf);
		r->leaves_checked = lappend(r->leaves_checked, lc);
	}
	lc->checked |= needed;
	MemoryContextSwitchTo(old);
}

/*
 * The partition of r's partitioned target that a row (in the target's
 * rowtype) belongs in, checked for needed (check_leaf()); *converted is the
 * row in the partition's rowtype.
 */
static ResultRelInfo *
route(ApplyState *st, ApplyRel *r, AclMode needed, TupleTableSlot *row,
	  TupleTableSlot **converted)
{
	ResultRelInfo *part;
	TupleConversionMap *map;
	TupleTableSlot *out;

	part = ExecFindPartition(st->mtstate, st->rri, st->proute, row, st->estate);
	check_leaf(r, part, needed);
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
static bool
find_row(Relation rel, ApplyRel *r, ApplyState *st, W2JChange *c,
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
	store_values(rel, r, key, c->identity, c->nidentity, true);
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
		*part = route(st, r, c->action == 'U' ? ACL_UPDATE : ACL_DELETE, key, &key);
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

/*
 * Whether the TRUNCATEs of a statement cover every leaf of the source that
 * goes to the shared target table of r (a mapped leaf): only then may that
 * table be truncated.
 */
static bool
truncates_all_leaves(ApplyRel *r)
{
	HASH_SEQ_STATUS status;
	ApplyRel   *leaf;
	List	   *leaves = NIL;
	ListCell   *lc;
	bool		all = true;

	hash_seq_init(&status, rels);
	while ((leaf = hash_seq_search(&status)) != NULL)
		if (leaf->known && leaf->has_root &&
			namestrcmp(&leaf->root_nsp, NameStr(r->root_nsp)) == 0 &&
			namestrcmp(&leaf->root_rel, NameStr(r->root_rel)) == 0)
			leaves = lappend(leaves, leaf);
	foreach(lc, leaves)
	{
		ApplyRel   *l = lookup_rel(NameStr(((ApplyRel *) lfirst(lc))->nspname),
								   NameStr(((ApplyRel *) lfirst(lc))->relname));

		if (l->relid == r->relid && !list_member_ptr(truncates, l))
			all = false;
	}
	list_free(leaves);
	return all;
}

/*
 * A leaf of the source mapped to a partitioned target above table relid (a
 * partition here): rows of that leaf may be routed into relid.  NULL if
 * there is none.
 */
static ApplyRel *
mapped_leaf_above(Oid relid)
{
	HASH_SEQ_STATUS status;
	ApplyRel   *leaf;
	List	   *leaves = NIL;
	List	   *ancestors;
	ListCell   *lc;
	ApplyRel   *found = NULL;

	if (!get_rel_relispartition(relid))
		return NULL;
	ancestors = get_partition_ancestors(relid);
	hash_seq_init(&status, rels);
	while ((leaf = hash_seq_search(&status)) != NULL)
		if (leaf->known && leaf->has_root)
			leaves = lappend(leaves, leaf);
	foreach(lc, leaves)
	{
		ApplyRel   *l = lookup_rel(NameStr(((ApplyRel *) lfirst(lc))->nspname),
								   NameStr(((ApplyRel *) lfirst(lc))->relname));

		if (found == NULL && l->mapped && list_member_oid(ancestors, l->relid))
			found = l;
	}
	list_free(leaves);
	list_free(ancestors);
	return found;
}

static void
flush_truncates(void)
{
	StringInfoData sql;
	ListCell   *lc;
	List	   *done = NIL;
	bool		left_out = truncate_left_out;

	truncate_left_out = false;
	if (truncates == NIL)
		return;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "TRUNCATE ");
	foreach(lc, truncates)
	{
		ApplyRel   *r = lfirst(lc);

		if (list_member_oid(done, r->relid))
			continue;
		/*
		 * A leaf whose rows share a table with other leaves': only when the
		 * statement truncates all of them, and no table the migration
		 * leaves out (a leaf of the same root, maybe, whose rows are not
		 * the truncated leaves' to delete), as the copy never truncates
		 * such a table (copy.c).
		 */
		if (r->mapped && (left_out || !truncates_all_leaves(r)))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot apply a TRUNCATE of %s.%s: its rows are in table %s with those of other partitions",
							quote_identifier(NameStr(r->nspname)),
							quote_identifier(NameStr(r->relname)),
							ingest_relid_name(r->relid)),
					 errdetail("The partition is not on the target; its partition root's table holds its rows."),
					 errhint("Truncate the whole partitioned table on the source, or delete the partition's rows instead.")));
		/* a partition here that rows of other leaves are routed into */
		if (!r->mapped)
		{
			ApplyRel   *above = mapped_leaf_above(r->relid);

			if (above != NULL && (left_out || !truncates_all_leaves(above)))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot apply a TRUNCATE of %s.%s: table %s also holds rows of other partitions of the source",
								quote_identifier(NameStr(r->nspname)),
								quote_identifier(NameStr(r->relname)),
								ingest_relid_name(r->relid)),
						 errdetail("Rows of %s.%s, which is not on the target, are routed through %s into its partitions.",
								   quote_identifier(NameStr(above->nspname)),
								   quote_identifier(NameStr(above->relname)),
								   ingest_relid_name(above->relid)),
						 errhint("Truncate the whole partitioned table on the source, or delete the partition's rows instead.")));
		}
		/* a partitioned table goes with its partitions */
		appendStringInfo(&sql, "%s%s%s", done ? ", " : "",
						 r->relkind == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
						 ingest_relid_name(r->relid));
		done = lappend_oid(done, r->relid);
	}
	/* Citus tables: with their shards (citus.c) */
	ingest_citus_truncate(sql.data, done);
	list_free(truncates);
	list_free(done);
	truncates = NIL;
	CommandCounterIncrement();
}

/*
 * Check once per batch (and again after an invalidation of the table) that
 * the migration may do this kind of change to it (target.c).
 */
static void
check_target(ApplyRel *r, char action)
{
	AclMode		needed;

	switch (action)
	{
		case 'I':
			needed = ACL_INSERT;
			break;
		case 'U':
			needed = ACL_UPDATE;
			break;
		case 'D':
			needed = ACL_DELETE;
			break;
		default:
			needed = ACL_TRUNCATE;
			break;
	}
	if ((r->checked & needed) == needed)
		return;
	ingest_check_target(r->relid, m->owner, needed);
	r->checked |= needed;
}

/*
 * Whether a table the migration does not copy is the partition root of
 * leaves it does.  A TRUNCATE of a partitioned table names it beside its
 * leaves; truncating the leaves is what applies it.
 */
static bool
is_root_of_known_leaves(const char *nspname, const char *relname)
{
	ApplyRelKey key;
	ApplyRel   *r;
	HASH_SEQ_STATUS status;
	bool		found = false;

	memset(&key, 0, sizeof(key));
	namestrcpy(&key.nspname, nspname);
	namestrcpy(&key.relname, relname);
	r = hash_search(rels, &key, HASH_FIND, NULL);
	if (r != NULL && r->known)
		return false;
	hash_seq_init(&status, rels);
	while ((r = hash_seq_search(&status)) != NULL)
	{
		if (!found && r->known && r->has_root &&
			strcmp(NameStr(r->root_nsp), nspname) == 0 &&
			strcmp(NameStr(r->root_rel), relname) == 0)
			found = true;
	}
	return found;
}

/*
 * A schema change of the source, applied here (ddl.c): pending truncates
 * go first; afterwards every table is looked up anew, the migration's
 * tables read again from the catalog (created, renamed, dropped).
 */
static void
apply_ddl(W2JChange *c)
{
	HASH_SEQ_STATUS status;
	ApplyRel   *r;

	flush_truncates();
	if (!ingest_ddl_apply(m, filters, c, src.final_lsn))
		return;
	ddl_in_txn = true;
	hash_seq_init(&status, rels);
	while ((r = hash_seq_search(&status)) != NULL)
	{
		if (r->cxt)
			MemoryContextDelete(r->cxt);
		(void) hash_search(rels, r, HASH_REMOVE, NULL);
	}
	last_rel = NULL;
	load_tables();
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

	if (c->action == 'T' && is_root_of_known_leaves(c->schema, c->table))
		return;
	r = lookup_rel(c->schema, c->table);
	if (r->skip)
	{
		if (c->action == 'T')
			truncate_left_out = true;
		return;
	}
	/* a change the table's copy already has */
	if (src.final_lsn < r->sync_lsn)
		return;
	/* resync => 'at_cutover': the table is copied again at the stop */
	if (r->resync)
		return;
	/* its columns differ from the target's: a schema change (infer.c) */
	if (c->action != 'T' && ingest_infer_change(m, info, r->relid, c))
		r = lookup_rel(c->schema, c->table);

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
		r = lookup_rel(c->schema, c->table);
	}
	check_target(r, c->action);

	if (c->action == 'T')
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		table_close(rel, NoLock);
		if (!list_member_ptr(truncates, r))
			truncates = lappend(truncates, r);
		MemoryContextSwitchTo(old);
		return;
	}
	if (truncates != NIL)
	{
		table_close(rel, NoLock);
		flush_truncates();
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

	begin_apply(&st, rel, c->action == 'I' ? CMD_INSERT :
				c->action == 'U' ? CMD_UPDATE : CMD_DELETE);
	newrow = ExecInitExtraTupleSlot(st.estate, RelationGetDescr(rel), &TTSOpsVirtual);

	switch (c->action)
	{
		case 'I':
			ExecClearTuple(newrow);
			memset(newrow->tts_isnull, true, sizeof(bool) * RelationGetDescr(rel)->natts);
			ExecStoreVirtualTuple(newrow);
			store_values(rel, r, newrow, c->columns, c->ncolumns, false);
			if (st.proute)
			{
				part = route(&st, r, ACL_INSERT, newrow, &newslot);
				ExecSimpleRelationInsert(part, st.estate, newslot);
			}
			else
				ExecSimpleRelationInsert(st.rri, st.estate, newrow);
			break;
		case 'U':
			if (!find_row(rel, r, &st, c, &part, &oldrow))
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
			store_values(rel, r, newrow, c->columns, c->ncolumns, false);
			if (st.proute == NULL)
			{
				EvalPlanQualSetSlot(&st.epq, newrow);
				ExecSimpleRelationUpdate(st.rri, st.estate, &st.epq, oldrow, newrow);
				break;
			}
			newpart = route(&st, r, ACL_UPDATE, newrow, &newslot);
			if (newpart == part)
			{
				EvalPlanQualSetSlot(&st.epq, newslot);
				ExecSimpleRelationUpdate(part, st.estate, &st.epq, oldrow, newslot);
			}
			else
			{
				/* the row moves to another partition, as native apply does it */
				check_leaf(r, part, ACL_DELETE);
				check_leaf(r, newpart, ACL_INSERT);
				EvalPlanQualSetSlot(&st.epq, oldrow);
				ExecSimpleRelationDelete(part, st.estate, &st.epq, oldrow);
				ExecSimpleRelationInsert(newpart, st.estate, newslot);
			}
			break;
		case 'D':
			if (!find_row(rel, r, &st, c, &part, &oldrow))
				ereport(ERROR,
						(errcode(ERRCODE_NO_DATA_FOUND),
						 errmsg("row to delete not found in %s.%s",
								quote_identifier(c->schema), quote_identifier(c->table))));
			EvalPlanQualSetSlot(&st.epq, oldrow);
			ExecSimpleRelationDelete(part, st.estate, &st.epq, oldrow);
			break;
	}
	end_apply(&st);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	batch.changes++;
}

static void
publish(void)
{
	pg_atomic_write_u64(&me->applied_lsn, batch.end_lsn);
	pg_atomic_write_u64(&me->applied_commit_ts, (uint64) batch.commit_time);
}

/* Commit the open target transaction with the origin's progress. */
static void
commit_batch(void)
{
	if (!batch.open)
		return;
	flush_truncates();
	replorigin_session_origin_lsn = batch.end_lsn;
	replorigin_session_origin_timestamp = batch.commit_time;
	ingest_xact_commit();
	pg_atomic_fetch_add_u64(&me->changes_applied, batch.changes);
	if (batch.end_lsn != InvalidXLogRecPtr)
		publish();
	batch.open = false;
	batch.txns = 0;
	batch.changes = 0;
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * The privileges checked are checked again in each batch: a REVOKE of a
 * role's membership, or ALTER ROLE ... NOSUPERUSER or NOBYPASSRLS, sends no
 * invalidation of the tables (pg_class_aclcheck is cheap).
 */
static void
forget_checks(void)
{
	HASH_SEQ_STATUS status;
	ApplyRel   *r;

	if (rels == NULL)
		return;
	hash_seq_init(&status, rels);
	while ((r = hash_seq_search(&status)) != NULL)
	{
		r->checked = 0;
		list_free_deep(r->leaves_checked);
		r->leaves_checked = NIL;
	}
}

static void
open_batch(void)
{
	if (batch.open)
		return;
	forget_checks();
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
	if (me->apply_idle != idle)
		ingest_slot_set_flag(&me->apply_idle, idle);
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
	pg_atomic_write_u64(&me->spool_bytes, ingest_spool_size(spool_dir));
}

/*
 * The stop LSN is reached: tell the coordinator, which drops the slot and
 * the spool, once what was applied is durable.
 */
static void
reach_stop(void)
{
	flush_applied();
	ingest_slot_set_flag(&me->reached_stop, true);
	ingest_wake_workers(my_slot, INGEST_WORKER_COORDINATOR);
}

/* The stop LSN, as the catalog has it now.  No transaction may be open. */
static XLogRecPtr
read_stop_lsn(void)
{
	IngestMigration *now;
	XLogRecPtr	stop;

	ingest_xact_start();
	now = ingest_load_migration(m->id);
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
	HASHCTL		ctl;
	XLogRecPtr	stop_lsn;
	TimestampTz stop_checked = 0;
	W2JChange	change;
	volatile bool failed = false;

	ingest_worker_init(main_arg, INGEST_WORKER_APPLIER, &my_slot, &migration_id);
	me = &IngestShared->migrations[my_slot];
	SetConfigOption("session_replication_role", "replica", PGC_SUSET, PGC_S_OVERRIDE);
	/* read values as the source's sessions write them (conn.c) */
	SetConfigOption("datestyle", "ISO", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("intervalstyle", "postgres", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lc_monetary", "C", PGC_SUSET, PGC_S_OVERRIDE);

	rel_cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest applier tables",
									ALLOCSET_DEFAULT_SIZES);
	change_cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest applier change",
									   ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(ApplyRelKey);
	ctl.entrysize = sizeof(ApplyRel);
	ctl.hcxt = rel_cxt;
	rels = hash_create("pg_ingest applier tables", 256, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(invalidate_rels, (Datum) 0);

	MemoryContextSwitchTo(TopMemoryContext);
	ingest_xact_start();
	m = ingest_load_migration(migration_id);
	filters = ingest_load_filters(migration_id);
	info = ingest_conninfo_parse(m->source, !superuser_arg(m->owner), NULL, NULL);
	load_tables();
	ingest_w2j_setup_conversion(m->source_encoding);
	origin = replorigin_by_name(ingest_origin_name(m), true);
	if (origin == InvalidRepOriginId)
		origin = replorigin_create(ingest_origin_name(m));
	ingest_xact_commit();
	replorigin_session_setup(origin);
	replorigin_session_origin = origin;
	origin_lsn = replorigin_session_get_progress(false);
	/* nothing applied yet: the copy (or mode cdc's start) stands at the slot's point */
	pg_atomic_write_u64(&me->applied_lsn, Max(origin_lsn, m->slot_lsn));
	stop_lsn = m->stop_lsn;

	spool_dir = ingest_spool_dir(MyDatabaseId, m->id);
	ingest_spool_open_reader(&reader, spool_dir);
	initStringInfo(&payload);
	memset(&batch, 0, sizeof(batch));
	memset(&src, 0, sizeof(src));

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
			if (pg_atomic_read_u64(&me->stop_request) != InvalidXLogRecPtr)
				stop_lsn = pg_atomic_read_u64(&me->stop_request);

			/*
			 * An operator's pause holds between source transactions: one
			 * begun is read to its end first.
			 */
			if (me->paused && !src.begun)
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
			flushed = pg_atomic_read_u64(&me->flushed_lsn);
			pg_read_barrier();
			have = ingest_spool_read(&reader, pg_atomic_read_u64(&me->spool_limit),
									 &kind, &lsn, &payload);
			if (!have)
			{
				/* the limit is a transaction's end: what was applied commits */
				Assert(!src.begun);
				pg_atomic_write_u64(&me->apply_pos, SPOOL_POS(reader.segno, reader.offset));
				commit_batch();
				remove_applied_segments();
				set_idle(true);

				/* stopped once the stream has passed the stop LSN */
				if (stop_lsn != InvalidXLogRecPtr &&
					(pg_atomic_read_u64(&me->applied_lsn) >= stop_lsn || flushed >= stop_lsn))
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
					if (src.begun)
						ereport(ERROR,
								(errcode(ERRCODE_DATA_CORRUPTED),
								 errmsg("the spool holds a transaction without its commit before %X/%X",
										LSN_FORMAT_ARGS(change.lsn))));
					src.begun = true;
					src.final_lsn = change.lsn;
					src.end_lsn = change.nextlsn;
					src.commit_time = parse_timestamp(change.timestamp);
					src.skip = src.end_lsn <= origin_lsn ||
						(stop_lsn != InvalidXLogRecPtr && src.final_lsn > stop_lsn);
					ddl_in_txn = false;
					if (!src.skip)
						open_batch();
					break;
				case 'C':
					if (!src.begun)
						break;
					src.begun = false;
					if (src.skip)
					{
						/* past the stop LSN: nothing after it is applied */
						if (stop_lsn != InvalidXLogRecPtr && src.final_lsn > stop_lsn)
						{
							commit_batch();
							reach_stop();
							goto done;
						}
						break;
					}
					batch.txns++;
					batch.end_lsn = src.end_lsn;
					batch.commit_time = src.commit_time;
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
					if (src.begun && !src.skip)
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
					/* a schema change where it committed (ddl.c) */
					if (src.begun && !src.skip)
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
		ingest_fail_migration(m, psprintf("%s%s%s%s%s", edata->message,
										  edata->context ? " (" : "",
										  edata->context ? edata->context : "",
										  edata->context ? ")" : "",
										  edata->hint ? psprintf(" Hint: %s", edata->hint) : ""));
		ingest_xact_commit();
		failed = true;
	}
	PG_END_TRY();

	ingest_spool_close_reader(&reader);
	if (source)
		ingest_disconnect(source);
	ingest_wake_workers(my_slot, INGEST_WORKER_COORDINATOR);
	proc_exit(failed ? 1 : 0);
}
