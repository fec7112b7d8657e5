# Objects logical decoding does not carry as rows, while a migration streams
# (issue 8, items 3, 5 and 6), under a little write load:
# - REFRESH MATERIALIZED VIEW [CONCURRENTLY] on the source: its changes (and
#   wal2json's notices for the DELETEs it cannot identify) are left out, the
#   migration streams on; at the stop every materialized view is refreshed,
#   one over another after it, emptied if it is not populated on the source;
#   with pg_ingest.refresh_matviews_at_stop off it is not, and an event says so;
# - a REPLICA IDENTITY FULL table with point, box, polygon, json, xml and
#   line columns (no equality operator): UPDATE and DELETE apply, duplicate
#   rows included;
# - sequences are brought up to the source's values while streaming, before
#   any stop, and never go backwards.

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
	'pg_ingest.retry_delay'            => "'200ms'",
	'pg_ingest.sequence_sync_interval' => "'1s'");
my $conn = source_connstr($source);

$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE base (id int PRIMARY KEY, grp int, v numeric);
	INSERT INTO base SELECT g, g % 10, g FROM generate_series(1, 1000) g;
	-- mv_sum is over a view over mv_tally: refreshed after it, though
	-- its name sorts first
	CREATE MATERIALIZED VIEW mv_tally AS SELECT grp, count(*) AS n, sum(v) AS s FROM base GROUP BY grp;
	CREATE UNIQUE INDEX ON mv_tally (grp);
	CREATE VIEW v_tally AS SELECT grp, n, s FROM mv_tally WHERE n > 0;
	CREATE MATERIALIZED VIEW mv_sum AS SELECT count(*) AS groups, sum(n) AS n, sum(s) AS s FROM v_tally;
	CREATE MATERIALIZED VIEW mv_rows AS SELECT id, v FROM base;
	CREATE UNIQUE INDEX ON mv_rows (id);
	CREATE MATERIALIZED VIEW mv_later AS SELECT id FROM base WHERE id <= 10 WITH NO DATA;
	CREATE MATERIALIZED VIEW mv_gone AS SELECT id FROM base WHERE id <= 10;
	CREATE TABLE marker (id int PRIMARY KEY);

	CREATE TABLE geo (p point, b box, pg polygon, j json, x xml, l line, n int);
	ALTER TABLE geo REPLICA IDENTITY FULL;
	INSERT INTO geo SELECT point(g, g / 3.0), box(point(g, g), point(g + 1.5, g / 7.0)),
		polygon(box(point(0, 0), point(g, g + 0.1))), json_build_object('g', g, 'w', ' x ')::json,
		xmlelement(name e, xmlattributes(g AS a), 'v'), line(point(0, 0), point(1, g + 1)), g % 5
		FROM generate_series(1, 60) g;
	INSERT INTO geo SELECT * FROM geo WHERE n = 0;		-- duplicate rows

	CREATE SEQUENCE seq_c;
	SELECT setval('seq_c', 10);
	CREATE SEQUENCE seq_down INCREMENT BY -1 MAXVALUE 1000 START 1000;
	CREATE SEQUENCE seq_idle;
	CREATE TABLE load_t (id bigserial PRIMARY KEY, v float8);
});

# a little write load, on its own table
my $script = PostgreSQL::Test::Utils::tempdir() . '/load.sql';
open my $fh, '>', $script or die $!;
print $fh "INSERT INTO load_t (v) VALUES (random());\n";
close $fh;
my $load_out = '';
my $load = do
{
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	IPC::Run::start(
		[ 'pgbench', '-n', '-c', '1', '-R', '50', '-T', '600', '-f', $script,
			source_connstr($source, password => undef) ],
		'>&', \$load_out);
};
$source->poll_query_until('app', 'SELECT count(*) > 5 FROM load_t')
  or die "the load does not write: $load_out";

my @tables = qw(base marker geo load_t);
my @matviews = qw(mv_tally mv_sum mv_rows mv_later mv_gone);
my $populated = "SELECT string_agg(relname || ':' || relispopulated, ',' ORDER BY relname)"
  . " FROM pg_class WHERE relkind = 'm'";
my $marker = 0;

# Wait until the target has applied everything the source committed so far.
sub applied
{
	my ($db, $what) = @_;
	$marker++;
	$source->safe_psql('app', "INSERT INTO marker VALUES ($marker)");
	return poll_until($target, $db, "SELECT count(*) FROM marker WHERE id = $marker", '1',
		"marker $marker in $db ($what)");
}

# a matview's rows, for comparing: unpopulated ones have none to read
sub matview_hashes
{
	my ($node, $db) = @_;
	my %h;
	for my $mv (@matviews)
	{
		$h{$mv} =
		  $node->safe_psql($db, "SELECT relispopulated FROM pg_class WHERE oid = '$mv'::regclass") eq 't'
		  ? $node->safe_psql($db,
			"SELECT count(*) || ':' || md5(string_agg((x.*)::text, '|' ORDER BY (x.*)::text)) FROM $mv x")
		  : 'unpopulated';
	}
	return \%h;
}

# --- the migration streams ------------------------------------------------
create_db($target, 'live');
$target->safe_psql('live', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('live', "SELECT ingest.start('$conn', name => 'live', table_jobs => 2, index_jobs => 1)");
ok(wait_phase($target, 'live', 'live', 'streaming'), 'the copy is done and the migration streams');
is($target->safe_psql('live', $populated),
	'mv_gone:true,mv_later:false,mv_rows:true,mv_sum:true,mv_tally:true',
	'the copy populated the materialized views populated on the source');

# --- (c) sequences followed while streaming, before any stop --------------
$source->safe_psql('app', q{
	SELECT nextval('seq_c') FROM generate_series(1, 500);
	SELECT nextval('seq_down') FROM generate_series(1, 30);
});
my $want_c = $source->safe_psql('app', 'SELECT last_value FROM seq_c');
my $want_load = $source->safe_psql('app', 'SELECT last_value FROM load_t_id_seq');
my $want_down = $source->safe_psql('app', 'SELECT last_value FROM seq_down');
is($want_down, '971', 'the decreasing sequence went down on the source');
ok( poll_until($target, 'live',
		"SELECT (SELECT last_value FROM seq_c) >= $want_c AND (SELECT last_value FROM load_t_id_seq) >= $want_load"
		  . " AND (SELECT last_value FROM seq_down) <= $want_down AND (SELECT is_called FROM seq_down)",
		't', 'the sequences to follow the source'),
	'while streaming, the sequences reach the source\'s values (an increasing, a decreasing one, one under load)');
is($target->safe_psql('live', 'SELECT is_called FROM seq_idle'), 'f', 'a sequence never called stays so');
# under load the target follows, and never goes backwards
{
	my @seen;
	my $deadline = time + 30;
	my $start = $target->safe_psql('live', 'SELECT last_value FROM load_t_id_seq');
	while (time < $deadline)
	{
		push @seen, $target->safe_psql('live', 'SELECT last_value FROM load_t_id_seq');
		last if $seen[-1] > $start && @seen > 10;
		select(undef, undef, undef, 0.1);
	}
	my @back = grep { $seen[$_] < $seen[ $_ - 1 ] } 1 .. $#seen;
	cmp_ok($seen[-1], '>', $start, 'the sequence under load moves on the target while streaming');
	is(scalar(@back), 0, 'and never backwards') or diag("seen: @seen");
}
# a target sequence ahead of the source is not moved back: a round after
# the setval here is one that brings load_t_id_seq past a value taken after it
$target->safe_psql('live', "SELECT setval('seq_c', 100000)");
$source->safe_psql('app', "SELECT nextval('seq_c')");
my $after = $source->safe_psql('app', "SELECT max(nextval('load_t_id_seq')) FROM generate_series(1, 1000)");
ok( poll_until($target, 'live', "SELECT last_value >= $after FROM load_t_id_seq", 't',
		'a round of the sequence sync'),
	'a later round of the sync');
is($target->safe_psql('live', 'SELECT last_value FROM seq_c'), '100000',
	'a target sequence ahead of the source stays where it is');
is($target->safe_psql('live',
		"SELECT count(*) FROM ingest.events WHERE name = 'live' AND kind = 'sequences'"),
	'1', 'one event says the sequences are kept current');

# --- (a) REFRESH on the source while streaming ----------------------------
$source->safe_psql('app', q{
	UPDATE base SET v = v + 1 WHERE id % 2 = 0;			-- 500 rows of mv_rows change
	DELETE FROM base WHERE id > 990;
	INSERT INTO base SELECT g, g % 10, g FROM generate_series(2001, 2020) g;
	REFRESH MATERIALIZED VIEW CONCURRENTLY mv_rows;		-- 510 DELETEs left out by wal2json
	REFRESH MATERIALIZED VIEW CONCURRENTLY mv_tally;
	REFRESH MATERIALIZED VIEW mv_sum;
	REFRESH MATERIALIZED VIEW mv_later;
	REFRESH MATERIALIZED VIEW mv_gone WITH NO DATA;
});
ok(applied('live', 'after the refreshes'), 'the migration applies what follows REFRESH [CONCURRENTLY] on the source');
is($target->safe_psql('live', "SELECT phase FROM ingest.status WHERE name = 'live'"), 'streaming',
	'and streams on');
is($target->safe_psql('live',
		"SELECT string_agg(object, ',' ORDER BY object) FROM ingest.events WHERE name = 'live' AND kind = 'matview'"),
	'public.mv_rows,public.mv_tally', 'one INFO event per materialized view whose changes are left out');

# --- (b) REPLICA IDENTITY FULL on types without equality ------------------
$source->safe_psql('app', q{
	UPDATE geo SET n = n + 100 WHERE n = 1;
	UPDATE geo SET p = point(-1, -1), j = '{"moved": true}' WHERE n = 2;
	DELETE FROM geo WHERE n = 3;
	-- one of two identical rows, by ctid
	DELETE FROM geo WHERE ctid = (SELECT min(ctid) FROM geo WHERE n = 0 AND p[0] = 5);
	UPDATE geo SET n = 42 WHERE ctid = (SELECT max(ctid) FROM geo WHERE n = 0 AND p[0] = 10);
	UPDATE geo SET x = '<f/>' WHERE n = 4;
});
ok(applied('live', 'after the changes to geo'), 'UPDATE and DELETE of a REPLICA IDENTITY FULL table of point, box, polygon, json, xml and line apply');
same_content($source, 'app', $target, 'live', ['geo'], 'and geo has the same rows on both sides, duplicates included');

# --- the stop ---------------------------------------------------------------
my $src_seq = $source->safe_psql('app',
	"SELECT string_agg(format('(%L, %s)', c.relname, COALESCE(pg_sequence_last_value(c.oid), 0)), ',')"
	  . " FROM pg_class c WHERE c.relkind = 'S'");
$load->signal('TERM');
$load->finish;
like($target->safe_psql('live', "SELECT ingest.cutover('live')"), qr{^[0-9A-F]+/[0-9A-F]+$}, 'cutover');
is($target->safe_psql('live', "SELECT phase FROM ingest.status WHERE name = 'live'"), 'completed',
	'the migration is completed');
same_content($source, 'app', $target, 'live', \@tables, 'every table has the same content on both sides');
is_deeply(matview_hashes($target, 'live'), matview_hashes($source, 'app'),
	'every materialized view is as on the source: refreshed in dependency order, populated or not');
is($target->safe_psql('live', $populated), $source->safe_psql('app', $populated),
	'populated where the source\'s are');
like($target->safe_psql('live',
		"SELECT message FROM ingest.events WHERE name = 'live' AND kind = 'matview' AND object IS NULL"),
	qr/^5 of 5 materialized views refreshed at the stop \(1 of them emptied as on the source\) in \d+ ms$/,
	'an event gives the count and time of the refreshes');
note($target->safe_psql('live',
		"SELECT string_agg(message, E'\\n' ORDER BY id) FROM ingest.events WHERE name = 'live' AND kind IN ('matview', 'sequences')"));
my $seq_ok = "SELECT string_agg(s.name, ',') FROM (VALUES %s) AS s(name, v) JOIN"
  . " (SELECT c.relname::text AS name, COALESCE(pg_sequence_last_value(c.oid), 0) AS v FROM pg_class c WHERE c.relkind = 'S') t USING (name)"
  . " WHERE CASE WHEN s.name = 'seq_down' THEN t.v > s.v ELSE t.v < s.v END";
is($target->safe_psql('live', sprintf($seq_ok, $src_seq)), '', 'every sequence is at least where the source is');

# --- pg_ingest.refresh_matviews_at_stop off --------------------------------
$target->safe_psql('postgres', 'ALTER SYSTEM SET pg_ingest.refresh_matviews_at_stop = off');
$target->reload;
ok(poll_until($target, 'postgres', 'SHOW pg_ingest.refresh_matviews_at_stop', 'off', 'the reload'),
	'refresh_matviews_at_stop is off');
$source->safe_psql('app', 'REFRESH MATERIALIZED VIEW mv_later WITH NO DATA; REFRESH MATERIALIZED VIEW mv_gone');
create_db($target, 'off');
$target->safe_psql('off', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('off', "SELECT ingest.start('$conn', name => 'off', table_jobs => 2, index_jobs => 1)");
ok(wait_phase($target, 'off', 'off', 'streaming'), 'a second migration streams');
my $at_copy = matview_hashes($target, 'off');
$source->safe_psql('app', q{
	UPDATE base SET v = v * 2 WHERE id < 100;
	REFRESH MATERIALIZED VIEW CONCURRENTLY mv_rows;
	REFRESH MATERIALIZED VIEW mv_tally;
	REFRESH MATERIALIZED VIEW mv_sum;
});
ok(applied('off', 'after the refreshes'), 'it applies what follows the refreshes');
$target->safe_psql('off', "SELECT ingest.cutover('off')");
is($target->safe_psql('off', "SELECT phase FROM ingest.status WHERE name = 'off'"), 'completed',
	'and completes');
same_content($source, 'app', $target, 'off', [qw(base geo)], 'its tables have the same content');
is_deeply(matview_hashes($target, 'off'), $at_copy,
	'its materialized views are not refreshed at the stop: they hold the copy\'s rows');
isnt(matview_hashes($target, 'off')->{mv_rows}, matview_hashes($source, 'app')->{mv_rows},
	'(the source\'s have changed)');
like($target->safe_psql('off',
		"SELECT string_agg(message, E'\\n') FROM ingest.events WHERE name = 'off' AND kind = 'matview'"),
	qr/materialized views not refreshed at the stop: pg_ingest\.refresh_matviews_at_stop is off/,
	'an event says they are not refreshed');

done_testing();
