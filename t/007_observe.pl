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
my @tables = qw(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history
  toasty nopk_full ticket_log);

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
	INSERT INTO nopk_full SELECT g % 50, 'x' FROM generate_series(1, 1000) g;
	CREATE SEQUENCE ticket;
	CREATE TABLE ticket_log (id bigint PRIMARY KEY DEFAULT nextval('ticket'), at timestamptz DEFAULT now());
	INSERT INTO ticket_log SELECT FROM generate_series(1, 100);
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

# --- cutover -------------------------------------------------------------
my $cut = $target->safe_psql('postgres', "SELECT ingest.cutover('obs')");
like($cut, qr{^[0-9A-F]+/[0-9A-F]+$}, 'cutover returns the stop LSN');
is($target->safe_psql('postgres', "SELECT phase FROM ingest.status WHERE name = 'obs'"),
	'completed', 'the migration is completed');
same_content($source, 'app', $target, 'postgres', \@tables,
	'every table has the same content on both sides');

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

done_testing();
