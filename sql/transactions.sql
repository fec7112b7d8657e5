--
-- The SQL functions are transactional: each one inside BEGIN ... ROLLBACK,
-- inside a savepoint rolled back, and before PREPARE TRANSACTION leaves the
-- migrations, the source's slots and the workers exactly as they were, or
-- refuses to run.  The source is a second database of this instance.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_ingest;
RESET client_min_messages;
CREATE DATABASE regress_ingest_tx;
SELECT format('host=%s port=%s dbname=regress_ingest_tx',
              current_setting('unix_socket_directories'),
              current_setting('port')) AS src \gset

\c regress_ingest_tx
CREATE TABLE tx_items (id int PRIMARY KEY, v text);
INSERT INTO tx_items SELECT g, 'v' || g FROM generate_series(1, 100) g;
CREATE TABLE tx_other (id int PRIMARY KEY);
\c contrib_regression

-- What must not change: the migrations, the slots on the source, the
-- workers (with their pids) and the migration slots in shared memory.
CREATE FUNCTION regress_tx_state(pids bool DEFAULT false) RETURNS text
LANGUAGE sql AS $$
SELECT format('migrations: %s; source slots: %s; workers: %s; shared slots: %s',
  (SELECT string_agg(name || ' ' || phase || COALESCE(' stop ' || stop_lsn::text, ''), ', ' ORDER BY id)
     FROM ingest.migration WHERE name LIKE 'tx%'),
  (SELECT count(*) FROM pg_replication_slots
    WHERE slot_name LIKE 'pg\_ingest\_%' AND database = 'regress_ingest_tx'),
  (SELECT string_agg(kind || CASE WHEN pids THEN ' ' || pid ELSE '' END, ',' ORDER BY kind)
     FROM ingest._live()),
  (SELECT count(*) FROM ingest._stream()))
$$;

-- poll until a query returns what is expected (or a minute has passed)
CREATE FUNCTION regress_tx_poll(q text, expected text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  r text;
BEGIN
  FOR i IN 1..600 LOOP
    EXECUTE q INTO r;
    EXIT WHEN r IS NOT DISTINCT FROM expected;
    PERFORM pg_sleep(0.1);
  END LOOP;
  RETURN r;
END
$$;

SELECT ingest.start(:'src', name => 'tx', include_tables => ARRAY['tx_items'],
                    table_jobs => 1, index_jobs => 1);
SELECT ingest.wait('tx', 'streaming', '2 min', progress => NULL);
SELECT regress_tx_state();
SELECT regress_tx_state(true) AS before \gset

--
-- start: the migration and its slot in shared memory go with the rollback
--
BEGIN;
SELECT ingest.start(:'src', name => 'tx2', mode => 'full-load', include_tables => ARRAY['tx_other']);
ROLLBACK;
SELECT regress_tx_state(true) = :'before' AS unchanged;
BEGIN;
SAVEPOINT s;
SELECT ingest.start(:'src', name => 'tx2', mode => 'full-load', include_tables => ARRAY['tx_other']);
ROLLBACK TO s;
COMMIT;
SELECT regress_tx_state(true) = :'before' AS unchanged;
BEGIN;
SELECT ingest.start(:'src', name => 'tx2', mode => 'full-load', include_tables => ARRAY['tx_other']);
PREPARE TRANSACTION 'regress_tx';
SELECT regress_tx_state(true) = :'before' AS unchanged;

--
-- abort, cutover and cleanup cannot be undone: no transaction block
--
BEGIN;
SELECT ingest.abort('tx');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT ingest.abort('tx');
ROLLBACK TO s;
COMMIT;
BEGIN;
SELECT ingest.cutover('tx', '5 s');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT ingest.cutover('tx', '5 s');
ROLLBACK TO s;
COMMIT;
BEGIN;
SELECT ingest.cleanup('tx');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT ingest.cleanup('tx');
ROLLBACK TO s;
COMMIT;
-- from a function called in a subtransaction
DO $$ BEGIN PERFORM ingest.abort('tx'); EXCEPTION WHEN division_by_zero THEN NULL; END $$;
SELECT regress_tx_state(true) = :'before' AS unchanged;

--
-- stop_at: the stop is handed to the workers at commit
--
BEGIN;
SELECT ingest.stop_at('0/1', 'tx');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT ingest.stop_at('0/1', 'tx');
ROLLBACK TO s;
COMMIT;
BEGIN;
SELECT ingest.stop_at('0/1', 'tx');
PREPARE TRANSACTION 'regress_tx';
-- none of them reached the workers (they would stop at once)
SELECT ingest.wait('tx', 'stopping', '3 s') AS stopped;
SELECT regress_tx_state(true) = :'before' AS unchanged;

--
-- pause and resume change the catalog, which the workers read once
-- committed
--
BEGIN;
SELECT ingest.pause('tx');
ROLLBACK;
SELECT regress_tx_state(true) = :'before' AS unchanged;
BEGIN;
SAVEPOINT s;
SELECT ingest.pause('tx');
ROLLBACK TO s;
COMMIT;
SELECT regress_tx_state(true) = :'before' AS unchanged;
BEGIN;
SELECT ingest.pause('tx');
PREPARE TRANSACTION 'regress_tx';
SELECT regress_tx_state(true) = :'before' AS unchanged;

SELECT ingest.pause('tx');
SELECT regress_tx_state();
SELECT regress_tx_state(true) AS before \gset
BEGIN;
SELECT ingest.resume('tx');
ROLLBACK;
SELECT regress_tx_state(true) = :'before' AS unchanged;
BEGIN;
SAVEPOINT s;
SELECT ingest.resume('tx');
ROLLBACK TO s;
COMMIT;
SELECT regress_tx_state(true) = :'before' AS unchanged;
BEGIN;
SELECT ingest.resume('tx');
PREPARE TRANSACTION 'regress_tx';
SELECT regress_tx_state(true) = :'before' AS unchanged;
SELECT ingest.resume('tx');
SELECT ingest.wait('tx', 'streaming', '1 min', progress => NULL);
SELECT regress_tx_state();
SELECT regress_tx_state(true) AS before \gset

--
-- wait, verify and preflight only read: they may even be prepared
--
BEGIN;
SELECT ingest.wait('tx', 'streaming', '10 s', progress => NULL);
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT ingest.wait('tx', 'streaming', '10 s', progress => NULL);
ROLLBACK TO s;
COMMIT;
BEGIN;
SELECT ingest.wait('tx', 'streaming', '10 s', progress => NULL);
PREPARE TRANSACTION 'regress_tx';
ROLLBACK PREPARED 'regress_tx';
SELECT regress_tx_state(true) = :'before' AS unchanged;
BEGIN;
SELECT table_name, status FROM ingest.verify('tx');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT table_name, status FROM ingest.verify('tx');
ROLLBACK TO s;
COMMIT;
BEGIN;
SELECT table_name, status FROM ingest.verify('tx');
PREPARE TRANSACTION 'regress_tx';
ROLLBACK PREPARED 'regress_tx';
SELECT regress_tx_state(true) = :'before' AS unchanged;
BEGIN;
SELECT count(*) > 0 AS checked FROM ingest.preflight(:'src');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT count(*) > 0 AS checked FROM ingest.preflight(:'src');
ROLLBACK TO s;
COMMIT;
BEGIN;
SELECT count(*) > 0 AS checked FROM ingest.preflight(:'src');
PREPARE TRANSACTION 'regress_tx';
ROLLBACK PREPARED 'regress_tx';
SELECT regress_tx_state(true) = :'before' AS unchanged;

--
-- what is released from a savepoint commits with the transaction
--
BEGIN;
SAVEPOINT s;
SELECT ingest.start(:'src', name => 'tx2', mode => 'full-load', include_tables => ARRAY['tx_other']);
RELEASE s;
COMMIT;
SELECT ingest.wait('tx2', 'completed', '2 min', progress => NULL);
BEGIN;
SAVEPOINT s;
SELECT ingest.stop_at('0/1', 'tx');
RELEASE s;
COMMIT;
SELECT ingest.wait('tx', 'completed', '2 min', progress => NULL);
SELECT regress_tx_poll('SELECT regress_tx_state()',
  'migrations: tx completed stop 0/1, tx2 completed; source slots: 0; workers: ; shared slots: 0');
SELECT count(*) AS prepared FROM pg_prepared_xacts;

--
-- abort at once after start: no worker of the migration escapes (a late
-- worker checks its slot when it starts), nothing is left on the source
--
SELECT ingest.start(:'src', name => 'tx3', include_tables => ARRAY['tx_other']);
SELECT ingest.abort('tx3');
SELECT count(*) AS workers_left FROM ingest._live();
SELECT regress_tx_poll('SELECT regress_tx_state()',
  'migrations: tx completed stop 0/1, tx2 completed, tx3 aborted; source slots: 0; workers: ; shared slots: 0');

--
-- A NOTIFY payload cut to its length never cuts a character in two
--
CREATE DATABASE regress_ingest_utf8 ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0;
\c regress_ingest_utf8
SET client_min_messages = warning;
CREATE EXTENSION pg_ingest;
RESET client_min_messages;
SELECT length(p->>'message') AS chars, octet_length(p->>'message') AS bytes,
       right(p->>'message', 5) AS tail
  FROM ingest._notification('n', 'p', 'e', NULL, 'x' || repeat(U&'\00e9', 600)) p;
\c contrib_regression
DROP DATABASE regress_ingest_utf8;

DROP FUNCTION regress_tx_state(bool);
DROP FUNCTION regress_tx_poll(text, text);
DROP DATABASE regress_ingest_tx;
