/*-------------------------------------------------------------------------
 *
 * preflight.c
 *	  ingest.preflight(source): every check a migration guide asks for
 *	  before a migration starts, as rows of PASS / WARN / FAIL.
 *
 * The checks run in a fixed order, one row each.  A source that cannot be
 * reached gives a single FAIL row (connectivity) and nothing else; a source
 * that goes away half way gives FAIL for the check in progress and for
 * those that could no longer run.  Nothing here raises an ERROR because of
 * the source: only bad calls (NULL, no privilege) and interrupts do.
 *
 * Rows also say what a migration will not carry: the UPDATEs and DELETEs
 * of tables without a key or replica identity, the changes of unlogged
 * tables (ingest.start refuses both in a CDC mode unless untracked_tables
 * => 'copy_only' or resync => 'at_cutover').  Large objects and the user
 * rows of extension configuration tables are carried (largeobject.c,
 * extconfig.c): their rows count them, and FAIL when the source user may
 * not read them as the copy will.
 *
 * The wal2json check really creates a temporary logical slot on the source
 * over a replication connection, peeks at it with the options the change
 * receiver uses, and drops it; a slot's creation waits for the source's
 * running transactions, so that wait is bounded by
 * pg_ingest.preflight_timeout.
 *
 * The checks of the target (this server) are preflight_target.c's; the
 * state of a call and the way a check reports are in preflight.h.
 *
 * State: the Preflight of the call (preflight.h): its source sessions and
 * the rows it returns; nothing in the catalog or shared memory.
 *
 * Locking: none beyond what SPI takes for the target's catalog queries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "conn.h"
#include "extconfig.h"
#include "pg_ingest.h"
#include "preflight.h"
#include "source.h"

PG_FUNCTION_INFO_V1(ingest_preflight);


static void check_connection(Preflight *pf);
static void check_version(Preflight *pf);
static void check_wal_level(Preflight *pf);
static void check_replication_privilege(Preflight *pf);
static void check_slots(Preflight *pf);
static void check_wal_senders(Preflight *pf);
static void check_wal_sender_timeout(Preflight *pf);
static void check_wal2json(Preflight *pf);
static void load_source_tables(Preflight *pf);
static void check_select_privileges(Preflight *pf);
static void check_replica_identity(Preflight *pf);
static void check_unlogged_tables(Preflight *pf);
static void check_not_carried(Preflight *pf);
static void check_extension_config_rows(Preflight *pf);
static void check_prepared_transactions(Preflight *pf);
static void check_leftover_slots(Preflight *pf);

/*
 * ingest.preflight(source text)
 *	RETURNS TABLE(check_name text, status text, detail text, hint text)
 */
Datum
ingest_preflight(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Preflight	pf;
	char	   *msg = NULL;
	char	   *hint = NULL;

	ingest_check_caller();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source connection string must not be null")));

	InitMaterializedSRF(fcinfo, 0);
	memset(&pf, 0, sizeof(pf));
	pf.store = rsinfo->setResult;
	pf.desc = rsinfo->setDesc;

	pf.info = ingest_conninfo_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									!superuser(), &msg, &hint);
	if (pf.info == NULL)
	{
		ingest_pf_emit(&pf, "source_connection", "FAIL", msg, hint);
		PG_RETURN_VOID();
	}

	PG_TRY();
	{
		check_connection(&pf);
		if (pf.conn != NULL)
		{
			check_version(&pf);
			check_wal_level(&pf);
			check_replication_privilege(&pf);
			check_slots(&pf);
			check_wal_senders(&pf);
			check_wal_sender_timeout(&pf);
			check_wal2json(&pf);
			load_source_tables(&pf);
			check_select_privileges(&pf);
			check_replica_identity(&pf);
			check_unlogged_tables(&pf);
			check_not_carried(&pf);
			check_prepared_transactions(&pf);
			check_leftover_slots(&pf);
			ingest_pf_check_target_workers(&pf);
			ingest_pf_check_target_extensions(&pf);
			ingest_pf_check_target_name_conflicts(&pf);
			/* distribute => a map for Citus, since 0.2.0 (citus.c) */
			if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
				ingest_pf_check_citus_map(&pf, PG_GETARG_DATUM(1));
		}
	}
	PG_FINALLY();
	{
		ingest_disconnect(pf.repl);
		ingest_disconnect(pf.conn);
	}
	PG_END_TRY();

	PG_RETURN_VOID();
}

static char *
qualified(const char *nsp, const char *rel)
{
	return psprintf("%s.%s", quote_identifier(nsp), quote_identifier(rel));
}

static void
check_connection(Preflight *pf)
{
	char	   *msg = NULL;
	PGresult   *res;

	pf->conn = ingest_connect(pf->info, INGEST_CONN_SQL, "pg_ingest preflight",
							  &msg);
	if (pf->conn == NULL)
	{
		ingest_pf_emit(pf, "source_connection", "FAIL", msg,
			 strncmp(msg, "password is required", 20) == 0 ?
			 "The source must check the password (md5 or scram-sha-256 in its pg_hba.conf): non-superusers may not rely on trust, peer or a password file of this server." :
			 "Check host, port, user, password and dbname, and that the source's pg_hba.conf admits this server.");
		return;
	}

	res = ingest_pf_source_query(pf, "source_connection",
					   "SELECT current_setting('server_version_num')::int,"
					   " current_setting('server_version'), current_user,"
					   " current_database(),"
					   " pg_catalog.pg_size_pretty(pg_catalog.pg_database_size(current_database()))");
	if (res == NULL)
	{
		ingest_disconnect(pf->conn);
		pf->conn = NULL;
		return;
	}
	pf->version = atoi(PQgetvalue(res, 0, 0));
	ingest_pf_emit(pf, "source_connection", "PASS",
		 psprintf("connected to database \"%s\" as user \"%s\": PostgreSQL %s, %s",
				  PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 2),
				  PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 4)),
		 NULL);
	PQclear(res);
}

static void
check_version(Preflight *pf)
{
	int			source_major = pf->version / 10000;
	int			target_major = PG_VERSION_NUM / 10000;

	if (pf->version < 100000)
		ingest_pf_emit(pf, "source_version", "FAIL",
			 psprintf("source runs PostgreSQL %d.%d; pg_ingest needs 10 or later",
					  pf->version / 10000, (pf->version / 100) % 100),
			 "Upgrade the source to a supported release first.");
	else if (source_major > target_major)
		ingest_pf_emit(pf, "source_version", "FAIL",
			 psprintf("source runs PostgreSQL %d, newer than this server's %d",
					  source_major, target_major),
			 "Migrate into a server of the same or a newer major version.");
	else
		ingest_pf_emit(pf, "source_version", "PASS",
			 psprintf("source major version %d, target %s", source_major,
					  PG_VERSION),
			 NULL);
}

static void
check_wal_level(Preflight *pf)
{
	PGresult   *res = ingest_pf_source_query(pf, "wal_level",
								   "SELECT current_setting('wal_level')");

	if (res == NULL)
		return;
	pf->wal_level = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (strcmp(pf->wal_level, "logical") == 0)
		ingest_pf_emit(pf, "wal_level", "PASS", "wal_level = logical", NULL);
	else
		ingest_pf_emit(pf, "wal_level", "FAIL",
			 psprintf("wal_level = %s; logical decoding needs logical", pf->wal_level),
			 "Set wal_level = logical on the source and restart it (Amazon RDS / Aurora: rds.logical_replication = 1).");
}

static void
check_replication_privilege(Preflight *pf)
{
	PGresult   *res;
	bool		super,
				repl,
				rds;
	char	   *user;

	res = ingest_pf_source_query(pf, "replication_privilege",
					   "SELECT r.rolsuper, r.rolreplication,"
					   " EXISTS (SELECT 1 FROM pg_catalog.pg_roles g"
					   "  WHERE g.rolname = 'rds_replication'"
					   "  AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')),"
					   " r.rolname"
					   " FROM pg_catalog.pg_roles r WHERE r.rolname = current_user");
	if (res == NULL)
		return;
	super = PQgetvalue(res, 0, 0)[0] == 't';
	repl = PQgetvalue(res, 0, 1)[0] == 't';
	rds = PQgetvalue(res, 0, 2)[0] == 't';
	user = pstrdup(PQgetvalue(res, 0, 3));
	PQclear(res);

	if (super)
		ingest_pf_emit(pf, "replication_privilege", "PASS",
			 psprintf("user \"%s\" is a superuser", user), NULL);
	else if (repl)
		ingest_pf_emit(pf, "replication_privilege", "PASS",
			 psprintf("user \"%s\" has REPLICATION", user), NULL);
	else if (rds)
		ingest_pf_emit(pf, "replication_privilege", "PASS",
			 psprintf("user \"%s\" is a member of rds_replication", user), NULL);
	else
		ingest_pf_emit(pf, "replication_privilege", "FAIL",
			 psprintf("user \"%s\" has neither REPLICATION nor superuser", user),
			 psprintf("ALTER ROLE %s REPLICATION; (Amazon RDS: GRANT rds_replication TO %s;)",
					  quote_identifier(user), quote_identifier(user)));
}

static void
check_slots(Preflight *pf)
{
	PGresult   *res;
	int			max,
				used,
				free_slots;

	res = ingest_pf_source_query(pf, "replication_slots",
					   "SELECT current_setting('max_replication_slots')::int,"
					   " (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int");
	if (res == NULL)
		return;
	max = atoi(PQgetvalue(res, 0, 0));
	used = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	free_slots = max - used;

	if (free_slots < 1)
		ingest_pf_emit(pf, "replication_slots", "FAIL",
			 psprintf("%d of max_replication_slots = %d in use, none free", used, max),
			 "Drop unused slots or raise max_replication_slots on the source (restart needed).");
	else if (free_slots < 2)
		ingest_pf_emit(pf, "replication_slots", "WARN",
			 psprintf("%d of max_replication_slots = %d in use, 1 free", used, max),
			 "A migration needs one slot, and a second, temporary one to resume after a restart: raise max_replication_slots.");
	else
		ingest_pf_emit(pf, "replication_slots", "PASS",
			 psprintf("%d of max_replication_slots = %d in use, %d free",
					  used, max, free_slots),
			 NULL);
}

static void
check_wal_senders(Preflight *pf)
{
	PGresult   *res;
	int			max,
				used;

	res = ingest_pf_source_query(pf, "wal_senders",
					   "SELECT current_setting('max_wal_senders')::int,"
					   " (SELECT count(*) FROM pg_catalog.pg_stat_replication)::int");
	if (res == NULL)
		return;
	max = atoi(PQgetvalue(res, 0, 0));
	used = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);

	if (max - used < 2)
		ingest_pf_emit(pf, "wal_senders", "FAIL",
			 psprintf("%d of max_wal_senders = %d in use, %d free; a migration needs 2",
					  used, max, Max(max - used, 0)),
			 "Raise max_wal_senders on the source (restart needed).");
	else
		ingest_pf_emit(pf, "wal_senders", "PASS",
			 psprintf("%d of max_wal_senders = %d in use, %d free",
					  used, max, max - used),
			 NULL);
}

static void
check_wal_sender_timeout(Preflight *pf)
{
	PGresult   *res;
	long		ms;

	res = ingest_pf_source_query(pf, "wal_sender_timeout",
					   "SELECT setting::bigint FROM pg_catalog.pg_settings"
					   " WHERE name = 'wal_sender_timeout'");
	if (res == NULL)
		return;
	ms = atol(PQgetvalue(res, 0, 0));
	PQclear(res);

	if (ms == 0 || ms >= 10000)
		ingest_pf_emit(pf, "wal_sender_timeout", "PASS",
			 ms == 0 ? "wal_sender_timeout = 0 (disabled)" :
			 psprintf("wal_sender_timeout = %ld ms", ms),
			 NULL);
	else
		ingest_pf_emit(pf, "wal_sender_timeout", "WARN",
			 psprintf("wal_sender_timeout = %ld ms, under 10 s", ms),
			 "ALTER SYSTEM SET wal_sender_timeout = '60s'; SELECT pg_reload_conf(); on the source.");
}

/*
 * check_wal2json
 *		Prove that logical decoding with wal2json works on the source.
 */
static void
check_wal2json(Preflight *pf)
{
	const char *check = "wal2json";
	const char *hint = "Install wal2json on the source (Debian: postgresql-NN-wal2json; managed services ship it) and set wal_level = logical.";
	char	   *slot;
	char	   *sql;
	char	   *msg = NULL;
	PGresult   *res;
	bool		timed_out;
	bool		old_plugin = false;
	int			attempt;

	if (pf->lost)
	{
		(void) ingest_pf_source_query(pf, check, NULL);
		return;
	}

	pf->repl = ingest_connect(pf->info, INGEST_CONN_REPLICATION,
							  "pg_ingest preflight", &msg);
	if (pf->repl == NULL)
	{
		ingest_pf_emit(pf, check, "FAIL",
			 psprintf("could not open a replication connection: %s", msg),
			 "The user needs REPLICATION, and the source's pg_hba.conf must admit it to this database.");
		return;
	}

	slot = psprintf("pg_ingest_check_%d_%ld", MyProcPid,
					(long) (GetCurrentTimestamp() % 1000000));

	/*
	 * Decoding with the receiver's options proves that the plugin loads and
	 * speaks format-version 2.  numeric-data-types-as-string came with
	 * wal2json 2.6; the change receiver does without it on older releases.
	 * An error drops the session's temporary slots, so a second try creates
	 * the slot again.
	 */
	for (attempt = 0; attempt < 2; attempt++)
	{
		sql = ingest_create_slot_sql(pf->repl, slot, true, false);
		res = ingest_query(pf->repl, sql, ingest_preflight_timeout * 1000L,
						   &timed_out);
		if (timed_out)
		{
			PQclear(res);
			ingest_pf_emit(pf, check, "FAIL",
				 psprintf("creating a test slot did not finish within %d s: it waits for every transaction running on the source to end",
						  ingest_preflight_timeout),
				 "Find them in pg_stat_activity (backend_xid) and pg_prepared_xacts on the source, end them, and check again; or raise pg_ingest.preflight_timeout.");
			return;
		}
		if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			msg = ingest_result_message(pf->repl, res, pf->info->password);

			/*
			 * Since 15.19 (and the matching releases of the other branches)
			 * a source lets REPLICATION users decode only with the plugins
			 * listed in output_plugin_libraries.
			 */
			if (strstr(msg, "output plugin") != NULL)
				hint = "Allow wal2json on the source: ALTER SYSTEM SET output_plugin_libraries = 'pgoutput', 'test_decoding', 'wal2json'; SELECT pg_reload_conf();";
			ingest_pf_emit(pf, check, "FAIL",
				 psprintf("could not create a logical slot with wal2json: %s", msg),
				 hint);
			PQclear(res);
			return;
		}
		PQclear(res);

		sql = psprintf("SELECT count(*) FROM pg_catalog.pg_logical_slot_peek_changes('%s', NULL, NULL,"
					   " 'format-version', '2', 'include-xids', '1',"
					   " 'include-timestamp', '1', 'include-lsn', '1'%s)",
					   slot,
					   attempt == 0 ? ", 'numeric-data-types-as-string', '1'" : "");
		res = ingest_query(pf->repl, sql, ingest_preflight_timeout * 1000L,
						   &timed_out);
		if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
			break;
		msg = timed_out ? "timed out" :
			ingest_result_message(pf->repl, res, pf->info->password);
		PQclear(res);
		if (attempt == 0 && strstr(msg, "numeric-data-types-as-string") != NULL)
		{
			old_plugin = true;
			continue;
		}
		ingest_pf_emit(pf, check, "FAIL",
			 psprintf("wal2json could not decode with format-version 2: %s", msg),
			 "pg_ingest needs wal2json 2.3 or later on the source.");
		return;
	}
	PQclear(res);

	res = ingest_query(pf->repl, psprintf("DROP_REPLICATION_SLOT %s", slot),
					   ingest_preflight_timeout * 1000L, NULL);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		ingest_pf_emit(pf, check, "WARN",
			 psprintf("wal2json works, but dropping the temporary test slot failed: %s",
					  ingest_result_message(pf->repl, res, pf->info->password)),
			 "The slot is temporary: the source drops it when this session ends.");
		PQclear(res);
		return;
	}
	PQclear(res);
	ingest_pf_emit(pf, check, "PASS",
		 old_plugin ?
		 "created, decoded from and dropped a temporary logical slot with wal2json (format-version 2; a release before 2.6, without numeric-data-types-as-string)" :
		 "created, decoded from and dropped a temporary logical slot with wal2json (format-version 2)",
		 NULL);
}

/*
 * load_source_tables
 *		The source's user tables and sequences, with what the next checks
 *		need to know of each.
 */
static void
load_source_tables(Preflight *pf)
{
	PGresult   *res;
	int			i;

	if (pf->lost)
		return;
	res = ingest_query(pf->conn,
					   "SELECT n.nspname, c.relname, c.relkind,"
					   "  pg_catalog.has_schema_privilege(n.oid, 'USAGE')"
					   "  AND pg_catalog.has_table_privilege(c.oid, 'SELECT'),"
					   "  c.relkind = 'r' AND (c.relreplident = 'n'"
					   "   OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
					   "       WHERE i.indrelid = c.oid AND i.indisprimary))"
					   "   OR (c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
					   "       WHERE i.indrelid = c.oid AND i.indisreplident))),"
					   "  c.relkind = 'r' AND c.relpersistence = 'u'"
					   " FROM pg_catalog.pg_class c"
					   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   " WHERE c.relkind IN ('r', 'p', 'S') AND c.relpersistence <> 't'"
					   "  AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
					   "  AND n.nspname !~ '^pg_(toast|temp_)'"
					   "  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
					   "   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
					   "   AND d.objid = c.oid AND d.deptype = 'e')"
					   " ORDER BY 1, 2",
					   -1, NULL);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		if (PQstatus(pf->conn) == CONNECTION_BAD)
			pf->lost = ingest_result_message(pf->conn, NULL, pf->info->password);
		else
			pf->lost = psprintf("could not list the source's tables: %s",
								ingest_result_message(pf->conn, res, pf->info->password));
		PQclear(res);
		return;
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		char	   *nsp = PQgetvalue(res, i, 0);
		char	   *rel = PQgetvalue(res, i, 1);
		char		kind = PQgetvalue(res, i, 2)[0];

		if (kind != 'S')
		{
			pf->tables_nsp = lappend(pf->tables_nsp, pstrdup(nsp));
			pf->tables_rel = lappend(pf->tables_rel, pstrdup(rel));
		}
		if (PQgetvalue(res, i, 3)[0] != 't')
			pf->unreadable = lappend(pf->unreadable, qualified(nsp, rel));
		if (PQgetvalue(res, i, 4)[0] == 't')
			pf->no_identity = lappend(pf->no_identity, qualified(nsp, rel));
		if (PQgetvalue(res, i, 5)[0] == 't')
			pf->unlogged = lappend(pf->unlogged, qualified(nsp, rel));
	}
	PQclear(res);
}

static void
check_select_privileges(Preflight *pf)
{
	if (pf->lost)
		(void) ingest_pf_source_query(pf, "select_privileges", NULL);
	else if (pf->unreadable != NIL)
		ingest_pf_emit(pf, "select_privileges", "FAIL",
			 psprintf("the source user cannot read %d table(s) or sequence(s): %s",
					  list_length(pf->unreadable),
					  ingest_pf_name_list(pf->unreadable, LIST_MAX)),
			 "GRANT USAGE ON SCHEMA ... and GRANT SELECT ON ALL TABLES IN SCHEMA ... / ALL SEQUENCES IN SCHEMA ... to the source user.");
	else
		ingest_pf_emit(pf, "select_privileges", "PASS",
			 psprintf("the source user can read all %d tables and their sequences",
					  list_length(pf->tables_nsp)),
			 NULL);
}

static void
check_replica_identity(Preflight *pf)
{
	if (pf->lost)
		(void) ingest_pf_source_query(pf, "replica_identity", NULL);
	else if (pf->no_identity != NIL)
		ingest_pf_emit(pf, "replica_identity", "WARN",
			 psprintf("%d table(s) have neither a primary key nor a replica identity, so their UPDATEs and DELETEs cannot be replicated; ingest.start refuses them in a CDC mode: %s",
					  list_length(pf->no_identity),
					  ingest_pf_name_list(pf->no_identity, LIST_MAX)),
			 psprintf("ALTER TABLE %s REPLICA IDENTITY FULL; (and likewise for each table listed) on the source, or add a primary key; or leave them out (exclude_tables); or pass resync => 'at_cutover' to have them copied again when the migration stops, or untracked_tables => 'copy_only' to copy them without their later UPDATEs and DELETEs.",
					  (char *) linitial(pf->no_identity)));
	else
		ingest_pf_emit(pf, "replica_identity", "PASS",
			 "every table has a primary key or a replica identity", NULL);
}

static void
check_unlogged_tables(Preflight *pf)
{
	if (pf->lost)
		(void) ingest_pf_source_query(pf, "unlogged_tables", NULL);
	else if (pf->unlogged != NIL)
		ingest_pf_emit(pf, "unlogged_tables", "WARN",
			 psprintf("%d unlogged table(s): they are copied, but logical decoding sees none of their later changes; ingest.start refuses them in a CDC mode: %s",
					  list_length(pf->unlogged), ingest_pf_name_list(pf->unlogged, LIST_MAX)),
			 psprintf("ALTER TABLE %s SET LOGGED; (and likewise for each table listed) on the source; or leave them out (exclude_tables); or pass resync => 'at_cutover' to have them copied again when the migration stops, or untracked_tables => 'copy_only' to copy them once.",
					  (char *) linitial(pf->unlogged)));
	else
		ingest_pf_emit(pf, "unlogged_tables", "PASS", "no unlogged tables", NULL);
}

/*
 * check_not_carried
 *		What the copy carries besides tables' rows, and whether the source
 *		user may read it: large objects (largeobject_check.c) and the user rows of
 *		extension configuration tables (extconfig.c).
 */
static void
check_not_carried(Preflight *pf)
{
	MemoryContext cxt = CurrentMemoryContext;
	const char *status = "FAIL";
	char	   *detail = NULL;
	char	   *hint = NULL;

	if (pf->lost)
	{
		(void) ingest_pf_source_query(pf, "large_objects", NULL);
		(void) ingest_pf_source_query(pf, "extension_config_rows", NULL);
		return;
	}
	PG_TRY();
	{
		ingest_lo_preflight(pf->conn, pf->info->password, &status, &detail, &hint);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		status = "FAIL";
		detail = edata->message;
	}
	PG_END_TRY();
	ingest_pf_emit(pf, "large_objects", status, detail, hint);
	check_extension_config_rows(pf);
}

/*
 * check_extension_config_rows
 *		The user rows of extension configuration tables, which the copy
 *		carries (extconfig.c): how many, or which table's cannot be read.
 */
static void
check_extension_config_rows(Preflight *pf)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *tables = NIL;
	List	   *with_rows = NIL;
	List	   *problems = NIL;
	int64		rows = 0;
	char	   *failed = NULL;
	ListCell   *lc;

	PG_TRY();
	{
		tables = ingest_extconfig_rows(pf->conn, pf->info->password, NIL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		failed = edata->message;
	}
	PG_END_TRY();
	if (failed)
	{
		ingest_pf_emit(pf, "extension_config_rows", "FAIL", failed, NULL);
		return;
	}
	foreach(lc, tables)
	{
		ExtConfigRows *e = lfirst(lc);

		if (e->problem)
			problems = lappend(problems, psprintf("%s (%s)", e->table, e->problem));
		else if (e->rows > 0)
		{
			rows += e->rows;
			with_rows = lappend(with_rows, psprintf("%s (%lld rows)", e->table,
													(long long) e->rows));
		}
	}
	if (problems != NIL)
		ingest_pf_emit(pf, "extension_config_rows", "FAIL",
			 psprintf("the user rows of %d extension configuration table(s) cannot be read as pg_dump reads them: %s",
					  list_length(problems), ingest_pf_name_list(problems, LIST_MAX)),
			 "The copy of such a table fails; leave it out with exclude_tables, or its extension with exclude_extensions.");
	else if (with_rows != NIL)
		ingest_pf_emit(pf, "extension_config_rows", "PASS",
			 psprintf("%lld user row(s) of %d extension configuration table(s) are copied, within each extension's condition: %s",
					  (long long) rows, list_length(with_rows), ingest_pf_name_list(with_rows, LIST_MAX)),
			 NULL);
	else
		ingest_pf_emit(pf, "extension_config_rows", "PASS",
			 "no extension configuration table holds rows added on the source", NULL);
}

static void
check_prepared_transactions(Preflight *pf)
{
	PGresult   *res;
	List	   *gids = NIL;
	int			i;

	res = ingest_pf_source_query(pf, "prepared_transactions",
					   "SELECT gid FROM pg_catalog.pg_prepared_xacts ORDER BY prepared");
	if (res == NULL)
		return;
	for (i = 0; i < PQntuples(res); i++)
		gids = lappend(gids, pstrdup(quote_literal_cstr(PQgetvalue(res, i, 0))));
	PQclear(res);

	if (gids != NIL)
		ingest_pf_emit(pf, "prepared_transactions", "WARN",
			 psprintf("%d prepared transaction(s) on the source: %s",
					  list_length(gids), ingest_pf_name_list(gids, LIST_MAX)),
			 "COMMIT PREPARED or ROLLBACK PREPARED them: creating the migration's slot waits until they end.");
	else
		ingest_pf_emit(pf, "prepared_transactions", "PASS",
			 "no prepared transactions", NULL);
}

static void
check_leftover_slots(Preflight *pf)
{
	PGresult   *res;
	List	   *inactive = NIL;
	List	   *active = NIL;
	int			i;

	res = ingest_pf_source_query(pf, "leftover_slots",
					   "SELECT slot_name, active FROM pg_catalog.pg_replication_slots"
					   " WHERE slot_name LIKE 'pg\\_ingest\\_%' AND NOT temporary"
					   " ORDER BY slot_name");
	if (res == NULL)
		return;
	for (i = 0; i < PQntuples(res); i++)
	{
		if (PQgetvalue(res, i, 1)[0] == 't')
			active = lappend(active, pstrdup(PQgetvalue(res, i, 0)));
		else
			inactive = lappend(inactive, pstrdup(PQgetvalue(res, i, 0)));
	}
	PQclear(res);

	if (inactive != NIL)
		ingest_pf_emit(pf, "leftover_slots", "WARN",
			 psprintf("%d inactive pg_ingest slot(s) on the source hold back its WAL: %s%s",
					  list_length(inactive), ingest_pf_name_list(inactive, LIST_MAX),
					  active ? psprintf(" (and %d in use)", list_length(active)) : ""),
			 psprintf("If no migration needs it: SELECT pg_drop_replication_slot(%s); on the source, or ingest.cleanup() on the target that created it.",
					  quote_literal_cstr(linitial(inactive))));
	else if (active != NIL)
		ingest_pf_emit(pf, "leftover_slots", "PASS",
			 psprintf("no leftover slots; %d pg_ingest slot(s) in use by running migrations: %s",
					  list_length(active), ingest_pf_name_list(active, LIST_MAX)),
			 NULL);
	else
		ingest_pf_emit(pf, "leftover_slots", "PASS", "no pg_ingest replication slots", NULL);
}
