#!/usr/bin/perl
# What replicating DDL through the source's event trigger costs: the time of
# N DDL commands on the source without and with pg_ingest's event trigger,
# and how long the target takes to apply them.  A TAP file: run it after
# pg_ingest is installed into PGBIN's PostgreSQL, as root (then again as the
# unprivileged user of scripts/lib.sh: Bench::Setup) or as that user,
#   PGBIN=... bench/ddl_overhead.pl      (DDL_BENCH_N commands, 300)
# or under prove as the tests are.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";

BEGIN
{
	require Bench::Setup;
	Bench::Setup::prepare(install => 0);
}

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IngestTest;

my $n = $ENV{DDL_BENCH_N} // 300;
my $source = new_source('source');
my $target = new_target('target');
$source->safe_psql('postgres', 'ALTER ROLE migrator SUPERUSER');
$source->safe_psql('app', 'CREATE TABLE t0 (id int PRIMARY KEY)');

sub ddl_script
{
	my ($tag) = @_;
	return join('', map { "CREATE TABLE b_${tag}_$_ (id int PRIMARY KEY, v text); ALTER TABLE b_${tag}_$_ ADD COLUMN w int;\n" } 1 .. $n);
}

my $t0 = time;
$source->safe_psql('app', ddl_script('before'));
my $without = time - $t0;

$target->safe_psql('postgres', "SELECT ingest.start('" . source_connstr($source) . "', name => 'b')");
ok(wait_phase($target, 'postgres', 'b', 'streaming'), 'streaming');
is($target->safe_psql('postgres', "SELECT ddl_via FROM ingest.migration WHERE name = 'b'"), 'event_trigger', 'event trigger');

$t0 = time;
$source->safe_psql('app', ddl_script('with'));
my $with = time - $t0;
my $lsn = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
my $t1 = time;
ok(poll_until($target, 'postgres', "SELECT applied_lsn >= '$lsn' FROM ingest.status WHERE name = 'b'", 't', 'applied'),
	'applied');
my $apply = time - $t1;
diag(sprintf("%d tables created and altered (%d commands): source %.2fs without the trigger, %.2fs with it (%.2f ms per command more); target applied them %.2fs after the last commit (%.2f ms per command)",
		$n, 2 * $n, $without, $with, 1000 * ($with - $without) / (2 * $n), $apply, 1000 * $apply / (2 * $n)));
$target->safe_psql('postgres', "SELECT ingest.cutover('b')");
done_testing();
