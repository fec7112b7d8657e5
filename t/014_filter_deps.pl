# Filters that leave out tables other objects depend on: a view over an
# excluded table (and a view over that view), a materialized view and its
# index, a function returning the table's row type, a composite type and a
# domain over it, a foreign key to it, an INSTEAD OF trigger of the view, a
# policy that reads it; a view over a table of an excluded schema, a
# function taking a type of it, a trigger calling a function of it.  The
# migration skips each of them with exactly one WARNING naming the table,
# no ERROR, completes, and everything else arrives identical.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $source = new_source('source');
my $target = new_target('target');
my $conn = source_connstr($source);

$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE base (id int PRIMARY KEY, v text);
	CREATE TABLE keep (id int PRIMARY KEY, base_id int REFERENCES base, v text);
	INSERT INTO base SELECT i, 'b' || i FROM generate_series(1, 20) i;
	INSERT INTO keep SELECT i, i % 20 + 1, 'k' || i FROM generate_series(1, 200) i;
	CREATE SCHEMA aux;
	CREATE TABLE aux.lookup (code text PRIMARY KEY);
	CREATE VIEW v_lookup AS SELECT code FROM aux.lookup;
	CREATE TYPE aux.mood AS ENUM ('ok', 'bad');
	CREATE FUNCTION moody(m aux.mood) RETURNS int LANGUAGE sql AS 'SELECT 1';
	CREATE FUNCTION aux.trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
	CREATE TRIGGER keep_aux BEFORE UPDATE ON keep FOR EACH ROW EXECUTE FUNCTION aux.trg();

	CREATE VIEW v_base AS SELECT * FROM base;
	COMMENT ON VIEW v_base IS 'over base';
	COMMENT ON COLUMN v_base.v IS 'a column of it';
	GRANT SELECT ON v_base TO PUBLIC;
	CREATE VIEW v_v AS SELECT id FROM v_base;
	CREATE MATERIALIZED VIEW mv_base AS SELECT id, count(*) AS n FROM base GROUP BY id;
	CREATE INDEX mv_base_id ON mv_base (id);
	CREATE FUNCTION get_base(x int) RETURNS base LANGUAGE sql
		AS 'SELECT * FROM base WHERE id = x';
	COMMENT ON FUNCTION get_base(int) IS 'returns a row of base';
	CREATE TYPE wrap AS (b base, n int);
	CREATE DOMAIN dbase AS base;
	CREATE FUNCTION trg_f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
	CREATE TRIGGER v_trg INSTEAD OF INSERT ON v_base FOR EACH ROW EXECUTE FUNCTION trg_f();
	ALTER TABLE keep ENABLE ROW LEVEL SECURITY;
	CREATE POLICY p_base ON keep USING (base_id IN (SELECT id FROM base));

	-- what stays
	CREATE VIEW v_keep AS SELECT id, v FROM keep;
	COMMENT ON VIEW v_keep IS 'over keep';
	CREATE MATERIALIZED VIEW mv_keep AS SELECT base_id, count(*) AS n FROM keep GROUP BY base_id;
	CREATE INDEX mv_keep_id ON mv_keep (base_id);
	CREATE FUNCTION get_keep(x int) RETURNS keep LANGUAGE sql
		AS 'SELECT * FROM keep WHERE id = x';
	CREATE TRIGGER keep_trg BEFORE INSERT ON keep FOR EACH ROW EXECUTE FUNCTION trg_f();
	CREATE POLICY p_keep ON keep USING (id > 0);
});

create_db($target, 'deps');
$target->safe_psql('deps', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('deps',
	"SELECT ingest.start('$conn', name => 'deps', mode => 'full-load',"
	  . " exclude_tables => '{public.base}', exclude_schemas => '{aux}')");
poll_until($target, 'deps',
	"SELECT phase IN ('completed', 'failed') FROM ingest.status WHERE name = 'deps'",
	't', 'the migration to end');
is($target->safe_psql('deps', "SELECT phase FROM ingest.status WHERE name = 'deps'"),
	'completed', 'the migration completes');

is($target->safe_psql('deps',
		"SELECT string_agg(format('%s: %s', object, message), E'\\n' ORDER BY id)"
		  . " FROM ingest.events WHERE name = 'deps' AND level = 'ERROR'"),
	'', 'no ERROR event');

my $skipped = $target->safe_psql('deps',
	"SELECT string_agg(format('%s|%s', object, message), E'\\n' ORDER BY object)"
	  . " FROM ingest.events WHERE name = 'deps' AND level = 'WARNING' AND kind = 'skipped'");
my $b = 'skipped: depends on left-out table public.base';
is($skipped, join("\n",
		"composite type public.wrap|$b",
		"constraint keep_base_id_fkey on table public.keep|$b",
		"function public.get_base(integer)|$b",
		"function public.moody(aux.mood)|skipped: depends on left-out type aux.mood",
		"index public.mv_base_id|$b",
		"materialized view public.mv_base|$b",
		"policy p_base on table public.keep|$b",
		"trigger keep_aux on table public.keep|skipped: depends on left-out function aux.trg()",
		"trigger v_trg on view public.v_base|$b",
		"type public.dbase|$b",
		"view public.v_base|$b",
		"view public.v_lookup|skipped: depends on left-out table aux.lookup",
		"view public.v_v|$b"),
	'one WARNING per skipped object, naming the left-out table');

my $objects = q{
	SELECT string_agg(x, ',' ORDER BY x) FROM (
		SELECT c.relname::text AS x FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public'
		UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
		UNION ALL SELECT tgname FROM pg_trigger WHERE NOT tgisinternal
		UNION ALL SELECT polname FROM pg_policy
		UNION ALL SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace
		UNION ALL SELECT obj_description(c.oid, 'pg_class') FROM pg_class c WHERE c.relname = 'v_keep') s};
is($target->safe_psql('deps', $objects),
	'get_keep,keep,keep_pkey,keep_pkey,keep_trg,mv_keep,mv_keep_id,over keep,p_keep,trg_f,v_keep',
	'everything else is created');
same_content($source, 'app', $target, 'deps', [qw(keep v_keep mv_keep)],
	'keep, its view and its refreshed materialized view are identical');
is($target->safe_psql('deps', "SELECT count(*) FROM ingest.verify('deps') WHERE status <> 'MATCH'"),
	'0', 'ingest.verify agrees');

done_testing();
