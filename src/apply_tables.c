/*-------------------------------------------------------------------------
 *
 * apply_tables.c
 *	  The applier's tables: what it knows of each source table, the target
 *	  table its changes go to, the privileges checked there, and the
 *	  TRUNCATEs of a statement waiting to be applied together.
 *
 * Each source table the stream names has an ApplyRel entry (apply_int.h),
 * keyed by its name: its sync LSN, whether the migration's filters leave
 * it out or resync => 'at_cutover' copies it again, its partition root on
 * the source, and the target table (target.c) with its columns' input
 * functions and its key.  The entries are read from the catalog at the
 * start and after each schema change (ingest_apply_load_tables,
 * ingest_apply_forget_tables), and looked up again after any relcache
 * invalidation of their table.  A table the migration does not know is
 * left out if its filters leave it out (or it is a materialized view,
 * refreshed at the stop: matview.c); under ddl => 'infer', infer.c creates
 * and copies it with a sync LSN of its own; otherwise the migration fails.
 *
 * The target table of a source table is the one target.c names: a leaf
 * partition of the source that is not here goes to its root's table
 * (mapped).  A TRUNCATE of a leaf sharing its target table with other
 * leaves is applied only when the same statement truncates all of them and
 * no table the migration leaves out; so is one of a partition here that
 * rows of such leaves are routed into (the copy never truncates either);
 * otherwise it fails the migration.  A TRUNCATE of a partitioned table the
 * migration does not copy but whose leaves it does is applied through its
 * leaves' (ingest_apply_is_root_of_known_leaves).
 *
 * Before its first change of each kind to a table in each batch (and again
 * after any invalidation of the table, which GRANT and REVOKE send; a
 * change of role membership or attributes sends none), the applier checks
 * with ingest_check_target() that the migration's owner has the
 * privilege, that row-level security does not apply, and that the table
 * is not an extension's (a Citus table only if Citus can take its rows:
 * target.c); each partition a row is
 * routed to is checked likewise, and must be a plain table, as native
 * apply requires (ingest_apply_check_leaf): the applier never writes
 * where the owner could not.
 *
 * State: in the catalog, the copy items' sync LSNs and partition roots and
 * the tables resync => 'at_cutover' copies (read only); in this process,
 * the entries (rel_cxt, kept across transactions), the privileges checked
 * in the batch, and the TRUNCATEs pending (apply_truncates, in the
 * transaction's memory); nothing in shared memory.
 *
 * Locking: a target table is locked RowExclusiveLock when it is looked up
 * (ingest_target_relid), and truncated under the TRUNCATE's
 * AccessExclusiveLock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/rel.h"

#include "apply_int.h"
#include "citus.h"
#include "infer.h"
#include "pg_ingest.h"
#include "source.h"
#include "target.h"

static HTAB *rels = NULL;
static MemoryContext rel_cxt;

/*
 * TRUNCATEs of one source statement come one message per table: their
 * ApplyRel entries, applied together before the next change or commit.
 */
List	   *apply_truncates = NIL;
bool		apply_truncate_left_out = false;	/* of a table the filters leave out */

static ApplyRel *last_rel = NULL;	/* ingest_apply_lookup_rel(): changes come in runs */

static void
invalidate_rels(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	ApplyRel   *r;

	if (rels == NULL)
		return;
	hash_seq_init(&status, rels);
	while ((r = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || r->relid == relid)
		{
			r->valid = false;
			r->checked = 0;		/* a GRANT or REVOKE, maybe */
			r->leaves_checked = NIL;	/* in r->cxt, reset on lookup */
		}
}

/* Sync LSNs of the migration's tables (the catalog is read again each time). */
void
ingest_apply_load_tables(void)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(MyMigration->id)};
	SPITupleTable *tab;
	uint64		i;

	ingest_catalog_begin();
	tab = ingest_catalog_query("SELECT nspname, relname, max(sync_lsn)::text,"
							   " max(root_nspname), max(root_relname),"
							   " (nspname, relname) IN (SELECT nspname, relname"
							   "  FROM ingest.resync_table WHERE migration_id = $1)"
							   " FROM ingest.copy_item WHERE migration_id = $1"
							   " GROUP BY 1, 2", 1, types, vals, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		ApplyRelKey key;
		ApplyRel   *r;
		bool		found;
		char	   *lsn = ingest_getstr(tab, i, 3);

		memset(&key, 0, sizeof(key));
		namestrcpy(&key.nspname, ingest_getstr(tab, i, 1));
		namestrcpy(&key.relname, ingest_getstr(tab, i, 2));
		r = hash_search(rels, &key, HASH_ENTER, &found);
		if (!found)
		{
			memset(((char *) r) + sizeof(ApplyRelKey), 0, sizeof(ApplyRel) - sizeof(ApplyRelKey));
		}
		r->known = true;
		r->resync = ingest_getbool(tab, i, 6);
		r->has_root = ingest_getstr(tab, i, 5) != NULL;
		if (r->has_root)
		{
			namestrcpy(&r->root_nsp, ingest_getstr(tab, i, 4));
			namestrcpy(&r->root_rel, ingest_getstr(tab, i, 5));
		}
		r->sync_lsn = lsn ? DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(lsn))) :
			MyMigration->slot_lsn;
	}
	ingest_catalog_end();
}

/*
 * Whether wal2json writes this type as a bare JSON number (NaN and Infinity
 * as null before 2.6).  wal2json goes by the column's own type: a domain
 * over numeric is quoted like any other type.
 */
static bool
is_numeric_type(Oid typid)
{
	return typid == NUMERICOID || typid == FLOAT4OID || typid == FLOAT8OID;
}

/* The entry of a table, its target columns looked up again if needed. */
ApplyRel *
ingest_apply_lookup_rel(const char *nspname, const char *relname)
{
	ApplyRelKey key;
	ApplyRel   *r;
	bool		found;
	Relation	rel;
	TupleDesc	desc;
	int			i;

	/* changes come in runs of the same table */
	if (last_rel && last_rel->valid && strcmp(NameStr(last_rel->relname), relname) == 0 &&
		strcmp(NameStr(last_rel->nspname), nspname) == 0)
		return last_rel;

	memset(&key, 0, sizeof(key));
	namestrcpy(&key.nspname, nspname);
	namestrcpy(&key.relname, relname);
	r = hash_search(rels, &key, HASH_ENTER, &found);
	last_rel = r;
	if (!found)
		memset(((char *) r) + sizeof(ApplyRelKey), 0, sizeof(ApplyRel) - sizeof(ApplyRelKey));
	if (r->valid)
		return r;

	if (!r->known)
	{
		/* not in the migration: left out by its filters, or unknown */
		SourceRel	sr;

		memset(&sr, 0, sizeof(sr));
		sr.nspname = (char *) nspname;
		sr.relname = (char *) relname;
		sr.relkind = 'r';
		ingest_apply_filters(list_make1(&sr), MyFilters);
		/* a materialized view: refreshed at the stop (matview.c) */
		if (!sr.in_scope || ingest_matview_skip(MyMigration->id, nspname, relname))
		{
			r->skip = true;
			r->valid = true;
			return r;
		}
		/* created on the source since: ddl => 'infer' creates and copies it */
		if (ingest_infer_new_table(MyMigration, MySource, nspname, relname, apply_src.final_lsn, &r->sync_lsn))
			r->known = true;
		else
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table %s.%s of the source is not part of the migration",
							quote_identifier(nspname), quote_identifier(relname)),
					 errdetail("It was created on the source after the migration started; under ddl => '%s' it is not created here.", MyMigration->ddl),
					 errhint("Create it on the target, copy its rows, and add it: or leave it out with a filter in a new migration.")));
	}

	r->relid = ingest_target_relid(nspname, relname,
								   r->has_root ? NameStr(r->root_nsp) : NULL,
								   r->has_root ? NameStr(r->root_rel) : NULL,
								   RowExclusiveLock, &r->mapped);
	if (!OidIsValid(r->relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s.%s does not exist on the target",
						quote_identifier(nspname), quote_identifier(relname)),
				 r->has_root ?
				 errdetail("Neither does %s, the root of its partition tree on the source.",
						   ingest_qualified(NameStr(r->root_nsp), NameStr(r->root_rel))) : 0));
	r->checked = 0;
	r->leaves_checked = NIL;
	rel = table_open(r->relid, NoLock);
	r->relkind = rel->rd_rel->relkind;
	desc = RelationGetDescr(rel);
	if (r->cxt == NULL)
		r->cxt = AllocSetContextCreate(rel_cxt, "pg_ingest applier table",
									   ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(r->cxt);
	r->natts = desc->natts;
	r->attrs = MemoryContextAllocZero(r->cxt, sizeof(ApplyAttr) * desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		ApplyAttr  *a = &r->attrs[i];
		Oid			infunc;

		a->skip = att->attisdropped || att->attgenerated != '\0';
		if (att->attisdropped)
			continue;
		getTypeInputInfo(att->atttypid, &infunc, &a->ioparam);
		fmgr_info_cxt(infunc, &a->input, r->cxt);
		a->typmod = att->atttypmod;
		a->numeric = is_numeric_type(att->atttypid);
		a->is_bytea = att->atttypid == BYTEAOID;
	}
	r->keyidx = RelationGetReplicaIndex(rel);
	if (!OidIsValid(r->keyidx))
		r->keyidx = RelationGetPrimaryKeyIndex(rel);
	table_close(rel, NoLock);
	r->valid = true;
	return r;
}

/*
 * ingest_apply_init_tables
 *		The table entries, empty, and the invalidation callback that marks
 *		them to be looked up again.
 */
void
ingest_apply_init_tables(void)
{
	HASHCTL		ctl;

	rel_cxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest applier tables",
									ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(ApplyRelKey);
	ctl.entrysize = sizeof(ApplyRel);
	ctl.hcxt = rel_cxt;
	rels = hash_create("pg_ingest applier tables", 256, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(invalidate_rels, (Datum) 0);
}

/*
 * ingest_apply_forget_tables
 *		Forget every table entry (after a schema change): each table is looked
 *		up anew.
 */
void
ingest_apply_forget_tables(void)
{
	HASH_SEQ_STATUS status;
	ApplyRel   *r;

	hash_seq_init(&status, rels);
	while ((r = hash_seq_search(&status)) != NULL)
	{
		if (r->cxt)
			MemoryContextDelete(r->cxt);
		(void) hash_search(rels, r, HASH_REMOVE, NULL);
	}
	last_rel = NULL;
}

/*
 * Check a partition a row of r's table is routed to as the table itself is
 * checked (ingest_apply_check_target()): a plain table, not an extension's,
 * the owner having the privileges in needed; once, cached with r.  Native
 * apply refuses a partition that is not a plain table likewise
 * (CheckSubscriptionRelkind); the executor's simple insert, update and
 * delete cannot write anywhere else.
 */
void
ingest_apply_check_leaf(ApplyRel *r, ResultRelInfo *part, AclMode needed)
{
	Relation	leaf = part->ri_RelationDesc;
	LeafChecked *lc = NULL;
	ListCell   *cell;
	MemoryContext old;

	foreach(cell, r->leaves_checked)
		if (((LeafChecked *) lfirst(cell))->relid == RelationGetRelid(leaf))
			lc = lfirst(cell);
	if (lc != NULL && (lc->checked & needed) == needed)
		return;
	if (leaf->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot apply a change of %s.%s to partition %s of %s: it is not a plain table",
						quote_identifier(NameStr(r->nspname)),
						quote_identifier(NameStr(r->relname)),
						ingest_relid_name(RelationGetRelid(leaf)),
						ingest_relid_name(r->relid)),
				 errdetail("Rows are applied only to plain tables (native logical replication refuses such a partition too)."),
				 errhint("Make the partition a plain table on the target, or leave the source table out.")));
	ingest_check_target(RelationGetRelid(leaf), MyMigration->owner, needed);
	old = MemoryContextSwitchTo(r->cxt);
	if (lc == NULL)
	{
		lc = palloc0(sizeof(LeafChecked));
		lc->relid = RelationGetRelid(leaf);
		r->leaves_checked = lappend(r->leaves_checked, lc);
	}
	lc->checked |= needed;
	MemoryContextSwitchTo(old);
}

/*
 * Whether the TRUNCATEs of a statement cover every leaf of the source that
 * goes to the shared target table of r (a mapped leaf): only then may that
 * table be truncated.
 */
static bool
truncates_all_leaves(ApplyRel *r)
{
	HASH_SEQ_STATUS status;
	ApplyRel   *leaf;
	List	   *leaves = NIL;
	ListCell   *lc;
	bool		all = true;

	hash_seq_init(&status, rels);
	while ((leaf = hash_seq_search(&status)) != NULL)
		if (leaf->known && leaf->has_root &&
			namestrcmp(&leaf->root_nsp, NameStr(r->root_nsp)) == 0 &&
			namestrcmp(&leaf->root_rel, NameStr(r->root_rel)) == 0)
			leaves = lappend(leaves, leaf);
	foreach(lc, leaves)
	{
		ApplyRel   *l = ingest_apply_lookup_rel(NameStr(((ApplyRel *) lfirst(lc))->nspname),
								   NameStr(((ApplyRel *) lfirst(lc))->relname));

		if (l->relid == r->relid && !list_member_ptr(apply_truncates, l))
			all = false;
	}
	list_free(leaves);
	return all;
}

/*
 * A leaf of the source mapped to a partitioned target above table relid (a
 * partition here): rows of that leaf may be routed into relid.  NULL if
 * there is none.
 */
static ApplyRel *
mapped_leaf_above(Oid relid)
{
	HASH_SEQ_STATUS status;
	ApplyRel   *leaf;
	List	   *leaves = NIL;
	List	   *ancestors;
	ListCell   *lc;
	ApplyRel   *found = NULL;

	if (!get_rel_relispartition(relid))
		return NULL;
	ancestors = get_partition_ancestors(relid);
	hash_seq_init(&status, rels);
	while ((leaf = hash_seq_search(&status)) != NULL)
		if (leaf->known && leaf->has_root)
			leaves = lappend(leaves, leaf);
	foreach(lc, leaves)
	{
		ApplyRel   *l = ingest_apply_lookup_rel(NameStr(((ApplyRel *) lfirst(lc))->nspname),
								   NameStr(((ApplyRel *) lfirst(lc))->relname));

		if (found == NULL && l->mapped && list_member_oid(ancestors, l->relid))
			found = l;
	}
	list_free(leaves);
	list_free(ancestors);
	return found;
}

void
ingest_apply_flush_truncates(void)
{
	StringInfoData sql;
	ListCell   *lc;
	List	   *done = NIL;
	bool		left_out = apply_truncate_left_out;

	apply_truncate_left_out = false;
	if (apply_truncates == NIL)
		return;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "TRUNCATE ");
	foreach(lc, apply_truncates)
	{
		ApplyRel   *r = lfirst(lc);

		if (list_member_oid(done, r->relid))
			continue;
		/*
		 * A leaf whose rows share a table with other leaves': only when the
		 * statement truncates all of them, and no table the migration
		 * leaves out (a leaf of the same root, maybe, whose rows are not
		 * the truncated leaves' to delete), as the copy never truncates
		 * such a table (copy.c).
		 */
		if (r->mapped && (left_out || !truncates_all_leaves(r)))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot apply a TRUNCATE of %s.%s: its rows are in table %s with those of other partitions",
							quote_identifier(NameStr(r->nspname)),
							quote_identifier(NameStr(r->relname)),
							ingest_relid_name(r->relid)),
					 errdetail("The partition is not on the target; its partition root's table holds its rows."),
					 errhint("Truncate the whole partitioned table on the source, or delete the partition's rows instead.")));
		/* a partition here that rows of other leaves are routed into */
		if (!r->mapped)
		{
			ApplyRel   *above = mapped_leaf_above(r->relid);

			if (above != NULL && (left_out || !truncates_all_leaves(above)))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot apply a TRUNCATE of %s.%s: table %s also holds rows of other partitions of the source",
								quote_identifier(NameStr(r->nspname)),
								quote_identifier(NameStr(r->relname)),
								ingest_relid_name(r->relid)),
						 errdetail("Rows of %s.%s, which is not on the target, are routed through %s into its partitions.",
								   quote_identifier(NameStr(above->nspname)),
								   quote_identifier(NameStr(above->relname)),
								   ingest_relid_name(above->relid)),
						 errhint("Truncate the whole partitioned table on the source, or delete the partition's rows instead.")));
		}
		/* a partitioned table goes with its partitions */
		appendStringInfo(&sql, "%s%s%s", done ? ", " : "",
						 r->relkind == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
						 ingest_relid_name(r->relid));
		done = lappend_oid(done, r->relid);
	}
	/* Citus tables: with their shards (citus.c) */
	ingest_citus_truncate(sql.data, done);
	list_free(apply_truncates);
	list_free(done);
	apply_truncates = NIL;
	CommandCounterIncrement();
}

/*
 * Check once per batch (and again after an invalidation of the table) that
 * the migration may do this kind of change to it (target.c).
 */
void
ingest_apply_check_target(ApplyRel *r, char action)
{
	AclMode		needed;

	switch (action)
	{
		case 'I':
			needed = ACL_INSERT;
			break;
		case 'U':
			needed = ACL_UPDATE;
			break;
		case 'D':
			needed = ACL_DELETE;
			break;
		default:
			needed = ACL_TRUNCATE;
			break;
	}
	if ((r->checked & needed) == needed)
		return;
	ingest_check_target(r->relid, MyMigration->owner, needed);
	r->checked |= needed;
}

/*
 * Whether a table the migration does not copy is the partition root of
 * leaves it does.  A TRUNCATE of a partitioned table names it beside its
 * leaves; truncating the leaves is what applies it.
 */
bool
ingest_apply_is_root_of_known_leaves(const char *nspname, const char *relname)
{
	ApplyRelKey key;
	ApplyRel   *r;
	HASH_SEQ_STATUS status;
	bool		found = false;

	memset(&key, 0, sizeof(key));
	namestrcpy(&key.nspname, nspname);
	namestrcpy(&key.relname, relname);
	r = hash_search(rels, &key, HASH_FIND, NULL);
	if (r != NULL && r->known)
		return false;
	hash_seq_init(&status, rels);
	while ((r = hash_seq_search(&status)) != NULL)
	{
		if (!found && r->known && r->has_root &&
			strcmp(NameStr(r->root_nsp), nspname) == 0 &&
			strcmp(NameStr(r->root_rel), relname) == 0)
			found = true;
	}
	return found;
}

/*
 * The privileges checked are checked again in each batch: a REVOKE of a
 * role's membership, or ALTER ROLE ... NOSUPERUSER or NOBYPASSRLS, sends no
 * invalidation of the tables (pg_class_aclcheck is cheap).
 */
void
ingest_apply_forget_checks(void)
{
	HASH_SEQ_STATUS status;
	ApplyRel   *r;

	if (rels == NULL)
		return;
	hash_seq_init(&status, rels);
	while ((r = hash_seq_search(&status)) != NULL)
	{
		r->checked = 0;
		list_free_deep(r->leaves_checked);
		r->leaves_checked = NIL;
	}
}
