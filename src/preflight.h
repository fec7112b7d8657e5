/*-------------------------------------------------------------------------
 *
 * preflight.h
 *	  What the checks of ingest.preflight() share: the state of one call
 *	  and the way a check reports (preflight.c, preflight_target.c,
 *	  preflight_report.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_PREFLIGHT_H
#define PG_INGEST_PREFLIGHT_H

#include "funcapi.h"
#include "libpq-fe.h"
#include "nodes/pg_list.h"
#include "utils/tuplestore.h"

#include "conn.h"

/* Workers one migration needs besides those of its jobs. */
#define WORKERS_BESIDES_JOBS 3	/* coordinator, change receiver, applier */
#define DEFAULT_TABLE_JOBS 4
#define DEFAULT_INDEX_JOBS 4
#define LIST_MAX 10				/* names listed in a detail */

typedef struct Preflight
{
	Tuplestorestate *store;
	TupleDesc	desc;
	IngestConnInfo *info;
	PGconn	   *conn;			/* SQL session on the source */
	PGconn	   *repl;			/* replication session, wal2json check */
	char	   *lost;			/* why the source session is gone */
	int			version;		/* source server_version_num */
	char	   *wal_level;
	List	   *tables_nsp;		/* source tables (r, p): schema names */
	List	   *tables_rel;		/* ... and relation names */
	List	   *unreadable;		/* quoted names lacking SELECT */
	List	   *no_identity;	/* quoted names with no replica identity */
	List	   *unlogged;		/* quoted names of unlogged tables */
} Preflight;

/* preflight_report.c */
extern void ingest_pf_emit(Preflight *pf, const char *check, const char *status,
						   const char *detail, const char *hint);
extern PGresult *ingest_pf_source_query(Preflight *pf, const char *check,
										const char *sql);
extern char *ingest_pf_name_list(List *names, int max);

/* preflight_target.c */
extern void ingest_pf_check_target_workers(Preflight *pf);
extern void ingest_pf_check_target_extensions(Preflight *pf);
extern void ingest_pf_check_target_name_conflicts(Preflight *pf);
extern void ingest_pf_check_citus_map(Preflight *pf, Datum map);

#endif							/* PG_INGEST_PREFLIGHT_H */
