#!/usr/bin/env bash
# cdc_drain.sh - drain of a change backlog held in the slot, pg_ingest
# against native logical replication, plus idle latencies; a developer's
# measurement beside bench/run.sh (which carries the full comparison).
#
#   PGBIN=... bench/cdc_drain.sh [--scale N] [--rounds N] [--seconds N]
#                                [--native stop|disable] [--keep]
#
# Run as root (the servers run as $RUN_USER, pgingest by default) after
# pg_ingest is installed into PGBIN's PostgreSQL.  Two throwaway clusters
# on free ports: a source (pgbench -i --scale, pgbench_history REPLICA
# IDENTITY FULL, publication FOR ALL TABLES) and a target holding database
# ing (pg_ingest, mode full-load-and-cdc) and nat (the schema, and a
# subscription).  Each round: pg_ingest's receiver gets SIGSTOP, native's
# apply worker SIGSTOP too (--native stop, the default: both walsenders
# keep decoding into their sockets alike) or its subscription is disabled
# (--native disable); pgbench -n -c4 -j4 -T seconds; a marker row; then
# SIGCONT of the receiver alone, the time until the marker is visible in
# ing; then native likewise in nat.  Also the CPU ticks (1/100 s) the
# processes spent on it.  Then commit -> visible latencies, idle, and
# ingest.resume() -> first change visible.
#
# The wait for the marker is a procedure that commits between looks: a DO
# block would hold its snapshot, and so the target's xmin, for the whole
# drain, and no HOT chain could be pruned meanwhile (the apply of pgbench's
# updates then spends most of its time walking chains, for both).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUN_USER=${RUN_USER:-pgingest}
SCALE=10 ROUNDS=3 SECONDS_=15 NATIVE=stop KEEP=
while [ $# -gt 0 ]; do
	case $1 in
	--scale) SCALE=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--seconds) SECONDS_=$2; shift 2 ;;
	--native) NATIVE=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	*) echo "usage: $0 [--scale N] [--rounds N] [--seconds N] [--native stop|disable] [--keep]" >&2; exit 2 ;;
	esac
done
[[ $NATIVE =~ ^(stop|disable)$ ]] || { echo "--native stop or disable" >&2; exit 2; }

u() { runuser -u "$RUN_USER" -- "$@"; }
now() { date +%s.%N; }
free_port() {
	local p
	for p in $(seq "$1" $(($1 + 100))); do
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	return 1
}
W=$(mktemp -d /tmp/cdc_drain.XXXXXX); chmod 755 "$W"; chown "$RUN_USER" "$W"
SP=$(free_port 56100); TP=$(free_port $((SP + 1)))
cleanup() {
	[ -n "$KEEP" ] && { echo "kept: $W (ports $SP, $TP)"; return; }
	for d in tgt src; do
		[ -f "$W/$d/postmaster.pid" ] && u "$PGBIN/pg_ctl" -D "$W/$d" -m immediate -w stop >/dev/null 2>&1
	done
	rm -rf "$W"
}
trap cleanup EXIT

for d in src tgt; do u "$PGBIN/initdb" -D "$W/$d" -A trust -U postgres --no-sync >/dev/null; done
cat >>"$W/src/postgresql.conf" <<C
listen_addresses = '127.0.0.1'
port = $SP
unix_socket_directories = '$W/src'
fsync = off
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
C
# grep reads it all: with -q the early close fails the pipeline (pipefail)
if u "$PGBIN/postgres" --describe-config | grep '^output_plugin_libraries' >/dev/null; then
	echo "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'" >>"$W/src/postgresql.conf"
fi
cat >>"$W/tgt/postgresql.conf" <<C
listen_addresses = '127.0.0.1'
port = $TP
unix_socket_directories = '$W/tgt'
fsync = off
shared_preload_libraries = 'pg_ingest'
max_worker_processes = 32
C
u "$PGBIN/pg_ctl" -D "$W/src" -l "$W/src.log" -w start >/dev/null
u "$PGBIN/pg_ctl" -D "$W/tgt" -l "$W/tgt.log" -w start >/dev/null
S=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$W/src" -p "$SP" -U postgres)
T=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$W/tgt" -p "$TP" -U postgres)
SRC="host=127.0.0.1 port=$SP dbname=bench user=postgres"

echo "=== setup: pgbench scale $SCALE, pg_ingest and a subscription"
"${S[@]}" -d postgres -c "CREATE DATABASE bench"
"$PGBIN/pgbench" -q -i -s "$SCALE" -h "$W/src" -p "$SP" -U postgres bench >/dev/null 2>&1
"${S[@]}" -d bench -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" \
	-c "CREATE TABLE cdc_marker (n int PRIMARY KEY)"
"${T[@]}" -d postgres -c "CREATE DATABASE ing" -c "CREATE DATABASE nat"
"${T[@]}" -d ing -c "CREATE EXTENSION pg_ingest" \
	-c "SELECT ingest.start(source => '$SRC', name => 'b', mode => 'full-load-and-cdc')" >/dev/null
[ "$("${T[@]}" -d ing -c "SELECT ingest.wait('b', 'streaming', '30 min')")" = t ] ||
	{ "${T[@]}" -d ing -c "SELECT phase, last_error FROM ingest.migration"; exit 1; }
"$PGBIN/pg_dump" --schema-only -h "$W/src" -p "$SP" -U postgres bench | "${T[@]}" -d nat >/dev/null
"${S[@]}" -d bench -c "CREATE PUBLICATION p FOR ALL TABLES"
"${T[@]}" -d nat -c "SET client_min_messages = warning" -c "CREATE SUBSCRIPTION s CONNECTION '$SRC' PUBLICATION p"
until [ "$("${T[@]}" -d nat -c "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")" = 0 ]; do sleep 0.2; done
for d in ing nat; do
	"${T[@]}" -d "$d" -c "CREATE PROCEDURE public.wait_marker(m int) LANGUAGE plpgsql AS \$\$
BEGIN LOOP IF EXISTS (SELECT FROM cdc_marker WHERE n = m) THEN RETURN; END IF; COMMIT; PERFORM pg_sleep(0.002); END LOOP; END \$\$"
done

cpu() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
native_pid() { "${T[@]}" -d nat -c "SELECT pid FROM pg_stat_subscription WHERE subname = 's' AND relid IS NULL AND pid IS NOT NULL"; }
RES=()
for r in $(seq 1 "$ROUNDS"); do
	rpid=$("${T[@]}" -d ing -c "SELECT pid FROM ingest._live() WHERE kind = 'receiver'")
	apid=$("${T[@]}" -d ing -c "SELECT pid FROM ingest._live() WHERE kind = 'applier'")
	kill -STOP "$rpid"
	if [ "$NATIVE" = stop ]; then
		npid=$(native_pid); kill -STOP "$npid"; n0=$(cpu "$npid")
	else
		"${T[@]}" -d nat -c "ALTER SUBSCRIPTION s DISABLE"
		until [ "$("${S[@]}" -d bench -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 's' AND active")" = 0 ]; do sleep 0.1; done
	fi
	"${S[@]}" -d postgres -c CHECKPOINT
	tx=$("$PGBIN/pgbench" -n -T "$SECONDS_" -c 4 -j 4 -h "$W/src" -p "$SP" -U postgres bench 2>&1 |
		sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
	"${S[@]}" -d bench -c "INSERT INTO cdc_marker VALUES ($r)"
	c0=$(cpu "$rpid" "$apid"); t0=$(now)
	kill -CONT "$rpid"
	"${T[@]}" -d ing -c "CALL public.wait_marker($r)"
	t1=$(now); c1=$(cpu "$rpid" "$apid")
	if [ "$NATIVE" = stop ]; then
		t2=$(now); kill -CONT "$npid"
	else
		t2=$(now); "${T[@]}" -d nat -c "ALTER SUBSCRIPTION s ENABLE"; n0=0
	fi
	"${T[@]}" -d nat -c "CALL public.wait_marker($r)"
	t3=$(now)
	[ "$NATIVE" = stop ] || npid=$(native_pid)
	line=$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v r="$r" -v tx="$tx" -v ic=$((c1 - c0)) -v nc=$(($(cpu "$npid") - n0)) \
		'BEGIN { printf "round %d: %d pgbench txns; drain pg_ingest %.3f s, native %.3f s, native/pg_ingest %.2f; CPU ticks receiver+applier %d, native apply worker %d", r, tx, b - a, d - c, (d - c) / (b - a), ic, nc }')
	echo "$line"
	RES+=("$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN { printf "%.3f %.3f", b - a, d - c }')")
done
med() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mi=$(printf '%s\n' "${RES[@]}" | cut -d' ' -f1 | med)
mn=$(printf '%s\n' "${RES[@]}" | cut -d' ' -f2 | med)
awk -v i="$mi" -v n="$mn" -v r="$ROUNDS" 'BEGIN { printf "median drain: pg_ingest %.3f s, native %.3f s, native/pg_ingest %.2f (%d rounds, --native '"$NATIVE"')\n", i, n, n / i, r }'

echo "=== idle: commit on the source -> visible on the target (ms: from before the INSERT / from its commit acknowledged)"
lat=()
for i in $(seq 1 15); do
	n=$((1000 + i))
	"${T[@]}" -d ing -c "CALL public.wait_marker($n)" -c "SELECT clock_timestamp()" >"$W/seen" &
	sleep 0.3
	t=$("${S[@]}" -d bench -c "SELECT clock_timestamp()" -c "INSERT INTO cdc_marker VALUES ($n)" -c "SELECT clock_timestamp()")
	wait
	lat+=("$("${T[@]}" -d ing -c "SELECT round(extract(epoch FROM '$(cat "$W/seen")'::timestamptz - '$(echo "$t" | head -n 1)') * 1000) || '/' || round(extract(epoch FROM '$(cat "$W/seen")'::timestamptz - '$(echo "$t" | tail -n 1)') * 1000)")")
done
echo "${lat[*]}"
echo "p50 $(printf '%s\n' "${lat[@]}" | cut -d/ -f1 | med) / $(printf '%s\n' "${lat[@]}" | cut -d/ -f2 | med) ms"

echo "=== ingest.resume() -> first change visible (ms)"
rl=
for i in 1 2 3 4 5; do
	n=$((2000 + i))
	"${T[@]}" -d ing -c "SELECT ingest.pause('b')" -c "SELECT ingest.wait('b', 'paused', '1 min')" >/dev/null
	sleep 1.2
	"${S[@]}" -d bench -c "INSERT INTO cdc_marker VALUES ($n)"
	sleep 0.5
	rl="$rl $("${T[@]}" -d ing <<SQL | tail -n 1
SELECT clock_timestamp() AS t0 \gset
SELECT ingest.resume('b');
CALL public.wait_marker($n);
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000);
SQL
)"
done
echo "$rl"
