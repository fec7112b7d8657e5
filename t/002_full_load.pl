# Full load across two clusters: the type torture schema (with a table
# split into page ranges) copied and compared table by table, schema =>
# 'existing', filters, a copy worker killed with SIGKILL in the middle of a
# table, and a source stopped in the middle of the copy.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IngestTest;

my $source = new_source('source');
my $target = new_target('target',
	restart_after_crash     => 'on',
	'pg_ingest.retry_delay' => "'200ms'",
	max_prepared_transactions => 2);

my $tort_file = "$FindBin::RealBin/sql/torture.sql";
my $list_file = "$FindBin::RealBin/sql/torture_tables.sql";

# The torture schema, loaded by its owner, the migration user.
run_sql_file($source, 'app', $tort_file, 'migrator');
my @tables = split /\n/, $source->safe_psql('app', slurp_file($list_file));
cmp_ok(scalar(@tables), '>', 60, 'the torture schema has its tables');
my $source_hashes = table_hashes($source, 'app', \@tables);

sub start_sql
{
	my ($name, $db, %args) = @_;
	my $conn = source_connstr($source, dbname => $db);
	my $extra = join('', map { ", $_ => $args{$_}" } sort keys %args);
	return "SELECT ingest.start('$conn', name => '$name', mode => 'full-load'$extra)";
}

# --- The type torture schema ---------------------------------------------
create_db($target, 'tort');
$target->safe_psql('tort', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('tort',
	start_sql('tort', 'app', table_jobs => 2, index_jobs => 2,
		split_tables_larger_than => "'1MB'"));
ok(wait_phase($target, 'tort', 'tort', 'completed'), 'the torture schema is migrated');

same_content($source, 'app', $target, 'tort', \@tables,
	'every table has the same content on both sides', $source_hashes);

is($target->safe_psql('tort', "SELECT errors FROM ingest.status WHERE name = 'tort'"),
	'0', 'no schema statement failed');
is( $target->safe_psql('tort',
		"SELECT count(*) FROM ingest.verify('tort') WHERE status <> 'MATCH'"),
	'0', 'ingest.verify agrees');
cmp_ok(
	$target->safe_psql('tort',
		"SELECT parts FROM ingest.tables WHERE name = 'tort' AND source_table = 'public.split_me' AND part = 1"),
	'>', 1, 'split_me was copied in page ranges');
is( $target->safe_psql('tort',
		"SELECT count(*) FROM ingest.tables WHERE name = 'tort' AND format = 'text'") > 0
	  ? 'some' : 'none',
	'some', 'arrays of user-defined types went as text');

# sequences, is_called included
my $seqs = "SELECT string_agg(s, ',' ORDER BY s) FROM ("
  . " SELECT format('%s=%s', c.oid::regclass, pg_sequence_last_value(c.oid)) AS s"
  . " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
  . " WHERE c.relkind = 'S' AND n.nspname <> 'ingest') x";
is($target->safe_psql('tort', $seqs), $source->safe_psql('app', $seqs),
	'sequences have the source values (NULL where is_called is false)');

# schema objects
my $objects = "SELECT format('%s rels, %s indexes, %s constraints, %s triggers, %s policies, %s matviews populated, %s functions',"
  . " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog','information_schema','ingest','pg_toast') AND c.relkind <> 'i'),"
  . " (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog','information_schema','ingest','pg_toast')),"
  . " (SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname NOT IN ('pg_catalog','information_schema','ingest')),"
  . " (SELECT count(*) FROM pg_trigger t WHERE NOT t.tgisinternal),"
  . " (SELECT count(*) FROM pg_policy),"
  . " (SELECT count(*) FROM pg_class WHERE relkind = 'm' AND relispopulated),"
  . " (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog','information_schema','ingest')))";
is($target->safe_psql('tort', $objects), $source->safe_psql('app', $objects),
	'indexes, constraints, triggers, policies, materialized views and functions are all there');

# roles of the source do not exist here: recorded as warnings, not errors
like(
	$target->safe_psql('tort',
		"SELECT count(*) FROM ingest.events WHERE name = 'tort' AND level = 'WARNING' AND message LIKE '%role \"migrator\" does not exist%'"),
	qr/^[1-9]/, 'ownership statements for a missing role are warnings');

# --- schema => 'existing' and filters --------------------------------------
$source->safe_psql('app',
	"SET ROLE migrator; CREATE SCHEMA shop;"
	  . " CREATE TABLE shop.items (id int PRIMARY KEY, name text, price numeric);"
	  . " CREATE TABLE shop.stock (item_id int REFERENCES shop.items, qty int);"
	  . " CREATE TABLE shop.scratch (x int);"
	  . " INSERT INTO shop.items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 5000) g;"
	  . " INSERT INTO shop.stock SELECT g, g % 17 FROM generate_series(1, 5000) g;"
	  . " INSERT INTO shop.scratch VALUES (1);");
create_db($target, 'shop');
$target->safe_psql('shop',
	"CREATE EXTENSION pg_ingest; CREATE SCHEMA shop;"
	  . " CREATE TABLE shop.items (id int PRIMARY KEY, name text, price numeric);"
	  . " CREATE TABLE shop.stock (item_id int REFERENCES shop.items, qty int);");
$target->safe_psql('shop',
	start_sql('shop', 'app', schema => "'existing'",
		include_schemas => "ARRAY['shop']", exclude_tables => "ARRAY['shop.scratch']"));
ok(wait_phase($target, 'shop', 'shop', 'completed'), 'schema existing with filters completes');
is( $target->safe_psql('shop',
		"SELECT string_agg(source_table, ',' ORDER BY source_table) FROM ingest.tables WHERE name = 'shop'"),
	'shop.items,shop.stock', 'only the included tables were copied');
my $shop = table_hashes($source, 'app', [ 'shop.items', 'shop.stock' ]);
is_deeply(table_hashes($target, 'shop', [ 'shop.items', 'shop.stock' ]), $shop,
	'and they have the same content');
is($target->safe_psql('shop', "SELECT to_regclass('shop.scratch') IS NULL"), 't',
	'the excluded table was not created');

# --- A copy worker killed in the middle of a table -------------------------
# One table big enough to take a few seconds; the whole target restarts
# (a killed backend is a crash) and the migration resumes by itself.  The
# table (about 270MB) is all there is to copy: split_tables_larger_than's
# default, 'auto', splits it in parts (of about half of it with one table
# job, at least 128MB), so the worker is killed in the middle of a part.
create_db($source, 'big', 'migrator');
$source->safe_psql('big',
	"SET ROLE migrator; CREATE TABLE wide (id bigint PRIMARY KEY, a text, b text, n numeric);"
	  . " INSERT INTO wide SELECT g, md5(g::text), repeat(md5((g * 7)::text), 3), g / 13.0"
	  . " FROM generate_series(1, 1500000) g;");
my $big = table_hashes($source, 'big', ['public.wide']);

create_db($target, 'kill');
$target->safe_psql('kill', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('kill', start_sql('kill', 'big', table_jobs => 1, index_jobs => 1));
ok( poll_until($target, 'kill',
		"SELECT rows_done > 20000 FROM ingest.tables WHERE name = 'kill' AND state = 'copying'",
		't', 'the copy to be under way'),
	'the copy is under way');

# the figures move while the table is copied, not only when it is done
my $before = $target->safe_psql('kill',
	"SELECT bytes_done || ' ' || tables_done FROM ingest.status WHERE name = 'kill'");
ok( poll_until($target, 'kill',
		"SELECT bytes_done > " . (split / /, $before)[0]
		  . " AND tables_done = 0 FROM ingest.status WHERE name = 'kill'",
		't', 'bytes_done to move'),
	'ingest.status shows the copy moving before the table is done');

my $pid = $target->safe_psql('kill',
	"SELECT pid FROM ingest._live() WHERE kind = 'copy' AND item_id IS NOT NULL LIMIT 1");
ok($pid =~ /^\d+$/, "found the copy worker ($pid)");
kill 'KILL', $pid;
ok(wait_phase($target, 'kill', 'kill', 'completed'),
	'the migration completes after the copy worker was killed');
is_deeply(table_hashes($target, 'kill', ['public.wide']), $big,
	'with the same content as the source');
cmp_ok(
	$target->safe_psql('kill',
		"SELECT max(parts) FROM ingest.tables WHERE name = 'kill' AND source_table = 'public.wide'"),
	'>', 1, 'the table was split automatically');
is( $target->safe_psql('kill',
		"SELECT count(*) FROM ingest.events WHERE name = 'kill' AND kind = 'snapshot'"),
	'2', 'after the restart the copy went on under a new snapshot');

# --- The source stopped in the middle of the copy ---------------------------
# The migration waits a while for the source to come back (a restart
# re-exports the snapshot: t/008), and fails with the reason once it has
# stayed away: after the coordinator's retries, or
# pg_ingest.stream_failure_timeout, whichever comes first.
$target->safe_psql('postgres',
	"ALTER SYSTEM SET pg_ingest.stream_failure_timeout = '5s'; SELECT pg_reload_conf()");
create_db($target, 'stop');
$target->safe_psql('stop', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('stop', start_sql('stop', 'big', table_jobs => 1, index_jobs => 1));
ok( poll_until($target, 'stop',
		"SELECT rows_done > 20000 FROM ingest.tables WHERE name = 'stop' AND state = 'copying'",
		't', 'the copy to be under way'),
	'the second copy is under way');
$source->stop('immediate');
ok(wait_phase($target, 'stop', 'stop', 'failed'),
	'the migration fails when the source stays away');
like(
	$target->safe_psql('stop', "SELECT last_error FROM ingest.status WHERE name = 'stop'"),
	qr/(connect|server|terminat|refused)/i,
	'last_error says what happened');
like(
	$target->safe_psql('stop',
		"SELECT count(*) FROM ingest.events WHERE name = 'stop' AND level = 'WARNING' AND kind IN ('snapshot', 'stream', 'retry')"),
	qr/^[1-9]/, 'the lost source is in ingest.events');
$target->safe_psql('postgres',
	"ALTER SYSTEM RESET pg_ingest.stream_failure_timeout; SELECT pg_reload_conf()");
$target->safe_psql('stop', "SELECT ingest.abort('stop')");
is($target->safe_psql('stop', "SELECT phase FROM ingest.status WHERE name = 'stop'"),
	'aborted', 'abort ends it');
is( $target->safe_psql('stop',
		"SELECT count(*) FROM ingest._live() l JOIN ingest.migration m ON m.id = l.migration_id WHERE m.name = 'stop'"),
	'0', 'no worker is left');
$source->start;
is($source->safe_psql('postgres',
		"SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pg_ingest%'"),
	'0', 'nothing is left on the source');

done_testing();
