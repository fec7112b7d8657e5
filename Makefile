# pg_ingest — PGXS build
#
# The version lives in pg_ingest.control (default_version); everything else
# is derived from it here.

EXTENSION = pg_ingest
EXTVERSION := $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(dir $(lastword $(MAKEFILE_LIST)))pg_ingest.control)

MODULE_big = pg_ingest
OBJS = \
	pg_ingest.o \
	src/apply.o \
	src/apply_row.o \
	src/apply_tables.o \
	src/caller.o \
	src/catalog.o \
	src/citus.o \
	src/citus_apply.o \
	src/citus_map.o \
	src/conn.o \
	src/conninfo.o \
	src/control.o \
	src/coordinator.o \
	src/copy.o \
	src/depend.o \
	src/dump.o \
	src/extconfig.o \
	src/guc.o \
	src/index.o \
	src/largeobject.o \
	src/largeobject_check.o \
	src/largeobject_stop.o \
	src/infer.o \
	src/infer_table.o \
	src/items.o \
	src/preflight.o \
	src/preflight_report.o \
	src/preflight_target.o \
	src/names.o \
	src/notices.o \
	src/plan.o \
	src/pool.o \
	src/progress.o \
	src/rates.o \
	src/recovery.o \
	src/receiver.o \
	src/resync.o \
	src/schema.o \
	src/shmem.o \
	src/slots.o \
	src/snapshot.o \
	src/source.o \
	src/spool.o \
	src/start.o \
	src/stop.o \
	src/supervisor.o \
	src/target.o \
	src/verify.o \
	src/wal2json.o \
	src/workers.o \
	src/matview.o \
	src/sequence.o \
	src/replident.o \
	src/ddl.o \
	src/ddl_apply.o \
	src/ddl_follow.o

# SQL scripts (pg_cron's scheme): src/pg_ingest--0.1.0.sql is the frozen
# first release; each later version adds src/pg_ingest--A--B.sql, listed in
# UPGRADES in order.  The install script of the current version is the base
# followed by every upgrade, so a fresh CREATE EXTENSION and an ALTER
# EXTENSION ... UPDATE build the same objects.
BASE_SQL = src/pg_ingest--0.1.0.sql
UPGRADES = src/pg_ingest--0.1.0--0.2.0.sql
DATA = $(BASE_SQL) $(UPGRADES)
DATA_built = pg_ingest--$(EXTVERSION).sql
EXTRA_CLEAN = META.json.tmp .deps

PG_CPPFLAGS = -I$(libpq_srcdir) -I$(srcdir)/src -DPG_INGEST_VERSION=\"$(EXTVERSION)\"
SHLIB_LINK = $(libpq)

REGRESS = preflight full_load cdc transactions progress
REGRESS_OPTS = --temp-instance=tmp_check --temp-config=test/regress.generated.conf
TAP_TESTS = 1
EXTRA_CLEAN += test/regress.generated.conf

# rebuild what includes a header that changed
override autodepend = yes

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

pg_ingest--$(EXTVERSION).sql: $(BASE_SQL) $(UPGRADES) pg_ingest.control
	cat $(BASE_SQL) $(UPGRADES) > $@

# META.json carries the same version; "make meta" rewrites it, and
# "make check-version" (run by the test script) fails if it has drifted.
meta:
	perl -MJSON::PP -e 'local $$/; open my $$f, "<", "META.json" or die; my $$m = decode_json(<$$f>); $$m->{version} = $$m->{provides}{pg_ingest}{version} = "$(EXTVERSION)"; open $$f, ">", "META.json" or die; print $$f JSON::PP->new->pretty->canonical->encode($$m);'

check-version:
	@perl -MJSON::PP -e 'local $$/; open my $$f, "<", "META.json" or die; my $$m = decode_json(<$$f>); for my $$v ($$m->{version}, $$m->{provides}{pg_ingest}{version}) { die "META.json has version $$v, pg_ingest.control has $(EXTVERSION): run make meta\n" unless $$v eq "$(EXTVERSION)" } print "version $(EXTVERSION) in pg_ingest.control and META.json\n";'

# Servers from 15.19 on decode only with the plugins in
# output_plugin_libraries; older ones refuse that setting.
test/regress.generated.conf: test/regress.conf
	cp $< $@
	if $(bindir)/postgres --describe-config | grep -q '^output_plugin_libraries'; then \
		echo "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'" >> $@; fi

installcheck: test/regress.generated.conf

# The library is preloaded in the main regression instance; this second,
# small instance runs without it, for the not-preloaded error.
installcheck: $(if $(SKIP_NOPRELOAD),,installcheck-nopreload)
installcheck-nopreload:
	$(pg_regress_installcheck) --temp-instance=tmp_check_nopreload \
		--temp-config=$(srcdir)/test/nopreload.conf \
		--outputdir=output_nopreload not_preloaded

# The fault-injection suite alone, with more runs than installcheck's
# (INGEST_FAULT_SEED=... replays a seed): make faults RUNS=50
RUNS ?= 50
faults: PROVE_TESTS = t/010_faults.pl
faults: export INGEST_FAULT_RUNS := $(RUNS)
faults:
	$(prove_installcheck)

# The Citus suite alone (it skips, saying so, without Citus installed):
# make citus
citus: PROVE_TESTS = t/029_citus.pl
citus:
	$(prove_installcheck)

.PHONY: meta check-version installcheck-nopreload faults citus
