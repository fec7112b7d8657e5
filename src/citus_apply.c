/*-------------------------------------------------------------------------
 *
 * citus_apply.c
 *	  The applier's changes of a Citus distributed or reference table,
 *	  through Citus to the shard (citus.c has the detection and the
 *	  transaction block each batch runs in).
 *
 * The applier: changes of a Citus table are applied with SPI prepared
 * statements (kept per statement text for the life of the process), so
 * the distributed planner routes each to its shard: the WHERE clause is
 * the change's identity, which holds the distribution column, since every
 * key of a distributed table does.  Unchanged TOAST columns are left out
 * of the SET list, and so is the distribution column when unchanged; an
 * UPDATE that changes it is a DELETE ... RETURNING and an INSERT of the
 * merged row.  Each UPDATE and DELETE must affect exactly one row.
 *
 *
 * State: the prepared statements, kept per statement text for the life of
 * the process (the applier); nothing in the catalog or shared memory.
 *
 * Locking: RowExclusiveLock on the shell table (taken by the applier and
 * by the statements); Citus takes its own on the shards.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "citus.h"
#include "source.h"
#include "target.h"

/* Prepared statements of the applier, by statement text. */
typedef struct CitusPlan
{
	uint32		hash;			/* hash key: of the text */
	List	   *entries;		/* CitusPlanEntry, several texts may share a hash */
} CitusPlan;

typedef struct CitusPlanEntry
{
	char	   *sql;
	SPIPlanPtr	plan;
} CitusPlanEntry;

static HTAB *citus_plans = NULL;

/* ------------------------------------------------------------------------
 * The applier's statements
 * ------------------------------------------------------------------------
 */

/* A column of the target table, for a change. */
typedef struct CitusCol
{
	AttrNumber	attnum;
	Oid			typid;
	int32		typmod;
	bool		skip;			/* dropped or generated */
} CitusCol;

/* A value of a change in the column's type (wal2json drops bytea's \x). */
static Datum
column_value(Form_pg_attribute att, W2JColumn *col)
{
	Oid			infunc;
	Oid			ioparam;
	char	   *value = col->value;

	getTypeInputInfo(att->atttypid, &infunc, &ioparam);
	if (att->atttypid == BYTEAOID && !col->is_number)
		value = psprintf("\\x%s", value);
	return OidInputFunctionCall(infunc, value, ioparam, att->atttypmod);
}

typedef struct Params
{
	int			n;
	Oid		   *types;
	Datum	   *values;
	char	   *nulls;
} Params;

static int
add_param(Params *p, Oid typid, Datum value, bool isnull)
{
	p->types[p->n] = typid;
	p->values[p->n] = value;
	p->nulls[p->n] = isnull ? 'n' : ' ';
	return ++p->n;
}

static void
init_params(Params *p, int max)
{
	p->n = 0;
	p->types = palloc(sizeof(Oid) * Max(max, 1));
	p->values = palloc(sizeof(Datum) * Max(max, 1));
	p->nulls = palloc(sizeof(char) * Max(max, 1));
}

/* The prepared statement of sql, made and kept on first use. */
static SPIPlanPtr
plan_for(const char *sql, Params *p)
{
	uint32		hash = hash_bytes((const unsigned char *) sql, strlen(sql));
	CitusPlan  *e;
	bool		found;
	ListCell   *lc;
	CitusPlanEntry *pe;
	MemoryContext old;

	if (citus_plans == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(CitusPlan);
		ctl.hcxt = TopMemoryContext;
		citus_plans = hash_create("pg_ingest citus statements", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(citus_plans, &hash, HASH_ENTER, &found);
	if (!found)
		e->entries = NIL;
	foreach(lc, e->entries)
	{
		pe = lfirst(lc);
		if (strcmp(pe->sql, sql) == 0)
			return pe->plan;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	pe = palloc(sizeof(CitusPlanEntry));
	pe->sql = pstrdup(sql);
	MemoryContextSwitchTo(old);
	pe->plan = SPI_prepare(sql, p->n, p->types);
	if (pe->plan == NULL)
		elog(ERROR, "could not prepare %s: %s", sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(pe->plan) != 0)
		elog(ERROR, "could not keep the plan of %s", sql);
	old = MemoryContextSwitchTo(TopMemoryContext);
	e->entries = lappend(e->entries, pe);
	MemoryContextSwitchTo(old);
	return pe->plan;
}

static uint64
run(const char *sql, Params *p, bool returning)
{
	SPIPlanPtr	plan = plan_for(sql, p);
	int			rc = SPI_execute_plan(plan, p->values, p->nulls, false, 0);

	if (rc < 0)
		elog(ERROR, "could not run %s: %s", sql, SPI_result_code_string(rc));
	return SPI_processed;
}

/* " WHERE a = $1 AND b IS NULL ..." for the change's identity */
static void
append_identity(StringInfo sql, Relation rel, W2JChange *c, Params *p)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;
	int			n = 0;

	for (i = 0; i < c->nidentity; i++)
	{
		int			att = ingest_target_column(rel, c->identity[i].name);
		Form_pg_attribute a = TupleDescAttr(desc, att);

		if (a->attgenerated != '\0')
			continue;
		appendStringInfoString(sql, n++ ? " AND " : " WHERE ");
		if (c->identity[i].value == NULL)
			appendStringInfo(sql, "%s IS NULL", quote_identifier(NameStr(a->attname)));
		else
			appendStringInfo(sql, "%s = $%d", quote_identifier(NameStr(a->attname)),
							 add_param(p, a->atttypid, column_value(a, &c->identity[i]), false));
	}
}

static const char *
value_of(W2JColumn *cols, int n, const char *name, bool *present)
{
	int			i;

	for (i = 0; i < n; i++)
		if (strcmp(cols[i].name, name) == 0)
		{
			*present = true;
			return cols[i].value;
		}
	*present = false;
	return NULL;
}

/* INSERT of the row: values given (Datum, null) per attribute, NULL ones skipped */
static void
insert_row(Relation rel, const char *target, Datum *values, bool *isnull, bool *given)
{
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData cols;
	StringInfoData vals;
	Params		p;
	int			i;

	initStringInfo(&cols);
	initStringInfo(&vals);
	init_params(&p, desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || a->attgenerated != '\0' || !given[i])
			continue;
		if (p.n > 0)
		{
			appendStringInfoString(&cols, ", ");
			appendStringInfoString(&vals, ", ");
		}
		appendStringInfoString(&cols, quote_identifier(NameStr(a->attname)));
		appendStringInfo(&vals, "$%d", add_param(&p, a->atttypid, values[i], isnull[i]));
	}
	(void) run(p.n ? psprintf("INSERT INTO %s (%s) VALUES (%s)", target, cols.data, vals.data) :
			   psprintf("INSERT INTO %s DEFAULT VALUES", target), &p, false);
}

/*
 * ingest_citus_apply_change
 *		Apply an insert, update or delete of source table c->schema.c->table
 *		to Citus table relid (locked by the caller) through Citus.
 */
void
ingest_citus_apply_change(Oid relid, W2JChange *c)
{
	Relation	rel = table_open(relid, NoLock);
	TupleDesc	desc = RelationGetDescr(rel);
	char	   *target = ingest_relid_name(relid);
	AttrNumber	distattno;
	const char *distcol = NULL;
	StringInfoData sql;
	Params		p;
	int			i;
	uint64		n;

	(void) ingest_citus_method(relid, &distattno);
	if (distattno > 0)
		distcol = NameStr(TupleDescAttr(desc, distattno - 1)->attname);
	initStringInfo(&sql);
	init_params(&p, c->ncolumns + c->nidentity + 1);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if ((c->action == 'U' || c->action == 'D') && c->nidentity == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the source sent no key for a change of %s.%s",
						quote_identifier(c->schema), quote_identifier(c->table)),
				 errhint("ALTER TABLE ... REPLICA IDENTITY FULL on the source, or add a primary key.")));

	if (c->action == 'I')
	{
		Datum	   *values = palloc0(sizeof(Datum) * desc->natts);
		bool	   *isnull = palloc0(sizeof(bool) * desc->natts);
		bool	   *given = palloc0(sizeof(bool) * desc->natts);

		for (i = 0; i < c->ncolumns; i++)
		{
			int			att = ingest_target_column(rel, c->columns[i].name);

			given[att] = true;
			isnull[att] = c->columns[i].value == NULL;
			if (!isnull[att])
				values[att] = column_value(TupleDescAttr(desc, att), &c->columns[i]);
		}
		insert_row(rel, target, values, isnull, given);
	}
	else if (c->action == 'U')
	{
		bool		moves = false;

		if (distcol != NULL)
		{
			bool		in_new;
			bool		in_old;
			const char *newval = value_of(c->columns, c->ncolumns, distcol, &in_new);
			const char *oldval = value_of(c->identity, c->nidentity, distcol, &in_old);

			if (in_new && !in_old)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the source's key of %s.%s lacks column \"%s\", the distribution column of %s",
								quote_identifier(c->schema), quote_identifier(c->table),
								distcol, target),
						 errdetail("Without it, the shard that holds the row to change is unknown."),
						 errhint("ALTER TABLE ... REPLICA IDENTITY FULL on the source, or add the column to its primary key.")));
			moves = in_new && ((newval == NULL) != (oldval == NULL) ||
							   (newval && strcmp(newval, oldval) != 0));
		}
		if (!moves)
		{
			int			nset = 0;

			appendStringInfo(&sql, "UPDATE %s SET ", target);
			for (i = 0; i < c->ncolumns; i++)
			{
				int			att = ingest_target_column(rel, c->columns[i].name);
				Form_pg_attribute a = TupleDescAttr(desc, att);

				/* generated columns are the target's; the unchanged distribution column stays */
				if (a->attgenerated != '\0' || att + 1 == distattno)
					continue;
				appendStringInfo(&sql, "%s%s = $%d", nset++ ? ", " : "",
								 quote_identifier(NameStr(a->attname)),
								 add_param(&p, a->atttypid,
										   c->columns[i].value ? column_value(a, &c->columns[i]) : (Datum) 0,
										   c->columns[i].value == NULL));
			}
			if (nset == 0)
			{
				/* nothing but the key: the row must still be there */
				resetStringInfo(&sql);
				appendStringInfo(&sql, "SELECT 1 FROM %s", target);
			}
			append_identity(&sql, rel, c, &p);
			n = run(sql.data, &p, false);
			if (n != 1)
				ereport(ERROR,
						(errcode(ERRCODE_NO_DATA_FOUND),
						 errmsg("row to update not found in %s.%s",
								quote_identifier(c->schema), quote_identifier(c->table)),
						 n > 1 ? errdetail("The change's identity matched " UINT64_FORMAT " rows of %s.", n, target) : 0));
		}
		else
		{
			/* the row moves to another shard: delete it, insert the merged row */
			Datum	   *values = palloc0(sizeof(Datum) * desc->natts);
			bool	   *isnull = palloc0(sizeof(bool) * desc->natts);
			bool	   *given = palloc0(sizeof(bool) * desc->natts);
			int			ncols = 0;
			int			k;

			appendStringInfo(&sql, "DELETE FROM %s", target);
			append_identity(&sql, rel, c, &p);
			appendStringInfoString(&sql, " RETURNING ");
			for (i = 0; i < desc->natts; i++)
			{
				Form_pg_attribute a = TupleDescAttr(desc, i);

				if (a->attisdropped || a->attgenerated != '\0')
					continue;
				appendStringInfo(&sql, "%s%s", ncols++ ? ", " : "",
								 quote_identifier(NameStr(a->attname)));
			}
			n = run(sql.data, &p, true);
			if (n != 1)
				ereport(ERROR,
						(errcode(ERRCODE_NO_DATA_FOUND),
						 errmsg("row to update not found in %s.%s",
								quote_identifier(c->schema), quote_identifier(c->table))));
			k = 0;
			for (i = 0; i < desc->natts; i++)
			{
				Form_pg_attribute a = TupleDescAttr(desc, i);

				if (a->attisdropped || a->attgenerated != '\0')
					continue;
				k++;
				values[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, k,
										  &isnull[i]);
				if (!isnull[i])
					values[i] = datumCopy(values[i], a->attbyval, a->attlen);
				given[i] = true;
			}
			for (i = 0; i < c->ncolumns; i++)
			{
				int			att = ingest_target_column(rel, c->columns[i].name);

				isnull[att] = c->columns[i].value == NULL;
				values[att] = isnull[att] ? (Datum) 0 :
					column_value(TupleDescAttr(desc, att), &c->columns[i]);
			}
			insert_row(rel, target, values, isnull, given);
		}
	}
	else if (c->action == 'D')
	{
		appendStringInfo(&sql, "DELETE FROM %s", target);
		append_identity(&sql, rel, c, &p);
		n = run(sql.data, &p, false);
		if (n != 1)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("row to delete not found in %s.%s",
							quote_identifier(c->schema), quote_identifier(c->table)),
					 n > 1 ? errdetail("The change's identity matched " UINT64_FORMAT " rows of %s.", n, target) : 0));
	}
	SPI_finish();
	table_close(rel, NoLock);
}
