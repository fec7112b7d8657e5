# No worker failure can loop the server.
#
# A worker that crashes makes the postmaster restart every process; the
# supervisor relaunches the migration after the restart.  With
# pg_ingest.debug_crash_worker every applier crashes at start: the server
# restarts pg_ingest.max_crashes + 1 times, then the migration is failed
# with the reason and the server stays up.  A fast shutdown in the middle
# of the next crash loop completes, and once the cause is gone the
# migration goes on after a restart.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use IngestTest;

my $source = new_source('source');
my $target = new_target('target',
	restart_after_crash     => 'on',
	'pg_ingest.retry_delay' => "'200ms'");
my $conn = source_connstr($source);

$source->safe_psql('app',
	"SET ROLE migrator; CREATE TABLE t (id int PRIMARY KEY, v text);"
	  . " INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;");

# crashes of the applier so far, from the server log
sub crashes
{
	my $log = slurp_file($target->logfile);
	my @c = $log =~ /background worker "pg_ingest applier" \(PID \d+\) was terminated by signal/g;
	return scalar @c;
}

# --- from streaming on, every applier crashes at start ---------------------
$target->safe_psql('postgres',
	"SELECT ingest.start('$conn', name => 'crash', table_jobs => 1, index_jobs => 1)");
ok(wait_phase($target, 'postgres', 'crash', 'streaming'), 'the migration streams');
$target->append_conf('postgresql.conf', "pg_ingest.debug_crash_worker = 'applier'\n");
$target->reload;
# the applier stops (exit 1, no crash); the coordinator starts another
$target->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_ingest applier'");

ok(wait_phase($target, 'postgres', 'crash', 'failed'),
	'the migration fails after repeated crashes');
like(
	$target->safe_psql('postgres', "SELECT last_error FROM ingest.status WHERE name = 'crash'"),
	qr/the server crashed 4 times in a row while the migration ran; it is not relaunched \(pg_ingest\.max_crashes = 3\)/,
	'last_error gives the reason');
is( $target->safe_psql('postgres',
		"SELECT count(*) FROM ingest.events WHERE name = 'crash' AND kind = 'failure' AND level = 'ERROR'"),
	'1', 'one failure event');
ok( poll_until($target, 'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_ingest%' AND backend_type <> 'pg_ingest supervisor'",
		'0', 'no pg_ingest worker left'),
	'no worker of the migration runs');
is(crashes(), 4, 'the server restarted max_crashes + 1 times, no more');
is($target->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');

# --- after a resume the loop is stopped again, and a fast shutdown works ---
# (A fast shutdown requested at the very moment the postmaster reinitializes
# after a crash can hang in PostgreSQL 15 itself -- the request lands before
# the startup process is launched and is not acted on -- so the shutdown is
# asked for once the crash counter has ended the loop, as a DBA would.)
my $before = crashes();
$target->safe_psql('postgres', "SELECT ingest.resume('crash')");
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
usleep(20_000) while crashes() == $before && time < $deadline;
ok(crashes() > $before, 'the applier crashes again after resume');
ok(wait_phase($target, 'postgres', 'crash', 'failed'),
	'the crash counter stops the loop again after the resume');
is(crashes() - $before, 4, 'again max_crashes + 1 restarts, no more');
my ($out, $err);
my $stopped = IPC::Run::run(
	[ 'pg_ctl', '-D', $target->data_dir, '-m', 'fast', '-t', '60', 'stop' ],
	'>', \$out, '2>', \$err);
ok($stopped, 'a fast shutdown after the loop was stopped completes')
  or diag("pg_ctl: $out $err");
$target->stop('immediate', fail_ok => 1) unless $stopped;
$target->_update_pid(0);

# --- once the cause is gone, the migration goes on -------------------------
$target->append_conf('postgresql.conf', "pg_ingest.debug_crash_worker = ''\n");
$target->start;
$target->safe_psql('postgres', "SELECT ingest.resume('crash')");
ok(wait_phase($target, 'postgres', 'crash', 'streaming'),
	'the migration streams once the applier no longer crashes');
$source->safe_psql('app', "INSERT INTO t VALUES (1001, 'late')");
$target->safe_psql('postgres', "SELECT ingest.cutover('crash', '1 min')");
same_content($source, 'app', $target, 'postgres', ['t'], 'the target has the source\'s rows');

done_testing();
