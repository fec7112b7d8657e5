/*-------------------------------------------------------------------------
 *
 * infer.c
 *	  Schema changes of the source read from the change stream itself
 *	  (ddl => 'infer'), or refused there (ddl => 'off').
 *
 * The applier calls ingest_infer_change() with each row change before it
 * applies it.  The change's columns are compared with the target table's:
 *	- a column the target lacks (in an INSERT's or UPDATE's new row, or in
 *	  the old row that REPLICA IDENTITY FULL sends) was added on the source;
 *	- a column of the target that an INSERT does not send, or that an
 *	  UPDATE does not send although its type is of fixed length (only
 *	  TOASTed values, of varlena types, are left out of an UPDATE when
 *	  unchanged), was dropped on the source.  A DELETE sends only the
 *	  identity and tells nothing of the other columns;
 *	- a column whose type (wal2json's "include-types", which the receiver
 *	  asks for under ddl => 'infer') is not the target column's had its
 *	  type changed.
 * Under 'infer' the target is adjusted right there, inside the applier's
 * transaction, so the adjustment commits atomically with the changes that
 * follow it in the stream (and is undone with them): ALTER TABLE ... ADD
 * COLUMN, DROP COLUMN, ALTER COLUMN ... TYPE, each recorded as an INFO
 * event.  What the stream cannot say comes from the source's catalog as it
 * is now, looked up when a column is added: its default, NOT NULL, the
 * value rows that existed got (atthasmissing), a generation expression.
 * The catalog may have moved on since the change (a column added then
 * dropped again): a column the source no longer has is added with the
 * stream's type and nothing else, and dropped again where the stream stops
 * sending it.
 *
 * What cannot be inferred fails the migration, naming the table, the
 * columns and the LSN: a column gone while a new one of the same type
 * appears (a rename cannot be told from a drop and an add, and dropping
 * would lose the column's values); a column gone from a table that
 * pg_ingest did not create (schema_mode other than 'copy': the target may
 * have columns of its own); values of a column added with a volatile
 * default on rows that existed.  Under 'off' every difference fails the
 * migration so, with the hint to change the target by hand and resume:
 * ingest.resume() applies the same change again.
 *
 * A change of a table the migration does not know (created on the source
 * after the snapshot) is infer_table.c's.
 *
 * State: a per-process cache (this applier's) of the last column list that
 * matched each target table, so an unchanged table costs one comparison of
 * names per change; it is forgotten on any invalidation of the table.  The
 * source connection for catalog lookups is opened when first needed.
 * Nothing lives in shared memory; what was inferred is in ingest.events.
 *
 * A table is altered only if ingest_check_target() accepts it (not an
 * extension's nor a Citus table), and as the migration's owner: ALTER
 * TABLE's own ownership check applies.
 *
 * Locking: ALTER TABLE takes AccessExclusiveLock on the target table, held
 * until the applier's transaction commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/pg_list.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "parser/parse_type.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/resowner.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "conn.h"
#include "infer.h"
#include "schema.h"
#include "source.h"
#include "target.h"

/* The last column list of a table that matched its target. */
typedef struct InferSig
{
	Oid			relid;			/* hash key */
	bool		valid;
	bool		have[4];		/* by sig_slot() */
	int			ncols[4];
	char	  **names[4];
	char	  **types[4];
	MemoryContext cxt;
} InferSig;

/* A column of the target table, as the comparison needs it. */
typedef struct TargetCol
{
	char	   *name;
	Oid			typid;
	int32		typmod;
	int16		attlen;
	bool		seen;			/* sent in the change */
} TargetCol;

/* A column of the source table as its catalog has it now. */
typedef struct SourceCol
{
	char	   *name;
	char	   *type;			/* format_type, qualified */
	bool		notnull;
	char	   *def;			/* pg_get_expr of the default, or NULL */
	char	   *missing;		/* value of the rows that existed, or NULL */
	bool		generated;
} SourceCol;

static HTAB *sigs = NULL;
static MemoryContext infer_cxt = NULL;
static PGconn *source = NULL;

static void
invalidate_sigs(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	InferSig   *s;

	if (sigs == NULL)
		return;
	hash_seq_init(&status, sigs);
	while ((s = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || s->relid == relid)
			s->valid = false;
}

/*
 * ingest_infer_enabled
 *		Whether the applier adjusts the target to schema changes it reads in
 *		the stream (and the receiver asks wal2json for column types): under
 *		ddl => 'infer', and under 'replicate' where the source allowed no
 *		event trigger (ddl_via 'stream', decided by the coordinator before
 *		the receiver and the applier start: ddl.c).
 */
bool
ingest_infer_enabled(IngestMigration *m)
{
	if (m->ddl == NULL)
		return false;
	if (strcmp(m->ddl, "infer") == 0)
		return true;
	return strcmp(m->ddl, "replicate") == 0 && m->ddl_via != NULL &&
		strcmp(m->ddl_via, "stream") == 0;
}

/* Whether a difference between the stream and the target fails the migration. */
static bool
ddl_off(IngestMigration *m)
{
	/*
	 * Under 'replicate' with the event trigger, a difference is a command
	 * that trigger did not carry: refused the same way.
	 */
	return !ingest_infer_enabled(m);
}

/* Where a change's new row (or old row) list is remembered. */
static int
sig_slot(W2JChange *c, bool identity)
{
	if (!identity)
		return c->action == 'I' ? 0 : 1;
	return c->action == 'U' ? 2 : 3;
}

static bool
same_list(InferSig *s, int k, W2JColumn *cols, int n)
{
	int			i;

	if (s->ncols[k] != n)
		return false;
	for (i = 0; i < n; i++)
	{
		if (strcmp(s->names[k][i], cols[i].name) != 0)
			return false;
		if ((s->types[k][i] == NULL) != (cols[i].type == NULL) ||
			(cols[i].type && strcmp(s->types[k][i], cols[i].type) != 0))
			return false;
	}
	return true;
}

static void
remember_list(InferSig *s, int k, W2JColumn *cols, int n)
{
	int			i;

	s->have[k] = true;
	s->ncols[k] = n;
	s->names[k] = MemoryContextAlloc(s->cxt, sizeof(char *) * Max(n, 1));
	s->types[k] = MemoryContextAlloc(s->cxt, sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		s->names[k][i] = MemoryContextStrdup(s->cxt, cols[i].name);
		s->types[k][i] = cols[i].type ? MemoryContextStrdup(s->cxt, cols[i].type) : NULL;
	}
}

static InferSig *
get_sig(Oid relid)
{
	InferSig   *s;
	bool		found;

	if (sigs == NULL)
	{
		HASHCTL		ctl;

		infer_cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest infer",
										  ALLOCSET_SMALL_SIZES);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(InferSig);
		ctl.hcxt = infer_cxt;
		sigs = hash_create("pg_ingest infer", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(invalidate_sigs, (Datum) 0);
	}
	s = hash_search(sigs, &relid, HASH_ENTER, &found);
	if (!found)
	{
		s->valid = false;
		s->cxt = AllocSetContextCreate(infer_cxt, "pg_ingest infer table",
									   ALLOCSET_SMALL_SIZES);
	}
	return s;
}

/* The type a stream column's type name stands for here; false if none. */
static bool
stream_type(const char *name, Oid *typid, int32 *typmod)
{
	if (name == NULL)
		return false;
	parseTypeString(name, typid, typmod, true);
	return OidIsValid(*typid);
}

/* Whether a stream column's type is the target column's. */
static bool
same_type(W2JColumn *col, TargetCol *t)
{
	Oid			typid;
	int32		typmod;

	if (col->type == NULL)
		return true;			/* not sent: nothing to compare */
	if (strcmp(col->type, format_type_with_typemod(t->typid, t->typmod)) == 0)
		return true;
	/* qualified differently, or a type this server does not have */
	if (!stream_type(col->type, &typid, &typmod))
		return true;
	return typid == t->typid && typmod == t->typmod;
}

static TargetCol *
find_col(TargetCol *cols, int n, const char *name)
{
	int			i;

	for (i = 0; i < n; i++)
		if (strcmp(cols[i].name, name) == 0)
			return &cols[i];
	return NULL;
}

static bool
name_in(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp(((W2JColumn *) lfirst(lc))->name, name) == 0)
			return true;
	return false;
}

/* "a", "b" and "c" */
static char *
name_list(List *cols, bool target)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, cols)
	{
		const char *name = target ? ((TargetCol *) lfirst(lc))->name :
			((W2JColumn *) lfirst(lc))->name;

		if (buf.len > 0)
			appendStringInfoString(&buf, lnext(cols, lc) ? ", " : " and ");
		appendStringInfo(&buf, "\"%s\"", name);
	}
	return buf.data;
}

/* The source's columns of a table, as its catalog has them now. */
static List *
source_columns(IngestMigration *m, IngestConnInfo *info, const char *nspname,
			   const char *relname)
{
	const char *params[2] = {nspname, relname};
	PGresult   *res;
	List	   *cols = NIL;
	int			i;

	if (source == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		source = ingest_connect_or_error(info, INGEST_CONN_SQL,
										 psprintf("pg_ingest %s applier (ddl)", m->name));
		MemoryContextSwitchTo(old);
	}
	res = PQexecParams(source,
					   "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),"
					   " a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid),"
					   " CASE WHEN a.atthasmissing"
					   "  THEN (a.attmissingval::pg_catalog.text::pg_catalog.text[])[1] END,"
					   " a.attgenerated <> ''"
					   " FROM pg_catalog.pg_attribute a"
					   " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
					   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					   " LEFT JOIN pg_catalog.pg_attrdef d"
					   "  ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
					   " WHERE n.nspname = $1 AND c.relname = $2"
					   " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		ingest_report_result_error(source, res, ERROR,
								   "read a table's columns", info->password);
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		SourceCol  *sc = palloc0(sizeof(SourceCol));

		sc->name = pstrdup(PQgetvalue(res, i, 0));
		sc->type = pstrdup(PQgetvalue(res, i, 1));
		sc->notnull = strcmp(PQgetvalue(res, i, 2), "t") == 0;
		sc->def = PQgetisnull(res, i, 3) ? NULL : pstrdup(PQgetvalue(res, i, 3));
		sc->missing = PQgetisnull(res, i, 4) ? NULL : pstrdup(PQgetvalue(res, i, 4));
		sc->generated = strcmp(PQgetvalue(res, i, 5), "t") == 0;
		cols = lappend(cols, sc);
	}
	PQclear(res);
	return cols;
}

static SourceCol *
find_source_col(List *cols, const char *name)
{
	ListCell   *lc;

	foreach(lc, cols)
		if (strcmp(((SourceCol *) lfirst(lc))->name, name) == 0)
			return lfirst(lc);
	return NULL;
}

/*
 * Run one statement on the target as the migration's owner.  Parts of it
 * come from the source's catalog (a default expression): it must parse as
 * exactly one statement.
 */
static void
run_ddl(const char *sql)
{
	List	   *parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
	int			rc;

	if (list_length(parsed) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("inferred schema change is not one statement: %s", sql)));
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute(sql, false, 0);
	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute returned %d for: %s", rc, sql);
	SPI_finish();
	PopActiveSnapshot();
	CommandCounterIncrement();
}

/* An INFO event of what was inferred, and where in the stream. */
void
ingest_inferred(IngestMigration *m, const char *object, XLogRecPtr lsn,
				const char *what, const char *detail)
{
	ingest_event(m->id, "INFO", "ddl", object,
				 psprintf("%s (inferred from the stream at LSN %X/%X)",
						  what, LSN_FORMAT_ARGS(lsn)),
				 detail);
}

/*
 * Add a column the stream sends and the target lacks, with what the
 * source's catalog says of it now if it still has it with that type.
 */
static void
add_column(IngestMigration *m, Oid relid, const char *alter, const char *object,
		   W2JColumn *col, SourceCol *sc, XLogRecPtr lsn)
{
	Oid			typid;
	int32		typmod;
	char	   *type;
	char	   *shown;
	const char *qcol = quote_identifier(col->name);
	StringInfoData sql;
	char	   *detail = NULL;
	AttrNumber	attnum;

	if (!stream_type(col->type, &typid, &typmod) &&
		!(sc && stream_type(sc->type, &typid, &typmod)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cannot infer column \"%s\" added to %s on the source at LSN %X/%X: its type %s is unknown here",
						col->name, object, LSN_FORMAT_ARGS(lsn),
						col->type ? col->type : sc ? sc->type : "(not sent)"),
				 errhint("Add the column to the target table by hand and call ingest.resume().")));
	type = format_type_extended(typid, typmod,
								FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
	shown = format_type_with_typemod(typid, typmod);

	/* the catalog's word counts only for the same column: same type */
	if (sc)
	{
		Oid			styp;
		int32		smod;

		if (!stream_type(sc->type, &styp, &smod) || styp != typid || smod != typmod)
			sc = NULL;
	}

	initStringInfo(&sql);
	appendStringInfo(&sql, "%s ADD COLUMN %s %s", alter, qcol, type);
	if (sc == NULL)
	{
		run_ddl(sql.data);
		ingest_inferred(m, object, lsn, psprintf("added column %s %s", qcol, shown),
				 "The source's catalog no longer has this column as the stream sends it: it was added with no default nor constraint.");
		return;
	}
	if (sc->generated && sc->def)
	{
		appendStringInfo(&sql, " GENERATED ALWAYS AS (%s) STORED", sc->def);
		run_ddl(sql.data);
		ingest_inferred(m, object, lsn,
				 psprintf("added column %s %s generated always as (%s) stored",
						  qcol, shown, sc->def), NULL);
		return;
	}
	if (sc->missing)
	{
		/* rows that existed hold this value (ADD COLUMN ... DEFAULT constant) */
		appendStringInfo(&sql, " DEFAULT %s::%s", quote_literal_cstr(sc->missing), type);
		detail = psprintf("Rows that existed on the source got %s.", sc->missing);
	}
	else if (sc->def && sc->notnull)
	{
		/* rows that existed cannot be null: they hold the default */
		appendStringInfo(&sql, " DEFAULT %s", sc->def);
		detail = psprintf("Rows that existed on the source hold the default %s.", sc->def);
	}
	else if (sc->def)
		detail = psprintf("The default %s is set for new rows; rows that existed are null, as they are on the source if the default was set after the column was added (ingest.verify() tells).", sc->def);
	if (sc->notnull)
		appendStringInfoString(&sql, " NOT NULL");
	run_ddl(sql.data);

	if (sc->def && !sc->missing && sc->notnull)
	{
		/* a volatile default gave each row its own value on the source */
		Relation	rel = table_open(relid, NoLock);
		Node	   *def;

		attnum = get_attnum(relid, col->name);
		def = build_column_default(rel, attnum);
		table_close(rel, NoLock);
		if (def && contain_volatile_functions(def))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot infer the values of column \"%s\" added to %s on the source at LSN %X/%X",
							col->name, object, LSN_FORMAT_ARGS(lsn)),
					 errdetail("Its default %s is volatile: each row that existed got its own value on the source, which the stream does not carry.",
							   sc->def),
					 errhint("Add the column to the target table by hand, copy its values from the source, and call ingest.resume(); or use ddl => 'replicate'.")));
	}
	/* the default for new rows is the source's */
	if (sc->def && sc->missing)
		run_ddl(psprintf("%s ALTER COLUMN %s SET DEFAULT %s", alter, qcol, sc->def));
	else if (!sc->def && sc->missing)
		run_ddl(psprintf("%s ALTER COLUMN %s DROP DEFAULT", alter, qcol));
	else if (sc->def && !sc->notnull)
		run_ddl(psprintf("%s ALTER COLUMN %s SET DEFAULT %s", alter, qcol, sc->def));

	if (sc->def && !sc->missing && !sc->notnull)
		ingest_event(m->id, "WARNING", "ddl", object,
					 psprintf("column %s was inferred null on the rows that existed when it was added; check with ingest.verify()",
							  qcol),
					 "The source's catalog gives a default but no value for rows that existed: the default was set after the column was added (the rows are null), or the table was rewritten since (they hold the default).");
	ingest_inferred(m, object, lsn,
			 psprintf("added column %s %s%s%s%s", qcol, shown,
					  sc->def ? " default " : "", sc->def ? sc->def : "",
					  sc->notnull ? " not null" : ""),
			 detail);
}

/*
 * ingest_infer_change
 *		Compare a row change (I, U, D) of the source table with its target
 *		table relid; adjust the target (ddl => 'infer') or fail (ddl =>
 *		'off') where they differ.  True if the target was altered: the
 *		caller looks the table up again.
 */
bool
ingest_infer_change(IngestMigration *m, IngestConnInfo *info, Oid relid,
					W2JChange *c)
{
	InferSig   *sig;
	Relation	rel;
	TupleDesc	desc;
	TargetCol  *tcols;
	int			ntcols = 0;
	List	   *added = NIL;	/* W2JColumn */
	List	   *retyped = NIL;	/* W2JColumn */
	List	   *gone = NIL;		/* TargetCol */
	List	   *varlena_unsent = NIL;	/* TargetCol: unsent, maybe unchanged */
	List	   *srccols = NIL;
	bool		have_src = false;
	char	   *object;
	char	   *alter;
	Oid			alter_relid = relid;
	int			i;
	int			k;
	ListCell   *lc;

	if (!ingest_infer_enabled(m) && !ddl_off(m))
		return false;
	if (c->action != 'I' && c->action != 'U' && c->action != 'D')
		return false;

	sig = get_sig(relid);
	if (sig->valid &&
		(c->action == 'D' ||
		 (sig->have[sig_slot(c, false)] &&
		  same_list(sig, sig_slot(c, false), c->columns, c->ncolumns))) &&
		(c->nidentity == 0 ||
		 (sig->have[sig_slot(c, true)] &&
		  same_list(sig, sig_slot(c, true), c->identity, c->nidentity))))
		return false;

	/* the target's columns */
	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	tcols = palloc0(sizeof(TargetCol) * Max(desc->natts, 1));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		tcols[ntcols].name = pstrdup(NameStr(att->attname));
		tcols[ntcols].typid = att->atttypid;
		tcols[ntcols].typmod = att->atttypmod;
		tcols[ntcols].attlen = att->attlen;
		ntcols++;
	}

	/* the new row, then the old one */
	for (k = 0; k < 2; k++)
	{
		W2JColumn  *cols = k == 0 ? c->columns : c->identity;
		int			n = k == 0 ? c->ncolumns : c->nidentity;

		for (i = 0; i < n; i++)
		{
			TargetCol  *t = find_col(tcols, ntcols, cols[i].name);

			if (t == NULL)
			{
				if (!name_in(added, cols[i].name))
					added = lappend(added, &cols[i]);
				continue;
			}
			if (k == 0)
				t->seen = true;
			if (!same_type(&cols[i], t) && !name_in(retyped, cols[i].name))
				retyped = lappend(retyped, &cols[i]);
		}
	}
	if (c->action != 'D')
		for (i = 0; i < ntcols; i++)
		{
			if (tcols[i].seen)
				continue;
			if (c->action == 'I' || tcols[i].attlen > 0)
				gone = lappend(gone, &tcols[i]);
			else
				varlena_unsent = lappend(varlena_unsent, &tcols[i]);
		}

	object = ingest_qualified(c->schema, c->table);
	if (added == NIL && retyped == NIL && gone == NIL)
	{
		/* the same as the target: remember the lists */
		table_close(rel, AccessShareLock);
		if (!sig->valid)
		{
			MemoryContextReset(sig->cxt);
			memset(sig->have, 0, sizeof(sig->have));
			sig->valid = true;
		}
		if (c->action != 'D')
			remember_list(sig, sig_slot(c, false), c->columns, c->ncolumns);
		if (c->nidentity > 0)
			remember_list(sig, sig_slot(c, true), c->identity, c->nidentity);
		return false;
	}

	if (ddl_off(m))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 added ?
				 errmsg("table %s changed on the source: it has column%s %s, which the target table lacks (at LSN %X/%X)",
						object, list_length(added) > 1 ? "s" : "", name_list(added, false),
						LSN_FORMAT_ARGS(c->lsn)) :
				 gone ?
				 errmsg("table %s changed on the source: it no longer has column%s %s, which the target table has (at LSN %X/%X)",
						object, list_length(gone) > 1 ? "s" : "", name_list(gone, true),
						LSN_FORMAT_ARGS(c->lsn)) :
				 errmsg("table %s changed on the source: the type of column%s %s differs from the target's (at LSN %X/%X)",
						object, list_length(retyped) > 1 ? "s" : "", name_list(retyped, false),
						LSN_FORMAT_ARGS(c->lsn)),
				 strcmp(m->ddl, "off") == 0 ?
				 errdetail("The migration was started with ddl => 'off': schema changes on the source are not followed.") :
				 errdetail("The event trigger on the source carried no command for it (a command that fires no event trigger, or one run inside a function)."),
				 errhint("Apply the same change to the target table by hand (ALTER TABLE), then call ingest.resume().")));

	/*
	 * A column gone and a new one: for an UPDATE, a varlena column it does
	 * not send is gone too if the source no longer has it.
	 */
	if (added != NIL && varlena_unsent != NIL)
	{
		srccols = source_columns(m, info, c->schema, c->table);
		have_src = true;
		foreach(lc, varlena_unsent)
			if (find_source_col(srccols, ((TargetCol *) lfirst(lc))->name) == NULL)
				gone = lappend(gone, lfirst(lc));
	}

	/* a rename looks like a drop and an add of the same type */
	foreach(lc, added)
	{
		W2JColumn  *a = lfirst(lc);
		ListCell   *lg;

		foreach(lg, gone)
		{
			TargetCol  *g = lfirst(lg);

			if (same_type(a, g))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot infer the schema change of table %s at LSN %X/%X: column \"%s\" is gone and a new column \"%s\" of the same type %s appeared",
								object, LSN_FORMAT_ARGS(c->lsn), g->name, a->name,
								format_type_with_typemod(g->typid, g->typmod)),
						 errdetail("A rename cannot be told from a drop and an add in the change stream, and dropping \"%s\" would lose its values.",
								   g->name),
						 errhint("Use ddl => 'replicate' with a source user that may create event triggers, or apply the change to the target by hand (ALTER TABLE %s RENAME COLUMN %s TO %s) and call ingest.resume().",
								 RelationGetRelationName(rel), quote_identifier(g->name),
								 quote_identifier(a->name))));
		}
	}
	if (gone != NIL && strcmp(m->schema_mode, "copy") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot infer the schema change of table %s at LSN %X/%X: the source no longer sends column%s %s",
						object, LSN_FORMAT_ARGS(c->lsn), list_length(gone) > 1 ? "s" : "",
						name_list(gone, true)),
				 errdetail("pg_ingest did not create the target table (schema_mode %s): its columns may be its own.",
						   m->schema_mode),
				 errhint("Drop the columns on the target by hand if the source dropped them, and call ingest.resume().")));

	/* a partition is altered through the root of its tree */
	if (rel->rd_rel->relispartition)
		alter_relid = llast_oid(get_partition_ancestors(relid));
	/* never a table the migration may not write (an extension's, Citus's) */
	ingest_check_target(alter_relid, m->owner, 0);
	alter = psprintf("ALTER TABLE %s", ingest_relid_name(alter_relid));
	table_close(rel, AccessShareLock);

	foreach(lc, gone)
	{
		TargetCol  *g = lfirst(lc);

		run_ddl(psprintf("%s DROP COLUMN %s", alter, quote_identifier(g->name)));
		ingest_inferred(m, object, c->lsn,
				 psprintf("dropped column %s", quote_identifier(g->name)), NULL);
	}
	foreach(lc, retyped)
	{
		W2JColumn  *col = lfirst(lc);
		Oid			typid;
		int32		typmod;
		char	   *type;

		if (!stream_type(col->type, &typid, &typmod))
			continue;
		type = format_type_extended(typid, typmod,
									FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
		run_ddl(psprintf("%s ALTER COLUMN %s TYPE %s USING %s::%s", alter,
						 quote_identifier(col->name), type,
						 quote_identifier(col->name), type));
		ingest_inferred(m, object, c->lsn,
				 psprintf("changed the type of column %s to %s", quote_identifier(col->name),
						  format_type_with_typemod(typid, typmod)), NULL);
	}
	if (added != NIL)
	{
		if (!have_src)
			srccols = source_columns(m, info, c->schema, c->table);
		foreach(lc, added)
		{
			W2JColumn  *col = lfirst(lc);

			add_column(m, alter_relid, alter, object, col,
					   find_source_col(srccols, col->name), c->lsn);
		}
	}
	sig->valid = false;
	return true;
}
