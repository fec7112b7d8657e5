/*-------------------------------------------------------------------------
 *
 * conn.c
 *	  Connections from inside the target server to a migration's source:
 *	  connecting, queries, COPY data, errors.  Connection strings (their
 *	  validation, masking, and scrubbing the password from messages) are
 *	  conninfo.c's.
 *
 * Every pg_ingest process that talks to the source goes through this file:
 * the SQL functions run by operators (preflight, verify), the coordinator,
 * the copy workers and the change receiver.  It owns three rules:
 *
 * - Every wait on a source socket is a WaitLatchOrSocket() with
 *	 WL_EXIT_ON_PM_DEATH, and an interrupt (query cancel, SIGTERM) cancels
 *	 the remote query before CHECK_FOR_INTERRUPTS() throws, so nothing is
 *	 left running on the source when we give up.  Connecting is bounded by
 *	 pg_ingest.connect_timeout whatever the connection string says.
 *
 * - A non-superuser may not make the server connect with the server's own
 *	 credentials: the connection string must carry a password and the
 *	 server must have used it (the rule of dblink and postgres_fdw).
 *
 * - The password never leaves this file and conninfo.c: connection strings
 *	 are shown masked (ingest_conninfo_mask) and every message that came
 *	 from libpq or the source is scrubbed of it (ingest_scrub) before
 *	 anybody sees it.
 *
 * The session options of every connection are fixed here (DateStyle,
 * IntervalStyle, extra_float_digits, TimeZone, client_encoding = the
 * target database's encoding, no statement or idle timeouts, search_path
 * pg_catalog as in the workers, so that reg* values come out qualified),
 * because COPY text and wal2json output depend on them.
 *
 * The source's notices (and the message of a session it ends) are logged
 * at LOG through our own notice receiver, scrubbed, never written raw to
 * the server's stderr; the change receiver installs its own, since a
 * notice of wal2json's means a change left out (receiver.c).
 *
 * State: none of its own: a connection belongs to the caller.
 *
 * Locking: none.  A connection belongs to the process that opened it and
 * counts against fd.c's external file descriptors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "lib/stringinfo.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "conn.h"
#include "pg_ingest.h"

/*
 * Session settings pg_ingest needs on the source, appended to whatever
 * "options" the user gave.
 */
#define INGEST_SOURCE_OPTIONS \
	"-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 " \
	"-c timezone=UTC -c bytea_output=hex -c lc_monetary=C " \
	"-c row_security=off -c statement_timeout=0 -c lock_timeout=0 " \
	"-c idle_in_transaction_session_timeout=0 -c search_path=pg_catalog"

static int	wait_socket(PGconn *conn, int io_flags, long timeout_ms);
static void log_notice(void *arg, const PGresult *res);

/*
 * wait_socket
 *		Wait for the source socket, the latch or the timeout.
 *
 * On an interrupt that will throw, the query running on the source is
 * cancelled first; then CHECK_FOR_INTERRUPTS() throws.
 */
static int
wait_socket(PGconn *conn, int io_flags, long timeout_ms)
{
	int			rc;
	int			events = WL_EXIT_ON_PM_DEATH | WL_LATCH_SET | io_flags;

	if (timeout_ms >= 0)
		events |= WL_TIMEOUT;
	rc = WaitLatchOrSocket(MyLatch, events, PQsocket(conn),
						   timeout_ms < 0 ? 0 : timeout_ms,
						   PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		if ((QueryCancelPending || ProcDiePending) &&
			INTERRUPTS_CAN_BE_PROCESSED() &&
			PQtransactionStatus(conn) == PQTRANS_ACTIVE)
			ingest_cancel(conn);
		CHECK_FOR_INTERRUPTS();
	}
	return rc;
}

/*
 * ingest_connect
 *		Open a connection to the source.
 *
 * appname identifies pg_ingest and the worker in the source's
 * pg_stat_activity.  Returns NULL with *errmsg_out set (scrubbed) when the
 * connection cannot be made or breaks the password rule; throws only on
 * interrupts and when out of file descriptors.
 */
PGconn *
ingest_connect(IngestConnInfo *info, IngestConnKind kind, const char *appname,
			   char **errmsg_out)
{
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	const char *keywords[64];
	const char *values[64];
	int			n = 0;
	char	   *user_options = NULL;
	bool		has_timeout = false;
	bool		has_keepalive_idle = false;
	PGconn	   *volatile conn;
	PostgresPollingStatusType status;
	TimestampTz deadline;
	char	   *timeout_str;
	char	   *failure = NULL;

	opts = PQconninfoParse(info->conninfo, NULL);
	if (opts == NULL)
	{
		*errmsg_out = pstrdup("invalid source connection string");
		return NULL;
	}
	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL)
			continue;
		if (strcmp(opt->keyword, "application_name") == 0 ||
			strcmp(opt->keyword, "fallback_application_name") == 0 ||
			strcmp(opt->keyword, "client_encoding") == 0 ||
			strcmp(opt->keyword, "replication") == 0)
			continue;
		if (strcmp(opt->keyword, "options") == 0)
		{
			user_options = opt->val;
			continue;
		}
		if (strcmp(opt->keyword, "connect_timeout") == 0)
			has_timeout = true;
		if (strcmp(opt->keyword, "keepalives_idle") == 0)
			has_keepalive_idle = true;
		if (n >= lengthof(keywords) - 10)
			break;
		keywords[n] = opt->keyword;
		values[n++] = opt->val;
	}
	timeout_str = psprintf("%d", ingest_connect_timeout);
	if (!has_timeout)
	{
		keywords[n] = "connect_timeout";
		values[n++] = timeout_str;
	}
	if (!has_keepalive_idle)
	{
		keywords[n] = "keepalives_idle";
		values[n++] = "30";
		keywords[n] = "keepalives_interval";
		values[n++] = "10";
		keywords[n] = "keepalives_count";
		values[n++] = "6";
	}
	keywords[n] = "application_name";
	values[n++] = appname;
	keywords[n] = "client_encoding";
	values[n++] = GetDatabaseEncodingName();
	keywords[n] = "options";
	values[n++] = user_options ?
		psprintf("%s %s", user_options, INGEST_SOURCE_OPTIONS) :
		INGEST_SOURCE_OPTIONS;
	if (kind == INGEST_CONN_REPLICATION)
	{
		keywords[n] = "replication";
		values[n++] = "database";
	}
	keywords[n] = NULL;
	values[n] = NULL;

	if (!AcquireExternalFD())
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to the source"),
				 errdetail("There are too many open files on the local server."),
				 errhint("Raise the server's max_files_per_process and/or \"ulimit -n\" limits.")));

	conn = PQconnectStartParams(keywords, values, false);
	PQconninfoFree(opts);
	if (conn == NULL)
	{
		ReleaseExternalFD();
		*errmsg_out = pstrdup("out of memory");
		return NULL;
	}

	/*
	 * libpq enforces connect_timeout only in its blocking calls; bound the
	 * whole attempt here, over every host the string names.
	 */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   ingest_connect_timeout * 1000L);
	status = PQstatus(conn) == CONNECTION_BAD ?
		PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
	PG_TRY();
	{
		while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED)
		{
			int			io = (status == PGRES_POLLING_READING) ?
				WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
			long		remaining;
			int			rc;

			remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
														deadline);
			if (remaining <= 0)
			{
				failure = psprintf("timeout expired after %d s while connecting",
								   ingest_connect_timeout);
				break;
			}
			rc = WaitLatchOrSocket(MyLatch,
								   WL_EXIT_ON_PM_DEATH | WL_LATCH_SET |
								   WL_TIMEOUT | io,
								   PQsocket(conn), remaining,
								   PG_WAIT_EXTENSION);
			if (rc & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			if (rc & io)
				status = PQconnectPoll(conn);
		}
	}
	PG_CATCH();
	{
		libpqsrv_disconnect(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (failure == NULL && status != PGRES_POLLING_OK)
		failure = ingest_conn_error(conn);

	if (failure == NULL && info->require_password &&
		!PQconnectionUsedPassword(conn))
		failure = pstrdup("password is required: the source did not ask for the password, and non-superusers may only connect with one");

	/*
	 * libpq, here inside the server, sends PGTZ and PGDATESTYLE from the
	 * server's environment after the "options" above, and they win: set
	 * the two that shape values' text once more.
	 */
	if (failure == NULL)
	{
		PGresult   *volatile res = NULL;

		PG_TRY();
		{
			res = ingest_query(conn, "SET DateStyle = ISO; SET TimeZone = UTC",
							   ingest_connect_timeout * 1000L, NULL);
		}
		PG_CATCH();
		{
			libpqsrv_disconnect(conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
			failure = ingest_result_message(conn, res, NULL);
		PQclear(res);
	}

	if (failure != NULL)
	{
		libpqsrv_disconnect(conn);
		*errmsg_out = ingest_scrub(failure, info->password);
		return NULL;
	}
	/* the source's notices go to the log as ours, never raw to stderr */
	PQsetNoticeReceiver(conn, log_notice, (void *) info->password);
	return conn;
}

/*
 * The notice receiver of every source connection: a notice (or a message
 * of the source's that ends the session) is logged at LOG, scrubbed.  A
 * caller that must act on notices installs its own (receiver.c).
 */
static void
log_notice(void *arg, const PGresult *res)
{
	const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *password = (const char *) arg;

	if (message == NULL)
		return;
	/* not the statement: an operator's call may hold a connection string */
	ereport(LOG,
			(errmsg("pg_ingest: the source says: %s: %s",
					severity ? severity : "NOTICE",
					password ? ingest_scrub(message, password) : message),
			 errhidestmt(true)));
}

/*
 * ingest_connect_or_error
 *		ingest_connect() that throws a connection failure.
 */
PGconn *
ingest_connect_or_error(IngestConnInfo *info, IngestConnKind kind,
						const char *appname)
{
	char	   *msg = NULL;
	PGconn	   *conn = ingest_connect(info, kind, appname, &msg);

	if (conn == NULL)
	{
		/* libpq's first line says why; the rest (a hint) goes to the detail */
		char	   *nl = strchr(msg, '\n');
		char	   *first = nl ? pnstrdup(msg, nl - msg) : msg;

		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to the source: %s", first),
				 nl ? errdetail_internal("%s", msg) : 0,
				 errhidestmt(true)));
	}
	return conn;
}

void
ingest_disconnect(PGconn *conn)
{
	libpqsrv_disconnect(conn);
}

/*
 * ingest_conn_error
 *		The connection's last error message, trimmed; not yet scrubbed.
 */
char *
ingest_conn_error(PGconn *conn)
{
	char	   *msg = conn ? PQerrorMessage(conn) : NULL;

	if (msg == NULL || *msg == '\0')
		return pstrdup("connection to the source was lost");
	return pchomp(msg);
}

/*
 * ingest_cancel
 *		Ask the source to cancel the query running on this connection.
 *
 * Best effort: the answer is not waited for.
 */
void
ingest_cancel(PGconn *conn)
{
	PGcancel   *cancel;
	char		errbuf[256];

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		return;
	cancel = PQgetCancel(conn);
	if (cancel == NULL)
		return;
	(void) PQcancel(cancel, errbuf, sizeof(errbuf));
	PQfreeCancel(cancel);
}

/*
 * ingest_query
 *		Send a query and collect its last result, interruptibly.
 *
 * Returns the last PGresult (any status; the caller checks it), or NULL when
 * the connection broke.  With timeout_ms >= 0, a query still running after
 * that long is cancelled; *timed_out tells.
 */
PGresult *
ingest_query(PGconn *conn, const char *sql, long timeout_ms, bool *timed_out)
{
	PGresult   *volatile last = NULL;
	TimestampTz deadline = 0;
	bool		cancelled = false;

	if (timed_out)
		*timed_out = false;
	if (!PQsendQuery(conn, sql))
		return NULL;
	if (timeout_ms >= 0)
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	PG_TRY();
	{
		for (;;)
		{
			PGresult   *res;

			while (PQisBusy(conn))
			{
				long		wait_ms = -1;
				int			rc;

				if (deadline != 0)
				{
					wait_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
															  deadline);
					if (wait_ms <= 0)
					{
						if (cancelled)
						{
							/* the source did not answer the cancel: give up */
							PQclear(last);
							last = NULL;
							goto done;
						}
						ingest_cancel(conn);
						cancelled = true;
						if (timed_out)
							*timed_out = true;
						deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															   10000);
						continue;
					}
				}
				rc = wait_socket(conn, WL_SOCKET_READABLE, wait_ms);
				if ((rc & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
					break;
			}
			res = PQgetResult(conn);
			if (res == NULL)
				break;
			PQclear(last);
			last = res;
			if (PQresultStatus(res) == PGRES_COPY_OUT ||
				PQresultStatus(res) == PGRES_COPY_IN ||
				PQresultStatus(res) == PGRES_COPY_BOTH ||
				PQstatus(conn) == CONNECTION_BAD)
				break;
		}
done:	;
	}
	PG_CATCH();
	{
		PQclear(last);
		PG_RE_THROW();
	}
	PG_END_TRY();

	return last;
}

/*
 * ingest_result_message
 *		Human-readable, scrubbed text of a failed query's error.
 */
char *
ingest_result_message(PGconn *conn, PGresult *res, const char *password)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	char	   *msg;

	if (primary == NULL)
		msg = ingest_conn_error(conn);
	else if (detail != NULL)
		msg = psprintf("%s (%s)", primary, detail);
	else
		msg = pstrdup(primary);
	return ingest_scrub(msg, password);
}

/*
 * ingest_report_result_error
 *		ereport a failed source query, keeping the source's SQLSTATE, and
 *		free res (NULL is fine), even when elevel throws: the caller hands
 *		it over (postgres_fdw's pgfdw_report_error with clear = true).
 *
 * what says what we were doing ("copy table public.t").
 */
void
ingest_report_result_error(PGconn *conn, PGresult *res, int elevel,
						   const char *what, const char *password)
{
	PG_TRY();
	{
		const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
		const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
		int			code = ERRCODE_CONNECTION_FAILURE;

		if (sqlstate != NULL && strlen(sqlstate) == 5)
			code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
								 sqlstate[3], sqlstate[4]);
		ereport(elevel,
				(errcode(code),
				 errmsg("could not %s on the source: %s", what,
						ingest_scrub(primary ? primary : ingest_conn_error(conn),
									 password)),
				 detail ? errdetail_internal("%s", ingest_scrub(detail, password)) : 0,
				 hint ? errhint("%s", ingest_scrub(hint, password)) : 0,
				 errhidestmt(true)));
	}
	PG_FINALLY();
	{
		PQclear(res);
	}
	PG_END_TRY();
}

/*
 * ingest_exec
 *		Run a query on the source and throw unless it ends in status expected.
 */
PGresult *
ingest_exec(PGconn *conn, const char *sql, ExecStatusType expected,
			const char *what, const char *password)
{
	PGresult   *res = ingest_query(conn, sql, -1, NULL);

	if (res == NULL || PQresultStatus(res) != expected)
		ingest_report_result_error(conn, res, ERROR, what, password);
	return res;
}

/*
 * ingest_begin_read
 *		Begin the transaction every session reading the source runs in:
 *		REPEATABLE READ, READ ONLY; with snapshot (not NULL), importing that
 *		exported snapshot (what says which, for an error).
 */
void
ingest_begin_read(PGconn *conn, const char *snapshot, const char *what,
				  const char *password)
{
	PQclear(ingest_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
						PGRES_COMMAND_OK, "begin a transaction", password));
	if (snapshot)
		PQclear(ingest_exec(conn, psprintf("SET TRANSACTION SNAPSHOT %s",
										   quote_literal_cstr(snapshot)),
							PGRES_COMMAND_OK, what, password));
}

/*
 * ingest_create_slot_sql
 *		CREATE_REPLICATION_SLOT of a wal2json slot in the syntax of the
 *		server conn is connected to (the option list from PostgreSQL 15 on,
 *		the keywords before), exporting its snapshot or none.
 */
char *
ingest_create_slot_sql(PGconn *conn, const char *name, bool temporary, bool export)
{
	bool		pg15 = PQserverVersion(conn) >= 150000;

	return psprintf("CREATE_REPLICATION_SLOT %s %sLOGICAL wal2json %s", name,
					temporary ? "TEMPORARY " : "",
					pg15 ? (export ? "(SNAPSHOT 'export')" : "(SNAPSHOT 'nothing')") :
					(export ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT"));
}

/*
 * ingest_get_copy_data
 *		Next CopyData message from a COPY OUT / COPY BOTH stream.
 *
 * Returns its length (>0, *buffer to be PQfreemem'd), 0 when timeout_ms
 * passed without data (timeout_ms < 0: wait as long as it takes), -1 at the
 * end of the copy, -2 when the connection failed.
 */
int
ingest_get_copy_data(PGconn *conn, char **buffer, long timeout_ms)
{
	bool		read_once = false;

	for (;;)
	{
		int			len = PQgetCopyData(conn, buffer, 1);
		int			rc;

		if (len != 0)
			return len;

		/*
		 * libpq's buffer is drained: read what the socket holds already (one
		 * recv) before waiting on it, which sets up a wait event set (five
		 * system calls) and would otherwise do so for every buffer of a
		 * stream that keeps the socket full.
		 */
		if (!read_once)
		{
			read_once = true;
			if (!PQconsumeInput(conn))
				return -2;
			continue;
		}
		rc = wait_socket(conn, WL_SOCKET_READABLE, timeout_ms);
		if (rc & WL_SOCKET_READABLE)
		{
			if (!PQconsumeInput(conn))
				return -2;
		}
		else if (rc & WL_TIMEOUT)
			return 0;
	}
}

/*
 * ingest_put_copy_data
 *		Send a CopyData message on a COPY BOTH stream and flush it.
 */
void
ingest_put_copy_data(PGconn *conn, const char *data, int len,
					 const char *password)
{
	if (PQputCopyData(conn, data, len) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not send data to the source: %s",
						ingest_scrub(ingest_conn_error(conn), password))));
	for (;;)
	{
		int			r = PQflush(conn);

		if (r == 0)
			break;
		if (r < 0)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not send data to the source: %s",
							ingest_scrub(ingest_conn_error(conn), password))));
		(void) wait_socket(conn, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, -1);
		if (!PQconsumeInput(conn))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not send data to the source: %s",
							ingest_scrub(ingest_conn_error(conn), password))));
	}
}

/*
 * ingest_copy_feed_read
 *		The body of a data callback of BeginCopyFrom(): hand over the
 *		CopyData messages of the source's COPY TO STDOUT, waiting only while
 *		there is nothing to return.  Sets feed->eof once the source ended
 *		its COPY with success; throws if it failed or went away.
 */
int
ingest_copy_feed_read(IngestCopyFeed *feed, void *outbuf, int minread, int maxread)
{
	int			copied = 0;

	while (copied < maxread)
	{
		int			len;

		if (feed->pos < feed->len)
		{
			int			n = Min(feed->len - feed->pos, maxread - copied);

			memcpy((char *) outbuf + copied, feed->buf + feed->pos, n);
			copied += n;
			feed->pos += n;
			continue;
		}
		if (feed->buf)
		{
			PQfreemem(feed->buf);
			feed->buf = NULL;
		}
		if (feed->eof)
			break;

		len = ingest_get_copy_data(feed->conn, &feed->buf, copied >= minread ? 0 : -1);
		if (len > 0)
		{
			feed->len = len;
			feed->pos = 0;
			feed->bytes += len;
			feed->messages++;
			continue;
		}
		if (len == 0)
			break;
		if (len == -1)
		{
			PGresult   *res = PQgetResult(feed->conn);

			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				ingest_report_result_error(feed->conn, res, ERROR,
										   psprintf("read %s", feed->what),
										   feed->password);
			PQclear(res);
			feed->eof = true;
			break;
		}
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost the source while reading %s: %s", feed->what,
						ingest_scrub(ingest_conn_error(feed->conn), feed->password))));
	}
	return copied;
}
