--
-- Change data capture: full-load-and-cdc and cdc from a second database of
-- this instance, stop_at, cutover, pause, resume, cleanup, the status
-- columns and the NOTIFY payload; bad inputs.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_ingest;
RESET client_min_messages;
CREATE DATABASE regress_ingest_cdc;
SELECT format('host=%s port=%s dbname=regress_ingest_cdc',
              current_setting('unix_socket_directories'),
              current_setting('port')) AS src \gset

\c regress_ingest_cdc
CREATE TABLE items (id int PRIMARY KEY, name text, qty int, price numeric, doc text);
INSERT INTO items SELECT g, 'item ' || g, g % 10, g / 4.0, repeat(md5(g::text), 100)
  FROM generate_series(1, 500) g;
CREATE TABLE nokey (v text, n int);
ALTER TABLE nokey REPLICA IDENTITY FULL;
INSERT INTO nokey SELECT 'v' || g, g FROM generate_series(1, 20) g;
CREATE TABLE scratch (x int PRIMARY KEY);
INSERT INTO scratch SELECT generate_series(1, 10);
CREATE TABLE seqd (id serial PRIMARY KEY, v text);
INSERT INTO seqd (v) SELECT 's' || g FROM generate_series(1, 5) g;
CREATE TABLE only_fl (x int);
ALTER TABLE only_fl REPLICA IDENTITY FULL;  -- else CDC modes refuse it
\c contrib_regression

--
-- Bad inputs.
--
SELECT ingest.stop_at(NULL);
SELECT ingest.stop_at('0/1', NULL);
SELECT ingest.stop_at('garbage');
SELECT ingest.stop_at('0/1', 'nosuch');
SELECT ingest.cutover('nosuch');
SELECT ingest.cutover('nosuch', NULL);
SELECT ingest.cleanup('nosuch');
SELECT ingest.cleanup(NULL);
SELECT ingest.pause('nosuch');
SELECT ingest.resume('nosuch');

--
-- A live migration: copy, then stream.
--
SELECT ingest.start(:'src', name => 'cdc1', table_jobs => 1, index_jobs => 1);
SELECT ingest.stop_at('0/0', 'cdc1');
SELECT ingest.wait('cdc1', 'streaming', '2 min', progress => NULL);
SELECT name, phase, slot_name LIKE 'pg\_ingest\_%' AS has_slot,
       received_lsn IS NOT NULL AS receiving, applied_lsn IS NOT NULL AS applying,
       source_lsn IS NOT NULL AS source_lsn_known, lag_bytes >= 0 AS lag_bytes_ok,
       lag_seconds >= 0 AS lag_seconds_ok, apply_rate >= 0 AS rate_ok,
       stop_lsn, spool_bytes >= 0 AS spool_ok, last_error
  FROM ingest.status WHERE name = 'cdc1';
-- a migration that is streaming cannot be cleaned up
SELECT ingest.cleanup('cdc1');

-- changes on the source: inserts, updates (one of a key, one leaving a
-- TOASTed column alone), deletes, a truncate, a table without a key
\c regress_ingest_cdc
INSERT INTO items SELECT g, 'new ' || g, 1, 1.5, NULL FROM generate_series(501, 520) g;
UPDATE items SET qty = qty + 100 WHERE id <= 50;
UPDATE items SET id = id + 10000 WHERE id = 7;
DELETE FROM items WHERE id BETWEEN 100 AND 109;
UPDATE items SET price = 'NaN' WHERE id = 11;
TRUNCATE scratch;
INSERT INTO scratch VALUES (42);
INSERT INTO seqd (v) SELECT 'later' || g FROM generate_series(1, 7) g;
UPDATE nokey SET n = n * 2 WHERE n <= 5;
DELETE FROM nokey WHERE n = 20;
\c contrib_regression

-- pause: the applier holds, the phase says so; resume goes back
SELECT ingest.pause('cdc1');
SELECT phase FROM ingest.status WHERE name = 'cdc1';
SELECT ingest.pause('cdc1');
SELECT ingest.resume('cdc1');
SELECT phase IN ('catching_up', 'streaming') AS applying_again FROM ingest.status WHERE name = 'cdc1';

-- cutover: stop at the source's current position, wait for completed
SELECT ingest.cutover('cdc1', '2 min') IS NOT NULL AS cut_over;
SELECT name, phase, stop_lsn IS NOT NULL AS stopped_at_lsn,
       applied_lsn IS NOT NULL AS applied_lsn_kept, last_error, errors
  FROM ingest.status WHERE name = 'cdc1';
SELECT table_name, source_rows, target_rows, status FROM ingest.verify('cdc1');
SELECT id, qty FROM items WHERE id IN (1, 7, 10007) ORDER BY id;
SELECT price FROM items WHERE id = 11;
SELECT count(*) AS doc_kept FROM items WHERE id <= 50 AND doc IS NOT NULL;
SELECT * FROM scratch;
-- sequences are set from the source's current values at the stop
SELECT last_value, is_called FROM seqd_id_seq;
-- nothing is left on the source, and cleanup is safe (twice)
\c regress_ingest_cdc
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name LIKE 'pg\_ingest\_%';
\c contrib_regression
SELECT ingest.cleanup('cdc1');
SELECT ingest.cleanup('cdc1');
SELECT ingest.stop_at('0/1', 'cdc1');
SELECT ingest.pause('cdc1');

--
-- Mode cdc: the data is here already; changes from now on.
--
SELECT ingest.start(:'src', name => 'cdc2', mode => 'cdc', schema => 'existing');
SELECT ingest.wait('cdc2', 'streaming', '2 min', progress => NULL);
\c regress_ingest_cdc
INSERT INTO items VALUES (9999, 'late', 9, 9, 'late');
DELETE FROM nokey WHERE n = 19;
\c contrib_regression
SELECT ingest.cutover('cdc2', '2 min') IS NOT NULL AS cut_over;
SELECT table_name, status FROM ingest.verify('cdc2');
SELECT tables_total, phase FROM ingest.status WHERE name = 'cdc2';
SELECT state, count(*) FROM ingest.tables WHERE name = 'cdc2' GROUP BY 1;

-- a stop LSN the migration has already passed stops it at once
SELECT ingest.start(:'src', name => 'cdc3', mode => 'cdc', schema => 'existing');
SELECT ingest.wait('cdc3', 'streaming', '2 min', progress => NULL);
SELECT ingest.stop_at('0/1', 'cdc3');
SELECT ingest.wait('cdc3', 'completed', '2 min', progress => NULL);

-- stop_at needs change data capture (a lock on the source holds this
-- full load in its first phase)
\c regress_ingest_cdc
BEGIN;
LOCK TABLE only_fl IN ACCESS EXCLUSIVE MODE;
PREPARE TRANSACTION 'regress_ingest_cdc_hold';
\c contrib_regression
SELECT ingest.start(:'src', name => 'fl', mode => 'full-load', include_tables => ARRAY['only_fl']);
SELECT ingest.stop_at('0/1', 'fl');
SELECT ingest.cutover('fl');
SELECT ingest.pause('fl');
SELECT ingest.cleanup('fl');
SELECT ingest.abort('fl');
\c regress_ingest_cdc
ROLLBACK PREPARED 'regress_ingest_cdc_hold';
\c contrib_regression

--
-- NOTIFY pg_ingest payload: one JSON object.
--
SELECT ingest._notification('cdc1', 'streaming', 'caught_up', '0/16B3748', 'the target has caught up');
SELECT ingest._notification('x"y', 'failed', 'failed', NULL, E'line\nbreak');
SELECT json_typeof(p), p->>'name', p->>'phase', p->>'event', p->>'lsn',
       length(p->>'message') AS message_cut_to
  FROM ingest._notification('n', 'p', 'e', NULL, repeat('x', 2000)) p;
SELECT kind, count(*) > 0 AS seen FROM ingest.events WHERE name = 'cdc1'
  AND kind IN ('slot', 'stream', 'caught_up', 'stop') GROUP BY 1 ORDER BY 1;

DROP DATABASE regress_ingest_cdc;
