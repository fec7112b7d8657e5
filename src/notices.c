/*-------------------------------------------------------------------------
 *
 * notices.c
 *	  The notices of a migration's stream connection (receiver.c), and
 *	  what a notice of wal2json means: a change left out.
 *
 * wal2json leaves out, with only a WARNING sent to the client as a notice,
 * an UPDATE or DELETE on a table that has neither a key nor a replica
 * identity (and a change with no tuple data).  The stream connection's
 * notices come here (never raw into the server log; the same notice again
 * at once is kept once): such a change fails the migration, naming the
 * table, unless the table is a materialized view here (the DELETEs of a
 * REFRESH ... CONCURRENTLY, see matview.c), or the migration was started with
 * untracked_tables = 'copy_only', in which case the table gets one WARNING
 * event (its later changes are not carried), or the table is one that
 * resync => 'at_cutover' copies again at the stop (resync.c: skipped).
 * Other notices of the source are logged at LOG.  libpq hands a notice
 * over while reading the message that follows it, so the notices are
 * handled as soon as a read returns and before its message is spooled:
 * the failing change's transaction is never spooled whole (nor applied),
 * and every resume meets the change again.
 *
 * State: the notices kept until the receiver's loop looks at them, and the
 * tables already warned about, in this process (the receiver); the
 * WARNING events in ingest.events.
 *
 * Locking: none.
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

/*
 * Notices of the stream connection, kept by the notice receiver (inside
 * libpq, where nothing may throw) until the receiver's loop looks at them.
 */
#define MAX_NOTICES 16
typedef struct SourceNotice
{
	char		severity[16];	/* not localized */
	char		message[512];
} SourceNotice;
static SourceNotice notices[MAX_NOTICES];
static int	n_notices = 0;
static int	notices_lost = 0;
static List *untracked_warned = NIL;	/* tables warned about (copy_only) */

/*
 * ingest_stream_notice_receiver
 *		libpq's notice receiver of the stream connection: keep the notice
 *		for later (nothing may throw inside libpq).
 */
void
ingest_stream_notice_receiver(void *arg, const PGresult *res)
{
	const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	if (message == NULL)
		return;
	/* one per row a statement changed: the same notice again adds nothing */
	if (n_notices > 0 &&
		strncmp(notices[n_notices - 1].message, message, sizeof(notices[0].message) - 1) == 0)
		return;
	if (n_notices >= MAX_NOTICES)
	{
		notices_lost++;
		return;
	}
	strlcpy(notices[n_notices].severity, severity ? severity : "NOTICE",
			sizeof(notices[n_notices].severity));
	strlcpy(notices[n_notices].message, message, sizeof(notices[n_notices].message));
	n_notices++;
}

/* A notice's text in this database's encoding, whatever the source sent. */
static char *
notice_text(char *message)
{
	int			len = strlen(message);
	char	   *text;

	if (pg_verify_mbstr(GetDatabaseEncoding(), message, len, true))
		return pstrdup(message);
	text = ingest_w2j_convert(message, len, true);
	if (text != NULL && text != message)
		return text;
	/* neither: keep the ASCII, mark the rest */
	text = pstrdup(message);
	for (char *p = text; *p; p++)
		if (IS_HIGHBIT_SET(*p))
			*p = '?';
	return text;
}

/*
 * The table named by a wal2json warning about a change it left out ("no
 * tuple identifier for UPDATE in table "s"."t"", "no old tuple data for
 * DELETE ...", "no tuple data for INSERT ..."), as wal2json wrote it; NULL
 * for any other message.  *action gets the command.
 */
static char *
untracked_table(const char *message, char **action)
{
	static const char *const prefixes[] = {
		"no tuple identifier for ", "no old tuple data for ", "no tuple data for "
	};
	int			i;

	for (i = 0; i < lengthof(prefixes); i++)
	{
		const char *rest;
		const char *table;

		if (strncmp(message, prefixes[i], strlen(prefixes[i])) != 0)
			continue;
		rest = message + strlen(prefixes[i]);
		table = strstr(rest, " in table ");
		if (table == NULL)
			return NULL;
		*action = pnstrdup(rest, table - rest);
		return pstrdup(table + strlen(" in table "));
	}
	return NULL;
}

/* Whether the table has its 'untracked' event already (an earlier receiver). */
static bool
untracked_recorded(const char *table)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		vals[2] = {Int32GetDatum(MyMigration->id), CStringGetTextDatum(table)};
	bool		found;

	ingest_xact_start();
	ingest_catalog_begin();
	(void) ingest_catalog_query("SELECT 1 FROM ingest.events WHERE migration_id = $1"
								" AND kind = 'untracked' AND object = $2 LIMIT 1",
								2, types, vals, NULL);
	found = SPI_processed > 0;
	ingest_catalog_end();
	ingest_xact_commit();
	return found;
}

/* The migration's untracked_tables, read anew (the operator may change it). */
static char *
untracked_policy(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(MyMigration->id)};
	SPITupleTable *tab;
	char	   *policy = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	ingest_xact_start();
	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT untracked_tables FROM ingest.migration WHERE id = $1",
							   1, types, vals, NULL);
	if (SPI_processed == 1)
	{
		char	   *v = ingest_getstr(tab, 0, 1);

		if (v)
			policy = MemoryContextStrdup(cxt, v);
	}
	ingest_catalog_end();
	ingest_xact_commit();
	return policy ? policy : pstrdup("refuse");
}

/*
 * Whether a table named as wal2json names it in its notices ("nsp"."rel",
 * the names unescaped) is left out by the migration's filters: it is not
 * one the migration copied (ingest.copy_item), and the filters leave it
 * out however the name is split (a name holding "." makes the split
 * ambiguous).  Anything else is in scope.
 */
static bool
left_out_by_filters(const char *table)
{
	size_t		len = strlen(table);
	const char *p;
	bool		split = false;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(MyMigration->id)};
	SPITupleTable *tab;
	uint64		i;
	bool		known = false;

	if (len < 5 || table[0] != '"' || table[len - 1] != '"')
		return false;
	for (p = strstr(table, "\".\""); p != NULL; p = strstr(p + 1, "\".\""))
	{
		SourceRel	sr;

		memset(&sr, 0, sizeof(sr));
		sr.nspname = pnstrdup(table + 1, p - table - 1);
		sr.relname = pnstrdup(p + 3, (table + len - 1) - (p + 3));
		sr.relkind = 'r';
		ingest_apply_filters(list_make1(&sr), MyFilters);
		if (sr.in_scope)
			return false;
		split = true;
	}
	if (!split)
		return false;

	ingest_xact_start();
	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT DISTINCT '\"' || nspname || '\".\"' || relname || '\"'"
							   " FROM ingest.copy_item WHERE migration_id = $1",
							   1, types, vals, NULL);
	for (i = 0; i < SPI_processed && !known; i++)
		known = strcmp(ingest_getstr(tab, i, 1), table) == 0;
	ingest_catalog_end();
	ingest_xact_commit();
	return !known;
}

/*
 * ingest_stream_handle_notices
 *		Act on the notices of the stream connection: a change wal2json left
 *		out fails the migration (fail_migration, then an ERROR, after which
 *		the receiver stops), or with untracked_tables = 'copy_only' is one
 *		WARNING event per table; anything else the source says is logged.
 */
void
ingest_stream_handle_notices(void (*fail_migration) (const char *message))
{
	int			i;

	for (i = 0; i < n_notices; i++)
	{
		char	   *text = notice_text(notices[i].message);
		char	   *action = NULL;
		char	   *table = untracked_table(text, &action);

		if (table == NULL)
		{
			ereport(LOG,
					(errmsg("pg_ingest receiver of migration \"%s\": the source says: %s: %s",
							MyMigration->name, notices[i].severity,
							ingest_scrub(text, MySource->password)),
					 errhidestmt(true)));
			continue;
		}
		/* a REFRESH ... CONCURRENTLY's DELETEs: refreshed at the stop */
		if (ingest_matview_notice(MyMigration->id, table))
			continue;
		/* resync => 'at_cutover': the table is copied again at the stop */
		if (ingest_resync_covers_w2j(MyMigration, table))
			continue;
		/* a table the filters leave out: none of its changes are applied */
		if (left_out_by_filters(table))
			continue;
		/* resync => 'at_cutover': a table made without identity since joins it */
		if (ingest_resync_join_w2j(MyMigration, table, action))
			continue;
		if (strcmp(untracked_policy(), "copy_only") == 0)
		{
			MemoryContext old;

			if (ingest_string_in(untracked_warned, table))
				continue;
			if (!untracked_recorded(table))
				ingest_event_tx(MyMigration->id, "WARNING", "untracked", table,
								psprintf("changes to table %s are not carried: it has neither a primary key nor a replica identity on the source (untracked_tables is copy_only); the first left out is an %s",
										 table, action),
								psprintf("wal2json: %s", text));
			old = MemoryContextSwitchTo(TopMemoryContext);
			untracked_warned = lappend(untracked_warned, pstrdup(table));
			MemoryContextSwitchTo(old);
			continue;
		}
		n_notices = 0;
		fail_migration(psprintf("an %s on table %s cannot be carried: the table has neither a primary key nor a replica identity on the source (wal2json: %s)",
							 action, table, text));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("an %s on table %s cannot be carried: the table has neither a primary key nor a replica identity on the source",
						action, table),
				 errhint("Give the table a primary key or REPLICA IDENTITY FULL on the source and start the migration again, or start it with untracked_tables => 'copy_only'.")));
	}
	n_notices = 0;
	if (notices_lost > 0)
	{
		int			lost = notices_lost;

		notices_lost = 0;
		fail_migration(psprintf("%d notices of the source were lost: a change left out by wal2json may be among them", lost));
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%d notices of the source were lost", lost)));
	}
}

/*
 * ingest_stream_notices_reset, ingest_stream_notices_pending
 *		Forget the notices kept (a new stream connection); whether some are
 *		waiting for ingest_stream_handle_notices.
 */
void
ingest_stream_notices_reset(void)
{
	n_notices = notices_lost = 0;
}

bool
ingest_stream_notices_pending(void)
{
	return n_notices > 0 || notices_lost > 0;
}
