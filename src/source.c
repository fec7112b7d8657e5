/*-------------------------------------------------------------------------
 *
 * source.c
 *	  The source's relations, schemas and extensions, and the filters of a
 *	  migration (include/exclude schemas, tables, extensions).
 *
 * Filter names are SQL identifiers: unquoted names fold to lower case, and
 * a table name may be schema-qualified ("public.orders") or not ("orders":
 * that table in any schema).  A partition follows its partition root: a
 * filter naming either one applies.  A sequence follows the table that owns
 * it, and stays whenever a table in scope uses it (a column default calls
 * nextval on it), so that the table can be created.  Views, materialized views and foreign tables are filtered like
 * tables.  Extension members are not listed, except the configuration
 * tables and sequences of extensions (extconfig.c), which filters name like
 * any table and which leave with their extension (exclude_extensions).  Every filter must match something on the source, or
 * ingest_check_filters() says which does not.
 *
 * State: none; the filters are stored with the migration in the catalog
 * (ingest_load_filters reads them).
 *
 * Locking: none; these are queries on a source connection.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/regproc.h"

#include "conn.h"
#include "extconfig.h"
#include "pg_ingest.h"
#include "source.h"

bool
ingest_is_table(char relkind)
{
	return relkind == 'r' || relkind == 'p';
}

int
ingest_source_version(PGconn *conn)
{
	return PQserverVersion(conn);
}

/* Elements of a text[] as C strings; NULL elements are an error. */
static List *
array_strings(ArrayType *arr, const char *argname)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	List	   *out = NIL;

	if (arr == NULL)
		return NIL;
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be an empty array", argname),
				 errdetail("An empty list would match nothing."),
				 errhint("Leave %s out (or pass NULL) to apply no such filter.", argname),
				 errhidestmt(true)));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", argname)));
		out = lappend(out, TextDatumGetCString(elems[i]));
	}
	return out;
}

static List *
parse_names(ArrayType *arr, const char *argname, bool schemas)
{
	List	   *strings = array_strings(arr, argname);
	List	   *out = NIL;
	ListCell   *lc;

	foreach(lc, strings)
	{
		char	   *given = lfirst(lc);
		List	   *parts = stringToQualifiedNameList(given);
		QualName   *q = palloc0(sizeof(QualName));

		q->given = given;
		if (list_length(parts) == 1)
			q->relname = strVal(linitial(parts));
		else if (list_length(parts) == 2 && !schemas)
		{
			q->nspname = strVal(linitial(parts));
			q->relname = strVal(lsecond(parts));
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid name \"%s\" in %s", given, argname),
					 errhint(schemas ? "Give schema names." :
							 "Give table names, optionally schema-qualified, as in 'public.orders'.")));
		out = lappend(out, q);
	}
	return out;
}

IngestFilters *
ingest_filters_from_arrays(ArrayType *include_schemas, ArrayType *exclude_schemas,
						   ArrayType *include_tables, ArrayType *exclude_tables,
						   ArrayType *exclude_extensions)
{
	IngestFilters *f = palloc0(sizeof(IngestFilters));

	f->include_schemas = parse_names(include_schemas, "include_schemas", true);
	f->exclude_schemas = parse_names(exclude_schemas, "exclude_schemas", true);
	f->include_tables = parse_names(include_tables, "include_tables", false);
	f->exclude_tables = parse_names(exclude_tables, "exclude_tables", false);
	f->exclude_extensions = array_strings(exclude_extensions, "exclude_extensions");
	return f;
}

/*
 * ingest_load_filters
 *		The filters recorded with a migration.  Caller is in a transaction.
 */
IngestFilters *
ingest_load_filters(int32 migration_id)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(migration_id)};
	SPITupleTable *tab;
	ArrayType  *arrays[5];
	int			i;
	IngestFilters *f;

	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT include_schemas, exclude_schemas, include_tables,"
							   " exclude_tables, exclude_extensions"
							   " FROM ingest.migration WHERE id = $1",
							   1, types, vals, NULL);
	for (i = 0; i < 5; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(tab->vals[0], tab->tupdesc, i + 1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		arrays[i] = isnull ? NULL : DatumGetArrayTypePCopy(d);
		MemoryContextSwitchTo(old);
	}
	ingest_catalog_end();
	f = ingest_filters_from_arrays(arrays[0], arrays[1], arrays[2], arrays[3],
								   arrays[4]);
	return f;
}

/*
 * A column list from the source (a text[] of names) quoted here: the
 * source's quote_ident is not trusted to have quoted it.
 */
static char *
quoted_list(PGresult *res, int row, int col)
{
	StringInfoData buf;
	StringInfoData elem;
	const char *p;

	initStringInfo(&buf);
	if (PQgetisnull(res, row, col))
		return buf.data;
	p = PQgetvalue(res, row, col);

	/*
	 * The text form of a one-dimensional text[] without NULLs: {a,"b c"},
	 * quoted elements with backslash escapes.  Parsed here, without the
	 * catalogs: the coordinator reads it outside a transaction.
	 */
	if (*p++ != '{')
		elog(ERROR, "unexpected column list from the source: \"%s\"",
			 PQgetvalue(res, row, col));
	initStringInfo(&elem);
	while (*p && *p != '}')
	{
		resetStringInfo(&elem);
		if (*p == '"')
		{
			for (p++; *p && *p != '"'; p++)
			{
				if (*p == '\\' && p[1])
					p++;
				appendStringInfoChar(&elem, *p);
			}
			if (*p == '"')
				p++;
		}
		else
			while (*p && *p != ',' && *p != '}')
				appendStringInfoChar(&elem, *p++);
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "",
						 quote_identifier(elem.data));
		if (*p == ',')
			p++;
	}
	if (*p != '}')
		elog(ERROR, "unexpected column list from the source: \"%s\"",
			 PQgetvalue(res, row, col));
	pfree(elem.data);
	return buf.data;
}

/* Order of (nspname, relname): the source's ORDER BY of two names (C order). */
static int
source_rel_cmp(SourceRel *r, const char *nspname, const char *relname)
{
	int			c = strcmp(r->nspname, nspname);

	return c != 0 ? c : strcmp(r->relname, relname);
}

/*
 * The relation nspname.relname of rels, or NULL.  A list of
 * ingest_source_relations is in (nspname, relname) order: a binary search,
 * then, if that misses (a list in another order), a scan.
 */
SourceRel *
ingest_find_source_rel(List *rels, const char *nspname, const char *relname)
{
	ListCell   *lc;
	int			lo = 0;
	int			hi = list_length(rels) - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		SourceRel  *r = list_nth(rels, mid);
		int			c = source_rel_cmp(r, nspname, relname);

		if (c == 0)
			return r;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);

		if (source_rel_cmp(r, nspname, relname) == 0)
			return r;
	}
	return NULL;
}

/*
 * ingest_source_relations
 *		Every user relation of the source, outside extensions and temporary
 *		schemas, ordered by schema and name.  Runs in whatever transaction
 *		(and snapshot) the connection is in.
 */
List *
ingest_source_relations(PGconn *conn, bool with_sizes, const char *password)
{
	int			version = PQserverVersion(conn);
	char	   *sql;
	PGresult   *res;
	List	   *rels = NIL;
	int			i;

	sql = psprintf("SELECT n.nspname, c.relname, c.relkind,"
				   " CASE WHEN %s AND c.relkind IN ('r', 'm') THEN pg_catalog.pg_relation_size(c.oid) ELSE 0 END,"
				   " CASE WHEN %s AND c.relkind IN ('r', 'm') THEN pg_catalog.pg_table_size(c.oid) ELSE 0 END,"
				   " (SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum)"
				   "  FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
				   "  AND NOT a.attisdropped%s),"
				   " (SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum)"
				   "  FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
				   "  AND NOT a.attisdropped),"
				   " rn.nspname, r.relname, on_.nspname, o.relname,"
				   " c.relpersistence,"
				   " c.relkind = 'r' AND (c.relreplident = 'n'"
				   "  OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
				   "      WHERE i.indrelid = c.oid AND i.indisprimary))"
				   "  OR (c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
				   "      WHERE i.indrelid = c.oid AND i.indisreplident))),"
				   " " INGEST_EXTCONFIG_OF_C_SQL
				   " FROM pg_catalog.pg_class c"
				   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
				   " LEFT JOIN pg_catalog.pg_class r ON %s"
				   " LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace"
				   " LEFT JOIN pg_catalog.pg_depend d ON c.relkind = 'S'"
				   "  AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid"
				   "  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
				   "  AND d.deptype IN ('a', 'i')"
				   " LEFT JOIN pg_catalog.pg_class o ON o.oid = d.refobjid"
				   " LEFT JOIN pg_catalog.pg_namespace on_ ON on_.oid = o.relnamespace"
				   " WHERE c.relkind IN ('r', 'p', 'm', 'f', 'v', 'S')"
				   "  AND c.relpersistence <> 't'"
				   "  AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_pg_ingest')"
				   "  AND n.nspname !~ '^pg_(toast|temp_)'"
				   "  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e"
				   "   WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
				   "   AND e.objid = c.oid AND e.deptype = 'e'"
				   "   AND " INGEST_EXTCONFIG_OF_C_SQL " IS NULL)"
				   " ORDER BY 1, 2",
				   with_sizes ? "true" : "false", with_sizes ? "true" : "false",
				   version >= 120000 ? " AND a.attgenerated = ''" : "",
				   version >= 120000 ?
				   "c.relispartition AND r.oid = pg_catalog.pg_partition_root(c.oid)" :
				   "false");
	res = ingest_exec(conn, sql, PGRES_TUPLES_OK, "list the tables", password);
	for (i = 0; i < PQntuples(res); i++)
	{
		SourceRel  *r = palloc0(sizeof(SourceRel));

		r->nspname = pstrdup(PQgetvalue(res, i, 0));
		r->relname = pstrdup(PQgetvalue(res, i, 1));
		r->relkind = PQgetvalue(res, i, 2)[0];
		r->bytes_main = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		r->bytes_table = strtoll(PQgetvalue(res, i, 4), NULL, 10);
		r->columns = quoted_list(res, i, 5);
		r->all_columns = quoted_list(res, i, 6);
		if (!PQgetisnull(res, i, 7))
		{
			r->root_nsp = pstrdup(PQgetvalue(res, i, 7));
			r->root_rel = pstrdup(PQgetvalue(res, i, 8));
		}
		if (!PQgetisnull(res, i, 9))
		{
			r->owner_nsp = pstrdup(PQgetvalue(res, i, 9));
			r->owner_rel = pstrdup(PQgetvalue(res, i, 10));
		}
		r->relpersistence = PQgetvalue(res, i, 11)[0];
		r->no_identity = PQgetvalue(res, i, 12)[0] == 't';
		if (!PQgetisnull(res, i, 13))
			r->extname = pstrdup(PQgetvalue(res, i, 13));
		rels = lappend(rels, r);
	}
	PQclear(res);

	/* tables whose column defaults use a sequence (nextval) */
	res = ingest_exec(conn,
					  "SELECT sn.nspname, s.relname, tn.nspname, t.relname"
					  " FROM pg_catalog.pg_depend d"
					  " JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid"
					  " JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'"
					  " JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace"
					  " JOIN pg_catalog.pg_class t ON t.oid = ad.adrelid"
					  " JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace"
					  " WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass"
					  "  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
					  "  AND d.deptype = 'n'",
					  PGRES_TUPLES_OK, "list the sequences used by column defaults",
					  password);
	for (i = 0; i < PQntuples(res); i++)
	{
		SourceRel  *seq = ingest_find_source_rel(rels, PQgetvalue(res, i, 0),
										  PQgetvalue(res, i, 1));
		SourceRel  *tab = ingest_find_source_rel(rels, PQgetvalue(res, i, 2),
										  PQgetvalue(res, i, 3));

		if (seq != NULL && tab != NULL && seq->relkind == 'S')
			seq->used_by = lappend(seq->used_by, tab);
	}
	PQclear(res);
	return rels;
}

static List *
single_column(PGconn *conn, const char *sql, const char *what,
			  const char *password)
{
	PGresult   *res = ingest_exec(conn, sql, PGRES_TUPLES_OK, what, password);
	List	   *out = NIL;
	int			i;

	for (i = 0; i < PQntuples(res); i++)
		out = lappend(out, pstrdup(PQgetvalue(res, i, 0)));
	PQclear(res);
	return out;
}

List *
ingest_source_schemas(PGconn *conn, const char *password)
{
	return single_column(conn,
						 "SELECT nspname FROM pg_catalog.pg_namespace ORDER BY 1",
						 "list the schemas", password);
}

List *
ingest_source_extensions(PGconn *conn, const char *password)
{
	return single_column(conn,
						 "SELECT extname FROM pg_catalog.pg_extension ORDER BY 1",
						 "list the extensions", password);
}

/* Materialized views the source has populated, as names quoted here. */
List *
ingest_source_matviews(PGconn *conn, const char *password)
{
	PGresult   *res = ingest_exec(conn,
								  "SELECT n.nspname, c.relname"
								  " FROM pg_catalog.pg_class c"
								  " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
								  " WHERE c.relkind = 'm' AND c.relispopulated",
								  PGRES_TUPLES_OK, "list materialized views", password);
	List	   *out = NIL;
	int			i;

	for (i = 0; i < PQntuples(res); i++)
		out = lappend(out, ingest_qualified(PQgetvalue(res, i, 0),
											PQgetvalue(res, i, 1)));
	PQclear(res);
	return out;
}

static bool
name_match(List *names, const char *nspname, const char *relname)
{
	ListCell   *lc;
	bool		found = false;

	if (relname == NULL)
		return false;
	foreach(lc, names)
	{
		QualName   *q = lfirst(lc);

		if (strcmp(q->relname, relname) == 0 &&
			(q->nspname == NULL || strcmp(q->nspname, nspname) == 0))
		{
			q->matched = true;
			found = true;
		}
	}
	return found;
}

static bool
schema_in_scope(IngestFilters *f, const char *nspname)
{
	bool		in;

	in = f->include_schemas == NIL || name_match(f->include_schemas, NULL, nspname);
	if (name_match(f->exclude_schemas, NULL, nspname))
		in = false;
	return in;
}

/* Whether the schema filters keep this source schema. */
bool
ingest_schema_in_scope(IngestFilters *f, const char *nspname)
{
	return schema_in_scope(f, nspname);
}

static bool
table_in_scope(IngestFilters *f, SourceRel *r)
{
	bool		in;
	bool		leaf,
				root;

	if (!schema_in_scope(f, r->nspname))
		return false;
	if (r->extname && ingest_extconfig_excluded(r->extname, f->exclude_extensions))
		return false;
	if (r->root_nsp && !schema_in_scope(f, r->root_nsp))
		return false;
	in = true;
	if (f->include_tables != NIL)
	{
		leaf = name_match(f->include_tables, r->nspname, r->relname);
		root = name_match(f->include_tables, r->root_nsp, r->root_rel);
		in = leaf || root;
	}
	leaf = name_match(f->exclude_tables, r->nspname, r->relname);
	root = name_match(f->exclude_tables, r->root_nsp, r->root_rel);
	return in && !leaf && !root;
}

/*
 * ingest_apply_filters
 *		Set in_scope on every relation; marks the filters that matched.
 */
void
ingest_apply_filters(List *rels, IngestFilters *f)
{
	ListCell   *lc;

	/* schema names match schemas even without relations in them */
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);

		if (r->relkind != 'S')
			r->in_scope = table_in_scope(f, r);
	}
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);
		ListCell   *lc2;

		if (r->relkind != 'S')
			continue;
		r->in_scope = schema_in_scope(f, r->nspname) &&
			!(r->extname && ingest_extconfig_excluded(r->extname, f->exclude_extensions));
		if (!r->in_scope)
			continue;
		if (r->owner_rel)
		{
			foreach(lc2, rels)
			{
				SourceRel  *t = lfirst(lc2);

				if (t->relkind != 'S' && strcmp(t->nspname, r->owner_nsp) == 0 &&
					strcmp(t->relname, r->owner_rel) == 0)
				{
					r->in_scope = t->in_scope;
					break;
				}
			}
		}
		/* a sequence that a table in scope uses stays, whoever owns it */
		foreach(lc2, r->used_by)
			if (((SourceRel *) lfirst(lc2))->in_scope)
				r->in_scope = true;
	}
}

/*
 * ingest_check_filters
 *		Error out on a filter that matches nothing on the source.
 */
void
ingest_check_filters(IngestFilters *f, List *schemas, List *extensions)
{
	List	   *lists[4] = {f->include_schemas, f->exclude_schemas,
	f->include_tables, f->exclude_tables};
	const char *names[4] = {"include_schemas", "exclude_schemas",
	"include_tables", "exclude_tables"};
	int			i;
	ListCell   *lc;

	for (i = 0; i < 4; i++)
	{
		foreach(lc, lists[i])
		{
			QualName   *q = lfirst(lc);
			ListCell   *lc2;

			if (i < 2)
			{
				/* a schema counts even when it holds no relation */
				foreach(lc2, schemas)
					if (strcmp(lfirst(lc2), q->relname) == 0)
						q->matched = true;
			}
			if (!q->matched)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("%s entry \"%s\" matches nothing on the source",
								names[i], q->given),
						 errhint(i < 2 ? "Schema names are SQL identifiers: unquoted names fold to lower case." :
								 "Table names are SQL identifiers (unquoted names fold to lower case), optionally schema-qualified; a table excluded by a schema filter cannot be included."),
						 errhidestmt(true)));
		}
	}
	foreach(lc, f->exclude_extensions)
	{
		char	   *ext = lfirst(lc);
		ListCell   *lc2;
		bool		found = false;

		foreach(lc2, extensions)
			found |= strcmp(lfirst(lc2), ext) == 0;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("exclude_extensions entry \"%s\" is not installed on the source", ext),
					 errhidestmt(true)));
	}
}

