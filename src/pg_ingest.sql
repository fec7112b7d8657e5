/* pg_ingest install script: the SQL objects of the extension (schema ingest). */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_ingest" to load this file. \quit

-- The operators' role.  Roles belong to the cluster, so another database
-- may have created it already; it stays when the extension is dropped.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ingest_admin') THEN
		CREATE ROLE ingest_admin NOLOGIN;
	END IF;
END
$$;
COMMENT ON ROLE ingest_admin IS 'members may run pg_ingest migrations (functions and views of schema ingest)';

GRANT USAGE ON SCHEMA @extschema@ TO ingest_admin;

CREATE FUNCTION @extschema@.version()
RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ingest_version';
COMMENT ON FUNCTION @extschema@.version() IS 'version of the loaded pg_ingest library';

CREATE FUNCTION @extschema@.preflight(source text)
RETURNS TABLE(check_name text, status text, detail text, hint text)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'ingest_preflight';
COMMENT ON FUNCTION @extschema@.preflight(text) IS 'checks a source and this server before a migration: one row per check, PASS, WARN or FAIL';
REVOKE ALL ON FUNCTION @extschema@.preflight(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.preflight(text) TO ingest_admin;
