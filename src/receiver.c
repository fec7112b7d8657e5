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
 * The link to the source is public (ingest._receiver(), ingest.status):
 * whether the stream is connected, the last contact with the source, and
 * while it is down why (scrubbed of the password) and since when.  A
 * migration is never caught up while its stream is down.  A stream that
 * keeps failing logs a WARNING and records a WARNING event at every
 * attempt; one that has failed for pg_ingest.stream_failure_timeout, or
 * fails for a reason that waiting does not cure (its slot was dropped or
 * invalidated on the source), fails the migration with the reason.
 *
 * The notices of the stream connection (a change wal2json left out) are
 * notices.c's; they are handled as soon as a read returns, before its
 * message is spooled.
 *
 * State: the spool on disk (spool.c: what is received and durable); the
 * stream connection, its position and the notices in the process; the
 * link's state, positions and counters in the migration slot (shared
 * memory); stream failures as events in the catalog.
 *
 * Locking: the receiver is the only writer of the receiver fields of its
 * migration slot: the atomics, and receiver_connected, last_contact,
 * failing_since and stream_error, which it writes under IngestShared->lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
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
#include "infer.h"
#include "pg_ingest.h"
#include "source.h"
#include "ddl.h"
#include "receiver.h"
#include "resync.h"
#include "spool.h"
#include "wal2json.h"

PG_FUNCTION_INFO_V1(ingest_receiver_status);

/* Between looks at the source's current WAL position. */
#define SOURCE_LSN_INTERVAL_MS 3000

/* Between publications of the last contact with the source. */
#define CONTACT_INTERVAL_MS 500

/* GUC: how long a stream may keep failing before the migration fails (s) */
int			ingest_stream_failure_timeout = 600;

static SpoolWriter spool;
static char *spool_dir;
static StringInfoData compact;	/* a message's compact form (TopMemoryContext) */
static PGconn *stream = NULL;
static PGconn *sql = NULL;		/* for pg_current_wal_lsn() */
static bool at_boundary = true; /* last message received ended a transaction */
static int	failures = 0;		/* connection failures in a row */
static XLogRecPtr keepalive_end = InvalidXLogRecPtr;
static TimestampTz contact_published = 0;

static bool migration_failed = false;	/* by this receiver: do not retry */

/*
 * ingest_receiver_define_gucs
 *		The receiver's settings; called from _PG_init.
 */
void
ingest_receiver_define_gucs(void)
{
	DefineCustomIntVariable("pg_ingest.stream_failure_timeout",
							"How long a replication stream may keep failing before its migration fails.",
							"While the source cannot be reached the receiver retries with a growing delay; after this long the migration fails with the reason.",
							&ingest_stream_failure_timeout,
							600, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
}

static void fail_stream(const char *message);

/* A notice that fails the migration (notices.c): this receiver stops. */
static void
fail_for_notice(const char *message)
{
	fail_stream(message);
	migration_failed = true;
}

/* Publish the state of the link to the source (under the lock). */
static void
set_link(bool connected, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	MyMigrationSlot->receiver_connected = connected;
	if (connected)
	{
		MyMigrationSlot->last_contact = now;
		MyMigrationSlot->failing_since = 0;
		MyMigrationSlot->stream_error[0] = '\0';
	}
	else if (error != NULL)
	{
		if (MyMigrationSlot->failing_since == 0)
			MyMigrationSlot->failing_since = now;
		strlcpy(MyMigrationSlot->stream_error, error, sizeof(MyMigrationSlot->stream_error));
		/* a multibyte character cut at the end is dropped */
		MyMigrationSlot->stream_error[pg_mbcliplen(MyMigrationSlot->stream_error, strlen(MyMigrationSlot->stream_error),
									  sizeof(MyMigrationSlot->stream_error) - 1)] = '\0';
	}
	LWLockRelease(IngestShared->lock);
	contact_published = now;
}

/* The source just spoke: publish it, at most every CONTACT_INTERVAL_MS. */
static void
note_contact(TimestampTz now)
{
	if (!TimestampDifferenceExceeds(contact_published, now, CONTACT_INTERVAL_MS))
		return;
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	MyMigrationSlot->last_contact = now;
	LWLockRelease(IngestShared->lock);
	contact_published = now;
}

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
	send_int64(&msg[1], (int64) Max(pg_atomic_read_u64(&MyMigrationSlot->received_lsn), flush));
	send_int64(&msg[9], (int64) flush);
	send_int64(&msg[17], (int64) pg_atomic_read_u64(&MyMigrationSlot->applied_lsn));
	send_int64(&msg[25], GetCurrentTimestamp());
	msg[33] = request_reply ? 1 : 0;
	ingest_put_copy_data(stream, msg, sizeof(msg), MySource->password);
	/* the applier reads spool_limit after this: publish in that order */
	pg_write_barrier();
	pg_atomic_write_u64(&MyMigrationSlot->flushed_lsn, flush);
}

/* The migration's applied position: the replication origin's progress. */
static XLogRecPtr
origin_progress(void)
{
	XLogRecPtr	lsn = InvalidXLogRecPtr;
	RepOriginId origin;

	ingest_xact_start();
	origin = replorigin_by_name(ingest_origin_name(MyMigration), true);
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
		sql = ingest_connect(MySource, INGEST_CONN_SQL,
							 psprintf("pg_ingest %s receiver", MyMigration->name), &msg);
		if (sql == NULL)
			return;				/* the stream will tell if the source is gone */
	}
	res = ingest_query(sql, "SELECT pg_catalog.pg_current_wal_lsn()", 5000L, NULL);
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && !PQgetisnull(res, 0, 0))
	{
		bool		bad = false;
		XLogRecPtr	lsn = pg_lsn_in_internal(PQgetvalue(res, 0, 0), &bad);

		if (!bad)
			pg_atomic_write_u64(&MyMigrationSlot->source_lsn, lsn);
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

	stream = ingest_connect_or_error(MySource, INGEST_CONN_REPLICATION,
									 psprintf("pg_ingest %s receiver", MyMigration->name));
	ingest_stream_notices_reset();
	PQsetNoticeReceiver(stream, ingest_stream_notice_receiver, NULL);
	cmd = psprintf("START_REPLICATION SLOT %s LOGICAL %X/%X ("
				   "\"format-version\" '2', \"include-xids\" '1',"
				   " \"include-timestamp\" '1', \"include-lsn\" '1',"
				   " \"include-transaction\" '1', \"include-types\" '%d',"
				   " \"include-schemas\" '1'%s%s)",
				   MyMigration->slot_name, LSN_FORMAT_ARGS(start),
				   ingest_infer_enabled(MyMigration) ? 1 : 0,	/* infer.c compares them */
				   numeric_as_string ? ", \"numeric-data-types-as-string\" '1'" : "",
				   ingest_ddl_stream_options(MyMigration));
	res = ingest_query(stream, cmd, -1, NULL);
	if (res == NULL || PQresultStatus(res) != PGRES_COPY_BOTH)
	{
		ingest_report_result_error(stream, res, ERROR,
								   "start streaming the replication slot",
								   MySource->password);
	}
	PQclear(res);
}

/* Open the stream, settling once whether wal2json knows numeric-as-string. */
static void
open_stream(XLogRecPtr start)
{
	bool		numeric = MyMigrationSlot->numeric_as_string;

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
		/* recovered from, and logged */
		ereport(LOG,
				(errmsg("pg_ingest receiver of migration \"%s\": wal2json does not know \"numeric-data-types-as-string\" (%s): NaN and Infinity are read back by the applier",
						MyMigration->name, edata->message)));
		FlushErrorState();
		if (stream)
			ingest_disconnect(stream);
		stream = NULL;
		/* wal2json before 2.6: the applier reads NaN and Infinity back */
		ingest_slot_set_flag(&MyMigrationSlot->numeric_as_string, false);
		start_stream(start, false);
	}
	PG_END_TRY();
	ingest_slot_set_flag(&MyMigrationSlot->numeric_probed, true);
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
	start = Max(start, MyMigration->slot_lsn);
	open_stream(start);
	if (pg_atomic_read_u64(&MyMigrationSlot->received_lsn) < start)
		pg_atomic_write_u64(&MyMigrationSlot->received_lsn, start);
	ingest_event_tx(MyMigration->id, "INFO", "stream", NULL,
					psprintf("streaming slot %s from %X/%X", MyMigration->slot_name,
							 LSN_FORMAT_ARGS(start)),
					NULL);
	set_link(true, NULL);
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
			(int64) pg_atomic_read_u64(&MyMigrationSlot->spool_bytes) > ingest_spool_max_size * 1024L * 1024L &&
			pg_atomic_read_u64(&MyMigrationSlot->apply_pos) < pg_atomic_read_u64(&MyMigrationSlot->spool_limit))
		{
			send_feedback(false);
			(void) ingest_sleep_ms(1000L);
			pg_atomic_write_u64(&MyMigrationSlot->spool_bytes, ingest_spool_size(spool_dir));
			continue;
		}

		len = ingest_get_copy_data(stream, &buf, 100L);

		/*
		 * libpq hands a notice over while reading the message after it: a
		 * change wal2json left out fails the migration here, before that
		 * message (its transaction's commit, maybe) is spooled, so that the
		 * transaction is cut short and every resume meets it again.
		 */
		if (ingest_stream_notices_pending())
		{
			PG_TRY();
			{
				ingest_stream_handle_notices(fail_for_notice);
			}
			PG_CATCH();
			{
				if (buf)
					PQfreemem(buf);
				PG_RE_THROW();
			}
			PG_END_TRY();
		}
		if (len > 0)
			note_contact(GetCurrentTimestamp());
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
			if (lsn > pg_atomic_read_u64(&MyMigrationSlot->received_lsn))
				pg_atomic_write_u64(&MyMigrationSlot->received_lsn, lsn);
			at_boundary = (kind == 'C');
			if (kind == 'C')
			{
				pg_atomic_write_u64(&MyMigrationSlot->spool_limit, ingest_spool_position(&spool));
				ingest_wake_workers(MyMigrationSlotNo, INGEST_WORKER_APPLIER);
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
							ingest_scrub(ingest_conn_error(stream), MySource->password))));
		if (buf)
			PQfreemem(buf);

		now = GetCurrentTimestamp();
		if (bytes_since_sync >= 16 * 1024 * 1024 ||
			TimestampDifferenceExceeds(last_sync, now, ingest_spool_sync_interval))
		{
			ingest_spool_sync(&spool);
			send_feedback(false);
			pg_atomic_write_u64(&MyMigrationSlot->spool_bytes, ingest_spool_size(spool_dir));
			last_sync = now;
			bytes_since_sync = 0;
			poll_source_lsn();
			if (MyMigrationSlot->stop_streaming)
				break;
		}
	}
}

/*
 * ingest_stream_caught_up
 *		Whether a migration's target has caught up with its source:
 *		everything received is applied and the applier is idle, or the
 *		last transaction applied committed on the source less than
 *		pg_ingest.caught_up_threshold ago; never while the stream is down,
 *		since what the source did meanwhile is not known.  The
 *		coordinator's switch to streaming and ingest.status's caught_up
 *		both ask this, so that they never disagree; the threshold is read
 *		here, in C, in its unit.  Caller holds IngestShared->lock.
 */
bool
ingest_stream_caught_up(IngestMigrationSlot *s, TimestampTz now)
{
	TimestampTz commit = (TimestampTz) pg_atomic_read_u64(&s->applied_commit_ts);

	if (!s->receiver_connected)
		return false;
	if (s->apply_idle &&
		pg_atomic_read_u64(&s->applied_lsn) >= pg_atomic_read_u64(&s->received_lsn))
		return true;
	return commit != 0 &&
		!TimestampDifferenceExceeds(commit, now, ingest_caught_up_threshold * 1000);
}

/*
 * ingest._receiver() - the stream of this database's migrations as the
 * receiver sees it, from shared memory: whether it is connected, the last
 * contact with the source, since when and why it has been failing, and
 * caught_up (see above).
 */
Datum
ingest_receiver_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	ingest_check_caller();
	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(IngestShared->lock, LW_SHARED);
	for (i = 0; i < ingest_max_migrations; i++)
	{
		IngestMigrationSlot *s = &IngestShared->migrations[i];
		Datum		values[6];
		bool		nulls[6] = {false};

		if (s->dboid != MyDatabaseId || s->reserved)
			continue;
		values[0] = Int32GetDatum(s->migration_id);
		values[1] = BoolGetDatum(s->receiver_connected);
		values[2] = TimestampTzGetDatum(s->last_contact);
		nulls[2] = s->last_contact == 0;
		values[3] = TimestampTzGetDatum(s->failing_since);
		nulls[3] = s->failing_since == 0;
		values[4] = CStringGetTextDatum(s->stream_error);
		nulls[4] = s->stream_error[0] == '\0';
		values[5] = BoolGetDatum(ingest_stream_caught_up(s, now));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(IngestShared->lock);
	return (Datum) 0;
}

static void
receiver_on_exit(int code, Datum arg)
{
	LWLockAcquire(IngestShared->lock, LW_EXCLUSIVE);
	MyMigrationSlot->receiver_connected = false;
	LWLockRelease(IngestShared->lock);
}

/*
 * Whether waiting cannot cure a failure of the stream: the slot is gone
 * (dropped on the source: undefined object) or can no longer be used
 * (invalidated, or the source lost what logical decoding needs).
 */
static bool
permanent_failure(ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_UNDEFINED_OBJECT ||
		edata->sqlerrcode == ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
}

/* Fail the migration, unless it has ended some other way meanwhile. */
static void
fail_stream(const char *message)
{
	IngestMigration *now;

	ingest_xact_start();
	now = ingest_load_migration(MyMigration->id);
	if (!ingest_phase_is_terminal(now->phase))
	{
		MyMigration->phase = now->phase;
		ingest_fail_migration(MyMigration, message);
	}
	ingest_xact_commit();
	ingest_wake_workers(MyMigrationSlotNo, INGEST_WORKER_COORDINATOR);
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

	ingest_worker_init(main_arg, INGEST_WORKER_RECEIVER, &MyMigrationSlotNo, &migration_id);
	on_shmem_exit(receiver_on_exit, (Datum) 0);

	MemoryContextSwitchTo(TopMemoryContext);
	initStringInfo(&compact);
	ingest_xact_start();
	ingest_w2j_setup_conversion(MyMigration->source_encoding);
	ingest_xact_commit();
	spool_dir = ingest_spool_dir(MyDatabaseId, MyMigration->id);
	(void) ingest_spool_open_writer(&spool, spool_dir);
	pg_atomic_write_u64(&MyMigrationSlot->spool_limit, ingest_spool_position(&spool));
	pg_atomic_write_u64(&MyMigrationSlot->spool_bytes, ingest_spool_size(spool_dir));

	cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest receiver",
								ALLOCSET_DEFAULT_SIZES);
	while (!MyMigrationSlot->stop_streaming)
	{
		volatile bool gave_up = false;

		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			receive();
		}
		PG_CATCH();
		{
			ErrorData  *edata;
			long		delay;
			char	   *message;
			TimestampTz since;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			ingest_xact_abort();
			message = ingest_scrub(edata->message, MySource->password);
			/* recovered from, but never silently: the server log has it */
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("pg_ingest receiver of migration \"%s\": %s", MyMigration->name, message),
					 edata->detail ? errdetail_internal("%s", ingest_scrub(edata->detail, MySource->password)) : 0));
			if (stream)
				ingest_disconnect(stream);
			stream = NULL;
			if (sql)
				ingest_disconnect(sql);
			sql = NULL;
			set_link(false, message);

			/*
			 * Keep the transactions received whole and drop the one cut
			 * short: the stream resumes after the last whole one.  What
			 * reopening allocates besides the writer's buffer goes with cxt.
			 */
			ingest_spool_abandon_writer(&spool);
			(void) ingest_spool_open_writer(&spool, spool_dir);
			at_boundary = true;
			failures++;

			LWLockAcquire(IngestShared->lock, LW_SHARED);
			since = MyMigrationSlot->failing_since;
			LWLockRelease(IngestShared->lock);
			if (migration_failed)
				gave_up = true;
			else if (permanent_failure(edata))
			{
				fail_stream(psprintf("the replication stream failed: %s", message));
				gave_up = true;
			}
			else if (TimestampDifferenceExceeds(since, GetCurrentTimestamp(),
												ingest_stream_failure_timeout * 1000))
			{
				fail_stream(psprintf("the replication stream has failed for %ld s (%d attempts; pg_ingest.stream_failure_timeout is %d s): %s",
									 (long) ((GetCurrentTimestamp() - since) / USECS_PER_SEC),
									 failures, ingest_stream_failure_timeout, message));
				gave_up = true;
			}
			else
			{
				delay = Min(60000L, (long) Max(ingest_retry_delay, 100) << Min(failures - 1, 8));
				ingest_event_tx(MyMigration->id, "WARNING", "stream", NULL,
								psprintf("replication stream lost, reconnecting in %ld ms (attempt %d): %s",
										 delay, failures, message),
								NULL);
				(void) ingest_sleep_ms(delay);
			}
		}
		PG_END_TRY();
		MemoryContextReset(cxt);
		if (gave_up)
			break;
	}
	ingest_spool_close_writer(&spool);
	proc_exit(0);
}
