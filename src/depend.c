/*-------------------------------------------------------------------------
 *
 * depend.c
 *	  The objects of the source that depend on relations the migration's
 *	  filters leave out (include_tables, exclude_tables, include_schemas,
 *	  exclude_schemas): views, materialized views, functions, types and
 *	  domains that use such a relation or its row type, foreign keys to it,
 *	  triggers, rules, policies and indexes of those, and so on down.
 *	  pg_dump still writes their statements (it leaves out only the
 *	  relations and what belongs to them); running them would fail, one
 *	  ERROR after the other.  Instead schema.c skips every statement of
 *	  such an object, and the object is recorded once, as a WARNING event
 *	  of kind 'skipped': "skipped: depends on left-out table X".
 *
 * The same goes for objects that depend on the types and functions of the
 * schemas the filters leave out (not an extension's: those come with
 * CREATE EXTENSION): "skipped: depends on left-out type X".
 *
 * The dependencies come from the source's pg_depend, read in the
 * migration's snapshot: from each left-out relation (type, function), every object that
 * depends on it (normal, automatic or internal dependency) and on those in
 * turn; an object that is an internal part of another (a view's _RETURN
 * rule, a constraint's index) stands for the whole.  The walk stops at
 * tables, sequences and foreign tables: those in scope are copied whatever
 * depends on what (a sequence a table in scope uses stays, source.c).
 * Each object found is named as pg_dump's table of contents names it (the
 * "-- Name: ...; Type: ...; Schema: ..." header before its statements), and
 * schema.c matches the headers of the dump; a COMMENT or SECURITY LABEL
 * entry goes with the entry before it (pg_dump writes them right after
 * their object), an ACL entry is matched by its own name.
 *
 * State: none outside the caller's memory but the events in the catalog,
 * which say whether an object was already recorded (pre-data and
 * post-data are split apart, and again after a restart).
 *
 * Locking: none; queries on a source connection.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"

#include "conn.h"
#include "depend.h"
#include "pg_ingest.h"
#include "source.h"

#define DEPEND_MAX_DEPTH 64
#define STATEMENT_IN_EVENT_MAX 4000

/* Append one oid to an array literal ({1,2,3}). */
static void
add_oid(StringInfo buf, const char *oid)
{
	appendStringInfo(buf, "%s%s", buf->len > 1 ? "," : "", oid);
}

/*
 * ingest_left_out_dependents
 *		The objects that depend on relations of rels that are not in scope,
 *		as LeftOutDep.  Runs in the connection's transaction (the
 *		snapshot).  NIL when nothing is left out.
 */
List *
ingest_left_out_dependents(PGconn *conn, List *rels, IngestFilters *filters,
						   const char *password)
{
	StringInfoData names;
	StringInfoData schemas;
	StringInfoData cls,
				obj,
				seed;
	StringInfoData all_cls,
				all_obj,
				all_seed;
	PGresult   *res;
	List	   *out = NIL;
	List	   *seeds = NIL;	/* descriptions, by seed number */
	HTAB	   *seen;
	HASHCTL		ctl;
	ListCell   *lc;
	int			depth;
	int			i;

	/* the relations left out, as (schema, name) pairs */
	initStringInfo(&names);
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);

		/* an excluded extension's configuration table is not the user's */
		if (r->in_scope || r->extname != NULL)
			continue;
		appendStringInfo(&names, "%s(%s, %s)", names.len ? ", " : "",
						 quote_literal_cstr(r->nspname), quote_literal_cstr(r->relname));
	}
	/* the schemas left out, whose types and functions pg_dump leaves out too */
	initStringInfo(&schemas);
	if (filters->include_schemas != NIL || filters->exclude_schemas != NIL)
	{
		foreach(lc, ingest_source_schemas(conn, password))
		{
			char	   *nspname = lfirst(lc);

			if (strcmp(nspname, "pg_catalog") == 0 ||
				strcmp(nspname, "information_schema") == 0 ||
				strncmp(nspname, "pg_toast", 8) == 0 ||
				strncmp(nspname, "pg_temp_", 8) == 0 ||
				ingest_schema_in_scope(filters, nspname))
				continue;
			appendStringInfo(&schemas, "%s%s", schemas.len ? ", " : "",
							 quote_literal_cstr(nspname));
		}
	}
	if (names.len == 0 && schemas.len == 0)
		return NIL;

	/* "classid/objid" of the objects met */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = 32;
	ctl.entrysize = 32;
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("pg_ingest left-out dependencies", 256, &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	/*
	 * The walk starts at the left-out relations, and at the types and
	 * functions of the left-out schemas (not an extension's: pg_dump's
	 * CREATE EXTENSION makes those).
	 */
	initStringInfo(&cls);
	initStringInfo(&obj);
	initStringInfo(&seed);
	appendStringInfoChar(&cls, '{');
	appendStringInfoChar(&obj, '{');
	appendStringInfoChar(&seed, '{');
	res = ingest_exec(conn,
					  psprintf("SELECT s.classid, s.objid, pg_catalog.pg_describe_object(s.classid, s.objid, 0)"
							   " FROM ("
							   "  SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, c.oid"
							   "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							   "  JOIN (VALUES %s) AS v(nspname, relname)"
							   "   ON n.nspname = v.nspname::pg_catalog.name AND c.relname = v.relname::pg_catalog.name"
							   "  UNION ALL"
							   "  SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, t.oid"
							   "  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
							   "  WHERE n.nspname IN (%s)"
							   "  AND (t.typrelid = 0 OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
							   "   WHERE c.oid = t.typrelid AND c.relkind = 'c'))"
							   "  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)"
							   "  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e"
							   "   WHERE e.classid = 'pg_catalog.pg_type'::pg_catalog.regclass"
							   "   AND e.objid = t.oid AND e.deptype = 'e')"
							   "  UNION ALL"
							   "  SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid, p.oid"
							   "  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
							   "  WHERE n.nspname IN (%s)"
							   "  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e"
							   "   WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass"
							   "   AND e.objid = p.oid AND e.deptype = 'e')"
							   " ) AS s(classid, objid) ORDER BY 3",
							   names.len ? names.data : "(NULL::pg_catalog.text, NULL::pg_catalog.text)",
							   schemas.len ? schemas.data : "NULL",
							   schemas.len ? schemas.data : "NULL"),
					  PGRES_TUPLES_OK, "find the left-out relations", password);
	for (i = 0; i < PQntuples(res); i++)
	{
		char		key[32];

		add_oid(&cls, PQgetvalue(res, i, 0));
		add_oid(&obj, PQgetvalue(res, i, 1));
		add_oid(&seed, psprintf("%d", i));
		seeds = lappend(seeds, pstrdup(PQgetvalue(res, i, 2)));
		snprintf(key, sizeof(key), "%s/%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
		(void) hash_search(seen, key, HASH_ENTER, NULL);
	}
	PQclear(res);

	initStringInfo(&all_cls);
	initStringInfo(&all_obj);
	initStringInfo(&all_seed);
	appendStringInfoChar(&all_cls, '{');
	appendStringInfoChar(&all_obj, '{');
	appendStringInfoChar(&all_seed, '{');

	for (depth = 0; depth < DEPEND_MAX_DEPTH && cls.len > 1; depth++)
	{
		char	   *frontier;

		appendStringInfoChar(&cls, '}');
		appendStringInfoChar(&obj, '}');
		appendStringInfoChar(&seed, '}');
		frontier = psprintf("ROWS FROM (pg_catalog.unnest(%s::pg_catalog.oid[]), pg_catalog.unnest(%s::pg_catalog.oid[]),"
							" pg_catalog.unnest(%s::pg_catalog.oid[])) AS f(classid, objid, seed)",
							quote_literal_cstr(cls.data), quote_literal_cstr(obj.data),
							quote_literal_cstr(seed.data));
		res = ingest_exec(conn,
						  psprintf("SELECT DISTINCT ON (x.classid, x.objid) x.classid, x.objid, x.seed FROM ("
								   " SELECT d.classid, d.objid, f.seed FROM %s"
								   "  JOIN pg_catalog.pg_depend d ON d.refclassid = f.classid"
								   "  AND d.refobjid = f.objid AND d.deptype IN ('n', 'a', 'i')"
								   " UNION ALL"
								   " SELECT d.refclassid, d.refobjid, f.seed FROM %s"
								   "  JOIN pg_catalog.pg_depend d ON d.classid = f.classid"
								   "  AND d.objid = f.objid AND d.deptype = 'i') x"
								   " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
								   "  WHERE x.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
								   "  AND c.oid = x.objid AND c.relkind IN ('r', 'p', 'S', 'f', 't'))"
								   " ORDER BY 1, 2, 3",
								   frontier, frontier),
						  PGRES_TUPLES_OK, "follow the dependencies on left-out relations",
						  password);
		resetStringInfo(&cls);
		resetStringInfo(&obj);
		resetStringInfo(&seed);
		appendStringInfoChar(&cls, '{');
		appendStringInfoChar(&obj, '{');
		appendStringInfoChar(&seed, '{');
		for (i = 0; i < PQntuples(res); i++)
		{
			char		key[32];
			bool		found;

			snprintf(key, sizeof(key), "%s/%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
			(void) hash_search(seen, key, HASH_ENTER, &found);
			if (found)
				continue;
			add_oid(&cls, PQgetvalue(res, i, 0));
			add_oid(&obj, PQgetvalue(res, i, 1));
			add_oid(&seed, PQgetvalue(res, i, 2));
			add_oid(&all_cls, PQgetvalue(res, i, 0));
			add_oid(&all_obj, PQgetvalue(res, i, 1));
			add_oid(&all_seed, PQgetvalue(res, i, 2));
		}
		PQclear(res);
	}
	hash_destroy(seen);
	if (all_cls.len == 1)
		return NIL;
	appendStringInfoChar(&all_cls, '}');
	appendStringInfoChar(&all_obj, '}');
	appendStringInfoChar(&all_seed, '}');

	/* each object as pg_dump's table of contents names it */
	res = ingest_exec(conn,
					  psprintf("WITH f(classid, objid, seed) AS (SELECT * FROM ROWS FROM ("
							   "  pg_catalog.unnest(%s::pg_catalog.oid[]), pg_catalog.unnest(%s::pg_catalog.oid[]),"
							   "  pg_catalog.unnest(%s::pg_catalog.oid[])))"
							   " SELECT o.type, o.nsp, o.tag, o.acl, o.col,"
							   "  pg_catalog.pg_describe_object(o.classid, o.objid, 0) AS descr, o.seed"
							   " FROM ("
							   "  SELECT f.classid, f.objid, f.seed,"
							   "   CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'"
							   "   WHEN 'i' THEN 'INDEX' WHEN 'I' THEN 'INDEX' ELSE 'TYPE' END,"
							   "   n.nspname, c.relname::text,"
							   "   CASE WHEN c.relkind = 'c' THEN 'TYPE ' ELSE 'TABLE ' END || pg_catalog.quote_ident(c.relname),"
							   "   'COLUMN ' || pg_catalog.quote_ident(c.relname) || '.'"
							   "  FROM f JOIN pg_catalog.pg_class c ON c.oid = f.objid"
							   "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							   "  WHERE f.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
							   "  AND c.relkind IN ('v', 'm', 'i', 'I', 'c')"
							   "  UNION ALL"
							   "  SELECT f.classid, f.objid, f.seed,"
							   "   CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,"
							   "   n.nspname,"
							   "   p.proname || '(' || CASE WHEN p.prokind = 'a' AND p.pronargs = 0 THEN '*' ELSE"
							   "    COALESCE((SELECT pg_catalog.string_agg(pg_catalog.format_type(a.t, NULL), ', ' ORDER BY a.i)"
							   "     FROM pg_catalog.unnest(p.proargtypes::pg_catalog.oid[]) WITH ORDINALITY AS a(t, i)), '') END || ')',"
							   "   CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' WHEN 'a' THEN 'AGGREGATE ' ELSE 'FUNCTION ' END"
							   "    || pg_catalog.quote_ident(p.proname) || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',"
							   "   NULL"
							   "  FROM f JOIN pg_catalog.pg_proc p ON p.oid = f.objid"
							   "  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
							   "  WHERE f.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass"
							   "  UNION ALL"
							   "  SELECT f.classid, f.objid, f.seed,"
							   "   'DOMAIN', n.nspname, t.typname::text, 'DOMAIN ' || pg_catalog.quote_ident(t.typname), NULL"
							   "  FROM f JOIN pg_catalog.pg_type t ON t.oid = f.objid"
							   "  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
							   "  WHERE f.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.typtype = 'd'"
							   "  UNION ALL"
							   "  SELECT f.classid, f.objid, f.seed,"
							   "   CASE con.contype WHEN 'f' THEN 'FK CONSTRAINT' WHEN 'c' THEN 'CHECK CONSTRAINT' ELSE 'CONSTRAINT' END,"
							   "   n.nspname, c.relname || ' ' || con.conname, NULL, NULL"
							   "  FROM f JOIN pg_catalog.pg_constraint con ON con.oid = f.objid"
							   "  JOIN pg_catalog.pg_class c ON c.oid = con.conrelid"
							   "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							   "  WHERE f.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass"
							   "  UNION ALL"
							   "  SELECT f.classid, f.objid, f.seed,"
							   "   'TRIGGER', n.nspname, c.relname || ' ' || tg.tgname, NULL, NULL"
							   "  FROM f JOIN pg_catalog.pg_trigger tg ON tg.oid = f.objid"
							   "  JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid"
							   "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							   "  WHERE f.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND NOT tg.tgisinternal"
							   "  UNION ALL"
							   "  SELECT f.classid, f.objid, f.seed,"
							   "   'POLICY', n.nspname, c.relname || ' ' || pol.polname, NULL, NULL"
							   "  FROM f JOIN pg_catalog.pg_policy pol ON pol.oid = f.objid"
							   "  JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid"
							   "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							   "  WHERE f.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass"
							   "  UNION ALL"
							   "  SELECT f.classid, f.objid, f.seed,"
							   "   'RULE', n.nspname, c.relname || ' ' || r.rulename, NULL, NULL"
							   "  FROM f JOIN pg_catalog.pg_rewrite r ON r.oid = f.objid"
							   "  JOIN pg_catalog.pg_class c ON c.oid = r.ev_class"
							   "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							   "  WHERE f.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND r.rulename <> '_RETURN'"
							   " ) AS o(classid, objid, seed, type, nsp, tag, acl, col)"
							   " ORDER BY 6",
							   quote_literal_cstr(all_cls.data), quote_literal_cstr(all_obj.data),
							   quote_literal_cstr(all_seed.data)),
					  PGRES_TUPLES_OK, "name the objects depending on left-out relations",
					  password);
	for (i = 0; i < PQntuples(res); i++)
	{
		LeftOutDep *d = palloc0(sizeof(LeftOutDep));

		d->type = pstrdup(PQgetvalue(res, i, 0));
		d->schema = pstrdup(PQgetvalue(res, i, 1));
		d->tag = pstrdup(PQgetvalue(res, i, 2));
		if (!PQgetisnull(res, i, 3))
			d->acl_tag = pstrdup(PQgetvalue(res, i, 3));
		if (!PQgetisnull(res, i, 4))
			d->column_prefix = pstrdup(PQgetvalue(res, i, 4));
		d->description = pstrdup(PQgetvalue(res, i, 5));
		d->left_out = list_nth(seeds, atoi(PQgetvalue(res, i, 6)));
		out = lappend(out, d);
	}
	PQclear(res);
	return out;
}

/* A copy of the text between p and the next occurrence of sep (or end). */
static char *
field(const char *p, const char *end, const char *sep, const char **next)
{
	const char *q = p;
	size_t		seplen = sep ? strlen(sep) : 0;

	while (q < end && (sep == NULL || strncmp(q, sep, seplen) != 0))
		q++;
	*next = q < end ? q + seplen : end;
	return pnstrdup(p, q - p);
}

/*
 * ingest_dump_entry_update
 *		Follow pg_dump's table of contents through a dump: a statement's
 *		text (span, len bytes, its leading comments included) may begin a
 *		new entry with a "-- Name: X; Type: Y; Schema: Z; Owner: W" header.
 */
void
ingest_dump_entry_update(DumpEntry *entry, const char *span, int len)
{
	const char *p = span;
	const char *end = len > 0 ? span + len : span + strlen(span);

	while (p < end)
	{
		const char *eol = memchr(p, '\n', end - p);
		const char *line_end = eol ? eol : end;
		const char *name = NULL;
		const char *q;

		/* only the comment lines before the statement */
		while (p < line_end && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if (p < line_end && strncmp(p, "--", 2) != 0)
			break;
		for (q = p; q + 6 <= line_end; q++)
			if (strncmp(q, "Name: ", 6) == 0)
			{
				name = q + 6;
				break;
			}
		if (strncmp(p, "-- ", 3) == 0 && name != NULL)
		{
			const char *type_at = NULL;
			const char *schema_at = NULL;
			const char *next;

			/* the name may hold anything: take the last "; Type: " */
			for (q = name; q + 8 <= line_end; q++)
				if (strncmp(q, "; Type: ", 8) == 0)
					type_at = q;
			if (type_at)
				for (q = type_at; q + 10 <= line_end; q++)
					if (strncmp(q, "; Schema: ", 10) == 0)
					{
						schema_at = q;
						break;
					}
			if (type_at && schema_at)
			{
				char	   *type = pnstrdup(type_at + 8, schema_at - type_at - 8);
				bool		companion = strcmp(type, "COMMENT") == 0 ||
					strcmp(type, "SECURITY LABEL") == 0;

				if (companion)
				{
					/* about the entry before (or that entry's object) */
					if (entry->parent_type == NULL)
					{
						entry->parent_type = entry->type;
						entry->parent_schema = entry->schema;
						entry->parent_tag = entry->tag;
					}
				}
				else
					entry->parent_type = entry->parent_schema = entry->parent_tag = NULL;
				entry->type = type;
				entry->tag = pnstrdup(name, type_at - name);
				entry->schema = field(schema_at + 10, line_end, "; ", &next);
			}
		}
		p = eol ? eol + 1 : end;
	}
}

/* The object depending on a left-out relation that entry is part of. */
LeftOutDep *
ingest_left_out_match(List *deps, DumpEntry *entry)
{
	const char *type = entry->parent_type ? entry->parent_type : entry->type;
	const char *schema = entry->parent_type ? entry->parent_schema : entry->schema;
	const char *tag = entry->parent_type ? entry->parent_tag : entry->tag;
	bool		acl;
	ListCell   *lc;

	if (deps == NIL || type == NULL || schema == NULL || tag == NULL)
		return NULL;
	acl = strcmp(type, "ACL") == 0;
	foreach(lc, deps)
	{
		LeftOutDep *d = lfirst(lc);

		if (strcmp(schema, d->schema) != 0)
			continue;
		if (strcmp(type, d->type) == 0 && strcmp(tag, d->tag) == 0)
			return d;
		if (acl && d->acl_tag && strcmp(tag, d->acl_tag) == 0)
			return d;
		if (acl && d->column_prefix &&
			strncmp(tag, d->column_prefix, strlen(d->column_prefix)) == 0)
			return d;
	}
	return NULL;
}

/*
 * ingest_left_out_skip
 *		Record that a statement of dep is skipped: one WARNING event per
 *		object and migration.  In the caller's transaction.
 */
void
ingest_left_out_skip(int32 migration_id, LeftOutDep *dep, const char *statement)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		vals[2];
	bool		recorded;

	vals[0] = Int32GetDatum(migration_id);
	vals[1] = CStringGetTextDatum(dep->description);
	ingest_catalog_begin();
	(void) ingest_catalog_query("SELECT 1 FROM ingest.events WHERE migration_id = $1"
								" AND kind = 'skipped' AND object = $2 LIMIT 1",
								2, types, vals, NULL);
	recorded = SPI_processed > 0;
	ingest_catalog_end();
	if (recorded)
		return;
	if (strlen(statement) > STATEMENT_IN_EVENT_MAX)
		statement = psprintf("%.*s...",
							 pg_mbcliplen(statement, strlen(statement), STATEMENT_IN_EVENT_MAX),
							 statement);
	ingest_event(migration_id, "WARNING", "skipped", dep->description,
				 psprintf("skipped: depends on left-out %s", dep->left_out),
				 statement);
}
