//! Added delay between a host and a peer's PostgreSQL. netem where the
//! kernel has it; else a delaying TCP relay in a helper that shares the
//! host's network namespace, the host's own connections to the peer's port
//! sent through it by an iptables REDIRECT (the helper alone holds
//! NET_ADMIN). Either way no configuration of the host changes, and the
//! step's outcome says which one ran and why.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::exec::Cmd;
use super::host::Host;
use crate::error::Result;
use crate::time::{poll_until, Deadline, Probe};

const CHAIN: &str = "PGLAB_LATENCY";
/// The relay: a Perl script (the hosts have Perl, not a relay program).
const RELAY: &str = include_str!("relay.pl");

/// The relay's port on the host's loopback: one per peer.
fn relay_port(peer: Ipv4Addr) -> u16 {
    15000 + u16::from(peer.octets()[3])
}

/// The rule that sends the host's own (non-root) connections to the peer's
/// PostgreSQL port through the relay.
fn redirect(peer: &Host) -> String {
    format!("-p tcp -d {} --dport {} -m owner ! --uid-owner 0 -j REDIRECT --to-ports {}", peer.ip, peer.platform.pg_port(), relay_port(peer.ip))
}

/// The relay's helper, by the peer it leads to.
fn relay_suffix(peer: &Host) -> String {
    format!("lat-{}", peer.name)
}

impl Host {
    /// Adds `ms` each way between this host and `peer`'s PostgreSQL port;
    /// returns which mechanism ran.
    pub async fn add_latency(&self, peer: &Host, ms: u32) -> Result<String> {
        let netem = match self.netem(peer, ms).await {
            Ok(()) => return Ok(format!("netem: +{ms} ms on each way between {} and {}", self.name, peer.name)),
            Err(e) => e.to_string(),
        };
        self.relay(peer, ms).await?;
        let why = netem.rsplit_once(" exited ").map_or(netem.as_str(), |(_, w)| w).trim();
        Ok(format!("relay: +{ms} ms each way on {}'s connections to {}:{} (netem refused, tc exited {why})", self.name, peer.name, peer.platform.pg_port()))
    }

    /// netem on both hosts' egress to each other; undone when either fails.
    async fn netem(&self, peer: &Host, ms: u32) -> Result<()> {
        for (from, to) in [(self, peer), (peer, self)] {
            let line = format!(
                "tc qdisc add dev eth0 root handle 1: prio && tc qdisc add dev eth0 parent 1:3 handle 30: netem delay {ms}ms && \
                 tc filter add dev eth0 parent 1: protocol ip prio 3 u32 match ip dst {}/32 flowid 1:3",
                to.ip
            );
            if let Err(e) = from.net_admin(&line).await {
                for h in [self, peer] {
                    let _ = h.net_admin("tc qdisc del dev eth0 root 2>/dev/null; true").await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn relay(&self, peer: &Host, ms: u32) -> Result<()> {
        let t = Instant::now();
        let port = relay_port(peer.ip);
        let argv = ["perl", "-e", RELAY, &port.to_string(), &peer.ip.to_string(), &peer.platform.pg_port().to_string(), &ms.to_string()];
        let helper = self.start_helper(&relay_suffix(peer), argv.iter().map(|s| s.to_string()).collect()).await?;
        let listening = Cmd::shell(format!("ss -ltnH 'sport = :{port}' | grep -q ."));
        poll_until(&format!("the relay on {}", self.name), &format!("listening on port {port}"), Deadline::standard(), || async {
            Ok(if self.probe(&listening.clone().any_status()).await?.status == 0 { Probe::Ready(()) } else { Probe::NotYet("not yet".into()) })
        })
        .await?;
        self.note(
            "pglab (engine)",
            &format!("start relay {helper}: 127.0.0.1:{port} -> {}:{}, +{ms} ms each way", peer.ip, peer.platform.pg_port()),
            "listening",
            t.elapsed(),
        );
        let rules = format!("iptables -t nat -N {CHAIN} 2>/dev/null; iptables -t nat -C OUTPUT -j {CHAIN} 2>/dev/null || iptables -t nat -A OUTPUT -j {CHAIN}; iptables -t nat -A {CHAIN} {}", redirect(peer));
        self.net_admin(&rules).await
    }

    /// Shell lines (for this host, for `peer`) that take away what
    /// [`Host::add_latency`] set toward `peer`; harmless when nothing was.
    pub(super) fn latency_undo(&self, peer: &Host) -> (String, String) {
        let netem = "tc filter show dev eth0 | grep -q . && tc qdisc del dev eth0 root";
        (format!("iptables -t nat -D {CHAIN} {} 2>/dev/null; {netem}", redirect(peer)), netem.to_string())
    }

    /// Removes the relay toward `peer`, if there is one.
    pub(super) async fn remove_relay(&self, peer: &Host) {
        let _ = self.remove_helper(&self.helper_name(&relay_suffix(peer))).await;
    }
}
