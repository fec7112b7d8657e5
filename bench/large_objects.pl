#!/usr/bin/perl
# Large objects: pg_ingest's full load against pg_dump -Fd | pg_restore, and
# the time the stop adds for changed large objects.
#
#   PGBIN=... bench/large_objects.pl
#
# Run after pg_ingest is installed into PGBIN's PostgreSQL, as root (then
# again as the unprivileged user of scripts/lib.sh) or as that user.  The
# source (a PostgreSQL::Test::Cluster node, t/IngestTest.pm) gets N_SMALL
# large objects of SMALL_KB kB and one of BIG_MB MB (random bytes); both
# tools copy them into fresh databases of one target cluster.  Then a
# full-load-and-cdc migration, CHANGED objects written on the source while it
# streams, and the stop's INFO event (its time).  Environment: N_SMALL
# (1000), SMALL_KB (100), BIG_MB (200), CHANGED (100), JOBS (2).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";

BEGIN
{
	require Bench::Setup;
	Bench::Setup::prepare(install => 0);
}
use IPC::Run;
use Time::HiRes qw(time usleep);
use Bench;
use IngestTest qw(new_source new_target);
Bench::Setup::console_stderr();

my $N_SMALL  = $ENV{N_SMALL}  // 1000;
my $SMALL_KB = $ENV{SMALL_KB} // 100;
my $BIG_MB   = $ENV{BIG_MB}   // 200;
my $CHANGED  = $ENV{CHANGED}  // 100;
my $JOBS     = $ENV{JOBS}     // 2;

sub out { Bench::Setup::console(@_); }
sub run_ok { my @cmd = @_; IPC::Run::run(@cmd) or die "failed: @{ $cmd[0] }\n"; }

my $src = new_source('src', conf => Bench::plain_conf());
my $tgt = new_target('tgt', %{ Bench::plain_conf() });
my $S   = sub { $src->safe_psql('app', @_) };
my $SRC = sprintf('host=%s port=%d dbname=app', $src->host, $src->port);    # the superuser, over the socket

my $t0 = time;
$S->(<<SQL);
-- random bytes: 16 per md5
CREATE FUNCTION rnd(n int) RETURNS bytea LANGUAGE sql AS
\$\$ SELECT decode(string_agg(md5(random()::text), ''), 'hex') FROM generate_series(1, (n + 15) / 16) \$\$;
SELECT count(lo_from_bytea(0, substr(rnd($SMALL_KB * 1024), 1, $SMALL_KB * 1024))) FROM generate_series(1, $N_SMALL);
SELECT lo_create(900000);
DO \$\$ BEGIN FOR i IN 0 .. $BIG_MB - 1 LOOP
  PERFORM lo_put(900000, i * 1048576::bigint, rnd(1048576)); END LOOP; END \$\$;
SQL
out('source: ' . $S->('SELECT count(*) FROM pg_largeobject_metadata') . ' large objects, pg_largeobject '
	  . $S->("SELECT pg_size_pretty(pg_total_relation_size('pg_largeobject'))") . sprintf(' (made in %.2f s)', time - $t0));

# pg_ingest, full load
$tgt->safe_psql('postgres', 'CREATE DATABASE ing');
$tgt->safe_psql('ing', 'CREATE EXTENSION pg_ingest');
$t0 = time;
$tgt->safe_psql('ing', "SELECT ingest.start('$SRC', mode => 'full-load', table_jobs => $JOBS)");
$tgt->safe_psql('ing', 'SELECT ingest.wait()');
my $t1 = time;
out(sprintf('pg_ingest full load (table_jobs %d): %.2f s; %s %s', $JOBS, $t1 - $t0,
		$tgt->safe_psql('ing', 'SELECT phase FROM ingest.status'),
		$tgt->safe_psql('ing', "SELECT status FROM ingest.verify() WHERE table_name = 'large objects'")));

# pg_dump -Fd -j | pg_restore -j
$tgt->safe_psql('postgres', 'CREATE DATABASE dmp');
my $dump = "$ENV{TESTDIR}/dump";
$t0 = time;
run_ok([ 'pg_dump', '-d', $SRC, '-Fd', '-j', $JOBS, '-f', $dump ]);
run_ok([ 'pg_restore', '-d', $tgt->connstr('dmp'), '-j', $JOBS, $dump ]);
$t1 = time;
out(sprintf('pg_dump -Fd -j %d + pg_restore -j %d: %.2f s; %s large objects', $JOBS, $JOBS, $t1 - $t0,
		$tgt->safe_psql('dmp', 'SELECT count(*) FROM pg_largeobject_metadata')));

# the stop: unchanged, then CHANGED objects changed
for my $changed (0, $CHANGED)
{
	my $db = "cdc$changed";
	$tgt->safe_psql('postgres', "CREATE DATABASE $db");
	$tgt->safe_psql($db, 'CREATE EXTENSION pg_ingest');
	$tgt->safe_psql($db,
		"SELECT ingest.start('$SRC', name => '$db', mode => 'full-load-and-cdc', table_jobs => $JOBS)");
	usleep(500_000) until $tgt->safe_psql($db, 'SELECT phase FROM ingest.status') eq 'streaming';
	$S->("SELECT count(lo_put(oid, 10, 'changed')) FROM (SELECT oid FROM pg_largeobject_metadata WHERE oid <> 900000 ORDER BY oid LIMIT $changed) s");
	$t0 = time;
	$tgt->safe_psql($db, "SELECT ingest.cutover('$db')");
	$t1 = time;
	out(sprintf('cutover with %d changed: %.2f s; %s', $changed, $t1 - $t0,
			$tgt->safe_psql($db, "SELECT message FROM ingest.events WHERE kind = 'large objects' AND level = 'INFO'")));
	$tgt->safe_psql($db, "SELECT ingest.cleanup('$db')");
}
