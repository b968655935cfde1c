//! Security of the setup as built: the replication role holds only what it
//! needs, its password is stored as a SCRAM verifier, and pg_hba turns away
//! hosts and passwords it should, as the primary's own log records it.

use super::eq;
use crate::error::{Error, Result};
use crate::lab::{Cmd, Host};
use crate::time::Deadline;

/// LOGIN and REPLICATION and nothing more; the stored password a SCRAM
/// verifier (never read out: only its prefix is compared).
pub async fn replication_role(host: &Host, role: &str) -> Result<String> {
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
    Ok(format!("{role} on {}: LOGIN and REPLICATION only, no role memberships; password stored as a SCRAM-SHA-256 verifier", host.name))
}

/// A replication connection as `role` from `outsider` is refused by
/// pg_hba, and one from `standby` with a wrong password fails; each is
/// asserted from the primary's log lines written during the check.
pub async fn hba_refuses(primary: &Host, standby: &Host, outsider: &Host, role: &str) -> Result<String> {
    let conninfo = format!("host={} user={role} dbname=replication replication=true connect_timeout=5", primary.ip);
    let attempt = |password: &str| {
        Cmd::shell(format!("PGPASSWORD={password} psql '{conninfo}' -Xc IDENTIFY_SYSTEM"))
            .user("postgres")
            .any_status()
            .display(format!("psql '{conninfo}' -c IDENTIFY_SYSTEM  # PGPASSWORD={password}"))
    };
    let offset = primary.log_offset().await?;
    let out = outsider.exec(attempt("not-the-password")).await?;
    eq(&format!("exit status of a replication connection from {}", outsider.name), out.status, 2)?;
    let pattern = format!(r#"no pg_hba\.conf entry for replication connection from host "{}", user "{role}""#, regex::escape(&outsider.ip.to_string()));
    let refused = primary.wait_for_log(&pattern, offset, Deadline::standard()).await?;

    let offset = primary.log_offset().await?;
    let out = standby.exec(attempt("not-the-password")).await?;
    eq(&format!("exit status of a wrong password from {}", standby.name), out.status, 2)?;
    let wrong = primary.wait_for_log(&format!(r#"password authentication failed for user "{role}""#), offset, Deadline::standard()).await?;
    Ok(format!("{}: {}; {}: {}", outsider.name, tail(&refused), standby.name, tail(&wrong)))
}

/// A log line from its message on (no timestamp and pid).
fn tail(line: &str) -> String {
    line.find("FATAL:").map(|i| line[i..].to_string()).unwrap_or_else(|| line.to_string())
}

/// Every host: no default route, and an outside address unreachable.
pub async fn no_route_out(hosts: &[&Host]) -> Result<String> {
    for h in hosts {
        if !h.sealed().await? {
            return Err(Error::Check(format!("{} has a route out of the lab (see `ip route` there)", h.name)));
        }
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    Ok(format!("no route out of the lab on {}: no default route; `ip route get 192.0.2.1`: Network is unreachable", names.join(", ")))
}
