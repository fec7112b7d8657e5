#!/usr/bin/env bash
# pg_ingest benchmark: full loads of several source databases ("datasets"),
# by pg_ingest and by its peers, each into a fresh database of the same
# target cluster, the tools taking turns over --repeat rounds; then change
# data capture (CDC), pg_ingest against native logical replication.  One
# command, one run: tables of medians and ratios, a TSV of every figure and
# an SVG chart, in bench/work/<date>/.  bench/readme.sh DIR turns them into
# the README's performance section.
#
#   bench/run.sh [--dataset LIST] [--only LIST] [--repeat N] [--scale N]
#                [--mixed-rows N] [--many-tables N] [--many-rows N]
#                [--jobs N] [--split SIZE] [--skip LIST]
#                [--timeout SECONDS] [--keep] [--no-build]
#                [--cdc-steps LIST] [--cdc-seconds N] [--backlog-seconds N]
#                [--cdc-clients N] [--cdc-big-rows N] [--cdc-hold HOW]
#
#   --dataset LIST   comma-separated subset of (default all three):
#                      pgbench  pgbench -i at --scale (one big table:
#                               pgbench_accounts, 640 MB at scale 50)
#                      mixed    sql/mixed_schema.sql: 40 tables of mixed
#                               types, partitions, FKs (--mixed-rows)
#                      many     sql/many_objects.sql: --many-tables tables of
#                               --many-rows rows, 4 indexes, an FK, a check,
#                               a trigger, a view and a comment each
#                    each in its own source database
#   --only LIST      comma-separated subset of the tools: pg_ingest,
#                    pgcopydb, pgcopydb_ps, pg_dump, native, and cdc (the
#                    change-stream part) (default: all)
#   --repeat N       rounds (default 3): every tool runs N times on every
#                    dataset, taking turns (the order rotates each round);
#                    the report gives medians.  cdc: N drain rounds
#   --scale N        pgbench scale (default 50)
#   --mixed-rows N   rows of mixed's largest table (default 2000 x scale:
#                    100k, ~215 MB at scale 50)
#   --many-tables N  tables of the many dataset (default 2000)
#   --many-rows N    rows of each (default 50)
#   --jobs N         table jobs and index jobs of every tool (default 2)
#   --split SIZE     the peers' --split-tables-larger-than (pgcopydb,
#                    pgcopydb_ps; default 128MB, so that pgbench_accounts is
#                    split at scale 50).  pg_ingest runs with its defaults
#                    unless --split is given: then it gets
#                    split_tables_larger_than => SIZE too
#   --skip LIST      comma-separated TOOL@DATASET runs left out (default
#                    native@many: the subscription synchronizes one table
#                    after another, 2,000 of them take long; --skip '' runs
#                    everything)
#   --timeout SEC    wall-clock limit of each tool run and each cdc step
#                    (default 1800)
#   --keep           keep the target databases (dropped after each run
#                    otherwise); with KEEP=1 to look at them afterwards
#   --no-build       use the pg_ingest installed in PGBIN instead of building
#                    and installing the tree (packages are still installed)
#   --cdc-steps LIST comma-separated subset of cdc's measurements (default
#                    all; setup, verification and cutover always run):
#                      big      one transaction of --cdc-big-rows rows (~1 GB):
#                               peak memory of pg_ingest's receiver and
#                               applier, spool size after it was applied
#                      latency  commit on the source -> visible on the
#                               target, idle, 50 single-row commits, p50/p90
#                      resume   ingest.pause -> ingest.resume -> first change
#                               applied (ALTER SUBSCRIPTION DISABLE/ENABLE for
#                               native), median of 5
#                      drain    both consumers stopped while pgbench
#                               (--backlog-seconds) builds a backlog in the
#                               slot, a marker row after it; then each alone
#                               resumes and is timed until the marker is
#                               visible; --repeat rounds, alternating who
#                               goes first
#                      load     unthrottled pgbench (--cdc-seconds), each
#                               consumer alone: lag at the end, time to drain
#   --cdc-seconds N  length of the load step's pgbench run (default 60)
#   --backlog-seconds N  length of the drain step's pgbench run (default 20,
#                    or --cdc-seconds if that is smaller)
#   --cdc-clients N  pgbench clients (and threads) of cdc (default 4)
#   --cdc-big-rows N rows of the big transaction (default 1000000: ~1 GB)
#   --cdc-hold HOW   how the drain step stops the native subscription:
#                    sigstop (its apply worker, as pg_ingest's receiver;
#                    default) or disable (ALTER SUBSCRIPTION DISABLE/ENABLE)
#
# Environment: PGBIN (PostgreSQL 15 binaries, e.g. a private install with
# --no-build), KEEP=1 leaves both clusters running at the end.
#
# Full-load tools:
#   pg_ingest    CREATE EXTENSION; ingest.start(mode => 'full-load'); ingest.wait()
#   pgcopydb     pgcopydb clone (Debian's 0.10, /usr/bin/pgcopydb)
#   pgcopydb_ps  the PlanetScale fork (/usr/local/bin/pgcopydb-ps, run only
#                when present): clone --use-copy-binary --split-tables-larger-than
#   pg_dump      pg_dump -Fd -j N, then pg_restore -j N
#   native       pg_dump --schema-only | psql, then CREATE SUBSCRIPTION with
#                copy_data until every table is synchronized
# After each run every user table is compared with the source (row count and
# a sum of row hashes); sequences are compared too, for information.
#
# Results in bench/work/<date>/: results.txt (the tables printed),
# results.tsv (every figure: dataset or cdc step, tool, metric, median, the
# rounds), chart.svg (gnuplot), one log per run, cdc.log, server logs.
#
# Works as root (servers and tools then run as the unprivileged user of
# scripts/lib.sh) or as a user with sudo.

# shellcheck disable=SC2317  # run_<tool>, after_<tool> and cdc steps are called by name

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
COMMAND_LINE="bench/run.sh${*:+ $*}"
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
. "$BENCH_DIR/../scripts/lib.sh"

ALL_TOOLS=(pg_ingest pgcopydb pgcopydb_ps pg_dump native)
ALL_DATASETS=(pgbench mixed many)
declare -A LABEL=(
	[pg_ingest]="pg_ingest full-load"
	[pgcopydb]="pgcopydb 0.10 clone"
	[pgcopydb_ps]="pgcopydb-ps clone (binary)"
	[pg_dump]="pg_dump -Fd | pg_restore"
	[native]="native subscription"
)
PGCOPYDB_PS=/usr/local/bin/pgcopydb-ps

# ---------------------------------------------------------------- options

DATASETS_OPT=$(IFS=,; echo "${ALL_DATASETS[*]}")
ONLY=$(IFS=,; echo "${ALL_TOOLS[*]},cdc")
REPEAT=3
SCALE=50
MIXED_ROWS=
MANY_TABLES=2000
MANY_ROWS=50
JOBS=2
SPLIT=128MB
SPLIT_GIVEN=0
SKIP=native@many
TOOL_TIMEOUT=1800
KEEP_DBS=0
BUILD=1
CDC_STEPS=big,latency,resume,drain,load
CDC_SECONDS=60
BACKLOG_SECONDS=
CDC_CLIENTS=4
CDC_BIG_ROWS=1000000
CDC_HOLD=sigstop

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
	case $1 in
	--dataset | --datasets) DATASETS_OPT=$2; shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--scale) SCALE=$2; shift 2 ;;
	--mixed-rows) MIXED_ROWS=$2; shift 2 ;;
	--many-tables) MANY_TABLES=$2; shift 2 ;;
	--many-rows) MANY_ROWS=$2; shift 2 ;;
	--jobs) JOBS=$2; shift 2 ;;
	--split) SPLIT=$2; SPLIT_GIVEN=1; shift 2 ;;
	--skip) SKIP=$2; shift 2 ;;
	--timeout) TOOL_TIMEOUT=$2; shift 2 ;;
	--keep) KEEP_DBS=1; shift ;;
	--no-build) BUILD=0; shift ;;
	--cdc-steps) CDC_STEPS=$2; shift 2 ;;
	--cdc-seconds) CDC_SECONDS=$2; shift 2 ;;
	--backlog-seconds) BACKLOG_SECONDS=$2; shift 2 ;;
	--cdc-clients) CDC_CLIENTS=$2; shift 2 ;;
	--cdc-big-rows) CDC_BIG_ROWS=$2; shift 2 ;;
	--cdc-hold) CDC_HOLD=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	*) echo "unknown argument: $1" >&2; usage 2 >&2 ;;
	esac
done
if [ -z "$BACKLOG_SECONDS" ]; then
	BACKLOG_SECONDS=20
	[ "$CDC_SECONDS" -lt 20 ] 2>/dev/null && BACKLOG_SECONDS=$CDC_SECONDS
fi
for n in "$SCALE" "$JOBS" "$TOOL_TIMEOUT" "$REPEAT" "$CDC_SECONDS" "$BACKLOG_SECONDS" "$CDC_CLIENTS" "$MANY_TABLES" "$MANY_ROWS"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "not a positive integer: $n" >&2; exit 2; }
done
MIXED_ROWS=${MIXED_ROWS:-$((2000 * SCALE))}
for n in "$MIXED_ROWS" "$CDC_BIG_ROWS"; do
	[[ $n =~ ^[0-9]+$ ]] || { echo "not a number: $n" >&2; exit 2; }
done
[[ $SPLIT =~ ^[0-9]+\ ?(B|kB|KB|MB|GB|TB)?$ ]] || { echo "bad --split size: $SPLIT" >&2; exit 2; }
CDC_STEP_RE='(big|latency|resume|drain|load)'
[[ $CDC_STEPS =~ ^$CDC_STEP_RE(,$CDC_STEP_RE)*$ ]] || { echo "bad --cdc-steps: $CDC_STEPS (known: big,latency,resume,drain,load)" >&2; exit 2; }
[[ $CDC_HOLD =~ ^(sigstop|disable)$ ]] || { echo "bad --cdc-hold: $CDC_HOLD (sigstop or disable)" >&2; exit 2; }

# in_list ITEM LIST: is ITEM one of the comma-separated LIST?
in_list() { [[ ",$2," == *",$1,"* ]]; }

DATASETS=()
IFS=, read -ra wanted <<<"$DATASETS_OPT"
for d in "${wanted[@]}"; do
	in_list "$d" "$(IFS=,; echo "${ALL_DATASETS[*]}")" || { echo "unknown dataset: $d (known: ${ALL_DATASETS[*]})" >&2; exit 2; }
done
for d in "${ALL_DATASETS[@]}"; do in_list "$d" "$DATASETS_OPT" && DATASETS+=("$d"); done
TOOLS=()
RUN_CDC=0
IFS=, read -ra wanted <<<"$ONLY"
for t in "${wanted[@]}"; do
	[ "$t" = cdc ] && RUN_CDC=1 && continue
	[ "$t" = pgcopydb-ps ] && t=pgcopydb_ps
	[ -n "${LABEL[$t]:-}" ] || { echo "unknown tool in --only: $t (known: ${ALL_TOOLS[*]} cdc)" >&2; exit 2; }
done
ONLY=${ONLY//pgcopydb-ps/pgcopydb_ps}
for t in "${ALL_TOOLS[@]}"; do	# keep the canonical order
	in_list "$t" "$ONLY" && TOOLS+=("$t")
done
SKIPPED_NOTES=()
IFS=, read -ra wanted <<<"$SKIP"
for t in "${wanted[@]}"; do
	[[ $t =~ ^(pg_ingest|pgcopydb|pgcopydb_ps|pg_dump|native)@(pgbench|mixed|many)$ ]] || { echo "bad --skip entry: $t (TOOL@DATASET)" >&2; exit 2; }
done
if in_list pgcopydb_ps "$ONLY" && [ ! -x "$PGCOPYDB_PS" ]; then
	SKIPPED_NOTES+=("pgcopydb-ps: not run, $PGCOPYDB_PS is not there (../shared/peers/build-pgcopydb-ps.sh builds it)")
	TOOLS=("${TOOLS[@]/pgcopydb_ps}")
	read -ra TOOLS <<<"${TOOLS[*]}"
fi
# the CDC part runs on the pgbench dataset's source database
NEED_PGBENCH_SOURCE=0
if [ "$RUN_CDC" = 1 ] && ! in_list pgbench "$DATASETS_OPT"; then NEED_PGBENCH_SOURCE=1; fi

# tools_for DATASET: the tools that load it, in canonical order
tools_for() {
	local t
	for t in "${TOOLS[@]}"; do
		in_list "$t@$1" "$SKIP" && continue
		echo "$t"
	done
}

# ---------------------------------------------------------------- setup

# gnuplot-nox draws the chart
install_packages pgcopydb gnuplot-nox
if [ "$BUILD" = 1 ]; then
	build_and_install
else
	ensure_user
	export PATH="$PGBIN:$PATH"
fi
INGEST_SO=$("$PGBIN/pg_config" --pkglibdir)/pg_ingest.so
[ -f "$INGEST_SO" ] || { echo "pg_ingest is not installed: no $INGEST_SO" >&2; exit 1; }
# which build: the start of its md5 and its file's date; and whether someone
# installed another one during the run (the target's workers load it again
# by path)
so_md5() { md5sum "$INGEST_SO" | cut -c1-12; }
INGEST_SO_MD5=$(so_md5)
INGEST_BUILD="pg_ingest.so md5 $INGEST_SO_MD5 of $(date -u -r "$INGEST_SO" '+%Y-%m-%d %H:%M:%S UTC')"
[ "$BUILD" = 1 ] || INGEST_BUILD="$INGEST_BUILD, as installed (--no-build)"

MIGRATOR_PASSWORD=bench-Secret-1
WORK=$(scratch_dir bench)			# clusters and scratch dirs, RUN_USER's
LOG_DIR=$BENCH_DIR/work/$(date +%Y%m%d-%H%M%S)	# logs and results (git-ignored)
mkdir -p "$LOG_DIR"
RESULTS_TSV=$LOG_DIR/results.tsv
STARTED_AT=$(date -u '+%Y-%m-%d %H:%M UTC')
SRC_PORT=$(free_port 26432)
TGT_PORT=$(free_port $((SRC_PORT + 1)))
STOPPED_PIDS=$WORK/stopped.pids			# processes cdc SIGSTOPped

cleanup() {
	local status=$? c p
	# a stopped process would keep its server from shutting down
	if [ -f "$STOPPED_PIDS" ]; then
		while read -r p; do kill -CONT "$p" 2>/dev/null || true; done <"$STOPPED_PIDS"
	fi
	for c in source target; do	# keep the server logs with the others
		[ -f "$WORK/$c/server.log" ] && cp "$WORK/$c/server.log" "$LOG_DIR/$c-server.log"
	done
	if [ "${KEEP:-0}" = 1 ]; then
		say "clusters left running: source port $SRC_PORT, target port $TGT_PORT, in $WORK"
	else
		stop_cluster "$WORK/source"	# fast, then immediate (lib.sh)
		stop_cluster "$WORK/target"
		rm -rf "$WORK"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Settings identical on both clusters and for every tool.  fsync is already
# off (start_cluster).  The target keeps its default wal_level (replica).
# wal_sender_timeout 0: cdc stops consumers with SIGSTOP for longer than its
# default minute can be.
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
wal_sender_timeout = 0
CONF
}

say "starting source (port $SRC_PORT) and target (port $TGT_PORT) in $WORK; results in $LOG_DIR"
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

# How the tools reach the source database SRC_DB (set per dataset): as
# migrator over TCP with its password (scram, see start_cluster's
# pg_hba.conf).  Client programs read the password from a password file;
# server-side consumers (pg_ingest, the subscription) get it in the
# connection string.
SRC_DB=
src_conninfo() { echo "host=127.0.0.1 port=$SRC_PORT user=migrator dbname=$SRC_DB password=$MIGRATOR_PASSWORD"; }
src_uri() { echo "postgres://migrator@127.0.0.1:$SRC_PORT/$SRC_DB"; }
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

now() { date +%s.%N; }
BENCH_T0=$(date +%s)
since_start() { local s=$(($(date +%s) - BENCH_T0)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# med "V1 V2...": their median, or - if there are none
med() { if [ -n "${1// /}" ]; then median <<<"$1"; else echo -; fi; }
# tsv FIELDS...: one line of results.tsv (see lib/report.sh for the columns)
tsv() { (IFS=$'\t'; echo "$*") >>"$RESULTS_TSV"; }

# shellcheck source=SCRIPTDIR/lib/tools.sh
. "$BENCH_DIR/lib/tools.sh"
# shellcheck source=SCRIPTDIR/lib/cdc.sh
. "$BENCH_DIR/lib/cdc.sh"
# shellcheck source=SCRIPTDIR/lib/report.sh
. "$BENCH_DIR/lib/report.sh"

# ---------------------------------------------------------------- sources

src_psql -d postgres <<SQL
SET log_statement = 'none';
SET password_encryption = 'scram-sha-256';
CREATE ROLE migrator LOGIN REPLICATION PASSWORD '$MIGRATOR_PASSWORD';
SQL
# The objects' owner must exist on the target for every tool to restore
# ownership as on the source: create it there once, for all tools (and
# again in reset_target).
tgt_psql -d postgres -c "CREATE ROLE migrator"

declare -A DESCRIBE	# dataset: what it is, for the report
# load_source DATASET: its source database (named after it), hashed once
load_source() {
	local ds=$1 t0 log=$LOG_DIR/load-$1.log
	say "loading the source database $ds"
	t0=$(now)
	src_psql -d postgres -c "CREATE DATABASE $ds OWNER migrator"
	case $ds in
	pgbench)
		as_user "$PGBIN/pgbench" -i -q -s "$SCALE" -h "$WORK/source" -p "$SRC_PORT" -U migrator "$ds" \
			>"$log" 2>&1 || { tail -n 20 "$log"; exit 1; } ;;
	mixed)
		as_user "$PGBIN/psql" -X -q -h "$WORK/source" -p "$SRC_PORT" -U migrator -d "$ds" \
			-v rows_max="$MIXED_ROWS" -f "$BENCH_DIR/sql/mixed_schema.sql" >"$log" 2>&1 || { tail -n 20 "$log"; exit 1; } ;;
	many)
		as_user "$PGBIN/psql" -X -q -h "$WORK/source" -p "$SRC_PORT" -U migrator -d "$ds" \
			-v tables="$MANY_TABLES" -v rows="$MANY_ROWS" -f "$BENCH_DIR/sql/many_objects.sql" >"$log" 2>&1 || { tail -n 20 "$log"; exit 1; } ;;
	esac
	src_psql -d "$ds" -c "VACUUM ANALYZE"
	local size tables indexes
	size=$(src_psql -At -d "$ds" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
	tables=$(src_psql -At -d "$ds" -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')")
	indexes=$(src_psql -At -d "$ds" -c "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')")
	case $ds in
	pgbench) DESCRIBE[$ds]="pgbench -i scale $SCALE (pgbench_accounts $(src_psql -At -d "$ds" -c "SELECT pg_size_pretty(pg_table_size('pgbench_accounts'))"))" ;;
	mixed) DESCRIBE[$ds]="sql/mixed_schema.sql, up to $MIXED_ROWS rows a table" ;;
	many) DESCRIBE[$ds]="sql/many_objects.sql, $MANY_TABLES tables of $MANY_ROWS rows" ;;
	esac
	DESCRIBE[$ds]+="; $tables tables, $indexes indexes, $size"
	# reference hashes; this also reads every table, so that all tools
	# start with the source in cache
	source_hashes "$ds" "$LOG_DIR/source-$ds.tables"
	src_psql -At -d "$ds" -f "$BENCH_DIR/sql/sequence_values.sql" | sort >"$LOG_DIR/source-$ds.sequences"
	echo "$ds: ${DESCRIBE[$ds]}; loaded and hashed in $(elapsed "$t0" "$(now)") s"
	tsv dataset "$ds" - description - - - "${DESCRIBE[$ds]}"
}

# the header lines of results.tsv: what ran where
tsv kind dataset tool metric median unit runs note
tsv meta - - command - - - "$COMMAND_LINE"
tsv meta - - started - - - "$STARTED_AT"
tsv meta - - machine - - - "$(machine_desc)"
tsv meta - - build - - - "$INGEST_BUILD"

for ds in "${DATASETS[@]}"; do load_source "$ds"; done
[ "$NEED_PGBENCH_SOURCE" = 1 ] && load_source pgbench

src_psql -d postgres -c CHECKPOINT	# the load's dirty buffers: not someone else's work
BUSY_BEFORE=$(cpu_busy_pct)
tsv meta - - busy_before "$BUSY_BEFORE" % - "CPU busy while both clusters were idle, before the runs"
if [ "$BUSY_BEFORE" -gt 10 ]; then
	echo "WARNING: the CPUs are ${BUSY_BEFORE}% busy before the runs: other processes compete, timings will be noisy"
fi
for n in "${SKIPPED_NOTES[@]}"; do echo "note: $n"; tsv note - - skipped - - - "$n"; done
for ds in "${DATASETS[@]}"; do
	for t in "${TOOLS[@]}"; do
		in_list "$t@$ds" "$SKIP" || continue
		n="$t not run on $ds (--skip $SKIP)"
		[ "$t@$ds" = native@many ] && n="$n: the subscription synchronizes one table after another"
		tsv note "$ds" "$t" skipped - - - "$n"
	done
done

# ---------------------------------------------------------------- full loads

estimate_runs=0
for ds in "${DATASETS[@]}"; do
	n=$(tools_for "$ds" | wc -l)
	estimate_runs=$((estimate_runs + n * REPEAT))
done
say "full loads: ${#DATASETS[@]} dataset(s) (${DATASETS[*]}), $estimate_runs runs in all, $REPEAT round(s), tools taking turns"

failed=0
RUN_NO=0
for ds in "${DATASETS[@]}"; do
	SRC_DB=$ds
	mapfile -t ds_tools < <(tools_for "$ds")
	[ ${#ds_tools[@]} -gt 0 ] || continue
	declare -A TIMES=() FAIL=() VERIFIED=() SEQS=()
	for run in $(seq "$REPEAT"); do
		# rotate the order every round: no tool always runs first
		n=${#ds_tools[@]}
		for i in $(seq 0 $((n - 1))); do
			tool=${ds_tools[$(((i + run - 1) % n))]}
			RUN_NO=$((RUN_NO + 1))
			REPEAT_TAG="$ds, round $run of $REPEAT, run $RUN_NO of $estimate_runs, $(since_start) since the start"
			bench_tool "$tool" "$ds" "$run"
			tsv run "$ds" "$tool" wall_s "$RUN_WALL" s "$run" "verified=$RUN_VERIFIED sequences=$RUN_SEQS"
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
	for tool in "${ds_tools[@]}"; do
		m=$(med "${TIMES[$tool]:-}")
		tsv load "$ds" "$tool" wall_s "$m" s "${TIMES[$tool]# }" "verified=${VERIFIED[$tool]} failed=${FAIL[$tool]:-none} sequences=${SEQS[$tool]}"
		[ "${VERIFIED[$tool]}" = yes ] && [ -z "${FAIL[$tool]:-}" ] || failed=1
	done
	load_report "$ds" | tee -a "$LOG_DIR/results.txt"
done

# ---------------------------------------------------------------- cdc

if [ "$RUN_CDC" = 1 ]; then
	SRC_DB=pgbench
	cdc_main
	[ "$CDC_OK" = 1 ] || failed=1
fi

say "summary ($(since_start) in all)"
summary_report | tee "$LOG_DIR/summary.txt"
draw_chart
echo "results: $LOG_DIR (results.txt, results.tsv, summary.txt${CHART_OK:+, chart.svg})"
echo "README section: bench/readme.sh $LOG_DIR"
exit "$failed"
