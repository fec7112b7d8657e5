--
-- ingest.start, ingest.wait, ingest.abort, ingest.verify and the views:
-- bad inputs, a small full load from a second database of this instance,
-- and who may do what.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_ingest;
RESET client_min_messages;
CREATE DATABASE regress_ingest_fl;
SELECT format('host=%s port=%s dbname=regress_ingest_fl',
              current_setting('unix_socket_directories'),
              current_setting('port')) AS src \gset

\c regress_ingest_fl
CREATE SCHEMA sales;
CREATE TYPE sales.state AS ENUM ('new', 'paid');
CREATE TABLE sales.customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE sales.orders (id bigserial PRIMARY KEY,
                           customer_id int REFERENCES sales.customers,
                           state sales.state, states sales.state[],
                           total numeric(10,2), note text);
CREATE INDEX ON sales.orders (customer_id);
INSERT INTO sales.customers SELECT g, 'c' || g FROM generate_series(1, 100) g;
INSERT INTO sales.orders (customer_id, state, states, total, note)
  SELECT 1 + g % 100, 'paid', '{new,paid}', g / 7.0, repeat('x', g % 50)
  FROM generate_series(1, 2000) g;
CREATE TABLE public.audit (at timestamptz, what text);   -- no primary key
INSERT INTO public.audit SELECT '2020-01-01'::timestamptz + g * interval '1 hour', 'event ' || g
  FROM generate_series(1, 300) g;
CREATE TABLE public.skipped (x int);
INSERT INTO public.skipped VALUES (1);
\c contrib_regression

-- The statuses and events, without what changes from run to run.
CREATE FUNCTION regress_events(n text) RETURNS TABLE(phase text, level text, kind text, message text)
LANGUAGE sql AS $$
  SELECT phase, level, kind, regexp_replace(message, '[0-9]+/[0-9A-F]+|[0-9A-F]{8}-[0-9A-F]{8}-[0-9]+|[0-9:]{8}|[0-9]+ kB', 'X', 'g')
  FROM ingest.events WHERE name = n ORDER BY id
$$;

-- The error of a statement, without the socket's directory.
CREATE FUNCTION regress_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN regexp_replace(SQLERRM, 'socket "[^"]*"', 'socket "X"');
END
$$;

--
-- Bad arguments: each is a clear error, and nothing is recorded.
--
SELECT ingest.start(NULL);
SELECT ingest.start(:'src', name => NULL);
SELECT ingest.start(:'src', name => '');
SELECT ingest.start(:'src', name => 'has space');
SELECT ingest.start(:'src', name => repeat('x', 49));
SELECT ingest.start(:'src', mode => 'full');
SELECT ingest.start(:'src', mode => 'cdc');
SELECT ingest.start(:'src', mode => 'full-load', schema => 'keep');
SELECT ingest.start(:'src', mode => 'full-load', table_jobs => 0);
SELECT ingest.start(:'src', mode => 'full-load', index_jobs => 33);
SELECT ingest.start(:'src', mode => 'full-load', table_jobs => NULL);
SELECT ingest.start(:'src', mode => 'full-load', split_tables_larger_than => 'big');
SELECT ingest.start(:'src', mode => 'full-load', split_tables_larger_than => '-1GB');
SELECT ingest.start(:'src', mode => 'full-load', split_tables_larger_than => '100kB');
SELECT ingest.start(:'src', mode => 'full-load', include_schemas => ARRAY['nosuch']);
SELECT ingest.start(:'src', mode => 'full-load', exclude_schemas => ARRAY['sales', NULL]);
SELECT ingest.start(:'src', mode => 'full-load', include_tables => ARRAY['sales.nosuch']);
SELECT ingest.start(:'src', mode => 'full-load', exclude_tables => ARRAY['a.b.c']);
SELECT ingest.start(:'src', mode => 'full-load', exclude_extensions => ARRAY['postgis']);
SELECT ingest.start('host=127.0.0.1 port=1 password=Sup3rSecret', mode => 'full-load');
SELECT regress_try(format('SELECT ingest.start(%L, mode => %L)',
                          replace(:'src', 'regress_ingest_fl', 'regress_no_such_db'), 'full-load'));
SELECT ingest.start(:'src', mode => 'full-load', schema => 'existing');
-- an empty filter is an error, not "everything"
SELECT ingest.start(:'src', mode => 'full-load', include_tables => '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT ingest.start(:'src', mode => 'full-load', include_schemas => '{}');
SELECT ingest.start(:'src', mode => 'full-load', exclude_tables => '{}');
SELECT ingest.start(:'src', mode => 'full-load', exclude_schemas => '{}');
SELECT ingest.start(:'src', mode => 'full-load', exclude_extensions => '{}');
SELECT ingest.start(:'src', mode => 'full-load', existing_rows => 'keep');
SELECT ingest.start(:'src', mode => 'full-load', existing_rows => NULL);
SELECT ingest.start(:'src', untracked_tables => 'ignore');
-- the source cannot be this very database
SELECT ingest.start(replace(:'src', 'regress_ingest_fl', current_database()), mode => 'full-load');
\echo :LAST_ERROR_SQLSTATE
-- change data capture cannot carry the changes of tables without a key
SELECT ingest.start(:'src', name => 'untracked');
\echo :LAST_ERROR_SQLSTATE
-- a source schema named like pg_ingest's own schema here
\c regress_ingest_fl
CREATE SCHEMA ingest;
CREATE TABLE ingest.events (id int);
INSERT INTO ingest.events VALUES (1);
\c contrib_regression
SELECT ingest.start(:'src', mode => 'full-load');
SELECT ingest.start(:'src', mode => 'full-load', include_schemas => ARRAY['sales', 'ingest']);
\echo :LAST_ERROR_SQLSTATE
\c regress_ingest_fl
DROP SCHEMA ingest CASCADE;
\c contrib_regression
SELECT count(*) AS migrations FROM ingest.migration;

SELECT ingest.wait('nosuch');
SELECT ingest.wait('default', 'done');
SELECT ingest.wait('default', 'completed', '-1 s');
SELECT ingest.wait(NULL);
SELECT ingest.abort('nosuch');
SELECT ingest.abort(NULL);
SELECT * FROM ingest.verify('nosuch');
SELECT * FROM ingest.verify('default', 'sum');

--
-- A full load, with filters: every table of schema sales, and public.audit;
-- public.skipped is left out.
--
SELECT ingest.start(:'src', name => 'fl', mode => 'full-load',
                    table_jobs => 2, index_jobs => 2,
                    split_tables_larger_than => '1MB',
                    exclude_tables => ARRAY['skipped']);
-- the name is taken while it runs
SELECT ingest.start(:'src', name => 'fl', mode => 'full-load');
-- waiting inside the starting transaction cannot work
BEGIN;
SELECT ingest.start(:'src', name => 'fl2', mode => 'full-load');
SELECT ingest.wait('fl2', 'completed', '1 s');
ROLLBACK;
-- nor in REPEATABLE READ
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT ingest.wait('fl', 'completed', '1 s');
ROLLBACK;

SELECT ingest.wait('fl', 'completed', '2 min', progress => NULL);
SELECT name, phase, regexp_replace(source, 'host=\S+ port=\d+', 'host=X port=X') AS source,
       tables_total, tables_done, bytes_total = bytes_done AS all_bytes,
       rows_done, progress_pct, indexes_total, indexes_done, last_error, errors
  FROM ingest.status WHERE name = 'fl';
SELECT source_table, target_table, state, parts, part, rows_done, format, attempts, error
  FROM ingest.tables WHERE name = 'fl' ORDER BY source_table, part;
SELECT * FROM regress_events('fl');

-- what arrived
SELECT count(*), sum(total) FROM sales.orders;
SELECT states FROM sales.orders WHERE id = 1;
SELECT to_regclass('public.skipped') IS NULL AS skipped_left_out;
SELECT conname, contype FROM pg_constraint
 WHERE conrelid IN ('sales.orders'::regclass, 'sales.customers'::regclass) ORDER BY 1;
-- by name: the indexes are built in parallel, in no fixed order
SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 'sales.orders'::regclass ORDER BY indexrelid::regclass::text;
SELECT last_value, is_called FROM sales.orders_id_seq;
SELECT table_name, source_rows, target_rows, status FROM ingest.verify('fl');
SELECT table_name, source_rows, target_rows, source_hash IS NULL AS no_hash, status
  FROM ingest.verify('fl', 'count');

-- a difference is reported
DELETE FROM public.audit WHERE what = 'event 7';
SELECT table_name, source_rows, target_rows, status FROM ingest.verify('fl') WHERE status <> 'MATCH';

-- its tables have rows now: a second copy is refused, naming them
SELECT ingest.start(:'src', name => 'again', mode => 'full-load');
\echo :LAST_ERROR_SQLSTATE

-- finished: its name is free again, and it cannot be aborted
SELECT ingest.abort('fl');
SELECT ingest.wait('fl', 'copying', '1 s');

--
-- schema => 'existing' wants the tables here, empty.
--
SELECT ingest.start(:'src', name => 'ex', mode => 'full-load', schema => 'existing');
TRUNCATE sales.orders, sales.customers, public.audit;
CREATE TABLE public.skipped (x int);
SELECT ingest.start(:'src', name => 'ex', mode => 'full-load', schema => 'existing');
SELECT ingest.wait('ex', 'completed', '2 min', progress => NULL);
SELECT name, phase, tables_total, tables_done, indexes_total, errors FROM ingest.status WHERE name = 'ex';
SELECT status, count(*) FROM ingest.verify('ex') GROUP BY 1;

--
-- Abort while it runs: a prepared transaction on the source holds a lock
-- that keeps pg_dump (and so the migration) waiting in phase starting.
--
\c regress_ingest_fl
BEGIN;
LOCK TABLE public.audit IN ACCESS EXCLUSIVE MODE;
PREPARE TRANSACTION 'regress_ingest_hold';
\c contrib_regression
SELECT ingest.start(:'src', name => 'ab', mode => 'full-load', existing_rows => 'truncate');
SELECT level, kind, message FROM regress_events('ab') WHERE kind = 'start' AND level = 'WARNING';
SELECT ingest.wait('ab', 'schema', '1 s');
SELECT count(*) AS coordinators FROM ingest._live() l JOIN ingest.migration m ON m.id = l.migration_id
 WHERE m.name = 'ab' AND l.kind = 'coordinator';
SELECT ingest.abort('ab');
SELECT name, phase FROM ingest.status WHERE name = 'ab';
SELECT count(*) AS workers_left FROM ingest._live() l JOIN ingest.migration m ON m.id = l.migration_id
 WHERE m.name = 'ab';
SELECT phase, kind, message FROM regress_events('ab') WHERE kind = 'phase';
SELECT ingest.abort('ab');
\c regress_ingest_fl
ROLLBACK PREPARED 'regress_ingest_hold';
\c contrib_regression

--
-- include_schemas => ARRAY['public'] (pg_dump then writes CREATE SCHEMA
-- public), and a table excluded whose sequence an included table uses.
--
\c regress_ingest_fl
CREATE TABLE public.seq_owner (id serial PRIMARY KEY);
CREATE TABLE public.seq_user (id int PRIMARY KEY DEFAULT nextval('public.seq_owner_id_seq'), v text);
INSERT INTO public.seq_user (v) VALUES ('a'), ('b');
\c contrib_regression
SELECT ingest.start(:'src', name => 'pub', mode => 'full-load', include_schemas => ARRAY['public'],
                    exclude_tables => ARRAY['seq_owner', 'audit', 'skipped']);
SELECT ingest.wait('pub', 'completed', '2 min', progress => NULL);
SELECT phase, errors, last_error FROM ingest.status WHERE name = 'pub';
SELECT level, kind, message FROM regress_events('pub') WHERE level <> 'INFO';
SELECT to_regclass('public.seq_owner') IS NULL AS owner_left_out;
INSERT INTO public.seq_user (v) VALUES ('c') RETURNING id;
DROP TABLE public.seq_user;
DROP SEQUENCE public.seq_owner_id_seq;

--
-- Privileges: operators use the views and functions; nobody else may.
--
CREATE ROLE regress_ingest_op2 IN ROLE ingest_admin;
CREATE ROLE regress_ingest_nobody2;
SET ROLE regress_ingest_op2;
SELECT name, phase FROM ingest.status ORDER BY name;
SELECT count(*) > 0 AS sees_events FROM ingest.events;
SELECT ingest.start(:'src', name => 'op', mode => 'full-load');   -- no password
SELECT source FROM ingest.migration;                               -- passwords live there
RESET ROLE;
SET ROLE regress_ingest_nobody2;
\set VERBOSITY terse
SELECT * FROM ingest.status;
SELECT ingest.start(:'src', name => 'nobody', mode => 'full-load');
\set VERBOSITY default
RESET ROLE;

DROP ROLE regress_ingest_op2;
DROP ROLE regress_ingest_nobody2;
DROP FUNCTION regress_events(text);
DROP FUNCTION regress_try(text);
DROP DATABASE regress_ingest_fl;
