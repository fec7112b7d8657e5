/*-------------------------------------------------------------------------
 *
 * schema.c
 *	  The schema of a migration as items: the SQL pg_dump wrote (dump.c) is
 *	  split by the server's raw parser into statements, each of which
 *	  becomes a schema item of a stage; items.c stores and runs them.
 *
 * Post-data statements are classified into stages so that the slow ones run
 * in parallel on the index workers as soon as they can:
 *	1  CREATE INDEX, PRIMARY KEY / UNIQUE (on a table of 64 MB or more
 *	   rewritten as CREATE UNIQUE INDEX, so that the other index builds of
 *	   the table run beside it; on a smaller one, the dump's single
 *	   statement, one item instead of two), exclusion constraints: when
 *	   their table is copied;
 *	2  ADD CONSTRAINT ... USING INDEX, constraints of partitioned tables,
 *	   then ANALYZE: when the table's stage-1 items are done;
 *	3  ALTER INDEX ... ATTACH PARTITION: when stages 1-2 are done;
 *	4  foreign keys and separately dumped checks: when 1-3 are done;
 *	5  everything else (triggers, rules, policies, comments...), then
 *	   REFRESH MATERIALIZED VIEW and setval, one at a time in dump order.
 * Pre-data statements are stage 0, run in dump order.
 * pg_dump's SET statements are not items: each item carries the SETs in
 * force where it stood in the dump (its prelude) and runs them first, so
 * items can run in any session and after a restart.
 *
 * pg_dump's CREATE SCHEMA public (written when include_schemas names it)
 * becomes CREATE SCHEMA IF NOT EXISTS public: every database has it.
 * pg_ingest's own objects on the source (schema _pg_ingest and the event
 * triggers of migrations, ddl.c) are left out of the dump.
 *
 * The statements of objects that depend on relations the filters leave
 * out (a view over an excluded table, a foreign key to it...) are not run:
 * each such object is recorded once as a WARNING event (depend.c).
 *
 * State: none; the items it returns are stored by items.c.
 *
 * Locking: none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/builtins.h"

#include "depend.h"
#include "ddl.h"
#include "schema.h"

/* tables from this size get their keys as an index build and a constraint */
#define SPLIT_KEY_MIN_BYTES ((int64) 64 * 1024 * 1024)

/* pg_dump's psql meta-commands (\restrict, \unrestrict) are not SQL. */
static char *
strip_meta_commands(const char *dump)
{
	StringInfoData buf;
	const char *p = dump;

	initStringInfo(&buf);
	while (*p)
	{
		const char *eol = strchr(p, '\n');
		size_t		len = eol ? (size_t) (eol - p + 1) : strlen(p);

		if (strncmp(p, "\\restrict ", 10) == 0 || strncmp(p, "\\unrestrict ", 12) == 0)
			appendStringInfoChar(&buf, '\n');	/* keep locations honest */
		else
			appendBinaryStringInfo(&buf, p, len);
		p += len;
	}
	return buf.data;
}

/* The statement's text without pg_dump's leading comment lines. */
static char *
statement_text(const char *sql, int location, int len)
{
	const char *p = sql + location;
	const char *end = len > 0 ? p + len : p + strlen(p);

	for (;;)
	{
		while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
			p++;
		if (p + 1 < end && p[0] == '-' && p[1] == '-')
		{
			while (p < end && *p != '\n')
				p++;
			continue;
		}
		break;
	}
	return pnstrdup(p, end - p);
}

/* SET statements in force, by name, in the order they came. */
typedef struct Setting
{
	char	   *name;
	char	   *text;
} Setting;

static char *
setting_name(Node *stmt)
{
	if (IsA(stmt, VariableSetStmt))
	{
		VariableSetStmt *vs = (VariableSetStmt *) stmt;

		return vs->name ? vs->name : "";
	}
	if (IsA(stmt, SelectStmt))
	{
		SelectStmt *sel = (SelectStmt *) stmt;
		ResTarget  *rt;
		FuncCall   *fc;

		if (list_length(sel->targetList) != 1 || sel->fromClause != NIL)
			return NULL;
		rt = linitial(sel->targetList);
		if (!IsA(rt->val, FuncCall))
			return NULL;
		fc = (FuncCall *) rt->val;
		if (strcmp(strVal(llast(fc->funcname)), "set_config") != 0 ||
			list_length(fc->args) != 3 || !IsA(linitial(fc->args), A_Const))
			return NULL;
		return psprintf("set_config %s",
						strVal(&((A_Const *) linitial(fc->args))->val));
	}
	return NULL;
}

static char *
prelude_text(List *settings)
{
	StringInfoData buf;
	ListCell   *lc;

	if (settings == NIL)
		return NULL;
	initStringInfo(&buf);
	foreach(lc, settings)
		appendStringInfo(&buf, "%s;\n", ((Setting *) lfirst(lc))->text);
	return buf.data;
}

static SourceRel *
find_rel(List *rels, const char *nspname, const char *relname)
{
	if (nspname == NULL || relname == NULL)
		return NULL;
	return ingest_find_source_rel(rels, nspname, relname);
}

static bool
extension_excluded(SplitContext *ctx, const char *name)
{
	ListCell   *lc;

	if (strcmp(name, "pg_ingest") == 0)
		return true;
	foreach(lc, ctx->exclude_extensions)
		if (strcmp(lfirst(lc), name) == 0)
			return true;
	return false;
}

static SchemaItem *
new_item(int stage, const char *kind, RangeVar *rel, List *rels,
		 char *prelude, char *statement)
{
	SchemaItem *it = palloc0(sizeof(SchemaItem));
	SourceRel  *r;

	it->stage = stage;
	it->kind = kind;
	if (rel)
	{
		it->nspname = rel->schemaname ? pstrdup(rel->schemaname) : NULL;
		it->relname = pstrdup(rel->relname);
	}
	r = find_rel(rels, it->nspname, it->relname);
	it->cost = r ? r->bytes_table : 0;
	it->prelude = prelude;
	it->statement = statement;
	return it;
}

/*
 * Rewrite ADD CONSTRAINT ... PRIMARY KEY / UNIQUE (cols) of a plain table
 * as CREATE UNIQUE INDEX (stage 1, in parallel with the table's other
 * indexes) plus ADD CONSTRAINT ... USING INDEX (stage 2, instant).  Only
 * the plain forms: no INCLUDE, WITH, NULLS NOT DISTINCT or DEFERRABLE.
 */
static bool
split_key_constraint(AlterTableStmt *at, Constraint *c, List *rels,
					 char *prelude, List **items)
{
	StringInfoData idx;
	StringInfoData con;
	ListCell   *lc;
	char	   *table;
	bool		first = true;
	SourceRel  *r;

	if (c->conname == NULL || c->keys == NIL || c->including != NIL ||
		c->options != NIL || c->nulls_not_distinct || c->deferrable ||
		c->indexname != NULL || at->relation->schemaname == NULL)
		return false;

	/*
	 * A small table's key is built in the one statement of the dump: two
	 * items would cost two claims and two transactions for a build of a few
	 * milliseconds, and nothing else needs to run beside it.
	 */
	r = find_rel(rels, at->relation->schemaname, at->relation->relname);
	if (r == NULL || r->bytes_table < SPLIT_KEY_MIN_BYTES)
		return false;

	table = psprintf("%s.%s", quote_identifier(at->relation->schemaname),
					 quote_identifier(at->relation->relname));
	initStringInfo(&idx);
	appendStringInfo(&idx, "CREATE UNIQUE INDEX %s ON %s USING btree (",
					 quote_identifier(c->conname), table);
	foreach(lc, c->keys)
	{
		appendStringInfo(&idx, "%s%s", first ? "" : ", ",
						 quote_identifier(strVal(lfirst(lc))));
		first = false;
	}
	appendStringInfoChar(&idx, ')');
	if (c->indexspace)
		appendStringInfo(&idx, " TABLESPACE %s", quote_identifier(c->indexspace));

	initStringInfo(&con);
	appendStringInfo(&con, "ALTER TABLE ONLY %s ADD CONSTRAINT %s %s USING INDEX %s",
					 table, quote_identifier(c->conname),
					 c->contype == CONSTR_PRIMARY ? "PRIMARY KEY" : "UNIQUE",
					 quote_identifier(c->conname));

	*items = lappend(*items, new_item(STAGE_INDEX,
									  c->contype == CONSTR_PRIMARY ? "primary key" : "unique",
									  at->relation, rels, prelude, idx.data));
	*items = lappend(*items, new_item(STAGE_CONSTRAINT, "constraint",
									  at->relation, rels, prelude, con.data));
	return true;
}

/* Classify one post-data statement; append its item(s). */
static void
classify_post_data(Node *stmt, char *text, char *prelude, List *rels,
				   List **items)
{
	if (IsA(stmt, IndexStmt))
	{
		IndexStmt  *is = (IndexStmt *) stmt;

		*items = lappend(*items, new_item(STAGE_INDEX, "index", is->relation,
										  rels, prelude, text));
		return;
	}
	if (IsA(stmt, AlterTableStmt))
	{
		AlterTableStmt *at = (AlterTableStmt *) stmt;
		AlterTableCmd *cmd = list_length(at->cmds) == 1 ?
			(AlterTableCmd *) linitial(at->cmds) : NULL;

		if (cmd && at->objtype == OBJECT_INDEX && cmd->subtype == AT_AttachPartition)
		{
			*items = lappend(*items, new_item(STAGE_ATTACH, "attach partition",
											  NULL, rels, prelude, text));
			return;
		}
		if (cmd && at->objtype == OBJECT_TABLE && cmd->subtype == AT_AddConstraint &&
			IsA(cmd->def, Constraint))
		{
			Constraint *c = (Constraint *) cmd->def;
			SourceRel  *r = find_rel(rels, at->relation->schemaname,
									 at->relation->relname);
			bool		partitioned = r && r->relkind == 'p';

			switch (c->contype)
			{
				case CONSTR_PRIMARY:
				case CONSTR_UNIQUE:
					if (partitioned)
						*items = lappend(*items,
										 new_item(STAGE_CONSTRAINT,
												  c->contype == CONSTR_PRIMARY ? "primary key" : "unique",
												  at->relation, rels, prelude, text));
					else if (!split_key_constraint(at, c, rels, prelude, items))
						*items = lappend(*items,
										 new_item(STAGE_INDEX,
												  c->contype == CONSTR_PRIMARY ? "primary key" : "unique",
												  at->relation, rels, prelude, text));
					return;
				case CONSTR_EXCLUSION:
					*items = lappend(*items, new_item(partitioned ? STAGE_CONSTRAINT : STAGE_INDEX,
													  "exclusion", at->relation, rels,
													  prelude, text));
					return;
				case CONSTR_FOREIGN:
					*items = lappend(*items, new_item(STAGE_FOREIGN_KEY, "foreign key",
													  at->relation, rels, prelude, text));
					return;
				case CONSTR_CHECK:
					*items = lappend(*items, new_item(STAGE_FOREIGN_KEY, "check",
													  at->relation, rels, prelude, text));
					return;
				default:
					break;
			}
		}
	}
	*items = lappend(*items, new_item(STAGE_LAST, GetCommandTagName(CreateCommandTag(stmt)),
									  NULL, rels, prelude, text));
}

/*
 * ingest_split_dump
 *		Split a pg_dump section into schema items.
 *
 * Pre-data statements keep their order (stage 0); post-data statements are
 * classified.  CREATE EXTENSION and COMMENT ON EXTENSION of excluded
 * extensions (and of pg_ingest itself) are left out, with an event.
 */
List *
ingest_split_dump(const char *dump, bool post_data, SplitContext *ctx)
{
	char	   *sql = strip_meta_commands(dump);
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	List	   *settings = NIL;
	char	   *prelude = NULL;
	List	   *items = NIL;
	ListCell   *lc;
	DumpEntry	entry;

	memset(&entry, 0, sizeof(entry));
	foreach(lc, raw)
	{
		RawStmt    *rs = lfirst_node(RawStmt, lc);
		Node	   *stmt = rs->stmt;
		char	   *text = statement_text(sql, rs->stmt_location, rs->stmt_len);
		char	   *name = setting_name(stmt);
		LeftOutDep *dep;

		/* the pg_dump entry this statement belongs to (depend.c) */
		ingest_dump_entry_update(&entry, sql + rs->stmt_location, rs->stmt_len);

		if (name != NULL)
		{
			ListCell   *lc2;
			Setting    *s = NULL;

			foreach(lc2, settings)
				if (strcmp(((Setting *) lfirst(lc2))->name, name) == 0)
					s = lfirst(lc2);
			if (s == NULL)
			{
				s = palloc(sizeof(Setting));
				s->name = name;
				settings = lappend(settings, s);
			}
			s->text = text;
			prelude = prelude_text(settings);
			continue;
		}

		/* an object that depends on a relation the filters leave out */
		dep = ingest_left_out_match(ctx->left_out, &entry);
		if (dep != NULL)
		{
			ingest_left_out_skip(ctx->migration_id, dep, text);
			continue;
		}

		if ((IsA(stmt, CreateExtensionStmt) &&
			 extension_excluded(ctx, ((CreateExtensionStmt *) stmt)->extname)) ||
			(IsA(stmt, CommentStmt) &&
			 ((CommentStmt *) stmt)->objtype == OBJECT_EXTENSION &&
			 extension_excluded(ctx, strVal(((CommentStmt *) stmt)->object))))
		{
			ingest_event(ctx->migration_id, "INFO", "schema", NULL,
						 "statement left out: the extension is excluded",
						 text);
			continue;
		}

		/* the event triggers of pg_ingest's migrations (ddl.c) */
		if (ingest_ddl_is_own_statement(stmt))
			continue;

		if (IsA(stmt, CreateTableAsStmt) &&
			((CreateTableAsStmt *) stmt)->objtype == OBJECT_MATVIEW)
		{
			RangeVar   *rv = ((CreateTableAsStmt *) stmt)->into->rel;

			ctx->matviews = lappend(ctx->matviews,
									rv->schemaname ?
									ingest_qualified(rv->schemaname, rv->relname) :
									pstrdup(quote_identifier(rv->relname)));
		}

		/*
		 * pg_dump writes CREATE SCHEMA public when asked for that schema by
		 * name (include_schemas), though every database has it: create it
		 * only if this one lacks it.
		 */
		if (IsA(stmt, CreateSchemaStmt) &&
			((CreateSchemaStmt *) stmt)->schemaname != NULL &&
			strcmp(((CreateSchemaStmt *) stmt)->schemaname, "public") == 0 &&
			((CreateSchemaStmt *) stmt)->schemaElts == NIL &&
			((CreateSchemaStmt *) stmt)->authrole == NULL)
			text = pstrdup("CREATE SCHEMA IF NOT EXISTS public");

		if (post_data)
			classify_post_data(stmt, text, prelude, ctx->rels, &items);
		else
			items = lappend(items, new_item(STAGE_PRE_DATA,
											GetCommandTagName(CreateCommandTag(stmt)),
											NULL, ctx->rels, prelude, text));
	}
	return items;
}
