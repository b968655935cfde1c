//! Security of the setup as built: the replication role holds only what it
//! needs, its password is stored as a SCRAM verifier, and pg_hba turns away
//! hosts and passwords it should, as the primary's own log records it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{any, eq, pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Cmd, Host, Hosts};
use crate::time::Deadline;

/// The replication role has LOGIN and REPLICATION and nothing more (no
/// superuser, createrole, createdb, bypassrls, no role memberships), and
/// its stored password is a SCRAM-SHA-256 verifier. Writes nothing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplicationRole {
    /// Where the role lives (the primary).
    pub host: String,
    /// The role's name.
    pub role: String,
}

/// pg_hba turns away what it should: a replication connection as `role`
/// from `outsider` (a lab host with no pg_hba line), and one from
/// `standby` with a wrong password; both asserted from the primary's
/// log lines written during the check. Writes nothing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HbaRefuses {
    /// The host whose pg_hba.conf decides.
    pub primary: String,
    /// The host allowed to replicate; it tries a wrong password.
    pub standby: String,
    /// A host of the lab that must not be allowed in.
    pub outsider: String,
    /// The replication role.
    pub role: String,
}

/// No host has a route out of the lab's network: no default route in
/// its routing table, and `ip route get` to an outside address answers
/// "Network is unreachable" (nothing is sent). Writes nothing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoRouteOut {
    /// The hosts to look at.
    pub hosts: Vec<String>,
}

/// SSH between these hosts is key-only and trusts no key it was not
/// given: sshd on each refuses passwords, keyboard-interactive and root;
/// no two hosts share a host key; every `known_hosts` line on them that
/// names a lab host holds that host's real key (read by the engine); a
/// password login from the first host to the second is refused. Writes
/// nothing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SshKeys {
    /// The hosts to look at (at least two).
    pub hosts: Vec<String>,
}

impl Proof for ReplicationRole {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![pg("host", &self.host)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        replication_role(lab.host(&self.host)?, &self.role).await
    }
}

impl Proof for HbaRefuses {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![pg("primary", &self.primary), pg("standby", &self.standby), any("outsider", &self.outsider)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        hba_refuses(lab.host(&self.primary)?, lab.host(&self.standby)?, lab.host(&self.outsider)?, &self.role).await
    }
}

impl Proof for NoRouteOut {
    fn uses(&self) -> Vec<Uses<'_>> {
        self.hosts.iter().map(|h| any("hosts", h)).collect()
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        no_route_out(&self.hosts.iter().map(|h| lab.host(h)).collect::<Result<Vec<_>>>()?).await
    }
}

impl Proof for SshKeys {
    fn uses(&self) -> Vec<Uses<'_>> {
        self.hosts.iter().map(|h| any("hosts", h)).collect()
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        ssh_keys(&self.hosts.iter().map(|h| lab.host(h)).collect::<Result<Vec<_>>>()?).await
    }
}

/// LOGIN and REPLICATION and nothing more; the stored password a SCRAM
/// verifier (never read out: only its prefix is compared).
pub async fn replication_role(host: &Host, role: &str) -> Result<Evidence> {
    let q = format!(
        "SELECT rolcanlogin, rolreplication, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolinherit AND EXISTS \
         (SELECT 1 FROM pg_auth_members m WHERE m.member = a.oid), coalesce(rolpassword LIKE 'SCRAM-SHA-256$%', false) \
         FROM pg_authid a WHERE rolname = '{role}'"
    );
    let row = host.safe_psql(&q).await?;
    eq(
        &format!("role {role} on {}: login|replication|superuser|createrole|createdb|bypassrls|member of a role|SCRAM", host.name),
        row.as_str(),
        "t|t|f|f|f|f|f|t",
    )?;
    Ok(format!("{role} on {}: LOGIN and REPLICATION only, no role memberships; password stored as a SCRAM-SHA-256 verifier", host.name).into())
}

/// A replication connection as `role` from `outsider` is refused by
/// pg_hba, and one from `standby` with a wrong password fails; each is
/// asserted from the primary's log lines written during the check.
pub async fn hba_refuses<'a>(primary: &'a Host, standby: &'a Host, outsider: &'a Host, role: &str) -> Result<Evidence> {
    let conninfo = format!("host={} user={role} dbname=replication replication=true connect_timeout=5", primary.ip);
    let attempt = Cmd::shell(format!("PGPASSWORD=not-the-password psql '{conninfo}' -Xc IDENTIFY_SYSTEM")).user("postgres").any_status();
    let attempt = &attempt;
    // Each attempt fails with psql's exit 2, and the primary logs why.
    let refused = |from: &'a Host, what: String, pattern: String| async move {
        let offset = primary.log_offset().await?;
        let out = from.exec(attempt.clone()).await?;
        eq(&format!("exit status of {what} from {}", from.name), out.status, 2)?;
        primary.wait_for_log(&pattern, offset, Deadline::standard()).await
    };
    let host = regex::escape(&outsider.ip.to_string());
    let refused_host =
        refused(outsider, "a replication connection".into(), format!(r#"no pg_hba\.conf entry for replication connection from host "{host}", user "{role}""#))
            .await?;
    let wrong = refused(standby, "a wrong password".into(), format!(r#"password authentication failed for user "{role}""#)).await?;
    Ok(format!("{}: {}; {}: {}", outsider.name, tail(&refused_host), standby.name, tail(&wrong)).into())
}

/// A log line from its message on (no timestamp and pid).
fn tail(line: &str) -> String {
    line.find("FATAL:").map(|i| line[i..].to_string()).unwrap_or_else(|| line.to_string())
}

/// Every host: no default route, and an outside address unreachable.
pub async fn no_route_out(hosts: &[&Host]) -> Result<Evidence> {
    for h in hosts {
        if !h.sealed().await? {
            return Err(Error::Check(format!("{} has a route out of the lab (see `ip route` there)", h.name)));
        }
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    Ok(format!("no route out of the lab on {}: no default route; `ip route get 192.0.2.1`: Network is unreachable", names.join(", ")).into())
}

/// What sshd must answer in `sshd -T` on every lab host.
const SSHD_KEY_ONLY: [&str; 3] = ["passwordauthentication no", "kbdinteractiveauthentication no", "permitrootlogin no"];

/// Key-only SSH with host keys of their own, pinned as they really are.
pub async fn ssh_keys(hosts: &[&Host]) -> Result<Evidence> {
    let [first, second, ..] = hosts else { return Err(Error::Check("ssh_keys needs at least two hosts".into())) };
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    for h in hosts {
        let cfg = h.probe(&Cmd::new(["sshd", "-T"])).await?.stdout;
        if let Some(missing) = SSHD_KEY_ONLY.iter().find(|want| !cfg.lines().any(|l| l.trim() == **want)) {
            return Err(Error::Check(format!("sshd on {} does not say `{missing}` (see `sshd -T` there)", h.name)));
        }
        if let Some(other) = owner.insert(h.ssh_host_key().await?, &h.name) {
            return Err(Error::Check(format!("{} and {other} have the same SSH host key: either can pass for the other", h.name)));
        }
    }
    let pinned = pinned_keys_match(hosts, &owner).await?;
    let cmd = Cmd::shell(format!(
        "ssh -o BatchMode=yes -o PreferredAuthentications=password,keyboard-interactive -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null dba@{} true",
        second.ip
    ))
    .any_status();
    let out = first.exec(cmd).await?;
    eq(&format!("exit status of a password login from {} to {}", first.name, second.name), out.status, 255)?;
    if !out.combined().contains("Permission denied (publickey)") {
        return Err(Error::Check(format!("a password login from {} to {} was not refused as key-only: {}", first.name, second.name, out.combined().trim())));
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    Ok(format!(
        "{}: sshd key-only (no password, keyboard-interactive or root), {} distinct host keys, {pinned} pinned known_hosts line(s) match; a password login answers `Permission denied (publickey)`",
        names.join(", "),
        owner.len()
    )
    .into())
}

/// Every known_hosts line (root, dba, postgres) naming a lab host by name or
/// address holds that host's key; returns how many there were.
async fn pinned_keys_match(hosts: &[&Host], owner: &BTreeMap<String, &str>) -> Result<usize> {
    let mut seen = 0;
    for h in hosts {
        let text = h.probe(&Cmd::shell("cat /root/.ssh/known_hosts ~dba/.ssh/known_hosts ~postgres/.ssh/known_hosts 2>/dev/null; true")).await?.stdout;
        for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let mut fields = line.split_whitespace();
            let (Some(names), Some(kind), Some(body)) = (fields.next(), fields.next(), fields.next()) else { continue };
            let Some(peer) = hosts.iter().find(|p| names.split(',').any(|n| n == p.name || n == p.ip.to_string())) else { continue };
            if owner.get(&format!("{kind} {body}")).copied() != Some(peer.name.as_str()) {
                return Err(Error::Check(format!("{} trusts a key for {} that is not {}'s host key: {line}", h.name, peer.name, peer.name)));
            }
            seen += 1;
        }
    }
    Ok(seen)
}
