/*-------------------------------------------------------------------------
 *
 * coordinator.h
 *	  The coordinator of a migration and the roles it delegates: the worker
 *	  pool (pool.c), the rates (rates.c), restart recovery (recovery.c) and
 *	  the stop protocol (stop.c).  All of them run in the coordinator
 *	  process and work on MyMigration (workers.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_COORDINATOR_H
#define PG_INGEST_COORDINATOR_H

#include "pg_ingest.h"

/* pool.c */
extern int	ingest_pool_running(IngestWorkerKind kind);
extern void ingest_pool_ensure(IngestWorkerKind kind, int want);
extern void ingest_pool_ensure_single(IngestWorkerKind kind);
extern void ingest_pool_stop_copy_workers(long timeout_ms);

/* rates.c */
extern void ingest_rate_sample_copy(void);
extern void ingest_rate_sample_apply(void);

/* recovery.c */
extern void ingest_recover_copy(void);
extern bool ingest_recover_snapshot(bool (*stopped) (void));
extern bool ingest_recover_count_error(ErrorData *edata);

/* stop.c */
extern void ingest_stop_record_request(void);
extern void ingest_stop_finish_stream(void);

#endif							/* PG_INGEST_COORDINATOR_H */
