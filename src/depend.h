/*-------------------------------------------------------------------------
 *
 * depend.h
 *	  Objects of the source that depend on relations a migration's filters
 *	  leave out: their pg_dump statements are skipped, each with a warning.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_DEPEND_H
#define PG_INGEST_DEPEND_H

#include "libpq-fe.h"
#include "nodes/pg_list.h"

#include "source.h"

/* An object depending on a left-out relation, as pg_dump's TOC names it. */
typedef struct LeftOutDep
{
	char	   *type;			/* TOC entry type: VIEW, FUNCTION, ... */
	char	   *schema;
	char	   *tag;			/* TOC entry name */
	char	   *acl_tag;		/* name of its ACL entry, or NULL */
	char	   *column_prefix;	/* "COLUMN <rel>." of its columns' ACLs */
	char	   *description;	/* pg_describe_object on the source */
	char	   *left_out;		/* what it depends on, described ("table
								 * public.t") */
} LeftOutDep;

/* The pg_dump TOC entry a statement of a dump belongs to. */
typedef struct DumpEntry
{
	char	   *type;
	char	   *schema;
	char	   *tag;
	char	   *parent_type;	/* for a COMMENT or SECURITY LABEL: the */
	char	   *parent_schema;	/* entry before it, which it is about */
	char	   *parent_tag;
} DumpEntry;

extern List *ingest_left_out_dependents(PGconn *conn, List *rels,
										IngestFilters *filters,
										const char *password);
extern void ingest_dump_entry_update(DumpEntry *entry, const char *span,
									 int len);
extern LeftOutDep *ingest_left_out_match(List *deps, DumpEntry *entry);
extern void ingest_left_out_skip(int32 migration_id, LeftOutDep *dep,
								 const char *statement);

#endif							/* PG_INGEST_DEPEND_H */
