#!/usr/bin/perl
# Cutover duration with resync => 'at_cutover' (issue 8, item 4).
#
#   PGBIN=... bench/resync_cutover.pl    (RESYNC_CASES="base n1 n10 n100 big"
#                                         by default)
# A TAP file: run it after pg_ingest is installed into PGBIN's PostgreSQL, as
# root (then again as the unprivileged user of scripts/lib.sh: Bench::Setup)
# or as that user, or under prove as the tests are.
#
# Each case: a source database whose tables have no key (so resync copies
# them again at the stop), a migration full-load-and-cdc into a fresh
# target database, then ingest.cutover() timed from the client; "base" is
# the same with one keyed table (nothing to resync).  Prints one line per
# case: tables, rows, source size, cutover seconds, and the resync's own
# time from its event.

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

my @cases = split ' ', ($ENV{RESYNC_CASES} || 'base n1 n10 n100 big');
my %spec = (
	base => [ 1,   1000,    1 ],    # tables, rows each, keyed
	n1   => [ 1,   1000,    0 ],
	n10  => [ 10,  1000,    0 ],
	n100 => [ 100, 1000,    0 ],
	big  => [ 1,   1000000, 0 ],
);

my $source = new_source('source');
my $target = new_target('target');
my @report;

for my $case (@cases)
{
	my ($n, $rows, $keyed) = @{ $spec{$case} };
	create_db($source, $case, 'migrator');
	my $ddl = "SET ROLE migrator;\n";
	for my $i (1 .. $n)
	{
		$ddl .= "CREATE TABLE t$i (id int" . ($keyed ? ' PRIMARY KEY' : '')
		  . ", a text, b text);\n"
		  . "INSERT INTO t$i SELECT g, md5(g::text), md5((g + 1)::text)"
		  . " FROM generate_series(1, $rows) g;\n";
	}
	$source->safe_psql($case, $ddl);
	my $size = $source->safe_psql($case,
		"SELECT pg_size_pretty(sum(pg_table_size(oid))) FROM pg_class WHERE relname ~ '^t[0-9]+\$' AND relkind = 'r'");

	create_db($target, $case);
	$target->safe_psql($case, 'CREATE EXTENSION pg_ingest');
	my $conn = source_connstr($source, dbname => $case);
	$target->safe_psql($case,
		"SELECT ingest.start('$conn', name => '$case', resync => 'at_cutover', table_jobs => 2, index_jobs => 2)");
	ok(wait_phase($target, $case, $case, 'streaming'), "$case streams");
	# a few changes while streaming
	$source->safe_psql($case, "UPDATE t1 SET a = 'changed' WHERE id <= 10");

	my $t0 = time;
	my ($ret, $out, $err) = $target->psql($case, "SELECT ingest.cutover('$case', '30 min')");
	my $secs = time - $t0;
	is($ret, 0, "$case cutover") or diag($err);
	my @tables = map { "t$_" } 1 .. $n;
	same_content($source, $case, $target, $case, \@tables, "$case identical");
	my $event = $target->safe_psql($case,
		"SELECT coalesce(max(message), '-') FROM ingest.events WHERE kind = 'resync' AND message LIKE 'copied%'");
	my ($resync_s) = $event =~ /in ([\d.]+) s$/;
	push @report, sprintf('%-5s tables=%-3d rows/table=%-7d size=%-8s cutover=%.2fs resync=%ss',
		$case, $n, $rows, $size, $secs, $resync_s // '-');
	diag($report[-1]);
}

diag("RESULTS\n" . join("\n", @report));
done_testing();
