/*-------------------------------------------------------------------------
 *
 * receiver.c
 *	  The change receiver: streams a migration's replication slot with
 *	  wal2json (format-version 2) into the spool.
 *
 * It starts with the copy, so that the source keeps almost no WAL however
 * long the copy takes.  Every message it receives is converted from the
 * source's encoding, parsed, and appended to the spool in compact form
 * (wal2json.c), so that the applier has no JSON to parse; what is durable
 * there (fsync'ed, at least every pg_ingest.spool_sync_interval) is what it
 * confirms to the source as flushed.  Standby status updates also answer the source's keepalives, so
 * wal_sender_timeout never cuts the stream.  When the connection breaks it
 * is opened again, with a growing delay, from the end of the last complete
 * transaction in the spool (or what the applier has applied, if later).
 *
 * When the spool exceeds pg_ingest.spool_max_size the receiver stops
 * reading, between two transactions, until the applier catches up (the
 * source then keeps its WAL).  A transaction cut short by a broken
 * connection is dropped from the spool before the stream resumes.
 *
 * It also reads the source's current WAL position every few seconds, for
 * ingest.status.
 *
 * Locking: the receiver is the only writer of the receiver fields of its
 * migration slot (atomics).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_bswap.h"
#include "postmaster/interrupt.h"
#include "replication/origin.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "conn.h"
#include "pg_ingest.h"
#include "spool.h"
#include "wal2json.h"

/* Between looks at the source's current WAL position. */
#define SOURCE_LSN_INTERVAL_MS 3000

static IngestMigration *m;
static IngestConnInfo *info;
static IngestMigrationSlot *me;
static int	my_slot;
static SpoolWriter spool;
static char *spool_dir;
static StringInfoData compact;	/* a message's compact form (TopMemoryContext) */
static PGconn *stream = NULL;
static PGconn *sql = NULL;		/* for pg_current_wal_lsn() */
static bool at_boundary = true; /* last message received ended a transaction */
static int	failures = 0;		/* connection failures in a row */
static XLogRecPtr keepalive_end = InvalidXLogRecPtr;

static int64
recv_int64(const char *p)
{
	uint64		n;

	memcpy(&n, p, sizeof(n));
	return (int64) pg_ntoh64(n);
}

static void
send_int64(char *p, int64 v)
{
	uint64		n = pg_hton64((uint64) v);

	memcpy(p, &n, sizeof(n));
}

/* What may be confirmed to the source as flushed. */
static XLogRecPtr
flush_position(void)
{
	XLogRecPtr	flush = spool.synced_commit;

	/*
	 * Between transactions, with everything received durable, the position
	 * the source says it has sent up to is confirmed too: there is nothing
	 * before it still to come.
	 */
	if (at_boundary && spool.synced_commit == spool.last_commit &&
		keepalive_end > flush)
		flush = keepalive_end;
	return flush;
}

static void
send_feedback(bool request_reply)
{
	char		msg[1 + 8 * 4 + 1];
	XLogRecPtr	flush = flush_position();

	msg[0] = 'r';
	send_int64(&msg[1], (int64) Max(pg_atomic_read_u64(&me->received_lsn), flush));
	send_int64(&msg[9], (int64) flush);
	send_int64(&msg[17], (int64) pg_atomic_read_u64(&me->applied_lsn));
	send_int64(&msg[25], GetCurrentTimestamp());
	msg[33] = request_reply ? 1 : 0;
	ingest_put_copy_data(stream, msg, sizeof(msg), info->password);
	/* the applier reads spool_limit after this: publish in that order */
	pg_write_barrier();
	pg_atomic_write_u64(&me->flushed_lsn, flush);
}

/* The migration's applied position: the replication origin's progress. */
static XLogRecPtr
origin_progress(void)
{
	XLogRecPtr	lsn = InvalidXLogRecPtr;
	RepOriginId origin;

	ingest_xact_start();
	origin = replorigin_by_name(ingest_origin_name(m), true);
	if (origin != InvalidRepOriginId)
		lsn = replorigin_get_progress(origin, false);
	ingest_xact_commit();
	return lsn;
}

static void
poll_source_lsn(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();
	PGresult   *res;
	char	   *msg = NULL;

	if (!TimestampDifferenceExceeds(last, now, SOURCE_LSN_INTERVAL_MS))
		return;
	last = now;
	if (sql == NULL)
	{
		sql = ingest_connect(info, INGEST_CONN_SQL,
							 psprintf("pg_ingest %s receiver", m->name), &msg);
		if (sql == NULL)
			return;				/* the stream will tell if the source is gone */
	}
	res = ingest_query(sql, "SELECT pg_catalog.pg_current_wal_lsn()", 5000L, NULL);
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && !PQgetisnull(res, 0, 0))
	{
		bool		bad = false;
		XLogRecPtr	lsn = pg_lsn_in_internal(PQgetvalue(res, 0, 0), &bad);

		if (!bad)
			pg_atomic_write_u64(&me->source_lsn, lsn);
	}
	else
	{
		ingest_disconnect(sql);
		sql = NULL;
	}
	PQclear(res);
}

static void
start_stream(XLogRecPtr start, bool numeric_as_string)
{
	char	   *cmd;
	PGresult   *res;

	stream = ingest_connect_or_error(info, INGEST_CONN_REPLICATION,
									 psprintf("pg_ingest %s receiver", m->name));
	cmd = psprintf("START_REPLICATION SLOT %s LOGICAL %X/%X ("
				   "\"format-version\" '2', \"include-xids\" '1',"
				   " \"include-timestamp\" '1', \"include-lsn\" '1',"
				   " \"include-transaction\" '1', \"include-types\" '0',"
				   " \"include-schemas\" '1'%s)",
				   m->slot_name, LSN_FORMAT_ARGS(start),
				   numeric_as_string ? ", \"numeric-data-types-as-string\" '1'" : "");
	res = ingest_query(stream, cmd, -1, NULL);
	if (res == NULL || PQresultStatus(res) != PGRES_COPY_BOTH)
	{
		PG_TRY();
		{
			ingest_report_result_error(stream, res, ERROR,
									   "start streaming the replication slot",
									   info->password);
		}
		PG_FINALLY();
		{
			PQclear(res);
		}
		PG_END_TRY();
	}
	PQclear(res);
}

/* Open the stream, settling once whether wal2json knows numeric-as-string. */
static void
open_stream(XLogRecPtr start)
{
	bool		numeric = me->numeric_as_string;

	PG_TRY();
	{
		start_stream(start, numeric);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		MemoryContext cxt = CurrentMemoryContext;

		if (!numeric)
			PG_RE_THROW();
		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		MemoryContextSwitchTo(cxt);
		if (strstr(edata->message, "numeric-data-types-as-string") == NULL)
			PG_RE_THROW();
		FlushErrorState();
		if (stream)
			ingest_disconnect(stream);
		stream = NULL;
		/* wal2json before 2.6: the applier reads NaN and Infinity back */
		ingest_slot_set_flag(&me->numeric_as_string, false);
		start_stream(start, false);
	}
	PG_END_TRY();
	ingest_slot_set_flag(&me->numeric_probed, true);
}

/* Stream until an error; appends to the spool, confirms what is durable. */
static void
receive(void)
{
	XLogRecPtr	start;
	TimestampTz last_sync = GetCurrentTimestamp();
	uint64		bytes_since_sync = 0;
	MemoryContext iter_cxt;

	/* a child of the caller's context, which goes when this returns */
	iter_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_ingest receiver message",
									 ALLOCSET_DEFAULT_SIZES);
	start = Max(spool.last_commit, origin_progress());
	start = Max(start, m->slot_lsn);
	open_stream(start);
	if (pg_atomic_read_u64(&me->received_lsn) < start)
		pg_atomic_write_u64(&me->received_lsn, start);
	ingest_event_tx(m->id, "INFO", "stream", NULL,
					psprintf("streaming slot %s from %X/%X", m->slot_name,
							 LSN_FORMAT_ARGS(start)),
					NULL);
	ingest_slot_set_flag(&me->receiver_connected, true);
	failures = 0;

	for (;;)
	{
		char	   *buf = NULL;
		int			len;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextReset(iter_cxt);
		MemoryContextSwitchTo(iter_cxt);

		/*
		 * Too much spooled: let the applier catch up, keep the source
		 * informed.  Only between transactions, since the applier needs the
		 * whole of one before it can apply and remove anything (a
		 * transaction larger than the limit is spooled whole), and only
		 * while the applier has something left to read (what it has read
		 * goes once the segment it is in is done).
		 */
		if (at_boundary &&
			(int64) pg_atomic_read_u64(&me->spool_bytes) > ingest_spool_max_size * 1024L * 1024L &&
			pg_atomic_read_u64(&me->apply_pos) < pg_atomic_read_u64(&me->spool_limit))
		{
			send_feedback(false);
			(void) ingest_sleep_ms(1000L);
			pg_atomic_write_u64(&me->spool_bytes, ingest_spool_size(spool_dir));
			continue;
		}

		len = ingest_get_copy_data(stream, &buf, 100L);
		if (len > 0 && buf[0] == 'w' && len >= 25)
		{
			XLogRecPtr	lsn = (XLogRecPtr) recv_int64(buf + 1);
			char	   *data = buf + 25;	/* libpq ends it with a NUL */
			int			dlen = len - 25;
			char		kind = '?';
			char	   *json = ingest_w2j_convert(data, dlen, true);
			W2JChange	change;
			char	   *error;

			/* parsed now, while the source streams; spooled compact */
			if (json && ingest_w2j_parse(json, json == data ? dlen : strlen(json),
										 &change, &error))
			{
				kind = change.action;
				resetStringInfo(&compact);
				ingest_w2j_compact(&change, &compact);
				ingest_spool_append(&spool, kind, lsn, compact.data, compact.len);
				/* a huge message's buffer does not stay */
				if (compact.maxlen > 8 * 1024 * 1024)
				{
					MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

					pfree(compact.data);
					initStringInfo(&compact);
					MemoryContextSwitchTo(old);
				}
			}
			else
			{
				/* as it came: the applier fails on it, with the reason */
				if (dlen > 12 && strncmp(data, "{\"action\":\"", 11) == 0)
					kind = data[11];
				ingest_spool_append(&spool, kind, lsn, data, dlen);
			}
			bytes_since_sync += dlen;
			/* a BEGIN carries its first change's position: never go back */
			if (lsn > pg_atomic_read_u64(&me->received_lsn))
				pg_atomic_write_u64(&me->received_lsn, lsn);
			at_boundary = (kind == 'C');
			if (kind == 'C')
			{
				pg_atomic_write_u64(&me->spool_limit, ingest_spool_position(&spool));
				ingest_wake_workers(my_slot, INGEST_WORKER_APPLIER);
			}
		}
		else if (len > 0 && buf[0] == 'k' && len >= 18)
		{
			keepalive_end = (XLogRecPtr) recv_int64(buf + 1);
			if (buf[17])
				send_feedback(false);
		}
		else if (len == -1)
		{
			if (buf)
				PQfreemem(buf);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("the source ended the replication stream")));
		}
		else if (len < 0)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("lost the replication stream: %s",
							ingest_scrub(ingest_conn_error(stream), info->password))));
		if (buf)
			PQfreemem(buf);

		now = GetCurrentTimestamp();
		if (bytes_since_sync >= 16 * 1024 * 1024 ||
			TimestampDifferenceExceeds(last_sync, now, ingest_spool_sync_interval))
		{
			ingest_spool_sync(&spool);
			send_feedback(false);
			pg_atomic_write_u64(&me->spool_bytes, ingest_spool_size(spool_dir));
			last_sync = now;
			bytes_since_sync = 0;
			poll_source_lsn();
			if (me->stop_streaming)
				break;
		}
	}
}

static void
receiver_on_exit(int code, Datum arg)
{
	ingest_slot_set_flag(&me->receiver_connected, false);
}

/*
 * ingest_receiver_main
 *		Entry point of the change receiver.
 */
void
ingest_receiver_main(Datum main_arg)
{
	int32		migration_id;
	MemoryContext cxt;

	ingest_worker_init(main_arg, INGEST_WORKER_RECEIVER, &my_slot, &migration_id);
	me = &IngestShared->migrations[my_slot];
	on_shmem_exit(receiver_on_exit, (Datum) 0);

	MemoryContextSwitchTo(TopMemoryContext);
	initStringInfo(&compact);
	ingest_xact_start();
	m = ingest_load_migration(migration_id);
	info = ingest_conninfo_parse(m->source, !superuser_arg(m->owner), NULL, NULL);
	ingest_w2j_setup_conversion(m->source_encoding);
	ingest_xact_commit();
	spool_dir = ingest_spool_dir(MyDatabaseId, m->id);
	(void) ingest_spool_open_writer(&spool, spool_dir);
	pg_atomic_write_u64(&me->spool_limit, ingest_spool_position(&spool));
	pg_atomic_write_u64(&me->spool_bytes, ingest_spool_size(spool_dir));

	cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest receiver",
								ALLOCSET_DEFAULT_SIZES);
	while (!me->stop_streaming)
	{
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			receive();
		}
		PG_CATCH();
		{
			ErrorData  *edata;
			long		delay;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			ingest_xact_abort();
			ingest_slot_set_flag(&me->receiver_connected, false);
			if (stream)
				ingest_disconnect(stream);
			stream = NULL;
			if (sql)
				ingest_disconnect(sql);
			sql = NULL;

			/*
			 * Keep the transactions received whole and drop the one cut
			 * short: the stream resumes after the last whole one.
			 */
			MemoryContextSwitchTo(TopMemoryContext);
			ingest_spool_abandon_writer(&spool);
			(void) ingest_spool_open_writer(&spool, spool_dir);
			at_boundary = true;
			MemoryContextSwitchTo(cxt);
			failures++;
			delay = Min(60000L, (long) Max(ingest_retry_delay, 100) << Min(failures - 1, 8));
			ingest_event_tx(m->id, failures == 1 ? "WARNING" : "INFO", "stream", NULL,
							psprintf("replication stream lost, reconnecting in %ld ms: %s",
									 delay, edata->message),
							NULL);
			(void) ingest_sleep_ms(delay);
		}
		PG_END_TRY();
		MemoryContextReset(cxt);
	}
	ingest_spool_close_writer(&spool);
	proc_exit(0);
}
