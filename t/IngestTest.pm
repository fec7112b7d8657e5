# Helpers shared by the TAP tests of pg_ingest.
#
# They set up source and target clusters the way a migration needs them and
# wait for state by polling under a timeout; nothing here sleeps a guess.

package IngestTest;

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(
  citus_node
  plugin_conf new_target new_source poll_until source_connstr create_db
  run_sql_file table_hashes same_content wait_phase
  poll_value worker_pid log_count sequence_values try_psql
  load_cdc_source password_nowhere
);
use Exporter 'import';

# Servers from 15.19 on decode only with the plugins listed in
# output_plugin_libraries; older ones reject the setting.
sub plugin_conf
{
	my $out = `postgres --describe-config 2>/dev/null`;
	return $out =~ /^output_plugin_libraries\t/m
	  ? "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'\n"
	  : "";
}

# A target: pg_ingest preloaded, the extension created in "postgres".
sub new_target
{
	my ($name, %conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'pg_ingest'\n"
		  . "max_worker_processes = 32\n"
		  . "log_statement = none\n"
		  . join('', map { "$_ = $conf{$_}\n" } sort keys %conf));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_ingest');
	return $node;
}

# A source reachable over TCP on 127.0.0.1, where the role "migrator"
# logs in with a SCRAM password and everybody else is trusted.
sub new_source
{
	my ($name, %opts) = @_;
	my $logical = exists $opts{logical} ? $opts{logical} : 1;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $logical ? 'logical' : 1);
	$node->append_conf('postgresql.conf',
		"listen_addresses = '127.0.0.1'\n"
		  . "max_connections = 40\n"
		  . ($logical ? plugin_conf() : '')
		  . join('', map { "$_ = $opts{conf}{$_}\n" } sort keys %{ $opts{conf} || {} }));
	open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $hba "local all all trust\n"
	  . "host all migrator 127.0.0.1/32 scram-sha-256\n"
	  . "host all all 127.0.0.1/32 trust\n";
	close $hba;
	$node->start;
	$node->safe_psql('postgres',
		"SET log_statement = 'none'; SET password_encryption = 'scram-sha-256';"
		  . " CREATE ROLE migrator LOGIN REPLICATION PASSWORD 'S3cret-Pass';");
	create_db($node, 'app', 'migrator');
	return $node;
}

# A UTF8 database (the clusters' default encoding depends on LANG).
sub create_db
{
	my ($node, $db, $owner) = @_;
	$node->safe_psql('postgres',
		"CREATE DATABASE \"$db\" ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0"
		  . ($owner ? " OWNER $owner" : ''));
}

# Run an SQL file on a node's database, as a given role.
sub run_sql_file
{
	my ($node, $db, $file, $role) = @_;
	my $connstr = $node->connstr($db) . ($role ? " user=$role" : '');
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-f', $file ],
		'>', \$stdout, '2>', \$stderr);
	die "psql -f $file failed: $stderr" unless $ok;
}

# Per table, "name|count|hash" of its rows, independent of pg_ingest's own
# verification: md5 of every row's text, sorted.
sub table_hashes
{
	my ($node, $db, $tables) = @_;
	my %h;
	for my $t (@$tables)
	{
		$h{$t} = $node->safe_psql($db,
			"SELECT count(*) || ':' || COALESCE(md5(string_agg(md5((x.*)::text), '' ORDER BY md5((x.*)::text))), '')"
			  . " FROM ONLY $t AS x");
	}
	return \%h;
}

# One test: every table has the same content in both databases (given the
# source's hashes, or computed now); the differing ones are shown.
sub same_content
{
	my ($source, $sdb, $target, $tdb, $tables, $what, $source_hashes) = @_;
	my $src = $source_hashes || table_hashes($source, $sdb, $tables);
	my $tgt = table_hashes($target, $tdb, $tables);
	my @differ = grep { ($src->{$_} // '') ne ($tgt->{$_} // '') } @$tables;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return is_deeply(\@differ, [], $what)
	  || diag(join("\n", map { "$_: $src->{$_} vs $tgt->{$_}" } @differ));
}

# Wait for a migration to reach a phase; on failure show its events.
sub wait_phase
{
	my ($node, $db, $name, $phase) = @_;
	my $ok = poll_until($node, $db,
		"SELECT phase FROM ingest.status WHERE name = '$name'",
		$phase, "migration $name to reach $phase");
	diag($node->safe_psql($db,
		"SELECT string_agg(format('%s %s %s %s %s', at::time, level, kind, object, message), E'\\n' ORDER BY id)"
		  . " FROM ingest.events WHERE name = '$name'")) unless $ok;
	return $ok;
}

sub source_connstr
{
	my ($node, %kw) = @_;
	my %p = (
		host     => '127.0.0.1',
		port     => $node->port,
		user     => 'migrator',
		dbname   => 'app',
		password => 'S3cret-Pass',
		%kw);
	return join(' ', map { "$_=$p{$_}" } grep { defined $p{$_} } sort keys %p);
}

# Run $query on $node until it returns $expected or the test timeout ends.
sub poll_until
{
	my ($node, $db, $query, $expected, $what) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	my $last = '';
	while (time < $deadline)
	{
		my ($ret, $out, $err) = $node->psql($db, $query);
		$last = $ret == 0 ? $out : $err;
		return 1 if $ret == 0 && $out eq $expected;
		usleep(100_000);
	}
	diag("timed out waiting for $what: last result \"$last\"");
	return 0;
}

# $node->psql, for a server that may be restarting: psql gone before it
# read its input is an error returned, not the test's death.
sub try_psql
{
	my ($node, $db, $sql) = @_;
	my @r = eval { $node->psql($db, $sql) };
	return @r ? @r : (1, '', "psql: $@");
}

# Run $query on $node until it returns a non-empty result (errors, e.g.
# while the server restarts, count as empty) or $timeout seconds pass;
# returns that result, or undef.
sub poll_value
{
	my ($node, $db, $query, $timeout) = @_;
	my $deadline = time + ($timeout // $PostgreSQL::Test::Utils::timeout_default);
	while (time < $deadline)
	{
		my ($ret, $out, $err) = try_psql($node, $db, $query);
		return $out if $ret == 0 && defined $out && $out ne '';
		usleep(50_000);
	}
	return undef;
}

# The pid of a running pg_ingest worker of a kind (coordinator, copy,
# index, receiver, applier) of the migrations of $db, from ingest._live();
# $extra is an SQL condition on _live()'s columns.  Waits up to $timeout
# seconds for one to exist; undef if none did.
sub worker_pid
{
	my ($node, $db, $kind, $timeout, $extra) = @_;
	return poll_value($node, $db,
		"SELECT pid FROM ingest._live() WHERE kind = '$kind'"
		  . ($extra ? " AND ($extra)" : '') . ' ORDER BY pid LIMIT 1',
		$timeout);
}

# How many lines of a node's server log, from byte $offset on, match $re.
sub log_count
{
	my ($node, $re, $offset) = @_;
	my $log = slurp_file($node->logfile, $offset // 0);
	return scalar(grep { /$re/ } split /\n/, $log);
}

# name => last_value (0 when never called) of every sequence of a database.
sub sequence_values
{
	my ($node, $db) = @_;
	my %v = map { split /\|/ } split /\n/, $node->safe_psql($db,
		"SELECT format('%I.%I', n.nspname, c.relname) || '|' || COALESCE(pg_sequence_last_value(c.oid), 0)"
		  . " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
		  . " WHERE c.relkind = 'S' AND n.nspname NOT IN ('ingest', 'pg_catalog', 'information_schema')");
	return \%v;
}

# The source of the change data capture tests (t/024 to t/028): pgbench's
# tables (scale 2, with foreign keys) and those of t/sql/cdc_source.sql, in
# database app, owned by migrator.  Returns the names of its tables.
sub load_cdc_source
{
	my ($source) = @_;
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	my ($out, $err);
	IPC::Run::run([ 'pgbench', '-i', '-q', '-s', '2', '--foreign-keys', source_connstr($source, password => undef) ],
		'>', \$out, '2>', \$err)
	  or die "pgbench -i failed: $err";
	my $dir = $INC{'IngestTest.pm'} =~ s{[^/]*$}{}r;
	run_sql_file($source, 'app', "${dir}sql/cdc_source.sql", 'migrator');
	return qw(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history
	  toasty keyed child audit nopk trunc_me big nums);
}

# Two tests: the password of source_connstr() is in no event, no status
# row ($how says what the migration went through) and no line of the
# target's server log but PostgreSQL's own STATEMENT lines.
sub password_nowhere
{
	my ($target, $db, $how) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is($target->safe_psql($db,
			"SELECT count(*) FROM ingest.events WHERE message || coalesce(detail, '') LIKE '%S3cret-Pass%'")
		  + $target->safe_psql($db,
			"SELECT count(*) FROM ingest.status WHERE source || coalesce(last_error, '') LIKE '%S3cret-Pass%'"),
		0, "no event or status row holds the password ($how)");
	my @log_lines = grep { /S3cret-Pass/ && !/STATEMENT:/ } split /\n/, slurp_file($target->logfile);
	is_deeply(\@log_lines, [], 'nor does any line of the server log but PostgreSQL\'s own STATEMENT lines');
}

# A Citus node on 127.0.0.1 (Citus connects to the workers over TCP), with
# the libraries of $preload (citus first) and the settings %conf, trusting
# local and loopback connections: t/029_citus.pl, bench/citus.pl.
sub citus_node
{
	my ($name, $preload, %conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = '$preload'\n"
		  . "listen_addresses = '127.0.0.1'\n"
		  . "max_prepared_transactions = 100\n"
		  . "max_connections = 100\n"
		  . "max_worker_processes = 32\n"
		  . "log_statement = none\n"
		  . join('', map { "$_ = $conf{$_}\n" } sort keys %conf));
	open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $hba "local all all trust\nhost all all 127.0.0.1/32 trust\n";
	close $hba;
	$node->start;
	return $node;
}

1;
