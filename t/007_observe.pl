# Observing a live migration, and the source going away under it.
#
# A live migration (full load and CDC) of pgbench's tables and a few more
# while an unthrottled pgbench writes to the source; a procedure on the
# target polls every monitoring view and function (ingest.status,
# ingest.tables, ingest.events, ingest._live(), ingest._stream(),
# ingest._receiver()) continuously, through every phase, and records any
# ERROR: there must be none.  While it streams, the source is stopped:
# ingest.status must say that the source is unreachable (not connected,
# not caught up, the error) and the stream must come back by itself when
# the source is started again.  Then cutover, and every table compared
# with the source by content.

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
my $target = new_target('target',
	'pg_ingest.retry_delay'         => "'200ms'",
	'pg_ingest.caught_up_threshold' => "'5s'");

my $conn = source_connstr($source);
my @tables = (qw(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history
	  toasty nopk_full ticket_log), '"odd cols"');

{
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	my ($out, $err);
	IPC::Run::run([ 'pgbench', '-i', '-q', '-s', '2', source_connstr($source, password => undef) ],
		'>', \$out, '2>', \$err)
	  or die "pgbench -i failed: $err";
}
$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE toasty (id int PRIMARY KEY, n int, big text);
	INSERT INTO toasty SELECT g, 0, repeat(md5(g::text), 400) FROM generate_series(1, 200) g;
	CREATE TABLE nopk_full (a int, b text);
	ALTER TABLE nopk_full REPLICA IDENTITY FULL;
	ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
	INSERT INTO nopk_full SELECT g % 50, 'x' FROM generate_series(1, 1000) g;
	CREATE SEQUENCE ticket;
	CREATE TABLE ticket_log (id bigint PRIMARY KEY DEFAULT nextval('ticket'), at timestamptz DEFAULT now());
	INSERT INTO ticket_log SELECT FROM generate_series(1, 100);
	CREATE TABLE "odd cols" ("the id" int PRIMARY KEY, "Value" text, "a""quote" int);
	INSERT INTO "odd cols" SELECT g, 'v' || g, g FROM generate_series(1, 20) g;
});

# --- the poller: every monitoring view and function, all the time -------
$target->safe_psql('postgres', q{
	CREATE TABLE poll_seen (phase text PRIMARY KEY);
	CREATE TABLE poll_errors (at timestamptz, message text);
	CREATE TABLE poll_stop (stop bool);
	CREATE TABLE poll_count (n bigint);
	INSERT INTO poll_count VALUES (0);
	CREATE PROCEDURE poll() LANGUAGE plpgsql AS $$
	DECLARE
		ph text;
	BEGIN
		LOOP
			BEGIN
				PERFORM * FROM ingest.status;
				PERFORM * FROM ingest.tables;
				PERFORM * FROM ingest.events ORDER BY id DESC LIMIT 20;
				PERFORM * FROM ingest._live();
				PERFORM * FROM ingest._stream();
				PERFORM * FROM ingest._receiver();
				PERFORM ingest.version();
				FOR ph IN SELECT phase FROM ingest.status WHERE name = 'obs' LOOP
					INSERT INTO poll_seen VALUES (ph) ON CONFLICT DO NOTHING;
				END LOOP;
				UPDATE poll_count SET n = n + 1;
			EXCEPTION WHEN OTHERS THEN
				INSERT INTO poll_errors VALUES (clock_timestamp(), SQLERRM);
			END;
			COMMIT;
			EXIT WHEN EXISTS (SELECT 1 FROM poll_stop);
			PERFORM pg_sleep(0.02);
		END LOOP;
	END
	$$;
});
my $poll_out = '';
my $poller = IPC::Run::start(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $target->connstr('postgres'), '-c', 'CALL poll()' ],
	'>&', \$poll_out);
$target->poll_query_until('postgres', 'SELECT n > 0 FROM poll_count')
  or die "the poller does not poll: $poll_out";

# --- unthrottled pgbench on the source, bounded in time -----------------
my $pgbench_out = '';
my $pgbench = do
{
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-T', '15', source_connstr($source, password => undef) ],
		'>&', \$pgbench_out);
};
$source->poll_query_until('app', 'SELECT count(*) > 20 FROM pgbench_history')
  or die 'pgbench does not write';

$target->safe_psql('postgres',
	"SELECT ingest.start('$conn', name => 'obs', table_jobs => 2, index_jobs => 2)");
ok(wait_phase($target, 'postgres', 'obs', 'streaming'), 'the migration copies, catches up and streams under load');
$source->safe_psql('app', q{
	UPDATE toasty SET n = n + 1;
	UPDATE nopk_full SET b = 'y' WHERE a < 10;
	DELETE FROM nopk_full WHERE a = 20;
	INSERT INTO ticket_log SELECT FROM generate_series(1, 50);
});
$pgbench->finish;
like($pgbench_out, qr/number of transactions actually processed: [1-9]/, 'pgbench wrote');

# --- the source goes away while the migration streams --------------------
ok( poll_until($target, 'postgres',
		"SELECT source_connected AND caught_up FROM ingest.status WHERE name = 'obs'",
		't', 'the stream to be connected and caught up'),
	'connected and caught up before the outage');
my $log_offset = -s $target->logfile;
$source->stop('fast');
ok( poll_until($target, 'postgres',
		"SELECT format('%s %s %s %s', source_connected, caught_up, last_error IS NOT NULL, lag_seconds > 0)"
		  . " FROM ingest.status WHERE name = 'obs'",
		'f f t t', 'the status to show the source unreachable'),
	'while the source is down: not connected, not caught up, an error, a lag');
my $down = $target->safe_psql('postgres',
	"SELECT format('%s|%s|%s', phase, last_error, source_last_contact IS NOT NULL) FROM ingest.status WHERE name = 'obs'");
like($down, qr/^streaming\|.*(connect|connection|terminat|ended the replication stream).*\|t$/s,
	'the phase stays streaming, last_error says why, the last contact is known');
unlike($down, qr/S3cret-Pass/, 'the error holds no password');
ok( poll_until($target, 'postgres',
		"SELECT count(*) > 1 FROM ingest.events WHERE name = 'obs' AND kind = 'stream' AND level = 'WARNING'"
		  . " AND message LIKE 'replication stream lost%'",
		't', 'a second WARNING event of the outage'),
	'every failed attempt is a WARNING event');
ok($target->wait_for_log(qr/WARNING:  pg_ingest receiver of migration "obs": /, $log_offset),
	'and a WARNING in the server log');
$source->start;
ok( poll_until($target, 'postgres',
		"SELECT format('%s %s', source_connected, last_error IS NULL) FROM ingest.status WHERE name = 'obs'",
		't t', 'the stream to come back'),
	'the stream comes back by itself once the source is up: connected, no error');
$source->safe_psql('app', "INSERT INTO ticket_log (id) VALUES (-1)");
my $after = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
ok( poll_until($target, 'postgres',
		"SELECT applied_lsn >= '$after' AND caught_up FROM ingest.status WHERE name = 'obs'",
		't', 'a change made after the outage to be applied'),
	'changes made after the outage are applied and it is caught up again')
  or diag($target->safe_psql('postgres', "SELECT row_to_json(s) FROM ingest.status s WHERE name = 'obs'")
	  . "\n" . $target->safe_psql('postgres', "SELECT row_to_json(s) FROM ingest._stream() s"));

# --- what start recorded as not carried is said again at the completion ----
$target->safe_psql('postgres', q{
	INSERT INTO ingest.events (migration_id, name, phase, level, kind, object, message)
	SELECT id, name, 'starting', 'WARNING', 'not carried', 'public.unlogged_t',
		'unlogged table: its changes are not carried'
	FROM ingest.migration WHERE name = 'obs' AND finished_at IS NULL
});

# --- cutover -------------------------------------------------------------
my $cut = $target->safe_psql('postgres', "SELECT ingest.cutover('obs')");
like($cut, qr{^[0-9A-F]+/[0-9A-F]+$}, 'cutover returns the stop LSN');
is($target->safe_psql('postgres', "SELECT phase FROM ingest.status WHERE name = 'obs'"),
	'completed', 'the migration is completed');
same_content($source, 'app', $target, 'postgres', \@tables,
	'every table has the same content on both sides');
is($target->safe_psql('postgres',
		"SELECT string_agg(format('%s %s %s', level, object, message), E'\\n') FROM ingest.events"
		  . " WHERE name = 'obs' AND kind = 'not carried' AND phase = 'completed'"),
	'WARNING public.unlogged_t completed without it: unlogged table: its changes are not carried',
	'the completion repeats the WARNING of each object not carried');
like($target->safe_psql('postgres',
		"SELECT message FROM ingest.events WHERE name = 'obs' AND kind = 'summary'"),
	qr/; 1 objects not carried/, 'and the summary counts them');

# --- what the poller saw ---------------------------------------------------
$target->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM poll_seen WHERE phase = 'completed'")
  or diag('the poller never saw the completed phase');
$target->safe_psql('postgres', 'INSERT INTO poll_stop VALUES (true)');

ok($poller->finish, "the poller ended cleanly") or diag($poll_out);
my $seen = $target->safe_psql('postgres', 'SELECT string_agg(phase, \',\' ORDER BY phase) FROM poll_seen');
note("phases seen by the poller: $seen; polls: "
	  . $target->safe_psql('postgres', 'SELECT n FROM poll_count'));
for my $phase (qw(copying streaming completed))
{
	like(",$seen,", qr/,$phase,/, "the poller polled during phase $phase");
}
is($target->safe_psql('postgres',
		"SELECT string_agg(DISTINCT message, E'\\n') FROM poll_errors"),
	'', 'no monitoring view or function raised an ERROR in any phase');

# --- ingest.verify: one snapshot, and column names quoted on this side -----
# The source fails to read one table (its query is cancelled while it
# waits for a lock); a row committed meanwhile in a later table must not
# be seen: every table is read in the snapshot verify started with.
is($target->safe_psql('postgres', "SELECT count(*) FROM ingest.verify('obs') WHERE status <> 'MATCH'"),
	'0', 'ingest.verify matches every table, odd column names included');
my $locker = $source->background_psql('app');
$locker->query_safe('BEGIN; LOCK TABLE pgbench_branches IN ACCESS EXCLUSIVE MODE');
my $verify_out = '';
my $verify = IPC::Run::start(
	[ 'psql', '-X', '-At', '-d', $target->connstr('postgres'), '-c',
		"SELECT table_name || ' ' || status FROM ingest.verify('obs', 'count') ORDER BY 1" ],
	'>&', \$verify_out);
my $verify_waits = "SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_ingest obs verify'"
  . " AND wait_event_type = 'Lock'";
ok(poll_until($source, 'app', "SELECT count(*) FROM ($verify_waits) w", '1', 'verify to wait for the lock'),
	'verify waits for the locked table');
$source->safe_psql('app', "INSERT INTO toasty VALUES (100000, 0, 'after verify began')");
$source->safe_psql('app', "SELECT pg_cancel_backend(pid) FROM ($verify_waits) w");
$verify->finish;
$locker->query_safe('ROLLBACK');
$locker->quit;
like($verify_out, qr/^public\.pgbench_branches MISMATCH$/m, 'the table the source failed to read is a MISMATCH');
like($verify_out, qr/^public\.toasty MATCH$/m,
	'the tables after it are read in the same snapshot: the later row is not seen');
$source->safe_psql('app', 'DELETE FROM toasty WHERE id = 100000');

# A source whose quote_ident() does not quote: the column list is quoted here.
my ($qret, $qout, $qerr) = $source->psql('app',
	q{CREATE OR REPLACE FUNCTION pg_catalog.quote_ident(text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1'});
SKIP:
{
	skip "cannot replace quote_ident on the source: $qerr", 1 if $qret != 0;
	is($target->safe_psql('postgres',
			"SELECT status FROM ingest.verify('obs') WHERE table_name = 'public.\"odd cols\"'"),
		'MATCH', 'a source that does not quote names cannot change the SQL verify runs here');
	$source->safe_psql('app',
		q{CREATE OR REPLACE FUNCTION pg_catalog.quote_ident(text) RETURNS text LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE AS 'quote_ident'});
}

# --- changes wal2json leaves out never vanish ------------------------------
# A table with a key at the start loses its replica identity afterwards:
# wal2json then drops its UPDATEs and DELETEs with only a WARNING notice.
$source->safe_psql('app', q{
	CREATE TABLE ident_t (id int PRIMARY KEY, v text);
	INSERT INTO ident_t SELECT g, 'a' FROM generate_series(1, 10) g;
});
$target->safe_psql('postgres', q{
	CREATE TABLE ident_t (id int PRIMARY KEY, v text);
	INSERT INTO ident_t SELECT g, 'a' FROM generate_series(1, 10) g;
});
$log_offset = -s $target->logfile;
$target->safe_psql('postgres',
	"SELECT ingest.start('$conn', name => 'untracked', mode => 'cdc', schema => 'existing')");
ok(wait_phase($target, 'postgres', 'untracked', 'streaming'), 'a cdc migration streams');
$source->safe_psql('app', q{
	ALTER TABLE ident_t REPLICA IDENTITY NOTHING;
	UPDATE ident_t SET v = 'b' WHERE id = 1;
});
ok(wait_phase($target, 'postgres', 'untracked', 'failed'),
	'an UPDATE wal2json cannot identify fails the migration');
like($target->safe_psql('postgres', "SELECT last_error FROM ingest.status WHERE name = 'untracked'"),
	qr/an UPDATE on table "public"\."ident_t" cannot be carried/, 'last_error names the table');
$target->safe_psql('postgres', "SELECT ingest.abort('untracked')");

$target->safe_psql('postgres',
	"SELECT ingest.start('$conn', name => 'copyonly', mode => 'cdc', schema => 'existing', untracked_tables => 'copy_only')");
ok(wait_phase($target, 'postgres', 'copyonly', 'streaming'), 'a cdc migration with untracked_tables copy_only streams');
$source->safe_psql('app', q{
	UPDATE ident_t SET v = 'c' WHERE id = 2;
	DELETE FROM ident_t WHERE id = 3;
	INSERT INTO ticket_log (id) VALUES (-2);
});
my $mark = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
ok( poll_until($target, 'postgres',
		"SELECT applied_lsn >= '$mark' FROM ingest.status WHERE name = 'copyonly'",
		't', 'the changes after the untracked ones to be applied'),
	'with copy_only the migration goes on');
is($target->safe_psql('postgres',
		"SELECT string_agg(format('%s %s', level, object), ',') FROM ingest.events"
		  . " WHERE name = 'copyonly' AND kind = 'untracked'"),
	'WARNING "public"."ident_t"', 'and records one WARNING event for the table');
is($target->safe_psql('postgres', "SELECT phase FROM ingest.status WHERE name = 'copyonly'"),
	'streaming', 'still streaming');
$target->safe_psql('postgres', "SELECT ingest.abort('copyonly')");
# ident_t has its key as identity again for the migrations below
$source->safe_psql('app', 'ALTER TABLE ident_t REPLICA IDENTITY DEFAULT');
ok(!$target->log_contains(qr/^WARNING:  no tuple identifier/m, $log_offset),
	'wal2json\'s raw WARNING is not in the target\'s log');

# --- a stream that cannot come back fails the migration, with the reason --
$target->safe_psql('postgres',
	"SELECT ingest.start('$conn', name => 'gone', mode => 'cdc', schema => 'existing')");
ok(wait_phase($target, 'postgres', 'gone', 'streaming'), 'a cdc migration streams');
# the receiver reconnects at once: terminate its walsender until the slot can go
$source->safe_psql('app', q{
	DO $$
	BEGIN
		FOR i IN 1 .. 200 LOOP
			BEGIN
				PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots
				  WHERE slot_name LIKE 'pg_ingest%' AND active;
				PERFORM pg_drop_replication_slot(slot_name) FROM pg_replication_slots
				  WHERE slot_name LIKE 'pg_ingest%';
				EXIT;
			EXCEPTION WHEN object_in_use THEN
				PERFORM pg_sleep(0.01);
			END;
		END LOOP;
	END
	$$;
});
ok(wait_phase($target, 'postgres', 'gone', 'failed'), 'its slot dropped on the source, the migration fails');
like($target->safe_psql('postgres', "SELECT last_error FROM ingest.status WHERE name = 'gone'"),
	qr/replication slot "pg_ingest_[^"]*" does not exist/, 'last_error names the missing slot');
$target->safe_psql('postgres', "SELECT ingest.abort('gone')");

$target->append_conf('postgresql.conf', "pg_ingest.stream_failure_timeout = '2s'\n");
$target->reload;
$target->safe_psql('postgres',
	"SELECT ingest.start('$conn', name => 'outlast', mode => 'cdc', schema => 'existing')");
ok(wait_phase($target, 'postgres', 'outlast', 'streaming'), 'another cdc migration streams');
$source->stop('fast');
ok(wait_phase($target, 'postgres', 'outlast', 'failed'),
	'a source down for longer than pg_ingest.stream_failure_timeout fails the migration');
like($target->safe_psql('postgres', "SELECT last_error FROM ingest.status WHERE name = 'outlast'"),
	qr/the replication stream has failed for \d+ s \(\d+ attempts; pg_ingest.stream_failure_timeout is 2 s\)/,
	'last_error says for how long and why');
$source->start;
$target->safe_psql('postgres', "SELECT ingest.abort('outlast')");
is($source->safe_psql('app', "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pg_ingest%'"),
	'0', 'no slot left on the source');

done_testing();
