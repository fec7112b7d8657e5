/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  Planning a migration's work, in phase starting (coordinator.c): what
 *	  to copy and how (copy items: whole tables, or ctid page ranges of
 *	  split tables, split_tables_larger_than 'auto' sized here), the
 *	  setval of every sequence in scope, and the ANALYZE of every table.
 *
 * It owns no state: it reads the source through the connection and the
 * relation list the coordinator passes (read under the migration's
 * snapshot), and writes copy items to the catalog (ingest.copy_item) in
 * the caller's transaction; the other items it returns, for the caller to
 * store with the schema's (schema.c).  Text from the source is never put
 * into a statement: sequence values come back matched by an ordinal, the
 * names are this side's quoting of the relation list.
 *
 * State: none of its own (see above: the copy items in the catalog).
 *
 * Locking: none of its own (the catalog rows it inserts).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "conn.h"
#include "extconfig.h"
#include "pg_ingest.h"
#include "plan.h"
#include "schema.h"
#include "source.h"
#include "target.h"

/*
 * Refuse a sequence of this server named like source sequence nspname.relname
 * that belongs to an extension: an extension's objects are never the
 * destination of a migration (target.c).
 */
static void
refuse_extension_sequence(const char *nspname, const char *relname)
{
	bool		own = !IsTransactionState();
	Oid			relid;
	Oid			extension;

	if (own)
		ingest_xact_start();
	relid = RangeVarGetRelid(makeRangeVar(pstrdup(nspname), pstrdup(relname), -1),
							 NoLock, true);
	extension = OidIsValid(relid) ? getExtensionOfObject(RelationRelationId, relid) :
		InvalidOid;
	/* an extension's configuration sequence is set (extconfig.c) */
	if (OidIsValid(extension) && !ingest_extconfig_is_config(relid))
	{
		char	   *extname = get_extension_name(extension);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot set sequence %s: it belongs to extension \"%s\"",
						ingest_qualified(nspname, relname), extname ? extname : "?"),
				 errdetail("An extension's own objects are never the destination of a migration."),
				 errhint("Leave the source sequence out with exclude_tables or exclude_schemas.")));
	}
	if (own)
		ingest_xact_commit();
}

/* Sequences read per statement in the fallback (a UNION's planning grows faster than its size). */
#define SEQUENCES_PER_UNION 100

/* Append a setval item for sequence "name" to *items. */
static void
add_setval(List **items, const char *name, const char *value, bool is_called)
{
	SchemaItem *it = palloc0(sizeof(SchemaItem));

	it->stage = STAGE_LAST;
	it->kind = "setval";
	it->statement = psprintf("SELECT pg_catalog.setval(%s, %s::pg_catalog.int8, %s)",
							 quote_literal_cstr(name), quote_literal_cstr(value),
							 is_called ? "true" : "false");
	*items = lappend(*items, it);
}

/* The source sent a row of an ordinal that no sequence of names has. */
static int
sequence_ordinal(PGresult *res, int row, List *names)
{
	int			ordinal = atoi(PQgetvalue(res, row, 0));

	if (ordinal < 1 || ordinal > list_length(names))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the source sent an unexpected row for its sequences")));
	return ordinal;
}

/*
 * Values of the sequences in scope, as setval items.  The name set is
 * built here, never the source's text: rows are matched by an ordinal.
 *
 * One statement reads every sequence that has been called, with
 * pg_sequence_last_value() (which refuses a sequence the user may not
 * read); the others (NULL there: never called, or set with is_called
 * false) are read as tables, SEQUENCES_PER_UNION per statement, for
 * their last_value and is_called.
 */
List *
ingest_plan_sequences(PGconn *conn, List *rels, const char *password)
{
	StringInfoData sql;
	List	   *items = NIL;
	List	   *names = NIL;
	List	   *uncalled = NIL;
	ListCell   *lc;
	PGresult   *res;
	int			i;

	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);

		if (r->relkind != 'S' || !r->in_scope)
			continue;
		refuse_extension_sequence(r->nspname, r->relname);
		names = lappend(names, ingest_qualified(r->nspname, r->relname));
	}
	if (names == NIL)
		return NIL;

	if (PQserverVersion(conn) >= 100000)
	{
		initStringInfo(&sql);
		appendStringInfoString(&sql, "SELECT v.ord, pg_catalog.pg_sequence_last_value(v.seq::pg_catalog.regclass)"
							   " FROM (VALUES ");
		foreach(lc, names)
			appendStringInfo(&sql, "%s(%d, %s)", foreach_current_index(lc) > 0 ? ", " : "",
							 foreach_current_index(lc) + 1, quote_literal_cstr(lfirst(lc)));
		appendStringInfoString(&sql, ") AS v(ord, seq)");
		res = ingest_exec(conn, sql.data, PGRES_TUPLES_OK, "read the sequences",
						  password);
		if (PQntuples(res) != list_length(names))
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("the source sent an unexpected row for its sequences")));
		for (i = 0; i < PQntuples(res); i++)
		{
			int			ordinal = sequence_ordinal(res, i, names);

			if (PQgetisnull(res, i, 1))
				uncalled = lappend_int(uncalled, ordinal);
			else
				add_setval(&items, list_nth(names, ordinal - 1), PQgetvalue(res, i, 1), true);
		}
		PQclear(res);
	}
	else
		for (i = 1; i <= list_length(names); i++)
			uncalled = lappend_int(uncalled, i);

	for (i = 0; i < list_length(uncalled); i += SEQUENCES_PER_UNION)
	{
		int			j;
		int			n = Min(SEQUENCES_PER_UNION, list_length(uncalled) - i);

		initStringInfo(&sql);
		for (j = 0; j < n; j++)
		{
			int			ordinal = list_nth_int(uncalled, i + j);

			appendStringInfo(&sql, "%sSELECT %d, last_value, is_called FROM %s",
							 j > 0 ? " UNION ALL " : "", ordinal,
							 (char *) list_nth(names, ordinal - 1));
		}
		res = ingest_exec(conn, sql.data, PGRES_TUPLES_OK, "read the sequences",
						  password);
		for (j = 0; j < PQntuples(res); j++)
		{
			int			ordinal = sequence_ordinal(res, j, names);

			if (PQgetisnull(res, j, 1))
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("the source sent an unexpected row for its sequences")));
			add_setval(&items, list_nth(names, ordinal - 1), PQgetvalue(res, j, 1),
					   PQgetvalue(res, j, 2)[0] == 't');
		}
		PQclear(res);
	}
	return items;
}

/*
 * Whether the target of source table r (if it exists yet) is partitioned
 * or the root that r, a leaf not here, shares with other leaves (target.c).
 */
static bool
target_shared_or_partitioned(SourceRel *r)
{
	bool		mapped;
	Oid			relid = ingest_target_relid(r->nspname, r->relname, r->root_nsp,
											r->root_rel, NoLock, &mapped);

	return OidIsValid(relid) &&
		(mapped || get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE);
}

/*
 * split_tables_larger_than => 'auto': parts of about a (table_jobs * 2)th
 * of all the bytes to copy, so that every copy worker has work until near
 * the end (a table copied whole that holds most of the bytes would leave
 * the other workers idle), as many as a multiple of table_jobs (see
 * ingest_plan_copy_items()); never smaller than AUTO_SPLIT_MIN_BYTES (half of
 * it at worst, for that multiple), under which a part's fixed costs (its
 * own COPY, transaction and catalog rows; no COPY FREEZE, see copy.c)
 * outweigh the parallelism.  With one table job the parts are copied one
 * after another (without COPY FREEZE): what they still give is that a
 * crash copies one part again, not the whole table.
 */
#define AUTO_SPLIT_MIN_BYTES	((int64) 128 * 1024 * 1024)
#define AUTO_SPLIT_PARTS_PER_JOB	2

static int64
auto_split_bytes(IngestMigration *m, List *rels)
{
	int64		total = 0;
	ListCell   *lc;

	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);

		if (r->relkind == 'r' && r->in_scope)
			total += r->bytes_main;
	}
	return Max(total / (m->table_jobs * AUTO_SPLIT_PARTS_PER_JOB), AUTO_SPLIT_MIN_BYTES);
}

/*
 * ingest_plan_copy_items
 *		Record the copy items of the tables in scope, in the caller's
 *		transaction: a whole table, or ctid page ranges of a table split by
 *		split_tables_larger_than.
 */
void
ingest_plan_copy_items(IngestMigration *m, List *rels, int64 block_size)
{
	Oid			types[9] = {INT4OID, INT4OID, TEXTOID, TEXTOID, INT4OID, INT4OID,
	INT8OID, INT8OID, TEXTOID};
	Oid			types2[12];
	Datum		vals[12];
	char		nulls[12];
	ListCell   *lc;
	int32		id = 0;
	bool		is_auto = m->split_bytes == INGEST_SPLIT_AUTO;
	int64		split_bytes = is_auto ? auto_split_bytes(m, rels) : m->split_bytes;

	memcpy(types2, types, sizeof(types));
	types2[9] = INT8OID;
	types2[10] = types2[11] = TEXTOID;
	ingest_catalog_begin();
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);
		int64		pages = r->bytes_main / block_size;
		int64		per_part = split_bytes / block_size;
		int			parts = 1;
		int			p;

		if (r->relkind != 'r' || !r->in_scope)
			continue;

		/*
		 * parts of equal size, none larger than split_bytes (with 'auto',
		 * the number of parts nearest to the table's size over
		 * split_bytes: a table a little over it is not cut into a large
		 * part and a sliver); never for a target that is partitioned or a
		 * root several leaves share: a table copied again whole
		 * (recopy_partial_tables()) is emptied first, which only a table
		 * of its own can be; nor for an extension's configuration table,
		 * whose user rows its one item replaces (extconfig.c).
		 */
		if (split_bytes > 0 && per_part > 0 && r->bytes_main > split_bytes &&
			!target_shared_or_partitioned(r) && r->extname == NULL)
		{
			if (is_auto)
			{
				int			jobs = m->table_jobs;
				int			all;

				parts = (int) Max((pages + per_part / 2) / per_part, 2);
				/*
				 * a multiple of table_jobs, so that the workers, which take
				 * a table's parts before anything else, all finish it at
				 * once (3 parts on 2 workers leave the third alone on
				 * the critical path of the table's indexes); unless that
				 * makes parts smaller than half the minimum
				 */
				all = (parts + jobs - 1) / jobs * jobs;
				if (pages / all >= AUTO_SPLIT_MIN_BYTES / 2 / block_size)
					parts = all;
			}
			else
				parts = (int) ((pages + per_part - 1) / per_part);
			per_part = (pages + parts - 1) / parts;
		}
		for (p = 0; p < parts; p++)
		{
			int64		from = p * per_part;
			int64		to = (p + 1) * per_part;
			int64		bytes;

			memset(nulls, ' ', sizeof(nulls));
			vals[0] = Int32GetDatum(m->id);
			vals[1] = Int32GetDatum(++id);
			vals[2] = CStringGetTextDatum(r->nspname);
			vals[3] = CStringGetTextDatum(r->relname);
			vals[4] = Int32GetDatum(p + 1);
			vals[5] = Int32GetDatum(parts);
			if (parts == 1)
			{
				nulls[6] = nulls[7] = 'n';
				bytes = r->bytes_table;
			}
			else
			{
				vals[6] = Int64GetDatum(from);
				if (p == parts - 1)
				{
					nulls[7] = 'n';
					to = pages;
				}
				else
					vals[7] = Int64GetDatum(to);
				bytes = pages > 0 ? r->bytes_table * (to - from) / pages : 0;
			}
			vals[8] = CStringGetTextDatum(r->columns);
			vals[9] = Int64GetDatum(bytes);
			/* a leaf partition's root: its target table if the leaf is not there */
			vals[10] = r->root_nsp ? CStringGetTextDatum(r->root_nsp) : (Datum) 0;
			vals[11] = r->root_rel ? CStringGetTextDatum(r->root_rel) : (Datum) 0;
			nulls[10] = nulls[11] = r->root_rel ? ' ' : 'n';
			ingest_catalog_exec("INSERT INTO ingest.copy_item (migration_id, id, nspname, relname,"
								" part, parts, page_from, page_to, columns, bytes_total, use_freeze,"
								" root_nspname, root_relname)"
								" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $6 = 1, $11, $12)",
								12, types2, vals, nulls);
		}
	}
	ingest_catalog_end();
}

/*
 * ingest_plan_analyze_items
 *		ANALYZE items: tables after their indexes, partitioned roots at the
 *		end.
 */
List *
ingest_plan_analyze_items(List *rels)
{
	List	   *items = NIL;
	ListCell   *lc;

	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);
		SchemaItem *it;

		if (!r->in_scope || !ingest_is_table(r->relkind))
			continue;
		/* a partition is analyzed with its root */
		if (r->root_rel != NULL)
			continue;
		it = palloc0(sizeof(SchemaItem));
		it->kind = "analyze";
		it->nspname = r->nspname;
		it->relname = r->relname;
		it->cost = r->bytes_table;
		it->stage = r->relkind == 'p' ? STAGE_FOREIGN_KEY : STAGE_CONSTRAINT;
		it->statement = psprintf("ANALYZE %s", ingest_qualified(r->nspname, r->relname));
		items = lappend(items, it);
	}
	return items;
}

