# The source restarted while tables are being copied.
#
# The exported snapshot dies with the source session that keeps it.  The
# copy of two tables is held back (a target session locks them) while the
# rest is copied; the source is restarted (fast), the source changes the
# held tables, the first is let go; then the source is restarted again
# (immediate) and the second is let go.  The coordinator must export a new
# snapshot each time and copy what was not yet copied under it, with its
# new sync LSN, without an operator; after cutover every table has the
# source's content (a change both copied and streamed would be a duplicate
# key, one neither copied nor streamed a difference).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $source = new_source('source');
my $target = new_target('target', 'pg_ingest.retry_delay' => "'1s'");
my $conn = source_connstr($source);
my @tables = qw(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history held_big);

{
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	my ($out, $err);
	IPC::Run::run([ 'pgbench', '-i', '-q', '-s', '2', source_connstr($source, password => undef) ],
		'>', \$out, '2>', \$err)
	  or die "pgbench -i failed: $err";
}
$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE held_big (id int PRIMARY KEY, payload text);
	INSERT INTO held_big SELECT g, md5(g::text) FROM generate_series(1, 50000) g;
	INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT 1, 1, g, g, now() FROM generate_series(1, 100) g;
	ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
});

# the target has the schema; two sessions hold the copy of two tables back
create_db($target, 'app');
$target->safe_psql('app', 'CREATE EXTENSION pg_ingest');
{
	my ($dump, $derr, $o, $e);
	IPC::Run::run([ 'pg_dump', '--schema-only', '--no-owner', '--no-privileges', '-d', $source->connstr('app') ],
		'>', \$dump, '2>', \$derr)
	  or die "pg_dump failed: $derr";
	$dump =~ s/^\\(un)?restrict .*$//mg;
	IPC::Run::run([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $target->connstr('app') ],
		'<', \$dump, '>', \$o, '2>', \$e)
	  or die "restoring the schema failed: $e";
}
my $hold_accounts = $target->background_psql('app');
$hold_accounts->query_safe('BEGIN; LOCK TABLE pgbench_accounts IN ACCESS SHARE MODE');
my $hold_big = $target->background_psql('app');
$hold_big->query_safe('BEGIN; LOCK TABLE held_big IN ACCESS SHARE MODE');

$target->safe_psql('app',
	"SELECT ingest.start('$conn', name => 'rs', schema => 'existing', table_jobs => 3, index_jobs => 1)");
my $held_state = "SELECT string_agg(format('%s=%s', source_table, state), ' ' ORDER BY source_table)"
  . " FROM ingest.tables WHERE name = 'rs'";
ok( poll_until($target, 'app', $held_state,
		'public.held_big=copying public.pgbench_accounts=copying public.pgbench_branches=done'
		  . ' public.pgbench_history=done public.pgbench_tellers=done',
		'the rest to be copied while two tables are held back'),
	'two tables are held back, the rest is copied');
# snapshot names repeat across restarts of the source: their LSNs do not
my $first_snapshot = $target->safe_psql('app', "SELECT snapshot_lsn FROM ingest.migration WHERE name = 'rs'");

# --- the source restarts (fast) while the two copies wait -----------------
$source->restart(mode => 'fast');
$source->safe_psql('app', q{
	UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid <= 500;
	INSERT INTO held_big SELECT g, 'after the first restart' FROM generate_series(100001, 100100) g;
	INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (2, 2, 2, 2, now());
});
ok( poll_until($target, 'app',
		"SELECT snapshot_lsn > '$first_snapshot' FROM ingest.migration WHERE name = 'rs'",
		't', 'a new snapshot'),
	'the coordinator exports a new snapshot after the source restarted');
my $second_snapshot = $target->safe_psql('app', "SELECT snapshot_lsn FROM ingest.migration WHERE name = 'rs'");
$hold_accounts->query_safe('COMMIT');
$hold_accounts->quit;
ok( poll_until($target, 'app',
		"SELECT state FROM ingest.tables WHERE name = 'rs' AND source_table = 'public.pgbench_accounts'",
		'done', 'pgbench_accounts to be copied'),
	'the first held table is copied under the new snapshot');
is($target->safe_psql('app',
		"SELECT sync_lsn = (SELECT snapshot_lsn FROM ingest.migration WHERE name = 'rs')"
		  . " FROM ingest.tables WHERE name = 'rs' AND source_table = 'public.pgbench_accounts'"),
	't', 'with the new snapshot\'s LSN as its sync LSN');

# --- and again (immediate) while the second copy waits --------------------
$source->stop('immediate');
$source->start;
$source->safe_psql('app', q{
	UPDATE held_big SET payload = 'after the second restart' WHERE id <= 1000;
	DELETE FROM held_big WHERE id BETWEEN 2001 AND 2100;
	INSERT INTO held_big SELECT g, 'after the second restart' FROM generate_series(100101, 100200) g;
	UPDATE pgbench_accounts SET abalance = abalance - 3 WHERE aid BETWEEN 400 AND 600;
});
ok( poll_until($target, 'app',
		"SELECT snapshot_lsn > '$second_snapshot' FROM ingest.migration WHERE name = 'rs'",
		't', 'a third snapshot'),
	'after the immediate restart too');
$hold_big->query_safe('COMMIT');
$hold_big->quit;
ok(wait_phase($target, 'app', 'rs', 'streaming'), 'the migration finishes its copy and streams, no operator');
is($target->safe_psql('app',
		"SELECT count(*) FROM ingest.events WHERE name = 'rs' AND level = 'WARNING' AND kind = 'snapshot'"),
	'2', 'each lost snapshot is a WARNING event');
ok($target->log_contains(
		qr/WARNING:  pg_ingest coordinator of migration "rs": the source session keeping snapshot \S+ is gone/),
	'and a WARNING in the server log');

# --- the coordinator's memory while it streams does not grow ---------------
# TopMemoryContext's own "used" bytes, as pg_log_backend_memory_contexts
# writes them to the log.
sub top_used
{
	my $pid = shift;
	my $offset = -s $target->logfile;
	$target->safe_psql('app', "SELECT pg_log_backend_memory_contexts($pid)");
	$target->wait_for_log(qr/Grand total: /, $offset);
	my $log = slurp_file($target->logfile, $offset);
	$log =~ /level: 0; TopMemoryContext: \d+ total in \d+ blocks; \d+ free \(\d+ chunks\); (\d+) used/
	  or die "no TopMemoryContext line in: $log";
	return $1;
}
my $coordinator = $target->safe_psql('app',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ingest coordinator'");
my $used_before = top_used($coordinator);
# a measurement window, not a wait for state: the loop turns every second
sleep 12;
my $used_after = top_used($coordinator);
cmp_ok($used_after - $used_before, '<', 200,
	"the streaming coordinator's TopMemoryContext does not grow ($used_before then $used_after bytes used)");

$source->safe_psql('app', "INSERT INTO held_big VALUES (200000, 'last')");
$target->safe_psql('app', "SELECT ingest.cutover('rs')");
is($target->safe_psql('app', "SELECT phase FROM ingest.status WHERE name = 'rs'"), 'completed', 'completed');
same_content($source, 'app', $target, 'app', \@tables,
	'every table has the same content on both sides after two source restarts during the copy');

done_testing();
