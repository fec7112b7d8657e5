# Configuration tables of extensions (pg_extension_config_dump): PostGIS's
# spatial_ref_sys with user rows (srids within its condition) beside a table
# with a geometry column, and a test extension of t/ext (installed by
# scripts/test.sh, or by this test) with a condition of its own and a
# configuration sequence.  A live migration copies the user rows, applies
# their inserts, updates and deletes while it streams, sets the sequence at
# the cutover; both sides then hold the same rows.  The filters name the
# table like any other.  Preflight counts the user rows.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use File::Copy;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

# the test extension goes where this installation's extensions are:
# scripts/test.sh installs it there (as root); a writable installation
# gets it here
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
for my $f (qw(ingest_cfgtest.control ingest_cfgtest--1.0.sql))
{
	next if -f "$sharedir/extension/$f"
	  && -s "$sharedir/extension/$f" == -s "$FindBin::RealBin/ext/$f";
	copy("$FindBin::RealBin/ext/$f", "$sharedir/extension/$f")
	  or die "could not install the test extension's $f into $sharedir/extension: $!";
}

my $source = new_source('source', conf => { wal_sender_timeout => "'2s'" });
my $target = new_target('target', 'pg_ingest.retry_delay' => "'200ms'");
my $conn = source_connstr($source);

# user rows of spatial_ref_sys: srids that its condition selects
$source->safe_psql('app', q{
	CREATE EXTENSION postgis;
	INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text)
	SELECT 910000 + i, 'test', 910000 + i, 'LOCAL_CS["test ' || i || '"]', ''
	FROM generate_series(1, 5) i;
	SET ROLE migrator;
	CREATE TABLE places (id int PRIMARY KEY, name text, g geometry(Point, 4326));
	INSERT INTO places
	SELECT i, 'p' || i, ST_SetSRID(ST_MakePoint(i, i / 2.0), 4326)
	FROM generate_series(1, 500) i;
});
my $is_config = $source->safe_psql('app', q{
	SELECT count(*) FROM pg_extension
	WHERE extname = 'postgis' AND 'spatial_ref_sys'::regclass = ANY (extconfig)});
is($is_config, '1', 'spatial_ref_sys is a configuration table of postgis');

my @tables = qw(public.spatial_ref_sys public.places);
{
	$source->safe_psql('app', q{
		CREATE EXTENSION ingest_cfgtest;
		INSERT INTO cfgtest.settings VALUES (100, 'user'), (101, 'user'), (102, 'user');
		SELECT setval('cfgtest.ticket', 42);
	});
	push @tables, 'cfgtest.settings';
}

create_db($target, 'geo');
$target->safe_psql('geo', 'CREATE EXTENSION pg_ingest');

# --- preflight counts the user rows ----------------------------------------
my $pf = $target->safe_psql('geo',
	"SELECT status || '|' || detail FROM ingest.preflight('$conn') WHERE check_name = 'extension_config_rows'");
like($pf, qr/^PASS\|.*public\.spatial_ref_sys \(5 rows\)/,
	'preflight: the user rows of spatial_ref_sys are counted and copied');

# --- a live migration --------------------------------------------------------
$target->safe_psql('geo', "SELECT ingest.start('$conn', name => 'geo', table_jobs => 2)");
ok(wait_phase($target, 'geo', 'geo', 'streaming'), 'the migration streams');
is($target->safe_psql('geo', 'SELECT count(*) FROM spatial_ref_sys WHERE srid > 910000'),
	'5', 'the user rows of spatial_ref_sys are copied');
cmp_ok($target->safe_psql('geo', 'SELECT count(*) FROM spatial_ref_sys WHERE srid = 4326'),
	'==', 1, 'beside the rows CREATE EXTENSION made');
same_content($source, 'app', $target, 'geo', \@tables, 'the copy matches the source');

# (the sequence first: nextval writes WAL that no commit follows)
{
	$source->safe_psql('app', q{
		INSERT INTO cfgtest.settings VALUES (103, 'streamed');
		UPDATE cfgtest.settings SET v = 'changed' WHERE id = 100;
		DELETE FROM cfgtest.settings WHERE id = 101;
		SELECT nextval('cfgtest.ticket') FROM generate_series(1, 8);
	});
}
$source->safe_psql('app', q{
	INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text)
	VALUES (910010, 'test', 910010, 'LOCAL_CS["streamed"]', '');
	UPDATE spatial_ref_sys SET srtext = 'LOCAL_CS["changed"]' WHERE srid = 910001;
	DELETE FROM spatial_ref_sys WHERE srid = 910002;
	INSERT INTO places VALUES (501, 'new', ST_SetSRID(ST_MakePoint(1, 2), 4326));
	UPDATE places SET g = ST_SetSRID(ST_MakePoint(0, 0), 4326) WHERE id <= 10;
	DELETE FROM places WHERE id BETWEEN 20 AND 29;
});
my $lsn = $source->safe_psql('app', 'SELECT pg_current_wal_lsn()');
ok( poll_until($target, 'geo',
		"SELECT applied_lsn >= '$lsn' FROM ingest.status WHERE name = 'geo'",
		't', 'the changes to be applied'),
	'the changes to configuration tables are applied');
same_content($source, 'app', $target, 'geo', \@tables,
	'spatial_ref_sys and places match while streaming');

# --- cutover -------------------------------------------------------------------
$target->safe_psql('geo', "SELECT ingest.cutover('geo')");
is($target->safe_psql('geo', "SELECT phase FROM ingest.status WHERE name = 'geo'"),
	'completed', 'the migration completed');
same_content($source, 'app', $target, 'geo', \@tables, 'every table matches after the cutover');
is($target->safe_psql('geo',
		"SELECT string_agg(table_name || ' ' || status, ', ') FROM ingest.verify('geo')"
		  . " WHERE table_name = 'public.spatial_ref_sys' OR status <> 'MATCH'"),
	'public.spatial_ref_sys MATCH', 'ingest.verify compares spatial_ref_sys, and everything matches');
is($target->safe_psql('geo',
		"SELECT count(*) FROM ingest.events WHERE name = 'geo' AND (level = 'ERROR' OR kind = 'not carried')"),
	'0', 'no ERROR and no "not carried" event');
{
	is($target->safe_psql('geo', 'SELECT last_value FROM cfgtest.ticket'),
		$source->safe_psql('app', 'SELECT last_value FROM cfgtest.ticket'),
		'the configuration sequence is set');
	is($target->safe_psql('geo', "SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM cfgtest.settings"),
		'1:shipped,2:shipped,100:changed,102:user,103:streamed',
		'the extension\'s own rows stay, the user rows are the source\'s');
}

# --- the filters name configuration tables ------------------------------------
create_db($target, 'nosrs');
$target->safe_psql('nosrs', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('nosrs',
	"SELECT ingest.start('$conn', name => 'nosrs', mode => 'full-load',"
	  . " exclude_tables => '{public.spatial_ref_sys}')");
ok(wait_phase($target, 'nosrs', 'nosrs', 'completed'), 'a migration leaving spatial_ref_sys out completes');
is($target->safe_psql('nosrs', 'SELECT count(*) FROM spatial_ref_sys WHERE srid > 910000'),
	'0', 'and copies none of its user rows');
same_content($source, 'app', $target, 'nosrs', ['public.places'], 'places is copied');

done_testing();
