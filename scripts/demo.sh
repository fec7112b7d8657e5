#!/usr/bin/env bash
# pg_ingest demo: installs what it needs, builds and installs pg_ingest,
# starts a throwaway source and target cluster on 127.0.0.1, loads a sample
# database (pgbench plus a few tables of mixed types) into the source and
# migrates it live: pgbench keeps writing to the source while pg_ingest
# copies it and streams its changes (ingest.start, default mode
# full-load-and-cdc); ingest.status is shown as it copies and catches up;
# then the application "stops", ingest.cutover() applies the last changes
# and stops, and ingest.verify compares both sides.  Works as root or as a
# user with sudo.
#
#   ./scripts/demo.sh [scale]        (pgbench scale, default 5)
#
# The clusters are stopped at the end; KEEP=1 leaves them running.

# shellcheck source=scripts/lib.sh
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
-- pgbench's history has no key: give it a replica identity, or ingest.start
-- refuses it (its UPDATEs and DELETEs could not be carried)
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
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

# The application: pgbench's transactions, and one in ten places an order.
cat > "$WORK/orders.sql" <<'SQL'
\set c random(1, 10000)
INSERT INTO orders (customer_id, state, total, items)
  VALUES (:c, 'new', random() * 100, jsonb_build_object('sku', :c % 97, 'qty', 1));
UPDATE customers SET tags = tags || 'ordered'::text WHERE id = :c;
SQL
chmod a+r "$WORK/orders.sql"
say "source: the application starts writing (pgbench, 4 clients, 200 transactions/s)"
as_user "$PGBIN/pgbench" -n -c 4 -R 200 -T 3600 -b tpcb-like@9 -f "$WORK/orders.sql@1" \
	-h "$WORK/source" -p "$SRC_PORT" -U migrator shop >"$WORK/pgbench.log" 2>&1 &
PGBENCH=$!
stop_app() {
	# pgbench runs under runuser when we are root: stop it, not just runuser
	pkill -TERM -P "$PGBENCH" 2>/dev/null || true
	kill "$PGBENCH" 2>/dev/null || true
	wait "$PGBENCH" 2>/dev/null || true
	for _ in $(seq 1 100); do
		[ "$("${SRC_PSQL[@]}" -d shop -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'")" = 0 ] && return
		sleep 0.1
	done
	echo "pgbench still connected to the source" >&2
	return 1
}
trap 'stop_app || true; cleanup' EXIT

say "target: SELECT ingest.start('...', table_jobs => 2, index_jobs => 2)   -- mode full-load-and-cdc"
"${TGT_PSQL[@]}" -d shop -c "SELECT ingest.start('$SOURCE', table_jobs => 2, index_jobs => 2, split_tables_larger_than => '32MB')"

say "target: ingest.status while it copies, then catches up with the changes"
STATUS="SELECT phase, tables_done || '/' || tables_total AS tables, pg_size_pretty(bytes_done) AS copied,
	progress_pct AS pct, indexes_done || '/' || indexes_total AS indexes,
	'lag ' || COALESCE(pg_size_pretty(lag_bytes), '-') || ' ' || COALESCE(lag_seconds || ' s', '-') AS lag,
	COALESCE(apply_rate || ' changes/s', '') AS applying, CASE WHEN caught_up THEN 'caught up' ELSE '' END
	FROM ingest.status"
streaming=0
for _ in $(seq 1 600); do
	line=$("${TGT_PSQL[@]}" -d shop -At -F ' | ' -c "$STATUS")
	echo "  $(date +%T) $line"
	case "$line" in
	completed*|failed*|aborted*) break ;;
	streaming*) streaming=$((streaming + 1)); [ "$streaming" -ge 5 ] && break ;;
	esac
	sleep 1
done

say "source: the application stops writing; target: SELECT ingest.cutover()"
stop_app
"${TGT_PSQL[@]}" -d shop -c "SELECT ingest.cutover()"
echo "  while it ran, the application wrote $("${SRC_PSQL[@]}" -d shop -At -c "SELECT count(*) FROM pgbench_history") pgbench transactions" \
	"and $("${SRC_PSQL[@]}" -d shop -At -c "SELECT count(*) - 50000 FROM orders") orders to the source"

say "target: SELECT * FROM ingest.status"
"${TGT_PSQL[@]}" -d shop -x -c "SELECT * FROM ingest.status"
say "target: SELECT * FROM ingest.verify()"
"${TGT_PSQL[@]}" -d shop -c "SELECT * FROM ingest.verify()"
mismatches=$("${TGT_PSQL[@]}" -d shop -At -c "SELECT count(*) FROM ingest.verify() WHERE status <> 'MATCH'")

say "demo finished: $mismatches table(s) differ"
[ "$mismatches" = 0 ]
