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
/// verifier (never read out: only its prefix is compared). Membership in
/// any role counts, inherited or not: a NOINHERIT member can still
/// `SET ROLE` to it.
pub async fn replication_role(host: &Host, role: &str) -> Result<Evidence> {
    let q = format!(
        "SELECT rolcanlogin, rolreplication, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, \
         coalesce(rolpassword LIKE 'SCRAM-SHA-256$%', false), \
         (SELECT coalesce(string_agg(g.rolname, ',' ORDER BY g.rolname), '') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = a.oid) \
         FROM pg_authid a WHERE rolname = '{role}'"
    );
    let row = host.safe_psql(&q).await?;
    if row.is_empty() {
        return Err(Error::Check(format!("role {role} does not exist on {}", host.name)));
    }
    let f: Vec<&str> = row.split('|').collect();
    let want = [("LOGIN", "t"), ("REPLICATION", "t"), ("SUPERUSER", "f"), ("CREATEROLE", "f"), ("CREATEDB", "f"), ("BYPASSRLS", "f")];
    let mut wrong: Vec<String> = want
        .iter()
        .zip(&f)
        .filter(|((_, w), got)| *w != **got)
        .map(|((attr, w), _)| if *w == "t" { format!("lacks {attr}") } else { format!("has {attr}") })
        .collect();
    if f.get(6) != Some(&"t") {
        wrong.push("its password is not stored as a SCRAM-SHA-256 verifier".into());
    }
    if let Some(groups) = f.get(7).filter(|g| !g.is_empty()) {
        wrong.push(format!("is a member of {groups} (NOINHERIT or not, it can SET ROLE to it)"));
    }
    if !wrong.is_empty() {
        return Err(Error::Check(format!("role {role} on {}: {}", host.name, wrong.join("; "))));
    }
    Ok(format!("{role} on {}: LOGIN and REPLICATION only, a member of no role; password stored as a SCRAM-SHA-256 verifier", host.name).into())
}

/// A replication connection as `role` from `outsider` is refused by
/// pg_hba, and one from `standby` with a wrong password fails. Each is
/// asserted twice: from the answer that connection itself got (so another
/// client's failure cannot stand in for it) and from the primary's log
/// lines written during the check.
pub async fn hba_refuses<'a>(primary: &'a Host, standby: &'a Host, outsider: &'a Host, role: &str) -> Result<Evidence> {
    let conninfo = format!("host={} user={role} dbname=replication replication=true connect_timeout=5", primary.ip);
    let attempt = Cmd::shell(format!("PGPASSWORD=not-the-password psql '{conninfo}' -Xc IDENTIFY_SYSTEM")).user("postgres").any_status();
    let attempt = &attempt;
    // Each attempt fails with psql's exit 2, and says why; the primary logs it.
    let refused = |from: &'a Host, what: &'static str, pattern: String| async move {
        let offset = primary.log_offset().await?;
        let out = from.exec(attempt.clone()).await?;
        let answer = out.combined();
        if out.status != 2 {
            return Err(Error::Check(format!("{what} from {} to {} was let in (psql exit {}): {}", from.name, primary.name, out.status, answer.trim())));
        }
        let re = regex::Regex::new(&pattern).map_err(|e| Error::Other(e.to_string()))?;
        if !re.is_match(&answer) {
            return Err(Error::Check(format!("{what} from {} failed, but not as refused ({pattern}): {}", from.name, answer.trim())));
        }
        primary.wait_for_log(&pattern, offset, Deadline::standard()).await
    };
    let host = regex::escape(&outsider.ip.to_string());
    let refused_host =
        refused(outsider, "a replication connection", format!(r#"no pg_hba\.conf entry for replication connection from host "{host}", user "{role}""#)).await?;
    let wrong = refused(standby, "a wrong password", format!(r#"password authentication failed for user "{role}""#)).await?;
    Ok(format!(
        "{}: {}; {}: {} (each in that connection's own answer and in the primary's log)",
        outsider.name,
        tail(&refused_host),
        standby.name,
        tail(&wrong)
    )
    .into())
}

/// A log line from its message on (no timestamp and pid).
fn tail(line: &str) -> String {
    line.find("FATAL:").map(|i| line[i..].to_string()).unwrap_or_else(|| line.to_string())
}

/// Every host: no default route, and an outside address unreachable, for
/// IPv4 and IPv6 both.
pub async fn no_route_out(hosts: &[&Host]) -> Result<Evidence> {
    for h in hosts {
        if let Some(how) = h.route_out().await? {
            return Err(Error::Check(format!("{} has a route out of the lab: {how}", h.name)));
        }
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    Ok(format!(
        "no route out of the lab on {}: no default route (IPv4, IPv6); `ip route get 192.0.2.1` and `ip -6 route get 2001:db8::1`: unreachable",
        names.join(", ")
    )
    .into())
}

/// What sshd must answer in `sshd -T` on every lab host.
const SSHD_KEY_ONLY: [&str; 3] = ["passwordauthentication no", "kbdinteractiveauthentication no", "permitrootlogin no"];

/// The users whose SSH a lab uses: known_hosts files and `Match User` blocks.
const SSH_USERS: [&str; 3] = ["root", "dba", "postgres"];

/// Key-only SSH with host keys of their own, pinned as they really are.
pub async fn ssh_keys(hosts: &[&Host]) -> Result<Evidence> {
    let [first, second, ..] = hosts else { return Err(Error::Check("ssh_keys needs at least two hosts".into())) };
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    for h in hosts {
        sshd_key_only(h, hosts).await?;
        if let Some(other) = owner.insert(h.ssh_host_key().await?, &h.name) {
            return Err(Error::Check(format!("{} and {other} have the same SSH host key: either can pass for the other", h.name)));
        }
    }
    let pinned = pinned_keys_match(hosts, &owner).await?;
    if pinned == 0 {
        return Err(Error::Check(format!(
            "no known_hosts line on {} pins another lab host's key ({}): their SSH clients have nothing to tell a lab host from an impostor",
            names(hosts),
            SSH_USERS.join(", ")
        )));
    }
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
    Ok(format!(
        "{}: sshd key-only for every lab peer and user (no password, keyboard-interactive or root; `Match` blocks included), {} distinct host keys, {pinned} pinned known_hosts line(s) match (hashed ones included); a password login answers `Permission denied (publickey)`",
        names(hosts),
        owner.len()
    )
    .into())
}

fn names(hosts: &[&Host]) -> String {
    hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// sshd on `h` is key-only as `sshd -T` says it, and as it says it for a
/// connection from each lab peer as each user (`-C`), so a `Match` block
/// that allows passwords for some of them is seen.
async fn sshd_key_only(h: &Host, hosts: &[&Host]) -> Result<()> {
    let mut script = String::from("echo '== (no connection)'; sshd -T\n");
    for peer in hosts.iter().filter(|p| p.name != h.name) {
        for user in SSH_USERS {
            let spec = format!("user={user},host={},addr={},laddr={},lport=22", peer.name, peer.ip, h.ip);
            script.push_str(&format!("echo '== {user} from {}'; sshd -T -C {spec}\n", peer.name));
        }
    }
    let out = h.probe(&Cmd::shell(script)).await?;
    if !out.success() {
        return Err(Error::Check(format!("`sshd -T` failed on {}: {}", h.name, out.combined().trim())));
    }
    for block in out.stdout.split("== ").filter(|b| !b.trim().is_empty()) {
        let (who, cfg) = block.split_once('\n').unwrap_or((block, ""));
        if let Some(missing) = SSHD_KEY_ONLY.iter().find(|want| !cfg.lines().any(|l| l.trim() == **want)) {
            return Err(Error::Check(format!("sshd on {} does not say `{missing}` for {who} (see `sshd -T -C ...` there)", h.name)));
        }
    }
    Ok(())
}

/// Every known_hosts line (root, dba, postgres) naming a lab host by name or
/// address, hashed or not (`ssh-keygen -F` finds both), holds that host's
/// key; returns how many there were.
async fn pinned_keys_match(hosts: &[&Host], owner: &BTreeMap<String, &str>) -> Result<usize> {
    let mut script = String::new();
    // Each user's file, and the global one every SSH client also trusts.
    let files =
        SSH_USERS.iter().map(|u| (u.to_string(), format!("~{u}/.ssh/known_hosts"))).chain([("global".to_string(), "/etc/ssh/ssh_known_hosts".to_string())]);
    for (owner, file) in files {
        for peer in hosts {
            for n in [peer.name.clone(), peer.ip.to_string()] {
                script.push_str(&format!("f={file}; [ -f $f ] && ssh-keygen -F '{n}' -f $f | grep -v '^#' | sed 's|^|{owner} {} |'\n", peer.name));
            }
        }
    }
    script.push_str("true\n");
    let mut seen = 0;
    for h in hosts {
        let text = h.probe(&Cmd::shell(&script)).await?.stdout;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [user, peer, _names, kind, body, ..] = f[..] else { continue };
            if owner.get(&format!("{kind} {body}")).copied() != Some(peer) {
                return Err(Error::Check(format!("{} trusts a key for {peer} ({user} known_hosts) that is not {peer}'s host key: {kind} {body}", h.name)));
            }
            seen += 1;
        }
    }
    Ok(seen)
}
