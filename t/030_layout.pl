# The layout README's "Layout" section promises, checked on the source
# itself (no cluster):
#  - every file in src/ and pg_ingest.c opens with a header that says what
#    it keeps where ("State:") and its locking rules ("Locking:");
#  - no C file is much over 800 lines unless its header says why
#    ("Longer than 800 lines:");
#  - calls go down the map: no two files call each other's functions, and
#    nothing calls into pg_ingest.c or into the files of the SQL API;
#  - every C file of src/ is in README's file map.
# A file that breaks one of these fails here, named.
use strict;
use warnings;
use FindBin;
use File::Basename;
use Test::More;

my $root = "$FindBin::RealBin/..";
my @files = (sort(glob("$root/src/*.c")), "$root/pg_ingest.c");
my %text;
for my $f (@files)
{
	open(my $fh, '<', $f) or die "$f: $!";
	local $/;
	$text{ basename($f) } = <$fh>;
	close $fh;
}

# the header: the first comment block of the file
for my $name (sort keys %text)
{
	my ($header) = $text{$name} =~ m{\A\s*(/\*.*?\*/)}s;
	$header //= '';
	like($header, qr/^\s*\*\s*Locking:/m, "$name: its header states its locking rules");
	next if $name eq 'pg_ingest.c';    # _PG_init and a version function
	like($header, qr/^\s*\*\s*State:/m, "$name: its header states which state it keeps where");
	my $lines = () = $text{$name} =~ /\n/g;
	ok($lines <= 850 || $header =~ /Longer than 800 lines:/,
		"$name: $lines lines, at most ~800 or the reason in its header");
}

# functions: defined at column 0 after a return type line, not static
my %defined_in;
for my $name (keys %text)
{
	while ($text{$name} =~ /^(?!static)[A-Za-z_][\w \*]*\n([a-z_][a-z0-9_]*)\(/mg)
	{
		$defined_in{$1} = $name;
	}
}
# calls: a defined name followed by "(" outside comments and strings
my %calls;    # caller file -> callee file -> [functions]
for my $name (keys %text)
{
	my $code = $text{$name};
	$code =~ s{/\*.*?\*/}{}gs;
	$code =~ s{"(?:\\.|[^"\\])*"}{""}g;
	my %seen;
	while ($code =~ /\b([a-z_][a-z0-9_]*)\s*\(/g)
	{
		my $fn = $1;
		my $in = $defined_in{$fn};
		next if !defined $in || $in eq $name || $seen{$fn}++;
		push @{ $calls{$name}{$in} }, $fn;
	}
}

my @cycles;
for my $a (sort keys %calls)
{
	for my $b (sort keys %{ $calls{$a} })
	{
		push @cycles, "$a (@{$calls{$a}{$b}}) <-> $b (@{$calls{$b}{$a}})"
		  if $a lt $b && $calls{$b}{$a};
	}
}
is(join("\n", @cycles), '', 'no two files call each other');

my %api = map { $_ => 1 } qw(pg_ingest.c start.c control.c verify.c preflight.c
  preflight_target.c);
my @up;
for my $a (sort keys %calls)
{
	next if $api{$a};
	for my $b (sort keys %{ $calls{$a} })
	{
		push @up, "$a -> $b (@{$calls{$a}{$b}})" if $api{$b};
	}
}
is(join("\n", @up), '',
	'nothing below calls into pg_ingest.c or the SQL functions\' files');

# README's file map names every C file of src/
open(my $rfh, '<', "$root/README.md") or die "README.md: $!";
my $readme = do { local $/; <$rfh> };
close $rfh;
my ($map) = $readme =~ /^## Layout\n(.*?)^## /ms;
$map //= '';
for my $name (sort keys %text)
{
	my $path = $name eq 'pg_ingest.c' ? $name : "src/$name";
	like($map, qr/`\Q$path\E`/, "README's Layout names $path");
}

done_testing();
