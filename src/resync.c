/*-------------------------------------------------------------------------
 *
 * resync.c
 *	  resync => 'at_cutover': the tables whose changes logical decoding
 *	  cannot carry are copied again when the migration stops.
 *
 * A table is such a table when it is unlogged (nothing of it is decoded)
 * or has neither a key nor a replica identity (its UPDATEs and DELETEs are
 * not decoded): start.c's ingest_untracked_tables() decides, on the source
 * catalog the coordinator reads under the migration's snapshot.  With
 * resync => 'at_cutover' in a CDC mode:
 *
 *	- the coordinator records them in ingest.resync_table when it records
 *	  the copy items (ingest_resync_record); the full load copies them like
 *	  any table (an unlogged table's target is unlogged too: pg_dump says
 *	  so in the pre-data section);
 *	- while streaming, their changes are skipped: the applier skips every
 *	  INSERT, UPDATE, DELETE and TRUNCATE of them (apply_tables.c, load_tables),
 *	  and the receiver does not fail the migration on wal2json's notice
 *	  about an UPDATE or DELETE of them it left out
 *	  (ingest_resync_covers_w2j); a table in scope that such a notice
 *	  names and the set lacks (made without a key while streaming, or its
 *	  replica identity taken away) joins the set (ingest_resync_join_w2j);
 *	- at the stop (stop.c, ingest_stop_finish_stream, once the applier has
 *	  reached the stop LSN and the receiver and applier are gone) they are
 *	  copied again (ingest_resync_at_stop): all of them read in ONE source
 *	  transaction (REPEATABLE READ READ ONLY), so they are consistent with
 *	  each other, and written in ONE target transaction, each emptied
 *	  (TRUNCATE, or DELETE when a foreign key references it) and filled
 *	  with copy.c's COPY machinery.  That transaction also records each
 *	  table's rows and resynced_at in ingest.resync_table.
 *
 * Restart: the resync is all or nothing.  A coordinator that dies during
 * it (an error, a crash, a server restart) leaves nothing of it: its
 * transaction aborts, the next coordinator meets the stop again (phase
 * stopping), and the resync is done again from a new source snapshot.  A
 * resync that committed is not done again (resynced_at is set).
 *
 * What is refused, naming the table, before anything is emptied: a table
 * whose rows go to a target table shared with other leaf partitions of the
 * source (target.c), or to a partition rows of such leaves may be routed
 * to (emptying it would lose theirs); a target table the migration's owner
 * may not empty or fill (ingest_check_target: privileges, row-level
 * security, extension member, Citus).  A partitioned target is emptied
 * with its partitions and COPY routes the rows.  A target with more
 * indexes than the source is filled like any table: COPY maintains them
 * (a unique index the source's rows break fails the resync, naming it).
 *
 * Locking: AccessExclusiveLock on every target table resynced, held until
 * the resync commits (the migration is stopping; nothing else writes
 * them).  The writes run as the migration's owner with
 * session_replication_role = replica for that transaction only, like the
 * copy: the target's triggers and foreign keys do not fire.
 *
 * State: all of it in the catalog (ingest.resync_table); the receiver
 * keeps the set in its own memory, read again when a notice names a table it lacks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "citus.h"
#include "conn.h"
#include "copy.h"
#include "pg_ingest.h"
#include "resync.h"
#include "source.h"
#include "target.h"

/* A table copied again at the stop. */
typedef struct ResyncTable
{
	char	   *nspname;
	char	   *relname;
	char	   *root_nspname;	/* a leaf partition's root, or NULL */
	char	   *root_relname;
} ResyncTable;

/* the receiver's copy of the set: wal2json's names ("nsp"."rel") */
static List *w2j_names = NIL;
static bool w2j_loaded = false;

/*
 * ingest_resync_record
 *		Record the tables of rels (the source catalog, filters applied) that
 *		resync => 'at_cutover' copies again at the stop.  In the caller's
 *		transaction, with the copy items.  Does nothing unless the migration
 *		has that choice and streams.
 */
void
ingest_resync_record(IngestMigration *m, List *rels)
{
	Oid			types[4] = {INT4OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		vals[4];
	List	   *names;
	List	   *reasons;
	ListCell   *lc;
	int			n = 0;

	vals[0] = Int32GetDatum(m->id);
	ingest_catalog_begin();
	ingest_catalog_exec("DELETE FROM ingest.resync_table WHERE migration_id = $1",
						1, types, vals, NULL);
	ingest_catalog_end();
	if (strcmp(m->resync, "at_cutover") != 0 || strcmp(m->mode, "full-load") == 0)
		return;

	names = ingest_untracked_tables(rels, &reasons);
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);
		bool		mapped;
		Oid			relid;

		if (!r->in_scope || r->relkind != 'r' ||
			!ingest_string_in(names, ingest_qualified(r->nspname, r->relname)))
			continue;

		/* a target that exists already (schema 'existing') is checked now */
		relid = ingest_target_relid(r->nspname, r->relname, r->root_nsp,
									r->root_rel, NoLock, &mapped);
		if (OidIsValid(relid) && mapped)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("table %s cannot be copied again at the stop: its rows go to table %s with those of other partitions of the source",
							ingest_qualified(r->nspname, r->relname),
							ingest_relid_name(relid)),
					 errhint("Create the partition on the target, give the table a primary key or REPLICA IDENTITY FULL on the source, or leave it out with exclude_tables.")));
		vals[1] = CStringGetTextDatum(r->nspname);
		vals[2] = CStringGetTextDatum(r->relname);
		vals[3] = CStringGetTextDatum(r->relpersistence == 'u' ? "unlogged" : "no identity");
		ingest_catalog_begin();
		ingest_catalog_exec("INSERT INTO ingest.resync_table (migration_id, nspname, relname, reason)"
							" VALUES ($1, $2, $3, $4)",
							4, types, vals, NULL);
		ingest_catalog_end();
		n++;
	}
	if (n > 0)
		ingest_event(m->id, "INFO", "resync", NULL,
					 psprintf("%d table(s) whose changes cannot be decoded are copied again at the stop (resync => 'at_cutover'); their changes are skipped until then",
							  n),
					 NULL);
}

/*
 * ingest_resync_covers_w2j
 *		Whether a table, named as wal2json names it in its notices
 *		("nsp"."rel", unescaped), is one the migration copies again at the
 *		stop.  The set is read again when it does not hold the table (ddl_follow.c
 *		renames, adds and removes tables of it while streaming).
 */
bool
ingest_resync_covers_w2j(IngestMigration *m, const char *table)
{
	if (strcmp(m->resync, "at_cutover") != 0)
		return false;
	/* a table renamed or made unlogged by a schema change since: read again */
	if (w2j_loaded && !ingest_string_in(w2j_names, table))
	{
		list_free_deep(w2j_names);
		w2j_names = NIL;
		w2j_loaded = false;
	}
	if (!w2j_loaded)
	{
		bool		xact = !IsTransactionState();
		Oid			types[1] = {INT4OID};
		Datum		vals[1] = {Int32GetDatum(m->id)};
		SPITupleTable *tab;
		MemoryContext old;
		uint64		i;

		if (xact)
			ingest_xact_start();
		ingest_catalog_begin();
		tab = ingest_catalog_query("SELECT nspname, relname FROM ingest.resync_table"
								   " WHERE migration_id = $1",
								   1, types, vals, NULL);
		old = MemoryContextSwitchTo(TopMemoryContext);
		for (i = 0; i < SPI_processed; i++)
			w2j_names = lappend(w2j_names,
								psprintf("\"%s\".\"%s\"", ingest_getstr(tab, i, 1),
										 ingest_getstr(tab, i, 2)));
		MemoryContextSwitchTo(old);
		ingest_catalog_end();
		if (xact)
			ingest_xact_commit();
		w2j_loaded = true;
	}
	return ingest_string_in(w2j_names, table);
}

/*
 * ingest_resync_join_w2j
 *		Under resync => 'at_cutover', a table in scope whose change wal2json
 *		left out (named as in its notices, "nsp"."rel") that the set does not
 *		hold yet: one created without a key while streaming (the receiver
 *		reads it before the applier has created it here), or one whose
 *		replica identity was taken away.  It joins the set, so the stop
 *		copies it again, with an INFO event.  False when not under
 *		'at_cutover', or when the name cannot be split in one way only (a
 *		name holding "."): the caller fails the migration, as it would.
 */
bool
ingest_resync_join_w2j(IngestMigration *m, const char *table, const char *action)
{
	size_t		len = strlen(table);
	const char *p;
	const char *split = NULL;
	Oid			types[4] = {INT4OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		vals[4];
	bool		xact = !IsTransactionState();
	char	   *nspname;
	char	   *relname;

	if (strcmp(m->resync, "at_cutover") != 0 || len < 5 ||
		table[0] != '"' || table[len - 1] != '"')
		return false;
	for (p = strstr(table, "\".\""); p != NULL; p = strstr(p + 1, "\".\""))
	{
		if (split != NULL)
			return false;
		split = p;
	}
	if (split == NULL)
		return false;
	nspname = pnstrdup(table + 1, split - table - 1);
	relname = pnstrdup(split + 3, (table + len - 1) - (split + 3));

	vals[0] = Int32GetDatum(m->id);
	vals[1] = CStringGetTextDatum(nspname);
	vals[2] = CStringGetTextDatum(relname);
	vals[3] = CStringGetTextDatum("no identity (seen while streaming)");
	if (xact)
		ingest_xact_start();
	ingest_catalog_begin();
	ingest_catalog_exec("INSERT INTO ingest.resync_table (migration_id, nspname, relname, reason)"
						" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
						4, types, vals, NULL);
	ingest_catalog_end();
	ingest_event(m->id, "INFO", "resync", ingest_qualified(nspname, relname),
				 psprintf("%s is copied again when the migration stops: wal2json left out an %s of it (neither a key nor a replica identity on the source; resync => 'at_cutover')",
						  ingest_qualified(nspname, relname), action),
				 NULL);
	if (xact)
		ingest_xact_commit();
	/* the set is read again at the next notice */
	list_free_deep(w2j_names);
	w2j_names = NIL;
	w2j_loaded = false;
	return true;
}

/* The tables to copy again; NIL if there are none or the resync is done. */
static List *
tables_to_resync(IngestMigration *m, bool *done)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(m->id)};
	SPITupleTable *tab;
	List	   *tables = NIL;
	MemoryContext cxt = CurrentMemoryContext;
	uint64		i;

	*done = false;
	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT r.nspname, r.relname,"
							   " (SELECT max(c.root_nspname) FROM ingest.copy_item c"
							   "  WHERE c.migration_id = r.migration_id AND c.nspname = r.nspname"
							   "  AND c.relname = r.relname),"
							   " (SELECT max(c.root_relname) FROM ingest.copy_item c"
							   "  WHERE c.migration_id = r.migration_id AND c.nspname = r.nspname"
							   "  AND c.relname = r.relname),"
							   " r.resynced_at IS NOT NULL"
							   " FROM ingest.resync_table r WHERE r.migration_id = $1"
							   " ORDER BY 1, 2",
							   1, types, vals, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		ResyncTable *t = palloc0(sizeof(ResyncTable));
		char	   *s;

		t->nspname = pstrdup(ingest_getstr(tab, i, 1));
		t->relname = pstrdup(ingest_getstr(tab, i, 2));
		s = ingest_getstr(tab, i, 3);
		t->root_nspname = s ? pstrdup(s) : NULL;
		s = ingest_getstr(tab, i, 4);
		t->root_relname = s ? pstrdup(s) : NULL;
		/* one transaction records them all: all done or none */
		if (ingest_getbool(tab, i, 5))
			*done = true;
		tables = lappend(tables, t);
		MemoryContextSwitchTo(old);
	}
	ingest_catalog_end();
	return tables;
}

static void
resync_error_context(void *arg)
{
	errcontext("copying table %s again at the stop (resync => 'at_cutover')",
			   (char *) arg);
}

/*
 * ingest_resync_at_stop
 *		Copy the migration's resync tables again, all in one source snapshot
 *		and one target transaction (see the header).  Called by the
 *		coordinator at the stop, outside a transaction, once the applier has
 *		reached the stop LSN and no worker writes any more.
 */
void
ingest_resync_at_stop(IngestMigration *m, IngestConnInfo *info)
{
	List	   *tables;
	bool		done;
	PGconn	   *volatile conn = NULL;
	TimestampTz started = GetCurrentTimestamp();
	MemoryContext cxt;
	MemoryContext outer = CurrentMemoryContext;
	ListCell   *lc;
	bool		maps_leaves;
	uint64		total_rows = 0;
	uint64		total_bytes = 0;
	long		secs;
	int			usecs;

	ingest_xact_start();
	tables = tables_to_resync(m, &done);
	maps_leaves = tables != NIL && !done && ingest_migration_maps_leaves(m->id);
	ingest_xact_commit();
	if (tables == NIL || done)
		return;

	pgstat_report_activity(STATE_RUNNING, "copying tables again at the stop");
	cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_ingest resync table",
								ALLOCSET_DEFAULT_SIZES);
	WITH_SOURCE_SESSION(conn, info, INGEST_CONN_SQL,
						psprintf("pg_ingest %s resync", m->name), NULL,
	{
		PGresult   *res;
		List	   *rels;
		int			nest;

		ingest_begin_read(conn, NULL, NULL, info->password);
		/* the columns as they are now, in the snapshot the rows are read in */
		rels = ingest_source_relations(conn, false, info->password);

		ingest_xact_start();
		nest = NewGUCNestLevel();
		(void) set_config_option("session_replication_role", "replica",
								 PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		foreach(lc, tables)
		{
			ResyncTable *t = lfirst(lc);
			ErrorContextCallback callback;
			char	   *qualified;
			SourceRel  *sr;
			Oid			relid;
			bool		mapped;
			char		relkind;
			bool		truncate;
			bool		citus;
			bool		binary;
			uint64		rows;
			uint64		bytes;
			char	   *target;
			Relation	rel;
			Oid			types[5] = {INT4OID, TEXTOID, TEXTOID, INT8OID, INT8OID};
			Datum		vals[5];

			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(cxt);
			MemoryContextSwitchTo(cxt);
			qualified = ingest_qualified(t->nspname, t->relname);
			sr = ingest_find_source_rel(rels, t->nspname, t->relname);
			callback.callback = resync_error_context;
			callback.arg = qualified;
			callback.previous = error_context_stack;
			error_context_stack = &callback;

			if (sr == NULL || sr->relkind != 'r')
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("table %s to copy again at the stop no longer exists on the source",
								qualified)));
			relid = ingest_target_relid(t->nspname, t->relname, t->root_nspname,
										t->root_relname, AccessExclusiveLock, &mapped);
			if (!OidIsValid(relid))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("table %s to copy again at the stop does not exist on the target",
								qualified)));
			target = ingest_relid_name(relid);
			relkind = get_rel_relkind(relid);
			if (mapped || (get_rel_relispartition(relid) && maps_leaves))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("table %s cannot be copied again at the stop: target table %s also holds rows of other partitions of the source",
								qualified, target),
						 errhint("Create the partition on the target, or give the table a primary key or REPLICA IDENTITY FULL on the source and start the migration again.")));

			/* TRUNCATE refuses a table a foreign key references: DELETE */
			truncate = !ingest_referenced_by_foreign_key(relid);
			ingest_check_target(relid, m->owner,
								ACL_INSERT | (truncate ? ACL_TRUNCATE : ACL_DELETE));
			citus = ingest_citus_table(relid);
			if (citus)
			{
				/*
				 * A Citus table: emptied through Citus (a DELETE: its
				 * truncate trigger does not fire under the replica role),
				 * in a transaction block whose commit takes the shards'
				 * writes with it, and copied without FREEZE (citus.c).
				 */
				ingest_citus_begin_block();
				ingest_citus_truncate(psprintf("DELETE FROM %s", target),
									  list_make1_oid(relid));
				truncate = false;
			}
			else
			{
				if (SPI_connect() != SPI_OK_CONNECT)
					elog(ERROR, "SPI_connect failed");
				if (SPI_execute(psprintf(truncate ? "TRUNCATE %s%s" : "DELETE FROM %s%s",
										 relkind == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
										 target), false, 0) < 0)
					elog(ERROR, "could not empty %s", target);
				SPI_finish();
			}

			rel = table_open(relid, NoLock);
			rows = ingest_copy_table(conn, info->password, rel, t->nspname, t->relname,
									 sr->columns, NULL,
									 truncate && relkind != RELKIND_PARTITIONED_TABLE,
									 &binary, &bytes);
			table_close(rel, NoLock);
			total_rows += rows;
			total_bytes += bytes;

			vals[0] = Int32GetDatum(m->id);
			vals[1] = CStringGetTextDatum(t->nspname);
			vals[2] = CStringGetTextDatum(t->relname);
			vals[3] = Int64GetDatum((int64) rows);
			vals[4] = Int64GetDatum((int64) bytes);
			ingest_catalog_begin();
			ingest_catalog_exec("UPDATE ingest.resync_table SET rows_done = $4,"
								" bytes_done = $5, resynced_at = clock_timestamp()"
								" WHERE migration_id = $1 AND nspname = $2 AND relname = $3",
								5, types, vals, NULL);
			ingest_catalog_end();
			error_context_stack = callback.previous;
		}
		AtEOXact_GUC(true, nest);
		MemoryContextSwitchTo(outer);

		TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
		ingest_event(m->id, "INFO", "resync", NULL,
					 psprintf("copied %d table(s) again at the stop, in one snapshot of the source: " UINT64_FORMAT " rows, %s, in %ld.%03d s",
							  list_length(tables), total_rows,
							  text_to_cstring(DatumGetTextPP(DirectFunctionCall1(pg_size_pretty,
																				 Int64GetDatum((int64) total_bytes)))),
							  secs, usecs / 1000),
					 NULL);
		ingest_xact_commit();

		res = ingest_exec(conn, "COMMIT", PGRES_COMMAND_OK, "end the transaction",
						  info->password);
		PQclear(res);
	});
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Tables in scope whose changes logical decoding cannot carry: UPDATE and
 * DELETE of a table with no key and no replica identity, anything of an
 * unlogged table.  The names and, in *reasons, why.  resync.c records the
 * same set for resync => 'at_cutover'.
 */
List *
ingest_untracked_tables(List *rels, List **reasons)
{
	List	   *names = NIL;
	ListCell   *lc;

	*reasons = NIL;
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);

		if (!r->in_scope || r->relkind != 'r')
			continue;
		if (r->relpersistence == 'u')
		{
			names = lappend(names, ingest_qualified(r->nspname, r->relname));
			*reasons = lappend(*reasons, "it is unlogged: none of its changes are decoded");
		}
		else if (r->no_identity)
		{
			names = lappend(names, ingest_qualified(r->nspname, r->relname));
			*reasons = lappend(*reasons, "it has neither a primary key nor a replica identity: its UPDATEs and DELETEs are not decoded");
		}
	}
	return names;
}
