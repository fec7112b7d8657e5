# Review findings on the stream and partitioned targets:
# - a change wal2json leaves out that is the last of its transaction fails
#   the migration before that transaction is applied, and again after
#   ingest.resume (never skipped);
# - a TRUNCATE of a source leaf whose target partition also holds rows
#   routed from another leaf (mapped to the target root) fails the
#   migration, naming the table, instead of deleting those rows;
# - ingest.verify compares leaves mapped to a target root as that root;
# - a row routed to a foreign-table partition fails the migration, naming
#   the partition (the executor's simple insert would crash on it);
# - a REVOKE of the role membership that gave the owner its privilege,
#   which sends no invalidation of the table, fails the migration at the
#   next batch, with nothing written; and ingest.abort of that migration,
#   owned by a role that is not a superuser, works (its worker crashed).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $source = new_source('source');
my $target = new_target('target',
	autovacuum              => 'off',
	'pg_ingest.retry_delay' => "'100ms'",
	'pg_ingest.max_retries' => 1);
my $conn = source_connstr($source);

$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE ident_t (id int PRIMARY KEY, v text);
	CREATE TABLE other_t (id int PRIMARY KEY);
	INSERT INTO ident_t SELECT g, 'a' FROM generate_series(1, 10) g;
	CREATE TABLE pt (id int, region text, v text, PRIMARY KEY (id, region))
		PARTITION BY LIST (region);
	CREATE TABLE pt_a PARTITION OF pt FOR VALUES IN ('a');
	CREATE TABLE pt_b PARTITION OF pt FOR VALUES IN ('b');
});

# --- the last change of a transaction left out by wal2json -----------------
create_db($target, 'nokey');
$target->safe_psql('nokey', q{
	CREATE EXTENSION pg_ingest;
	CREATE TABLE ident_t (id int PRIMARY KEY, v text);
	CREATE TABLE other_t (id int PRIMARY KEY);
	INSERT INTO ident_t SELECT g, 'a' FROM generate_series(1, 10) g;
});
$target->safe_psql('nokey',
	"SELECT ingest.start('$conn', name => 'nokey', mode => 'cdc', schema => 'existing',"
	  . " include_tables => '{public.ident_t, public.other_t}')");
ok(wait_phase($target, 'nokey', 'nokey', 'streaming'), 'a cdc migration streams');
$source->safe_psql('app', q{
	ALTER TABLE ident_t REPLICA IDENTITY NOTHING;
	BEGIN;
	INSERT INTO other_t VALUES (1);
	UPDATE ident_t SET v = 'b' WHERE id = 1;
	COMMIT;
});
ok(wait_phase($target, 'nokey', 'nokey', 'failed'),
	'an UPDATE wal2json leaves out, last of its transaction, fails the migration');
my $failures = "SELECT count(*) FROM ingest.events WHERE name = 'nokey' AND message LIKE '%cannot be carried%'";
my $before = $target->safe_psql('nokey', $failures);
is($target->safe_psql('nokey', 'SELECT count(*) FROM other_t'), '0',
	'nothing of that transaction is applied');
$target->safe_psql('nokey', "SELECT ingest.resume('nokey')");
ok( poll_until($target, 'nokey',
		"SELECT phase = 'failed' AND ($failures) > $before FROM ingest.status WHERE name = 'nokey'",
		't', 'the resumed migration to fail again'),
	'after ingest.resume the same change fails the migration again');
is($target->safe_psql('nokey', 'SELECT count(*) FROM other_t'), '0',
	'and that transaction is still not applied');
$target->safe_psql('nokey', "SELECT ingest.abort('nokey')");

# --- a leaf mapped to a target root, rows routed into a same-named partition -
create_db($target, 'parts');
$target->safe_psql('parts', q{
	CREATE EXTENSION pg_ingest;
	-- partitioned by id: rows of pt_a (not here) go into pt_b or pt_hi
	CREATE TABLE pt (id int, region text, v text, PRIMARY KEY (id, region))
		PARTITION BY RANGE (id);
	CREATE TABLE pt_b PARTITION OF pt FOR VALUES FROM (MINVALUE) TO (1000);
	CREATE TABLE pt_hi PARTITION OF pt FOR VALUES FROM (1000) TO (MAXVALUE);
});
$target->safe_psql('parts',
	"SELECT ingest.start('$conn', name => 'trunc', mode => 'cdc', schema => 'existing',"
	  . " include_tables => '{public.pt_a, public.pt_b}')");
ok(wait_phase($target, 'parts', 'trunc', 'streaming'), 'a cdc migration of the leaves streams');
$source->safe_psql('app', q{
	INSERT INTO pt SELECT g, 'a', 'a' || g FROM generate_series(1, 20) g;
	INSERT INTO pt SELECT g, 'b', 'b' || g FROM generate_series(1, 20) g;
	INSERT INTO pt VALUES (5000, 'a', 'high');
});
ok(poll_until($target, 'parts', 'SELECT count(*) FROM pt', '41', 'the rows'),
	'rows of both leaves are applied');
is($target->safe_psql('parts', 'SELECT count(*) FROM ONLY pt_b'), '40',
	'rows of pt_a are routed into the target partition pt_b');
is( $target->safe_psql('parts',
		"SELECT string_agg(table_name || ' ' || source_rows || ' ' || target_rows || ' ' || status, ',')"
		  . " FROM ingest.verify('trunc', 'hash')"),
	'public.pt 41 41 MATCH',
	'verify compares the leaves mapped to the target root as that root');
$source->safe_psql('app', 'TRUNCATE pt_b');
ok(wait_phase($target, 'parts', 'trunc', 'failed'),
	'a TRUNCATE of pt_b fails the migration');
like( $target->safe_psql('parts', "SELECT last_error FROM ingest.migration WHERE name = 'trunc'"),
	qr/cannot apply a TRUNCATE of public\.pt_b: table public\.pt_b also holds rows of other partitions of the source/,
	'naming the table');
is($target->safe_psql('parts', "SELECT count(*) FROM pt WHERE region = 'a'"), '21',
	'no row of pt_a is deleted');
$target->safe_psql('parts', "SELECT ingest.abort('trunc')");

# --- a foreign table among the target's partitions -------------------------
$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE fpart (id int PRIMARY KEY, v text);
});
create_db($target, 'fdw');
my $host = $target->host;
my $port = $target->port;
$target->safe_psql('fdw', qq{
	CREATE EXTENSION pg_ingest;
	CREATE EXTENSION postgres_fdw;
	CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw
		OPTIONS (host '$host', port '$port', dbname 'fdw');
	CREATE USER MAPPING FOR PUBLIC SERVER loop;
	CREATE TABLE fpart_data (id int, v text);
	CREATE TABLE fpart (id int, v text) PARTITION BY RANGE (id);
	CREATE TABLE fpart_lo PARTITION OF fpart FOR VALUES FROM (MINVALUE) TO (100);
	CREATE FOREIGN TABLE fpart_hi PARTITION OF fpart FOR VALUES FROM (100) TO (MAXVALUE)
		SERVER loop OPTIONS (table_name 'fpart_data');
});
$target->safe_psql('fdw',
	"SELECT ingest.start('$conn', name => 'fdw', mode => 'cdc', schema => 'existing',"
	  . " include_tables => '{public.fpart}')");
ok(wait_phase($target, 'fdw', 'fdw', 'streaming'), 'a cdc migration into a table with a foreign partition streams');
$source->safe_psql('app', "INSERT INTO fpart VALUES (1, 'local')");
ok(poll_until($target, 'fdw', 'SELECT count(*) FROM fpart_lo', '1', 'the local row'),
	'a row routed to a plain partition is applied');
$source->safe_psql('app', "INSERT INTO fpart VALUES (500, 'remote')");
ok(wait_phase($target, 'fdw', 'fdw', 'failed'), 'a row routed to the foreign partition fails the migration');
like( $target->safe_psql('fdw', "SELECT last_error FROM ingest.migration WHERE name = 'fdw'"),
	qr/cannot apply a change of public\.fpart to partition public\.fpart_hi of public\.fpart: it is not a plain table/,
	'naming the partition');
is($target->safe_psql('fdw', 'SELECT count(*) FROM fpart_data'), '0', 'nothing is written there');
$target->safe_psql('fdw', "SELECT ingest.abort('fdw')");

# --- a privilege lost with a role membership -------------------------------
$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE member_t (id int PRIMARY KEY);
});
create_db($target, 'member');
$target->safe_psql('member', q{
	CREATE EXTENSION pg_ingest;
	CREATE ROLE writers;
	CREATE ROLE mig LOGIN IN ROLE ingest_admin, writers;
	CREATE TABLE member_t (id int PRIMARY KEY);
	GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON member_t TO writers;
});
my ($ret, $out, $err) = $target->psql('member',
	"SELECT ingest.start('$conn', name => 'member', mode => 'cdc', schema => 'existing',"
	  . " include_tables => '{public.member_t}')",
	extra_params => [ '-U', 'mig' ]);
is($ret, 0, 'a member of a role with the privileges starts a migration') or diag($err);
ok(wait_phase($target, 'member', 'member', 'streaming'), 'it streams');
$source->safe_psql('app', 'INSERT INTO member_t VALUES (1)');
ok(poll_until($target, 'member', 'SELECT count(*) FROM member_t', '1', 'the first row'),
	'a change is applied');
$target->safe_psql('member', 'REVOKE writers FROM mig');
$source->safe_psql('app', 'INSERT INTO member_t VALUES (2)');
ok(wait_phase($target, 'member', 'member', 'failed'),
	'after the membership is revoked, the next INSERT fails the migration');
like( $target->safe_psql('member', "SELECT last_error FROM ingest.migration WHERE name = 'member'"),
	qr/permission denied for table public\.member_t: role "mig" lacks privilege INSERT/,
	'naming the table and the privilege');
is($target->safe_psql('member', 'SELECT count(*) FROM member_t'), '1', 'and nothing is written');
$target->safe_psql('member', "SELECT ingest.abort('member')");

done_testing();
