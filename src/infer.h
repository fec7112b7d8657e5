/*-------------------------------------------------------------------------
 *
 * infer.h
 *	  Schema changes of the source inferred from the change stream
 *	  (infer.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_INFER_H
#define PG_INGEST_INFER_H

#include "conn.h"
#include "pg_ingest.h"
#include "wal2json.h"

extern bool ingest_infer_enabled(IngestMigration *m);
extern bool ingest_infer_change(IngestMigration *m, IngestConnInfo *info,
								Oid relid, W2JChange *c);
extern bool ingest_infer_new_table(IngestMigration *m, IngestConnInfo *info,
								   const char *nspname, const char *relname,
								   XLogRecPtr change_lsn, XLogRecPtr *sync_lsn);

extern void ingest_inferred(IngestMigration *m, const char *object, XLogRecPtr lsn,
							const char *what, const char *detail);

#endif							/* PG_INGEST_INFER_H */
