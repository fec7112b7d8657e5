# Many small objects (bench/sql/many_objects.sql, a few dozen tables with
# their indexes, keys, foreign keys, checks, triggers, views and comments):
# every object arrives, although the coordinator runs the pre-data and
# final statements in batches, one subtransaction each (schema.c).  One
# statement of the pre-data section fails (its owner role is missing on the
# target): it is recorded alone, and the statements batched around it are
# not lost.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $source = new_source('source');
my $target = new_target('target');

my $file = "$FindBin::RealBin/../bench/sql/many_objects.sql";
my ($stdout, $stderr);
IPC::Run::run(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', 'tables=60', '-v', 'rows=7',
	  '-d', $source->connstr('app') . ' user=migrator', '-f', $file ],
	'>', \$stdout, '2>', \$stderr)
  or die "many_objects.sql failed: $stderr";
# a table in the middle of the pre-data section owned by a role the target lacks
$source->safe_psql('app',
	"CREATE ROLE ghost; ALTER TABLE many05.t00045 OWNER TO ghost;"
	  . " GRANT ALL ON many05.t00045 TO migrator; GRANT ALL ON SEQUENCE many05.t00045_id_seq TO migrator");
# sequences never called or set back with is_called false: read as tables,
# not by pg_sequence_last_value() as the others are (coordinator.c)
$source->safe_psql('app',
	"CREATE SEQUENCE many01.fresh START 5; CREATE SEQUENCE many01.reset;"
	  . " SELECT setval('many01.reset', 77, false); GRANT ALL ON ALL SEQUENCES IN SCHEMA many01 TO migrator");
$target->safe_psql('postgres', 'CREATE ROLE migrator');

my @tables = split /\n/, $source->safe_psql('app',
	"SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
	  . " WHERE schemaname LIKE 'many%' ORDER BY 1");
is(scalar(@tables), 60, 'the source has its 60 tables');
my $hashes = table_hashes($source, 'app', \@tables);

create_db($target, 'many');
$target->safe_psql('many', 'CREATE EXTENSION pg_ingest');
my $conn = source_connstr($source, dbname => 'app');
$target->safe_psql('many',
	"SELECT ingest.start('$conn', name => 'many', mode => 'full-load',"
	  . " table_jobs => 2, index_jobs => 2)");
ok(wait_phase($target, 'many', 'many', 'completed'), 'the migration completes');

same_content($source, 'app', $target, 'many', \@tables,
	'every table has the same content on both sides', $hashes);

my $objects = "SELECT format('%s rels, %s indexes, %s constraints, %s triggers, %s views, %s comments, %s functions',"
  . " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'many%' AND c.relkind <> 'i'),"
  . " (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'many%'),"
  . " (SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname LIKE 'many%' AND c.convalidated),"
  . " (SELECT count(*) FROM pg_trigger t WHERE NOT t.tgisinternal),"
  . " (SELECT count(*) FROM pg_views WHERE schemaname LIKE 'many%'),"
  . " (SELECT count(*) FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'many%'),"
  . " (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname LIKE 'many%'))";
my $want = $source->safe_psql('app', $objects);
like($want, qr/^\d+ rels, 240 indexes, /, "the source's objects: $want");
is($target->safe_psql('many', $objects), $want,
	'the same indexes, constraints, triggers, views, comments and functions on both sides');

my $seqs = "SELECT string_agg(format('%s=%s', c.oid::regclass, pg_sequence_last_value(c.oid)), ',' ORDER BY c.oid::regclass::text)"
  . " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname LIKE 'many%'";
is($target->safe_psql('many', $seqs), $source->safe_psql('app', $seqs),
	'every sequence has its value (the batched setval statements)');
my $next = "SELECT nextval('many01.fresh') || ',' || nextval('many01.reset')";
is($target->safe_psql('many', $next), '5,77',
	'a sequence never called and one set with is_called false go on from the same values');

# the statement naming the missing role failed alone, as a warning
is( $target->safe_psql('many',
		"SELECT string_agg(DISTINCT state, ',') || ' ' || bool_and(statement LIKE '%OWNER TO ghost%')"
		  . " FROM ingest.schema_item WHERE state <> 'done'"),
	'failed true', 'only the statement that names the missing role failed');
is( $target->safe_psql('many',
		"SELECT count(*) FROM ingest.events WHERE name = 'many' AND level <> 'INFO'")
	  . ' ' . $target->safe_psql('many',
		"SELECT count(*) FROM ingest.events WHERE name = 'many' AND level = 'WARNING'"
		  . " AND detail LIKE '%OWNER TO ghost%'"),
	'1 1', 'one warning event, for it');
is( $target->safe_psql('many',
		"SELECT count(*) FROM ingest.schema_item WHERE attempts <> 1"),
	'0', 'every statement ran once');
is($target->safe_psql('many', "SELECT to_regclass('many05.t00045') IS NOT NULL"),
	't', 'the table whose owner is missing is there');

done_testing();
