# Bench::Cdc: change data capture, pg_ingest against native logical
# replication, on the pgbench source database.
#
# Two target databases replicate the source: $CDC_DB{pg_ingest} by
# pg_ingest (migration 'bench', mode full-load-and-cdc), $CDC_DB{native} by
# subscription bench_sub (publication bench_pub, made by run_native).  Each
# step runs under its own deadline (cdc_step) and logs into cdc.log; what it
# measured it records with result() (a "RESULT <key> <values>" line in
# cdc.log too); cdc_report writes the medians into results.tsv.  A step of
# pg_ingest that fails (ingest_failed) leaves out its later steps, not
# native's.
#
# Steps, in order (--cdc-steps picks among big, latency, resume, drain, load):
#   setup    pg_ingest loads the source and streams; the big step; then the
#            native subscription loads it too (copy_data)
#   big      one INSERT of --cdc-big-rows rows (~1 kB each), pg_ingest alone:
#            RssAnon/VmHWM of its receiver and applier every 0.2 s until it
#            is applied; the spool directory's size then and 5 s later
#   latency  each alone (the other one stopped): 50 single-row commits on the
#            source, 0.1 s apart; the target polls every 5 ms and records
#            clock_timestamp() minus the row's insert time (same machine,
#            same clock): p50, p90, max
#   resume   each alone, 5 times: pg_ingest paused (ingest.pause) with one
#            row received into its spool; time from ingest.resume() to the
#            row visible.  Native: ALTER SUBSCRIPTION DISABLE, one row, time
#            from ENABLE to the row visible (enabled 5.5 s after the last
#            start of its worker: the launcher's wal_retrieve_retry_interval)
#   drain    per round: both consumers stopped (pg_ingest's receiver by
#            SIGSTOP; the subscription's apply worker by SIGSTOP, or
#            DISABLE with --cdc-hold disable), so that the backlog stays in
#            the slots on the source while pgbench -T --backlog-seconds runs;
#            a marker row committed after it; then each alone gets SIGCONT
#            (or ENABLE) and is timed until the marker is visible.  Rounds
#            alternate who goes first
#   load     each alone (the other stopped, and drained afterwards,
#            untimed): unthrottled pgbench -T --cdc-seconds; the age of the
#            newest pgbench_history row on the target sampled every 0.5 s
#            (the last sample: the lag at the end); a marker committed as
#            soon as pgbench's sessions are gone: the time until it is
#            visible (time to drain)
#   verify   both targets against the source (sql/table_hashes.sql)
#   cutover  ingest.cutover(), ingest.verify() (every table MATCH) and the
#            same hash comparison

package Bench::Cdc;

use strict;
use warnings;
use POSIX ();
use Time::HiRes qw(time usleep);
use Bench qw(fmt2 median is_num slurp_lines);
use Bench::Tools qw(run_pg_ingest after_pg_ingest run_native after_native);
use Bench::Report;

my %CDC_DB = (pg_ingest => 'bench_cdc_pg_ingest', native => 'bench_cdc_native');
my $LATENCY_COMMITS = 50;
my $RESUME_TRIES    = 5;

# ---------------------------------------------------------------- helpers

sub wants { my ($bench, $step) = @_; return grep { $_ eq $step } split /,/, $bench->{opt}{cdc_steps}; }

# result B, KEY, VALUES: what a step measured
sub result
{
	my ($bench, @fields) = @_;
	push @{ $bench->{cdc_results} }, \@fields;
	$bench->logln("RESULT @fields");
}

# cdc_result B, KEY...: the values of the last result with that key (a list)
sub cdc_result
{
	my ($bench, @key) = @_;
	my @found;
	for my $r (@{ $bench->{cdc_results} || [] })
	{
		next if @$r < @key;
		next if grep { $r->[$_] ne $key[$_] } 0 .. $#key;
		@found = @$r[ @key .. $#$r ];
	}
	return @found;
}

sub cdc_sql { my ($bench, $tool, $sql, %p) = @_; return $bench->tgt_sql($CDC_DB{$tool}, $sql, %p); }
sub ingest_sql { my ($bench, $sql, %p) = @_; return cdc_sql($bench, 'pg_ingest', $sql, %p); }

sub ingest_status
{
	my ($bench) = @_;
	return ingest_sql($bench,
		"SELECT phase, received_lsn, applied_lsn, source_lsn, lag_bytes, lag_seconds, apply_rate, spool_bytes, last_error FROM ingest.status WHERE name = 'bench'",
		extra_params => ['-x']);
}

# the deadline of the current step, as an SQL setting for wait_sql
sub timeout_sql { my ($bench) = @_; return "SET bench.timeout = '" . $bench->deadline_left . " s';"; }

# every row inserted, updated or deleted on the source so far
sub source_changes
{
	my ($bench) = @_;
	return $bench->src_sql($bench->{src_db}, 'SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables');
}

sub mb { return sprintf('%.1f', $_[0] / 1024); }    # kB to MB

sub pgbench_txns { my ($log) = @_; my ($n) = join("\n", slurp_lines($log)) =~ /^number of transactions actually processed: (\d+)/m; return $n // ''; }
sub pgbench_tps { my ($log) = @_; my ($n) = join("\n", slurp_lines($log)) =~ /^tps = (\d+)\./m; return $n // ''; }

# next_marker: a new number for a row of cdc_marker
sub next_marker { my ($bench) = @_; return ++$bench->{marker}; }

# mark: commit a marker row on the source, return its number
sub mark
{
	my ($bench) = @_;
	my $n = next_marker($bench);
	$bench->src_sql($bench->{src_db}, "INSERT INTO cdc_marker (n) VALUES ($n)");
	return $n;
}

sub pgbench_cmd
{
	my ($bench, $seconds) = @_;
	my $c = $bench->{opt}{cdc_clients};
	return [ 'pgbench', '-n', '-T', $seconds, '-c', $c, '-j', $c, $bench->{source}->connstr($bench->{src_db}) . ' user=migrator' ];
}

# wait_pgbench_gone: its backends flush their statistics as they exit
sub wait_pgbench_gone
{
	my ($bench) = @_;
	until ($bench->src_sql($bench->{src_db}, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'") eq '0')
	{
		die "timeout: pgbench's sessions are still there\n" if time >= $bench->{deadline};
		usleep(100_000);
	}
}

# cdc_pgbench B, LOG, SECONDS: the workload, on the source, as the owner of its tables
sub cdc_pgbench
{
	my ($bench, $log, $seconds) = @_;
	unlink $log;
	$bench->client(pgbench_cmd($bench, $seconds), { out => $log });
	wait_pgbench_gone($bench);
}

# wait_sql CONDITION, POLL [, pg_ingest]: a DO block that returns once the
# SQL boolean CONDITION holds, looking every POLL seconds, and fails after
# the setting bench.timeout (timeout_sql); with pg_ingest, also as soon as
# the migration has failed (looked at every 20 polls only: ingest.status is
# not free, and the poll must cost about the same to both replications).
sub wait_sql
{
	my ($cond, $poll, $tool) = @_;
	my $bail = ($tool // '') eq 'pg_ingest' ? "
		IF i % 20 = 0 AND EXISTS (SELECT FROM ingest.status WHERE name = 'bench' AND phase IN ('failed', 'aborted')) THEN
			RAISE EXCEPTION 'pg_ingest: %', (SELECT phase || ': ' || coalesce(last_error, '') FROM ingest.status WHERE name = 'bench');
		END IF;" : '';
	return <<SQL;
DO \$\$
DECLARE
	stop timestamptz := clock_timestamp() + current_setting('bench.timeout')::interval;
	i int := 0;
BEGIN
	WHILE NOT ($cond) LOOP
		i := i + 1;$bail
		IF clock_timestamp() > stop THEN
			RAISE EXCEPTION 'timeout, still not: %', \$c\$$cond\$c\$;
		END IF;
		PERFORM pg_sleep($poll);
	END LOOP;
END
\$\$;
SQL
}

sub marker_visible { my ($n) = @_; return "EXISTS (SELECT FROM public.cdc_marker WHERE n = $n)"; }

# wait_marker B, TOOL, N: until marker N is visible on TOOL's target (untimed)
sub wait_marker
{
	my ($bench, $tool, $n) = @_;
	cdc_sql($bench, $tool, timeout_sql($bench) . "\n" . wait_sql(marker_visible($n), 0.05, $tool));
}

# ---------------------------------------------------------------- setup

# The source's tables for cdc, made before any replication starts.
# pgbench_history has no key: REPLICA IDENTITY FULL lets both consumers
# carry it (pgbench only inserts into it: no other cost).
sub cdc_source
{
	my ($bench) = @_;
	$bench->src_sql($bench->{src_db}, <<SQL);
SET ROLE migrator;
CREATE TABLE cdc_marker (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE cdc_latency (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE cdc_big (id int PRIMARY KEY, payload text NOT NULL);
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
SQL
}

# cdc_setup B, TOOL: load the source into a fresh database, then replicate
# it (its own log, cdc-setup-TOOL.log, copied into cdc.log)
sub cdc_setup
{
	my ($bench, $tool) = @_;
	my $db = $CDC_DB{$tool};
	$bench->recreate_db($bench->{target}, $db);
	$bench->checkpoint_both;
	my $log = "$bench->{log_dir}/cdc-setup-$tool.log";
	my ($fh, $file) = @$bench{qw(log_fh log_file)};
	open(my $setup_fh, '>', $log) or die "cannot write $log: $!\n";
	$bench->{log_fh} = $setup_fh;
	$bench->{log_file} = $log;
	my $secs = eval { $tool eq 'pg_ingest' ? run_pg_ingest($bench, $db, '-', 'full-load-and-cdc') : run_native($bench, $db) };
	my $error = $@;
	close $bench->{log_fh};
	@$bench{qw(log_fh log_file)} = ($fh, $file);
	$bench->logln(slurp_lines($log));
	die $error if $error;
	result($bench, 'setup', $tool, fmt2($secs));
	return if $tool ne 'native';
	# run_native waits for 'synced' at least; have them all 'ready'
	Bench::Tools::wait_subscription($bench, $db, "('r')");
}

# ---------------------------------------------------------------- holding

# consumer_pid B, TOOL: the process that receives the stream: pg_ingest's
# receiver, the subscription's apply worker
sub consumer_pid
{
	my ($bench, $tool) = @_;
	my $pid = $tool eq 'pg_ingest'
	  ? ingest_sql($bench, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'pg_ingest receiver'")
	  : cdc_sql($bench, 'native', "SELECT pid FROM pg_stat_subscription WHERE subname = 'bench_sub' AND relid IS NULL AND pid IS NOT NULL");
	die "no $tool receiving process found (got '$pid')\n" unless $pid =~ /^\d+$/;
	return $pid;
}

# native_disabled: wait until the subscription's workers and its walsender are gone
sub native_disabled
{
	my ($bench) = @_;
	until (cdc_sql($bench, 'native', "SELECT count(*) FROM pg_stat_subscription WHERE subname = 'bench_sub' AND pid IS NOT NULL") eq '0'
		&& $bench->src_sql($bench->{src_db}, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench_sub' AND active") eq '0')
	{
		die "timeout: the subscription's workers did not stop\n" if time >= $bench->{deadline};
		usleep(100_000);
	}
}

# hold B, TOOL: stop TOOL from receiving (the backlog stays in its slot);
# the psql line that releases it goes to $bench->{release}{TOOL}
sub hold
{
	my ($bench, $tool) = @_;
	if ($tool eq 'native' && $bench->{opt}{cdc_hold} eq 'disable')
	{
		cdc_sql($bench, 'native', 'ALTER SUBSCRIPTION bench_sub DISABLE');
		native_disabled($bench);
		$bench->{release}{$tool} = { sql => 'ALTER SUBSCRIPTION bench_sub ENABLE;' };
		return;
	}
	my $pid = consumer_pid($bench, $tool);
	kill 'STOP', $pid or die "kill -STOP $pid: $!\n";
	$bench->{stopped}{$pid} = 1;
	$bench->{release}{$tool} = { sql => "\\! kill -CONT $pid", pid => $pid };
	$bench->logln("$tool: process $pid stopped (SIGSTOP)");
}

# release B, TOOL: release it, untimed
sub release
{
	my ($bench, $tool) = @_;
	cdc_sql($bench, $tool, $bench->{release}{$tool}{sql});
	released($bench, $tool);
}

# released B, TOOL: forget the stopped process
sub released
{
	my ($bench, $tool) = @_;
	my $r = delete $bench->{release}{$tool};
	delete $bench->{stopped}{ $r->{pid} } if $r && $r->{pid};
}

# timed_release B, TOOL, N, POLL: release TOOL and time it until marker N is
# visible, polled every POLL s in the same session (server clock).  Returns
# the seconds.
sub timed_release
{
	my ($bench, $tool, $n, $poll) = @_;
	my $out = cdc_sql($bench, $tool, join("\n",
		timeout_sql($bench),
		'SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset',
		$bench->{release}{$tool}{sql},
		wait_sql(marker_visible($n), $poll, $tool),
		'SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);'));
	released($bench, $tool);
	my ($secs) = (split /\n/, $out)[-1];
	die "no time measured: $out\n" unless is_num($secs);
	return $secs;
}

# same_history B, TOOLS: pgbench_history of the targets as the source's
# (the marker is the last change: every pgbench transaction is there)
sub same_history
{
	my ($bench, @tools) = @_;
	my $src = $bench->src_sql($bench->{src_db}, 'SELECT count(*) FROM pgbench_history');
	for my $tool (@tools)
	{
		next if $tool eq 'pg_ingest' && $bench->{ingest_failed};
		my $tgt = cdc_sql($bench, $tool, 'SELECT count(*) FROM pgbench_history');
		$bench->logln("$tool: pgbench_history $tgt rows (source: $src)");
		die "$tool: pgbench_history differs from the source's\n" unless $src eq $tgt;
	}
}

# the other consumer, held while one is measured alone (none if pg_ingest failed)
sub other_of
{
	my ($bench, $tool) = @_;
	my $other = $tool eq 'native' ? 'pg_ingest' : 'native';
	return $other eq 'pg_ingest' && $bench->{ingest_failed} ? undef : $other;
}

# ---------------------------------------------------------------- steps

# cdc_drain B, ROUND: both held, one pgbench run, a marker; each alone
# released and timed.  Odd rounds pg_ingest first, even rounds native first.
sub cdc_drain
{
	my ($bench, $r) = @_;
	my @order = $r % 2 ? qw(pg_ingest native) : qw(native pg_ingest);
	my $log = "$bench->{log_dir}/cdc-pgbench.drain.$r.log";
	hold($bench, 'pg_ingest');
	hold($bench, 'native');
	$bench->src_sql('postgres', 'CHECKPOINT');
	my $before = source_changes($bench);
	cdc_pgbench($bench, $log, $bench->{opt}{backlog_seconds});
	my $after = source_changes($bench);
	$bench->logln(slurp_lines($log));
	my $n = mark($bench);
	$bench->checkpoint_both;
	my $spool = ingest_sql($bench, "SELECT spool_bytes FROM ingest.status WHERE name = 'bench'");
	for my $tool (@order)
	{
		my $secs = timed_release($bench, $tool, $n, 0.02);
		$bench->logln("round $r: $tool drained the backlog in $secs s");
		result($bench, 'drain', $tool, $r, $secs);
	}
	same_history($bench, qw(pg_ingest native));
	result($bench, 'backlog', $r, pgbench_txns($log), $after - $before, pgbench_tps($log), $order[0], $spool || 0);
}

# cdc_latency B, TOOL: commit on the source -> visible on TOOL's target,
# the other one held meanwhile
sub cdc_latency
{
	my ($bench, $tool) = @_;
	my $other = other_of($bench, $tool);
	hold($bench, $other) if $other;
	my $base  = $bench->src_sql($bench->{src_db}, 'SELECT coalesce(max(n), 0) FROM cdc_latency');
	my ($from, $to) = ($base + 1, $base + $LATENCY_COMMITS);
	# the poller: for each row in turn, its age when first seen
	my $poller_sql = timeout_sql($bench) . <<SQL;

CREATE TEMP TABLE seen (n int, ms float8);
DO \$\$
DECLARE
	stop timestamptz := clock_timestamp() + current_setting('bench.timeout')::interval;
	a timestamptz;
BEGIN
	FOR k IN $from..$to LOOP
		LOOP
			SELECT at INTO a FROM public.cdc_latency WHERE n = k;
			EXIT WHEN FOUND;
			IF clock_timestamp() > stop THEN RAISE EXCEPTION 'timeout waiting for row %', k; END IF;
			PERFORM pg_sleep(0.005);
		END LOOP;
		INSERT INTO seen VALUES (k, extract(epoch FROM clock_timestamp() - a) * 1000);
	END LOOP;
END
\$\$;
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
	round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)::numeric, 1),
	round(max(ms)::numeric, 1), count(*) FROM seen;
SQL
	my $out;
	my $poller = $bench->client([ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $bench->{target}->connstr($CDC_DB{$tool}) ],
		{ stdin => \$poller_sql, stdout => \$out, background => 1 });
	sleep 1;
	$bench->src_sql($bench->{src_db},
		join('', map { "INSERT INTO cdc_latency (n) VALUES ($_); SELECT pg_sleep(0.1);\n" } $from .. $to));
	$bench->finish_client($poller);
	my ($line) = (split /\n/, $out)[-1];
	$bench->logln("$tool: commit -> visible p50|p90|max ms|rows: $line");
	result($bench, 'latency', $tool, split /\|/, $line);
	if ($other)
	{
		release($bench, $other);
		wait_marker($bench, $other, mark($bench));
	}
}

# cdc_resume B, TOOL: RESUME_TRIES times: held with one row waiting; time
# from ingest.resume() / ALTER SUBSCRIPTION ENABLE to the row visible
sub cdc_resume
{
	my ($bench, $tool) = @_;
	my @all;
	for my $k (1 .. $RESUME_TRIES)
	{
		my $n;
		if ($tool eq 'pg_ingest')
		{
			my $paused = ingest_sql($bench, "SELECT ingest.pause('bench');\nSELECT ingest.wait('bench', 'paused', '1 min');");
			if ((split /\n/, $paused)[-1] ne 't')
			{
				$bench->logln(ingest_status($bench));
				die "pg_ingest did not reach 'paused'\n";
			}
			$n = mark($bench);
			# wait until the receiver has the row (confirmed flush on the source)
			my $lsn  = $bench->src_sql($bench->{src_db}, 'SELECT pg_current_wal_lsn()');
			my $slot = ingest_sql($bench, "SELECT slot_name FROM ingest.status WHERE name = 'bench'");
			my $t0   = time;
			until ($bench->src_sql($bench->{src_db},
					"SELECT coalesce(bool_or(r.flush_lsn >= '$lsn'), false) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = '$slot'") eq 't')
			{
				die "the receiver did not confirm $lsn in 60 s\n" if time - $t0 >= 60;
				usleep(100_000);
			}
			usleep(500_000);    # and the applier settled into its paused sleep
			$bench->{release}{$tool} = { sql => "SELECT ingest.resume('bench');" };
		}
		else
		{
			cdc_sql($bench, 'native', 'ALTER SUBSCRIPTION bench_sub DISABLE');
			native_disabled($bench);
			$n = mark($bench);
			# the launcher starts a subscription's apply worker at most
			# once per wal_retrieve_retry_interval (5 s): let that pass,
			# to time ENABLE itself and not that throttle
			usleep(5_500_000);
			$bench->{release}{$tool} = { sql => 'ALTER SUBSCRIPTION bench_sub ENABLE;' };
		}
		my $secs = timed_release($bench, $tool, $n, 0.005);
		$bench->logln("$tool: resumed, first change applied in $secs s");
		push @all, $secs;
	}
	result($bench, 'resume', $tool, median(@all), @all);
}

# cdc_load B, TOOL: TOOL alone under unthrottled pgbench -T CDC_SECONDS (the
# other held, and drained afterwards, untimed).  On the target, every 0.5 s
# until 0.5 s before pgbench's end, the age of the newest pgbench_history
# row (its transaction's start on the source); the last of these samples is
# the lag at the end.  On the source, a session waits (10 ms polls) for
# pgbench's sessions to be gone and commits a marker row; the target polls
# for it every 10 ms once the sampling is over: time to drain = seen minus
# the marker's commit (its insert time: same machine, same clock).
sub cdc_load
{
	my ($bench, $tool) = @_;
	my $other = other_of($bench, $tool);
	my $log   = "$bench->{log_dir}/cdc-pgbench.load.$tool.log";
	my $secs  = $bench->{opt}{cdc_seconds};
	hold($bench, $other) if $other;
	$bench->checkpoint_both;
	my $n = next_marker($bench);
	unlink $log;
	my $pgbench = $bench->client(pgbench_cmd($bench, $secs), { out => $log, background => 1 });
	my $marker_sql = <<SQL;
SELECT pg_sleep(2);
DO \$\$
BEGIN
	WHILE EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'pgbench') LOOP
		COMMIT;		-- a new snapshot of pg_stat_activity
		PERFORM pg_sleep(0.01);
	END LOOP;
END
\$\$;
INSERT INTO cdc_marker (n) VALUES ($n);
SQL
	my $marker = $bench->client([ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $bench->{source}->connstr($bench->{src_db}) ],
		{ stdin => \$marker_sql, background => 1 });
	my $out = cdc_sql($bench, $tool, timeout_sql($bench) . <<SQL);

CREATE TEMP TABLE lag_sample (at timestamptz, staleness float8);
CREATE TEMP TABLE drain (s float8);
SET bench.seconds = $secs;
DO \$\$
DECLARE
	t0 timestamptz := clock_timestamp();
	sampling_until timestamptz := t0 + make_interval(secs => current_setting('bench.seconds')::float8 - 0.5);
	stop timestamptz := t0 + current_setting('bench.timeout')::interval;
	a timestamptz;
BEGIN
	PERFORM pg_sleep(0.5);
	LOOP
		SELECT at INTO a FROM public.cdc_marker WHERE n = $n;
		IF FOUND THEN
			INSERT INTO drain VALUES (extract(epoch FROM clock_timestamp() - a));
			EXIT;
		END IF;
		IF clock_timestamp() > stop THEN RAISE EXCEPTION 'timeout waiting for marker $n'; END IF;
		IF clock_timestamp() < sampling_until THEN
			INSERT INTO lag_sample
			SELECT clock_timestamp(), extract(epoch FROM clock_timestamp()::timestamp - (SELECT max(mtime) FROM public.pgbench_history));
			PERFORM pg_sleep(0.5);
		ELSE
			PERFORM pg_sleep(0.01);
		END IF;
	END LOOP;
END
\$\$;
SELECT (SELECT round(staleness::numeric, 3) FROM lag_sample ORDER BY at DESC LIMIT 1),
	(SELECT round(s::numeric, 3) FROM drain),
	count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY staleness)::numeric, 3),
	round(max(staleness)::numeric, 3) FROM lag_sample;
SQL
	$bench->finish_client($pgbench);
	wait_pgbench_gone($bench);
	$bench->finish_client($marker);
	$bench->logln(slurp_lines($log));
	my ($line) = (split /\n/, $out)[-1];
	$bench->logln("$tool under pgbench: lag at the end|drain s|samples|median|max lag s: $line");
	result($bench, 'load', $tool, split(/\|/, $line, -1), pgbench_txns($log), pgbench_tps($log));
	if ($other)
	{
		release($bench, $other);
		wait_marker($bench, $other, $n);
	}
	same_history($bench, qw(pg_ingest native));
}

# rss_sampler FILE, PID:NAME...: a child process that writes, every 0.2 s,
# a line per process: NAME RssAnon VmHWM RssShmem (kB; "-" once the
# process is gone).  Returns its pid.
sub rss_sampler
{
	my ($file, @procs) = @_;
	my $pid = fork // die "fork: $!\n";
	return $pid if $pid;
	# the child: no END block of the parent's (that would stop the clusters)
	$SIG{TERM} = $SIG{INT} = 'DEFAULT';
	eval {
		open my $out, '>>', $file or die;
		$out->autoflush(1);
		while (1)
		{
			for my $p (@procs)
			{
				my ($ppid, $name) = split /:/, $p;
				my %v = (RssAnon => '-', VmHWM => '-', RssShmem => '-');
				if (open my $st, '<', "/proc/$ppid/status")
				{
					while (<$st>) { $v{$1} = $2 if /^(RssAnon|VmHWM|RssShmem):\s+(\d+)/; }
				}
				print $out "$name $v{RssAnon} $v{VmHWM} $v{RssShmem}\n";
			}
			usleep(200_000);
		}
	};
	POSIX::_exit(0);
}

sub ingest_pids
{
	my ($bench) = @_;
	return ingest_sql($bench,
		"SELECT string_agg(pid || ':' || replace(backend_type, 'pg_ingest ', ''), ' ' ORDER BY backend_type) FROM pg_stat_activity WHERE datname = current_database() AND backend_type IN ('pg_ingest applier', 'pg_ingest receiver')");
}

sub spool_kb
{
	my ($bench) = @_;
	my $dir = $bench->{target}->data_dir . '/pg_ingest/spool';
	return 0 unless -d $dir;
	my ($kb) = `du -sk '$dir'` =~ /^(\d+)/;
	return $kb // 0;
}

my $BIG_HASH_SQL = "SELECT count(*) || ' ' || coalesce(sum(hashtextextended(payload, id)), 0) FROM cdc_big";

# One INSERT of CDC_BIG_ROWS rows of ~1 kB on the source, while pg_ingest
# streams: the memory of its applier and receiver until the last row is
# visible on the target, the spool's size then.  Then the table is
# compared, and emptied (TRUNCATE, replicated too).
sub cdc_big
{
	my ($bench) = @_;
	my $n       = $bench->{opt}{cdc_big_rows};
	my $samples = "$bench->{log_dir}/cdc-rss.samples";
	my $pids    = ingest_pids($bench);
	$bench->logln("processes (pid:kind): $pids");
	die "no pg_ingest applier and receiver in pg_stat_activity\n" unless $pids =~ /:applier.*:receiver/;
	unlink $samples;
	my $sampler = rss_sampler($samples, split ' ', $pids);
	my ($t0, $t1, $t2, $applied);
	eval {
		sleep 1;    # a few samples before
		$t0 = time;
		$bench->src_sql($bench->{src_db}, "INSERT INTO cdc_big SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, $n) g");
		$t1 = time;
		# a failure here still reports the memory sampled until then
		$applied = eval {
			ingest_sql($bench, timeout_sql($bench) . "\n" . wait_sql("EXISTS (SELECT FROM public.cdc_big WHERE id = $n)", 0.2, 'pg_ingest'));
			1;
		};
		$bench->logln("waiting for the big transaction failed: $@") unless $applied;
		$t2 = time;
		1;
	} or do { kill 'TERM', $sampler; waitpid($sampler, 0); die $@; };
	my $spool_now = spool_kb($bench);
	usleep(500_000);
	kill 'TERM', $sampler;
	waitpid($sampler, 0);
	my $pids_after = ingest_pids($bench);
	$bench->logln('WARNING: the processes changed during the transaction: now ' . ($pids_after || 'none'))
	  if $pids_after ne $pids;
	$bench->logln(ingest_status($bench));
	my @lines = -f $samples ? slurp_lines($samples) : ();
	for my $name (qw(applier receiver))
	{
		# first sample (before the transaction), peaks of RssAnon, VmHWM, RssShmem, samples
		my ($first, $anon_max, $hwm_max, $shm_max, $count) = (undef, 0, 0, 0, 0);
		for (@lines)
		{
			my ($nm, $anon, $hwm, $shm) = split ' ';
			next unless $nm eq $name && $anon ne '-';
			$first //= $anon;
			$anon_max = $anon if $anon > $anon_max;
			$hwm_max  = $hwm  if $hwm > $hwm_max;
			$shm_max  = $shm  if $shm > $shm_max;
			$count++;
		}
		result($bench, 'rss', $name, $first // 0, $anon_max, $hwm_max, $shm_max, $count);
	}
	die sprintf("the big transaction was not applied (after %.2f s)\n", $t2 - $t1) unless $applied;
	usleep(4_500_000);
	my $spool_later = spool_kb($bench);
	$bench->logln("spool directory: $spool_now kB when the last row was visible, $spool_later kB 5 s later");
	my $src_hash = $bench->src_sql($bench->{src_db}, $BIG_HASH_SQL);
	my $tgt_hash = ingest_sql($bench, $BIG_HASH_SQL);
	$bench->logln("cdc_big rows and hash: source $src_hash, target $tgt_hash");
	my ($rows) = split ' ', $tgt_hash;
	result($bench, 'big', $n, $bench->src_sql($bench->{src_db}, "SELECT round(pg_table_size('cdc_big') / 1048576.0)"),
		fmt2($t1 - $t0), fmt2($t2 - $t1), $rows, $src_hash eq $tgt_hash ? 'yes' : 'NO', $spool_now, $spool_later);
	$bench->src_sql($bench->{src_db}, 'TRUNCATE cdc_big');
	ingest_sql($bench, timeout_sql($bench) . "\n" . wait_sql('NOT EXISTS (SELECT FROM public.cdc_big)', 0.2, 'pg_ingest'));
}

# Both targets against the source, now quiet; then the subscription goes.
sub cdc_verify
{
	my ($bench) = @_;
	my $n     = mark($bench);
	my @tools = grep { $_ ne 'pg_ingest' || !$bench->{ingest_failed} } qw(native pg_ingest);
	wait_marker($bench, $_, $n) for @tools;
	my $ref = $bench->source_hashes($bench->{src_db}, 'source-cdc');
	for my $tool (@tools)
	{
		my ($ok, @lines) = $bench->verify_tables($CDC_DB{$tool}, "cdc-$tool", $ref);
		$bench->logln(@lines);
		result($bench, 'verified', $tool, $ok ? 'yes' : 'NO');
	}
	after_native($bench, $CDC_DB{native});
}

# Cutover, pg_ingest's own verification, the benchmark's, cleanup.
sub cdc_cutover
{
	my ($bench) = @_;
	my $lsn = ingest_sql($bench, "SELECT ingest.cutover('bench', '" . $bench->deadline_left . " seconds')");
	$bench->logln("ingest.cutover('bench') returned $lsn",
		ingest_sql($bench, "SELECT * FROM ingest.status WHERE name = 'bench'", extra_params => ['-x']));
	my @verify = split /\n/, ingest_sql($bench, "SELECT * FROM ingest.verify('bench')");
	Bench::write_lines("$bench->{log_dir}/cdc-ingest-verify.txt", @verify);
	$bench->logln(@verify);
	my $bad = grep { !/\|MATCH$/ } @verify;
	my $ref = $bench->source_hashes($bench->{src_db}, 'source-cdc-final');
	my ($ok, @lines) = $bench->verify_tables($CDC_DB{pg_ingest}, 'cdc-pg_ingest-final', $ref);
	$bench->logln(@lines);
	ingest_sql($bench, "SELECT ingest.cleanup('bench')");
	result($bench, 'cutover', $lsn, scalar(@verify), $bad, $ok ? 'yes' : 'NO');
}

# What pg_ingest and the subscription were doing, after a failed step.
sub cdc_diagnose
{
	my ($bench) = @_;
	my $db = $CDC_DB{pg_ingest};
	my @out;
	my $show = sub {
		my ($title, $node, $d, $sql, @extra) = @_;
		my ($ret, $o, $e) = eval { $node->psql($d, $sql, @extra) };
		push @out, $title, grep { defined && $_ ne '' } $o, $e, $@;
	};
	$show->('ingest.status:', $bench->{target}, $db, 'SELECT * FROM ingest.status', extra_params => ['-x']);
	$show->('ingest.events, last 15:', $bench->{target}, $db,
		'SELECT id, at, phase, level, kind, left(message, 200) AS message, left(detail, 200) AS detail FROM ingest.events ORDER BY id DESC LIMIT 15');
	$show->("pg_ingest's and the subscription's processes on the target:", $bench->{target}, 'postgres',
		"SELECT datname, pid, backend_type, state, wait_event_type, wait_event, left(query, 60) AS query FROM pg_stat_activity WHERE backend_type LIKE 'pg_ingest%' OR backend_type LIKE 'logical replication%'");
	$show->('replication slots on the source:', $bench->{source}, $bench->{src_db},
		'SELECT slot_name, plugin, active, restart_lsn, confirmed_flush_lsn FROM pg_replication_slots');
	my @log = grep { /ERROR|FATAL|PANIC|WARNING|terminated by signal|exited with exit code/ } split /\n/,
	  $bench->target_log_since($bench->{cdc_log_from});
	splice(@log, 0, @log - 20) if @log > 20;
	push @out, "the target's server log during cdc (ERROR, FATAL, PANIC, WARNING, worker exits):", @log;
	return @out;
}

# release_all: whatever a failed step left stopped goes on
sub release_all
{
	my ($bench) = @_;
	kill 'CONT', keys %{ $bench->{stopped} || {} };
	$bench->{stopped} = {};
	$bench->{release} = {};
	$bench->{target}->psql($CDC_DB{native}, 'ALTER SUBSCRIPTION bench_sub ENABLE');
}

# cdc_step B, NAME, CODE, ARGS: one step, with its own deadline, its output
# in cdc.log; on failure $bench->{cdc_failed} says which.  Returns whether
# it succeeded.
sub cdc_step
{
	my ($bench, $name, @args) = @_;
	my $t0 = time;
	$bench->{step_log_from} = Bench::log_size($bench->{target});
	my $what = join(' ', $name, @args);
	$bench->logln("--- $what (" . POSIX::strftime('%T', localtime) . ')');
	$bench->{deadline} = time + $bench->{opt}{timeout};
	my $code = Bench::Cdc->can($name) or die "no cdc step $name\n";
	if (eval { $code->($bench, @args); 1 })
	{
		$bench->out("$what done in " . fmt2(time - $t0) . ' s');
		return 1;
	}
	my $error = $@;
	die $error if $Bench::INTERRUPTED;
	chomp $error;
	$bench->logln("FAILED: $error");
	$bench->{cdc_failed} = "$what ($error)";
	my @tail = slurp_lines($bench->{log_file});
	splice(@tail, 0, @tail - 15) if @tail > 15;
	my @diag = cdc_diagnose($bench);
	$bench->logln(@diag);
	$bench->out("FAILED: $bench->{cdc_failed}; end of $bench->{log_file}:", map({ "  | $_" } @tail), map { "  | $_" } @diag);
	release_all($bench);
	return 0;
}

# ingest_step B, NAME, ARGS: a step of pg_ingest alone; its failure ends
# pg_ingest's part only.  If a worker crashed the target server, the
# migration is aborted as soon as the server is back: its supervisor would
# resume it, and it could crash the server again and again.
sub ingest_step
{
	my ($bench, @step) = @_;
	return 1 if $bench->{ingest_failed};
	return 1 if cdc_step($bench, @step);
	my ($crash) = $bench->target_log_since($bench->{step_log_from}) =~ /^.*?\] (.*(?:terminated by signal|PANIC:).*)$/m;
	if ($crash)
	{
		$bench->{ingest_failed} = "$bench->{cdc_failed}: the target server crashed: $crash";
		$bench->out("the target server crashed ($crash): aborting the migration once it is back");
		for (1 .. 120)
		{
			my ($ret, $o, $e) = eval { $bench->{target}->psql($CDC_DB{pg_ingest}, "SELECT ingest.abort('bench')") };
			$bench->logln(grep { defined && $_ ne '' } $o, $e);
			last if defined $ret && $ret == 0;
			usleep(250_000);
		}
		sleep 2;
		system('pg_isready', '-q', '-t', '60', '-h', $bench->{target}->host, '-p', $bench->{target}->port);
		$bench->logln(cdc_diagnose($bench));
	}
	else
	{
		my ($ret, $state) = $bench->{target}->psql($CDC_DB{pg_ingest},
			"SELECT phase || ': ' || coalesce(last_error, '-') FROM ingest.status WHERE name = 'bench'");
		$bench->{ingest_failed} = "$bench->{cdc_failed}: " . ($state // '');
	}
	$bench->{cdc_failed} = undef;
	return 1;
}

# per_tool_step B, NAME: NAME pg_ingest (an ingest_step), then NAME native
sub per_tool_step
{
	my ($bench, $name) = @_;
	ingest_step($bench, $name, 'pg_ingest');
	return cdc_step($bench, $name, 'native');
}

sub cdc_run
{
	my ($bench) = @_;
	cdc_step($bench, 'cdc_source') or return;
	ingest_step($bench, 'cdc_setup', 'pg_ingest');
	ingest_step($bench, 'cdc_big') if $bench->{opt}{cdc_big_rows} > 0 && wants($bench, 'big');
	if (grep { wants($bench, $_) } qw(latency resume drain load))
	{
		cdc_step($bench, 'cdc_setup', 'native') or return;
		if (wants($bench, 'latency')) { per_tool_step($bench, 'cdc_latency') or return; }
		if (wants($bench, 'resume'))  { per_tool_step($bench, 'cdc_resume')  or return; }
		if (wants($bench, 'drain') && !$bench->{ingest_failed})
		{
			for my $r (1 .. $bench->{opt}{repeat})
			{
				$bench->heading("cdc drain, round $r of $bench->{opt}{repeat}");
				cdc_step($bench, 'cdc_drain', $r) or return;
				$bench->out("round $r: pg_ingest " . (cdc_result($bench, 'drain', 'pg_ingest', $r))[0]
					  . ' s, native ' . (cdc_result($bench, 'drain', 'native', $r))[0] . ' s');
			}
		}
		if (wants($bench, 'load')) { per_tool_step($bench, 'cdc_load') or return; }
		cdc_step($bench, 'cdc_verify') or return;
	}
	ingest_step($bench, 'cdc_cutover');
}

# Whatever happened: nothing stopped, no subscription, publication,
# migration or slot left.
sub cdc_teardown
{
	my ($bench) = @_;
	release_all($bench);
	for my $cleanup (
		sub { after_native($bench, $CDC_DB{native}) },
		sub { after_pg_ingest($bench, $CDC_DB{pg_ingest}) },
		sub {
			$bench->{target}->psql($CDC_DB{pg_ingest},
				"SELECT ingest.cleanup('bench') FROM ingest.status WHERE name = 'bench' AND slot_name IS NOT NULL");
		})
	{
		eval { $cleanup->(); 1 } or $bench->logln("teardown: $@");
	}
	for my $tool (qw(pg_ingest native))
	{
		if ($bench->{opt}{keep}) { $bench->logln("kept target database $CDC_DB{$tool}"); next; }
		eval {
			$bench->tgt_sql('postgres', "SET client_min_messages = warning; DROP DATABASE IF EXISTS $CDC_DB{$tool} WITH (FORCE)");
			1;
		} or $bench->logln("teardown: $@");
	}
	$bench->drop_leftover_slots;
}

# cdc_main B: the cdc part; returns whether it succeeded
sub cdc_main
{
	my ($bench) = @_;
	my $o   = $bench->{opt};
	my $log = "$bench->{log_dir}/cdc.log";
	my $est = ($o->{cdc_big_rows} > 0 ? 60 : 0) + 120 + $o->{repeat} * ($o->{backlog_seconds} + 15)
	  + 2 * ($o->{cdc_seconds} + 20) + 2 * ($LATENCY_COMMITS / 10 + 5) + 2 * $RESUME_TRIES * 3;
	$bench->heading("CDC on the pgbench source, steps $o->{cdc_steps}, pgbench -c$o->{cdc_clients} -j$o->{cdc_clients} (log: $log); roughly "
		  . int($est / 60) . ' min at scale 50');
	open($bench->{log_fh}, '>>', $log) or die "cannot write $log: $!\n";
	$bench->{log_fh}->autoflush(1);
	$bench->{log_file}     = $log;
	$bench->{cdc_log_from} = Bench::log_size($bench->{target});
	$bench->{marker}       = 0;
	cdc_run($bench);
	$bench->{cdc_failed} //= 'the target server crashed' if $bench->target_crashed($bench->{cdc_log_from});
	eval { cdc_teardown($bench); 1 } or $bench->logln("teardown: $@");
	$bench->tee("$bench->{log_dir}/results.txt", cdc_report($bench));
	close $bench->{log_fh};
	$bench->{log_fh} = undef;
	my $ok = !$bench->{cdc_failed} && !$bench->{ingest_failed};
	if (grep { wants($bench, $_) } qw(latency resume drain load))
	{
		for my $tool (qw(native pg_ingest))
		{
			$ok = 0 unless ((cdc_result($bench, 'verified', $tool))[0] // '') eq 'yes';
		}
	}
	my (undef, undef, $cut_bad, $cut_ok) = cdc_result($bench, 'cutover');
	$ok = 0 unless defined $cut_ok && $cut_bad == 0 && $cut_ok eq 'yes';
	return $ok;
}

# ---------------------------------------------------------------- report

# cdc_report B: the results into results.tsv; returns the table's lines
sub cdc_report
{
	my ($bench) = @_;
	my $o = $bench->{opt};
	my (@rounds, %drains);
	for my $r (1 .. $o->{repeat})
	{
		my ($txns, $changes, $tps, $first, $spool) = cdc_result($bench, 'backlog', $r);
		next unless defined $changes && $changes ne '';
		my ($di) = cdc_result($bench, 'drain', 'pg_ingest', $r);
		my ($dn) = cdc_result($bench, 'drain', 'native',    $r);
		push @rounds, sprintf('  %-5s %7s %11s %6s %11s %9s %10s   %-9s %s', $r, $txns, $changes, $tps, $di // '-', $dn // '-',
			Bench::Report::ratio($dn, $di), $first, sprintf('%.1f MB', ($spool || 0) / 1048576));
		push @{ $drains{pg_ingest} }, $di if is_num($di);
		push @{ $drains{native} },    $dn if is_num($dn);
		$bench->tsv('cdc', 'cdc', '-', 'backlog_txns', $txns, 'txns', $r, "row changes $changes, pgbench tps $tps, $first first");
	}
	for my $tool (qw(pg_ingest native))
	{
		$bench->tsv('cdc', 'cdc', $tool, 'drain_s', median(@{ $drains{$tool} }), 's', join(' ', @{ $drains{$tool} }),
			'SIGCONT/ENABLE -> marker visible; hold: ' . ($tool eq 'native' ? $o->{cdc_hold} : 'sigstop'))
		  if $drains{$tool};
		my ($s, @all) = cdc_result($bench, 'resume', $tool);
		$bench->tsv('cdc', 'cdc', $tool, 'resume_s', $s, 's', join(' ', @all), "median of $RESUME_TRIES") if defined $s;
		my ($p50, $p90, $max, $n) = cdc_result($bench, 'latency', $tool);
		if (defined $p50)
		{
			$bench->tsv('cdc', 'cdc', $tool, 'visible_p50_ms', $p50, 'ms', '-', "$n single-row commits 0.1 s apart, polled every 5 ms");
			$bench->tsv('cdc', 'cdc', $tool, 'visible_p90_ms', $p90, 'ms', '-', "max $max ms");
		}
		my ($lag_end, $ldrain, $lcount, $lmed, $lmax, $ltxns, $ltps) = cdc_result($bench, 'load', $tool);
		if (defined $lag_end)
		{
			$bench->tsv('cdc', 'cdc', $tool, 'load_lag_end_s', $lag_end, 's', '-',
				"newest pgbench_history row's age on the target 0.5 s before pgbench's end; during the run median $lmed s, max $lmax s ($lcount samples, every 0.5 s)");
			$bench->tsv('cdc', 'cdc', $tool, 'load_drain_s', $ldrain, 's', '-',
				"marker committed when pgbench's sessions were gone -> visible (polled every 10 ms)");
			$bench->tsv('cdc', 'cdc', $tool, 'load_tps', $ltps, 'tps', '-', "$ltxns transactions in $o->{cdc_seconds} s");
		}
		($s) = cdc_result($bench, 'setup', $tool);
		$bench->tsv('cdc', 'cdc', $tool, 'setup_s', $s, 's', '-',
			'initial load (pg_ingest full-load-and-cdc to streaming; native copy_data)') if defined $s;
		($s) = cdc_result($bench, 'verified', $tool);
		$bench->tsv('cdc', 'cdc', $tool, 'verified', $s, '-', '-', "every table's rows and hash equal to the source's") if defined $s;
	}
	my ($rows, $size, $insert_s, $apply_s, $target_rows, $big_ok, $spool_now, $spool_later) = cdc_result($bench, 'big');
	if (defined $rows)
	{
		$bench->tsv('cdc', 'cdc', 'pg_ingest', 'big_apply_s', $apply_s, 's', '-',
			"INSERT of $rows rows (${size} MB) committed -> last row visible; same rows and hash: $big_ok");
		$bench->tsv('cdc', 'cdc', 'pg_ingest', 'big_spool_mb', mb($spool_now), 'MB', '-', 'spool directory when the last row was visible');
		$bench->tsv('cdc', 'cdc', 'pg_ingest', 'big_spool_later_mb', mb($spool_later), 'MB', '-', '5 s later');
	}
	for my $tool (qw(applier receiver))
	{
		my ($first, $anon, $hwm, $shm, $count) = cdc_result($bench, 'rss', $tool);
		$bench->tsv('cdc', 'cdc', 'pg_ingest', "big_rss_${tool}_mb", mb($anon), 'MB', '-',
			'peak RssAnon (before: ' . mb($first) . ' MB; VmHWM ' . mb($hwm) . ' MB, RssShmem ' . mb($shm) . " MB; $count samples)")
		  if defined $anon;
	}
	my ($cut_lsn, $cut_tables, $cut_bad, $cut_ok) = cdc_result($bench, 'cutover');
	$bench->tsv('cdc', 'cdc', 'pg_ingest', 'cutover', $cut_ok, '-', '-',
		"ingest.cutover() = $cut_lsn; ingest.verify(): " . ($cut_tables - $cut_bad) . "/$cut_tables MATCH")
	  if defined $cut_lsn;
	$bench->tsv('note', 'cdc', 'pg_ingest', 'failed', '-', '-', '-', "pg_ingest FAILED in cdc step $bench->{ingest_failed}")
	  if $bench->{ingest_failed};
	$bench->tsv('note', 'cdc', '-', 'failed', '-', '-', '-', "cdc FAILED in step $bench->{cdc_failed} (see cdc.log)")
	  if $bench->{cdc_failed};

	my @out = Bench::Report::cdc_table($bench, @rounds);
	push @out, "pg_ingest FAILED in step $bench->{ingest_failed}" if $bench->{ingest_failed};
	push @out, "FAILED step: $bench->{cdc_failed} (see $bench->{log_file})" if $bench->{cdc_failed};
	return @out;
}

1;
