/*-------------------------------------------------------------------------
 *
 * citus_map.c
 *	  The distribution map of a migration into Citus (ingest.start's and
 *	  ingest.preflight's distribute =>), and ingest.distribution() for
 *	  ingest.tables.
 *
 * The map (ingest.start's and ingest.preflight's distribute): checked at
 * start against this server and the source's catalog, stored normalized
 * in ingest.migration.distribute; the schema phase reads it after the
 * pre-data statements and calls create_reference_table, then
 * create_distributed_table in co-location order, one transaction each,
 * leaving alone a table Citus already holds (a restart midway).
 *
 *
 * State: the map in the catalog (ingest.migration.distribute); nothing in
 * shared memory.
 *
 * Locking: create_distributed_table and create_reference_table take their
 * AccessExclusiveLock on the table, one transaction each.
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

	if (!ingest_citus_installed())
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
