#!/usr/bin/env bash
# Install what pg_ingest needs, build it, and run every test: the pg_regress
# suites and the TAP suite.  Works as root (the servers then run as the
# unprivileged user "pgingest") or as a user with sudo.
#
#   ./scripts/test.sh

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

install_packages
build_and_install

say "checking that the version has one source"
as_user make -C "$BUILD_DIR" -s check-version

# t/013's test extension (a configuration table with a condition of its
# own) goes where this installation's extensions are
"${SUDO[@]}" install -m 644 "$BUILD_DIR"/t/ext/ingest_cfgtest.control \
	"$BUILD_DIR"/t/ext/ingest_cfgtest--1.0.sql "$("$PGBIN"/pg_config --sharedir)/extension/"

say "running pg_regress and TAP suites"
log=$(mktemp)
set +e
as_user make -C "$BUILD_DIR" installcheck PG_CONFIG="$PGBIN/pg_config" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
	for f in "$BUILD_DIR"/regression.diffs "$BUILD_DIR"/output_nopreload/regression.diffs; do
		[ -f "$f" ] && { say "$f"; cat "$f"; }
	done
	for f in "$BUILD_DIR"/tmp_check/log/regress_log_*; do
		[ -f "$f" ] && { say "$f (last 60 lines)"; tail -n 60 "$f"; }
	done
fi
say "summary"
grep -E '^(test |not ok| *All [0-9]+ tests passed| *[0-9]+ of [0-9]+ tests failed|All tests successful|Files=|Result:|t/.*\.\.)' "$log" || true
[ "$status" -eq 0 ] && echo "pg_ingest: all tests passed" || echo "pg_ingest: TESTS FAILED"
rm -f "$log"
exit "$status"
