# Schema changes on the source while a migration streams, replicated by an
# event trigger (ddl => 'replicate' with a superuser on the source).
#
# First a small migration (schema 'existing') whose copy of a table is held
# back by a lock on the target while the source adds a column to it and
# fills it: the command waits in the spool and is applied after the full
# load, once; then ingest.abort() removes the event trigger.  Then a live
# migration under pgbench on other tables, through a realistic schema
# evolution (a nullable column added and backfilled in the same query
# string, a NOT NULL column with a default, a column renamed, int to
# bigint, a new table written to, a table dropped, an index created
# concurrently, a partition created and one attached, CREATE OR REPLACE
# FUNCTION, views created and dropped, sequences created and altered), and
# DDL on a table and in a schema the filters leave out, which is skipped.
# After ingest.cutover(): every table's content equal, pg_dump
# --schema-only equal on both sides, and pg_ingest's objects gone from the
# source (removed at the stop; cleanup is idempotent).

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
# an event trigger needs a superuser on the source
$source->safe_psql('postgres', 'ALTER ROLE migrator SUPERUSER');

sub events
{
	my ($db, $name) = @_;
	return $target->safe_psql($db,
		"SELECT string_agg(format('%s %s %s', level, kind, message), E'\\n' ORDER BY id)"
		  . " FROM ingest.events WHERE name = '$name'");
}

# --- a schema change committed while a table's copy is held back ---------
create_db($source, 'small', 'migrator');
$source->safe_psql('small', q{
	CREATE TABLE big2 (id int PRIMARY KEY, payload text);
	INSERT INTO big2 SELECT g, 'row ' || g FROM generate_series(1, 5000) g;
	CREATE TABLE other (id int PRIMARY KEY, v text);
	INSERT INTO other SELECT g, 'v' || g FROM generate_series(1, 100) g;
});
create_db($target, 'held');
$target->safe_psql('held', 'CREATE EXTENSION pg_ingest');
{
	my ($dump, $derr, $o, $e);
	IPC::Run::run([ 'pg_dump', '--schema-only', '-d', $source->connstr('small') ], '>', \$dump, '2>', \$derr)
	  or die "pg_dump failed: $derr";
	$dump =~ s/^\\(un)?restrict .*$//mg;
	IPC::Run::run([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $target->connstr('held') ],
		'<', \$dump, '>', \$o, '2>', \$e)
	  or die "restoring the schema failed: $e";
}
my $conn_small = source_connstr($source, dbname => 'small');
my $holder = $target->background_psql('held');
$holder->query_safe('BEGIN; LOCK TABLE big2 IN ACCESS SHARE MODE');
$target->safe_psql('held',
	"SELECT ingest.start('$conn_small', name => 'held', schema => 'existing', table_jobs => 1, index_jobs => 1)");
ok( poll_until($target, 'held',
		"SELECT state FROM ingest.tables WHERE name = 'held' AND source_table = 'public.big2'",
		'copying', 'the copy of big2 to wait for the lock'),
	'the copy of big2 is held back');
is($target->safe_psql('held', "SELECT ddl_via FROM ingest.migration WHERE name = 'held'"),
	'event_trigger', 'a superuser source gets the event trigger (ddl_via)');
is($source->safe_psql('small', "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE '\\_pg\\_ingest\\_ddl\\_%'"),
	'4', 'the event triggers are on the source');
# one query string (psql's \; sends it whole): one transaction, the trigger
# fires once, for its one command
$source->safe_psql('small',
	"ALTER TABLE big2 ADD COLUMN extra int \\; UPDATE big2 SET extra = id * 2 WHERE id <= 300 \\;"
	  . " INSERT INTO big2 VALUES (9001, 'after the column', 77)");
# a table rewrite of "other", not yet copied (one copy job, held on big2):
# not MVCC-safe, the copy's older snapshot will see it empty
$source->safe_psql('small', 'ALTER TABLE other ALTER COLUMN id TYPE bigint');
is($target->safe_psql('held', "SELECT state FROM ingest.tables WHERE name = 'held' AND source_table = 'public.big2'"),
	'copying', 'the column was added while big2 was being copied');
$holder->query_safe('COMMIT');
$holder->quit;
ok(wait_phase($target, 'held', 'held', 'failed'),
	'the held-back copy finishes, and the migration fails at the rewrite of a table copied after it');
like($target->safe_psql('held', "SELECT last_error FROM ingest.migration WHERE name = 'held'"),
	qr/table public\.other was rewritten on the source by ALTER TABLE at .*, and its copy read no rows/,
	'the failure names the table whose copy the rewrite emptied');
is($target->safe_psql('held', "SELECT count(*) FILTER (WHERE extra IS NOT NULL) FROM big2"), '301',
	'the ADD COLUMN and its backfill, before it, are applied after the full load');
same_content($source, 'small', $target, 'held', [qw(big2)],
	'the command committed during the copy is applied once, on top of the copy');
$target->safe_psql('held', "SELECT ingest.abort('held')");
ok(wait_phase($target, 'held', 'held', 'aborted'), 'the held migration is aborted');
ok( $source->poll_query_until('small',
		"SELECT count(*) = 0 FROM pg_event_trigger WHERE evtname LIKE '\\_pg\\_ingest\\_ddl\\_%'"
		  . " AND NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = '_pg_ingest')"),
	'ingest.abort() removes the event trigger, its function and schema from the source');
$target->safe_psql('held', "SELECT ingest.cleanup('held')");
$target->safe_psql('held', "SELECT ingest.cleanup('held')");
like(events('held', 'held'), qr/removed the event trigger/, 'the removal is an event');

# --- a source user who may not create an event trigger -------------------
$source->safe_psql('postgres',
	"SET password_encryption = 'scram-sha-256'; CREATE ROLE plain LOGIN REPLICATION PASSWORD 'S3cret-Pass'");
$source->safe_psql('small', 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO plain');
$target->safe_psql('held',
	"SELECT ingest.start('" . source_connstr($source, dbname => 'small', user => 'plain')
	  . "', name => 'plain', mode => 'cdc', schema => 'existing')");
ok( poll_until($target, 'held', "SELECT ddl_via FROM ingest.migration WHERE name = 'plain'",
		'stream', 'the migration to decide how it sees schema changes'),
	'without the right to create an event trigger, ddl_via is stream');
like(events('held', 'plain'), qr/INFO ddl schema changes on the source are inferred from the stream: no event trigger/,
	'an event says so');
is($source->safe_psql('small', "SELECT count(*) FROM pg_event_trigger"), '0', 'and nothing is left on the source');
$target->safe_psql('held', "SELECT ingest.abort('plain')");
ok(wait_phase($target, 'held', 'plain', 'aborted'), 'that migration is aborted');
$target->safe_psql('held', "SELECT ingest.cleanup('plain')");

# --- a command run inside a DO block is no statement of its query text ----
$target->safe_psql('held',
	"SELECT ingest.start('$conn_small', name => 'doblock', mode => 'cdc', schema => 'existing')");
ok(wait_phase($target, 'held', 'doblock', 'streaming'), 'a cdc migration streams');
# the COMMIT commits the DO block's command; the ALTER TABLE after the
# error never runs on the source, and must not run here in its place
$source->psql('small',
	'DO $$ BEGIN ALTER TABLE big2 ADD COLUMN z int; END $$ \\; COMMIT \\; SELECT 1/0 \\;'
	  . ' ALTER TABLE big2 ADD COLUMN never_ran int');
is($source->safe_psql('small', "SELECT count(*) FROM pg_attribute WHERE attrelid = 'big2'::regclass"
		  . " AND attname IN ('z', 'never_ran')"), '1', 'on the source only the DO block\'s command ran');
ok(wait_phase($target, 'held', 'doblock', 'failed'), 'DDL inside a DO block fails the migration');
is($target->safe_psql('held', "SELECT count(*) FROM pg_attribute WHERE attrelid = 'big2'::regclass"
		  . " AND attname IN ('z', 'never_ran')"), '0',
	'the statement of the text that never ran on the source is not run in its place');
like($target->safe_psql('held', "SELECT last_error FROM ingest.migration WHERE name = 'doblock'"),
	qr/schema change ALTER TABLE at .* is not a statement of its query text .*DO \$\$ BEGIN ALTER TABLE big2/,
	'naming the command, its LSN and its text');
$target->safe_psql('held', "SELECT ingest.abort('doblock')");
ok(wait_phase($target, 'held', 'doblock', 'aborted'), 'that migration is aborted');
is($source->safe_psql('small', "SELECT count(*) FROM pg_event_trigger"), '0', 'and its event trigger removed');

# --- a table made unlogged while streaming: none of its rows are decoded ---
$target->safe_psql('held',
	"SELECT ingest.start('$conn_small', name => 'unlogged', mode => 'cdc', schema => 'existing')");
ok(wait_phase($target, 'held', 'unlogged', 'streaming'), 'a cdc migration streams');
# forged messages with the migration's prefix: one that is no JSON, one
# carrying the token (any REPLICATION role of the source can read the
# messages): neither fails nor changes anything
my $ident = $source->safe_psql('small',
	"SELECT substring(evtname FROM '^_pg_ingest_ddl_(.*)_end\$') FROM pg_event_trigger WHERE evtname LIKE '%\\_end'");
$source->safe_psql('small', qq{
	SELECT pg_logical_emit_message(true, 'pg_ingest_ddl_$ident', 'not json');
	SELECT pg_logical_emit_message(true, 'pg_ingest_ddl_$ident', jsonb_build_object(
		'token', (SELECT token FROM _pg_ingest.token WHERE id = '$ident'),
		'body', '{}', 'sig', (SELECT token FROM _pg_ingest.token WHERE id = '$ident'),
		'tag', 'ALTER TABLE', 'query', 'ALTER TABLE big2 ADD COLUMN forged int',
		'ordinal', 0, 'objects', '[]'::jsonb)::text);
	INSERT INTO other VALUES (-1, 'after the forged messages');
});
ok( poll_until($target, 'held',
		"SELECT (SELECT count(*) FROM other WHERE id = -1)"
		  . " + (SELECT count(*) FROM ingest.status WHERE name = 'unlogged' AND phase = 'failed')",
		'1', 'the row after the forged messages'),
	'the forged messages are passed');
is($target->safe_psql('held', "SELECT phase FROM ingest.status WHERE name = 'unlogged'"), 'streaming',
	'forged messages fail nothing');
is($target->safe_psql('held', "SELECT count(*) FROM pg_attribute WHERE attrelid = 'big2'::regclass AND attname = 'forged'"),
	'0', 'a forged command carrying the token is not run');
is($target->safe_psql('held',
		"SELECT count(*) FROM ingest.events WHERE name = 'unlogged' AND level = 'WARNING'"
		  . " AND message LIKE '%without its token''s signature: ignored'"), '2', 'each is a WARNING event');
# the trigger's ordinal counts live in a setting anyone may set: preset to
# shift the ordinal, the target would run the second ALTER TABLE of the
# text, which the error kept from running on the source
$source->psql('small',
	"SELECT set_config('_pg_ingest.s_$ident', pg_backend_pid() || ' ' || extract(epoch FROM statement_timestamp())"
	  . " || ' ' || md5(current_query()) || '|{\"ALTER TABLE\": 1}', false) \\;"
	  . " ALTER TABLE big2 ADD COLUMN shift1 int \\; COMMIT \\; SELECT 1/0 \\; ALTER TABLE big2 ADD COLUMN never2 int");
my $shift_lsn = $source->safe_psql('small', 'SELECT pg_current_wal_lsn()');
ok( poll_until($target, 'held',
		"SELECT applied_lsn >= '$shift_lsn' OR phase = 'failed' FROM ingest.status WHERE name = 'unlogged'",
		't', 'the ALTER TABLE to be applied'),
	'the ALTER TABLE is applied');
is($target->safe_psql('held', "SELECT string_agg(attname, ',' ORDER BY attname) FROM pg_attribute"
		  . " WHERE attrelid = 'big2'::regclass AND attname IN ('shift1', 'never2')"),
	'shift1', 'a preset ordinal count does not change which statement runs');
# a signed message, read from the WAL (as any REPLICATION role can) and
# emitted again later, is not run again
$source->safe_psql('small', "SELECT 'x' FROM pg_create_logical_replication_slot('peek', 'test_decoding')");
$source->safe_psql('small', 'ALTER TABLE big2 ADD COLUMN replayed int');
my $peeked = $source->safe_psql('small',
	"SELECT data FROM pg_logical_slot_get_changes('peek', NULL, NULL) WHERE data LIKE 'message:%'");
$source->safe_psql('small', "SELECT pg_drop_replication_slot('peek')");
my ($content) = $peeked =~ /content:(\{.*\})\s*$/s;
ok(defined $content, 'the message is read from the WAL');
$source->safe_psql('small', 'ALTER TABLE big2 DROP COLUMN replayed');
$source->safe_psql('small',
	"SELECT pg_logical_emit_message(true, 'pg_ingest_ddl_$ident', \$m\$$content\$m\$);"
	  . " INSERT INTO other VALUES (-2, 'after the replay')");
ok( poll_until($target, 'held',
		"SELECT (SELECT count(*) FROM other WHERE id = -2)"
		  . " + (SELECT count(*) FROM ingest.status WHERE name = 'unlogged' AND phase = 'failed')",
		'1', 'the row after the replayed message'),
	'the replayed message is passed');
is($target->safe_psql('held', "SELECT count(*) FROM pg_attribute WHERE attrelid = 'big2'::regclass"
		  . " AND attname = 'replayed' AND NOT attisdropped"),
	'0', 'a replayed message is not run again');
$source->safe_psql('small', q{
	CREATE UNLOGGED TABLE ulog_new (id int PRIMARY KEY, v text);
	INSERT INTO ulog_new SELECT g, 'u' || g FROM generate_series(1, 10) g;
});
ok(wait_phase($target, 'held', 'unlogged', 'failed'),
	'an unlogged table created while streaming, without resync, fails the migration');
like($target->safe_psql('held', "SELECT last_error FROM ingest.migration WHERE name = 'unlogged'"),
	qr/table public\.ulog_new was made unlogged on the source by CREATE TABLE/, 'naming the table');
$target->safe_psql('held', "SELECT ingest.abort('unlogged')");
ok(wait_phase($target, 'held', 'unlogged', 'aborted'), 'that migration is aborted');
$source->safe_psql('small', 'DROP TABLE ulog_new');

# --- resync => 'at_cutover' follows schema changes -------------------------
# a no-key table renamed, one dropped, an unlogged table created: the stop
# copies the live ones again, by their new names
$source->safe_psql('small', 'CREATE TABLE nk (a int); INSERT INTO nk SELECT generate_series(1, 20);'
	  . ' CREATE TABLE nk_gone (a int)');
$target->safe_psql('held', 'CREATE TABLE nk (a int); CREATE TABLE nk_gone (a int)');
$target->safe_psql('held',
	"SELECT ingest.start('$conn_small', name => 'resync', mode => 'cdc', schema => 'existing',"
	  . " resync => 'at_cutover')");
ok(wait_phase($target, 'held', 'resync', 'streaming'), 'a cdc migration with resync streams');
my $rename_lsn = $source->safe_psql('small',
	'ALTER TABLE nk RENAME TO nk2; INSERT INTO nk2 VALUES (-1); SELECT pg_current_wal_lsn()');
# the receiver, ahead of the applier, learns the new name once it is applied
ok( poll_until($target, 'held',
		"SELECT applied_lsn >= '$rename_lsn' OR phase = 'failed' FROM ingest.status WHERE name = 'resync'",
		't', 'the rename to be applied'),
	'the rename is applied');
$source->safe_psql('small', q{
	UPDATE nk2 SET a = a + 100 WHERE a <= 5;
	DROP TABLE nk_gone;
	CREATE UNLOGGED TABLE ulog2 (id int PRIMARY KEY, v text);
	INSERT INTO ulog2 SELECT g, 'u' || g FROM generate_series(1, 10) g;
});
# a command whose text holds a password: never in an event or an error
$source->safe_psql('small',
	"CREATE SUBSCRIPTION sub_pw CONNECTION 'host=127.0.0.1 dbname=x password=Sub-S3cret'"
	  . " PUBLICATION p WITH (connect = false, slot_name = NONE)");
$source->safe_psql('small', 'DROP SUBSCRIPTION sub_pw');
$target->psql('held', "SELECT ingest.cutover('resync')");
is($target->safe_psql('held', "SELECT phase FROM ingest.status WHERE name = 'resync'"), 'completed',
	'the cutover completes')
  or diag($target->safe_psql('held', "SELECT last_error FROM ingest.migration WHERE name = 'resync'"));
like(events('held', 'resync'), qr/CREATE SUBSCRIPTION on the source at .* is not replicated/,
	'the subscription command is an event');
is($target->safe_psql('held',
		"SELECT count(*) FROM ingest.events WHERE detail LIKE '%Sub-S3cret%' OR message LIKE '%Sub-S3cret%'"),
	'0', 'its password is in no event');
same_content($source, 'small', $target, 'held', [qw(nk2 ulog2)],
	'a renamed no-key table and an unlogged table created while streaming are identical');
$source->safe_psql('small', 'DROP TABLE nk2, ulog2');

# --- the live migration ---------------------------------------------------
{
	my ($out, $err);
	IPC::Run::run([ 'pgbench', '-i', '-q', '-s', '1', $source->connstr('app') ], '>', \$out, '2>', \$err)
	  or die "pgbench -i failed: $err";
}
$source->safe_psql('app', q{
	ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
	CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL, note text);
	INSERT INTO items SELECT g, g % 50, 'note ' || g FROM generate_series(1, 2000) g;
	CREATE TABLE old_t (id int PRIMARY KEY, v text);
	INSERT INTO old_t SELECT g, 'old' FROM generate_series(1, 50) g;
	CREATE TABLE measures (id int, at date NOT NULL, v int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
	CREATE TABLE measures_2024 PARTITION OF measures FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
	INSERT INTO measures SELECT g, '2024-01-01'::date + g, g FROM generate_series(1, 200) g;
	CREATE TABLE secret_t (id int PRIMARY KEY, v text);
	INSERT INTO secret_t VALUES (1, 'hidden');
	CREATE SCHEMA hidden;
	CREATE TABLE hidden.h (id int PRIMARY KEY);
	CREATE SEQUENCE counter;
	CREATE FUNCTION bump(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 1';
	CREATE VIEW v_items AS SELECT id, note FROM items;
	CREATE ROLE app_owner;
	GRANT CREATE ON SCHEMA public TO app_owner;
});
my $pgbench_out = '';
my $pgbench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-R', '100', '-T', '600', $source->connstr('app') ],
	'>&', \$pgbench_out);
$source->poll_query_until('app', 'SELECT count(*) > 20 FROM pgbench_history')
  or die 'pgbench does not write';

create_db($target, 'live');
$target->safe_psql('live', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('live', 'CREATE ROLE app_owner');
my $conn = source_connstr($source);
$target->safe_psql('live',
	"SELECT ingest.start('$conn', name => 'ddl', table_jobs => 2, index_jobs => 2,"
	  . " exclude_tables => '{public.secret_t}', exclude_schemas => '{hidden}')");
ok(wait_phase($target, 'live', 'ddl', 'streaming'), 'the migration streams');
like(events('live', 'ddl'), qr/INFO ddl schema changes on the source are replicated by the event trigger/,
	'an event says schema changes go through the event trigger');

# the schema evolution, under pgbench
# several commands in one query string (psql's \; sends them whole): each
# is applied once, where it stands
$source->safe_psql('app',
	"ALTER TABLE items ADD COLUMN note2 text \\; UPDATE items SET note2 = 'n' || id WHERE id % 3 = 0 \\;"
	  . " ALTER TABLE items ADD COLUMN note3 text \\; UPDATE items SET note3 = note2 || '!' WHERE id % 2 = 0");
$source->safe_psql('app', "ALTER TABLE items ADD COLUMN status text NOT NULL DEFAULT 'new'");
$source->safe_psql('app', "UPDATE items SET status = 'old' WHERE id <= 100");
$source->safe_psql('app', 'ALTER TABLE items RENAME COLUMN note TO remark');
$source->safe_psql('app', "UPDATE items SET remark = 'renamed' WHERE id BETWEEN 200 AND 210");
$source->safe_psql('app', 'ALTER TABLE items ALTER COLUMN qty TYPE bigint');
$source->safe_psql('app', 'UPDATE items SET qty = qty + 5000000000 WHERE id <= 10');
$source->safe_psql('app', q{
	CREATE TABLE fresh (id bigserial PRIMARY KEY, label text);
	INSERT INTO fresh (label) SELECT 'l' || g FROM generate_series(1, 100) g;
});
$source->safe_psql('app', "UPDATE fresh SET label = 'changed' WHERE id <= 5; DELETE FROM fresh WHERE id > 95");
$source->safe_psql('app', 'DROP TABLE old_t');
$source->safe_psql('app', 'CREATE INDEX CONCURRENTLY items_status ON items (status)');
$source->safe_psql('app', q{
	CREATE TABLE measures_2025 PARTITION OF measures FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
	INSERT INTO measures VALUES (1, '2025-03-01', 5), (2, '2025-04-01', 6);
});
$source->safe_psql('app', q{
	CREATE TABLE measures_2026 (id int NOT NULL, at date NOT NULL, v int);
	INSERT INTO measures_2026 VALUES (3, '2026-02-01', 7);
	ALTER TABLE measures ATTACH PARTITION measures_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
});
$source->safe_psql('app', "INSERT INTO measures VALUES (4, '2026-05-01', 8)");
$source->safe_psql('app', q{CREATE OR REPLACE FUNCTION bump(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 2'});
$source->safe_psql('app', 'CREATE VIEW v_fresh AS SELECT id, label FROM fresh \\; DROP VIEW v_items');
$source->safe_psql('app', 'CREATE SEQUENCE s2 START 100; ALTER SEQUENCE counter INCREMENT BY 5');
$source->safe_psql('app', "SELECT nextval('counter'), nextval('s2')");
# made by another role: the same owner on the target
$source->safe_psql('app',
	"SET ROLE app_owner; CREATE TABLE by_owner (id int PRIMARY KEY, v text); INSERT INTO by_owner VALUES (1, 'a');"
	  . " ALTER TABLE by_owner ADD COLUMN w int DEFAULT 3;");
# tables made with their rows: empty on the target, the rows follow
$source->safe_psql('app',
	'CREATE TABLE copied AS SELECT id, qty FROM items WHERE id <= 50 \\; SELECT id, remark INTO into_t FROM items WHERE id <= 7');
$source->safe_psql('app', "INSERT INTO copied VALUES (10001, 1); INSERT INTO into_t VALUES (8, 'eight')");
$source->safe_psql('app', 'CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n FROM items');
# left out by the filters
$source->safe_psql('app', "ALTER TABLE secret_t ADD COLUMN extra int; INSERT INTO secret_t VALUES (2, 'x', 1)");
$source->safe_psql('app', 'CREATE TABLE hidden.h2 (id int PRIMARY KEY); INSERT INTO hidden.h2 VALUES (1)');
$source->safe_psql('app', 'GRANT SELECT ON secret_t TO app_owner; GRANT SELECT ON items TO app_owner');
$source->safe_psql('app', 'INSERT INTO hidden.h2 VALUES (2)');
# a temporary table is nobody's business
$source->safe_psql('app', 'CREATE TEMP TABLE scratch (x int); DROP TABLE scratch');

my $lsn = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
# applied, or failed: no waiting for what will not come
is( poll_value($target, 'live',
		"SELECT phase FROM ingest.status WHERE name = 'ddl' AND (phase = 'failed' OR applied_lsn >= '$lsn')"),
	'streaming', 'the stream with its schema changes is applied, and the migration goes on streaming')
  or diag(events('live', 'ddl'));
is($target->safe_psql('live', 'SELECT bump(1)'), '3', 'CREATE OR REPLACE FUNCTION is applied');
is($target->safe_psql('live', "SELECT tableowner FROM pg_tables WHERE tablename = 'by_owner'"), 'app_owner',
	'a table created by a role on the source has that owner on the target');
my $ev = events('live', 'ddl');
like($ev, qr/skipped ALTER TABLE .* filters leave out/, 'DDL on a table left out is skipped, with an event');
like($ev, qr/skipped CREATE TABLE .* filters leave out/, 'so is a table created in a schema left out');
like($ev, qr/skipped GRANT .* names no table of the target/, 'a GRANT on a table left out is skipped');
like($ev, qr/applied GRANT/, 'one on a table of the migration is applied');
like($ev, qr/without CONCURRENTLY/, 'CREATE INDEX CONCURRENTLY runs as CREATE INDEX, with an event');
is($target->safe_psql('live', "SELECT to_regclass('hidden.h2') IS NULL AND to_regclass('public.old_t') IS NULL"),
	't', 'the left-out table is not created; the dropped table is gone');

$pgbench->signal('TERM');
$pgbench->finish;
$target->safe_psql('live', "SELECT ingest.cutover('ddl')");
is($target->safe_psql('live', "SELECT phase FROM ingest.status WHERE name = 'ddl'"), 'completed',
	'the cutover completes');

my @tables = qw(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history
  items fresh measures_2024 measures_2025 measures_2026 copied into_t mv by_owner);
same_content($source, 'app', $target, 'live', \@tables, 'every table has the same content');
my $sv = sequence_values($source, 'app');
my $tv = sequence_values($target, 'live');
my @behind = grep { !/^hidden\./ && ($tv->{$_} // -1) < $sv->{$_} } sort keys %$sv;
is_deeply(\@behind, [], 'every sequence, those created while streaming too, is at least the source\'s');
ok(exists $tv->{'public.s2'} && exists $tv->{'public.fresh_id_seq'}, 'the sequences created while streaming exist');
is($target->safe_psql('live',
		"SELECT string_agg(table_name || ' ' || status, ', ') FROM ingest.verify('ddl') WHERE status <> 'MATCH'"),
	'', 'ingest.verify agrees, new tables included');
is($target->safe_psql('live',
		"SELECT string_agg(table_name, ',' ORDER BY table_name) FROM ingest.verify('ddl')"
		  . " WHERE table_name IN ('public.fresh', 'public.measures_2026', 'public.old_t')"),
	'public.fresh,public.measures_2026', 'the migration\'s tables follow: created ones in, dropped ones out');

is($source->safe_psql('app',
		"SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE '\\_pg\\_ingest\\_ddl\\_%'"
		  . " UNION ALL SELECT count(*) FROM pg_namespace WHERE nspname = '_pg_ingest'"),
	"0\n0", 'the stop removed the event trigger and the schema from the source');
$target->safe_psql('live', "SELECT ingest.cleanup('ddl')");

# pg_dump --schema-only of both sides
sub schema_dump
{
	my ($node, $db) = @_;
	my ($dump, $err);
	IPC::Run::run([ 'pg_dump', '--schema-only', '--exclude-schema=ingest', '--exclude-schema=hidden',
			'--exclude-table=public.secret_t', '-d', $node->connstr($db) ],
		'>', \$dump, '2>', \$err)
	  or die "pg_dump failed: $err";
	return join("\n", grep { $_ ne '' && !/^--/ && !/^\\(un)?restrict / && !/pg_ingest/ } split /\n/, $dump);
}
my $sdump = schema_dump($source, 'app');
my $tdump = schema_dump($target, 'live');
is($tdump, $sdump, 'pg_dump --schema-only is the same on both sides');

# --- the source out of reach when the migration ends; cleanup later --------
$target->safe_psql('held',
	"SELECT ingest.start('$conn_small', name => 'late', mode => 'cdc', schema => 'existing')");
ok(wait_phase($target, 'held', 'late', 'streaming'), 'another migration streams');
$source->stop('fast');
$target->safe_psql('held', "SELECT ingest.abort('late')");
ok( poll_until($target, 'held',
		"SELECT count(*) FROM ingest.events WHERE name = 'late' AND level = 'WARNING' AND kind = 'ddl'"
		  . " AND message LIKE 'could not remove the event trigger from the source:%'"
		  . " AND detail LIKE '%DROP EVENT TRIGGER IF EXISTS \\_pg\\_ingest\\_ddl\\_%'",
		'1', 'the abort to give up on the source'),
	'an abort with the source gone is a WARNING event naming what to drop by hand');
is($target->safe_psql('held', "SELECT phase FROM ingest.status WHERE name = 'late'"), 'aborted',
	'and the migration is aborted all the same');
$source->start;
is($source->safe_psql('small', "SELECT count(*) FROM pg_event_trigger"), '4', 'the trigger is still on the source');
$target->safe_psql('held', "SELECT ingest.cleanup('late')");
is($source->safe_psql('small',
		"SELECT count(*) FROM pg_event_trigger UNION ALL SELECT count(*) FROM pg_namespace WHERE nspname = '_pg_ingest'"),
	"0\n0", 'ingest.cleanup removes it once the source is back');

done_testing();
