/*-------------------------------------------------------------------------
 *
 * spool.c
 *	  The spool: where the change receiver writes the source's change
 *	  stream and the applier reads it back, in segment files under
 *	  $PGDATA/pg_ingest/spool/<database>_<migration>/.
 *
 * A segment holds records of the stream, each a header (payload length,
 * CRC-32C, LSN, kind: the wal2json action) and a wal2json message.  Segments
 * are numbered and switched at SPOOL_SEGMENT_SIZE.  The writer is the only
 * one to append; it tells the reader, through shared memory, how far
 * complete transactions go, so the reader never sees half a transaction.
 * ingest_spool_sync() makes what was appended durable (fsync); the receiver
 * confirms to the source only what is durable.
 *
 * After a crash the writer keeps the records up to the last complete
 * transaction whose CRCs are right and cuts the rest; the stream is
 * requested again from there.  The applier removes the segments it has
 * applied.  Nothing in the spool needs WAL: it is the source's WAL, kept
 * here so that the source does not have to keep it.
 *
 * State: the spool files on disk (one directory per migration); the
 * positions that are durable and applied in the migration slot (shared
 * memory).
 *
 * Locking: none; one writer process and one reader process per spool.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/wait_event.h"

#include "spool.h"

typedef struct SpoolRecordHeader
{
	uint32		len;			/* payload bytes */
	pg_crc32c	crc;			/* of lsn, kind and payload */
	XLogRecPtr	lsn;
	char		kind;
	char		pad[7];
} SpoolRecordHeader;

#define WRITE_BUFFER_SIZE (256 * 1024)

char *
ingest_spool_dir(Oid dboid, int32 migration_id)
{
	return psprintf("%s/pg_ingest/spool/%u_%d", DataDir, dboid, migration_id);
}

static char *
segment_path(const char *dir, uint32 segno)
{
	return psprintf("%s/%08X.seg", dir, segno);
}

static void
make_dir(const char *path)
{
	if (MakePGDirectory(path) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", path)));
}

/* Create the spool directory of a migration if it is not there yet. */
static void
make_spool_dir(const char *dir)
{
	make_dir(psprintf("%s/pg_ingest", DataDir));
	make_dir(psprintf("%s/pg_ingest/spool", DataDir));
	make_dir(dir);
}

/* Segment numbers present in dir, ascending. */
static List *
list_segments(const char *dir)
{
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;
	List	   *segs = NIL;

	while ((de = ReadDir(d, dir)) != NULL)
	{
		unsigned int segno;
		char		extra;

		if (sscanf(de->d_name, "%8X.se%c", &segno, &extra) == 2 && extra == 'g' &&
			strlen(de->d_name) == 12)
			segs = lappend_int(segs, (int) segno);
	}
	FreeDir(d);
	list_sort(segs, list_int_cmp);
	return segs;
}

static pg_crc32c
record_crc(XLogRecPtr lsn, char kind, const char *data, int len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &lsn, sizeof(lsn));
	COMP_CRC32C(crc, &kind, 1);
	COMP_CRC32C(crc, data, len);
	FIN_CRC32C(crc);
	return crc;
}

/*
 * Scan a segment: the offset just past its last complete transaction (0 if
 * none) and that transaction's end LSN.  Stops at the first damaged record.
 */
static uint32
scan_segment(const char *path, XLogRecPtr *last_commit)
{
	int			fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	uint32		offset = 0;
	uint32		good = 0;
	char	   *payload = palloc(1024);
	int			cap = 1024;

	*last_commit = InvalidXLogRecPtr;
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open \"%s\": %m", path)));
	for (;;)
	{
		SpoolRecordHeader h;

		if (pg_pread(fd, &h, sizeof(h), offset) != sizeof(h))
			break;
		if (h.len >= MaxAllocSize - 1)
			break;
		if ((int) h.len > cap)
		{
			cap = h.len;
			payload = repalloc(payload, cap);
		}
		if (pg_pread(fd, payload, h.len, offset + sizeof(h)) != h.len)
			break;
		if (record_crc(h.lsn, h.kind, payload, h.len) != h.crc)
			break;
		offset += sizeof(h) + h.len;
		if (h.kind == 'C')
		{
			good = offset;
			*last_commit = h.lsn;
		}
	}
	CloseTransientFile(fd);
	pfree(payload);
	return good;
}

static void
open_segment(SpoolWriter *w, uint32 segno, uint32 offset)
{
	char	   *path = segment_path(w->dir, segno);

	w->file = PathNameOpenFile(path, O_RDWR | O_CREAT | PG_BINARY);
	if (w->file < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open \"%s\": %m", path)));
	if (FileTruncate(w->file, offset, PG_WAIT_EXTENSION) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not truncate \"%s\": %m", path)));
	w->segno = segno;
	w->offset = offset;
	w->synced_offset = 0;
	resetStringInfo(&w->buf);
}

/*
 * ingest_spool_open_writer
 *		Open (or create) the spool for appending.  Returns the end LSN of
 *		the last complete transaction it holds (Invalid if none): the stream
 *		goes on from there.
 */
XLogRecPtr
ingest_spool_open_writer(SpoolWriter *w, const char *dir)
{
	List	   *segs;
	int			i;
	uint32		keep_seg = 1;
	uint32		keep_off = 0;
	XLogRecPtr	last = InvalidXLogRecPtr;
	MemoryContext old;

	memset(w, 0, sizeof(SpoolWriter));
	strlcpy(w->dir, dir, sizeof(w->dir));
	/* the buffer lives as long as the writer; the scan below does not */
	old = MemoryContextSwitchTo(TopMemoryContext);
	initStringInfo(&w->buf);
	MemoryContextSwitchTo(old);
	make_spool_dir(dir);

	segs = list_segments(dir);
	for (i = list_length(segs) - 1; i >= 0; i--)
	{
		uint32		segno = (uint32) list_nth_int(segs, i);
		uint32		off = scan_segment(segment_path(dir, segno), &last);

		keep_seg = segno;
		keep_off = off;
		if (off > 0)
			break;
	}
	/* what follows the last complete transaction goes */
	for (i = 0; i < list_length(segs); i++)
	{
		uint32		segno = (uint32) list_nth_int(segs, i);

		if (segno > keep_seg)
			(void) unlink(segment_path(dir, segno));
	}
	open_segment(w, keep_seg, keep_off);
	w->last_commit = last;
	/* the previous writer may have died before its fsync */
	ingest_spool_sync(w);
	fsync_fname(dir, true);
	return last;
}

static void
write_buffer(SpoolWriter *w)
{
	uint32		start = w->offset - w->buf.len;

	if (w->buf.len == 0)
		return;
	if (FileWrite(w->file, w->buf.data, w->buf.len, start, PG_WAIT_EXTENSION) != w->buf.len)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write to spool segment %08X: %m", w->segno)));
	resetStringInfo(&w->buf);
}

/*
 * ingest_spool_append
 *		Append a record; 'C' records end a transaction.
 */
void
ingest_spool_append(SpoolWriter *w, char kind, XLogRecPtr lsn,
					const char *data, int len)
{
	SpoolRecordHeader h;

	/* a new segment once the current one is full */
	if (w->offset > 0 && w->offset + sizeof(h) + len > SPOOL_SEGMENT_SIZE)
	{
		ingest_spool_sync(w);
		FileClose(w->file);
		w->file = -1;
		open_segment(w, w->segno + 1, 0);
		fsync_fname(w->dir, true);
	}

	memset(&h, 0, sizeof(h));
	h.len = len;
	h.lsn = lsn;
	h.kind = kind;
	h.crc = record_crc(lsn, kind, data, len);
	appendBinaryStringInfo(&w->buf, (char *) &h, sizeof(h));
	appendBinaryStringInfo(&w->buf, data, len);
	w->offset += sizeof(h) + len;
	if (kind == 'C')
	{
		w->last_commit = lsn;
		/* the reader may have the transaction: hand it over */
		write_buffer(w);
	}
	else if (w->buf.len >= WRITE_BUFFER_SIZE)
		write_buffer(w);
}

/*
 * ingest_spool_sync
 *		Make everything appended durable.
 */
void
ingest_spool_sync(SpoolWriter *w)
{
	write_buffer(w);
	if (w->synced_offset != w->offset)
	{
		if (FileSync(w->file, PG_WAIT_EXTENSION) != 0)
			ereport(data_sync_elevel(ERROR),
					(errcode_for_file_access(),
					 errmsg("could not fsync spool segment %08X: %m", w->segno)));
		w->synced_offset = w->offset;
	}
	w->synced_commit = w->last_commit;
}

/* Position just past the last complete transaction written out. */
uint64
ingest_spool_position(SpoolWriter *w)
{
	return SPOOL_POS(w->segno, w->offset - w->buf.len);
}

/*
 * ingest_spool_abandon_writer
 *		Close without writing what is buffered (the start of a transaction
 *		the stream cut short); ingest_spool_open_writer then keeps the whole
 *		transactions only.
 */
void
ingest_spool_abandon_writer(SpoolWriter *w)
{
	if (w->file > 0)
		FileClose(w->file);
	w->file = -1;
	if (w->buf.data)
		pfree(w->buf.data);
	w->buf.data = NULL;
}

void
ingest_spool_close_writer(SpoolWriter *w)
{
	if (w->file > 0)
		ingest_spool_sync(w);
	ingest_spool_abandon_writer(w);
}

void
ingest_spool_open_reader(SpoolReader *r, const char *dir)
{
	List	   *segs;

	memset(r, 0, sizeof(SpoolReader));
	strlcpy(r->dir, dir, sizeof(r->dir));
	initStringInfo(&r->buf);
	r->file = -1;
	/* the applier may start before the receiver made it */
	make_spool_dir(dir);
	segs = list_segments(dir);
	r->segno = segs ? (uint32) linitial_int(segs) : 1;
}

/* Make sure buf holds [offset, offset + need) of the current segment. */
static bool
fill(SpoolReader *r, uint32 need)
{
	if (r->offset >= r->buf_start && r->offset + need <= r->buf_start + r->buf.len)
		return true;
	if (r->file < 0)
	{
		char	   *path = segment_path(r->dir, r->segno);

		r->file = PathNameOpenFile(path, O_RDONLY | PG_BINARY);
		if (r->file < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open \"%s\": %m", path)));
	}
	{
		uint32		want = Max(need, WRITE_BUFFER_SIZE);
		int			n;

		r->buf.len = 0;
		enlargeStringInfo(&r->buf, want);
		n = FileRead(r->file, r->buf.data, want, r->offset, PG_WAIT_EXTENSION);
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read spool segment %08X: %m", r->segno)));
		r->buf.len = n;
		r->buf_start = r->offset;
		return (uint32) n >= need;
	}
}

/*
 * ingest_spool_read
 *		The next record before limit (a SPOOL_POS published by the writer),
 *		or false if there is none yet.
 */
bool
ingest_spool_read(SpoolReader *r, uint64 limit, char *kind, XLogRecPtr *lsn,
				  StringInfo payload)
{
	SpoolRecordHeader h;

	for (;;)
	{
		if (SPOOL_POS(r->segno, r->offset) >= limit)
			return false;
		if (SPOOL_POS_SEG(limit) > r->segno &&
			(!fill(r, sizeof(h)) || r->offset >= SPOOL_SEGMENT_SIZE))
		{
			/* the end of a finished segment: the next one */
			if (r->file >= 0)
				FileClose(r->file);
			r->file = -1;
			r->segno++;
			r->offset = 0;
			r->buf.len = 0;
			r->buf_start = 0;
			continue;
		}
		if (!fill(r, sizeof(h)))
			return false;
		memcpy(&h, r->buf.data + (r->offset - r->buf_start), sizeof(h));
		if (!fill(r, sizeof(h) + h.len))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("spool segment %08X ends inside a record at offset %u",
							r->segno, r->offset)));
		resetStringInfo(payload);
		appendBinaryStringInfo(payload, r->buf.data + (r->offset - r->buf_start) + sizeof(h),
							   h.len);
		if (record_crc(h.lsn, h.kind, payload->data, h.len) != h.crc)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("spool segment %08X has a damaged record at offset %u",
							r->segno, r->offset)));
		r->offset += sizeof(h) + h.len;
		*kind = h.kind;
		*lsn = h.lsn;
		return true;
	}
}

void
ingest_spool_close_reader(SpoolReader *r)
{
	if (r->file >= 0)
		FileClose(r->file);
	r->file = -1;
}

int64
ingest_spool_size(const char *dir)
{
	List	   *segs;
	ListCell   *lc;
	int64		total = 0;
	struct stat st;

	if (stat(dir, &st) != 0)
		return 0;
	segs = list_segments(dir);
	foreach(lc, segs)
	{
		char	   *path = segment_path(dir, (uint32) lfirst_int(lc));

		if (stat(path, &st) == 0)
			total += st.st_size;
		pfree(path);
	}
	list_free(segs);
	return total;
}

/* Remove the segments before segno (all applied). */
void
ingest_spool_remove_before(const char *dir, uint32 segno)
{
	List	   *segs = list_segments(dir);
	ListCell   *lc;

	foreach(lc, segs)
		if ((uint32) lfirst_int(lc) < segno)
			(void) unlink(segment_path(dir, (uint32) lfirst_int(lc)));
}

/* Remove the whole spool of a migration. */
void
ingest_spool_remove_all(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0)
		return;
	ingest_spool_remove_before(dir, PG_UINT32_MAX);
	(void) rmdir(dir);
}
