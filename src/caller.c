/*-------------------------------------------------------------------------
 *
 * caller.c
 *	  The checks every operator-facing SQL function of pg_ingest makes
 *	  before it does anything: the library preloaded, SQL objects of a
 *	  version this library knows, a caller allowed to operate it.
 *
 * Who may operate pg_ingest: superusers and members of ingest_admin
 * (EXECUTE is revoked from PUBLIC too).  The version of the SQL objects is
 * read from pg_extension at each call: ALTER EXTENSION ... UPDATE may run
 * at any time.
 *
 * State: none.
 *
 * Locking: AccessShareLock on pg_extension to read the version.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "pg_ingest.h"

/*
 * ingest_sql_version
 *		The version of the extension's SQL objects in this database (what
 *		CREATE or ALTER EXTENSION installed), palloc'd; NULL if the
 *		extension is not here.  Read afresh: ALTER EXTENSION ... UPDATE may
 *		run at any time.
 */
char *
ingest_sql_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("pg_ingest"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * ingest_check_sql_version
 *		Refuse to work with SQL objects this library does not know.  It
 *		knows its own version's and every earlier one's (0.1.0): what they
 *		lack it does without (copy.c), until ALTER EXTENSION ... UPDATE.
 */
void
ingest_check_sql_version(void)
{
	char	   *version = ingest_sql_version();

	if (version == NULL || strcmp(version, PG_INGEST_VERSION) == 0 ||
		strcmp(version, "0.1.0") == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the SQL objects of pg_ingest in this database are version %s, which its library (version %s) does not know",
					version, PG_INGEST_VERSION),
			 errhint("Install the pg_ingest library of version %s, or run ALTER EXTENSION pg_ingest UPDATE if it is older.",
					 version)));
}

/*
 * ingest_role_is_admin
 *		Whether roleid may operate pg_ingest: superuser or member of
 *		ingest_admin.
 */
bool
ingest_role_is_admin(Oid roleid)
{
	Oid			admin;

	if (superuser_arg(roleid))
		return true;
	admin = get_role_oid(INGEST_ADMIN_ROLE, true);
	return OidIsValid(admin) && has_privs_of_role(roleid, admin);
}

/*
 * ingest_check_caller
 *		The checks every operator-facing function makes first.
 *
 * EXECUTE is revoked from PUBLIC already; this also stops a grant made to
 * some other role by mistake.
 */
void
ingest_check_caller(void)
{
	ingest_require_preload();
	ingest_check_sql_version();
	if (!ingest_role_is_admin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to use pg_ingest"),
				 errdetail("Only superusers and members of role \"%s\" may use pg_ingest.",
						   INGEST_ADMIN_ROLE)));
}
