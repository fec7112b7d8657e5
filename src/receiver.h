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

#include "pg_ingest.h"

extern int	ingest_stream_failure_timeout;

extern void ingest_receiver_define_gucs(void);
extern bool ingest_stream_caught_up(IngestMigrationSlot *s, TimestampTz now);

#endif							/* PG_INGEST_RECEIVER_H */
