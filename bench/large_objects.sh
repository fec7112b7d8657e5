#!/usr/bin/env bash
# Large objects: pg_ingest's full load against pg_dump -Fd | pg_restore, and
# the time the stop adds for changed large objects.
#
#   bench/large_objects.sh [BINDIR]     (as the clusters' OS user)
#
# The source gets N_SMALL large objects of SMALL_KB kB and one of BIG_MB MB
# (random bytes); both tools copy them into fresh databases of one target
# cluster.  Then a full-load-and-cdc migration, CHANGED objects written on
# the source while it streams, and the stop's INFO event (its time).
set -euo pipefail
BIN=${1:-$(pg_config --bindir)}
N_SMALL=${N_SMALL:-1000}; SMALL_KB=${SMALL_KB:-100}; BIG_MB=${BIG_MB:-200}
CHANGED=${CHANGED:-100}; JOBS=${JOBS:-2}
W=${WORKDIR:-/tmp/lobench}; SP=${SPORT:-55431}; TP=${TPORT:-55432}
export PATH=$BIN:$PATH PGHOST=/tmp
rm -rf "$W"; mkdir -p "$W"
initdb -A trust -D "$W/src" >/dev/null; initdb -A trust -D "$W/tgt" >/dev/null
plugins=$(postgres --describe-config 2>/dev/null | grep -q '^output_plugin_libraries' &&
  echo "output_plugin_libraries = 'pgoutput, wal2json'" || true)
cat >> "$W/src/postgresql.conf" <<CONF
port = $SP
unix_socket_directories = '/tmp'
wal_level = logical
$plugins
CONF
cat >> "$W/tgt/postgresql.conf" <<CONF
port = $TP
unix_socket_directories = '/tmp'
shared_preload_libraries = 'pg_ingest'
max_worker_processes = 32
CONF
pg_ctl -D "$W/src" -l "$W/src.log" -w start >/dev/null
pg_ctl -D "$W/tgt" -l "$W/tgt.log" -w start >/dev/null
trap 'pg_ctl -D "$W/src" -m fast stop >/dev/null; pg_ctl -D "$W/tgt" -m fast stop >/dev/null' EXIT
S="psql -XAtq -p $SP -d app"; T="psql -XAtq -p $TP"
createdb -p $SP app
t0=$(date +%s.%N)
$S <<SQL
-- random bytes: 16 per md5
CREATE FUNCTION rnd(n int) RETURNS bytea LANGUAGE sql AS
\$\$ SELECT decode(string_agg(md5(random()::text), ''), 'hex') FROM generate_series(1, (n + 15) / 16) \$\$;
SELECT count(lo_from_bytea(0, substr(rnd($SMALL_KB * 1024), 1, $SMALL_KB * 1024))) FROM generate_series(1, $N_SMALL);
SELECT lo_create(900000);
DO \$\$ BEGIN FOR i IN 0 .. $BIG_MB - 1 LOOP
  PERFORM lo_put(900000, i * 1048576::bigint, rnd(1048576)); END LOOP; END \$\$;
SQL
echo "source: $($S -c "SELECT count(*) FROM pg_largeobject_metadata") large objects," \
  "pg_largeobject $($S -c "SELECT pg_size_pretty(pg_total_relation_size('pg_largeobject'))")" \
  "(made in $(awk "BEGIN{print $(date +%s.%N) - $t0}") s)"

# pg_ingest, full load
$T -d postgres -c "CREATE DATABASE ing"
$T -d ing -c "CREATE EXTENSION pg_ingest"
t0=$(date +%s.%N)
$T -d ing -c "SELECT ingest.start('host=/tmp port=$SP dbname=app', mode => 'full-load', table_jobs => $JOBS)" >/dev/null
$T -d ing -c "SELECT ingest.wait()" >/dev/null
t1=$(date +%s.%N)
echo "pg_ingest full load (table_jobs $JOBS): $(awk "BEGIN{print $t1 - $t0}") s;" \
  "$($T -d ing -c "SELECT phase FROM ingest.status") $($T -d ing -c "SELECT status FROM ingest.verify() WHERE table_name = 'large objects'")"

# pg_dump -Fd -j | pg_restore -j
$T -d postgres -c "CREATE DATABASE dmp"
t0=$(date +%s.%N)
pg_dump -p $SP -d app -Fd -j $JOBS -f "$W/dump"
pg_restore -p $TP -d dmp -j $JOBS "$W/dump"
t1=$(date +%s.%N)
echo "pg_dump -Fd -j $JOBS + pg_restore -j $JOBS: $(awk "BEGIN{print $t1 - $t0}") s;" \
  "$($T -d dmp -c "SELECT count(*) FROM pg_largeobject_metadata") large objects"

# the stop: unchanged, then CHANGED objects changed
for changed in 0 $CHANGED; do
  db=cdc$changed
  $T -d postgres -c "CREATE DATABASE $db"
  $T -d $db -c "CREATE EXTENSION pg_ingest"
  $T -d $db -c "SELECT ingest.start('host=/tmp port=$SP dbname=app', name => '$db', mode => 'full-load-and-cdc', table_jobs => $JOBS)" >/dev/null
  until [ "$($T -d $db -c "SELECT phase FROM ingest.status")" = streaming ]; do sleep 0.5; done
  $S -c "SELECT count(lo_put(oid, 10, 'changed')) FROM (SELECT oid FROM pg_largeobject_metadata WHERE oid <> 900000 ORDER BY oid LIMIT $changed) s" >/dev/null
  t0=$(date +%s.%N)
  $T -d $db -c "SELECT ingest.cutover('$db')" >/dev/null
  t1=$(date +%s.%N)
  echo "cutover with $changed changed: $(awk "BEGIN{print $t1 - $t0}") s;" \
    "$($T -d $db -c "SELECT message FROM ingest.events WHERE kind = 'large objects' AND level = 'INFO'")"
  $T -d $db -c "SELECT ingest.cleanup('$db')" >/dev/null 2>&1 || true
done
