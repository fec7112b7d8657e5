/*-------------------------------------------------------------------------
 *
 * progress.h
 *	  Progress reports of ingest.wait() (progress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INGEST_PROGRESS_H
#define PG_INGEST_PROGRESS_H

extern void ingest_progress_notice(const char *name);

#endif							/* PG_INGEST_PROGRESS_H */
