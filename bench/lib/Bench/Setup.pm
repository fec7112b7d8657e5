# Bench::Setup: what a benchmark script does before PostgreSQL::Test::Cluster
# is loaded.  Call prepare() in a BEGIN block, before `use
# PostgreSQL::Test::Cluster`:
#
#   - as root: installs the Debian packages (scripts/lib.sh's
#     install_packages, plus the ones given), builds and installs pg_ingest
#     unless told not to (build_and_install), creates the unprivileged user,
#     then runs the script again as that user (initdb refuses root);
#   - as another user: the same through sudo (lib.sh), then goes on in the
#     same process;
#   - either way, then: PATH starts with PGBIN, PG_REGRESS and TESTDIR are set
#     and PostgreSQL's TAP modules (pgxs/src/test/perl) are in @INC, as for
#     `make installcheck`.  PGBIN: the PostgreSQL 15 programs (default:
#     default_pgbin()).
#
# PostgreSQL::Test::Utils sends STDOUT and STDERR to its log file
# (TESTDIR/tmp_check/log/regress_log_<script>) when it is loaded: prepare()
# keeps a handle on the terminal first, $Bench::Setup::CONSOLE, and
# console_stderr() sends STDERR back to it.

package Bench::Setup;

use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path ();
use File::Temp qw(tempdir);
use IO::Handle;

our $CONSOLE;
our $TESTDIR;
our $CONSOLE_ERR;
our $RUN_USER = $> == 0 ? 'pgingest' : scalar getpwuid($>);
our $REPO_DIR = abs_path(dirname(__FILE__) . '/../../..');

sub run_or_die
{
	my @cmd = @_;
	system(@cmd) == 0 or die "failed (exit status " . ($? >> 8) . "): @cmd\n";
}

# PGBIN when it is not set: where the first postgres in PATH really is (a
# harness that runs a script under prove puts its installation first), or
# Debian's PostgreSQL 15
sub default_pgbin
{
	for my $dir (split /:/, $ENV{PATH} // '')
	{
		return dirname(abs_path("$dir/postgres")) if -x "$dir/postgres" && !-d "$dir/postgres";
	}
	return '/usr/lib/postgresql/15/bin';
}

# prepare(build => 0|1, packages => [...], install => 0|1, dirs => [...],
#         testdir => DIR)
#   install: install packages at all (default 1); build: build and install
#   pg_ingest from this tree (default 0); dirs: directories the user must
#   own (made if missing); testdir: TESTDIR (default: a new /tmp directory)
sub prepare
{
	my (%p) = @_;
	my $pgbin = $ENV{PGBIN} || default_pgbin();
	$ENV{PGBIN} = $pgbin;
	if (!$ENV{BENCH_STAGE})
	{
		my $install = $p{install} // 1;
		if ($install || $p{build} || $> == 0)
		{
			my $steps = ($install ? 'install_packages "$@"; ' : '') . ($p{build} ? 'build_and_install' : 'ensure_user');
			run_or_die('bash', '-c', ". '$REPO_DIR/scripts/lib.sh'; $steps", 'lib.sh',
				@{ $p{packages} || [] });
		}
		my $testdir = $p{testdir} || tempdir('/tmp/pg_ingest-bench.XXXXXX');
		for my $d ($testdir, @{ $p{dirs} || [] })
		{
			-d $d or run_or_die('mkdir', '-p', $d);
			chmod 0755, $d;
			run_or_die('chown', $RUN_USER, $d) if $> == 0;
		}
		$ENV{TESTDIR} = $testdir;
		$ENV{BENCH_STAGE} = 'user';
		if ($> == 0)
		{
			# again, as the user; the same environment, arguments and
			# directory (the repository: the user may not enter root's)
			chdir $REPO_DIR or die "cd $REPO_DIR: $!\n";
			exec('runuser', '-u', $RUN_USER, '--', 'env', "HOME=/tmp", $^X, abs_path($0), @ARGV)
			  or die "runuser: $!\n";
		}
	}
	$TESTDIR = $ENV{TESTDIR};
	my $pkglibdir = `$pgbin/pg_config --pkglibdir`;
	die "no pg_config in $pgbin (set PGBIN)\n" unless $? == 0;
	chomp $pkglibdir;
	$ENV{PATH} = "$pgbin:$ENV{PATH}" unless $ENV{PATH} =~ /^\Q$pgbin\E:/;
	$ENV{PG_REGRESS} = "$pkglibdir/pgxs/src/test/regress/pg_regress";
	-x $ENV{PG_REGRESS} or die "no $ENV{PG_REGRESS}: is postgresql-server-dev-15 installed?\n";
	unshift @INC, "$pkglibdir/pgxs/src/test/perl", "$REPO_DIR/t";
	open($CONSOLE, '>&', \*STDOUT) or die "dup STDOUT: $!\n";
	open($CONSOLE_ERR, '>&', \*STDERR) or die "dup STDERR: $!\n";
	$CONSOLE->autoflush(1);
	$CONSOLE_ERR->autoflush(1);
	return $pgbin;
}

# The scratch directory goes when the script succeeded (this END block runs
# after PostgreSQL::Test::Cluster's, which stops the clusters); after a
# failure, or with PG_TEST_NOCLEAN=1, it stays with the servers' logs.
END
{
	if ($TESTDIR && -d $TESTDIR)
	{
		if ($? == 0 && !$ENV{PG_TEST_NOCLEAN}) { File::Path::remove_tree($TESTDIR); }
		else { print STDERR "clusters and logs left in $TESTDIR\n"; }
	}
}

# console LINES: to the terminal
sub console
{
	print {$CONSOLE} map { "$_\n" } @_;
	return;
}

# After PostgreSQL::Test::Utils has taken STDERR: errors to the terminal
# again (and so a die's message); its own chatter stays in its log.
sub console_stderr
{
	open(STDERR, '>&', $CONSOLE_ERR) or die "dup STDERR: $!\n";
	STDERR->autoflush(1);
}

1;
