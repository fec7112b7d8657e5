/*-------------------------------------------------------------------------
 *
 * copy.c
 *	  The copy worker: copies tables, or parts of split tables, from the
 *	  source into this server with the server's own COPY machinery.
 *
 * A copy worker imports the migration's exported snapshot on its own
 * source connection (REPEATABLE READ, READ ONLY) and keeps that
 * transaction for every item it copies, so all tables are read as of the
 * same instant.  For each item it runs COPY ... TO STDOUT on the source
 * and feeds the stream to BeginCopyFrom()/CopyFrom() through a data
 * callback: no second client hop, no file.  Binary format when every
 * column's type allows it (see binary_safe()), text otherwise.  An item
 * of pg_catalog.pg_largeobject is a range of large objects, copied on the
 * same connection and snapshot by largeobject.c.
 *
 * Each item is one transaction on the target: claim (FOR UPDATE SKIP
 * LOCKED), for a whole table TRUNCATE and COPY FREEZE (a table under
 * FREEZE_MIN_BYTES that has no rows: neither, a plain COPY), mark it done
 * with its row count and sync LSN, commit.  A worker that dies leaves no half
 * item behind: the transaction aborts and the item is pending again.  An
 * item that fails is retried pg_ingest.max_retries times with a growing
 * delay, each attempt in ingest.events and the server log, then fails the
 * migration.
 *
 * The target table is the one target.c names: a leaf partition of the
 * source that is not here goes into its root's table, several items into
 * one table, which is then not truncated (nor a partition rows of such
 * items may be routed to).  A partitioned target is truncated whole and
 * COPY routes the rows into its partitions (no FREEZE there).  Before
 * writing, the worker checks the table with ingest_check_target():
 * privileges (INSERT, and TRUNCATE when it truncates) and row-level
 * security for the migration's owner, no extension member, no Citus table
 * Citus cannot take rows for.  A Citus distributed or reference table is
 * emptied and fed through Citus, without FREEZE, in a transaction block
 * (citus.c).
 * An extension's configuration table is not truncated: the rows within its
 * extension's condition are deleted and the source's rows within the
 * source's condition copied (extconfig.c).
 *
 * The worker runs as the migration's owner with session_replication_role
 * = replica, so triggers and foreign keys of the target do not fire for
 * copied rows.  Memory is bounded by COPY's own buffers, whatever the size
 * of the table or of its rows.
 *
 * State: the copy items in ingest.copy_item (claimed, done, failed, in
 * the transaction that copied them); this worker's source session and the
 * COPY in progress in the process; the bytes and rows in flight in its
 * worker slot (shared memory) for ingest.status.
 *
 * Locking: RowExclusiveLock on the target table (AccessExclusiveLock when
 * it is truncated, or read for rows instead), the item's row lock in
 * ingest.copy_item.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/ipc.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "citus.h"
#include "conn.h"
#include "copy.h"
#include "extconfig.h"
#include "pg_ingest.h"
#include "schema.h"
#include "source.h"
#include "target.h"

typedef struct CopyItem
{
	int32		id;
	char	   *nspname;
	char	   *relname;
	char	   *root_nspname;	/* a leaf partition's root on the source, or NULL */
	char	   *root_relname;
	int			part;
	int			parts;
	int64		page_from;		/* -1: whole table */
	int64		page_to;		/* -1: to the end */
	char	   *columns;
	int64		bytes_total;	/* its size on the source */
	bool		freeze;
	int			attempts;
	char	   *snapshot_name;	/* the migration's current snapshot */
	char	   *snapshot_lsn;
} CopyItem;

/* Tables from this size (on the source) are truncated and copied with FREEZE even when empty. */
#define FREEZE_MIN_BYTES ((int64) 1024 * 1024)

/* The source side of this worker. */
static PGconn *source = NULL;
static char *imported_snapshot = NULL;	/* snapshot its transaction uses */

/*
 * Set while the migration's snapshot is being imported.  An error then means
 * the snapshot is gone (its exporting session died with a source restart):
 * that is no attempt of the item's.  The worker leaves; the coordinator
 * exports a new snapshot and launches copy workers again.
 */
static bool importing = false;

/* State of the data callback, for the COPY in progress. */
static IngestCopyFeed stream;

static void
close_source(void)
{
	if (source)
		ingest_disconnect(source);
	source = NULL;
	imported_snapshot = NULL;
}

/*
 * Open the source connection and import the snapshot, unless the
 * connection already has this one.
 */
static void
ensure_source(const char *name, const char *snapshot)
{
	if (source && imported_snapshot && strcmp(imported_snapshot, snapshot) == 0 &&
		PQstatus(source) == CONNECTION_OK &&
		PQtransactionStatus(source) == PQTRANS_INTRANS)
		return;
	close_source();
	source = ingest_connect_or_error(MySource, INGEST_CONN_SQL,
									 psprintf("pg_ingest %s copy %d", name,
											  MyIngestWorker->job));
	/* a failure here is the snapshot's, not the item's (see the caller) */
	importing = true;
	ingest_begin_read(source, snapshot, "import the migration's snapshot",
					  MySource->password);
	importing = false;
	imported_snapshot = MemoryContextStrdup(TopMemoryContext, snapshot);
}

/*
 * The data callback of BeginCopyFrom(): hands over the CopyData messages of
 * the source's COPY TO STDOUT.  Waits only while it has nothing to return.
 */
static int
copy_read_cb(void *outbuf, int minread, int maxread)
{
	int			copied = ingest_copy_feed_read(&stream, outbuf, minread, maxread);

	pg_atomic_write_u64(&MyIngestWorker->bytes, stream.bytes);
	pg_atomic_write_u64(&MyIngestWorker->rows, stream.messages);
	return copied;
}

/*
 * binary_safe
 *		Whether values of a type can cross in COPY's binary format.
 *
 * Binary arrays and composites embed type OIDs, which differ between
 * servers for types that are not built in; reg* types are OIDs themselves;
 * a type without send/receive functions has no binary form.
 */
static bool
binary_safe(Oid typid)
{
	HeapTuple	tup;
	Form_pg_type t;
	bool		safe;

	switch (typid)
	{
		case REGCLASSOID:
		case REGTYPEOID:
		case REGPROCOID:
		case REGPROCEDUREOID:
		case REGOPEROID:
		case REGOPERATOROID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
		case REGNAMESPACEOID:
		case REGROLEOID:
		case REGCOLLATIONOID:
			return false;
	}
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	t = (Form_pg_type) GETSTRUCT(tup);

	if (!OidIsValid(t->typreceive) || !OidIsValid(t->typsend))
		safe = false;
	else if (t->typtype == TYPTYPE_DOMAIN)
		safe = binary_safe(t->typbasetype);
	else if (t->typtype == TYPTYPE_ENUM)
		safe = true;
	else if (t->typtype == TYPTYPE_RANGE)
		safe = binary_safe(get_range_subtype(typid));
	else if (t->typtype == TYPTYPE_MULTIRANGE)
		safe = binary_safe(get_range_subtype(get_multirange_range(typid)));
	else if (t->typtype != TYPTYPE_BASE)
		safe = false;			/* composite, pseudo */
	else if (IsTrueArrayType(t))
		safe = t->typelem < FirstNormalObjectId && binary_safe(t->typelem) &&
			get_typtype(t->typelem) == TYPTYPE_BASE;
	else
		safe = true;
	ReleaseSysCache(tup);
	return safe;
}

/* The names of a quoted column list, as String nodes. */
static List *
column_names(const char *columns)
{
	char	   *copy = pstrdup(columns);
	List	   *names = NIL;
	List	   *out = NIL;
	ListCell   *lc;

	if (*columns == '\0')
		return NIL;
	if (!SplitIdentifierString(copy, ',', &names))
		elog(ERROR, "invalid column list \"%s\"", columns);
	foreach(lc, names)
		out = lappend(out, makeString(pstrdup(lfirst(lc))));
	return out;
}

/*
 * ingest_copy_table
 *		Copy the rows of source table nspname.relname (the quoted column
 *		list columns; with filter, a clause such as "WHERE ...", only the
 *		rows it selects) into rel, which
 *		the caller has opened and locked, through COPY ... TO STDOUT on conn
 *		(in whatever transaction and snapshot conn is) and the server's COPY
 *		FROM.  Binary format when every column's type allows it.  Returns
 *		the number of rows; *binary_out says which format was used and
 *		*bytes_out how many bytes the source sent.  The copy worker and the
 *		resync at the stop (resync.c) use it.
 */
uint64
ingest_copy_table(PGconn *conn, const char *password, Relation rel,
				  const char *nspname, const char *relname, const char *columns,
				  const char *filter, bool freeze, bool *binary_out,
				  uint64 *bytes_out)
{
	List	   *attnames = column_names(columns);
	char	   *qualified = ingest_qualified(nspname, relname);
	bool		binary = true;
	ListCell   *lc;
	ParseState *pstate;
	CopyFromState cstate;
	List	   *options = NIL;
	StringInfoData sql;
	PGresult   *res;
	uint64		rows;

	foreach(lc, attnames)
	{
		AttrNumber	attnum = attnameAttNum(rel, strVal(lfirst(lc)), false);

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of the source table %s does not exist in %s",
							strVal(lfirst(lc)), qualified,
							ingest_relid_name(RelationGetRelid(rel)))));
		if (!binary_safe(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid))
			binary = false;
	}

	/* the source side */
	initStringInfo(&sql);
	if (filter == NULL)
		appendStringInfo(&sql, "COPY %s%s%s%s TO STDOUT", qualified,
						 *columns ? " (" : "", columns, *columns ? ")" : "");
	else
		/* the line break ends a comment an extension's condition may end with */
		appendStringInfo(&sql, "COPY (SELECT %s FROM ONLY %s %s\n) TO STDOUT",
						 columns, qualified, filter);
	if (binary)
		appendStringInfoString(&sql, " (FORMAT binary)");
	res = ingest_exec(conn, sql.data, PGRES_COPY_OUT,
					  psprintf("read table %s", qualified), password);
	PQclear(res);

	/* the target side */
	memset(&stream, 0, sizeof(stream));
	stream.conn = conn;
	stream.password = password;
	stream.what = "the table";
	if (binary)
		options = lappend(options, makeDefElem("format", (Node *) makeString("binary"), -1));
	if (freeze)
		options = lappend(options, makeDefElem("freeze", (Node *) makeString("true"), -1));
	pstate = make_parsestate(NULL);
	(void) addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL,
										 false, false);
	PushActiveSnapshot(GetTransactionSnapshot());
	cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, copy_read_cb,
						   attnames, options);
	/* a Citus table: the rows go through Citus to the shards (citus.c) */
	rows = ingest_citus_table(RelationGetRelid(rel)) ?
		ingest_citus_copy_from(cstate, rel) : CopyFrom(cstate);
	EndCopyFrom(cstate);
	PopActiveSnapshot();

	/* the source must have ended its COPY cleanly */
	if (!stream.eof)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the COPY of %s ended before the source finished sending", qualified)));
	if (stream.buf)
		PQfreemem(stream.buf);
	stream.buf = NULL;

	/*
	 * The ReadyForQuery after the COPY's result (sent with it): the
	 * connection is then ready for the next item, in the same transaction.
	 */
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	*binary_out = binary;
	*bytes_out = stream.bytes;
	return rows;
}

/* Whether relid has no row that a new snapshot sees. */
static bool
table_is_empty(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	bool		empty = !table_scan_getnextslot(scan, ForwardScanDirection, slot);

	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, NoLock);
	return empty;
}

/*
 * copy_item
 *		Copy one item into its table.  Runs in the item's transaction.
 *		Returns the number of rows; *format_out says which format was used.
 */
static uint64
copy_item(CopyItem *it, IngestMigration *m, const char **format_out)
{
	Oid			relid;
	Relation	rel;
	bool		binary;
	bool		truncate = it->freeze && it->page_from < 0;
	bool		freeze;
	bool		mapped;
	bool		extconfig;
	bool		citus;
	char		relkind;
	char	   *where;
	uint64		rows;
	uint64		bytes;
	char	   *qualified = ingest_qualified(it->nspname, it->relname);
	char	   *target;

	/* a range of large objects (largeobject.c) */
	if (ingest_lo_is_item(it->nspname, it->relname))
	{
		memset(&stream, 0, sizeof(stream));
		ensure_source(m->name, it->snapshot_name);
		rows = ingest_lo_copy_range(source, MySource->password, m, it->page_from,
									it->page_to, &stream.bytes);
		pg_atomic_fetch_add_u64(&MyMigrationSlot->bytes_received, stream.bytes);
		*format_out = "binary";
		return rows;
	}

	relid = ingest_target_relid(it->nspname, it->relname, it->root_nspname,
								it->root_relname, RowExclusiveLock, &mapped);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s does not exist on the target", qualified),
				 it->root_relname ?
				 errdetail("Neither does %s, the root of its partition tree on the source.",
						   ingest_qualified(it->root_nspname, it->root_relname)) : 0));
	target = ingest_relid_name(relid);
	relkind = get_rel_relkind(relid);

	/*
	 * The whole table is truncated first (FREEZE needs that, and it clears
	 * what an earlier run left), unless it is not this item's alone: a root
	 * that several leaves of the source go to, a partition that rows of
	 * such leaves may be routed to, a table a foreign key references
	 * (TRUNCATE refuses it; schema 'existing' checked it empty).  A
	 * partitioned table is truncated with its partitions; COPY routes the
	 * rows into them, without FREEZE (refused on a partitioned table).
	 */
	if (truncate && (mapped ||
					 (get_rel_relispartition(relid) && ingest_migration_maps_leaves(m->id)) ||
					 ingest_referenced_by_foreign_key(relid)))
		truncate = false;
	/* an extension's configuration table: its user rows are replaced */
	extconfig = ingest_extconfig_is_config(relid);
	if (extconfig)
		truncate = false;
	freeze = truncate && relkind != RELKIND_PARTITIONED_TABLE;
	/*
	 * A Citus table: no FREEZE (Citus writes the shards), always truncated
	 * (its shell is empty whatever its shards hold), in a transaction block
	 * that commits the shards' writes with the item (citus.c).
	 */
	citus = ingest_citus_table(relid);
	if (citus)
	{
		freeze = false;
		ingest_citus_begin_block();
	}

	/* what COPY FROM and TRUNCATE would check, and more (target.c) */
	ingest_check_target(relid, m->owner, ACL_INSERT | (truncate ? ACL_TRUNCATE : 0) |
						(extconfig ? ACL_DELETE : 0));

	/*
	 * A small plain table without rows is not truncated: a new file (and
	 * the old one's removal at commit) costs more than FREEZE saves there.
	 * It is read under the lock TRUNCATE takes, so that no writer is in
	 * the middle of adding rows.
	 */
	if (freeze && relkind == RELKIND_RELATION && it->bytes_total < FREEZE_MIN_BYTES)
	{
		LockRelationOid(relid, AccessExclusiveLock);
		if (table_is_empty(relid))
			truncate = freeze = false;
	}
	if (extconfig)
		ingest_extconfig_clear_target(relid);

	if (truncate)
		ingest_citus_truncate(psprintf("TRUNCATE %s%s",
									   relkind == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
									   target), list_make1_oid(relid));

	/* the source side */
	ensure_source(m->name, it->snapshot_name);
	where = NULL;
	if (extconfig)
	{
		where = ingest_extconfig_filter(source, MySource->password,
										it->nspname, it->relname, it->columns);
		if (where == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s is an extension configuration table here but not on the source",
							target)));
	}
	else if (it->page_from >= 0)
	{
		where = psprintf("WHERE ctid >= '(" INT64_FORMAT ",0)'::pg_catalog.tid", it->page_from);
		if (it->page_to >= 0)
			where = psprintf("%s AND ctid < '(" INT64_FORMAT ",0)'::pg_catalog.tid",
							 where, it->page_to);
	}
	rel = table_open(relid, NoLock);
	rows = ingest_copy_table(source, MySource->password, rel, it->nspname,
							 it->relname, it->columns, where, freeze, &binary, &bytes);
	table_close(rel, NoLock);
	pg_atomic_fetch_add_u64(&MyMigrationSlot->bytes_received, bytes);
	*format_out = binary ? "binary" : "text";
	return rows;
}

/*
 * Whether ingest.copy_item has table_bytes (SQL objects of 0.2.0 on; 0.1.0's
 * lack it until ALTER EXTENSION ... UPDATE).  Looked up at each use: the
 * update may come while a worker runs.
 */
static bool
copy_order_column(void)
{
	Oid			relid = get_relname_relid("copy_item", get_namespace_oid("ingest", false));

	return OidIsValid(relid) && get_attnum(relid, "table_bytes") != InvalidAttrNumber;
}

/*
 * ingest_set_copy_order
 *		Give the copy items of the migration that have none their table's
 *		size (the sum of its parts), the claiming order: in the caller's
 *		transaction, after the items are stored.
 */
void
ingest_set_copy_order(int32 migration_id)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(migration_id)};

	if (!copy_order_column())
		return;
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.copy_item c SET table_bytes = t.bytes"
						" FROM (SELECT nspname, relname, sum(bytes_total) AS bytes"
						"  FROM ingest.copy_item WHERE migration_id = $1"
						"  GROUP BY nspname, relname) t"
						" WHERE c.migration_id = $1 AND c.table_bytes IS NULL"
						" AND c.nspname = t.nspname AND c.relname = t.relname",
						1, types, vals, NULL);
	ingest_catalog_end();
}

/*
 * Claim the next pending item, biggest table first and all its parts
 * before anything else (a table's indexes can start once its last part is
 * in), through index copy_item_pending: the first unlocked row.  Items
 * stored without a table size come last.  In the caller's transaction.
 */
static CopyItem *
claim_copy_item(int32 migration_id, MemoryContext cxt)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_0_1 = NULL;
	bool		ordered = copy_order_column();
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(migration_id)};
	SPITupleTable *tab;
	CopyItem   *it = NULL;

	ingest_catalog_begin();
	/* the SQL objects of 0.1.0 have no table_bytes: their sum per claim */
	tab = ingest_catalog_query_kept(ordered ? &plan : &plan_0_1,
									psprintf("SELECT c.id, c.nspname, c.relname, c.part, c.parts,"
											 " COALESCE(c.page_from, -1), COALESCE(c.page_to, -1),"
											 " c.columns, c.use_freeze, c.attempts, m.snapshot_name, m.snapshot_lsn,"
											 " c.root_nspname, c.root_relname, c.bytes_total"
											 " FROM ingest.copy_item c JOIN ingest.migration m ON m.id = c.migration_id"
											 " WHERE c.migration_id = $1 AND c.state = 'pending'"
											 " AND m.phase = 'copying'"
											 " ORDER BY c.migration_id, c.attempts, %s DESC NULLS LAST,"
											 "  c.nspname, c.relname, c.part, c.id"
											 " LIMIT 1 FOR UPDATE OF c SKIP LOCKED",
											 ordered ? "c.table_bytes" :
											 "(SELECT sum(o.bytes_total) FROM ingest.copy_item o"
											 "  WHERE o.migration_id = c.migration_id AND o.nspname = c.nspname"
											 "  AND o.relname = c.relname)"),
									1, types, vals, NULL);
	if (SPI_processed == 1)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		it = palloc0(sizeof(CopyItem));
		it->id = (int32) ingest_getint(tab, 0, 1, 0);
		it->nspname = ingest_getstr(tab, 0, 2);
		it->relname = ingest_getstr(tab, 0, 3);
		it->part = (int) ingest_getint(tab, 0, 4, 1);
		it->parts = (int) ingest_getint(tab, 0, 5, 1);
		it->page_from = ingest_getint(tab, 0, 6, -1);
		it->page_to = ingest_getint(tab, 0, 7, -1);
		it->columns = ingest_getstr(tab, 0, 8);
		it->freeze = ingest_getbool(tab, 0, 9);
		it->attempts = (int) ingest_getint(tab, 0, 10, 0);
		it->snapshot_name = ingest_getstr(tab, 0, 11);
		it->snapshot_lsn = ingest_getstr(tab, 0, 12);
		it->root_nspname = ingest_getstr(tab, 0, 13);
		it->root_relname = ingest_getstr(tab, 0, 14);
		it->bytes_total = ingest_getint(tab, 0, 15, 0);
		MemoryContextSwitchTo(old);
	}
	ingest_catalog_end();
	return it;
}

static void
mark_copied(int32 migration_id, CopyItem *it, uint64 rows, const char *format,
			TimestampTz started)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[7] = {INT4OID, INT4OID, INT8OID, INT8OID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID};
	Datum		vals[7];

	vals[0] = Int32GetDatum(migration_id);
	vals[1] = Int32GetDatum(it->id);
	vals[2] = Int64GetDatum((int64) rows);
	vals[3] = Int64GetDatum((int64) stream.bytes);
	vals[4] = CStringGetTextDatum(format);
	vals[5] = CStringGetTextDatum(it->snapshot_lsn);
	vals[6] = TimestampTzGetDatum(started);
	ingest_catalog_begin();
	(void) ingest_catalog_query_kept(&plan,
									 "UPDATE ingest.copy_item SET state = 'done', rows_done = $3,"
									 " bytes_done = $4, format = $5, sync_lsn = $6::pg_catalog.pg_lsn,"
									 " attempts = attempts + 1, error = NULL,"
									 " started_at = $7, finished_at = clock_timestamp()"
									 " WHERE migration_id = $1 AND id = $2",
									 7, types, vals, NULL);
	ingest_catalog_end();
}

/*
 * Record a failed attempt in a fresh transaction.  Returns false when the
 * item has run out of attempts and the migration has failed.
 */
static bool
copy_failed(IngestMigration *m, CopyItem *it, const char *message)
{
	Oid			types[4] = {INT4OID, INT4OID, TEXTOID, BOOLOID};
	Datum		vals[4];
	bool		last = it->attempts + 1 >= ingest_max_retries;
	char	   *object = it->parts > 1 ?
		psprintf("%s (part %d of %d)", ingest_qualified(it->nspname, it->relname),
				 it->part, it->parts) :
		ingest_qualified(it->nspname, it->relname);

	vals[0] = Int32GetDatum(m->id);
	vals[1] = Int32GetDatum(it->id);
	vals[2] = CStringGetTextDatum(message);
	vals[3] = BoolGetDatum(last);

	ingest_xact_start();
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.copy_item SET attempts = attempts + 1, error = $3,"
						" state = CASE WHEN $4 THEN 'failed' ELSE 'pending' END"
						" WHERE migration_id = $1 AND id = $2",
						4, types, vals, NULL);
	ingest_catalog_end();
	if (last)
		ingest_fail_migration(m, psprintf("copy of %s failed after %d attempts: %s",
										  object, it->attempts + 1, message));
	else
		ingest_event(m->id, "WARNING", "retry", object,
					 psprintf("copy failed (attempt %d of %d), retrying: %s",
							  it->attempts + 1, ingest_max_retries, message),
					 NULL);
	ingest_xact_commit();
	return !last;
}

/*
 * ingest_copy_main
 *		Entry point of a copy worker: copy items until none is left.
 */
void
ingest_copy_main(Datum main_arg)
{
	int			slot;
	int32		migration_id;
	IngestMigration *m;
	MemoryContext cxt;

	ingest_worker_init(main_arg, INGEST_WORKER_COPY, &slot, &migration_id);
	m = MyMigration;
	SetConfigOption("session_replication_role", "replica", PGC_SUSET, PGC_S_OVERRIDE);

	cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest copy item",
								ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		CopyItem   *it;
		TimestampTz started;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(cxt);
		MemoryContextSwitchTo(cxt);

		ingest_xact_start();
		it = claim_copy_item(m->id, cxt);
		if (it == NULL)
		{
			ingest_xact_commit();
			break;
		}
		started = GetCurrentTimestamp();
		ingest_worker_set_item(it->id, started);
		pg_atomic_write_u64(&MyIngestWorker->bytes, 0);
		pg_atomic_write_u64(&MyIngestWorker->rows, 0);
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("copying %s", ingest_qualified(it->nspname, it->relname)));

		PG_TRY();
		{
			const char *format;
			uint64		rows = copy_item(it, m, &format);

			mark_copied(m->id, it, rows, format, started);
			ingest_xact_commit();
			ingest_worker_set_item(0, 0);
			/* index workers may build this table's indexes now */
			ingest_wake_workers(slot, INGEST_WORKER_INDEX);
			ingest_wake_workers(slot, INGEST_WORKER_COORDINATOR);
		}
		PG_CATCH();
		{
			ErrorData  *edata;
			bool		go_on;

			MemoryContextSwitchTo(cxt);
			/* to the server log too: the retry may hide it */
			EmitErrorReport();
			edata = CopyErrorData();
			FlushErrorState();
			ingest_xact_abort();
			ingest_worker_set_item(0, 0);
			if (stream.buf)
				PQfreemem(stream.buf);
			stream.buf = NULL;
			close_source();
			MemoryContextSwitchTo(cxt);
			if (importing)
			{
				importing = false;
				/* not the item's fault; give the coordinator time to notice */
				(void) ingest_sleep_ms(Max(ingest_retry_delay, 1000));
				break;
			}
			go_on = copy_failed(m, it, edata->message);
			if (!go_on)
				break;
			/* back off: retry_delay, doubled at each attempt */
			(void) ingest_sleep_ms(Min(60000L, (long) ingest_retry_delay << Min(it->attempts, 6)));
		}
		PG_END_TRY();
		pgstat_report_activity(STATE_IDLE, NULL);
	}

	close_source();
	ingest_wake_workers(slot, INGEST_WORKER_COORDINATOR);
	proc_exit(0);
}
