/*-------------------------------------------------------------------------
 *
 * resync.h
 *	  resync => 'at_cutover': tables whose changes cannot be decoded are
 *	  copied again at the stop (resync.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_RESYNC_H
#define PG_INGEST_RESYNC_H

#include "conn.h"
#include "pg_ingest.h"

extern void ingest_resync_record(IngestMigration *m, List *rels);
extern bool ingest_resync_covers_w2j(IngestMigration *m, const char *table);
extern bool ingest_resync_join_w2j(IngestMigration *m, const char *table,
								   const char *action);
extern void ingest_resync_at_stop(IngestMigration *m, IngestConnInfo *info);

#endif							/* PG_INGEST_RESYNC_H */
