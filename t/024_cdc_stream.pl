# Change data capture across two clusters: one migration, streaming.
#
# A live migration (full load and CDC) while pgbench writes to the source
# during the whole copy; a session LISTENing on the target is told of the
# phases (NOTIFY); then, while it streams: updates that leave a TOASTed
# value unchanged, primary-key updates, deletes (by cascade too), a REPLICA
# IDENTITY FULL table with duplicate rows, a truncate, NaN and Infinity, a
# trigger that must not fire twice; the source restarted; a conflicting row
# planted on the target; stop_at's bad inputs; cutover.  These steps run in
# order on the same migration (the last checks, no password anywhere, need
# the stream lost and the migration failed on the way).  Every table is
# compared with the source by content.  The other CDC scenarios, each on
# its own clusters: t/025_cdc_held_copy.pl, t/026_cdc_mode.pl,
# t/027_cdc_encoding.pl and t/028_cdc_large_txn.pl (large transactions:
# the applier killed, the stream cut and a pause in the middle of one).

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

# pgbench writes from before the start until after the copy
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

# --- NOTIFY: a session LISTENing on the target sees the phases -----------
create_db($target, 'live');
$target->safe_psql('live', 'CREATE EXTENSION pg_ingest');
my $listener = $target->background_psql('live');
$listener->query_safe('LISTEN pg_ingest');

$target->safe_psql('live', "SELECT ingest.start('$conn', name => 'live', table_jobs => 2, index_jobs => 2)");
ok(wait_phase($target, 'live', 'live', 'streaming'), 'the copy is done and the migration streams');
my $history_at_copy_end = $source->safe_psql('app', 'SELECT count(*) FROM pgbench_history');

my $notes = $listener->query_safe('SELECT 1');
like($notes, qr/Asynchronous notification "pg_ingest" with payload "\{"name": ?"live", ?"phase": ?"copying"/,
	'a LISTENing session is told of the copying phase');
like($notes, qr/"phase": ?"streaming"/, 'and of streaming');
like($notes, qr/"lsn": ?"[0-9A-F]+\/[0-9A-F]+"/, 'payloads carry an LSN');
$listener->quit;

is($target->safe_psql('live',
		"SELECT slot_name IS NOT NULL AND received_lsn IS NOT NULL AND applied_lsn IS NOT NULL"
		  . " AND source_lsn IS NOT NULL AND lag_bytes >= 0 AND lag_seconds >= 0 AND spool_bytes >= 0"
		  . " FROM ingest.status WHERE name = 'live'"),
	't', 'ingest.status has the stream figures');

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

# --- every kind of change, while pgbench goes on -------------------------
$source->safe_psql('app', q{
	UPDATE toasty SET n = n + 1;                       -- TOASTed big unchanged
	UPDATE toasty SET n = n + 1, big = big || 'x' WHERE id = 1;
	UPDATE keyed SET id = id + 10000 WHERE id <= 10;   -- PK update, cascades to child
	DELETE FROM keyed WHERE id BETWEEN 11 AND 20;      -- cascades to child
	INSERT INTO keyed VALUES (5000, 'new');            -- the trigger writes audit
	UPDATE keyed SET v = 'changed' WHERE id BETWEEN 100 AND 110;
	UPDATE nopk SET b = 'z' WHERE ctid = (SELECT min(ctid) FROM nopk WHERE a = 1);
	DELETE FROM nopk WHERE a = 3;
	INSERT INTO nopk VALUES (4, NULL), (4, NULL);
	DELETE FROM nopk WHERE ctid = (SELECT max(ctid) FROM nopk WHERE a = 4);
	INSERT INTO nums VALUES (2, 'NaN', 'Infinity', '-Infinity'), (3, 7, 'NaN', 8);
	UPDATE nums SET n = '-Infinity' WHERE id = 1;
	BEGIN;
	TRUNCATE trunc_me;
	INSERT INTO trunc_me VALUES (1, 'after');
	COMMIT;
	SELECT count(nextval('ticket')) FROM generate_series(1, 50);
});
ok(wait_applied('live', 'live', 'the changes are applied'), 'the changes are applied');
same_content($source, 'app', $target, 'live', [qw(toasty keyed child audit nopk trunc_me nums)],
	'toasty, keyed, child, audit, nopk, trunc_me and nums match the source while streaming');

# --- the source restarted mid-stream: the receiver reconnects -------------
$pgbench->signal('TERM');
$pgbench->finish;
$source->restart;
$source->safe_psql('app', "INSERT INTO keyed VALUES (6000, 'after restart')");
ok(wait_applied('live', 'live', 'a change made after the source restarted'),
	'the stream resumes by itself after the source restarts');
is($target->safe_psql('live', 'SELECT v FROM keyed WHERE id = 6000'), 'after restart',
	'the change made after the restart is there');

# --- a conflicting row planted on the target -----------------------------
$target->safe_psql('live', "INSERT INTO trunc_me VALUES (7000, 'planted')");
$source->safe_psql('app', "INSERT INTO trunc_me VALUES (7000, 'from source')");
ok(wait_phase($target, 'live', 'live', 'failed'), 'a duplicate key fails the migration');
my $last_error = $target->safe_psql('live', "SELECT last_error FROM ingest.status WHERE name = 'live'");
like($last_error, qr/duplicate key value violates unique constraint "trunc_me_pkey"/, 'last_error says why');
like($last_error, qr/INSERT public\.trunc_me at [0-9A-F]+\/[0-9A-F]+/, 'and which table, at which LSN');
like($last_error, qr/id=7000, v=from source/, 'and which change');
like($target->safe_psql('live',
		"SELECT message FROM ingest.events WHERE name = 'live' AND kind = 'failure' ORDER BY id DESC LIMIT 1"),
	qr/duplicate key.*trunc_me/s, 'the failure is an event');
$target->safe_psql('live', 'DELETE FROM trunc_me WHERE id = 7000');
$target->safe_psql('live', "SELECT ingest.resume('live')");
ok(wait_applied('live', 'live', 'the change after resume'), 'resume goes on from the failed change');
is($target->safe_psql('live', 'SELECT v FROM trunc_me WHERE id = 7000'), 'from source',
	'the change that failed is applied');

# --- stop_at's bad inputs -------------------------------------------------
my ($ret, $out, $err) = $target->psql('live', "SELECT ingest.stop_at('garbage', 'live')");
like($err, qr/invalid input syntax for type pg_lsn/, 'stop_at rejects a garbage LSN');
($ret, $out, $err) = $target->psql('live', "SELECT ingest.stop_at('0/0', 'live')");
like($err, qr{invalid stop LSN 0/0}, 'stop_at rejects the invalid LSN 0/0');
($ret, $out, $err) = $target->psql('live', "SELECT ingest.stop_at('1/0', 'nosuch')");
like($err, qr/no unfinished migration is named "nosuch"/, 'stop_at rejects an unknown name');

# --- cutover ---------------------------------------------------------------
my $cut = $target->safe_psql('live', "SELECT ingest.cutover('live')");
like($cut, qr{^[0-9A-F]+/[0-9A-F]+$}, 'cutover returns the stop LSN');
is($target->safe_psql('live', "SELECT phase FROM ingest.status WHERE name = 'live'"),
	'completed', 'and the migration is completed');
cmp_ok($source->safe_psql('app', 'SELECT count(*) FROM pgbench_history'), '>',
	$history_at_copy_end, 'pgbench wrote after the copy ended');
same_content($source, 'app', $target, 'live', \@tables, 'every table has the same content on both sides');
is($target->safe_psql('live', "SELECT count(*) FROM ingest.verify('live') WHERE status <> 'MATCH'"),
	'0', 'ingest.verify agrees');
my $seq_ok = "SELECT bool_and(t.v >= s.v) FROM (VALUES %s) AS s(name, v) JOIN"
  . " (SELECT c.relname::text AS name, pg_sequence_last_value(c.oid) AS v FROM pg_class c WHERE c.relkind = 'S') t USING (name)";
my $src_seq = $source->safe_psql('app',
	"SELECT string_agg(format('(%L, %s)', c.relname, COALESCE(pg_sequence_last_value(c.oid), 0)), ',')"
	  . " FROM pg_class c WHERE c.relkind = 'S'");
is($target->safe_psql('live', sprintf($seq_ok, $src_seq)), 't', 'every sequence is at least where the source is');
is($source->safe_psql('app', "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pg_ingest%'"),
	'0', 'the slot is dropped at the stop');
ok(!$source->log_contains(qr/terminating walsender process due to replication timeout/),
	'the source never cut the stream for a missed keepalive');

# the password of the connection string shows nowhere pg_ingest writes
password_nowhere($target, 'live', 'the stream was lost and failed on the way');

done_testing();
