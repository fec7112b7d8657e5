/*-------------------------------------------------------------------------
 *
 * largeobject_int.h
 *	  What the large object files share: the metadata query's columns and
 *	  the objects' metadata (largeobject.c), read and written by the full
 *	  load (largeobject.c) and the stop (largeobject_stop.c); the content
 *	  hash, compared by ingest.verify (largeobject_check.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_LARGEOBJECT_INT_H
#define PG_INGEST_LARGEOBJECT_INT_H

#include "executor/spi.h"
#include "libpq-fe.h"

#include "pg_ingest.h"

/* Columns of ingest_lo_meta_sql()'s result */
enum
{
	COL_OID,
	COL_OWNER,					/* owner here (mapped) */
	COL_SOURCE_OWNER,			/* owner on that side */
	COL_ACL,					/* canonical privileges, mapped */
	COL_ACL_DEFAULT,			/* 't': no privileges ever granted */
	COL_DROPPED,				/* grantees left out, or NULL */
	COL_COMMENT,
	COL_DATA,					/* LO_COPY: first chunk; LO_HASH: size */
	COL_HASH					/* LO_HASH: content hash */
};

typedef enum
{
	LO_COPY,
	LO_HASH
} MetaMode;

/* Metadata of one object, as ingest_lo_meta_sql() gives it. */
typedef struct LoMeta
{
	Oid			oid;
	char	   *owner;
	char	   *source_owner;
	char	   *acl;
	bool		acl_default;
	char	   *dropped;
	char	   *comment;
} LoMeta;

/* The roles of this server, for the source's query ($1, $2, $3). */
typedef struct LoRoles
{
	char	   *owners;			/* text[] literal: roles it may give objects to */
	char	   *me;				/* the migration's owner */
	char	   *all;			/* text[] literal: every role */
} LoRoles;

/* What could not be carried as on the source, for one WARNING event. */
typedef struct LoWarnings
{
	int			owners;			/* objects left with the migration's owner */
	int			grantees;		/* objects with grantees left out */
	List	   *names;			/* those roles, distinct */
	MemoryContext cxt;			/* where names live */
} LoWarnings;

/* Plans of the SQL functions that write objects here. */
typedef struct LoPlans
{
	SPIPlanPtr	create;
	SPIPlanPtr	put;
	SPIPlanPtr	unlink;
} LoPlans;

/* largeobject.c */
extern const char *ingest_lo_size_lateral;
extern char *ingest_lo_hash_sql(const char *oid, const char *size);
extern char *ingest_lo_meta_sql(MetaMode mode, const char *where);
extern LoRoles *ingest_lo_target_roles(void);
extern void ingest_lo_send_rows(PGconn *conn, const char *sql, int nparams,
								const char *const *params, bool binary, const char *what,
								const char *password);
extern PGresult *ingest_lo_next_row(PGconn *conn, const char *what, const char *password);
extern char *ingest_lo_getstr(PGresult *res, int col);
extern LoMeta *ingest_lo_read_meta(PGresult *res);
extern void ingest_lo_prepare_plans(LoPlans *p);
extern void ingest_lo_run_plan(SPIPlanPtr plan, Datum *vals);
extern void ingest_lo_apply_meta(LoMeta *lm, bool fresh, const char *current_owner,
								 LoWarnings *w);
extern void ingest_lo_report_warnings(IngestMigration *m, LoWarnings *w, const char *where);
extern uint64 ingest_lo_copy_objects(PGconn *conn, const char *password, LoRoles *roles,
									 const char *where, int nextra, const char **extra,
									 uint64 *bytes, LoWarnings *w);

#endif							/* PG_INGEST_LARGEOBJECT_INT_H */
