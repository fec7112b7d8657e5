# Large objects (issue 8, item 1):
# - the full load copies every large object of the snapshot, in parallel
#   with the tables: same OID, data (0 bytes, a few bytes, several MB across
#   chunk boundaries, exactly one chunk), comment, owner, privileges; an
#   owner or grantee that does not exist on the target is a WARNING event;
# - while the migration streams, large objects created, written, unlinked,
#   commented and granted on the source are brought over at the stop, with
#   an INFO event giving the counts;
# - ingest.verify has a row for them; preflight counts them, and a source
#   user that may not read them all is refused (preflight FAIL, start ERROR);
# - a full-load-only migration copies them too; so does one whose owner is
#   not a superuser (objects of roles it may not give them to are its own),
#   whose stop also brings them up to date;
# - ingest.start refuses a target database that has large objects.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $source = new_source('source');
my $target = new_target('target', 'pg_ingest.retry_delay' => "'100ms'");
my $conn = source_connstr($source);

$source->safe_psql('postgres', q{
	CREATE ROLE lo_owner; CREATE ROLE reader; CREATE ROLE ghost;
	GRANT lo_owner TO migrator;
});
$target->safe_psql('postgres', 'CREATE ROLE lo_owner; CREATE ROLE reader; CREATE ROLE migrator;');

# 3.4 MB: crosses the 1 MB chunks; 1 MB exactly: one full chunk and no more
$source->safe_psql('app', q{
	CREATE TABLE t (id int PRIMARY KEY, v text);
	INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
	ALTER TABLE t OWNER TO migrator;
	SELECT lo_create(100001);
	SELECT lo_from_bytea(100002, 'hello');
	SELECT lo_from_bytea(100003, (SELECT convert_to(string_agg(md5(g::text), ''), 'UTF8')
		FROM generate_series(1, 110000) g));
	SELECT lo_from_bytea(100004, (SELECT convert_to(repeat('x', 1048576), 'UTF8')));
	SELECT lo_from_bytea(100005, 'owned by a role the target lacks');
	SELECT lo_from_bytea(0, convert_to(repeat(g::text, g), 'UTF8')) FROM generate_series(1, 200) g;
	COMMENT ON LARGE OBJECT 100002 IS 'greeting';
	ALTER LARGE OBJECT 100002 OWNER TO migrator;
	GRANT SELECT, UPDATE ON LARGE OBJECT 100002 TO reader WITH GRANT OPTION;
	ALTER LARGE OBJECT 100003 OWNER TO lo_owner;
	GRANT SELECT ON LARGE OBJECT 100003 TO reader;
	GRANT SELECT ON LARGE OBJECT 100001 TO migrator;
	GRANT SELECT ON LARGE OBJECT 100004 TO PUBLIC;
	GRANT SELECT ON LARGE OBJECT 100004 TO ghost;
	ALTER LARGE OBJECT 100005 OWNER TO ghost;
	GRANT SELECT ON LARGE OBJECT 100005 TO migrator;
});
# the 200 small ones belong to the superuser: the migration user reads them
$source->safe_psql('app', q{
	DO $$ DECLARE o oid; BEGIN
	FOR o IN SELECT oid FROM pg_largeobject_metadata WHERE oid < 100000 OR oid > 100005 LOOP
		EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO migrator', o);
	END LOOP; END $$;
});

# Every large object: OID, owner, privileges (without those of ghost, which
# the target lacks), comment, md5 of the data.
my $objects = q{
	SELECT string_agg(format('%s|%s|%s|%s|%s|%s', m.oid, pg_get_userbyid(m.lomowner),
		array_to_string(ARRAY(SELECT x FROM unnest(m.lomacl::text[]) x
			WHERE x NOT LIKE 'ghost=%' ORDER BY 1), ','),
		obj_description(m.oid, 'pg_largeobject'), length(lo_get(m.oid)), md5(lo_get(m.oid))),
		E'\n' ORDER BY m.oid)
	FROM pg_largeobject_metadata m WHERE m.oid <> 100005};
sub same_objects
{
	my ($db, $what) = @_;
	my $src = $source->safe_psql('app', $objects);
	my $tgt = $target->safe_psql($db, $objects);
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return is($tgt, $src, $what);
}
my $me = $target->safe_psql('postgres', 'SELECT current_user');

# --- preflight ---------------------------------------------------------------
like($target->safe_psql('postgres',
		"SELECT status || '|' || detail FROM ingest.preflight('$conn') WHERE check_name = 'large_objects'"),
	qr/^PASS\|205 large object\(s\) \(pg_largeobject: [^)]+\): copied with the tables/,
	'preflight counts the large objects and passes');

# --- full load and change data capture ---------------------------------------
create_db($target, 'lo');
$target->safe_psql('lo', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('lo',
	"SELECT ingest.start('$conn', name => 'lo', mode => 'full-load-and-cdc', table_jobs => 2)");
ok(wait_phase($target, 'lo', 'lo', 'streaming'), 'the migration streams');
is($target->safe_psql('lo',
		"SELECT count(*) || ' ' || sum(rows_done) FROM ingest.tables"
		  . " WHERE name = 'lo' AND source_table = 'pg_catalog.pg_largeobject' AND state = 'done'"),
	'2 205', 'the large objects are two copy items of pg_largeobject (one per job)');
same_objects('lo', 'the full load copies every large object: OID, owner, privileges, comment, data');
is($target->safe_psql('lo',
		'SELECT pg_get_userbyid(lomowner) FROM pg_largeobject_metadata WHERE oid = 100005'),
	$me, 'an owner the target lacks leaves the object to the migration owner');
like($target->safe_psql('lo',
		"SELECT string_agg(message, E'\\n') FROM ingest.events WHERE name = 'lo' AND kind = 'large objects' AND level = 'WARNING'"),
	qr/large object\(s\) kept by the migration's owner .*left out; roles: ghost/,
	'which is one WARNING event, naming the role');
is($target->safe_psql('lo', "SELECT count(*) FROM ingest.events WHERE name = 'lo' AND kind = 'not carried'"),
	'0', 'large objects are no longer "not carried"');

# while it streams: new objects, writes, an unlink, a comment, a grant
$source->safe_psql('app', q{
	SELECT lo_from_bytea(100010, 'new');
	SELECT lo_from_bytea(100011, (SELECT convert_to(string_agg(md5((-g)::text), ''), 'UTF8')
		FROM generate_series(1, 80000) g));
	GRANT SELECT ON LARGE OBJECT 100010, 100011 TO migrator;
	SELECT lo_put(100003, 1048000, 'patched across the chunk boundary');
	SELECT lo_unlink(100001);
	COMMENT ON LARGE OBJECT 100004 IS 'changed';
	GRANT UPDATE ON LARGE OBJECT 100003 TO reader;
	INSERT INTO t VALUES (1001, 'streamed');
});
ok(poll_until($target, 'lo', 'SELECT count(*) FROM t', '1001', 'the row to be applied'),
	'the stream goes on');
isnt($target->safe_psql('lo', $objects), $source->safe_psql('app', $objects),
	'large object changes are not in the stream');

$target->safe_psql('lo', "SELECT ingest.cutover('lo')");
ok(wait_phase($target, 'lo', 'lo', 'completed'), 'the migration completes');
same_objects('lo', 'after the stop every large object is as on the source');
like($target->safe_psql('lo',
		"SELECT message FROM ingest.events WHERE name = 'lo' AND kind = 'large objects' AND level = 'INFO'"),
	qr/^large objects at the stop: 2 copied, 2 updated, 1 removed, 202 unchanged in \d+ ms$/,
	'the stop reports the counts and the time');
is($target->safe_psql('lo',
		"SELECT source_rows || ' ' || target_rows || ' ' || status FROM ingest.verify('lo', 'hash')"
		  . " WHERE table_name = 'large objects'"),
	'206 206 MATCH', 'ingest.verify compares them and finds them equal');
is($target->safe_psql('lo',
		"SELECT string_agg(table_name || ' ' || status, ',') FROM ingest.verify('lo', 'hash')"),
	'public.t MATCH,large objects MATCH', 'and lists them after the tables');

# a difference is found by ingest.verify
$target->safe_psql('lo', "SELECT lo_put(100004, 0, 'y')");
is($target->safe_psql('lo',
		"SELECT status FROM ingest.verify('lo', 'hash') WHERE table_name = 'large objects'"),
	'MISMATCH', 'ingest.verify sees a changed byte');

# --- full load only, by an owner that is not a superuser ---------------------
# it may give objects to lo_owner (a member), not to the others: it keeps those
$target->safe_psql('postgres', 'CREATE ROLE mig LOGIN IN ROLE ingest_admin, lo_owner');
create_db($target, 'lofull', 'mig');
$target->safe_psql('lofull', 'CREATE EXTENSION pg_ingest');
my ($ret, $out, $err) = $target->psql('lofull',
	"SELECT ingest.start('$conn', name => 'lofull', mode => 'full-load', table_jobs => 1)",
	extra_params => [ '-U', 'mig' ]);
is($ret, 0, 'a full load is started by an owner that is not a superuser') or diag($err);
ok(wait_phase($target, 'lofull', 'lofull', 'completed'), 'the full load completes');
like($target->safe_psql('lofull', "SELECT message FROM ingest.events WHERE name = 'lofull' AND kind = 'summary'"),
	qr/^migration completed: 1 tables, 1001 rows, 206 large objects, /, 'the summary counts them apart');
my $data = q{SELECT string_agg(format('%s|%s|%s', m.oid, obj_description(m.oid, 'pg_largeobject'),
	md5(lo_get(m.oid))), E'\n' ORDER BY m.oid) FROM pg_largeobject_metadata m};
is($target->safe_psql('lofull', $data), $source->safe_psql('app', $data),
	'a full load alone copies every large object: OIDs, comments, data');
is($target->safe_psql('lofull',
		"SELECT string_agg(o || ' ' || n, ',' ORDER BY o) FROM (SELECT pg_get_userbyid(lomowner) o, count(*) n FROM pg_largeobject_metadata GROUP BY 1) s"),
	'lo_owner 1,mig 205', 'owners it may give objects to are kept; it keeps the others');
is($target->safe_psql('lofull',
		"SELECT status FROM ingest.verify('lofull', 'hash') WHERE table_name = 'large objects'"),
	'MATCH', 'ingest.verify agrees');

# --- change data capture by that owner: the stop writes, unlinks, comments ---
create_db($target, 'locdc', 'mig');
$target->safe_psql('locdc', 'CREATE EXTENSION pg_ingest');
($ret, $out, $err) = $target->psql('locdc',
	"SELECT ingest.start('$conn', name => 'locdc', mode => 'full-load-and-cdc', table_jobs => 2)",
	extra_params => [ '-U', 'mig' ]);
is($ret, 0, 'and a migration with change data capture') or diag($err);
ok(wait_phase($target, 'locdc', 'locdc', 'streaming'), 'which streams');
$source->safe_psql('app', q{
	SELECT lo_from_bytea(100030, 'by mig');
	GRANT SELECT ON LARGE OBJECT 100030 TO migrator;
	SELECT lo_put(100003, 0, 'mig was here');
	SELECT lo_unlink(100010);
	COMMENT ON LARGE OBJECT 100011 IS 'commented';
});
$target->safe_psql('locdc', "SELECT ingest.cutover('locdc')");
ok(wait_phase($target, 'locdc', 'locdc', 'completed'), 'it completes');
is($target->safe_psql('locdc', $data), $source->safe_psql('app', $data),
	'its stop brings every large object up to date');
like($target->safe_psql('locdc',
		"SELECT message FROM ingest.events WHERE name = 'locdc' AND kind = 'large objects' AND level = 'INFO'"),
	qr/^large objects at the stop: 1 copied, 2 updated, 1 removed, 203 unchanged in \d+ ms$/,
	'with the counts');
is($target->safe_psql('locdc',
		"SELECT pg_get_userbyid(lomowner) FROM pg_largeobject_metadata WHERE oid = 100003"),
	'lo_owner', 'an object of a role it is a member of keeps its owner');

# --- a source user that may not read them all is refused ----------------------
$source->safe_psql('app', "SELECT lo_from_bytea(100020, 'secret')");
like($target->safe_psql('postgres',
		"SELECT status || '|' || detail FROM ingest.preflight('$conn') WHERE check_name = 'large_objects'"),
	qr/^FAIL\|207 large object\(s\) .*may not read 1: 100020 \(owner /,
	'preflight fails on a large object the user may not read');
create_db($target, 'refused');
$target->safe_psql('refused', 'CREATE EXTENSION pg_ingest');
($ret, $out, $err) = $target->psql('refused',
	"SELECT ingest.start('$conn', name => 'refused', mode => 'full-load')");
like($err, qr/the source user "migrator" may not read 1 large object\(s\) of the source/,
	'ingest.start refuses it, naming why');
is($target->safe_psql('refused', 'SELECT count(*) FROM ingest.migration'), '0',
	'and records nothing');

# --- a target database that has large objects is refused ----------------------
$source->safe_psql('app', 'GRANT SELECT ON LARGE OBJECT 100020 TO migrator');
$target->safe_psql('refused', "SELECT lo_from_bytea(100020, 'mine')");
($ret, $out, $err) = $target->psql('refused',
	"SELECT ingest.start('$conn', name => 'refused', mode => 'full-load')");
like($err, qr/this database already has 1 large object\(s\)/,
	'ingest.start refuses a target database that has large objects');

done_testing();
