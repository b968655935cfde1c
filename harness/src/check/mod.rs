//! Built-in checks: each proves one outcome on the running lab through
//! tokio-postgres and the host verbs (pgBackRest's own JSON included), and
//! says what it saw, or fails with what it saw instead. A check never calls
//! the runner; each is a function you can call on your own lab's hosts.
//!
//! ```no_run
//! # async fn demo() -> pglab::Result<()> {
//! use pglab::prelude::*;
//! let lab = ScenarioLab::new("tutorial").through("8-streaming").start().await?;
//! let said = pglab::check::standby_data(lab.host("primary")?, lab.host("standby")?).await?;
//! println!("{said}"); // standby in recovery, caught up with primary; 1 table(s) equal: ...
//! pglab::check::check_and_verify(lab.host("primary")?, "tutorial").await?;
//! lab.shutdown().await
//! # }
//! ```

mod backup;
mod pitr;
mod replication;
mod security;
mod writes;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::lab::{Host, Hosts};
use crate::outcome::CheckOutcome;
use crate::scenario::CheckDecl;

pub use backup::{check_and_verify, cron_fires, cron_line, full_backups, retention};
pub use pitr::pitr;
pub use replication::{not_streaming, same_data, standby_data, streaming};
pub use security::{hba_refuses, no_route_out, replication_role, ssh_keys};
pub use writes::writes;

/// Measurements a check reports besides its verdict.
pub type Metrics = BTreeMap<String, f64>;

/// Named equality, the building block of checks.
pub fn eq<T: PartialEq + std::fmt::Debug>(name: &str, got: T, want: T) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Check(format!("{name}: got {got:?}, expected {want:?}")))
    }
}

/// Runs one check; its `at` is left for the caller, who knows the clock.
pub async fn run<L: Hosts>(lab: &L, decl: &CheckDecl) -> CheckOutcome {
    let start = Instant::now();
    let mut metrics = Metrics::new();
    let result = dispatch(lab, decl, &mut metrics).await;
    let (passed, detail) = match result {
        Ok(d) => (true, d),
        Err(e) => (false, lab.transcript().redact(&e.to_string())),
    };
    CheckOutcome { name: decl.name().to_string(), passed, detail, metrics, at: Duration::ZERO, elapsed: start.elapsed() }
}

async fn dispatch<L: Hosts>(lab: &L, decl: &CheckDecl, metrics: &mut Metrics) -> Result<String> {
    match decl {
        CheckDecl::StandbyData { primary, standby } => replication::standby_data(lab.host(primary)?, lab.host(standby)?).await,
        CheckDecl::Streaming { primary, standby, inserts, deadline_s } => {
            replication::streaming(lab.host(primary)?, lab.host(standby)?, *inserts, Duration::from_secs(*deadline_s), metrics).await
        }
        CheckDecl::SameData { primary, copy } => replication::same_data(lab.host(primary)?, lab.host(copy)?).await,
        CheckDecl::NotStreaming { standby, log } => replication::not_streaming(lab.host(standby)?, log).await,
        CheckDecl::Pitr { primary, target_host, like, stanza, targets } => {
            let like = like.as_deref().filter(|l| l != target_host).map(|l| lab.host(l)).transpose()?;
            pitr::pitr(lab.host(primary)?, lab.host(target_host)?, like, stanza, targets, metrics).await
        }
        CheckDecl::Retention { host, stanza, backups, expect_full } => backup::retention(lab.host(host)?, stanza, *backups, *expect_full, metrics).await,
        CheckDecl::CronLine { host, line } => backup::cron_line(lab.host(host)?, line).await,
        CheckDecl::CronFires { host, stanza } => backup::cron_fires(lab.host(host)?, stanza, metrics).await,
        CheckDecl::Pgbackrest { host, stanza } => backup::check_and_verify(lab.host(host)?, stanza).await,
        CheckDecl::ReplicationRole { host, role } => security::replication_role(lab.host(host)?, role).await,
        CheckDecl::HbaRefuses { primary, standby, outsider, role } => {
            security::hba_refuses(lab.host(primary)?, lab.host(standby)?, lab.host(outsider)?, role).await
        }
        CheckDecl::NoRouteOut { hosts } => {
            let hosts = hosts.iter().map(|h| lab.host(h)).collect::<Result<Vec<_>>>()?;
            security::no_route_out(&hosts).await
        }
        CheckDecl::SshKeys { hosts } => {
            let hosts = hosts.iter().map(|h| lab.host(h)).collect::<Result<Vec<_>>>()?;
            security::ssh_keys(&hosts).await
        }
        CheckDecl::Writes { writer, host, max_lost } => writes::writes(lab, writer, lab.host(host)?, *max_lost, metrics).await,
    }
}

/// Leaves the primary as a check found it: its table gone and no dirty
/// pages, so the scenario's next backup (a spread checkpoint: about 100 ms
/// per dirty page here) is not slowed by the check's writes.
async fn drop_and_checkpoint(primary: &Host, table: &str) -> Result<()> {
    primary.safe_psql(&format!("DROP TABLE {table}")).await?;
    primary.safe_psql("CHECKPOINT").await?;
    Ok(())
}
