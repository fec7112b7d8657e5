/*-------------------------------------------------------------------------
 *
 * extconfig.h
 *	  Configuration tables and sequences of extensions
 *	  (pg_extension_config_dump): their rows are migrated like a table's.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_EXTCONFIG_H
#define PG_INGEST_EXTCONFIG_H

#include "libpq-fe.h"
#include "nodes/pg_list.h"

/*
 * SQL for the source: the extension (name) whose configuration relation
 * the pg_class row "c" is, or NULL.
 */
#define INGEST_EXTCONFIG_OF_C_SQL \
	"(SELECT x.extname FROM pg_catalog.pg_extension x" \
	" WHERE c.oid = ANY (x.extconfig) ORDER BY 1 LIMIT 1)"

/* A configuration table of the source and its user rows. */
typedef struct ExtConfigRows
{
	char	   *extname;
	char	   *table;			/* quoted, qualified */
	int64		rows;			/* rows in the condition; -1 if not counted */
	char	   *problem;		/* why the rows cannot be read, or NULL */
} ExtConfigRows;

extern bool ingest_extconfig_excluded(const char *extname,
									  List *exclude_extensions);
extern bool ingest_extconfig_is_config(Oid relid);
extern void ingest_extconfig_clear_target(Oid relid);
extern char *ingest_extconfig_filter(PGconn *conn, const char *password,
									const char *nspname, const char *relname,
									const char *columns);
extern List *ingest_extconfig_rows(PGconn *conn, const char *password,
								   List *exclude_extensions);

#endif							/* PG_INGEST_EXTCONFIG_H */
