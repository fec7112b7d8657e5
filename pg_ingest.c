/*-------------------------------------------------------------------------
 *
 * pg_ingest.c
 *	  Module entry of pg_ingest: GUCs, shared memory, worker registration,
 *	  and the checks every SQL function makes before it does anything.
 *
 * pg_ingest must be in shared_preload_libraries: _PG_init then requests the
 * shared memory (PG 15's shmem_request_hook) and registers the supervisor,
 * the background worker that (re)launches the workers of every unfinished
 * migration.  Loaded any other way (CREATE EXTENSION alone, a function call
 * in a backend), the library defines nothing shared and every function that
 * needs the workers refuses with ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE.
 *
 * Locking: IngestShared->lock (an LWLock of the named tranche "pg_ingest")
 * protects the shared state; see pg_ingest.h for what it covers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"

#include "src/pg_ingest.h"
#include "src/receiver.h"

PG_MODULE_MAGIC;

/* GUC variables */
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

IngestSharedState *IngestShared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);
static void ingest_shmem_request(void);
static void ingest_shmem_startup(void);
static Size ingest_shmem_size(void);

PG_FUNCTION_INFO_V1(ingest_version);

/*
 * Module load callback.
 */
void
_PG_init(void)
{
	BackgroundWorker bgw;

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

	if (!process_shared_preload_libraries_in_progress)
	{
		MarkGUCPrefixReserved("pg_ingest");
		return;
	}

	DefineCustomIntVariable("pg_ingest.max_migrations",
							"Most migrations that can run at the same time.",
							NULL,
							&ingest_max_migrations,
							4, 1, 64,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("pg_ingest");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ingest_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ingest_shmem_startup;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "pg_ingest");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "ingest_supervisor_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "pg_ingest supervisor");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "pg_ingest supervisor");
	RegisterBackgroundWorker(&bgw);
}

/* Worker slots: every job of every migration, coordinators, scans. */
static int
ingest_worker_slots(void)
{
	return ingest_max_migrations * (2 * INGEST_MAX_JOBS + 2) + INGEST_MAX_DATABASES;
}

static Size
ingest_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(IngestSharedState));

	size = add_size(size, MAXALIGN(mul_size(ingest_max_migrations,
											sizeof(IngestMigrationSlot))));
	size = add_size(size, mul_size(ingest_worker_slots(), sizeof(IngestWorkerSlot)));
	return size;
}

static void
ingest_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(ingest_shmem_size());
	RequestNamedLWLockTranche("pg_ingest", 1);
}

static void
ingest_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	IngestShared = ShmemInitStruct("pg_ingest", ingest_shmem_size(), &found);
	if (!found)
	{
		char	   *p = (char *) IngestShared;
		int			i;

		memset(IngestShared, 0, ingest_shmem_size());
		IngestShared->lock = &(GetNamedLWLockTranche("pg_ingest"))->lock;
		p += MAXALIGN(sizeof(IngestSharedState));
		IngestShared->migrations = (IngestMigrationSlot *) p;
		p += MAXALIGN(mul_size(ingest_max_migrations, sizeof(IngestMigrationSlot)));
		IngestShared->workers = (IngestWorkerSlot *) p;
		IngestShared->nworkers = ingest_worker_slots();
		for (i = 0; i < ingest_max_migrations; i++)
			ingest_clear_migration_slot(&IngestShared->migrations[i], true);
		for (i = 0; i < IngestShared->nworkers; i++)
		{
			pg_atomic_init_u64(&IngestShared->workers[i].bytes, 0);
			pg_atomic_init_u64(&IngestShared->workers[i].rows, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * ingest_require_preload
 *		Refuse to go on unless the library was loaded at server start.
 */
void
ingest_require_preload(void)
{
	if (IngestShared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_ingest must be loaded via \"shared_preload_libraries\""),
				 errhint("Add pg_ingest to \"shared_preload_libraries\" in postgresql.conf and restart the server.")));
}

/*
 * ingest_sql_version
 *		The version of the extension's SQL objects in this database (what
 *		CREATE or ALTER EXTENSION installed), palloc'd; NULL if the
 *		extension is not here.  Read afresh: ALTER EXTENSION ... UPDATE may
 *		run at any time.
 */
char *
ingest_sql_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("pg_ingest"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * ingest_check_sql_version
 *		Refuse to work with SQL objects this library does not know.  It
 *		knows its own version's and every earlier one's (0.1.0): what they
 *		lack it does without (copy.c), until ALTER EXTENSION ... UPDATE.
 */
void
ingest_check_sql_version(void)
{
	char	   *version = ingest_sql_version();

	if (version == NULL || strcmp(version, PG_INGEST_VERSION) == 0 ||
		strcmp(version, "0.1.0") == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the SQL objects of pg_ingest in this database are version %s, which its library (version %s) does not know",
					version, PG_INGEST_VERSION),
			 errhint("Install the pg_ingest library of version %s, or run ALTER EXTENSION pg_ingest UPDATE if it is older.",
					 version)));
}

/*
 * ingest_role_is_admin
 *		Whether roleid may operate pg_ingest: superuser or member of
 *		ingest_admin.
 */
bool
ingest_role_is_admin(Oid roleid)
{
	Oid			admin;

	if (superuser_arg(roleid))
		return true;
	admin = get_role_oid(INGEST_ADMIN_ROLE, true);
	return OidIsValid(admin) && has_privs_of_role(roleid, admin);
}

/*
 * ingest_check_caller
 *		The checks every operator-facing function makes first.
 *
 * EXECUTE is revoked from PUBLIC already; this also stops a grant made to
 * some other role by mistake.
 */
void
ingest_check_caller(void)
{
	ingest_require_preload();
	ingest_check_sql_version();
	if (!ingest_role_is_admin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to use pg_ingest"),
				 errdetail("Only superusers and members of role \"%s\" may use pg_ingest.",
						   INGEST_ADMIN_ROLE)));
}

/*
 * ingest.version() - the version of the loaded library
 */
Datum
ingest_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(PG_INGEST_VERSION));
}
