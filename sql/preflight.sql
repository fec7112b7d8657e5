--
-- ingest.preflight: every check that one instance can exercise, bad
-- inputs, and who may call it.  The source is a second database of this
-- instance.
--
CREATE EXTENSION pg_ingest;
SELECT ingest.version() = extversion AS version_matches
  FROM pg_extension WHERE extname = 'pg_ingest';
SHOW pg_ingest.preflight_timeout;

CREATE DATABASE regress_ingest_src;
SELECT format('host=%s port=%s dbname=regress_ingest_src',
              current_setting('unix_socket_directories'),
              current_setting('port')) AS src \gset
-- The socket directory and the login user's name differ between machines.
CREATE FUNCTION regress_mask(t text) RETURNS text LANGUAGE sql AS $$
  SELECT regexp_replace(replace(t, '"' || session_user || '"', '"USER"'),
                        'socket "[^"]*"', 'socket "SOCKET"', 'g')
$$;
CREATE ROLE regress_ingest_reader LOGIN REPLICATION;
CREATE ROLE regress_ingest_norepl LOGIN;

\c regress_ingest_src
CREATE TABLE public.with_pk (id int PRIMARY KEY, v text);
CREATE TABLE public.no_pk (v text);
CREATE TABLE public.full_ident (v text);
ALTER TABLE public.full_ident REPLICA IDENTITY FULL;
CREATE TABLE public.parted (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE public.parted_1 PARTITION OF public.parted FOR VALUES FROM (0) TO (100);
CREATE SEQUENCE public.seq1;
CREATE SCHEMA hidden;
CREATE TABLE hidden.secret (x int PRIMARY KEY);
GRANT SELECT ON ALL TABLES IN SCHEMA public TO regress_ingest_reader;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO regress_ingest_reader;
\c contrib_regression

-- A healthy source, as superuser: one row per check, in a stable order.
SELECT check_name, status FROM ingest.preflight(:'src');

-- The details of the checks whose text does not depend on the machine.
SELECT check_name, regress_mask(detail) AS detail, hint FROM ingest.preflight(:'src')
 WHERE check_name IN ('wal_level', 'replication_privilege', 'replication_slots',
                      'wal_senders', 'select_privileges', 'replica_identity',
                      'prepared_transactions', 'leftover_slots',
                      'target_extensions', 'target_name_conflicts');

-- The details that do vary, shape only.
SELECT check_name,
       regexp_replace(regexp_replace(split_part(detail, ' (format', 1),
                                     '\d+(\.\d+)*( \([^)]*\))?', 'N', 'g'),
                      'N [kMG]?B', 'SIZE') AS detail
  FROM ingest.preflight(:'src')
 WHERE check_name IN ('source_connection', 'source_version', 'wal_sender_timeout',
                      'wal2json', 'target_worker_processes');

-- distribute => (issue 11) needs the extension citus here: without it,
-- start refuses (and leaves nothing, inside a transaction block too),
-- preflight says so in its row, and ingest.distribution() is NULL.
SELECT count(*) AS migrations_before FROM ingest.migration;
SELECT ingest.start(:'src', name => 'citus_map', mode => 'full-load', distribute => '{"public.t": "id"}');
BEGIN;
SELECT ingest.start(:'src', name => 'citus_map', mode => 'full-load', distribute => '{"public.t": "id"}');
ROLLBACK;
SELECT count(*) AS migrations_after FROM ingest.migration;
SELECT status, detail FROM ingest.preflight(:'src', distribute => '{"public.t": "id"}')
 WHERE check_name = 'citus_distribution';
SELECT ingest.distribution('pg_class'::regclass) IS NULL AS not_citus,
       ingest.distribution(0::regclass) IS NULL AS no_table;

-- A source user that cannot read everything, then one without REPLICATION.
SELECT check_name, status, detail FROM ingest.preflight(:'src' || ' user=regress_ingest_reader')
 WHERE status <> 'PASS';
SELECT check_name, status, regress_mask(detail) AS detail FROM ingest.preflight(:'src' || ' user=regress_ingest_norepl')
 WHERE check_name IN ('replication_privilege', 'wal2json', 'select_privileges');

-- A table of the source that exists here already.
CREATE TABLE public.with_pk (id int);
SELECT status, detail FROM ingest.preflight(:'src') WHERE check_name = 'target_name_conflicts';
DROP TABLE public.with_pk;

-- A leftover slot of an earlier attempt.
\c regress_ingest_src
SELECT 'ok' FROM pg_create_logical_replication_slot('pg_ingest_regress_leftover', 'test_decoding');
\c contrib_regression
SELECT status, detail, hint FROM ingest.preflight(:'src') WHERE check_name = 'leftover_slots';
\c regress_ingest_src
SELECT pg_drop_replication_slot('pg_ingest_regress_leftover');

-- What no migration carries: an unlogged table's changes, a large object;
-- and rows added to an extension's configuration table (here made one by
-- hand), which are counted and copied.
CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY);
SELECT lo_from_bytea(0, 'large') > 0 AS lo_made;
CREATE EXTENSION seg;
CREATE TABLE public.seg_config (id int PRIMARY KEY, v text);
ALTER EXTENSION seg ADD TABLE public.seg_config;
UPDATE pg_extension SET extconfig = ARRAY['public.seg_config'::regclass::oid],
       extcondition = ARRAY['WHERE id > 10'] WHERE extname = 'seg';
INSERT INTO public.seg_config VALUES (1, 'the extension''s'), (11, 'a user''s'), (12, 'a user''s');
\c contrib_regression
SELECT check_name, status, regexp_replace(detail, '\d+ (bytes|kB)', 'SIZE') AS detail, hint
  FROM ingest.preflight(:'src')
 WHERE check_name IN ('replica_identity', 'unlogged_tables', 'large_objects', 'extension_config_rows');
\c regress_ingest_src
DROP TABLE public.scratch;
SELECT count(lo_unlink(oid)) AS unlinked FROM pg_largeobject_metadata;
DROP EXTENSION seg;

-- A prepared transaction: reported, and it holds back the creation of
-- the test slot, which gives up after pg_ingest.preflight_timeout.
BEGIN;
INSERT INTO public.with_pk VALUES (1, 'prepared');
PREPARE TRANSACTION 'regress_ingest_px';
\c contrib_regression
SET pg_ingest.preflight_timeout = 1;
SELECT check_name, status, detail FROM ingest.preflight(:'src')
 WHERE check_name IN ('prepared_transactions', 'wal2json');
RESET pg_ingest.preflight_timeout;
\c regress_ingest_src
ROLLBACK PREPARED 'regress_ingest_px';
\c contrib_regression

--
-- Bad inputs: an ERROR only for NULL; everything about the connection is
-- a single FAIL row, with no password in it.
--
SELECT * FROM ingest.preflight(NULL);
SELECT * FROM ingest.preflight('');
SELECT * FROM ingest.preflight('   ');
SELECT * FROM ingest.preflight('this is not a connection string');
SELECT * FROM ingest.preflight('host=127.0.0.1 port=1 password=Sup3rSecret');
SELECT count(*) AS rows, bool_and(status = 'FAIL') AS all_fail,
       bool_or(detail LIKE '%Sup3rSecret%' OR hint LIKE '%Sup3rSecret%') AS leaks
  FROM ingest.preflight('host=127.0.0.1 port=1 password=Sup3rSecret');
SELECT * FROM ingest.preflight('host=127.0.0.1 password=Sup3r Secret');
SELECT * FROM ingest.preflight('postgresql://someone:Sup3rSecret@127.0.0.1:1/db?connect_timeout=x');
SELECT * FROM ingest.preflight(:'src' || ' replication=database');
SELECT check_name, status, regress_mask(detail) AS detail FROM ingest.preflight(:'src' || ' user=regress_no_such_user');
SELECT check_name, status, regress_mask(detail) AS detail
  FROM ingest.preflight(replace(:'src', 'regress_ingest_src', 'regress_no_such_db'));

--
-- Privileges.
--
SELECT has_function_privilege('public', 'ingest.preflight(text, jsonb)', 'EXECUTE') AS public_may_execute;
CREATE ROLE regress_ingest_op IN ROLE ingest_admin;
CREATE ROLE regress_ingest_nobody;
SET ROLE regress_ingest_op;
-- no password in the string
SELECT * FROM ingest.preflight(:'src');
-- a password the source never asks for (this instance trusts local users)
SELECT * FROM ingest.preflight(:'src' || ' password=unused');
RESET ROLE;
SET ROLE regress_ingest_nobody;
SELECT * FROM ingest.preflight('host=127.0.0.1 port=1');
RESET ROLE;
-- EXECUTE granted by mistake is not enough
GRANT USAGE ON SCHEMA ingest TO regress_ingest_nobody;
GRANT EXECUTE ON FUNCTION ingest.preflight(text, jsonb) TO regress_ingest_nobody;
SET ROLE regress_ingest_nobody;
SELECT * FROM ingest.preflight('host=127.0.0.1 port=1');
RESET ROLE;
REVOKE ALL ON FUNCTION ingest.preflight(text, jsonb) FROM regress_ingest_nobody;
REVOKE ALL ON SCHEMA ingest FROM regress_ingest_nobody;

-- The source keeps nothing of the checks.
\c regress_ingest_src
SELECT count(*) AS slots FROM pg_replication_slots;
\c contrib_regression

DROP ROLE regress_ingest_op;
DROP ROLE regress_ingest_nobody;
DROP DATABASE regress_ingest_src;
DROP ROLE regress_ingest_reader;
DROP ROLE regress_ingest_norepl;
DROP FUNCTION regress_mask(text);
