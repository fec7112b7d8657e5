/*-------------------------------------------------------------------------
 *
 * replident.c
 *	  Finding the row a change names when its table has no key here
 *	  (REPLICA IDENTITY FULL on the source): a sequential scan comparing
 *	  every column.
 *
 * PostgreSQL's RelationFindReplTupleSeq() compares each column with its
 * type's default equality operator, and fails ("could not identify an
 * equality operator for type point") on a type that has none: point, box,
 * polygon, line, lseg, circle, path, json, xml, a user type without a btree
 * or hash operator class, and arrays, composites and domains of these.
 * Native logical replication fails there too.  The applier calls
 * ingest_find_repl_tuple_seq() instead, which is RelationFindReplTupleSeq()
 * with one difference: a column whose type has no equality operator is
 * compared by its binary image (datum_image_eq, as record_image_eq does).
 * A table whose columns all have one goes to RelationFindReplTupleSeq()
 * itself: nothing changes for it.
 *
 * Why image only there, not for every column: image is strictly stricter
 * than equality (numeric 1.0 = 1.00, -0 = 0 in float8, texts equal under a
 * nondeterministic collation all differ in image), and equality is what
 * native apply and pg_ingest did so far.  For the types without equality,
 * image finds the row: the target's value and the change's old value are
 * both the source value's text (COPY, wal2json) read by the same input
 * function (or COPY binary of the same value, whose image text output and
 * input give back: float8 is written in its shortest exact form), so the
 * same source value has the same image here.  A row with such a value the
 * target changed by itself (a trigger, a different column type) is not
 * found, and the change fails the migration as a row not found does.
 *
 * Locking: as RelationFindReplTupleSeq(): the row found is locked in
 * lockmode; a row locked by a transaction in progress is waited for.
 * State: none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "storage/lmgr.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "pg_ingest.h"
#include "replident.h"

/* Whether every column of rel has a default equality operator. */
static bool
all_have_equality(TupleDesc desc, TypeCacheEntry **eq)
{
	bool		all = true;
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		eq[i] = lookup_type_cache(att->atttypid, TYPECACHE_EQ_OPR_FINFO);
		if (!OidIsValid(eq[i]->eq_opr_finfo.fn_oid))
		{
			eq[i] = NULL;
			all = false;
		}
	}
	return all;
}

/* As execReplication.c's tuples_equal(), images where there is no equality. */
static bool
rows_match(TupleTableSlot *slot1, TupleTableSlot *slot2, TypeCacheEntry **eq)
{
	TupleDesc	desc = slot1->tts_tupleDescriptor;
	int			i;

	slot_getallattrs(slot1);
	slot_getallattrs(slot2);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (slot1->tts_isnull[i] != slot2->tts_isnull[i])
			return false;
		if (slot1->tts_isnull[i] || att->attisdropped)
			continue;
		if (eq[i] == NULL)
		{
			if (!datum_image_eq(slot1->tts_values[i], slot2->tts_values[i],
								att->attbyval, att->attlen))
				return false;
		}
		else if (!DatumGetBool(FunctionCall2Coll(&eq[i]->eq_opr_finfo,
												 att->attcollation,
												 slot1->tts_values[i],
												 slot2->tts_values[i])))
			return false;
	}
	return true;
}

/*
 * ingest_find_repl_tuple_seq
 *		RelationFindReplTupleSeq(), comparing by image the columns whose type
 *		has no equality operator (see the header).
 */
bool
ingest_find_repl_tuple_seq(Relation rel, LockTupleMode lockmode,
						   TupleTableSlot *searchslot, TupleTableSlot *outslot)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TypeCacheEntry **eq = palloc0(sizeof(TypeCacheEntry *) * desc->natts);
	TupleTableSlot *scanslot;
	TableScanDesc scan;
	SnapshotData snap;
	TransactionId xwait;
	bool		found;

	if (all_have_equality(desc, eq))
	{
		pfree(eq);
		return RelationFindReplTupleSeq(rel, lockmode, searchslot, outslot);
	}

	InitDirtySnapshot(snap);
	scan = table_beginscan(rel, &snap, 0, NULL);
	scanslot = table_slot_create(rel, NULL);

retry:
	found = false;
	table_rescan(scan, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, scanslot))
	{
		if (!rows_match(scanslot, searchslot, eq))
			continue;
		found = true;
		ExecCopySlot(outslot, scanslot);
		xwait = TransactionIdIsValid(snap.xmin) ? snap.xmin : snap.xmax;

		/* locked by a transaction in progress: wait for it and look again */
		if (TransactionIdIsValid(xwait))
		{
			XactLockTableWait(xwait, NULL, NULL, XLTW_None);
			goto retry;
		}
		break;
	}

	if (found)
	{
		TM_FailureData tmfd;
		TM_Result	res;

		PushActiveSnapshot(GetLatestSnapshot());
		res = table_tuple_lock(rel, &(outslot->tts_tid), GetLatestSnapshot(),
							   outslot, GetCurrentCommandId(false), lockmode,
							   LockWaitBlock, 0 /* don't follow updates */ , &tmfd);
		PopActiveSnapshot();
		switch (res)
		{
			case TM_Ok:
				break;
			case TM_Updated:
			case TM_Deleted:
				/* changed meanwhile (the applier is the only writer here) */
				goto retry;
			case TM_Invisible:
				elog(ERROR, "attempted to lock invisible tuple");
				break;
			default:
				elog(ERROR, "unexpected table_tuple_lock status: %u", res);
				break;
		}
	}

	table_endscan(scan);
	ExecDropSingleTupleTableSlot(scanslot);
	pfree(eq);
	return found;
}
