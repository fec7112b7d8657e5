/*-------------------------------------------------------------------------
 *
 * ddl.h
 *	  Schema changes on the source replicated through an event trigger
 *	  (ddl => 'replicate'): its installation and removal on the source
 *	  (ddl.c), and the applier's side of its logical messages (ddl_apply.c,
 *	  ddl_follow.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_DDL_H
#define PG_INGEST_DDL_H

#include "nodes/nodes.h"

#include "conn.h"
#include "pg_ingest.h"
#include "source.h"
#include "wal2json.h"

/* pg_ingest's own schema on the source ("pg_" names are reserved there). */
#define INGEST_DDL_SCHEMA	"_pg_ingest"

extern char *ingest_ddl_prefix(IngestMigration *m);
extern char *ingest_ddl_stream_options(IngestMigration *m);
extern void ingest_ddl_install(IngestMigration *m, IngestConnInfo *info);
extern bool ingest_ddl_remove(IngestMigration *m, IngestConnInfo *info);
extern char *ingest_ddl_via(int32 migration_id);
extern bool ingest_ddl_is_own_statement(Node *stmt);

/* ddl_apply.c */
extern bool ingest_ddl_apply(IngestMigration *m, IngestFilters *filters,
							 W2JChange *c, XLogRecPtr final_lsn);

#endif							/* PG_INGEST_DDL_H */
