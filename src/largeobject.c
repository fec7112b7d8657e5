/*-------------------------------------------------------------------------
 *
 * largeobject.c
 *	  Large objects in the full load: the source's objects split into OID
 *	  ranges, a range copied by a copy worker, and how an object is read
 *	  from the source and made here (shared with the stop,
 *	  largeobject_stop.c).
 *
 * Logical decoding carries no large object (pg_largeobject is a catalog),
 * and pg_dump's schema-only sections hold none of them (no BLOB entry
 * without --blobs), so pg_ingest carries them all: this file in the full
 * load; largeobject_stop.c brings them up to date at the stop;
 * largeobject_check.c has ingest.start's checks, preflight's row and
 * ingest.verify's comparison.
 *
 * The full load.  The coordinator splits the source's large objects, as of
 * the migration's snapshot, into ranges of OIDs of about equal count
 * (ingest_lo_ranges, ingest_lo_store_items) stored as copy items of the
 * table pg_catalog.pg_largeobject whose page_from/page_to are the OID
 * range [from, to).  Copy workers claim them like tables and copy them on
 * their source connection, under the same imported snapshot
 * (ingest_lo_copy_range): one query in single-row mode gives, per object,
 * its metadata and its first chunk (lo_get, binary); objects longer than a
 * chunk get their other chunks afterwards, one lo_get each.  A chunk
 * (LO_CHUNK) is the most held in memory.  Here each object is made with
 * lo_create(oid), so it keeps its OID, written with lo_put, and given its
 * comment, owner and privileges (ingest_lo_copy_objects).
 *
 * A copy item is one transaction here: an item that fails leaves nothing,
 * and is retried whole.  After a new snapshot (source restart) the items
 * not yet copied are read under it; the items already copied are not
 * copied again (unlike a split table's parts, no object moves between
 * ranges), and the stop brings everything to the source's state anyway.
 *
 * Owners and privileges are carried by role name, as pg_dump does: an
 * owner the migration's owner may not give objects to here (no such role,
 * or not one it is a member of) leaves the object with the migration's
 * owner; a grantee that does not exist here is left out; each case is one
 * WARNING event (kind 'large objects') per copy item or stop, with the
 * count.  The comparison at the stop maps them the same way, so they do
 * not count as changes again.  Everything here runs as the migration's
 * owner, through the SQL functions (lo_create, lo_put, lo_unlink, GRANT,
 * ALTER LARGE OBJECT), so it does nothing that owner could not.
 *
 * State: the copy items in the catalog (ingest.copy_item); nothing in
 * shared memory but the copy worker's progress counters (MyIngestWorker's
 * bytes and rows).
 *
 * Locking: none of its own; the objects written are those of one item, in
 * the item's transaction (or the stop's), with the locks lo_create,
 * lo_put and lo_unlink take.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "conn.h"
#include "largeobject_int.h"
#include "pg_ingest.h"
#include "source.h"

/* Bytes of a large object read and written at a time. */
#define LO_CHUNK (1024 * 1024)
/* OID ranges of the full load: at most this many ... */
#define LO_MAX_PARTS 256
/* ... and about this many bytes each (pg_largeobject's size on disk) */
#define LO_PART_BYTES ((int64) 256 * 1024 * 1024)

static Oid	current_oid = InvalidOid;	/* for the error context */

static void
lo_error_context(void *arg)
{
	if (OidIsValid(current_oid))
		errcontext("large object %u", current_oid);
}

bool
ingest_lo_is_item(const char *nspname, const char *relname)
{
	return strcmp(nspname, "pg_catalog") == 0 && strcmp(relname, "pg_largeobject") == 0;
}

/*
 * The content hash of large object <oid> of size <size> (SQL expressions),
 * the same on both sides: md5 of the md5s of its LO_CHUNK chunks.
 */
char *
ingest_lo_hash_sql(const char *oid, const char *size)
{
	return psprintf("(SELECT pg_catalog.md5(pg_catalog.string_agg(pg_catalog.md5("
					"pg_catalog.lo_get(%s, g.g * %d, %d)), '' ORDER BY g.g))"
					" FROM pg_catalog.generate_series(0::pg_catalog.int8,"
					" GREATEST(%s - 1, 0) / %d) g(g))",
					oid, LO_CHUNK, LO_CHUNK, size, LO_CHUNK);
}

/*
 * FROM item giving s.sz, the size of large object m.oid, for any user who
 * may read it (pg_largeobject itself is for superusers): open, seek to the
 * end, close.  OFFSET 0 keeps each level a subquery of its own, so that the
 * close is evaluated after the seek.
 */
const char *ingest_lo_size_lateral =
" CROSS JOIN LATERAL (SELECT CASE WHEN pg_catalog.lo_close(z.fd) = 0 THEN z.sz END AS sz"
" FROM (SELECT f.fd, pg_catalog.lo_lseek64(f.fd, 0, 2) AS sz"
" FROM (SELECT pg_catalog.lo_open(m.oid, 262144) AS fd OFFSET 0) f OFFSET 0) z) s";

/*
 * The metadata of the large objects that match <where> (on alias m), by
 * OID, with the first chunk (LO_COPY) or the size and content hash
 * (LO_HASH).  $1: the roles an owner may be mapped to here, $2: the
 * migration's owner, who keeps the others, $3: the roles that exist here.
 * Privileges come as a sorted text[] of "<r|w><*|-><P|R><role>" (SELECT or
 * UPDATE, grant option, PUBLIC or a role), the owner's default ones
 * included, so that both sides compare as text.
 */
char *
ingest_lo_meta_sql(MetaMode mode, const char *where)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT m.oid::pg_catalog.text,"
						   " CASE WHEN o.rolname::pg_catalog.text = ANY($1::pg_catalog.text[])"
						   "  THEN o.rolname::pg_catalog.text ELSE $2::pg_catalog.text END,"
						   " o.rolname::pg_catalog.text,"
						   " (SELECT pg_catalog.array_agg(k.k ORDER BY k.k COLLATE \"C\")::pg_catalog.text"
						   "  FROM (SELECT DISTINCT"
						   "   CASE a.privilege_type WHEN 'SELECT' THEN 'r' WHEN 'UPDATE' THEN 'w' ELSE '?' END"
						   "   || CASE WHEN a.is_grantable THEN '*' ELSE '-' END"
						   "   || CASE WHEN a.grantee = 0 THEN 'P'"
						   "      WHEN a.grantee = m.lomowner AND NOT o.rolname::pg_catalog.text = ANY($1::pg_catalog.text[])"
						   "      THEN 'R' || $2::pg_catalog.text"
						   "      ELSE 'R' || g.rolname::pg_catalog.text END AS k"
						   "   FROM pg_catalog.aclexplode(COALESCE(m.lomacl, pg_catalog.acldefault('L', m.lomowner))) a"
						   "   LEFT JOIN pg_catalog.pg_roles g ON g.oid = a.grantee"
						   "   WHERE a.grantee = 0 OR a.grantee = m.lomowner"
						   "   OR g.rolname::pg_catalog.text = ANY($3::pg_catalog.text[])) k),"
						   " (m.lomacl IS NULL)::pg_catalog.text,"
						   " (SELECT pg_catalog.string_agg(DISTINCT g.rolname::pg_catalog.text, ', ')"
						   "  FROM pg_catalog.aclexplode(m.lomacl) a"
						   "  JOIN pg_catalog.pg_roles g ON g.oid = a.grantee"
						   "  WHERE a.grantee <> m.lomowner"
						   "  AND NOT g.rolname::pg_catalog.text = ANY($3::pg_catalog.text[])),"
						   " pg_catalog.obj_description(m.oid, 'pg_largeobject')");
	if (mode == LO_COPY)
		appendStringInfo(&sql, ", pg_catalog.lo_get(m.oid, 0, %d)", LO_CHUNK);
	else
		appendStringInfo(&sql, ", s.sz::pg_catalog.text, %s", ingest_lo_hash_sql("m.oid", "s.sz"));
	appendStringInfoString(&sql,
						   " FROM pg_catalog.pg_largeobject_metadata m"
						   " JOIN pg_catalog.pg_roles o ON o.oid = m.lomowner");
	if (mode == LO_HASH)
		appendStringInfoString(&sql, ingest_lo_size_lateral);
	appendStringInfo(&sql, " WHERE %s ORDER BY m.oid", where);
	return sql.data;
}

/* The roles of this server, as the current user (the migration's owner) sees them. */
LoRoles *
ingest_lo_target_roles(void)
{
	LoRoles    *r = palloc0(sizeof(LoRoles));
	MemoryContext cxt = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT COALESCE(pg_catalog.array_agg(rolname::pg_catalog.text)"
					"  FILTER (WHERE pg_catalog.pg_has_role(oid, 'MEMBER')), '{}')::pg_catalog.text,"
					" COALESCE(pg_catalog.array_agg(rolname::pg_catalog.text), '{}')::pg_catalog.text"
					" FROM pg_catalog.pg_roles", true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not list the roles");
	r->owners = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	r->all = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	SPI_finish();
	r->me = GetUserNameFromId(GetUserId(), false);
	return r;
}

/* Wait for the next result of conn, interruptibly. */
static PGresult *
next_result(PGconn *conn)
{
	while (PQisBusy(conn))
	{
		int			rc;

		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
							   PQsocket(conn), -1L, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if ((rc & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
			break;
	}
	return PQgetResult(conn);
}

/* Send a query with text parameters, its result in single-row mode. */
void
ingest_lo_send_rows(PGconn *conn, const char *sql, int nparams, const char *const *params,
		  bool binary, const char *what, const char *password)
{
	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, binary ? 1 : 0) ||
		!PQsetSingleRowMode(conn))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not %s on the source: %s", what,
						ingest_scrub(ingest_conn_error(conn), password))));
}

/*
 * The next row of a single-row query, or NULL at its end (the rest of the
 * results read).  An error of the source is raised.
 */
PGresult *
ingest_lo_next_row(PGconn *conn, const char *what, const char *password)
{
	PGresult   *res = next_result(conn);

	if (res != NULL && PQresultStatus(res) == PGRES_SINGLE_TUPLE)
		return res;
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		ingest_report_result_error(conn, res, ERROR, what, password);
	}
	PQclear(res);
	while ((res = next_result(conn)) != NULL)
		PQclear(res);
	return NULL;
}

char *
ingest_lo_getstr(PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? NULL : pstrdup(PQgetvalue(res, 0, col));
}

LoMeta *
ingest_lo_read_meta(PGresult *res)
{
	LoMeta	   *lm = palloc0(sizeof(LoMeta));

	lm->oid = (Oid) strtoul(PQgetvalue(res, 0, COL_OID), NULL, 10);
	lm->owner = ingest_lo_getstr(res, COL_OWNER);
	lm->source_owner = ingest_lo_getstr(res, COL_SOURCE_OWNER);
	lm->acl = ingest_lo_getstr(res, COL_ACL);
	lm->acl_default = strcmp(PQgetvalue(res, 0, COL_ACL_DEFAULT), "true") == 0 ||
		strcmp(PQgetvalue(res, 0, COL_ACL_DEFAULT), "t") == 0;
	lm->dropped = ingest_lo_getstr(res, COL_DROPPED);
	lm->comment = ingest_lo_getstr(res, COL_COMMENT);
	return lm;
}

static LoMeta *
copy_meta(LoMeta *lm)
{
	LoMeta	   *c = palloc(sizeof(LoMeta));

	c->oid = lm->oid;
	c->owner = pstrdup(lm->owner);
	c->source_owner = pstrdup(lm->source_owner);
	c->acl = lm->acl ? pstrdup(lm->acl) : NULL;
	c->acl_default = lm->acl_default;
	c->dropped = lm->dropped ? pstrdup(lm->dropped) : NULL;
	c->comment = lm->comment ? pstrdup(lm->comment) : NULL;
	return c;
}

void
ingest_lo_prepare_plans(LoPlans *p)
{
	Oid			types[3] = {OIDOID, INT8OID, BYTEAOID};

	p->create = SPI_prepare("SELECT pg_catalog.lo_create($1)", 1, types);
	p->put = SPI_prepare("SELECT pg_catalog.lo_put($1, $2, $3)", 3, types);
	p->unlink = SPI_prepare("SELECT pg_catalog.lo_unlink($1)", 1, types);
	if (!p->create || !p->put || !p->unlink)
		elog(ERROR, "could not prepare the large object functions");
}

/* SPI calls end in SPI's procedure context: back to the caller's */
void
ingest_lo_run_plan(SPIPlanPtr plan, Datum *vals)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (SPI_execute_plan(plan, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not write large object %u", DatumGetObjectId(vals[0]));
	MemoryContextSwitchTo(cxt);
}

/* Write len bytes at offset off of object oid (len > 0). */
static void
put_chunk(LoPlans *p, Oid oid, int64 off, const char *data, int len)
{
	bytea	   *b = palloc(len + VARHDRSZ);
	Datum		vals[3];

	SET_VARSIZE(b, len + VARHDRSZ);
	memcpy(VARDATA(b), data, len);
	vals[0] = ObjectIdGetDatum(oid);
	vals[1] = Int64GetDatum(off);
	vals[2] = PointerGetDatum(b);
	ingest_lo_run_plan(p->put, vals);
	pfree(b);
}

static void
exec_utility(const char *sql)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "could not run \"%s\"", sql);
	MemoryContextSwitchTo(cxt);
}

static void
warn_names(LoWarnings *w, const char *names)
{
	MemoryContext old = MemoryContextSwitchTo(w->cxt);
	char	   *copy = pstrdup(names);
	char	   *tok;

	/* "a, b": for the message only */
	for (tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
	{
		while (*tok == ' ')
			tok++;
		if (list_length(w->names) < 20 && !ingest_string_in(w->names, tok))
			w->names = lappend(w->names, pstrdup(tok));
	}
	MemoryContextSwitchTo(old);
}

/*
 * Give object lm->oid the comment, owner and privileges of lm.  fresh: it
 * was just made here (the migration's owner owns it, no comment, default
 * privileges).
 */
void
ingest_lo_apply_meta(LoMeta *lm, bool fresh, const char *current_owner, LoWarnings *w)
{
	char	   *me = GetUserNameFromId(GetUserId(), false);

	if (lm->comment || !fresh)
		exec_utility(psprintf("COMMENT ON LARGE OBJECT %u IS %s", lm->oid,
							  lm->comment ? quote_literal_cstr(lm->comment) : "NULL"));
	if (strcmp(lm->owner, lm->source_owner) != 0)
	{
		w->owners++;
		warn_names(w, lm->source_owner);
	}
	if (lm->dropped)
	{
		w->grantees++;
		warn_names(w, lm->dropped);
	}
	if (strcmp(lm->owner, fresh ? me : current_owner) != 0)
		exec_utility(psprintf("ALTER LARGE OBJECT %u OWNER TO %s", lm->oid,
							  quote_identifier(lm->owner)));
	if (fresh && lm->acl_default)
		return;

	/* the privileges: none, then those of the source */
	{
		Oid			types[1] = {OIDOID};
		Datum		vals[1] = {ObjectIdGetDatum(lm->oid)};
		StringInfoData revoke;
		uint64		i;
		MemoryContext cxt = CurrentMemoryContext;

		if (SPI_execute_with_args("SELECT DISTINCT g.rolname::pg_catalog.text"
								  " FROM pg_catalog.pg_largeobject_metadata m,"
								  " pg_catalog.aclexplode(COALESCE(m.lomacl, pg_catalog.acldefault('L', m.lomowner))) a"
								  " JOIN pg_catalog.pg_roles g ON g.oid = a.grantee"
								  " WHERE m.oid = $1", 1, types, vals, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the privileges of large object %u", lm->oid);
		MemoryContextSwitchTo(cxt);
		initStringInfo(&revoke);
		appendStringInfo(&revoke, "REVOKE ALL ON LARGE OBJECT %u FROM PUBLIC", lm->oid);
		for (i = 0; i < SPI_processed; i++)
			appendStringInfo(&revoke, ", %s",
							 quote_identifier(SPI_getvalue(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1)));
		appendStringInfoString(&revoke, " CASCADE");
		exec_utility(revoke.data);
	}
	if (lm->acl)
	{
		Datum		arr = OidInputFunctionCall(F_ARRAY_IN, lm->acl, TEXTOID, -1);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &n);
		for (i = 0; i < n; i++)
		{
			char	   *k = nulls[i] ? "" : TextDatumGetCString(elems[i]);

			if (strlen(k) < 3 || (k[0] != 'r' && k[0] != 'w') ||
				(k[2] != 'P' && k[2] != 'R') || (k[2] == 'P') != (k[3] == '\0'))
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("the source sent unexpected privileges for large object %u", lm->oid)));
			exec_utility(psprintf("GRANT %s ON LARGE OBJECT %u TO %s%s",
								  k[0] == 'r' ? "SELECT" : "UPDATE", lm->oid,
								  k[2] == 'P' ? "PUBLIC" : quote_identifier(k + 3),
								  k[1] == '*' ? " WITH GRANT OPTION" : ""));
		}
	}
}

/* One WARNING event for what could not be carried as on the source. */
void
ingest_lo_report_warnings(IngestMigration *m, LoWarnings *w, const char *where)
{
	ListCell   *lc;
	StringInfoData names;

	if (w->owners == 0 && w->grantees == 0)
		return;
	initStringInfo(&names);
	foreach(lc, w->names)
		appendStringInfo(&names, "%s%s", foreach_current_index(lc) > 0 ? ", " : "",
						 quote_identifier(lfirst(lc)));
	ingest_event(m->id, "WARNING", "large objects", where,
				 psprintf("%d large object(s) kept by the migration's owner (their owner does not exist here, or the migration's owner may not give objects to it), %d with privileges of roles that do not exist here left out; roles: %s",
						  w->owners, w->grantees, names.data),
				 "Create the roles on the target (or grant them to the migration's owner) and set the owners and privileges with ALTER LARGE OBJECT and GRANT.");
}

/* Read the rest of an object whose first chunk was full. */
static uint64
copy_rest(PGconn *conn, const char *password, LoPlans *p, Oid oid)
{
	int64		off = LO_CHUNK;
	uint64		bytes = 0;
	char		oidbuf[16];
	char		offbuf[32];
	const char *params[2] = {oidbuf, offbuf};

	snprintf(oidbuf, sizeof(oidbuf), "%u", oid);
	for (;;)
	{
		PGresult   *res;
		int			len;

		CHECK_FOR_INTERRUPTS();
		snprintf(offbuf, sizeof(offbuf), INT64_FORMAT, off);
		ingest_lo_send_rows(conn, psprintf("SELECT pg_catalog.lo_get($1::pg_catalog.oid, $2::pg_catalog.int8, %d)",
								 LO_CHUNK),
				  2, params, true, "read a large object", password);
		res = ingest_lo_next_row(conn, "read a large object", password);
		if (res == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("large object %u is gone from the source's snapshot", oid)));
		len = PQgetlength(res, 0, 0);
		if (len > 0)
			put_chunk(p, oid, off, PQgetvalue(res, 0, 0), len);
		PQclear(res);
		res = ingest_lo_next_row(conn, "read a large object", password);
		Assert(res == NULL);
		bytes += len;
		off += len;
		if (MyIngestWorker)
		{
			pg_atomic_fetch_add_u64(&MyIngestWorker->bytes, len);
		}
		if (len < LO_CHUNK)
			break;
	}
	return bytes;
}

/*
 * ingest_lo_copy_objects
 *		Make here the large objects of the source that match <where>
 *		($4, $5 its parameters), with their data and metadata, as the
 *		source's transaction on conn sees them.  In the caller's transaction.
 *		Returns the number of objects; *bytes their data.
 */
uint64
ingest_lo_copy_objects(PGconn *conn, const char *password, LoRoles *roles,
			 const char *where, int nextra, const char **extra,
			 uint64 *bytes, LoWarnings *w)
{
	const char *params[5];
	MemoryContext row_cxt;
	MemoryContext old;
	List	   *longer = NIL;	/* of LoMeta: more than one chunk */
	ListCell   *lc;
	uint64		n = 0;
	LoPlans		plans;
	ErrorContextCallback errcb;
	int			i;

	*bytes = 0;
	params[0] = roles->owners;
	params[1] = roles->me;
	params[2] = roles->all;
	for (i = 0; i < nextra; i++)
		params[3 + i] = extra[i];

	errcb.callback = lo_error_context;
	errcb.arg = NULL;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	current_oid = InvalidOid;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ingest_lo_prepare_plans(&plans);
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_ingest large object",
									ALLOCSET_DEFAULT_SIZES);
	ingest_lo_send_rows(conn, ingest_lo_meta_sql(LO_COPY, where), 3 + nextra, params, true,
			  "read the large objects", password);
	for (;;)
	{
		PGresult   *res;
		LoMeta	   *lm;
		Datum		vals[1];
		int			len;

		CHECK_FOR_INTERRUPTS();
		res = ingest_lo_next_row(conn, "read the large objects", password);
		if (res == NULL)
			break;
		old = MemoryContextSwitchTo(row_cxt);
		PG_TRY();
		{
			lm = ingest_lo_read_meta(res);
			current_oid = lm->oid;
			vals[0] = ObjectIdGetDatum(lm->oid);
			ingest_lo_run_plan(plans.create, vals);
			len = PQgetisnull(res, 0, COL_DATA) ? 0 : PQgetlength(res, 0, COL_DATA);
			if (len > 0)
				put_chunk(&plans, lm->oid, 0, PQgetvalue(res, 0, COL_DATA), len);
		}
		PG_CATCH();
		{
			PQclear(res);
			PG_RE_THROW();
		}
		PG_END_TRY();
		PQclear(res);
		*bytes += len;
		n++;
		if (MyIngestWorker)
		{
			pg_atomic_fetch_add_u64(&MyIngestWorker->bytes, len);
			pg_atomic_write_u64(&MyIngestWorker->rows, n);
		}
		if (len == LO_CHUNK)
		{
			/* the rest once this query is over: keep its metadata */
			MemoryContextSwitchTo(old);
			longer = lappend(longer, copy_meta(lm));
		}
		else
			ingest_lo_apply_meta(lm, true, NULL, w);
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_cxt);
	}
	foreach(lc, longer)
	{
		LoMeta	   *lm = lfirst(lc);

		current_oid = lm->oid;
		old = MemoryContextSwitchTo(row_cxt);
		*bytes += copy_rest(conn, password, &plans, lm->oid);
		ingest_lo_apply_meta(lm, true, NULL, w);
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_cxt);
	}
	current_oid = InvalidOid;
	MemoryContextDelete(row_cxt);
	SPI_finish();
	error_context_stack = errcb.previous;
	return n;
}

/* One OID range of the full load. */
typedef struct LoRange
{
	Oid			from;			/* first OID, 0 for the first range */
	Oid			to;				/* InvalidOid: to the end */
	int64		count;
	int64		bytes;			/* estimated */
} LoRange;

/*
 * ingest_lo_ranges
 *		The source's large objects, in the snapshot of conn's transaction,
 *		as OID ranges of about equal count: one per LO_PART_BYTES of
 *		pg_largeobject, at least one per copy job, at most LO_MAX_PARTS.
 */
List *
ingest_lo_ranges(PGconn *conn, const char *password, int jobs)
{
	PGresult   *res;
	int64		count;
	int64		bytes;
	int64		parts;
	List	   *ranges = NIL;
	int			i;

	res = ingest_exec(conn, "SELECT count(*), pg_catalog.pg_total_relation_size("
					  "'pg_catalog.pg_largeobject'::pg_catalog.regclass)"
					  " FROM pg_catalog.pg_largeobject_metadata",
					  PGRES_TUPLES_OK, "count the large objects", password);
	count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	bytes = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	if (count == 0)
		return NIL;
	parts = Max((int64) Max(jobs, 1), bytes / LO_PART_BYTES);
	parts = Min(parts, Min(count, LO_MAX_PARTS));
	res = ingest_exec(conn, psprintf("SELECT pg_catalog.min(oid)::pg_catalog.text, count(*)"
									 " FROM (SELECT oid, pg_catalog.ntile(%d) OVER (ORDER BY oid) AS t"
									 " FROM pg_catalog.pg_largeobject_metadata) s"
									 " GROUP BY t ORDER BY t", (int) parts),
					  PGRES_TUPLES_OK, "split the large objects", password);
	for (i = 0; i < PQntuples(res); i++)
	{
		LoRange    *r = palloc0(sizeof(LoRange));

		r->from = i == 0 ? 0 : (Oid) strtoul(PQgetvalue(res, i, 0), NULL, 10);
		r->to = i + 1 < PQntuples(res) ?
			(Oid) strtoul(PQgetvalue(res, i + 1, 0), NULL, 10) : InvalidOid;
		r->count = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		r->bytes = bytes * r->count / count;
		ranges = lappend(ranges, r);
	}
	PQclear(res);
	return ranges;
}

/*
 * ingest_lo_store_items
 *		Record the ranges as copy items of pg_catalog.pg_largeobject, after
 *		the tables'.  In the caller's transaction.
 */
void
ingest_lo_store_items(int32 migration_id, List *ranges)
{
	Oid			types[7] = {INT4OID, INT4OID, INT4OID, INT8OID, INT8OID, INT8OID, INT4OID};
	Datum		vals[7];
	char		nulls[7];
	ListCell   *lc;

	if (ranges == NIL)
		return;
	ingest_catalog_begin();
	foreach(lc, ranges)
	{
		LoRange    *r = lfirst(lc);

		memset(nulls, ' ', sizeof(nulls));
		vals[0] = Int32GetDatum(migration_id);
		vals[1] = Int32GetDatum(foreach_current_index(lc) + 1);
		vals[2] = Int32GetDatum(list_length(ranges));
		vals[3] = Int64GetDatum((int64) r->from);
		vals[4] = Int64GetDatum((int64) r->to);
		if (!OidIsValid(r->to))
			nulls[4] = 'n';
		vals[5] = Int64GetDatum(r->bytes);
		vals[6] = Int32GetDatum(0);
		ingest_catalog_exec("INSERT INTO ingest.copy_item (migration_id, id, nspname, relname,"
							" part, parts, page_from, page_to, columns, bytes_total, use_freeze)"
							" SELECT $1, COALESCE(max(id), 0) + 1, 'pg_catalog', 'pg_largeobject',"
							" $2, $3, $4, $5, '', $6, false"
							" FROM ingest.copy_item WHERE migration_id = $1",
							7, types, vals, nulls);
	}
	ingest_catalog_end();
}

/*
 * ingest_lo_copy_range
 *		Copy item of a copy worker: the large objects with OIDs in
 *		[from, to) (to < 0: to the end), read on conn, in the migration's
 *		snapshot.  In the item's transaction.  Returns the number of
 *		objects; *bytes their data.
 */
uint64
ingest_lo_copy_range(PGconn *conn, const char *password, IngestMigration *m,
					 int64 from, int64 to, uint64 *bytes)
{
	LoRoles    *roles = ingest_lo_target_roles();
	LoWarnings	w;
	char	   *extra[2];
	uint64		n;

	memset(&w, 0, sizeof(w));
	w.cxt = CurrentMemoryContext;
	extra[0] = psprintf(INT64_FORMAT, Max(from, 0));
	extra[1] = to >= 0 ? psprintf(INT64_FORMAT, to) : NULL;
	n = ingest_lo_copy_objects(conn, password, roles,
					 "m.oid >= $4::pg_catalog.int8::pg_catalog.oid"
					 " AND ($5::pg_catalog.int8 IS NULL OR m.oid < $5::pg_catalog.int8::pg_catalog.oid)",
					 2, (const char **) extra, bytes, &w);
	ingest_lo_report_warnings(m, &w, to >= 0 ?
					psprintf("large objects %lld to %lld", (long long) Max(from, 0), (long long) to - 1) :
					psprintf("large objects from %lld", (long long) Max(from, 0)));
	return n;
}
