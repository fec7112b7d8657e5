/*-------------------------------------------------------------------------
 *
 * receiver.h
 *	  The change receiver's view of the stream, shared with the
 *	  coordinator and ingest._receiver().
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_RECEIVER_H
#define PG_INGEST_RECEIVER_H

#include "datatype/timestamp.h"
#include "libpq-fe.h"

#include "pg_ingest.h"

extern int	ingest_stream_failure_timeout;

extern void ingest_receiver_define_gucs(void);
extern bool ingest_stream_caught_up(IngestMigrationSlot *s, TimestampTz now);

/* notices.c */
extern void ingest_stream_notice_receiver(void *arg, const PGresult *res);
extern void ingest_stream_notices_reset(void);
extern bool ingest_stream_notices_pending(void);
extern void ingest_stream_handle_notices(void (*fail_migration) (const char *message));

#endif							/* PG_INGEST_RECEIVER_H */
