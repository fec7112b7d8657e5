/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  Schema changes made on the source while a migration streams,
 *	  replicated through an event trigger (ddl => 'replicate'): the
 *	  source's side, the event trigger's SQL, its installation and removal,
 *	  and the message prefix the receiver asks for.  The target's side is
 *	  ddl_apply.c (the messages applied) and ddl_follow.c (the migration's
 *	  tables following the commands).
 *
 * On the source.  Before it creates the migration's slot (so before the
 * snapshot of the copy), the coordinator installs, in pg_ingest's own
 * schema _pg_ingest ("pg_" names are reserved for the system), one
 * function and two event triggers per migration, named after the target's
 * system identifier, database and migration id (<ident> below):
 *	_pg_ingest.ddl_<ident>()		the trigger function (SECURITY DEFINER)
 *	_pg_ingest_ddl_<ident>_end		on ddl_command_end
 *	_pg_ingest_ddl_<ident>_drop		on sql_drop (what a DROP removed)
 *	_pg_ingest.token				one row per migration: a random token
 *									that only superusers can read
 * At each DDL command the function emits a transactional logical message
 * (pg_logical_emit_message(true, 'pg_ingest_ddl_<ident>', json)): a body
 * and its signature, sha256(token || body || token), never the token
 * itself (any REPLICATION role of the source can decode the messages, and
 * anyone may emit one: the applier ignores, with a WARNING event, a message
 * that is not JSON, not signed so, not of the transaction that holds it (a
 * signed message replayed: the body holds its xid), or whose tag fires no
 * event trigger).  What the function keeps between the events of one
 * command (the objects a DROP removed, the tables rewritten, the count of
 * commands of each tag in the query text) lives in custom settings that
 * any session may set: each value is stamped with a hash of the token and
 * the statement, and one without the stamp is not taken.
 * The body holds the command tag, the whole query text (current_query()), the
 * session's search_path, the command's ordinal among the commands of the
 * same tag in that query text, and the objects it touched (with, for
 * relations, indexes, constraints and triggers, the table concerned).
 * Commands on temporary objects, inside extension scripts and on
 * _pg_ingest itself are not emitted.  The source's user may do this only
 * as a superuser (or rds_superuser): when the installation fails the
 * migration falls back to inferring schema changes from the stream
 * (infer.c), with an event; ingest.migration.ddl_via says which
 * ('event_trigger' or 'stream'), ddl_installed whether there is something
 * to remove, ddl_token the token.  Several migrations from one source each
 * have their own function, triggers and message prefix; the schema goes
 * with the last of them.  Installation and removal take an advisory lock
 * on the source so that they do not race.  Removal (at the stop, by
 * ingest.abort and ingest.cleanup) is idempotent and never fails the
 * migration: a source out of reach gets a WARNING event naming what to
 * drop by hand.  The copy leaves all of it out (pg_dump --exclude-schema,
 * and the event trigger statements in ingest_split_dump; source.c lists
 * no relation of _pg_ingest).
 *
 * In the stream, the receiver asks wal2json for the migration's prefix
 * only ("add-msg-prefixes") and leaves _pg_ingest's table out
 * (ingest_ddl_stream_options).
 *
 * State: in the catalog, ingest.migration's ddl_via, ddl_installed and
 * ddl_token (written here; the token is read back by ddl_apply.c to check
 * a message's signature); on the source, the schema _pg_ingest, its token
 * table, and the function and event triggers of each migration; nothing
 * in shared memory.
 *
 * Locking: none on the target; on the source, an advisory transaction lock
 * (hashtext('_pg_ingest')) around installation and removal, so that the
 * migrations of one source do not race for the schema.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "ddl.h"

/* <ident>: the same parts as the slot's name */
static char *
ddl_ident(IngestMigration *m)
{
	return psprintf("%08x_%u_%d", (uint32) GetSystemIdentifier(), MyDatabaseId, m->id);
}

/*
 * ingest_ddl_prefix
 *		The prefix of the migration's logical messages.
 */
char *
ingest_ddl_prefix(IngestMigration *m)
{
	return psprintf("pg_ingest_ddl_%s", ddl_ident(m));
}

/*
 * ingest_ddl_stream_options
 *		wal2json options of the receiver: only this migration's messages,
 *		never the rows of _pg_ingest's own table.
 */
char *
ingest_ddl_stream_options(IngestMigration *m)
{
	return psprintf(", \"add-msg-prefixes\" '%s', \"filter-tables\" '%s.*'",
					ingest_ddl_prefix(m), INGEST_DDL_SCHEMA);
}

/* Run fn in a transaction of its own unless one is open. */
#define IN_XACT(code) \
	do { \
		bool		own_ = !IsTransactionState(); \
		if (own_) \
			ingest_xact_start(); \
		code; \
		if (own_) \
			ingest_xact_commit(); \
	} while (0)

static void
record_via(IngestMigration *m, const char *via, bool installed, const char *token)
{
	Oid			types[4] = {INT4OID, TEXTOID, BOOLOID, TEXTOID};
	Datum		vals[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	vals[0] = Int32GetDatum(m->id);
	if (via)
		vals[1] = CStringGetTextDatum(via);
	else
		nulls[1] = 'n';
	vals[2] = BoolGetDatum(installed);
	if (token)
		vals[3] = CStringGetTextDatum(token);
	else
		nulls[3] = 'n';
	ingest_catalog_begin();
	ingest_catalog_exec("UPDATE ingest.migration SET ddl_via = $2, ddl_installed = $3,"
						" ddl_token = COALESCE($4, ddl_token), updated_at = now()"
						" WHERE id = $1", 4, types, vals, nulls);
	ingest_catalog_end();
}

/*
 * ingest_ddl_via
 *		'event_trigger', 'stream' or NULL (not decided, or ddl => 'off'),
 *		palloc'd in the caller's context.  In a transaction.
 */
char *
ingest_ddl_via(int32 migration_id)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(migration_id)};
	SPITupleTable *tab;
	char	   *via = NULL;

	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT ddl_via FROM ingest.migration WHERE id = $1",
							   1, types, vals, NULL);
	if (SPI_processed == 1 && ingest_getstr(tab, 0, 1))
		via = MemoryContextStrdup(outer, ingest_getstr(tab, 0, 1));
	ingest_catalog_end();
	return via;
}

/* The trigger function: see the header comment. */
static char *
function_sql(const char *ident, const char *prefix)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s,
					 "CREATE OR REPLACE FUNCTION " INGEST_DDL_SCHEMA ".ddl_%s() RETURNS event_trigger\n"
					 "LANGUAGE plpgsql SECURITY DEFINER AS $pg_ingest$\n"
					 "DECLARE\n"
					 "  sp text := pg_catalog.current_setting('search_path');\n"
					 "  st text; marker text; counts jsonb; n int; objs jsonb; dropped jsonb; rewritten jsonb;\n"
					 "  ctx text; tok text; stamp text;\n"
					 "BEGIN\n"
	/* the caller's search_path must not resolve anything of this definer function */
					 "  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);\n"
					 "  SELECT token INTO tok FROM " INGEST_DDL_SCHEMA ".token WHERE id = '%s';\n"
	/*
	 * What the rewrite and drop events leave for the command's end is in
	 * settings anyone may set: stamped with the token and the statement,
	 * or not taken.
	 */
					 "  stamp := md5(COALESCE(tok, '') || ' s ' || pg_backend_pid() || ' '\n"
					 "    || extract(epoch FROM statement_timestamp()));\n"
	/* a rewrite is not MVCC-safe: the copy must know (ingest_ddl_apply) */
					 "  IF TG_EVENT = 'table_rewrite' THEN\n"
					 "    st := current_setting('" INGEST_DDL_SCHEMA ".r_%s', true);\n"
					 "    SELECT CASE WHEN split_part(st, '|', 1) = stamp\n"
					 "                THEN substr(st, length(stamp) + 2)::jsonb ELSE '[]' END\n"
					 "        || jsonb_build_array(jsonb_build_object('schema', n.nspname, 'name', c.relname))\n"
					 "      INTO dropped\n"
					 "      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
					 "     WHERE c.oid = pg_event_trigger_table_rewrite_oid();\n"
					 "    PERFORM set_config('" INGEST_DDL_SCHEMA ".r_%s', stamp || '|' || COALESCE(dropped, '[]')::text, false);\n"
					 "    PERFORM set_config('search_path', sp, true);\n"
					 "    RETURN;\n"
					 "  END IF;\n"
					 "  IF TG_EVENT = 'sql_drop' THEN\n"
					 "    SELECT jsonb_agg(jsonb_build_object('type', object_type, 'schema', schema_name,\n"
					 "        'name', object_name, 'identity', object_identity, 'temp', is_temporary))\n"
					 "      INTO dropped FROM pg_event_trigger_dropped_objects() WHERE original;\n"
					 "    PERFORM set_config('" INGEST_DDL_SCHEMA ".d_%s', stamp || '|' || COALESCE(dropped, '[]')::text, false);\n"
					 "    PERFORM set_config('search_path', sp, true);\n"
					 "    RETURN;\n"
					 "  END IF;\n"
	/* emitted at its start: the rows it writes come before its end */
					 "  IF TG_EVENT = 'ddl_command_end'\n"
					 "     AND TG_TAG IN ('CREATE TABLE AS', 'SELECT INTO', 'CREATE MATERIALIZED VIEW') THEN\n"
					 "    PERFORM set_config('search_path', sp, true);\n"
					 "    RETURN;\n"
					 "  END IF;\n"
					 "  st := NULLIF(current_setting('" INGEST_DDL_SCHEMA ".r_%s', true), '');\n"
					 "  IF st IS NOT NULL THEN\n"
					 "    IF split_part(st, '|', 1) = stamp THEN rewritten := substr(st, length(stamp) + 2)::jsonb; END IF;\n"
					 "    PERFORM set_config('" INGEST_DDL_SCHEMA ".r_%s', '', false);\n"
					 "  END IF;\n"
					 "  st := NULLIF(current_setting('" INGEST_DDL_SCHEMA ".d_%s', true), '');\n"
					 "  IF st IS NOT NULL THEN\n"
					 "    IF split_part(st, '|', 1) = stamp THEN dropped := substr(st, length(stamp) + 2)::jsonb; END IF;\n"
					 "    PERFORM set_config('" INGEST_DDL_SCHEMA ".d_%s', '', false);\n"
					 "  END IF;\n"
					 "  IF TG_EVENT = 'ddl_command_end' THEN\n"
					 "  SELECT jsonb_agg(jsonb_build_object('type', c.object_type, 'schema', c.schema_name,\n"
					 "      'identity', c.object_identity, 'ext', c.in_extension,\n"
					 "      'temp', c.schema_name = 'pg_temp' OR r.relpersistence = 't',\n"
					 "      'relschema', rn.nspname, 'relname', r.relname, 'relkind', r.relkind,\n"
					 "      'owner', pg_get_userbyid(COALESCE(r.relowner, p.proowner))))\n"
					 "    INTO objs\n"
					 "    FROM pg_event_trigger_ddl_commands() c\n"
					 "    LEFT JOIN pg_proc p ON c.classid = 'pg_proc'::regclass AND p.oid = c.objid\n"
					 "    LEFT JOIN pg_class r ON r.oid = CASE\n"
					 "      WHEN c.classid = 'pg_class'::regclass THEN\n"
					 "        COALESCE((SELECT x.indrelid FROM pg_index x WHERE x.indexrelid = c.objid), c.objid)\n"
					 "      WHEN c.classid = 'pg_constraint'::regclass THEN\n"
					 "        (SELECT k.conrelid FROM pg_constraint k WHERE k.oid = c.objid)\n"
					 "      WHEN c.classid = 'pg_trigger'::regclass THEN\n"
					 "        (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = c.objid)\n"
					 "      END\n"
					 "    LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace;\n"
					 "  END IF;\n"
					 "  objs := COALESCE(objs, '[]') || COALESCE(dropped, '[]');\n"
	/* the ordinal of this command among those of its tag in the query text */
	/*
	 * Anyone may set the custom setting holding the counts: the marker
	 * includes the token, so the counts of another query text (forged in
	 * the same query string to shift the ordinal) are never taken.
	 */
					 "  marker := md5(COALESCE(tok, '') || ' ' || pg_backend_pid() || ' ' || extract(epoch FROM statement_timestamp())\n"
					 "    || ' ' || md5(current_query()));\n"
					 "  st := NULLIF(current_setting('" INGEST_DDL_SCHEMA ".s_%s', true), '');\n"
					 "  IF st IS NULL OR split_part(st, '|', 1) <> marker THEN\n"
					 "    counts := '{}';\n"
					 "  ELSE\n"
					 "    counts := split_part(st, '|', 2)::jsonb;\n"
					 "  END IF;\n"
					 "  n := COALESCE((counts ->> TG_TAG)::int, 0);\n"
					 "  counts := jsonb_set(counts, ARRAY[TG_TAG], to_jsonb(n + 1));\n"
					 "  PERFORM set_config('" INGEST_DDL_SCHEMA ".s_%s', marker || '|' || counts::text, false);\n"
					 "  IF jsonb_array_length(objs) > 0 AND NOT EXISTS (\n"
					 "      SELECT FROM jsonb_array_elements(objs) o\n"
					 "       WHERE NOT COALESCE((o ->> 'temp')::boolean, false)\n"
					 "         AND NOT COALESCE((o ->> 'ext')::boolean, false)\n"
					 "         AND COALESCE(o ->> 'schema', '') <> '" INGEST_DDL_SCHEMA "'\n"
					 "         AND COALESCE(o ->> 'relschema', '') <> '" INGEST_DDL_SCHEMA "'\n"
					 "         AND NOT (o ->> 'type' = 'schema'\n"
					 "                  AND COALESCE(o ->> 'identity', o ->> 'name') = '" INGEST_DDL_SCHEMA "')) THEN\n"
					 "    PERFORM set_config('search_path', sp, true);\n"
					 "    RETURN;\n"
					 "  END IF;\n"
	/* run by a function, a procedure or a DO block: no statement of the text */
					 "  GET DIAGNOSTICS ctx = PG_CONTEXT;\n"
					 "  st := jsonb_build_object(\n"
					 "      'xid', (txid_current() %% 4294967296)::text,\n"
					 "      'tag', TG_TAG, 'query', current_query(), 'search_path', sp,\n"
					 "      'ordinal', n, 'objects', objs, 'rewritten', rewritten,\n"
					 "      'nested', strpos(ctx, E'\\n') > 0,\n"
					 "      'role', (SELECT o ->> 'owner' FROM jsonb_array_elements(objs) o\n"
					 "                WHERE o ->> 'owner' IS NOT NULL LIMIT 1))::text;\n"
	/*
	 * Signed, not carrying the token: whoever may decode the source's WAL
	 * (any REPLICATION role) reads the messages, and anyone may call
	 * pg_logical_emit_message().
	 */
					 "  PERFORM pg_logical_emit_message(true, '%s', jsonb_build_object('body', st,\n"
					 "      'sig', encode(sha256(convert_to(tok || st || tok, 'UTF8')), 'hex'))::text);\n"
					 "  PERFORM set_config('search_path', sp, true);\n"
					 "END\n"
					 "$pg_ingest$",
					 ident, ident, ident, ident, ident, ident, ident, ident, ident, ident, ident, prefix);
	return s.data;
}

static char *
remove_sql(const char *ident)
{
	return psprintf("BEGIN;\n"
					"SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('" INGEST_DDL_SCHEMA "'));\n"
					"DROP EVENT TRIGGER IF EXISTS " INGEST_DDL_SCHEMA "_ddl_%s_end;\n"
					"DROP EVENT TRIGGER IF EXISTS " INGEST_DDL_SCHEMA "_ddl_%s_drop;\n"
					"DROP EVENT TRIGGER IF EXISTS " INGEST_DDL_SCHEMA "_ddl_%s_start;\n"
					"DROP EVENT TRIGGER IF EXISTS " INGEST_DDL_SCHEMA "_ddl_%s_rewrite;\n"
					"DROP FUNCTION IF EXISTS " INGEST_DDL_SCHEMA ".ddl_%s();\n"
					"DO $pg_ingest$\n"
					"BEGIN\n"
					"  IF pg_catalog.to_regclass('" INGEST_DDL_SCHEMA ".token') IS NOT NULL THEN\n"
					"    DELETE FROM " INGEST_DDL_SCHEMA ".token WHERE id = '%s';\n"
					"    IF NOT EXISTS (SELECT FROM " INGEST_DDL_SCHEMA ".token) THEN\n"
					"      DROP TABLE " INGEST_DDL_SCHEMA ".token;\n"
					"    END IF;\n"
					"  END IF;\n"
					"  IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = '" INGEST_DDL_SCHEMA "')\n"
					"     AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d\n"
					"                      WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass\n"
					"                        AND d.refobjid = '" INGEST_DDL_SCHEMA "'::pg_catalog.regnamespace) THEN\n"
					"    DROP SCHEMA " INGEST_DDL_SCHEMA ";\n"
					"  END IF;\n"
					"END\n"
					"$pg_ingest$;\n"
					"COMMIT",
					ident, ident, ident, ident, ident, ident);
}

/*
 * ingest_ddl_install
 *		Install the event trigger of a migration with change data capture
 *		on the source, or record why not (ddl_via).  The coordinator calls
 *		it before it creates the slot; again after a restart (idempotent).
 */
void
ingest_ddl_install(IngestMigration *m, IngestConnInfo *info)
{
	char	   *ident = ddl_ident(m);
	char	   *prefix = ingest_ddl_prefix(m);
	char		raw[16];
	char	   *token;
	PGconn	   *conn;
	PGresult   *res;
	StringInfoData sql;
	char	   *error = NULL;
	int			i;

	if (strcmp(m->ddl, "replicate") != 0)
	{
		IN_XACT(record_via(m, strcmp(m->ddl, "infer") == 0 ? "stream" : NULL, false, NULL);
				ingest_event(m->id, "INFO", "ddl", NULL,
							 strcmp(m->ddl, "infer") == 0 ?
							 "schema changes on the source are inferred from the stream (ddl => 'infer')" :
							 "schema changes on the source are not replicated (ddl => 'off'): one fails the migration",
							 NULL));
		return;
	}

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random token")));
	token = palloc(sizeof(raw) * 2 + 1);
	for (i = 0; i < (int) sizeof(raw); i++)
		sprintf(token + 2 * i, "%02x", (unsigned char) raw[i]);

	/* recorded first: whatever happens next, removal knows what to look for */
	IN_XACT(record_via(m, "event_trigger", true, token));

	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "BEGIN;\n"
						   "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('" INGEST_DDL_SCHEMA "'));\n"
	/* a schema of that name that is not pg_ingest's is left alone */
						   "DO $pg_ingest$\n"
						   "BEGIN\n"
						   "  IF EXISTS (SELECT FROM pg_catalog.pg_namespace n\n"
						   "              JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner\n"
						   "             WHERE n.nspname = '" INGEST_DDL_SCHEMA "'\n"
						   "               AND ((NOT r.rolsuper AND r.rolname <> current_user)\n"
						   "                    OR pg_catalog.obj_description(n.oid, 'pg_namespace')\n"
						   "                       IS DISTINCT FROM 'pg_ingest: event triggers of migrations')) THEN\n"
						   "    RAISE EXCEPTION 'a schema " INGEST_DDL_SCHEMA " exists that pg_ingest did not create';\n"
						   "  END IF;\n"
						   "END\n"
						   "$pg_ingest$;\n"
						   "CREATE SCHEMA IF NOT EXISTS " INGEST_DDL_SCHEMA ";\n"
						   "COMMENT ON SCHEMA " INGEST_DDL_SCHEMA " IS 'pg_ingest: event triggers of migrations';\n"
						   "REVOKE ALL ON SCHEMA " INGEST_DDL_SCHEMA " FROM PUBLIC;\n"
						   "CREATE TABLE IF NOT EXISTS " INGEST_DDL_SCHEMA ".token (id text PRIMARY KEY, token text NOT NULL);\n"
						   "REVOKE ALL ON " INGEST_DDL_SCHEMA ".token FROM PUBLIC;\n");
	appendStringInfo(&sql,
					 "INSERT INTO " INGEST_DDL_SCHEMA ".token VALUES ('%s', '%s')"
					 " ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;\n",
					 ident, token);
	appendStringInfo(&sql, "%s;\n", function_sql(ident, prefix));
	appendStringInfo(&sql,
					 "REVOKE ALL ON FUNCTION " INGEST_DDL_SCHEMA ".ddl_%s() FROM PUBLIC;\n"
					 "DROP EVENT TRIGGER IF EXISTS " INGEST_DDL_SCHEMA "_ddl_%s_end;\n"
					 "DROP EVENT TRIGGER IF EXISTS " INGEST_DDL_SCHEMA "_ddl_%s_drop;\n"
					 "DROP EVENT TRIGGER IF EXISTS " INGEST_DDL_SCHEMA "_ddl_%s_start;\n"
					 "DROP EVENT TRIGGER IF EXISTS " INGEST_DDL_SCHEMA "_ddl_%s_rewrite;\n"
					 "CREATE EVENT TRIGGER " INGEST_DDL_SCHEMA "_ddl_%s_rewrite ON table_rewrite"
					 " EXECUTE FUNCTION " INGEST_DDL_SCHEMA ".ddl_%s();\n"
					 "CREATE EVENT TRIGGER " INGEST_DDL_SCHEMA "_ddl_%s_drop ON sql_drop"
					 " EXECUTE FUNCTION " INGEST_DDL_SCHEMA ".ddl_%s();\n"
					 "CREATE EVENT TRIGGER " INGEST_DDL_SCHEMA "_ddl_%s_start ON ddl_command_start"
					 " WHEN TAG IN ('CREATE TABLE AS', 'SELECT INTO', 'CREATE MATERIALIZED VIEW')"
					 " EXECUTE FUNCTION " INGEST_DDL_SCHEMA ".ddl_%s();\n"
					 "CREATE EVENT TRIGGER " INGEST_DDL_SCHEMA "_ddl_%s_end ON ddl_command_end"
					 " EXECUTE FUNCTION " INGEST_DDL_SCHEMA ".ddl_%s();\n"
					 "COMMIT",
					 ident, ident, ident, ident, ident, ident, ident, ident, ident, ident, ident, ident, ident);

	WITH_SOURCE_SESSION(conn, info, INGEST_CONN_SQL,
						psprintf("pg_ingest %s coordinator", m->name), NULL,
	{
		res = ingest_query(conn, sql.data, -1, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			/* a lost session is no refusal: the coordinator tries again */
			if (res == NULL || PQstatus(conn) != CONNECTION_OK)
				ingest_report_result_error(conn, res, ERROR,
										   "install the event trigger", info->password);
			error = ingest_result_message(conn, res, info->password);
			PQclear(res);
			res = ingest_query(conn, "ROLLBACK", -1, NULL);
		}
		PQclear(res);
	});

	if (error == NULL)
		IN_XACT(ingest_event(m->id, "INFO", "ddl", NULL,
							 psprintf("schema changes on the source are replicated by the event trigger %s_ddl_%s_end",
									  INGEST_DDL_SCHEMA, ident),
							 psprintf("Installed in schema %s of the source; removed at the stop, by ingest.abort() and by ingest.cleanup().",
									  INGEST_DDL_SCHEMA)));
	else
		IN_XACT(record_via(m, "stream", false, NULL);
				ingest_event(m->id, "INFO", "ddl", NULL,
							 "schema changes on the source are inferred from the stream: no event trigger could be installed there",
							 psprintf("%s (an event trigger needs a superuser, or rds_superuser on RDS)",
									  error)));
}

/*
 * ingest_ddl_remove
 *		Remove the migration's event trigger from the source, if it has one
 *		there.  Never fails: a source out of reach gets a WARNING event
 *		naming what to drop by hand.  False then.  In a transaction or not.
 */
bool
ingest_ddl_remove(IngestMigration *m, IngestConnInfo *info)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};
	bool		installed = false;
	char	   *ident = ddl_ident(m);
	char	   *error = NULL;
	PGconn	   *conn;
	SPITupleTable *tab;

	IN_XACT(ingest_catalog_begin();
			tab = ingest_catalog_query("SELECT ddl_installed FROM ingest.migration WHERE id = $1",
									   1, types, vals, NULL);
			installed = SPI_processed == 1 && ingest_getbool(tab, 0, 1);
			ingest_catalog_end());
	if (!installed)
		return true;

	if (info == NULL)
		error = "the source's connection string cannot be read";
	else
		WITH_SOURCE_SESSION(conn, info, INGEST_CONN_SQL,
							psprintf("pg_ingest %s cleanup", m->name), &error,
		{
			PGresult   *res = ingest_query(conn, remove_sql(ident), 30000L, NULL);

			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				error = ingest_result_message(conn, res, info->password);
			PQclear(res);
		});
	if (error != NULL)
	{
		IN_XACT(ingest_event(m->id, "WARNING", "ddl", NULL,
							 psprintf("could not remove the event trigger from the source: %s", error),
							 psprintf("Run ingest.cleanup('%s') once the source is reachable, or run there:"
									  " DROP EVENT TRIGGER IF EXISTS %s_ddl_%s_end;"
									  " DROP EVENT TRIGGER IF EXISTS %s_ddl_%s_drop;"
									  " DROP EVENT TRIGGER IF EXISTS %s_ddl_%s_start;"
									  " DROP EVENT TRIGGER IF EXISTS %s_ddl_%s_rewrite;"
									  " DROP FUNCTION IF EXISTS %s.ddl_%s();"
									  " DELETE FROM %s.token WHERE id = '%s';"
									  " and DROP SCHEMA %s CASCADE once no migration uses it.",
									  m->name, INGEST_DDL_SCHEMA, ident, INGEST_DDL_SCHEMA, ident,
									  INGEST_DDL_SCHEMA, ident, INGEST_DDL_SCHEMA, ident,
									  INGEST_DDL_SCHEMA, ident, INGEST_DDL_SCHEMA, ident,
									  INGEST_DDL_SCHEMA)));
		return false;
	}
	IN_XACT(record_via(m, ingest_ddl_via(m->id), false, NULL);
			ingest_event(m->id, "INFO", "ddl", NULL,
						 psprintf("removed the event trigger %s_ddl_%s_end from the source",
								  INGEST_DDL_SCHEMA, ident),
						 NULL));
	return true;
}

/*
 * ingest_ddl_is_own_statement
 *		Whether a statement of pg_dump's output concerns an event trigger
 *		of pg_ingest (of this migration or another): left out of the copy.
 */
bool
ingest_ddl_is_own_statement(Node *stmt)
{
	const char *name = NULL;

	if (IsA(stmt, CreateEventTrigStmt))
		name = ((CreateEventTrigStmt *) stmt)->trigname;
	else if (IsA(stmt, AlterEventTrigStmt))
		name = ((AlterEventTrigStmt *) stmt)->trigname;
	else if (IsA(stmt, CommentStmt) &&
			 ((CommentStmt *) stmt)->objtype == OBJECT_EVENT_TRIGGER)
		name = strVal(((CommentStmt *) stmt)->object);
	else if (IsA(stmt, AlterOwnerStmt) &&
			 ((AlterOwnerStmt *) stmt)->objectType == OBJECT_EVENT_TRIGGER)
		name = strVal(((AlterOwnerStmt *) stmt)->object);
	return name != NULL &&
		strncmp(name, INGEST_DDL_SCHEMA "_ddl_", strlen(INGEST_DDL_SCHEMA "_ddl_")) == 0;
}
