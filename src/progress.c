/*-------------------------------------------------------------------------
 *
 * progress.c
 *	  What ingest.wait() says while it waits: one NOTICE per progress
 *	  interval with the migration's phase, percent copied, copy rate, time
 *	  left and lag, so that a DBA who runs SELECT ingest.wait(); in psql
 *	  sees the migration move.
 *
 * The figures are not computed here: they are the line of the view
 * ingest.progress for the migration's name (itself over
 * ingest.metric_values, ingest.status and ingest.events, defined in
 * src/pg_ingest--0.1.0--0.2.0.sql), so that the NOTICE, the view a DBA \watch-es and the
 * Prometheus metrics (ingest.metrics(), contrib/postgres_exporter.yml)
 * always say the same.
 *
 * Catalog vs shared memory: nothing is read here directly; the view reads
 * the catalog and, through ingest._live(), _stream() and _receiver(), the
 * workers' shared memory under IngestShared->lock (control.c).
 *
 * State: none; it reads the ingest.progress view.
 *
 * Locking: none of its own.  The view is read through the catalog helpers
 * (catalog.c: SPI as the catalog's owner, search_path pinned), in the
 * caller's transaction, with a fresh snapshot in READ COMMITTED, like the
 * rest of ingest.wait().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "pg_ingest.h"
#include "progress.h"

/*
 * One line of words from ingest.progress: what matters in the phase (the
 * copy while copying, the indexes while they are built, lag and apply rate
 * while changes stream); figures that do not apply are left out.
 */
static const char *const progress_sql =
	"SELECT pg_catalog.concat_ws(', ', p.phase,"
	" CASE WHEN p.phase = 'copying' AND p.pct IS NOT NULL"
	"  THEN pg_catalog.format('%s%% copied (%s, tables %s)', p.pct, p.copied, p.tables) END,"
	" CASE WHEN p.phase = 'copying' AND p.rate <> '0 bytes/s' THEN p.rate END,"
	" CASE WHEN p.phase = 'copying' AND p.eta IS NOT NULL"
	"  THEN pg_catalog.format('about %s left', p.eta) END,"
	" CASE WHEN p.phase IN ('copying', 'indexing', 'finalizing') AND p.indexes <> '0/0'"
	"  THEN pg_catalog.format('indexes %s', p.indexes) END,"
	" CASE WHEN p.lag IS NOT NULL"
	"  THEN pg_catalog.format('lag %s (%s)', p.lag, COALESCE(p.lag_time::text, '?')) END,"
	" CASE WHEN p.apply_rate IS NOT NULL AND p.phase IN ('catching_up', 'streaming', 'stopping')"
	"  THEN pg_catalog.format('%s changes/s applied', p.apply_rate) END,"
	" CASE WHEN p.errors > 0 THEN pg_catalog.format('%s errors', p.errors) END)"
	" FROM ingest.progress p WHERE p.name = $1";

/*
 * ingest_progress_notice
 *		Report the migration's progress as a NOTICE (nothing if it has no
 *		line in ingest.progress).  In a transaction.
 */
void
ingest_progress_notice(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1];
	SPITupleTable *tab;
	char	   *line = NULL;
	MemoryContext caller = CurrentMemoryContext;

	vals[0] = CStringGetTextDatum(name);
	ingest_catalog_begin();
	tab = ingest_catalog_query(progress_sql, 1, types, vals, NULL);
	if (SPI_processed > 0)
	{
		char	   *s = ingest_getstr(tab, 0, 1);

		if (s)
			line = MemoryContextStrdup(caller, s);
	}
	ingest_catalog_end();

	if (line)
		ereport(NOTICE,
				(errmsg("migration \"%s\": %s", name, line)));
}
