# The spool after a transaction larger than a spool segment.
#
# One source transaction of about 90 MB fills more than one 64 MB spool
# segment.  Once it is applied, the segments before the reader's current
# one are removed, and ingest.status's spool_bytes says so at once: the
# applier publishes the size it leaves, not the receiver at its next fsync
# (pg_ingest.spool_sync_interval, a minute here, so that a stale figure
# shows).  The target then has the source's rows.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IngestTest;

my $source = new_source('source');
my $target = new_target('target', 'pg_ingest.spool_sync_interval' => "'60s'");
my $conn = source_connstr($source);

$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE big (id int PRIMARY KEY, payload text NOT NULL);
	INSERT INTO big VALUES (0, 'before');
});

create_db($target, 'app');
$target->safe_psql('app', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('app', "SELECT ingest.start('$conn', name => 'sp')");
ok(wait_phase($target, 'app', 'sp', 'streaming'), 'the migration streams');

my ($dboid, $id) = split /\|/, $target->safe_psql('app',
	"SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), id"
	  . " FROM ingest.migration WHERE name = 'sp'");
my $dir = $target->data_dir . "/pg_ingest/spool/${dboid}_$id";

sub segments
{
	opendir(my $dh, $dir) or return ();
	my @s = sort grep { /^[0-9A-F]{8}\.seg$/ } readdir $dh;
	closedir $dh;
	return @s;
}

# rows of ~1 kB, in one transaction: more than a 64 MB segment spooled
$source->safe_psql('app',
	"INSERT INTO big SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 90000) g");
ok(poll_until($target, 'app', 'SELECT count(*) FROM big WHERE id = 90000', '1', 'the big transaction applied'),
	'the big transaction is applied');

# removed once committed and flushed: a moment, not the receiver's next fsync
my ($segs, $bytes) = ('', '');
my $deadline = time + 15;
while (time < $deadline)
{
	$segs = join(' ', segments());
	$bytes = $target->safe_psql('app', "SELECT spool_bytes FROM ingest.status WHERE name = 'sp'");
	last if $segs !~ / / && $bytes < 64 * 1024 * 1024;
	usleep(100_000);
}
like($segs, qr/^[0-9A-F]{8}\.seg$/, "one spool segment is left ($segs)");
ok(hex((split /\./, $segs)[0]) >= 2, 'the transaction filled more than one segment');
cmp_ok($bytes, '<', 64 * 1024 * 1024, "ingest.status's spool_bytes says so ($bytes)");

is($target->safe_psql('app', 'SELECT count(*), sum(length(payload)) FROM big'),
	$source->safe_psql('app', 'SELECT count(*), sum(length(payload)) FROM big'),
	'the target has the source rows');

$target->safe_psql('app', "SELECT ingest.abort('sp')");
done_testing();
