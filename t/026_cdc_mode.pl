# Change data capture: mode 'cdc' on a migrated database, and a stop LSN in
# the past.
#
# A database is first migrated (full load, CDC, cutover); a migration in
# mode 'cdc' (schema => 'existing') then streams onto it only the changes
# made since, and its cutover leaves every table with the source's content.
# Another cdc migration given a stop LSN in the past stops at once and
# records it; stop_at on it, completed, is refused; cleanup run twice
# leaves no slot on the source.

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

my $conn = source_connstr($source);

# --- the source: pgbench's tables with foreign keys, and the CDC tables ---
my @tables = load_cdc_source($source);
$source->safe_psql('app',
	"INSERT INTO big (id, payload) SELECT g, md5(g::text) FROM generate_series(1, 200000) g");

# --- a migrated database: full load, CDC, cutover ---------------------------
create_db($target, 'migrated');
$target->safe_psql('migrated', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('migrated', "SELECT ingest.start('$conn', name => 'first', table_jobs => 2, index_jobs => 2)");
ok(wait_phase($target, 'migrated', 'first', 'streaming'), 'the first migration streams');
$source->safe_psql('app', "UPDATE keyed SET v = 'while streaming' WHERE id <= 10");
$target->safe_psql('migrated', "SELECT ingest.cutover('first')");
is($target->safe_psql('migrated', "SELECT phase FROM ingest.status WHERE name = 'first'"),
	'completed', 'the first migration completes');
same_content($source, 'app', $target, 'migrated', \@tables, 'the database is migrated');

# --- mode 'cdc' on a migrated database, and a stop LSN in the past ------
$target->safe_psql('migrated', "SELECT ingest.start('$conn', name => 'again', mode => 'cdc', schema => 'existing')");
ok(wait_phase($target, 'migrated', 'again', 'streaming'), "mode 'cdc' streams");
$source->safe_psql('app', q{
	UPDATE keyed SET v = 'cdc mode' WHERE id <= 2000;
	DELETE FROM big WHERE id > 199000;
	UPDATE toasty SET n = n + 10;
});
$target->safe_psql('migrated', "SELECT ingest.cutover('again')");
same_content($source, 'app', $target, 'migrated', \@tables, "mode 'cdc' brings the changes made since");

$target->safe_psql('migrated', "SELECT ingest.start('$conn', name => 'past', mode => 'cdc', schema => 'existing')");
ok(wait_phase($target, 'migrated', 'past', 'streaming'), 'another cdc migration streams');
$target->safe_psql('migrated', "SELECT ingest.stop_at('0/1', 'past')");
ok(wait_phase($target, 'migrated', 'past', 'completed'), 'a stop LSN in the past stops at once');
is($target->safe_psql('migrated',
		"SELECT message FROM ingest.events WHERE name = 'past' AND kind = 'phase' ORDER BY id DESC LIMIT 1"),
	'phase completed', 'the stop is recorded');
my ($ret, $out, $err) = $target->psql('migrated', "SELECT ingest.stop_at('1/0', 'past')");
like($err, qr/no unfinished migration is named "past"/, 'stop_at on a completed migration is refused');
$target->safe_psql('migrated', "SELECT ingest.cleanup('past')");
$target->safe_psql('migrated', "SELECT ingest.cleanup('past')");
is($source->safe_psql('app', "SELECT count(*) FROM pg_replication_slots"), '0',
	'cleanup twice: no slot left on the source');

done_testing();
