/*-------------------------------------------------------------------------
 *
 * pg_ingest.c
 *	  Module entry of pg_ingest: _PG_init and ingest.version().
 *
 * pg_ingest must be in shared_preload_libraries: _PG_init then defines the
 * settings (guc.c), requests the shared memory (shmem.c) and registers the
 * supervisor (supervisor.c), the background worker that (re)launches the
 * workers of every unfinished migration.  Loaded any other way (CREATE
 * EXTENSION alone, a function call in a backend), the library defines its
 * settings and nothing shared, and every function that needs the workers
 * refuses with ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE (caller.c).
 *
 * Nothing in src/ calls into this file.  README.md's file map says which
 * file owns what; pg_ingest.h holds the shared-memory protocol.
 *
 * Locking: none here (shared memory is shmem.c's).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"

#include "src/pg_ingest.h"

PG_MODULE_MAGIC;



void		_PG_init(void);

PG_FUNCTION_INFO_V1(ingest_version);

/*
 * Module load callback.
 */
void
_PG_init(void)
{
	BackgroundWorker bgw;

	ingest_define_gucs(process_shared_preload_libraries_in_progress);
	if (!process_shared_preload_libraries_in_progress)
		return;

	ingest_shmem_init();

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

/*
 * ingest.version() - the version of the loaded library
 */
Datum
ingest_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(PG_INGEST_VERSION));
}
