/*-------------------------------------------------------------------------
 *
 * schema.h
 *	  Schema statements of a migration: pg_dump (dump.c), classification
 *	  into items (schema.c), their storage and execution (items.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_SCHEMA_H
#define PG_INGEST_SCHEMA_H

#include "conn.h"
#include "pg_ingest.h"
#include "source.h"

/* Stages of schema_item; see the comment of the table in src/pg_ingest--0.1.0.sql. */
#define STAGE_PRE_DATA		0
#define STAGE_INDEX			1
#define STAGE_CONSTRAINT	2
#define STAGE_ATTACH		3
#define STAGE_FOREIGN_KEY	4
#define STAGE_LAST			5

typedef struct SchemaItem
{
	int			stage;
	const char *kind;
	char	   *nspname;		/* table it belongs to, or NULL */
	char	   *relname;
	int64		cost;
	char	   *prelude;
	char	   *statement;
} SchemaItem;

/* What splitting a dump needs to know, and what it finds. */
typedef struct SplitContext
{
	List	   *rels;			/* SourceRel of the source */
	List	   *exclude_extensions;
	int32		migration_id;	/* for events about skipped statements */
	List	   *matviews;		/* out: qualified names, in dump order */
	List	   *left_out;		/* LeftOutDep: objects whose statements are
								 * skipped (depend.c) */
} SplitContext;

extern char *ingest_pg_dump(IngestMigration *m, IngestConnInfo *info,
							const char *snapshot, const char *section,
							List *rels, IngestFilters *filters);
extern void ingest_pg_dump_sections(IngestMigration *m, IngestConnInfo *info,
									const char *snapshot, List *rels,
									IngestFilters *filters, char **pre_data,
									char **post_data);
extern List *ingest_split_dump(const char *dump, bool post_data,
							   SplitContext *ctx);
extern void ingest_store_schema_items(int32 migration_id, List *items);
extern int	ingest_run_schema_items(IngestMigration *m, int stage_lo,
									int stage_hi, bool *pending_left);
extern int64 ingest_count_pending(int32 migration_id, int stage_lo,
								  int stage_hi);

extern bool ingest_missing_role_statement(const char *statement, int sqlerrcode);

#endif							/* PG_INGEST_SCHEMA_H */
