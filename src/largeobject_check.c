/*-------------------------------------------------------------------------
 *
 * largeobject_check.c
 *	  Large objects checked: ingest.start's refusals, preflight's row and
 *	  ingest.verify's comparison (the copy is largeobject.c, the stop
 *	  largeobject_stop.c).
 *
 * ingest.start refuses a source user that cannot read every large object
 * of the source (ingest_lo_check_source: the copy would fail on them), and
 * a migration that copies into a database that has large objects already
 * (ingest_lo_check_target): the copy keeps the source's OIDs, and the stop
 * unlinks here what the source does not have.  Preflight counts them and
 * says whether the user may read them all (ingest_lo_preflight).
 * ingest.verify compares the count and the content hash of every object,
 * the same SQL on both sides (ingest_lo_verify_sql, ingest_lo_verify_row;
 * the hash is largeobject.c's, as the stop computes it).
 *
 * State: none: it reads the source and this server's
 * pg_largeobject_metadata, nothing in the catalog or shared memory.
 *
 * Locking: none of its own; this server's side of ingest.verify runs in a
 * subtransaction, so that an object the caller may not read gives a NULL,
 * not an error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "conn.h"
#include "largeobject_int.h"
#include "pg_ingest.h"

/*
 * ingest_lo_verify_sql
 *		The count and the hash of every large object (md5 of the OIDs and
 *		content hashes in OID order), or the count alone: the same SQL on
 *		both sides.
 */
char *
ingest_lo_verify_sql(bool hash)
{
	if (!hash)
		return "SELECT count(*), NULL FROM pg_catalog.pg_largeobject_metadata";
	return psprintf("SELECT count(*), COALESCE(pg_catalog.md5(pg_catalog.string_agg("
					"m.oid::pg_catalog.text || ':' || %s, ',' ORDER BY m.oid)), '')"
					" FROM pg_catalog.pg_largeobject_metadata m%s",
					ingest_lo_hash_sql("m.oid", "s.sz"), ingest_lo_size_lateral);
}

/* SQL counting the large objects the current user may not read. */
static const char *unreadable_sql =
"SELECT count(*), pg_catalog.string_agg(s.oid::pg_catalog.text || ' (owner ' || s.owner || ')', ', ')"
" FILTER (WHERE s.n <= 10)"
" FROM (SELECT m.oid, pg_catalog.pg_get_userbyid(m.lomowner) AS owner,"
"  pg_catalog.row_number() OVER (ORDER BY m.oid) AS n"
"  FROM pg_catalog.pg_largeobject_metadata m"
"  WHERE NOT (pg_catalog.current_setting('lo_compat_privileges')::bool"
"   OR COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER), false)"
"   OR pg_catalog.pg_has_role(m.lomowner, 'USAGE')"
"   OR EXISTS (SELECT 1 FROM pg_catalog.aclexplode(m.lomacl) a"
"    WHERE a.privilege_type = 'SELECT'"
"    AND CASE WHEN a.grantee = 0 THEN true ELSE pg_catalog.pg_has_role(a.grantee, 'USAGE') END))) s";

/*
 * ingest_lo_check_source
 *		ingest.start: refuse a source user that may not read every large
 *		object of the source (the copy would fail on them).
 */
void
ingest_lo_check_source(PGconn *conn, const char *password)
{
	PGresult   *res = ingest_exec(conn, unreadable_sql, PGRES_TUPLES_OK,
								  "check the large objects", password);
	int64		n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	char	   *some = pstrdup(PQgetvalue(res, 0, 1));
	char	   *user = pstrdup(PQuser(conn));

	PQclear(res);
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the source user \"%s\" may not read " INT64_FORMAT " large object(s) of the source",
						user, n),
				 errdetail("Large objects are copied with the tables; unreadable: %s%s.",
						   some, n > 10 ? ", ..." : ""),
				 errhint("GRANT SELECT ON LARGE OBJECT ... TO %s on the source, or connect as their owner or a superuser.",
						 quote_identifier(user))));
}

/*
 * ingest_lo_check_target
 *		ingest.start of a migration that copies: this database must have no
 *		large object.  The copy makes the source's with their OIDs, and the
 *		stop unlinks those the source does not have.
 */
void
ingest_lo_check_target(void)
{
	int64		n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count the large objects");
	n = strtoll(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), NULL, 10);
	SPI_finish();
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this database already has " INT64_FORMAT " large object(s)", n),
				 errdetail("A migration copies the source's large objects with their OIDs, and at its stop unlinks those the source does not have."),
				 errhint("Unlink them (SELECT lo_unlink(oid) FROM pg_largeobject_metadata) or migrate into another database."),
				 errhidestmt(true)));
}

/*
 * ingest_lo_preflight
 *		The preflight row large_objects: how many, their size, and whether
 *		the source user may read them all.
 */
void
ingest_lo_preflight(PGconn *conn, const char *password, const char **status,
					char **detail, char **hint)
{
	PGresult   *res;
	int64		n;
	int64		unreadable;
	char	   *size;
	char	   *some;

	*hint = NULL;
	res = ingest_exec(conn, "SELECT count(*), pg_catalog.pg_size_pretty(pg_catalog.pg_total_relation_size("
					  "'pg_catalog.pg_largeobject'::pg_catalog.regclass))"
					  " FROM pg_catalog.pg_largeobject_metadata",
					  PGRES_TUPLES_OK, "count the large objects", password);
	n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	size = pstrdup(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (n == 0)
	{
		*status = "PASS";
		*detail = pstrdup("the source has no large objects");
		return;
	}
	res = ingest_exec(conn, unreadable_sql, PGRES_TUPLES_OK, "check the large objects", password);
	unreadable = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	some = pstrdup(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (unreadable > 0)
	{
		*status = "FAIL";
		*detail = psprintf(INT64_FORMAT " large object(s) (pg_largeobject: %s), of which the user may not read " INT64_FORMAT ": %s%s; ingest.start refuses them",
						   n, size, unreadable, some, unreadable > 10 ? ", ..." : "");
		*hint = psprintf("GRANT SELECT ON LARGE OBJECT ... TO %s on the source, or connect as their owner or a superuser.",
						 quote_identifier(PQuser(conn)));
		return;
	}
	*status = "PASS";
	*detail = psprintf(INT64_FORMAT " large object(s) (pg_largeobject: %s): copied with the tables, and those changed while streaming copied again at the stop",
					   n, size);
}

/*
 * ingest_lo_verify_row
 *		ingest.verify's row for the large objects, in the caller's source
 *		transaction (conn) and on this server as the caller: values[1..4]
 *		and nulls[1..4] as verify.c's columns (NULLs where a side cannot be
 *		read).  False when neither side has any large object.
 */
bool
ingest_lo_verify_row(PGconn *conn, const char *password, bool hash,
					 Datum *values, bool *nulls)
{
	char	   *sql = ingest_lo_verify_sql(hash);
	PGresult   *res;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	int64		src_count = 0;
	int64		tgt_count = 0;

	res = ingest_exec(conn, "SAVEPOINT pg_ingest_verify_lo", PGRES_COMMAND_OK,
					  "verify the large objects", password);
	PQclear(res);
	res = ingest_query(conn, sql, -1, NULL);
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		src_count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		values[1] = Int64GetDatum(src_count);
		if (PQgetisnull(res, 0, 1))
			nulls[3] = true;
		else
			values[3] = CStringGetTextDatum(PQgetvalue(res, 0, 1));
		PQclear(res);
		res = ingest_exec(conn, "RELEASE SAVEPOINT pg_ingest_verify_lo", PGRES_COMMAND_OK,
						  "verify the large objects", password);
	}
	else
	{
		nulls[1] = nulls[3] = true;
		src_count = 1;			/* a row says it could not be read */
		if (PQstatus(conn) == CONNECTION_BAD)
			ingest_report_result_error(conn, res, ERROR, "verify the large objects", password);
		PQclear(res);
		res = ingest_exec(conn, "ROLLBACK TO SAVEPOINT pg_ingest_verify_lo", PGRES_COMMAND_OK,
						  "verify the large objects", password);
	}
	PQclear(res);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not read the large objects");
		{
			char	   *count = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			char	   *h = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			MemoryContext spi = MemoryContextSwitchTo(cxt);

			tgt_count = strtoll(count, NULL, 10);
			values[2] = Int64GetDatum(tgt_count);
			if (h)
				values[4] = CStringGetTextDatum(h);
			else
				nulls[4] = true;
			MemoryContextSwitchTo(spi);
		}
		SPI_finish();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		nulls[2] = nulls[4] = true;
		tgt_count = 1;
	}
	PG_END_TRY();
	return src_count > 0 || tgt_count > 0;
}
