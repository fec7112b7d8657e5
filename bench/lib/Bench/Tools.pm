# Bench::Tools: the full-load tools, and one run of a tool (bench_tool).
#
# $RUN{TOOL}->($bench, DB, SCRATCH) loads the source database $bench->{src_db} into
# the empty target database DB (SCRATCH: an empty directory of the user,
# removed afterwards) and returns the seconds of its timed part; it dies
# when anything fails.  $AFTER{TOOL}->($bench, DB), if there is one, cleans up;
# it runs whether the tool succeeded or not (unless the target crashed).
#   pg_ingest    CREATE EXTENSION; ingest.start(mode => 'full-load'); ingest.wait()
#   pgcopydb     pgcopydb clone (Debian's 0.10, /usr/bin/pgcopydb)
#   pgcopydb_ps  the PlanetScale fork (/usr/local/bin/pgcopydb-ps): clone
#                --use-copy-binary --split-tables-larger-than
#   pg_dump      pg_dump -Fd -j N, then pg_restore -j N
#   native       pg_dump --schema-only | psql, then CREATE SUBSCRIPTION with
#                copy_data until every table is synchronized

package Bench::Tools;

use strict;
use warnings;
use Exporter 'import';
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use Time::HiRes qw(time usleep);
use Bench qw(fmt2);

our @EXPORT_OK = qw(%LABEL @ALL_TOOLS $PGCOPYDB_PS bench_tool run_pg_ingest after_pg_ingest run_native after_native);

our @ALL_TOOLS = qw(pg_ingest pgcopydb pgcopydb_ps pg_dump native);
our %LABEL = (
	pg_ingest   => 'pg_ingest full-load',
	pgcopydb    => 'pgcopydb 0.10 clone',
	pgcopydb_ps => 'pgcopydb-ps clone (binary)',
	pg_dump     => 'pg_dump -Fd | pg_restore',
	native      => 'native subscription',
);
our $PGCOPYDB_PS = '/usr/local/bin/pgcopydb-ps';

our %RUN = (
	pg_ingest   => \&run_pg_ingest,
	pgcopydb    => sub { pgcopydb_clone(@_[ 0 .. 2 ], 'pgcopydb') },
	pgcopydb_ps => sub { pgcopydb_clone(@_[ 0 .. 2 ], $PGCOPYDB_PS, '--use-copy-binary') },
	pg_dump     => \&run_pg_dump,
	native      => \&run_native,
);
our %AFTER = (pg_ingest => \&after_pg_ingest, native => \&after_native);

# run_pg_ingest B, DB, SCRATCH [, MODE]: with MODE full-load-and-cdc (for
# cdc) it waits for phase 'streaming' instead of 'completed'.  Default
# settings but the jobs; split_tables_larger_than only when --split was given.
sub run_pg_ingest
{
	my ($bench, $db, $scratch, $mode) = @_;
	$mode //= 'full-load';
	my $phase = $mode eq 'full-load' ? 'completed' : 'streaming';
	my $jobs  = $bench->{opt}{jobs};
	my $split = $bench->{opt}{split_given} ? ", split_tables_larger_than => '$bench->{opt}{split}'" : '';
	$bench->tgt_sql($db, 'CREATE EXTENSION pg_ingest');
	my $src = $bench->src_conninfo($bench->{src_db});
	my $t0  = time;
	my $out;
	$bench->client([ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $bench->{target}->connstr($db), '-v', "src=$src" ],
		{ stdin => \<<SQL, stdout => \$out });
SELECT ingest.start(source => :'src', name => 'bench', mode => '$mode',
                    table_jobs => $jobs, index_jobs => $jobs$split);
SELECT ingest.wait('bench', '$phase', '@{[ $bench->deadline_left ]} seconds');
SQL
	my $t1 = time;
	my ($waited) = (split /\n/, $out)[-1];    # start() returns void, wait() a bool
	$waited //= '';
	$bench->logln("ingest.wait('bench', '$phase') returned: $waited",
		$bench->tgt_sql($db, 'SELECT * FROM ingest.status'),
		$bench->tgt_sql($db, "SELECT * FROM ingest.verify('bench')"));
	if ($waited ne 't')
	{
		$bench->{timed_out} = 1 if time >= $bench->{deadline} - 2;
		die "ingest.wait returned $waited: the migration did not reach '$phase'\n";
	}
	my $bad = $bench->tgt_sql($db, "SELECT count(*) FROM ingest.verify('bench') v WHERE v.status IS DISTINCT FROM 'MATCH'");
	die "ingest.verify: $bad rows not MATCH\n" unless $bad eq '0';
	return $t1 - $t0;
}

# A migration that failed or timed out is aborted: its workers stop and its
# replication slot on the source is dropped.
sub after_pg_ingest
{
	my ($bench, $db) = @_;
	my ($ret, $out, $err) = $bench->{target}->psql($db,
		"SELECT 'aborting ' || name, ingest.abort(name) FROM ingest.status WHERE name = 'bench' AND phase NOT IN ('completed', 'aborted')");
	$bench->logln(grep { $_ ne '' } $out, $err);
}

# pgcopydb clone, Debian's or the PlanetScale fork's (with binary COPY).
# The target database exists and is empty; roles exist on the target,
# extensions (plpgsql only) exist already: no further options needed.
sub pgcopydb_clone
{
	my ($bench, $db, $dir, $bin, @extra) = @_;
	my $jobs = $bench->{opt}{jobs};
	my $t0   = time;
	$bench->client([ $bin, 'clone', '--source', $bench->src_uri($bench->{src_db}), '--target', $bench->tgt_uri($db),
		'--table-jobs', $jobs, '--index-jobs', $jobs, '--split-tables-larger-than', $bench->{opt}{split},
		'--dir', $dir, @extra ]);
	return time - $t0;
}

sub run_pg_dump
{
	my ($bench, $db, $scratch) = @_;
	my $dir  = "$scratch/dump";
	my $jobs = $bench->{opt}{jobs};
	my $t0   = time;
	$bench->client([ 'pg_dump', '-Fd', '-j', $jobs, '-f', $dir, $bench->src_uri($bench->{src_db}) ]);
	$bench->client([ 'pg_restore', '-j', $jobs, '-d', $bench->tgt_uri($db), $dir ]);
	my $t1 = time;
	my ($size) = split /\s/, `du -sh $dir`;
	$bench->logln("dump size: $size (pg_dump's default compression)");
	return $t1 - $t0;
}

# The publication is created (untimed) before the run and dropped after it:
# left in place, it would be part of the other tools' schema dumps, and
# tables without a replica identity (pgbench_history) would refuse UPDATE.
sub run_native
{
	my ($bench, $db) = @_;
	$bench->src_sql($bench->{src_db}, 'CREATE PUBLICATION bench_pub FOR ALL TABLES');
	my $t0 = time;
	# schema first (the subscription copies only data); the tables get
	# their indexes and constraints before the data: that is how native
	# logical replication works
	my $schema_out;
	$bench->client([ 'pg_dump', '--schema-only', '--no-publications', '--no-subscriptions', $bench->src_uri($bench->{src_db}) ],
		'|', [ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $bench->{target}->connstr($db) ],
		{ stdout => \$schema_out });
	$bench->tgt_sql($db,
		"SET client_min_messages = warning;\n"
		  . "CREATE SUBSCRIPTION bench_sub CONNECTION '" . $bench->src_conninfo($bench->{src_db})
		  . "' PUBLICATION bench_pub WITH (copy_data = true);");
	# synchronized: every table in state r (ready) or s (synced)
	wait_subscription($bench, $db, "('r', 's')");
	return time - $t0;
}

# wait_subscription B, DB, STATES: until every table of the subscription is
# in one of STATES (an SQL list)
sub wait_subscription
{
	my ($bench, $db, $states) = @_;
	while (1)
	{
		my $pending = $bench->tgt_sql($db, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate NOT IN $states");
		last if $pending eq '0';
		if (time >= $bench->{deadline})
		{
			$bench->{timed_out} = 1;
			die "timeout: $pending tables not synchronized\n";
		}
		usleep(100_000);
	}
}

sub after_native
{
	my ($bench, $db) = @_;
	my $t = $bench->{target};
	my ($ret, $out) = $t->psql($db, "SELECT 1 FROM pg_subscription WHERE subname = 'bench_sub'");
	if ($ret == 0 && $out eq '1')
	{
		# a normal DROP also drops the slot on the source; if the source
		# cannot be reached, detach the slot first (cleaned up afterwards)
		my ($r, undef, $err) = $t->psql($db, 'DROP SUBSCRIPTION bench_sub');
		if ($r != 0)
		{
			$bench->logln("DROP SUBSCRIPTION failed ($err): detaching its slot");
			$bench->tgt_sql($db,
				"ALTER SUBSCRIPTION bench_sub DISABLE;\nALTER SUBSCRIPTION bench_sub SET (slot_name = NONE);\nDROP SUBSCRIPTION bench_sub;");
		}
	}
	$bench->src_sql($bench->{src_db}, 'DROP PUBLICATION IF EXISTS bench_pub');
}

# bench_tool B, TOOL, DATASET, ROUND, TAG: one run of TOOL into a fresh
# target database.  Returns { wall => seconds, or FAILED / TIMEOUT /
# CRASHED; verified => yes, NO, or - when the run failed; seqs => sequences
# equal to the source }.
sub bench_tool
{
	my ($bench, $tool, $ds, $round, $tag) = @_;
	my $db   = "bench_$tool";
	my $name = "$ds.$tool.$round";
	my $log  = "$bench->{log_dir}/$name.log";
	$bench->heading("$LABEL{$tool} ($tag): into target database $db (log: $log)");
	$bench->recreate_db($bench->{target}, $db);
	$bench->checkpoint_both;    # start from clean buffers on both sides
	my $scratch  = tempdir("/tmp/pg_ingest-$tool.XXXXXX");
	my $log_from = Bench::log_size($bench->{target});
	$bench->{deadline}  = time + $bench->{opt}{timeout};
	$bench->{timed_out} = 0;
	open($bench->{log_fh}, '>>', $log) or die "cannot write $log: $!\n";
	$bench->{log_fh}->autoflush(1);
	$bench->{log_file} = $log;

	my $wall = eval { $RUN{$tool}->($bench, $db, $scratch) };
	my $error = $@;
	die $error if $Bench::INTERRUPTED;
	$bench->logln("FAILED: $error") if $error;
	my $crashed = $bench->target_crashed($log_from);
	if (!$crashed && $AFTER{$tool})
	{
		eval { $AFTER{$tool}->($bench, $db); 1 } or $bench->logln("cleanup after $tool failed: $@");
	}
	close $bench->{log_fh};
	$bench->{log_fh} = undef;
	remove_tree($scratch);

	my %r = (wall => '-', verified => '-', seqs => '-');
	if (!$error && !$crashed && defined $wall)
	{
		$r{wall} = fmt2($wall);
		$bench->out("wall clock: $r{wall} s");
		my ($ok, @lines) = $bench->verify_tables($db, $name, $bench->{source_tables}{$ds});
		$bench->tee($log, @lines);
		$r{verified} = $ok ? 'yes' : 'NO';
		$r{seqs} = $bench->verify_sequences($db, $name, $bench->{source_sequences}{$ds});
		$bench->out("sequences equal to the source: $r{seqs}");
	}
	else
	{
		$r{wall} = $crashed ? 'CRASHED' : $bench->{timed_out} ? 'TIMEOUT' : 'FAILED';
		my @tail = Bench::slurp_lines($log);
		splice(@tail, 0, @tail - 25) if @tail > 25;
		my @errors = grep { /ERROR|FATAL|PANIC|terminated by signal|exited with exit code/ } split /\n/,
		  $bench->target_log_since($log_from);
		splice(@errors, 0, @errors - 15) if @errors > 15;
		$bench->out("$r{wall}: " . ($error // '') . "end of $log:", map({ "  | $_" } @tail),
			"errors in the target's server log during the run:", map { "  | $_" } @errors);
	}
	$bench->drop_leftover_slots;
	if ($crashed)
	{
		$bench->reset_target;
	}
	elsif ($bench->{opt}{keep})
	{
		$bench->out("kept target database $db (the next run of $tool replaces it)");
	}
	else
	{
		$bench->tgt_sql('postgres', "DROP DATABASE $db WITH (FORCE)");
	}
	return \%r;
}

1;
