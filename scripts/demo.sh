#!/usr/bin/env bash
# pg_ingest demo: installs what it needs, builds and installs pg_ingest,
# starts a throwaway source and target cluster on 127.0.0.1, loads a sample
# database (pgbench plus a few tables of mixed types) into the source,
# checks it with ingest.preflight, migrates it with ingest.start (full load),
# shows ingest.status while it runs, and compares both sides with
# ingest.verify.  Works as root or as a user with sudo.
#
#   ./scripts/demo.sh [scale]        (pgbench scale, default 5)
#
# The clusters are stopped at the end; KEEP=1 leaves them running.

. "$(dirname "$0")/lib.sh"

SCALE=${1:-5}
install_packages
build_and_install

WORK=$(scratch_dir demo)
SRC_PORT=$(free_port 25432)
TGT_PORT=$(free_port $((SRC_PORT + 1)))
cleanup() {
	if [ "${KEEP:-0}" != 1 ]; then
		stop_cluster "$WORK/source"
		stop_cluster "$WORK/target"
		rm -rf "$WORK"
	else
		say "clusters left running: source port $SRC_PORT, target port $TGT_PORT, in $WORK"
	fi
}
trap cleanup EXIT

say "starting source (port $SRC_PORT) and target (port $TGT_PORT) in $WORK"
start_cluster "$WORK/source" "$SRC_PORT" "$(source_conf)"
start_cluster "$WORK/target" "$TGT_PORT" "$(target_conf)"

SRC_PSQL=(as_user "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK/source" -p "$SRC_PORT" -U postgres)
TGT_PSQL=(as_user "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -h "$WORK/target" -p "$TGT_PORT" -U postgres)

say "loading the sample database into the source (pgbench scale $SCALE)"
"${SRC_PSQL[@]}" -d postgres <<'SQL'
SET log_statement = 'none';
SET password_encryption = 'scram-sha-256';
CREATE ROLE migrator LOGIN REPLICATION PASSWORD 'demo-Secret-1';
CREATE DATABASE shop OWNER migrator;
SQL
as_user "$PGBIN/pgbench" -i -q -s "$SCALE" -h "$WORK/source" -p "$SRC_PORT" -U migrator shop
"${SRC_PSQL[@]}" -d shop <<'SQL'
SET ROLE migrator;
CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                        name text NOT NULL, email text UNIQUE, tags text[],
                        created timestamptz DEFAULT now());
CREATE TABLE orders (id bigserial PRIMARY KEY,
                     customer_id bigint REFERENCES customers, state order_state,
                     total numeric(12,2), items jsonb, note text);
INSERT INTO customers (name, email, tags)
  SELECT 'customer ' || g, 'c' || g || '@example.com', ARRAY['t' || g % 7]
  FROM generate_series(1, 10000) g;
INSERT INTO orders (customer_id, state, total, items)
  SELECT 1 + g % 10000, (ARRAY['new','paid','shipped']::order_state[])[1 + g % 3],
         (g % 1000) / 7.0, jsonb_build_object('sku', g % 97, 'qty', g % 5)
  FROM generate_series(1, 50000) g;
CREATE INDEX ON orders (customer_id);
CREATE VIEW open_orders AS SELECT * FROM orders WHERE state <> 'shipped';
SQL

SOURCE="host=127.0.0.1 port=$SRC_PORT user=migrator dbname=shop password=demo-Secret-1"

say "target: CREATE DATABASE shop; CREATE EXTENSION pg_ingest; SELECT * FROM ingest.preflight(...)"
"${TGT_PSQL[@]}" -d postgres -q -c "CREATE DATABASE shop"
"${TGT_PSQL[@]}" -d shop -c "CREATE EXTENSION pg_ingest" \
	-c "SELECT check_name, status, detail FROM ingest.preflight('$SOURCE')"

say "target: SELECT ingest.start('...', mode => 'full-load', table_jobs => 2, index_jobs => 2)"
"${TGT_PSQL[@]}" -d shop -c "SELECT ingest.start('$SOURCE', mode => 'full-load', table_jobs => 2, index_jobs => 2, split_tables_larger_than => '32MB')"

say "target: ingest.status while it runs"
STATUS="SELECT phase, tables_done || '/' || tables_total AS tables, pg_size_pretty(bytes_done) AS copied, progress_pct AS pct, pg_size_pretty(copy_rate_bytes_per_s) || '/s' AS rate, eta, indexes_done || '/' || indexes_total AS indexes FROM ingest.status"
for _ in $(seq 1 600); do
	line=$("${TGT_PSQL[@]}" -d shop -At -F ' | ' -c "$STATUS")
	echo "  $line"
	case "$line" in completed*|failed*|aborted*) break ;; esac
	sleep 1
done

say "target: SELECT * FROM ingest.status"
"${TGT_PSQL[@]}" -d shop -x -c "SELECT * FROM ingest.status"
say "target: SELECT * FROM ingest.verify()"
"${TGT_PSQL[@]}" -d shop -c "SELECT * FROM ingest.verify()"
mismatches=$("${TGT_PSQL[@]}" -d shop -At -c "SELECT count(*) FROM ingest.verify() WHERE status <> 'MATCH'")

say "demo finished: $mismatches table(s) differ"
[ "$mismatches" = 0 ]
