/*-------------------------------------------------------------------------
 *
 * largeobject_stop.c
 *	  Large objects at the stop: this server's objects made those of the
 *	  source now, after the stream has ended (logical decoding carries no
 *	  large object; the full load is largeobject.c).
 *
 * ingest_lo_sync_at_stop, called by the coordinator once the stream has
 * ended: the source, in one REPEATABLE READ transaction, sends every
 * object's metadata, size and content hash (md5 of the md5s of its chunks,
 * computed there); this server computes the same for its own objects
 * through an SPI cursor; a merge by OID finds those created, changed
 * (content or metadata) and removed since the snapshot, which are then
 * copied (ingest_lo_copy_objects), fixed (ingest_lo_apply_meta) or
 * unlinked in one transaction, and an INFO event gives the counts and the
 * time.  Owners and privileges are mapped as in the full load, so what
 * could not be carried does not count as a change again; what could not
 * be carried is one WARNING event.
 *
 * State: nothing in the catalog but the events; nothing in shared memory;
 * the lists of objects to remove, copy again and fix, in the stop's
 * transaction memory.
 *
 * Locking: none of its own; the objects are written in one transaction
 * here, with the locks lo_create, lo_put and lo_unlink take, while the
 * source's REPEATABLE READ transaction gives one state of its objects.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "conn.h"
#include "largeobject_int.h"
#include "pg_ingest.h"

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static char *
spi_str(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col + 1);
}

/*
 * ingest_lo_sync_at_stop
 *		At the stop, once the stream has ended: make this server's large
 *		objects those of the source now (see the file header).
 */
void
ingest_lo_sync_at_stop(IngestMigration *m, IngestConnInfo *info)
{
	TimestampTz started = GetCurrentTimestamp();
	PGconn	   *conn;

	WITH_SOURCE_SESSION(conn, info, INGEST_CONN_SQL,
						psprintf("pg_ingest %s large objects", m->name), NULL,
	{
		PGresult   *res;
		LoRoles    *roles;
		LoRoles    *mine;
		const char *params[3];
		Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
		Datum		vals[3];
		Portal		portal;
		char	   *sql = ingest_lo_meta_sql(LO_HASH, "true");
		PGresult   *src = NULL;
		SPITupleTable *tab = NULL;
		uint64		tpos = 0;
		bool		src_done = false;
		bool		tgt_done = false;
		StringInfoData copy_oids;
		List	   *removed = NIL;	/* of Oid: removed or to copy again */
		List	   *fix = NIL;	/* of LoMeta */
		List	   *fix_owner = NIL;	/* of char *: their owner here */
		int64		n_copied = 0,
					n_updated = 0,
					n_removed = 0,
					n_unchanged = 0;
		LoWarnings	w;
		LoPlans		plans;
		ListCell   *lc,
				   *lc2;
		MemoryContext cxt;
		MemoryContext spi_cxt;
		MemoryContext row_cxt;

		memset(&w, 0, sizeof(w));
		w.cxt = CurrentMemoryContext;
		initStringInfo(&copy_oids);
		ingest_begin_read(conn, NULL, NULL, info->password);

		ingest_xact_start();
		cxt = CurrentMemoryContext;
		roles = ingest_lo_target_roles();
		mine = palloc(sizeof(LoRoles));
		mine->owners = mine->all = roles->all;
		mine->me = roles->me;

		/* the source computes its hashes while this server computes its own */
		params[0] = roles->owners;
		params[1] = roles->me;
		params[2] = roles->all;
		ingest_lo_send_rows(conn, sql, 3, params, false, "read the large objects", info->password);

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		vals[0] = CStringGetTextDatum(mine->owners);
		vals[1] = CStringGetTextDatum(mine->me);
		vals[2] = CStringGetTextDatum(mine->all);
		portal = SPI_cursor_open_with_args(NULL, sql, 3, types, vals, NULL, true, 0);

		/* merge by OID */
		spi_cxt = CurrentMemoryContext;
		row_cxt = AllocSetContextCreate(cxt, "pg_ingest large objects at the stop",
										ALLOCSET_DEFAULT_SIZES);
		for (;;)
		{
			Oid			soid = InvalidOid;
			Oid			toid = InvalidOid;
			HeapTuple	tup = NULL;
			TupleDesc	desc = NULL;

			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(row_cxt);
			MemoryContextSwitchTo(row_cxt);
			if (src == NULL && !src_done)
			{
				src = ingest_lo_next_row(conn, "read the large objects", info->password);
				src_done = src == NULL;
			}
			if (!tgt_done && (tab == NULL || tpos >= tab->numvals))
			{
				if (tab)
					SPI_freetuptable(tab);
				SPI_cursor_fetch(portal, true, 100);
				MemoryContextSwitchTo(row_cxt);
				tab = SPI_tuptable;
				tpos = 0;
				tgt_done = SPI_processed == 0;
			}
			if (src_done && tgt_done)
				break;
			if (src)
				soid = (Oid) strtoul(PQgetvalue(src, 0, COL_OID), NULL, 10);
			if (!tgt_done)
			{
				tup = tab->vals[tpos];
				desc = tab->tupdesc;
				toid = (Oid) strtoul(spi_str(tup, desc, COL_OID), NULL, 10);
			}
			if (!tgt_done && (src_done || toid < soid))
			{
				/* only here: gone from the source */
				MemoryContext old = MemoryContextSwitchTo(cxt);

				removed = lappend_oid(removed, toid);
				MemoryContextSwitchTo(old);
				n_removed++;
				tpos++;
				continue;
			}
			if (tgt_done || soid < toid)
			{
				/* only on the source: new */
				appendStringInfo(&copy_oids, "%s%u", copy_oids.len > 0 ? "," : "", soid);
				n_copied++;
				PQclear(src);
				src = NULL;
				continue;
			}
			/* on both */
			if (!str_eq(PQgetvalue(src, 0, COL_DATA), spi_str(tup, desc, COL_DATA)) ||
				!str_eq(PQgetvalue(src, 0, COL_HASH), spi_str(tup, desc, COL_HASH)))
			{
				MemoryContext old = MemoryContextSwitchTo(cxt);

				removed = lappend_oid(removed, toid);
				MemoryContextSwitchTo(old);
				appendStringInfo(&copy_oids, "%s%u", copy_oids.len > 0 ? "," : "", soid);
				n_updated++;
			}
			else if (!str_eq(ingest_lo_getstr(src, COL_OWNER), spi_str(tup, desc, COL_OWNER)) ||
					 !str_eq(ingest_lo_getstr(src, COL_ACL), spi_str(tup, desc, COL_ACL)) ||
					 !str_eq(ingest_lo_getstr(src, COL_COMMENT), spi_str(tup, desc, COL_COMMENT)))
			{
				MemoryContext old = MemoryContextSwitchTo(cxt);

				fix = lappend(fix, ingest_lo_read_meta(src));
				fix_owner = lappend(fix_owner, spi_str(tup, desc, COL_OWNER));
				MemoryContextSwitchTo(old);
				n_updated++;
			}
			else
				n_unchanged++;
			PQclear(src);
			src = NULL;
			tpos++;
		}
		MemoryContextSwitchTo(spi_cxt);
		MemoryContextDelete(row_cxt);
		if (tab)
			SPI_freetuptable(tab);
		SPI_cursor_close(portal);

		/* remove, copy again, fix */
		ingest_lo_prepare_plans(&plans);
		foreach(lc, removed)
		{
			Datum		oid[1] = {ObjectIdGetDatum(lfirst_oid(lc))};

			ingest_lo_run_plan(plans.unlink, oid);
		}
		if (copy_oids.len > 0)
		{
			const char *extra[1];
			uint64		bytes;

			extra[0] = psprintf("{%s}", copy_oids.data);
			(void) ingest_lo_copy_objects(conn, info->password, roles,
								"m.oid = ANY($4::pg_catalog.oid[])", 1, extra, &bytes, &w);
		}
		forboth(lc, fix, lc2, fix_owner)
			ingest_lo_apply_meta(lfirst(lc), false, lfirst(lc2), &w);
		SPI_finish();

		ingest_lo_report_warnings(m, &w, "large objects");
		ingest_event(m->id, "INFO", "large objects", NULL,
					 psprintf("large objects at the stop: " INT64_FORMAT " copied, " INT64_FORMAT " updated, "
							  INT64_FORMAT " removed, " INT64_FORMAT " unchanged in %ld ms",
							  n_copied, n_updated, n_removed, n_unchanged,
							  (long) (TimestampDifferenceMilliseconds(started, GetCurrentTimestamp()))),
					 NULL);
		ingest_xact_commit();
		res = ingest_exec(conn, "COMMIT", PGRES_COMMAND_OK, "end the transaction",
						  info->password);
		PQclear(res);
	});
}
