/*-------------------------------------------------------------------------
 *
 * ddl_int.h
 *	  What the target's side of replicated schema changes shares: a
 *	  message of the event trigger, parsed (ddl_apply.c), and the
 *	  migration's tables following it (ddl_follow.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_DDL_INT_H
#define PG_INGEST_DDL_INT_H

#include "ddl.h"

typedef struct DdlObject
{
	char	   *type;
	char	   *schema;
	char	   *identity;
	char	   *relschema;		/* the table concerned, if any */
	char	   *relname;
	char		relkind;
	bool		ignored;		/* temporary, an extension's, pg_ingest's */
} DdlObject;

typedef struct DdlMessage
{
	char	   *tag;
	char	   *query;
	char	   *search_path;
	char	   *role;			/* owner of the (first) object concerned */
	int			ordinal;
	bool		nested;			/* not run by a statement of the query text */
	List	   *objects;
	List	   *rewritten;		/* DdlObject: tables the command rewrote */
} DdlMessage;

/* ddl_follow.c */
extern bool ingest_ddl_object_in_scope(IngestFilters *filters, DdlObject *o);
extern void ingest_ddl_follow_tables(IngestMigration *m, IngestFilters *filters, DdlMessage *msg,
									 char *before_oids, char *before_nsp, char *before_rel,
									 XLogRecPtr final_lsn);
extern void ingest_ddl_follow_unlogged(IngestMigration *m, IngestFilters *filters,
									   DdlMessage *msg, XLogRecPtr final_lsn);

#endif							/* PG_INGEST_DDL_INT_H */
