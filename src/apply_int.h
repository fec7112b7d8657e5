/*-------------------------------------------------------------------------
 *
 * apply_int.h
 *	  What the applier's files share: its table entries (apply_tables.c),
 *	  the executor state of a change (apply_row.c) and the source
 *	  transaction being applied (apply.c).  Internal to the applier process.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_APPLY_INT_H
#define PG_INGEST_APPLY_INT_H

#include "access/xlogdefs.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "libpq-fe.h"
#include "nodes/execnodes.h"
#include "utils/timestamp.h"

#include "wal2json.h"

/* A target column, by its attnum - 1. */
typedef struct ApplyAttr
{
	bool		skip;			/* dropped or generated */
	bool		numeric;		/* numeric, real or double precision */
	FmgrInfo	input;
	Oid			ioparam;
	int32		typmod;
	bool		is_bytea;		/* bytea itself: wal2json drops its \\x */
} ApplyAttr;

/* What the applier knows of a source table. */
typedef struct ApplyRel
{
	NameData	nspname;		/* hash key, with relname */
	NameData	relname;
	bool		valid;			/* cleared by relcache invalidation */
	bool		skip;			/* left out by the migration's filters */
	bool		known;			/* in the migration */
	bool		resync;			/* copied again at the stop (resync.c) */
	bool		has_root;		/* a leaf partition on the source */
	NameData	root_nsp;		/* its partition root there */
	NameData	root_rel;
	XLogRecPtr	sync_lsn;
	Oid			relid;			/* the target table (target.c) */
	bool		mapped;			/* that of the root: the leaf is not here */
	char		relkind;		/* of the target table */
	AclMode		checked;		/* privileges checked in this batch */
	List	   *leaves_checked; /* LeafChecked of partitions routed to, in cxt */
	Oid			keyidx;			/* replica identity or primary key, or Invalid */
	int			natts;
	ApplyAttr  *attrs;
	MemoryContext cxt;			/* attrs and their input functions' state */
} ApplyRel;

/* a partition of a partitioned target, checked like the table (ingest_apply_route()) */
typedef struct LeafChecked
{
	Oid			relid;
	AclMode		checked;
} LeafChecked;

typedef struct ApplyRelKey
{
	NameData	nspname;
	NameData	relname;
} ApplyRelKey;

/* the source transaction being applied (apply.c) */
typedef struct ApplySourceTxn
{
	bool		begun;			/* its BEGIN was read */
	bool		skip;			/* already applied (origin has passed it) */
	XLogRecPtr	final_lsn;		/* its commit record */
	XLogRecPtr	end_lsn;
	TimestampTz commit_time;
} ApplySourceTxn;

/* the executor state of one change (apply_row.c) */
typedef struct ApplyState
{
	EState	   *estate;
	ResultRelInfo *rri;
	EPQState	epq;
	/* a partitioned target: rows are routed to its partitions */
	ModifyTableState *mtstate;
	PartitionTupleRouting *proute;
} ApplyState;

/* apply.c */
extern ApplySourceTxn apply_src;

/* apply_tables.c */
extern List *apply_truncates;	/* ApplyRel entries of a TRUNCATE, pending */
extern bool apply_truncate_left_out;	/* it names a table left out */
extern void ingest_apply_init_tables(void);
extern void ingest_apply_load_tables(void);
extern void ingest_apply_forget_tables(void);
extern ApplyRel *ingest_apply_lookup_rel(const char *nspname, const char *relname);
extern void ingest_apply_check_target(ApplyRel *r, char action);
extern void ingest_apply_check_leaf(ApplyRel *r, ResultRelInfo *part, AclMode needed);
extern bool ingest_apply_is_root_of_known_leaves(const char *nspname, const char *relname);
extern void ingest_apply_forget_checks(void);
extern void ingest_apply_flush_truncates(void);

/* apply_row.c */
extern PGconn *apply_source;	/* values read back, closed by apply.c */
extern void ingest_apply_store_values(Relation rel, ApplyRel *r, TupleTableSlot *slot,
									  W2JColumn *cols, int ncols, bool is_key);
extern void ingest_apply_begin(ApplyState *st, Relation rel, CmdType operation);
extern void ingest_apply_end(ApplyState *st);
extern ResultRelInfo *ingest_apply_route(ApplyState *st, ApplyRel *r, AclMode needed,
										 TupleTableSlot *row, TupleTableSlot **converted);
extern bool ingest_apply_find_row(Relation rel, ApplyRel *r, ApplyState *st, W2JChange *c,
								  ResultRelInfo **part, TupleTableSlot **found);

#endif							/* PG_INGEST_APPLY_INT_H */
