/*-------------------------------------------------------------------------
 *
 * start.c
 *	  ingest.start(): validate a migration's arguments, record it, and have
 *	  its coordinator launched when the transaction commits.
 *
 * Everything a DBA can get wrong is caught here, before anything is
 * copied: unknown mode or schema handling, jobs out of range, a bad size,
 * a name in use, a source that cannot be reached, filters that match
 * nothing, and with schema => 'existing' target tables that are missing or
 * not empty, or that the caller may not have a migration write into
 * (target.c: privileges, row-level security, extension members, Citus).
 * The function connects to the source for that and returns at once; the
 * coordinator does the rest.
 *
 * Locking: the unique index migration_name_unfinished settles two
 * concurrent starts with the same name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "conn.h"
#include "pg_ingest.h"
#include "source.h"
#include "target.h"

PG_FUNCTION_INFO_V1(ingest_start);

#define MIN_SPLIT_BYTES (1024 * 1024)
#define NAME_MAX_LEN 48

static void
size_error_context(void *arg)
{
	errcontext("argument split_tables_larger_than");
}

static void
check_not_null(FunctionCallInfo fcinfo, int arg, const char *name)
{
	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errhidestmt(true)));
}

/* Names go into application_name and messages: keep them plain. */
static void
check_name(const char *name)
{
	const char *p;

	if (*name == '\0' || strlen(name) > NAME_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid migration name \"%s\"", name),
				 errdetail("A name has 1 to %d characters.", NAME_MAX_LEN),
				 errhidestmt(true)));
	for (p = name; *p; p++)
		if (!(isalnum((unsigned char) *p) || *p == '_' || *p == '-' || *p == '.'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid migration name \"%s\"", name),
					 errdetail("A name may contain ASCII letters, digits, \"_\", \"-\" and \".\"."),
					 errhidestmt(true)));
}

static int64
parse_split(text *arg)
{
	ErrorContextCallback callback;
	int64		bytes;

	callback.callback = size_error_context;
	callback.arg = NULL;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	bytes = DatumGetInt64(DirectFunctionCall1(pg_size_bytes, PointerGetDatum(arg)));
	error_context_stack = callback.previous;

	if (bytes < 0 || (bytes > 0 && bytes < MIN_SPLIT_BYTES))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("split_tables_larger_than must be 0 (never split) or at least 1MB"),
				 errhidestmt(true)));
	return bytes;
}

static void
check_jobs(int jobs, const char *name)
{
	if (jobs < 1 || jobs > INGEST_MAX_JOBS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 and %d", name, INGEST_MAX_JOBS),
				 errhidestmt(true)));
}

/* One line of names, at most ten. */
static char *
some_names(List *names)
{
	StringInfoData buf;
	ListCell   *lc;
	int			i = 0;

	initStringInfo(&buf);
	foreach(lc, names)
	{
		if (i == 10)
		{
			appendStringInfo(&buf, " and %d more", list_length(names) - 10);
			break;
		}
		appendStringInfo(&buf, "%s%s", i++ ? ", " : "", (char *) lfirst(lc));
	}
	return buf.data;
}

/*
 * With schema => 'existing', every table to copy must exist here (for a
 * leaf partition of the source, it or its root: target.c), empty (except
 * in mode cdc, where the data is already here), and be one the caller may
 * have a migration write into (ingest_check_target: privileges needed,
 * row-level security, no extension member, no Citus table).
 */
static void
check_existing_tables(List *rels, bool must_be_empty, AclMode needed)
{
	List	   *missing = NIL;
	List	   *not_empty = NIL;
	ListCell   *lc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);
		char	   *q;
		Oid			relid;
		bool		mapped;

		if (!r->in_scope || r->relkind != 'r')
			continue;
		q = ingest_qualified(r->nspname, r->relname);
		relid = ingest_target_relid(r->nspname, r->relname, r->root_nsp, r->root_rel,
									NoLock, &mapped);
		if (!OidIsValid(relid))
		{
			missing = lappend(missing, q);
			continue;
		}
		ingest_check_target(relid, GetUserId(), needed);
		if (!must_be_empty)
			continue;
		q = ingest_relid_name(relid);
		if (SPI_execute(psprintf("SELECT 1 FROM %s%s LIMIT 1",
								 get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
								 q), true, 1) < 0)
			elog(ERROR, "could not read %s", q);
		if (SPI_processed > 0)
			not_empty = lappend(not_empty, q);
	}
	SPI_finish();

	if (missing != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("%d table(s) to copy do not exist on this server: %s",
						list_length(missing), some_names(missing)),
				 errhint("With schema => 'existing' the target schema must be in place; create it, or use schema => 'copy'."),
				 errhidestmt(true)));
	if (not_empty != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%d table(s) to copy are not empty on this server: %s",
						list_length(not_empty), some_names(not_empty)),
				 errhint("With schema => 'existing' the target tables must be empty: TRUNCATE them first."),
				 errhidestmt(true)));
}

/*
 * ingest.start(source, name, mode, schema, table_jobs, index_jobs,
 *				split_tables_larger_than, include_schemas, exclude_schemas,
 *				include_tables, exclude_tables, exclude_extensions)
 */
Datum
ingest_start(PG_FUNCTION_ARGS)
{
	char	   *source;
	char	   *name;
	char	   *mode;
	char	   *schema;
	int			table_jobs;
	int			index_jobs;
	int64		split;
	IngestFilters *filters;
	IngestConnInfo *info;
	PGconn	   *conn;
	const char *volatile source_encoding = NULL;
	List	   *rels = NIL;
	List	   *schemas = NIL;
	List	   *extensions = NIL;
	int			ntables = 0;
	ListCell   *lc;
	int32		id;
	int			slot;
	int			i;

	ingest_check_caller();
	check_not_null(fcinfo, 0, "source");
	check_not_null(fcinfo, 1, "name");
	check_not_null(fcinfo, 2, "mode");
	check_not_null(fcinfo, 3, "schema");
	check_not_null(fcinfo, 4, "table_jobs");
	check_not_null(fcinfo, 5, "index_jobs");
	check_not_null(fcinfo, 6, "split_tables_larger_than");

	source = text_to_cstring(PG_GETARG_TEXT_PP(0));
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	mode = text_to_cstring(PG_GETARG_TEXT_PP(2));
	schema = text_to_cstring(PG_GETARG_TEXT_PP(3));
	table_jobs = PG_GETARG_INT32(4);
	index_jobs = PG_GETARG_INT32(5);

	check_name(name);
	if (strcmp(mode, "full-load") != 0 && strcmp(mode, "full-load-and-cdc") != 0 &&
		strcmp(mode, "cdc") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid mode \"%s\"", mode),
				 errhint("Valid modes are 'full-load', 'full-load-and-cdc' and 'cdc'."),
				 errhidestmt(true)));
	if (strcmp(schema, "copy") != 0 && strcmp(schema, "existing") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid schema \"%s\"", schema),
				 errhint("Use schema => 'copy' (pg_dump the source's schema) or 'existing' (the schema is in place here)."),
				 errhidestmt(true)));
	if (strcmp(mode, "cdc") == 0 && strcmp(schema, "existing") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mode \"cdc\" needs schema => 'existing'"),
				 errdetail("Mode cdc streams changes into a target that already holds the data."),
				 errhint("Pass schema => 'existing' as well."),
				 errhidestmt(true)));
	check_jobs(table_jobs, "table_jobs");
	check_jobs(index_jobs, "index_jobs");
	split = parse_split(PG_GETARG_TEXT_PP(6));
	filters = ingest_filters_from_arrays(PG_ARGISNULL(7) ? NULL : PG_GETARG_ARRAYTYPE_P(7),
										 PG_ARGISNULL(8) ? NULL : PG_GETARG_ARRAYTYPE_P(8),
										 PG_ARGISNULL(9) ? NULL : PG_GETARG_ARRAYTYPE_P(9),
										 PG_ARGISNULL(10) ? NULL : PG_GETARG_ARRAYTYPE_P(10),
										 PG_ARGISNULL(11) ? NULL : PG_GETARG_ARRAYTYPE_P(11));
	info = ingest_conninfo_parse(source, !superuser(), NULL, NULL);

	if (ingest_load_migration_by_name(name, true, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("migration \"%s\" is already in progress", name),
				 errhint("Choose another name, or end that one first with ingest.abort('%s').", name),
				 errhidestmt(true)));

	/* the source: reachable, and the filters match something there */
	conn = ingest_connect_or_error(info, INGEST_CONN_SQL,
								   psprintf("pg_ingest %s start", name));
	PG_TRY();
	{
		source_encoding = PQparameterStatus(conn, "server_encoding");
		source_encoding = pstrdup(source_encoding ? source_encoding : "");
		rels = ingest_source_relations(conn, false, info->password);
		schemas = ingest_source_schemas(conn, info->password);
		extensions = ingest_source_extensions(conn, info->password);
	}
	PG_FINALLY();
	{
		ingest_disconnect(conn);
	}
	PG_END_TRY();
	ingest_apply_filters(rels, filters);
	ingest_check_filters(filters, schemas, extensions);
	foreach(lc, rels)
		if (((SourceRel *) lfirst(lc))->in_scope &&
			((SourceRel *) lfirst(lc))->relkind == 'r')
			ntables++;
	if (strcmp(schema, "existing") == 0)
		check_existing_tables(rels, strcmp(mode, "cdc") != 0,
							  strcmp(mode, "full-load") == 0 ? ACL_INSERT :
							  ACL_INSERT | ACL_UPDATE | ACL_DELETE);

	/* record it */
	{
		Oid			types[15] = {TEXTOID, OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
			INT4OID, INT4OID, INT8OID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID, TEXTOID};
		Datum		vals[15];
		char		nulls[15];
		SPITupleTable *tab;

		memset(nulls, ' ', sizeof(nulls));
		vals[0] = CStringGetTextDatum(name);
		vals[1] = ObjectIdGetDatum(GetUserId());
		vals[2] = CStringGetTextDatum(source);
		vals[3] = CStringGetTextDatum(info->display);
		vals[4] = CStringGetTextDatum(mode);
		vals[5] = CStringGetTextDatum(schema);
		vals[6] = Int32GetDatum(table_jobs);
		vals[7] = Int32GetDatum(index_jobs);
		vals[8] = Int64GetDatum(split);
		for (i = 0; i < 5; i++)
		{
			if (PG_ARGISNULL(7 + i))
				nulls[9 + i] = 'n';
			else
				vals[9 + i] = PG_GETARG_DATUM(7 + i);
		}
		vals[14] = CStringGetTextDatum(source_encoding);
		if (pg_char_to_encoding(source_encoding) < 0)
			nulls[14] = 'n';
		ingest_catalog_begin();
		tab = ingest_catalog_query("INSERT INTO ingest.migration (name, owner, source,"
								   " source_display, mode, schema_mode, table_jobs, index_jobs,"
								   " split_bytes, include_schemas, exclude_schemas,"
								   " include_tables, exclude_tables, exclude_extensions,"
								   " source_encoding)"
								   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
								   " $12, $13, $14, $15) RETURNING id",
								   15, types, vals, nulls);
		id = (int32) ingest_getint(tab, 0, 1, 0);
		ingest_catalog_end();
	}
	ingest_event(id, "INFO", "start", NULL,
				 psprintf("migration started by %s: mode %s, schema %s, %d tables to copy",
						  GetUserNameFromId(GetUserId(), false), mode, schema, ntables),
				 psprintf("source: %s", info->display));
	if (ntables == 0)
		ereport(NOTICE,
				(errmsg("the source has no table to copy; only its schema will be migrated")));

	slot = ingest_reserve_migration_slot(MyDatabaseId, id, GetUserId(), true);
	ingest_launch_at_commit(slot);
	ingest_remember_database(MyDatabaseId);
	PG_RETURN_VOID();
}
