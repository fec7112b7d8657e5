/*-------------------------------------------------------------------------
 *
 * ddl_follow.c
 *	  The migration's tables following a schema change replicated through
 *	  the event trigger (ddl_apply.c): which objects of a command its
 *	  filters keep, and the copy items of the tables it created, renamed,
 *	  moved, dropped or made unlogged.
 *
 * After a command is applied, the migration's tables (ingest.copy_item)
 * follow: a table created is added (state 'skipped', its sync LSN the
 * command's transaction: its rows come in the stream), one renamed or
 * moved is renamed (in ingest.resync_table too), one dropped removed, each
 * with an INFO event.  A table the command made unlogged (CREATE UNLOGGED
 * TABLE, SET UNLOGGED) goes to resync => 'at_cutover', is left to
 * untracked_tables => 'copy_only' with a WARNING event, or fails the
 * migration (ingest_ddl_follow_unlogged).  The migration's filters decide
 * which objects a command concerns (ingest_ddl_object_in_scope): the
 * later changes of a table they leave out are skipped.
 *
 * State: in the catalog, ingest.copy_item and ingest.resync_table,
 * written in the applier's transaction, so they commit with the command;
 * nothing in shared memory.
 *
 * Locking: none of its own: the catalog's rows are written under the
 * applier's transaction; the tables are looked up in pg_class without a
 * lock (the command that changed them holds its own).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/varlena.h"

#include "ddl_int.h"
#include "pg_ingest.h"
#include "source.h"

/* Whether an object of the command is one the migration's filters keep. */
bool
ingest_ddl_object_in_scope(IngestFilters *filters, DdlObject *o)
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

/*
 * The migration's tables after the command: renamed, moved, dropped (by
 * OID, before and after), created (the command's objects).
 */
void
ingest_ddl_follow_tables(IngestMigration *m, IngestFilters *filters, DdlMessage *msg,
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
			!ingest_ddl_object_in_scope(filters, o))
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
void
ingest_ddl_follow_unlogged(IngestMigration *m, IngestFilters *filters, DdlMessage *msg,
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
			o->relkind != 'r' || !ingest_ddl_object_in_scope(filters, o))
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
