# Full load and CDC drain into a Citus coordinator (two workers) against the
# same into a single node (a plain database of the coordinator's server),
# same run, same source (issue 11).
#
#   make citus PROVE_TESTS=bench/citus.pl   (as a non-root user, Citus built
#                                           by ../shared/peers/build-citus.sh)
#   (CITUS_BENCH_CUSTOMERS customers, 1000 by default: 500 orders and 200
#   items each; CITUS_BENCH_TXNS pgbench transactions of backlog, 6000)
#
# Each target: ingest.start (with the distribute map into the Citus
# database, without into the plain one), the time from the start to
# streaming (schema, copy, indexes); then the applier paused
# (ingest.pause), a backlog of pgbench transactions written (orders and
# items inserted, an order and a reference row updated each), ingest.resume,
# the time until everything written is applied.  Prints one line per target.
# Skips without Citus, like t/029_citus.pl.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../t";

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IngestTest;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
plan skip_all => "Citus is not installed (no citus.so in $pkglibdir)"
  unless -f "$pkglibdir/citus.so";

my $customers = $ENV{CITUS_BENCH_CUSTOMERS} || 1000;
my $txns = $ENV{CITUS_BENCH_TXNS} || 6000;

my $source = new_source('source');
my $conn = source_connstr($source);
my %conf = ('citus.shard_count' => 8, shared_buffers => '256MB');
my $coord = citus_node('coordinator', 'citus,pg_ingest', %conf);
my @workers = map { citus_node("worker$_", 'citus', %conf) } (1, 2);
for my $node ($coord, @workers)
{
	create_db($node, 'dist');
	$node->safe_psql('dist', 'CREATE EXTENSION citus');
}
$coord->safe_psql('dist', "SELECT citus_set_coordinator_host('127.0.0.1', " . $coord->port . ')');
$coord->safe_psql('dist', "SELECT citus_add_node('127.0.0.1', " . $_->port . ')') for @workers;
$coord->safe_psql('dist', 'SET citus.enable_ddl_propagation = off; CREATE EXTENSION pg_ingest');
create_db($coord, 'single');
$coord->safe_psql('single', 'CREATE EXTENSION pg_ingest');

$source->safe_psql('app', qq{
	SET ROLE migrator;
	CREATE TABLE orders (customer_id int NOT NULL, order_id int NOT NULL, amount numeric NOT NULL,
		note text, PRIMARY KEY (customer_id, order_id));
	CREATE TABLE order_items (customer_id int NOT NULL, order_id int NOT NULL, item_id int NOT NULL,
		qty int NOT NULL, PRIMARY KEY (customer_id, order_id, item_id),
		FOREIGN KEY (customer_id, order_id) REFERENCES orders);
	CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL, hits int NOT NULL DEFAULT 0);
	INSERT INTO orders SELECT c, o, o * 1.5, 'order ' || o FROM generate_series(1, $customers) c, generate_series(1, 500) o;
	INSERT INTO order_items SELECT c, o, i, i FROM generate_series(1, $customers) c, generate_series(1, 100) o, generate_series(1, 2) i;
	INSERT INTO countries SELECT 'c' || i, 'country ' || i FROM generate_series(0, 19) i;
});
my $size = $source->safe_psql('app', 'SELECT pg_size_pretty(pg_database_size(current_database()))');

my $script = PostgreSQL::Test::Utils::tempdir() . '/orders.sql';
open my $fh, '>', $script or die $!;
print $fh qq{
\\set c random(1, $customers)
\\set o random(1000, 2000000000)
BEGIN;
INSERT INTO orders VALUES (:c, :o, 1, 'pgbench') ON CONFLICT DO NOTHING;
INSERT INTO order_items VALUES (:c, :o, 1, 1) ON CONFLICT DO NOTHING;
UPDATE orders SET amount = amount + 1 WHERE customer_id = :c AND order_id = (:o % 400) + 2;
UPDATE countries SET hits = hits + 1 WHERE code = 'c' || (:c % 20);
END;
};
close $fh;

my $map = q{'{"public.orders": "customer_id",
	"public.order_items": {"column": "customer_id", "colocate_with": "public.orders"},
	"public.countries": "reference"}'};
my @report;
for my $case ([ 'citus', 'dist', ", distribute => $map" ], [ 'single', 'single', '' ])
{
	my ($label, $db, $extra) = @$case;
	my $t0 = time;
	$coord->safe_psql($db, "SELECT ingest.start('$conn', name => 'b', table_jobs => 2, index_jobs => 2$extra)");
	ok(poll_until($coord, $db, "SELECT phase FROM ingest.status WHERE name = 'b'", 'streaming', "$label streaming"),
		"$label: streaming");
	my $full = time - $t0;

	$coord->safe_psql($db, "SELECT ingest.pause('b')");
	{
		local $ENV{PGPASSWORD} = 'S3cret-Pass';
		my ($out, $err);
		IPC::Run::run([ 'pgbench', '-n', '-c', '2', '-j', '2', '-t', int($txns / 2), '-f', $script,
				source_connstr($source, password => undef) ], '>', \$out, '2>', \$err)
		  or die "pgbench: $err";
	}
	my $lsn = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
	# the stream receives the backlog while the applier is paused
	poll_until($coord, $db, "SELECT received_lsn >= '$lsn' FROM ingest.status WHERE name = 'b'", 't', 'received');
	my $t1 = time;
	$coord->safe_psql($db, "SELECT ingest.resume('b')");
	ok(poll_until($coord, $db, "SELECT applied_lsn >= '$lsn' FROM ingest.status WHERE name = 'b'", 't', "$label drained"),
		"$label: drained");
	my $drain = time - $t1;
	$coord->safe_psql($db, "SELECT ingest.cutover('b')");
	push @report, sprintf("%-7s full load to streaming %6.1f s   drain of %d transactions %6.1f s (%.0f txn/s)",
		$label, $full, $txns, $drain, $txns / $drain);
	# the next case's source: the same rows again
	$source->safe_psql('app', q{DELETE FROM order_items WHERE order_id >= 1000; DELETE FROM orders WHERE order_id >= 1000});
}
diag("source $size, $customers customers; 2 cores, loopback");
diag($_) for @report;
done_testing();
