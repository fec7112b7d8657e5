/*-------------------------------------------------------------------------
 *
 * supervisor.c
 *	  The pg_ingest supervisor, the one background worker started with the
 *	  server, and the database scan it runs at start.
 *
 * The supervisor launches the coordinator of every migration slot that asks
 * for one (ingest.start, once its transaction commits), and launches it
 * again, with a growing delay, when it stops without having finished.  It
 * connects to no database; it remembers in $PGDATA/pg_ingest/databases the
 * databases where migrations were started, and at server start launches a
 * short-lived scan worker in each, which finds the migrations that had not
 * finished and asks for their coordinators: a restart of the target
 * resumes them on its own.
 *
 * No worker failure may loop the server: a worker that crashes (a signal,
 * abort(), any exit code but 0 and 1) makes the postmaster restart every
 * process, shared memory included, so nothing in memory survives to count
 * crashes.  The supervisor tells a start after a crash from a clean one by
 * RUNNING_FILE, and then the scan counts one crash for every unfinished
 * migration in ingest.migration.crashes, committed and flushed before it
 * asks for the coordinator.  Past pg_ingest.max_crashes crashes in a row
 * the migration is failed instead, with the reason, and stays so until
 * ingest.resume; a phase reached (catalog.c), or a coordinator that has
 * run for a minute (coordinator.c), resets the count: crashes count only
 * "in a row", so a migration that streams for days is not failed by crashes
 * far apart.
 *
 * State: the migration slots and the database list in shared memory; the
 * crash count of each migration in the catalog (its coordinator's row);
 * whether this start follows a crash, in the process.
 *
 * Locking: IngestShared->lock for the migration slots and the database
 * list.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pg_ingest.h"

#define DATABASES_DIR	"pg_ingest"
#define DATABASES_FILE	"pg_ingest/databases"

/*
 * Exists while a supervisor runs; removed when it exits normally.  Found at
 * start, it tells that the server went through a crash (or an immediate
 * shutdown), which killed the supervisor without letting it exit.
 */
#define RUNNING_FILE	"pg_ingest/supervisor.running"

/* Longest delay between two launches of a failing coordinator. */
#define MAX_RELAUNCH_DELAY_S 300

static BackgroundWorkerHandle **coordinators;	/* per migration slot */

static bool after_crash = false;

static void
supervisor_on_exit(int code, Datum arg)
{
	(void) unlink(RUNNING_FILE);
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	if (IngestShared->supervisor_pid == MyProcPid)
	{
		IngestShared->supervisor_pid = 0;
		IngestShared->supervisor_latch = NULL;
	}
	LWLockRelease(IngestShared->lock);
}

/* Read the database list, once per shared memory lifetime. */
static void
load_databases(void)
{
	FILE	   *f;
	unsigned int oid;

	f = AllocateFile(DATABASES_FILE, "r");
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read \"%s\": %m", DATABASES_FILE)));
		return;
	}
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	while (fscanf(f, "%u", &oid) == 1 &&
		   IngestShared->ndatabases < INGEST_MAX_DATABASES)
		IngestShared->databases[IngestShared->ndatabases++] = (Oid) oid;
	LWLockRelease(IngestShared->lock);
	FreeFile(f);
}

/* Write the database list if it changed: temporary file, then rename. */
static void
save_databases(void)
{
	Oid			dbs[INGEST_MAX_DATABASES];
	int			n;
	int			i;
	FILE	   *f;

	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	if (!IngestShared->databases_dirty)
	{
		LWLockRelease(IngestShared->lock);
		return;
	}
	IngestShared->databases_dirty = false;
	n = IngestShared->ndatabases;
	memcpy(dbs, IngestShared->databases, sizeof(Oid) * n);
	LWLockRelease(IngestShared->lock);

	if (MakePGDirectory(DATABASES_DIR) < 0 && errno != EEXIST)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", DATABASES_DIR)));
		return;
	}
	f = AllocateFile(DATABASES_FILE ".tmp", "w");
	if (f == NULL)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not write \"%s\": %m", DATABASES_FILE ".tmp")));
		return;
	}
	for (i = 0; i < n; i++)
		fprintf(f, "%u\n", dbs[i]);
	if (FreeFile(f) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not write \"%s\": %m", DATABASES_FILE ".tmp")));
		return;
	}
	(void) durable_rename(DATABASES_FILE ".tmp", DATABASES_FILE, LOG);
}

/* Whether a database still exists (needs no database connection). */
static bool
database_exists(Oid dboid)
{
	bool		exists;

	StartTransactionCommand();
	exists = SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dboid));
	CommitTransactionCommand();
	return exists;
}

/*
 * scan_databases
 *		At start: run a scan worker in each remembered database, one after
 *		the other, forgetting databases that were dropped.
 */
static void
scan_databases(void)
{
	int			i;

	for (i = 0;; i++)
	{
		Oid			dboid;
		BackgroundWorkerHandle *handle;

		LWLockAcquire(IngestShared->lock, LW_SHARED);
		dboid = i < IngestShared->ndatabases ? IngestShared->databases[i] : InvalidOid;
		LWLockRelease(IngestShared->lock);
		if (!OidIsValid(dboid))
			break;

		if (!database_exists(dboid))
		{
			LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
			memmove(&IngestShared->databases[i], &IngestShared->databases[i + 1],
					sizeof(Oid) * (IngestShared->ndatabases - i - 1));
			IngestShared->ndatabases--;
			IngestShared->databases_dirty = true;
			LWLockRelease(IngestShared->lock);
			i--;
			continue;
		}
		if (!ingest_start_worker(INGEST_WORKER_SCAN, i, after_crash ? 1 : 0,
								 dboid, 0, InvalidOid, &handle))
		{
			ereport(LOG,
					(errmsg("pg_ingest could not start the scan of database %u: no background worker slot free",
							dboid),
					 errhint("Raise max_worker_processes.")));
			continue;
		}
		(void) WaitForBackgroundWorkerShutdown(handle);
		pfree(handle);
	}
	save_databases();
}

/*
 * manage_coordinators
 *		Launch what asks to be launched; free what finished; relaunch, after
 *		a delay, a coordinator that stopped without finishing.
 */
static void
manage_coordinators(void)
{
	int			i;
	TimestampTz now = GetCurrentTimestamp();

	for (i = 0; i < ingest_max_migrations; i++)
	{
		IngestMigrationSlot *s = &IngestShared->migrations[i];
		bool		running = false;
		bool		start = false;
		pid_t		pid;
		Oid			dboid;
		int32		migration_id;
		Oid			owner;

		if (coordinators[i] != NULL)
		{
			running = GetBackgroundWorkerPid(coordinators[i], &pid) != BGWH_STOPPED;
			if (!running)
			{
				pfree(coordinators[i]);
				coordinators[i] = NULL;
			}
		}

		LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
		if (s->dboid != InvalidOid && !s->reserved)
		{
			if (s->coordinator_pid != 0)
				running = true;
			/* a launch asked for (a resume) wins over the end of the last run */
			if (s->terminal && !running && !s->launch)
				memset(s, 0, offsetof(IngestMigrationSlot, bytes_received));
			else if (!running && !s->stop && (s->launch || !s->terminal))
			{
				if (s->launch || now >= s->next_launch)
				{
					start = true;
					s->terminal = false;
					if (!s->launch)
						s->restarts++;
					s->launch = false;
					s->next_launch = TimestampTzPlusMilliseconds(now,
																 1000L * Min(MAX_RELAUNCH_DELAY_S,
																			 5 << Min(s->restarts, 6)));
				}
			}
		}
		dboid = s->dboid;
		migration_id = s->migration_id;
		owner = s->owner;
		LWLockRelease(IngestShared->lock);

		/* a migration whose database was dropped is gone with it */
		if (start && !database_exists(dboid))
		{
			LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
			memset(s, 0, offsetof(IngestMigrationSlot, bytes_received));
			LWLockRelease(IngestShared->lock);
			continue;
		}
		if (start)
		{
			if (!ingest_start_worker(INGEST_WORKER_COORDINATOR, i, 0, dboid,
									 migration_id, owner, &coordinators[i]))
			{
				coordinators[i] = NULL;
				ereport(LOG,
						(errmsg("pg_ingest could not start the coordinator of migration %d: no background worker slot free",
								migration_id),
						 errhint("Raise max_worker_processes; the supervisor tries again.")));
			}
		}
	}
}

/*
 * ingest_supervisor_main
 *		Entry point of the supervisor.
 */
void
ingest_supervisor_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	coordinators = MemoryContextAllocZero(TopMemoryContext,
										  sizeof(BackgroundWorkerHandle *) * ingest_max_migrations);

	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	IngestShared->supervisor_pid = MyProcPid;
	IngestShared->supervisor_latch = MyLatch;
	LWLockRelease(IngestShared->lock);
	before_shmem_exit(supervisor_on_exit, (Datum) 0);

	/* a start after a crash, and from now on a running supervisor */
	{
		struct stat st;
		FILE	   *f;

		if (stat(RUNNING_FILE, &st) == 0)
			after_crash = true;
		if (MakePGDirectory(DATABASES_DIR) < 0 && errno != EEXIST)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", DATABASES_DIR)));
		else if ((f = AllocateFile(RUNNING_FILE, "w")) == NULL || FreeFile(f) != 0)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not write \"%s\": %m", RUNNING_FILE)));
	}

	if (IngestShared->ndatabases == 0)
		load_databases();
	else
		after_crash = false;	/* the supervisor alone restarted: no crash */
	scan_databases();

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		save_databases();
		manage_coordinators();

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * ingest_scan_main
 *		Entry point of a scan worker: ask for the coordinators of the
 *		database's unfinished migrations.  A failed migration waits for the
 *		operator, and a database without the extension is forgotten.
 */
void
ingest_scan_main(Datum main_arg)
{
	int			index;
	int32		unused;
	SPITupleTable *tab;
	uint64		i;
	int			nslots = 0;

	ingest_worker_init(main_arg, INGEST_WORKER_SCAN, &index, &unused);
	after_crash = ingest_worker_job() == 1;
	/* the crash count must be on disk before the relaunch it allows */
	SetConfigOption("synchronous_commit", "on", PGC_USERSET, PGC_S_OVERRIDE);

	ingest_xact_start();
	if (!OidIsValid(get_extension_oid("pg_ingest", true)))
	{
		LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
		for (index = 0; index < IngestShared->ndatabases; index++)
		{
			if (IngestShared->databases[index] == MyDatabaseId)
			{
				memmove(&IngestShared->databases[index],
						&IngestShared->databases[index + 1],
						sizeof(Oid) * (IngestShared->ndatabases - index - 1));
				IngestShared->ndatabases--;
				IngestShared->databases_dirty = true;
				break;
			}
		}
		LWLockRelease(IngestShared->lock);
	}
	else
	{
		/* SQL objects of a version this library does not know: resume nothing */
		ingest_check_sql_version();
		ingest_catalog_begin();
		tab = ingest_catalog_query("SELECT id, owner, crashes FROM ingest.migration"
								   " WHERE phase NOT IN ('completed', 'aborted', 'failed')"
								   " ORDER BY id", 0, NULL, NULL, NULL);
		for (i = 0; i < tab->numvals; i++)
		{
			int32		id = (int32) ingest_getint(tab, i, 1, 0);
			Oid			owner = (Oid) ingest_getint(tab, i, 2, 0);
			int			crashes = (int) ingest_getint(tab, i, 3, 0);
			int			slot;

			if (after_crash)
			{
				Oid			types[1] = {INT4OID};
				Datum		vals[1] = {Int32GetDatum(id)};

				crashes++;
				ingest_catalog_exec("UPDATE ingest.migration SET crashes = crashes + 1"
									" WHERE id = $1", 1, types, vals, NULL);
				if (crashes > ingest_max_crashes)
				{
					IngestMigration *m = ingest_load_migration(id);

					ingest_fail_migration(m,
										  psprintf("the server crashed %d times in a row while the migration ran; it is not relaunched (pg_ingest.max_crashes = %d)",
												   crashes, ingest_max_crashes));
					ereport(LOG,
							(errmsg("pg_ingest migration \"%s\" failed: the server crashed %d times in a row while it ran",
									m->name, crashes),
							 errhint("See the server log for the process that crashed; ingest.resume('%s') tries again.",
									 m->name)));
					continue;
				}
				ereport(LOG,
						(errmsg("pg_ingest relaunches migration %d after a server crash (%d of pg_ingest.max_crashes = %d)",
								id, crashes, ingest_max_crashes)));
			}

			slot = ingest_reserve_migration_slot(MyDatabaseId, id, owner, false);
			LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
			IngestShared->migrations[slot].reserved = false;
			IngestShared->migrations[slot].launch = true;
			LWLockRelease(IngestShared->lock);
			nslots++;
		}
		ingest_catalog_end();
	}
	if (nslots > 0)
		ereport(LOG,
				(errmsg("pg_ingest resumes %d unfinished migration(s) in database \"%s\"",
						nslots, get_database_name(MyDatabaseId))));
	ingest_xact_commit();
	ingest_wake_supervisor();
	proc_exit(0);
}
