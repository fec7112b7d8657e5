/*-------------------------------------------------------------------------
 *
 * wal2json.c
 *	  Parse the messages of wal2json's format-version 2 with the server's
 *	  own JSON lexer (common/jsonapi.h).
 *
 * Format-version 2 sends one JSON object per message:
 *	{"action":"B","xid":..,"timestamp":"..","lsn":"..","nextlsn":".."}
 *	{"action":"I"|"U"|"D","xid":..,"timestamp":"..","lsn":"..","schema":"..",
 *	 "table":"..","columns":[{"name":"..","type":"..","value":..},...],
 *	 "identity":[...]}
 *	{"action":"T","schema":"..","table":"..",...}
 *	{"action":"C","xid":..,"timestamp":"..","lsn":"..","nextlsn":".."}
 *	{"action":"M","transactional":..,"prefix":"..","content":".."}
 * Values are the type's output text as JSON strings, except numbers (bare),
 * booleans and null; a column whose TOASTed value did not change is simply
 * absent from an UPDATE's columns.  Numbers keep their exact text: a
 * numeric never goes through a double.
 *
 * The parser builds a W2JChange in CurrentMemoryContext; callers reset that
 * context per message.
 *
 * Locking: none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"

#include "wal2json.h"

/* JSON callbacks return an error code from PostgreSQL 16 on. */
#if PG_VERSION_NUM >= 160000
#define CB_RETURN_TYPE JsonParseErrorType
#define CB_RETURN return JSON_SUCCESS
#else
#define CB_RETURN_TYPE void
#define CB_RETURN return
#endif

typedef struct ParseState
{
	W2JChange  *change;
	int			depth;			/* objects and arrays open */
	char	   *key;			/* field of the top object being read */
	char	   *elem_key;		/* field of a column object being read */
	W2JColumn	current;		/* column object being read */
	int			capacity;
	bool		in_columns;
	bool		in_identity;
	char	   *error;
} ParseState;

static XLogRecPtr
parse_lsn(const char *s)
{
	bool		have_error = false;
	XLogRecPtr	lsn = pg_lsn_in_internal(s, &have_error);

	return have_error ? InvalidXLogRecPtr : lsn;
}

static void
add_column(ParseState *ps)
{
	W2JChange  *c = ps->change;
	W2JColumn **arr = ps->in_columns ? &c->columns : &c->identity;
	int		   *n = ps->in_columns ? &c->ncolumns : &c->nidentity;

	if (*arr == NULL)
	{
		ps->capacity = 16;
		*arr = palloc(sizeof(W2JColumn) * ps->capacity);
	}
	else if (*n == ps->capacity)
	{
		ps->capacity *= 2;
		*arr = repalloc(*arr, sizeof(W2JColumn) * ps->capacity);
	}
	(*arr)[(*n)++] = ps->current;
}

static CB_RETURN_TYPE
on_object_start(void *state)
{
	ParseState *ps = state;

	ps->depth++;
	if (ps->depth == 3 && (ps->in_columns || ps->in_identity))
		memset(&ps->current, 0, sizeof(W2JColumn));
	CB_RETURN;
}

static CB_RETURN_TYPE
on_object_end(void *state)
{
	ParseState *ps = state;

	if (ps->depth == 3 && (ps->in_columns || ps->in_identity))
	{
		if (ps->current.name == NULL)
			ps->error = "a column without a name";
		else
			add_column(ps);
	}
	ps->depth--;
	CB_RETURN;
}

static CB_RETURN_TYPE
on_array_start(void *state)
{
	ParseState *ps = state;

	ps->depth++;
	if (ps->depth == 2 && ps->key)
	{
		ps->in_columns = strcmp(ps->key, "columns") == 0;
		ps->in_identity = strcmp(ps->key, "identity") == 0;
	}
	CB_RETURN;
}

static CB_RETURN_TYPE
on_array_end(void *state)
{
	ParseState *ps = state;

	if (ps->depth == 2)
		ps->in_columns = ps->in_identity = false;
	ps->depth--;
	CB_RETURN;
}

static CB_RETURN_TYPE
on_field_start(void *state, char *fname, bool isnull)
{
	ParseState *ps = state;

	if (ps->depth == 1)
		ps->key = fname;
	else if (ps->depth == 3)
		ps->elem_key = fname;
	CB_RETURN;
}

static CB_RETURN_TYPE
on_scalar(void *state, char *token, JsonTokenType type)
{
	ParseState *ps = state;
	W2JChange  *c = ps->change;
	char	   *value = (type == JSON_TOKEN_NULL) ? NULL : token;

	if (ps->depth == 3 && (ps->in_columns || ps->in_identity))
	{
		if (ps->elem_key == NULL)
			CB_RETURN;
		if (strcmp(ps->elem_key, "name") == 0)
			ps->current.name = value;
		else if (strcmp(ps->elem_key, "value") == 0)
		{
			ps->current.value = value;
			ps->current.is_number = (type == JSON_TOKEN_NUMBER);
		}
		CB_RETURN;
	}
	if (ps->depth != 1 || ps->key == NULL)
		CB_RETURN;

	if (strcmp(ps->key, "action") == 0 && value && value[0] && !value[1])
		c->action = value[0];
	else if (strcmp(ps->key, "xid") == 0 && value)
		c->xid = (TransactionId) strtoul(value, NULL, 10);
	else if (strcmp(ps->key, "timestamp") == 0)
		c->timestamp = value;
	else if (strcmp(ps->key, "lsn") == 0 && value)
		c->lsn = parse_lsn(value);
	else if (strcmp(ps->key, "nextlsn") == 0 && value)
		c->nextlsn = parse_lsn(value);
	else if (strcmp(ps->key, "schema") == 0)
		c->schema = value;
	else if (strcmp(ps->key, "table") == 0)
		c->table = value;
	else if (strcmp(ps->key, "prefix") == 0)
		c->prefix = value;
	else if (strcmp(ps->key, "content") == 0)
		c->content = value;
	CB_RETURN;
}

/*
 * ingest_w2j_parse
 *		Parse one message.  Returns false with *error set on malformed
 *		input (the JSON lexer's words, or what is missing).
 */
bool
ingest_w2j_parse(char *json, int len, W2JChange *change, char **error)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	ParseState	ps;
	JsonParseErrorType rc;

	memset(change, 0, sizeof(W2JChange));
	memset(&ps, 0, sizeof(ps));
	ps.change = change;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &ps;
	sem.object_start = on_object_start;
	sem.object_end = on_object_end;
	sem.array_start = on_array_start;
	sem.array_end = on_array_end;
	sem.object_field_start = on_field_start;
	sem.scalar = on_scalar;

#if PG_VERSION_NUM >= 170000
	lex = makeJsonLexContextCstringLen(NULL, json, len, GetDatabaseEncoding(), true);
#else
	lex = makeJsonLexContextCstringLen(json, len, GetDatabaseEncoding(), true);
#endif
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
	{
		*error = json_errdetail(rc, lex);
		return false;
	}
	if (ps.error)
	{
		*error = pstrdup(ps.error);
		return false;
	}
	if (change->action == '\0')
	{
		*error = pstrdup("a message without an action");
		return false;
	}
	if (strchr("IUDT", change->action) && (change->schema == NULL || change->table == NULL))
	{
		*error = pstrdup("a change without its schema and table");
		return false;
	}
	return true;
}

/*
 * ingest_w2j_describe
 *		The change as a short text for messages: action, table, LSN and
 *		values, each value cut at max_value_len characters.
 */
char *
ingest_w2j_describe(W2JChange *c, int max_value_len)
{
	StringInfoData buf;
	int			pass;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s %s.%s at %X/%X",
					 c->action == 'I' ? "INSERT" : c->action == 'U' ? "UPDATE" :
					 c->action == 'D' ? "DELETE" : c->action == 'T' ? "TRUNCATE" : "change",
					 c->schema ? c->schema : "?", c->table ? c->table : "?",
					 LSN_FORMAT_ARGS(c->lsn));
	for (pass = 0; pass < 2; pass++)
	{
		W2JColumn  *cols = pass == 0 ? c->identity : c->columns;
		int			n = pass == 0 ? c->nidentity : c->ncolumns;
		int			i;

		if (n == 0)
			continue;
		appendStringInfoString(&buf, pass == 0 ? "; key (" : "; values (");
		for (i = 0; i < n; i++)
		{
			const char *v = cols[i].value;

			appendStringInfo(&buf, "%s%s=", i ? ", " : "", cols[i].name);
			if (v == NULL)
				appendStringInfoString(&buf, "NULL");
			else if ((int) strlen(v) > max_value_len)
				appendStringInfo(&buf, "%.*s...", pg_mbcliplen(v, strlen(v), max_value_len), v);
			else
				appendStringInfoString(&buf, v);
		}
		appendStringInfoChar(&buf, ')');
	}
	return buf.data;
}
