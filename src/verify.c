/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  ingest.verify(): compare every table of a migration on the source and
 *	  on the target.
 *
 * Both sides compute, for each table, the exact row count and, in hash
 * mode, the sum of a 64-bit hash of each row's text (hashtextextended of
 * ROW(columns)::text): an order-independent hash that streams through the
 * table in one aggregate, with no sort however big the table is, and that
 * counts duplicate rows (a sum, not a XOR).  The row text depends on
 * DateStyle, IntervalStyle, extra_float_digits, TimeZone, bytea_output and
 * lc_monetary; the source session fixes them (conn.c), and this session
 * sets the same for the comparison.  The source is read in one REPEATABLE
 * READ transaction, so all its tables are seen as of one instant: each
 * table is read inside a savepoint, and a table the source fails to read
 * (its row shows NULLs and MISMATCH) is rolled back to it, which keeps the
 * transaction's snapshot for the tables after it.  A lost connection ends
 * the call with an error.
 *
 * Each source table is compared with the table its rows went to here
 * (target.c), read whole if partitioned.  Leaves of the source whose rows
 * share a target root (a leaf not here, or a partition of such a root) are
 * compared together as that root: the sums of their counts and hashes
 * against the root's, the columns those of the first leaf.
 *
 * Large objects get one row, "large objects", when either side has some:
 * their count and a hash of every object's OID and content (largeobject_check.c).
 *
 * The column list comes from the source's catalog as one name per row and
 * is quoted here (quote_identifier), never taken as SQL from the source.
 *
 * State: none; it reads both sides and the catalog's copy items.
 *
 * Locking: AccessShareLock on each target table while it is read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "conn.h"
#include "pg_ingest.h"
#include "source.h"
#include "target.h"

PG_FUNCTION_INFO_V1(ingest_verify);

/* the settings that shape a row's text, as conn.c sets them on the source */
static const char *const row_text_settings[][2] = {
	{"datestyle", "ISO"},
	{"intervalstyle", "postgres"},
	{"extra_float_digits", "3"},
	{"timezone", "UTC"},
	{"bytea_output", "hex"},
	{"lc_monetary", "C"},
};

/*
 * What one output row compares: source tables (leaves mapped to one target
 * root, summed) and the target table their rows went to (target.c).
 */
typedef struct VerifyTable
{
	char	   *name;			/* as shown */
	List	   *sources;		/* qualified names of the source's tables */
	Oid			target;			/* InvalidOid if not on the target */
	char	   *target_from;	/* "ONLY t", or "t" for a partitioned t */
} VerifyTable;

/* table is a FROM item: "ONLY t", or "t" (a partitioned table, whole) */
static char *
aggregate_sql(const char *table, const char *columns, bool hash, int version)
{
	if (!hash)
		return psprintf("SELECT count(*), NULL FROM %s", table);
	return psprintf("SELECT count(*), COALESCE(sum(pg_catalog.%s(ROW(%s)::text%s)), 0)::text"
					" FROM %s",
					version >= 110000 ? "hashtextextended" : "hashtext",
					columns, version >= 110000 ? ", 0" : "", table);
}

/* The same over several source tables, summed. */
static char *
sources_sql(List *sources, const char *columns, bool hash, int version)
{
	StringInfoData sql;
	ListCell   *lc;

	if (list_length(sources) == 1)
		return aggregate_sql(psprintf("ONLY %s", (char *) linitial(sources)),
							 columns, hash, version);
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT COALESCE(sum(c), 0)::int8, sum(h::numeric)::text FROM (");
	foreach(lc, sources)
		appendStringInfo(&sql, "%s(%s)", foreach_current_index(lc) > 0 ? " UNION ALL " : "",
						 aggregate_sql(psprintf("ONLY %s", (char *) lfirst(lc)),
									   columns, hash, version));
	appendStringInfoString(&sql, ") s(c, h)");
	return sql.data;
}

/*
 * The tables to compare: each source table with its target table, except
 * that leaves of the source whose rows go to one partitioned or shared
 * target root (a leaf not here, or a partition of such a root) are
 * compared together, as that root.
 */
static List *
verify_tables(SPITupleTable *tab, uint64 n, MemoryContext cxt)
{
	List	   *tables = NIL;
	List	   *roots = NIL;	/* targets of mapped leaves */
	Oid		   *relids = palloc0(sizeof(Oid) * (n + 1));
	bool	   *mapped = palloc0(sizeof(bool) * (n + 1));
	uint64		i;
	ListCell   *lc;

	for (i = 0; i < n; i++)
	{
		relids[i] = ingest_target_relid(ingest_getstr(tab, i, 1), ingest_getstr(tab, i, 2),
										ingest_getstr(tab, i, 3), ingest_getstr(tab, i, 4),
										NoLock, &mapped[i]);
		if (mapped[i])
			roots = list_append_unique_oid(roots, relids[i]);
	}
	for (i = 0; i < n; i++)
	{
		Oid			group = relids[i];
		VerifyTable *t = NULL;
		MemoryContext old;

		/* a partition that rows of mapped leaves are routed into */
		if (!mapped[i] && OidIsValid(group) && roots != NIL &&
			get_rel_relispartition(group))
		{
			foreach(lc, get_partition_ancestors(group))
				if (list_member_oid(roots, lfirst_oid(lc)))
					group = lfirst_oid(lc);
		}
		old = MemoryContextSwitchTo(cxt);
		if (group != relids[i] || mapped[i])
		{
			foreach(lc, tables)
				if (((VerifyTable *) lfirst(lc))->target == group)
					t = lfirst(lc);
		}
		if (t == NULL)
		{
			t = palloc0(sizeof(VerifyTable));
			t->target = group;
			if (group != relids[i] || mapped[i])
				t->name = ingest_relid_name(group);
			else
				t->name = ingest_qualified(ingest_getstr(tab, i, 1), ingest_getstr(tab, i, 2));
			if (OidIsValid(group))
				t->target_from = psprintf("%s%s",
										  get_rel_relkind(group) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
										  ingest_relid_name(group));
			tables = lappend(tables, t);
		}
		t->sources = lappend(t->sources,
							 ingest_qualified(ingest_getstr(tab, i, 1), ingest_getstr(tab, i, 2)));
		MemoryContextSwitchTo(old);
	}
	return tables;
}

/* Count and hash a target table; NULLs when it cannot be read. */
static void
target_side(const char *sql, Datum *values, bool *nulls, MemoryContext cxt)
{
	MemoryContext old = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(old);
	PG_TRY();
	{
		/* the source session's search_path: reg* values print alike */
		int			nestlevel = NewGUCNestLevel();

		(void) set_config_option("search_path", "pg_catalog, pg_temp",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not read the target table");
		{
			char	   *count = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			char	   *hash = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			MemoryContext spi = MemoryContextSwitchTo(cxt);

			values[2] = Int64GetDatum(strtoll(count, NULL, 10));
			if (hash)
				values[4] = CStringGetTextDatum(hash);
			else
				nulls[4] = true;
			MemoryContextSwitchTo(spi);
		}
		SPI_finish();
		AtEOXact_GUC(true, nestlevel);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
		nulls[2] = nulls[4] = true;
	}
	PG_END_TRY();
}

/*
 * Put a row of ingest.verify with its verdict (values[5]): MATCH when both
 * sides have the table with the same number of rows and, with hash, the
 * same content hash.
 */
static void
put_verdict(ReturnSetInfo *rsinfo, Datum *values, bool *nulls, bool hash)
{
	bool		match = !nulls[1] && !nulls[2] &&
		DatumGetInt64(values[1]) == DatumGetInt64(values[2]) &&
		(!hash || (!nulls[3] && !nulls[4] &&
				   strcmp(TextDatumGetCString(values[3]),
						  TextDatumGetCString(values[4])) == 0));

	values[5] = CStringGetTextDatum(match ? "MATCH" : "MISMATCH");
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * ingest.verify(name, mode)
 *	RETURNS TABLE(table_name, source_rows, target_rows, source_hash,
 *				  target_hash, status)
 */
Datum
ingest_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	char	   *mode;
	bool		hash;
	IngestMigration *m;
	IngestConnInfo *info;
	PGconn	   *conn;
	List	   *tables = NIL;
	Oid			types[1] = {INT4OID};
	Datum		vals[1];
	SPITupleTable *tab;
	uint64		i;
	int			nestlevel;
	MemoryContext cxt = CurrentMemoryContext;

	ingest_check_caller();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name and mode must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	mode = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(mode, "hash") != 0 && strcmp(mode, "count") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid mode \"%s\"", mode),
				 errhint("Use mode => 'hash' (row counts and content hashes) or 'count' (row counts).")));
	hash = strcmp(mode, "hash") == 0;
	m = ingest_load_migration_by_name(name, false, false);

	InitMaterializedSRF(fcinfo, 0);

	vals[0] = Int32GetDatum(m->id);
	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT nspname, relname, max(root_nspname), max(root_relname)"
							   " FROM ingest.copy_item"
							   " WHERE migration_id = $1"
							   " AND (nspname, relname) <> ('pg_catalog', 'pg_largeobject')"
							   " GROUP BY 1, 2 ORDER BY 1, 2",
							   1, types, vals, NULL);
	tables = verify_tables(tab, SPI_processed, cxt);
	ingest_catalog_end();

	info = ingest_conninfo_parse(m->source, !superuser(), NULL, NULL);
	nestlevel = NewGUCNestLevel();
	WITH_SOURCE_SESSION(conn, info, INGEST_CONN_SQL,
						psprintf("pg_ingest %s verify", m->name), NULL,
	{
		PGresult   *res;
		ListCell   *lc;
		int			version = PQserverVersion(conn);

		for (i = 0; i < lengthof(row_text_settings); i++)
			(void) set_config_option(row_text_settings[i][0], row_text_settings[i][1],
									 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
									 true, 0, false);
		ingest_begin_read(conn, NULL, NULL, info->password);

		foreach(lc, tables)
		{
			VerifyTable *vt = lfirst(lc);
			char	   *table = linitial(vt->sources);
			Datum		values[6];
			bool		nulls[6] = {false};
			char	   *columns = NULL;

			CHECK_FOR_INTERRUPTS();
			values[0] = CStringGetTextDatum(vt->name);

			/* a failure on this table leaves the snapshot to the others */
			res = ingest_exec(conn, "SAVEPOINT pg_ingest_verify", PGRES_COMMAND_OK,
							  "verify the tables", info->password);
			PQclear(res);

			/* every column of the source table, in its order, quoted here */
			res = ingest_query(conn,
							   psprintf("SELECT attname FROM pg_catalog.pg_attribute"
										" WHERE attrelid = %s::pg_catalog.regclass"
										" AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
										quote_literal_cstr(table)), -1, NULL);
			/* no row: a table without columns, read as ROW() */
			if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
			{
				StringInfoData cols;
				int			c;

				initStringInfo(&cols);
				for (c = 0; c < PQntuples(res); c++)
					appendStringInfo(&cols, "%s%s", c > 0 ? ", " : "",
									 quote_identifier(PQgetvalue(res, c, 0)));
				columns = cols.data;
			}
			PQclear(res);
			res = NULL;
			if (columns != NULL)
				res = ingest_query(conn, sources_sql(vt->sources, columns, hash, version),
								   -1, NULL);
			if (columns != NULL && res && PQresultStatus(res) == PGRES_TUPLES_OK)
			{
				values[1] = Int64GetDatum(strtoll(PQgetvalue(res, 0, 0), NULL, 10));
				if (PQgetisnull(res, 0, 1))
					nulls[3] = true;
				else
					values[3] = CStringGetTextDatum(PQgetvalue(res, 0, 1));
				PQclear(res);
				res = ingest_exec(conn, "RELEASE SAVEPOINT pg_ingest_verify",
								  PGRES_COMMAND_OK, "verify the tables", info->password);
			}
			else
			{
				nulls[1] = nulls[3] = true;
				if (PQstatus(conn) == CONNECTION_BAD)
					ingest_report_result_error(conn, res, ERROR, "verify the tables",
											   info->password);
				PQclear(res);
				/* same transaction, same snapshot, for the next table */
				res = ingest_exec(conn, "ROLLBACK TO SAVEPOINT pg_ingest_verify",
								  PGRES_COMMAND_OK, "verify the tables", info->password);
			}
			PQclear(res);

			if (columns != NULL && vt->target_from != NULL)
				target_side(aggregate_sql(vt->target_from, columns, hash, version),
							values, nulls, cxt);
			else				/* no columns, or no such table here */
				nulls[2] = nulls[4] = true;

			put_verdict(rsinfo, values, nulls, hash);
		}

		/* the large objects, one row when either side has some (largeobject_check.c) */
		{
			Datum		values[6];
			bool		nulls[6] = {false};

			values[0] = CStringGetTextDatum("large objects");
			if (ingest_lo_verify_row(conn, info->password, hash, values, nulls))
				put_verdict(rsinfo, values, nulls, hash);
		}
	});
	AtEOXact_GUC(false, nestlevel);
	return (Datum) 0;
}
