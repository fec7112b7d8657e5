/*-------------------------------------------------------------------------
 *
 * names.c
 *	  Names as pg_ingest writes them: a relation's qualified name, quoted,
 *	  from its parts or from its OID on this server; a name in a list.
 *
 * Every name that goes into SQL pg_ingest builds is quoted here (or by
 * quote_identifier / quote_literal_cstr at the call): text from the source
 * is never trusted to be a plain identifier.
 *
 * State: none.
 *
 * Locking: none (ingest_relid_name reads the syscache).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "names.h"

/* schema.table, each part quoted as needed. */
char *
ingest_qualified(const char *nspname, const char *relname)
{
	return psprintf("%s.%s", quote_identifier(nspname), quote_identifier(relname));
}

/* schema.table of a relation of this server, quoted. */
char *
ingest_relid_name(Oid relid)
{
	char	   *nspname = get_namespace_name(get_rel_namespace(relid));
	char	   *relname = get_rel_name(relid);

	if (nspname == NULL || relname == NULL)
		return psprintf("relation %u", relid);
	return quote_qualified_identifier(nspname, relname);
}

/* Whether a list of C strings holds s. */
bool
ingest_string_in(List *list, const char *s)
{
	ListCell   *lc;

	foreach(lc, list)
		if (strcmp(lfirst(lc), s) == 0)
			return true;
	return false;
}
