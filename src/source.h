/*-------------------------------------------------------------------------
 *
 * source.h
 *	  What pg_ingest knows of a source database's relations, and the
 *	  filters that pick the ones a migration moves.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_SOURCE_H
#define PG_INGEST_SOURCE_H

#include "names.h"
#include "libpq-fe.h"
#include "nodes/pg_list.h"
#include "utils/array.h"

typedef struct SourceRel
{
	char	   *nspname;
	char	   *relname;
	char		relkind;		/* r, p, m, f, v, S */
	char		relpersistence; /* p or u */
	bool		no_identity;	/* table whose UPDATE/DELETE cannot be decoded:
								 * no key, no replica identity */
	int64		bytes_main;		/* main fork */
	int64		bytes_table;	/* with TOAST */
	char	   *columns;		/* quoted list, generated columns left out */
	char	   *all_columns;	/* quoted list of every column */
	char	   *root_nsp;		/* partition root, or NULL */
	char	   *root_rel;
	char	   *owner_nsp;		/* table owning this sequence, or NULL */
	char	   *owner_rel;
	List	   *used_by;		/* sequence: SourceRels whose defaults use it */
	bool		in_scope;
	char	   *extname;		/* configuration relation of this extension
								 * (extconfig.c), or NULL */
} SourceRel;

/* A table name from a filter: relname, with nspname or NULL for any. */
typedef struct QualName
{
	char	   *nspname;
	char	   *relname;
	char	   *given;			/* as the user wrote it */
	bool		matched;
} QualName;

typedef struct IngestFilters
{
	List	   *include_schemas;	/* of QualName (relname = schema) */
	List	   *exclude_schemas;
	List	   *include_tables;
	List	   *exclude_tables;
	List	   *exclude_extensions; /* of char * */
	List	   *dump_tables;	/* of QualName: pg_dump only these (infer.c) */
} IngestFilters;

extern IngestFilters *ingest_filters_from_arrays(ArrayType *include_schemas,
												 ArrayType *exclude_schemas,
												 ArrayType *include_tables,
												 ArrayType *exclude_tables,
												 ArrayType *exclude_extensions);
extern IngestFilters *ingest_load_filters(int32 migration_id);
extern List *ingest_source_relations(PGconn *conn, bool with_sizes,
									 const char *password);
extern List *ingest_source_schemas(PGconn *conn, const char *password);
extern List *ingest_source_extensions(PGconn *conn, const char *password);
extern List *ingest_source_matviews(PGconn *conn, const char *password);
extern void ingest_apply_filters(List *rels, IngestFilters *filters);
extern void ingest_check_filters(IngestFilters *filters, List *schemas,
								 List *extensions);
extern bool ingest_is_table(char relkind);
extern SourceRel *ingest_find_source_rel(List *rels, const char *nspname,
								  const char *relname);
extern bool ingest_schema_in_scope(IngestFilters *filters, const char *nspname);
extern int	ingest_source_version(PGconn *conn);


/* start.c */
extern List *ingest_untracked_tables(List *rels, List **reasons);

#endif							/* PG_INGEST_SOURCE_H */
