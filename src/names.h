/*-------------------------------------------------------------------------
 *
 * names.h
 *	  Names as pg_ingest writes them (names.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_NAMES_H
#define PG_INGEST_NAMES_H

#include "nodes/pg_list.h"

extern char *ingest_qualified(const char *nspname, const char *relname);
extern char *ingest_relid_name(Oid relid);
extern bool ingest_string_in(List *list, const char *s);

#endif							/* PG_INGEST_NAMES_H */
