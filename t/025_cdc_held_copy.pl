# Change data capture: a source transaction touching a table whose copy is
# held back.
#
# The target's schema is put in place beforehand (schema => 'existing'); a
# target session holding a lock on "big" keeps its copy waiting while one
# source transaction changes big and another table.  Once the copy is let
# go the migration streams, and after cutover every table has the source's
# content: the transaction is applied once, on top of the copy (a change
# both copied and streamed would be a duplicate key, one neither copied nor
# streamed a difference).

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
my $target = new_target('target', 'pg_ingest.retry_delay' => "'200ms'");

my $conn = source_connstr($source);

# --- the source: pgbench's tables with foreign keys, and the CDC tables ---
my @tables = load_cdc_source($source);
# big has rows, for its copy to have something to copy and the source
# transaction something to update
$source->safe_psql('app',
	"INSERT INTO big (id, payload) SELECT g, md5(g::text) FROM generate_series(1, 200000) g");

# --- a transaction touching a table whose copy is held back --------------
create_db($target, 'held');
$target->safe_psql('held', 'CREATE EXTENSION pg_ingest');
{
	my ($dump, $derr, $o, $e);
	IPC::Run::run([ 'pg_dump', '--schema-only', '--no-owner', '--no-privileges', '-d', $source->connstr('app') ], '>', \$dump, '2>', \$derr)
	  or die "pg_dump failed: $derr";
	$dump =~ s/^\\(un)?restrict .*$//mg;
	IPC::Run::run([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $target->connstr('held') ],
		'<', \$dump, '>', \$o, '2>', \$e)
	  or die "restoring the schema failed: $e";
}
my $holder = $target->background_psql('held');
$holder->query_safe('BEGIN; LOCK TABLE big IN ACCESS SHARE MODE');
$target->safe_psql('held',
	"SELECT ingest.start('$conn', name => 'held', schema => 'existing', table_jobs => 2, index_jobs => 1)");
ok( poll_until($target, 'held',
		"SELECT state FROM ingest.tables WHERE name = 'held' AND source_table = 'public.big'",
		'copying', 'the copy of big to wait for the lock'),
	'the copy of big is held back');
$source->safe_psql('app', q{
	BEGIN;
	UPDATE big SET payload = 'while copying' WHERE id <= 1000;
	INSERT INTO big (id, payload) VALUES (300000, 'new while copying');
	UPDATE keyed SET v = 'same transaction' WHERE id = 500;
	COMMIT;
});
is($target->safe_psql('held', "SELECT state FROM ingest.tables WHERE name = 'held' AND source_table = 'public.big'"),
	'copying', 'the source transaction committed while big was being copied');
$holder->query_safe('COMMIT');
$holder->quit;
ok(wait_phase($target, 'held', 'held', 'streaming'), 'the held-back copy finishes and the migration streams');
$target->safe_psql('held', "SELECT ingest.cutover('held')");
is($target->safe_psql('held', "SELECT phase FROM ingest.status WHERE name = 'held'"),
	'completed', 'the held-back migration completes');
same_content($source, 'app', $target, 'held', \@tables, 'the transaction is applied once, on top of the copy');

done_testing();
