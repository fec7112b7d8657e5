# shellcheck shell=bash
# bench/lib/cdc.sh, sourced by bench/run.sh: change data capture, pg_ingest
# against native logical replication, on the pgbench source database.
#
# Two target databases replicate the source: CDC_DB[pg_ingest] by pg_ingest
# (migration 'bench', mode full-load-and-cdc), CDC_DB[native] by subscription
# bench_sub (publication bench_pub, made by run_native).  Each step runs in a
# subshell with set -e (cdc_step) and prints what it measured as
# "RESULT <key> <values>" lines into cdc.log; cdc_report reads them back and
# writes the medians into results.tsv.  A step of pg_ingest that fails
# (INGEST_FAILED) leaves out its later steps, not native's.
#
# Steps, in order (--cdc-steps picks among big, latency, resume, drain, load):
#   setup    pg_ingest loads the source and streams; the big step; then the
#            native subscription loads it too (copy_data)
#   big      one INSERT of --cdc-big-rows rows (~1 kB each), pg_ingest alone:
#            RssAnon/VmHWM of its receiver and applier every 0.2 s until it
#            is applied; the spool directory's size then and 5 s later
#   latency  each alone (the other one stopped): 50 single-row commits on the
#            source, 0.1 s apart; the target polls every 5 ms and records
#            clock_timestamp() minus the row's insert time (same machine,
#            same clock): p50, p90, max
#   resume   each alone, 5 times: pg_ingest paused (ingest.pause) with one
#            row received into its spool; time from ingest.resume() to the
#            row visible.  Native: ALTER SUBSCRIPTION DISABLE, one row, time
#            from ENABLE to the row visible (enabled 5.5 s after the last
#            start of its worker: the launcher's wal_retrieve_retry_interval)
#   drain    per round: both consumers stopped (pg_ingest's receiver by
#            SIGSTOP; the subscription's apply worker by SIGSTOP, or
#            DISABLE with --cdc-hold disable), so that the backlog stays in
#            the slots on the source while pgbench -T --backlog-seconds runs;
#            a marker row committed after it; then each alone gets SIGCONT
#            (or ENABLE) and is timed until the marker is visible.  Rounds
#            alternate who goes first
#   load     each alone (the other stopped, and drained afterwards,
#            untimed): unthrottled pgbench -T --cdc-seconds; the age of the
#            newest pgbench_history row on the target sampled every 0.5 s
#            (the last sample: the lag at the end); a marker committed as
#            soon as pgbench's sessions are gone: the time until it is
#            visible (time to drain)
#   verify   both targets against the source (sql/table_hashes.sql)
#   cutover  ingest.cutover(), ingest.verify() (every table MATCH) and the
#            same hash comparison

declare -A CDC_DB=([pg_ingest]=bench_cdc_pg_ingest [native]=bench_cdc_native)
CDC_LOG=$LOG_DIR/cdc.log
CDC_FAILED=
INGEST_FAILED=
CDC_OK=1
LATENCY_COMMITS=50
RESUME_TRIES=5

result() { echo "RESULT $*"; }
# cdc_result KEY...: the values of the last RESULT line with that key
cdc_result() { sed -n "s/^RESULT $* //p" "$CDC_LOG" | tail -n 1; }
ingest_sql() { tgt_psql -At -d "${CDC_DB[pg_ingest]}" "$@"; }
native_sql() { tgt_psql -At -d "${CDC_DB[native]}" "$@"; }
cdc_sql() { tgt_psql -At -d "${CDC_DB[$1]}" "${@:2}"; }
ingest_status() { ingest_sql -x -c "SELECT phase, received_lsn, applied_lsn, source_lsn, lag_bytes, lag_seconds, apply_rate, spool_bytes, last_error FROM ingest.status WHERE name = 'bench'"; }
# the deadline of the current step, as an SQL setting for wait_sql
timeout_sql() { echo "SET bench.timeout = '$((DEADLINE - $(date +%s))) s';"; }
# every row inserted, updated or deleted on the source so far
source_changes() { src_psql -At -d "$SRC_DB" -c "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }	# kB to MB
cdc_wants() { in_list "$1" "$CDC_STEPS"; }
pgbench_txns() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1"; }
pgbench_tps() { sed -n 's/^tps = \([0-9]*\)\..*/\1/p' "$1" | head -n 1; }

# next_marker: a new number for a row of cdc_marker (steps run in subshells:
# the counter lives in a file)
next_marker() {
	local n
	n=$(($(cat "$WORK/marker.n" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$WORK/marker.n"
	echo "$n"
}
# mark: commit a marker row on the source, print its number
mark() {
	local n
	n=$(next_marker)
	src_psql -d "$SRC_DB" -c "INSERT INTO cdc_marker (n) VALUES ($n)"
	echo "$n"
}

# cdc_pgbench LOG SECONDS: the workload, on the source, as the owner of its tables
cdc_pgbench() {
	client "$PGBIN/pgbench" -n -T "$2" -c "$CDC_CLIENTS" -j "$CDC_CLIENTS" \
		-h "$WORK/source" -p "$SRC_PORT" -U migrator "$SRC_DB" >"$1" 2>&1 ||
		{ tail -n 20 "$1"; return 1; }
	# its backends flush their statistics as they exit
	until [ "$(src_psql -At -d "$SRC_DB" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'")" = 0 ]; do
		[ "$(date +%s)" -lt "$DEADLINE" ] || { echo "timeout: pgbench's sessions are still there" >&2; return 124; }
		sleep 0.1
	done
}

# wait_sql CONDITION POLL [pg_ingest]: a DO block that returns once the SQL
# boolean CONDITION holds, looking every POLL seconds, and fails after the
# setting bench.timeout (timeout_sql); with pg_ingest, also as soon as the
# migration has failed (looked at every 20 polls only: ingest.status is not
# free, and the poll must cost about the same to both replications).
wait_sql() {
	local bail=
	[ "${3:-}" = pg_ingest ] && bail="
		IF i % 20 = 0 AND EXISTS (SELECT FROM ingest.status WHERE name = 'bench' AND phase IN ('failed', 'aborted')) THEN
			RAISE EXCEPTION 'pg_ingest: %', (SELECT phase || ': ' || coalesce(last_error, '') FROM ingest.status WHERE name = 'bench');
		END IF;"
	cat <<SQL
DO \$\$
DECLARE
	stop timestamptz := clock_timestamp() + current_setting('bench.timeout')::interval;
	i int := 0;
BEGIN
	WHILE NOT ($1) LOOP
		i := i + 1;$bail
		IF clock_timestamp() > stop THEN
			RAISE EXCEPTION 'timeout, still not: %', \$c\$$1\$c\$;
		END IF;
		PERFORM pg_sleep($2);
	END LOOP;
END
\$\$;
SQL
}
marker_visible() { echo "EXISTS (SELECT FROM public.cdc_marker WHERE n = $1)"; }

# wait_marker TOOL N: until marker N is visible on TOOL's target (untimed)
wait_marker() {
	cdc_sql "$1" <<SQL
$(timeout_sql)
$(wait_sql "$(marker_visible "$2")" 0.05 "$1")
SQL
}

# The source's tables for cdc, made before any replication starts.
# pgbench_history has no key: REPLICA IDENTITY FULL lets both consumers
# carry it (pgbench only inserts into it: no other cost).
cdc_source() {
	src_psql -d "$SRC_DB" -c "SET ROLE migrator" \
		-c "CREATE TABLE cdc_marker (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())" \
		-c "CREATE TABLE cdc_latency (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())" \
		-c "CREATE TABLE cdc_big (id int PRIMARY KEY, payload text NOT NULL)" \
		-c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL"
}

# cdc_setup TOOL: load the source into a fresh database, then replicate it.
cdc_setup() {
	local tool=$1 db=${CDC_DB[$1]}
	tgt_psql -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
	src_psql -d postgres -c CHECKPOINT
	tgt_psql -d postgres -c CHECKPOINT
	# not in an || list: set -e must hold inside run_<tool>
	"run_$tool" "$db" - full-load-and-cdc 2>&1 | tee "$LOG_DIR/cdc-setup-$tool.log"
	result "setup $tool $(sed -n 's/^WALL //p' "$LOG_DIR/cdc-setup-$tool.log")"
	[ "$tool" = native ] || return 0
	# run_native waits for 'synced' at least; have them all 'ready'
	until [ "$(native_sql -c "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")" = 0 ]; do
		[ "$(date +%s)" -lt "$DEADLINE" ] || { echo "timeout: tables of the subscription not ready" >&2; return 124; }
		sleep 0.1
	done
}

# ---------------------------------------------------------------- holding

# consumer_pid TOOL: the process that receives the stream: pg_ingest's
# receiver, the subscription's apply worker
consumer_pid() {
	local pid
	case $1 in
	pg_ingest) pid=$(ingest_sql -c "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'pg_ingest receiver'") ;;
	native) pid=$(native_sql -c "SELECT pid FROM pg_stat_subscription WHERE subname = 'bench_sub' AND relid IS NULL AND pid IS NOT NULL") ;;
	esac
	[[ $pid =~ ^[0-9]+$ ]] || { echo "no $1 receiving process found (got '$pid')" >&2; return 1; }
	echo "$pid"
}

# native_disabled: wait until the subscription's workers and its walsender are gone
native_disabled() {
	until [ "$(native_sql -c "SELECT count(*) FROM pg_stat_subscription WHERE subname = 'bench_sub' AND pid IS NOT NULL")" = 0 ] &&
		[ "$(src_psql -At -d "$SRC_DB" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench_sub' AND active")" = 0 ]; do
		[ "$(date +%s)" -lt "$DEADLINE" ] || { echo "timeout: the subscription's workers did not stop" >&2; return 124; }
		sleep 0.1
	done
}

# hold TOOL: stop TOOL from receiving (the backlog stays in its slot); its
# release command goes to $WORK/release.TOOL, for release_sql
hold() {
	local tool=$1 pid
	if [ "$tool" = native ] && [ "$CDC_HOLD" = disable ]; then
		native_sql -c "ALTER SUBSCRIPTION bench_sub DISABLE"
		native_disabled
		echo "ALTER SUBSCRIPTION bench_sub ENABLE;" >"$WORK/release.$tool"
		return 0
	fi
	pid=$(consumer_pid "$tool")
	kill -STOP "$pid"
	echo "$pid" >>"$STOPPED_PIDS"
	echo "\\! kill -CONT $pid" >"$WORK/release.$tool"
	echo "$tool: process $pid stopped (SIGSTOP)"
}
# release_sql TOOL: the psql line that releases it
release_sql() { cat "$WORK/release.$1"; }
# release TOOL: release it, untimed
release() {
	cdc_sql "$1" <<<"$(release_sql "$1")"
	released "$1"
}
# released TOOL: forget the stopped process
released() {
	local pid
	pid=$(sed -n 's/^\\! kill -CONT //p' "$WORK/release.$1")
	[ -n "$pid" ] && sed -i "/^$pid\$/d" "$STOPPED_PIDS"
	rm -f "$WORK/release.$1"
}

# timed_release TOOL N POLL: release TOOL and time it until marker N is
# visible, polled every POLL s in the same session (server clock).  Prints
# the seconds.
timed_release() {
	local tool=$1 n=$2 poll=$3 out secs
	out=$(cdc_sql "$tool" <<SQL
$(timeout_sql)
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$(release_sql "$tool")
$(wait_sql "$(marker_visible "$n")" "$poll" "$tool")
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);
SQL
)
	released "$tool"
	secs=$(tail -n 1 <<<"$out")
	[[ $secs =~ ^[0-9.]+$ ]] || { echo "no time measured: $out" >&2; return 1; }
	echo "$secs"
}

# same_history: pgbench_history of both targets as the source's (the
# marker is the last change: every pgbench transaction is there)
same_history() {
	local tool src tgt
	src=$(src_psql -At -d "$SRC_DB" -c "SELECT count(*) FROM pgbench_history")
	for tool in "$@"; do
		[ "$tool" = pg_ingest ] && [ -n "$INGEST_FAILED" ] && continue
		tgt=$(cdc_sql "$tool" -c "SELECT count(*) FROM pgbench_history")
		echo "$tool: pgbench_history $tgt rows (source: $src)"
		[ "$src" = "$tgt" ] || { echo "$tool: pgbench_history differs from the source's" >&2; return 1; }
	done
}

# ---------------------------------------------------------------- steps

# cdc_drain ROUND: both held, one pgbench run, a marker; each alone released
# and timed.  Odd rounds pg_ingest first, even rounds native first.
cdc_drain() {
	local r=$1 before after n tool secs order=(pg_ingest native) log=$LOG_DIR/cdc-pgbench.drain.$1.log spool
	[ $((r % 2)) = 1 ] || order=(native pg_ingest)
	hold pg_ingest
	hold native
	src_psql -d postgres -c CHECKPOINT
	before=$(source_changes)
	cdc_pgbench "$log" "$BACKLOG_SECONDS"
	after=$(source_changes)
	cat "$log"
	n=$(mark)
	src_psql -d postgres -c CHECKPOINT
	tgt_psql -d postgres -c CHECKPOINT
	spool=$(ingest_sql -c "SELECT spool_bytes FROM ingest.status WHERE name = 'bench'")
	for tool in "${order[@]}"; do
		secs=$(timed_release "$tool" "$n" 0.02)
		echo "round $r: $tool drained the backlog in $secs s"
		result "drain $tool $r $secs"
	done
	same_history pg_ingest native
	result "backlog $r $(pgbench_txns "$log") $((after - before)) $(pgbench_tps "$log") ${order[0]} ${spool:-0}"
}

# cdc_latency TOOL: commit on the source -> visible on TOOL's target, the
# other one held meanwhile
cdc_latency() {
	local tool=$1 other=native base poller out i script=$WORK/latency.sql
	[ "$tool" = native ] && other=pg_ingest
	[ "$other" = pg_ingest ] && [ -n "$INGEST_FAILED" ] && other=
	[ -z "$other" ] || hold "$other"
	base=$(src_psql -At -d "$SRC_DB" -c "SELECT coalesce(max(n), 0) FROM cdc_latency")
	# the poller: for each row in turn, its age when first seen
	cdc_sql "$tool" >"$WORK/latency.out" 2>&1 <<SQL &
$(timeout_sql)
CREATE TEMP TABLE seen (n int, ms float8);
DO \$\$
DECLARE
	stop timestamptz := clock_timestamp() + current_setting('bench.timeout')::interval;
	a timestamptz;
BEGIN
	FOR k IN $((base + 1))..$((base + LATENCY_COMMITS)) LOOP
		LOOP
			SELECT at INTO a FROM public.cdc_latency WHERE n = k;
			EXIT WHEN FOUND;
			IF clock_timestamp() > stop THEN RAISE EXCEPTION 'timeout waiting for row %', k; END IF;
			PERFORM pg_sleep(0.005);
		END LOOP;
		INSERT INTO seen VALUES (k, extract(epoch FROM clock_timestamp() - a) * 1000);
	END LOOP;
END
\$\$;
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
	round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)::numeric, 1),
	round(max(ms)::numeric, 1), count(*) FROM seen;
SQL
	poller=$!
	sleep 1
	: >"$script"
	for i in $(seq $((base + 1)) $((base + LATENCY_COMMITS))); do
		echo "INSERT INTO cdc_latency (n) VALUES ($i); SELECT pg_sleep(0.1);" >>"$script"
	done
	[ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$script"
	src_psql -d "$SRC_DB" -f "$script" >/dev/null
	wait "$poller" || { cat "$WORK/latency.out"; return 1; }
	out=$(tail -n 1 "$WORK/latency.out")
	echo "$tool: commit -> visible p50|p90|max ms|rows: $out"
	result "latency $tool $(tr '|' ' ' <<<"$out")"
	if [ -n "$other" ]; then
		release "$other"
		wait_marker "$other" "$(mark)"
	fi
}

# cdc_resume TOOL: RESUME_TRIES times: held with one row waiting; time from
# ingest.resume() / ALTER SUBSCRIPTION ENABLE to the row visible
cdc_resume() {
	local tool=$1 k n lsn slot ok t0 secs all=
	for k in $(seq "$RESUME_TRIES"); do
		if [ "$tool" = pg_ingest ]; then
			[ "$(ingest_sql -c "SELECT ingest.pause('bench')" -c "SELECT ingest.wait('bench', 'paused', '1 min')" | tail -n 1)" = t ] ||
				{ echo "pg_ingest did not reach 'paused'" >&2; ingest_status; return 1; }
			n=$(mark)
			# wait until the receiver has the row (confirmed flush on the source)
			lsn=$(src_psql -At -d "$SRC_DB" -c "SELECT pg_current_wal_lsn()")
			slot=$(ingest_sql -c "SELECT slot_name FROM ingest.status WHERE name = 'bench'")
			t0=$(now)
			until [ "$(src_psql -At -d "$SRC_DB" -c "SELECT coalesce(bool_or(r.flush_lsn >= '$lsn'), false) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = '$slot'")" = t ]; do
				[ "$(elapsed "$t0" "$(now)" | cut -d. -f1)" -lt 60 ] || { echo "the receiver did not confirm $lsn in 60 s" >&2; return 1; }
				sleep 0.1
			done
			sleep 0.5	# and the applier settled into its paused sleep
			echo "SELECT ingest.resume('bench');" >"$WORK/release.$tool"
		else
			native_sql -c "ALTER SUBSCRIPTION bench_sub DISABLE"
			native_disabled
			n=$(mark)
			# the launcher starts a subscription's apply worker at most
			# once per wal_retrieve_retry_interval (5 s): let that pass,
			# to time ENABLE itself and not that throttle
			sleep 5.5
			echo "ALTER SUBSCRIPTION bench_sub ENABLE;" >"$WORK/release.$tool"
		fi
		secs=$(timed_release "$tool" "$n" 0.005)
		echo "$tool: resumed, first change applied in $secs s"
		all+=" $secs"
	done
	result "resume $tool $(med "$all") $all"
}

# cdc_load TOOL: TOOL alone under unthrottled pgbench -T CDC_SECONDS (the
# other held, and drained afterwards, untimed).  On the target, every 0.5 s
# until 0.5 s before pgbench's end, the age of the newest pgbench_history row
# (its transaction's start on the source); the last of these samples is the
# lag at the end.  On the source, a session waits (10 ms polls) for pgbench's
# sessions to be gone and commits a marker row; the target polls for it
# every 10 ms once the sampling is over: time to drain = seen minus the
# marker's commit (its insert time: same machine, same clock).
cdc_load() {
	local tool=$1 other=native pid marker n out log=$LOG_DIR/cdc-pgbench.load.$1.log
	[ "$tool" = native ] && other=pg_ingest
	[ "$other" = pg_ingest ] && [ -n "$INGEST_FAILED" ] && other=
	[ -z "$other" ] || hold "$other"
	src_psql -d postgres -c CHECKPOINT
	tgt_psql -d postgres -c CHECKPOINT
	n=$(next_marker)
	cdc_pgbench "$log" "$CDC_SECONDS" &
	pid=$!
	src_psql -d "$SRC_DB" <<SQL &
SELECT pg_sleep(2);
DO \$\$
BEGIN
	WHILE EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'pgbench') LOOP
		COMMIT;		-- a new snapshot of pg_stat_activity
		PERFORM pg_sleep(0.01);
	END LOOP;
END
\$\$;
INSERT INTO cdc_marker (n) VALUES ($n);
SQL
	marker=$!
	out=$(cdc_sql "$tool" <<SQL
$(timeout_sql)
CREATE TEMP TABLE lag_sample (at timestamptz, staleness float8);
CREATE TEMP TABLE drain (s float8);
SET bench.seconds = $CDC_SECONDS;
DO \$\$
DECLARE
	t0 timestamptz := clock_timestamp();
	sampling_until timestamptz := t0 + make_interval(secs => current_setting('bench.seconds')::float8 - 0.5);
	stop timestamptz := t0 + current_setting('bench.timeout')::interval;
	a timestamptz;
BEGIN
	PERFORM pg_sleep(0.5);
	LOOP
		SELECT at INTO a FROM public.cdc_marker WHERE n = $n;
		IF FOUND THEN
			INSERT INTO drain VALUES (extract(epoch FROM clock_timestamp() - a));
			EXIT;
		END IF;
		IF clock_timestamp() > stop THEN RAISE EXCEPTION 'timeout waiting for marker $n'; END IF;
		IF clock_timestamp() < sampling_until THEN
			INSERT INTO lag_sample
			SELECT clock_timestamp(), extract(epoch FROM clock_timestamp()::timestamp - (SELECT max(mtime) FROM public.pgbench_history));
			PERFORM pg_sleep(0.5);
		ELSE
			PERFORM pg_sleep(0.01);
		END IF;
	END LOOP;
END
\$\$;
SELECT (SELECT round(staleness::numeric, 3) FROM lag_sample ORDER BY at DESC LIMIT 1),
	(SELECT round(s::numeric, 3) FROM drain),
	count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY staleness)::numeric, 3),
	round(max(staleness)::numeric, 3) FROM lag_sample;
SQL
)
	wait "$pid"
	wait "$marker"
	cat "$log"
	echo "$tool under pgbench: lag at the end|drain s|samples|median|max lag s: $out"
	result "load $tool $(tr '|' ' ' <<<"$out") $(pgbench_txns "$log") $(pgbench_tps "$log")"
	if [ -n "$other" ]; then
		release "$other"
		wait_marker "$other" "$n"
	fi
	same_history pg_ingest native
}

# rss_sampler FILE PID:NAME...: every 0.2 s a line per process:
#   NAME RssAnon VmHWM RssShmem (kB; "-" once the process is gone)
rss_sampler() {
	local out=$1 p k v anon hwm shm
	shift
	while :; do
		for p in "$@"; do
			anon=- hwm=- shm=-
			while read -r k v _; do
				case $k in
				RssAnon:) anon=$v ;;
				VmHWM:) hwm=$v ;;
				RssShmem:) shm=$v ;;
				esac
			done 2>/dev/null <"/proc/${p%%:*}/status" || true
			echo "${p#*:} $anon $hwm $shm"
		done >>"$out"
		sleep 0.2
	done
}

ingest_pids() {
	ingest_sql -c "SELECT string_agg(pid || ':' || replace(backend_type, 'pg_ingest ', ''), ' ' ORDER BY backend_type) FROM pg_stat_activity WHERE datname = current_database() AND backend_type IN ('pg_ingest applier', 'pg_ingest receiver')"
}
big_hash_sql="SELECT count(*) || ' ' || coalesce(sum(hashtextextended(payload, id)), 0) FROM cdc_big"
spool_kb() { as_user du -sk "$WORK/target/pg_ingest/spool" 2>/dev/null | cut -f1 || echo 0; }

# One INSERT of CDC_BIG_ROWS rows of ~1 kB on the source, while pg_ingest
# streams: the memory of its applier and receiver until the last row is
# visible on the target, the spool's size then.  Then the table is
# compared, and emptied (TRUNCATE, replicated too).
cdc_big() {
	local n=$CDC_BIG_ROWS pids pids_after sampler t0 t1 t2 name src_hash tgt_hash verified=NO applied=yes samples=$LOG_DIR/cdc-rss.samples spool_now spool_later
	pids=$(ingest_pids)
	echo "processes (pid:kind): $pids"
	[[ $pids == *:applier*receiver* ]] || { echo "no pg_ingest applier and receiver in pg_stat_activity" >&2; return 1; }
	: >"$samples"
	# shellcheck disable=SC2086  # a word per process
	rss_sampler "$samples" $pids &
	sampler=$!
	trap 'kill "$sampler" 2>/dev/null || true' EXIT
	sleep 1		# a few samples before
	t0=$(now)
	src_psql -d "$SRC_DB" -c "INSERT INTO cdc_big SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, $n) g"
	t1=$(now)
	# a failure here still reports the memory sampled until then
	ingest_sql <<SQL || applied=no
$(timeout_sql)
$(wait_sql "EXISTS (SELECT FROM public.cdc_big WHERE id = $n)" 0.2 pg_ingest)
SQL
	t2=$(now)
	spool_now=$(spool_kb)
	sleep 0.5
	kill "$sampler" 2>/dev/null || true
	trap - EXIT
	pids_after=$(ingest_pids)
	[ "$pids_after" = "$pids" ] || echo "WARNING: the processes changed during the transaction: now ${pids_after:-none}"
	ingest_status
	for name in applier receiver; do
		# first sample (before the transaction), peaks of RssAnon, VmHWM, RssShmem, samples
		result "rss $name $(awk -v n="$name" '$1 == n && $2 != "-" {
			if (first == "") first = $2
			if ($2 > a) a = $2; if ($3 > h) h = $3; if ($4 > s) s = $4; c++
		} END { printf "%d %d %d %d %d", first, a, h, s, c }' "$samples")"
	done
	[ "$applied" = yes ] || { echo "the big transaction was not applied (after $(elapsed "$t1" "$t2") s)" >&2; return 1; }
	sleep 4.5
	spool_later=$(spool_kb)
	echo "spool directory: ${spool_now} kB when the last row was visible, ${spool_later} kB 5 s later"
	src_hash=$(src_psql -At -d "$SRC_DB" -c "$big_hash_sql")
	tgt_hash=$(ingest_sql -c "$big_hash_sql")
	echo "cdc_big rows and hash: source $src_hash, target $tgt_hash"
	[ "$src_hash" = "$tgt_hash" ] && verified=yes
	result "big $n $(src_psql -At -d "$SRC_DB" -c "SELECT round(pg_table_size('cdc_big') / 1048576.0)") $(elapsed "$t0" "$t1") $(elapsed "$t1" "$t2") ${tgt_hash%% *} $verified ${spool_now:-0} ${spool_later:-0}"
	src_psql -d "$SRC_DB" -c "TRUNCATE cdc_big"
	ingest_sql <<SQL
$(timeout_sql)
$(wait_sql "NOT EXISTS (SELECT FROM public.cdc_big)" 0.2 pg_ingest)
SQL
}

# Both targets against the source, now quiet; then the subscription goes.
cdc_verify() {
	local tool verified n
	n=$(mark)
	for tool in native pg_ingest; do
		[ "$tool" = pg_ingest ] && [ -n "$INGEST_FAILED" ] && continue
		wait_marker "$tool" "$n"
	done
	source_hashes "$SRC_DB" "$LOG_DIR/source-cdc.tables"
	for tool in native pg_ingest; do
		[ "$tool" = pg_ingest ] && [ -n "$INGEST_FAILED" ] && continue
		verified=NO
		verify_tables "${CDC_DB[$tool]}" "cdc-$tool" "$LOG_DIR/source-cdc.tables" && verified=yes
		result "verified $tool $verified"
	done
	after_native "${CDC_DB[native]}"
}

# Cutover, pg_ingest's own verification, the benchmark's, cleanup.
cdc_cutover() {
	local lsn bad verified=NO out=$LOG_DIR/cdc-ingest-verify.txt
	lsn=$(ingest_sql -c "SELECT ingest.cutover('bench', '$((DEADLINE - $(date +%s))) seconds')")
	echo "ingest.cutover('bench') returned $lsn"
	ingest_sql -x -c "SELECT * FROM ingest.status WHERE name = 'bench'"
	ingest_sql -c "SELECT * FROM ingest.verify('bench')" >"$out"
	cat "$out"
	bad=$(grep -vc '|MATCH$' "$out" || true)
	source_hashes "$SRC_DB" "$LOG_DIR/source-cdc-final.tables"
	verify_tables "${CDC_DB[pg_ingest]}" cdc-pg_ingest-final "$LOG_DIR/source-cdc-final.tables" && verified=yes
	ingest_sql -c "SELECT ingest.cleanup('bench')"
	result "cutover $lsn $(wc -l <"$out") $bad $verified"
}

# What pg_ingest and the subscription were doing, after a failed step.
cdc_diagnose() {
	local db=${CDC_DB[pg_ingest]}
	echo "ingest.status:"
	tgt_psql -d "$db" -x -c "SELECT * FROM ingest.status" 2>&1 || true
	echo "ingest.events, last 15:"
	tgt_psql -d "$db" -c "SELECT id, at, phase, level, kind, left(message, 200) AS message, left(detail, 200) AS detail FROM ingest.events ORDER BY id DESC LIMIT 15" 2>&1 || true
	echo "pg_ingest's and the subscription's processes on the target:"
	tgt_psql -d postgres -c "SELECT datname, pid, backend_type, state, wait_event_type, wait_event, left(query, 60) AS query FROM pg_stat_activity WHERE backend_type LIKE 'pg_ingest%' OR backend_type LIKE 'logical replication%'" 2>&1 || true
	echo "replication slots on the source:"
	src_psql -d "$SRC_DB" -c "SELECT slot_name, plugin, active, restart_lsn, confirmed_flush_lsn FROM pg_replication_slots" 2>&1 || true
	echo "the target's server log during cdc (ERROR, FATAL, PANIC, WARNING, worker exits):"
	tail -c +"$((CDC_LOG_FROM + 1))" "$WORK/target/server.log" |
		grep -E 'ERROR|FATAL|PANIC|WARNING|terminated by signal|exited with exit code' | tail -n 20 || true
}

# release_all: whatever a failed step left stopped goes on
release_all() {
	local p
	[ -f "$STOPPED_PIDS" ] || return 0
	while read -r p; do kill -CONT "$p" 2>/dev/null || true; done <"$STOPPED_PIDS"
	: >"$STOPPED_PIDS"
	rm -f "$WORK"/release.*
	native_sql -c "ALTER SUBSCRIPTION bench_sub ENABLE" >/dev/null 2>&1 || true
}

# cdc_step FUNCTION ARGS...: one step, with its own deadline, its output in
# cdc.log; on failure CDC_FAILED says which.  Never call it (or its callers)
# in an if, || or && list: set -e would be ignored inside the step.
cdc_step() {
	local status t0
	t0=$(now)
	STEP_LOG_FROM=$(stat -c %s "$WORK/target/server.log")
	echo "--- $* ($(date +%T))" >>"$CDC_LOG"
	DEADLINE=$(($(date +%s) + TOOL_TIMEOUT))
	set +e
	(set -e; "$@") >>"$CDC_LOG" 2>&1
	status=$?
	set -e
	if [ "$status" -ne 0 ]; then
		CDC_FAILED="$* (exit status $status)"
		echo "FAILED: $CDC_FAILED; end of $CDC_LOG:"
		tail -n 15 "$CDC_LOG" | sed 's/^/  | /'
		cdc_diagnose | tee -a "$CDC_LOG" | sed 's/^/  | /'
		release_all
		return 0
	fi
	echo "$* done in $(elapsed "$t0" "$(now)") s"
}

# ingest_step FUNCTION ARGS...: a step of pg_ingest alone; its failure ends
# pg_ingest's part only.  If a worker crashed the target server, the
# migration is aborted as soon as the server is back: its supervisor would
# resume it, and it could crash the server again and again.
ingest_step() {
	local crash
	[ -z "$INGEST_FAILED" ] || return 0
	cdc_step "$@"
	[ -n "$CDC_FAILED" ] || return 0
	crash=$(tail -c +"$((STEP_LOG_FROM + 1))" "$WORK/target/server.log" |
		grep -E -m 1 'terminated by signal|PANIC:' | sed 's/^[^]]*\] //' || true)
	if [ -n "$crash" ]; then
		INGEST_FAILED="$CDC_FAILED: the target server crashed: $crash"
		echo "the target server crashed ($crash): aborting the migration once it is back"
		for _ in $(seq 120); do
			ingest_sql -c "SELECT ingest.abort('bench')" >>"$CDC_LOG" 2>&1 && break
			sleep 0.25
		done
		sleep 2
		as_user "$PGBIN/pg_isready" -q -t 60 -h "$WORK/target" -p "$TGT_PORT" -U postgres || true
		cdc_diagnose >>"$CDC_LOG" 2>&1
	else
		INGEST_FAILED="$CDC_FAILED: $(ingest_sql -c "SELECT phase || ': ' || coalesce(last_error, '-') FROM ingest.status WHERE name = 'bench'" 2>/dev/null || true)"
	fi
	CDC_FAILED=
}

# both_step FUNCTION ARGS...: a step that involves both (pg_ingest failing
# in it fails the whole cdc part: the comparison would be meaningless)
both_step() { cdc_step "$@"; }

# per_tool_step FUNCTION: FUNCTION pg_ingest (an ingest_step), then
# FUNCTION native
per_tool_step() {
	ingest_step "$1" pg_ingest
	cdc_step "$1" native
}

cdc_run() {
	local r
	cdc_step cdc_source
	[ -z "$CDC_FAILED" ] || return 0
	ingest_step cdc_setup pg_ingest
	[ "$CDC_BIG_ROWS" -gt 0 ] && cdc_wants big && ingest_step cdc_big
	if cdc_wants latency || cdc_wants resume || cdc_wants drain || cdc_wants load; then
		cdc_step cdc_setup native
		[ -z "$CDC_FAILED" ] || return 0
		if cdc_wants latency; then per_tool_step cdc_latency; [ -z "$CDC_FAILED" ] || return 0; fi
		if cdc_wants resume; then per_tool_step cdc_resume; [ -z "$CDC_FAILED" ] || return 0; fi
		if cdc_wants drain && [ -z "$INGEST_FAILED" ]; then
			for r in $(seq "$REPEAT"); do
				say "cdc drain, round $r of $REPEAT"
				both_step cdc_drain "$r"
				[ -z "$CDC_FAILED" ] || return 0
				echo "round $r: pg_ingest $(cdc_result drain pg_ingest "$r") s, native $(cdc_result drain native "$r") s"
			done
		fi
		if cdc_wants load; then per_tool_step cdc_load; [ -z "$CDC_FAILED" ] || return 0; fi
		cdc_step cdc_verify
		[ -z "$CDC_FAILED" ] || return 0
	fi
	ingest_step cdc_cutover
}

# Whatever happened: nothing stopped, no subscription, publication,
# migration or slot left.
cdc_teardown() {
	local tool
	release_all
	after_native "${CDC_DB[native]}" || true
	after_pg_ingest "${CDC_DB[pg_ingest]}" || true
	ingest_sql -c "SELECT ingest.cleanup('bench') FROM ingest.status WHERE name = 'bench' AND slot_name IS NOT NULL" 2>/dev/null || true
	for tool in pg_ingest native; do
		if [ "$KEEP_DBS" = 1 ]; then
			echo "kept target database ${CDC_DB[$tool]}"
		else
			tgt_psql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS ${CDC_DB[$tool]} WITH (FORCE)" || true
		fi
	done
	drop_leftover_slots
}

cdc_main() {
	local est
	est=$(( (CDC_BIG_ROWS > 0 ? 60 : 0) + 120 + REPEAT * (BACKLOG_SECONDS + 15) + 2 * (CDC_SECONDS + 20) + 2 * (LATENCY_COMMITS / 10 + 5) + 2 * RESUME_TRIES * 3 ))
	say "CDC on the pgbench source, steps $CDC_STEPS, pgbench -c$CDC_CLIENTS -j$CDC_CLIENTS (log: $CDC_LOG); roughly $((est / 60)) min at scale 50"
	CDC_LOG_FROM=$(stat -c %s "$WORK/target/server.log")
	cdc_run
	target_crashed "$CDC_LOG_FROM" && CDC_FAILED="${CDC_FAILED:-the target server crashed}"
	cdc_teardown >>"$CDC_LOG" 2>&1 || true
	cdc_report | tee -a "$LOG_DIR/results.txt"
	[ -z "$CDC_FAILED$INGEST_FAILED" ] || CDC_OK=0
	if cdc_wants latency || cdc_wants resume || cdc_wants drain || cdc_wants load; then
		[ "$(cdc_result verified native)" = yes ] && [ "$(cdc_result verified pg_ingest)" = yes ] || CDC_OK=0
	fi
	cdc_result cutover | awk '{ ok = $3 == 0 && $4 == "yes" } END { exit !ok }' || CDC_OK=0
}
