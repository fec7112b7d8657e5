# shellcheck shell=bash
# Shared by scripts/test.sh, scripts/demo.sh and bench/run.pl: install the
# packages pg_ingest needs, build and install it, and run things as an
# unprivileged user (initdb refuses root).
#
# Source it; it sets:
#   PGBIN      the PostgreSQL 15 binaries
#   RUN_USER   who runs the servers and the tests
#   BUILD_DIR  the tree that was built (a copy owned by RUN_USER under root)

set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}	# overridable: a private install for side-by-side runs
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
	RUN_USER=pgingest
else
	SUDO=(sudo)
	RUN_USER=$(id -un)
fi

say() { printf '\n=== %s\n' "$*"; }

# Install Debian packages: the build and test set, plus any given.
# shellcheck disable=SC2120  # callers pass extra packages or none
install_packages() {
	say "installing packages"
	"${SUDO[@]}" apt-get update -q
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends \
		make gcc perl libipc-run-perl \
		postgresql-15 postgresql-client-15 postgresql-server-dev-15 \
		postgresql-15-wal2json postgresql-15-postgis-3 \
		prometheus prometheus-postgres-exporter "$@"
}

# Run a command as RUN_USER.
as_user() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$RUN_USER" -- "$@"
	else
		"$@"
	fi
}

ensure_user() {
	if [ "$(id -u)" -eq 0 ] && ! id "$RUN_USER" >/dev/null 2>&1; then
		useradd --system --create-home --shell /bin/bash "$RUN_USER"
	fi
}

# Build (warnings are errors) and install pg_ingest.  Under root the tree is
# copied to a directory RUN_USER owns, so the tests can write into it.
build_and_install() {
	ensure_user
	if [ "$(id -u)" -eq 0 ]; then
		# a directory of this run's own: runs side by side do not collide
		BUILD_DIR=$(mktemp -d /tmp/pg_ingest-build.XXXXXX)
		chmod 755 "$BUILD_DIR"
		tar -C "$REPO_DIR" --exclude=.git --exclude=./bench/work -cf - . | tar -C "$BUILD_DIR" -xf -
		chown -R "$RUN_USER" "$BUILD_DIR"
	else
		BUILD_DIR=$REPO_DIR
	fi
	say "building pg_ingest in $BUILD_DIR"
	as_user make -C "$BUILD_DIR" -s clean
	as_user make -C "$BUILD_DIR" -s COPT=-Werror PG_CONFIG="$PGBIN/pg_config"
	"${SUDO[@]}" make -C "$BUILD_DIR" -s install PG_CONFIG="$PGBIN/pg_config"
	export PATH="$PGBIN:$PATH"
}

# A scratch directory RUN_USER owns.
scratch_dir() {
	local d
	d=$(mktemp -d "/tmp/pg_ingest-$1.XXXXXX")
	chmod 755 "$d"
	[ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$d"
	echo "$d"
}

# Start a throwaway cluster listening on 127.0.0.1:$port only.
#   start_cluster DIR PORT "extra postgresql.conf lines"
start_cluster() {
	local dir=$1 port=$2 conf=${3:-}
	as_user "$PGBIN/initdb" -D "$dir" -A trust -U postgres --no-sync >/dev/null
	cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
$conf
CONF
	# the migration user logs in with a password over TCP
	cat >"$dir/pg_hba.conf" <<HBA
local all all trust
host all migrator 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
HBA
	as_user "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
}

# Stop a cluster: fast, then immediate if it does not go.
stop_cluster() {
	as_user "$PGBIN/pg_ctl" -D "$1" -m fast -w -t 30 stop >/dev/null 2>&1 ||
		as_user "$PGBIN/pg_ctl" -D "$1" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}

# Settings a source needs: logical decoding with wal2json.
source_conf() {
	echo "wal_level = logical"
	echo "max_wal_senders = 10"
	echo "max_replication_slots = 10"
	if as_user "$PGBIN/postgres" --describe-config | grep '^output_plugin_libraries' >/dev/null; then
		echo "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'"
	fi
}

# Settings a target needs.
target_conf() {
	echo "shared_preload_libraries = 'pg_ingest'"
	echo "max_worker_processes = 32"
}

free_port() {
	local p
	for p in $(seq "$1" $(($1 + 100))); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free port from $1" >&2
	return 1
}
