/*-------------------------------------------------------------------------
 *
 * target.c
 *	  The target side of a migrated table: which table of this server a
 *	  source table's rows go to, and whether the migration may write there.
 *
 * A source table goes to the table of the same name here.  A leaf
 * partition of the source that does not exist here goes to the table named
 * like its partition root (the source partitioned, the target a plain or
 * differently partitioned table): ingest.copy_item records the root of
 * each leaf (root_nspname, root_relname), and wal2json names the leaf in
 * every change.  Several leaves then share one target table.
 *
 * ingest_check_target() is the one check made before a migration writes
 * into a table: by ingest.start for schema => 'existing', by the copy
 * worker before each item and by the applier for each table and each
 * partition it routes to, again in every batch (a REVOKE of a role
 * membership or ALTER ROLE ... NOBYPASSRLS sends no relcache invalidation:
 * apply_tables.c, ingest_apply_forget_checks).  It refuses, naming the table:
 *	 - a relation that is not a table;
 *	 - a member of an extension (pg_depend deptype 'e'), such as
 *	   pg_ingest's own ingest.events: an extension's objects are never a
 *	   destination, whatever the source calls its schemas; except its
 *	   configuration tables (pg_extension_config_dump), whose user rows
 *	   a migration carries as pg_dump does (extconfig.c);
 *	 - a Citus table pg_ingest cannot write through Citus (citus.c:
 *	   append- or range-distributed, partitioned, or listed in a
 *	   pg_dist_partition without the extension citus); distributed and
 *	   reference tables are written through Citus by copy.c and apply.c;
 *	 - a table on which the role lacks a privilege the work needs (INSERT
 *	   for the copy, INSERT, UPDATE, DELETE or TRUNCATE as changes need
 *	   them), or to which row-level security applies for that role, as
 *	   native logical replication's apply refuses it (TargetPrivilegesCheck
 *	   in worker.c).
 *
 * Emptying a target table before a copy needs to know two more things:
 * whether a foreign key references it (TRUNCATE would refuse it:
 * ingest_referenced_by_foreign_key, an index probe of pg_depend) and
 * whether some leaf of the source shares a table here with others
 * (ingest_migration_maps_leaves: no such table may be truncated per item).
 *
 * State: none of its own (the catalog, ingest.copy_item's roots).
 *
 * Locking: the callers hold the lock they write with (or none at start).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "utils/syscache.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "citus.h"
#include "extconfig.h"
#include "pg_ingest.h"
#include "target.h"

/*
 * ingest_target_relid
 *		The table of this server that rows of source table nspname.relname
 *		go to, locked in lockmode: the table of that name, or, for a leaf
 *		partition of the source that is not here, the table named like its
 *		partition root (*mapped is then true).  InvalidOid if neither
 *		exists.
 */
Oid
ingest_target_relid(const char *nspname, const char *relname,
					const char *root_nspname, const char *root_relname,
					LOCKMODE lockmode, bool *mapped)
{
	Oid			relid;

	*mapped = false;
	relid = RangeVarGetRelid(makeRangeVar(pstrdup(nspname), pstrdup(relname), -1),
							 lockmode, true);
	if (OidIsValid(relid) || root_relname == NULL || root_nspname == NULL)
		return relid;
	relid = RangeVarGetRelid(makeRangeVar(pstrdup(root_nspname), pstrdup(root_relname), -1),
							 lockmode, true);
	*mapped = OidIsValid(relid);
	return relid;
}

static const char *
privilege_name(AclMode mode)
{
	switch (mode)
	{
		case ACL_INSERT:
			return "INSERT";
		case ACL_UPDATE:
			return "UPDATE";
		case ACL_DELETE:
			return "DELETE";
		case ACL_TRUNCATE:
			return "TRUNCATE";
		case ACL_SELECT:
			return "SELECT";
	}
	return "?";
}

/*
 * ingest_check_target
 *		Error out unless role roleid may have a migration write into table
 *		relid with the privileges in needed (ACL_INSERT, ACL_UPDATE,
 *		ACL_DELETE, ACL_TRUNCATE).  See the header comment.
 */
void
ingest_check_target(Oid relid, Oid roleid, AclMode needed)
{
	char		relkind = get_rel_relkind(relid);
	char	   *name = ingest_relid_name(relid);
	Oid			extension;
	static const AclMode modes[] = {ACL_INSERT, ACL_UPDATE, ACL_DELETE, ACL_TRUNCATE};
	int			i;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot migrate rows into %s: it is not a table", name)));

	extension = getExtensionOfObject(RelationRelationId, relid);
	if (OidIsValid(extension) && !ingest_extconfig_is_config(relid))
	{
		char	   *extname = get_extension_name(extension);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot migrate rows into table %s: it belongs to extension \"%s\"",
						name, extname ? extname : "?"),
				 errdetail("An extension's own objects are never the destination of a migration."),
				 errhint("Leave the source table out with exclude_tables or exclude_schemas.")));
	}

	/* a Citus table pg_ingest cannot feed through Citus (citus.c) */
	ingest_citus_check_target(relid, name);

	for (i = 0; i < lengthof(modes); i++)
	{
		if ((needed & modes[i]) == 0)
			continue;
		if (pg_class_aclcheck(relid, roleid, modes[i]) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for table %s: role \"%s\" lacks privilege %s",
							name, GetUserNameFromId(roleid, false), privilege_name(modes[i])),
					 errdetail("A migration writes as its owner, with the privileges native logical replication needs."),
					 errhint("GRANT %s ON %s TO %s, or run the migration as the table's owner.",
							 privilege_name(modes[i]), name,
							 quote_identifier(GetUserNameFromId(roleid, false)))));
	}

	if (check_enable_rls(relid, roleid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot migrate rows into table %s: row-level security applies to role \"%s\"",
						name, GetUserNameFromId(roleid, false)),
				 errdetail("Native logical replication refuses the same: its policies would filter or reject migrated rows."),
				 errhint("Run the migration as the table's owner or as a role with BYPASSRLS, or disable row-level security on the table.")));
}

/* Whether a foreign key references relid itself (its constraints' dependencies). */
static bool
referenced_directly(Oid relid)
{
	Relation	depRel = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(depRel, DependReferenceIndexId, true, NULL, 2, key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);
		HeapTuple	con;

		if (dep->classid != ConstraintRelationId)
			continue;
		con = SearchSysCache1(CONSTROID, ObjectIdGetDatum(dep->objid));
		if (!HeapTupleIsValid(con))
			continue;
		found = ((Form_pg_constraint) GETSTRUCT(con))->contype == CONSTRAINT_FOREIGN &&
			((Form_pg_constraint) GETSTRUCT(con))->confrelid == relid;
		ReleaseSysCache(con);
	}
	systable_endscan(scan);
	table_close(depRel, AccessShareLock);
	return found;
}

/*
 * Whether a foreign key references the table, or, for a partitioned table
 * (truncated with its partitions), a partition of it.  Found through the
 * constraint's dependency on the referenced table, an index probe of
 * pg_depend: pg_constraint has no index on confrelid.
 */
bool
ingest_referenced_by_foreign_key(Oid relid)
{
	List	   *rels;
	ListCell   *lc;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return referenced_directly(relid);
	rels = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, rels)
		if (referenced_directly(lfirst_oid(lc)))
			return true;
	return false;
}

/*
 * Whether some leaf partition of the source goes to its root's table here
 * (target.c): rows of other items may then land in any partition of this
 * server, which no item may truncate.
 */
bool
ingest_migration_maps_leaves(int32 migration_id)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(migration_id)};
	bool		found;

	ingest_catalog_begin();
	(void) ingest_catalog_query("SELECT 1 FROM ingest.copy_item WHERE migration_id = $1"
								" AND root_relname IS NOT NULL"
								" AND pg_catalog.to_regclass(pg_catalog.format('%I.%I', nspname, relname)) IS NULL"
								" LIMIT 1",
								1, types, vals, NULL);
	found = SPI_processed > 0;
	ingest_catalog_end();
	return found;
}

/*
 * ingest_target_column
 *		The index in rel's tuple descriptor of its column name (not
 *		dropped); an error naming the table if it has none.
 */
int
ingest_target_column(Relation rel, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of table %s does not exist on the target",
					name, ingest_relid_name(RelationGetRelid(rel)))));
	return -1;					/* keep compiler quiet */
}
