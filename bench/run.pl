#!/usr/bin/perl
# pg_ingest benchmark: full loads of several source databases ("datasets"),
# by pg_ingest and by its peers, each into a fresh database of the same
# target cluster, the tools taking turns over --repeat rounds; then change
# data capture (CDC), pg_ingest against native logical replication.  One
# command, one run: tables of medians and ratios, a TSV of every figure and
# an SVG chart, in bench/work/<date>/.  bench/readme.sh DIR turns them into
# the README's performance section.
#
#   bench/run.pl [--dataset LIST] [--only LIST] [--repeat N] [--scale N]
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
# Works as root (packages and the build as root, then the whole run again
# as the unprivileged user of scripts/lib.sh) or as a user with sudo.  The
# clusters are PostgreSQL::Test::Cluster nodes (t/IngestTest.pm's
# new_source and new_target) under /tmp/pg_ingest-bench.*; the modules are
# in bench/lib/ (Bench.pm: clusters, clients, checks; Bench/Tools.pm,
# Bench/Cdc.pm, Bench/Report.pm).


use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use Getopt::Long qw(GetOptionsFromArray);
use File::Copy ();
use File::Path ();
use POSIX qw(strftime);

my ($BENCH_DIR, @ALL_TOOLS, @ALL_DATASETS, @CDC_STEPS);
BEGIN
{
	$BENCH_DIR    = $FindBin::RealBin;
	@ALL_TOOLS    = qw(pg_ingest pgcopydb pgcopydb_ps pg_dump native);
	@ALL_DATASETS = qw(pgbench mixed many);
	@CDC_STEPS    = qw(big latency resume drain load);
}

# ---------------------------------------------------------------- options

sub usage
{
	my ($status) = @_;
	open my $self, '<', $0 or die "$0: $!\n";
	<$self>;
	my $fh = $status ? \*STDERR : \*STDOUT;
	while (<$self>)
	{
		last if /^$/;
		s/^# ?//;
		print $fh $_;
	}
	exit $status;
}

# set in BEGIN (no initializer here: it would run after)
my (%opt, @datasets, @tools, $run_cdc, $COMMAND_LINE);
sub bad { print STDERR "$_[0]\n"; exit 2; }
sub in_list { my ($item, $list) = @_; return scalar grep { $_ eq $item } split /,/, $list; }

# before anything is installed or started: a bad option costs nothing
sub parse_options
{
	%opt = (
		dataset => join(',', @ALL_DATASETS), only => join(',', @ALL_TOOLS, 'cdc'), repeat => 3, scale => 50,
		'mixed-rows' => undef, 'many-tables' => 2000, 'many-rows' => 50, jobs => 2, split => '128MB',
		skip => 'native@many', timeout => 1800, keep => 0, 'no-build' => 0,
		'cdc-steps' => join(',', @CDC_STEPS), 'cdc-seconds' => 60, 'backlog-seconds' => undef,
		'cdc-clients' => 4, 'cdc-big-rows' => 1000000, 'cdc-hold' => 'sigstop');
	$COMMAND_LINE = join(' ', 'bench/run.pl', @ARGV);
	{
		my @args = @ARGV;
		GetOptionsFromArray(\@args, \%opt, 'dataset|datasets=s', 'only=s', 'repeat=s', 'scale=s', 'mixed-rows=s',
			'many-tables=s', 'many-rows=s', 'jobs=s', 'split=s', 'skip=s', 'timeout=s', 'keep', 'no-build',
			'cdc-steps=s', 'cdc-seconds=s', 'backlog-seconds=s', 'cdc-clients=s', 'cdc-big-rows=s', 'cdc-hold=s',
			'help|h' => sub { usage(0) })
		  or usage(2);
		if (@args) { print STDERR "unknown argument: $args[0]\n"; usage(2); }
		$opt{split_given} = grep { /^--split(=|$)/ } @ARGV;
	}

	$opt{'backlog-seconds'} //= $opt{'cdc-seconds'} =~ /^\d+$/ && $opt{'cdc-seconds'} < 20 ? $opt{'cdc-seconds'} : 20;
	for my $k (qw(scale jobs timeout repeat cdc-seconds backlog-seconds cdc-clients many-tables many-rows))
	{
		bad("not a positive integer: $opt{$k}") unless $opt{$k} =~ /^[1-9][0-9]*$/;
	}
	$opt{'mixed-rows'} //= 2000 * $opt{scale};
	for my $k (qw(mixed-rows cdc-big-rows)) { bad("not a number: $opt{$k}") unless $opt{$k} =~ /^[0-9]+$/; }
	bad("bad --split size: $opt{split}") unless $opt{split} =~ /^[0-9]+ ?(B|kB|KB|MB|GB|TB)?$/;
	bad("bad --cdc-steps: $opt{'cdc-steps'} (known: big,latency,resume,drain,load)")
	  unless $opt{'cdc-steps'} =~ /^(big|latency|resume|drain|load)(,(big|latency|resume|drain|load))*$/;
	bad("bad --cdc-hold: $opt{'cdc-hold'} (sigstop or disable)") unless $opt{'cdc-hold'} =~ /^(sigstop|disable)$/;
	for my $d (split /,/, $opt{dataset})
	{
		bad("unknown dataset: $d (known: @ALL_DATASETS)") unless in_list($d, join(',', @ALL_DATASETS));
	}
	@datasets = grep { in_list($_, $opt{dataset}) } @ALL_DATASETS;
	$opt{only} =~ s/pgcopydb-ps/pgcopydb_ps/g;
	$run_cdc = in_list('cdc', $opt{only});
	for my $t (split /,/, $opt{only})
	{
		bad("unknown tool in --only: $t (known: @ALL_TOOLS cdc)") unless $t eq 'cdc' || in_list($t, join(',', @ALL_TOOLS));
	}
	@tools = grep { in_list($_, $opt{only}) } @ALL_TOOLS;    # the canonical order
	for my $t (split /,/, $opt{skip})
	{
		bad("bad --skip entry: $t (TOOL\@DATASET)")
		  unless $t =~ /^(pg_ingest|pgcopydb|pgcopydb_ps|pg_dump|native)@(pgbench|mixed|many)$/;
	}
}

# ---------------------------------------------------------------- setup

my $LOG_DIR = "$BENCH_DIR/work/" . ($ENV{BENCH_LOG_DIR_NAME} //= strftime('%Y%m%d-%H%M%S', localtime));
my $PGBIN;
BEGIN
{
	parse_options();
	{
		require Bench::Setup;
		my $name = $ENV{BENCH_LOG_DIR_NAME} //= POSIX::strftime('%Y%m%d-%H%M%S', localtime);
		# gnuplot-nox draws the chart
		$PGBIN = Bench::Setup::prepare(build => !$opt{'no-build'}, packages => [qw(pgcopydb gnuplot-nox)],
			dirs => [ "$FindBin::RealBin/work", "$FindBin::RealBin/work/$name" ]);
	}
}
use Bench;
use Bench::Tools;
use Bench::Cdc;
use Bench::Report;
Bench::Setup::console_stderr();

my $bench = bless {
	opt => {
		jobs => $opt{jobs}, split => $opt{split}, split_given => $opt{split_given}, timeout => $opt{timeout},
		keep => $opt{keep}, repeat => $opt{repeat}, scale => $opt{scale},
		cdc_steps => $opt{'cdc-steps'}, cdc_seconds => $opt{'cdc-seconds'}, backlog_seconds => $opt{'backlog-seconds'},
		cdc_clients => $opt{'cdc-clients'}, cdc_big_rows => $opt{'cdc-big-rows'}, cdc_hold => $opt{'cdc-hold'},
	},
	pgbin       => $PGBIN,
	bench_dir   => $BENCH_DIR,
	log_dir     => $LOG_DIR,
	work        => $ENV{TESTDIR},
	results_tsv => "$LOG_DIR/results.tsv",
	t0          => time,
	command     => $COMMAND_LINE,
	datasets    => \@datasets,
	run_cdc     => $run_cdc,
	deadline    => time + $opt{timeout},
}, 'Bench';

my @skipped_notes;
if (in_list('pgcopydb_ps', $opt{only}) && !-x $Bench::Tools::PGCOPYDB_PS)
{
	push @skipped_notes,
	  "pgcopydb-ps: not run, $Bench::Tools::PGCOPYDB_PS is not there (../shared/peers/build-pgcopydb-ps.sh builds it)";
	@tools = grep { $_ ne 'pgcopydb_ps' } @tools;
}
$bench->{tools} = \@tools;
# tools_for DATASET: the tools that load it, in canonical order
sub tools_for { my ($ds) = @_; return grep { !in_list("$_\@$ds", $opt{skip}) } @tools; }

my $INGEST_SO = `$PGBIN/pg_config --pkglibdir`;
chomp $INGEST_SO;
$INGEST_SO .= '/pg_ingest.so';
die "pg_ingest is not installed: no $INGEST_SO\n" unless -f $INGEST_SO;
# which build: the start of its md5 and its file's date; and whether someone
# installed another one during the run (the target's workers load it again
# by path)
sub so_md5 { my ($md5) = `md5sum '$INGEST_SO'` =~ /^(\w{12})/; return $md5; }
$bench->{so_md5} = so_md5();
$bench->{so_md5_now} = \&so_md5;
$bench->{build} = "pg_ingest.so md5 $bench->{so_md5} of " . strftime('%Y-%m-%d %H:%M:%S UTC', gmtime((stat $INGEST_SO)[9]))
  . ($opt{'no-build'} ? ', as installed (--no-build)' : '');
$bench->{started} = strftime('%Y-%m-%d %H:%M UTC', gmtime);

# stopped consumers go on, the server logs are kept, the clusters stop
# (fast, then immediate; with KEEP=1 they stay), the scratch directory goes
my $cleaned;
sub cleanup
{
	return if $cleaned++;
	kill 'CONT', keys %{ $bench->{stopped} || {} };
	$bench->stop_clusters;
	# PostgreSQL::Test::Utils' log: the clusters' chatter, psql's notices
	File::Copy::copy(glob("$bench->{work}/tmp_check/log/regress_log_*"), "$LOG_DIR/regress_log.txt");
	if (!$ENV{KEEP}) { File::Path::remove_tree($bench->{work}); }
}
END
{
	my $status = $?;    # the exit status stays (130 or 143 after a signal, as a shell's)
	$status = $Bench::INTERRUPTED eq 'interrupted' ? 130 : 143 if $Bench::INTERRUPTED;
	cleanup() if $bench;
	$? = $status;
}

$bench->heading("starting source and target in $bench->{work}; results in $LOG_DIR");
$bench->start_source;
$bench->start_target;
$bench->write_passfile;
$bench->out('source: port ' . $bench->{source}->port . ', target: port ' . $bench->{target}->port);

# ---------------------------------------------------------------- sources

# load_source DATASET: its source database (named after it), hashed once
sub load_source
{
	my ($ds) = @_;
	my $log = "$LOG_DIR/load-$ds.log";
	$bench->heading("loading the source database $ds");
	my $t0 = time;
	$bench->src_sql('postgres', "CREATE DATABASE $ds OWNER migrator");
	my $conn = $bench->{source}->connstr($ds) . ' user=migrator';
	$bench->{deadline} = time + 7 * 86400;    # --timeout is for the tools; a load takes what it takes
	if ($ds eq 'pgbench')
	{
		$bench->client([ 'pgbench', '-i', '-q', '-s', $opt{scale}, $conn ], { out => $log });
	}
	elsif ($ds eq 'mixed')
	{
		$bench->client([ 'psql', '-X', '-q', '-d', $conn, '-v', "rows_max=$opt{'mixed-rows'}", '-f', "$BENCH_DIR/sql/mixed_schema.sql" ],
			{ out => $log });
	}
	else
	{
		$bench->client([ 'psql', '-X', '-q', '-d', $conn, '-v', "tables=$opt{'many-tables'}", '-v', "rows=$opt{'many-rows'}",
			'-f', "$BENCH_DIR/sql/many_objects.sql" ], { out => $log });
	}
	$bench->src_sql($ds, 'VACUUM ANALYZE');
	my $size = $bench->src_sql($ds, 'SELECT pg_size_pretty(pg_database_size(current_database()))');
	my $tables = $bench->src_sql($ds,
		"SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')");
	my $indexes = $bench->src_sql($ds,
		"SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')");
	my $describe = $ds eq 'pgbench'
	  ? "pgbench -i scale $opt{scale} (pgbench_accounts "
	  . $bench->src_sql($ds, "SELECT pg_size_pretty(pg_table_size('pgbench_accounts'))") . ')'
	  : $ds eq 'mixed' ? "sql/mixed_schema.sql, up to $opt{'mixed-rows'} rows a table"
	  :                  "sql/many_objects.sql, $opt{'many-tables'} tables of $opt{'many-rows'} rows";
	$bench->{describe}{$ds} = "$describe; $tables tables, $indexes indexes, $size";
	# reference hashes; this also reads every table, so that all tools
	# start with the source in cache
	$bench->{source_tables}{$ds} = $bench->source_hashes($ds, "source-$ds");
	my @seqs = $bench->table_lines($bench->{source}, $ds, 'sequence_values.sql');
	Bench::write_lines("$LOG_DIR/source-$ds.sequences", @seqs);
	$bench->{source_sequences}{$ds} = \@seqs;
	$bench->out("$ds: $bench->{describe}{$ds}; loaded and hashed in " . Bench::fmt2(time - $t0) . ' s');
	$bench->tsv('dataset', $ds, '-', 'description', '-', '-', '-', $bench->{describe}{$ds});
}

# the header lines of results.tsv: what ran where
$bench->tsv(qw(kind dataset tool metric median unit runs note));
$bench->tsv(qw(meta - - command - - -), $COMMAND_LINE);
$bench->tsv(qw(meta - - started - - -), $bench->{started});
$bench->tsv(qw(meta - - machine - - -), $bench->machine_desc);
$bench->tsv(qw(meta - - build - - -), $bench->{build});

load_source($_) for @datasets;
# the CDC part runs on the pgbench dataset's source database
load_source('pgbench') if $run_cdc && !in_list('pgbench', $opt{dataset});

$bench->src_sql('postgres', 'CHECKPOINT');    # the load's dirty buffers: not someone else's work
$bench->{busy_before} = Bench::cpu_busy_pct();
$bench->tsv(qw(meta - - busy_before), $bench->{busy_before}, '%', '-', 'CPU busy while both clusters were idle, before the runs');
$bench->out("WARNING: the CPUs are $bench->{busy_before}% busy before the runs: other processes compete, timings will be noisy")
  if $bench->{busy_before} > 10;
for my $n (@skipped_notes) { $bench->out("note: $n"); $bench->tsv(qw(note - - skipped - - -), $n); }
for my $ds (@datasets)
{
	for my $t (grep { in_list("$_\@$ds", $opt{skip}) } @tools)
	{
		my $n = "$t not run on $ds (--skip $opt{skip})";
		$n .= ': the subscription synchronizes one table after another' if "$t\@$ds" eq 'native@many';
		$bench->tsv('note', $ds, $t, 'skipped', '-', '-', '-', $n);
	}
}

# ---------------------------------------------------------------- full loads

my $estimate_runs = 0;
$estimate_runs += $opt{repeat} * tools_for($_) for @datasets;
$bench->heading('full loads: ' . scalar(@datasets) . " dataset(s) (@datasets), $estimate_runs runs in all, $opt{repeat} round(s), tools taking turns");

my $failed = 0;
my $run_no = 0;
for my $ds (@datasets)
{
	$bench->{src_db} = $ds;
	my @ds_tools = tools_for($ds);
	next unless @ds_tools;
	my (%times, %fail, %verified, %seqs);
	for my $round (1 .. $opt{repeat})
	{
		# rotate the order every round: no tool always runs first
		my $n = @ds_tools;
		for my $i (0 .. $n - 1)
		{
			my $tool = $ds_tools[ ($i + $round - 1) % $n ];
			$run_no++;
			my $tag = "$ds, round $round of $opt{repeat}, run $run_no of $estimate_runs, " . $bench->since_start . ' since the start';
			my $r = Bench::Tools::bench_tool($bench, $tool, $ds, $round, $tag);
			$bench->tsv('run', $ds, $tool, 'wall_s', $r->{wall}, 's', $round, "verified=$r->{verified} sequences=$r->{seqs}");
			if (Bench::is_num($r->{wall})) { push @{ $times{$tool} }, $r->{wall}; }
			else                           { $fail{$tool} //= $r->{wall}; }
			my $v = $verified{$tool} // 'yes';
			$verified{$tool} = $v eq 'yes' && $r->{verified} eq 'yes' ? 'yes'
			  : ($v eq 'NO' || $r->{verified} eq 'NO') ? 'NO' : '-';
			$seqs{$tool} = $r->{seqs};
		}
	}
	for my $tool (@ds_tools)
	{
		my @t = @{ $times{$tool} || [] };
		$bench->tsv('load', $ds, $tool, 'wall_s', Bench::median(@t), 's', join(' ', @t),
			"verified=$verified{$tool} failed=" . ($fail{$tool} // 'none') . " sequences=$seqs{$tool}");
		$failed = 1 unless $verified{$tool} eq 'yes' && !$fail{$tool};
	}
	$bench->tee("$LOG_DIR/results.txt", Bench::Report::load_report($bench, $ds));
}

# ---------------------------------------------------------------- cdc

if ($run_cdc)
{
	$bench->{src_db} = 'pgbench';
	Bench::Cdc::cdc_main($bench) or $failed = 1;
}

$bench->heading('summary (' . $bench->since_start . ' in all)');
my @summary = Bench::Report::summary_report($bench);
$bench->out(@summary);
Bench::write_lines("$LOG_DIR/summary.txt", @summary);
my $chart = Bench::Report::draw_chart($bench);
$bench->out("results: $LOG_DIR (results.txt, results.tsv, summary.txt" . ($chart ? ', chart.svg' : '') . ')');
$bench->out("README section: bench/readme.sh $LOG_DIR");
cleanup();
exit $failed;
