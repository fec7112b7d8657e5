--
-- 0.2.0: ingest.metrics(), ingest.metric_values, ingest.progress and the
-- progress NOTICEs of ingest.wait(), on migrations that are not running
-- (held before pg_dump, or completed), so that the output has one shape.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_ingest;
RESET client_min_messages;
CREATE DATABASE regress_ingest_pr;
SELECT format('host=%s port=%s dbname=regress_ingest_pr',
              current_setting('unix_socket_directories'),
              current_setting('port')) AS src \gset
\c regress_ingest_pr
CREATE SCHEMA prog;
CREATE TABLE prog.items (id int PRIMARY KEY, v text);
INSERT INTO prog.items SELECT g, repeat('v', g % 30) FROM generate_series(1, 500) g;
\c contrib_regression

-- the families, in order, whatever migrations the database holds
SELECT line FROM regexp_split_to_table(ingest.metrics(), E'\n') WITH ORDINALITY AS l(line, n)
 WHERE line LIKE '# TYPE %' ORDER BY n;

-- A migration held in phase starting: a prepared transaction on the
-- source holds a lock that keeps its pg_dump waiting.
\c regress_ingest_pr
BEGIN;
LOCK TABLE prog.items IN ACCESS EXCLUSIVE MODE;
PREPARE TRANSACTION 'regress_ingest_pr_hold';
\c contrib_regression
SELECT ingest.start(:'src', name => 'pr', mode => 'full-load', include_schemas => ARRAY['prog']);
-- one NOTICE after 2 s, none at 4 s: the timeout (3 s) comes first
SELECT ingest.wait('pr', 'schema', '3 s', progress => '2 s');
-- silenced
SELECT ingest.wait('pr', 'schema', '3 s', progress => NULL);
SELECT ingest.wait('pr', 'schema', '2 s', progress => '0 s');
SELECT name, phase, pct, tables, indexes, rate, eta, lag, errors FROM ingest.progress WHERE name = 'pr';
SELECT line FROM regexp_split_to_table(ingest.metrics(), E'\n') AS line
 WHERE line LIKE 'pg_ingest_phase{migration="pr"%' OR line LIKE 'pg_ingest_tables{migration="pr"%';
SELECT ingest.abort('pr');
\c regress_ingest_pr
ROLLBACK PREPARED 'regress_ingest_pr_hold';
\c contrib_regression
SELECT migration, phase FROM ingest.metric_values WHERE migration = 'pr';

-- The same name again, to the end: the completed one is what is shown.
SELECT ingest.start(:'src', name => 'pr', mode => 'full-load', include_schemas => ARRAY['prog']);
SELECT ingest.wait('pr', 'completed', '2 min', progress => NULL);
SELECT name, phase, pct, tables, indexes, rate, eta, lag, errors FROM ingest.progress WHERE name = 'pr';
SELECT migration, database, phase, tables, tables_copied, copied_rows, copy_progress_ratio,
       table_size_bytes = copied_bytes AS all_bytes, indexes, indexes_built, errors_total,
       retries_total, caught_up, source_reachable, last_error_timestamp_seconds
  FROM ingest.metric_values WHERE migration = 'pr';
-- the exposition: HELP and TYPE of each family and pr's samples, with the
-- figures that change from run to run (times, sizes, rates) as N
SELECT CASE WHEN line ~ '^pg_ingest_(started_timestamp_seconds|table_size_bytes|copied_bytes|copy_rate_bytes_per_second)\{'
            THEN regexp_replace(line, ' \S+$', ' N') ELSE line END AS line
  FROM regexp_split_to_table(ingest.metrics(), E'\n') WITH ORDINALITY AS l(line, n)
 WHERE line LIKE '#%' OR line LIKE '%migration="pr"%' ORDER BY n;
-- it ends with a newline, and says nothing of the connection string
SELECT right(ingest.metrics(), 1) = E'\n' AS ends_with_newline,
       strpos(ingest.metrics(), 'host=') = 0 AS no_conninfo;

-- who may read it
CREATE ROLE regress_pr_nobody;
SET ROLE regress_pr_nobody;
SELECT ingest.metrics();
SELECT * FROM ingest.progress;
RESET ROLE;
DROP ROLE regress_pr_nobody;
