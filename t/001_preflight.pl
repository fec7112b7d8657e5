# ingest.preflight across servers: a correctly configured source passes
# every check, a misconfigured one fails where it should, a source that
# never answers or dies in the middle of the checks gives FAIL rows and no
# error, and the password never shows.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IngestTest;

my $secret = 'S3cret-Pass';

my $target = new_target('target');
$target->safe_psql('postgres',
	"CREATE ROLE operator LOGIN IN ROLE ingest_admin");

# Rows of ingest.preflight as "check|status" lines, and all columns.
sub preflight
{
	my ($connstr, %opt) = @_;
	my $role = $opt{role} ? "SET ROLE $opt{role}; " : '';
	my $set = $opt{set} ? "$opt{set}; " : '';
	my $q = $connstr;
	$q =~ s/'/''/g;
	return $target->safe_psql('postgres',
		"${role}${set}SELECT check_name, status, detail, hint FROM ingest.preflight('$q')"
	);
}

sub statuses
{
	my ($out) = @_;
	return join("\n", map { join('|', (split /\|/, $_)[0, 1]) } split /\n/, $out);
}

# --- A correctly configured PG 15 source with wal2json -------------------
my $good = new_source('good_source', conf => { wal_sender_timeout => '60s' });
$good->safe_psql('app',
	    "SET ROLE migrator;"
	  . " CREATE TABLE accounts (id int PRIMARY KEY, balance numeric);"
	  . " CREATE TABLE events (id bigserial PRIMARY KEY, payload jsonb);"
	  . " CREATE TABLE audit (at timestamptz, what text);"
	  . " ALTER TABLE audit REPLICA IDENTITY FULL;");

my $out = preflight(source_connstr($good));
is( statuses($out), join("\n",
		'source_connection|PASS',       'source_version|PASS',
		'wal_level|PASS',               'replication_privilege|PASS',
		'replication_slots|PASS',       'wal_senders|PASS',
		'wal_sender_timeout|PASS',      'wal2json|PASS',
		'select_privileges|PASS',       'replica_identity|PASS',
		'unlogged_tables|PASS',         'large_objects|PASS',
		'extension_config_rows|PASS',
		'prepared_transactions|PASS',   'leftover_slots|PASS',
		'target_worker_processes|PASS', 'target_extensions|PASS',
		'target_name_conflicts|PASS'),
	'a correctly configured source passes every check');
like($out, qr/^replication_privilege\|PASS\|user "migrator" has REPLICATION/m,
	'the REPLICATION attribute is what passes');
unlike($out, qr/\Q$secret\E/, 'the password appears nowhere in the rows');

# A non-superuser operator may use the source's password, which the source
# really asks for over TCP.
$out = preflight(source_connstr($good), role => 'operator');
like($out, qr/^source_connection\|PASS/m,
	'an operator connects with a password the source asked for');
$out = preflight(source_connstr($good, host => $good->host, port => $good->port),
	role => 'operator');
like($out, qr/^source_connection\|FAIL\|password is required/m,
	'an operator may not connect where the source trusts the server');

# A wrong password: one FAIL row, the wrong password not repeated.
$out = preflight(source_connstr($good, password => 'Wr0ng-Guess'));
is(scalar(split /\n/, $out), 1, 'a refused login gives a single row');
like($out, qr/^source_connection\|FAIL\|.*password authentication failed/m,
	'a refused login says why');
unlike($out, qr/Wr0ng-Guess/, 'the wrong password is not shown either');

# The same with a URI.
$out = preflight(sprintf('postgresql://migrator:%s@127.0.0.1:%d/app', $secret, $good->port));
like($out, qr/^wal2json\|PASS/m, 'a postgresql:// URI works as well');
unlike($out, qr/\Q$secret\E/, 'and its password does not show');

# The checks leave nothing behind on the source.
is($good->safe_psql('app', 'SELECT count(*) FROM pg_replication_slots'),
	'0', 'no slot is left on the source');
ok( poll_until($good, 'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pg_ingest%'",
		'0', 'the checks to disconnect'),
	'no session is left on the source');

# --- A source set up the wrong way ---------------------------------------
my $bad = new_source('bad_source', logical => 0,
	conf => { wal_sender_timeout => '5s', max_replication_slots => 1 });
$bad->safe_psql('postgres',
	"SELECT pg_create_physical_replication_slot('someone_elses')");
$bad->safe_psql('postgres', 'ALTER ROLE migrator NOREPLICATION');
$bad->safe_psql('app', 'CREATE TABLE public.no_key (v text)');
$target->safe_psql('postgres', 'CREATE TABLE public.no_key (v text)');
$out = preflight(source_connstr($bad));
is( statuses($out), join("\n",
		'source_connection|PASS',       'source_version|PASS',
		'wal_level|FAIL',               'replication_privilege|FAIL',
		'replication_slots|FAIL',       'wal_senders|PASS',
		'wal_sender_timeout|WARN',      'wal2json|FAIL',
		'select_privileges|FAIL',       'replica_identity|WARN',
		'unlogged_tables|PASS',         'large_objects|PASS',
		'extension_config_rows|PASS',
		'prepared_transactions|PASS',   'leftover_slots|PASS',
		'target_worker_processes|PASS', 'target_extensions|PASS',
		'target_name_conflicts|WARN'),
	'a misconfigured source fails where it should');
like($out, qr/^wal_level\|FAIL\|wal_level = replica;.*\|Set wal_level = logical/m,
	'wal_level = replica is named, with the fix');
like($out, qr/^replica_identity\|WARN\|.*public\.no_key\|ALTER TABLE public\.no_key REPLICA IDENTITY FULL/m,
	'a table without a key is listed with the ALTER TABLE that fixes it');
like($out, qr/^target_name_conflicts\|WARN\|.*public\.no_key/m,
	'a table that exists on the target is listed');

# A target without room for the workers.
my $small = new_target('small_target', max_worker_processes => 4);
$out = $small->safe_psql('postgres',
	sprintf("SELECT status, detail FROM ingest.preflight('%s') WHERE check_name = 'target_worker_processes'",
		source_connstr($good)));
like($out, qr/^FAIL\|max_worker_processes = 4 /, 'too few worker processes on the target fail');
$small->stop;

# --- A source that never answers ------------------------------------------
# The kernel completes the TCP handshake for the listen backlog, so libpq
# connects and then waits for an answer that never comes.
my $silent = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => 0,
	Listen    => 5,
	Proto     => 'tcp') or die "cannot listen: $!";
my $start = time;
$out = preflight(
	sprintf('host=127.0.0.1 port=%d user=x dbname=x password=%s connect_timeout=600',
		$silent->sockport, $secret),
	set => 'SET pg_ingest.connect_timeout = 2');
my $elapsed = time - $start;
like($out, qr/^source_connection\|FAIL\|timeout expired after 2 s/,
	'a silent source fails with a timeout');
is(scalar(split /\n/, $out), 1, 'as a single row');
cmp_ok($elapsed, '<', 15, 'pg_ingest.connect_timeout bounds the wait, whatever the string says');
close $silent;

# --- The source dies in the middle of the checks --------------------------
# A prepared transaction keeps the test slot's creation waiting; the source
# is stopped while it waits.
$good->append_conf('postgresql.conf', 'max_prepared_transactions = 2');
$good->restart;
$good->safe_psql('app',
	"BEGIN; INSERT INTO accounts VALUES (1, 1); PREPARE TRANSACTION 'hold'");
my ($stdout, $stderr) = ('', '');
my $conn = source_connstr($good);
my $h = IPC::Run::start(
	[   'psql', '-XAtq', '-d', $target->connstr('postgres'), '-c',
		"SET pg_ingest.preflight_timeout = 600; SELECT check_name, status, detail FROM ingest.preflight('$conn')"
	],
	'>', \$stdout, '2>', \$stderr);
ok( poll_until($good, 'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'"
		  . " AND query LIKE 'CREATE_REPLICATION_SLOT%'",
		'1', 'the test slot to wait'),
	'the check waits in the slot creation');
$good->stop('immediate');
$h->finish;
is($?, 0, 'preflight returns normally when the source dies');
like($stdout, qr/^wal2json\|FAIL\|could not create a logical slot/m,
	'the check in progress fails');
like($stdout, qr/^select_privileges\|FAIL\|(not checked: )?connection to the source was lost/m,
	'the checks after it fail as not checked');
is($stderr, '', 'no error');
is($target->safe_psql('postgres', 'SELECT 1'), '1', 'the target is fine');

# --- Nothing shows the password --------------------------------------------
for my $node ($target, $bad)
{
	my $log = slurp_file($node->logfile);
	unlike($log, qr/\Q$secret\E/, $node->name . "'s log does not contain the password");
}
$good->start;
$good->safe_psql('app', "ROLLBACK PREPARED 'hold'");
unlike(slurp_file($good->logfile), qr/\Q$secret\E/,
	"the source's log does not contain the password");

done_testing();
