#!/usr/bin/perl
# Fake checkpatch.pl: an added line naming checkpatch-error, -warning or -check
# is an issue of that level; the output has the real one's shape.
use strict;
use warnings;

my $file = $ARGV[-1];
open(my $fh, '<', $file) or die "$file: $!\n";
my %count = (error => 0, warning => 0, check => 0);
my $lines = 0;
while (my $line = <$fh>) {
	$lines++;
	next unless $line =~ /^\+/;
	while ($line =~ /checkpatch-(error|warning|check)/g) {
		$count{$1}++;
		print uc($1) . ":FAKE_" . uc($1) . ": fake $1\n#$lines: FILE: kernel/a.c:1:\n$line\n";
	}
}
print "total: $count{error} errors, $count{warning} warnings, $count{check} checks, " .
	"$lines lines checked\n";
exit(($count{error} || $count{warning} || $count{check}) ? 1 : 0);
