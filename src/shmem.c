/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  pg_ingest's shared memory: its layout, its creation at server start,
 *	  and finding a migration's slot in it.
 *
 * IngestShared holds one slot per migration that can run
 * (pg_ingest.max_migrations: IngestMigrationSlot) and one per worker
 * (IngestWorkerSlot: every job of every migration, the coordinators, the
 * database scans).  It exists only when the library is preloaded
 * (shared_preload_libraries): PG 15's shmem_request_hook asks for it, the
 * shmem_startup_hook creates it; elsewhere IngestShared stays NULL and
 * ingest_require_preload refuses.
 *
 * The protocol (who writes each field, under which lock) is written once,
 * in pg_ingest.h; the slots are claimed, released and signalled by
 * workers.c.
 *
 * State: IngestShared itself (shared memory, gone at a restart: the
 * catalog holds what must survive); the previous hooks, in the postmaster.
 *
 * Locking: IngestShared->lock, an LWLock of the named tranche "pg_ingest";
 * AddinShmemInitLock while creating the memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "pg_ingest.h"

IngestSharedState *IngestShared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void ingest_shmem_request(void);
static void ingest_shmem_startup(void);

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
 * ingest_shmem_init
 *		Ask for the shared memory at server start (from _PG_init, while
 *		shared_preload_libraries are loaded).
 */
void
ingest_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ingest_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ingest_shmem_startup;
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
 * ingest_clear_migration_slot
 *		Zero the figures of a slot; init for shared memory just created.
 */
void
ingest_clear_migration_slot(IngestMigrationSlot *s, bool init)
{
	pg_atomic_uint64 *counters[] = {
		&s->bytes_received, &s->received_lsn, &s->flushed_lsn, &s->source_lsn,
		&s->spool_limit, &s->spool_bytes, &s->applied_lsn,
		&s->applied_commit_ts, &s->changes_applied, &s->stop_request,
		&s->apply_pos
	};
	int			i;

	s->copy_rate = s->apply_rate = 0;
	s->numeric_as_string = true;
	s->numeric_probed = false;
	s->receiver_connected = s->stop_streaming = s->paused = false;
	s->apply_idle = s->reached_stop = false;
	s->last_contact = s->failing_since = 0;
	s->stream_error[0] = '\0';
	for (i = 0; i < lengthof(counters); i++)
	{
		if (init)
			pg_atomic_init_u64(counters[i], 0);
		else
			pg_atomic_write_u64(counters[i], 0);
	}
}

/*
 * ingest_find_migration_slot_locked
 *		The slot of a migration, or -1; the caller holds IngestShared->lock.
 */
int
ingest_find_migration_slot_locked(Oid dboid, int32 migration_id)
{
	int			i;

	for (i = 0; i < ingest_max_migrations; i++)
		if (IngestShared->migrations[i].dboid == dboid &&
			IngestShared->migrations[i].migration_id == migration_id)
			return i;
	return -1;
}

/*
 * ingest_find_migration_slot
 *		The slot of a migration, or -1.
 */
int
ingest_find_migration_slot(Oid dboid, int32 migration_id)
{
	int			found;

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	found = ingest_find_migration_slot_locked(dboid, migration_id);
	LWLockRelease(IngestShared->lock);
	return found;
}

/*
 * ingest_migration_applied_lsn
 *		What the applier of a migration has applied, as its slot says;
 *		InvalidXLogRecPtr when it has no slot (or shared memory is not
 *		there).
 */
XLogRecPtr
ingest_migration_applied_lsn(Oid dboid, int32 migration_id)
{
	int			slot;

	if (IngestShared == NULL)
		return InvalidXLogRecPtr;
	slot = ingest_find_migration_slot(dboid, migration_id);
	if (slot < 0)
		return InvalidXLogRecPtr;
	return pg_atomic_read_u64(&IngestShared->migrations[slot].applied_lsn);
}
