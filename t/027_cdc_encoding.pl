# Change data capture from a source database in another encoding.
#
# wal2json writes in the source database's encoding: LATIN1 here, UTF8 on
# the target.  Rows copied and changes streamed (an update, an insert) with
# non-ASCII characters must arrive as the same characters in UTF8.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestTest;

my $source = new_source('source');
my $target = new_target('target', 'pg_ingest.retry_delay' => "'200ms'");

# --- a source database in another encoding --------------------------------
$source->safe_psql('postgres',
	"CREATE DATABASE latin ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0 OWNER migrator");
$source->safe_psql('latin',
	"SET client_encoding = 'UTF8'; SET ROLE migrator;"
	  . " CREATE TABLE words (id int PRIMARY KEY, w text);"
	  . " INSERT INTO words VALUES (1, 'café'), (2, 'naïve');");
create_db($target, 'utf');
$target->safe_psql('utf', 'CREATE EXTENSION pg_ingest');
$target->safe_psql('utf',
	"SELECT ingest.start('" . source_connstr($source, dbname => 'latin') . "', name => 'enc')");
ok(wait_phase($target, 'utf', 'enc', 'streaming'), 'the LATIN1 source streams');
$source->safe_psql('latin',
	"SET client_encoding = 'UTF8'; UPDATE words SET w = w || ' à la crème' WHERE id = 1;"
	  . " INSERT INTO words VALUES (3, 'Ærø ß ÿ');");
$target->safe_psql('utf', "SELECT ingest.cutover('enc')");
is($target->safe_psql('utf', "SET client_encoding = 'UTF8'; SELECT string_agg(w, '|' ORDER BY id) FROM words"),
	'café à la crème|naïve|Ærø ß ÿ', 'changes made in LATIN1 arrive in UTF8');

done_testing();
