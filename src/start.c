/*-------------------------------------------------------------------------
 *
 * start.c
 *	  ingest.start(): validate a migration's arguments, record it, and have
 *	  its coordinator launched when the transaction commits.
 *
 * Everything a DBA can get wrong is caught here, before anything is
 * copied: unknown mode or schema handling, jobs out of range, a bad size,
 * a name in use, a source that cannot be reached, filters that are empty
 * or match nothing, a source that is this very database, a source schema
 * with the name of pg_ingest's own schema here, target tables that
 * already hold rows (unless existing_rows => 'truncate', which empties
 * them here, in the caller's transaction), target tables that the caller
 * may not have a migration write into (target.c: privileges, row-level
 * security, extension members, Citus), with schema => 'existing' target
 * tables that are missing, and in a CDC mode source tables whose changes
 * logical decoding cannot carry (no key and no replica identity, or
 * unlogged) unless untracked_tables => 'copy_only' or resync => 'at_cutover'.
 *
 * What the migration will not carry (those tables' later changes, user
 * rows of extension configuration tables) is recorded as one WARNING event
 * per object, kind 'not carried'.  A source user that may not read every
 * large object is refused (they are copied, largeobject.c), and so is a
 * migration that copies into a database that has large objects already.  The function connects to
 * the source for all that and returns at once; the coordinator does the
 * rest.
 *
 * State: the new migration's rows in the catalog, written in the caller's
 * transaction; its slot in shared memory, reserved until that transaction
 * commits (slots.c).
 *
 * Locking: the unique index migration_name_unfinished settles two
 * concurrent starts with the same name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "citus.h"
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

	/* sized from the tables to copy and table_jobs: plan.c */
	if (pg_strcasecmp(text_to_cstring(arg), "auto") == 0)
		return INGEST_SPLIT_AUTO;

	callback.callback = size_error_context;
	callback.arg = NULL;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	bytes = DatumGetInt64(DirectFunctionCall1(pg_size_bytes, PointerGetDatum(arg)));
	error_context_stack = callback.previous;

	if (bytes < 0 || (bytes > 0 && bytes < MIN_SPLIT_BYTES))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("split_tables_larger_than must be 'auto', 0 (never split) or at least 1MB"),
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
 * The target tables of the migration: with schema => 'existing' each must
 * exist here (for a leaf partition of the source, it or its root:
 * target.c); each one that exists must be one the caller may have a
 * migration write into (ingest_check_target: privileges, row-level
 * security, no extension member, no Citus table); unless the data is here
 * already (mode cdc), those that hold rows are refused, or with
 * existing_rows => 'truncate' emptied now (a partitioned table with its
 * partitions, a table of an inheritance tree alone), in the caller's
 * transaction and with the caller's rights.  Returns the tables emptied.
 */
static List *
check_target_tables(List *rels, bool schema_existing, bool check_rows,
					bool truncate, AclMode needed)
{
	List	   *missing = NIL;
	List	   *not_empty = NIL;
	List	   *truncate_list = NIL;	/* not_empty, as TRUNCATE names them */
	ListCell   *lc;
	MemoryContext outer = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);
		char	   *q;
		Oid			relid;
		MemoryContext spi;
		bool		mapped;
		bool		seen = false;
		ListCell   *lc2;

		if (!r->in_scope || r->relkind != 'r')
			continue;
		relid = ingest_target_relid(r->nspname, r->relname, r->root_nsp,
									r->root_rel, NoLock, &mapped);
		/* the names outlive SPI_finish */
		spi = MemoryContextSwitchTo(outer);
		q = OidIsValid(relid) ? ingest_relid_name(relid) :
			ingest_qualified(r->nspname, r->relname);
		MemoryContextSwitchTo(spi);
		if (!OidIsValid(relid))
		{
			spi = MemoryContextSwitchTo(outer);
			if (schema_existing)
				missing = lappend(missing, q);
			MemoryContextSwitchTo(spi);
			continue;
		}
		ingest_check_target(relid, GetUserId(), needed);
		/* an extension's configuration table has its extension's rows */
		if (!check_rows || r->extname != NULL)
			continue;
		/* leaves of one source tree may map to the same target table */
		foreach(lc2, not_empty)
			if (strcmp((char *) lfirst(lc2), q) == 0)
				seen = true;
		if (seen)
			continue;
		if (SPI_execute(psprintf("SELECT 1 FROM %s%s LIMIT 1",
								 get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
								 q), true, 1) < 0)
			elog(ERROR, "could not read %s", q);
		if (SPI_processed > 0)
		{
			spi = MemoryContextSwitchTo(outer);
			not_empty = lappend(not_empty, q);
			truncate_list = lappend(truncate_list,
									psprintf("%s%s",
											 get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
											 q));
			MemoryContextSwitchTo(spi);
		}
	}

	if (missing != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("%d table(s) to copy do not exist on this server: %s",
						list_length(missing), some_names(missing)),
				 errhint("With schema => 'existing' the target schema must be in place; create it, or use schema => 'copy'."),
				 errhidestmt(true)));
	if (not_empty != NIL && !truncate)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg_plural("%d table to copy already has rows on this server",
							   "%d tables to copy already have rows on this server",
							   list_length(not_empty), list_length(not_empty)),
				 errdetail("Tables: %s.", some_names(not_empty)),
				 errhint("The copy would replace or add to them. Empty them first, leave them out with exclude_tables, or pass existing_rows => 'truncate' to have ingest.start empty them."),
				 errhidestmt(true)));
	if (not_empty != NIL)
	{
		StringInfoData sql;

		initStringInfo(&sql);
		appendStringInfoString(&sql, "TRUNCATE ");
		foreach(lc, truncate_list)
			appendStringInfo(&sql, "%s%s", lc == list_head(truncate_list) ? "" : ", ",
							 (char *) lfirst(lc));
		if (SPI_execute(sql.data, false, 0) < 0)
			elog(ERROR, "could not empty the target tables");
	}
	SPI_finish();
	return not_empty;
}

/* What ingest.start learns of the source besides its relations. */
typedef struct SourceFacts
{
	char	   *system_identifier;	/* NULL if the source does not say */
	Oid			database_oid;
	char	   *database_name;
} SourceFacts;

static void
read_source_facts(PGconn *conn, IngestConnInfo *info, IngestFilters *filters,
				  SourceFacts *f)
{
	PGresult   *res;

	memset(f, 0, sizeof(SourceFacts));

	/* pg_control_system() may be denied (managed services): then unknown */
	res = ingest_query(conn, "SELECT system_identifier FROM pg_catalog.pg_control_system()",
					   -1, NULL);
	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		f->system_identifier = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);

	res = ingest_exec(conn,
					  "SELECT d.oid, d.datname FROM pg_catalog.pg_database d"
					  " WHERE d.datname = pg_catalog.current_database()",
					  PGRES_TUPLES_OK, "identify the source database", info->password);
	if (PQntuples(res) == 1)
	{
		f->database_oid = (Oid) strtoul(PQgetvalue(res, 0, 0), NULL, 10);
		f->database_name = pstrdup(PQgetvalue(res, 0, 1));
	}
	PQclear(res);

	/* large objects are copied: the source user must read them all */
	ingest_lo_check_source(conn, info->password);
}

/* The source is this very database: the copy would wait on itself. */
static void
check_not_this_database(SourceFacts *f)
{
	char		sysid[32];

	snprintf(sysid, sizeof(sysid), UINT64_FORMAT, GetSystemIdentifier());
	if (f->system_identifier != NULL &&
		strcmp(f->system_identifier, sysid) == 0 &&
		f->database_oid == MyDatabaseId)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the source is this database (\"%s\")",
						f->database_name ? f->database_name : "?"),
				 errdetail("The source connection reaches this server (same system identifier) and this database (same OID)."),
				 errhint("Run ingest.start in the database to migrate into; another database of this server can be the source."),
				 errhidestmt(true)));
}

/*
 * A source schema with the name of pg_ingest's schema here would be copied
 * into pg_ingest's catalog.
 */
static void
check_extension_schema(List *schemas, IngestFilters *filters, Oid fn_oid)
{
	/* ingest.start lives in the extension's schema, whatever its name */
	char	   *extschema = get_namespace_name(get_func_namespace(fn_oid));
	ListCell   *lc;

	foreach(lc, schemas)
	{
		if (strcmp(lfirst(lc), extschema) != 0 ||
			!ingest_schema_in_scope(filters, extschema))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_SCHEMA),
				 errmsg("the source has a schema named \"%s\", the schema of pg_ingest on this server",
						extschema),
				 errdetail("Its objects and rows would go into pg_ingest's own catalog."),
				 errhint("Leave it out with exclude_schemas => ARRAY[%s], or rename it on the source.",
						 quote_literal_cstr(quote_identifier(extschema))),
				 errhidestmt(true)));
	}
}

/*
 * ingest.start(source, name, mode, schema, table_jobs, index_jobs,
 *				split_tables_larger_than, include_schemas, exclude_schemas,
 *				include_tables, exclude_tables, exclude_extensions,
 *				existing_rows, untracked_tables, resync, ddl)
 */
Datum
ingest_start(PG_FUNCTION_ARGS)
{
	char	   *source;
	char	   *name;
	char	   *mode;
	char	   *schema;
	char	   *existing_rows;
	char	   *untracked;
	char	   *resync;
	char	   *ddl;
	bool		cdc;
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
	SourceFacts facts;
	List	   *untracked_names;
	List	   *untracked_reasons;
	List	   *emptied;
	ListCell   *lc2;
	int			ntables = 0;
	ListCell   *lc;
	int32		id;
	int			slot;
	int			i;
	char	   *distribute = NULL;

	ingest_check_caller();
	check_not_null(fcinfo, 0, "source");
	check_not_null(fcinfo, 1, "name");
	check_not_null(fcinfo, 2, "mode");
	check_not_null(fcinfo, 3, "schema");
	check_not_null(fcinfo, 4, "table_jobs");
	check_not_null(fcinfo, 5, "index_jobs");
	check_not_null(fcinfo, 6, "split_tables_larger_than");
	check_not_null(fcinfo, 12, "existing_rows");
	check_not_null(fcinfo, 13, "untracked_tables");
	check_not_null(fcinfo, 14, "resync");
	check_not_null(fcinfo, 15, "ddl");

	source = text_to_cstring(PG_GETARG_TEXT_PP(0));
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	mode = text_to_cstring(PG_GETARG_TEXT_PP(2));
	schema = text_to_cstring(PG_GETARG_TEXT_PP(3));
	table_jobs = PG_GETARG_INT32(4);
	index_jobs = PG_GETARG_INT32(5);
	existing_rows = text_to_cstring(PG_GETARG_TEXT_PP(12));
	untracked = text_to_cstring(PG_GETARG_TEXT_PP(13));
	resync = text_to_cstring(PG_GETARG_TEXT_PP(14));
	ddl = text_to_cstring(PG_GETARG_TEXT_PP(15));

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
	if (strcmp(existing_rows, "refuse") != 0 && strcmp(existing_rows, "truncate") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid existing_rows \"%s\"", existing_rows),
				 errhint("Use existing_rows => 'refuse' (target tables with rows stop the start) or 'truncate' (they are emptied)."),
				 errhidestmt(true)));
	if (strcmp(untracked, "refuse") != 0 && strcmp(untracked, "copy_only") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid untracked_tables \"%s\"", untracked),
				 errhint("Use untracked_tables => 'refuse' (tables whose changes cannot be carried stop the start) or 'copy_only' (they are copied, their later changes are not carried)."),
				 errhidestmt(true)));
	if (strcmp(resync, "none") != 0 && strcmp(resync, "at_cutover") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid resync \"%s\"", resync),
				 errhint("Use resync => 'none' or 'at_cutover' (tables whose changes cannot be carried are copied again, in one snapshot, when the migration stops)."),
				 errhidestmt(true)));
	if (strcmp(ddl, "replicate") != 0 && strcmp(ddl, "infer") != 0 &&
		strcmp(ddl, "off") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid ddl \"%s\"", ddl),
				 errhint("Use ddl => 'replicate' (an event trigger on the source, or inferred from the stream where none may be created), 'infer' (from the stream only) or 'off' (a schema change fails the migration)."),
				 errhidestmt(true)));
	cdc = strcmp(mode, "full-load") != 0;
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
	WITH_SOURCE_SESSION(conn, info, INGEST_CONN_SQL,
						psprintf("pg_ingest %s start", name), NULL,
	{
		source_encoding = PQparameterStatus(conn, "server_encoding");
		source_encoding = pstrdup(source_encoding ? source_encoding : "");
		rels = ingest_source_relations(conn, false, info->password);
		schemas = ingest_source_schemas(conn, info->password);
		extensions = ingest_source_extensions(conn, info->password);
		read_source_facts(conn, info, filters, &facts);
	});
	check_not_this_database(&facts);
	ingest_apply_filters(rels, filters);
	ingest_check_filters(filters, schemas, extensions);
	check_extension_schema(schemas, filters, fcinfo->flinfo->fn_oid);
	foreach(lc, rels)
		if (((SourceRel *) lfirst(lc))->in_scope &&
			((SourceRel *) lfirst(lc))->relkind == 'r')
			ntables++;

	untracked_names = ingest_untracked_tables(rels, &untracked_reasons);
	if (!cdc)
		untracked_names = untracked_reasons = NIL;
	if (untracked_names != NIL && strcmp(untracked, "refuse") == 0 &&
		strcmp(resync, "at_cutover") != 0)
	{
		StringInfoData detail;

		initStringInfo(&detail);
		forboth(lc, untracked_names, lc2, untracked_reasons)
		{
			if (foreach_current_index(lc) == 10)
			{
				appendStringInfo(&detail, "\n... and %d more.",
								 list_length(untracked_names) - 10);
				break;
			}
			appendStringInfo(&detail, "%s%s: %s", detail.len ? "\n" : "",
							 (char *) lfirst(lc), (char *) lfirst(lc2));
		}
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg_plural("%d table's changes cannot be carried by change data capture",
							   "%d tables' changes cannot be carried by change data capture",
							   list_length(untracked_names), list_length(untracked_names)),
				 errdetail_internal("%s", detail.data),
				 errhint("On the source, give each a primary key or REPLICA IDENTITY FULL (ALTER TABLE ... SET LOGGED for unlogged ones); or leave them out with exclude_tables; or pass resync => 'at_cutover' to have them copied again when the migration stops, or untracked_tables => 'copy_only' to copy them once without their later changes."),
				 errhidestmt(true)));
	}
	/* distribute => a map for Citus (its argument since 0.2.0: citus.c) */
	if (PG_NARGS() > 16 && !PG_ARGISNULL(16))
		distribute = ingest_citus_check_map(PG_GETARG_DATUM(16), info, rels, schema, name);
	emptied = check_target_tables(rels, strcmp(schema, "existing") == 0,
								  strcmp(mode, "cdc") != 0,
								  strcmp(existing_rows, "truncate") == 0,
								  strcmp(mode, "full-load") == 0 ? ACL_INSERT :
								  ACL_INSERT | ACL_UPDATE | ACL_DELETE);
	/* the copy makes the source's large objects here, with their OIDs */
	if (strcmp(mode, "cdc") != 0)
		ingest_lo_check_target();

	/* record it */
	{
		Oid			types[19] = {TEXTOID, OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
			INT4OID, INT4OID, INT8OID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
		Datum		vals[19];
		char		nulls[19];
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
		vals[15] = CStringGetTextDatum(existing_rows);
		vals[16] = CStringGetTextDatum(untracked);
		vals[17] = CStringGetTextDatum(resync);
		vals[18] = CStringGetTextDatum(ddl);
		ingest_catalog_begin();
		tab = ingest_catalog_query("INSERT INTO ingest.migration (name, owner, source,"
								   " source_display, mode, schema_mode, table_jobs, index_jobs,"
								   " split_bytes, include_schemas, exclude_schemas,"
								   " include_tables, exclude_tables, exclude_extensions,"
								   " source_encoding, existing_rows, untracked_tables,"
								   " resync, ddl)"
								   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
								   " $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id",
								   19, types, vals, nulls);
		id = (int32) ingest_getint(tab, 0, 1, 0);
		ingest_catalog_end();
		if (distribute)
			ingest_citus_store_map(id, distribute);
	}
	ingest_event(id, "INFO", "start", NULL,
				 psprintf("migration started by %s: mode %s, schema %s, %d tables to copy",
						  GetUserNameFromId(GetUserId(), false), mode, schema, ntables),
				 psprintf("source: %s", info->display));
	if (emptied != NIL)
		ingest_event(id, "WARNING", "start", NULL,
					 psprintf("%d target table(s) with rows emptied (existing_rows => 'truncate'): %s",
							  list_length(emptied), some_names(emptied)),
					 NULL);

	/* what will not be carried: one WARNING each, kind 'not carried' */
	forboth(lc, untracked_names, lc2, untracked_reasons)
	{
		if (strcmp(resync, "at_cutover") == 0)
			ingest_event(id, "INFO", "resync", lfirst(lc),
						 psprintf("%s is copied again when the migration stops: %s (resync => 'at_cutover')",
								  (char *) lfirst(lc), (char *) lfirst(lc2)),
						 NULL);
		else
			ingest_event(id, "WARNING", "not carried", lfirst(lc),
						 psprintf("later changes of %s are not carried: %s (untracked_tables => 'copy_only')",
								  (char *) lfirst(lc), (char *) lfirst(lc2)),
						 NULL);
	}
	if (ntables == 0)
		ereport(NOTICE,
				(errmsg("the source has no table to copy; only its schema will be migrated")));

	slot = ingest_reserve_migration_slot(MyDatabaseId, id, GetUserId(), true);
	ingest_launch_at_commit(slot);
	ingest_remember_database(MyDatabaseId);
	PG_RETURN_VOID();
}
