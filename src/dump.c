/*-------------------------------------------------------------------------
 *
 * dump.c
 *	  This server's pg_dump and pg_restore, run on a migration's source:
 *	  the schema under the migration's snapshot, as SQL of one section or
 *	  of both (one pg_dump into a custom-format archive, written out by
 *	  pg_restore section by section).
 *
 * The programs are those installed beside the server (client_program),
 * run through /bin/sh with every argument quoted.  The password goes
 * through a password file only the server's OS user can read, never on a
 * command line; it, the programs' standard error and the archive are
 * temporary files in the default tablespace's pgsql_tmp (removed by the
 * server at a restart, left out of base backups), removed on every path
 * out, and by an exit callback when the process ends with FATAL
 * (ingest.abort, shutdown: PG_FINALLY does not run then).  A pg_dump
 * still running is killed rather than waited for: it may be waiting on a
 * lock on the source.
 *
 * State: the paths of the temporary files and the pid of the running
 * program, in this process, for the exit callback; nothing in the catalog
 * or shared memory.
 *
 * Locking: none here; pg_dump takes AccessShareLock on the source's tables
 * it dumps.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_tablespace_d.h"
#include "common/string.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/builtins.h"

#include "ddl.h"
#include "schema.h"

/* Quote for /bin/sh. */
static char *
shell_quote(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '\'');
	for (; *s; s++)
	{
		if (*s == '\'')
			appendStringInfoString(&buf, "'\\''");
		else
			appendStringInfoChar(&buf, *s);
	}
	appendStringInfoChar(&buf, '\'');
	return buf.data;
}

/* A pg_dump name pattern that matches exactly this name. */
static char *
dump_pattern(const char *nspname, const char *relname)
{
	StringInfoData buf;
	const char *parts[2] = {nspname, relname};
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < 2; i++)
	{
		const char *p;

		if (parts[i] == NULL)
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, '.');
		appendStringInfoChar(&buf, '"');
		for (p = parts[i]; *p; p++)
		{
			if (*p == '"')
				appendStringInfoChar(&buf, '"');
			appendStringInfoChar(&buf, *p);
		}
		appendStringInfoChar(&buf, '"');
	}
	return buf.data;
}

/*
 * Write the password file pg_dump reads (any host, port, database, user)
 * and return its path.
 *
 * It lives in the default tablespace's temporary-file directory
 * (base/pgsql_tmp) under PostgreSQL's temporary-file prefix: the server
 * removes such files when it starts, also after a crash, and base backups
 * skip them.  Mode 0600; the caller removes it on every path, and an exit
 * callback does when the process ends with FATAL (SIGTERM).
 */
static char current_passfile[MAXPGPATH];
static char current_errfile[MAXPGPATH];
static char current_archive[MAXPGPATH];
static pid_t current_pg_dump = 0;

/* Remove the file whose path is in the buffer, if any, and forget it. */
static void
remove_temp_file(char *path)
{
	if (path[0] != '\0')
		(void) unlink(path);
	path[0] = '\0';
}

static void
remove_passfile(void)
{
	remove_temp_file(current_passfile);
}

/* Stop a pg_dump that is still running (it may wait on a source lock). */
static void
kill_pg_dump(void)
{
	if (current_pg_dump > 0)
		(void) kill(current_pg_dump, SIGKILL);
	current_pg_dump = 0;
}

/*
 * An exit with FATAL (SIGTERM: ingest.abort, shutdown) skips PG_FINALLY,
 * and the transaction cleanup's pclose() would wait for pg_dump: kill it
 * and remove the password file first.  Registered after InitPostgres, so
 * it runs before ShutdownPostgres.
 */
static void
pg_dump_at_exit(int code, Datum arg)
{
	kill_pg_dump();
	remove_passfile();
	remove_temp_file(current_errfile);
	remove_temp_file(current_archive);
}

/* Once per process, before the first client program runs. */
static void
register_exit_callback(void)
{
	static bool registered = false;

	if (!registered)
		before_shmem_exit(pg_dump_at_exit, (Datum) 0);
	registered = true;
}

/*
 * A new temporary file's path in this server's pgsql_tmp (removed at a
 * restart, left out of base backups), kept in buffer for the exit
 * callback; what names it.
 */
static char *
temp_file_path(char *buffer, const char *what)
{
	static int	counter = 0;
	char		tmpdir[MAXPGPATH];
	char	   *path;

	register_exit_callback();
	TempTablespacePath(tmpdir, DEFAULTTABLESPACE_OID);
	if (MakePGDirectory(tmpdir) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", tmpdir)));
	path = psprintf("%s/%s/%s%d.pg_ingest_%s.%d", DataDir, tmpdir,
					PG_TEMP_FILE_PREFIX, MyProcPid, what, counter++);
	remove_temp_file(buffer);
	strlcpy(buffer, path, MAXPGPATH);
	/* a leftover of an earlier process with this pid is not reused */
	(void) unlink(path);
	return path;
}

static char *
write_passfile(const char *password)
{
	StringInfoData buf;
	char	   *path;
	const char *p;
	int			fd;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "*:*:*:*:");
	for (p = password; *p; p++)
	{
		if (*p == ':' || *p == '\\')
			appendStringInfoChar(&buf, '\\');
		appendStringInfoChar(&buf, *p);
	}
	appendStringInfoChar(&buf, '\n');

	path = temp_file_path(current_passfile, "pgpass");
	fd = OpenTransientFilePerm(path, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY,
							   S_IRUSR | S_IWUSR);
	if (fd < 0)
	{
		int			save_errno = errno;

		current_passfile[0] = '\0';
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", path)));
	}
	errno = 0;
	if (write(fd, buf.data, buf.len) != buf.len)
	{
		int			save_errno = errno ? errno : ENOSPC;

		CloseTransientFile(fd);
		remove_passfile();
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", path)));
	}
	if (CloseTransientFile(fd) != 0)
	{
		int			save_errno = errno;

		remove_passfile();
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", path)));
	}
	memset(buf.data, 0, buf.len);
	pfree(buf.data);
	return path;
}

/* The path of client program "name" installed beside the server. */
static char *
client_program(const char *name)
{
	char		bindir[MAXPGPATH];
	char	   *path;

	strlcpy(bindir, my_exec_path, sizeof(bindir));
	get_parent_directory(bindir);
	path = psprintf("%s/%s", bindir, name);
	if (access(path, X_OK) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("%s not found at \"%s\"", name, path),
				 errhint("pg_ingest runs the %s installed beside the server; install the client programs of this PostgreSQL version (Debian: postgresql-client-%d).",
						 name, PG_VERSION_NUM / 10000)));
	return path;
}

/*
 * run_program
 *		Run a client program (pg_dump, pg_restore): args is its command line
 *		after the program, already quoted for the shell.  Returns what it
 *		wrote on its standard output (*len bytes, which may hold zero bytes);
 *		an exit other than 0 is an error naming what (e.g. "pg_dump of the
 *		pre-data section") with its standard error, the password scrubbed.
 *
 * The password goes through a password file that only the server's OS user
 * can read (see write_passfile), never on a command line; it is removed
 * on every path out of here.  Reading is interruptible; on an error or a
 * FATAL exit the program is killed rather than waited for (pg_dump may be
 * waiting on a lock on the source).
 */
static char *
run_program(const char *program, const char *args, const char *password,
			const char *what, int *len)
{
	char	   *errfile;
	char	   *volatile passfile = NULL;
	StringInfoData cmd;
	StringInfoData out;
	volatile int rc = 0;
	volatile int skip = 0;

	errfile = temp_file_path(current_errfile, "stderr");
	initStringInfo(&cmd);
	initStringInfo(&out);
	PG_TRY();
	{
		FILE	   *pipe;

		/* the shell's pid, which exec gives to the program, comes first */
		appendStringInfoString(&cmd, "echo $$; exec ");
		if (password)
		{
			passfile = write_passfile(password);
			appendStringInfo(&cmd, "env PGPASSFILE=%s ", shell_quote(passfile));
		}
		appendStringInfo(&cmd, "%s %s 2>%s", shell_quote(client_program(program)),
						 args, shell_quote(errfile));

		pipe = OpenPipeStream(cmd.data, PG_BINARY_R);
		if (pipe == NULL)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not run %s: %m", program)));
		PG_TRY();
		{
			int			fd = fileno(pipe);
			char		chunk[65536];

			for (;;)
			{
				ssize_t		n;
				int			ev;

				ev = WaitLatchOrSocket(MyLatch,
									   WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
									   fd, 0, PG_WAIT_EXTENSION);
				if (ev & WL_LATCH_SET)
				{
					ResetLatch(MyLatch);
					CHECK_FOR_INTERRUPTS();
				}
				if (!(ev & WL_SOCKET_READABLE))
					continue;
				n = read(fd, chunk, sizeof(chunk));
				if (n < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (n < 0)
					ereport(ERROR,
							(errcode_for_file_access(),
							 errmsg("could not read the output of %s: %m", program)));
				if (n == 0)
					break;
				appendBinaryStringInfo(&out, chunk, n);
				if (skip == 0)
				{
					char	   *nl = memchr(out.data, '\n', out.len);

					if (nl)
					{
						current_pg_dump = (pid_t) strtol(out.data, NULL, 10);
						skip = nl - out.data + 1;
					}
				}
			}
		}
		PG_CATCH();
		{
			/* it may be waiting on the source: do not wait for it */
			kill_pg_dump();
			(void) ClosePipeStream(pipe);
			PG_RE_THROW();
		}
		PG_END_TRY();
		current_pg_dump = 0;
		rc = ClosePipeStream(pipe);
	}
	PG_FINALLY();
	{
		/* every path: the password is on disk only while the program runs */
		if (passfile)
			remove_passfile();
	}
	PG_END_TRY();

	if (rc != 0)
	{
		char	   *err = NULL;
		FILE	   *f = AllocateFile(errfile, "r");

		if (f)
		{
			StringInfoData e;
			char		line[1024];

			initStringInfo(&e);
			while (fgets(line, sizeof(line), f) && e.len < 4000)
				appendStringInfoString(&e, line);
			FreeFile(f);
			err = pchomp(e.data);
		}
		remove_temp_file(current_errfile);
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("%s failed: %s", what, wait_result_to_str(rc)),
				 err ? errdetail_internal("%s", password ? ingest_scrub(err, password) : err) : 0));
	}
	remove_temp_file(current_errfile);
	/* after the shell's pid line: the output, binary or not */
	*len = out.len - skip;
	memmove(out.data, out.data + skip, *len + 1);
	return out.data;
}

/* pg_dump's arguments: the source, its snapshot, what to leave out. */
static char *
pg_dump_args(IngestMigration *m, IngestConnInfo *info, const char *snapshot,
			 List *rels, IngestFilters *filters)
{
	StringInfoData cmd;
	ListCell   *lc;

	initStringInfo(&cmd);
	appendStringInfo(&cmd, "--schema-only --snapshot=%s"
					 " --encoding=%s --no-subscriptions --dbname=%s",
					 shell_quote(snapshot),
					 shell_quote(GetDatabaseEncodingName()),
					 shell_quote(ingest_conninfo_for_tool(info,
														  psprintf("pg_ingest %s pg_dump", m->name))));
	foreach(lc, filters->include_schemas)
		appendStringInfo(&cmd, " --schema=%s",
						 shell_quote(dump_pattern(NULL, ((QualName *) lfirst(lc))->relname)));
	foreach(lc, filters->exclude_schemas)
		appendStringInfo(&cmd, " --exclude-schema=%s",
						 shell_quote(dump_pattern(NULL, ((QualName *) lfirst(lc))->relname)));
	foreach(lc, rels)
	{
		SourceRel  *r = lfirst(lc);

		/* relations that the table filters leave out */
		if (!r->in_scope &&
			(filters->include_tables != NIL || filters->exclude_tables != NIL))
			appendStringInfo(&cmd, " --exclude-table=%s",
							 shell_quote(dump_pattern(r->nspname, r->relname)));
	}
	/* only these tables: one created on the source while streaming */
	foreach(lc, filters->dump_tables)
		appendStringInfo(&cmd, " --table=%s",
						 shell_quote(dump_pattern(((QualName *) lfirst(lc))->nspname,
												  ((QualName *) lfirst(lc))->relname)));
	/* pg_ingest's own objects on the source (ddl.c) */
	appendStringInfoString(&cmd, " --exclude-schema=" INGEST_DDL_SCHEMA);
	return cmd.data;
}

/*
 * ingest_pg_dump
 *		Run this server's pg_dump on the source under a snapshot and return
 *		the SQL of one section.
 */
char *
ingest_pg_dump(IngestMigration *m, IngestConnInfo *info, const char *snapshot,
			   const char *section, List *rels, IngestFilters *filters)
{
	int			len;

	return run_program("pg_dump",
					   psprintf("--section=%s %s", section,
								pg_dump_args(m, info, snapshot, rels, filters)),
					   info->password,
					   psprintf("pg_dump of the %s section", section), &len);
}

/*
 * ingest_pg_dump_sections
 *		As ingest_pg_dump, for both sections at once: one pg_dump (one read
 *		of the source's catalog) into a custom-format archive, whose
 *		sections this server's pg_restore then writes out as SQL.  The
 *		archive is a temporary file (pgsql_tmp) while this runs, removed on
 *		every way out, FATAL exits included (pg_dump_at_exit), and by the
 *		server's restart after a crash.
 */
void
ingest_pg_dump_sections(IngestMigration *m, IngestConnInfo *info,
						const char *snapshot, List *rels, IngestFilters *filters,
						char **pre_data, char **post_data)
{
	char	   *archive = temp_file_path(current_archive, "schema");

	PG_TRY();
	{
		int			len;
		char	   *dump;
		FILE	   *f;

		dump = run_program("pg_dump",
						   psprintf("--format=custom %s",
									pg_dump_args(m, info, snapshot, rels, filters)),
						   info->password, "pg_dump of the schema", &len);
		f = AllocateFile(archive, PG_BINARY_W);
		if (f == NULL)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create file \"%s\": %m", archive)));
		if (fwrite(dump, 1, len, f) != (size_t) len || FreeFile(f) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write file \"%s\": %m", archive)));
		pfree(dump);
		*pre_data = run_program("pg_restore",
								psprintf("--section=pre-data --file=- %s", shell_quote(archive)),
								NULL, "pg_restore of the pre-data section", &len);
		*post_data = run_program("pg_restore",
								 psprintf("--section=post-data --file=- %s", shell_quote(archive)),
								 NULL, "pg_restore of the post-data section", &len);
	}
	PG_FINALLY();
	{
		remove_temp_file(current_archive);
	}
	PG_END_TRY();
}
