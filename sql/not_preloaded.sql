--
-- Without pg_ingest in shared_preload_libraries the extension installs,
-- but every function that needs the workers refuses with a hint.
--
CREATE EXTENSION pg_ingest;
SELECT ingest.version() IS NOT NULL AS loaded;
SELECT * FROM ingest.preflight('host=127.0.0.1 port=1');
