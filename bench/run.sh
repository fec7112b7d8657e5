#!/usr/bin/env bash
# pg_ingest benchmark: full load of one source database, by pg_ingest and by
# its peers, each into a fresh database of the same target cluster.
#
#   bench/run.sh [--scale N] [--jobs N] [--split SIZE] [--only LIST]
#                [--mixed-rows N] [--repeat N] [--timeout SECONDS] [--keep]
#
#   --scale N        pgbench scale of the source (default 50: 640 MB of
#                    pgbench_accounts, ~750 MB with its index)
#   --mixed-rows N   rows of the largest table of schema "mixed" (default
#                    2000 x scale: 100k and ~215 MB at scale 50; 0 leaves
#                    its 40 tables empty, to measure pgbench's tables alone)
#   --jobs N         table jobs and index jobs of every tool (default 2)
#   --split SIZE     split tables larger than SIZE into parallel parts:
#                    pg_ingest's split_tables_larger_than and pgcopydb's
#                    --split-tables-larger-than (default 128MB, so that
#                    pgbench_accounts is split at scale 50)
#   --only LIST      comma-separated subset of: pg_ingest,pgcopydb,pg_dump,native
#   --repeat N       run every tool N times, taking turns, and report the
#                    median (default 1)
#   --timeout SEC    wall-clock limit of each tool run (default 1800)
#   --keep           keep the target databases (dropped after each run
#                    otherwise); with KEEP=1 to look at them afterwards
#
# Environment: KEEP=1 leaves both clusters running at the end.
#
# Tools, in this order:
#   pg_ingest   CREATE EXTENSION; ingest.start(mode => 'full-load'); ingest.wait()
#   pgcopydb    pgcopydb clone (Debian's 0.10)
#   pg_dump     pg_dump -Fd -j N, then pg_restore -j N
#   native      pg_dump --schema-only | psql, then CREATE SUBSCRIPTION with
#               copy_data until every table is synchronized
# After each run every user table is compared with the source (row count and
# a sum of row hashes); sequences are compared too, for information.
# Logs and the result table go to bench/work/<date>/.
#
# Works as root (servers and tools then run as the unprivileged user of
# scripts/lib.sh) or as a user with sudo.

# shellcheck disable=SC2317  # run_<tool> and after_<tool> are called by name

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
. "$BENCH_DIR/../scripts/lib.sh"

ALL_TOOLS=(pg_ingest pgcopydb pg_dump native)
declare -A LABEL=(
	[pg_ingest]="pg_ingest full-load"
	[pgcopydb]="pgcopydb clone"
	[pg_dump]="pg_dump -Fd | pg_restore"
	[native]="native subscription"
)

# ---------------------------------------------------------------- options

SCALE=50
MIXED_ROWS=
JOBS=2
SPLIT=128MB
ONLY=$(IFS=,; echo "${ALL_TOOLS[*]}")
TOOL_TIMEOUT=1800
REPEAT=1
KEEP_DBS=0

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
	case $1 in
	--scale) SCALE=$2; shift 2 ;;
	--mixed-rows) MIXED_ROWS=$2; shift 2 ;;
	--jobs) JOBS=$2; shift 2 ;;
	--split) SPLIT=$2; shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	--timeout) TOOL_TIMEOUT=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--keep) KEEP_DBS=1; shift ;;
	-h | --help) usage 0 ;;
	*) echo "unknown argument: $1" >&2; usage 2 >&2 ;;
	esac
done
for n in "$SCALE" "$JOBS" "$TOOL_TIMEOUT" "$REPEAT"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "not a positive integer: $n" >&2; exit 2; }
done
MIXED_ROWS=${MIXED_ROWS:-$((2000 * SCALE))}
[[ $MIXED_ROWS =~ ^[0-9]+$ ]] || { echo "not a number: $MIXED_ROWS" >&2; exit 2; }
[[ $SPLIT =~ ^[0-9]+\ ?(B|kB|KB|MB|GB|TB)?$ ]] || { echo "bad --split size: $SPLIT" >&2; exit 2; }
TOOLS=()
IFS=, read -ra wanted <<<"$ONLY"
for t in "${wanted[@]}"; do
	[ -n "${LABEL[$t]:-}" ] || { echo "unknown tool in --only: $t (known: ${ALL_TOOLS[*]})" >&2; exit 2; }
done
for t in "${ALL_TOOLS[@]}"; do	# keep the canonical order
	[[ ",$ONLY," == *",$t,"* ]] && TOOLS+=("$t")
done

# ---------------------------------------------------------------- setup

install_packages pgcopydb
build_and_install

MIGRATOR_PASSWORD=bench-Secret-1
WORK=$(scratch_dir bench)			# clusters and scratch dirs, RUN_USER's
LOG_DIR=$BENCH_DIR/work/$(date +%Y%m%d-%H%M%S)	# logs and results (git-ignored)
mkdir -p "$LOG_DIR"
SRC_PORT=$(free_port 26432)
TGT_PORT=$(free_port $((SRC_PORT + 1)))

# stop_cluster, and if the server is still there (a crashed target can hang
# in its crash recovery), an immediate shutdown, and at last SIGKILL to its
# postmaster.  With "immediate" the polite attempt is skipped.
stop_cluster_surely() {
	local dir=$1 mode=${2:-fast}
	[ "$mode" = fast ] && stop_cluster "$dir"
	[ -f "$dir/postmaster.pid" ] || return 0
	as_user "$PGBIN/pg_ctl" -D "$dir" -m immediate -t 30 -w stop >/dev/null 2>&1 || true
	[ -f "$dir/postmaster.pid" ] || return 0
	kill -KILL "$(head -n 1 "$dir/postmaster.pid")" 2>/dev/null || true
	sleep 2
}

cleanup() {
	local status=$? c
	for c in source target; do	# keep the server logs with the others
		[ -f "$WORK/$c/server.log" ] && cp "$WORK/$c/server.log" "$LOG_DIR/$c-server.log"
	done
	if [ "${KEEP:-0}" = 1 ]; then
		say "clusters left running: source port $SRC_PORT, target port $TGT_PORT, in $WORK"
	else
		stop_cluster_surely "$WORK/source"
		stop_cluster_surely "$WORK/target"
		rm -rf "$WORK"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Settings identical on both clusters and for every tool.  fsync is already
# off (start_cluster).  The target keeps its default wal_level (replica).
tuning() {
	local senders=$((2 * JOBS + 4))
	[ "$senders" -lt 10 ] && senders=10
	cat <<CONF
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
maintenance_work_mem = 256MB
max_worker_processes = 32
max_parallel_maintenance_workers = 2
max_wal_senders = $senders
max_replication_slots = $senders
max_logical_replication_workers = $((JOBS + 4))
max_sync_workers_per_subscription = $JOBS
CONF
}

say "starting source (port $SRC_PORT) and target (port $TGT_PORT) in $WORK"
cluster_failed() {
	echo "the $1 cluster did not start; end of its server.log:" >&2
	tail -n 20 "$WORK/$1/server.log" >&2
	exit 1
}
start_cluster "$WORK/source" "$SRC_PORT" "$(source_conf; tuning)" || cluster_failed source
start_cluster "$WORK/target" "$TGT_PORT" "$(target_conf; tuning)" || cluster_failed target

# psql on either cluster, as the superuser, over the Unix socket
src_psql() { as_user "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK/source" -p "$SRC_PORT" -U postgres "$@"; }
tgt_psql() { as_user "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK/target" -p "$TGT_PORT" -U postgres "$@"; }

# How the tools reach the source: as migrator over TCP with its password
# (scram, see start_cluster's pg_hba.conf).  Client programs read the password
# from a password file; server-side consumers (pg_ingest, the subscription)
# get it in the connection string.
SRC_CONNINFO="host=127.0.0.1 port=$SRC_PORT user=migrator dbname=bench password=$MIGRATOR_PASSWORD"
SRC_URI="postgres://migrator@127.0.0.1:$SRC_PORT/bench"
tgt_uri() { echo "postgres://postgres@127.0.0.1:$TGT_PORT/$1"; }
PASSFILE=$WORK/pgpass
(umask 077 && echo "127.0.0.1:$SRC_PORT:*:migrator:$MIGRATOR_PASSWORD" >"$PASSFILE")
[ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$PASSFILE"

# Run a client program as RUN_USER, with the password file, the PostgreSQL 15
# binaries first in PATH (pgcopydb finds pg_dump through PG_CONFIG), and
# killed when the current tool's deadline passes.  timeout runs inside
# as_user so that it signals the whole process group (pgcopydb forks).
DEADLINE=0
client() {
	local left=$((DEADLINE - $(date +%s)))
	[ "$left" -gt 0 ] || { echo "deadline passed before: $*" >&2; return 124; }
	as_user env PATH="$PGBIN:$PATH" PG_CONFIG="$PGBIN/pg_config" PGPASSFILE="$PASSFILE" \
		timeout --kill-after=30 "$left" "$@"
}

# target_crashed LOG_FROM: did the target's postmaster see a process crash
# since byte LOG_FROM of its log, or does it not accept connections?
target_crashed() {
	tail -c +"$(($1 + 1))" "$WORK/target/server.log" |
		grep -qE 'terminated by signal|PANIC:|database system is in recovery mode' && return 0
	as_user "$PGBIN/pg_isready" -q -t 30 -h "$WORK/target" -p "$TGT_PORT" && return 1
	return 0
}

# A tool that crashed the target server (a background worker killed by a
# signal, or no recovery) gets it replaced by a fresh one, same settings, so
# that the next tools are measured on a healthy server.
reset_target() {
	echo "the target server crashed during the run: replacing it with a fresh cluster"
	cp "$WORK/target/server.log" "$LOG_DIR/target-server.crashed.$(date +%s).log"
	stop_cluster_surely "$WORK/target" immediate
	rm -rf "$WORK/target"
	start_cluster "$WORK/target" "$TGT_PORT" "$(target_conf; tuning)" || cluster_failed target
	tgt_psql -d postgres -c "CREATE ROLE migrator"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ---------------------------------------------------------------- source

say "loading the source database (pgbench scale $SCALE, schema mixed up to $MIXED_ROWS rows a table)"
src_psql -d postgres <<SQL
SET log_statement = 'none';
SET password_encryption = 'scram-sha-256';
CREATE ROLE migrator LOGIN REPLICATION PASSWORD '$MIGRATOR_PASSWORD';
CREATE DATABASE bench OWNER migrator;
SQL
# The objects' owner must exist on the target for every tool to restore
# ownership as on the source: create it there once, for all tools (and
# again in reset_target).
tgt_psql -d postgres -c "CREATE ROLE migrator"

t0=$(now)
as_user "$PGBIN/pgbench" -i -q -s "$SCALE" -h "$WORK/source" -p "$SRC_PORT" -U migrator bench \
	>"$LOG_DIR/pgbench-init.log" 2>&1 || { tail -n 20 "$LOG_DIR/pgbench-init.log"; exit 1; }
as_user "$PGBIN/psql" -X -q -h "$WORK/source" -p "$SRC_PORT" -U migrator -d bench \
	-v rows_max="$MIXED_ROWS" -f "$BENCH_DIR/sql/mixed_schema.sql"
src_psql -d bench -c "VACUUM ANALYZE"
echo "loaded in $(elapsed "$t0" "$(now)") s"

SRC_SIZE=$(src_psql -At -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")
SRC_TABLES=$(src_psql -At -d bench -c "SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'mixed')")
SRC_ACCOUNTS=$(src_psql -At -d bench -c "SELECT pg_size_pretty(pg_table_size('pgbench_accounts'))")
echo "source database bench: $SRC_SIZE, $SRC_TABLES tables, pgbench_accounts $SRC_ACCOUNTS"

# Reference hashes of the source, computed once.  This also reads every
# table, so that all tools start with the source in cache.
t0=$(now)
src_psql -At -d bench -f "$BENCH_DIR/sql/table_hashes.sql" | sort >"$LOG_DIR/source.tables"
src_psql -At -d bench -f "$BENCH_DIR/sql/sequence_values.sql" | sort >"$LOG_DIR/source.sequences"
echo "source hashed in $(elapsed "$t0" "$(now)") s: $(wc -l <"$LOG_DIR/source.tables") tables, $(wc -l <"$LOG_DIR/source.sequences") sequences"

# Other work on this machine makes the timings noisy: measure how busy the
# CPUs are for 2 s while the clusters are idle, and say so.
cpu_busy_pct() {
	local a b c idle iowait rest t1 i1
	# cpu  user nice system idle iowait irq ...
	read -r _ a b c idle iowait rest </proc/stat
	t1=$((a + b + c + idle + iowait)) i1=$((idle + iowait))
	sleep 2
	read -r _ a b c idle iowait rest </proc/stat
	echo $((100 - 100 * (idle + iowait - i1) / (a + b + c + idle + iowait - t1)))
}
src_psql -d postgres -c CHECKPOINT	# the load's dirty buffers: not someone else's work
BUSY_BEFORE=$(cpu_busy_pct)
if [ "$BUSY_BEFORE" -gt 10 ]; then
	echo "WARNING: the CPUs are ${BUSY_BEFORE}% busy before the runs: other processes compete, timings will be noisy"
fi

# ---------------------------------------------------------------- the tools
#
# run_<tool> DB SCRATCH loads the source into the empty target database DB
# (SCRATCH: an empty directory RUN_USER owns, removed afterwards) and prints
# "WALL <seconds>" for its timed part.  It runs in a subshell with set -e:
# any failing command fails the tool.  after_<tool> DB, if defined, cleans
# up; it runs whether the tool succeeded or not (unless the target crashed).

run_pg_ingest() {
	local db=$1 t0 t1 out waited bad
	tgt_psql -d "$db" -c "CREATE EXTENSION pg_ingest"
	t0=$(now)
	out=$(client "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$WORK/target" -p "$TGT_PORT" -U postgres -d "$db" \
		-v src="$SRC_CONNINFO" <<SQL
SELECT ingest.start(source => :'src', name => 'bench', mode => 'full-load',
                    table_jobs => $JOBS, index_jobs => $JOBS,
                    split_tables_larger_than => '$SPLIT');
SELECT ingest.wait('bench', 'completed', '$((DEADLINE - $(date +%s))) seconds');
SQL
)
	t1=$(now)
	waited=$(echo "$out" | tail -n 1)	# start() returns void, wait() a bool
	echo "ingest.wait('bench', 'completed') returned: $waited"
	tgt_psql -d "$db" -c "SELECT * FROM ingest.status" -c "SELECT * FROM ingest.verify('bench')"
	if [ "$waited" != t ]; then
		echo "ingest.wait returned $waited: the migration did not reach 'completed'" >&2
		[ "$(date +%s)" -ge $((DEADLINE - 2)) ] && return 124	# timed out
		return 1
	fi
	bad=$(tgt_psql -At -d "$db" -c "SELECT count(*) FROM ingest.verify('bench') v WHERE v.status IS DISTINCT FROM 'MATCH'")
	[ "$bad" = 0 ] || { echo "ingest.verify: $bad rows not MATCH" >&2; return 1; }
	echo "WALL $(elapsed "$t0" "$t1")"
}

# A migration that failed or timed out is aborted: its workers stop and its
# replication slot on the source is dropped.
after_pg_ingest() {
	local db=$1
	tgt_psql -At -d "$db" -c "SELECT 'aborting ' || name, ingest.abort(name) FROM ingest.status WHERE name = 'bench' AND phase NOT IN ('completed', 'aborted')" 2>/dev/null || true
}

run_pgcopydb() {
	local db=$1 dir=$2 t0 t1
	# The target database exists and is empty; roles exist on the target,
	# extensions (plpgsql only) exist already: no further options needed.
	t0=$(now)
	client pgcopydb clone \
		--source "$SRC_URI" --target "$(tgt_uri "$db")" \
		--table-jobs "$JOBS" --index-jobs "$JOBS" \
		--split-tables-larger-than "$SPLIT" \
		--dir "$dir"
	t1=$(now)
	echo "WALL $(elapsed "$t0" "$t1")"
}

run_pg_dump() {
	local db=$1 dir=$2/dump t0 t1
	t0=$(now)
	client "$PGBIN/pg_dump" -Fd -j "$JOBS" -f "$dir" "$SRC_URI"
	client "$PGBIN/pg_restore" -j "$JOBS" -d "$(tgt_uri "$db")" "$dir"
	t1=$(now)
	echo "dump size: $(du -sh "$dir" | cut -f1) (pg_dump's default compression)"
	echo "WALL $(elapsed "$t0" "$t1")"
}

# The publication is created (untimed) before the run and dropped after it:
# left in place, it would be part of the other tools' schema dumps, and
# tables without a replica identity (pgbench_history) would refuse UPDATE.
run_native() {
	local db=$1 t0 t1 pending
	src_psql -d bench -c "CREATE PUBLICATION bench_pub FOR ALL TABLES"
	t0=$(now)
	# schema first (the subscription copies only data); the tables get
	# their indexes and constraints before the data: that is how native
	# logical replication works
	client "$PGBIN/pg_dump" --schema-only --no-publications --no-subscriptions "$SRC_URI" |
		client "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK/target" -p "$TGT_PORT" \
			-U postgres -d "$db" >/dev/null
	tgt_psql -d "$db" -v src="$SRC_CONNINFO" <<'SQL'
SET client_min_messages = warning;
CREATE SUBSCRIPTION bench_sub CONNECTION :'src' PUBLICATION bench_pub WITH (copy_data = true);
SQL
	# synchronized: every table in state r (ready) or s (synced)
	while :; do
		pending=$(tgt_psql -At -d "$db" -c "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')")
		[ "$pending" = 0 ] && break
		[ "$(date +%s)" -lt "$DEADLINE" ] || { echo "timeout: $pending tables not synchronized" >&2; return 124; }
		sleep 0.1
	done
	t1=$(now)
	echo "WALL $(elapsed "$t0" "$t1")"
}

after_native() {
	local db=$1
	if tgt_psql -At -d "$db" -c "SELECT 1 FROM pg_subscription WHERE subname = 'bench_sub'" 2>/dev/null | grep -q 1; then
		# a normal DROP also drops the slot on the source; if the source
		# cannot be reached, detach the slot first (cleaned up below)
		tgt_psql -d "$db" -c "DROP SUBSCRIPTION bench_sub" ||
			tgt_psql -d "$db" -c "ALTER SUBSCRIPTION bench_sub DISABLE" \
				-c "ALTER SUBSCRIPTION bench_sub SET (slot_name = NONE)" \
				-c "DROP SUBSCRIPTION bench_sub"
	fi
	src_psql -d bench -c "DROP PUBLICATION IF EXISTS bench_pub"
}

# ---------------------------------------------------------------- checks

# verify_tables DB: compare every table's row count and hash with the source.
# Prints OK or MISMATCH and the differing tables; fails on a mismatch.
verify_tables() {
	local db=$1 out=$LOG_DIR/$2.tables diffs
	tgt_psql -At -d "$db" -f "$BENCH_DIR/sql/table_hashes.sql" | sort >"$out" || true
	diffs=$(diff "$LOG_DIR/source.tables" "$out" | grep '^[<>]' || true)
	if [ -z "$diffs" ]; then
		echo "tables: OK ($(wc -l <"$out") tables, same row counts and hashes as the source)"
		return 0
	fi
	echo "tables: MISMATCH (< source, > target; table|rows|hash):"
	echo "$diffs" | head -n 20
	return 1
}

# verify_sequences DB TOOL: prints "N/M" sequences equal to the source's
verify_sequences() {
	local db=$1 out=$LOG_DIR/$2.sequences total same
	tgt_psql -At -d "$db" -f "$BENCH_DIR/sql/sequence_values.sql" | sort >"$out" || true
	total=$(wc -l <"$LOG_DIR/source.sequences")
	same=$(comm -12 "$LOG_DIR/source.sequences" "$out" | wc -l)
	echo "$same/$total"
}

# Replication slots left on the source would hold WAL: report and drop them.
drop_leftover_slots() {
	local slots
	slots=$(src_psql -At -d bench -c "SELECT slot_name FROM pg_replication_slots WHERE NOT active")
	[ -z "$slots" ] && return 0
	echo "note: replication slots left on the source, dropped: $slots"
	src_psql -d bench -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active" >/dev/null
}

# ---------------------------------------------------------------- driver

# bench_tool TOOL RUN: one run of TOOL into a fresh target database.  Sets
# RUN_WALL (seconds, or FAILED / TIMEOUT / CRASHED), RUN_VERIFIED (yes, NO,
# or - when the run failed) and RUN_SEQS (sequences equal to the source).
bench_tool() {
	local tool=$1 db=bench_$1 name=$1 log scratch status log_from crashed
	[ "$REPEAT" -gt 1 ] && name=$tool.$2
	log=$LOG_DIR/$name.log
	say "${LABEL[$tool]}${REPEAT_TAG:+ ($REPEAT_TAG)}: into target database $db (log: $log)"
	tgt_psql -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
	# start from clean buffers on both sides
	src_psql -d postgres -c CHECKPOINT
	tgt_psql -d postgres -c CHECKPOINT
	scratch=$(scratch_dir "$tool")
	log_from=$(stat -c %s "$WORK/target/server.log")
	DEADLINE=$(($(date +%s) + TOOL_TIMEOUT))

	set +e
	(set -e; "run_$tool" "$db" "$scratch") >"$log" 2>&1
	status=$?
	crashed=0
	target_crashed "$log_from" && crashed=1 && [ "$status" -eq 0 ] && status=1
	[ "$crashed" = 0 ] && declare -F "after_$tool" >/dev/null && "after_$tool" "$db" >>"$log" 2>&1
	set -e
	rm -rf "$scratch"

	if [ "$status" -eq 0 ] && grep -q '^WALL ' "$log"; then
		# pg_ingest's own report (ingest.status, ingest.verify) is part of the output
		[ "$tool" = pg_ingest ] && sed '/^WALL /d; s/^/  | /' "$log"
		RUN_WALL=$(sed -n 's/^WALL //p' "$log" | tail -n 1)
		echo "wall clock: $RUN_WALL s"
		if verify_tables "$db" "$name" | tee -a "$log"; then
			RUN_VERIFIED=yes
		else
			RUN_VERIFIED=NO
		fi
		RUN_SEQS=$(verify_sequences "$db" "$name")
		echo "sequences equal to the source: $RUN_SEQS"
	else
		if [ "$crashed" = 1 ]; then
			RUN_WALL=CRASHED
		elif [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
			RUN_WALL=TIMEOUT
		else
			RUN_WALL=FAILED
		fi
		RUN_VERIFIED=-
		RUN_SEQS=-
		echo "$RUN_WALL (exit status $status); end of $log:"
		tail -n 25 "$log" | sed 's/^/  | /'
		echo "errors in the target's server log during the run:"
		tail -c +"$((log_from + 1))" "$WORK/target/server.log" |
			grep -E 'ERROR|FATAL|PANIC|terminated by signal|exited with exit code' | tail -n 15 | sed 's/^/  | /' || true
	fi
	drop_leftover_slots
	if [ "$crashed" = 1 ]; then
		reset_target
		return
	fi
	if [ "$KEEP_DBS" = 1 ]; then
		echo "kept target database $db (the next run of $tool replaces it)"
	else
		tgt_psql -d postgres -c "DROP DATABASE $db WITH (FORCE)"
	fi
}

# Per tool, over all runs: TIMES (the wall clocks), FAIL (the first failure),
# VERIFIED (yes only if every run was), SEQS (of the last run).  With
# --repeat, the tools take turns, so that a slow phase of the machine does
# not fall on one tool only.
declare -A TIMES FAIL VERIFIED SEQS
for run in $(seq "$REPEAT"); do
	REPEAT_TAG=
	[ "$REPEAT" -gt 1 ] && REPEAT_TAG="run $run of $REPEAT"
	for tool in "${TOOLS[@]}"; do
		bench_tool "$tool" "$run"
		if [[ $RUN_WALL =~ ^[0-9.]+$ ]]; then
			TIMES[$tool]="${TIMES[$tool]:-} $RUN_WALL"
		else
			FAIL[$tool]=${FAIL[$tool]:-$RUN_WALL}
		fi
		case ${VERIFIED[$tool]:-yes},$RUN_VERIFIED in
		yes,yes) VERIFIED[$tool]=yes ;;
		NO,* | *,NO) VERIFIED[$tool]=NO ;;
		*) VERIFIED[$tool]=- ;;
		esac
		SEQS[$tool]=$RUN_SEQS
	done
done

# ---------------------------------------------------------------- report

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A WALL
for tool in "${TOOLS[@]}"; do
	WALL[$tool]=${FAIL[$tool]:-$(median <<<"${TIMES[$tool]}")}
done

base=${WALL[pg_ingest]:-}
[[ $base =~ ^[0-9.]+$ ]] || base=
{
	say "results"
	echo "source: pgbench scale $SCALE + schema mixed (up to $MIXED_ROWS rows a table); $SRC_TABLES tables, database size $SRC_SIZE, pgbench_accounts $SRC_ACCOUNTS"
	echo "jobs: $JOBS table + $JOBS index jobs; split tables larger than $SPLIT; timeout ${TOOL_TIMEOUT}s per tool; $REPEAT run(s) each"
	echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GB RAM, ${BUSY_BEFORE}% busy before the runs; PostgreSQL $("$PGBIN/postgres" -V | awk '{ print $3 }'); $(pgcopydb --version 2>/dev/null | head -n 1)"
	echo
	printf '%-26s %8s   %-20s %-9s %s\n' tool wall_s ratio_to_pg_ingest verified sequences
	for tool in "${TOOLS[@]}"; do
		wall=${WALL[$tool]}
		ratio=n/a
		[ -n "$base" ] && [[ $wall =~ ^[0-9.]+$ ]] && ratio=$(awk -v a="$wall" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
		printf '%-26s %8s   %8s             %-9s %s\n' "${LABEL[$tool]}" "$wall" "$ratio" "${VERIFIED[$tool]}" "${SEQS[$tool]}"
	done
	if [ "$REPEAT" -gt 1 ]; then
		echo
		echo "wall_s is the median of the successful runs; all runs:"
		for tool in "${TOOLS[@]}"; do
			printf '  %-26s%s%s\n' "${LABEL[$tool]}" "${TIMES[$tool]:-}" "${FAIL[$tool]:+ (and ${FAIL[$tool]})}"
		done
	fi
	echo
	echo "notes:"
	echo "- wall_s: pg_ingest from ingest.start() to ingest.wait() returning; pg_dump and"
	echo "  pg_restore together; native from the schema dump to every table synchronized."
	echo "- native subscription copies into tables that already have their indexes and"
	echo "  constraints (schema restored first), and does not copy sequence values."
	echo "- pgcopydb also runs VACUUM ANALYZE on every table it copies; pg_restore does not."
	echo "- verified: every table's row count and sum of row hashes equal to the source's;"
	echo "  sequences: how many sequences have the source's last_value (information only)."
} | tee "$LOG_DIR/results.txt"

failed=0
for tool in "${TOOLS[@]}"; do
	[ "${VERIFIED[$tool]}" = yes ] && [ -z "${FAIL[$tool]:-}" ] || failed=1
done
exit "$failed"
