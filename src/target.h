/*-------------------------------------------------------------------------
 *
 * target.h
 *	  Which table of this server a source table's rows go to, and whether
 *	  a migration may write there (target.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_TARGET_H
#define PG_INGEST_TARGET_H

#include "names.h"
#include "nodes/parsenodes.h"
#include "utils/relcache.h"
#include "storage/lockdefs.h"

extern Oid	ingest_target_relid(const char *nspname, const char *relname,
								const char *root_nspname, const char *root_relname,
								LOCKMODE lockmode, bool *mapped);
extern void ingest_check_target(Oid relid, Oid roleid, AclMode needed);

extern bool ingest_referenced_by_foreign_key(Oid relid);
extern int	ingest_target_column(Relation rel, const char *name);
extern bool ingest_migration_maps_leaves(int32 migration_id);

#endif							/* PG_INGEST_TARGET_H */
