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

/*
 * The parser drives the server's JSON lexer (json_lex) itself rather than
 * pg_parse_json() with callbacks: the lexer validates every token, and a
 * string is taken as the span it covers, de-escaped (by the lexer again)
 * only when it holds a backslash.  De-escaping every string character by
 * character was a fifth of the applier's time.
 */
typedef struct Lexer
{
	JsonLexContext *lex;
	char	   *error;
} Lexer;

static JsonLexContext *
new_lexer(char *json, int len, bool need_escapes)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, GetDatabaseEncoding(), need_escapes);
#else
	return makeJsonLexContextCstringLen(json, len, GetDatabaseEncoding(), need_escapes);
#endif
}

static bool
next(Lexer *l)
{
	JsonParseErrorType rc = json_lex(l->lex);

	if (rc != JSON_SUCCESS)
	{
		l->error = json_errdetail(rc, l->lex);
		return false;
	}
	if (l->lex->token_type == JSON_TOKEN_END)
	{
		l->error = "the message ends too early";
		return false;
	}
	return true;
}

static bool
expect(Lexer *l, JsonTokenType type)
{
	if (!next(l))
		return false;
	if (l->lex->token_type != type)
	{
		l->error = psprintf("unexpected token at offset %d",
							(int) (l->lex->token_start - l->lex->input));
		return false;
	}
	return true;
}

/*
 * The current token's value into *out: strings de-escaped, NULL for null.
 * False (with l->error) if a string cannot be de-escaped.
 */
static bool
token_value(Lexer *l, char **out)
{
	JsonLexContext *lex = l->lex;
	char	   *start = lex->token_start;
	int			len = lex->token_terminator - lex->token_start;

	switch (lex->token_type)
	{
		case JSON_TOKEN_NULL:
			*out = NULL;
			return true;
		case JSON_TOKEN_STRING:
			if (memchr(start, '\\', len) == NULL)
				*out = pnstrdup(start + 1, len - 2);
			else
			{
				JsonLexContext *esc = new_lexer(start, len, true);
				JsonParseErrorType rc = json_lex(esc);

				if (rc != JSON_SUCCESS)
				{
					l->error = json_errdetail(rc, esc);
					return false;
				}
				*out = pstrdup(esc->strval->data);
			}
			return true;
		default:
			*out = pnstrdup(start, len);
			return true;
	}
}

/* Skip the value whose first token is current. */
static bool
skip_value(Lexer *l)
{
	int			depth = 0;

	do
	{
		JsonTokenType t = l->lex->token_type;

		if (t == JSON_TOKEN_OBJECT_START || t == JSON_TOKEN_ARRAY_START)
			depth++;
		else if (t == JSON_TOKEN_OBJECT_END || t == JSON_TOKEN_ARRAY_END)
			depth--;
		if (depth == 0)
			return true;
	} while (next(l));
	return false;
}

/* An array of column objects: [{"name":..,"type":..,"value":..},...] */
static bool
parse_columns(Lexer *l, W2JColumn **out, int *n)
{
	int			cap = 16;

	*out = palloc(sizeof(W2JColumn) * cap);
	*n = 0;
	if (!next(l))
		return false;
	while (l->lex->token_type != JSON_TOKEN_ARRAY_END)
	{
		W2JColumn	col = {0};

		if (l->lex->token_type == JSON_TOKEN_COMMA && !next(l))
			return false;
		if (l->lex->token_type != JSON_TOKEN_OBJECT_START)
		{
			l->error = "a column that is not an object";
			return false;
		}
		for (;;)
		{
			char	   *key;

			if (!next(l))
				return false;
			if (l->lex->token_type == JSON_TOKEN_OBJECT_END)
				break;
			if (l->lex->token_type == JSON_TOKEN_COMMA && !next(l))
				return false;
			if (l->lex->token_type != JSON_TOKEN_STRING)
			{
				l->error = "a column field name that is not a string";
				return false;
			}
			if (!token_value(l, &key) ||
				!expect(l, JSON_TOKEN_COLON) || !next(l))
				return false;
			if (strcmp(key, "name") == 0)
			{
				if (!token_value(l, &col.name))
					return false;
			}
			else if (strcmp(key, "value") == 0)
			{
				if (!token_value(l, &col.value))
					return false;
				col.is_number = l->lex->token_type == JSON_TOKEN_NUMBER;
			}
			else if (!skip_value(l))
				return false;
		}
		if (col.name == NULL)
		{
			l->error = "a column without a name";
			return false;
		}
		if (*n == cap)
		{
			cap *= 2;
			*out = repalloc(*out, sizeof(W2JColumn) * cap);
		}
		(*out)[(*n)++] = col;
		if (!next(l))
			return false;
	}
	return true;
}

/* An LSN field; false (with l->error) if it is not one. */
static bool
parse_lsn(Lexer *l, const char *s, XLogRecPtr *lsn)
{
	bool		have_error = false;

	*lsn = s ? pg_lsn_in_internal(s, &have_error) : InvalidXLogRecPtr;
	if (s == NULL || have_error)
	{
		l->error = psprintf("\"%s\" is not an LSN", s ? s : "null");
		return false;
	}
	return true;
}

/*
 * ingest_w2j_parse
 *		Parse one message.  Returns false with *error set on malformed
 *		input (the JSON lexer's words, or what is missing).
 */
bool
ingest_w2j_parse(char *json, int len, W2JChange *c, char **error)
{
	Lexer		l;

	memset(c, 0, sizeof(W2JChange));
	l.lex = new_lexer(json, len, false);
	l.error = NULL;

	if (!expect(&l, JSON_TOKEN_OBJECT_START))
		goto fail;
	for (;;)
	{
		char	   *key;
		char	   *value;

		if (!next(&l))
			goto fail;
		if (l.lex->token_type == JSON_TOKEN_OBJECT_END)
			break;
		if (l.lex->token_type == JSON_TOKEN_COMMA && !next(&l))
			goto fail;
		if (l.lex->token_type != JSON_TOKEN_STRING)
		{
			l.error = "a field name that is not a string";
			goto fail;
		}
		if (!token_value(&l, &key) ||
			!expect(&l, JSON_TOKEN_COLON) || !next(&l))
			goto fail;

		if (strcmp(key, "columns") == 0 || strcmp(key, "identity") == 0)
		{
			if (l.lex->token_type != JSON_TOKEN_ARRAY_START)
			{
				l.error = psprintf("\"%s\" is not an array", key);
				goto fail;
			}
			if (!(key[0] == 'c' ? parse_columns(&l, &c->columns, &c->ncolumns) :
				  parse_columns(&l, &c->identity, &c->nidentity)))
				goto fail;
			continue;
		}
		if (l.lex->token_type == JSON_TOKEN_OBJECT_START ||
			l.lex->token_type == JSON_TOKEN_ARRAY_START)
		{
			if (!skip_value(&l))
				goto fail;
			continue;
		}
		if (!token_value(&l, &value))
			goto fail;
		if (strcmp(key, "action") == 0 && value && value[0] && !value[1])
			c->action = value[0];
		else if (strcmp(key, "xid") == 0 && value)
			c->xid = (TransactionId) strtoul(value, NULL, 10);
		else if (strcmp(key, "timestamp") == 0)
			c->timestamp = value;
		else if (strcmp(key, "lsn") == 0)
		{
			if (!parse_lsn(&l, value, &c->lsn))
				goto fail;
		}
		else if (strcmp(key, "nextlsn") == 0)
		{
			if (!parse_lsn(&l, value, &c->nextlsn))
				goto fail;
		}
		else if (strcmp(key, "schema") == 0)
			c->schema = value;
		else if (strcmp(key, "table") == 0)
			c->table = value;
		else if (strcmp(key, "prefix") == 0)
			c->prefix = value;
		else if (strcmp(key, "content") == 0)
			c->content = value;
	}

	if (c->action == '\0')
	{
		l.error = "a message without an action";
		goto fail;
	}
	if (strchr("IUDT", c->action) && (c->schema == NULL || c->table == NULL))
	{
		l.error = "a change without its schema and table";
		goto fail;
	}
	/* "nextlsn" came with wal2json 2.3 */
	if ((c->action == 'B' || c->action == 'C') &&
		(c->lsn == InvalidXLogRecPtr || c->nextlsn == InvalidXLogRecPtr))
	{
		l.error = "a BEGIN or COMMIT without \"lsn\" and \"nextlsn\" (wal2json 2.3 or later is needed)";
		goto fail;
	}
	return true;

fail:
	*error = l.error ? l.error : "malformed message";
	return false;
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
