/*-------------------------------------------------------------------------
 *
 * matview.c
 *	  Materialized views while a migration streams, and at its stop.
 *
 * Logical decoding carries what REFRESH MATERIALIZED VIEW CONCURRENTLY does
 * to a materialized view as row changes of it: wal2json sends the INSERTs,
 * and leaves out the DELETEs (a materialized view has no replica identity)
 * with a WARNING notice "no tuple identifier for DELETE in table ...".  A
 * plain REFRESH fills a transient heap that decoding skips: nothing comes.
 * Neither can be applied to the target's materialized view (its rows are
 * the result of its query, not the source's rows), so both the receiver
 * (for the notices) and the applier (for the changes) ask
 * ingest_matview_skip() whether the relation named is a materialized view
 * here, and leave its changes out: with one INFO event per materialized
 * view and migration (kind 'matview'), not a failure.
 *
 * At the stop (the coordinator's finish_stream), every materialized view in
 * scope is brought to the source's state, in dependency order (one over
 * another is refreshed after it): refreshed if it is populated on the
 * source, emptied (WITH NO DATA) if it is not there but is here.  The
 * refreshes are schema items (kind 'refresh', stage STAGE_LAST) run like
 * those of the full load: a failure is an ERROR event naming the view and
 * counts in the migration's errors.  One INFO event gives their count and
 * time.  pg_ingest.refresh_matviews_at_stop = off leaves them as the copy
 * made them, and an INFO event says how many.
 *
 * State: the materialized views noted by this process (a list in
 * TopMemoryContext, so the catalog is asked only once per view); the
 * events in the catalog say which were noted by earlier processes.
 *
 * Locking: none of its own; a REFRESH takes its AccessExclusiveLock, after
 * the applier has stopped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "conn.h"
#include "pg_ingest.h"
#include "schema.h"
#include "source.h"

/* materialized views whose left-out changes this process has noted */
static List *noted = NIL;

/*
 * Materialized views of the source, those over others after them: the
 * number of materialized views each depends on, through views and other
 * materialized views, orders them (one that depends on another depends on
 * all that one depends on, and on it).
 */
#define SOURCE_MATVIEWS_SQL \
	"SELECT n.nspname, c.relname, c.relispopulated," \
	" (WITH RECURSIVE d(oid) AS (" \
	"   SELECT dp.refobjid FROM pg_catalog.pg_rewrite rw" \
	"   JOIN pg_catalog.pg_depend dp ON dp.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass" \
	"    AND dp.objid = rw.oid AND dp.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass" \
	"    AND dp.refobjid <> rw.ev_class" \
	"   WHERE rw.ev_class = c.oid" \
	"  UNION" \
	"   SELECT dp.refobjid FROM d JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = d.oid" \
	"   JOIN pg_catalog.pg_depend dp ON dp.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass" \
	"    AND dp.objid = rw.oid AND dp.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass" \
	"    AND dp.refobjid <> rw.ev_class)" \
	"  SELECT count(*) FROM d JOIN pg_catalog.pg_class x ON x.oid = d.oid AND x.relkind = 'm')" \
	" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" \
	" WHERE c.relkind = 'm' ORDER BY 4, 1, 2"

/* Whether the migration has its note about this materialized view. */
static bool
noted_before(int32 migration_id, const char *name)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		vals[2] = {Int32GetDatum(migration_id), CStringGetTextDatum(name)};
	bool		found;

	ingest_catalog_begin();
	(void) ingest_catalog_query("SELECT 1 FROM ingest.events WHERE migration_id = $1"
								" AND kind = 'matview' AND object = $2 LIMIT 1",
								2, types, vals, NULL);
	found = SPI_processed > 0;
	ingest_catalog_end();
	return found;
}

/*
 * ingest_matview_skip
 *		Whether nspname.relname, named by a change of the source, is a
 *		materialized view here: its changes are then left out (noted once).
 *		In the caller's transaction, or one of its own.
 */
bool
ingest_matview_skip(int32 migration_id, const char *nspname, const char *relname)
{
	bool		own = !IsTransactionState();
	Oid			nspid;
	Oid			relid = InvalidOid;
	bool		is_matview;

	if (own)
		ingest_xact_start();
	nspid = get_namespace_oid(nspname, true);
	if (OidIsValid(nspid))
		relid = get_relname_relid(relname, nspid);
	is_matview = OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_MATVIEW;
	if (is_matview)
	{
		char	   *name = ingest_qualified(nspname, relname);

		if (!ingest_string_in(noted, name))
		{
			MemoryContext old;

			if (!noted_before(migration_id, name))
				ingest_event(migration_id, "INFO", "matview", name,
							 psprintf("changes of materialized view %s (a REFRESH on the source) are left out: %s",
									  name, ingest_refresh_matviews_at_stop ?
									  "it is refreshed at the stop" :
									  "it is not refreshed at the stop (pg_ingest.refresh_matviews_at_stop is off)"),
							 NULL);
			old = MemoryContextSwitchTo(TopMemoryContext);
			noted = lappend(noted, pstrdup(name));
			MemoryContextSwitchTo(old);
		}
	}
	if (own)
		ingest_xact_commit();
	return is_matview;
}

/*
 * ingest_matview_notice
 *		Whether a table named by a wal2json notice ("schema"."table", the
 *		names unescaped between the quotes) is a materialized view here.
 *		A name holding "." is tried at each such place.
 */
bool
ingest_matview_notice(int32 migration_id, const char *table)
{
	size_t		len = strlen(table);
	const char *end = table + len - 1;	/* the closing quote */
	const char *p;

	if (len < 5 || table[0] != '"' || *end != '"')
		return false;
	for (p = strstr(table + 1, "\".\""); p != NULL && p + 3 <= end; p = strstr(p + 1, "\".\""))
	{
		char	   *nspname = pnstrdup(table + 1, p - (table + 1));
		char	   *relname = pnstrdup(p + 3, end - (p + 3));

		if (ingest_matview_skip(migration_id, nspname, relname))
			return true;
	}
	return false;
}

/* Whether the target's materialized view nspname.relname is populated. */
static bool
target_populated(const char *nspname, const char *relname)
{
	Oid			nspid = get_namespace_oid(nspname, true);
	Oid			relid = OidIsValid(nspid) ? get_relname_relid(relname, nspid) : InvalidOid;
	HeapTuple	tup;
	bool		populated = false;

	if (!OidIsValid(relid))
		return false;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tup))
	{
		populated = ((Form_pg_class) GETSTRUCT(tup))->relispopulated;
		ReleaseSysCache(tup);
	}
	return populated;
}

/*
 * ingest_refresh_matviews
 *		At the stop of a migration with change data capture: bring every
 *		materialized view in scope to the source's state (see the header).
 *		The applier has stopped; no transaction is open.
 */
void
ingest_refresh_matviews(IngestMigration *m, IngestConnInfo *info,
						IngestFilters *filters)
{
	PGconn	   *conn;
	PGresult   *res = NULL;
	List	   *rels;
	List	   *items = NIL;
	int			i;
	int			stale = 0;
	int			emptied = 0;
	TimestampTz started;
	int			ran;
	bool		pending;

	WITH_SOURCE_SESSION(conn, info, INGEST_CONN_SQL,
						psprintf("pg_ingest %s coordinator", m->name), NULL,
	{
		rels = ingest_source_relations(conn, false, info->password);
		ingest_apply_filters(rels, filters);
		res = ingest_exec(conn, SOURCE_MATVIEWS_SQL, PGRES_TUPLES_OK,
						  "list materialized views", info->password);
	});

	ingest_xact_start();
	for (i = 0; i < PQntuples(res); i++)
	{
		const char *nspname = PQgetvalue(res, i, 0);
		const char *relname = PQgetvalue(res, i, 1);
		bool		populated = PQgetvalue(res, i, 2)[0] == 't';
		bool		in_scope = false;
		ListCell   *lc;
		SchemaItem *it;

		foreach(lc, rels)
		{
			SourceRel  *r = lfirst(lc);

			if (r->relkind == 'm' && r->in_scope && strcmp(r->nspname, nspname) == 0 &&
				strcmp(r->relname, relname) == 0)
				in_scope = true;
		}
		if (!in_scope)
			continue;
		if (!populated && !target_populated(nspname, relname))
			continue;
		if (!ingest_refresh_matviews_at_stop)
		{
			stale++;
			continue;
		}
		it = palloc0(sizeof(SchemaItem));
		it->stage = STAGE_LAST;
		it->kind = "refresh";
		it->nspname = pstrdup(nspname);
		it->relname = pstrdup(relname);
		it->statement = psprintf("REFRESH MATERIALIZED VIEW %s%s",
								 ingest_qualified(nspname, relname),
								 populated ? "" : " WITH NO DATA");
		emptied += populated ? 0 : 1;
		items = lappend(items, it);
	}
	PQclear(res);
	if (stale > 0)
		ingest_event(m->id, "INFO", "matview", NULL,
					 psprintf("%d materialized views not refreshed at the stop: pg_ingest.refresh_matviews_at_stop is off; they hold what the copy put in them",
							  stale), NULL);
	if (items != NIL)
		ingest_store_schema_items(m->id, items);
	ingest_xact_commit();
	if (items == NIL)
		return;

	started = GetCurrentTimestamp();
	ran = ingest_run_schema_items(m, STAGE_LAST, STAGE_LAST, &pending);
	ingest_event_tx(m->id, "INFO", "matview", NULL,
					psprintf("%d of %d materialized views refreshed at the stop (%d of them emptied as on the source) in %ld ms",
							 ran, list_length(items), emptied,
							 (long) ((GetCurrentTimestamp() - started) / 1000)),
					ran < list_length(items) ?
					"The others failed: their ERROR events say why." : NULL);
}
