/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *	  The coordinator's slot and snapshot protocol (snapshot.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_SNAPSHOT_H
#define PG_INGEST_SNAPSHOT_H

#include "libpq-fe.h"

#include "pg_ingest.h"

extern void ingest_snapshot_export(IngestMigration *m, IngestConnInfo *info);
extern void ingest_snapshot_create_slot(IngestMigration *m, IngestConnInfo *info,
										bool export);
extern bool ingest_snapshot_alive(void);
extern bool ingest_snapshot_held(void);
extern void ingest_snapshot_release(void);
extern PGconn *ingest_snapshot_session(IngestMigration *m, IngestConnInfo *info);
extern pgsocket ingest_snapshot_socket(void);
extern char *ingest_snapshot_error(const char *password);

#endif							/* PG_INGEST_SNAPSHOT_H */
