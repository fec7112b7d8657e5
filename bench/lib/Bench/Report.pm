# Bench::Report: the tables printed (and kept in results.txt), the chart,
# all read back from results.tsv.
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

package Bench::Report;

use strict;
use warnings;
use Bench qw(is_num slurp_lines);
use Bench::Tools qw(%LABEL @ALL_TOOLS);

# the rows of results.tsv, each an array of its fields
sub rows
{
	my ($bench) = @_;
	return map { [ split /\t/, $_, -1 ] } slurp_lines($bench->{results_tsv});
}

# tsv_get B, KIND, DATASET, TOOL, METRIC [, COLUMN]: a field (default: the
# median, column 5) of the last matching line, or ''
sub tsv_get
{
	my ($bench, $k, $d, $t, $m, $c) = @_;
	my $v = '';
	for my $r (rows($bench))
	{
		$v = $r->[ ($c // 5) - 1 ] // '' if $r->[0] eq $k && $r->[1] eq $d && $r->[2] eq $t && $r->[3] eq $m;
	}
	return $v;
}

# ratio A, B: A / B with 2 decimals, or -
sub ratio
{
	my ($x, $y) = @_;
	return is_num($x) && is_num($y) && $y != 0 ? sprintf('%.2f', $x / $y) : '-';
}

# load_report B, DATASET: its table (medians, pg_ingest / tool)
sub load_report
{
	my ($bench, $ds) = @_;
	my $o    = $bench->{opt};
	my $base = tsv_get($bench, 'load', $ds, 'pg_ingest', 'wall_s');
	my @out  = ('', "=== results: $ds", "source: $bench->{describe}{$ds}",
		"jobs: $o->{jobs} table + $o->{jobs} index jobs; peers split tables larger than $o->{split}"
		  . ($o->{split_given} ? ', pg_ingest too' : '; pg_ingest with its defaults') . "; $o->{repeat} round(s)",
		'', sprintf('%-30s %9s  %-20s %-9s %s', 'tool', 'median_s', 'pg_ingest/tool', 'verified', 'all runs (s)'));
	for my $r (grep { $_->[0] eq 'load' && $_->[1] eq $ds } rows($bench))
	{
		my ($tool, $m, $runs, $note) = @$r[ 2, 4, 6, 7 ];
		my ($verified) = $note =~ /verified=(\S*)/;
		my ($failed)   = $note =~ /failed=([A-Z]+)/;
		push @out, sprintf('%-30s %9s  %-20s %-9s %s', $LABEL{$tool}, $m, ratio($base, $m), $verified // '',
			$runs . ($failed ? " (and $failed)" : ''));
	}
	push @out, '(pg_ingest/tool < 1: pg_ingest faster; the issue\'s goal: <= 0.75 against the best peer)';
	return @out;
}

# peers_best B, DATASET: (tool, median) of the fastest peer that succeeded
sub peers_best
{
	my ($bench, $ds) = @_;
	my ($name, $best);
	for my $r (rows($bench))
	{
		next unless $r->[0] eq 'load' && $r->[1] eq $ds && $r->[2] ne 'pg_ingest' && is_num($r->[4]);
		($name, $best) = ($r->[2], $r->[4]) if !defined $best || $r->[4] < $best;
	}
	return ($name, $best);
}

# the change stream's figures: metric, what it is
my @CDC_METRICS = (
	[ 'drain_s',        'drain of a backlog held in the slot' ],
	[ 'resume_s',       'resume -> first change applied' ],
	[ 'visible_p50_ms', 'commit -> visible, idle, p50' ],
	[ 'visible_p90_ms', 'commit -> visible, idle, p90' ],
	[ 'load_lag_end_s', 'under pgbench: lag at the end' ],
	[ 'load_drain_s',   'under pgbench: time to drain after it' ],
	[ 'load_tps',       'under pgbench: the source\'s tps' ],
);

sub summary_report
{
	my ($bench) = @_;
	my $o = $bench->{opt};
	my @out = ("$bench->{command}; started $bench->{started}",
		'machine: ' . $bench->machine_desc . "; CPU $bench->{busy_before}% busy before the runs; $bench->{build}");
	my $md5 = $bench->{so_md5_now}->();
	push @out, "WARNING: another pg_ingest.so was installed during the run (md5 $md5): the figures mix two builds"
	  if $md5 ne $bench->{so_md5};
	if (@{ $bench->{tools} })
	{
		push @out, '', "full load, median seconds of $o->{repeat} round(s) (pg_ingest/best: < 1 is pg_ingest faster)",
		  sprintf('%-9s', 'dataset') . join('', map { sprintf(' %12s', $_) } @ALL_TOOLS)
		  . sprintf('  %-12s %s', 'best_peer', 'pg_ingest/best');
		for my $ds (@{ $bench->{datasets} })
		{
			my ($bname, $bval) = peers_best($bench, $ds);
			push @out, sprintf('%-9s', $ds)
			  . join('', map { sprintf(' %12s', tsv_get($bench, 'load', $ds, $_, 'wall_s') || '-') } @ALL_TOOLS)
			  . sprintf('  %-12s %s', $bname // '-', ratio(tsv_get($bench, 'load', $ds, 'pg_ingest', 'wall_s'), $bval));
		}
	}
	if ($bench->{run_cdc})
	{
		push @out, '', 'change stream (medians; native/pg_ingest: > 1 is pg_ingest faster)',
		  sprintf('%-44s %10s %10s %16s', 'measure', 'pg_ingest', 'native', 'native/pg_ingest');
		for my $m (@CDC_METRICS)
		{
			my ($metric, $what) = @$m;
			my $ing = tsv_get($bench, 'cdc', 'cdc', 'pg_ingest', $metric);
			my $nat = tsv_get($bench, 'cdc', 'cdc', 'native',    $metric);
			next if "$ing$nat" eq '';
			my $unit = $metric =~ /_ms$/ ? 'ms' : $metric eq 'load_tps' ? 'tps' : 's';
			push @out, sprintf('%-44s %10s %10s %16s', "$what ($unit)", $ing || '-', $nat || '-',
				$unit eq 'tps' ? '-' : ratio($nat, $ing));    # tps: not a time
		}
		my $applier = tsv_get($bench, 'cdc', 'cdc', 'pg_ingest', 'big_rss_applier_mb');
		push @out, "big transaction: peak RssAnon applier $applier MB, receiver "
		  . tsv_get($bench, 'cdc', 'cdc', 'pg_ingest', 'big_rss_receiver_mb')
		  . ' MB; spool after it was applied ' . tsv_get($bench, 'cdc', 'cdc', 'pg_ingest', 'big_spool_mb')
		  . ' MB (' . tsv_get($bench, 'cdc', 'cdc', 'pg_ingest', 'big_spool_later_mb') . ' MB 5 s later)'
		  if $applier ne '';
	}
	push @out, map { "note: $_->[7]" } grep { $_->[0] eq 'note' } rows($bench);
	return @out;
}

# cdc_table B, ROUNDS: the cdc figures of results.tsv as a table, and the
# drain rounds (lines already formatted)
sub cdc_table
{
	my ($bench, @rounds) = @_;
	my $o = $bench->{opt};
	my @out = ('', '=== results: change stream (cdc)',
		"source: $bench->{describe}{pgbench}; pgbench -c$o->{cdc_clients} -j$o->{cdc_clients} (tpcb-like); steps $o->{cdc_steps}",
		"drain: backlog of pgbench -T $o->{backlog_seconds}; pg_ingest's receiver held by SIGSTOP, native by $o->{cdc_hold}; load: pgbench -T $o->{cdc_seconds}",
		'', sprintf('%-26s %-16s %10s %6s  %s', 'measure', 'tool', 'median', 'unit', 'runs / note'));
	for my $r (grep { $_->[0] eq 'cdc' && $_->[2] ne '-' } rows($bench))
	{
		push @out, sprintf('%-26s %-16s %10s %6s  %s%s', @$r[ 3, 2, 4, 5 ], ($r->[6] ne '-' ? "$r->[6]; " : ''), $r->[7]);
	}
	if (@rounds)
	{
		push @out, '', 'drain rounds:',
		  sprintf('  %-5s %7s %11s %6s %11s %9s %10s   %-9s %s', 'round', 'txns', 'row_changes', 'tps', 'pg_ingest_s',
			'native_s', 'native/pgi', 'first', "pg_ingest's spool before"), @rounds;
	}
	return @out;
}

# draw_chart B: grouped bars of every dataset's medians per tool, and the cdc
# drain, into chart.svg (chart.dat: the numbers it draws; chart.gp: the
# gnuplot script, to draw it again).  Returns whether there is a chart.
sub draw_chart
{
	my ($bench) = @_;
	my $dir = $bench->{log_dir};
	if (system('sh', '-c', 'command -v gnuplot >/dev/null') != 0)
	{
		$bench->out('no gnuplot: no chart');
		return 0;
	}
	my @lines = (join("\t", 'group', @ALL_TOOLS));
	for my $ds (@{ $bench->{datasets} }, 'cdc')
	{
		my @v = map {
			my $v = $ds eq 'cdc' ? tsv_get($bench, 'cdc', 'cdc', $_, 'drain_s') : tsv_get($bench, 'load', $ds, $_, 'wall_s');
			is_num($v) ? $v : '-'
		} @ALL_TOOLS;
		next unless grep { is_num($_) } @v;    # nothing measured
		push @lines, join("\t", $ds eq 'cdc' ? 'cdc-drain' : $ds, @v);
	}
	return 0 unless @lines > 1;
	Bench::write_lines("$dir/chart.dat", @lines);
	my $n     = @ALL_TOOLS;
	my $cores = () = grep { /^processor\s*:/ } slurp_lines('/proc/cpuinfo');
	Bench::write_lines("$dir/chart.gp", split /\n/, <<GP);
set terminal svg size 960,480 dynamic enhanced font "sans,12" background rgb "white"
set output "$dir/chart.svg"
set title "pg_ingest and peers, median seconds (lower is better) — $cores cores, $bench->{started}" noenhanced
set datafile separator "\\t"
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
n = $n
plot for [c=2:n+1] "$dir/chart.dat" using c:xtic(1), \\
     for [c=2:n+1] "$dir/chart.dat" using (\$0 + (c - 2 - (n - 1) / 2.0) / (n + 1.0)):c:(sprintf("%.1f", column(c))) with labels font ",8" offset 0,0.6 notitle
GP
	if (system("gnuplot '$dir/chart.gp' >'$dir/chart.log' 2>&1") != 0)
	{
		$bench->out("gnuplot failed: see $dir/chart.log");
		return 0;
	}
	return 1;
}

1;
