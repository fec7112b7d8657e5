/*-------------------------------------------------------------------------
 *
 * citus.c
 *	  Migrating into Citus: rows of distributed and reference tables go
 *	  through Citus to the shards, never into the coordinator's shell
 *	  tables.
 *
 * Detection, without Citus headers: a table is a Citus table when the
 * extension citus is installed in this database and pg_dist_partition has
 * its row (partmethod 'h': hash-distributed, its distribution column in
 * partkey, the text of a Var; 'n': a reference table or a Citus local
 * table).  Append- and range-distributed tables, partitioned Citus tables
 * and a pg_dist_partition without the extension are refused
 * (ingest_citus_check_target, called by target.c's one check).  The answer
 * is cached per table in this process (a hash by relid, dropped with the
 * table's relcache invalidation, which create_distributed_table and
 * undistribute_table send).
 *
 * The copy: the rows of the source's COPY stream, parsed by BeginCopyFrom
 * and NextCopyFrom (copy.c's data callback), are handed to Citus's own
 * COPY destination, CreateCitusCopyDestReceiver, looked up at run time in
 * the loaded citus library with the argument list of the installed
 * version (6 arguments before 13.1, 7 since).  Citus opens one remote
 * transaction per shard placement and, at the commit of the copy item's
 * transaction, commits them with two-phase commit together with the
 * item's completion record; an abort leaves the shards as they were.  No
 * FREEZE (Citus writes the shards); a TRUNCATE of a Citus table is a
 * DELETE through Citus (ingest_citus_truncate: Citus's truncate trigger on
 * the shell does not fire under session_replication_role = replica).
 *
 * The applier: changes of a Citus table are applied with SPI prepared
 * statements (kept per statement text for the life of the process), so
 * the distributed planner routes each to its shard: the WHERE clause is
 * the change's identity, which holds the distribution column, since every
 * key of a distributed table does.  Unchanged TOAST columns are left out
 * of the SET list, and so is the distribution column when unchanged; an
 * UPDATE that changes it is a DELETE ... RETURNING and an INSERT of the
 * merged row.  Each UPDATE and DELETE must affect exactly one row.
 *
 * Transactions: Citus runs a single-shard statement outside a remote
 * transaction unless the local one is a transaction block, so the copy
 * item's and the applier batch's transactions are made blocks
 * (ingest_citus_begin_block; catalog.c ends them) and every shard write
 * commits or aborts with the coordinator's transaction: with the
 * replication origin's progress for the applier, with the item's record
 * for the copy.  In that block, SET LOCAL session_replication_role =
 * replica is run with citus.propagate_set_commands = 'local', so that
 * Citus sends it to every worker connection the transaction uses: shard
 * triggers and foreign keys do not fire for migrated rows either.
 *
 * The map (ingest.start's and ingest.preflight's distribute): checked at
 * start against this server and the source's catalog, stored normalized
 * in ingest.migration.distribute; the schema phase reads it after the
 * pre-data statements and calls create_reference_table, then
 * create_distributed_table in co-location order, one transaction each,
 * leaving alone a table Citus already holds (a restart midway).
 *
 * State: the map in the catalog (ingest.migration.distribute); this
 * process's memory (the per-table cache and the kept plans); nothing in
 * shared memory.  Locking: RowExclusiveLock on the shell table (taken by
 * the callers and by the statements); Citus takes its own, and
 * create_distributed_table its AccessExclusiveLock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "citus.h"
#include "source.h"
#include "target.h"

/* What this process knows of a table. */
typedef struct CitusRel
{
	Oid			relid;			/* hash key */
	char		method;			/* partmethod, or INGEST_CITUS_NONE */
	char		repmodel;
	AttrNumber	distattno;		/* the distribution column, 0 if none */
} CitusRel;

static HTAB *citus_rels = NULL;

/* Prepared statements of the applier, by statement text. */
typedef struct CitusPlan
{
	uint32		hash;			/* hash key: of the text */
	List	   *entries;		/* CitusPlanEntry, several texts may share a hash */
} CitusPlan;

typedef struct CitusPlanEntry
{
	char	   *sql;
	SPIPlanPtr	plan;
} CitusPlanEntry;

static HTAB *citus_plans = NULL;

/* CreateCitusCopyDestReceiver's argument lists */
typedef DestReceiver *(*CreateDest6) (Oid, List *, int, EState *, char *, bool);
typedef DestReceiver *(*CreateDest7) (Oid, List *, int, EState *, char *, bool, bool);

static void
invalidate_citus_rel(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	CitusRel   *r;

	if (citus_rels == NULL)
		return;
	if (OidIsValid(relid))
	{
		(void) hash_search(citus_rels, &relid, HASH_REMOVE, NULL);
		return;
	}
	hash_seq_init(&status, citus_rels);
	while ((r = hash_seq_search(&status)) != NULL)
		(void) hash_search(citus_rels, &r->relid, HASH_REMOVE, NULL);
}

/* Whether the extension citus is installed in this database. */
static bool
citus_installed(void)
{
	return OidIsValid(get_extension_oid("citus", true));
}

/*
 * Read the row of relid in pg_dist_partition, if that catalog exists:
 * *found, its partmethod, repmodel and distribution column.
 */
static void
read_dist_partition(Oid relid, bool *found, char *method, char *repmodel,
					AttrNumber *distattno)
{
	Oid			catalog = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	AttrNumber	att_relid;
	AttrNumber	att_method;
	AttrNumber	att_key;
	AttrNumber	att_repmodel;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	*found = false;
	*method = INGEST_CITUS_NONE;
	*repmodel = '\0';
	*distattno = 0;
	if (!OidIsValid(catalog))
		return;
	att_relid = get_attnum(catalog, "logicalrelid");
	att_method = get_attnum(catalog, "partmethod");
	att_key = get_attnum(catalog, "partkey");
	att_repmodel = get_attnum(catalog, "repmodel");
	if (att_relid == InvalidAttrNumber || att_method == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("catalog pg_catalog.pg_dist_partition has no column logicalrelid or partmethod"),
				 errdetail("pg_ingest cannot tell whether a table is a Citus table.")));
	rel = table_open(catalog, AccessShareLock);
	ScanKeyInit(&key, att_relid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;

		*found = true;
		d = heap_getattr(tup, att_method, desc, &isnull);
		*method = isnull ? '?' : DatumGetChar(d);
		if (att_repmodel != InvalidAttrNumber)
		{
			d = heap_getattr(tup, att_repmodel, desc, &isnull);
			*repmodel = isnull ? '\0' : DatumGetChar(d);
		}
		if (att_key != InvalidAttrNumber)
		{
			d = heap_getattr(tup, att_key, desc, &isnull);
			if (!isnull)
			{
				/* partkey is the text of the distribution column's Var */
				Node	   *n = stringToNode(TextDatumGetCString(d));

				if (n != NULL && IsA(n, Var))
					*distattno = ((Var *) n)->varattno;
			}
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/*
 * ingest_citus_method
 *		pg_dist_partition.partmethod of relid ('h' hash-distributed, 'n' a
 *		reference or Citus local table, ...), INGEST_CITUS_NONE for a table
 *		Citus does not know; *distattno (if not NULL) its distribution
 *		column, or 0.  A row in a pg_dist_partition without the extension
 *		citus counts as none here: ingest_citus_check_target refuses it.
 */
char
ingest_citus_method(Oid relid, AttrNumber *distattno)
{
	CitusRel   *r;
	bool		found;

	if (citus_rels == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CitusRel);
		ctl.hcxt = TopMemoryContext;
		citus_rels = hash_create("pg_ingest citus tables", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(invalidate_citus_rel, (Datum) 0);
	}
	r = hash_search(citus_rels, &relid, HASH_FIND, NULL);
	if (r == NULL)
	{
		char		method = INGEST_CITUS_NONE;
		char		repmodel = '\0';
		AttrNumber	distattno_read = 0;
		bool		listed = false;

		if (citus_installed())
			read_dist_partition(relid, &listed, &method, &repmodel, &distattno_read);
		r = hash_search(citus_rels, &relid, HASH_ENTER, &found);
		r->method = listed ? method : INGEST_CITUS_NONE;
		r->repmodel = repmodel;
		r->distattno = distattno_read;
	}
	if (distattno)
		*distattno = r->distattno;
	return r->method;
}

/* Whether Citus distributes relid or keeps it as a reference table. */
bool
ingest_citus_table(Oid relid)
{
	return ingest_citus_method(relid, NULL) != INGEST_CITUS_NONE;
}

/*
 * ingest_citus_check_target
 *		Refuse a Citus table pg_ingest cannot feed through Citus (target.c
 *		calls it for every table it checks).
 */
void
ingest_citus_check_target(Oid relid, const char *name)
{
	char		method;
	bool		listed;
	char		repmodel;
	AttrNumber	distattno;

	if (!citus_installed())
	{
		/* a pg_dist_partition without Citus: refuse what it lists */
		read_dist_partition(relid, &listed, &method, &repmodel, &distattno);
		if (listed)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot migrate rows into table %s: pg_dist_partition lists it but extension \"citus\" is not installed",
							name),
					 errdetail("Without Citus, rows would be written into the coordinator's shell table instead of the shards."),
					 errhint("CREATE EXTENSION citus in this database, with citus in shared_preload_libraries.")));
		return;
	}
	method = ingest_citus_method(relid, &distattno);
	if (method == INGEST_CITUS_NONE)
		return;
	if (method != 'h' && method != 'n')
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot migrate rows into table %s: it is an append- or range-distributed Citus table",
						name),
				 errdetail("pg_ingest feeds hash-distributed and reference tables through Citus."),
				 errhint("Distribute the table by hash, or leave it out with exclude_tables.")));
	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot migrate rows into table %s: it is a partitioned Citus table",
						name),
				 errdetail("pg_ingest does not yet route rows of partitioned distributed tables through Citus."),
				 errhint("Leave the table out with exclude_tables and copy it with COPY through Citus.")));
}

/* "hash(col)", "reference", or NULL for a table Citus does not know. */
char *
ingest_citus_describe(Oid relid)
{
	AttrNumber	distattno;
	char		method = ingest_citus_method(relid, &distattno);

	if (method == INGEST_CITUS_NONE)
		return NULL;
	if (method == 'h' && distattno > 0)
		return psprintf("hash(%s)", quote_identifier(get_attname(relid, distattno, false)));
	return pstrdup(method == 'n' ? "reference" : "other");
}

/* major * 100 + minor of the installed extension citus */
static int
citus_version_num(void)
{
	Oid			extoid = get_extension_oid("citus", false);
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	int			major = 0;
	int			minor = 0;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull && sscanf(TextDatumGetCString(d), "%d.%d", &major, &minor) < 1)
			major = 0;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return major * 100 + minor;
}

/*
 * Citus's COPY destination for rel, for all its stored columns, as Citus's
 * own COPY builds it (CopyToExistingShards in multi_copy.c).
 */
static DestReceiver *
citus_copy_dest(Relation rel, EState *estate)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	distattno;
	List	   *names = NIL;
	int			version = citus_version_num();
	void	   *fn;
	int			i;

	(void) ingest_citus_method(RelationGetRelid(rel), &distattno);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated == ATTRIBUTE_GENERATED_STORED)
			continue;
		names = lappend(names, NameStr(att->attname));
	}
	if (version < 1200 || version >= 1400)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot copy into Citus table %s: Citus %d.%d is not supported",
						ingest_relid_name(RelationGetRelid(rel)), version / 100, version % 100),
				 errdetail("pg_ingest hands rows to CreateCitusCopyDestReceiver, whose argument list it knows for Citus 12 and 13.")));
	fn = load_external_function("citus", "CreateCitusCopyDestReceiver", true, NULL);
	if (version >= 1301)
		return ((CreateDest7) fn) (RelationGetRelid(rel), names, distattno - 1, estate,
								   NULL, true, false);
	return ((CreateDest6) fn) (RelationGetRelid(rel), names, distattno - 1, estate,
							   NULL, true);
}

/*
 * ingest_citus_copy_from
 *		Read every row of cstate (BeginCopyFrom on rel, a Citus table) and
 *		hand it to Citus's COPY destination.  Returns the number of rows.
 *		In place of CopyFrom() (copy.c).
 */
uint64
ingest_citus_copy_from(CopyFromState cstate, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	MemoryContext tuplecxt = GetPerTupleMemoryContext(estate);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	DestReceiver *dest = citus_copy_dest(rel, estate);
	uint64		rows = 0;

	dest->rStartup(dest, 0, desc);
	for (;;)
	{
		MemoryContext old;
		bool		more;

		CHECK_FOR_INTERRUPTS();
		ResetPerTupleExprContext(estate);
		ExecClearTuple(slot);
		old = MemoryContextSwitchTo(tuplecxt);
		more = NextCopyFrom(cstate, econtext, slot->tts_values, slot->tts_isnull);
		MemoryContextSwitchTo(old);
		if (!more)
			break;
		ExecStoreVirtualTuple(slot);
		dest->receiveSlot(slot, dest);
		rows++;
	}
	dest->rShutdown(dest);
	dest->rDestroy(dest);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	return rows;
}

/*
 * ingest_citus_truncate
 *		Run a TRUNCATE statement sql naming the tables relids.  When some
 *		are Citus tables, their rows are deleted instead, through Citus, in
 *		the order given, and the others truncated: Citus truncates shards
 *		from a truncate trigger on the shell, which does not fire under
 *		session_replication_role = replica, and the workers' setting could
 *		not be lifted for the statement.
 */
void
ingest_citus_truncate(const char *sql, List *relids)
{
	ListCell   *lc;
	StringInfoData rest;
	List	   *deletes = NIL;

	initStringInfo(&rest);
	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);

		if (ingest_citus_table(relid))
			deletes = lappend(deletes, psprintf("DELETE FROM %s", ingest_relid_name(relid)));
		else
			appendStringInfo(&rest, "%s%s%s", rest.len ? ", " : "TRUNCATE ",
							 get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
							 ingest_relid_name(relid));
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (deletes == NIL)
	{
		if (SPI_execute(sql, false, 0) < 0)
			elog(ERROR, "could not run %s", sql);
	}
	else
	{
		foreach(lc, deletes)
			if (SPI_execute(lfirst(lc), false, 0) < 0)
				elog(ERROR, "could not run %s", (char *) lfirst(lc));
		if (rest.len && SPI_execute(rest.data, false, 0) < 0)
			elog(ERROR, "could not run %s", rest.data);
	}
	SPI_finish();
}

/*
 * ingest_citus_begin_block
 *		Make the current transaction (started with ingest_xact_start) a
 *		transaction block, as BEGIN would, unless it is one: Citus then
 *		writes the shards in remote transactions that commit with it.  Then
 *		SET LOCAL session_replication_role = replica, which Citus sends to
 *		every worker connection of the transaction.  ingest_xact_commit
 *		ends the block (ingest_citus_end_block).
 */
void
ingest_citus_begin_block(void)
{
	if (IsTransactionBlock())
		return;
	BeginTransactionBlock();
	CommitTransactionCommand(); /* TBLOCK_BEGIN -> TBLOCK_INPROGRESS */
	StartTransactionCommand();
	SetConfigOption("citus.propagate_set_commands", "local", PGC_USERSET, PGC_S_SESSION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SET LOCAL session_replication_role = replica", false, 0) < 0)
		elog(ERROR, "could not set session_replication_role for the shards");
	SPI_finish();
}

/*
 * ingest_citus_end_block
 *		End the transaction block ingest_citus_begin_block opened, if any:
 *		the caller's CommitTransactionCommand (commit) then commits.  After
 *		an error (not commit), abort whatever transaction state there is.
 *		Returns having left a plain transaction, or none.
 */
void
ingest_citus_end_block(bool commit)
{
	if (!IsTransactionBlock())
	{
		if (!commit)
			AbortCurrentTransaction();
		return;
	}
	if (commit)
		(void) EndTransactionBlock(false);
	else
		AbortOutOfAnyTransaction();
}

/*
 * ingest_citus_apply_batch_begun
 *		The applier opened a batch: with Citus installed, make it a block
 *		(see ingest_citus_begin_block).
 */
void
ingest_citus_apply_batch_begun(void)
{
	if (citus_installed())
		ingest_citus_begin_block();
}

/* ------------------------------------------------------------------------
 * The applier's statements
 * ------------------------------------------------------------------------
 */

/* A column of the target table, for a change. */
typedef struct CitusCol
{
	AttrNumber	attnum;
	Oid			typid;
	int32		typmod;
	bool		skip;			/* dropped or generated */
} CitusCol;

static int
column_of(Relation rel, const char *name)
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
			 errmsg("column \"%s\" of table %s does not exist on the target",
					name, ingest_relid_name(RelationGetRelid(rel)))));
	return -1;
}

/* A value of a change in the column's type (wal2json drops bytea's \x). */
static Datum
column_value(Form_pg_attribute att, W2JColumn *col)
{
	Oid			infunc;
	Oid			ioparam;
	char	   *value = col->value;

	getTypeInputInfo(att->atttypid, &infunc, &ioparam);
	if (att->atttypid == BYTEAOID && !col->is_number)
		value = psprintf("\\x%s", value);
	return OidInputFunctionCall(infunc, value, ioparam, att->atttypmod);
}

typedef struct Params
{
	int			n;
	Oid		   *types;
	Datum	   *values;
	char	   *nulls;
} Params;

static int
add_param(Params *p, Oid typid, Datum value, bool isnull)
{
	p->types[p->n] = typid;
	p->values[p->n] = value;
	p->nulls[p->n] = isnull ? 'n' : ' ';
	return ++p->n;
}

static void
init_params(Params *p, int max)
{
	p->n = 0;
	p->types = palloc(sizeof(Oid) * Max(max, 1));
	p->values = palloc(sizeof(Datum) * Max(max, 1));
	p->nulls = palloc(sizeof(char) * Max(max, 1));
}

/* The prepared statement of sql, made and kept on first use. */
static SPIPlanPtr
plan_for(const char *sql, Params *p)
{
	uint32		hash = hash_bytes((const unsigned char *) sql, strlen(sql));
	CitusPlan  *e;
	bool		found;
	ListCell   *lc;
	CitusPlanEntry *pe;
	MemoryContext old;

	if (citus_plans == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(CitusPlan);
		ctl.hcxt = TopMemoryContext;
		citus_plans = hash_create("pg_ingest citus statements", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(citus_plans, &hash, HASH_ENTER, &found);
	if (!found)
		e->entries = NIL;
	foreach(lc, e->entries)
	{
		pe = lfirst(lc);
		if (strcmp(pe->sql, sql) == 0)
			return pe->plan;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	pe = palloc(sizeof(CitusPlanEntry));
	pe->sql = pstrdup(sql);
	MemoryContextSwitchTo(old);
	pe->plan = SPI_prepare(sql, p->n, p->types);
	if (pe->plan == NULL)
		elog(ERROR, "could not prepare %s: %s", sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(pe->plan) != 0)
		elog(ERROR, "could not keep the plan of %s", sql);
	old = MemoryContextSwitchTo(TopMemoryContext);
	e->entries = lappend(e->entries, pe);
	MemoryContextSwitchTo(old);
	return pe->plan;
}

static uint64
run(const char *sql, Params *p, bool returning)
{
	SPIPlanPtr	plan = plan_for(sql, p);
	int			rc = SPI_execute_plan(plan, p->values, p->nulls, false, 0);

	if (rc < 0)
		elog(ERROR, "could not run %s: %s", sql, SPI_result_code_string(rc));
	return SPI_processed;
}

/* " WHERE a = $1 AND b IS NULL ..." for the change's identity */
static void
append_identity(StringInfo sql, Relation rel, W2JChange *c, Params *p)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;
	int			n = 0;

	for (i = 0; i < c->nidentity; i++)
	{
		int			att = column_of(rel, c->identity[i].name);
		Form_pg_attribute a = TupleDescAttr(desc, att);

		if (a->attgenerated != '\0')
			continue;
		appendStringInfoString(sql, n++ ? " AND " : " WHERE ");
		if (c->identity[i].value == NULL)
			appendStringInfo(sql, "%s IS NULL", quote_identifier(NameStr(a->attname)));
		else
			appendStringInfo(sql, "%s = $%d", quote_identifier(NameStr(a->attname)),
							 add_param(p, a->atttypid, column_value(a, &c->identity[i]), false));
	}
}

static const char *
value_of(W2JColumn *cols, int n, const char *name, bool *present)
{
	int			i;

	for (i = 0; i < n; i++)
		if (strcmp(cols[i].name, name) == 0)
		{
			*present = true;
			return cols[i].value;
		}
	*present = false;
	return NULL;
}

/* INSERT of the row: values given (Datum, null) per attribute, NULL ones skipped */
static void
insert_row(Relation rel, const char *target, Datum *values, bool *isnull, bool *given)
{
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData cols;
	StringInfoData vals;
	Params		p;
	int			i;

	initStringInfo(&cols);
	initStringInfo(&vals);
	init_params(&p, desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || a->attgenerated != '\0' || !given[i])
			continue;
		if (p.n > 0)
		{
			appendStringInfoString(&cols, ", ");
			appendStringInfoString(&vals, ", ");
		}
		appendStringInfoString(&cols, quote_identifier(NameStr(a->attname)));
		appendStringInfo(&vals, "$%d", add_param(&p, a->atttypid, values[i], isnull[i]));
	}
	(void) run(p.n ? psprintf("INSERT INTO %s (%s) VALUES (%s)", target, cols.data, vals.data) :
			   psprintf("INSERT INTO %s DEFAULT VALUES", target), &p, false);
}

/*
 * ingest_citus_apply_change
 *		Apply an insert, update or delete of source table c->schema.c->table
 *		to Citus table relid (locked by the caller) through Citus.
 */
void
ingest_citus_apply_change(Oid relid, W2JChange *c)
{
	Relation	rel = table_open(relid, NoLock);
	TupleDesc	desc = RelationGetDescr(rel);
	char	   *target = ingest_relid_name(relid);
	AttrNumber	distattno;
	const char *distcol = NULL;
	StringInfoData sql;
	Params		p;
	int			i;
	uint64		n;

	(void) ingest_citus_method(relid, &distattno);
	if (distattno > 0)
		distcol = NameStr(TupleDescAttr(desc, distattno - 1)->attname);
	initStringInfo(&sql);
	init_params(&p, c->ncolumns + c->nidentity + 1);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if ((c->action == 'U' || c->action == 'D') && c->nidentity == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the source sent no key for a change of %s.%s",
						quote_identifier(c->schema), quote_identifier(c->table)),
				 errhint("ALTER TABLE ... REPLICA IDENTITY FULL on the source, or add a primary key.")));

	if (c->action == 'I')
	{
		Datum	   *values = palloc0(sizeof(Datum) * desc->natts);
		bool	   *isnull = palloc0(sizeof(bool) * desc->natts);
		bool	   *given = palloc0(sizeof(bool) * desc->natts);

		for (i = 0; i < c->ncolumns; i++)
		{
			int			att = column_of(rel, c->columns[i].name);

			given[att] = true;
			isnull[att] = c->columns[i].value == NULL;
			if (!isnull[att])
				values[att] = column_value(TupleDescAttr(desc, att), &c->columns[i]);
		}
		insert_row(rel, target, values, isnull, given);
	}
	else if (c->action == 'U')
	{
		bool		moves = false;

		if (distcol != NULL)
		{
			bool		in_new;
			bool		in_old;
			const char *newval = value_of(c->columns, c->ncolumns, distcol, &in_new);
			const char *oldval = value_of(c->identity, c->nidentity, distcol, &in_old);

			if (in_new && !in_old)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the source's key of %s.%s lacks column \"%s\", the distribution column of %s",
								quote_identifier(c->schema), quote_identifier(c->table),
								distcol, target),
						 errdetail("Without it, the shard that holds the row to change is unknown."),
						 errhint("ALTER TABLE ... REPLICA IDENTITY FULL on the source, or add the column to its primary key.")));
			moves = in_new && ((newval == NULL) != (oldval == NULL) ||
							   (newval && strcmp(newval, oldval) != 0));
		}
		if (!moves)
		{
			int			nset = 0;

			appendStringInfo(&sql, "UPDATE %s SET ", target);
			for (i = 0; i < c->ncolumns; i++)
			{
				int			att = column_of(rel, c->columns[i].name);
				Form_pg_attribute a = TupleDescAttr(desc, att);

				/* generated columns are the target's; the unchanged distribution column stays */
				if (a->attgenerated != '\0' || att + 1 == distattno)
					continue;
				appendStringInfo(&sql, "%s%s = $%d", nset++ ? ", " : "",
								 quote_identifier(NameStr(a->attname)),
								 add_param(&p, a->atttypid,
										   c->columns[i].value ? column_value(a, &c->columns[i]) : (Datum) 0,
										   c->columns[i].value == NULL));
			}
			if (nset == 0)
			{
				/* nothing but the key: the row must still be there */
				resetStringInfo(&sql);
				appendStringInfo(&sql, "SELECT 1 FROM %s", target);
			}
			append_identity(&sql, rel, c, &p);
			n = run(sql.data, &p, false);
			if (n != 1)
				ereport(ERROR,
						(errcode(ERRCODE_NO_DATA_FOUND),
						 errmsg("row to update not found in %s.%s",
								quote_identifier(c->schema), quote_identifier(c->table)),
						 n > 1 ? errdetail("The change's identity matched " UINT64_FORMAT " rows of %s.", n, target) : 0));
		}
		else
		{
			/* the row moves to another shard: delete it, insert the merged row */
			Datum	   *values = palloc0(sizeof(Datum) * desc->natts);
			bool	   *isnull = palloc0(sizeof(bool) * desc->natts);
			bool	   *given = palloc0(sizeof(bool) * desc->natts);
			int			ncols = 0;
			int			k;

			appendStringInfo(&sql, "DELETE FROM %s", target);
			append_identity(&sql, rel, c, &p);
			appendStringInfoString(&sql, " RETURNING ");
			for (i = 0; i < desc->natts; i++)
			{
				Form_pg_attribute a = TupleDescAttr(desc, i);

				if (a->attisdropped || a->attgenerated != '\0')
					continue;
				appendStringInfo(&sql, "%s%s", ncols++ ? ", " : "",
								 quote_identifier(NameStr(a->attname)));
			}
			n = run(sql.data, &p, true);
			if (n != 1)
				ereport(ERROR,
						(errcode(ERRCODE_NO_DATA_FOUND),
						 errmsg("row to update not found in %s.%s",
								quote_identifier(c->schema), quote_identifier(c->table))));
			k = 0;
			for (i = 0; i < desc->natts; i++)
			{
				Form_pg_attribute a = TupleDescAttr(desc, i);

				if (a->attisdropped || a->attgenerated != '\0')
					continue;
				k++;
				values[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, k,
										  &isnull[i]);
				if (!isnull[i])
					values[i] = datumCopy(values[i], a->attbyval, a->attlen);
				given[i] = true;
			}
			for (i = 0; i < c->ncolumns; i++)
			{
				int			att = column_of(rel, c->columns[i].name);

				isnull[att] = c->columns[i].value == NULL;
				values[att] = isnull[att] ? (Datum) 0 :
					column_value(TupleDescAttr(desc, att), &c->columns[i]);
			}
			insert_row(rel, target, values, isnull, given);
		}
	}
	else if (c->action == 'D')
	{
		appendStringInfo(&sql, "DELETE FROM %s", target);
		append_identity(&sql, rel, c, &p);
		n = run(sql.data, &p, false);
		if (n != 1)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("row to delete not found in %s.%s",
							quote_identifier(c->schema), quote_identifier(c->table)),
					 n > 1 ? errdetail("The change's identity matched " UINT64_FORMAT " rows of %s.", n, target) : 0));
	}
	SPI_finish();
	table_close(rel, NoLock);
}

/*
 * ingest.distribution(regclass): how Citus holds a table of this server
 * (ingest_citus_describe), for ingest.tables.
 */
PG_FUNCTION_INFO_V1(ingest_distribution);
Datum
ingest_distribution(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *d;

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		PG_RETURN_NULL();
	d = ingest_citus_describe(relid);
	if (d == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(d));
}

/* ------------------------------------------------------------------------
 * The distribution map of ingest.start(..., distribute => ...)
 * ------------------------------------------------------------------------
 */

/* One table of the map. */
typedef struct MapEntry
{
	char	   *nspname;
	char	   *relname;
	bool		reference;
	char	   *column;			/* hash: the distribution column */
	char	   *colocate_key;	/* the map's key of the table to co-locate with */
	struct MapEntry *colocate;	/* resolved */
	char	   *key;			/* as written in the map */
	int			group;			/* co-location group (hash tables) */
} MapEntry;

static MapEntry *
find_entry(List *entries, const char *nspname, const char *relname)
{
	ListCell   *lc;

	foreach(lc, entries)
	{
		MapEntry   *e = lfirst(lc);

		if (strcmp(e->nspname, nspname) == 0 && strcmp(e->relname, relname) == 0)
			return e;
	}
	return NULL;
}

/* schema.table of a key of the map (unqualified: public) */
static void
parse_map_name(const char *key, char **nspname, char **relname)
{
	List	   *names;

	names = stringToQualifiedNameList(key);
	if (list_length(names) == 1)
	{
		*nspname = pstrdup("public");
		*relname = strVal(linitial(names));
	}
	else if (list_length(names) == 2)
	{
		*nspname = strVal(linitial(names));
		*relname = strVal(lsecond(names));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid table name \"%s\" in distribute", key),
				 errhint("Name each table as schema.table, quoted as in SQL where needed."),
				 errhidestmt(true)));
}

static void
map_error(const char *key, const char *msg, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("cannot distribute %s: %s", key, msg),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 errhidestmt(true)));
}

/* Parse the map (a jsonb object) into MapEntry's; only its own rules. */
static List *
parse_map(Datum map)
{
	List	   *entries = NIL;
	ListCell   *lc;
	Oid			types[1] = {JSONBOID};
	Datum		vals[1] = {map};
	uint64		i;
	bool		changed;
	int			group = 0;
	MemoryContext outer = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_typeof($1)", 1, types, vals, NULL, true, 1) != SPI_OK_SELECT ||
		strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "object") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("distribute must be a JSON object"),
				 errhint("For example '{\"public.orders\": \"customer_id\", \"public.items\": {\"column\": \"customer_id\", \"colocate_with\": \"public.orders\"}, \"public.countries\": \"reference\"}'."),
				 errhidestmt(true)));
	if (SPI_execute_with_args("SELECT e.key, pg_catalog.jsonb_typeof(e.value),"
							  " CASE pg_catalog.jsonb_typeof(e.value) WHEN 'string' THEN e.value #>> '{}'"
							  "  WHEN 'object' THEN e.value ->> 'column' END,"
							  " CASE pg_catalog.jsonb_typeof(e.value) WHEN 'object' THEN e.value ->> 'colocate_with' END,"
							  " (SELECT pg_catalog.string_agg(k, ', ') FROM pg_catalog.jsonb_object_keys("
							  "   CASE pg_catalog.jsonb_typeof(e.value) WHEN 'object' THEN e.value END) k"
							  "   WHERE k NOT IN ('column', 'colocate_with'))"
							  " FROM pg_catalog.jsonb_each($1) e ORDER BY 1",
							  1, types, vals, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the distribution map");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *key = SPI_getvalue(tup, desc, 1);
		char	   *type = SPI_getvalue(tup, desc, 2);
		char	   *column = SPI_getvalue(tup, desc, 3);
		char	   *colocate = SPI_getvalue(tup, desc, 4);
		char	   *unknown = SPI_getvalue(tup, desc, 5);
		MapEntry   *e;
		MemoryContext old = MemoryContextSwitchTo(outer);

		e = palloc0(sizeof(MapEntry));
		e->key = pstrdup(key);
		parse_map_name(key, &e->nspname, &e->relname);
		if (strcmp(type, "string") != 0 && strcmp(type, "object") != 0)
			map_error(key, "its entry is neither a column name, \"reference\" nor an object",
					  NULL, "Give the distribution column, \"reference\", or {\"column\": ..., \"colocate_with\": ...}.");
		if (unknown != NULL)
			map_error(key, psprintf("unknown key(s) %s in its entry", unknown), NULL,
					  "An entry's object has \"column\" and, optionally, \"colocate_with\".");
		if (column == NULL)
			map_error(key, "its entry names no distribution column", NULL,
					  "Give {\"column\": ...}, or \"reference\" for a reference table.");
		if (strcmp(type, "string") == 0 && strcmp(column, "reference") == 0)
			e->reference = true;
		else
			e->column = pstrdup(column);
		e->colocate_key = colocate ? pstrdup(colocate) : NULL;
		MemoryContextSwitchTo(old);
		if (find_entry(entries, e->nspname, e->relname))
			map_error(key, "the map names the table twice", NULL, NULL);
		old = MemoryContextSwitchTo(outer);
		entries = lappend(entries, e);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	/* co-location: to a hash-distributed table of the map */
	foreach(lc, entries)
	{
		MapEntry   *e = lfirst(lc);
		char	   *nsp;
		char	   *rel;

		if (e->colocate_key == NULL)
			continue;
		parse_map_name(e->colocate_key, &nsp, &rel);
		e->colocate = find_entry(entries, nsp, rel);
		if (e->colocate == NULL || e->colocate->reference || e->colocate == e)
			map_error(e->key, psprintf("colocate_with names %s, which is not another distributed table of the map",
									   e->colocate_key), NULL,
					  "Co-locate with a table the map distributes by a column.");
	}
	/* groups: a table co-located with another is in its group */
	foreach(lc, entries)
	{
		MapEntry   *e = lfirst(lc);

		if (!e->reference && e->colocate == NULL)
			e->group = ++group;
	}
	do
	{
		changed = false;
		foreach(lc, entries)
		{
			MapEntry   *e = lfirst(lc);

			if (e->colocate && e->group == 0 && e->colocate->group != 0)
			{
				e->group = e->colocate->group;
				changed = true;
			}
		}
	} while (changed);
	foreach(lc, entries)
	{
		MapEntry   *e = lfirst(lc);

		if (!e->reference && e->group == 0)
			map_error(e->key, "its colocate_with chain goes round in a circle", NULL, NULL);
	}
	return entries;
}

/* PQexecParams on the source, TUPLES_OK or an error */
static PGresult *
source_query(PGconn *conn, const char *password, const char *sql, int n,
			 const char **params)
{
	PGresult   *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		PG_TRY();
		{
			ingest_report_result_error(conn, res, ERROR, "check the distribution map", password);
		}
		PG_FINALLY();
		{
			PQclear(res);
		}
		PG_END_TRY();
	}
	return res;
}

/* The map's checks against the source catalog (see ingest_citus_check_map). */
static void
check_map_on_source(List *entries, PGconn *conn, const char *password)
{
	ListCell   *lc;

	foreach(lc, entries)
	{
		MapEntry   *e = lfirst(lc);
		const char *params[3] = {e->nspname, e->relname, e->column};
		PGresult   *res;
		int			i;

		if (!e->reference)
		{
			/* the column exists */
			res = source_query(conn, password,
							   "SELECT a.attnum FROM pg_catalog.pg_attribute a"
							   " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
							   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							   " WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3"
							   " AND a.attnum > 0 AND NOT a.attisdropped", 3, params);
			if (PQntuples(res) == 0)
			{
				PQclear(res);
				map_error(e->key, psprintf("the source table has no column \"%s\"", e->column),
						  NULL, "Name one of its columns, as the source spells it.");
			}
			PQclear(res);

			/* every unique index (primary key, unique constraint) holds it */
			res = source_query(conn, password,
							   "SELECT i.indexrelid::pg_catalog.regclass::text FROM pg_catalog.pg_index i"
							   " JOIN pg_catalog.pg_class c ON c.oid = i.indrelid"
							   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							   " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = $3"
							   " WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique"
							   " AND NOT a.attnum = ANY (i.indkey::int2[]) ORDER BY 1", 3, params);
			if (PQntuples(res) > 0)
			{
				char	   *index = pstrdup(PQgetvalue(res, 0, 0));

				PQclear(res);
				map_error(e->key, psprintf("its unique index %s does not contain the distribution column \"%s\"",
										   index, e->column),
						  "Citus enforces uniqueness within a shard only: every primary key and unique constraint of a distributed table must contain its distribution column.",
						  "Distribute it by a column every key contains, make it a reference table, or change its keys on the source.");
			}
			PQclear(res);
		}

		/* its foreign keys: to reference tables, or co-located ones */
		res = source_query(conn, password,
						   "SELECT con.conname, rn.nspname, r.relname FROM pg_catalog.pg_constraint con"
						   " JOIN pg_catalog.pg_class c ON c.oid = con.conrelid"
						   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
						   " JOIN pg_catalog.pg_class r ON r.oid = con.confrelid"
						   " JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace"
						   " WHERE n.nspname = $1 AND c.relname = $2 AND con.contype = 'f'"
						   " ORDER BY 1", 2, params);
		for (i = 0; i < PQntuples(res); i++)
		{
			char	   *conname = pstrdup(PQgetvalue(res, i, 0));
			MapEntry   *to = find_entry(entries, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
			char	   *toname = quote_qualified_identifier(PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));

			if (to == e)
				continue;
			if (to == NULL)
			{
				PQclear(res);
				map_error(e->key, psprintf("its foreign key \"%s\" references %s, which the map leaves a local table",
										   conname, toname),
						  "Citus allows foreign keys from distributed and reference tables only to reference tables and co-located distributed tables.",
						  "Add the referenced table to the map as a reference table or co-located with this one.");
			}
			if (!to->reference && (e->reference || to->group != e->group))
			{
				PQclear(res);
				map_error(e->key, psprintf("its foreign key \"%s\" references %s, which the map distributes %s",
										   conname, toname,
										   e->reference ? "while this is a reference table" :
										   "without co-locating it with this one"),
						  "Citus allows foreign keys to a distributed table only from a table co-located with it.",
						  "Co-locate the tables (\"colocate_with\"), or make the referenced table a reference table.");
			}
		}
		PQclear(res);

		/* foreign keys of local tables to a distributed one */
		if (!e->reference)
		{
			res = source_query(conn, password,
							   "SELECT con.conname, cn.nspname, c.relname FROM pg_catalog.pg_constraint con"
							   " JOIN pg_catalog.pg_class c ON c.oid = con.conrelid"
							   " JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace"
							   " JOIN pg_catalog.pg_class r ON r.oid = con.confrelid"
							   " JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
							   " WHERE n.nspname = $1 AND r.relname = $2 AND con.contype = 'f'"
							   " ORDER BY 1", 2, params);
			for (i = 0; i < PQntuples(res); i++)
				if (find_entry(entries, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2)) == NULL)
				{
					char	   *msg = psprintf("foreign key \"%s\" of %s, which the map leaves a local table, references it",
											   PQgetvalue(res, i, 0),
											   quote_qualified_identifier(PQgetvalue(res, i, 1), PQgetvalue(res, i, 2)));

					PQclear(res);
					map_error(e->key, msg,
							  "Citus refuses foreign keys from local tables to distributed tables.",
							  "Add the referencing table to the map, co-located with this one.");
				}
			PQclear(res);
		}
	}
}

/*
 * ingest_citus_check_map
 *		Check the distribute argument of ingest.start against this server
 *		(Citus installed, schema => 'copy') and the source's catalog (each
 *		table is a plain table of the migration; the column exists; every
 *		unique index contains it; foreign keys only to reference or
 *		co-located tables, none from a local table to a distributed one).
 *		Returns the map as it is stored (ingest.migration.distribute): a
 *		JSON array of {"schema", "table", "method", "column",
 *		"colocate_schema", "colocate_table"}.  rels: SourceRel's, filtered.
 */
char *
ingest_citus_check_map(Datum map, IngestConnInfo *info, List *rels,
					   const char *schema_mode, const char *name)
{
	List	   *entries;
	ListCell   *lc;
	PGconn	   *conn;
	StringInfoData out;

	if (!citus_installed())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("distribute needs the extension citus in this database"),
				 errhint("CREATE EXTENSION citus, with citus in shared_preload_libraries, and add the worker nodes first."),
				 errhidestmt(true)));
	if (strcmp(schema_mode, "copy") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("distribute applies to schema => 'copy' only"),
				 errdetail("With schema => 'existing', the distribution of the tables already here is used."),
				 errhint("Distribute the tables here first (create_distributed_table), or let the migration create them."),
				 errhidestmt(true)));
	entries = parse_map(map);

	/* each a plain table of the migration */
	foreach(lc, entries)
	{
		MapEntry   *e = lfirst(lc);
		ListCell   *lc2;
		SourceRel  *found = NULL;

		foreach(lc2, rels)
		{
			SourceRel  *r = lfirst(lc2);

			if (strcmp(r->nspname, e->nspname) == 0 && strcmp(r->relname, e->relname) == 0)
				found = r;
		}
		if (found == NULL || !found->in_scope)
			map_error(e->key, found ? "the migration's filters leave it out" : "the source has no such table",
					  NULL, NULL);
		if (found->relkind != 'r' || found->root_rel != NULL)
			map_error(e->key, "it is not a plain table on the source",
					  "pg_ingest distributes plain tables; partitioned tables and partitions are not supported yet.",
					  "Leave it out of the map, or distribute it by hand with schema => 'existing'.");
	}

	conn = ingest_connect_or_error(info, INGEST_CONN_SQL,
								   psprintf("pg_ingest %s start", name));
	PG_TRY();
	{
		check_map_on_source(entries, conn, info->password);
	}
	PG_FINALLY();
	{
		ingest_disconnect(conn);
	}
	PG_END_TRY();

	initStringInfo(&out);
	appendStringInfoChar(&out, '[');
	foreach(lc, entries)
	{
		MapEntry   *e = lfirst(lc);

		appendStringInfoString(&out, foreach_current_index(lc) ? ", {\"schema\": " : "{\"schema\": ");
		escape_json(&out, e->nspname);
		appendStringInfoString(&out, ", \"table\": ");
		escape_json(&out, e->relname);
		appendStringInfo(&out, ", \"method\": \"%s\"", e->reference ? "reference" : "hash");
		if (!e->reference)
		{
			appendStringInfoString(&out, ", \"column\": ");
			escape_json(&out, e->column);
		}
		if (e->colocate)
		{
			appendStringInfoString(&out, ", \"colocate_schema\": ");
			escape_json(&out, e->colocate->nspname);
			appendStringInfoString(&out, ", \"colocate_table\": ");
			escape_json(&out, e->colocate->relname);
		}
		appendStringInfoChar(&out, '}');
	}
	appendStringInfoChar(&out, ']');
	return out.data;
}

/* Whether ingest.migration has the column distribute (SQL objects 0.2.0 on). */
static bool
map_column(void)
{
	Oid			nsp = get_namespace_oid("ingest", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("migration", nsp) : InvalidOid;

	return OidIsValid(relid) && get_attnum(relid, "distribute") != InvalidAttrNumber;
}

/* Record the checked map of migration id (in ingest.start's transaction). */
void
ingest_citus_store_map(int32 id, const char *map)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		vals[2] = {Int32GetDatum(id), CStringGetTextDatum(map)};

	if (!map_column())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("distribute needs the SQL objects of pg_ingest 0.2.0"),
				 errhint("ALTER EXTENSION pg_ingest UPDATE.")));
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET distribute = $2::pg_catalog.jsonb WHERE id = $1",
						2, types, vals, NULL);
	ingest_catalog_end();
}

/*
 * ingest_citus_distribute
 *		The schema phase, after the pre-data statements and before the copy:
 *		distribute the tables of the migration's map, reference tables
 *		first, then distributed tables, each after the table it is
 *		co-located with; one transaction each.  A table Citus already holds
 *		(a coordinator restarted midway) is left as it is.
 */
void
ingest_citus_distribute(IngestMigration *m)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};
	SPITupleTable *tab;
	uint64		n;
	uint64		i;
	int			pass;
	char	  **nsp;
	char	  **rel;
	char	  **method;
	char	  **column;
	char	  **cnsp;
	char	  **crel;
	bool	   *done;
	MemoryContext cxt = CurrentMemoryContext;

	ingest_xact_start();
	if (!map_column())
	{
		ingest_xact_commit();
		return;
	}
	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT x.schema, x.\"table\", x.method, x.\"column\","
							   " x.colocate_schema, x.colocate_table"
							   " FROM ingest.migration m,"
							   " pg_catalog.jsonb_to_recordset(m.distribute) AS x(schema text, \"table\" text,"
							   "  method text, \"column\" text, colocate_schema text, colocate_table text)"
							   " WHERE m.id = $1", 1, types, vals, NULL);
	n = SPI_processed;
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		nsp = palloc0(sizeof(char *) * (n + 1));
		rel = palloc0(sizeof(char *) * (n + 1));
		method = palloc0(sizeof(char *) * (n + 1));
		column = palloc0(sizeof(char *) * (n + 1));
		cnsp = palloc0(sizeof(char *) * (n + 1));
		crel = palloc0(sizeof(char *) * (n + 1));
		done = palloc0(sizeof(bool) * (n + 1));
		for (i = 0; i < n; i++)
		{
			nsp[i] = ingest_getstr(tab, i, 1);
			rel[i] = ingest_getstr(tab, i, 2);
			method[i] = ingest_getstr(tab, i, 3);
			column[i] = ingest_getstr(tab, i, 4);
			cnsp[i] = ingest_getstr(tab, i, 5);
			crel[i] = ingest_getstr(tab, i, 6);
		}
		MemoryContextSwitchTo(old);
	}
	ingest_catalog_end();
	ingest_xact_commit();

	/* pass 0: reference tables; then distributed ones whose co-location is done */
	for (pass = 0; pass <= (int) n + 1; pass++)
	{
		for (i = 0; i < n; i++)
		{
			bool		reference = strcmp(method[i], "reference") == 0;
			char	   *qualified = quote_qualified_identifier(nsp[i], rel[i]);
			char	   *colocate = cnsp[i] ? quote_qualified_identifier(cnsp[i], crel[i]) : NULL;
			uint64		j;
			bool		ready = true;
			Oid			relid;

			if (done[i] || (pass == 0) != reference)
				continue;
			for (j = 0; j < n && colocate; j++)
				if (strcmp(nsp[j], cnsp[i]) == 0 && strcmp(rel[j], crel[i]) == 0 && !done[j])
					ready = false;
			if (!ready)
				continue;
			done[i] = true;

			ingest_xact_start();
			relid = get_relname_relid(rel[i], get_namespace_oid(nsp[i], false));
			if (!OidIsValid(relid))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("cannot distribute %s: the schema phase did not create it", qualified)));
			if (!ingest_citus_table(relid))
			{
				Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
				Datum		args[3];

				args[0] = CStringGetTextDatum(qualified);
				args[1] = CStringGetTextDatum(column[i] ? column[i] : "");
				args[2] = CStringGetTextDatum(colocate ? colocate : "default");
				if (SPI_connect() != SPI_OK_CONNECT)
					elog(ERROR, "SPI_connect failed");
				if (SPI_execute_with_args(reference ?
										  "SELECT pg_catalog.create_reference_table($1::pg_catalog.regclass)" :
										  "SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, $2,"
										  " colocate_with => $3)",
										  reference ? 1 : 3, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
					elog(ERROR, "could not distribute %s", qualified);
				SPI_finish();
				ingest_event(m->id, "INFO", "distribute", qualified,
							 reference ? psprintf("%s is a Citus reference table", qualified) :
							 psprintf("%s is distributed by column %s%s%s", qualified,
									  quote_identifier(column[i]),
									  colocate ? ", co-located with " : "",
									  colocate ? colocate : ""),
							 NULL);
			}
			ingest_xact_commit();
		}
	}
}

/*
 * ingest_citus_preflight_map
 *		ingest.preflight's check of a distribution map: the checks of
 *		ingest.start (ingest_citus_check_map, for schema => 'copy' and every
 *		table of the source), an error caught in a subtransaction and
 *		returned in *message, *detail and *hint.  True if the map passes.
 */
bool
ingest_citus_preflight_map(Datum map, IngestConnInfo *info, PGconn *conn,
						   char **message, char **detail, char **hint)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		List	   *rels = ingest_source_relations(conn, false, info->password);
		ListCell   *lc;

		foreach(lc, rels)
			((SourceRel *) lfirst(lc))->in_scope = true;
		(void) ingest_citus_check_map(map, info, rels, "copy", "preflight");
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
		*message = edata->message;
		*detail = edata->detail;
		*hint = edata->hint;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}
