# Issue 8's "done when": one live migration of a database holding every
# kind of object logical decoding does not carry, under pgbench, with the
# source's schema evolving while it streams, ends identical to the source.
#
# The source has PostGIS (spatial_ref_sys rows of its own, a geometry
# table), large objects, a materialized view refreshed while streaming,
# an unlogged table, a table with no key (resync => 'at_cutover'), a point
# column under REPLICA IDENTITY FULL, sequences; while pgbench writes, the
# schema changes (columns added, backfilled, renamed, retyped; tables
# created, dropped; an index built concurrently; a partition attached).
# After ingest.cutover(): pg_dump --schema-only of both sides is the same,
# every table's content hash is equal, every large object is equal, every
# sequence is at least the source's, and ingest.verify agrees.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $source = new_source('source');
my $target = new_target('target', autovacuum => 'off');
my $superuser = scalar getpwuid($<);
# a superuser may create the event trigger that carries schema changes
my $conn = source_connstr($source, user => $superuser, password => undef);

$source->safe_psql('app', 'CREATE EXTENSION postgis');
{
	my ($out, $err);
	IPC::Run::run([ 'pgbench', '-i', '-q', '-s', '1', '--foreign-keys', $source->connstr('app') ],
		'>', \$out, '2>', \$err)
	  or die "pgbench -i failed: $err";
}
$source->safe_psql('app', q{
	-- PostGIS: a spatial reference system of our own, a geometry table
	INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text)
		VALUES (910001, 'test', 910001, 'LOCAL_CS["test"]', '+proj=longlat +datum=WGS84');
	CREATE TABLE places (id int PRIMARY KEY, name text, g geometry(Point, 4326));
	INSERT INTO places SELECT i, 'p' || i, ST_SetSRID(ST_MakePoint(i, i / 2.0), 4326)
		FROM generate_series(1, 200) i;

	-- large objects: empty, small, larger than any chunk, with a comment
	SELECT lo_from_bytea(70001, '');
	SELECT lo_from_bytea(70002, 'small object');
	SELECT lo_from_bytea(70003, decode(repeat('0123456789abcdef', 200000), 'hex'));
	COMMENT ON LARGE OBJECT 70002 IS 'a comment';

	-- a materialized view over pgbench's data
	CREATE MATERIALIZED VIEW branch_totals AS
		SELECT bid, sum(abalance) AS total, count(*) AS n FROM pgbench_accounts GROUP BY bid;
	CREATE UNIQUE INDEX ON branch_totals (bid);

	-- what logical decoding cannot carry: an unlogged table, a table with
	-- no key (pgbench_history is another)
	CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY, v text);
	INSERT INTO scratch SELECT i, 'v' || i FROM generate_series(1, 100) i;
	CREATE TABLE nokey (v text, n int);
	INSERT INTO nokey SELECT 'v' || i, i FROM generate_series(1, 100) i;

	-- geometric types, no key: rows matched by all their columns
	CREATE TABLE shapes (p point, b box, j json, n int);
	ALTER TABLE shapes REPLICA IDENTITY FULL;
	INSERT INTO shapes SELECT point(i, i), box(point(0, 0), point(i, i)),
		json_build_object('i', i), i FROM generate_series(1, 50) i;
	INSERT INTO shapes VALUES (point(1, 1), box(point(0, 0), point(1, 1)), '{"i": 1}', 1);

	-- what the schema changes will touch
	CREATE TABLE items (id serial PRIMARY KEY, qty int NOT NULL, note text);
	INSERT INTO items (qty) SELECT i FROM generate_series(1, 500) i;
	CREATE TABLE empty_t (id int PRIMARY KEY);
	CREATE TABLE doomed (id int PRIMARY KEY);
	INSERT INTO doomed SELECT generate_series(1, 10);
	CREATE TABLE events (id int NOT NULL, at date NOT NULL, v text, PRIMARY KEY (id, at))
		PARTITION BY RANGE (at);
	CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
	INSERT INTO events SELECT i, date '2025-01-01' + i, 'e' FROM generate_series(1, 300) i;
});

my $pgbench_out = '';
my $pgbench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-R', '100', '-T', '600', $source->connstr('app') ],
	'>&', \$pgbench_out);
$source->poll_query_until('app', 'SELECT count(*) > 20 FROM pgbench_history')
  or die 'pgbench does not write';

create_db($target, 'dst');
$target->safe_psql('dst', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('dst',
	"SELECT ingest.start('$conn', name => 'all', table_jobs => 2, index_jobs => 2,"
	  . " resync => 'at_cutover', ddl => 'replicate')");
ok(wait_phase($target, 'dst', 'all', 'streaming'), 'the migration streams');
like($target->safe_psql('dst',
		"SELECT string_agg(message, ' | ') FROM ingest.events WHERE name = 'all' AND kind = 'ddl'"),
	qr/event trigger/, 'schema changes are carried by an event trigger on the source');

# --- a source user presets what the event trigger keeps between events ----
# (a "rewritten" empty table would fail the migration): not taken
my $ident = $source->safe_psql('app',
	"SELECT substring(evtname FROM '^_pg_ingest_ddl_(.*)_end\$') FROM pg_event_trigger"
	  . " WHERE evtname LIKE '\\_pg\\_ingest\\_ddl\\_%\\_end'");
ok($ident ne '', 'the event trigger is on the source');
$source->safe_psql('app',
	"SELECT set_config('_pg_ingest.r_$ident', '[{\"schema\": \"public\", \"name\": \"empty_t\"}]', false);"
	  . " SELECT set_config('_pg_ingest.d_$ident', '[{\"type\": \"table\", \"schema\": \"public\", \"name\": \"items\", \"identity\": \"public.items\"}]', false);"
	  . " COMMENT ON TABLE items IS 'commented while streaming';");

# --- while pgbench writes: data the stream does not carry, and DDL --------
$source->safe_psql('app', q{
	INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text)
		VALUES (910002, 'test', 910002, 'LOCAL_CS["test2"]', '+proj=longlat +datum=WGS84');
	INSERT INTO places VALUES (1000, 'new', ST_SetSRID(ST_MakePoint(5, 5), 4326));
	SELECT lo_from_bytea(70004, 'created while streaming');
	SELECT lo_put(70002, 0, 'SMALL');
	SELECT lo_unlink(70001);
	COMMENT ON LARGE OBJECT 70003 IS 'commented later';
	REFRESH MATERIALIZED VIEW CONCURRENTLY branch_totals;
	UPDATE scratch SET v = 'changed' WHERE id <= 10;
	DELETE FROM scratch WHERE id > 90;
	UPDATE nokey SET n = -n WHERE n <= 20;
	DELETE FROM nokey WHERE n > 80;
	UPDATE shapes SET n = n + 1000 WHERE p ~= point(1, 1);
	DELETE FROM shapes WHERE n = 7;
	SELECT nextval('items_id_seq') FROM generate_series(1, 1000);
});
$source->safe_psql('app', q{
	ALTER TABLE items ADD COLUMN color text;
	UPDATE items SET color = CASE WHEN id % 2 = 0 THEN 'red' ELSE 'blue' END;
	ALTER TABLE items ADD COLUMN weight int NOT NULL DEFAULT 7;
	ALTER TABLE items RENAME COLUMN note TO remark;
	UPDATE items SET remark = 'renamed' WHERE id <= 5;
	ALTER TABLE items ALTER COLUMN qty TYPE bigint;
	UPDATE items SET qty = qty + 5000000000 WHERE id <= 3;
	CREATE TABLE fresh (id bigserial PRIMARY KEY, v text);
	INSERT INTO fresh (v) SELECT 'f' || i FROM generate_series(1, 100) i;
	DROP TABLE doomed;
	CREATE TABLE events_2026 (LIKE events INCLUDING ALL);
	INSERT INTO events_2026 VALUES (1, '2026-02-01', 'pre-attach');
	ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
	INSERT INTO events VALUES (2, '2026-03-01', 'after attach');
	ALTER TABLE pgbench_accounts ADD COLUMN touched bool DEFAULT false;
	REFRESH MATERIALIZED VIEW branch_totals;
});
$source->safe_psql('app', 'CREATE INDEX CONCURRENTLY items_color_idx ON items (color)');
$source->safe_psql('app', q{
	UPDATE items SET weight = 9 WHERE id BETWEEN 10 AND 20;
	INSERT INTO items (qty, remark, color) VALUES (1, 'late', 'green');
	INSERT INTO fresh (v) VALUES ('last');
	UPDATE pgbench_accounts SET touched = true WHERE aid <= 100;
});

$pgbench->signal('TERM');
$pgbench->finish;
# the stop computes the target's materialized views from its tables: the
# source's view is fresh too
$source->safe_psql('app', 'REFRESH MATERIALIZED VIEW branch_totals');

my $cut = $target->safe_psql('dst', "SELECT ingest.cutover('all', timeout => '10 min')");
like($cut, qr{^[0-9A-F]+/[0-9A-F]+$}, 'cutover completes');
is($target->safe_psql('dst', "SELECT phase FROM ingest.status WHERE name = 'all'"),
	'completed', 'the migration is completed');
$target->safe_psql('dst', "SELECT ingest.cleanup('all')");

# --- the schema: pg_dump of both sides ------------------------------------
sub schema_dump
{
	my ($node, $db) = @_;
	my ($out, $err);
	IPC::Run::run([ 'pg_dump', '--schema-only', '--no-owner', '--no-privileges',
			'--exclude-schema', 'ingest', $node->connstr($db) ], '>', \$out, '2>', \$err)
	  or die "pg_dump failed: $err";
	# pg_ingest's own extension, comments, pg_dump's random \restrict keys
	$out = join("\n", grep { !/pg_ingest|^--|^$|^\\(un)?restrict / } split /\n/, $out);
	return $out;
}
my $src_schema = schema_dump($source, 'app');
my $dst_schema = schema_dump($target, 'dst');
unlike($src_schema, qr/EVENT TRIGGER/, 'nothing of pg_ingest is left on the source after cleanup');
if (!is($dst_schema, $src_schema, 'pg_dump --schema-only of both sides is the same'))
{
	my $d = PostgreSQL::Test::Utils::tempdir();
	open my $a, '>', "$d/src.sql"; print $a $src_schema; close $a;
	open my $b, '>', "$d/dst.sql"; print $b $dst_schema; close $b;
	diag(`diff -u $d/src.sql $d/dst.sql | head -80`);
}

# --- every table's content ------------------------------------------------
my @tables = split /\n/, $source->safe_psql('app', q{
	SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
	  JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
	   AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1});
ok(grep({ $_ eq 'public.fresh' } @tables) && grep({ $_ eq 'public.spatial_ref_sys' } @tables),
	'the comparison covers the new table and PostGIS\'s table');
same_content($source, 'app', $target, 'dst', \@tables, 'every table has the same content');

# --- large objects ----------------------------------------------------------
my $lo_sql = q{SELECT string_agg(format('%s:%s:%s', oid, md5(lo_get(oid)),
	  obj_description(oid, 'pg_largeobject')), ',' ORDER BY oid) FROM pg_largeobject_metadata};
is($target->safe_psql('dst', $lo_sql), $source->safe_psql('app', $lo_sql),
	'every large object is the same, with its comment');

# --- sequences --------------------------------------------------------------
my $src_seq = sequence_values($source, 'app');
my $dst_seq = sequence_values($target, 'dst');
my @behind = grep { !defined $dst_seq->{$_} || $dst_seq->{$_} < $src_seq->{$_} } sort keys %$src_seq;
is_deeply(\@behind, [], 'every sequence is at least the source\'s');

# --- ingest.verify ----------------------------------------------------------
is($target->safe_psql('dst',
		"SELECT count(*) FROM ingest.verify('all') WHERE status <> 'MATCH'"),
	'0', 'ingest.verify finds no difference');

done_testing();
