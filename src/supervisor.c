/*-------------------------------------------------------------------------
 *
 * supervisor.c
 *	  The pg_ingest supervisor: the one background worker started with the
 *	  server.
 *
 * The supervisor is where migrations get their workers from.  It is
 * registered in _PG_init, starts once recovery has finished, and is
 * restarted by the postmaster if it dies.
 *
 * Locking: it takes IngestShared->lock to publish its pid.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"

#include "pg_ingest.h"

static void
supervisor_on_exit(int code, Datum arg)
{
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	if (IngestShared->supervisor_pid == MyProcPid)
		IngestShared->supervisor_pid = 0;
	LWLockRelease(IngestShared->lock);
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

	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	IngestShared->supervisor_pid = MyProcPid;
	LWLockRelease(IngestShared->lock);
	before_shmem_exit(supervisor_on_exit, (Datum) 0);

	for (;;)
	{
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}
