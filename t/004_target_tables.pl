# Target tables: what a migration writes into, and how.
#
# - Partitions: schema => 'existing' into a partitioned target from a plain
#   source table, and from a partitioned source into a plain target table
#   of the root's name; inserts, updates (one moving a row between
#   partitions), deletes and TRUNCATE during CDC; cutover; content hashes.
# - Privileges and row-level security of the migration's owner, a member
#   of ingest_admin who is not a superuser: refused at start, and a REVOKE
#   after the start fails the migration, naming the table and privilege,
#   with nothing written; the error is in the server log too.
# - Tables the workers must never write into: a table listed in a
#   pg_dist_partition without the extension citus (simulated here: rows
#   would land in a shell table; real Citus tables are written through
#   Citus, t/029_citus.pl) and an extension's member, refused at start and
#   by the copy worker.
# - The applier makes what it applied durable without asking to flush WAL
#   past what was written: it reaches its stop while the target's WAL
#   insert position sits at the start of a page.

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

# rows of a table (partitioned or not), by column name: independent of the
# column order of partitions
sub hash_of
{
	my ($node, $db, $table) = @_;
	return $node->safe_psql($db,
		"SELECT count(*) || ':' || COALESCE(md5(string_agg(md5(ROW(id, region, v)::text), '' ORDER BY md5(ROW(id, region, v)::text))), '')"
		  . " FROM $table");
}

sub events
{
	my ($db, $name) = @_;
	return $target->safe_psql($db,
		"SELECT string_agg(format('%s %s %s', level, kind, message), E'\\n' ORDER BY id)"
		  . " FROM ingest.events WHERE name = '$name'");
}

# --- partitions ----------------------------------------------------------
$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE plain_to_part (id int, region text, v text, PRIMARY KEY (id, region));
	CREATE TABLE part_to_plain (id int, region text, v text, PRIMARY KEY (id, region))
		PARTITION BY LIST (region);
	CREATE TABLE part_to_plain_eu PARTITION OF part_to_plain FOR VALUES IN ('eu');
	CREATE TABLE part_to_plain_us PARTITION OF part_to_plain FOR VALUES IN ('us');
	INSERT INTO plain_to_part SELECT i, CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, 'v' || i
		FROM generate_series(1, 1000) i;
	INSERT INTO part_to_plain SELECT * FROM plain_to_part;
});

create_db($target, 'parts');
$target->safe_psql('parts', q{
	CREATE EXTENSION pg_ingest;
	CREATE TABLE plain_to_part (id int, region text, v text, PRIMARY KEY (id, region))
		PARTITION BY LIST (region);
	CREATE TABLE plain_to_part_eu PARTITION OF plain_to_part FOR VALUES IN ('eu');
	-- a partition whose columns are in another order
	CREATE TABLE plain_to_part_us (v text, region text NOT NULL, id int NOT NULL);
	ALTER TABLE plain_to_part ATTACH PARTITION plain_to_part_us FOR VALUES IN ('us');
	CREATE TABLE part_to_plain (id int, region text, v text, PRIMARY KEY (id, region));
});
$target->safe_psql('parts',
	"SELECT ingest.start('$conn', name => 'parts', schema => 'existing')");
ok(wait_phase($target, 'parts', 'parts', 'streaming'),
	'the full load into a partitioned target and from a partitioned source is done');
is( $target->safe_psql('parts',
		"SELECT string_agg(source_table || '>' || target_table, ',' ORDER BY source_table)"
		  . " FROM ingest.tables WHERE name = 'parts'"),
	'public.part_to_plain_eu>public.part_to_plain,public.part_to_plain_us>public.part_to_plain,public.plain_to_part>public.plain_to_part',
	'ingest.tables shows the target table of each leaf');
for my $t (qw(plain_to_part part_to_plain))
{
	is(hash_of($target, 'parts', $t), hash_of($source, 'app', $t), "$t is copied");
}
is($target->safe_psql('parts', 'SELECT count(*) FROM ONLY plain_to_part_us'),
	'500', 'copied rows are routed to their partition');

$source->safe_psql('app', q{
	INSERT INTO plain_to_part VALUES (2001, 'eu', 'new'), (2002, 'us', 'new');
	INSERT INTO part_to_plain VALUES (2001, 'eu', 'new'), (2002, 'us', 'new');
	UPDATE plain_to_part SET v = 'updated' WHERE id IN (3, 4);
	UPDATE part_to_plain SET v = 'updated' WHERE id IN (3, 4);
	-- rows moving between partitions, one from each side
	UPDATE plain_to_part SET region = 'us', v = 'moved' WHERE id IN (10, 12);
	UPDATE part_to_plain SET region = 'us', v = 'moved' WHERE id IN (10, 12);
	UPDATE plain_to_part SET region = 'eu', v = 'moved back' WHERE id = 11;
	UPDATE part_to_plain SET region = 'eu', v = 'moved back' WHERE id = 11;
	DELETE FROM plain_to_part WHERE id BETWEEN 20 AND 29;
	DELETE FROM part_to_plain WHERE id BETWEEN 20 AND 29;
});
ok( poll_until($target, 'parts',
		"SELECT count(*) FROM plain_to_part WHERE v = 'moved back' AND region = 'eu'",
		'1', 'the moves to be applied'),
	'changes are applied');
for my $t (qw(plain_to_part part_to_plain))
{
	is(hash_of($target, 'parts', $t), hash_of($source, 'app', $t),
		"$t has every insert, update, move and delete");
}
is($target->safe_psql('parts',
		"SELECT count(*) FROM ONLY plain_to_part_us WHERE id IN (10, 12)"),
	'2', 'the moved rows are in their new partition');

# TRUNCATE: of a plain table into a partitioned one, and of a partitioned
# table whose leaves share one target table
$source->safe_psql('app', q{
	TRUNCATE plain_to_part, part_to_plain;
	INSERT INTO plain_to_part VALUES (1, 'eu', 'after truncate');
	INSERT INTO part_to_plain VALUES (1, 'us', 'after truncate');
});
$target->safe_psql('parts', "SELECT ingest.cutover('parts')");
is($target->safe_psql('parts', "SELECT phase || ' ' || errors FROM ingest.status WHERE name = 'parts'"),
	'completed 0', 'the migration completes without error')
  or diag(events('parts', 'parts'));
for my $t (qw(plain_to_part part_to_plain))
{
	is(hash_of($target, 'parts', $t), hash_of($source, 'app', $t),
		"$t is the same after TRUNCATE and cutover");
}

# a TRUNCATE of one leaf of several sharing a target table cannot be applied
$target->safe_psql('parts', 'TRUNCATE plain_to_part, part_to_plain');
$target->safe_psql('parts',
	"SELECT ingest.start('$conn', name => 'leaf', mode => 'cdc', schema => 'existing',"
	  . " include_tables => '{part_to_plain}')");
ok(wait_phase($target, 'parts', 'leaf', 'streaming'), 'a cdc migration of the partitioned table streams');
$source->safe_psql('app', q{
	INSERT INTO part_to_plain VALUES (5, 'eu', 'x'), (6, 'us', 'y');
	TRUNCATE part_to_plain_eu;
});
ok(wait_phase($target, 'parts', 'leaf', 'failed'), 'a TRUNCATE of one shared leaf fails the migration');
like( $target->safe_psql('parts', "SELECT last_error FROM ingest.migration WHERE name = 'leaf'"),
	qr/cannot apply a TRUNCATE of public\.part_to_plain_eu: its rows are in table public\.part_to_plain/,
	'naming the leaf and the table');
$target->safe_psql('parts', "SELECT ingest.abort('leaf')");

# a source key without the target's partition key cannot say where a row is
$source->safe_psql('app', q{
	CREATE TABLE public.by_id (id int PRIMARY KEY, region text, v text);
	ALTER TABLE public.by_id OWNER TO migrator;
});
$target->safe_psql('parts', q{
	CREATE TABLE public.by_id (id int, region text, v text, PRIMARY KEY (id, region))
		PARTITION BY LIST (region);
	CREATE TABLE public.by_id_eu PARTITION OF public.by_id FOR VALUES IN ('eu');
});
$target->safe_psql('parts',
	"SELECT ingest.start('$conn', name => 'by_id', mode => 'cdc', schema => 'existing',"
	  . " include_tables => '{public.by_id}')");
ok(wait_phase($target, 'parts', 'by_id', 'streaming'), 'a cdc migration into a table partitioned on a non-key column streams');
$source->safe_psql('app', q{
	INSERT INTO public.by_id VALUES (1, 'eu', 'x');
	UPDATE public.by_id SET v = 'y' WHERE id = 1;
});
ok(wait_phase($target, 'parts', 'by_id', 'failed'), 'an UPDATE whose key lacks the partition key fails the migration');
like( $target->safe_psql('parts', "SELECT last_error FROM ingest.migration WHERE name = 'by_id'"),
	qr/the source's key of public\.by_id lacks column "region" of the partition key of public\.by_id/,
	'saying which column is missing');
$target->safe_psql('parts', "SELECT ingest.abort('by_id')");

# --- privileges and row-level security ------------------------------------
$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE SCHEMA priv;
	CREATE TABLE priv.t (id int PRIMARY KEY, v text);
	CREATE TABLE priv.r (id int PRIMARY KEY, v text);
});
create_db($target, 'priv');
$target->safe_psql('priv', q{
	CREATE EXTENSION pg_ingest;
	CREATE ROLE mig LOGIN IN ROLE ingest_admin;
	CREATE SCHEMA priv;
	GRANT USAGE ON SCHEMA priv TO mig;
	CREATE TABLE priv.t (id int PRIMARY KEY, v text);
	GRANT SELECT, UPDATE ON priv.t TO mig;
	CREATE TABLE priv.r (id int PRIMARY KEY, v text);
	GRANT ALL ON priv.r TO mig;
	ALTER TABLE priv.r ENABLE ROW LEVEL SECURITY;
	CREATE POLICY everything ON priv.r USING (true);
});
my $start_priv = sub {
	my ($name, $table) = @_;
	return $target->psql('priv',
		"SELECT ingest.start('$conn', name => '$name', mode => 'cdc', schema => 'existing',"
		  . " include_tables => '{$table}')",
		extra_params => [ '-U', 'mig' ]);
};
my ($ret, $out, $err) = $start_priv->('p1', 'priv.t');
like($err, qr/permission denied for table priv\.t: role "mig" lacks privilege INSERT/,
	'ingest.start refuses a table the owner cannot INSERT into');
($ret, $out, $err) = $start_priv->('p2', 'priv.r');
like($err, qr/cannot migrate rows into table priv\.r: row-level security applies to role "mig"/,
	'ingest.start refuses a table under row-level security for the owner');
is($target->safe_psql('priv', 'SELECT count(*) FROM ingest.migration'), '0',
	'nothing recorded');

$target->safe_psql('priv', 'GRANT INSERT, DELETE ON priv.t TO mig');
($ret, $out, $err) = $start_priv->('p3', 'priv.t');
is($ret, 0, 'with the privileges, it starts') or diag($err);
ok(wait_phase($target, 'priv', 'p3', 'streaming'), 'and streams');
$source->safe_psql('app', "INSERT INTO priv.t VALUES (1, 'granted')");
ok(poll_until($target, 'priv', 'SELECT count(*) FROM priv.t', '1', 'the first row'),
	'a change is applied');

my $log_offset = -s $target->logfile;
$target->safe_psql('priv', 'REVOKE INSERT ON priv.t FROM mig');
$source->safe_psql('app', "INSERT INTO priv.t VALUES (2, 'revoked')");
ok(wait_phase($target, 'priv', 'p3', 'failed'), 'after a REVOKE, the next INSERT fails the migration');
like( $target->safe_psql('priv', "SELECT last_error FROM ingest.migration WHERE name = 'p3'"),
	qr/permission denied for table priv\.t: role "mig" lacks privilege INSERT/,
	'naming the table and the privilege');
is($target->safe_psql('priv', 'SELECT count(*) FROM priv.t'), '1', 'and nothing is written');
ok( $target->wait_for_log(qr/ERROR:  permission denied for table priv\.t: role "mig" lacks privilege INSERT/,
		$log_offset),
	"the applier's error is in the server log");
$target->safe_psql('priv', "SELECT ingest.abort('p3')");

# --- Citus tables and extension members: at start and in the copy worker ---
$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE SCHEMA never;
	CREATE TABLE never.dist (id int PRIMARY KEY);
	CREATE TABLE never.owned (id int PRIMARY KEY);
	INSERT INTO never.dist SELECT generate_series(1, 10);
	INSERT INTO never.owned SELECT generate_series(1, 10);
});
create_db($target, 'never');
$target->safe_psql('never', q{
	CREATE EXTENSION pg_ingest;
	CREATE SCHEMA never;
	CREATE TABLE never.dist (id int PRIMARY KEY);
	CREATE TABLE never.owned (id int PRIMARY KEY);
	SET allow_system_table_mods = on;
	CREATE TABLE pg_catalog.pg_dist_partition (logicalrelid regclass, partmethod "char");
});

# the check in the copy worker: the table is registered while the worker
# waits for its lock, after ingest.start checked it
for my $case (
	[ 'dist', q{INSERT INTO pg_catalog.pg_dist_partition VALUES ('never.dist', 'h')},
		qr/cannot migrate rows into table never\.dist: pg_dist_partition lists it but extension "citus" is not installed/ ],
	[ 'owned', q{ALTER EXTENSION pg_ingest ADD TABLE never.owned},
		qr/cannot migrate rows into table never\.owned: it belongs to extension "pg_ingest"/ ])
{
	my ($t, $register, $msg) = @$case;
	my $log_offset = -s $target->logfile;
	my $holder = $target->background_psql('never');
	$holder->query_safe("BEGIN; LOCK TABLE never.$t IN SHARE MODE");
	$target->safe_psql('never',
		"SELECT ingest.start('$conn', name => 'w_$t', schema => 'existing', include_tables => '{never.$t}')");
	ok( poll_until($target, 'never',
			"SELECT state FROM ingest.tables WHERE name = 'w_$t'",
			'copying', "the copy of $t to wait for the lock"),
		"the copy of $t waits");
	$holder->query_safe($register);
	$holder->query_safe('COMMIT');
	$holder->quit;
	ok(wait_phase($target, 'never', "w_$t", 'failed'), "the copy worker refuses never.$t");
	like($target->safe_psql('never', "SELECT last_error FROM ingest.migration WHERE name = 'w_$t'"),
		$msg, 'naming it');
	is($target->safe_psql('never', "SELECT count(*) FROM never.$t"), '0', 'nothing is written');
	ok($target->log_contains($msg, $log_offset), "the copy worker's error is in the server log");
	$target->safe_psql('never', "SELECT ingest.abort('w_$t')");

	# now at start
	($ret, $out, $err) = $target->psql('never',
		"SELECT ingest.start('$conn', name => 's_$t', schema => 'existing', include_tables => '{never.$t}')");
	like($err, $msg, "ingest.start refuses never.$t");
}
like($err, qr/ERROR:  cannot migrate/, 'with an ERROR');
($ret, $out, $err) = $target->psql('never',
	"\\set VERBOSITY verbose\nSELECT ingest.start('$conn', name => 's_dist', schema => 'existing', include_tables => '{never.dist}')");
like($err, qr/ERROR:  0A000: /, 'a table of pg_dist_partition without Citus is refused with feature_not_supported');

# --- the applier's flush with the WAL insert position on a page boundary ---
$source->safe_psql('app', q{
	CREATE TABLE public.tiny (id int PRIMARY KEY);
	ALTER TABLE public.tiny OWNER TO migrator;
});
create_db($target, 'wal');
$target->safe_psql('wal', q{
	CREATE EXTENSION pg_ingest;
	CREATE TABLE public.tiny (id int PRIMARY KEY);
});
$target->safe_psql('wal',
	"SELECT ingest.start('$conn', name => 'wal', mode => 'cdc', schema => 'existing', include_tables => '{public.tiny}')");
ok(wait_phase($target, 'wal', 'wal', 'streaming'), 'a migration streams');
$source->safe_psql('app', 'INSERT INTO public.tiny VALUES (1)');
ok(poll_until($target, 'wal', 'SELECT count(*) FROM public.tiny', '1', 'the row'),
	'and applies');

# Nothing else may write WAL on the target meanwhile: the coordinator is
# stopped (the applier acts on a stop request from shared memory alone).
my $coordinator = $target->safe_psql('wal',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ingest coordinator' AND datname = 'wal'");
like($coordinator, qr/^\d+$/, 'the coordinator runs');
kill 'STOP', $coordinator;
# Emit non-transactional messages until the insert position is the first
# byte after a page header: pg_current_wal_insert_lsn() is then 24 bytes
# past the boundary, which was not written.  Then ask for a stop that is
# already passed: the applier stops, making what it applied durable.
# Whatever the statements read is read once before (a read may prune a
# page, which writes WAL).
my $at_boundary = $target->safe_psql('wal', q{
	SELECT count(*) FROM ingest.migration;
	DO $$
	BEGIN
		PERFORM set_config('pad.at_boundary', 'false', false);
		PERFORM ingest.stop_at('0/10', 'nosuch');
	EXCEPTION WHEN OTHERS THEN
		NULL;
	END $$;
	PREPARE stop AS SELECT ingest.stop_at('0/10', 'wal');
	DO $$
	DECLARE
		pos bigint;
		room int;
		tries int := 0;
	BEGIN
		LOOP
			pos := pg_current_wal_insert_lsn() - '0/0'::pg_lsn;
			EXIT WHEN pos % 8192 = 24 OR tries > 50;
			room := 8192 - (pos % 8192)::int;
			-- record: 24 header, 2 or 5 data header, 24 message header,
			-- "p" and its NUL, the content; MAXALIGNed
			IF room < 64 THEN
				PERFORM pg_logical_emit_message(false, 'p', repeat('x', 100));
			ELSIF room - 52 < 230 THEN
				PERFORM pg_logical_emit_message(false, 'p', repeat('x', room - 52));
			ELSE
				PERFORM pg_logical_emit_message(false, 'p', repeat('x', room - 55));
			END IF;
			tries := tries + 1;
		END LOOP;
		PERFORM set_config('pad.at_boundary', (pos % 8192 = 24)::text, false);
	END $$;
	EXECUTE stop;
	SELECT current_setting('pad.at_boundary');
});
like($at_boundary, qr/^true$/m, 'the WAL insert position was on a page boundary');
kill 'CONT', $coordinator;
poll_until($target, 'wal',
	"SELECT phase IN ('completed', 'failed') FROM ingest.status WHERE name = 'wal'",
	't', 'the migration to end');
is($target->safe_psql('wal', "SELECT phase FROM ingest.status WHERE name = 'wal'"),
	'completed', 'the migration completes')
  or diag(events('wal', 'wal'));
unlike(events('wal', 'wal'), qr/xlog flush request/, 'no flush request past the written WAL');

done_testing();
