# Joins stdin/stdout to a Unix socket, byte for byte, until either side ends.
# usage: perl bridge.pl SOCKET
use strict; use warnings;
use IO::Socket::UNIX; use IO::Select;
my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect $ARGV[0]: $!\n";
binmode STDIN; binmode STDOUT;
my %to = (fileno(STDIN) => $s, fileno($s) => \*STDOUT);
my $sel = IO::Select->new(\*STDIN, $s);
while (1) {
  for my $h ($sel->can_read) {
    my $n = sysread($h, my $buf, 65536);
    exit 0 unless $n;
    my $out = $to{fileno($h)};
    my $off = 0;
    while ($off < $n) { my $w = syswrite($out, $buf, $n - $off, $off); exit 0 unless defined $w; $off += $w }
  }
}
