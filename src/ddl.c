/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  Schema changes made on the source while a migration streams,
 *	  replicated through an event trigger (ddl => 'replicate').
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
 * In the stream.  The receiver asks wal2json for the migration's prefix
 * only ("add-msg-prefixes") and leaves _pg_ingest's table out.  The
 * applier calls ingest_ddl_apply() where the message stands in its source
 * transaction, inside the target transaction that advances the origin past
 * it, so a command is applied exactly once.  The query text is split with
 * the server's parser and the statement is the ordinal-th of its tag (a
 * query string of several statements fires the trigger once per command;
 * a command run inside a function or DO block is not a statement of the
 * text, so the trigger marks it "nested" from its PG_CONTEXT and it fails
 * the migration, named, rather than have another statement of the text
 * run in its place).  A table the command makes unlogged (CREATE UNLOGGED
 * TABLE, SET UNLOGGED) goes to resync => 'at_cutover' or fails the
 * migration (follow_unlogged).  It runs with the source session's
 * search_path, through ProcessUtility, as the role owning on the source the
 * first object it concerns when that role exists here and the migration's
 * owner has its privileges (what it creates gets the same owner), else as
 * the migration's owner (the applier acts as it); CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY and
 * DETACH PARTITION CONCURRENTLY run in their plain form (with an event).
 * Filters apply: a command whose objects are all left out is skipped with
 * an event, and so are the later changes of a table it created.  The
 * migration's tables (ingest.copy_item) follow: a table created is added
 * (state 'skipped', its sync LSN the command's transaction: its rows come
 * in the stream), one renamed or moved is renamed, one dropped removed.
 * The sync LSN rule: the target's tables are defined as of the migration's
 * first snapshot (pg_dump's pre-data), and every command the stream holds
 * committed after it, so each is applied, on the definition the copy left.
 * Only a table copied under a later snapshot (exported again during the
 * copy) can have rows newer than a command: an ALTER TABLE of such a
 * table fails the migration, naming it (its rows cannot be reconciled with
 * a definition older than they are); other commands apply.  A table
 * rewrite (ALTER COLUMN TYPE...) of a table not yet copied is not
 * MVCC-safe in PostgreSQL (the copy's older snapshot would see it empty):
 * README says to keep them out of the full load.
 * A command that fails on the target fails the migration with the
 * command, its LSN and the error; resume retries it.
 *
 * Locking: none of its own on the target; an advisory lock on the source
 * around installation and removal.  State: the catalog (columns of
 * ingest.migration, copy_item); nothing in shared memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "tcop/cmdtag.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "catalog/namespace.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"

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

/* ---------------------------------------------------------------------
 * The applier's side
 * ---------------------------------------------------------------------
 */

typedef struct DdlObject
{
	char	   *type;
	char	   *schema;
	char	   *identity;
	char	   *relschema;		/* the table concerned, if any */
	char	   *relname;
	char		relkind;
	bool		ignored;		/* temporary, an extension's, pg_ingest's */
} DdlObject;

typedef struct DdlMessage
{
	char	   *tag;
	char	   *query;
	char	   *search_path;
	char	   *role;			/* owner of the (first) object concerned */
	int			ordinal;
	bool		nested;			/* not run by a statement of the query text */
	List	   *objects;
	List	   *rewritten;		/* DdlObject: tables the command rewrote */
} DdlMessage;

static char *
dupstr(MemoryContext cxt, char *s)
{
	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

/*
 * The message's fields, through the server's jsonb, if it is signed with
 * the migration's token (see function_sql); false otherwise (not JSON,
 * unsigned, forged): nothing else is read of it.
 */
static bool
parse_message(IngestMigration *m, const char *content, TransactionId xid,
			  DdlMessage *msg)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		vals[2];
	SPITupleTable *tab;
	uint64		i;
	JsonLexContext *lex;
	char	   *body;

	memset(msg, 0, sizeof(*msg));
	/* anyone on the source may emit a message: never an error here */
	lex = makeJsonLexContextCstringLen(pstrdup(content), strlen(content),
									   GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
		return false;
	vals[0] = CStringGetTextDatum(content);
	vals[1] = Int32GetDatum(m->id);
	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT s.body FROM (SELECT $1::jsonb ->> 'body' AS body,"
							   "  $1::jsonb ->> 'sig' AS sig,"
							   "  (SELECT ddl_token FROM ingest.migration WHERE id = $2) AS tok) s"
							   " WHERE pg_catalog.jsonb_typeof($1::jsonb) = 'object'"
							   "  AND s.sig = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to("
							   "   s.tok || s.body || s.tok, 'UTF8')), 'hex')",
							   2, types, vals, NULL);
	body = SPI_processed == 1 ? dupstr(outer, ingest_getstr(tab, 0, 1)) : NULL;
	if (body == NULL)
	{
		ingest_catalog_end();
		return false;
	}
	vals[0] = CStringGetTextDatum(body);
	/* signed in the transaction that holds it: never a message replayed */
	vals[1] = CStringGetTextDatum(psprintf("%u", xid));
	types[1] = TEXTOID;
	tab = ingest_catalog_query("SELECT j ->> 'tag', j ->> 'query', j ->> 'search_path',"
							   " (j ->> 'ordinal')::int, j ->> 'role',"
							   " COALESCE((j ->> 'nested')::boolean, false)"
							   " FROM (SELECT $1::jsonb AS j) s WHERE j ->> 'xid' = $2",
							   2, types, vals, NULL);
	if (SPI_processed != 1)
	{
		ingest_catalog_end();
		return false;
	}
	msg->tag = dupstr(outer, ingest_getstr(tab, 0, 1));
	msg->query = dupstr(outer, ingest_getstr(tab, 0, 2));
	msg->search_path = dupstr(outer, ingest_getstr(tab, 0, 3));
	msg->ordinal = (int) ingest_getint(tab, 0, 4, -1);
	msg->role = dupstr(outer, ingest_getstr(tab, 0, 5));
	msg->nested = ingest_getbool(tab, 0, 6);
	tab = ingest_catalog_query("SELECT o ->> 'type', o ->> 'schema', COALESCE(o ->> 'identity', o ->> 'name'),"
							   " o ->> 'relschema', o ->> 'relname', o ->> 'relkind',"
							   " COALESCE((o ->> 'temp')::boolean, false)"
							   "  OR COALESCE((o ->> 'ext')::boolean, false)"
							   "  OR COALESCE(o ->> 'schema', '') = '" INGEST_DDL_SCHEMA "'"
							   "  OR COALESCE(o ->> 'relschema', '') = '" INGEST_DDL_SCHEMA "'"
							   " FROM jsonb_array_elements(CASE jsonb_typeof($1::jsonb -> 'objects')"
							   "  WHEN 'array' THEN $1::jsonb -> 'objects' ELSE '[]' END) o",
							   1, types, vals, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(outer);
		DdlObject  *o = palloc0(sizeof(DdlObject));
		char	   *kind = ingest_getstr(tab, i, 6);

		o->type = dupstr(outer, ingest_getstr(tab, i, 1));
		o->schema = dupstr(outer, ingest_getstr(tab, i, 2));
		o->identity = dupstr(outer, ingest_getstr(tab, i, 3));
		o->relschema = dupstr(outer, ingest_getstr(tab, i, 4));
		o->relname = dupstr(outer, ingest_getstr(tab, i, 5));
		o->relkind = kind ? kind[0] : '\0';
		o->ignored = ingest_getbool(tab, i, 7);
		msg->objects = lappend(msg->objects, o);
		MemoryContextSwitchTo(old);
	}
	tab = ingest_catalog_query("SELECT r ->> 'schema', r ->> 'name'"
							   " FROM jsonb_array_elements(CASE jsonb_typeof($1::jsonb -> 'rewritten')"
							   "  WHEN 'array' THEN $1::jsonb -> 'rewritten' ELSE '[]' END) r",
							   1, types, vals, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(outer);
		DdlObject  *o = palloc0(sizeof(DdlObject));

		o->relschema = dupstr(outer, ingest_getstr(tab, i, 1));
		o->relname = dupstr(outer, ingest_getstr(tab, i, 2));
		if (o->relschema && o->relname)
			msg->rewritten = lappend(msg->rewritten, o);
		MemoryContextSwitchTo(old);
	}
	ingest_catalog_end();
	return true;
}

/* Whether an object of the command is one the migration's filters keep. */
static bool
object_in_scope(IngestFilters *filters, DdlObject *o)
{
	if (o->relname && o->relschema && o->relkind != 'S' && o->relkind != 'i' &&
		o->relkind != 'I' && o->relkind != 'c')
	{
		SourceRel	sr;

		memset(&sr, 0, sizeof(sr));
		sr.nspname = o->relschema;
		sr.relname = o->relname;
		sr.relkind = o->relkind;
		ingest_apply_filters(list_make1(&sr), filters);
		return sr.in_scope;
	}
	/* a table dropped: known only by name */
	if (o->type && o->schema && o->identity &&
		(strcmp(o->type, "table") == 0 || strcmp(o->type, "view") == 0 ||
		 strcmp(o->type, "materialized view") == 0 || strcmp(o->type, "foreign table") == 0))
	{
		SourceRel	sr;
		char	   *dot = o->identity;
		char	   *name = NULL;
		List	   *parts = NIL;

		/* identity is schema.name, quoted as needed */
		if (SplitIdentifierString(pstrdup(dot), '.', &parts) && list_length(parts) == 2)
			name = lsecond(parts);
		if (name)
		{
			memset(&sr, 0, sizeof(sr));
			sr.nspname = o->schema;
			sr.relname = name;
			sr.relkind = 'r';
			ingest_apply_filters(list_make1(&sr), filters);
			return sr.in_scope;
		}
	}
	if (o->schema)
		return ingest_schema_in_scope(filters, o->schema);
	if (o->type && strcmp(o->type, "schema") == 0 && o->identity)
		return ingest_schema_in_scope(filters, o->identity);
	return true;
}

/* A statement's tag, as the event trigger names it. */
static const char *
statement_tag(Node *stmt)
{
	if (IsA(stmt, SelectStmt) && ((SelectStmt *) stmt)->intoClause != NULL)
		return "SELECT INTO";
	return GetCommandTagName(CreateCommandTag(stmt));
}

/*
 * The plain form of a command that cannot run in a transaction block.
 * Returns what was changed, or NULL.
 */
static const char *
drop_concurrently(Node *stmt)
{
	if (IsA(stmt, IndexStmt) && ((IndexStmt *) stmt)->concurrent)
	{
		((IndexStmt *) stmt)->concurrent = false;
		return "CREATE INDEX CONCURRENTLY";
	}
	if (IsA(stmt, DropStmt) && ((DropStmt *) stmt)->concurrent)
	{
		((DropStmt *) stmt)->concurrent = false;
		return "DROP INDEX CONCURRENTLY";
	}
	if (IsA(stmt, AlterTableStmt))
	{
		ListCell   *lc;

		foreach(lc, ((AlterTableStmt *) stmt)->cmds)
		{
			AlterTableCmd *cmd = lfirst(lc);

			if (cmd->subtype == AT_DetachPartition && cmd->def &&
				IsA(cmd->def, PartitionCmd) && ((PartitionCmd *) cmd->def)->concurrent)
			{
				((PartitionCmd *) cmd->def)->concurrent = false;
				return "DETACH PARTITION CONCURRENTLY";
			}
		}
	}
	return NULL;
}

/* The table a CREATE TABLE AS, SELECT INTO or CREATE MATERIALIZED VIEW makes. */
static IntoClause *
into_clause(Node *stmt)
{
	if (IsA(stmt, CreateTableAsStmt))
		return ((CreateTableAsStmt *) stmt)->into;
	if (IsA(stmt, SelectStmt))
		return ((SelectStmt *) stmt)->intoClause;
	return NULL;
}

/*
 * A GRANT or REVOKE on pg_ingest's own objects of the source (another
 * migration installing its trigger): the event trigger cannot tell its
 * objects, the statement can.
 */
static bool
grant_on_own_objects(Node *stmt)
{
	GrantStmt  *g;
	ListCell   *lc;

	if (!IsA(stmt, GrantStmt))
		return false;
	g = (GrantStmt *) stmt;
	if (g->targtype != ACL_TARGET_OBJECT)
		return false;
	foreach(lc, g->objects)
	{
		Node	   *o = lfirst(lc);
		const char *nsp = NULL;

		if (IsA(o, RangeVar))
			nsp = ((RangeVar *) o)->schemaname;
		else if (IsA(o, String))
			nsp = g->objtype == OBJECT_SCHEMA ? strVal(o) : NULL;
		else if (IsA(o, ObjectWithArgs) &&
				 list_length(((ObjectWithArgs *) o)->objname) == 2)
			nsp = strVal(linitial(((ObjectWithArgs *) o)->objname));
		if (nsp && strcmp(nsp, INGEST_DDL_SCHEMA) == 0)
			return true;
	}
	return false;
}

/*
 * A GRANT or REVOKE on tables or sequences: the event trigger does not say
 * which.  Whether none of them is on the target, with search_path set.
 */
static bool
grant_on_missing_relations(Node *stmt, const char *search_path)
{
	GrantStmt  *g;
	ListCell   *lc;
	int			nest;
	bool		missing = true;

	if (!IsA(stmt, GrantStmt))
		return false;
	g = (GrantStmt *) stmt;
	if (g->targtype != ACL_TARGET_OBJECT ||
		(g->objtype != OBJECT_TABLE && g->objtype != OBJECT_SEQUENCE) || g->objects == NIL)
		return false;
	nest = NewGUCNestLevel();
	if (search_path)
		(void) set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	foreach(lc, g->objects)
		if (IsA(lfirst(lc), RangeVar) &&
			OidIsValid(RangeVarGetRelid((RangeVar *) lfirst(lc), NoLock, true)))
			missing = false;
	AtEOXact_GUC(true, nest);
	return missing;
}

/*
 * Run one statement of the text with the source session's search_path.
 * *into_nsp gets the schema of the relation made by into, if any.
 */
static void
execute_statement(RawStmt *rs, const char *query, const char *search_path,
				  IntoClause *into, char **into_nsp)
{
	int			nest = NewGUCNestLevel();
	List	   *querytrees;
	List	   *plans;
	ListCell   *lc;

	if (search_path)
		(void) set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	PushActiveSnapshot(GetTransactionSnapshot());
	querytrees = pg_analyze_and_rewrite_fixedparams(rs, query, NULL, 0, NULL);
	plans = pg_plan_queries(querytrees, query, CURSOR_OPT_PARALLEL_OK, NULL);
	foreach(lc, plans)
	{
		PlannedStmt *ps = lfirst_node(PlannedStmt, lc);

		if (ps->commandType != CMD_UTILITY)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the statement is not a schema command")));
		ProcessUtility(ps, query, false, PROCESS_UTILITY_QUERY, NULL, NULL,
					   None_Receiver, NULL);
		CommandCounterIncrement();
	}
	if (into)
	{
		Oid			relid = RangeVarGetRelid(into->rel, NoLock, true);

		*into_nsp = OidIsValid(relid) ? get_namespace_name(get_rel_namespace(relid)) : NULL;
	}
	PopActiveSnapshot();
	AtEOXact_GUC(true, nest);
}

/*
 * The text of a command as events, errors and the log may show it: not at
 * all when it may hold a password (a user mapping's or a server's options,
 * a subscription's connection string).
 */
static const char *
shown_text(const char *text)
{
	char	   *lower;
	char	   *p;

	if (text == NULL)
		return NULL;
	lower = pstrdup(text);
	for (p = lower; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	if (strstr(lower, "password") != NULL || strstr(lower, "mapping") != NULL ||
		strstr(lower, "subscription") != NULL)
		return "(the command's text is not shown: it may hold a password)";
	return text;
}

typedef struct DdlErrorArg
{
	const char *tag;
	XLogRecPtr	lsn;
	const char *text;
} DdlErrorArg;

static void
ddl_error_context(void *arg)
{
	DdlErrorArg *a = arg;

	errcontext("applying schema change %s at %X/%X: %s", a->tag, LSN_FORMAT_ARGS(a->lsn),
			   a->text ? a->text : "?");
}

/*
 * The migration's tables after the command: renamed, moved, dropped (by
 * OID, before and after), created (the command's objects).
 */
static void
follow_tables(IngestMigration *m, IngestFilters *filters, DdlMessage *msg,
			  char *before_oids, char *before_nsp, char *before_rel,
			  XLogRecPtr final_lsn)
{
	Oid			types[4] = {INT4OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		vals[4];
	SPITupleTable *tab;
	uint64		i;
	ListCell   *lc;

	ingest_catalog_begin();
	vals[0] = Int32GetDatum(m->id);
	if (before_oids)
	{
		uint64		n;

		vals[1] = CStringGetTextDatum(before_oids);
		vals[2] = CStringGetTextDatum(before_nsp);
		vals[3] = CStringGetTextDatum(before_rel);
		tab = ingest_catalog_query("SELECT b.nsp, b.rel, n.nspname, c.relname"
								   " FROM unnest($2::oid[], $3::text[], $4::text[]) b(oid, nsp, rel)"
								   " LEFT JOIN pg_catalog.pg_class c ON c.oid = b.oid"
								   " LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
								   " WHERE c.oid IS NULL OR n.nspname <> b.nsp OR c.relname <> b.rel",
								   4, types, vals, NULL);
		n = SPI_processed;
		for (i = 0; i < n; i++)
		{
			char	   *nsp = ingest_getstr(tab, i, 1);
			char	   *rel = ingest_getstr(tab, i, 2);
			char	   *new_nsp = ingest_getstr(tab, i, 3);
			char	   *new_rel = ingest_getstr(tab, i, 4);
			Oid			t2[5] = {INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
			Datum		v2[5];
			char		n2[5] = {' ', ' ', ' ', ' ', ' '};

			v2[0] = Int32GetDatum(m->id);
			v2[1] = CStringGetTextDatum(nsp);
			v2[2] = CStringGetTextDatum(rel);
			if (new_rel)
			{
				v2[3] = CStringGetTextDatum(new_nsp);
				v2[4] = CStringGetTextDatum(new_rel);
			}
			else
				n2[3] = n2[4] = 'n';
			/* SPI_processed changes: the rows were read above */
			(void) SPI_execute_with_args(new_rel ?
										 "UPDATE ingest.copy_item SET nspname = $4, relname = $5"
										 " WHERE migration_id = $1 AND nspname = $2 AND relname = $3" :
										 "DELETE FROM ingest.copy_item WHERE migration_id = $1"
										 " AND nspname = $2 AND relname = $3 AND $4 IS NULL AND $5 IS NULL",
										 5, t2, v2, n2, false, 0);
			/* resync => 'at_cutover' follows the table too (resync.c) */
			(void) SPI_execute_with_args(new_rel ?
										 "UPDATE ingest.resync_table SET nspname = $4, relname = $5"
										 " WHERE migration_id = $1 AND nspname = $2 AND relname = $3" :
										 "DELETE FROM ingest.resync_table WHERE migration_id = $1"
										 " AND nspname = $2 AND relname = $3 AND $4 IS NULL AND $5 IS NULL",
										 5, t2, v2, n2, false, 0);
			ingest_event(m->id, "INFO", "ddl", ingest_qualified(nsp, rel),
						 new_rel ? psprintf("table renamed to %s", ingest_qualified(new_nsp, new_rel)) :
						 "table dropped: no longer part of the migration", NULL);
		}
	}

	/* tables created */
	foreach(lc, msg->objects)
	{
		DdlObject  *o = lfirst(lc);
		Oid			t3[4] = {INT4OID, TEXTOID, TEXTOID, PG_LSNOID};
		Datum		v3[4];

		if (o->ignored || o->relname == NULL || o->relkind != 'r' ||
			!object_in_scope(filters, o))
			continue;

		v3[0] = Int32GetDatum(m->id);
		v3[1] = CStringGetTextDatum(o->relschema);
		v3[2] = CStringGetTextDatum(o->relname);
		v3[3] = LSNGetDatum(final_lsn);
		if (ingest_catalog_exec("INSERT INTO ingest.copy_item (migration_id, id, nspname, relname,"
								" columns, bytes_total, state, sync_lsn, root_nspname, root_relname)"
								" SELECT $1, (SELECT COALESCE(max(id), 0) + 1 FROM ingest.copy_item"
								"             WHERE migration_id = $1), $2, $3, '', 0, 'skipped', $4,"
								"  pn.nspname, p.relname"
								" FROM pg_catalog.pg_class t"
								" JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace"
								" LEFT JOIN pg_catalog.pg_class p ON p.oid = pg_catalog.pg_partition_root(t.oid)"
								"  AND p.oid <> t.oid"
								" LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace"
								" WHERE tn.nspname = $2 AND t.relname = $3 AND t.relkind = 'r'"
								"  AND NOT EXISTS (SELECT 1 FROM ingest.copy_item i WHERE i.migration_id = $1"
								"   AND i.nspname = $2 AND i.relname = $3)",
								4, t3, v3, NULL) > 0)
			ingest_event(m->id, "INFO", "ddl", ingest_qualified(o->relschema, o->relname),
						 "table created on the source: part of the migration, its rows follow in the stream",
						 NULL);
	}
	ingest_catalog_end();
}

/*
 * Tables of the migration the command made unlogged (CREATE UNLOGGED
 * TABLE, ALTER TABLE ... SET UNLOGGED): logical decoding carries none of
 * their rows from now on.  Under resync => 'at_cutover' they are copied
 * again at the stop; with untracked_tables => 'copy_only' a WARNING event
 * says their changes are not carried; otherwise the migration fails,
 * naming the table: never a table left silently empty or stale.
 */
static void
follow_unlogged(IngestMigration *m, IngestFilters *filters, DdlMessage *msg,
				XLogRecPtr final_lsn)
{
	ListCell   *lc;

	ingest_catalog_begin();
	foreach(lc, msg->objects)
	{
		DdlObject  *o = lfirst(lc);
		Oid			types[4] = {INT4OID, TEXTOID, TEXTOID, TEXTOID};
		Datum		vals[4];
		char	   *name;

		if (o->ignored || o->relname == NULL || o->relschema == NULL ||
			o->relkind != 'r' || !object_in_scope(filters, o))
			continue;
		vals[0] = Int32GetDatum(m->id);
		vals[1] = CStringGetTextDatum(o->relschema);
		vals[2] = CStringGetTextDatum(o->relname);
		vals[3] = CStringGetTextDatum("unlogged");
		if (ingest_catalog_exec("SELECT 1 FROM ingest.copy_item i"
								" JOIN pg_catalog.pg_namespace n ON n.nspname = i.nspname"
								" JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
								"  AND c.relname = i.relname AND c.relpersistence = 'u'"
								" WHERE i.migration_id = $1 AND i.nspname = $2 AND i.relname = $3"
								"  AND NOT EXISTS (SELECT 1 FROM ingest.resync_table r"
								"   WHERE r.migration_id = $1 AND r.nspname = $2 AND r.relname = $3)"
								"  AND $4 IS NOT NULL",
								4, types, vals, NULL) == 0)
			continue;
		name = ingest_qualified(o->relschema, o->relname);
		if (strcmp(m->resync, "at_cutover") == 0)
		{
			ingest_catalog_exec("INSERT INTO ingest.resync_table (migration_id, nspname, relname, reason)"
								" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
								4, types, vals, NULL);
			ingest_event(m->id, "INFO", "resync", name,
						 psprintf("table made unlogged on the source by %s at %X/%X: copied again at the stop (resync => 'at_cutover')",
								  msg->tag, LSN_FORMAT_ARGS(final_lsn)),
						 NULL);
		}
		else if (m->untracked_tables && strcmp(m->untracked_tables, "copy_only") == 0)
			ingest_event(m->id, "WARNING", "untracked", name,
						 psprintf("table made unlogged on the source by %s at %X/%X: its later changes are not carried (untracked_tables => 'copy_only')",
								  msg->tag, LSN_FORMAT_ARGS(final_lsn)),
						 NULL);
		else
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("table %s was made unlogged on the source by %s at %X/%X: logical decoding carries none of its rows",
							name, msg->tag, LSN_FORMAT_ARGS(final_lsn)),
					 errhint("Abort the migration and start it again with resync => 'at_cutover', or make the table logged on the source.")));
	}
	ingest_catalog_end();
}

/*
 * ingest_ddl_apply
 *		Apply a logical message of the migration's event trigger, in the
 *		applier's open transaction, where it stands in the stream (its
 *		source transaction committed at final_lsn).  Returns true when the
 *		target's schema may have changed: the caller forgets what it knows
 *		of the tables.  Messages of other prefixes are ignored.
 */
bool
ingest_ddl_apply(IngestMigration *m, IngestFilters *filters, W2JChange *c,
				 XLogRecPtr final_lsn)
{
	DdlMessage	msg;
	List	   *raw;
	ListCell   *lc;
	RawStmt    *chosen = NULL;
	int			k = 0;
	bool		any = false;
	bool		any_in = false;
	const char *plain;
	char	   *text;
	ErrorContextCallback callback;
	DdlErrorArg arg;
	MemoryContext outer = CurrentMemoryContext;
	char	   *before[3] = {NULL, NULL, NULL};
	IntoClause *into;
	char	   *into_nsp = NULL;
	Oid			save_userid;
	int			save_sec;

	if (c->prefix == NULL || c->content == NULL ||
		strcmp(c->prefix, ingest_ddl_prefix(m)) != 0)
		return false;
	if (!parse_message(m, c->content, c->xid, &msg))
	{
		ingest_event(m->id, "WARNING", "ddl", NULL,
					 psprintf("a logical message at %X/%X carries pg_ingest's prefix without its token's signature: ignored",
							  LSN_FORMAT_ARGS(c->lsn)),
					 "Someone on the source called pg_logical_emit_message() with this migration's prefix.");
		return false;
	}
	if (msg.tag == NULL || msg.query == NULL || msg.ordinal < 0 ||
		!command_tag_event_trigger_ok(GetCommandTagEnum(msg.tag)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a schema change message at %X/%X lacks its command",
						LSN_FORMAT_ARGS(c->lsn))));

	arg.tag = msg.tag;
	arg.lsn = final_lsn;
	arg.text = shown_text(msg.query);
	callback.callback = ddl_error_context;
	callback.arg = &arg;
	callback.previous = error_context_stack;
	error_context_stack = &callback;

	/* never replicated: the copy leaves subscriptions out too */
	if (strstr(msg.tag, "SUBSCRIPTION") != NULL)
	{
		ingest_event(m->id, "WARNING", "ddl", NULL,
					 psprintf("%s on the source at %X/%X is not replicated",
							  msg.tag, LSN_FORMAT_ARGS(final_lsn)),
					 shown_text(msg.query));
		error_context_stack = callback.previous;
		return false;
	}

	/*
	 * A command another one ran internally, concerning no object the
	 * trigger could name (REFRESH MATERIALIZED VIEW CONCURRENTLY's temporary
	 * table): nothing to replay, the command that ran it is replayed itself.
	 */
	if (msg.nested && msg.objects == NIL)
	{
		ingest_event(m->id, "INFO", "ddl", NULL,
					 psprintf("skipped %s at %X/%X: run inside another command, it concerns no object",
							  msg.tag, LSN_FORMAT_ARGS(final_lsn)),
					 shown_text(msg.query));
		error_context_stack = callback.previous;
		return false;
	}

	/* filters */
	foreach(lc, msg.objects)
	{
		DdlObject  *o = lfirst(lc);

		if (o->ignored)
			continue;
		any = true;
		if (object_in_scope(filters, o))
			any_in = true;
	}
	if (any && !any_in)
	{
		ingest_event(m->id, "INFO", "ddl", NULL,
					 psprintf("skipped %s at %X/%X: it concerns only objects the migration's filters leave out",
							  msg.tag, LSN_FORMAT_ARGS(final_lsn)),
					 shown_text(msg.query));
		error_context_stack = callback.previous;
		return false;
	}

	/*
	 * A table whose rows were copied under a later snapshot than the command
	 * (exported again during the copy), its definition being that of the
	 * first snapshot: the command applies to the definition (an index, a
	 * comment, a grant), but a change of its columns cannot be reconciled
	 * with rows copied after it.
	 */
	ingest_catalog_begin();
	foreach(lc, msg.objects)
	{
		DdlObject  *o = lfirst(lc);
		Oid			types[4] = {INT4OID, TEXTOID, TEXTOID, PG_LSNOID};
		Datum		vals[4];

		if (o->ignored || o->relname == NULL || strcmp(msg.tag, "ALTER TABLE") != 0)
			continue;
		vals[0] = Int32GetDatum(m->id);
		vals[1] = CStringGetTextDatum(o->relschema);
		vals[2] = CStringGetTextDatum(o->relname);
		vals[3] = LSNGetDatum(final_lsn);
		if (ingest_catalog_exec("SELECT 1 FROM ingest.copy_item WHERE migration_id = $1"
								" AND nspname = $2 AND relname = $3 AND sync_lsn > $4",
								4, types, vals, NULL) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s was copied under a snapshot taken after %s changed it at %X/%X",
							ingest_qualified(o->relschema, o->relname), msg.tag,
							LSN_FORMAT_ARGS(final_lsn)),
					 errdetail("A snapshot was exported again during the copy; the table's definition on the target is older than the command, its rows are not."),
					 errhint("Abort the migration and start it again.")));
	}
	/* a rewrite the copy may have seen as an empty table (not MVCC-safe) */
	foreach(lc, msg.rewritten)
	{
		DdlObject  *o = lfirst(lc);
		Oid			types[4] = {INT4OID, TEXTOID, TEXTOID, PG_LSNOID};
		Datum		vals[4];

		vals[0] = Int32GetDatum(m->id);
		vals[1] = CStringGetTextDatum(o->relschema);
		vals[2] = CStringGetTextDatum(o->relname);
		vals[3] = LSNGetDatum(final_lsn);
		if (ingest_catalog_exec("SELECT 1 FROM ingest.copy_item WHERE migration_id = $1"
								" AND nspname = $2 AND relname = $3 AND sync_lsn < $4"
								" GROUP BY nspname, relname"
								" HAVING bool_and(state = 'done') AND sum(rows_done) = 0",
								4, types, vals, NULL) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s was rewritten on the source by %s at %X/%X, and its copy read no rows",
							ingest_qualified(o->relschema, o->relname), msg.tag,
							LSN_FORMAT_ARGS(final_lsn)),
					 errdetail("A table rewrite is not MVCC-safe: a copy that starts after it, under the migration's older snapshot, sees the table empty."),
					 errhint("Abort the migration and start it again; run table-rewriting commands (ALTER COLUMN ... TYPE, ADD COLUMN with a volatile default) before or after the full load.")));
	}
	{
		SPITupleTable *tab;
		Oid			types[1] = {INT4OID};
		Datum		vals[1] = {Int32GetDatum(m->id)};

		tab = ingest_catalog_query("SELECT array_agg(c.oid)::text, array_agg(i.nspname)::text,"
								   " array_agg(i.relname)::text"
								   " FROM (SELECT DISTINCT nspname, relname FROM ingest.copy_item"
								   "       WHERE migration_id = $1) i"
								   " JOIN pg_catalog.pg_namespace n ON n.nspname = i.nspname"
								   " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
								   "  AND c.relname = i.relname", 1, types, vals, NULL);
		before[0] = dupstr(outer, ingest_getstr(tab, 0, 1));
		before[1] = dupstr(outer, ingest_getstr(tab, 0, 2));
		before[2] = dupstr(outer, ingest_getstr(tab, 0, 3));
	}
	ingest_catalog_end();

	/* the statement of the text that fired the trigger */
	raw = raw_parser(msg.query, RAW_PARSE_DEFAULT);
	/*
	 * A command run by a function, a procedure or a DO block: the ordinal-th
	 * statement of its tag in the text is another command (perhaps one that
	 * never ran on the source: "DO ... ; COMMIT; SELECT 1/0; ALTER ...").
	 */
	foreach(lc, msg.nested ? NIL : raw)
	{
		RawStmt    *rs = lfirst_node(RawStmt, lc);

		if (strcmp(statement_tag(rs->stmt), msg.tag) != 0)
			continue;
		if (k++ == msg.ordinal)
		{
			chosen = rs;
			break;
		}
	}
	/*
	 * REFRESH MATERIALIZED VIEW ... CONCURRENTLY runs DDL of its own on
	 * temporary tables (the new data, the differences), which fires the
	 * trigger; CREATE TABLE AS is emitted at its start, before the trigger
	 * can know the table is temporary.  Nothing to replay: the view is
	 * refreshed here at the stop (matview.c).
	 */
	if (chosen == NULL && raw != NIL)
	{
		bool		all_refresh = true;

		foreach(lc, raw)
			all_refresh &= IsA(lfirst_node(RawStmt, lc)->stmt, RefreshMatViewStmt);
		if (all_refresh)
		{
			error_context_stack = callback.previous;
			return false;
		}
	}
	if (chosen == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("schema change %s at %X/%X is not a statement of its query text",
						msg.tag, LSN_FORMAT_ARGS(final_lsn)),
				 errdetail("The command ran inside a function, a procedure or a DO block; pg_ingest replays statements as the source's session sent them."),
				 errhint("Apply the change on the target by hand, or use ddl => 'infer'.")));
	text = chosen->stmt_len > 0 ? pnstrdup(msg.query + chosen->stmt_location, chosen->stmt_len) :
		pstrdup(msg.query + chosen->stmt_location);
	arg.text = shown_text(text);

	/*
	 * CREATE TABLE AS and SELECT INTO are emitted at their start, before
	 * the rows they write: the table is made empty here, its rows follow.
	 */
	into = into_clause(chosen->stmt);
	if (into && into->rel->relpersistence == RELPERSISTENCE_TEMP)
	{
		error_context_stack = callback.previous;
		return false;
	}
	if (into && into->rel->schemaname)
	{
		DdlObject	o;

		memset(&o, 0, sizeof(o));
		o.relschema = into->rel->schemaname;
		o.relname = into->rel->relname;
		o.relkind = IsA(chosen->stmt, CreateTableAsStmt) &&
			((CreateTableAsStmt *) chosen->stmt)->objtype == OBJECT_MATVIEW ? 'm' : 'r';
		if (!object_in_scope(filters, &o))
		{
			ingest_event(m->id, "INFO", "ddl", ingest_qualified(o.relschema, o.relname),
						 psprintf("skipped %s at %X/%X: the migration's filters leave the table out",
								  msg.tag, LSN_FORMAT_ARGS(final_lsn)),
						 shown_text(text));
			error_context_stack = callback.previous;
			return false;
		}
	}
	if (into && !(IsA(chosen->stmt, CreateTableAsStmt) &&
				  ((CreateTableAsStmt *) chosen->stmt)->objtype == OBJECT_MATVIEW))
		into->skipData = true;
	else
		into = NULL;			/* a materialized view is no table of the migration */

	if (grant_on_own_objects(chosen->stmt))
	{
		error_context_stack = callback.previous;
		return false;
	}

	/* privileges on tables the filters leave out (so not here) */
	if ((filters->include_schemas || filters->exclude_schemas ||
		 filters->include_tables || filters->exclude_tables) &&
		grant_on_missing_relations(chosen->stmt, msg.search_path))
	{
		ingest_event(m->id, "INFO", "ddl", NULL,
					 psprintf("skipped %s at %X/%X: it names no table of the target, the migration's filters leave them out",
							  msg.tag, LSN_FORMAT_ARGS(final_lsn)),
					 shown_text(text));
		error_context_stack = callback.previous;
		return false;
	}

	plain = drop_concurrently(chosen->stmt);

	/*
	 * As the owner of what it concerns, as on the source, when that role is
	 * here and the migration's owner has its privileges (objects created
	 * get the same owner; expressions run with no more rights than there);
	 * otherwise as the migration's owner.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	if (msg.role)
	{
		Oid			roleid = get_role_oid(msg.role, true);

		if (OidIsValid(roleid) && roleid != save_userid &&
			has_privs_of_role(save_userid, roleid))
			SetUserIdAndSecContext(roleid, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	}
	execute_statement(chosen, msg.query, msg.search_path, into, &into_nsp);
	SetUserIdAndSecContext(save_userid, save_sec);
	if (into && into_nsp)
	{
		DdlObject  *o = palloc0(sizeof(DdlObject));

		o->relschema = into_nsp;
		o->relname = into->rel->relname;
		o->relkind = 'r';
		msg.objects = lappend(msg.objects, o);
	}
	follow_tables(m, filters, &msg, before[0], before[1], before[2], final_lsn);
	follow_unlogged(m, filters, &msg, final_lsn);

	ingest_event(m->id, "INFO", "ddl", NULL,
				 plain ?
				 psprintf("applied %s of %X/%X without CONCURRENTLY (%s cannot run inside the applier's transaction)",
						  msg.tag, LSN_FORMAT_ARGS(final_lsn), plain) :
				 psprintf("applied %s of %X/%X", msg.tag, LSN_FORMAT_ARGS(final_lsn)),
				 shown_text(text));
	error_context_stack = callback.previous;
	return true;
}
