-- Tables of the CDC TAP tests (t/024_cdc_stream.pl, t/025_cdc_held_copy.pl,
-- t/026_cdc_mode.pl, t/028_cdc_large_txn.pl), next to pgbench's: each is
-- there for one kind of change the applier must get right.

-- pgbench's history has no key: without a replica identity its changes
-- could not be carried, and ingest.start would refuse it
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;

-- updates that leave a TOASTed value alone (stored out of line, uncompressed)
CREATE TABLE toasty (id int PRIMARY KEY, big text, n int NOT NULL DEFAULT 0);
ALTER TABLE toasty ALTER big SET STORAGE EXTERNAL;
INSERT INTO toasty (id, big)
SELECT g, repeat(md5(g::text), 300) FROM generate_series(1, 20) g;

-- primary-key updates and deletes; a child whose rows the source deletes by
-- cascade, and an audit table filled by a trigger that must not fire again
-- on the target
CREATE TABLE keyed (id int PRIMARY KEY, v text);
INSERT INTO keyed SELECT g, 'v' || g FROM generate_series(1, 1000) g;
CREATE TABLE child (id int PRIMARY KEY, keyed_id int REFERENCES keyed ON DELETE CASCADE ON UPDATE CASCADE);
INSERT INTO child SELECT g, g FROM generate_series(1, 100) g;
CREATE TABLE audit (id bigserial PRIMARY KEY, keyed_id int, what text);
CREATE FUNCTION keyed_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO audit (keyed_id, what) VALUES (NEW.id, TG_OP);
	RETURN NEW;
END $$;
CREATE TRIGGER keyed_audit AFTER INSERT OR UPDATE ON keyed
	FOR EACH ROW EXECUTE FUNCTION keyed_audit();

-- no primary key: rows matched on all their old values, duplicates included
CREATE TABLE nopk (a int, b text);
ALTER TABLE nopk REPLICA IDENTITY FULL;
INSERT INTO nopk VALUES (1, 'x'), (1, 'x'), (2, 'y'), (3, NULL);

-- truncated while streaming
CREATE TABLE trunc_me (id int PRIMARY KEY, v text);
INSERT INTO trunc_me SELECT g, 'before' FROM generate_series(1, 100) g;

-- the large transaction goes here; the column the target computes
CREATE TABLE big (id bigint PRIMARY KEY, payload text,
	twice bigint GENERATED ALWAYS AS (id * 2) STORED);

-- values wal2json sends as JSON null before 2.6
CREATE TABLE nums (id int PRIMARY KEY, n numeric, f float8, r real);
INSERT INTO nums VALUES (1, 1.5, 2.5, 3.5);

CREATE SEQUENCE ticket;
