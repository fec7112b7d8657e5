# Migrating into a Citus cluster (issue 11): a coordinator with two workers
# (three target clusters), pg_ingest on the coordinator.
#
# The source has two co-located tables to distribute (orders and
# order_items, a foreign key between them), one to replicate as a reference
# table (countries) and one that stays a local table of the coordinator
# (local_notes).  A live migration with schema => 'existing' into tables
# distributed beforehand runs under pgbench; a copy worker is killed in the
# middle of a table; while it streams: an update of the distribution
# column, an update leaving a TOASTed value unchanged, deletes, TRUNCATEs of
# a distributed and of a reference table; cutover.  Every table's content,
# read through Citus, equals the source's, and the coordinator's shell
# tables hold no rows (their heap is empty).  Last, resync => 'at_cutover'
# of a distributed table without a key: copied again at the stop through
# Citus, never twice.
#
# Skips when Citus is not installed (Debian does not package it): build it
# with ../shared/peers/build-citus.sh (see README, "Migrating into Citus").

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
plan skip_all => "Citus is not installed (no citus.so in $pkglibdir): build it with build-citus.sh"
  unless -f "$pkglibdir/citus.so";

my $source = new_source('source');
my $conn = source_connstr($source);
my $coord = citus_node('coordinator', 'citus,pg_ingest',
	'citus.shard_count'     => 4,
	restart_after_crash     => 'on',
	'pg_ingest.retry_delay' => "'200ms'");
my @workers = map { citus_node("worker$_", 'citus') } (1, 2);

# Databases with Citus on every node, the coordinator knowing its workers
# (Citus's node catalog is per database); pg_ingest on the coordinator only.
sub citus_db
{
	my ($db) = @_;
	for my $node ($coord, @workers)
	{
		create_db($node, $db);
		$node->safe_psql($db, 'CREATE EXTENSION citus');
	}
	$coord->safe_psql($db, "SELECT citus_set_coordinator_host('127.0.0.1', " . $coord->port . ')');
	$coord->safe_psql($db, "SELECT citus_add_node('127.0.0.1', " . $_->port . ')') for @workers;
	$coord->safe_psql($db, 'SET citus.enable_ddl_propagation = off; CREATE EXTENSION pg_ingest');
}
citus_db($_) for qw(mapped existing);
is($coord->safe_psql('mapped', 'SELECT count(*) FROM citus_get_active_worker_nodes()'), '2',
	'the coordinator has two workers');

# --- the source ------------------------------------------------------------
my $schema = q{
	CREATE TABLE orders (customer_id int NOT NULL, order_id int NOT NULL, amount numeric NOT NULL,
		note text, PRIMARY KEY (customer_id, order_id));
	CREATE TABLE order_items (customer_id int NOT NULL, order_id int NOT NULL, item_id int NOT NULL,
		qty int NOT NULL, PRIMARY KEY (customer_id, order_id, item_id),
		FOREIGN KEY (customer_id, order_id) REFERENCES orders ON DELETE CASCADE);
	CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL, hits int NOT NULL DEFAULT 0);
	CREATE TABLE local_notes (id serial PRIMARY KEY, body text);
};
$source->safe_psql('app', "SET ROLE migrator; $schema");
$source->safe_psql('app', q{
	SET ROLE migrator;
	INSERT INTO orders SELECT c, o, o * 1.5, 'order ' || o FROM generate_series(1, 400) c, generate_series(1, 500) o;
	INSERT INTO order_items SELECT c, o, i, i FROM generate_series(1, 400) c, generate_series(1, 100) o, generate_series(1, 2) i;
	INSERT INTO countries SELECT 'c' || i, 'country ' || i FROM generate_series(0, 19) i;
	INSERT INTO local_notes (body) SELECT 'note ' || i FROM generate_series(1, 1000) i;
	-- a TOASTed value (stored out of line, not compressible)
	UPDATE orders SET note = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g)
		WHERE customer_id = 1 AND order_id = 1;
});
my @tables = qw(orders order_items countries local_notes);

# Per table: row count and an order-independent hash of its rows, which
# Citus computes on the shards (no ORDER BY inside an aggregate).
sub hashes
{
	my ($node, $db) = @_;
	my %h;
	for my $t (@tables)
	{
		$h{$t} = $node->safe_psql($db,
			"SELECT count(*) || ':' || COALESCE(sum(('x' || substr(md5((x.*)::text), 1, 15))::bit(60)::bigint), 0)"
			  . " FROM $t AS x");
	}
	return \%h;
}

sub same_through_citus
{
	my ($db, $what) = @_;
	my $s = hashes($source, 'app');
	my $t = hashes($coord, $db);
	my @differ = grep { $s->{$_} ne $t->{$_} } @tables;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return is_deeply(\@differ, [], $what)
	  || diag(join("\n", map { "$_: $s->{$_} vs $t->{$_}" } @differ));
}

sub wait_applied
{
	my ($db, $name, $what) = @_;
	my $lsn = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
	return poll_until($coord, $db,
		"SELECT applied_lsn >= '$lsn' FROM ingest.status WHERE name = '$name'", 't', $what);
}

# The shells on the coordinator hold no rows (their heap is empty), the
# workers' shards do.
sub shells_empty
{
	my ($db) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is($coord->safe_psql($db,
			q{SELECT string_agg(t || ' ' || pg_relation_size(t::regclass), ', ' ORDER BY t)
			  FROM unnest(ARRAY['orders', 'order_items', 'countries']) t}),
		'countries 0, order_items 0, orders 0', "$db: the coordinator's shell tables hold no rows");
	cmp_ok($coord->safe_psql($db, q{SELECT pg_relation_size('local_notes')}), '>', 0,
		"$db: the local table holds its rows on the coordinator");
	my $on_workers = 0;
	$on_workers += $_->safe_psql($db,
		q{SET citus.override_table_visibility = off;
		  SELECT count(*) FROM pg_class WHERE relname ~ '^orders_[0-9]+$' AND pg_relation_size(oid) > 0})
	  for @workers;
	cmp_ok($on_workers, '>', 1, "$db: the workers' shards of orders hold rows");
}

my $map = q{'{"public.orders": "customer_id",
	"public.order_items": {"column": "customer_id", "colocate_with": "public.orders"},
	"public.countries": "reference"}'};

# --- the map checked at start ---------------------------------------------
$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE SCHEMA bad;
	CREATE TABLE bad.keyed (id int PRIMARY KEY, tenant int NOT NULL);
	CREATE TABLE bad.child (id int PRIMARY KEY, tenant int NOT NULL, parent int REFERENCES bad.keyed);
});
for my $case (
	[ q{'{"bad.keyed": "nosuch"}'}, qr/cannot distribute bad\.keyed: the source table has no column "nosuch"/ ],
	[ q{'{"bad.keyed": "tenant"}'},
		qr/cannot distribute bad\.keyed: its unique index bad\.keyed_pkey does not contain the distribution column "tenant"/ ],
	[ q{'{"bad.keyed": "id"}'},
		qr/cannot distribute bad\.keyed: foreign key "child_parent_fkey" of bad\.child, which the map leaves a local table, references it/ ],
	[ q{'{"bad.keyed": "id", "bad.child": "id"}'},
		qr/cannot distribute bad\.child: its foreign key "child_parent_fkey" references bad\.keyed, which the map distributes without co-locating it with this one/ ],
	[ q{'{"bad.keyed": "reference", "bad.child": {"column": "id", "colocate_with": "bad.keyed"}}'},
		qr/cannot distribute bad\.child: colocate_with names bad\.keyed, which is not another distributed table of the map/ ],
	[ q{'{"bad.nosuch": "reference"}'}, qr/cannot distribute bad\.nosuch: the source has no such table/ ],
	[ q{'["bad.keyed"]'}, qr/distribute must be a JSON object/ ])
{
	my ($m, $re) = @$case;
	my ($ret, $out, $err) = $coord->psql('mapped',
		"SELECT ingest.start('$conn', name => 'bad', include_schemas => '{bad}', distribute => $m)");
	like($err, $re, "ingest.start refuses the map $m");
}
my ($ret, $out, $err) = $coord->psql('existing',
	"SELECT ingest.start('$conn', name => 'bad', schema => 'existing', distribute => $map)");
like($err, qr/distribute applies to schema => 'copy' only/, "schema => 'existing' takes no map");
is($coord->safe_psql('mapped', 'SELECT count(*) FROM ingest.migration'), '0', 'no migration was recorded');
# ingest.preflight checks a map as ingest.start does
is($coord->safe_psql('mapped',
		"SELECT status FROM ingest.preflight('$conn', distribute => $map) WHERE check_name = 'citus_distribution'"),
	'PASS', 'ingest.preflight passes the map');
like($coord->safe_psql('mapped',
		qq{SELECT status || ' ' || detail FROM ingest.preflight('$conn', distribute => '{"bad.keyed": "tenant"}')
		   WHERE check_name = 'citus_distribution'}),
	qr/^FAIL cannot distribute bad\.keyed: its unique index bad\.keyed_pkey does not contain the distribution column "tenant": Citus enforces/,
	'and fails a bad one, saying why');
$source->safe_psql('app', 'DROP SCHEMA bad CASCADE');

# pgbench writes into every table from before the start to the cutover
my $script = PostgreSQL::Test::Utils::tempdir() . '/orders.sql';
open my $fh, '>', $script or die $!;
print $fh q{
\set c random(1, 400)
\set o random(1000, 100000000)
BEGIN;
INSERT INTO orders VALUES (:c, :o, 1, 'pgbench') ON CONFLICT DO NOTHING;
INSERT INTO order_items VALUES (:c, :o, 1, 1) ON CONFLICT DO NOTHING;
UPDATE orders SET amount = amount + 1 WHERE customer_id = :c AND order_id = (:o % 400) + 2;
UPDATE countries SET hits = hits + 1 WHERE code = 'c' || (:c % 20);
INSERT INTO local_notes (body) VALUES ('pgbench');
END;
};
close $fh;
my $pgbench_out = '';
my $pgbench = do
{
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	IPC::Run::start(
		[ 'pgbench', '-n', '-c', '2', '-R', '25', '-T', '900', '-f', $script,
			source_connstr($source, password => undef) ],
		'>&', \$pgbench_out);
};
$source->poll_query_until('app', q{SELECT count(*) > 20 FROM local_notes WHERE body = 'pgbench'})
  or die 'pgbench does not write';

# --- the map: a live migration, a copy worker killed mid-table --------------
$coord->safe_psql('mapped',
	"SELECT ingest.start('$conn', name => 'live', table_jobs => 2, index_jobs => 2, distribute => $map)");
my $pid = worker_pid($coord, 'mapped', 'copy', undef, 'COALESCE(item_id, 0) > 0 AND rows > 1000');
ok(defined $pid, 'a copy worker copies a table');
kill 'KILL', $pid if defined $pid;
ok(wait_phase($coord, 'mapped', 'live', 'streaming'), 'the migration recovers from the kill and streams');

is($coord->safe_psql('mapped', q{SELECT string_agg(DISTINCT source_table || ' ' || COALESCE(distribution, 'local'), ', ')
	FROM ingest.tables WHERE name = 'live'}),
	'public.countries reference, public.local_notes local, public.order_items hash(customer_id), public.orders hash(customer_id)',
	'ingest.tables shows each table\'s distribution');
is($coord->safe_psql('mapped', q{SELECT count(DISTINCT colocationid) FROM pg_dist_partition
	WHERE logicalrelid IN ('orders'::regclass, 'order_items'::regclass)}), '1',
	'orders and order_items are co-located');
is($coord->safe_psql('mapped', q{SELECT count(*) FROM pg_constraint
	WHERE conrelid = 'order_items'::regclass AND contype = 'f'}), '1',
	'the foreign key of order_items is there (post-data through Citus)');

# --- changes of every kind while pgbench goes on ------------------------
$source->safe_psql('app', q{
	-- the TOASTed note unchanged
	UPDATE orders SET amount = amount + 100 WHERE customer_id = 1 AND order_id = 1;
	-- the distribution column: the row moves to another shard (no items: order_id > 100)
	UPDATE orders SET customer_id = customer_id + 1000 WHERE customer_id IN (2, 3, 4, 5) AND order_id = 300;
	DELETE FROM orders WHERE customer_id = 6 AND order_id <= 10;   -- cascades to its items
	DELETE FROM order_items WHERE customer_id = 7;
	UPDATE countries SET name = 'renamed' WHERE code = 'c1';
});
ok(wait_applied('mapped', 'live', 'the changes'), 'the changes are applied');
# pgbench stops: the contents can be compared
$pgbench->signal('TERM');
$pgbench->finish;
ok(wait_applied('mapped', 'live', 'pgbench\'s last changes'), 'pgbench\'s last changes are applied');
same_through_citus('mapped', 'every table matches the source while streaming');
is($coord->safe_psql('mapped', 'SELECT customer_id FROM orders WHERE order_id = 300 AND customer_id > 1000 ORDER BY 1'),
	"1002\n1003\n1004\n1005", 'rows whose distribution column changed are found through Citus');

# TRUNCATE of a reference table and of a distributed table reaches the shards
$source->safe_psql('app', q{
	BEGIN;
	TRUNCATE countries;
	INSERT INTO countries SELECT 'c' || i, 'again ' || i FROM generate_series(0, 19) i;
	COMMIT;
	TRUNCATE order_items;
});
ok(wait_applied('mapped', 'live', 'the truncates'), 'the truncates are applied');
same_through_citus('mapped', 'every table matches the source after the truncates');

# --- cutover ---------------------------------------------------------------
my $cut = $coord->safe_psql('mapped', "SELECT ingest.cutover('live')");
like($cut, qr{^[0-9A-F]+/[0-9A-F]+$}, 'cutover returns the stop LSN');
is($coord->safe_psql('mapped', "SELECT phase FROM ingest.status WHERE name = 'live'"),
	'completed', 'the migration is completed');
same_through_citus('mapped', 'every table read through Citus has the source\'s content');
is($coord->safe_psql('mapped', "SELECT count(*) FROM ingest.verify('live') WHERE status <> 'MATCH'"),
	'0', 'ingest.verify agrees');
shells_empty('mapped');

# --- schema => 'existing' into tables distributed beforehand ---------------
$coord->safe_psql('existing', $schema . q{
	SELECT create_reference_table('countries');
	SELECT create_distributed_table('orders', 'customer_id');
	SELECT create_distributed_table('order_items', 'customer_id', colocate_with => 'orders');
});
# a row already in a shard is a row on this server: refused, as any table's
$coord->safe_psql('existing', q{INSERT INTO orders VALUES (5, 5, 5, 'already here')});
($ret, $out, $err) = $coord->psql('existing',
	"SELECT ingest.start('$conn', name => 'ex', schema => 'existing', table_jobs => 2)");
like($err, qr/1 table to copy already has rows on this server.*\n.*orders/,
	"schema => 'existing': a distributed table with rows in its shards is refused (its shell is empty)");
$coord->safe_psql('existing', q{DELETE FROM orders});
$coord->safe_psql('existing',
	"SELECT ingest.start('$conn', name => 'ex', schema => 'existing', table_jobs => 2)");
ok(wait_phase($coord, 'existing', 'ex', 'streaming'), "schema => 'existing': the migration streams");
is($coord->safe_psql('existing', q{SELECT count(*) FROM ingest.events WHERE name = 'ex' AND kind = 'retry'}),
	'0', 'no copy was retried: order_items, copied beside orders, does not trip the foreign key on the shards'
	  . ' (session_replication_role = replica reaches them)');
$source->safe_psql('app', q{
	INSERT INTO order_items VALUES (1, 1, 1, 1), (1, 1, 2, 2);
	UPDATE orders SET customer_id = 9999 WHERE customer_id = 1002 AND order_id = 300;
	DELETE FROM countries WHERE code = 'c2';
	INSERT INTO local_notes (body) VALUES ('existing');
});
ok(wait_applied('existing', 'ex', 'the changes'), 'the changes are applied');
$cut = $coord->safe_psql('existing', "SELECT ingest.cutover('ex')");
is($coord->safe_psql('existing', "SELECT phase FROM ingest.status WHERE name = 'ex'"),
	'completed', 'the migration is completed');
same_through_citus('existing', 'every table read through Citus has the source\'s content');
shells_empty('existing');

# --- resync => 'at_cutover' of a distributed table without a key -----------
# Its UPDATEs and DELETEs are not decoded, so the stop copies it again: the
# table must be emptied through Citus (its shards), not only its shell, or
# the copy would add its rows a second time.
citus_db('resync');
$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE SCHEMA logs;
	CREATE TABLE logs.audit (customer_id int NOT NULL, msg text);
	INSERT INTO logs.audit SELECT i % 50, 'row ' || i FROM generate_series(1, 5000) i;
});
$coord->safe_psql('resync',
	"SELECT ingest.start('$conn', name => 'rs', include_schemas => '{logs}', resync => 'at_cutover',"
	  . q{ distribute => '{"logs.audit": "customer_id"}')});
ok(wait_phase($coord, 'resync', 'rs', 'streaming'), 'resync: the migration streams');
$source->safe_psql('app', q{
	INSERT INTO logs.audit VALUES (7, 'new');
	UPDATE logs.audit SET msg = 'changed' WHERE customer_id = 3;
	DELETE FROM logs.audit WHERE customer_id = 4;
});
$coord->safe_psql('resync', "SELECT ingest.cutover('rs')");
is($coord->safe_psql('resync', "SELECT phase FROM ingest.status WHERE name = 'rs'"),
	'completed', 'resync: the migration is completed');
my $audit = q{SELECT count(*) || ':' || COALESCE(sum(('x' || substr(md5((x.*)::text), 1, 15))::bit(60)::bigint), 0)
	FROM logs.audit AS x};
is($coord->safe_psql('resync', $audit), $source->safe_psql('app', $audit),
	'the table copied again at the stop, read through Citus, has the source\'s content (no row twice)');
is($coord->safe_psql('resync', q{SELECT pg_relation_size('logs.audit')}), '0',
	'and its shell holds no rows');

done_testing();
