-- torture.sql — a "type torture" source database for the pg_ingest TAP tests.
--
-- Load into an EMPTY, UTF8-encoded database (it refuses any other encoding):
--     psql -X -v ON_ERROR_STOP=1 -d app -f t/sql/torture.sql
-- It also loads with --single-transaction (no VACUUM, no CONCURRENTLY, no
-- use of an enum value added in the same transaction), and as a non-superuser
-- that owns the database: it needs no superuser privilege, no role but the
-- current one, no tablespace and no extension (plpgsql only).
-- All data is deterministic: literals, generate_series, md5 chains; no
-- random(), no now().  The load session pins TimeZone, DateStyle,
-- IntervalStyle, xmloption and extra_float_digits; every timestamptz literal
-- carries an explicit offset or zone name.
-- t/sql/torture_tables.sql lists the tables whose contents are compared.
--
-- What it covers, by table (public schema unless stated otherwise):
--
--  BUILT-IN TYPES
--   t_ints          smallint/int/bigint at their limits, 0, -1, NULL
--   t_numeric       numeric NaN, ±Infinity, 1e-1000, 1e1000,
--                   123456789012345678901234567890.123456789, -0, trailing
--                   zeros (display scale), numeric(40,10), numeric(5,2)
--   t_floats        real/double NaN, ±Infinity, -0, 1e-300, subnormals
--                   (5e-324, 1e-45), min normals, max values, 0.1
--   t_money         money min/max, 0, negative cents
--   t_text          char(n)/varchar(n)/varchar/text/bpchar/name/"char":
--                   empty vs NULL, tab, LF, CR, CRLF, backslash, ', ", comma,
--                   literal '\N', '\.', 'NULL', escape-looking text (\x41,
--                   \101, \n as two chars), every ASCII control char 1..31
--                   and DEL, unicode (CJK, RTL, emoji with ZWJ and skin tone,
--                   combining marks, decomposed vs precomposed, BOM, U+2028,
--                   NBSP, ZWSP, RLO), every BMP code point but surrogates in
--                   ONE value (~190 kB, TOASTed), a sample of the
--                   supplementary planes incl. U+10FFFF, "char" '\377' and
--                   the zero "char"
--   t_bytea         NULL, empty, zero bytes, all 256 byte values in one value
--                   (both orders), invalid UTF-8, bytes that spell \N / CR LF
--   t_bool          true/false/NULL
--   t_datetime      date/time/timetz/timestamp/timestamptz (+ typmods):
--                   ±infinity, BC dates, min/max of every type, year 9999,
--                   24:00:00, offsets ±15:59 and with seconds (+00:19:32),
--                   values written with -08, +05:45, +14, -12, named zones
--                   (DST gap and overlap, LMT era), epoch, Y2038
--   t_interval      mixed signs, months/days/µs, limits, ISO 8601 input,
--                   unnormalized ('1 day -24 hours', '1 mon 30 days')
--   t_network       uuid, inet, cidr, macaddr, macaddr8 (v4, v6, mapped)
--   t_bits          bit(n), bit(1), varbit incl. empty and 1000 bits
--   t_textsearch    tsvector (positions, weights, quoted lexemes, empty),
--                   tsquery (&, |, !, <->, <2>, prefix, weights)
--   t_json          json and jsonb: nesting (200 deep), unicode escapes,
--                   surrogate pairs, \u0000 (json only), duplicate keys and
--                   whitespace (json keeps them), 1e400, huge precision, -0
--   t_xml           documents, content fragments (need xmloption=content),
--                   DOCTYPE, CDATA, comments, PIs, namespaces, empty
--   t_geometry      point/line/lseg/box/path (open, closed)/polygon/circle,
--                   incl. NaN, ±Infinity, -0, 1e308, 1e-300
--   t_misc          pg_lsn, oid, xid, xid8, cid, tid, pg_snapshot,
--                   txid_snapshot, oidvector, int2vector, refcursor; and a
--                   column named "oid"
--   t_reg           regclass/regtype/regproc/regprocedure/regoper/
--                   regoperator/regnamespace/regrole/regconfig/
--                   regdictionary/regcollation — some pointing at objects of
--                   THIS database, whose OIDs differ on the target: binary
--                   COPY would silently corrupt them, text COPY is right
--   t_no_binary     aclitem (no binary send/receive at all), and EMPTY
--                   oidvector/int2vector (binary output that the binary
--                   input refuses)
--   t_ranges        int4/int8/num/ts/tstz/date ranges and multiranges
--                   (empty, unbounded, canonicalized, merged)
--   t_arrays        arrays of ~30 types: multi-dimensional (2-D, 3-D),
--                   NULL elements, non-default lower bounds '[0:1]={1,2}',
--                   '[-5:-3]', '[1:2][0:1]', empty, quoting-hungry text,
--                   box[] (';' delimiter), range[] and multirange[]
--
--  USER-DEFINED TYPES (in schema "MixedSchema")
--   "Mood" enum (labels with spaces, commas, quotes, braces, backslash,
--   'NULL', unicode; plus a value added later with ADD VALUE BEFORE),
--   "Address" composite (nested composite, array, enum and domain fields),
--   domains pos_int (CHECK), zip_code (regex CHECK), int_pair (domain over
--   int[]), addr_dom (domain over a composite), floatrange (range over
--   float8 with subtype_diff float8mi, multirange "Float Multi"),
--   mood_range (range over the enum); a column typed as a table's row type.
--   t_udt holds all of them and ARRAYS of each (enum[], composite[],
--   domain[], range[], multirange[]), whose binary form carries the type
--   OIDs of THIS database (PostgreSQL 15.20 was seen to accept them anyway
--   in binary COPY; text COPY is the safe choice).
--
--  COLUMNS AND TABLES
--   t_generated          GENERATED ALWAYS AS (...) STORED, via an SQL
--                        function and a plpgsql function
--   t_identity_always    bigint GENERATED ALWAYS AS IDENTITY from 9e18 step
--                        1000, plus a row inserted with OVERRIDING SYSTEM
--                        VALUE
--   t_identity_bydefault int GENERATED BY DEFAULT, descending from 2e9, mixed
--                        with explicit values
--   t_serial             serial + bigserial (owned-by sequences)
--   t_dropped            dropped columns (three), a column whose type was
--                        changed (rewrite), fast defaults (attmissingval)
--   t_many_cols          1500 columns (2 of them dropped)
--   t_zero_cols          a table with NO columns and 3 rows
--   measurements         partitioned by RANGE (date): 2023; 2024
--                        sub-partitioned by LIST (region) with a DEFAULT
--                        sub-partition; 2025 in "MixedSchema" (created
--                        separately and ATTACHed, with a dropped column);
--                        a DEFAULT partition
--   t_hashpart           partitioned by HASH into 3
--   inh_parent/inh_child classic inheritance (a plain SELECT of the parent
--                        also returns the child's rows)
--   t_unlogged           UNLOGGED
--   t_empty              no rows (many types); t_zero_cols_empty too
--   t_toast              100 kB–2 MB values: compressible (repeat),
--                        incompressible (md5 chains, random-looking bytea),
--                        STORAGE EXTERNAL / MAIN, COMPRESSION lz4, big jsonb
--                        and arrays, rows just over the TOAST threshold
--   split_me             50,000 rows inserted (heap ~10 MB, 1264 pages) for
--                        page-range splitting; ~500 rows then updated
--                        (moved to later pages) and ~500 deleted (dead
--                        tuples left, no VACUUM): 49,505 live rows; a few
--                        values with tabs/newlines/backslashes
--
--  IDENTIFIERS
--   "MixedSchema"."MixedCase", public."we""ird.name" (columns with spaces,
--   dots, quotes, a newline, unicode), public."tâblé_ünïcode" (columns
--   "çölümn", "日本語", "🐘"), public."select"/"user"/"order" (columns "from",
--   "where", "user", "group", "desc", "order"), a 63-byte table name,
--   "odd ""schema"" name"."Tab Le", a mixed-case type name.
--
--  CONSTRAINTS, INDEXES, OTHER OBJECTS
--   tables without primary key: t_dup_rows (duplicate rows, REPLICA IDENTITY
--   FULL), t_nopk (no replica identity at all); foreign keys: multi-column
--   (MATCH FULL, ON UPDATE CASCADE), self-reference whose rows precede their
--   parents physically, a circular pair (circ_a <-> circ_b, one DEFERRABLE);
--   CHECK constraints (one calling a plpgsql function); NOT VALID check and
--   NOT VALID foreign key with rows that VIOLATE them; exclusion constraints
--   (tstzrange && and box && with gist, one partial); UNIQUE DEFERRABLE
--   INITIALLY DEFERRED; UNIQUE ... INCLUDE; UNIQUE NULLS NOT DISTINCT;
--   a nondeterministic ICU collation with a unique constraint; expression,
--   partial, unique partial, gin, gist, brin, hash, DESC NULLS FIRST,
--   text_pattern_ops and COLLATE indexes; extended statistics; comments;
--   reloptions (fillfactor, autovacuum); row level security with a policy
--   that hides every row from non-owners.
--   Views (plain, WITH CHECK OPTION, recursive, security_barrier);
--   materialized views mv_split_stats (WITH DATA, unique index) and
--   mv_never_filled (WITH NO DATA: must stay unpopulated).
--   Functions: SQL, SQL-standard BEGIN ATOMIC, plpgsql.
--   Triggers created AFTER the data was loaded, so the data disagrees with
--   them: t_trigger_upper (BEFORE INSERT OR UPDATE uppercases "name"),
--   t_trigger_reject (BEFORE INSERT raises), t_trigger_always (raising
--   trigger set ENABLE ALWAYS: it fires even with
--   session_replication_role = replica), t_trigger_audit (AFTER INSERT
--   writes to trigger_audit_log, plus a deferred CONSTRAINT TRIGGER that
--   raises), a rule (ON INSERT DO ALSO) on t_rule_target.  Copying any of
--   these through INSERT or with triggers enabled fails or changes data.
--   Sequences: seq_not_called (setval(..., 5000, false)), seq_big (at
--   9223372036854775000), "MixedSchema"."Seq Desc" (descending, CYCLE,
--   advanced), seq_unused (never called), plus the owned-by and identity
--   sequences above.
--
-- Not included: user-defined base types (need C functions and superuser),
-- tablespaces, roles/GRANTs/column privileges (roles are cluster-wide),
-- foreign tables (need an FDW extension), event triggers (superuser),
-- extensions, large objects (pg_largeobject is not a table of the
-- database's schemas), publications/subscriptions.

SET client_min_messages = warning;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET xmloption = content;
SET extra_float_digits = 1;
SET check_function_bodies = on;
SET search_path = public;

DO $$
BEGIN
	IF current_setting('server_encoding') <> 'UTF8' THEN
		RAISE EXCEPTION 'torture.sql needs a UTF8 database; this one is %',
			current_setting('server_encoding')
			USING HINT = 'CREATE DATABASE ... ENCODING ''UTF8'' LOCALE ''C'' TEMPLATE template0';
	END IF;
	IF current_setting('server_version_num')::int < 150000 THEN
		RAISE EXCEPTION 'torture.sql needs PostgreSQL 15 or later';
	END IF;
END
$$;

--------------------------------------------------------------------------
-- Schemas
--------------------------------------------------------------------------
CREATE SCHEMA "MixedSchema";
CREATE SCHEMA "odd ""schema"" name";
COMMENT ON SCHEMA "MixedSchema" IS 'schéma à casse mixte 🐘';

--------------------------------------------------------------------------
-- Functions (every body schema-qualifies what it uses: pg_dump restores
-- with search_path = '')
--------------------------------------------------------------------------
CREATE FUNCTION public.torture_norm(t text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	-- COLLATE "C": ASCII-only lowercasing, the same whatever the database's
	-- locale (the target recomputes this generated column)
	AS $$ SELECT pg_catalog.lower(pg_catalog.btrim(pg_catalog.regexp_replace($1, '\s+', ' ', 'g')) COLLATE "C") $$;

CREATE FUNCTION public.torture_is_even(i bigint) RETURNS boolean
	LANGUAGE plpgsql IMMUTABLE STRICT
	AS $$
BEGIN
	RETURN i % 2 = 0;
END
$$;

CREATE FUNCTION public.torture_checksum(t text) RETURNS integer
	LANGUAGE plpgsql IMMUTABLE
	AS $$
DECLARE
	s integer := 0;
	i integer;
BEGIN
	IF t IS NULL THEN
		RETURN NULL;
	END IF;
	FOR i IN 1 .. pg_catalog.length(t) LOOP
		s := (s * 31 + pg_catalog.ascii(pg_catalog.substr(t, i, 1))) % 1000003;
	END LOOP;
	RETURN s;
END
$$;

-- SQL-standard body: parsed at creation, dependencies tracked.
CREATE FUNCTION public.torture_area(w numeric, h numeric) RETURNS numeric
	LANGUAGE sql IMMUTABLE
	BEGIN ATOMIC
		SELECT w * h;
	END;

CREATE FUNCTION public.torture_valid_zip(z text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT
	AS $$ SELECT $1 OPERATOR(pg_catalog.~) '^[0-9]{5}$' $$;

-- Trigger functions.
CREATE FUNCTION public.trg_upper_name() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	NEW.name := pg_catalog.upper(NEW.name);
	RETURN NEW;
END
$$;

CREATE FUNCTION public.trg_reject() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'trigger % fired on %.% during %: triggers must not fire while copying',
		TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
END
$$;

CREATE FUNCTION public.trg_audit() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.trigger_audit_log (table_name, row_id, op)
	VALUES (TG_TABLE_NAME, NEW.id, TG_OP);
	RETURN NULL;
END
$$;

--------------------------------------------------------------------------
-- User-defined types
--------------------------------------------------------------------------
CREATE TYPE "MixedSchema"."Mood" AS ENUM (
	'sad', 'ok', 'happy', 'with space', 'a,b', 'has "dq"', '{brace}',
	'NULL', 'back\slash', 'quote''s', 'Ünï 🐘');
-- An added value gets an odd sort order; it is not used in data so that
-- the file also loads in one transaction.
ALTER TYPE "MixedSchema"."Mood" ADD VALUE 'meh' BEFORE 'ok';

CREATE DOMAIN "MixedSchema".pos_int AS integer
	CONSTRAINT pos_int_positive CHECK (VALUE > 0);
CREATE DOMAIN "MixedSchema".zip_code AS text
	CHECK (public.torture_valid_zip(VALUE));
CREATE DOMAIN "MixedSchema".int_pair AS integer[]
	CHECK (pg_catalog.array_length(VALUE, 1) = 2);

CREATE TYPE "MixedSchema".geo AS (lat double precision, lon double precision);

CREATE TYPE "MixedSchema"."Address" AS (
	street     text,
	"Zip Code" "MixedSchema".zip_code,
	tags       text[],
	loc        "MixedSchema".geo,
	mood       "MixedSchema"."Mood",
	since      date);

CREATE DOMAIN "MixedSchema".addr_dom AS "MixedSchema"."Address"
	CHECK (VALUE IS NULL OR (VALUE).street IS NOT NULL);

CREATE TYPE "MixedSchema".floatrange AS RANGE (
	subtype = double precision,
	subtype_diff = float8mi,
	multirange_type_name = "MixedSchema"."Float Multi");

CREATE TYPE "MixedSchema".mood_range AS RANGE (subtype = "MixedSchema"."Mood");

-- Nondeterministic ICU collation.
CREATE COLLATION "MixedSchema".ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

--------------------------------------------------------------------------
-- Built-in types
--------------------------------------------------------------------------
CREATE TABLE public.t_ints (
	id  integer PRIMARY KEY,
	s   smallint,
	i   integer,
	b   bigint
);
INSERT INTO public.t_ints VALUES
	(1, -32768, -2147483648, -9223372036854775808),
	(2, 32767, 2147483647, 9223372036854775807),
	(3, 0, 0, 0),
	(4, -1, -1, -1),
	(5, NULL, NULL, NULL),
	(6, 1, 1, 1);

CREATE TABLE public.t_numeric (
	id    integer PRIMARY KEY,
	n     numeric,
	n4010 numeric(40,10),
	n52   numeric(5,2)
);
INSERT INTO public.t_numeric VALUES
	(1, 'NaN', 'NaN', 'NaN'),
	(2, 'Infinity', NULL, NULL),            -- no infinity in numeric(p,s)
	(3, '-Infinity', NULL, NULL),
	(4, 1e-1000, 0, 0),
	(5, '123456789012345678901234567890.123456789', '123456789012345678901234567890.123456789', 999.99),
	(6, '-123456789012345678901234567890.123456789', '-123456789012345678901234567890.1234567891', -999.99),
	(7, 1e1000, NULL, NULL),
	(8, '-0', '-0', '-0.00'),
	(9, '1.000000000000000000000000000000', '1.5', '1.5'),
	(10, 0.1, 0.00000000005, 0.005),
	(11, '9.99999999999999999999999999999999999999e-300', NULL, NULL),
	(12, NULL, NULL, NULL);
-- a value with 16383 digits after the decimal point (the display maximum)
INSERT INTO public.t_numeric (id, n)
	VALUES (13, ('0.' || repeat('9', 16383))::numeric),
	       (14, ('1' || repeat('0', 2000) || '.5')::numeric);

CREATE TABLE public.t_floats (
	id integer PRIMARY KEY,
	r  real,
	d  double precision
);
INSERT INTO public.t_floats VALUES
	(1, 'NaN', 'NaN'),
	(2, 'Infinity', 'Infinity'),
	(3, '-Infinity', '-Infinity'),
	(4, '-0', '-0'),
	(5, 0, 0),
	(6, NULL, 1e-300),
	(7, 1e-45, 5e-324),                                   -- smallest subnormals
	(8, 1.1754942e-38, 2.2250738585072009e-308),          -- largest subnormals
	(9, 1.17549435e-38, 2.2250738585072014e-308),         -- smallest normals
	(10, 3.4028235e38, 1.7976931348623157e308),           -- largest finite
	(11, -3.4028235e38, -1.7976931348623157e308),
	(12, 0.1, 0.1),
	(13, 3.14159265358979, 3.141592653589793),
	(14, 1e-10, -1e-300),
	(15, NULL, NULL),
	(16, 16777217, 9007199254740993);                     -- not representable

CREATE TABLE public.t_money (
	id integer PRIMARY KEY,
	m  money
);
INSERT INTO public.t_money VALUES
	(1, '-92233720368547758.08'),
	(2, '92233720368547758.07'),
	(3, 0),
	(4, (-0.01)::numeric::money),
	(5, 1234567.89::numeric::money),
	(6, NULL);

CREATE TABLE public.t_text (
	id  integer PRIMARY KEY,
	c   char(10),
	vc  varchar(20),
	vcn varchar,
	bp  bpchar,
	nm  name,
	ch  "char",
	t   text,
	note text
);
INSERT INTO public.t_text (id, t, note) VALUES
	(1, NULL, 'NULL'),
	(2, '', 'empty string'),
	(3, E'\t', 'tab'),
	(4, E'\n', 'newline'),
	(5, E'\r', 'carriage return'),
	(6, E'\r\n', 'CRLF'),
	(7, E'\\', 'one backslash'),
	(8, '''', 'single quote'),
	(9, '"', 'double quote'),
	(10, ',', 'comma'),
	(11, '\N', 'backslash N as text'),
	(12, '\.', 'backslash dot (end-of-copy marker)'),
	(13, 'NULL', 'the word NULL'),
	(14, ' ', 'one space'),
	(15, '  leading and trailing  ', 'spaces around'),
	(16, E'a\tb\nc\rd\\e''f"g,h;i|j', 'mixed separators'),
	(17, '\x41\101\\n\t\r\b\f\v\0', 'escape-looking text, not escapes'),
	(18, E'\b\f\x0b\x01\x02\x1b\x1f\x7f', 'control characters'),
	(19, E'first\n\\.\nlast', 'a line that is only \. inside a value'),
	(20, 'héllo wörld ñ ß 日本語 한국어 العربية עברית Ελληνικά кириллица', 'scripts'),
	(21, '🐘🚀 👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽 🇫🇷', 'emoji, ZWJ, skin tone, flags'),
	(22, 'e' || U&'\0301' || ' é ' || 'A' || U&'\030A' || ' Å ' || 'Z' || U&'\0336\0335\0334\0333' , 'combining marks, decomposed vs precomposed'),
	(23, U&'\FEFF' || 'BOM ' || U&'\2028' || 'LS ' || U&'\2029' || 'PS ' || U&'\00A0' || 'NBSP ' || U&'\200B' || 'ZWSP ' || U&'\202E' || 'RLO', 'invisible and bidi'),
	(24, '{"a","b"}', 'looks like an array'),
	(25, '(1,"2")', 'looks like a record'),
	(26, E'\\\\\\""''''', 'quote and backslash runs'),
	(27, repeat(E'\n', 5000), '5000 newlines'),
	(28, U&'\2126 \03A9 \212B \00C5 \FB01 fi', 'look-alikes: ohm/omega, angstrom, ligature'),
	(29, U&'\FFFF\FFFE\FDD0', 'noncharacters');
INSERT INTO public.t_text (id, t, note)
SELECT 30, string_agg(chr(i), '' ORDER BY i), 'every ASCII code point 1..127'
FROM generate_series(1, 127) AS i;
INSERT INTO public.t_text (id, t, note)
SELECT 31, string_agg(chr(i), '' ORDER BY i), 'every BMP code point except surrogates'
FROM generate_series(1, 65535) AS i
WHERE i NOT BETWEEN 55296 AND 57343;
INSERT INTO public.t_text (id, t, note)
SELECT 32, string_agg(chr(i), '' ORDER BY i) || chr(1114111), 'supplementary planes sample and U+10FFFF'
FROM generate_series(65536, 1114111, 4099) AS i;
UPDATE public.t_text
	SET c = left(t, 10)::char(10), vc = left(t, 20), vcn = t, bp = left(t, 40), nm = left(t, 30)
	WHERE id <> 31;
UPDATE public.t_text SET c = 'ab', vc = 'trailing   ', bp = 'x   ', ch = 'a' WHERE id = 14;
UPDATE public.t_text SET ch = '\377' WHERE id = 3;
UPDATE public.t_text SET ch = '' WHERE id = 2;
UPDATE public.t_text SET ch = E'\\' WHERE id = 7;
UPDATE public.t_text SET nm = repeat('é', 31) || 'x' WHERE id = 20;   -- 63 bytes

CREATE TABLE public.t_bytea (
	id integer PRIMARY KEY,
	b  bytea
);
INSERT INTO public.t_bytea VALUES
	(1, NULL),
	(2, '\x'),
	(3, '\x00'),
	(4, '\x000000'),
	(7, '\x5c4e'),                   -- the bytes of \N
	(8, '\x0a0d095c2e0a'),           -- LF CR TAB \ . LF
	(9, '\000\001abc\\'::bytea),     -- escape-format input
	(10, convert_to('héllo 🐘', 'UTF8')),
	(11, '\xc328fffe80c0'),          -- invalid UTF-8
	(12, '\xdeadbeef');
INSERT INTO public.t_bytea
SELECT 5, string_agg(set_byte('\x00'::bytea, 0, i), ''::bytea ORDER BY i)
FROM generate_series(0, 255) AS i;
INSERT INTO public.t_bytea
SELECT 6, string_agg(set_byte('\x00'::bytea, 0, i), ''::bytea ORDER BY i DESC)
FROM generate_series(0, 255) AS i;
INSERT INTO public.t_bytea
SELECT 13, string_agg(set_byte('\x00'::bytea, 0, i % 256), ''::bytea ORDER BY i)
FROM generate_series(0, 4095) AS i;

CREATE TABLE public.t_bool (
	id integer PRIMARY KEY,
	b  boolean
);
INSERT INTO public.t_bool VALUES (1, true), (2, false), (3, NULL), (4, 'yes'), (5, 'off');

CREATE TABLE public.t_datetime (
	id    integer PRIMARY KEY,
	d     date,
	t     time,
	t3    time(3),
	ttz   timetz,
	ts    timestamp,
	ts0   timestamp(0),
	tstz  timestamptz,
	tstz2 timestamptz(2),
	note  text
);
INSERT INTO public.t_datetime VALUES
	(1, '2024-02-29', '00:00:00', '12:34:56.789', '00:00:00+00', '2024-02-29 12:34:56.789012', '2024-02-29 12:34:56', '2024-02-29 12:34:56.789012+00', '2024-02-29 12:34:56.78+00', 'leap day'),
	(2, 'infinity', '24:00:00', '24:00:00', '24:00:00-15:59', 'infinity', 'infinity', 'infinity', 'infinity', '+infinity, 24:00'),
	(3, '-infinity', '23:59:59.999999', '23:59:59.999', '23:59:59.999999+15:59', '-infinity', '-infinity', '-infinity', '-infinity', '-infinity'),
	(4, '4714-11-24 BC', '00:00:00.000001', NULL, '12:00:00+00:19:32', '4714-11-24 00:00:00 BC', '4714-11-24 00:00:00 BC', '4714-11-24 00:00:00+00 BC', '4714-11-24 00:00:00+00 BC', 'minimum'),
	(5, '0044-03-15 BC', '12:00', NULL, '12:00+05:30', '0044-03-15 12:00:00 BC', NULL, '0044-03-15 12:00:00+01 BC', NULL, 'BC'),
	(6, '0001-01-01', '01:02:03', NULL, '01:02:03-00:00:01', '0001-01-01 00:00:00', NULL, '0001-01-01 00:00:00+00', NULL, 'year 1'),
	(7, '9999-12-31', '23:59:59', NULL, '23:59:59-12', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999+14', '9999-12-31 23:59:59.99-14', 'year 9999'),
	(8, '5874897-12-31', NULL, NULL, NULL, '294276-12-31 23:59:59.999999', NULL, '294276-12-31 23:59:59.999999+00', NULL, 'maximum'),
	(9, '1970-01-01', '00:00:00', NULL, '00:00:00+14', 'epoch', 'epoch', 'epoch', 'epoch', 'epoch'),
	(10, '2038-01-19', '03:14:08', NULL, NULL, '2038-01-19 03:14:08', NULL, '2038-01-19 03:14:08+00', NULL, 'Y2038'),
	(11, NULL, NULL, NULL, NULL, NULL, NULL, '2024-03-10 02:30:00-08', NULL, 'offset -08'),
	(12, NULL, NULL, NULL, NULL, NULL, NULL, '2024-06-15 12:00:00+05:45', NULL, 'offset +05:45'),
	(13, NULL, NULL, NULL, NULL, NULL, NULL, '2024-01-01 00:00:00+14', NULL, 'offset +14'),
	(14, NULL, NULL, NULL, NULL, NULL, NULL, '2024-01-01 00:00:00-12', NULL, 'offset -12'),
	(15, NULL, NULL, NULL, NULL, NULL, NULL, '2024-03-31 02:30:00 Europe/Berlin', NULL, 'DST gap'),
	(16, NULL, NULL, NULL, NULL, NULL, NULL, '2024-10-27 02:30:00 Europe/Berlin', NULL, 'DST overlap'),
	(17, NULL, NULL, NULL, NULL, '1900-01-01 00:00:00', NULL, '1900-01-01 00:00:00 Europe/Amsterdam', NULL, 'LMT era'),
	(18, NULL, NULL, NULL, NULL, NULL, NULL, '2024-07-01 12:00:00 America/St_Johns', NULL, 'offset -02:30'),
	(19, NULL, NULL, NULL, NULL, NULL, NULL, '1900-01-01 00:00:00+00:19:32', NULL, 'offset with seconds'),
	(20, '2000-02-29', '12:00:00.5', '12:00:00.5', '12:00:00.5+01', '2000-02-29 12:00:00.5', '2000-02-29 12:00:00.5', '2000-02-29 12:00:00.5+01', '2000-02-29 12:00:00.555+01', 'rounding of typmods'),
	(21, '0005-02-29 BC', NULL, NULL, NULL, '0005-02-29 23:59:59.999999 BC', NULL, '0005-02-29 23:59:59.999999-03 BC', NULL, 'BC leap day'),
	(22, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'all NULL');

CREATE TABLE public.t_interval (
	id  integer PRIMARY KEY,
	i   interval,
	ids interval day to second(3),
	note text
);
INSERT INTO public.t_interval VALUES
	(1, '1 year 2 mons -3 days 04:05:06.789012', '1 day 00:00:00.1234', 'mixed signs'),
	(2, '-1 year -2 mons +3 days -04:05:06.789012', '-1 day +00:00:00.001', 'mixed signs'),
	(3, '178000000 years', NULL, 'big'),
	(4, '-178000000 years', NULL, 'big negative'),
	(5, '2147483647 mons 2147483647 days 2562047788:00:54.775807', NULL, 'maximum'),
	(6, '-2147483648 mons -2147483648 days -2562047788:00:54.775807', NULL, 'near minimum'),
	(7, '0', '0', 'zero'),
	(8, '1 day -24 hours', '1 day -24 hours', 'not normalized'),
	(9, '@ 1 minute ago', NULL, 'postgres verbose input'),
	(10, 'P1Y2M3DT4H5M6.5S', NULL, 'ISO 8601 input'),
	(11, '0.000001 sec', NULL, 'one microsecond'),
	(12, '-0.000001 sec', NULL, 'minus one microsecond'),
	(13, '1 mon 30 days', NULL, 'not normalized'),
	(14, '25 hours', '25 hours', 'more than a day'),
	(15, '1.5 years 0.5 months', NULL, 'fractions'),
	(16, NULL, NULL, 'NULL');

CREATE TABLE public.t_network (
	id integer PRIMARY KEY,
	u  uuid,
	ip inet,
	cn cidr,
	m6 macaddr,
	m8 macaddr8
);
INSERT INTO public.t_network VALUES
	(1, '00000000-0000-0000-0000-000000000000', '0.0.0.0/0', '0.0.0.0/0', '00:00:00:00:00:00', '00:00:00:00:00:00:00:00'),
	(2, 'ffffffff-ffff-ffff-ffff-ffffffffffff', '255.255.255.255', '255.255.255.255/32', 'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff'),
	(3, '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '192.168.0.1/24', '192.168.0.0/24', '08-00-2b-01-02-03', '08:00:2b:01:02:03'),
	(4, 'A0EEBC999C0B4EF8BB6D6BB9BD380A12', '::1', '::1/128', '0800.2b01.0203', '0800.2b01.0203.0405'),
	(5, md5('uuid')::uuid, '::ffff:1.2.3.4', '::ffff:1.2.3.0/120', NULL, '08-00-2b-01-02-03-04-05'),
	(6, NULL, '2001:db8::ff00:42:8329/64', '2001:db8::/32', NULL, NULL),
	(7, NULL, 'fe80::1', '::/0', NULL, NULL),
	(8, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE public.t_bits (
	id integer PRIMARY KEY,
	b8 bit(8),
	b1 bit(1),
	vb varbit,
	vb10 varbit(10)
);
INSERT INTO public.t_bits VALUES
	(1, B'10101010', B'1', B'', B''),
	(2, B'00000000', B'0', B'1', B'1111111111'),
	(3, X'ff', NULL, B'0000000', B'0'),
	(4, NULL, NULL, NULL, NULL);
INSERT INTO public.t_bits
SELECT 5, B'00000001', B'1', string_agg(CASE WHEN i % 3 = 0 THEN '1' ELSE '0' END, '' ORDER BY i)::varbit, B'101'
FROM generate_series(1, 1000) AS i;

CREATE TABLE public.t_textsearch (
	id integer PRIMARY KEY,
	v  tsvector,
	q  tsquery
);
INSERT INTO public.t_textsearch VALUES
	(1, 'a fat cat sat on a mat and ate a fat rat', 'fat & rat'),
	(2, 'a:1A fat:2B,4C cat:5D rat:7', 'fat & (rat | !cat)'),
	(3, $$'don''t' 'a b' 'back\\slash' "dq"$$, $$'don''t' <-> 'a b'$$),
	(4, '', 'fat <2> mouse'),
	(5, to_tsvector('simple', 'The quick brown fox, the lazy dog: 42 times!') || $$'héllo':1 'wörld':2A '日本語':3 '🐘':4$$::tsvector, 'sup:* & cat:AB'),
	(6, NULL, '!(a | b) & c:*D'),
	(7, 'x:16383', NULL);

CREATE TABLE public.t_json (
	id integer PRIMARY KEY,
	j  json,
	jb jsonb
);
INSERT INTO public.t_json VALUES
	(1, '{"a":1,"a":2}', '{"a":1,"a":2}'),
	(2, '  {"spaced" :  [1, 2 , 3] ,  "x" : null }  ', '  {"spaced" :  [1, 2 , 3] ,  "x" : null }  '),
	(3, '"\u00e9\ud83d\ude00 \u2028"', '"\u00e9\ud83d\ude00 \u2028"'),
	(4, '{"nul":"\u0000"}', '{"nul":"\\u0000 is literal here"}'),
	(5, '[1e400, -0, 0.1, 123456789012345678901234567890.123456789, 1E-400, -1.5e-7]',
	    '[1e400, -0, 0.1, 123456789012345678901234567890.123456789, 1E-400, -1.5e-7]'),
	(6, 'null', 'null'),
	(7, '[]', '{}'),
	(8, '"string with \" and \\ and \n and \t and \/"', '"string with \" and \\ and \n and \t and \/"'),
	(9, '{"日本":"🐘","é":["\\N","\\."]}', '{"日本":"🐘","é":["\\N","\\."]}'),
	(10, '{"b":1,"a":[true,false,null,1.0e2,"x"],"c":{"d":{"e":{"f":[[[]]]}}}}',
	     '{"b":1,"a":[true,false,null,1.0e2,"x"],"c":{"d":{"e":{"f":[[[]]]}}}}'),
	(11, NULL, NULL),
	(12, '12345678901234567890123456789012345678901234567890', '12345678901234567890123456789012345678901234567890'),
	(13, '"NaN"', '"Infinity"');
INSERT INTO public.t_json
SELECT 14, (repeat('[', 200) || '"deep"' || repeat(']', 200))::json,
           (repeat('{"k":', 200) || '"deep"' || repeat('}', 200))::jsonb;

CREATE TABLE public.t_xml (
	id integer PRIMARY KEY,
	x  xml
);
INSERT INTO public.t_xml VALUES
	(1, '<a b="1">x &amp; y &lt;z&gt; "q" ''s''</a>'),
	(2, 'text only, not a document'),
	(3, 'frag <b>one</b><b>two</b> tail'),
	(4, '<?xml version="1.0" encoding="UTF-8"?><doc/>'),
	(5, '<!-- comment --><r><![CDATA[<not markup> & ]]></r>'),
	(6, '<?pi target?><r xmlns="urn:x" xmlns:p="urn:p"><p:e p:attr="v"/></r>'),
	(7, '<r>日本語 🐘 &#x1F418; &#233;</r>'),
	(8, ''),
	(9, '<!DOCTYPE note SYSTEM "note.dtd"><note>doctype</note>'),
	(10, E'<r>\n\t<line attr="a&#10;b"/>\r\n</r>'),
	(11, NULL);

CREATE TABLE public.t_geometry (
	id integer PRIMARY KEY,
	p  point,
	l  line,
	ls lseg,
	bx box,
	pa path,
	pg polygon,
	c  circle
);
INSERT INTO public.t_geometry VALUES
	(1, '(0,0)', '{1,-1,0}', '[(0,0),(1,1)]', '(1,1),(0,0)', '[(0,0),(1,1),(2,0)]', '((0,0),(0,1),(1,1),(1,0))', '<(0,0),1>'),
	(2, '(-0,-0)', '{0,1,-5}', '[(-0,-0),(0,0)]', '(0,0),(1,1)', '((0,0),(1,1),(2,0))', '((1,1))', '<(1e300,1e300),0>'),
	(3, '(1e308,-1e308)', '[(0,0),(1,1)]', '[(1e-300,2),(3,4)]', '(1,1),(1,1)', '[(1,2)]', '((0,0),(10,0),(10,10),(0,10),(5,5))', '<(-1.5,2.25),0.1>'),
	(4, '(NaN,NaN)', NULL, NULL, NULL, NULL, NULL, NULL),
	(5, '(Infinity,-Infinity)', NULL, NULL, NULL, NULL, NULL, NULL),
	(6, '(1.5e-300,2.2250738585072014e-308)', '{-1e10,1e-10,3.5}', NULL, '(1e300,1e300),(-1e300,-1e300)', NULL, NULL, NULL),
	(7, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE public.t_misc (
	id   integer PRIMARY KEY,
	"oid" oid,                        -- a column named oid
	lsn  pg_lsn,
	x    xid,
	x8   xid8,
	ci   cid,
	ti   tid,
	snap pg_snapshot,
	tsnap txid_snapshot,
	ov   oidvector,
	i2v  int2vector,
	rc   refcursor
);
INSERT INTO public.t_misc VALUES
	(1, 0, '0/0', '0', '0', '0', '(0,0)', '10:20:', '10:20:', '0', '0', ''),
	(2, 4294967295, 'FFFFFFFF/FFFFFFFF', '4294967295', '18446744073709551615', '4294967295', '(4294967295,65535)', '10:20:10,14,15', '10:20:10,14,15', '1 2 3', '1 2 3', 'portal name with space'),
	(3, 1259, '16/B374D848', '12345', '123456789012', '42', '(17,3)', '1:1:', '1:1:', '4294967295 0', '-32768 32767', 'c'),
	(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE public.t_ranges (
	id  integer PRIMARY KEY,
	r4  int4range,
	r8  int8range,
	rn  numrange,
	rts tsrange,
	rtz tstzrange,
	rd  daterange,
	m4  int4multirange,
	m8  int8multirange,
	mn  nummultirange,
	mts tsmultirange,
	mtz tstzmultirange,
	md  datemultirange
);
INSERT INTO public.t_ranges VALUES
	(1, 'empty', 'empty', 'empty', 'empty', 'empty', 'empty', '{}', '{}', '{}', '{}', '{}', '{}'),
	(2, '(,)', '(,)', '(,)', '(,)', '(,)', '(,)', '{(,)}', '{(,)}', '{(,)}', '{(,)}', '{(,)}', '{(,)}'),
	(3, '[1,10)', '[-9223372036854775808,9223372036854775807)', '[-1e-100,1e100]', '[-infinity,infinity]',
	    '[2024-01-01 00:00+05:45,2024-01-02 00:00-08)', '[2024-02-29,2024-03-01]',
	    '{[1,3),[5,7)}', '{[1,3),[2,10)}', '{[0.1,0.2],(0.3,0.4),[1e-50,1e-49]}',
	    '{[2024-01-01,2024-02-01),[2024-03-01,infinity]}', '{[2024-01-01 00:00+01,2024-01-01 00:00+00)}',
	    '{[4714-11-24 BC,0001-01-01),[9999-12-31,infinity)}'),
	(4, '(,5]', '[1,1]', '(0.1,0.2]', '(2024-01-01 12:00,)', '(,2024-01-01 00:00-12]', '[4714-11-24 BC,infinity)',
	    '{[-2147483648,-2147483647),[2147483646,2147483647)}', '{(1,2)}', '{empty}', NULL, NULL, '{[2024-01-01,2024-01-01]}'),
	(5, '[-2147483648,2147483647)', NULL, '[1,1]', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE public.t_arrays (
	id    integer PRIMARY KEY,
	ai    integer[],
	ai2   integer[][],
	abig  bigint[],
	asm   smallint[],
	an    numeric[],
	af4   real[],
	af8   double precision[],
	at    text[],
	avc   varchar(5)[],
	ach   char(3)[],
	aby   bytea[],
	abo   boolean[],
	ad    date[],
	atz   timestamptz[],
	atime time[],
	ainv  interval[],
	au    uuid[],
	ainet inet[],
	acidr cidr[],
	amac  macaddr[],
	ajs   json[],
	ajb   jsonb[],
	axml  xml[],
	apt   point[],
	abox  box[],
	abit  bit(3)[],
	avb   varbit[],
	amon  money[],
	atsv  tsvector[],
	arng  int4range[],
	amr   int4multirange[],
	aoid  oid[],
	alsn  pg_lsn[]
);
INSERT INTO public.t_arrays (id, ai, ai2, at) VALUES
	(1, '{}', '{}', '{}'),
	(2, '{NULL}', '{{NULL,NULL},{NULL,NULL}}', '{NULL}'),
	(3, '[0:1]={1,2}', '[1:2][0:1]={{1,2},{3,4}}', '[0:1]={"zero","one"}'),
	(4, '[-5:-3]={1,NULL,3}', '{{{1,2},{3,4}},{{5,6},{7,8}}}', '[-2:-1]={NULL,""}'),
	(5, '{-2147483648,2147483647,0,NULL}', '[2:3][5:6]={{1,NULL},{NULL,4}}',
	    ARRAY['a,b', 'c"d', 'NULL', NULL, '', ' spaces ', E'tab\there', E'nl\nhere', E'back\\slash', '{brace}', '\N', '''', 'é🐘']),
	(6, NULL, NULL, NULL);
UPDATE public.t_arrays SET
	abig  = '{-9223372036854775808,9223372036854775807,NULL}',
	asm   = '[10:11]={-32768,32767}',
	an    = '{NaN,Infinity,-Infinity,1e-1000,123456789012345678901234567890.123456789,NULL}',
	af4   = '{NaN,Infinity,-Infinity,-0,1e-45,NULL}',
	af8   = '{NaN,Infinity,-Infinity,-0,5e-324,1e-300,NULL}',
	avc   = '{"ab,c","d\"e",""}',
	ach   = '{a,"b ",NULL}',
	aby   = ARRAY['\x00'::bytea, '\x'::bytea, NULL, '\x5c4e2c7b7d22'::bytea],
	abo   = '{t,f,NULL}',
	ad    = '{infinity,-infinity,"4714-11-24 BC",9999-12-31,NULL}',
	atz   = ARRAY['2024-03-10 02:30:00-08'::timestamptz, 'infinity', NULL, '2024-06-15 12:00:00+05:45'],
	atime = '{24:00:00,00:00:00.000001}',
	ainv  = '{"1 year -2 mons 3 days -04:05:06.789",NULL,"-00:00:00.000001"}',
	au    = '{00000000-0000-0000-0000-000000000000,NULL}',
	ainet = '{192.168.0.1/24,::1,NULL}',
	acidr = '{10.0.0.0/8,2001:db8::/32}',
	amac  = '{08:00:2b:01:02:03}',
	ajs   = ARRAY['{"a":[1,2,{"b":"c,d"}]}'::json, 'null', NULL, '"\u00e9"'],
	ajb   = ARRAY['{"a":[1,2,{"b":"c,d"}]}'::jsonb, 'null', NULL, '"é"'],
	axml  = ARRAY['<a x="1">t</a>'::xml, 'frag, with comma', NULL],
	apt   = '{"(1,2)","(NaN,-0)",NULL}',
	abox  = '{(1,1),(0,0);(3,3),(2,2);NULL}',
	abit  = '{101,000,NULL}',
	avb   = '{"",1,0101}',
	amon  = ARRAY[12.34::numeric::money, NULL, (-0.01)::numeric::money],
	atsv  = ARRAY['a:1A b:2'::tsvector, ''::tsvector, NULL],
	arng  = '{"[1,2)",empty,"(,)",NULL}',
	amr   = ARRAY['{[1,3),[5,7)}'::int4multirange, '{}', NULL],
	aoid  = '{0,4294967295,NULL}',
	alsn  = '{0/0,FFFFFFFF/FFFFFFFF}'
WHERE id IN (4, 5);

--------------------------------------------------------------------------
-- User-defined types in tables (arrays and composites of them carry type
-- OIDs in their binary form)
--------------------------------------------------------------------------
CREATE TABLE public.t_point_row (x integer, y integer, label text);   -- a table used as a type
INSERT INTO public.t_point_row VALUES (1, 2, 'row type source');

CREATE TABLE public.t_udt (
	id      integer PRIMARY KEY,
	mood    "MixedSchema"."Mood",
	moods   "MixedSchema"."Mood"[],
	addr    "MixedSchema"."Address",
	addrs   "MixedSchema"."Address"[],
	pi      "MixedSchema".pos_int DEFAULT 1,
	pis     "MixedSchema".pos_int[],
	zip     "MixedSchema".zip_code,
	zips    "MixedSchema".zip_code[],
	pair    "MixedSchema".int_pair,
	pairs   "MixedSchema".int_pair[],
	adom    "MixedSchema".addr_dom,
	adoms   "MixedSchema".addr_dom[],
	fr      "MixedSchema".floatrange,
	frs     "MixedSchema".floatrange[],
	fm      "MixedSchema"."Float Multi",
	fms     "MixedSchema"."Float Multi"[],
	mr      "MixedSchema".mood_range,
	mrs     "MixedSchema".mood_range[],
	geo     "MixedSchema".geo,
	rowcol  public.t_point_row,
	rowcols public.t_point_row[],
	ci      text COLLATE "MixedSchema".ci
);
INSERT INTO public.t_udt VALUES
	(1, 'sad', '{sad,ok,happy}',
	 ROW('1 Main St', '12345', '{a,b}', ROW(1.5, -2.25), 'happy', '2024-02-29'),
	 ARRAY[ROW('1 Main St', '12345', '{a,b}', ROW(1.5, -2.25), 'happy', '2024-02-29')::"MixedSchema"."Address"],
	 1, '{1,2,3}', '00000', '{12345,67890}', '{1,2}', '{"{1,2}","{3,4}",NULL}',
	 ROW('dom street', '99999', NULL, NULL, 'ok', NULL),
	 ARRAY[ROW('dom street', '99999', NULL, NULL, 'ok', NULL)::"MixedSchema".addr_dom],
	 '[1.5,2.5)', '{"[1.5,2.5)",empty,"(,)"}', '{[1,2),[3,4]}', ARRAY['{[1,2)}'::"MixedSchema"."Float Multi", '{}'],
	 '[sad,happy)', '{"[sad,happy)","[\"has \\\"dq\\\"\",\"Ünï 🐘\"]",empty}',
	 ROW('NaN', '-0'), ROW(1, 2, 'row type value'), ARRAY[ROW(3, 4, 'a,b')::public.t_point_row, NULL], 'ABC'),
	(2, 'with space', '{"with space","a,b","has \"dq\"","{brace}","NULL",NULL,"back\\slash","quote''s","Ünï 🐘"}',
	 ROW(E'tab\there, "quoted" (paren) {brace} \\ back', '54321', ARRAY['x,y', NULL, '', 'NULL'], ROW('Infinity', '-Infinity'), 'NULL', 'infinity'),
	 ARRAY[ROW(E'line\nbreak', '11111', '{}', NULL, 'a,b', '4714-11-24 BC')::"MixedSchema"."Address",
	       NULL,
	       ROW(NULL, NULL, NULL, NULL, NULL, NULL)::"MixedSchema"."Address",
	       ROW('', NULL, ARRAY[NULL]::text[], ROW(NULL, NULL), '{brace}', NULL)::"MixedSchema"."Address"],
	 2147483647, '[0:2]={5,NULL,7}', NULL, '{NULL}', NULL, '{}',
	 NULL, '{}',
	 '(,)', '{}', '{}', '{}',
	 'empty', '{NULL}',
	 ROW(NULL, NULL), NULL, '{}', 'abc-different'),
	(3, NULL, NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE UNIQUE INDEX t_udt_ci_key ON public.t_udt (ci);   -- nondeterministic: 'ABC' = 'abc'

--------------------------------------------------------------------------
-- Generated, identity, serial, dropped columns
--------------------------------------------------------------------------
CREATE TABLE public.t_generated (
	id     integer PRIMARY KEY,
	w      numeric NOT NULL,
	h      numeric NOT NULL,
	label  text,
	area   numeric GENERATED ALWAYS AS (public.torture_area(w, h)) STORED,
	norm   text GENERATED ALWAYS AS (public.torture_norm(label)) STORED,
	chksum integer GENERATED ALWAYS AS (public.torture_checksum(label)) STORED,
	doubled numeric GENERATED ALWAYS AS (w * 2) STORED,
	CONSTRAINT t_generated_even CHECK (public.torture_is_even(id))
);
INSERT INTO public.t_generated (id, w, h, label) VALUES
	(2, 1.5, 2, '  Hello   World  '),
	(4, 'NaN', 1, E'\tTabs\tAnd\nNewlines '),
	(6, 0, 0, NULL),
	(8, 123456789.123456789, 987654321.987654321, 'ÉTÉ 🐘');

CREATE TABLE public.t_identity_always (
	id    bigint GENERATED ALWAYS AS IDENTITY (START WITH 9000000000000000000 INCREMENT BY 1000) PRIMARY KEY,
	label text
);
INSERT INTO public.t_identity_always (label) SELECT 'row ' || i FROM generate_series(1, 5) AS i;
INSERT INTO public.t_identity_always (id, label) OVERRIDING SYSTEM VALUE VALUES (-5, 'explicit, overriding');

CREATE TABLE public.t_identity_bydefault (
	id    integer GENERATED BY DEFAULT AS IDENTITY (START WITH 2000000000 INCREMENT BY -1000 MINVALUE -2147483648 MAXVALUE 2147483647) PRIMARY KEY,
	label text
);
INSERT INTO public.t_identity_bydefault (label) SELECT 'default ' || i FROM generate_series(1, 4) AS i;
INSERT INTO public.t_identity_bydefault (id, label) VALUES (2147483647, 'explicit max'), (-2147483648, 'explicit min'), (1, 'explicit one');

CREATE TABLE public.t_serial (
	id    serial PRIMARY KEY,
	big   bigserial,
	label text
);
INSERT INTO public.t_serial (label) SELECT 'serial ' || i FROM generate_series(1, 7) AS i;

CREATE TABLE public.t_dropped (
	a integer PRIMARY KEY,
	b text,
	c bytea,
	d jsonb,
	e numeric
);
INSERT INTO public.t_dropped SELECT i, 'b' || i, '\xdead', '{"d":1}', i * 1.5 FROM generate_series(1, 20) AS i;
ALTER TABLE public.t_dropped DROP COLUMN b;
ALTER TABLE public.t_dropped DROP COLUMN d;
ALTER TABLE public.t_dropped ALTER COLUMN e TYPE numeric(20,5);    -- rewrite
INSERT INTO public.t_dropped (a, c, e) SELECT i, '\xbeef', i / 7.0 FROM generate_series(21, 30) AS i;
ALTER TABLE public.t_dropped ADD COLUMN f text DEFAULT 'fast default ✓';     -- attmissingval
ALTER TABLE public.t_dropped ADD COLUMN g timestamptz DEFAULT '2001-02-03 04:05:06+07';
INSERT INTO public.t_dropped (a, c, e, f) VALUES (31, '\x00', 0, 'explicit f'), (32, NULL, NULL, NULL);
ALTER TABLE public.t_dropped DROP COLUMN c;
ALTER TABLE public.t_dropped ADD COLUMN h integer;

DO $$
DECLARE
	cols text;
BEGIN
	SELECT string_agg(format('c%s integer', lpad(i::text, 4, '0')), ', ' ORDER BY i)
	  INTO cols FROM generate_series(1, 1500) AS i;
	EXECUTE format('CREATE TABLE public.t_many_cols (id integer PRIMARY KEY, %s)', cols);
	EXECUTE 'INSERT INTO public.t_many_cols (id) VALUES (1)';
	SELECT string_agg(i::text, ', ' ORDER BY i) INTO cols FROM generate_series(1, 1500) AS i;
	EXECUTE format('INSERT INTO public.t_many_cols VALUES (2, %s)', cols);
	SELECT string_agg(CASE WHEN i % 2 = 0 THEN 'NULL' ELSE (-i)::text END, ', ' ORDER BY i) INTO cols FROM generate_series(1, 1500) AS i;
	EXECUTE format('INSERT INTO public.t_many_cols VALUES (3, %s)', cols);
	EXECUTE 'ALTER TABLE public.t_many_cols DROP COLUMN c0002, DROP COLUMN c1499';
END
$$;

CREATE TABLE public.t_zero_cols ();
INSERT INTO public.t_zero_cols DEFAULT VALUES;
INSERT INTO public.t_zero_cols DEFAULT VALUES;
INSERT INTO public.t_zero_cols DEFAULT VALUES;
CREATE TABLE public.t_zero_cols_empty ();

--------------------------------------------------------------------------
-- Partitioning and inheritance
--------------------------------------------------------------------------
CREATE TABLE public.measurements (
	id     bigint NOT NULL,
	ts     date NOT NULL,
	region text NOT NULL,
	val    numeric,
	note   text,
	PRIMARY KEY (id, ts, region)
) PARTITION BY RANGE (ts);
CREATE TABLE public.measurements_2023 PARTITION OF public.measurements
	FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE public.measurements_2024 PARTITION OF public.measurements
	FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (region);
CREATE TABLE public.measurements_2024_eu PARTITION OF public.measurements_2024 FOR VALUES IN ('eu', 'EU');
CREATE TABLE public.measurements_2024_us PARTITION OF public.measurements_2024 FOR VALUES IN ('us');
CREATE TABLE public.measurements_2024_other PARTITION OF public.measurements_2024 DEFAULT;
-- Created on its own (another column order, a dropped column, another
-- schema), then attached.
CREATE TABLE "MixedSchema".measurements_2025 (
	gone   integer,
	note   text,
	region text NOT NULL,
	val    numeric,
	ts     date NOT NULL,
	id     bigint NOT NULL
);
ALTER TABLE "MixedSchema".measurements_2025 DROP COLUMN gone;
ALTER TABLE public.measurements ATTACH PARTITION "MixedSchema".measurements_2025
	FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.measurements_default PARTITION OF public.measurements DEFAULT;
INSERT INTO public.measurements (id, ts, region, val, note)
SELECT i,
       date '2022-07-01' + (i % 1460),
       (ARRAY['eu', 'us', 'apac', 'EU'])[1 + i % 4],
       round((i * 7919 % 100000) / 100.0, 2),
       CASE WHEN i % 500 = 0 THEN E'note\twith\ttabs' WHEN i % 333 = 0 THEN NULL ELSE 'm' || i END
FROM generate_series(1, 6000) AS i;

CREATE TABLE public.t_hashpart (
	id integer PRIMARY KEY,
	v  text
) PARTITION BY HASH (id);
CREATE TABLE public.t_hashpart_0 PARTITION OF public.t_hashpart FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE public.t_hashpart_1 PARTITION OF public.t_hashpart FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE public.t_hashpart_2 PARTITION OF public.t_hashpart FOR VALUES WITH (MODULUS 3, REMAINDER 2);
INSERT INTO public.t_hashpart SELECT i, md5(i::text) FROM generate_series(1, 300) AS i;

CREATE TABLE public.inh_parent (
	id   integer PRIMARY KEY,
	name text
);
CREATE TABLE public.inh_child (
	extra integer
) INHERITS (public.inh_parent);
INSERT INTO public.inh_parent VALUES (1, 'parent one'), (2, 'parent two');
INSERT INTO public.inh_child VALUES (3, 'child three', 33), (4, 'child four', NULL);

--------------------------------------------------------------------------
-- Unlogged, empty, TOAST, split
--------------------------------------------------------------------------
CREATE UNLOGGED TABLE public.t_unlogged (
	id integer PRIMARY KEY,
	v  text
);
INSERT INTO public.t_unlogged SELECT i, 'unlogged ' || i FROM generate_series(1, 100) AS i;

CREATE TABLE public.t_empty (
	id  integer PRIMARY KEY,
	t   text,
	b   bytea,
	j   jsonb,
	a   integer[],
	m   "MixedSchema"."Mood"[],
	ts  timestamptz
);

CREATE TABLE public.t_toast (
	id     integer PRIMARY KEY,
	note   text,
	t      text,
	t_ext  text,
	t_main text,
	t_lz4  text COMPRESSION lz4,
	b      bytea,
	j      jsonb,
	arr    text[]
);
ALTER TABLE public.t_toast ALTER COLUMN t_ext SET STORAGE EXTERNAL;
ALTER TABLE public.t_toast ALTER COLUMN t_main SET STORAGE MAIN;
-- md5 chain: each block is the md5 of the previous one (incompressible hex)
CREATE FUNCTION public.torture_md5_chain(seed text, blocks integer) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT
	AS $$
	WITH RECURSIVE chain(n, h) AS (
		SELECT 1, pg_catalog.md5($1)
		UNION ALL
		SELECT n + 1, pg_catalog.md5(h) FROM chain WHERE n < $2)
	SELECT pg_catalog.string_agg(h, '' ORDER BY n) FROM chain
$$;
INSERT INTO public.t_toast (id, note, t, t_ext, t_main, t_lz4) VALUES
	(1, '2 MB compressible in every column',
	 repeat('pg_ingest toast ', 131072), repeat('external ', 233017), repeat('main ', 400000), repeat('lz4 ', 500000));
INSERT INTO public.t_toast (id, note, t, t_ext, t_main, t_lz4)
SELECT 2, '1 MB incompressible md5 chains', c, c, c, c
FROM (SELECT public.torture_md5_chain('two', 32768) AS c) AS s;
INSERT INTO public.t_toast (id, note, t, t_ext)
SELECT 3, '100 kB incompressible', public.torture_md5_chain('three', 3200), public.torture_md5_chain('three-ext', 3200);
INSERT INTO public.t_toast (id, note, b)
SELECT 4, '1 MB random-looking bytea', decode(public.torture_md5_chain('four', 65536), 'hex');
INSERT INTO public.t_toast (id, note, b)
SELECT 5, '2 MB bytea of zeros', decode(repeat('00', 2 * 1024 * 1024), 'hex');
INSERT INTO public.t_toast (id, note, j, arr)
SELECT 6, 'big jsonb and text[]',
       (SELECT jsonb_agg(jsonb_build_object('i', i, 'h', md5(i::text), 'u', E'é\t🐘', 'n', i * 1.5)) FROM generate_series(1, 5000) AS i),
       (SELECT array_agg(CASE WHEN i % 100 = 0 THEN NULL ELSE md5(i::text) || E',"\\' END ORDER BY i) FROM generate_series(1, 8000) AS i);
INSERT INTO public.t_toast (id, note, t)
SELECT 7, 'just over the TOAST threshold', public.torture_md5_chain('seven', 70);
INSERT INTO public.t_toast (id, note, t)
SELECT 8, 'just under the TOAST threshold', public.torture_md5_chain('eight', 60);
INSERT INTO public.t_toast (id, note, t)
SELECT 9, 'multibyte 500 kB', repeat('日本語🐘é', 40000);
INSERT INTO public.t_toast (id, note) VALUES (10, 'all NULL');

CREATE TABLE public.split_me (
	id      bigint PRIMARY KEY,
	grp     integer NOT NULL,
	k       uuid NOT NULL,
	payload text,
	amount  numeric(12,2),
	created timestamptz,
	flags   bit(8),
	tags    text[]
);
INSERT INTO public.split_me
SELECT i,
       i % 100,
       md5('k' || i)::uuid,
       CASE WHEN i % 1000 = 0 THEN E'tab\there\nnewline\\backslash ' || md5(i::text)
            ELSE md5(i::text) || ' ' || md5((-i)::text) || ' ' || repeat('x', i % 40) END,
       round((i * 7919 % 100000) / 100.0, 2),
       timestamptz '2020-01-01 00:00:00+00' + i * interval '37 seconds',
       (i % 256)::bit(8),
       CASE WHEN i % 7 = 0 THEN NULL ELSE ARRAY['t' || i % 13, 't' || i % 17] END
FROM generate_series(1, 50000) AS i;
-- Non-HOT updates move tuples to later pages; deletes leave dead tuples.
UPDATE public.split_me SET payload = payload || ' updated', grp = grp + 1000 WHERE id % 97 = 0;
DELETE FROM public.split_me WHERE id % 101 = 0;

--------------------------------------------------------------------------
-- Identifiers
--------------------------------------------------------------------------
CREATE TABLE "MixedSchema"."MixedCase" (
	"Id"       integer PRIMARY KEY,
	"MixedCol" text,
	"UPPER"    integer,
	lower      integer
);
INSERT INTO "MixedSchema"."MixedCase" VALUES (1, 'One', 1, 1), (2, 'Two', NULL, 2);

CREATE TABLE public."we""ird.name" (
	"dot.col"        integer PRIMARY KEY,
	"col with space" text,
	"quote""col"     text,
	"line
break"           text,
	"Ünï Çödé"       text,
	" leading space" integer,
	"$dollar"        integer
);
INSERT INTO public."we""ird.name" VALUES
	(1, 'space', 'quote', 'newline in the column name', 'ü', 1, 1),
	(2, NULL, '"', E'\n', '', NULL, -1);

CREATE TABLE public."tâblé_ünïcode" (
	"çölümn" text PRIMARY KEY,
	"日本語"   integer,
	"🐘"      text
);
INSERT INTO public."tâblé_ünïcode" VALUES ('ä', 1, 'elephant'), ('ß', 2, '🐘'), ('日', 3, NULL);

CREATE TABLE public."select" (
	"from"  integer PRIMARY KEY,
	"where" text
);
INSERT INTO public."select" VALUES (1, 'reserved'), (2, 'words');

CREATE TABLE public."user" (
	"user"         text PRIMARY KEY,
	"current_user" text,
	"table"        integer
);
INSERT INTO public."user" VALUES ('alice', 'bob', 1), ('select', 'from', 2);

CREATE TABLE public."order" (
	"order" integer PRIMARY KEY,
	"group" text,
	"desc"  text
);
INSERT INTO public."order" VALUES (1, 'g', 'first'), (2, 'g', 'second');

CREATE TABLE public.a_table_name_that_is_exactly_sixty_three_bytes_long_xxxxxxxxxxx (
	id integer PRIMARY KEY
);
INSERT INTO public.a_table_name_that_is_exactly_sixty_three_bytes_long_xxxxxxxxxxx VALUES (63);

CREATE TABLE "odd ""schema"" name"."Tab Le" (
	i integer PRIMARY KEY,
	"I" integer
);
INSERT INTO "odd ""schema"" name"."Tab Le" VALUES (1, 2), (3, 4);

--------------------------------------------------------------------------
-- Constraints and keys
--------------------------------------------------------------------------
CREATE TABLE public.t_dup_rows (
	a integer,
	b text
);
INSERT INTO public.t_dup_rows VALUES (1, 'dup'), (1, 'dup'), (1, 'dup'), (2, NULL), (2, NULL), (NULL, NULL), (NULL, NULL), (3, 'once');
ALTER TABLE public.t_dup_rows REPLICA IDENTITY FULL;

CREATE TABLE public.t_nopk (
	v text
);
INSERT INTO public.t_nopk VALUES ('no key'), ('no replica identity');

CREATE TABLE public.parent_multi (
	a integer,
	b text,
	label text,
	PRIMARY KEY (a, b)
);
CREATE TABLE public.child_multi (
	id integer PRIMARY KEY,
	a  integer,
	b  text,
	CONSTRAINT child_multi_fk FOREIGN KEY (a, b) REFERENCES public.parent_multi (a, b)
		MATCH FULL ON UPDATE CASCADE ON DELETE SET NULL
);
INSERT INTO public.parent_multi VALUES (1, 'x', 'one x'), (1, 'y', 'one y'), (2, 'x', 'two x');
INSERT INTO public.child_multi VALUES (1, 1, 'x'), (2, 1, 'y'), (3, NULL, NULL), (4, 2, 'x');

-- Reports come physically before their managers: loading in file order
-- with the FK in place fails.
CREATE TABLE public.employees (
	id         integer PRIMARY KEY,
	manager_id integer REFERENCES public.employees (id),
	name       text NOT NULL,
	salary     numeric CONSTRAINT salary_positive CHECK (salary > 0),
	CONSTRAINT not_own_manager CHECK (id <> manager_id)
);
INSERT INTO public.employees VALUES
	(10, 30, 'report of 30', 100),
	(20, 30, 'another report', 200),
	(30, 40, 'manager', 300),
	(40, NULL, 'boss', 400);

CREATE TABLE public.circ_a (
	id   integer PRIMARY KEY,
	b_id integer NOT NULL
);
CREATE TABLE public.circ_b (
	id   integer PRIMARY KEY,
	a_id integer NOT NULL REFERENCES public.circ_a (id)
);
ALTER TABLE public.circ_a ADD CONSTRAINT circ_a_b_fk FOREIGN KEY (b_id) REFERENCES public.circ_b (id)
	DEFERRABLE INITIALLY DEFERRED;
WITH a AS (INSERT INTO public.circ_a VALUES (1, 101), (2, 102) RETURNING id)
INSERT INTO public.circ_b SELECT id + 100, id FROM a;

-- NOT VALID constraints with rows that violate them.
CREATE TABLE public.t_not_valid (
	id  integer PRIMARY KEY,
	qty integer,
	ref integer
);
INSERT INTO public.t_not_valid VALUES (1, -5, 999), (2, 5, 1), (3, NULL, NULL);
ALTER TABLE public.t_not_valid ADD CONSTRAINT qty_positive CHECK (qty > 0) NOT VALID;
ALTER TABLE public.t_not_valid ADD CONSTRAINT ref_fk FOREIGN KEY (ref) REFERENCES public.t_ints (id) NOT VALID;

CREATE TABLE public.bookings (
	id     integer PRIMARY KEY,
	room   text NOT NULL,
	during tstzrange NOT NULL,
	area   box,
	CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&) WHERE (room <> 'shared'),
	CONSTRAINT no_area_overlap EXCLUDE USING gist (area WITH &&)
);
INSERT INTO public.bookings VALUES
	(1, 'A', '[2024-01-01 10:00+00,2024-01-01 11:00+00)', '(1,1),(0,0)'),
	(2, 'B', '[2024-01-01 11:00+00,2024-01-01 12:00+00)', '(3,3),(2,2)'),
	(3, 'shared', '[2024-01-01 10:30+00,2024-01-01 11:30+00)', NULL),
	(4, 'shared', '[2024-01-01 10:30+00,2024-01-01 11:30+00)', NULL);

CREATE TABLE public.t_unique_deferred (
	id  integer PRIMARY KEY,
	pos integer NOT NULL,
	CONSTRAINT t_unique_deferred_pos UNIQUE (pos) DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO public.t_unique_deferred SELECT i, i FROM generate_series(1, 10) AS i;
UPDATE public.t_unique_deferred SET pos = 11 - pos;          -- transiently duplicates

CREATE TABLE public.t_unique_include (
	code  text NOT NULL,
	label text,
	qty   integer,
	alt   integer,
	CONSTRAINT t_unique_include_code UNIQUE (code) INCLUDE (label, qty),
	CONSTRAINT t_unique_include_alt UNIQUE NULLS NOT DISTINCT (alt)
);
INSERT INTO public.t_unique_include VALUES ('A', 'Alpha', 1, 1), ('B', 'beta', 0, NULL), ('C', 'GAMMA', 2, 3);

--------------------------------------------------------------------------
-- Indexes, statistics, comments, reloptions, row level security
--------------------------------------------------------------------------
CREATE INDEX t_text_lower_idx ON public.t_text (lower(t)) WHERE id < 31;
CREATE INDEX t_text_pattern_idx ON public.t_text (vc text_pattern_ops);
CREATE INDEX t_text_c_idx ON public.t_text (vcn COLLATE "C" DESC NULLS FIRST);
CREATE INDEX split_me_grp_partial ON public.split_me (grp) WHERE amount > 900;
CREATE INDEX split_me_created_brin ON public.split_me USING brin (created);
CREATE INDEX split_me_k_hash ON public.split_me USING hash (k);
CREATE INDEX split_me_payload_expr ON public.split_me (public.torture_norm(payload));
CREATE INDEX split_me_grp_incl ON public.split_me (grp) INCLUDE (amount);
CREATE UNIQUE INDEX t_unique_include_lower_label ON public.t_unique_include (lower(label)) WHERE qty > 0;
CREATE INDEX t_json_gin ON public.t_json USING gin (jb jsonb_path_ops);
CREATE INDEX t_textsearch_gist ON public.t_textsearch USING gist (v);
CREATE INDEX measurements_region_idx ON public.measurements (region, ts);
CREATE INDEX "MixedCase_idx" ON "MixedSchema"."MixedCase" ("MixedCol", lower("MixedCol"));

CREATE STATISTICS public.split_me_stats (ndistinct, dependencies) ON grp, flags FROM public.split_me;

COMMENT ON TABLE public.split_me IS 'split by page ranges: 50,000 rows';
COMMENT ON COLUMN public."we""ird.name"."col with space" IS 'a column with a space, ''quotes'' and "dq"';

CREATE TABLE public.t_reloptions (
	id integer PRIMARY KEY,
	v  text
) WITH (fillfactor = 50, autovacuum_enabled = false, toast_tuple_target = 256);
INSERT INTO public.t_reloptions SELECT i, repeat('r', i) FROM generate_series(1, 200) AS i;

-- Row level security: the owner (and superusers) see every row; any other
-- role without BYPASSRLS sees none, silently.
CREATE TABLE public.t_rls (
	id     integer PRIMARY KEY,
	secret text
);
INSERT INTO public.t_rls VALUES (1, 'hidden from non-owners'), (2, 'also hidden');
ALTER TABLE public.t_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY t_rls_nobody ON public.t_rls USING (false);

--------------------------------------------------------------------------
-- Types whose binary form embeds OIDs of this database, or that have no
-- binary I/O
--------------------------------------------------------------------------
CREATE TABLE public.t_reg (
	id    integer PRIMARY KEY,
	rc    regclass,
	rt    regtype,
	rp    regproc,
	rpr   regprocedure,
	ro    regoper,
	ror   regoperator,
	rn    regnamespace,
	rr    regrole,
	rcfg  regconfig,
	rdict regdictionary,
	rcoll regcollation
);
INSERT INTO public.t_reg VALUES
	(1, 'pg_class', 'integer', 'now', 'abs(integer)', '||/', '+(integer,integer)', 'pg_catalog', 'pg_monitor', 'english', 'simple', '"C"'),
	(2, 'public.split_me', '"MixedSchema"."Mood"', 'public.torture_norm', 'public.torture_area(numeric,numeric)',
	    '|/', '-(bigint,bigint)', '"MixedSchema"', 'pg_read_all_data', 'simple', 'english_stem', '"MixedSchema".ci'),
	(3, '"MixedSchema"."MixedCase"', '"MixedSchema"."Address"[]', 'public.trg_reject', 'public.torture_is_even(bigint)',
	    NULL, NULL, '"odd ""schema"" name"', NULL, NULL, NULL, NULL),
	(4, 'public."we""ird.name"', 'public.t_point_row', NULL, NULL, NULL, NULL, 'public', NULL, NULL, NULL, NULL),
	(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

-- aclitem has no binary send/receive; an EMPTY oidvector or int2vector is
-- sent in binary but refused by its own receive function ("invalid
-- oidvector data").  Only text COPY round-trips this table.
CREATE TABLE public.t_no_binary (
	id   integer PRIMARY KEY,
	acl  aclitem,
	acls aclitem[],
	ov   oidvector,
	i2v  int2vector
);
INSERT INTO public.t_no_binary VALUES
	(1, 'pg_monitor=r/pg_read_all_data', '{pg_monitor=arwdDxt/pg_read_all_data,=r/pg_monitor}', '', ''),
	(2, NULL, NULL, '1 2', '3 4'),
	(3, NULL, NULL, NULL, NULL);

--------------------------------------------------------------------------
-- Views and materialized views
--------------------------------------------------------------------------
CREATE VIEW public.v_employees AS
	SELECT e.id, e.name, m.name AS manager
	FROM public.employees e LEFT JOIN public.employees m ON m.id = e.manager_id;

CREATE VIEW public.v_cheap AS
	SELECT id, label FROM public.t_serial WHERE id < 5
	WITH CASCADED CHECK OPTION;

CREATE RECURSIVE VIEW public.v_chain (id, manager_id, depth) AS
	SELECT id, manager_id, 0 FROM public.employees WHERE manager_id IS NULL
	UNION ALL
	SELECT e.id, e.manager_id, c.depth + 1 FROM public.employees e JOIN v_chain c ON e.manager_id = c.id;

CREATE VIEW "MixedSchema"."V Secure" WITH (security_barrier = true) AS
	SELECT "Id", "MixedCol" FROM "MixedSchema"."MixedCase" WHERE "Id" > 0;

CREATE MATERIALIZED VIEW public.mv_split_stats AS
	SELECT grp, count(*) AS n, sum(amount) AS total, min(created) AS first, max(created) AS last
	FROM public.split_me GROUP BY grp
	WITH DATA;
CREATE UNIQUE INDEX mv_split_stats_grp ON public.mv_split_stats (grp);

CREATE MATERIALIZED VIEW public.mv_never_filled AS
	SELECT id, label FROM public.t_serial
	WITH NO DATA;

--------------------------------------------------------------------------
-- Triggers and rules: created after the data, which they disagree with
--------------------------------------------------------------------------
CREATE TABLE public.t_trigger_upper (
	id   integer PRIMARY KEY,
	name text
);
INSERT INTO public.t_trigger_upper VALUES (1, 'lower case stays lower'), (2, 'mIxEd'), (3, NULL);
CREATE TRIGGER t_trigger_upper_biu BEFORE INSERT OR UPDATE ON public.t_trigger_upper
	FOR EACH ROW EXECUTE FUNCTION public.trg_upper_name();

CREATE TABLE public.t_trigger_reject (
	id   integer PRIMARY KEY,
	name text
);
INSERT INTO public.t_trigger_reject VALUES (1, 'a trigger refuses any insert'), (2, 'two');
CREATE TRIGGER t_trigger_reject_bi BEFORE INSERT ON public.t_trigger_reject
	FOR EACH ROW EXECUTE FUNCTION public.trg_reject();

CREATE TABLE public.t_trigger_always (
	id   integer PRIMARY KEY,
	name text
);
INSERT INTO public.t_trigger_always VALUES (1, 'ENABLE ALWAYS: fires even in replica mode');
CREATE TRIGGER t_trigger_always_bi BEFORE INSERT ON public.t_trigger_always
	FOR EACH ROW EXECUTE FUNCTION public.trg_reject();
ALTER TABLE public.t_trigger_always ENABLE ALWAYS TRIGGER t_trigger_always_bi;

CREATE TABLE public.trigger_audit_log (
	seq        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	table_name text NOT NULL,
	row_id     integer,
	op         text
);
CREATE TABLE public.t_trigger_audit (
	id   integer PRIMARY KEY,
	name text
);
INSERT INTO public.t_trigger_audit VALUES (1, 'before the trigger existed');
CREATE TRIGGER t_trigger_audit_ai AFTER INSERT ON public.t_trigger_audit
	FOR EACH ROW EXECUTE FUNCTION public.trg_audit();
INSERT INTO public.t_trigger_audit VALUES (2, 'logged once');
CREATE CONSTRAINT TRIGGER t_trigger_audit_deferred AFTER INSERT ON public.t_trigger_audit
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.trg_reject();

CREATE TABLE public.rule_log (
	id integer,
	v  text
);
CREATE TABLE public.t_rule_target (
	id integer PRIMARY KEY,
	v  text
);
INSERT INTO public.t_rule_target VALUES (1, 'before the rule');
CREATE RULE t_rule_target_log AS ON INSERT TO public.t_rule_target
	DO ALSO INSERT INTO public.rule_log VALUES (NEW.id, NEW.v);
INSERT INTO public.t_rule_target VALUES (2, 'logged by the rule');

--------------------------------------------------------------------------
-- Sequences
--------------------------------------------------------------------------
CREATE SEQUENCE public.seq_not_called START 100;
SELECT setval('public.seq_not_called', 5000, false);

CREATE SEQUENCE public.seq_big AS bigint;
SELECT setval('public.seq_big', 9223372036854775000);

CREATE SEQUENCE "MixedSchema"."Seq Desc" AS integer INCREMENT BY -3 MINVALUE -1000000 MAXVALUE -1 START WITH -1 CACHE 20 CYCLE;
SELECT count(nextval('"MixedSchema"."Seq Desc"')) FROM generate_series(1, 10);

CREATE SEQUENCE public.seq_unused;

-- identity and serial sequences moved away from where their rows left them
SELECT setval(pg_get_serial_sequence('public.t_serial', 'big'), 1000000000000);
