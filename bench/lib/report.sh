# shellcheck shell=bash
# bench/lib/report.sh, sourced by bench/run.sh: the tables printed (and kept
# in results.txt), the chart, all read back from results.tsv.
#
# results.tsv: tab-separated, a header line then one line per figure:
#   kind     meta | dataset | note | run | load | cdc
#   dataset  pgbench, mixed, many; cdc for the change-stream figures
#   tool     pg_ingest, pgcopydb, pgcopydb_ps, pg_dump, native (or -)
#   metric   wall_s (load, run), drain_s, resume_s, visible_p50_ms, ... (cdc)
#   median   the median over the rounds (a run's own figure for kind run;
#            FAILED, TIMEOUT, CRASHED, or - when nothing was measured)
#   unit     s, ms, MB, tps, ...
#   runs     every round's figure, space-separated
#   note     free text (verification, description)
# bench/readme.sh reads the same file.

# tsv_get KIND DATASET TOOL METRIC [COLUMN]: a field (default: median) of
# the last matching line
tsv_get() {
	awk -F'\t' -v k="$1" -v d="$2" -v t="$3" -v m="$4" -v c="${5:-5}" \
		'$1 == k && $2 == d && $3 == t && $4 == m { v = $c } END { print v }' "$RESULTS_TSV"
}
is_num() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
# ratio A B: A / B with 2 decimals, or -
ratio() { if is_num "$1" && is_num "$2" && [ "$2" != 0 ] && [ "$2" != 0.00 ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi; }

# load_report DATASET: its table (medians, pg_ingest / tool)
load_report() {
	local ds=$1 tool m base runs note
	base=$(tsv_get load "$ds" pg_ingest wall_s)
	say "results: $ds"
	echo "source: ${DESCRIBE[$ds]}"
	echo "jobs: $JOBS table + $JOBS index jobs; peers split tables larger than $SPLIT$([ "$SPLIT_GIVEN" = 1 ] && echo ", pg_ingest too" || echo "; pg_ingest with its defaults"); $REPEAT round(s)"
	echo
	printf '%-30s %9s  %-20s %-9s %s\n' tool median_s "pg_ingest/tool" verified "all runs (s)"
	while read -r tool; do
		m=$(tsv_get load "$ds" "$tool" wall_s)
		runs=$(tsv_get load "$ds" "$tool" wall_s 7)
		note=$(tsv_get load "$ds" "$tool" wall_s 8)
		printf '%-30s %9s  %-20s %-9s %s\n' "${LABEL[$tool]}" "$m" "$(ratio "$base" "$m")" \
			"$(sed -n 's/.*verified=\([^ ]*\).*/\1/p' <<<"$note")" \
			"$runs$(sed -n 's/.*failed=\([A-Z][A-Z]*\).*/ (and \1)/p' <<<"$note")"
	done < <(awk -F'\t' -v d="$ds" '$1 == "load" && $2 == d { print $3 }' "$RESULTS_TSV")
	echo "(pg_ingest/tool < 1: pg_ingest faster; the issue's goal: <= 0.75 against the best peer)"
}

# peers_best DATASET: "tool median" of the fastest peer that succeeded
peers_best() {
	awk -F'\t' -v d="$1" '$1 == "load" && $2 == d && $3 != "pg_ingest" && $5 ~ /^[0-9.]+$/ {
		if (best == "" || $5 + 0 < best + 0) { best = $5; name = $3 } } END { if (name != "") print name, best }' "$RESULTS_TSV"
}

summary_report() {
	local ds tool row best bname bval base
	echo "$COMMAND_LINE; started $STARTED_AT"
	echo "machine: $(machine_desc); CPU ${BUSY_BEFORE:-?}% busy before the runs; $INGEST_BUILD"
	[ "$(so_md5)" = "$INGEST_SO_MD5" ] ||
		echo "WARNING: another pg_ingest.so was installed during the run (md5 $(so_md5)): the figures mix two builds"
	if [ ${#TOOLS[@]} -gt 0 ]; then
		echo
		echo "full load, median seconds of $REPEAT round(s) (pg_ingest/best: < 1 is pg_ingest faster)"
		printf '%-9s' dataset
		for tool in "${ALL_TOOLS[@]}"; do printf ' %12s' "$tool"; done
		printf '  %-12s %s\n' best_peer pg_ingest/best
		for ds in "${DATASETS[@]}"; do
			printf '%-9s' "$ds"
			for tool in "${ALL_TOOLS[@]}"; do
				row=$(tsv_get load "$ds" "$tool" wall_s)
				printf ' %12s' "${row:--}"
			done
			best=$(peers_best "$ds")
			bname=${best% *} bval=${best#* }
			base=$(tsv_get load "$ds" pg_ingest wall_s)
			printf '  %-12s %s\n' "${bname:--}" "$(ratio "$base" "$bval")"
		done
	fi
	if [ "$RUN_CDC" = 1 ]; then
		local a b r
		echo
		echo "change stream (medians; native/pg_ingest: > 1 is pg_ingest faster)"
		printf '%-44s %10s %10s %16s\n' measure pg_ingest native native/pg_ingest
		while IFS=$'\t' read -r metric unit what; do
			a=$(tsv_get cdc cdc pg_ingest "$metric")
			b=$(tsv_get cdc cdc native "$metric")
			[ -n "$a$b" ] || continue
			r=$(ratio "$b" "$a")
			[ "$unit" = tps ] && r=-	# not a time
			printf '%-44s %10s %10s %16s\n' "$what ($unit)" "${a:--}" "${b:--}" "$r"
		done <<EOF
drain_s	s	drain of a backlog held in the slot
resume_s	s	resume -> first change applied
visible_p50_ms	ms	commit -> visible, idle, p50
visible_p90_ms	ms	commit -> visible, idle, p90
load_lag_end_s	s	under pgbench: lag at the end
load_drain_s	s	under pgbench: time to drain after it
load_tps	tps	under pgbench: the source's tps
EOF
		a=$(tsv_get cdc cdc pg_ingest big_rss_applier_mb)
		[ -n "$a" ] && echo "big transaction: peak RssAnon applier $a MB, receiver $(tsv_get cdc cdc pg_ingest big_rss_receiver_mb) MB; spool after it was applied $(tsv_get cdc cdc pg_ingest big_spool_mb) MB ($(tsv_get cdc cdc pg_ingest big_spool_later_mb) MB 5 s later)"
	fi
	awk -F'\t' '$1 == "note" { print "note: " $8 }' "$RESULTS_TSV"
}

# cdc_report: the RESULT lines of cdc.log into results.tsv, and the table
cdc_report() {
	local r tool s all txns changes tps first spool rounds=''
	local -A drains=()
	for r in $(seq "$REPEAT"); do
		read -r txns changes tps first spool <<<"$(cdc_result backlog "$r")" || true
		[ -n "${changes:-}" ] || continue
		rounds+=$(printf '\n  %-5s %7s %11s %6s %11s %9s %10s   %-9s %s' "$r" "$txns" "$changes" "$tps" \
			"$(cdc_result drain pg_ingest "$r" | grep . || echo -)" "$(cdc_result drain native "$r" | grep . || echo -)" \
			"$(ratio "$(cdc_result drain native "$r")" "$(cdc_result drain pg_ingest "$r")")" "$first" \
			"$(awk -v b="${spool:-0}" 'BEGIN { printf "%.1f MB", b / 1048576 }')")
		for tool in pg_ingest native; do
			s=$(cdc_result drain "$tool" "$r")
			is_num "$s" && drains[$tool]+=" $s"
		done
		tsv cdc cdc - backlog_txns "$txns" txns "$r" "row changes $changes, pgbench tps $tps, $first first"
	done
	for tool in pg_ingest native; do
		[ -n "${drains[$tool]:-}" ] && tsv cdc cdc "$tool" drain_s "$(med "${drains[$tool]}")" s "${drains[$tool]# }" "SIGCONT/ENABLE -> marker visible; hold: $([ "$tool" = native ] && echo "$CDC_HOLD" || echo sigstop)"
		read -r s all <<<"$(cdc_result resume "$tool")" || true
		[ -n "${s:-}" ] && tsv cdc cdc "$tool" resume_s "$s" s "$all" "median of $RESUME_TRIES"
		local p50 p90 max n
		read -r p50 p90 max n <<<"$(cdc_result latency "$tool")" || true
		if [ -n "${p50:-}" ]; then
			tsv cdc cdc "$tool" visible_p50_ms "$p50" ms - "$n single-row commits 0.1 s apart, polled every 5 ms"
			tsv cdc cdc "$tool" visible_p90_ms "$p90" ms - "max $max ms"
		fi
		local lag_end ldrain lcount lmed lmax ltxns ltps
		read -r lag_end ldrain lcount lmed lmax ltxns ltps <<<"$(cdc_result load "$tool")" || true
		if [ -n "${lag_end:-}" ]; then
			tsv cdc cdc "$tool" load_lag_end_s "$lag_end" s - "newest pgbench_history row's age on the target 0.5 s before pgbench's end; during the run median $lmed s, max $lmax s ($lcount samples, every 0.5 s)"
			tsv cdc cdc "$tool" load_drain_s "$ldrain" s - "marker committed when pgbench's sessions were gone -> visible (polled every 10 ms)"
			tsv cdc cdc "$tool" load_tps "$ltps" tps - "$ltxns transactions in $CDC_SECONDS s"
		fi
		s=$(cdc_result setup "$tool")
		[ -n "$s" ] && tsv cdc cdc "$tool" setup_s "$s" s - "initial load (pg_ingest full-load-and-cdc to streaming; native copy_data)"
		s=$(cdc_result verified "$tool")
		[ -n "$s" ] && tsv cdc cdc "$tool" verified "$s" - - "every table's rows and hash equal to the source's"
	done
	local rows size insert_s apply_s target_rows big_ok spool_now spool_later first_a a h sh c
	read -r rows size insert_s apply_s target_rows big_ok spool_now spool_later <<<"$(cdc_result big)" || true
	if [ -n "${rows:-}" ]; then
		tsv cdc cdc pg_ingest big_apply_s "$apply_s" s - "INSERT of $rows rows (${size} MB) committed -> last row visible; same rows and hash: $big_ok"
		tsv cdc cdc pg_ingest big_spool_mb "$(mb "$spool_now")" MB - "spool directory when the last row was visible"
		tsv cdc cdc pg_ingest big_spool_later_mb "$(mb "$spool_later")" MB - "5 s later"
	fi
	for tool in applier receiver; do
		read -r first_a a h sh c <<<"$(cdc_result rss "$tool")" || true
		[ -n "${a:-}" ] && tsv cdc cdc pg_ingest "big_rss_${tool}_mb" "$(mb "$a")" MB - "peak RssAnon (before: $(mb "$first_a") MB; VmHWM $(mb "$h") MB, RssShmem $(mb "$sh") MB; $c samples)"
	done
	local cut_lsn cut_tables cut_bad cut_ok
	read -r cut_lsn cut_tables cut_bad cut_ok <<<"$(cdc_result cutover)" || true
	[ -n "${cut_lsn:-}" ] && tsv cdc cdc pg_ingest cutover "$cut_ok" - - "ingest.cutover() = $cut_lsn; ingest.verify(): $((cut_tables - cut_bad))/$cut_tables MATCH"
	[ -n "$INGEST_FAILED" ] && tsv note cdc pg_ingest failed - - - "pg_ingest FAILED in cdc step $INGEST_FAILED"
	[ -n "$CDC_FAILED" ] && tsv note cdc - failed - - - "cdc FAILED in step $CDC_FAILED (see cdc.log)"

	say "results: change stream (cdc)"
	echo "source: ${DESCRIBE[pgbench]}; pgbench -c$CDC_CLIENTS -j$CDC_CLIENTS (tpcb-like); steps $CDC_STEPS"
	echo "drain: backlog of pgbench -T $BACKLOG_SECONDS; pg_ingest's receiver held by SIGSTOP, native by $CDC_HOLD; load: pgbench -T $CDC_SECONDS"
	echo
	printf '%-26s %-16s %10s %6s  %s\n' measure tool median unit "runs / note"
	awk -F'\t' '$1 == "cdc" && $3 != "-" { printf "%-26s %-16s %10s %6s  %s%s\n", $4, $3, $5, $6, ($7 != "-" ? $7 "; " : ""), $8 }' "$RESULTS_TSV"
	if [ -n "$rounds" ]; then
		echo
		echo "drain rounds:"
		printf '  %-5s %7s %11s %6s %11s %9s %10s   %-9s %s' round txns row_changes tps pg_ingest_s native_s native/pgi first "pg_ingest's spool before"
		echo "$rounds"
	fi
	[ -z "$INGEST_FAILED" ] || echo "pg_ingest FAILED in step $INGEST_FAILED"
	[ -z "$CDC_FAILED" ] || echo "FAILED step: $CDC_FAILED (see $CDC_LOG)"
}

# draw_chart: grouped bars of every dataset's medians per tool, and the cdc
# drain, into chart.svg (chart.dat: the numbers it draws; chart.gp: the
# gnuplot script, to draw it again)
CHART_OK=
draw_chart() {
	local dat=$LOG_DIR/chart.dat ds tool v line
	command -v gnuplot >/dev/null || { echo "no gnuplot: no chart"; return 0; }
	{
		printf 'group'
		for tool in "${ALL_TOOLS[@]}"; do printf '\t%s' "$tool"; done
		echo
		for ds in "${DATASETS[@]}" cdc; do
			line=$ds
			[ "$ds" = cdc ] && line="cdc-drain"
			for tool in "${ALL_TOOLS[@]}"; do
				if [ "$ds" = cdc ]; then v=$(tsv_get cdc cdc "$tool" drain_s); else v=$(tsv_get load "$ds" "$tool" wall_s); fi
				is_num "${v:-}" || v=-
				line+=$'\t'$v
			done
			[[ $line == *$'\t'[0-9]* ]] || continue	# nothing measured
			echo "$line"
		done
	} >"$dat"
	[ "$(wc -l <"$dat")" -gt 1 ] || return 0
	cat >"$LOG_DIR/chart.gp" <<GP
set terminal svg size 960,480 dynamic enhanced font "sans,12" background rgb "white"
set output "$LOG_DIR/chart.svg"
set title "pg_ingest and peers, median seconds (lower is better) — $(nproc) cores, $STARTED_AT" noenhanced
set datafile separator "\t"
set datafile missing "-"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "seconds"
set yrange [0:*]
set grid ytics
set key top left noenhanced
set xtics noenhanced
set key autotitle columnheader
n = ${#ALL_TOOLS[@]}
plot for [c=2:n+1] "$dat" using c:xtic(1), \
     for [c=2:n+1] "$dat" using (\$0 + (c - 2 - (n - 1) / 2.0) / (n + 1.0)):c:(sprintf("%.1f", column(c))) with labels font ",8" offset 0,0.6 notitle
GP
	if gnuplot "$LOG_DIR/chart.gp" >"$LOG_DIR/chart.log" 2>&1; then
		CHART_OK=1
	else
		echo "gnuplot failed: see $LOG_DIR/chart.log"
	fi
}
