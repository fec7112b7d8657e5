# Schema changes on the source while a migration streams, read from the
# change stream itself (ddl => 'infer') or refused (ddl => 'off').
#
# ddl => 'infer', pgbench writing all along: ADD COLUMN (nullable, then NOT
# NULL with a default) and a backfill, int -> bigint, DROP COLUMN, each
# applied on the target where the stream shows it, with an INFO event; a
# rename fails the migration naming it, is fixed by hand on the target, and
# resume goes on.  ddl => 'off': an ADD COLUMN fails the migration with the
# table, the column, the LSN and the hint; the same change by hand, resume.
# After cutover every table has the source's content.

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

{
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	my ($out, $err);
	IPC::Run::run([ 'pgbench', '-i', '-q', '-s', '1', source_connstr($source, password => undef) ],
		'>', \$out, '2>', \$err)
	  or die "pgbench -i failed: $err";
}
$source->safe_psql('app', q{
	ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
	CREATE TABLE items (id int PRIMARY KEY, a int, note text, big text);
	INSERT INTO items SELECT g, g, 'n' || g, repeat('toast', 2000) FROM generate_series(1, 200) g;
	ALTER TABLE items OWNER TO migrator;
	CREATE TABLE parted (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
	CREATE TABLE parted_p1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
	INSERT INTO parted SELECT g, g % 100, 'p' FROM generate_series(1, 50) g;
	ALTER TABLE parted OWNER TO migrator;
	ALTER TABLE parted_p1 OWNER TO migrator;
});
create_db($source, 'app2', 'migrator');
$source->safe_psql('app2', q{
	CREATE TABLE t2 (id int PRIMARY KEY, v text);
	INSERT INTO t2 SELECT g, 'v' || g FROM generate_series(1, 100) g;
	ALTER TABLE t2 OWNER TO migrator;
});

my $pgbench_out = '';
my $pgbench = do
{
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	IPC::Run::start(
		[ 'pgbench', '-n', '-c', '1', '-R', '50', '-T', '600', source_connstr($source, password => undef) ],
		'>&', \$pgbench_out);
};

sub wait_applied
{
	my ($db, $name, $sdb, $what) = @_;
	my $lsn = $source->safe_psql($sdb, 'SELECT pg_current_wal_lsn()');
	return poll_until($target, $db,
		"SELECT applied_lsn >= '$lsn' FROM ingest.status WHERE name = '$name'",
		't', $what);
}

sub events
{
	my ($db, $name) = @_;
	return $target->safe_psql($db,
		"SELECT string_agg(format('%s %s %s %s', level, kind, object, message), E'\\n' ORDER BY id)"
		  . " FROM ingest.events WHERE name = '$name'");
}

# --- ddl => 'infer' --------------------------------------------------------
my $conn = source_connstr($source);
create_db($target, 'inf');
$target->safe_psql('inf', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('inf', "SELECT ingest.start('$conn', name => 'inf', ddl => 'infer')");
ok(wait_phase($target, 'inf', 'inf', 'streaming'), 'the infer migration streams');

# a nullable column, rows inserted with it, a backfill; an UPDATE that
# leaves the TOASTed "big" out must not read as a dropped column
$source->safe_psql('app', q{
	ALTER TABLE items ADD COLUMN c1 int;
	INSERT INTO items VALUES (1001, 1, 'new', 'b', 11);
	UPDATE items SET c1 = id * 2 WHERE id <= 50;
});
ok(wait_applied('inf', 'inf', 'app', 'the added column to be applied'), 'ADD COLUMN applied');
same_content($source, 'app', $target, 'inf', ['items'], 'items matches after ADD COLUMN and the backfill');

# a NOT NULL column with a default: rows that existed hold it on the source
$source->safe_psql('app', q{
	ALTER TABLE items ADD COLUMN c2 text NOT NULL DEFAULT 'dflt';
	INSERT INTO items (id, a, note, big, c1) VALUES (1002, 2, 'new', 'b', 12);
	UPDATE items SET c2 = 'set' WHERE id = 3;
});
ok(wait_applied('inf', 'inf', 'app', 'the NOT NULL column to be applied'), 'ADD COLUMN NOT NULL DEFAULT applied');
same_content($source, 'app', $target, 'inf', ['items'], 'items matches after ADD COLUMN ... NOT NULL DEFAULT');

# int -> bigint, with a value only bigint holds
$source->safe_psql('app', q{
	ALTER TABLE items ALTER COLUMN a TYPE bigint;
	INSERT INTO items (id, a, note, big, c1) VALUES (1003, 5000000000, 'big a', 'b', 13);
});
ok(wait_applied('inf', 'inf', 'app', 'the type change to be applied'), 'ALTER COLUMN TYPE applied');
is($target->safe_psql('inf', "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'a'"),
	'bigint', 'items.a is bigint on the target');

# a dropped column
$source->safe_psql('app', q{
	ALTER TABLE items DROP COLUMN note;
	INSERT INTO items (id, a, big, c1) VALUES (1004, 4, 'b', 14);
	DELETE FROM items WHERE id = 4;
});
ok(wait_applied('inf', 'inf', 'app', 'the dropped column to be applied'), 'DROP COLUMN applied');
is($target->safe_psql('inf', "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'note' AND NOT attisdropped"),
	'0', 'items.note is dropped on the target');
same_content($source, 'app', $target, 'inf', ['items'], 'items matches after ALTER TYPE and DROP COLUMN');

# a table created on the source while streaming, written to at once
$source->safe_psql('app', q{
	BEGIN;
	CREATE TABLE fresh (id serial PRIMARY KEY, v text, n int DEFAULT 7);
	ALTER TABLE fresh OWNER TO migrator;
	INSERT INTO fresh (v) SELECT 'r' || g FROM generate_series(1, 100) g;
	COMMIT;
});
$source->safe_psql('app', q{
	INSERT INTO fresh (v) VALUES ('after');
	UPDATE fresh SET v = 'upd' WHERE id = 5;
	DELETE FROM fresh WHERE id = 6;
});
# a partition created and written to
$source->safe_psql('app', q{
	BEGIN;
	CREATE TABLE parted_p2 PARTITION OF parted FOR VALUES FROM (100) TO (200);
	ALTER TABLE parted_p2 OWNER TO migrator;
	INSERT INTO parted VALUES (1000, 150, 'p2'), (1001, 160, 'p2');
	COMMIT;
	INSERT INTO parted VALUES (1002, 170, 'p2 after');
	UPDATE parted SET v = 'moved' WHERE id = 1000;
});
ok(wait_applied('inf', 'inf', 'app', 'the new table to be created and applied'), 'CREATE TABLE followed');
same_content($source, 'app', $target, 'inf', [qw(fresh parted_p1 parted_p2)], 'the new table and partition have the source rows');
is($target->safe_psql('inf', "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'parted_p2'"),
	'FOR VALUES FROM (100) TO (200)', 'the new partition is attached as on the source');

# a column added and dropped again before the applier gets there: the
# source's catalog has moved on, the stream alone tells
$target->safe_psql('inf', "SELECT ingest.pause('inf')");
ok(wait_phase($target, 'inf', 'inf', 'paused'), 'paused');
$source->safe_psql('app', q{
	ALTER TABLE items ADD COLUMN tmp numeric(10,2);
	INSERT INTO items (id, a, big, c1, tmp) VALUES (1006, 6, 'b', 16, 1.5);
	ALTER TABLE items DROP COLUMN tmp;
	INSERT INTO items (id, a, big, c1) VALUES (1007, 7, 'b', 17);
});
$target->safe_psql('inf', "SELECT ingest.resume('inf')");
ok(wait_applied('inf', 'inf', 'app', 'the added and dropped column to be applied'), 'ADD then DROP COLUMN applied');
same_content($source, 'app', $target, 'inf', ['items'], 'items matches after a column added and dropped again');

my $ev = events('inf', 'inf');
like($ev, qr/INFO ddl public\.fresh created table public\.fresh and copied its \d+ rows as of LSN [0-9A-F]+\/[0-9A-F]+ \(inferred from the stream at LSN/,
	'an INFO event says the new table was created and copied');
like($ev, qr/INFO ddl public\.items added column c1 integer \(inferred from the stream at LSN [0-9A-F]+\/[0-9A-F]+\)/,
	'an INFO event names the added column');
like($ev, qr/added column c2 text default 'dflt'::text not null \(inferred/, 'and the NOT NULL one with its default');
like($ev, qr/changed the type of column a to bigint \(inferred/, 'and the type change');
like($ev, qr/dropped column note \(inferred/, 'and the dropped column');
unlike($ev, qr/dropped column big/, 'an unchanged TOASTed value is not a dropped column');
like($ev, qr/added column tmp numeric\(10,2\) \(inferred from the stream at LSN [^\n]*\n[^\n]*dropped column tmp/,
	'the column the source no longer has is added with the stream type, then dropped');

# a rename cannot be inferred: the migration fails naming it
$source->safe_psql('app', q{
	ALTER TABLE items RENAME COLUMN c1 TO c1r;
	INSERT INTO items (id, a, big, c1r) VALUES (1005, 5, 'b', 15);
});
ok(wait_phase($target, 'inf', 'inf', 'failed'), 'a rename fails the migration');
my $err = $target->safe_psql('inf', "SELECT last_error FROM ingest.status WHERE name = 'inf'");
like($err, qr/cannot infer the schema change of table public\.items at LSN [0-9A-F]+\/[0-9A-F]+: column "c1" is gone and a new column "c1r" of the same type integer appeared/,
	'last_error names the table, both columns and the LSN');
like($err, qr/Hint: Use ddl => 'replicate' .* RENAME COLUMN c1 TO c1r\) and call ingest\.resume\(\)/,
	'and says what to do');
$target->safe_psql('inf', 'ALTER TABLE items RENAME COLUMN c1 TO c1r');
$target->safe_psql('inf', "SELECT ingest.resume('inf')");
ok(wait_phase($target, 'inf', 'inf', 'streaming'), 'fixed by hand, the migration streams again');
ok(wait_applied('inf', 'inf', 'app', 'the rest to be applied'), 'and applies the rest');

$pgbench->signal('TERM');
$pgbench->finish;
my $cut = $target->safe_psql('inf', "SELECT ingest.cutover('inf')");
like($cut, qr{^[0-9A-F]+/[0-9A-F]+$}, 'cutover');
same_content($source, 'app', $target, 'inf',
	[qw(items fresh parted_p1 parted_p2 pgbench_accounts pgbench_branches pgbench_tellers pgbench_history)],
	'after cutover every table has the source content');
my ($sseq, $tseq) = (sequence_values($source, 'app'), sequence_values($target, 'inf'));
cmp_ok($tseq->{'public.fresh_id_seq'} // -1, '>=', $sseq->{'public.fresh_id_seq'},
	"the new table's sequence is at least where the source's is");
is($target->safe_psql('inf', "SELECT count(*) FROM ingest.verify('inf') WHERE status <> 'MATCH'"),
	'0', 'ingest.verify agrees, the new table included');

# --- ddl => 'off' ------------------------------------------------------------
my $conn2 = source_connstr($source, dbname => 'app2');
create_db($target, 'off');
$target->safe_psql('off', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('off', "SELECT ingest.start('$conn2', name => 'off', ddl => 'off')");
ok(wait_phase($target, 'off', 'off', 'streaming'), 'the off migration streams');
$source->safe_psql('app2', q{
	ALTER TABLE t2 ADD COLUMN extra int DEFAULT 3;
	INSERT INTO t2 VALUES (1001, 'x', 9);
});
ok(wait_phase($target, 'off', 'off', 'failed'), 'under ddl => off, ADD COLUMN fails the migration');
$err = $target->safe_psql('off', "SELECT last_error FROM ingest.status WHERE name = 'off'");
like($err, qr/table public\.t2 changed on the source: it has column "extra", which the target table lacks \(at LSN [0-9A-F]+\/[0-9A-F]+\)/,
	'last_error names the table, the column and the LSN');
like($err, qr/Hint: Apply the same change to the target table by hand \(ALTER TABLE\), then call ingest\.resume\(\)/,
	'and gives the hint');
$target->safe_psql('off', 'ALTER TABLE t2 ADD COLUMN extra int DEFAULT 3');
$target->safe_psql('off', "SELECT ingest.resume('off')");
ok(wait_phase($target, 'off', 'off', 'streaming'), 'fixed by hand, it streams again');
$source->safe_psql('app2', "UPDATE t2 SET extra = 4 WHERE id <= 10");
ok(wait_applied('off', 'off', 'app2', 'the rest to be applied'), 'and applies the rest');
$target->safe_psql('off', "SELECT ingest.cutover('off')");
same_content($source, 'app2', $target, 'off', ['t2'], 'after cutover t2 has the source content');

done_testing();
