/*-------------------------------------------------------------------------
 *
 * conninfo.c
 *	  A migration's source connection string: validated, shown masked,
 *	  written for client programs, and its password scrubbed from every
 *	  message.
 *
 * A non-superuser may not make the server connect with the server's own
 * credentials: the connection string must carry a password (checked here)
 * and the server must have used it (checked by conn.c when it connects):
 * the rule of dblink and postgres_fdw.  The password is kept aside
 * (IngestConnInfo.password) only to be scrubbed: a string is shown masked
 * (ingest_conninfo_mask), a client program gets it through a password
 * file (dump.c), never on its command line (ingest_conninfo_for_tool).
 *
 * State: none.
 *
 * Locking: none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "lib/stringinfo.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "utils/builtins.h"

#include "conn.h"
#include "pg_ingest.h"

#define MASK "********"

static bool is_libpq_keyword(const char *word, int len);
static char *scrub_parse_error(const char *message);
static void append_conninfo_value(StringInfo buf, const char *value);

/*
 * ingest_conninfo_parse
 *		Validate a source connection string.
 *
 * Returns the parsed form, with the password kept aside for scrubbing.  On a
 * bad string: if errmsg_out is NULL, ereport(ERROR); else set *errmsg_out to
 * a message that is safe to show (and *hint_out to what to do about it)
 * and return NULL.  require_password is the
 * dblink rule, to be set when the role the connection acts for is not a
 * superuser.
 */
IngestConnInfo *
ingest_conninfo_parse(const char *conninfo, bool require_password,
					  char **errmsg_out, char **hint_out)
{
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	char	   *perr = NULL;
	char	   *problem = NULL;
	char	   *detail = NULL;
	char	   *hint = NULL;
	int			code = ERRCODE_INVALID_PARAMETER_VALUE;
	bool		from_libpq = false;
	IngestConnInfo *info;

	if (conninfo == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source connection string must not be null")));

	if (conninfo[strspn(conninfo, " \t\r\n")] == '\0')
	{
		problem = pstrdup("source connection string is empty");
		hint = pstrdup("Give host, port, user and dbname of the source, as in \"host=db1 port=5432 user=migrator dbname=app\".");
		goto fail;
	}

	opts = PQconninfoParse(conninfo, &perr);
	if (opts == NULL)
	{
		problem = pstrdup("invalid source connection string");
		detail = perr ? scrub_parse_error(pchomp(perr)) : pstrdup("out of memory");
		from_libpq = true;
		hint = pstrdup("Write libpq keyword=value pairs or a postgresql:// URI.");
		if (perr)
			PQfreemem(perr);
		goto fail;
	}

	info = palloc0(sizeof(IngestConnInfo));
	info->conninfo = pstrdup(conninfo);
	info->require_password = require_password;

	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL)
			continue;
		if (strcmp(opt->keyword, "password") == 0 && opt->val[0] != '\0')
			info->password = pstrdup(opt->val);
		else if (strcmp(opt->keyword, "replication") == 0)
		{
			problem = pstrdup("the \"replication\" option is not allowed in a source connection string");
			hint = pstrdup("Remove it: pg_ingest opens replication connections itself when it needs them.");
			break;
		}
		else if (require_password &&
				 !libpqsrv_is_valid_proxy_option(opt->keyword))
		{
			code = ERRCODE_INSUFFICIENT_PRIVILEGE;
			problem = psprintf("permission denied to set connection option \"%s\"",
							   opt->keyword);
			hint = pstrdup("Only superusers may use this connection option.");
			break;
		}
	}
	PQconninfoFree(opts);

	if (problem == NULL && require_password && info->password == NULL)
	{
		code = ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED;
		problem = pstrdup("password is required");
		detail = pstrdup("Non-superusers must provide a password in the source connection string.");
		hint = pstrdup("Add password=... to the connection string.");
	}
	if (problem == NULL)
	{
		info->display = ingest_conninfo_mask(conninfo);
		return info;
	}

fail:
	if (errmsg_out != NULL)
	{
		/*
		 * One line for the problem, with libpq's own words when there are
		 * some; any other detail goes in front of the hint.
		 */
		*errmsg_out = problem;
		if (from_libpq)
			*errmsg_out = psprintf("%s: %s", problem, detail);
		else if (detail)
			hint = hint ? psprintf("%s %s", detail, hint) : detail;
		if (hint_out)
			*hint_out = hint;
		return NULL;
	}
	ereport(ERROR,
			(errcode(code),
			 errmsg("%s", problem),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 errhidestmt(true)));
	return NULL;				/* keep compiler quiet */
}

/*
 * ingest_conninfo_mask
 *		The connection string in keyword=value form with the password
 *		replaced by asterisks; for views, events and messages.
 */
char *
ingest_conninfo_mask(const char *conninfo)
{
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	char	   *perr = NULL;
	StringInfoData buf;

	if (conninfo == NULL)
		return NULL;
	opts = PQconninfoParse(conninfo, &perr);
	if (opts == NULL)
	{
		if (perr)
			PQfreemem(perr);
		return pstrdup("(invalid connection string)");
	}

	initStringInfo(&buf);
	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL)
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, ' ');
		appendStringInfo(&buf, "%s=", opt->keyword);
		if (strcmp(opt->keyword, "password") == 0)
			appendStringInfoString(&buf, MASK);
		else
			append_conninfo_value(&buf, opt->val);
	}
	PQconninfoFree(opts);
	return buf.data;
}

/* Quote a value for a keyword=value connection string when it needs it. */
static void
append_conninfo_value(StringInfo buf, const char *value)
{
	const char *p;
	bool		quote = (*value == '\0');

	for (p = value; *p && !quote; p++)
		if (*p == ' ' || *p == '\'' || *p == '\\' || *p == '\t' || *p == '\n')
			quote = true;
	if (!quote)
	{
		appendStringInfoString(buf, value);
		return;
	}
	appendStringInfoChar(buf, '\'');
	for (p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

/*
 * ingest_scrub
 *		Copy of message with every occurrence of password masked.
 */
char *
ingest_scrub(const char *message, const char *password)
{
	StringInfoData buf;
	const char *p;
	size_t		plen;

	if (message == NULL)
		return NULL;
	if (password == NULL || (plen = strlen(password)) == 0)
		return pstrdup(message);

	initStringInfo(&buf);
	p = message;
	while (*p)
	{
		if (strncmp(p, password, plen) == 0)
		{
			appendStringInfoString(&buf, MASK);
			p += plen;
		}
		else
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/*
 * libpq's parse errors quote pieces of the string ("missing "=" after
 * "xyz""), and a piece may be part of a password.  Keep quoted words that
 * are libpq keywords (a misspelt or unknown one is what the user needs to
 * see) and mask every other quoted piece.
 */
static char *
scrub_parse_error(const char *message)
{
	StringInfoData buf;
	const char *p = message;

	initStringInfo(&buf);
	while (*p)
	{
		const char *close;

		if (*p != '"' || (close = strchr(p + 1, '"')) == NULL)
		{
			appendStringInfoChar(&buf, *p++);
			continue;
		}
		if (close - p - 1 <= 1 || is_libpq_keyword(p + 1, close - p - 1))
			appendBinaryStringInfo(&buf, p, close - p + 1);
		else
			appendStringInfoString(&buf, "\"" MASK "\"");
		p = close + 1;
	}
	return buf.data;
}

static bool
is_libpq_keyword(const char *word, int len)
{
	PQconninfoOption *defs = PQconndefaults();
	PQconninfoOption *opt;
	bool		found = false;

	if (defs == NULL)
		return false;
	for (opt = defs; opt->keyword != NULL && !found; opt++)
		found = (strlen(opt->keyword) == len &&
				 strncmp(opt->keyword, word, len) == 0);
	PQconninfoFree(defs);
	return found;
}

/*
 * ingest_conninfo_for_tool
 *		The connection string for a client program (pg_dump): keyword=value,
 *		without the password (which goes through a password file), with
 *		pg_ingest's application_name and a connect timeout.
 */
char *
ingest_conninfo_for_tool(IngestConnInfo *info, const char *appname)
{
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	StringInfoData buf;
	bool		has_timeout = false;

	opts = PQconninfoParse(info->conninfo, NULL);
	if (opts == NULL)
		elog(ERROR, "could not parse a validated connection string");
	initStringInfo(&buf);
	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL ||
			strcmp(opt->keyword, "password") == 0 ||
			strcmp(opt->keyword, "application_name") == 0 ||
			strcmp(opt->keyword, "fallback_application_name") == 0 ||
			strcmp(opt->keyword, "client_encoding") == 0 ||
			strcmp(opt->keyword, "replication") == 0)
			continue;
		if (strcmp(opt->keyword, "connect_timeout") == 0)
			has_timeout = true;
		appendStringInfo(&buf, "%s=", opt->keyword);
		append_conninfo_value(&buf, opt->val);
		appendStringInfoChar(&buf, ' ');
	}
	PQconninfoFree(opts);
	if (!has_timeout)
		appendStringInfo(&buf, "connect_timeout=%d ", ingest_connect_timeout);
	appendStringInfoString(&buf, "application_name=");
	append_conninfo_value(&buf, appname);
	return buf.data;
}
