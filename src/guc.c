/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  pg_ingest's settings (GUCs): their variables and their definitions.
 *
 * Every setting is defined whenever the library is loaded, so that SET and
 * SHOW work in any backend; pg_ingest.max_migrations sizes shared memory
 * and exists only when the library is preloaded.  The receiver's settings
 * are defined by receiver.c (ingest_receiver_define_gucs).
 *
 * State: the variables, one copy per process, set by the GUC machinery.
 *
 * Locking: none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "pg_ingest.h"
#include "receiver.h"

int			ingest_connect_timeout = 10;
int			ingest_preflight_timeout = 30;
int			ingest_max_migrations = 4;
int			ingest_max_retries = 3;
int			ingest_retry_delay = 1000;
int			ingest_index_parallel_workers = -1;
int			ingest_spool_max_size = 10240;
int			ingest_spool_sync_interval = 1000;
int			ingest_caught_up_threshold = 5;
int			ingest_apply_batch_size = 100;
int			ingest_apply_batch_delay = 200;
int			ingest_sequence_margin = 0;
bool		ingest_drop_slot_at_stop = true;
int			ingest_max_crashes = 3;
char	   *ingest_debug_crash_worker = NULL;
int			ingest_sequence_sync_interval = 5;
bool		ingest_refresh_matviews_at_stop = true;

/*
 * ingest_define_gucs
 *		Define every setting (preloading: at server start, from
 *		shared_preload_libraries, which adds those that size shared memory).
 */
void
ingest_define_gucs(bool preloading)
{
	DefineCustomIntVariable("pg_ingest.connect_timeout",
							"Longest wait for a connection to a source.",
							"Applies to every connection pg_ingest opens, whatever the connection string says.",
							&ingest_connect_timeout,
							10, 1, 3600,
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.preflight_timeout",
							"Longest wait of ingest.preflight for the source to create its test replication slot.",
							"Slot creation waits for transactions running on the source; past this, the check fails and names them.",
							&ingest_preflight_timeout,
							30, 1, 3600,
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.max_retries",
							"Attempts at a table, a schema statement or a coordinator step before the migration fails.",
							"Only transient errors (deadlocks, lack of resources) are retried for schema statements.",
							&ingest_max_retries,
							3, 1, 100,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.retry_delay",
							"Delay before the first retry of a table; it doubles at each attempt.",
							NULL,
							&ingest_retry_delay,
							1000, 0, 600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.index_parallel_workers",
							"max_parallel_maintenance_workers of the index workers; -1: for each index, as many as the migration's idle jobs, at most the server's setting.",
							"index_jobs already builds several indexes at once, while tables are still copied; parallel workers per index help only with idle cores left, as when the last large index is built after the copy.",
							&ingest_index_parallel_workers,
							-1, -1, 64,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	ingest_receiver_define_gucs();

	DefineCustomIntVariable("pg_ingest.caught_up_threshold",
							"Lag under which a migration counts as caught up (ingest.status.caught_up).",
							"A migration in phase catching_up moves to streaming once its lag is under this.",
							&ingest_caught_up_threshold,
							5, 0, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.spool_max_size",
							"Largest spool of changes received but not yet applied, per migration.",
							"Past it, the receiver stops reading at the next transaction boundary and the source keeps its WAL until the applier catches up; a single transaction larger than this is still spooled whole.",
							&ingest_spool_max_size,
							10240, 64, INT_MAX / 2,
							PGC_SIGHUP, GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.spool_sync_interval",
							"Longest time between two fsyncs of the spool (and flush confirmations to the source).",
							NULL,
							&ingest_spool_sync_interval,
							1000, 10, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.apply_batch_size",
							"Most source transactions applied in one target transaction.",
							NULL,
							&ingest_apply_batch_size,
							100, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.apply_batch_delay",
							"Longest time a target transaction gathers source transactions before it commits.",
							NULL,
							&ingest_apply_batch_delay,
							200, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.sequence_margin",
							"Added to every sequence's value when it is set at the stop of a migration with change data capture.",
							NULL,
							&ingest_sequence_margin,
							0, 0, INT_MAX,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.sequence_sync_interval",
							"How often sequences are brought up to the source's values while a migration streams; 0 turns it off.",
							"A sequence is only ever moved forward; the stop still sets each one to the source's value plus pg_ingest.sequence_margin.",
							&ingest_sequence_sync_interval,
							5, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_ingest.refresh_matviews_at_stop",
							 "Whether the stop of a migration with change data capture refreshes its materialized views.",
							 "Changes a REFRESH on the source sends are left out while streaming; off leaves the views with what the copy put in them.",
							 &ingest_refresh_matviews_at_stop,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_ingest.drop_slot_at_stop",
							 "Whether a migration drops its replication slot on the source when it stops.",
							 "Off keeps it (with the origin and the spool) until ingest.cleanup().",
							 &ingest_drop_slot_at_stop,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_ingest.max_crashes",
							"Server crash-restarts in a row a migration survives before it fails instead of being relaunched.",
							"A crash of any process restarts the whole server; the migrations running then count one crash each, and a phase reached resets the count.",
							&ingest_max_crashes,
							3, 0, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pg_ingest.debug_crash_worker",
							   "For tests only: workers of this kind (coordinator, copy, index, receiver, applier) crash at start.",
							   "The worker calls abort() once it is connected, which makes the server restart: the test of pg_ingest.max_crashes.",
							   &ingest_debug_crash_worker,
							   "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	if (preloading)
		DefineCustomIntVariable("pg_ingest.max_migrations",
								"Most migrations that can run at the same time.",
								NULL,
								&ingest_max_migrations,
								4, 1, 64,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);

	MarkGUCPrefixReserved("pg_ingest");
}
