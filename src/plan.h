/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  Planning a migration's work in phase starting (plan.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_PLAN_H
#define PG_INGEST_PLAN_H

#include "libpq-fe.h"
#include "nodes/pg_list.h"

#include "pg_ingest.h"

extern List *ingest_plan_sequences(PGconn *conn, List *rels, const char *password);
extern void ingest_plan_copy_items(IngestMigration *m, List *rels, int64 block_size);
extern List *ingest_plan_analyze_items(List *rels);

#endif							/* PG_INGEST_PLAN_H */
