/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *	  The coordinator's slot and snapshot protocol: the migration's own
 *	  replication slot (change data capture), and the snapshot the copy
 *	  workers import, kept by an idle replication session.
 *
 * A snapshot exported by CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export')
 * lives as long as the session that created it runs no other command: the
 * coordinator keeps that session (the exporter) open and idle while tables
 * are copied, watches its socket (ingest_snapshot_socket: a session the
 * source ended shows as input), and closes it when the copy is over.  A
 * full load's slot is temporary and goes with the session; the migration's
 * own slot (change data capture) is permanent, and exports the snapshot of
 * the copy (full-load-and-cdc) or none (mode cdc).
 *
 * At the stop (stop.c) and at ingest.cleanup / ingest.abort (control.c)
 * the migration's slot is dropped on the source
 * (ingest_drop_source_slot), and its origin and spool here
 * (ingest_drop_local).
 *
 * State: the exporter connection is this process's (the coordinator's);
 * the slot and snapshot names and LSNs are written to ingest.migration in
 * their own transactions, and to the caller's IngestMigration.
 *
 * Locking: none of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "catalog/pg_type.h"
#include "pgstat.h"
#include "replication/origin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"

#include "conn.h"
#include "pg_ingest.h"
#include "snapshot.h"
#include "spool.h"

/* replication connection whose idle session keeps the exported snapshot */
static PGconn *exporter = NULL;

/*
 * create_slot
 *		Create a wal2json slot on the exporter connection (opened anew),
 *		with an exported snapshot or none.  Returns its consistent point;
 *		*snapshot gets the snapshot's name.
 */
static XLogRecPtr
create_slot(IngestConnInfo *info, const char *name, bool temporary, bool export, char **snapshot)
{
	char	   *sql = ingest_create_slot_sql(exporter, name, temporary, export);
	PGresult   *res;
	XLogRecPtr	lsn;

	pgstat_report_activity(STATE_RUNNING, "waiting for the source to create a replication slot");
	res = ingest_exec(exporter, sql, PGRES_TUPLES_OK,
					  "create a replication slot", info->password);
	pgstat_report_activity(STATE_IDLE, NULL);
	lsn = DatumGetLSN(DirectFunctionCall1(pg_lsn_in,
										  CStringGetDatum(PQgetvalue(res, 0, 1))));
	*snapshot = PQgetisnull(res, 0, 2) ? NULL : pstrdup(PQgetvalue(res, 0, 2));
	PQclear(res);
	return lsn;
}

static void
open_exporter(IngestMigration *m, IngestConnInfo *info)
{
	if (exporter)
		ingest_disconnect(exporter);
	exporter = ingest_connect_or_error(info, INGEST_CONN_REPLICATION,
									   psprintf("pg_ingest %s snapshot", m->name));
}

/*
 * ingest_snapshot_export
 *		Create a slot on the source with an exported snapshot and keep its
 *		session open; record the snapshot for the copy workers.
 *
 * The slot is temporary and goes when the session closes: a full load
 * needs it only for the snapshot, and after a restart a migration with
 * change data capture needs a snapshot again while its own slot streams.
 */
void
ingest_snapshot_export(IngestMigration *m, IngestConnInfo *info)
{
	char	   *slot;
	char	   *snapshot;
	XLogRecPtr	lsn;
	Oid			types[3] = {INT4OID, TEXTOID, PG_LSNOID};
	Datum		vals[3];

	open_exporter(m, info);
	slot = psprintf("pg_ingest_%u_%d_snap_%d", MyDatabaseId, m->id, MyProcPid);
	lsn = create_slot(info, slot, true, true, &snapshot);

	vals[0] = Int32GetDatum(m->id);
	vals[1] = CStringGetTextDatum(snapshot);
	vals[2] = LSNGetDatum(lsn);
	IN_TRANSACTION(
				   ingest_catalog_begin();
				   ingest_catalog_exec("UPDATE ingest.migration SET snapshot_name = $2,"
									   " snapshot_lsn = $3, updated_at = now()"
									   " WHERE id = $1", 3, types, vals, NULL);
				   ingest_catalog_end();
				   ingest_event(m->id, "INFO", "snapshot", NULL,
								psprintf("exported snapshot %s, consistent at %X/%X",
										 snapshot, LSN_FORMAT_ARGS(lsn)),
								NULL));
	m->snapshot_name = MemoryContextStrdup(TopMemoryContext, snapshot);
	m->snapshot_lsn = lsn;
}

/*
 * ingest_snapshot_create_slot
 *		The migration's own slot, for change data capture: permanent,
 *		exporting the snapshot of the copy (full-load-and-cdc) or none (cdc).
 *		A slot of the same name left by an interrupted start goes first.
 */
void
ingest_snapshot_create_slot(IngestMigration *m, IngestConnInfo *info, bool export)
{
	char	   *name;
	char	   *snapshot;
	XLogRecPtr	lsn;
	PGresult   *res;
	Oid			types[5] = {INT4OID, TEXTOID, PG_LSNOID, TEXTOID, PG_LSNOID};
	Datum		vals[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	name = psprintf("pg_ingest_%08x_%u_%d", (uint32) GetSystemIdentifier(),
					MyDatabaseId, m->id);
	/* an origin of that name is a leftover: this migration starts afresh */
	IN_TRANSACTION(replorigin_drop_by_name(ingest_origin_name(m), true, false));
	open_exporter(m, info);
	res = ingest_query(exporter, psprintf("DROP_REPLICATION_SLOT %s", name), -1, NULL);
	PQclear(res);
	lsn = create_slot(info, name, false, export, &snapshot);

	vals[0] = Int32GetDatum(m->id);
	vals[1] = CStringGetTextDatum(name);
	vals[2] = LSNGetDatum(lsn);
	if (snapshot)
		vals[3] = CStringGetTextDatum(snapshot);
	else
		nulls[3] = 'n';
	vals[4] = LSNGetDatum(lsn);
	IN_TRANSACTION(
				   ingest_catalog_begin();
				   ingest_catalog_exec("UPDATE ingest.migration SET slot_name = $2, slot_lsn = $3,"
									   " snapshot_name = $4, snapshot_lsn = $5, updated_at = now()"
									   " WHERE id = $1", 5, types, vals, nulls);
				   ingest_catalog_end();
				   ingest_event(m->id, "INFO", "slot", NULL,
								psprintf("created replication slot %s, consistent at %X/%X%s",
										 name, LSN_FORMAT_ARGS(lsn),
										 snapshot ? psprintf(", snapshot %s", snapshot) : ""),
								NULL));
	m->slot_name = MemoryContextStrdup(TopMemoryContext, name);
	m->slot_lsn = lsn;
	m->snapshot_name = snapshot ? MemoryContextStrdup(TopMemoryContext, snapshot) : NULL;
	m->snapshot_lsn = lsn;
}

/*
 * Whether the session that keeps the exported snapshot is still there.  It
 * stays idle (any command would end the snapshot); what the source sends
 * it is read, which is how a session the source ended shows.
 */
bool
ingest_snapshot_alive(void)
{
	if (exporter == NULL || PQstatus(exporter) != CONNECTION_OK)
		return false;
	if (!PQconsumeInput(exporter))
		return false;
	return PQstatus(exporter) == CONNECTION_OK;
}

/* Close the session keeping the snapshot (its temporary slot goes with it). */
void
ingest_snapshot_release(void)
{
	if (exporter)
		ingest_disconnect(exporter);
	exporter = NULL;
}

/* A plain source session in the migration's snapshot. */
PGconn *
ingest_snapshot_session(IngestMigration *m, IngestConnInfo *info)
{
	PGconn	   *conn;

	conn = ingest_connect_or_error(info, INGEST_CONN_SQL,
								   psprintf("pg_ingest %s coordinator", m->name));
	ingest_begin_read(conn, m->snapshot_name, "import the snapshot", info->password);
	return conn;
}

/* The socket of the session keeping the snapshot, to wait on; -1 if none. */
pgsocket
ingest_snapshot_socket(void)
{
	return exporter != NULL && PQstatus(exporter) == CONNECTION_OK ?
		PQsocket(exporter) : PGINVALID_SOCKET;
}

/* Whether a session keeps a snapshot (alive or not). */
bool
ingest_snapshot_held(void)
{
	return exporter != NULL;
}

/* Why the session keeping the snapshot failed, the password scrubbed. */
char *
ingest_snapshot_error(const char *password)
{
	return exporter ? ingest_scrub(ingest_conn_error(exporter), password) :
		pstrdup("no session keeps it");
}

/*
 * ingest_drop_source_slot
 *		Drop the migration's replication slot on the source, waiting a
 *		little for a walsender that is still letting go of it.  False with
 *		*error set when the source cannot be reached or refuses.
 */
bool
ingest_drop_source_slot(IngestMigration *m, IngestConnInfo *info, char **error)
{
	PGconn	   *conn;
	int			attempt;
	bool		ok = false;

	if (m->slot_name == NULL)
		return true;
	WITH_SOURCE_SESSION(conn, info, INGEST_CONN_SQL,
						psprintf("pg_ingest %s cleanup", m->name), error,
	{
		const char *params[1] = {m->slot_name};

		for (attempt = 0; attempt < 50 && !ok; attempt++)
		{
			PGresult   *res;

			res = PQexecParams(conn,
							   "SELECT pg_catalog.pg_drop_replication_slot(slot_name)"
							   " FROM pg_catalog.pg_replication_slots"
							   " WHERE slot_name = $1",
							   1, NULL, params, NULL, NULL, 0);
			ok = PQresultStatus(res) == PGRES_TUPLES_OK;
			if (!ok)
			{
				*error = ingest_result_message(conn, res, info->password);
				/* a walsender still holds it: it is going away */
				if (strstr(*error, "is active") == NULL)
					attempt = 50;
				else
					(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
									 200L, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			PQclear(res);
		}
	});
	return ok;
}

/*
 * ingest_drop_local
 *		The migration's replication origin and spool.  In a transaction.
 */
void
ingest_drop_local(IngestMigration *m)
{
	replorigin_drop_by_name(ingest_origin_name(m), true, false);
	ingest_spool_remove_all(ingest_spool_dir(MyDatabaseId, m->id));
}
