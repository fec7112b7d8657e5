# Metrics for Prometheus and progress in psql (issue 10).
#
# A live migration (full load and CDC) from a source whose role logs in
# with a password.  While it streams, with changes flowing:
#  - ingest.metrics() has the migration's series, never the password, and
#    "promtool check metrics" (Debian package prometheus) accepts it; so
#    it does in a database whose name needs escaping in a label value;
#  - Debian's prometheus-postgres-exporter, started on a free loopback port
#    with contrib/postgres_exporter.yml as a role that is a member of
#    ingest_admin, serves the same pg_ingest series over HTTP;
#  - SELECT ingest.wait(...) in psql says how the migration moves in a
#    NOTICE every progress interval.
# Skipped, saying so, only when promtool or the exporter is not installed
# (scripts/lib.sh installs both for CI).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use File::Spec;
use HTTP::Tiny;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use IngestTest;

sub find_binary
{
	my ($name) = @_;
	for my $dir (split(/:/, $ENV{PATH} // ''), '/usr/bin', '/usr/sbin')
	{
		my $path = "$dir/$name";
		return $path if -x $path;
	}
	return undef;
}

my $promtool = find_binary('promtool');
my $exporter = find_binary('prometheus-postgres-exporter');
plan skip_all => 'promtool not found: install the Debian package prometheus'
  unless $promtool;
plan skip_all => 'prometheus-postgres-exporter not found: install the Debian package of that name'
  unless $exporter;

my $yml = File::Spec->rel2abs("$FindBin::RealBin/../contrib/postgres_exporter.yml");
ok(-f $yml, "$yml is there");

# promtool check metrics on a text; returns its exit status and output
sub promtool_check
{
	my ($text) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $promtool, 'check', 'metrics' ], '<', \$text, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return ($? >> 8, $out . $err);
}

my $source = new_source('source');
my $target = new_target('target',
	'pg_ingest.caught_up_threshold' => "'5s'");
my $conn = source_connstr($source);

$source->safe_psql('app', q{
	SET ROLE migrator;
	CREATE TABLE items (id int PRIMARY KEY, v text);
	INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
	CREATE TABLE notes (id serial PRIMARY KEY, note text);
});

$target->safe_psql('postgres', "SELECT ingest.start('$conn', name => 'm1')");
ok(wait_phase($target, 'postgres', 'm1', 'streaming'), 'the migration streams');
$source->safe_psql('app',
	"INSERT INTO notes (note) SELECT 'n' || g FROM generate_series(1, 200) g");
ok(poll_until($target, 'postgres', 'SELECT count(*) FROM notes', '200', 'changes to arrive'),
	'changes are applied');

# --- ingest.metrics() ------------------------------------------------------
my $metrics = $target->safe_psql('postgres', 'SELECT ingest.metrics()') . "\n";
unlike($metrics, qr/S3cret-Pass/, 'ingest.metrics() never shows the password');
like($metrics, qr/^pg_ingest_phase\{migration="m1",database="postgres",phase="streaming"\} 1$/m,
	'the phase is a state set: streaming is 1');
like($metrics, qr/^pg_ingest_phase\{migration="m1",database="postgres",phase="copying"\} 0$/m,
	'and copying is 0');
like($metrics, qr/^pg_ingest_tables\{migration="m1",database="postgres"\} 2$/m, 'tables');
like($metrics, qr/^pg_ingest_copied_rows\{migration="m1",database="postgres"\} 5000$/m, 'rows copied');
for my $series (qw(applied_lsn received_lsn lag_bytes lag_seconds spool_bytes errors_total
	retries_total source_reachable))
{
	like($metrics, qr/^pg_ingest_${series}\{migration="m1",database="postgres"\} [0-9.]+$/m,
		"pg_ingest_$series has a sample");
}
like($metrics, qr/^pg_ingest_source_reachable\{migration="m1",database="postgres"\} 1$/m,
	'the source is reachable');
my ($rc, $out) = promtool_check($metrics);
is($rc, 0, 'promtool check metrics accepts ingest.metrics()') or diag("$out\n$metrics");

# a database name that needs escaping in a label value: " and \
my $odd = 'odd "db" \\ name';
$target->safe_psql('postgres', qq{CREATE DATABASE "odd ""db"" \\ name"});
$target->safe_psql($odd, 'CREATE EXTENSION pg_ingest');
$target->safe_psql($odd, "SELECT ingest.start('$conn', name => 'm2', mode => 'full-load')");
# watched with ingest.wait in psql, a NOTICE every 0.2 s: the phases go by
{
	my ($stdout, $stderr);
	$target->psql($odd, "SELECT ingest.wait('m2', 'completed', '2 min', progress => '0.2 s')",
		stdout => \$stdout, stderr => \$stderr);
	is($stdout, 't', 'a full load into that database completes');
	my @notices = grep { /NOTICE/ } split /\n/, $stderr;
	ok(@notices > 0, 'ingest.wait reported progress while it waited');
	is_deeply([ grep { !/NOTICE:  migration "m2": (starting|schema|copying|indexing|finalizing|completed)\b/ } @notices ],
		[], 'each NOTICE names the migration and its phase');
	note("ingest.wait's progress of the full load:\n$stderr");
}
my $odd_metrics = $target->safe_psql($odd, 'SELECT ingest.metrics()') . "\n";
like($odd_metrics,
	qr/^pg_ingest_tables\{migration="m2",database="odd \\"db\\" \\\\ name"\} 2$/m,
	'the database label is escaped');
($rc, $out) = promtool_check($odd_metrics);
is($rc, 0, 'promtool check metrics accepts it') or diag("$out\n$odd_metrics");

# --- the exporter ----------------------------------------------------------
$target->safe_psql('postgres',
	'CREATE ROLE prometheus LOGIN; GRANT ingest_admin, pg_monitor TO prometheus');
my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($exp_out, $exp_err) = ('', '');
my $exp;
{
	local $ENV{DATA_SOURCE_NAME} = sprintf('host=%s port=%d dbname=postgres user=prometheus sslmode=disable',
		$target->host, $target->port);
	$exp = IPC::Run::start(
		[ $exporter, "--web.listen-address=127.0.0.1:$port", "--extend.query-path=$yml",
		  '--disable-settings-metrics', '--log.level=warn' ],
		'<', \undef, '>', \$exp_out, '2>', \$exp_err);
}
# straight to loopback, whatever proxy the environment names
my $http = HTTP::Tiny->new(timeout => 10, proxy => undef, http_proxy => undef);
my $body = '';
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	my $res = $http->get("http://127.0.0.1:$port/metrics");
	$body = $res->{success} ? $res->{content} : '';
	last if $body =~ /^pg_ingest_tables\{/m;
	usleep(200_000);
}
$exp->signal('TERM');
$exp->finish;

my $m1 = qr/(?=[^}]*migration="m1")(?=[^}]*database="postgres")/;
like($body, qr/^pg_ingest_tables\{$m1[^}]*\} 2$/m, 'the exporter serves pg_ingest_tables')
  or diag("exporter stderr: $exp_err\nscrape:\n" . substr($body, 0, 3000));
like($body, qr/^pg_ingest_phase\{$m1(?=[^}]*phase="streaming")[^}]*\} 1$/m,
	'and the phase as a state set');
like($body, qr/^pg_ingest_phase\{$m1(?=[^}]*phase="completed")[^}]*\} 0$/m,
	'with 0 for the other phases');
for my $series (qw(copied_rows applied_lsn lag_bytes errors_total source_reachable))
{
	like($body, qr/^pg_ingest_${series}\{$m1[^}]*\} \S+$/m, "and pg_ingest_$series");
}
like($body, qr/^# TYPE pg_ingest_errors_total counter$/m, 'errors_total is a counter');
note("the scrape's pg_ingest series:\n" . join("\n", grep { /^pg_ingest_/ } split /\n/, $body));
unlike($body, qr/S3cret-Pass/, 'the scrape never shows the password');

# --- progress in psql -------------------------------------------------------
my ($stdout, $stderr);
$target->psql('postgres', "SELECT ingest.wait('m1', 'completed', '3 s', progress => '1 s')",
	stdout => \$stdout, stderr => \$stderr);
is($stdout, 'f', 'ingest.wait times out while it streams');
like($stderr, qr/NOTICE:  migration "m1": streaming, .*lag /,
	'and says every second where the migration is');
note("ingest.wait's progress:\n$stderr");
$target->psql('postgres', "SELECT ingest.wait('m1', 'completed', '2 s', progress => NULL)",
	stdout => \$stdout, stderr => \$stderr);
is($stderr, '', 'progress => NULL silences it');
is($target->safe_psql('postgres', "SELECT phase FROM ingest.progress WHERE name = 'm1'"),
	'streaming', 'ingest.progress has its line');

$target->safe_psql('postgres', "SELECT ingest.abort('m1')");
done_testing();
