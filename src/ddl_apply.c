/*-------------------------------------------------------------------------
 *
 * ddl_apply.c
 *	  The target's side of schema changes replicated through the event
 *	  trigger (ddl => 'replicate', ddl.c): a logical message checked and
 *	  parsed, its statement found in the query text and run here.
 *
 * The applier calls ingest_ddl_apply() where the message stands in its
 * source transaction, inside the target transaction that advances the
 * origin past it, so a command is applied exactly once.  A message that is
 * not JSON, not signed with the migration's token, not of the transaction
 * that holds it, or whose tag fires no event trigger is ignored with a
 * WARNING event (parse_message).  The query text is split with the
 * server's parser and the statement is the ordinal-th of its tag (a query
 * string of several statements fires the trigger once per command; a
 * command run inside a function or DO block is not a statement of the
 * text, so the trigger marks it "nested" from its PG_CONTEXT and it fails
 * the migration, named, rather than have another statement of the text
 * run in its place).  It runs with the source session's search_path,
 * through ProcessUtility, as the role owning on the source the first
 * object it concerns when that role exists here and the migration's owner
 * has its privileges (what it creates gets the same owner), else as the
 * migration's owner (the applier acts as it); CREATE INDEX CONCURRENTLY,
 * DROP INDEX CONCURRENTLY and DETACH PARTITION CONCURRENTLY run in their
 * plain form (with an event).  Filters apply: a command whose objects are
 * all left out is skipped with an event (ingest_ddl_object_in_scope,
 * ddl_follow.c).  Afterwards the migration's tables follow the command
 * (ddl_follow.c).
 *
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
 * command, its LSN and the error; resume retries it.  The command's text
 * is not shown when it may hold a password (shown_text).
 *
 * State: in the catalog, ingest.migration's ddl_token and the copy items'
 * sync LSNs and states (read); nothing in shared memory; the message and
 * its objects in the applier's change memory.
 *
 * Locking: none of its own; the statement takes the locks it takes, held
 * to the end of the applier's transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
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

#include "ddl_int.h"

static char *
dupstr(MemoryContext cxt, char *s)
{
	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

/*
 * The message's fields, through the server's jsonb, if it is signed with
 * the migration's token (see function_sql, ddl.c); false otherwise (not JSON,
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
		if (ingest_ddl_object_in_scope(filters, o))
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
		if (!ingest_ddl_object_in_scope(filters, &o))
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
	ingest_ddl_follow_tables(m, filters, &msg, before[0], before[1], before[2], final_lsn);
	ingest_ddl_follow_unlogged(m, filters, &msg, final_lsn);

	ingest_event(m->id, "INFO", "ddl", NULL,
				 plain ?
				 psprintf("applied %s of %X/%X without CONCURRENTLY (%s cannot run inside the applier's transaction)",
						  msg.tag, LSN_FORMAT_ARGS(final_lsn), plain) :
				 psprintf("applied %s of %X/%X", msg.tag, LSN_FORMAT_ARGS(final_lsn)),
				 shown_text(text));
	error_context_stack = callback.previous;
	return true;
}
