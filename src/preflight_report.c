/*-------------------------------------------------------------------------
 *
 * preflight_report.c
 *	  How a check of ingest.preflight() reports: one row of PASS, WARN or
 *	  FAIL, and the source query a check runs (which turns a lost source
 *	  into FAIL rows instead of an error).
 *
 * Used by the checks of the source (preflight.c) and of the target
 * (preflight_target.c).
 *
 * State: the Preflight of the call (its tuplestore, its source sessions).
 *
 * Locking: none.
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

#include "conn.h"
#include "extconfig.h"
#include "pg_ingest.h"
#include "preflight.h"
#include "source.h"

void
ingest_pf_emit(Preflight *pf, const char *check, const char *status,
	 const char *detail, const char *hint)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	values[0] = CStringGetTextDatum(check);
	values[1] = CStringGetTextDatum(status);
	if (detail)
		values[2] = CStringGetTextDatum(detail);
	else
		nulls[2] = true;
	if (hint)
		values[3] = CStringGetTextDatum(hint);
	else
		nulls[3] = true;
	tuplestore_putvalues(pf->store, pf->desc, values, nulls);
}

/*
 * source_query
 *		Run a catalog query on the source for one check.
 *
 * On failure emits the check's FAIL row and returns NULL; once the
 * connection is gone, every later check fails the same way without trying.
 */
PGresult *
ingest_pf_source_query(Preflight *pf, const char *check, const char *sql)
{
	PGresult   *res;

	if (pf->lost == NULL)
	{
		res = ingest_query(pf->conn, sql, -1, NULL);
		if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
			return res;
		if (PQstatus(pf->conn) == CONNECTION_BAD)
			pf->lost = ingest_result_message(pf->conn, NULL, pf->info->password);
		else
		{
			ingest_pf_emit(pf, check, "FAIL",
				 ingest_result_message(pf->conn, res, pf->info->password),
				 NULL);
			PQclear(res);
			return NULL;
		}
		PQclear(res);
		ingest_pf_emit(pf, check, "FAIL",
			 psprintf("connection to the source was lost: %s", pf->lost),
			 "Check that the source is up, then run ingest.preflight again.");
		return NULL;
	}
	ingest_pf_emit(pf, check, "FAIL",
		 psprintf("not checked: connection to the source was lost (%s)", pf->lost),
		 "Check that the source is up, then run ingest.preflight again.");
	return NULL;
}

/* "a, b, c and 4 more" */
char *
ingest_pf_name_list(List *names, int max)
{
	StringInfoData buf;
	ListCell   *lc;
	int			i = 0;

	initStringInfo(&buf);
	foreach(lc, names)
	{
		if (i == max)
		{
			appendStringInfo(&buf, " and %d more", list_length(names) - max);
			break;
		}
		if (i++ > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, (char *) lfirst(lc));
	}
	return buf.data;
}
