# Change data capture of large transactions, under pgbench.
#
# A live migration (full load and CDC) while pgbench writes to the source;
# then, while it streams: a large transaction (with a generated column)
# spooled while the migration is paused, and the applier killed with
# SIGKILL in the middle of applying it: it goes on from its origin, no loss
# and no duplicate; the stream cut in the middle of a transaction (the
# receiver stopped, its walsender blocked and terminated): the part read is
# dropped and the transaction streamed again; a pause asked for in the
# middle of a transaction: the applier holds only after the whole source
# transaction.  These steps run in order on the same migration.  Then
# cutover: every table compared with the source by content, no keepalive
# missed, the password nowhere.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

# A short wal_sender_timeout: the stream must answer keepalives in time.
my $source = new_source('source', conf => { wal_sender_timeout => "'2s'" });
my $target = new_target('target',
	restart_after_crash     => 'on',
	'pg_ingest.retry_delay' => "'200ms'");

my $conn = source_connstr($source);

# --- the source: pgbench's tables with foreign keys, and the test's own --
my @tables = load_cdc_source($source);

# pgbench writes from before the start until the cutover
my $pgbench_out = '';
my $pgbench = do
{
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	IPC::Run::start(
		[ 'pgbench', '-n', '-c', '2', '-R', '200', '-T', '600', source_connstr($source, password => undef) ],
		'>&', \$pgbench_out);
};
$source->poll_query_until('app', 'SELECT count(*) > 20 FROM pgbench_history')
  or die 'pgbench does not write';

# --- a migration that streams --------------------------------------------
create_db($target, 'live');
$target->safe_psql('live', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('live', "SELECT ingest.start('$conn', name => 'live', table_jobs => 2, index_jobs => 2)");
ok(wait_phase($target, 'live', 'live', 'streaming'), 'the copy is done and the migration streams');

# Wait until the target has applied everything the source has written so
# far (pgbench keeps writing, so "so far" is a position).
sub wait_applied
{
	my ($name, $db, $what) = @_;
	my $lsn = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
	return poll_until($target, $db,
		"SELECT applied_lsn >= '$lsn' FROM ingest.status WHERE name = '$name'",
		't', $what);
}

# Whether the applier is inside a transaction that writes "big".
my $applier_on_big = "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
  . " WHERE a.backend_type = 'pg_ingest applier' AND l.relation = 'big'::regclass";

# --- a large transaction, and the applier killed in the middle of it -----
$target->safe_psql('live', "SELECT ingest.pause('live')");
ok(wait_phase($target, 'live', 'live', 'paused'), 'paused');
$source->safe_psql('app', q{
	INSERT INTO big (id, payload) SELECT g, md5(g::text) FROM generate_series(1, 200000) g;
	UPDATE big SET payload = 'updated' WHERE id % 7 = 0;
});
my $big_end = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
ok( poll_until($target, 'live',
		"SELECT received_lsn >= '$big_end' FROM ingest.status WHERE name = 'live'",
		't', 'the large transaction to be spooled'),
	'while paused the receiver spools');
cmp_ok($target->safe_psql('live', "SELECT spool_bytes FROM ingest.status WHERE name = 'live'"),
	'>', 10_000_000, 'the spool holds the large transaction');
is($target->safe_psql('live', 'SELECT count(*) FROM big'), '0', 'and nothing of it is applied');

$target->safe_psql('live', "SELECT ingest.resume('live')");
# the applier holds a lock on big while the large transaction is open
ok( poll_until($target, 'live',
		$applier_on_big,
		'1', 'the applier to be applying the large transaction'),
	'the applier applies the large transaction');
my $applier = $target->safe_psql('live',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ingest applier'");
is($target->safe_psql('live', 'SELECT count(*) FROM big'), '0',
	'the applier is in the middle of it');
my $log_offset = -s $target->logfile;
kill 'KILL', $applier;
$target->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
$target->poll_query_until('live', 'SELECT true') or die 'the target does not come back';

ok(wait_applied('live', 'live', 'the large transaction to be applied after the crash'),
	'after the crash the applier goes on from its origin');
same_content($source, 'app', $target, 'live', ['big'],
	'big has the large transaction once: no loss, no duplicate');

# --- the stream cut in the middle of a transaction -----------------------
# The receiver is stopped (SIGSTOP) before a large transaction commits, so
# the source's walsender fills the socket and blocks in the middle of it;
# the walsender is then terminated and the receiver let go: it reads part
# of the transaction, loses the stream, drops the part and streams the
# transaction again from its start.
my $receiver = $target->safe_psql('live',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ingest receiver'");
my $walsender = $source->safe_psql('app',
	"SELECT active_pid FROM pg_replication_slots WHERE slot_name LIKE 'pg_ingest%' AND active");
ok($receiver && $walsender, 'the receiver and its walsender are there');
# While the receiver is stopped it answers no keepalive: a walsender blocked
# for longer than the short wal_sender_timeout would end by itself before
# the test sees it blocked (on a busy machine), so the timeout is long for
# this section only (a reload reaches the running walsender).
$source->safe_psql('app', "ALTER SYSTEM SET wal_sender_timeout = '5min'; SELECT pg_reload_conf()");
my $cut_from = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
kill 'STOP', $receiver;
$source->safe_psql('app',
	"INSERT INTO big (id, payload) SELECT g, md5(g::text) FROM generate_series(1000001, 1200000) g");
ok( poll_until($source, 'app',
		"SELECT sent_lsn > '$cut_from' AND a.wait_event = 'WalSenderWriteData'"
		  . " FROM pg_stat_replication r JOIN pg_stat_activity a USING (pid) WHERE pid = $walsender",
		't', 'the walsender to block sending the large transaction'),
	'the walsender blocks in the middle of the large transaction: the receiver does not read');
# Terminated, it sends no more changes; its FATAL message itself may wait
# (ClientWrite) until the receiver reads again.
$source->safe_psql('app', "SELECT pg_terminate_backend($walsender)");
ok( poll_until($source, 'app',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $walsender AND wait_event = 'WalSenderWriteData'",
		'0', 'the walsender to stop sending'),
	'the walsender is terminated in the middle of the transaction');
my $events_before = $target->safe_psql('live', "SELECT max(id) FROM ingest.events");
kill 'CONT', $receiver;
$source->safe_psql('app', "ALTER SYSTEM RESET wal_sender_timeout; SELECT pg_reload_conf()");
ok(wait_applied('live', 'live', 'the large transaction streamed again'),
	'the receiver reconnects and the transaction is applied');
like($target->safe_psql('live',
		"SELECT string_agg(message, ' / ') FROM ingest.events WHERE name = 'live' AND id > $events_before AND kind = 'stream'"),
	qr/replication stream lost.*streaming slot/s, 'the stream was lost and opened again');
is($target->safe_psql('live', "SELECT phase FROM ingest.status WHERE name = 'live'"),
	'streaming', 'the migration goes on streaming');
same_content($source, 'app', $target, 'live', ['big'], 'the cut transaction is applied once and whole');

# --- a pause asked for in the middle of a transaction ---------------------
# The applier finishes the source transaction it is in, then holds.
$target->safe_psql('live', "SELECT ingest.pause('live')");
ok(wait_phase($target, 'live', 'live', 'paused'), 'paused again');
$source->safe_psql('app',
	"INSERT INTO big (id, payload) SELECT g, md5(g::text) FROM generate_series(2000001, 2200000) g");
$big_end = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
ok( poll_until($target, 'live',
		"SELECT received_lsn >= '$big_end' FROM ingest.status WHERE name = 'live'",
		't', 'the second large transaction to be spooled'),
	'the second large transaction is spooled');
$target->safe_psql('live', "SELECT ingest.resume('live')");
ok( poll_until($target, 'live',
		$applier_on_big,
		'1', 'the applier to be in the second large transaction'),
	'the applier is in the second large transaction');
$target->safe_psql('live', "SELECT ingest.pause('live')");
ok( poll_until($target, 'live',
		$applier_on_big,
		'0', 'the applier to hold'),
	'the paused applier holds, its target transaction committed');
is($target->safe_psql('live', 'SELECT count(*) FROM big WHERE id > 2000000'), '200000',
	'it held only after the whole source transaction');
$target->safe_psql('live', "SELECT ingest.resume('live')");
ok(wait_applied('live', 'live', 'everything after the pause'), 'and goes on after resume');

# --- cutover ---------------------------------------------------------------
$pgbench->signal('TERM');
$pgbench->finish;
my $cut = $target->safe_psql('live', "SELECT ingest.cutover('live')");
like($cut, qr{^[0-9A-F]+/[0-9A-F]+$}, 'cutover returns the stop LSN');
is($target->safe_psql('live', "SELECT phase FROM ingest.status WHERE name = 'live'"),
	'completed', 'and the migration is completed');
same_content($source, 'app', $target, 'live', \@tables, 'every table has the same content on both sides');
is($source->safe_psql('app', "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pg_ingest%'"),
	'0', 'the slot is dropped at the stop');
ok(!$source->log_contains(qr/terminating walsender process due to replication timeout/),
	'the source never cut the stream for a missed keepalive (spooling, applying, paused)');

# the password of the connection string shows nowhere pg_ingest writes
password_nowhere($target, 'live', 'the stream was lost on the way');

done_testing();
