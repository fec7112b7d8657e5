/*-------------------------------------------------------------------------
 *
 * spool.h
 *	  The spool of a migration's change stream: segment files on disk.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_SPOOL_H
#define PG_INGEST_SPOOL_H

#include "access/xlogdefs.h"
#include "lib/stringinfo.h"
#include "storage/fd.h"

#define SPOOL_SEGMENT_SIZE	(64 * 1024 * 1024)

/* A position in the spool: segment number and byte offset, in one word. */
#define SPOOL_POS(seg, off)		(((uint64) (seg) << 32) | (uint32) (off))
#define SPOOL_POS_SEG(pos)		((uint32) ((pos) >> 32))
#define SPOOL_POS_OFF(pos)		((uint32) (pos))

typedef struct SpoolWriter
{
	char		dir[MAXPGPATH];
	uint32		segno;			/* segment being written */
	File		file;			/* a VFD: it outlives transactions */
	uint32		offset;			/* bytes of it written (buffer included) */
	StringInfoData buf;			/* not yet written */
	uint32		synced_offset;	/* what fsync covers in this segment */
	XLogRecPtr	last_commit;	/* end LSN of the last transaction appended */
	XLogRecPtr	synced_commit;	/* ... and of the last one made durable */
} SpoolWriter;

typedef struct SpoolReader
{
	char		dir[MAXPGPATH];
	uint32		segno;
	File		file;
	uint32		offset;			/* next record */
	StringInfoData buf;
	uint32		buf_start;		/* file offset of buf.data[0] */
} SpoolReader;

extern char *ingest_spool_dir(Oid dboid, int32 migration_id);
extern XLogRecPtr ingest_spool_open_writer(SpoolWriter *w, const char *dir);
extern void ingest_spool_append(SpoolWriter *w, char kind, XLogRecPtr lsn,
								const char *data, int len);
extern void ingest_spool_sync(SpoolWriter *w);
extern uint64 ingest_spool_position(SpoolWriter *w);
extern void ingest_spool_close_writer(SpoolWriter *w);
extern void ingest_spool_abandon_writer(SpoolWriter *w);
extern void ingest_spool_open_reader(SpoolReader *r, const char *dir);
extern bool ingest_spool_read(SpoolReader *r, uint64 limit, char *kind,
							  XLogRecPtr *lsn, StringInfo payload);
extern void ingest_spool_close_reader(SpoolReader *r);
extern int64 ingest_spool_size(const char *dir);
extern void ingest_spool_remove_before(const char *dir, uint32 segno);
extern void ingest_spool_remove_all(const char *dir);

#endif							/* PG_INGEST_SPOOL_H */
