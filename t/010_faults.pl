# Seeded fault injection.
#
# Each run migrates a fresh source database (pgbench's tables, TOASTed
# values, a table without key under REPLICA IDENTITY FULL, a partitioned
# table, sequences) into a fresh target database while pgbench writes to
# the source, and injects exactly one fault at a moment chosen by waiting
# for a phase or for a worker to exist:
#
#   kill_coordinator, kill_copy, kill_index, kill_receiver, kill_applier
#	   SIGKILL of that worker (the target's postmaster then restarts every
#	   backend, as after any crash): the coordinator in copying, indexing
#	   or streaming, a copy worker past a random row count, an index worker
#	   as soon as one builds, the receiver in copying or streaming, the
#	   applier in streaming (half the time inside a target transaction);
#   target_immediate       pg_ctl stop -m immediate of the target, then start,
#	   in copying, indexing, streaming or in the middle of the cutover;
#   source_restart_copy    restart of the source while tables are copied;
#   source_restart_stream  restart of the source while changes stream;
#   walsender_terminate    pg_terminate_backend of the migration's walsender
#	   (application_name "pg_ingest f receiver"), in copying or streaming;
#   source_down            the source stopped for 2 to 8 seconds while
#	   streaming; ingest.status must show caught_up false meanwhile.
#
# Then pgbench stops, ingest.cutover() ends the migration, and every table
# (content hash), sequence (target >= source), index (valid) and
# constraint is compared with the source; no slot may be left on the
# source, no worker on the target.  A migration that ends 'failed' is
# resumed once (counted as "needed resume", a failure unless
# INGEST_FAULT_ALLOW_RESUME is set); one that still cannot complete needs an
# operator and fails the test, as does any difference and any crash of the
# target beyond the injected one ("terminated by signal" or "all server
# processes terminated" in its log: a crash loop).
#
# Environment:
#   INGEST_FAULT_RUNS   number of runs (default 3: CI; make faults RUNS=50)
#   INGEST_FAULT_SEED   seed of the PRNG (default: from the clock; printed)
#   INGEST_FAULT_ONLY   run only this run number of the seed (to replay one)
#   INGEST_FAULT_KINDS  comma-separated fault kinds to choose from
#   INGEST_FAULT_SCALE  pgbench scale of the source (default 5)
#   INGEST_FAULT_VERBOSE=1  show every run's events, not only a failed run's
#   INGEST_FAULT_ALLOW_RESUME=1  a run that needed ingest.resume passes
#	   (by default it fails: a fault must be recovered without an operator)
#
# The fault kinds are dealt in a seeded random order, so any
# INGEST_FAULT_RUNS >= 10 injects every kind; the moment within a phase
# (rows copied before a kill, the phase of a target restart, the outage
# length) comes from the run's own seed, printed with the run.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IngestTest;

my @all_kinds = qw(kill_coordinator kill_copy kill_index kill_receiver kill_applier
  target_immediate source_restart_copy source_restart_stream walsender_terminate
  source_down);

my $runs  = $ENV{INGEST_FAULT_RUNS} || 3;
my $allow_resume = $ENV{INGEST_FAULT_ALLOW_RESUME};
my $seed  = $ENV{INGEST_FAULT_SEED} // (int(time * 1000) ^ $$) % 1_000_000_007;
my $only  = $ENV{INGEST_FAULT_ONLY};
my $scale = $ENV{INGEST_FAULT_SCALE} || 5;
my @kinds = $ENV{INGEST_FAULT_KINDS} ? split(/,/, $ENV{INGEST_FAULT_KINDS}) : @all_kinds;
for my $k (@kinds)
{
	die "unknown fault kind \"$k\" (known: @all_kinds)\n" unless grep { $_ eq $k } @all_kinds;
}
$runs = $only if $only && $only > $runs;
diag("fault injection: seed $seed, $runs run(s)" . ($only ? ", only run $only" : '')
	  . "; replay with INGEST_FAULT_SEED=$seed");

# Fault kinds in a seeded order: every kind once per round.
srand($seed);
my @deal;
while (@deal < $runs)
{
	my @round = @kinds;
	for (my $i = $#round; $i > 0; $i--)
	{
		my $j = int(rand($i + 1));
		@round[ $i, $j ] = @round[ $j, $i ];
	}
	push @deal, @round;
}

# A short wal_sender_timeout: the stream must answer keepalives in time.
my $source = new_source('source', conf => { wal_sender_timeout => "'5s'" });
my $target = new_target('target',
	restart_after_crash     => 'on',
	'pg_ingest.retry_delay' => "'200ms'");
# the source's tables belong to migrator: so do the target's
$target->safe_psql('postgres', 'CREATE ROLE migrator');

my @tables = qw(public.pgbench_accounts public.pgbench_branches public.pgbench_tellers
  public.pgbench_history public.toasty public.doc public.nopk public.parted
  public.parted_1 public.parted_2 public.parted_3);

my $schema_sql = q{
-- TOASTed values: stored out of line uncompressed, and compressed
CREATE TABLE toasty (id int PRIMARY KEY, big text, n int NOT NULL DEFAULT 0);
ALTER TABLE toasty ALTER big SET STORAGE EXTERNAL;
INSERT INTO toasty (id, big) SELECT g, repeat(md5(g::text), 300 + g) FROM generate_series(1, 200) g;
CREATE TABLE doc (id bigserial PRIMARY KEY, body text, meta jsonb);
INSERT INTO doc (body, meta)
SELECT repeat('lorem ipsum ' || g, 2000), jsonb_build_object('g', g) FROM generate_series(1, 500) g;
-- no key: rows matched on all their old values, duplicates included
CREATE TABLE nopk (a int, b text);
ALTER TABLE nopk REPLICA IDENTITY FULL;
INSERT INTO nopk SELECT g % 50, CASE WHEN g % 7 = 0 THEN NULL ELSE 'b' || (g % 13) END
FROM generate_series(1, 5000) g;
-- partitioned on both sides; updates move rows between partitions
CREATE TABLE parted (k int NOT NULL, id bigserial, v text, PRIMARY KEY (k, id)) PARTITION BY RANGE (k);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (1000) TO (2000);
CREATE TABLE parted_3 PARTITION OF parted FOR VALUES FROM (2000) TO (3000);
INSERT INTO parted (k, v) SELECT g % 3000, md5(g::text) FROM generate_series(1, 30000) g;
-- a sequence of its own
CREATE SEQUENCE ticket;
SELECT setval('ticket', 1000);
-- pgbench only inserts into its history, which has no key
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
};

# pgbench's TPC-B-like transactions, and this one on the test's tables.
my $script = "${PostgreSQL::Test::Utils::tmp_check}/faults_pgbench.sql";
PostgreSQL::Test::Utils::append_to_file($script, q{
\set a random(0, 49)
\set k random(0, 2999)
\set t random(1, 200)
BEGIN;
UPDATE toasty SET n = n + 1 WHERE id = :t;
INSERT INTO parted (k, v) VALUES (:k, 'p' || nextval('ticket'));
UPDATE parted SET k = (k + 1000) % 3000, v = v || '+' WHERE (k, id) IN (SELECT k, id FROM parted WHERE k = :k LIMIT 1);
DELETE FROM nopk WHERE ctid = (SELECT ctid FROM nopk WHERE a = :a LIMIT 1);
INSERT INTO nopk VALUES (:a, NULL), (:a, 'n' || :t);
UPDATE nopk SET b = 'u' || :t WHERE ctid = (SELECT ctid FROM nopk WHERE a = (:a + 1) % 50 LIMIT 1);
INSERT INTO doc (body, meta) VALUES (repeat('w' || :t, 3000), jsonb_build_object('t', :t));
DELETE FROM doc WHERE id = (SELECT min(id) FROM doc);
END;
});

# Indexes (with their validity) and constraints of the public schema.
my $objects_sql = q{
SELECT format('index %s on %s%s', i.indexrelid::regclass, i.indrelid::regclass,
	CASE WHEN i.indisvalid AND i.indisready THEN '' ELSE ' (INVALID)' END)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT format('constraint %s %s on %s', c.contype, c.conname, c.conrelid::regclass)
FROM pg_constraint c WHERE c.connamespace = 'public'::regnamespace
ORDER BY 1};

my %count = (runs => 0, 'completed alone' => 0, 'needed resume' => 0,
	'needed operator' => 0, identical => 0, differing => 0, 'extra crashes' => 0,
	'outage not shown' => 0, 'left behind' => 0);
my %landed = map { $_ => 0 } @all_kinds;
my %missed = map { $_ => 0 } @all_kinds;
my @failures;

my $pgbench;
my $pgbench_out;

sub start_pgbench
{
	my ($db) = @_;
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	$pgbench_out = '';
	$pgbench = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '2', '-R', '100', '-T', '300', '--max-tries', '20',
		  '-b', 'tpcb-like@1', '-f', "$script\@1",
		  source_connstr($source, password => undef, dbname => $db) ],
		'>&', \$pgbench_out);
}

sub stop_pgbench
{
	return unless $pgbench;
	$pgbench->signal('TERM');
	$pgbench->finish;
	$pgbench = undef;
}

sub phase
{
	my ($db) = @_;
	my ($ret, $out) = try_psql($target, $db, "SELECT phase FROM ingest.migration WHERE name = 'f' ORDER BY id DESC LIMIT 1");
	return $ret == 0 ? $out : '';
}

sub events
{
	my ($db) = @_;
	my ($ret, $out, $err) = try_psql($target, $db,
		"SELECT string_agg(format('%s %s %s %s %s %s', at::time, phase, level, kind, object, message), E'\\n' ORDER BY id)"
		  . " FROM ingest.events WHERE name = 'f'");
	return $ret == 0 ? $out : "(events not readable: $err)";
}

# Wait for a phase; $cond, an SQL condition, must hold on the target too.
sub wait_for_phase
{
	my ($db, $phase, $timeout, $cond) = @_;
	return poll_value($target, $db,
		"SELECT 1 FROM ingest.migration WHERE name = 'f' AND phase = '$phase'"
		  . ($cond ? " AND ($cond)" : ''),
		$timeout);
}

# Take the migration to $phase; a 'failed' migration is resumed once.
sub drive
{
	my ($db, $r, $phase) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my $p = phase($db);
		return 1 if $p eq $phase;
		return 1 if $phase eq 'streaming' && ($p eq 'completed' || $p eq 'stopping');
		# streaming again when it should complete (resumed, or a cutover lost
		# with a restart): cut over again
		if ($phase eq 'completed' && $p eq 'streaming' && $r->{cutovers}++ < 3)
		{
			my ($ret, $out, $err) = try_psql($target, $db, "SELECT ingest.cutover('f', '2 min')");
			push @{ $r->{notes} }, "cutover: $err" if $ret != 0;
			next;
		}
		if ($p eq 'failed' || $p eq 'aborted')
		{
			my ($ret, $err);
			($ret, $err) = (try_psql($target, $db, "SELECT last_error FROM ingest.migration WHERE name = 'f'"))[ 0, 1 ];
			push @{ $r->{notes} }, "failed on the way to $phase: $err";
			return 0 if $r->{resumed} || $p eq 'aborted';
			$r->{resumed} = 1;
			my ($rr, $ro, $re) = try_psql($target, $db, "SELECT ingest.resume('f')");
			push @{ $r->{notes} }, "ingest.resume: $re" if $rr != 0;
		}
		usleep(200_000);
	}
	push @{ $r->{notes} }, "timed out waiting for $phase (phase: " . phase($db) . ")";
	return 0;
}

# --- the faults ------------------------------------------------------------
# Each returns (landed, where); where says the phase and what was hit.

sub kill_worker
{
	my ($db, $kind, $phase, $extra) = @_;
	return (0, "no $phase phase") unless wait_for_phase($db, $phase, 120);
	my $pid = worker_pid($target, $db, $kind, 60, $extra);
	return (0, "no $kind worker in $phase") unless $pid;
	my $now = phase($db);
	return (0, "$kind worker $pid found in $now, not $phase") unless $now eq $phase;
	kill 'KILL', $pid;
	return (1, "SIGKILL of $kind worker $pid in $phase");
}

my %inject = (
	kill_coordinator => sub {
		my ($db) = @_;
		my $phase = (qw(copying indexing streaming))[ int(rand(3)) ];
		return kill_worker($db, 'coordinator', $phase);
	},
	kill_copy => sub {
		my ($db) = @_;
		my $rows = int(rand(50_000));
		return kill_worker($db, 'copy', 'copying', "rows >= $rows");
	},
	kill_index => sub {
		my ($db) = @_;
		# index workers build a table's indexes as soon as it is copied
		my $pid = worker_pid($target, $db, 'index', 120);
		return (0, 'no index worker') unless $pid;
		my $now = phase($db);
		kill 'KILL', $pid;
		return (1, "SIGKILL of index worker $pid in $now");
	},
	kill_receiver => sub {
		my ($db) = @_;
		my $phase = (qw(copying streaming))[ int(rand(2)) ];
		return kill_worker($db, 'receiver', $phase);
	},
	kill_applier => sub {
		my ($db) = @_;
		# half the time inside a target transaction (holding a lock on a table)
		my $in_xact = int(rand(2));
		return kill_worker($db, 'applier', 'streaming',
			$in_xact ? "EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
			  . " WHERE l.pid = _live.pid AND c.relnamespace = 'public'::regnamespace)" : undef);
	},
	target_immediate => sub {
		my ($db) = @_;
		my $phase = (qw(copying indexing streaming stopping))[ int(rand(4)) ];
		my $cond = $phase eq 'copying'
		  ? "EXISTS (SELECT 1 FROM ingest._live() WHERE kind = 'copy')" : undef;
		my $cutover;
		if ($phase eq 'stopping')
		{
			# in the middle of the cutover
			return (0, 'no streaming phase') unless wait_for_phase($db, 'streaming', 180);
			stop_pgbench();
			my ($o, $e);
			$cutover = IPC::Run::start(
				[ 'psql', '-X', '-d', $target->connstr($db), '-c', "SELECT ingest.cutover('f', '2 min')" ],
				'>', \$o, '2>', \$e);
		}
		my $at = wait_for_phase($db, $phase, 120, $cond);
		if (!$at)
		{
			$cutover->finish if $cutover;
			return (0, "no $phase phase");
		}
		$target->stop('immediate');
		$cutover->finish if $cutover;
		$target->start;
		return (1, "target stopped -m immediate in $phase");
	},
	source_restart_copy => sub {
		my ($db) = @_;
		my $rows = int(rand(50_000));
		return (0, 'no copying phase') unless wait_for_phase($db, 'copying', 120);
		my $pid = worker_pid($target, $db, 'copy', 60, "rows >= $rows");
		return (0, 'no copy worker') unless $pid && phase($db) eq 'copying';
		$source->restart;
		return (1, "source restarted in copying (a copy worker at >= $rows rows)");
	},
	source_restart_stream => sub {
		my ($db) = @_;
		return (0, 'no streaming phase')
		  unless wait_for_phase($db, 'streaming', 180) && worker_pid($target, $db, 'applier', 60);
		$source->restart;
		return (1, 'source restarted in streaming');
	},
	walsender_terminate => sub {
		my ($db) = @_;
		my $phase = (qw(copying streaming))[ int(rand(2)) ];
		return (0, "no $phase phase") unless wait_for_phase($db, $phase, 180);
		my $pid = poll_value($source, 'postgres',
			"SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender'"
			  . " AND application_name = 'pg_ingest f receiver'", 60);
		return (0, "no walsender in $phase") unless $pid;
		my $now = phase($db);
		$source->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
		return (1, "walsender $pid terminated in $now");
	},
	source_down => sub {
		my ($db, $r) = @_;
		my $secs = 2 + int(rand(7));
		return (0, 'no streaming phase')
		  unless wait_for_phase($db, 'streaming', 180) && worker_pid($target, $db, 'applier', 60);
		$source->stop('fast');
		# the outage's length is the fault: watch the status meanwhile
		my $until = time + $secs;
		my %seen;
		while (time < $until)
		{
			my ($ret, $out, $err) = try_psql($target, $db,
				"SELECT phase, caught_up, last_error IS NOT NULL FROM ingest.status WHERE name = 'f'");
			$seen{ $ret == 0 ? $out : "ERROR: $err" }++;
			usleep(250_000);
		}
		$source->start;
		push @{ $r->{notes} }, "status during the outage (phase|caught_up|last_error set): "
		  . join('; ', map { "$_ ($seen{$_}x)" } sort keys %seen);
		# it must say so: caught_up false at least once
		if (!grep { /^\w+\|f\|/ } keys %seen)
		{
			$count{'outage not shown'}++;
			push @failures, "run seed $r->{seed} (source_down): ingest.status showed caught_up"
			  . " during the whole ${secs}s outage of the source";
		}
		return (1, "source down ${secs}s in streaming");
	},
);

# The source database of every run is a copy of this one.
create_db($source, 'faults_template', 'migrator');
{
	local $ENV{PGPASSWORD} = 'S3cret-Pass';
	my ($out, $err);
	IPC::Run::run(
		[ 'pgbench', '-i', '-q', '-s', $scale, '--foreign-keys',
		  source_connstr($source, password => undef, dbname => 'faults_template') ],
		'>', \$out, '2>', \$err)
	  or die "pgbench -i failed: $err";
}
$source->safe_psql('faults_template', "SET ROLE migrator; $schema_sql");

# --- one run ---------------------------------------------------------------

sub one_run
{
	my ($n, $kind, $rseed) = @_;
	srand($rseed);
	my $sdb = "src$n";
	my $tdb = "tgt$n";
	my %r = (notes => [], seed => $rseed);
	my $t0 = time;
	diag("run $n: fault $kind, run seed $rseed");

	$source->safe_psql('postgres', "CREATE DATABASE $sdb TEMPLATE faults_template OWNER migrator");
	create_db($target, $tdb);
	$target->safe_psql($tdb, 'CREATE EXTENSION pg_ingest');

	my $log_offset = -s $target->logfile;
	start_pgbench($sdb);
	$source->poll_query_until($sdb, 'SELECT count(*) > 10 FROM pgbench_history')
	  or die 'pgbench does not write';

	my $conn = source_connstr($source, dbname => $sdb);
	$target->safe_psql($tdb, "SELECT ingest.start('$conn', name => 'f', table_jobs => 2, index_jobs => 2)");

	my ($landed, $where) = $inject{$kind}->($tdb, \%r);
	$landed ? $landed{$kind}++ : $missed{$kind}++;
	diag("run $n: " . ($landed ? 'landed: ' : 'MISSED: ') . $where);
	my $crashes_injected = $landed && $kind =~ /^kill_/ ? 1 : 0;

	# pgbench's clients end with the source; writes go on after it is back
	if ($kind =~ /^source_/)
	{
		stop_pgbench();
		poll_value($source, $sdb, 'SELECT 1') or die 'the source does not come back';
		start_pgbench($sdb);
	}
	poll_value($target, $tdb, 'SELECT 1') or die 'the target does not come back';

	my $ok = drive($tdb, \%r, 'streaming');
	# let the stream carry some of pgbench's writes made after the fault
	if ($ok && phase($tdb) eq 'streaming')
	{
		my $lsn = $source->safe_psql($sdb, 'SELECT pg_current_wal_lsn()');
		poll_value($target, $tdb,
			"SELECT 1 FROM ingest.status WHERE name = 'f' AND applied_lsn >= '$lsn'", 60);
	}
	stop_pgbench();

	# cut over (drive does, from streaming), resuming once after a failure
	$ok &&= drive($tdb, \%r, 'completed');

	my $differ = 0;
	if ($ok)
	{
		$count{ $r{resumed} ? 'needed resume' : 'completed alone' }++;
		my $src = table_hashes($source, $sdb, \@tables);
		my $tgt = table_hashes($target, $tdb, \@tables);
		my @d = map { "$_: source $src->{$_}, target $tgt->{$_}" }
		  grep { $src->{$_} ne $tgt->{$_} } @tables;
		my $ss = sequence_values($source, $sdb);
		my $ts = sequence_values($target, $tdb);
		push @d, map { "sequence $_: source $ss->{$_}, target " . ($ts->{$_} // 'missing') }
		  grep { !defined $ts->{$_} || $ts->{$_} < $ss->{$_} } sort keys %$ss;
		# every index (valid) and constraint of the source is there
		my %so = map { $_ => 1 } split /\n/, $source->safe_psql($sdb, $objects_sql);
		my %to = map { $_ => 1 } split /\n/, $target->safe_psql($tdb, $objects_sql);
		push @d, map { "missing on the target: $_" } grep { !$to{$_} } sort keys %so;
		push @d, map { "only on the target: $_" } grep { !$so{$_} } sort keys %to;
		if (@d)
		{
			$differ = 1;
			$count{differing}++;
			push @{ $r{notes} }, 'differs: ' . join('; ', @d);
		}
		else
		{
			$count{identical}++;
		}
		# a completed migration leaves no slot on the source, no worker here
		my $slots = poll_value($source, 'postgres',
			"SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE database = '$sdb')", 30);
		my $workers = poll_value($target, $tdb,
			"SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM ingest._live())", 30);
		if (!$slots || !$workers)
		{
			$count{'left behind'}++;
			$r{left} = 1;
			push @{ $r{notes} }, 'completed, but left behind: '
			  . $source->safe_psql('postgres',
				"SELECT string_agg(slot_name || ' (slot)', ', ') FROM pg_replication_slots WHERE database = '$sdb'")
			  . ' ' . $target->safe_psql($tdb, "SELECT string_agg(kind || ' ' || pid, ', ') FROM ingest._live()");
		}
	}
	else
	{
		$count{'needed operator'}++;
	}

	my $crashes = log_count($target, qr/terminated by signal|all server processes terminated/, $log_offset);
	# a killed worker: its "terminated by signal" and the reinitialization
	my $extra = $crashes - 2 * $crashes_injected;
	if ($extra > 0)
	{
		$count{'extra crashes'}++;
		push @{ $r{notes} }, "$extra crash line(s) in the target's log beyond the injected fault:\n"
		  . join("\n", grep { /terminated by signal|all server processes terminated|PANIC|TRAP/ }
			  split /\n/, slurp_file($target->logfile, $log_offset));
	}

	my $result = !$ok ? 'NEEDS OPERATOR' : $r{left} ? 'LEFT BEHIND' : $differ ? 'DIFFERS' : $extra > 0 ? 'EXTRA CRASH'
	  : $r{resumed} ? ($allow_resume ? 'ok after resume' : 'NEEDED RESUME') : 'ok';
	diag(sprintf("run %d: %s (%s; %s; %.0f s)", $n, $result, $kind, $where, time - $t0) . join("", map { "\n  $_" } @{ $r{notes} }));
	if ($result ne 'ok' || $ENV{INGEST_FAULT_VERBOSE})
	{
		diag("run $n: events of the migration:\n" . events($tdb));
		push @failures, "run $n (seed $seed, run seed $rseed, $kind): $result; $where"
		  if $result !~ /^ok/;
	}

	# drop both databases: the migration first, then what it left on the source
	try_psql($target, $tdb, "SELECT ingest.abort('f')") unless phase($tdb) =~ /^(completed|aborted)$/;
	try_psql($target, $tdb, "SELECT ingest.cleanup('f')");
	$target->safe_psql('postgres', "DROP DATABASE $tdb WITH (FORCE)");
	$source->safe_psql('postgres',
		"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = '$sdb' AND active");
	$source->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_replication_slots WHERE database = '$sdb' AND active");
	$source->safe_psql('postgres',
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$sdb'");
	$source->safe_psql('postgres', "DROP DATABASE $sdb WITH (FORCE)");
	$count{runs}++;
	return $result;
}

for my $n (1 .. $runs)
{
	next if $only && $n != $only;
	my $result = one_run($n, $deal[ $n - 1 ], $seed * 1000 + $n);
	ok($result =~ /^ok/, "run $n ($deal[$n - 1]): $result");
}

# --- the summary -----------------------------------------------------------
diag("fault injection summary (seed $seed):");
diag(sprintf('  %-22s %d', $_, $count{$_}))
  for ('runs', 'completed alone', 'needed resume', 'needed operator', 'identical', 'differing',
	'extra crashes', 'left behind', 'outage not shown');
diag(sprintf('  landed %-15s %d%s', $_, $landed{$_}, $missed{$_} ? " (missed $missed{$_})" : ''))
  for grep { $landed{$_} || $missed{$_} } @all_kinds;
diag("  failed: $_") for @failures;

is($count{differing}, 0, 'no run ends with the target differing from the source');
is($count{'needed operator'}, 0, 'no run needs an operator: every migration completes, resumed at most once');
is($count{'needed resume'}, 0, 'no run needs ingest.resume: every fault is recovered by pg_ingest alone')
  unless $allow_resume;
is($count{'left behind'}, 0, 'a completed migration leaves no slot on the source and no worker');
is($count{'outage not shown'}, 0,
	'while the source is down, ingest.status says the migration is not caught up');
is($count{'extra crashes'}, 0, 'the target crashes only where a fault was injected: no crash loop');

done_testing();
