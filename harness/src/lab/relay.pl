# A TCP relay that delays every chunk by DELAY ms in each direction.
# usage: perl relay.pl LISTEN_PORT DEST_HOST DEST_PORT DELAY_MS
use strict; use warnings;
use IO::Socket::INET; use IO::Select; use Time::HiRes qw(time);
my ($port, $dhost, $dport, $ms) = @ARGV;
my $delay = $ms / 1000;
$SIG{CHLD} = 'IGNORE';
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 64, ReuseAddr => 1) or die "listen: $!";
$| = 1; print "listening on 127.0.0.1:$port -> $dhost:$dport, +${ms} ms each way\n";
while (1) {
  my $c = $l->accept or next;
  my $pid = fork();
  if (!defined $pid) { close $c; next }
  if ($pid) { close $c; next }
  close $l;
  my $s = IO::Socket::INET->new(PeerAddr => $dhost, PeerPort => $dport) or exit 1;
  print "relay " . $c->peerhost . ":" . $c->peerport . " -> $dhost:$dport\n";
  my %peer = ($c => $s, $s => $c);
  my $sel = IO::Select->new($c, $s);
  my @queue;    # [due, socket to write, data]; undef data = close
  my $open = 2;
  while ($open || @queue) {
    my $now = time;
    while (@queue && $queue[0][0] <= $now) {
      my $q = shift @queue;
      if (defined $q->[2]) { my $off = 0; while ($off < length $q->[2]) { my $n = syswrite($q->[1], $q->[2], length($q->[2]) - $off, $off); exit 0 unless defined $n; $off += $n } }
      else { shutdown($q->[1], 1) }
    }
    my $wait = @queue ? $queue[0][0] - time : undef;
    $wait = 0 if defined $wait && $wait < 0;
    for my $r ($sel->can_read($open ? $wait : ($wait // 0))) {
      my $n = sysread($r, my $buf, 65536);
      if (!$n) { $sel->remove($r); $open--; push @queue, [time + $delay, $peer{$r}, undef]; next }
      push @queue, [time + $delay, $peer{$r}, $buf];
    }
  }
  exit 0;
}
