/*-------------------------------------------------------------------------
 *
 * extconfig.c
 *	  Configuration tables and sequences of extensions: the relations an
 *	  extension marks with pg_extension_config_dump() (pg_extension.extconfig,
 *	  with a WHERE condition each in extcondition), such as PostGIS's
 *	  spatial_ref_sys.  pg_dump dumps the rows within the condition (the
 *	  user's rows; CREATE EXTENSION makes the others), and so does a
 *	  migration:
 *	 - source.c lists them with the relations of the source (SourceRel
 *	   extname set), so the filters name them like any table, and leaves out
 *	   those of excluded extensions (exclude_extensions) and of pg_ingest;
 *	 - the copy (copy.c) deletes the target's rows within the target
 *	   extension's own condition, in the item's transaction, instead of
 *	   truncating, and reads the source with COPY (SELECT ... WHERE
 *	   <source condition>) under the snapshot (as pg_dump does);
 *	 - target.c lets a migration write into a configuration table of an
 *	   extension here (never into other extension members), so changes of
 *	   the stream are applied like any table's; plan.c sets
 *	   configuration sequences;
 *	 - ingest.verify compares them whole, through ingest.copy_item like any
 *	   table: with the extension at the same version on both sides the rows
 *	   outside the condition are the extension's own and equal too;
 *	 - preflight's extension_config_rows counts the user rows.
 *
 * A condition is the extension's own SQL text.  The source's runs only on
 * the source (as pg_dump runs it), this server's only here, each checked to
 * make one SELECT or one DELETE with this server's parser: a condition that
 * is not a WHERE clause fails the copy of that table, naming it.
 *
 * State: none of its own: the catalogs of both sides say which relations
 * are configuration ones.
 *
 * Locking: the copy's caller holds RowExclusiveLock on the target table;
 * pg_extension is read with AccessShareLock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "conn.h"
#include "extconfig.h"
#include "pg_ingest.h"
#include "source.h"
#include "target.h"

/* Whether the configuration relations of extension extname stay out. */
bool
ingest_extconfig_excluded(const char *extname, List *exclude_extensions)
{
	return strcmp(extname, "pg_ingest") == 0 ||
		ingest_string_in(exclude_extensions, extname);
}

/*
 * Whether relation relid of this server is a configuration relation of the
 * extension it belongs to; its condition ("" for none) in *condition.
 */
static bool
target_config(Oid relid, char **condition)
{
	Oid			ext = getExtensionOfObject(RelationRelationId, relid);
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	int			index = -1;

	if (condition)
		*condition = NULL;
	if (!OidIsValid(ext))
		return false;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extconfig,
									 RelationGetDescr(rel), &isnull);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		if (!isnull)
		{
			deconstruct_array(DatumGetArrayTypeP(d), OIDOID, sizeof(Oid), true,
							  TYPALIGN_INT, &elems, &nulls, &n);
			for (i = 0; i < n; i++)
				if (!nulls[i] && DatumGetObjectId(elems[i]) == relid)
					index = i;
		}
		if (index >= 0 && condition)
		{
			d = heap_getattr(tup, Anum_pg_extension_extcondition,
							 RelationGetDescr(rel), &isnull);
			*condition = "";
			if (!isnull)
			{
				deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
								  TYPALIGN_INT, &elems, &nulls, &n);
				if (index < n && !nulls[index])
					*condition = TextDatumGetCString(elems[index]);
			}
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return index >= 0;
}

/* Whether relid is a configuration relation of its extension here. */
bool
ingest_extconfig_is_config(Oid relid)
{
	return target_config(relid, NULL);
}

/* sql is exactly one statement of that kind (this server's parser). */
static bool
one_statement(const char *sql, NodeTag tag)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = false;

	PG_TRY();
	{
		List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);

		ok = list_length(raw) == 1 &&
			nodeTag(linitial_node(RawStmt, raw)->stmt) == tag;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
	}
	PG_END_TRY();
	return ok;
}

/*
 * ingest_extconfig_clear_target
 *		Delete the rows of configuration table relid that its extension's
 *		condition selects (all of them without a condition): the copy puts
 *		the source's in their place.  In the copy item's transaction.
 */
void
ingest_extconfig_clear_target(Oid relid)
{
	char	   *condition;
	char	   *name = ingest_relid_name(relid);
	char	   *sql;

	if (!target_config(relid, &condition))
		elog(ERROR, "relation %u is not an extension configuration table", relid);
	sql = psprintf("DELETE FROM ONLY %s %s", name, condition);
	if (!one_statement(sql, T_DeleteStmt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot copy into extension configuration table %s: the condition of its extension here is not a WHERE clause",
						name),
				 errdetail("Condition: %s", condition)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the user rows of %s", name);
	SPI_finish();
}

/* The source's condition of a configuration table; NULL if it is none. */
static char *
source_condition(PGconn *conn, const char *password, const char *nspname,
				 const char *relname)
{
	PGresult   *res;
	char	   *condition = NULL;

	res = ingest_exec(conn,
					  psprintf("SELECT COALESCE(x.extcondition[pg_catalog.array_position(x.extconfig, c.oid)], '')"
							   " FROM pg_catalog.pg_class c"
							   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							   " JOIN pg_catalog.pg_extension x ON c.oid = ANY (x.extconfig)"
							   " WHERE n.nspname = %s AND c.relname = %s",
							   quote_literal_cstr(nspname), quote_literal_cstr(relname)),
					  PGRES_TUPLES_OK, "read the condition of an extension configuration table",
					  password);
	if (PQntuples(res) > 0)
		condition = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return condition;
}

/*
 * ingest_extconfig_filter
 *		The clause ("WHERE ...", or "" for every row) that selects the rows
 *		of source table nspname.relname that pg_dump would dump, if it is an
 *		extension's configuration table there (NULL otherwise), for
 *		ingest_copy_table().  Runs in the copy's snapshot.
 */
char *
ingest_extconfig_filter(PGconn *conn, const char *password,
						const char *nspname, const char *relname,
						const char *columns)
{
	char	   *condition = source_condition(conn, password, nspname, relname);

	if (condition == NULL)
		return NULL;
	if (!one_statement(psprintf("SELECT %s FROM ONLY %s %s\n", columns,
								ingest_qualified(nspname, relname), condition),
					   T_SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot copy extension configuration table %s: the condition of its extension on the source is not a WHERE clause",
						ingest_qualified(nspname, relname)),
				 errdetail("Condition: %s", condition),
				 errhint("Leave the table out with exclude_tables, or its extension with exclude_extensions.")));
	return condition;
}

/*
 * ingest_extconfig_rows
 *		The configuration tables of the source's extensions (outside
 *		exclude_extensions and pg_ingest) and how many rows each holds
 *		within its condition: the rows a migration copies.
 */
List *
ingest_extconfig_rows(PGconn *conn, const char *password,
					  List *exclude_extensions)
{
	List	   *out = NIL;
	PGresult   *res;
	int			i;

	res = ingest_exec(conn,
					  "SELECT e.extname, n.nspname, c.relname, COALESCE(x.cond, '')"
					  " FROM pg_catalog.pg_extension e"
					  " CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(e.extconfig),"
					  "  pg_catalog.unnest(e.extcondition)) AS x(cfg, cond)"
					  " JOIN pg_catalog.pg_class c ON c.oid = x.cfg AND c.relkind = 'r'"
					  " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					  " ORDER BY 1, 2, 3",
					  PGRES_TUPLES_OK, "list the extension configuration tables",
					  password);
	for (i = 0; i < PQntuples(res); i++)
	{
		ExtConfigRows *e;
		char	   *sql;
		PGresult   *cnt;

		if (ingest_extconfig_excluded(PQgetvalue(res, i, 0), exclude_extensions))
			continue;
		e = palloc0(sizeof(ExtConfigRows));
		e->extname = pstrdup(PQgetvalue(res, i, 0));
		e->table = ingest_qualified(PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
		e->rows = -1;

		/* the extension's own condition, run where it comes from, as one SELECT */
		sql = psprintf("SELECT count(*) FROM ONLY %s %s\n", e->table, PQgetvalue(res, i, 3));
		if (!one_statement(sql, T_SelectStmt))
			e->problem = psprintf("its condition is not a WHERE clause: %s",
								  PQgetvalue(res, i, 3));
		else
		{
			cnt = ingest_query(conn, sql, -1, NULL);
			if (cnt != NULL && PQresultStatus(cnt) == PGRES_TUPLES_OK)
				e->rows = strtoll(PQgetvalue(cnt, 0, 0), NULL, 10);
			else
				e->problem = psprintf("could not count its rows: %s",
									  ingest_result_message(conn, cnt, password));
			PQclear(cnt);
		}
		out = lappend(out, e);
	}
	PQclear(res);
	return out;
}
