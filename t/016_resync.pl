# resync => 'at_cutover': tables whose changes logical decoding cannot
# carry (no key and no replica identity, unlogged) are copied in the full
# load, their changes are skipped while streaming (the UPDATEs and DELETEs
# wal2json leaves out fail nothing), and they are copied again, all in one
# source snapshot, at the stop.  Under concurrent writes to a no-key table,
# an unlogged table (referenced by a foreign key of another unlogged one),
# the no-key leaves of a partitioned table and a normal table:
# - after ingest.cutover() every table is identical by content hash, and
#   the target's unlogged tables are unlogged;
# - the owner having lost INSERT on one of them, the stop fails the
#   migration, naming the table;
# - a coordinator killed in the middle of the resync (held on a lock)
#   resumes, and the tables end identical;
# - no-key leaves of a source partitioned table whose rows go to one plain
#   table here (schema 'existing') are refused, naming them: emptying that
#   table would lose the other leaves' rows.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IngestTest;

my $source = new_source('source');
my $target = new_target('target',
	restart_after_crash     => 'on',
	'pg_ingest.max_retries' => 1,
	'pg_ingest.retry_delay' => "'200ms'");
my $conn = source_connstr($source);
my @resync = qw(nokey ulog ulog_child parted_1 parted_2);
my @tables = (@resync, 'normal');

$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE normal (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
	CREATE TABLE nokey (a int, b text);
	CREATE UNLOGGED TABLE ulog (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
	CREATE UNLOGGED TABLE ulog_child (id int PRIMARY KEY, parent int REFERENCES ulog);
	CREATE TABLE parted (k int, v text) PARTITION BY RANGE (k);
	CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (500);
	CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (500) TO (100000);
	INSERT INTO normal (id) SELECT g FROM generate_series(1, 1000) g;
	INSERT INTO nokey SELECT g % 500, md5(g::text) FROM generate_series(1, 2000) g;
	INSERT INTO ulog (id) SELECT g FROM generate_series(1, 1000) g;
	INSERT INTO ulog_child SELECT g, g FROM generate_series(1, 500) g;
	INSERT INTO parted SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
});

# pgbench-style writes to every kind of table, from before the start on
my $script = PostgreSQL::Test::Utils::tempdir() . '/writes.sql';
open my $fh, '>', $script or die $!;
print $fh q{\set id random(1, 1000)
BEGIN;
UPDATE normal SET v = v + 1 WHERE id = :id;
UPDATE nokey SET b = md5(b) WHERE a = :id % 500;
INSERT INTO nokey VALUES (:id, 'new');
DELETE FROM nokey WHERE a = (:id + 7) % 500 AND b = 'new';
UPDATE ulog SET v = v + 1 WHERE id = :id;
INSERT INTO ulog_child VALUES (:id + 100000 * (1 + :client_id), :id) ON CONFLICT DO NOTHING;
UPDATE parted SET v = md5(v) WHERE k = :id;
INSERT INTO parted VALUES (:id, 'new');
END;
};
close $fh;
my $bench_out = '';
my $bench = do
{
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	IPC::Run::start(
		[ 'pgbench', '-n', '-c', '2', '-R', '50', '-T', '600', '-f', $script,
		  source_connstr($source, password => undef) ],
		'>&', \$bench_out);
};
$source->poll_query_until('app', "SELECT count(*) > 10 FROM nokey WHERE b = 'new'")
  or die "the writes do not run: $bench_out";

# --- three migrations of the same source --------------------------------
# live: full load and CDC; crash: the same, killed during its resync;
# fail: the same, its owner not a superuser
for my $db (qw(live crash fail))
{
	create_db($target, $db);
	$target->safe_psql($db, 'CREATE EXTENSION pg_ingest');
}
$target->safe_psql('fail', q{
	CREATE ROLE mig LOGIN IN ROLE ingest_admin;
	GRANT CREATE ON SCHEMA public TO mig;
});

my ($ret, $out, $err) = $target->psql('live',
	"SELECT ingest.start('$conn', name => 'live', resync => 'at_cutover', table_jobs => 2)");
is($ret, 0, 'resync => at_cutover starts with a no-key table and unlogged ones') or diag($err);
$target->safe_psql('crash',
	"SELECT ingest.start('$conn', name => 'crash', resync => 'at_cutover')");
($ret, $out, $err) = $target->psql('fail',
	"SELECT ingest.start('$conn', name => 'fail', resync => 'at_cutover')",
	extra_params => [ '-U', 'mig' ]);
is($ret, 0, 'a migration of a role that is not a superuser starts') or diag($err);

ok(wait_phase($target, 'live', 'live', 'streaming'), 'live streams');
ok(wait_phase($target, 'crash', 'crash', 'streaming'), 'crash streams');
ok(wait_phase($target, 'fail', 'fail', 'streaming'), 'fail streams');

is($target->safe_psql('live',
		"SELECT string_agg(relname || ':' || relpersistence::text, ',' ORDER BY relname) FROM pg_class"
		  . " WHERE relname IN ('ulog', 'ulog_child', 'nokey', 'normal') AND relkind = 'r'"),
	'nokey:p,normal:p,ulog:u,ulog_child:u',
	'the unlogged tables are unlogged on the target');
is($target->safe_psql('live',
		"SELECT string_agg(relname || ':' || reason, ',' ORDER BY relname) FROM ingest.resync_table"),
	'nokey:no identity,parted_1:no identity,parted_2:no identity,ulog:unlogged,ulog_child:unlogged',
	'the tables to copy again are recorded');

# --- while streaming: their changes are skipped, nothing fails ----------
my $lsn = $source->safe_psql('app', q{
	UPDATE nokey SET b = md5(b) WHERE a = 1;
	DELETE FROM nokey WHERE a = 2;
	INSERT INTO nokey VALUES (-1, 'while streaming');
	TRUNCATE parted_1;
	SELECT pg_current_wal_lsn();
});
for my $db (qw(live crash fail))
{
	ok( poll_until($target, $db,
			"SELECT applied_lsn >= '$lsn' FROM ingest.status WHERE name = '$db'",
			't', "$db to apply past the no-key UPDATE and DELETE"),
		"$db applies past an UPDATE and a DELETE wal2json leaves out");
}
is($target->safe_psql('live', "SELECT phase FROM ingest.status WHERE name = 'live'"),
	'streaming', 'the left-out changes of a resync table fail nothing');
is($target->safe_psql('live', "SELECT count(*) FROM nokey WHERE b = 'while streaming'"),
	'0', 'an INSERT into a resync table is not applied');
cmp_ok($target->safe_psql('live', 'SELECT count(*) FROM parted_1'), '>', 0,
	'nor a TRUNCATE of one');

# --- a table made without a key while streaming joins the resync --------
$lsn = $source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE born (v text, n int);
	INSERT INTO born SELECT 'v' || i, i FROM generate_series(1, 20) i;
	SELECT pg_current_wal_lsn();
});
for my $db (qw(live crash))
{
	ok( poll_until($target, $db,
			"SELECT applied_lsn >= '$lsn' FROM ingest.status WHERE name = '$db'",
			't', "$db to apply the new table"),
		"$db has the table created while streaming");
}
$lsn = $source->safe_psql('app', q{
	SET ROLE migrator;
	UPDATE born SET n = -n WHERE n <= 5;
	DELETE FROM born WHERE n > 15;
	SELECT pg_current_wal_lsn();
});
for my $db (qw(live crash))
{
	ok( poll_until($target, $db,
			"SELECT applied_lsn >= '$lsn' FROM ingest.status WHERE name = '$db'",
			't', "$db to apply past the new table's UPDATE and DELETE"),
		"$db goes past the left-out changes of a table made without a key while streaming");
}
is($target->safe_psql('live',
		"SELECT reason FROM ingest.resync_table WHERE relname = 'born'"),
	'no identity (seen while streaming)', 'that table joins the resync');
push @tables, 'born';
push @resync, 'born';

# --- the writes end; cutover: identical --------------------------------
$bench->kill_kill;
$bench->finish;
my $t0 = time;
($ret, $out, $err) = $target->psql('live', "SELECT ingest.cutover('live')");
my $cutover = time - $t0;
is($ret, 0, 'cutover completes') or diag($err);
note(sprintf('cutover of live with %d resync tables: %.2f s', scalar(@resync), $cutover));
my $src_hashes = table_hashes($source, 'app', \@tables);
same_content($source, 'app', $target, 'live', \@tables,
	'after cutover every table is identical, resynced or not', $src_hashes);
like( $target->safe_psql('live',
		"SELECT message FROM ingest.events WHERE name = 'live' AND kind = 'resync'"
		  . " AND message LIKE 'copied%'"),
	qr/^copied 6 table\(s\) again at the stop, in one snapshot of the source: \d+ rows, .* in [\d.]+ s$/,
	'an event counts the tables, rows and time of the resync');

# --- the owner lost INSERT on one of them: the stop fails, naming it ----
$target->safe_psql('fail', 'REVOKE INSERT ON nokey FROM mig');
($ret, $out, $err) = $target->psql('fail', "SELECT ingest.cutover('fail')");
isnt($ret, 0, 'the cutover of a migration that cannot copy a table again fails');
like($err, qr/nokey/, 'its error names the table');
ok(wait_phase($target, 'fail', 'fail', 'failed'), 'the migration has failed');
like( $target->safe_psql('fail', "SELECT last_error FROM ingest.migration WHERE name = 'fail'"),
	qr/permission denied for table public\.nokey: role "mig" lacks privilege INSERT/,
	'last_error names the table and the privilege');

# --- a coordinator killed during the resync resumes ---------------------
# a lock here holds the resync on ulog, after nokey and parted_* are
# emptied and copied again in its transaction
my $holder = $target->background_psql('crash');
$holder->query_safe('BEGIN; LOCK TABLE ulog IN ACCESS SHARE MODE');
$lsn = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
$target->safe_psql('crash', "SELECT ingest.stop_at('$lsn', 'crash')");
ok( poll_until($target, 'crash',
		"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
		  . " WHERE a.backend_type = 'pg_ingest coordinator' AND NOT l.granted"
		  . " AND l.relation = 'ulog'::regclass",
		'1', 'the coordinator to wait for ulog in its resync'),
	'the coordinator is in the middle of the resync');
is($target->safe_psql('crash',
		"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
		  . " WHERE a.backend_type = 'pg_ingest coordinator' AND l.granted"
		  . " AND l.mode = 'AccessExclusiveLock' AND l.relation = 'nokey'::regclass"),
	'1', 'having emptied nokey already');
my $coordinator = worker_pid($target, 'crash', 'coordinator', 10);
my $log_offset = -s $target->logfile;
kill 'KILL', $coordinator;
$target->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
eval { $holder->quit };
ok(wait_phase($target, 'crash', 'crash', 'completed'),
	'after the crash the migration resumes its stop and completes');
same_content($source, 'app', $target, 'crash', \@tables,
	'the resync done again leaves every table identical', $src_hashes);
is($target->safe_psql('crash',
		"SELECT count(*) FROM ingest.events WHERE name = 'crash' AND kind = 'resync' AND message LIKE 'copied%'"),
	'1', 'the resync committed once');

# --- leaves sharing one target table: refused --------------------------
create_db($target, 'mapped');
$target->safe_psql('mapped', q{
	CREATE EXTENSION pg_ingest;
	CREATE TABLE parted (k int, v text);
});
$target->safe_psql('mapped',
	"SELECT ingest.start('$conn', name => 'mapped', schema => 'existing', resync => 'at_cutover',"
	  . " include_tables => '{public.parted_1, public.parted_2}')");
ok(wait_phase($target, 'mapped', 'mapped', 'failed'),
	'resync of leaves that share a target table fails the migration');
like( $target->safe_psql('mapped', "SELECT last_error FROM ingest.migration WHERE name = 'mapped'"),
	qr/table public\.parted_1 cannot be copied again at the stop: its rows go to table public\.parted with those of other partitions/,
	'naming the leaf and the table');
is($target->safe_psql('mapped', 'SELECT count(*) FROM parted'), '0', 'nothing is copied');

done_testing();
