//! Where a host is on its lab's network: an address of the lab's own plan,
//! not the engine's. Host `i` of every lab is `198.18.0.(11+i)` (RFC 2544's
//! benchmarking range, never routed), whatever subnet the engine gave the
//! network. Configs capture these addresses (`{primary.ip}` in pg_hba,
//! conninfo, known_hosts, and backups of those files in the repository), so
//! a lab saved at a step and started again beside another copy of itself
//! must have the very same ones: no rewriting, nothing that could differ.
//!
//! The engine drops addresses outside a network's subnet on an `internal`
//! network, so the network is a plain bridge with masquerading off; what
//! keeps the lab sealed is that no host has a route out (deleted here,
//! asserted by the check `no_route_out`), no host may add one (no
//! NET_ADMIN), and none may forge a frame past its routing table (NET_RAW
//! dropped).

use std::net::Ipv4Addr;

use super::exec::Cmd;
use super::host::Host;
use crate::error::{Error, Result};

/// What a host runs before its init: wait until [`Host::place`] says it is
/// at its lab address and sealed (a file on `/run`, a tmpfs of each start).
pub(crate) const WAIT_PLACED: &str = "until [ -e /run/pglab-placed ]; do sleep 0.05; done;";

/// The plan's /24, as `ip addr` writes it.
const PREFIX: [u8; 3] = [198, 18, 0];
/// Host `i` is `.FIRST + i`.
const FIRST: u8 = 11;

/// The address of a lab's `i`-th host (in the order the hosts are declared).
pub(crate) fn lab_address(i: usize) -> Result<Ipv4Addr> {
    let last = u8::try_from(i).ok().and_then(|i| i.checked_add(FIRST)).filter(|n| *n < 255);
    let last = last.ok_or_else(|| Error::Usage(format!("a lab holds at most {} hosts", 255 - FIRST)))?;
    Ok(Ipv4Addr::new(PREFIX[0], PREFIX[1], PREFIX[2], last))
}

/// `/etc/hosts` for a host of a lab: every host's name at its lab address,
/// so a name means the same host, at the same address, as `{name.ip}`.
pub(crate) fn hosts_file(hosts: &[(String, Ipv4Addr)]) -> String {
    let mut text = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, ip) in hosts {
        text.push_str(&format!("{ip}\t{name}\n"));
    }
    text
}

impl Host {
    /// Puts the host at its lab address and seals it: the address added
    /// (idempotent), every default route deleted, names resolving to lab
    /// addresses and nothing else (no DNS server); then lets it boot. At
    /// start, and again after a restart (a new network namespace has neither).
    pub(crate) async fn place(&self) -> Result<()> {
        let hosts_file = &self.hosts_file;
        self.net_admin(&format!(
            "ip addr replace {}/24 dev eth0 && \
             {{ ip route del default 2>/dev/null; ip -6 route del default 2>/dev/null; \
             ! ip route show default | grep -q . && ! ip -6 route show default 2>/dev/null | grep -q .; }}",
            self.ip
        ))
        .await
        .map_err(|e| Error::Environment(format!("could not place {} at {} with no route out: {e}", self.name, self.ip)))?;
        let line = "cat > /etc/hosts && : > /etc/resolv.conf && touch /run/pglab-placed";
        let out = self.probe(&Cmd::shell(line).stdin(hosts_file.as_bytes().to_vec())).await?;
        match out.status {
            0 => Ok(()),
            n => Err(Error::Environment(format!("could not write /etc/hosts on {} (exit {n}): {}", self.name, out.combined().trim()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lab_numbers_its_hosts_the_same_way() {
        assert_eq!(lab_address(0).unwrap(), Ipv4Addr::new(198, 18, 0, 11));
        assert_eq!(lab_address(243).unwrap(), Ipv4Addr::new(198, 18, 0, 254));
        assert!(lab_address(244).is_err() && lab_address(100_000).is_err());
        let text = hosts_file(&[("primary".into(), lab_address(0).unwrap()), ("standby".into(), lab_address(1).unwrap())]);
        assert!(text.ends_with("198.18.0.11\tprimary\n198.18.0.12\tstandby\n"), "{text}");
    }
}
