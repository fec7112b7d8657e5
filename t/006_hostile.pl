# Hostile input (issue 7, B3).
#
# Bad calls of ingest.start each give an ERROR with its SQLSTATE and leave
# nothing behind on either side: no migration row, no worker, no slot or
# session on the source, no spool directory.  pg_dump's password file lives
# in base/pgsql_tmp with mode 0600 and is gone after an abort and after a
# crash of the worker.  Then source identifiers that are quoted,
# mixed-case, unicode, 63 bytes long, SQL keywords and injection-shaped, a
# source schema named ingest (left out), an unlogged-free table without a
# key (copy_only) and a large object migrate with change data capture and
# match by content hash after cutover.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use File::Basename qw(basename);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use IngestTest;

my $source = new_source('source');
my $target = new_target('target',
	restart_after_crash     => 'on',
	'pg_ingest.retry_delay' => "'200ms'");
create_db($target, 'hostile');
$target->safe_psql('hostile', 'CREATE EXTENSION pg_ingest');
my $conn = source_connstr($source);
my $datadir = $target->data_dir;

# --- the source: hostile names, each in a table with a key ----------------
$source->safe_psql('app', <<'EOS');
SET ROLE migrator;
CREATE SCHEMA "Mixed Case";
DO $$
BEGIN
	-- unicode names; 63 bytes, the longest an identifier has, in ASCII
	-- and in two-byte characters
	EXECUTE format('CREATE TABLE "Mixed Case".%I (id int PRIMARY KEY, %I text)',
		U&'\00DCn\00EFc\00F8d\00E9 T\00E5ble', U&'Wert \00E4');
	EXECUTE format('CREATE TABLE public.%I (id int PRIMARY KEY, %I text)',
		repeat('x', 63), repeat(U&'\00E9', 31) || 'a');
END
$$;
CREATE TABLE public."select" ("from" int PRIMARY KEY, "where" text, "order" int);
CREATE TABLE public."a""; DROP TABLE x; --" (id int PRIMARY KEY, "'); select pg_sleep(10); --" text);
CREATE SCHEMA "x'y";
CREATE SEQUENCE "x'y"."seq'); select pg_sleep(10); --";
CREATE TABLE "x'y"."T" (id bigint PRIMARY KEY
	DEFAULT nextval('"x''y"."seq''); select pg_sleep(10); --"'), v text);
CREATE MATERIALIZED VIEW public."mv""; DROP TABLE x; --" AS SELECT count(*) AS n FROM public."select";
-- a table without a key: its UPDATEs and DELETEs cannot be carried
CREATE TABLE public.nokey (v text);
INSERT INTO public.nokey VALUES ('one'), ('two');
-- a schema with the name of pg_ingest's schema on the target
CREATE SCHEMA ingest;
CREATE TABLE ingest.events (id bigint PRIMARY KEY, message text);
INSERT INTO ingest.events VALUES (1, 'forged');
EOS
$source->safe_psql('app', <<'EOS');
SET ROLE migrator;
DO $$
DECLARE
	t text;
BEGIN
	FOR t IN SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname IN ('public', 'Mixed Case')
		AND c.relname NOT IN ('select', 'nokey')
	LOOP
		EXECUTE format('INSERT INTO %s SELECT g, %L || g FROM generate_series(1, 50) g', t, U&'v\00E9rt''"; --');
	END LOOP;
END
$$;
INSERT INTO public."select" SELECT g, 'w' || g, g FROM generate_series(1, 50) g;
INSERT INTO "x'y"."T" (v) SELECT 'v' || g FROM generate_series(1, 50) g;
REFRESH MATERIALIZED VIEW public."mv""; DROP TABLE x; --";
SELECT lo_from_bytea(0, 'a large object') > 0;
EOS
# a table the injection-shaped names would drop if pasted unquoted
$target->safe_psql('hostile', 'CREATE TABLE public.x (keep int); INSERT INTO public.x VALUES (1)');

# --- bad inputs: an ERROR with its SQLSTATE, and nothing left behind -----
sub nothing_left
{
	my ($what) = @_;
	my $left = join(', ',
		'migrations=' . $target->safe_psql('hostile', 'SELECT count(*) FROM ingest.migration'),
		'workers=' . $target->safe_psql('hostile', 'SELECT count(*) FROM ingest._live()'),
		'slots=' . $source->safe_psql('app', 'SELECT count(*) FROM pg_replication_slots'),
		'sessions=' . $source->safe_psql('app',
			"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pg_ingest%'"),
		'spool=' . scalar(my @s = glob("$datadir/pg_ingest/spool/*")));
	is($left, 'migrations=0, workers=0, slots=0, sessions=0, spool=0',
		"$what: nothing left behind");
}

sub refused
{
	my ($what, $sql, $sqlstate, $message) = @_;
	my ($ret, $out, $err) = $target->psql('hostile', "\\set VERBOSITY verbose\n$sql");
	like($err, qr/ERROR:  $sqlstate: $message/, "$what: ERROR $sqlstate");
	nothing_left($what);
}

sub start_sql
{
	my ($args, $connstr) = @_;
	$connstr //= $conn;
	return "SELECT ingest.start('$connstr', name => 'hostile'"
	  . ($args ? ", $args" : '') . ')';
}

my $ok_filters = "exclude_schemas => ARRAY['ingest'], untracked_tables => 'copy_only'";

refused('a source schema named ingest', start_sql(),
	'42P06', 'the source has a schema named "ingest"');
refused('ingest excluded, a table without a key in mode full-load-and-cdc',
	start_sql("exclude_schemas => ARRAY['ingest']"),
	'55000', '1 table.s changes cannot be carried');
refused('an empty include_tables', start_sql("$ok_filters, include_tables => '{}'"),
	'22023', 'include_tables must not be an empty array');
refused('an empty exclude_tables', start_sql("$ok_filters, exclude_tables => '{}'"),
	'22023', 'exclude_tables must not be an empty array');
refused('an empty include_schemas', start_sql("untracked_tables => 'copy_only', include_schemas => '{}'"),
	'22023', 'include_schemas must not be an empty array');
refused('an empty exclude_extensions', start_sql("$ok_filters, exclude_extensions => '{}'"),
	'22023', 'exclude_extensions must not be an empty array');
refused('the target database as the source',
	start_sql($ok_filters, $target->connstr('hostile') =~ s/'//gr),
	'22023', 'the source is this database');
refused('a bad mode', start_sql("$ok_filters, mode => 'full'"), '22023', 'invalid mode');
refused('a bad existing_rows', start_sql("$ok_filters, existing_rows => 'merge'"),
	'22023', 'invalid existing_rows');
refused('a bad untracked_tables', start_sql("exclude_schemas => ARRAY['ingest'], untracked_tables => 'yes'"),
	'22023', 'invalid untracked_tables');
refused('a bad resync', start_sql("$ok_filters, resync => 'always'"),
	'22023', 'invalid resync');
refused('a bad ddl', start_sql("$ok_filters, ddl => 'yes'"),
	'22023', 'invalid ddl');
refused('a NULL resync', start_sql("$ok_filters, resync => NULL"),
	'22004', 'resync must not be null');
refused('a NULL name', "SELECT ingest.start('$conn', name => NULL)", '22004', 'name must not be null');
refused('an injection-shaped migration name', start_sql($ok_filters) =~ s/name => 'hostile'/name => 'a''; DROP TABLE x; --'/r,
	'22023', 'invalid migration name');
refused('a filter naming nothing', start_sql("$ok_filters, include_tables => ARRAY['nosuch']"),
	'42704', 'include_tables entry "nosuch" matches nothing');

# a target table with rows
$target->safe_psql('hostile', 'CREATE TABLE public."select" ("from" int, "where" text, "order" int);'
	  . q{ INSERT INTO public."select" VALUES (1, 'mine', 1)});
refused('a target table with rows', start_sql($ok_filters),
	'55000', '1 table to copy already has rows on this server');
is($target->safe_psql('hostile', 'SELECT count(*) FROM public."select"'), '1',
	'the refused start left the rows alone');
$target->safe_psql('hostile', 'DROP TABLE public."select"');

# --- pg_dump's password file ---------------------------------------------
# A source with many tables keeps pg_dump busy long enough to catch it and
# stop it (SIGSTOP) while its password file exists.
create_db($source, 'small', 'migrator');
$source->safe_psql('small', 'SET ROLE migrator; DO $$ BEGIN FOR i IN 1..300 LOOP'
	  . q{ EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i); END LOOP; END $$});
create_db($target, 'pw');
$target->safe_psql('pw', 'CREATE EXTENSION pg_ingest');

sub passfiles
{
	return glob("$datadir/base/pgsql_tmp/pgsql_tmp*pg_ingest_pgpass*");
}

# the pid of a pg_dump (or program $name) whose parent is $ppid, or undef
sub pg_dump_of
{
	my ($ppid, $name) = @_;
	$name //= 'pg_dump';
	opendir(my $d, '/proc') or return undef;
	for my $pid (grep { /^\d+$/ } readdir $d)
	{
		open(my $f, '<', "/proc/$pid/stat") or next;
		my $stat = <$f>;
		close $f;
		return $pid if $stat && $stat =~ /^\d+ \(\Q$name\E\) \S+ (\d+)/ && $1 == $ppid;
	}
	return undef;
}

# Wait for the coordinator's pg_dump and its password file; stop pg_dump.
sub catch_pg_dump
{
	$target->poll_query_until('pw', "SELECT count(*) = 1 FROM ingest._live() WHERE kind = 'coordinator'")
	  or return ();
	my $coordinator = $target->safe_psql('pw', "SELECT pid FROM ingest._live() WHERE kind = 'coordinator'");
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my $dump = pg_dump_of($coordinator);
		my @files = passfiles();
		if ($dump && @files)
		{
			kill 'STOP', $dump;
			return ($coordinator, $dump, $files[0]);
		}
		usleep(5_000);
	}
	return ();
}

sub wait_gone
{
	my ($file) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (-e $file && time < $deadline) { usleep(50_000); }
	return !-e $file;
}

$target->safe_psql('pw',
	"SELECT ingest.start('" . source_connstr($source, dbname => 'small') . "', name => 'pw', mode => 'full-load')");
my ($coordinator, $dump, $passfile) = catch_pg_dump();
ok(defined $passfile, 'the password file is in base/pgsql_tmp, with the temporary-file prefix');
is(sprintf('%04o', (stat $passfile)[2] & 07777), '0600', 'its mode is 0600');
is(scalar(my @old = glob("$datadir/pg_ingest/pgpass*")), 0, 'nothing in $PGDATA/pg_ingest');

# a crash of the worker: the restart of the server removes the file
kill 'KILL', $coordinator;
kill 'KILL', $dump;
$target->poll_query_until('pw', 'SELECT true') or die 'the target did not come back';
ok(wait_gone($passfile), 'the crash restart removed the password file');

# an abort (SIGTERM: FATAL, no PG_FINALLY) removes the file of the new
# worker, and does not wait for its pg_dump (stopped here, as one waiting
# on a lock on the source would be)
($coordinator, $dump, $passfile) = catch_pg_dump();
ok(defined $passfile, 'the resumed migration writes a new one');
$target->safe_psql('pw', "SELECT ingest.abort('pw')");
ok(wait_gone($passfile), 'ingest.abort leaves no password file');
kill 'KILL', $dump;
is(join(',', passfiles()), '', 'no password file at all');
is(join(',', glob("$datadir/base/pgsql_tmp/pgsql_tmp*pg_ingest_*"), glob("$datadir/pg_ingest/*.err")),
	'', "nor pg_dump's standard error file");

# the schema archive (one pg_dump, split by pg_restore) is a temporary file
# too: an abort while pg_restore reads it removes it.  pg_restore is quick:
# a migration it slips past is aborted and another one started.
my ($restore, $archive, $caught);
for my $try (1 .. 5)
{
	$caught = "pw$try";
	$target->safe_psql('pw',
		"SELECT ingest.start('" . source_connstr($source, dbname => 'small') . "', name => 'pw$try', mode => 'full-load')");
	$target->poll_query_until('pw', "SELECT count(*) = 1 FROM ingest._live() WHERE kind = 'coordinator'")
	  or die 'no coordinator';
	$coordinator = $target->safe_psql('pw', "SELECT pid FROM ingest._live() WHERE kind = 'coordinator'");
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	($restore, $archive) = ();
	while (time < $deadline)
	{
		$restore = pg_dump_of($coordinator, 'pg_restore');
		($archive) = glob("$datadir/base/pgsql_tmp/pgsql_tmp*pg_ingest_schema*");
		last if ($restore && $archive)
		  || $target->safe_psql('pw', "SELECT phase FROM ingest.status WHERE name = 'pw$try'") ne 'starting';
		usleep(1_000);
	}
	kill 'STOP', $restore if $restore && $archive;
	last if $restore && $archive;
	$target->safe_psql('pw', "SELECT ingest.abort('pw$try')");
}
ok($restore && $archive, 'the schema archive is in base/pgsql_tmp while pg_restore reads it');
$target->safe_psql('pw', "SELECT ingest.abort('$caught')");
ok(wait_gone($archive), 'ingest.abort leaves no schema archive');
kill 'KILL', $restore if $restore;

# --- hostile names migrate, with change data capture ---------------------
$target->safe_psql('hostile', start_sql("$ok_filters, table_jobs => 2, index_jobs => 2"));
my $events = "SELECT string_agg(coalesce(object, '-') || ': ' || message, E'\\n' ORDER BY id)"
  . " FROM ingest.events WHERE name = 'hostile' AND kind = 'not carried'";
like($target->safe_psql('hostile', $events), qr/^public\.nokey: later changes of public\.nokey are not carried/,
	'one WARNING event per object not carried');
unlike($target->safe_psql('hostile', $events), qr/^large objects/m,
	'large objects are carried');
ok(wait_phase($target, 'hostile', 'hostile', 'streaming'), 'the hostile names are copied');

$source->safe_psql('app', <<'EOS');
INSERT INTO public."a""; DROP TABLE x; --" VALUES (51, '''); select pg_sleep(10); --');
UPDATE public."a""; DROP TABLE x; --" SET "'); select pg_sleep(10); --" = '"; DROP TABLE x; --' WHERE id = 1;
DELETE FROM public."a""; DROP TABLE x; --" WHERE id = 2;
UPDATE public."select" SET "where" = 'from', "order" = -1 WHERE "from" <= 10;
DELETE FROM public."select" WHERE "from" = 50;
INSERT INTO "x'y"."T" (v) VALUES ('after');
DO $$
BEGIN
	EXECUTE format('UPDATE public.%I SET %I = %L WHERE id = 3',
		repeat('x', 63), repeat(U&'\00E9', 31) || 'a', U&'\00E9t\00E9');
	EXECUTE format('DELETE FROM "Mixed Case".%I WHERE id > 45', U&'\00DCn\00EFc\00F8d\00E9 T\00E5ble');
END
$$;
-- the stop refreshes materialized views here: the source's is fresh too
REFRESH MATERIALIZED VIEW public."mv""; DROP TABLE x; --";
EOS
ok($target->safe_psql('hostile', "SELECT ingest.cutover('hostile', '3 min') IS NOT NULL"),
	'cutover');
ok(wait_phase($target, 'hostile', 'hostile', 'completed'), 'completed');

my @tables = split /\n/, $source->safe_psql('app',
	"SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
	  . " JOIN pg_namespace n ON n.oid = c.relnamespace"
	  . " WHERE c.relkind IN ('r', 'm') AND n.nspname IN ('public', 'Mixed Case', 'x''y') ORDER BY 1");
is(scalar(@tables), 7, 'seven tables and a materialized view with hostile names');
same_content($source, 'app', $target, 'hostile', \@tables,
	'every table has the same content on both sides');
is($target->safe_psql('hostile', "SELECT errors FROM ingest.status WHERE name = 'hostile'"),
	'0', 'no statement failed');
is($target->safe_psql('hostile',
		q{SELECT nextval('"x''y"."seq''); select pg_sleep(10); --"') > 51}),
	't', 'the sequence with a hostile name was set');
is($target->safe_psql('hostile', 'SELECT count(*) FROM public.x'), '1',
	'the injection-shaped names dropped nothing');
is($target->safe_psql('hostile', "SELECT count(*) FROM ingest.events WHERE message = 'forged'"),
	'0', "the source's schema ingest went nowhere near pg_ingest's");
is($target->safe_psql('hostile', "SELECT to_regclass('ingest.migration') IS NOT NULL"),
	't', "pg_ingest's catalog is intact");

done_testing();
