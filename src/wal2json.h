/*-------------------------------------------------------------------------
 *
 * wal2json.h
 *	  One wal2json format-version 2 message, parsed; its compact form in
 *	  the spool.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_WAL2JSON_H
#define PG_INGEST_WAL2JSON_H

#include "access/xlogdefs.h"
#include "lib/stringinfo.h"

/* A column of a change: its name and its value's text (NULL: SQL NULL). */
typedef struct W2JColumn
{
	char	   *name;
	char	   *value;
	bool		is_number;		/* a bare JSON number (numeric types) */
	char	   *type;			/* its type as the source names it, if sent */
} W2JColumn;

typedef struct W2JChange
{
	char		action;			/* B, C, I, U, D, T, M */
	TransactionId xid;
	char	   *timestamp;		/* commit time, as the source wrote it */
	XLogRecPtr	lsn;			/* B, C: the commit record; I/U/D: the change */
	XLogRecPtr	nextlsn;		/* B, C: the end of the commit record */
	char	   *schema;
	char	   *table;
	int			ncolumns;
	W2JColumn  *columns;		/* I, U: the new row (unchanged TOAST left out) */
	int			nidentity;
	W2JColumn  *identity;		/* U, D: the old key, or the old row */
	char	   *prefix;			/* M */
	char	   *content;		/* M */
} W2JChange;

extern bool ingest_w2j_parse(char *json, int len, W2JChange *change,
							 char **error);
extern char *ingest_w2j_describe(W2JChange *change, int max_value_len);
extern void ingest_w2j_setup_conversion(int source_encoding);
extern char *ingest_w2j_convert(char *msg, int len, bool no_error);
extern void ingest_w2j_compact(W2JChange *change, StringInfo out);
extern bool ingest_w2j_decode(char *data, int len, W2JChange *change,
							  char **error);

#endif							/* PG_INGEST_WAL2JSON_H */
