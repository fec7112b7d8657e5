/*-------------------------------------------------------------------------
 *
 * preflight_target.c
 *	  The checks ingest.preflight() makes of the target (this server):
 *	  background worker slots for the migration's workers, the source's
 *	  extensions available here, names the source's schema would clash
 *	  with; a Citus distribution map (distribute =>) checked as ingest.start
 *	  checks it.
 *
 * Each check emits one row (PASS, WARN or FAIL) through ingest_pf_emit,
 * like the source checks (preflight.c); a check never throws for what it
 * finds.
 *
 * State: none of its own (the Preflight of the call).
 *
 * Locking: none; the catalog is read with the caller's snapshot.
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

#include "citus.h"
#include "conn.h"
#include "extconfig.h"
#include "pg_ingest.h"
#include "preflight.h"
#include "source.h"

/*
 * check_target_workers
 *		Room under max_worker_processes for a migration's workers.
 */
void
ingest_pf_check_target_workers(Preflight *pf)
{
	int			max_workers;
	int			used;
	int			free_workers;
	int			need_min = WORKERS_BESIDES_JOBS + 2;
	int			need_default = WORKERS_BESIDES_JOBS + DEFAULT_TABLE_JOBS + DEFAULT_INDEX_JOBS;

	SPI_connect();
	if (SPI_execute("SELECT current_setting('max_worker_processes')::int,"
					" (SELECT count(*) FROM pg_catalog.pg_stat_get_activity(NULL) a"
					"  WHERE a.backend_type NOT IN ('client backend', 'autovacuum launcher',"
					"  'autovacuum worker', 'background writer', 'checkpointer', 'walwriter',"
					"  'startup', 'archiver', 'walsender', 'walreceiver', 'logger',"
					"  'standalone backend'))::int",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count background workers");
	max_workers = atoi(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	used = atoi(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	SPI_finish();
	free_workers = max_workers - used;

	if (free_workers < need_min)
		ingest_pf_emit(pf, "target_worker_processes", "FAIL",
			 psprintf("max_worker_processes = %d with %d in use leaves %d; a migration needs at least %d (table_jobs => 1, index_jobs => 1)",
					  max_workers, used, Max(free_workers, 0), need_min),
			 psprintf("Raise max_worker_processes on this server to at least %d and restart it.",
					  used + need_default));
	else if (free_workers < need_default)
		ingest_pf_emit(pf, "target_worker_processes", "WARN",
			 psprintf("max_worker_processes = %d with %d in use leaves %d; the default table_jobs => %d, index_jobs => %d need %d",
					  max_workers, used, free_workers, DEFAULT_TABLE_JOBS,
					  DEFAULT_INDEX_JOBS, need_default),
			 psprintf("Raise max_worker_processes to at least %d and restart, or pass smaller table_jobs and index_jobs to ingest.start.",
					  used + need_default));
	else
		ingest_pf_emit(pf, "target_worker_processes", "PASS",
			 psprintf("max_worker_processes = %d with %d in use leaves %d; a migration with default jobs needs %d",
					  max_workers, used, free_workers, need_default),
			 NULL);
}

/* text[] Datum of a List of C strings */
static Datum
text_array(List *strings)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(strings), 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, strings)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, i, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

void
ingest_pf_check_target_extensions(Preflight *pf)
{
	PGresult   *res;
	List	   *names = NIL;
	List	   *versions = NIL;
	List	   *missing = NIL;
	List	   *older = NIL;
	Oid			argtypes[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[2];
	MemoryContext outer;
	uint64		i;
	int			r;

	res = ingest_pf_source_query(pf, "target_extensions",
					   "SELECT extname, extversion FROM pg_catalog.pg_extension"
					   " WHERE extname NOT IN ('plpgsql', 'pg_ingest') ORDER BY 1");
	if (res == NULL)
		return;
	for (r = 0; r < PQntuples(res); r++)
	{
		names = lappend(names, pstrdup(PQgetvalue(res, r, 0)));
		versions = lappend(versions, pstrdup(PQgetvalue(res, r, 1)));
	}
	PQclear(res);

	if (names == NIL)
	{
		ingest_pf_emit(pf, "target_extensions", "PASS",
			 "the source has no extensions besides plpgsql", NULL);
		return;
	}

	args[0] = text_array(names);
	args[1] = text_array(versions);
	outer = CurrentMemoryContext;
	SPI_connect();
	if (SPI_execute_with_args("SELECT s.name,"
							  " NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions a"
							  "  WHERE a.name = s.name),"
							  " NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extension_versions v"
							  "  WHERE v.name = s.name AND v.version = s.version)"
							  " FROM unnest($1, $2) AS s(name, version) ORDER BY 1",
							  2, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list available extensions");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		is_missing = strcmp(SPI_getvalue(tup, desc, 2), "t") == 0;
		bool		is_older = strcmp(SPI_getvalue(tup, desc, 3), "t") == 0;
		MemoryContext spicxt = MemoryContextSwitchTo(outer);
		char	   *name = SPI_getvalue(tup, desc, 1);

		if (is_missing)
			missing = lappend(missing, name);
		else if (is_older)
			older = lappend(older, name);
		MemoryContextSwitchTo(spicxt);
	}
	SPI_finish();

	if (missing != NIL)
		ingest_pf_emit(pf, "target_extensions", "FAIL",
			 psprintf("%d extension(s) installed on the source are not available on this server: %s",
					  list_length(missing), ingest_pf_name_list(missing, LIST_MAX)),
			 "Install them on this server, or leave them out with ingest.start(..., exclude_extensions => ARRAY[...]).");
	else if (older != NIL)
		ingest_pf_emit(pf, "target_extensions", "WARN",
			 psprintf("this server does not offer the source's version of %d extension(s): %s",
					  list_length(older), ingest_pf_name_list(older, LIST_MAX)),
			 "CREATE EXTENSION installs this server's default version; check that the application works with it.");
	else
		ingest_pf_emit(pf, "target_extensions", "PASS",
			 psprintf("all %d extension(s) of the source are available: %s",
					  list_length(names), ingest_pf_name_list(names, LIST_MAX)),
			 NULL);
}

void
ingest_pf_check_target_name_conflicts(Preflight *pf)
{
	List	   *clashes = NIL;
	Oid			argtypes[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[2];
	MemoryContext outer;
	uint64		i;

	if (pf->lost)
	{
		(void) ingest_pf_source_query(pf, "target_name_conflicts", NULL);
		return;
	}
	if (pf->tables_nsp != NIL)
	{
		args[0] = text_array(pf->tables_nsp);
		args[1] = text_array(pf->tables_rel);
		outer = CurrentMemoryContext;
		SPI_connect();
		if (SPI_execute_with_args("SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)"
								  " FROM unnest($1, $2) AS s(nsp, rel)"
								  " JOIN pg_catalog.pg_namespace n ON n.nspname = s.nsp"
								  " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
								  "  AND c.relname = s.rel"
								  " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
								  " ORDER BY 1",
								  2, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not look for name conflicts");
		for (i = 0; i < SPI_processed; i++)
		{
			MemoryContext spicxt = MemoryContextSwitchTo(outer);

			clashes = lappend(clashes,
							  SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
			MemoryContextSwitchTo(spicxt);
		}
		SPI_finish();
	}

	if (clashes != NIL)
		ingest_pf_emit(pf, "target_name_conflicts", "WARN",
			 psprintf("%d table(s) of the source already exist here: %s",
					  list_length(clashes), ingest_pf_name_list(clashes, LIST_MAX)),
			 "Drop them, exclude them from the migration, or use schema => 'existing' if they are the prepared, empty target tables.");
	else
		ingest_pf_emit(pf, "target_name_conflicts", "PASS",
			 psprintf("none of the source's %d tables exists here",
					  list_length(pf->tables_nsp)),
			 NULL);
}

/* The distribution map, checked as ingest.start checks it (citus.c). */
void
ingest_pf_check_citus_map(Preflight *pf, Datum map)
{
	char	   *message = NULL;
	char	   *detail = NULL;
	char	   *hint = NULL;

	if (pf->lost)
		(void) ingest_pf_source_query(pf, "citus_distribution", NULL);
	else if (ingest_citus_preflight_map(map, pf->info, pf->conn, &message, &detail, &hint))
		ingest_pf_emit(pf, "citus_distribution", "PASS", NULL, NULL);
	else
		ingest_pf_emit(pf, "citus_distribution", "FAIL",
			 detail ? psprintf("%s: %s", message, detail) : message, hint);
}
