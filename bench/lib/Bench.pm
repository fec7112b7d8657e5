# Bench: what the benchmark's parts share: the source and target clusters
# (PostgreSQL::Test::Cluster, made by t/IngestTest.pm's new_source and
# new_target with the benchmark's settings), SQL on either, client programs
# run under the current deadline, timing, results.tsv, and the comparison of
# a target database with the source (row count and hash of every table:
# sql/table_hashes.sql).
#
# One object, $bench, carries the run's state: the options (opt), the clusters
# (source, target), the directories (log_dir: results and logs; work: the
# clusters, TESTDIR), the deadline of the current tool run or cdc step and
# the log the current run writes into (log_fh).  Every failure dies with a
# message saying what failed; the callers that may go on after a failure
# (one tool run, one cdc step) catch it with eval.

package Bench;

use strict;
use warnings;
use Exporter 'import';
use File::Copy qw(copy);
use IPC::Run;
use Time::HiRes qw(time);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IngestTest qw(new_source new_target source_connstr);
use Bench::Setup;

our @EXPORT_OK = qw(fmt2 median is_num slurp_lines);

# set by a signal: the callers that go on after a failure stop instead
our $INTERRUPTED;
$SIG{INT}  = sub { $INTERRUPTED = 'interrupted'; die "interrupted\n"; };
$SIG{TERM} = sub { $INTERRUPTED = 'terminated';  die "terminated\n"; };

# ---------------------------------------------------------------- output

# out LINES: to the terminal (PostgreSQL::Test::Utils keeps STDOUT for its log)
sub out
{
	my ($bench, @lines) = @_;
	Bench::Setup::console(@lines);
}

# heading TEXT: as scripts/lib.sh's say
sub heading
{
	my ($bench, $text) = @_;
	$bench->out('', "=== $text");
}

# tee FILE, LINES: to the terminal and appended to FILE
sub tee
{
	my ($bench, $file, @lines) = @_;
	$bench->out(@lines);
	open my $fh, '>>', $file or die "cannot append to $file: $!\n";
	print $fh map { "$_\n" } @lines;
	close $fh;
}

# logln LINES: into the log of the current tool run or cdc step
sub logln
{
	my ($bench, @lines) = @_;
	my $fh = $bench->{log_fh} or die "no current log\n";
	print $fh map { "$_\n" } @lines;
	return;
}

# ---------------------------------------------------------------- numbers

sub fmt2 { return sprintf('%.2f', $_[0]); }
sub is_num { return defined $_[0] && $_[0] =~ /^[0-9]+(\.[0-9]+)?$/; }

# median of numbers, 2 decimals, or - if there are none
sub median
{
	my @v = sort { $a <=> $b } grep { is_num($_) } @_;
	return '-' unless @v;
	my $n = @v;
	return fmt2($n % 2 ? $v[ ($n - 1) / 2 ] : ($v[ $n / 2 - 1 ] + $v[ $n / 2 ]) / 2);
}

sub slurp_lines
{
	my ($file) = @_;
	open my $fh, '<', $file or die "cannot read $file: $!\n";
	chomp(my @lines = <$fh>);
	return @lines;
}

# "3m05s" since the start of the run
sub since_start
{
	my ($bench) = @_;
	my $s = int(time - $bench->{t0});
	return sprintf('%dm%02ds', $s / 60, $s % 60);
}

# ---------------------------------------------------------------- results.tsv

# tsv FIELDS: one line of results.tsv (the columns: Bench::Report)
sub tsv
{
	my ($bench, @fields) = @_;
	open my $fh, '>>', $bench->{results_tsv} or die "cannot append to $bench->{results_tsv}: $!\n";
	print $fh join("\t", map { $_ // '' } @fields), "\n";
	close $fh;
}

# ---------------------------------------------------------------- clusters

# What PostgreSQL::Test::Cluster sets for tests (log_statement = all,
# wal_log_hints, restart_after_crash = off, wal_retrieve_retry_interval =
# 500ms, max_connections = 10, shared_buffers = 1MB, max_wal_size = 128MB)
# back to PostgreSQL's defaults, for servers that are measured; they listen
# on 127.0.0.1 too.  fsync stays off.
sub plain_conf
{
	return {
		max_connections             => 100,
		shared_buffers              => '128MB',
		max_wal_size                => '1GB',
		log_statement               => 'none',
		log_replication_commands    => 'off',
		wal_log_hints               => 'off',
		restart_after_crash         => 'on',
		wal_retrieve_retry_interval => "'5s'",
		listen_addresses            => "'127.0.0.1'",
	};
}

# The settings of both clusters, the same for every tool.  The target keeps
# wal_level replica.  wal_sender_timeout 0: cdc stops consumers with SIGSTOP
# for longer than its default minute can be.
sub tuning
{
	my ($bench) = @_;
	my $jobs    = $bench->{opt}{jobs};
	my $senders = 2 * $jobs + 4;
	$senders = 10 if $senders < 10;
	return {
		%{ plain_conf() },
		shared_buffers                    => '1GB',
		max_wal_size                      => '8GB',
		checkpoint_timeout                => '30min',
		maintenance_work_mem              => '256MB',
		max_worker_processes              => 32,
		max_parallel_maintenance_workers  => 2,
		max_wal_senders                   => $senders,
		max_replication_slots             => $senders,
		max_logical_replication_workers   => $jobs + 4,
		max_sync_workers_per_subscription => $jobs,
		wal_sender_timeout                => 0,
	};
}

# The source: new_source's (SCRAM login of "migrator" over TCP) with the
# benchmark's settings; the target: new_target's (pg_ingest preloaded, the
# extension created in database postgres) with them, and the role "migrator" (the objects' owner) for every tool to
# restore ownership as on the source.
sub start_source
{
	my ($bench) = @_;
	$bench->{source} = new_source('source', conf => $bench->tuning);
	$bench->{src_password} = 'S3cret-Pass';    # IngestTest's
}

sub start_target
{
	my ($bench) = @_;
	my $name = 'target' . ($bench->{targets}++ ? $bench->{targets} : '');
	# PostgreSQL's default wal_level, not PostgreSQL::Test::Cluster's minimal
	$bench->{target} = new_target($name, %{ $bench->tuning }, wal_level => 'replica');
	$bench->tgt_sql('postgres', 'CREATE ROLE migrator');
}

# src_sql DB, SQL [, psql params]: its output; dies on an error
sub src_sql { my ($bench, $db, $sql, %p) = @_; return $bench->{source}->safe_psql($db, $sql, %p); }
sub tgt_sql { my ($bench, $db, $sql, %p) = @_; return $bench->{target}->safe_psql($db, $sql, %p); }

# How the tools reach the source database DB: as migrator over TCP with its
# password.  Client programs read it from a password file; server-side
# consumers (pg_ingest, the subscription) get it in the connection string.
sub src_conninfo { my ($bench, $db) = @_; return source_connstr($bench->{source}, dbname => $db); }
sub src_uri { my ($bench, $db) = @_; return sprintf('postgres://migrator@127.0.0.1:%d/%s', $bench->{source}->port, $db); }
sub tgt_uri
{
	my ($bench, $db) = @_;
	return sprintf('postgres://%s@127.0.0.1:%d/%s', $Bench::Setup::RUN_USER, $bench->{target}->port, $db);
}

sub write_passfile
{
	my ($bench) = @_;
	$bench->{passfile} = "$bench->{work}/pgpass";
	open my $fh, '>', $bench->{passfile} or die "cannot write $bench->{passfile}: $!\n";
	chmod 0600, $bench->{passfile};
	print $fh "127.0.0.1:" . $bench->{source}->port . ":*:migrator:$bench->{src_password}\n";
	close $fh;
}

# Stop both clusters (fast, then immediate), keeping their server logs with
# the results; with KEEP=1 they stay running.
sub stop_clusters
{
	my ($bench) = @_;
	for my $c (qw(source target))
	{
		my $node = $bench->{$c} or next;
		copy($node->logfile, "$bench->{log_dir}/$c-server.log") if -f $node->logfile;
		if ($ENV{KEEP})
		{
			$bench->out("$c left running: port " . $node->port . ', socket ' . $node->host . ', data ' . $node->data_dir);
			$node->{_pid} = undef;    # PostgreSQL::Test::Cluster's END stops no node it thinks stopped
			$ENV{PG_TEST_NOCLEAN} = 1;    # and neither it nor Bench::Setup removes their directories
			next;
		}
		$node->stop('fast', fail_ok => 1) or $node->stop('immediate', fail_ok => 1);
	}
}

# ---------------------------------------------------------------- clients

sub deadline_left
{
	my ($bench) = @_;
	return int($bench->{deadline} - time);
}

# client [CMD...], OPTIONS: run a client program with the password file and
# PGBIN's programs first in PATH (pgcopydb finds pg_dump through PG_CONFIG),
# killed (with its process group: pgcopydb forks) when the deadline of the
# current tool run or cdc step passes.  [CMD1...], '|', [CMD2...] is a
# pipeline.  Options: out => FILE (stdout and stderr appended; default: the
# current log), stdout => \$s, stdin => \$sql, background => 1 (returns the
# IPC::Run harness; finish_client waits for it).  Dies when it fails; a
# timeout sets $bench->{timed_out}.
sub client
{
	my ($bench, @args) = @_;
	my %o = ref $args[-1] eq 'HASH' ? %{ pop @args } : ();
	my $left = $bench->deadline_left;
	if ($left <= 0)
	{
		$bench->{timed_out} = 1;
		die "deadline passed before: @{ $args[0] }\n";
	}
	my $log = $o{out} // $bench->{log_file};
	my @cmds = grep { ref } @args;
	# standard input from a file: IPC::Run feeds a string only while it is
	# pumped, and a program in the background would wait for it
	my $stdin_file;
	if ($o{stdin})
	{
		$stdin_file = "$bench->{work}/stdin." . ++$bench->{stdin_files};
		write_lines($stdin_file, ${ $o{stdin} });
	}
	my @spec;
	for my $i (0 .. $#cmds)
	{
		push @spec, '|' if $i;
		push @spec, [ 'timeout', '--kill-after=30', $left, @{ $cmds[$i] } ];
		push @spec, '<', $stdin_file if $i == 0 && $o{stdin};
		if ($i < $#cmds) { push @spec, '2>>', $log; }
		elsif ($o{stdout}) { ${ $o{stdout} } = ''; push @spec, '>', $o{stdout}, '2>>', $log; }
		else { push @spec, '>>', $log, '2>&1'; }
	}
	local $ENV{PG_CONFIG}  = "$bench->{pgbin}/pg_config";
	local $ENV{PGPASSFILE} = $bench->{passfile};
	local $ENV{PGAPPNAME};
	delete $ENV{PGAPPNAME};    # PostgreSQL::Test::Utils names every session after the script
	my $cmd = join(' | ', map { $_->[0] } @cmds);
	my $h = IPC::Run::start(@spec);
	$h->{bench_cmd} = $cmd;
	return $h if $o{background};
	return $bench->finish_client($h);
}

sub finish_client
{
	my ($bench, $h) = @_;
	return 1 if $h->finish;
	$bench->client_failed($h->{bench_cmd}, [ $h->full_results ]);
}

sub client_failed
{
	my ($bench, $cmd, $results) = @_;
	my @codes = map { $_ >> 8 } @$results;
	my $code  = (grep { $_ } @codes)[0] // 1;
	$bench->{timed_out} = 1 if $code == 124 || $code == 137;
	die "$cmd failed (exit status $code" . ($bench->{timed_out} ? ': timed out' : '') . ")\n";
}

# ---------------------------------------------------------------- checks

# table_lines NODE, DB, FILE: sql/FILE's lines (one per table or sequence), sorted
sub table_lines
{
	my ($bench, $node, $db, $file) = @_;
	my $sql = join("\n", slurp_lines("$bench->{bench_dir}/sql/$file"));
	return sort split /\n/, $node->safe_psql($db, $sql);
}

# source_hashes DB, NAME: every table of the source database DB, row count
# and hash, into LOG_DIR/NAME.tables; returns the lines
sub source_hashes
{
	my ($bench, $db, $name) = @_;
	my @lines = $bench->table_lines($bench->{source}, $db, 'table_hashes.sql');
	write_lines("$bench->{log_dir}/$name.tables", @lines);
	return \@lines;
}

sub write_lines
{
	my ($file, @lines) = @_;
	open my $fh, '>', $file or die "cannot write $file: $!\n";
	print $fh map { "$_\n" } @lines;
	close $fh;
}

# verify_tables DB, NAME, REFERENCE: compare every table's row count and
# hash with the source's (REFERENCE: source_hashes' lines).  Returns (1 if
# equal, the lines that say so: OK, or MISMATCH and the differing tables).
sub verify_tables
{
	my ($bench, $db, $name, $ref) = @_;
	my @lines = $bench->table_lines($bench->{target}, $db, 'table_hashes.sql');
	write_lines("$bench->{log_dir}/$name.tables", @lines);
	my %src = map { $_ => 1 } @$ref;
	my %tgt = map { $_ => 1 } @lines;
	my @diffs = ((map { "< $_" } grep { !$tgt{$_} } @$ref), (map { "> $_" } grep { !$src{$_} } @lines));
	return (1, 'tables: OK (' . scalar(@lines) . ' tables, same row counts and hashes as the source)')
	  unless @diffs;
	splice(@diffs, 20) if @diffs > 20;
	return (0, 'tables: MISMATCH (< source, > target; table|rows|hash):', @diffs);
}

# verify_sequences DB, NAME, REFERENCE: "N/M" sequences equal to the source's
sub verify_sequences
{
	my ($bench, $db, $name, $ref) = @_;
	my @lines = $bench->table_lines($bench->{target}, $db, 'sequence_values.sql');
	write_lines("$bench->{log_dir}/$name.sequences", @lines);
	my %tgt = map { $_ => 1 } @lines;
	return scalar(grep { $tgt{$_} } @$ref) . '/' . scalar(@$ref);
}

# Other work on this machine makes the timings noisy: how busy the CPUs are
# for 2 s (while the clusters are idle).
sub cpu_busy_pct
{
	my $read = sub {
		my ($line) = slurp_lines('/proc/stat');
		my (undef, $u, $n, $s, $idle, $iowait) = split ' ', $line;
		return ($u + $n + $s + $idle + $iowait, $idle + $iowait);
	};
	my ($t1, $i1) = $read->();
	sleep 2;
	my ($t2, $i2) = $read->();
	return 100 - int(100 * ($i2 - $i1) / ($t2 - $t1));
}

sub machine_desc
{
	my ($bench) = @_;
	my ($model) = map { /^model name\s*: (.*)/ ? $1 : () } slurp_lines('/proc/cpuinfo');
	my ($mem_kb) = map { /^MemTotal:\s+(\d+)/ ? $1 : () } slurp_lines('/proc/meminfo');
	my ($version) = `$bench->{pgbin}/postgres -V` =~ /(\d+\.\d+)/;
	my $cores = () = grep { /^processor\s*:/ } slurp_lines('/proc/cpuinfo');
	return sprintf('%d cores (%s), %d GB RAM; PostgreSQL %s', $cores, $model // '?', $mem_kb / 1048576, $version // '?');
}

sub log_size { my ($node) = @_; return -s $node->logfile // 0; }

# the target's server log from byte FROM on
sub target_log_since
{
	my ($bench, $from) = @_;
	return PostgreSQL::Test::Utils::slurp_file($bench->{target}->logfile, $from);
}

# target_crashed FROM: did the target's postmaster see a process crash since
# byte FROM of its log, or does it not accept connections?
sub target_crashed
{
	my ($bench, $from) = @_;
	return 1 if $bench->target_log_since($from) =~ /terminated by signal|PANIC:|database system is in recovery mode/;
	my $t = $bench->{target};
	return system('pg_isready', '-q', '-t', '30', '-h', $t->host, '-p', $t->port) != 0;
}

# A tool that crashed the target server gets it replaced by a fresh one,
# same settings, so that the next tools are measured on a healthy server.
sub reset_target
{
	my ($bench) = @_;
	$bench->out('the target server crashed during the run: replacing it with a fresh cluster');
	copy($bench->{target}->logfile, "$bench->{log_dir}/target-server.crashed." . time . '.log');
	$bench->{target}->stop('immediate', fail_ok => 1);
	$bench->start_target;
}

# Replication slots left on the source would hold WAL: report and drop them.
sub drop_leftover_slots
{
	my ($bench) = @_;
	my $slots = $bench->src_sql('postgres', 'SELECT string_agg(slot_name, \' \') FROM pg_replication_slots WHERE NOT active');
	return unless $slots;
	$bench->out("note: replication slots left on the source, dropped: $slots");
	$bench->src_sql('postgres', 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active');
}

# recreate_db NODE, DB: drop it if it exists, make it anew
sub recreate_db
{
	my ($bench, $node, $db) = @_;
	$node->safe_psql('postgres', "SET client_min_messages = warning; DROP DATABASE IF EXISTS $db WITH (FORCE)");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
}

# checkpoint on both: start from clean buffers
sub checkpoint_both
{
	my ($bench) = @_;
	$bench->src_sql('postgres', 'CHECKPOINT');
	$bench->tgt_sql('postgres', 'CHECKPOINT');
}

1;
