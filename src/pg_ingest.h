/*-------------------------------------------------------------------------
 *
 * pg_ingest.h
 *	  Declarations shared by every part of pg_ingest.
 *
 * Shared memory holds one IngestMigrationSlot per migration being worked
 * on (at most pg_ingest.max_migrations) and one IngestWorkerSlot per
 * background worker of pg_ingest.  Durable state lives in the catalog
 * tables of schema ingest; shared memory holds what moves too fast for
 * them (bytes and rows in flight) and what the supervisor needs without a
 * database connection (which migrations to launch).
 *
 * Shared-memory protocol.  IngestShared->lock (LWLock) guards every
 * non-atomic field; the atomics are read and written without it.
 *
 *	- Slot life (dboid, migration_id, owner, launch, stop, terminal,
 *	  reserved, restarts, next_launch, coordinator_pid, and every field of
 *	  a worker slot but its counters and item): written and read under the
 *	  lock only.  A migration slot is taken by ingest_reserve_migration_slot
 *	  (start, resume, the scan), which bumps its generation; it is freed by
 *	  the supervisor (terminal, or a dropped database) or by the abort of
 *	  the transaction that reserved it.  stop is set by ingest.abort and
 *	  cleared if its statement fails; terminal by the coordinator at its end
 *	  and by a committed abort; launch by a commit of start or resume, and
 *	  by the scan.
 *	- generation: never cleared, bumped under the lock at each reservation.
 *	  A worker is started with the generation of its slot
 *	  (ingest_start_worker) and attaches (ingest_worker_init) only if the
 *	  slot still holds the same migration and generation and is neither
 *	  stopped nor terminal, under the lock: a late worker exits instead of
 *	  acting on a migration that reused the slot, and ingest.abort, which
 *	  sets stop and then signals the attached workers, misses none.  The
 *	  requests of a transaction (slots.c) carry the generation too.
 *	- Flags and rates of a migration slot, one writer each, written under
 *	  the lock in exclusive mode (ingest_slot_set_flag/_rate) so that a
 *	  reader holding it in shared mode (the views) sees them together; a
 *	  lone flag may be read without the lock, a stale value being harmless
 *	  since the writer wakes whoever must react.  Writers:
 *	    numeric_as_string, numeric_probed, receiver_connected: receiver;
 *	    stop_streaming, paused, copy_rate, apply_rate: coordinator
 *	    (paused is also written by the commit of ingest.pause or
 *	    ingest.resume, workers.c, under the lock);
 *	    apply_idle, reached_stop: applier;
 *	  all cleared by whoever (re)takes the slot.
 *	- Atomics of a migration slot: received_lsn, flushed_lsn, source_lsn,
 *	  spool_limit, spool_bytes written by the receiver; applied_lsn,
 *	  applied_commit_ts, changes_applied, apply_pos by the applier;
 *	  spool_bytes also by the applier once it has removed segments (both
 *	  write the size they saw on disk: a receiver's scan made just before
 *	  a removal may overwrite the applier's smaller figure until its next
 *	  scan, within about a second);
 *	  bytes_received by the copy workers (added to); stop_request by the
 *	  commit of ingest.stop_at (workers.c) and by ingest.cutover.
 *	- Worker slot: item_id and item_started written by their worker under
 *	  the lock (ingest_worker_set_item); bytes and rows are atomics written
 *	  by their worker alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_H
#define PG_INGEST_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "postmaster/bgworker.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

/* Role whose members may operate pg_ingest besides superusers. */
#define INGEST_ADMIN_ROLE	"ingest_admin"

/* Most jobs of each kind one migration may ask for. */
#define INGEST_MAX_JOBS		32

/* Databases the supervisor remembers as having had migrations. */
#define INGEST_MAX_DATABASES 64

/* GUCs (pg_ingest.c) */
extern int	ingest_connect_timeout;
extern int	ingest_preflight_timeout;
extern int	ingest_max_migrations;
extern int	ingest_max_retries;
extern int	ingest_retry_delay;
extern int	ingest_index_parallel_workers;
extern int	ingest_spool_max_size;
extern int	ingest_spool_sync_interval;
extern int	ingest_caught_up_threshold;
extern int	ingest_apply_batch_size;
extern int	ingest_apply_batch_delay;
extern int	ingest_sequence_margin;
extern bool ingest_drop_slot_at_stop;
extern int	ingest_max_crashes;
extern char *ingest_debug_crash_worker;
extern int	ingest_sequence_sync_interval;
extern bool ingest_refresh_matviews_at_stop;

/* What a background worker of pg_ingest does. */
typedef enum IngestWorkerKind
{
	INGEST_WORKER_NONE = 0,
	INGEST_WORKER_SCAN,			/* finds a database's unfinished migrations */
	INGEST_WORKER_COORDINATOR,	/* drives one migration through its phases */
	INGEST_WORKER_COPY,			/* copies tables (or parts) */
	INGEST_WORKER_INDEX,		/* builds indexes, constraints, statistics */
	INGEST_WORKER_RECEIVER,		/* streams the slot into the spool */
	INGEST_WORKER_APPLIER,		/* applies the spool */
	INGEST_WORKER_ABORT			/* carries out ingest.abort */
} IngestWorkerKind;

typedef struct IngestWorkerSlot
{
	pid_t		pid;			/* 0: slot is free */
	IngestWorkerKind kind;
	int			migration;		/* index into migrations[] */
	int			job;			/* 1..n among the workers of its kind */
	Latch	   *latch;
	int32		item_id;		/* copy or schema item in hand, 0 if none */
	TimestampTz item_started;
	pg_atomic_uint64 bytes;		/* source bytes of the item so far */
	pg_atomic_uint64 rows;		/* rows of the item so far */
} IngestWorkerSlot;

typedef struct IngestMigrationSlot
{
	Oid			dboid;			/* InvalidOid: slot is free */
	int32		migration_id;	/* ingest.migration.id in that database */
	Oid			owner;			/* role the workers act as */
	bool		launch;			/* supervisor: start a coordinator */
	bool		stop;			/* abort requested: do not relaunch */
	bool		terminal;		/* finished: free the slot */
	bool		reserved;		/* claimed by a transaction not yet committed */
	int			restarts;		/* coordinator launches so far */
	TimestampTz next_launch;	/* earliest relaunch after a failure */
	pid_t		coordinator_pid;
	double		copy_rate;		/* bytes/s, recent (coordinator) */
	double		apply_rate;		/* changes/s, recent (coordinator) */
	/* change data capture (receiver.c, apply.c) */
	bool		numeric_as_string;	/* wal2json knows that option ... */
	bool		numeric_probed; /* ... as the receiver found out (else unknown) */
	bool		receiver_connected;
	bool		stop_streaming; /* receiver: the migration is done */
	bool		paused;			/* applier: apply nothing for now */
	bool		apply_idle;		/* applier: nothing to apply */
	bool		reached_stop;	/* applier: the stop LSN is reached */
	/* receiver.c: the link to the source, under the lock (see receiver.h) */
	TimestampTz last_contact;	/* last message from the source */
	TimestampTz failing_since;	/* first failure of the current outage, or 0 */
	char		stream_error[256];	/* why the stream is down (scrubbed), or "" */

	/* atomics from here on; a slot is cleared up to this field */
	pg_atomic_uint64 bytes_received;	/* source bytes of all copies */
	pg_atomic_uint64 received_lsn;	/* stream position received */
	pg_atomic_uint64 flushed_lsn;	/* confirmed to the source */
	pg_atomic_uint64 source_lsn;	/* the source's pg_current_wal_lsn() */
	pg_atomic_uint64 spool_limit;	/* spool position after the last whole transaction */
	pg_atomic_uint64 spool_bytes;	/* size of the spool */
	pg_atomic_uint64 applied_lsn;	/* end of the last applied transaction */
	pg_atomic_uint64 applied_commit_ts; /* its commit time on the source */
	pg_atomic_uint64 changes_applied;
	pg_atomic_uint64 stop_request;	/* stop LSN asked for, not yet recorded */
	pg_atomic_uint64 apply_pos;	/* spool position the applier has read up to */

	/* never cleared: bumped each time the slot is given to a migration */
	uint64		generation;
} IngestMigrationSlot;

typedef struct IngestSharedState
{
	LWLock	   *lock;
	pid_t		supervisor_pid;
	Latch	   *supervisor_latch;
	int			ndatabases;
	Oid			databases[INGEST_MAX_DATABASES];
	bool		databases_dirty;	/* the supervisor must save the list */
	int			nworkers;		/* size of workers[] */
	IngestMigrationSlot *migrations;	/* [ingest_max_migrations] */
	IngestWorkerSlot *workers;	/* [nworkers] */
} IngestSharedState;

extern IngestSharedState *IngestShared;

/* shmem.c */
extern void ingest_shmem_init(void);
extern void ingest_require_preload(void);
extern XLogRecPtr ingest_migration_applied_lsn(Oid dboid, int32 migration_id);

/* guc.c */
extern void ingest_define_gucs(bool preloading);

/* caller.c */
extern void ingest_check_caller(void);
extern char *ingest_sql_version(void);
extern void ingest_check_sql_version(void);
extern bool ingest_role_is_admin(Oid roleid);

/* slots.c, shmem.c: migration slots */
extern int	ingest_reserve_migration_slot(Oid dboid, int32 migration_id,
										  Oid owner, bool must_be_new);
extern void ingest_clear_migration_slot(IngestMigrationSlot *s, bool init);
extern void ingest_launch_at_commit(int slot);
extern void ingest_stop_at_commit(int slot, int32 migration_id);
extern void ingest_stop_lsn_at_commit(int slot, int32 migration_id,
									  XLogRecPtr lsn);
extern void ingest_changed_in_xact(int32 migration_id);
extern void ingest_wake_stream_at_commit(int32 migration_id, bool resume);
extern int	ingest_find_migration_slot(Oid dboid, int32 migration_id);
extern int	ingest_find_migration_slot_locked(Oid dboid, int32 migration_id);
extern bool ingest_slot_reserved(Oid dboid, int32 migration_id);
extern bool ingest_request_stop_now(Oid dboid, int32 migration_id, XLogRecPtr lsn);

/* workers.c: the workers, started, attached, signalled */
extern void ingest_remember_database(Oid dboid);
extern IngestWorkerSlot *ingest_attach_worker(IngestWorkerKind kind,
											  int migration, int job,
											  int32 migration_id,
											  uint64 generation);
extern bool ingest_start_worker(IngestWorkerKind kind, int migration, int job,
								Oid dboid, int32 migration_id, Oid owner,
								BackgroundWorkerHandle **handle);
extern int	ingest_signal_workers(int migration, IngestWorkerKind kind,
								  int signo, bool exclude_self);
extern bool ingest_wait_workers_gone(int migration, long timeout_ms);
extern void ingest_wake_workers(int migration, IngestWorkerKind kind);
extern void ingest_wake_supervisor(void);
extern const char *ingest_worker_kind_name(IngestWorkerKind kind);
extern bool ingest_sleep_ms(long ms);
extern int	ingest_worker_job(void);
extern void ingest_log_recovered_error(ErrorData *edata);
extern void ingest_slot_set_flag(bool *field, bool value);
extern void ingest_slot_set_rate(double *field, double value);
extern void ingest_worker_set_item(int32 item_id, TimestampTz started);
extern void ingest_worker_init(Datum main_arg, IngestWorkerKind kind,
							   int *slot_out, int32 *migration_id_out);
extern void ingest_worker_read_migration(int32 migration_id, bool with_source);

extern IngestWorkerSlot *MyIngestWorker;

/* catalog.c: the ingest.* tables, through SPI as the extension's owner */
typedef struct IngestMigration
{
	int32		id;
	char	   *name;
	Oid			owner;
	char	   *source;			/* with the password: never show it */
	char	   *source_display;
	char	   *mode;
	char	   *schema_mode;
	int			table_jobs;
	int			index_jobs;
	int64		split_bytes;	/* 0: never; INGEST_SPLIT_AUTO: coordinator.c */
	char	   *phase;
	char	   *slot_name;
	char	   *snapshot_name;
	XLogRecPtr	snapshot_lsn;
	bool		postdata_loaded;
	int			restarts;
	XLogRecPtr	slot_lsn;		/* consistent point of the migration's slot */
	XLogRecPtr	stop_lsn;
	char	   *resume_phase;	/* phase to go back to after pause or failure */
	char	   *last_error;		/* why it failed, if it did */
	int			source_encoding;	/* the source's server encoding, or -1 */
	char	   *untracked_tables;	/* refuse, copy_only */
	char	   *resync;			/* none, at_cutover */
	char	   *ddl;			/* replicate, infer, off */
	char	   *ddl_via;		/* event_trigger, stream, or NULL (ddl.c) */
} IngestMigration;

/* the migration a migration's worker serves (workers.c) */
struct IngestConnInfo;
struct IngestFilters;
extern PGDLLIMPORT IngestMigration *MyMigration;
extern PGDLLIMPORT struct IngestConnInfo *MySource;
extern PGDLLIMPORT struct IngestFilters *MyFilters;
extern PGDLLIMPORT int MyMigrationSlotNo;
extern PGDLLIMPORT IngestMigrationSlot *MyMigrationSlot;

/* split_bytes of split_tables_larger_than => 'auto' */
#define INGEST_SPLIT_AUTO	(-1)

extern void ingest_catalog_begin(void);
extern void ingest_catalog_end(void);
extern void ingest_catalog_reset(void);
extern char *ingest_origin_name(IngestMigration *m);
extern void ingest_xact_start(void);
extern void ingest_xact_commit(void);
extern void ingest_xact_abort(void);

/* Run code in a transaction of its own (a worker outside any transaction). */
#define IN_TRANSACTION(code) \
	do { \
		ingest_xact_start(); \
		code; \
		ingest_xact_commit(); \
	} while (0)
extern SPITupleTable *ingest_catalog_query(const char *sql, int nargs,
										   Oid *argtypes, Datum *values,
										   const char *nulls);
extern SPITupleTable *ingest_catalog_query_kept(SPIPlanPtr *plan, const char *sql,
												int nargs, Oid *argtypes,
												Datum *values, const char *nulls);
extern uint64 ingest_catalog_exec(const char *sql, int nargs, Oid *argtypes,
								  Datum *values, const char *nulls);
extern char *ingest_getstr(SPITupleTable *tab, uint64 row, int col);
extern int64 ingest_getint(SPITupleTable *tab, uint64 row, int col,
						   int64 if_null);
extern bool ingest_getbool(SPITupleTable *tab, uint64 row, int col);
extern IngestMigration *ingest_load_migration(int32 id);
extern IngestMigration *ingest_load_migration_by_name(const char *name,
													  bool unfinished_only,
													  bool missing_ok);
extern bool ingest_set_phase(IngestMigration *m, const char *phase,
							 const char *expected);
extern void ingest_event(int32 migration_id, const char *level,
						 const char *kind, const char *object,
						 const char *message, const char *detail);
extern void ingest_event_tx(int32 migration_id, const char *level,
							const char *kind, const char *object,
							const char *message, const char *detail);
extern void ingest_notify(IngestMigration *m, const char *event,
						  const char *message);
extern char *ingest_notify_payload(const char *name, const char *phase,
								   const char *event, XLogRecPtr lsn,
								   const char *message);
extern bool ingest_fail_migration(IngestMigration *m, const char *message);
extern bool ingest_phase_is_terminal(const char *phase);
extern const char *ingest_phase_name(const char *phase);
extern int	ingest_phase_rank(const char *phase);

/* control.c */
struct IngestConnInfo;
extern bool ingest_drop_source_slot(IngestMigration *m, struct IngestConnInfo *info,
									char **error);
extern void ingest_drop_local(IngestMigration *m);
extern void ingest_forget_password(IngestMigration *m);
extern Datum ingest_wait(PG_FUNCTION_ARGS);
extern Datum ingest_stop_at(PG_FUNCTION_ARGS);

/* largeobject.c: large objects (copy items of pg_catalog.pg_largeobject) */
struct pg_conn;
extern bool ingest_lo_is_item(const char *nspname, const char *relname);
extern List *ingest_lo_ranges(struct pg_conn *conn, const char *password, int jobs);
extern void ingest_lo_store_items(int32 migration_id, List *ranges);
extern uint64 ingest_lo_copy_range(struct pg_conn *conn, const char *password,
								   IngestMigration *m, int64 from, int64 to,
								   uint64 *bytes);
extern void ingest_lo_sync_at_stop(IngestMigration *m, struct IngestConnInfo *info);
extern char *ingest_lo_verify_sql(bool hash);
extern bool ingest_lo_verify_row(struct pg_conn *conn, const char *password,
								 bool hash, Datum *values, bool *nulls);
extern void ingest_lo_check_source(struct pg_conn *conn, const char *password);
extern void ingest_lo_check_target(void);
extern void ingest_lo_preflight(struct pg_conn *conn, const char *password,
								const char **status, char **detail, char **hint);
/* matview.c */
struct IngestFilters;
extern bool ingest_matview_skip(int32 migration_id, const char *nspname,
								const char *relname);
extern bool ingest_matview_notice(int32 migration_id, const char *table);
extern void ingest_refresh_matviews(IngestMigration *m, struct IngestConnInfo *info,
									struct IngestFilters *filters);

/* sequence.c */
extern void ingest_sequence_sync(IngestMigration *m, struct IngestConnInfo *info,
								 struct IngestFilters *filters, const char *phase);

/* Background worker entry points */
extern PGDLLEXPORT void ingest_supervisor_main(Datum main_arg);
extern PGDLLEXPORT void ingest_scan_main(Datum main_arg);
extern PGDLLEXPORT void ingest_coordinator_main(Datum main_arg);
extern PGDLLEXPORT void ingest_copy_main(Datum main_arg);
extern PGDLLEXPORT void ingest_index_main(Datum main_arg);
extern void ingest_index_item_settings(IngestMigration *m, int32 item_id,
									   int64 table_bytes);
extern PGDLLEXPORT void ingest_receiver_main(Datum main_arg);
extern PGDLLEXPORT void ingest_applier_main(Datum main_arg);
extern PGDLLEXPORT void ingest_abort_main(Datum main_arg);

#endif							/* PG_INGEST_H */
