/*-------------------------------------------------------------------------
 *
 * copy.h
 *	  The COPY of a source table into a table of this server (copy.c),
 *	  for the copy workers and the resync at the stop (resync.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_COPY_H
#define PG_INGEST_COPY_H

#include "libpq-fe.h"
#include "utils/relcache.h"

extern uint64 ingest_copy_table(PGconn *conn, const char *password,
								Relation rel, const char *nspname,
								const char *relname, const char *columns,
								const char *filter, bool freeze,
								bool *binary_out, uint64 *bytes_out);

extern void ingest_set_copy_order(int32 migration_id);

#endif							/* PG_INGEST_COPY_H */
