/*-------------------------------------------------------------------------
 *
 * schema.c
 *	  The schema of a migration: the target's own pg_dump takes it from the
 *	  source under the migration's snapshot, the server's raw parser splits
 *	  it into statements, and each statement becomes a schema_item that is
 *	  executed inside this server and recorded as done in the transaction
 *	  that ran it: a committed item is not run again, one rolled back (a
 *	  worker killed) stays pending and runs again.
 *
 * The index workers (stages 1 to 4) run one item a transaction.  The
 * coordinator (stages 0 and 5, alone, in order) runs up to BATCH_ITEMS
 * items a transaction, for at most BATCH_MS, each in a subtransaction of
 * its own: an item that fails is rolled back alone and recorded (failed,
 * or pending for a retry) in that transaction, exactly as when it ran
 * alone; one that cannot run in a subtransaction runs alone.
 *
 * Claiming (claim_items) must cost little however many items there are:
 * it reads the pending items in claiming order through a partial index and
 * stops at the first ready ones; readiness is probed per row only for the
 * row's own table (partial indexes of pending rows), and once per claim
 * for the whole migration.  Stores of many items ANALYZE the table in
 * their transaction, or the plans would assume it empty.
 *
 * Post-data statements are classified into stages so that the slow ones run
 * in parallel on the index workers as soon as they can:
 *	1  CREATE INDEX, PRIMARY KEY / UNIQUE (on a table of 64 MB or more
 *	   rewritten as CREATE UNIQUE INDEX, so that the other index builds of
 *	   the table run beside it; on a smaller one, the dump's single
 *	   statement, one item instead of two), exclusion constraints: when
 *	   their table is copied;
 *	2  ADD CONSTRAINT ... USING INDEX, constraints of partitioned tables,
 *	   then ANALYZE: when the table's stage-1 items are done;
 *	3  ALTER INDEX ... ATTACH PARTITION: when stages 1-2 are done;
 *	4  foreign keys and separately dumped checks: when 1-3 are done;
 *	5  everything else (triggers, rules, policies, comments...), then
 *	   REFRESH MATERIALIZED VIEW and setval, one at a time in dump order.
 * pg_dump's SET statements are not items: each item carries the SETs in
 * force where it stood in the dump (its prelude) and runs them first, so
 * items can run in any session and after a restart.
 *
 * pg_dump's CREATE SCHEMA public (written when include_schemas names it)
 * becomes CREATE SCHEMA IF NOT EXISTS public: every database has it.
 * pg_ingest's own objects on the source (schema _pg_ingest and the event
 * triggers of migrations, ddl.c) are left out of the dump.
 *
 * The statements of objects that depend on relations the filters leave
 * out (a view over an excluded table, a foreign key to it...) are not run:
 * each such object is recorded once as a WARNING event (depend.c).
 *
 * A statement that fails is recorded in ingest.events with its text (cut
 * on a character boundary); it is
 * retried only for transient errors (deadlock, serialization, resources).
 * The migration goes on, as pg_restore does; what depends on the failed
 * statement fails in its turn and is recorded too, and a table that cannot
 * be copied fails the migration.  Ownership and privilege statements that
 * name a role missing on this server are recorded as warnings.
 *
 * Locking: items are claimed with FOR UPDATE SKIP LOCKED, so a statement
 * runs once however many workers look for work; the row lock is held until
 * the statement commits (with its batch, for the coordinator's items).
 * Index workers are not batched: a transaction holding the locks of several
 * tables' DDL would make the workers wait for (or deadlock with) each other.
 * An index worker wakes the others after each item it commits, since that
 * may have made items ready.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_tablespace_d.h"
#include "catalog/pg_type.h"
#include "common/string.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "port.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "depend.h"
#include "ddl.h"
#include "schema.h"

#define STATEMENT_IN_EVENT_MAX 4000

/* tables from this size get their keys as an index build and a constraint */
#define SPLIT_KEY_MIN_BYTES ((int64) 64 * 1024 * 1024)

/* a store of this many items analyzes the table (plans of claim_items) */
#define ANALYZE_AFTER_ITEMS 100
/* schema items stored per INSERT (as arrays of their columns) */
#define STORE_ITEMS_PER_INSERT 1000

/*
 * The coordinator runs up to this many items of stages 0 and 5 in one
 * transaction, one subtransaction each, for at most BATCH_MS.
 */
#define BATCH_ITEMS 64
#define BATCH_MS 200

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

/* pg_dump's psql meta-commands (\restrict, \unrestrict) are not SQL. */
static char *
strip_meta_commands(const char *dump)
{
	StringInfoData buf;
	const char *p = dump;

	initStringInfo(&buf);
	while (*p)
	{
		const char *eol = strchr(p, '\n');
		size_t		len = eol ? (size_t) (eol - p + 1) : strlen(p);

		if (strncmp(p, "\\restrict ", 10) == 0 || strncmp(p, "\\unrestrict ", 12) == 0)
			appendStringInfoChar(&buf, '\n');	/* keep locations honest */
		else
			appendBinaryStringInfo(&buf, p, len);
		p += len;
	}
	return buf.data;
}

/* The statement's text without pg_dump's leading comment lines. */
static char *
statement_text(const char *sql, int location, int len)
{
	const char *p = sql + location;
	const char *end = len > 0 ? p + len : p + strlen(p);

	for (;;)
	{
		while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
			p++;
		if (p + 1 < end && p[0] == '-' && p[1] == '-')
		{
			while (p < end && *p != '\n')
				p++;
			continue;
		}
		break;
	}
	return pnstrdup(p, end - p);
}

/* SET statements in force, by name, in the order they came. */
typedef struct Setting
{
	char	   *name;
	char	   *text;
} Setting;

static char *
setting_name(Node *stmt)
{
	if (IsA(stmt, VariableSetStmt))
	{
		VariableSetStmt *vs = (VariableSetStmt *) stmt;

		return vs->name ? vs->name : "";
	}
	if (IsA(stmt, SelectStmt))
	{
		SelectStmt *sel = (SelectStmt *) stmt;
		ResTarget  *rt;
		FuncCall   *fc;

		if (list_length(sel->targetList) != 1 || sel->fromClause != NIL)
			return NULL;
		rt = linitial(sel->targetList);
		if (!IsA(rt->val, FuncCall))
			return NULL;
		fc = (FuncCall *) rt->val;
		if (strcmp(strVal(llast(fc->funcname)), "set_config") != 0 ||
			list_length(fc->args) != 3 || !IsA(linitial(fc->args), A_Const))
			return NULL;
		return psprintf("set_config %s",
						strVal(&((A_Const *) linitial(fc->args))->val));
	}
	return NULL;
}

static char *
prelude_text(List *settings)
{
	StringInfoData buf;
	ListCell   *lc;

	if (settings == NIL)
		return NULL;
	initStringInfo(&buf);
	foreach(lc, settings)
		appendStringInfo(&buf, "%s;\n", ((Setting *) lfirst(lc))->text);
	return buf.data;
}

static SourceRel *
find_rel(List *rels, const char *nspname, const char *relname)
{
	if (nspname == NULL || relname == NULL)
		return NULL;
	return ingest_find_source_rel(rels, nspname, relname);
}

static bool
extension_excluded(SplitContext *ctx, const char *name)
{
	ListCell   *lc;

	if (strcmp(name, "pg_ingest") == 0)
		return true;
	foreach(lc, ctx->exclude_extensions)
		if (strcmp(lfirst(lc), name) == 0)
			return true;
	return false;
}

static SchemaItem *
new_item(int stage, const char *kind, RangeVar *rel, List *rels,
		 char *prelude, char *statement)
{
	SchemaItem *it = palloc0(sizeof(SchemaItem));
	SourceRel  *r;

	it->stage = stage;
	it->kind = kind;
	if (rel)
	{
		it->nspname = rel->schemaname ? pstrdup(rel->schemaname) : NULL;
		it->relname = pstrdup(rel->relname);
	}
	r = find_rel(rels, it->nspname, it->relname);
	it->cost = r ? r->bytes_table : 0;
	it->prelude = prelude;
	it->statement = statement;
	return it;
}

/*
 * Rewrite ADD CONSTRAINT ... PRIMARY KEY / UNIQUE (cols) of a plain table
 * as CREATE UNIQUE INDEX (stage 1, in parallel with the table's other
 * indexes) plus ADD CONSTRAINT ... USING INDEX (stage 2, instant).  Only
 * the plain forms: no INCLUDE, WITH, NULLS NOT DISTINCT or DEFERRABLE.
 */
static bool
split_key_constraint(AlterTableStmt *at, Constraint *c, List *rels,
					 char *prelude, List **items)
{
	StringInfoData idx;
	StringInfoData con;
	ListCell   *lc;
	char	   *table;
	bool		first = true;
	SourceRel  *r;

	if (c->conname == NULL || c->keys == NIL || c->including != NIL ||
		c->options != NIL || c->nulls_not_distinct || c->deferrable ||
		c->indexname != NULL || at->relation->schemaname == NULL)
		return false;

	/*
	 * A small table's key is built in the one statement of the dump: two
	 * items would cost two claims and two transactions for a build of a few
	 * milliseconds, and nothing else needs to run beside it.
	 */
	r = find_rel(rels, at->relation->schemaname, at->relation->relname);
	if (r == NULL || r->bytes_table < SPLIT_KEY_MIN_BYTES)
		return false;

	table = psprintf("%s.%s", quote_identifier(at->relation->schemaname),
					 quote_identifier(at->relation->relname));
	initStringInfo(&idx);
	appendStringInfo(&idx, "CREATE UNIQUE INDEX %s ON %s USING btree (",
					 quote_identifier(c->conname), table);
	foreach(lc, c->keys)
	{
		appendStringInfo(&idx, "%s%s", first ? "" : ", ",
						 quote_identifier(strVal(lfirst(lc))));
		first = false;
	}
	appendStringInfoChar(&idx, ')');
	if (c->indexspace)
		appendStringInfo(&idx, " TABLESPACE %s", quote_identifier(c->indexspace));

	initStringInfo(&con);
	appendStringInfo(&con, "ALTER TABLE ONLY %s ADD CONSTRAINT %s %s USING INDEX %s",
					 table, quote_identifier(c->conname),
					 c->contype == CONSTR_PRIMARY ? "PRIMARY KEY" : "UNIQUE",
					 quote_identifier(c->conname));

	*items = lappend(*items, new_item(STAGE_INDEX,
									  c->contype == CONSTR_PRIMARY ? "primary key" : "unique",
									  at->relation, rels, prelude, idx.data));
	*items = lappend(*items, new_item(STAGE_CONSTRAINT, "constraint",
									  at->relation, rels, prelude, con.data));
	return true;
}

/* Classify one post-data statement; append its item(s). */
static void
classify_post_data(Node *stmt, char *text, char *prelude, List *rels,
				   List **items)
{
	if (IsA(stmt, IndexStmt))
	{
		IndexStmt  *is = (IndexStmt *) stmt;

		*items = lappend(*items, new_item(STAGE_INDEX, "index", is->relation,
										  rels, prelude, text));
		return;
	}
	if (IsA(stmt, AlterTableStmt))
	{
		AlterTableStmt *at = (AlterTableStmt *) stmt;
		AlterTableCmd *cmd = list_length(at->cmds) == 1 ?
			(AlterTableCmd *) linitial(at->cmds) : NULL;

		if (cmd && at->objtype == OBJECT_INDEX && cmd->subtype == AT_AttachPartition)
		{
			*items = lappend(*items, new_item(STAGE_ATTACH, "attach partition",
											  NULL, rels, prelude, text));
			return;
		}
		if (cmd && at->objtype == OBJECT_TABLE && cmd->subtype == AT_AddConstraint &&
			IsA(cmd->def, Constraint))
		{
			Constraint *c = (Constraint *) cmd->def;
			SourceRel  *r = find_rel(rels, at->relation->schemaname,
									 at->relation->relname);
			bool		partitioned = r && r->relkind == 'p';

			switch (c->contype)
			{
				case CONSTR_PRIMARY:
				case CONSTR_UNIQUE:
					if (partitioned)
						*items = lappend(*items,
										 new_item(STAGE_CONSTRAINT,
												  c->contype == CONSTR_PRIMARY ? "primary key" : "unique",
												  at->relation, rels, prelude, text));
					else if (!split_key_constraint(at, c, rels, prelude, items))
						*items = lappend(*items,
										 new_item(STAGE_INDEX,
												  c->contype == CONSTR_PRIMARY ? "primary key" : "unique",
												  at->relation, rels, prelude, text));
					return;
				case CONSTR_EXCLUSION:
					*items = lappend(*items, new_item(partitioned ? STAGE_CONSTRAINT : STAGE_INDEX,
													  "exclusion", at->relation, rels,
													  prelude, text));
					return;
				case CONSTR_FOREIGN:
					*items = lappend(*items, new_item(STAGE_FOREIGN_KEY, "foreign key",
													  at->relation, rels, prelude, text));
					return;
				case CONSTR_CHECK:
					*items = lappend(*items, new_item(STAGE_FOREIGN_KEY, "check",
													  at->relation, rels, prelude, text));
					return;
				default:
					break;
			}
		}
	}
	*items = lappend(*items, new_item(STAGE_LAST, GetCommandTagName(CreateCommandTag(stmt)),
									  NULL, rels, prelude, text));
}

/*
 * ingest_split_dump
 *		Split a pg_dump section into schema items.
 *
 * Pre-data statements keep their order (stage 0); post-data statements are
 * classified.  CREATE EXTENSION and COMMENT ON EXTENSION of excluded
 * extensions (and of pg_ingest itself) are left out, with an event.
 */
List *
ingest_split_dump(const char *dump, bool post_data, SplitContext *ctx)
{
	char	   *sql = strip_meta_commands(dump);
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	List	   *settings = NIL;
	char	   *prelude = NULL;
	List	   *items = NIL;
	ListCell   *lc;
	DumpEntry	entry;

	memset(&entry, 0, sizeof(entry));
	foreach(lc, raw)
	{
		RawStmt    *rs = lfirst_node(RawStmt, lc);
		Node	   *stmt = rs->stmt;
		char	   *text = statement_text(sql, rs->stmt_location, rs->stmt_len);
		char	   *name = setting_name(stmt);
		LeftOutDep *dep;

		/* the pg_dump entry this statement belongs to (depend.c) */
		ingest_dump_entry_update(&entry, sql + rs->stmt_location, rs->stmt_len);

		if (name != NULL)
		{
			ListCell   *lc2;
			Setting    *s = NULL;

			foreach(lc2, settings)
				if (strcmp(((Setting *) lfirst(lc2))->name, name) == 0)
					s = lfirst(lc2);
			if (s == NULL)
			{
				s = palloc(sizeof(Setting));
				s->name = name;
				settings = lappend(settings, s);
			}
			s->text = text;
			prelude = prelude_text(settings);
			continue;
		}

		/* an object that depends on a relation the filters leave out */
		dep = ingest_left_out_match(ctx->left_out, &entry);
		if (dep != NULL)
		{
			ingest_left_out_skip(ctx->migration_id, dep, text);
			continue;
		}

		if ((IsA(stmt, CreateExtensionStmt) &&
			 extension_excluded(ctx, ((CreateExtensionStmt *) stmt)->extname)) ||
			(IsA(stmt, CommentStmt) &&
			 ((CommentStmt *) stmt)->objtype == OBJECT_EXTENSION &&
			 extension_excluded(ctx, strVal(((CommentStmt *) stmt)->object))))
		{
			ingest_event(ctx->migration_id, "INFO", "schema", NULL,
						 "statement left out: the extension is excluded",
						 text);
			continue;
		}

		/* the event triggers of pg_ingest's migrations (ddl.c) */
		if (ingest_ddl_is_own_statement(stmt))
			continue;

		if (IsA(stmt, CreateTableAsStmt) &&
			((CreateTableAsStmt *) stmt)->objtype == OBJECT_MATVIEW)
		{
			RangeVar   *rv = ((CreateTableAsStmt *) stmt)->into->rel;

			ctx->matviews = lappend(ctx->matviews,
									rv->schemaname ?
									ingest_qualified(rv->schemaname, rv->relname) :
									pstrdup(quote_identifier(rv->relname)));
		}

		/*
		 * pg_dump writes CREATE SCHEMA public when asked for that schema by
		 * name (include_schemas), though every database has it: create it
		 * only if this one lacks it.
		 */
		if (IsA(stmt, CreateSchemaStmt) &&
			((CreateSchemaStmt *) stmt)->schemaname != NULL &&
			strcmp(((CreateSchemaStmt *) stmt)->schemaname, "public") == 0 &&
			((CreateSchemaStmt *) stmt)->schemaElts == NIL &&
			((CreateSchemaStmt *) stmt)->authrole == NULL)
			text = pstrdup("CREATE SCHEMA IF NOT EXISTS public");

		if (post_data)
			classify_post_data(stmt, text, prelude, ctx->rels, &items);
		else
			items = lappend(items, new_item(STAGE_PRE_DATA,
											GetCommandTagName(CreateCommandTag(stmt)),
											NULL, ctx->rels, prelude, text));
	}
	return items;
}

/* A one-dimensional array of n values of type typid. */
static Datum
item_array(Datum *values, bool *nulls, int n, Oid typid)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(typid, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, typid,
											  typlen, typbyval, typalign));
}

/*
 * ingest_store_schema_items
 *		Insert items after those the migration has, keeping their order.
 *
 * The INSERT is planned once and takes STORE_ITEMS_PER_INSERT items at a
 * time, as arrays of their columns (a statement per item cost more than
 * the rows: 20,000 items took 1.6 s).  After a large batch the
 * table is analyzed, in this transaction (ANALYZE counts the rows it
 * inserted): the claim query's plan (claim_items) must know that there
 * are thousands of pending items, or it scans them all for each claim.
 */
void
ingest_store_schema_items(int32 migration_id, List *items)
{
	Oid			types[9] = {INT4OID, INT4OID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		vals[9];
	int			n = list_length(items);
	int			done;
	int32		next;
	SPITupleTable *tab;
	SPIPlanPtr	plan;

	ingest_catalog_begin();
	vals[0] = Int32GetDatum(migration_id);
	tab = ingest_catalog_query("SELECT COALESCE(max(id), 0) FROM ingest.schema_item"
							   " WHERE migration_id = $1", 1, types, vals, NULL);
	next = (int32) ingest_getint(tab, 0, 1, 0) + 1;
	plan = SPI_prepare("INSERT INTO ingest.schema_item"
					   " (migration_id, id, stage, kind, nspname, relname, cost, prelude, statement)"
					   " SELECT $1, $2 + u.ord::int4 - 1, u.stage, u.kind, u.nspname, u.relname,"
					   "  u.cost, u.prelude, u.statement"
					   " FROM unnest($3, $4, $5, $6, $7, $8, $9) WITH ORDINALITY"
					   "  AS u(stage, kind, nspname, relname, cost, prelude, statement, ord)",
					   9, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare the insertion of schema items: %s",
			 SPI_result_code_string(SPI_result));
	/* STORE_ITEMS_PER_INSERT rows per statement, as arrays of their columns */
	for (done = 0; done < n; done += STORE_ITEMS_PER_INSERT)
	{
		int			count = Min(STORE_ITEMS_PER_INSERT, n - done);
		Datum	   *cols[7];
		bool	   *isnull[7];
		int			c;
		int			i;

		for (c = 0; c < 7; c++)
		{
			cols[c] = palloc(sizeof(Datum) * count);
			isnull[c] = palloc0(sizeof(bool) * count);
		}
		for (i = 0; i < count; i++)
		{
			SchemaItem *it = list_nth(items, done + i);

			cols[0][i] = Int32GetDatum(it->stage);
			cols[1][i] = CStringGetTextDatum(it->kind);
			isnull[2][i] = it->nspname == NULL;
			if (it->nspname)
				cols[2][i] = CStringGetTextDatum(it->nspname);
			isnull[3][i] = it->relname == NULL;
			if (it->relname)
				cols[3][i] = CStringGetTextDatum(it->relname);
			/* stages 0 and 5 run in dump order, whatever their table's size */
			cols[4][i] = Int64GetDatum(it->stage == STAGE_PRE_DATA ||
									   it->stage == STAGE_LAST ? 0 : it->cost);
			isnull[5][i] = it->prelude == NULL;
			if (it->prelude)
				cols[5][i] = CStringGetTextDatum(it->prelude);
			cols[6][i] = CStringGetTextDatum(it->statement);
		}
		vals[0] = Int32GetDatum(migration_id);
		vals[1] = Int32GetDatum(next + done);
		vals[2] = item_array(cols[0], isnull[0], count, INT4OID);
		vals[3] = item_array(cols[1], isnull[1], count, TEXTOID);
		vals[4] = item_array(cols[2], isnull[2], count, TEXTOID);
		vals[5] = item_array(cols[3], isnull[3], count, TEXTOID);
		vals[6] = item_array(cols[4], isnull[4], count, INT8OID);
		vals[7] = item_array(cols[5], isnull[5], count, TEXTOID);
		vals[8] = item_array(cols[6], isnull[6], count, TEXTOID);
		if (SPI_execute_plan(plan, vals, NULL, false, 0) != SPI_OK_INSERT ||
			SPI_processed != (uint64) count)
			elog(ERROR, "could not insert schema items %d to %d", next + done,
				 next + done + count - 1);
		for (c = 0; c < 7; c++)
		{
			pfree(cols[c]);
			pfree(isnull[c]);
		}
		for (c = 2; c < 9; c++)
			pfree(DatumGetPointer(vals[c]));
	}
	SPI_freeplan(plan);
	if (n >= ANALYZE_AFTER_ITEMS)
		ingest_catalog_exec("ANALYZE ingest.schema_item", 0, NULL, NULL, NULL);
	ingest_catalog_end();
}

/*
 * ingest_count_pending
 *		Whether items of these stages are not yet done, failed or skipped:
 *		1 if some are, else 0 (a count would read them all, for each
 *		question).
 */
int64
ingest_count_pending(int32 migration_id, int stage_lo, int stage_hi)
{
	Oid			types[3] = {INT4OID, INT4OID, INT4OID};
	Datum		vals[3] = {Int32GetDatum(migration_id), Int32GetDatum(stage_lo),
	Int32GetDatum(stage_hi)};
	int64		n;

	ingest_catalog_begin();
	(void) ingest_catalog_query("SELECT 1 FROM ingest.schema_item"
								" WHERE migration_id = $1 AND stage BETWEEN $2 AND $3"
								" AND state = 'pending' LIMIT 1", 3, types, vals, NULL);
	n = SPI_processed;
	ingest_catalog_end();
	return n;
}

/*
 * ingest_sleep_ms
 *		Interruptible sleep; false if the latch woke us early.
 */
bool
ingest_sleep_ms(long ms)
{
	int			rc;

	rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
				   ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	return (rc & WL_TIMEOUT) != 0;
}

typedef struct ClaimedItem
{
	int32		id;
	int			stage;
	char	   *kind;
	char	   *object;
	char	   *prelude;
	char	   *statement;
	int			attempts;
	int64		cost;			/* bytes of its table; 0 if none or partitioned */
} ClaimedItem;

/*
 * Claim up to "limit" ready items of the stages, in claiming order; see the
 * file header for what "ready" means.  Caller is in a transaction, which
 * holds the claims.
 *
 * The scan follows index schema_item_pending in the ORDER BY's order and
 * stops at the first ready rows: what makes a row ready is tested per row
 * only for the conditions of its own table (probes of the partial indexes
 * copy_item_unfinished and schema_item_pending_table), and once per query
 * for the conditions of the whole migration (stages 3 to 5: nothing of an
 * earlier post-data stage pending, every table copied).
 */
static List *
claim_items(int32 migration_id, int stage_lo, int stage_hi, int limit,
			MemoryContext cxt)
{
	Oid			types[4] = {INT4OID, INT4OID, INT4OID, INT4OID};
	Datum		vals[4] = {Int32GetDatum(migration_id), Int32GetDatum(stage_lo),
	Int32GetDatum(stage_hi), Int32GetDatum(limit)};
	static SPIPlanPtr plan = NULL;
	SPITupleTable *tab;
	List	   *items = NIL;
	uint64		i;

	ingest_catalog_begin();
	tab = ingest_catalog_query_kept(&plan,
							   "SELECT s.id, s.stage, s.kind,"
							   "  CASE WHEN s.relname IS NOT NULL"
							   "   THEN pg_catalog.format('%I.%I', s.nspname, s.relname) END,"
							   "  s.prelude, s.statement, s.attempts, s.cost"
							   " FROM ingest.schema_item s"
							   " WHERE s.migration_id = $1 AND s.state = 'pending'"
							   "  AND s.stage BETWEEN $2 AND $3"
							   /* OFFSET 0: a probe per row, not a hash of every pending row */
							   "  AND (s.stage NOT IN (1, 2) OR NOT EXISTS ("
							   "   SELECT 1 FROM ingest.copy_item c WHERE c.migration_id = s.migration_id"
							   "   AND c.nspname = s.nspname AND c.relname = s.relname"
							   "   AND c.state NOT IN ('done', 'skipped') OFFSET 0))"
							   "  AND (s.stage <> 2 OR NOT EXISTS ("
							   "   SELECT 1 FROM ingest.schema_item o WHERE o.migration_id = s.migration_id"
							   "   AND o.nspname = s.nspname AND o.relname = s.relname AND o.stage = 1"
							   "   AND o.state = 'pending' OFFSET 0))"
							   /* ANALYZE would make ADD CONSTRAINT wait for its lock */
							   "  AND (s.kind <> 'analyze' OR NOT EXISTS ("
							   "   SELECT 1 FROM ingest.schema_item o WHERE o.migration_id = s.migration_id"
							   "   AND o.nspname = s.nspname AND o.relname = s.relname"
							   "   AND o.stage <= s.stage AND o.kind <> 'analyze' AND o.state = 'pending'"
							   "   OFFSET 0))"
							   /* computed once (uncorrelated): no copy unfinished... */
							   "  AND (s.stage < 3 OR (NOT EXISTS ("
							   "   SELECT 1 FROM ingest.copy_item c WHERE c.migration_id = $1"
							   "   AND c.state NOT IN ('done', 'skipped'))"
							   /* ...and nothing of stages 1 to stage - 1 pending */
							   "   AND s.stage <= COALESCE(("
							   "    SELECT o.stage FROM ingest.schema_item o WHERE o.migration_id = $1"
							   "    AND o.stage BETWEEN 1 AND 4 AND o.state = 'pending'"
							   "    ORDER BY o.stage LIMIT 1), 5)))"
							   /* a stage's ANALYZEs after its other items (they wait for them) */
							   " ORDER BY s.stage, s.attempts, s.kind = 'analyze', s.cost DESC, s.id"
							   " LIMIT $4 FOR UPDATE OF s SKIP LOCKED",
							   4, types, vals, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		ClaimedItem *it = palloc0(sizeof(ClaimedItem));

		it->id = (int32) ingest_getint(tab, i, 1, 0);
		it->stage = (int) ingest_getint(tab, i, 2, 0);
		it->kind = ingest_getstr(tab, i, 3);
		it->object = ingest_getstr(tab, i, 4);
		it->prelude = ingest_getstr(tab, i, 5);
		it->statement = ingest_getstr(tab, i, 6);
		it->attempts = (int) ingest_getint(tab, i, 7, 0);
		it->cost = ingest_getint(tab, i, 8, 0);
		items = lappend(items, it);
		MemoryContextSwitchTo(old);
	}
	ingest_catalog_end();
	return items;
}

/*
 * Record an item's state.  Called once per item: the statement is planned
 * once per process and kept.
 */
static void
mark_item(int32 migration_id, int32 id, const char *state, const char *error,
		  bool count_attempt)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[5] = {INT4OID, INT4OID, TEXTOID, TEXTOID, BOOLOID};
	Datum		vals[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	vals[0] = Int32GetDatum(migration_id);
	vals[1] = Int32GetDatum(id);
	vals[2] = CStringGetTextDatum(state);
	if (error)
		vals[3] = CStringGetTextDatum(error);
	else
		nulls[3] = 'n';
	vals[4] = BoolGetDatum(count_attempt);
	ingest_catalog_begin();
	(void) ingest_catalog_query_kept(&plan,
									 "UPDATE ingest.schema_item SET state = $3, error = $4,"
									 " attempts = attempts + CASE WHEN $5 THEN 1 ELSE 0 END,"
									 " started_at = COALESCE(started_at, now()),"
									 " finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE clock_timestamp() END"
									 " WHERE migration_id = $1 AND id = $2",
									 5, types, vals, nulls);
	ingest_catalog_end();
}

/* A transient error: worth running the statement again. */
static bool
transient_error(int sqlerrcode)
{
	char	   *state = unpack_sql_state(sqlerrcode);

	return strncmp(state, "40", 2) == 0 ||	/* deadlock, serialization */
		strncmp(state, "53", 2) == 0 ||	/* out of resources */
		strcmp(state, "55P03") == 0;	/* lock not available */
}

/* A statement about roles and rights that names a role missing here. */
bool
ingest_missing_role_statement(const char *statement, int sqlerrcode)
{
	List	   *raw;
	Node	   *stmt;
	bool		result = false;

	if (sqlerrcode != ERRCODE_UNDEFINED_OBJECT)
		return false;
	raw = raw_parser(statement, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		return false;
	stmt = linitial_node(RawStmt, raw)->stmt;
	if (IsA(stmt, AlterOwnerStmt) || IsA(stmt, GrantStmt) ||
		IsA(stmt, GrantRoleStmt) || IsA(stmt, AlterDefaultPrivilegesStmt))
		result = true;
	else if (IsA(stmt, AlterTableStmt))
	{
		ListCell   *lc;

		result = true;
		foreach(lc, ((AlterTableStmt *) stmt)->cmds)
			if (((AlterTableCmd *) lfirst(lc))->subtype != AT_ChangeOwner)
				result = false;
	}
	return result;
}

/*
 * Record a failed item in the current transaction: retried later if the
 * error is transient and attempts remain, else failed (or, for a missing
 * role, failed as a warning).
 */
static void
record_failure(IngestMigration *m, ClaimedItem *it, ErrorData *edata)
{
	bool		retry = transient_error(edata->sqlerrcode) &&
		it->attempts + 1 < ingest_max_retries;
	bool		role = !retry && ingest_missing_role_statement(it->statement, edata->sqlerrcode);
	char	   *text = it->statement;

	if (strlen(text) > STATEMENT_IN_EVENT_MAX)
		text = psprintf("%.*s...",
						pg_mbcliplen(text, strlen(text), STATEMENT_IN_EVENT_MAX),
						text);

	mark_item(m->id, it->id, retry ? "pending" : "failed", edata->message, true);
	if (retry)
		ingest_event(m->id, "WARNING", "retry", it->object,
					 psprintf("%s failed (attempt %d of %d), will run again: %s",
							  it->kind, it->attempts + 1, ingest_max_retries,
							  edata->message),
					 text);
	else
		ingest_event(m->id, role ? "WARNING" : "ERROR", "schema", it->object,
					 psprintf("%s failed: %s", it->kind, edata->message),
					 text);
}

/* Run the item's SET statements and its statement. */
static void
run_statement(IngestMigration *m, ClaimedItem *it)
{
	if (it->stage == STAGE_INDEX)
		ingest_index_item_settings(m, it->id, it->cost);	/* index.c */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (it->prelude && SPI_execute(it->prelude, false, 0) < 0)
		elog(ERROR, "could not run the SET statements of schema item %d", it->id);
	if (SPI_execute(it->statement, false, 0) < 0)
		elog(ERROR, "could not run schema item %d", it->id);
	SPI_finish();
}

static void
item_begin(ClaimedItem *it)
{
	if (MyIngestWorker)
		ingest_worker_set_item(it->id, GetCurrentTimestamp());
	pgstat_report_activity(STATE_RUNNING, it->statement);
}

static void
item_end(void)
{
	pgstat_report_activity(STATE_IDLE, NULL);
	if (MyIngestWorker)
		ingest_worker_set_item(0, 0);
}

/*
 * Run one claimed item in the transaction that claimed it, and end that
 * transaction: committed with the item marked done, or aborted and the
 * failure recorded in a fresh one.  True if it ran.
 */
static bool
run_alone(IngestMigration *m, ClaimedItem *it, MemoryContext cxt)
{
	MemoryContext old = CurrentMemoryContext;
	volatile bool ok = false;

	item_begin(it);
	PG_TRY();
	{
		run_statement(m, it);
		mark_item(m->id, it->id, "done", NULL, true);
		ingest_xact_commit();
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		ingest_xact_abort();
		/* recorded as an event, and never silently: the log has it */
		ingest_log_recovered_error(edata);
		MemoryContextSwitchTo(old);
		ingest_xact_start();
		record_failure(m, it, edata);
		ingest_xact_commit();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	item_end();
	return ok;
}

/*
 * Run claimed items of stage 0 or 5 in the transaction that claimed them,
 * in their order, each in a subtransaction of its own: an item that fails
 * is rolled back alone and its failure recorded in the transaction, as
 * run_alone would.  Stops after BATCH_MS; the caller commits, which marks
 * them all done at once.  Returns how many ran; *solo is set when an item
 * refused to run in a subtransaction (it stays pending, to run alone).
 */
static int
run_batch(IngestMigration *m, List *claimed, MemoryContext cxt, bool *solo)
{
	MemoryContext xact_cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	TimestampTz start = GetCurrentTimestamp();
	volatile int ran = 0;
	ListCell   *lc;

	*solo = false;
	foreach(lc, claimed)
	{
		ClaimedItem *it = lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		item_begin(it);
		BeginInternalSubTransaction(NULL);
		PG_TRY();
		{
			run_statement(m, it);
			mark_item(m->id, it->id, "done", NULL, true);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(xact_cxt);
			CurrentResourceOwner = owner;
			ran++;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(xact_cxt);
			CurrentResourceOwner = owner;
			if (edata->sqlerrcode == ERRCODE_ACTIVE_SQL_TRANSACTION)
				*solo = true;	/* not in a subtransaction: run it alone */
			else
			{
				ingest_log_recovered_error(edata);
				record_failure(m, it, edata);
			}
		}
		PG_END_TRY();
		item_end();
		if (*solo ||
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), BATCH_MS))
			break;
	}
	return ran;
}

/*
 * ingest_run_schema_items
 *		Run ready items of stages [lo, hi] until none is ready.
 *
 * Items run with the current user's rights (the migration's owner), each
 * marked done in the transaction that ran it.  Stages 1 to 4 (the index
 * workers): one item a transaction, and the other index workers are woken
 * after each, since it may have made items ready.  Stages 0 and 5 (the
 * coordinator, alone, in order): a batch of items a transaction, one
 * subtransaction each (run_batch).  Returns how many ran; *pending_left
 * says whether items of those stages are still to do.
 */
int
ingest_run_schema_items(IngestMigration *m, int stage_lo, int stage_hi,
						bool *pending_left)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "pg_ingest schema item",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = CurrentMemoryContext;
	bool		batch = stage_hi == STAGE_PRE_DATA || stage_lo == STAGE_LAST;
	bool		solo = false;
	int			ran = 0;

	for (;;)
	{
		List	   *claimed;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(cxt);
		ingest_xact_start();
		claimed = claim_items(m->id, stage_lo, stage_hi,
							  batch && !solo ? BATCH_ITEMS : 1, cxt);
		if (claimed == NIL)
		{
			ingest_xact_commit();
			break;
		}
		if (!batch || solo)
		{
			solo = false;
			if (run_alone(m, linitial(claimed), cxt))
				ran++;
			if (!batch && MyIngestWorker)
				ingest_wake_workers(MyIngestWorker->migration, INGEST_WORKER_INDEX);
		}
		else
		{
			ran += run_batch(m, claimed, cxt, &solo);
			ingest_xact_commit();
		}
		MemoryContextSwitchTo(old);
	}

	MemoryContextDelete(cxt);
	if (pending_left)
	{
		ingest_xact_start();
		*pending_left = ingest_count_pending(m->id, stage_lo, stage_hi) > 0;
		ingest_xact_commit();
	}
	return ran;
}
