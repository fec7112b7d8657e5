-- bench/sql/mixed_schema.sql: the second schema of the benchmark's source
-- database, next to pgbench's tables.  Run by bench/run.pl as the owner of
-- the database (migrator):
--
--   psql -v rows_max=N -f mixed_schema.sql bench
--
-- It creates schema "mixed" with 40 tables:
--   * mixed.customers, referenced by foreign keys from every third table;
--   * mixed.t01 .. mixed.t39, whose row counts grow with the cube of i, from 0
--     (t01 is empty) to :rows_max (t39);
-- with built-in types only plus one enum (mixed.mood): int, bigint,
-- numeric(12,2), numeric, float8, text, varchar, timestamptz, date, bool,
-- jsonb, uuid, bytea, int[], the enum, and on two tables a TOASTed text.
-- Every seventh table has no primary key (like pgbench_history); a few have
-- secondary indexes (btree, unique, partial, GIN).  Values include NULLs.
-- Run VACUUM ANALYZE afterwards (as a superuser, to avoid warnings about the
-- shared catalogs).

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- psql variables are not expanded inside a DO block: pass it as a setting
SELECT set_config('bench.rows_max', :'rows_max', false) \g /dev/null

CREATE SCHEMA mixed;
CREATE TYPE mixed.mood AS ENUM ('sad', 'ok', 'happy', 'ecstatic');

CREATE TABLE mixed.customers (
	id      bigint PRIMARY KEY,
	name    text NOT NULL,
	email   varchar(120) UNIQUE,
	created timestamptz NOT NULL,
	mood    mixed.mood
);
INSERT INTO mixed.customers
SELECT g, 'customer ' || g, 'c' || g || '@example.com',
       timestamptz '2020-01-01 00:00:00+00' + g * interval '17 minutes',
       CASE WHEN g % 13 = 0 THEN NULL
            ELSE (enum_range(NULL::mixed.mood))[1 + g % 4] END
FROM generate_series(1, greatest(current_setting('bench.rows_max')::int / 4, 1)) g;

DO $$
DECLARE
	rows_max  int := current_setting('bench.rows_max')::int;
	ncust     int := greatest(rows_max / 4, 1);
	-- column kinds: name, type, value expression of g (the row number)
	kinds text[][] := ARRAY[
		['i4',   'integer',       '(g * 7919) % 100003'],
		['i8',   'bigint',        'g::bigint * 1000003'],
		['money','numeric(12,2)', 'round((random() * 100000)::numeric, 2)'],
		['ratio','numeric',       'CASE WHEN g % 17 = 0 THEN NULL ELSE g::numeric / 7 END'],
		['f8',   'float8',        'random() * 1e6'],
		['txt',  'text',          'md5(g::text) || repeat('' lorem'', g % 5)'],
		['code', 'varchar(64)',   '''v-'' || g'],
		['ts',   'timestamptz',   'timestamptz ''2021-01-01 00:00:00+00'' + g * interval ''37 seconds'''],
		['day',  'date',          'date ''2000-01-01'' + g % 10000'],
		['flag', 'boolean',       'CASE WHEN g % 11 = 0 THEN NULL ELSE g % 2 = 0 END'],
		['doc',  'jsonb',         'jsonb_build_object(''g'', g, ''tags'', jsonb_build_array(''a'' || g % 5, g % 3), ''ok'', g % 2 = 0)'],
		['uid',  'uuid',          'gen_random_uuid()'],
		['bin',  'bytea',         'decode(md5(g::text), ''hex'')'],
		['arr',  'integer[]',     'ARRAY[g, g % 10, g % 100]'],
		['mood', 'mixed.mood',    '(enum_range(NULL::mixed.mood))[1 + g % 4]']
	];
	i int;
	k int;
	nrows bigint;
	tbl text;
	cols text;
	vals text;
	has_ts bool;
	has_doc bool;
BEGIN
	FOR i IN 1 .. 39 LOOP
		tbl := format('mixed.t%s', lpad(i::text, 2, '0'));
		nrows := round(rows_max * ((i - 1) / 38.0) ^ 3);

		-- key: bigserial or plain integer; every seventh table has none
		IF i % 7 = 0 THEN
			cols := 'id integer NOT NULL';
			vals := 'g';
		ELSIF i % 2 = 1 THEN
			cols := 'id bigserial PRIMARY KEY';
			vals := 'DEFAULT';
		ELSE
			cols := 'id integer PRIMARY KEY';
			vals := 'g';
		END IF;

		IF i % 3 = 0 THEN
			cols := cols || format(', customer_id bigint REFERENCES mixed.customers');
			vals := vals || format(', 1 + g %% %s', ncust);
		END IF;

		-- about half of the kinds, a different selection per table
		has_ts := false;
		has_doc := false;
		FOR k IN 1 .. array_length(kinds, 1) LOOP
			CONTINUE WHEN (i + k) % 2 = 0;
			cols := cols || format(', c_%s %s', kinds[k][1], kinds[k][2]);
			vals := vals || ', ' || kinds[k][3];
			has_ts := has_ts OR kinds[k][1] = 'ts';
			has_doc := has_doc OR kinds[k][1] = 'doc';
		END LOOP;

		-- two tables carry a ~2.2 kB incompressible text: stored in TOAST
		IF i IN (12, 25) THEN
			cols := cols || ', big text';
			vals := vals || ', (SELECT string_agg(md5(g::text || x), '''') FROM generate_series(1, 70) x)';
			nrows := least(nrows, rows_max / 50);
		END IF;

		EXECUTE format('CREATE TABLE %s (%s)', tbl, cols);
		-- INSERT ... SELECT DEFAULT is not allowed: list the columns instead
		IF vals LIKE 'DEFAULT%' THEN
			EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM generate_series(1, %s) g',
				tbl,
				(SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
				 FROM pg_attribute
				 WHERE attrelid = tbl::regclass AND attnum > 1 AND NOT attisdropped),
				substr(vals, length('DEFAULT, ') + 1), nrows);
		ELSE
			EXECUTE format('INSERT INTO %s SELECT %s FROM generate_series(1, %s) g',
				tbl, vals, nrows);
		END IF;

		-- a few secondary indexes
		IF i % 6 = 0 THEN
			EXECUTE format('CREATE INDEX ON %s (customer_id)', tbl);
		END IF;
		IF i % 5 = 0 AND has_ts THEN
			EXECUTE format('CREATE INDEX ON %s (c_ts)', tbl);
		END IF;
		IF i % 5 = 1 AND i > 1 AND has_doc THEN
			EXECUTE format('CREATE INDEX ON %s USING gin (c_doc)', tbl);
		END IF;
		IF i % 8 = 4 THEN
			EXECUTE format('CREATE INDEX ON %s (id) WHERE id %% 10 = 0', tbl);
		END IF;
	END LOOP;
END
$$;

-- a unique index on a uuid column, a multi-column index, and a view
CREATE UNIQUE INDEX ON mixed.t39 (c_uid);
CREATE INDEX ON mixed.t38 (c_code, c_day);
CREATE VIEW mixed.big_spenders AS
	SELECT c.id, c.name, sum(t.c_ratio) AS spent
	FROM mixed.customers c JOIN mixed.t39 t ON t.customer_id = c.id
	GROUP BY c.id, c.name;
