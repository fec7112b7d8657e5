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
 * The applier's changes of a Citus table go through Citus as SPI prepared
 * statements: citus_apply.c.
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
 * The distribution map of ingest.start and ingest.preflight (distribute
 * =>) is citus_map.c's.
 *
 * State: this process's memory (the per-table cache); nothing in the
 * catalog or shared memory.
 *
 * Locking: RowExclusiveLock on the shell table (taken by the callers and
 * by the statements); Citus takes its own on the shards.
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
bool
ingest_citus_installed(void)
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

		if (ingest_citus_installed())
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

	if (!ingest_citus_installed())
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
	if (ingest_citus_installed())
		ingest_citus_begin_block();
}
