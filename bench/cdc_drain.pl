#!/usr/bin/perl
# cdc_drain.pl - drain of a change backlog held in the slot, pg_ingest
# against native logical replication, plus idle latencies; a developer's
# measurement beside bench/run.pl (which carries the full comparison).
#
#   PGBIN=... bench/cdc_drain.pl [--scale N] [--rounds N] [--seconds N]
#                                [--native stop|disable]
#
# Run after pg_ingest is installed into PGBIN's PostgreSQL, as root (then
# again as the unprivileged user of scripts/lib.sh, pgingest) or as that
# user.  Two PostgreSQL::Test::Cluster nodes (t/IngestTest.pm): a source
# (pgbench -i --scale, pgbench_history REPLICA IDENTITY FULL, publication
# FOR ALL TABLES) and a target holding database ing (pg_ingest, mode
# full-load-and-cdc) and nat (the schema, and a subscription).  Each round:
# pg_ingest's receiver gets SIGSTOP, native's apply worker SIGSTOP too
# (--native stop, the default: both walsenders keep decoding into their
# sockets alike) or its subscription is disabled (--native disable);
# pgbench -n -c4 -j4 -T seconds; a marker row; then SIGCONT of the receiver
# alone, the time until the marker is visible in ing; then native likewise
# in nat.  Also the CPU ticks (1/100 s) the processes spent on it.  Then
# commit -> visible latencies, idle, and ingest.resume() -> first change
# visible.  PG_TEST_NOCLEAN=1 keeps the clusters' directories.
#
# The wait for the marker is a procedure that commits between looks: a DO
# block would hold its snapshot, and so the target's xmin, for the whole
# drain, and no HOT chain could be pruned meanwhile (the apply of pgbench's
# updates then spends most of its time walking chains, for both).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use Getopt::Long qw(GetOptionsFromArray);

my %opt;
BEGIN
{
	%opt = (scale => 10, rounds => 3, seconds => 15, native => 'stop');
	my @args = @ARGV;    # @ARGV stays whole for Bench::Setup's second run as the user
	GetOptionsFromArray(\@args, \%opt, 'scale=i', 'rounds=i', 'seconds=i', 'native=s')
	  && !@args
	  && $opt{native} =~ /^(stop|disable)$/
	  or die "usage: $0 [--scale N] [--rounds N] [--seconds N] [--native stop|disable]\n";
	require Bench::Setup;
	Bench::Setup::prepare(install => 0);
}
use IPC::Run;
use Time::HiRes qw(time usleep);
use Bench;
use IngestTest qw(new_source new_target source_connstr);
Bench::Setup::console_stderr();

sub out { Bench::Setup::console(@_); }

my $src = new_source('src', conf => Bench::plain_conf());
my $tgt = new_target('tgt', %{ Bench::plain_conf() });
my $SRC = source_connstr($src, dbname => 'bench', user => scalar getpwuid($>), password => undef);

out('=== setup: pgbench scale ' . $opt{scale} . ', pg_ingest and a subscription');
$src->safe_psql('postgres', 'CREATE DATABASE bench');
IPC::Run::run([ 'pgbench', '-q', '-i', '-s', $opt{scale}, $src->connstr('bench') ], '>', '/dev/null', '2>', '/dev/null')
  or die "pgbench -i failed\n";
$src->safe_psql('bench', 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL; CREATE TABLE cdc_marker (n int PRIMARY KEY)');
$tgt->safe_psql('postgres', 'CREATE DATABASE ing');
$tgt->safe_psql('postgres', 'CREATE DATABASE nat');
$tgt->safe_psql('ing', "CREATE EXTENSION pg_ingest; SELECT ingest.start(source => '$SRC', name => 'b', mode => 'full-load-and-cdc')");
$tgt->safe_psql('ing', "SELECT ingest.wait('b', 'streaming', '30 min')") eq 't'
  or die 'pg_ingest did not reach streaming: ' . $tgt->safe_psql('ing', 'SELECT phase, last_error FROM ingest.migration') . "\n";
IPC::Run::run([ 'pg_dump', '--schema-only', $src->connstr('bench') ], '|', [ 'psql', '-X', '-q', '-d', $tgt->connstr('nat') ],
	'>', '/dev/null')
  or die "pg_dump --schema-only | psql failed\n";
$src->safe_psql('bench', 'CREATE PUBLICATION p FOR ALL TABLES');
$tgt->safe_psql('nat', "SET client_min_messages = warning; CREATE SUBSCRIPTION s CONNECTION '$SRC' PUBLICATION p");
usleep(200_000) until $tgt->safe_psql('nat', "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'") eq '0';
for my $d (qw(ing nat))
{
	$tgt->safe_psql($d, 'CREATE PROCEDURE public.wait_marker(m int) LANGUAGE plpgsql AS $$
BEGIN LOOP IF EXISTS (SELECT FROM cdc_marker WHERE n = m) THEN RETURN; END IF; COMMIT; PERFORM pg_sleep(0.002); END LOOP; END $$');
}

# CPU ticks (user + system) of processes so far
sub cpu
{
	my $t = 0;
	for my $p (@_)
	{
		open my $st, '<', "/proc/$p/stat" or die "/proc/$p/stat: $!\n";
		my @f = split ' ', (split /\) /, scalar <$st>)[1];
		$t += $f[11] + $f[12];    # fields 14 and 15 of stat(5)
	}
	return $t;
}
sub native_pid { return $tgt->safe_psql('nat', "SELECT pid FROM pg_stat_subscription WHERE subname = 's' AND relid IS NULL AND pid IS NOT NULL"); }
sub med { my @v = sort { $a <=> $b } @_; return $v[ int((@v + 1) / 2) - 1 ]; }

my (@ing, @nat);
for my $r (1 .. $opt{rounds})
{
	my $rpid = $tgt->safe_psql('ing', "SELECT pid FROM ingest._live() WHERE kind = 'receiver'");
	my $apid = $tgt->safe_psql('ing', "SELECT pid FROM ingest._live() WHERE kind = 'applier'");
	my ($npid, $n0);
	kill 'STOP', $rpid;
	if ($opt{native} eq 'stop')
	{
		$npid = native_pid();
		kill 'STOP', $npid;
		$n0 = cpu($npid);
	}
	else
	{
		$tgt->safe_psql('nat', 'ALTER SUBSCRIPTION s DISABLE');
		usleep(100_000)
		  until $src->safe_psql('bench', "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 's' AND active") eq '0';
	}
	$src->safe_psql('postgres', 'CHECKPOINT');
	my $pgbench_out;
	IPC::Run::run([ 'pgbench', '-n', '-T', $opt{seconds}, '-c', 4, '-j', 4, $src->connstr('bench') ], '>', \$pgbench_out, '2>&1')
	  or die "pgbench failed: $pgbench_out\n";
	my ($tx) = $pgbench_out =~ /^number of transactions actually processed: (\d+)/m;
	$src->safe_psql('bench', "INSERT INTO cdc_marker VALUES ($r)");
	my ($c0, $t0) = (cpu($rpid, $apid), time);
	kill 'CONT', $rpid;
	$tgt->safe_psql('ing', "CALL public.wait_marker($r)");
	my ($t1, $c1) = (time, cpu($rpid, $apid));
	my $t2 = time;
	if ($opt{native} eq 'stop') { kill 'CONT', $npid; }
	else { $tgt->safe_psql('nat', 'ALTER SUBSCRIPTION s ENABLE'); $n0 = 0; }
	$tgt->safe_psql('nat', "CALL public.wait_marker($r)");
	my $t3 = time;
	$npid = native_pid() if $opt{native} ne 'stop';
	out(sprintf('round %d: %d pgbench txns; drain pg_ingest %.3f s, native %.3f s, native/pg_ingest %.2f; CPU ticks receiver+applier %d, native apply worker %d',
			$r, $tx, $t1 - $t0, $t3 - $t2, ($t3 - $t2) / ($t1 - $t0), $c1 - $c0, cpu($npid) - $n0));
	push @ing, $t1 - $t0;
	push @nat, $t3 - $t2;
}
my ($mi, $mn) = (med(@ing), med(@nat));
out(sprintf('median drain: pg_ingest %.3f s, native %.3f s, native/pg_ingest %.2f (%d rounds, --native %s)',
		$mi, $mn, $mn / $mi, $opt{rounds}, $opt{native}));

out('=== idle: commit on the source -> visible on the target (ms: from before the INSERT / from its commit acknowledged)');
my @lat;
for my $i (1 .. 15)
{
	my $n = 1000 + $i;
	my $seen;
	my $h = IPC::Run::start([ 'psql', '-X', '-q', '-At', '-d', $tgt->connstr('ing'), '-c', "CALL public.wait_marker($n)", '-c', 'SELECT clock_timestamp()' ],
		'>', \$seen);
	usleep(300_000);
	my ($before, $after) = split /\n/,
	  $src->safe_psql('bench', "SELECT clock_timestamp();\nINSERT INTO cdc_marker VALUES ($n);\nSELECT clock_timestamp();");
	$h->finish or die "waiting for marker $n failed\n";
	chomp $seen;
	push @lat, $tgt->safe_psql('ing',
		"SELECT round(extract(epoch FROM '$seen'::timestamptz - '$before') * 1000) || '/' || round(extract(epoch FROM '$seen'::timestamptz - '$after') * 1000)");
}
out("@lat", 'p50 ' . med(map { (split m{/})[0] } @lat) . ' / ' . med(map { (split m{/})[1] } @lat) . ' ms');

out('=== ingest.resume() -> first change visible (ms)');
my @rl;
for my $i (1 .. 5)
{
	my $n = 2000 + $i;
	$tgt->safe_psql('ing', "SELECT ingest.pause('b'); SELECT ingest.wait('b', 'paused', '1 min')");
	usleep(1_200_000);
	$src->safe_psql('bench', "INSERT INTO cdc_marker VALUES ($n)");
	usleep(500_000);
	push @rl, (split /\n/, $tgt->safe_psql('ing', <<SQL))[-1];
SELECT clock_timestamp() AS t0 \\gset
SELECT ingest.resume('b');
CALL public.wait_marker($n);
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000);
SQL
}
out(" @rl");
