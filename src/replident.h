/*-------------------------------------------------------------------------
 *
 * replident.h
 *	  Finding a row by all its columns (REPLICA IDENTITY FULL): replident.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_REPLIDENT_H
#define PG_INGEST_REPLIDENT_H

#include "executor/tuptable.h"
#include "nodes/lockoptions.h"
#include "utils/relcache.h"

extern bool ingest_find_repl_tuple_seq(Relation rel, LockTupleMode lockmode,
									   TupleTableSlot *searchslot,
									   TupleTableSlot *outslot);

#endif							/* PG_INGEST_REPLIDENT_H */
