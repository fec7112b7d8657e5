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
 * The receiver parses each message as it arrives (converted first from the
 * source's encoding) and spools it in a compact form that the applier
 * decodes without copying: the parsing is done while the source streams,
 * not while a backlog is applied.  A message that does not parse is
 * spooled as it came, and fails the apply with the parser's words.
 *
 * State: the encoding conversion of the source's messages, per process.
 *
 * Locking: none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "common/jsonapi.h"
#include "common/string.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
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
			else if (strcmp(key, "type") == 0)
			{
				if (!token_value(l, &col.type))
					return false;
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

/*
 * Encoding: wal2json writes in the source's server encoding; nothing on
 * the way converts it.
 */
static FmgrInfo *to_server = NULL;	/* source encoding to the database's */
static int	from_encoding = -1;
static bool verify_only = false;	/* SQL_ASCII source: check, no conversion */

/*
 * ingest_w2j_setup_conversion
 *		Look up how to convert messages from source_encoding (-1: unknown,
 *		nothing is done) to this database's encoding.  Needs a transaction.
 */
void
ingest_w2j_setup_conversion(int source_encoding)
{
	int			dbenc = GetDatabaseEncoding();
	Oid			proc;

	from_encoding = source_encoding;
	if (source_encoding < 0 || source_encoding == dbenc || dbenc == PG_SQL_ASCII)
		return;
	if (source_encoding == PG_SQL_ASCII)
	{
		verify_only = true;
		return;
	}
	proc = FindDefaultConversionProc(source_encoding, dbenc);
	if (!OidIsValid(proc))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("no conversion from the source's encoding %s to this database's %s",
						pg_encoding_to_char(source_encoding), pg_encoding_to_char(dbenc))));
	to_server = MemoryContextAlloc(TopMemoryContext, sizeof(FmgrInfo));
	fmgr_info_cxt(proc, to_server, TopMemoryContext);
}

/*
 * ingest_w2j_convert
 *		The message (NUL-terminated) in this database's encoding: itself, or
 *		a conversion in CurrentMemoryContext.  Invalid input is an error, or
 *		with no_error gives NULL.
 */
char *
ingest_w2j_convert(char *msg, int len, bool no_error)
{
	char	   *converted;
	int			done;

	if (verify_only)
		return pg_verify_mbstr(GetDatabaseEncoding(), msg, len, no_error) ? msg : NULL;
	if (to_server == NULL || pg_is_ascii(msg))
		return msg;
	converted = MemoryContextAllocHuge(CurrentMemoryContext,
									   (Size) len * MAX_CONVERSION_GROWTH + 1);
	done = DatumGetInt32(FunctionCall6(to_server,
									   Int32GetDatum(from_encoding),
									   Int32GetDatum(GetDatabaseEncoding()),
									   CStringGetDatum(msg),
									   CStringGetDatum(converted),
									   Int32GetDatum(len),
									   BoolGetDatum(no_error)));
	return done == len ? converted : NULL;
}

/*
 * The compact form: a marker byte, the action, xid, lsn, nextlsn, then the
 * strings timestamp, schema, table, prefix, content (each a presence byte,
 * then the bytes and a NUL), then the columns and the identity (a count,
 * then per column its name, a flags byte, unless null its value, and its
 * type if the source sent one ("include-types", infer.c)).
 */
#define W2J_COMPACT		'\x01'
#define COL_NULL		0x01
#define COL_NUMBER		0x02
#define COL_TYPE		0x04

static void
put_string(StringInfo out, const char *s)
{
	appendStringInfoChar(out, s ? 1 : 0);
	if (s)
		appendBinaryStringInfo(out, s, strlen(s) + 1);
}

static void
put_columns(StringInfo out, W2JColumn *cols, int n)
{
	int32		count = n;
	int			i;

	appendBinaryStringInfo(out, (char *) &count, sizeof(count));
	for (i = 0; i < n; i++)
	{
		appendBinaryStringInfo(out, cols[i].name, strlen(cols[i].name) + 1);
		appendStringInfoChar(out, (cols[i].value ? 0 : COL_NULL) |
							 (cols[i].is_number ? COL_NUMBER : 0) |
							 (cols[i].type ? COL_TYPE : 0));
		if (cols[i].value)
			appendBinaryStringInfo(out, cols[i].value, strlen(cols[i].value) + 1);
		if (cols[i].type)
			appendBinaryStringInfo(out, cols[i].type, strlen(cols[i].type) + 1);
	}
}

/*
 * ingest_w2j_compact
 *		Append the compact form of a parsed message to out.
 */
void
ingest_w2j_compact(W2JChange *c, StringInfo out)
{
	appendStringInfoChar(out, W2J_COMPACT);
	appendStringInfoChar(out, c->action);
	appendBinaryStringInfo(out, (char *) &c->xid, sizeof(c->xid));
	appendBinaryStringInfo(out, (char *) &c->lsn, sizeof(c->lsn));
	appendBinaryStringInfo(out, (char *) &c->nextlsn, sizeof(c->nextlsn));
	put_string(out, c->timestamp);
	put_string(out, c->schema);
	put_string(out, c->table);
	put_string(out, c->prefix);
	put_string(out, c->content);
	put_columns(out, c->columns, c->ncolumns);
	put_columns(out, c->identity, c->nidentity);
}

/* A reader of the compact form; false once it would read past the end. */
typedef struct Compact
{
	char	   *p;
	char	   *end;
} Compact;

static bool
get_bytes(Compact *r, void *dst, int n)
{
	if (r->end - r->p < n)
		return false;
	memcpy(dst, r->p, n);
	r->p += n;
	return true;
}

/* A NUL-terminated string where it lies. */
static bool
get_cstring(Compact *r, char **s)
{
	char	   *nul = memchr(r->p, '\0', r->end - r->p);

	if (nul == NULL)
		return false;
	*s = r->p;
	r->p = nul + 1;
	return true;
}

static bool
get_string(Compact *r, char **s)
{
	char		present;

	if (!get_bytes(r, &present, 1))
		return false;
	*s = NULL;
	return !present || get_cstring(r, s);
}

static bool
get_columns(Compact *r, W2JColumn **cols, int *n)
{
	int32		count;
	int			i;

	if (!get_bytes(r, &count, sizeof(count)) || count < 0 || count > r->end - r->p)
		return false;
	*n = count;
	*cols = count ? palloc(sizeof(W2JColumn) * count) : NULL;
	for (i = 0; i < count; i++)
	{
		char		flags;

		if (!get_cstring(r, &(*cols)[i].name) || !get_bytes(r, &flags, 1))
			return false;
		(*cols)[i].is_number = (flags & COL_NUMBER) != 0;
		(*cols)[i].value = NULL;
		if (!(flags & COL_NULL) && !get_cstring(r, &(*cols)[i].value))
			return false;
		(*cols)[i].type = NULL;
		if ((flags & COL_TYPE) && !get_cstring(r, &(*cols)[i].type))
			return false;
	}
	return true;
}

/*
 * ingest_w2j_decode
 *		A spooled message: the compact form (its strings stay where they
 *		are in data, which must outlive the change), or the JSON as it came
 *		when the receiver could not convert or parse it: converted and
 *		parsed again now, for the error.
 */
bool
ingest_w2j_decode(char *data, int len, W2JChange *c, char **error)
{
	Compact		r;

	if (len < 1 || data[0] != W2J_COMPACT)
	{
		char	   *json = ingest_w2j_convert(data, len, false);

		return ingest_w2j_parse(json, strlen(json), c, error);
	}
	memset(c, 0, sizeof(W2JChange));
	r.p = data + 1;
	r.end = data + len;
	if (!get_bytes(&r, &c->action, 1) ||
		!get_bytes(&r, &c->xid, sizeof(c->xid)) ||
		!get_bytes(&r, &c->lsn, sizeof(c->lsn)) ||
		!get_bytes(&r, &c->nextlsn, sizeof(c->nextlsn)) ||
		!get_string(&r, &c->timestamp) ||
		!get_string(&r, &c->schema) ||
		!get_string(&r, &c->table) ||
		!get_string(&r, &c->prefix) ||
		!get_string(&r, &c->content) ||
		!get_columns(&r, &c->columns, &c->ncolumns) ||
		!get_columns(&r, &c->identity, &c->nidentity))
	{
		*error = "a spooled change is cut short";
		return false;
	}
	return true;
}
