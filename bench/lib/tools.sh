# shellcheck shell=bash
# bench/lib/tools.sh, sourced by bench/run.sh: the full-load tools, the
# checks of their results, and one run of a tool (bench_tool).
#
# run_<tool> DB SCRATCH loads the source database SRC_DB into the empty
# target database DB (SCRATCH: an empty directory RUN_USER owns, removed
# afterwards) and prints "WALL <seconds>" for its timed part.  It runs in a
# subshell with set -e: any failing command fails the tool.  after_<tool> DB,
# if defined, cleans up; it runs whether the tool succeeded or not (unless
# the target crashed).

# source_hashes DB FILE: every table of the source database DB, row count and hash
source_hashes() { src_psql -At -d "$1" -f "$BENCH_DIR/sql/table_hashes.sql" | sort >"$2"; }

# Other work on this machine makes the timings noisy: how busy the CPUs are
# for 2 s (while the clusters are idle).
cpu_busy_pct() {
	local a b c idle iowait t1 i1
	# cpu  user nice system idle iowait irq ...
	read -r _ a b c idle iowait _ </proc/stat
	t1=$((a + b + c + idle + iowait)) i1=$((idle + iowait))
	sleep 2
	read -r _ a b c idle iowait _ </proc/stat
	echo $((100 - 100 * (idle + iowait - i1) / (a + b + c + idle + iowait - t1)))
}

machine_desc() {
	echo "$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(free -g | awk '/^Mem:/ { print $2 }') GB RAM; PostgreSQL $("$PGBIN/postgres" -V | awk '{ print $3 }')"
}

# target_crashed LOG_FROM: did the target's postmaster see a process crash
# since byte LOG_FROM of its log, or does it not accept connections?
target_crashed() {
	tail -c +"$(($1 + 1))" "$WORK/target/server.log" |
		grep -qE 'terminated by signal|PANIC:|database system is in recovery mode' && return 0
	as_user "$PGBIN/pg_isready" -q -t 30 -h "$WORK/target" -p "$TGT_PORT" -U postgres && return 1
	return 0
}

# A tool that crashed the target server (a background worker killed by a
# signal, or no recovery) gets it replaced by a fresh one, same settings, so
# that the next tools are measured on a healthy server.
reset_target() {
	echo "the target server crashed during the run: replacing it with a fresh cluster"
	cp "$WORK/target/server.log" "$LOG_DIR/target-server.crashed.$(date +%s).log"
	stop_cluster "$WORK/target"
	rm -rf "$WORK/target"
	start_cluster "$WORK/target" "$TGT_PORT" "$(target_conf; tuning)" || cluster_failed target
	tgt_psql -d postgres -c "CREATE ROLE migrator"
}

# run_pg_ingest DB SCRATCH [MODE]: with MODE full-load-and-cdc (for cdc) it
# waits for phase 'streaming' instead of 'completed'.  Default settings but
# the jobs; split_tables_larger_than only when --split was given.
run_pg_ingest() {
	local db=$1 mode=${3:-full-load} phase=completed t0 t1 out waited bad split=
	[ "$mode" = full-load ] || phase=streaming
	[ "$SPLIT_GIVEN" = 1 ] && split=", split_tables_larger_than => '$SPLIT'"
	tgt_psql -d "$db" -c "CREATE EXTENSION pg_ingest"
	t0=$(now)
	out=$(client "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$WORK/target" -p "$TGT_PORT" -U postgres -d "$db" \
		-v src="$(src_conninfo)" <<SQL
SELECT ingest.start(source => :'src', name => 'bench', mode => '$mode',
                    table_jobs => $JOBS, index_jobs => $JOBS$split);
SELECT ingest.wait('bench', '$phase', '$((DEADLINE - $(date +%s))) seconds');
SQL
)
	t1=$(now)
	waited=$(echo "$out" | tail -n 1)	# start() returns void, wait() a bool
	echo "ingest.wait('bench', '$phase') returned: $waited"
	tgt_psql -d "$db" -c "SELECT * FROM ingest.status" -c "SELECT * FROM ingest.verify('bench')"
	if [ "$waited" != t ]; then
		echo "ingest.wait returned $waited: the migration did not reach '$phase'" >&2
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

# pgcopydb clone, Debian's or the PlanetScale fork's (with binary COPY).
# The target database exists and is empty; roles exist on the target,
# extensions (plpgsql only) exist already: no further options needed.
pgcopydb_clone() {
	local bin=$1 db=$2 dir=$3 t0 t1
	shift 3
	t0=$(now)
	client "$bin" clone \
		--source "$(src_uri)" --target "$(tgt_uri "$db")" \
		--table-jobs "$JOBS" --index-jobs "$JOBS" \
		--split-tables-larger-than "$SPLIT" \
		--dir "$dir" "$@"
	t1=$(now)
	echo "WALL $(elapsed "$t0" "$t1")"
}
run_pgcopydb() { pgcopydb_clone pgcopydb "$1" "$2"; }
run_pgcopydb_ps() { pgcopydb_clone "$PGCOPYDB_PS" "$1" "$2" --use-copy-binary; }

run_pg_dump() {
	local db=$1 dir=$2/dump t0 t1
	t0=$(now)
	client "$PGBIN/pg_dump" -Fd -j "$JOBS" -f "$dir" "$(src_uri)"
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
	src_psql -d "$SRC_DB" -c "CREATE PUBLICATION bench_pub FOR ALL TABLES"
	t0=$(now)
	# schema first (the subscription copies only data); the tables get
	# their indexes and constraints before the data: that is how native
	# logical replication works
	client "$PGBIN/pg_dump" --schema-only --no-publications --no-subscriptions "$(src_uri)" |
		client "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK/target" -p "$TGT_PORT" \
			-U postgres -d "$db" >/dev/null
	tgt_psql -d "$db" -v src="$(src_conninfo)" <<'SQL'
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
	src_psql -d "$SRC_DB" -c "DROP PUBLICATION IF EXISTS bench_pub"
}

# verify_tables DB NAME REFERENCE: compare every table's row count and hash
# with the source's (REFERENCE: a file of source_hashes).  Prints OK or
# MISMATCH and the differing tables; fails on a mismatch.
verify_tables() {
	local db=$1 out=$LOG_DIR/$2.tables ref=$3 diffs
	tgt_psql -At -d "$db" -f "$BENCH_DIR/sql/table_hashes.sql" | sort >"$out" || true
	diffs=$(diff "$ref" "$out" | grep '^[<>]' || true)
	if [ -z "$diffs" ]; then
		echo "tables: OK ($(wc -l <"$out") tables, same row counts and hashes as the source)"
		return 0
	fi
	echo "tables: MISMATCH (< source, > target; table|rows|hash):"
	echo "$diffs" | head -n 20
	return 1
}

# verify_sequences DB NAME REFERENCE: prints "N/M" sequences equal to the source's
verify_sequences() {
	local db=$1 out=$LOG_DIR/$2.sequences ref=$3 total same
	tgt_psql -At -d "$db" -f "$BENCH_DIR/sql/sequence_values.sql" | sort >"$out" || true
	total=$(wc -l <"$ref")
	same=$(comm -12 "$ref" "$out" | wc -l)
	echo "$same/$total"
}

# Replication slots left on the source would hold WAL: report and drop them.
drop_leftover_slots() {
	local slots
	slots=$(src_psql -At -d postgres -c "SELECT slot_name FROM pg_replication_slots WHERE NOT active")
	[ -z "$slots" ] && return 0
	echo "note: replication slots left on the source, dropped: $slots"
	src_psql -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active" >/dev/null
}

# bench_tool TOOL DATASET ROUND: one run of TOOL into a fresh target
# database.  Sets RUN_WALL (seconds, or FAILED / TIMEOUT / CRASHED),
# RUN_VERIFIED (yes, NO, or - when the run failed) and RUN_SEQS (sequences
# equal to the source).
bench_tool() {
	local tool=$1 ds=$2 db=bench_$1 name=$2.$1.$3 log scratch status log_from crashed
	log=$LOG_DIR/$name.log
	say "${LABEL[$tool]} ($REPEAT_TAG): into target database $db (log: $log)"
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
		RUN_WALL=$(sed -n 's/^WALL //p' "$log" | tail -n 1)
		echo "wall clock: $RUN_WALL s"
		if verify_tables "$db" "$name" "$LOG_DIR/source-$ds.tables" | tee -a "$log"; then
			RUN_VERIFIED=yes
		else
			RUN_VERIFIED=NO
		fi
		RUN_SEQS=$(verify_sequences "$db" "$name" "$LOG_DIR/source-$ds.sequences")
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
