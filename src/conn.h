/*-------------------------------------------------------------------------
 *
 * conn.h
 *	  Connections from the target server to a migration's source.
 *
 * See conn.c for the rules every caller follows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_CONN_H
#define PG_INGEST_CONN_H

#include "libpq-fe.h"

/* What a connection is for; decides the options it is opened with. */
typedef enum IngestConnKind
{
	INGEST_CONN_SQL,			/* ordinary session */
	INGEST_CONN_REPLICATION		/* replication=database (walsender) */
} IngestConnKind;

/* A parsed, validated source connection string. */
typedef struct IngestConnInfo
{
	char	   *conninfo;		/* as given by the user */
	char	   *display;		/* the same with the password masked */
	char	   *password;		/* password given in it, or NULL */
	bool		require_password;	/* non-superuser owner: dblink rule */
} IngestConnInfo;

extern IngestConnInfo *ingest_conninfo_parse(const char *conninfo,
											 bool require_password,
											 char **errmsg_out,
											 char **hint_out);
extern char *ingest_conninfo_mask(const char *conninfo);
extern char *ingest_conninfo_for_tool(IngestConnInfo *info, const char *appname);
extern char *ingest_scrub(const char *message, const char *password);

extern PGconn *ingest_connect(IngestConnInfo *info, IngestConnKind kind,
							  const char *appname, char **errmsg_out);
extern PGconn *ingest_connect_or_error(IngestConnInfo *info,
									   IngestConnKind kind,
									   const char *appname);
extern void ingest_disconnect(PGconn *conn);

/*
 * WITH_SOURCE_SESSION
 *		Open conn, a session on the source for one piece of work, run the
 *		statements given, and close it whatever happens: the one
 *		connect / PG_TRY / disconnect block of such sessions.
 *
 * With error NULL, a failed connection throws (ingest_connect_or_error);
 * otherwise it sets *error, leaves conn NULL and skips the statements.
 * The statements must not return or jump out of the block.
 */
#define WITH_SOURCE_SESSION(conn, info, kind, appname, error, ...) \
	do { \
		char	  **with_error_ = (error); \
		\
		(conn) = with_error_ ? ingest_connect((info), (kind), (appname), with_error_) : \
			ingest_connect_or_error((info), (kind), (appname)); \
		if ((conn) != NULL) \
		{ \
			PG_TRY(); \
			{ \
				__VA_ARGS__; \
			} \
			PG_FINALLY(); \
			{ \
				ingest_disconnect(conn); \
			} \
			PG_END_TRY(); \
		} \
	} while (0)
extern char *ingest_conn_error(PGconn *conn);
extern void ingest_cancel(PGconn *conn);

extern PGresult *ingest_query(PGconn *conn, const char *sql,
							  long timeout_ms, bool *timed_out);
extern char *ingest_result_message(PGconn *conn, PGresult *res,
								   const char *password);
extern void ingest_report_result_error(PGconn *conn, PGresult *res,
									   int elevel, const char *what,
									   const char *password);
extern PGresult *ingest_exec(PGconn *conn, const char *sql,
							 ExecStatusType expected, const char *what,
							 const char *password);
extern void ingest_begin_read(PGconn *conn, const char *snapshot,
							  const char *what, const char *password);
extern char *ingest_create_slot_sql(PGconn *conn, const char *name,
									bool temporary, bool export);
extern int	ingest_get_copy_data(PGconn *conn, char **buffer, long timeout_ms);

/*
 * A source's COPY TO STDOUT as BeginCopyFrom()'s data callback reads it
 * (ingest_copy_feed_read): zero it, then set conn, password and what.
 */
typedef struct IngestCopyFeed
{
	PGconn	   *conn;			/* the source connection it reads */
	const char *password;		/* to scrub from its errors */
	const char *what;			/* what is read, for errors ("the table") */
	char	   *buf;			/* CopyData message being handed over */
	int			len;
	int			pos;
	bool		eof;			/* the source ended its COPY cleanly */
	uint64		bytes;
	uint64		messages;
} IngestCopyFeed;

extern int	ingest_copy_feed_read(IngestCopyFeed *feed, void *outbuf, int minread,
								  int maxread);
extern void ingest_put_copy_data(PGconn *conn, const char *data, int len,
								 const char *password);

#endif							/* PG_INGEST_CONN_H */
