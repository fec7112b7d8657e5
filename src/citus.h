/*-------------------------------------------------------------------------
 *
 * citus.h
 *	  Migrating into Citus distributed and reference tables (citus.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_CITUS_H
#define PG_INGEST_CITUS_H

#include "commands/copy.h"
#include "utils/relcache.h"

#include "conn.h"
#include "pg_ingest.h"
#include "wal2json.h"

/* pg_dist_partition.partmethod of a table, or this when Citus does not list it */
#define INGEST_CITUS_NONE '\0'

extern bool ingest_citus_installed(void);
extern char ingest_citus_method(Oid relid, AttrNumber *distattno);
extern bool ingest_citus_table(Oid relid);
extern void ingest_citus_check_target(Oid relid, const char *name);
extern char *ingest_citus_describe(Oid relid);
extern uint64 ingest_citus_copy_from(CopyFromState cstate, Relation rel);
extern void ingest_citus_truncate(const char *sql, List *relids);
extern void ingest_citus_begin_block(void);
extern void ingest_citus_end_block(bool commit);
extern void ingest_citus_apply_batch_begun(void);
extern void ingest_citus_apply_change(Oid relid, W2JChange *c);
extern char *ingest_citus_check_map(Datum map, IngestConnInfo *info, List *rels,
									const char *schema_mode, const char *name);
extern void ingest_citus_store_map(int32 id, const char *map);
extern void ingest_citus_distribute(IngestMigration *m);
extern bool ingest_citus_preflight_map(Datum map, IngestConnInfo *info, PGconn *conn,
									   char **message, char **detail, char **hint);

#endif							/* PG_INGEST_CITUS_H */
