/*-------------------------------------------------------------------------
 *
 * pg_ingest.h
 *	  Declarations shared by every part of pg_ingest.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_H
#define PG_INGEST_H

#include "port/atomics.h"
#include "storage/lwlock.h"

/* Role whose members may operate pg_ingest besides superusers. */
#define INGEST_ADMIN_ROLE	"ingest_admin"

/* GUCs (pg_ingest.c) */
extern int	ingest_connect_timeout;
extern int	ingest_preflight_timeout;
extern int	ingest_max_migrations;

/* Shared state (pg_ingest.c); NULL when not loaded at server start. */
typedef struct IngestSharedState
{
	LWLock	   *lock;			/* protects everything below */
	pid_t		supervisor_pid;
} IngestSharedState;

extern IngestSharedState *IngestShared;

extern void ingest_require_preload(void);
extern void ingest_check_caller(void);
extern bool ingest_role_is_admin(Oid roleid);

/* Background worker entry points */
extern PGDLLEXPORT void ingest_supervisor_main(Datum main_arg);

#endif							/* PG_INGEST_H */
