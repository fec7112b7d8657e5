# ALTER EXTENSION pg_ingest UPDATE: a migration started with the SQL
# objects of 0.1.0 (the frozen first script) goes on streaming across the
# update, with this library, and ends as one started on 0.2.0 would.  A
# fresh CREATE EXTENSION and the update build the same catalog.  SQL
# objects of a version the library does not know are refused politely.  A
# pg_dump of a database with the extension restores (the catalog is not
# dumped: migration state belongs to this server's workers and the
# source's slot).

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

$source->safe_psql('app', <<'EOS');
SET ROLE migrator;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer int NOT NULL, amount numeric(12,2), note text);
CREATE TABLE lines (order_id bigint REFERENCES orders, n int, item text, PRIMARY KEY (order_id, n));
INSERT INTO orders (customer, amount, note) SELECT i % 97, i * 1.5, 'order ' || i FROM generate_series(1, 3000) i;
INSERT INTO lines SELECT o, n, 'item ' || n FROM generate_series(1, 3000) o, generate_series(1, 3) n;
EOS
$target->safe_psql('postgres', 'CREATE ROLE migrator');

# --- a migration on 0.1.0 ------------------------------------------------
create_db($target, 'up');
$target->safe_psql('up', "CREATE EXTENSION pg_ingest VERSION '0.1.0'");
is($target->safe_psql('up',
		"SELECT extversion || ' ' || (to_regproc('ingest.metrics') IS NULL)"
		  . " FROM pg_extension WHERE extname = 'pg_ingest'"),
	'0.1.0 true', 'the SQL objects of 0.1.0, without the functions of 0.2.0');
my $conn = source_connstr($source);
$target->safe_psql('up', "SELECT ingest.start('$conn', name => 'up', table_jobs => 2)");
ok(wait_phase($target, 'up', 'up', 'streaming'), 'the 0.1.0 migration copies and streams');
$source->safe_psql('app',
	"INSERT INTO orders (customer, amount, note) SELECT 1, 2, 'before the update' FROM generate_series(1, 50);"
	  . " UPDATE lines SET item = 'changed' WHERE order_id <= 10");

# --- the update, with the migration streaming -------------------------------
$target->safe_psql('up', 'ALTER EXTENSION pg_ingest UPDATE');
is($target->safe_psql('up', "SELECT extversion FROM pg_extension WHERE extname = 'pg_ingest'"),
	'0.2.0', 'ALTER EXTENSION pg_ingest UPDATE brings the SQL objects to 0.2.0');
is($target->safe_psql('up', "SELECT name || ' ' || phase FROM ingest.status"),
	'up streaming', 'the migration is still there, streaming');
like($target->safe_psql('up', 'SELECT ingest.metrics()'),
	qr/^pg_ingest_phase\{migration="up",database="up",phase="streaming"\} 1$/m,
	"0.2.0's ingest.metrics() shows it");
is($target->safe_psql('up',
		"SELECT count(*) FILTER (WHERE table_bytes IS NULL) || '/' || count(*) FROM ingest.copy_item"),
	'0/2', 'the update gave the copy items their table size');
$source->safe_psql('app',
	"INSERT INTO orders (customer, amount, note) SELECT 2, 3, 'after the update' FROM generate_series(1, 50);"
	  . " DELETE FROM lines WHERE order_id BETWEEN 20 AND 30");
ok($target->safe_psql('up', "SELECT ingest.cutover('up', '2 min') IS NOT NULL"), 'cutover');
ok(wait_phase($target, 'up', 'up', 'completed'), 'the migration completes');
same_content($source, 'app', $target, 'up', [ 'public.orders', 'public.lines' ],
	'both tables have the same content on both sides');
is($target->safe_psql('up', "SELECT count(*) FROM ingest.events WHERE level = 'ERROR'"),
	'0', 'no error on the way');

# --- a fresh 0.2.0 has the same catalog -------------------------------------
create_db($target, 'fresh');
$target->safe_psql('fresh', 'CREATE EXTENSION pg_ingest');
my $catalog = "SELECT string_agg(d, E'\\n' ORDER BY d) FROM ("
  . " SELECT format('%s.%s %s %s %s', c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull) d"
  . "  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
  . "  WHERE c.relnamespace = 'ingest'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped"
  . " UNION ALL SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
  . "  WHERE c.relnamespace = 'ingest'::regnamespace"
  . " UNION ALL SELECT p.oid::regprocedure::text || ' ' || pg_get_function_result(p.oid) FROM pg_proc p"
  . "  WHERE p.pronamespace = 'ingest'::regnamespace"
  . " UNION ALL SELECT c.relname || ' ' || md5(pg_get_viewdef(c.oid)) FROM pg_class c"
  . "  WHERE c.relnamespace = 'ingest'::regnamespace AND c.relkind = 'v') x";
is($target->safe_psql('up', $catalog), $target->safe_psql('fresh', $catalog),
	'the updated catalog is the one a fresh CREATE EXTENSION builds');

# --- SQL objects of a version the library does not know ---------------------
create_db($target, 'future');
$target->safe_psql('future', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('future', "UPDATE pg_extension SET extversion = '9.0.0' WHERE extname = 'pg_ingest'");
my ($ret, $out, $err) = $target->psql('future', "SELECT ingest.start('$conn', name => 'f')");
like($err, qr/ERROR:  the SQL objects of pg_ingest in this database are version 9\.0\.0, which its library \(version 0\.2\.0\) does not know/,
	'a version the library does not know is refused, naming both');
like($err, qr/HINT:  Install the pg_ingest library of version 9\.0\.0/, 'with what to do');
is($target->safe_psql('future', 'SELECT count(*) FROM ingest.status'), '0', 'and nothing started');

# --- pg_dump of a database with the extension restores -----------------------
create_db($target, 'restored');
my ($dump, $dump_err);
IPC::Run::run([ 'pg_dump', '-d', $target->connstr('up') ], '>', \$dump, '2>', \$dump_err)
  or die "pg_dump failed: $dump_err";
like($dump, qr/CREATE EXTENSION IF NOT EXISTS pg_ingest WITH SCHEMA ingest;/, 'the dump creates the extension');
my ($restore_out, $restore_err);
ok( IPC::Run::run(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $target->connstr('restored') ],
		'<', \$dump, '>', \$restore_out, '2>', \$restore_err),
	'it restores into an empty database')
  or diag($restore_err);
is($target->safe_psql('restored',
		"SELECT (SELECT extversion FROM pg_extension WHERE extname = 'pg_ingest')"
		  . " || ' ' || (SELECT count(*) FROM ingest.migration)"),
	'0.2.0 0', 'with the extension at 0.2.0 and no migration: their state stays with the server that ran them');

done_testing();
