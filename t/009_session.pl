# Sessions that meet on the target's catalog.
#
# - A failure being recorded while a stop request arrives: the stop must
#   not turn the failed migration into stopping (phases change only from an
#   expected phase).
# - A failed apply sends one "failed" notification, not two.
# - An error inside a catalog call (lock_timeout) must not leave the
#   session's later calls without the switch to the catalog's owner.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $source = new_source('source');
my $target = new_target('target', 'pg_ingest.retry_delay' => "'200ms'");
my $conn = source_connstr($source);

$source->safe_psql('app',
	"SET ROLE migrator; CREATE TABLE t (id int PRIMARY KEY, v text);"
	  . " INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;");

# --- a failed apply: one notification --------------------------------------
create_db($target, 'notes');
$target->safe_psql('notes', 'CREATE EXTENSION pg_ingest');
my $listener = $target->background_psql('notes');
$listener->query_safe('LISTEN pg_ingest');
$target->safe_psql('notes',
	"SELECT ingest.start('$conn', name => 'n', table_jobs => 1, index_jobs => 1)");
ok(wait_phase($target, 'notes', 'n', 'streaming'), 'migration n streams');
$target->safe_psql('notes', "INSERT INTO t VALUES (5000, 'planted on the target')");
$source->safe_psql('app', "INSERT INTO t VALUES (5000, 'from the source')");
ok(wait_phase($target, 'notes', 'n', 'failed'), 'the apply of a conflicting row fails');
my $notes = $listener->query_safe('SELECT 1');
my @failed = $notes =~ /"event": ?"failed"/g;
is(scalar @failed, 1, 'one "failed" notification');
$listener->quit;
$target->safe_psql('notes', "SELECT ingest.abort('n')");

# --- a stop request does not overwrite a failure ---------------------------
$target->safe_psql('postgres',
	"SELECT ingest.start('$conn', name => 's', table_jobs => 1, index_jobs => 1)");
ok(wait_phase($target, 'postgres', 's', 'streaming'), 'migration s streams');
# a failure recorded in a transaction still open (as a worker would)
my $failing = $target->background_psql('postgres');
$failing->query_safe(
	"BEGIN; UPDATE ingest.migration SET phase = 'failed', last_error = 'simulated failure' WHERE name = 's'");
# meanwhile a stop request: the coordinator records it and waits on the row
$target->safe_psql('postgres', "SELECT ingest.stop_at('FFFFFFF/0', 's')");
ok( poll_until($target, 'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_ingest coordinator'"
		  . " AND wait_event_type = 'Lock'",
		'1', 'the coordinator to wait for the failure'),
	'the coordinator records the stop behind the failure');
$failing->query_safe('COMMIT');
$failing->quit;
ok( poll_until($target, 'postgres',
		"SELECT count(*) FROM ingest.events WHERE name = 's' AND kind = 'stop'",
		'1', 'the stop event'),
	'the stop request is recorded');
ok( poll_until($target, 'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_ingest coordinator'",
		'0', 'the coordinator to end'),
	'the coordinator ends');
is($target->safe_psql('postgres', "SELECT phase FROM ingest.migration WHERE name = 's'"),
	'failed', 'the migration is still failed, not stopping');
is( $target->safe_psql('postgres',
		"SELECT count(*) FROM ingest.events WHERE name = 's' AND message = 'phase stopping'"),
	'0', 'no phase stopping was recorded');

# the catalog refuses a phase that does not exist
my ($ret, $out, $err) = $target->psql('postgres',
	"UPDATE ingest.migration SET phase = 'bogus' WHERE name = 's'");
like($err, qr/violates check constraint "migration_phase_check"/, 'phases are checked');

# --- an error inside a catalog call leaves the next call as it should be -----
# A user's operator that would run if a catalog call ran with the caller's
# search_path.
$target->safe_psql('postgres', q{
	CREATE ROLE op LOGIN IN ROLE ingest_admin;
	CREATE SCHEMA evil;
	GRANT USAGE ON SCHEMA evil TO PUBLIC;
	CREATE FUNCTION evil.eq(text, text) RETURNS bool LANGUAGE plpgsql AS
	  $$ BEGIN RAISE WARNING 'user code ran in a catalog call as %', current_user;
	     RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
	CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eq);
});
for my $role ('op', 'the superuser')
{
	my $holder = $target->background_psql('postgres');
	$holder->query_safe('BEGIN; LOCK TABLE ingest.migration IN ACCESS EXCLUSIVE MODE');
	my $session = $target->background_psql('postgres', on_error_stop => 0);
	$session->query_safe(($role eq 'op' ? 'SET ROLE op;' : '')
		  . " SET search_path = evil, pg_catalog; SET lock_timeout = '200ms'");
	my ($out, $failed) = $session->query("SELECT ingest.wait('s', 'failed', '1 s')");
	like($session->{stderr}, qr/canceling statement due to lock timeout/,
		"$role: a catalog call fails on lock_timeout");
	$session->{stderr} = '';
	$holder->query_safe('ROLLBACK');
	$holder->quit;
	($out, $failed) = $session->query("SELECT ingest.wait('s', 'failed', '1 s')");
	is($out, 't', "$role: the next catalog call works");
	is($session->{stderr}, '', "$role: as the catalog's owner, with its search_path");
	$session->quit;
}

# --- ownership: only the owner (or a superuser) changes a migration -------
# a database of its own: op may not write into the tables of migration s
create_db($target, 'own');
$target->safe_psql('own',
	"CREATE EXTENSION pg_ingest; CREATE ROLE op2 IN ROLE ingest_admin; GRANT CREATE ON SCHEMA public TO op;");
$target->safe_psql('own',
	"SET ROLE op; SELECT ingest.start('$conn', name => 'mine', include_tables => ARRAY['t'])");
for my $call ("ingest.pause('mine')", "ingest.resume('mine')", "ingest.stop_at('0/1', 'mine')",
	"ingest.cutover('mine')", "ingest.cleanup('mine')", "ingest.abort('mine')")
{
	my ($ret, $out, $err) = $target->psql('own',
		"\\set VERBOSITY verbose\nSET ROLE op2; SELECT $call");
	like($err, qr/ERROR:  42501: must be the owner of migration "mine"/,
		"another ingest_admin member may not call $call");
}
is( $target->safe_psql('own',
		"SELECT has_column_privilege('ingest_admin', 'ingest.migration', 'source', 'SELECT'),"
		  . " has_table_privilege('op', 'ingest.migration', 'SELECT')"),
	'f|f', 'nobody but the extension owner and superusers reads the source');
like($target->safe_psql('own', "SELECT source FROM ingest.migration WHERE name = 'mine'"),
	qr/S3cret-Pass/, 'the password is kept while the migration may need it');
$target->safe_psql('own', "SET ROLE op; SELECT ingest.abort('mine')");
is( $target->safe_psql('own',
		"SELECT phase, source !~ 'S3cret-Pass' AND source ~ 'user=''migrator''',"
		  . " source_display !~ 'S3cret-Pass' FROM ingest.migration WHERE name = 'mine'"),
	'aborted|t|t', 'the owner aborts it, and the password leaves the catalog');

# --- workers run with search_path pinned to pg_catalog ---------------------
create_db($target, 'sp');
$target->safe_psql('sp',
	"CREATE EXTENSION pg_ingest; ALTER DATABASE sp SET search_path = evil, public, pg_catalog");
$target->safe_psql('sp',
	"SELECT ingest.start('$conn', name => 'sp', table_jobs => 1, index_jobs => 1)");
ok(wait_phase($target, 'sp', 'sp', 'streaming'), 'migration sp streams');
$target->safe_psql('sp', q{
	CREATE TABLE public.sp_log (search_path text);
	CREATE FUNCTION public.sp_trg() RETURNS trigger LANGUAGE plpgsql AS
	  $$ BEGIN INSERT INTO public.sp_log VALUES (pg_catalog.current_setting('search_path')); RETURN NEW; END $$;
	CREATE TRIGGER sp AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.sp_trg();
	ALTER TABLE public.t ENABLE ALWAYS TRIGGER sp;
});
$source->safe_psql('app', "INSERT INTO t VALUES (6000, 'seen by the trigger')");
ok(poll_until($target, 'sp', 'SELECT count(*) FROM public.sp_log', '1', 'the trigger'),
	'the applier applies the insert');
is($target->safe_psql('sp', 'SELECT search_path FROM public.sp_log'),
	'pg_catalog, pg_temp', 'the applier runs with search_path pg_catalog, whatever the database sets');

done_testing();
