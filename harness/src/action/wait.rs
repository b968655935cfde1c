//! `wait = "..."`: a condition polled with the step's deadline, or a
//! schedule's hold.

use std::time::Instant;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::{Act, Cx, Named};
use crate::error::Result;
use crate::lab::{Host, Hosts, LsnKind};
use crate::vocab::Needs;

/// Waits for a condition, with the step's deadline.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "WaitAction")]
pub(crate) enum Wait {
    /// The postmaster is gone (no postmaster.pid).
    PgDown,
    /// PostgreSQL answers the harness.
    PgUp,
    /// The host is a standby whose WAL receiver streams.
    Streaming,
    /// The step's host streams from that primary and has replayed the
    /// primary's WAL position as of the step's start; how long that took
    /// is the step's outcome (a catch-up time).
    CaughtUpWith(#[schemars(with = "String")] Spanned<String>),
    /// Holds this many milliseconds: the time between two events of a
    /// fault schedule (`pglab chaos` writes these), never a wait for a
    /// condition; nothing runs on the host.
    HoldMs(u64),
}

impl Wait {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Wait::PgDown => "pg_down",
            Wait::PgUp => "pg_up",
            Wait::Streaming => "streaming",
            Wait::CaughtUpWith(_) => "caught_up_with",
            Wait::HoldMs(_) => "hold_ms",
        }
    }
}

impl Act for Wait {
    fn needs(&self) -> Needs {
        match self {
            Wait::HoldMs(_) => Needs::Any,
            _ => Needs::Postgres,
        }
    }

    fn named(&self) -> Vec<Named<'_>> {
        match self {
            Wait::CaughtUpWith(h) => vec![Named::pg("wait.caught_up_with", h)],
            _ => Vec::new(),
        }
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let (t, host, deadline) = (Instant::now(), cx.host, cx.deadline);
        match self {
            Wait::CaughtUpWith(primary) => return caught_up(cx.lab.host(primary.get_ref())?, host).await,
            Wait::HoldMs(ms) => {
                tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
                return Ok(format!("held {ms} ms"));
            }
            Wait::PgDown => host.wait_for_pg_down(deadline).await?,
            Wait::PgUp => host.wait_for_pg_up(deadline).await?,
            Wait::Streaming => host.wait_for_streaming(deadline).await?,
        }
        let ms = t.elapsed().as_millis();
        host.note("pglab (harness)", &format!("wait until {}", self.name()), &format!("reached after {ms} ms"), t.elapsed());
        Ok(format!("{} after {ms} ms", self.name()))
    }
}

/// Waits until `standby` streams from `primary` and has replayed the
/// primary's WAL position as of now.
async fn caught_up(primary: &Host, standby: &Host) -> Result<String> {
    let t = Instant::now();
    let lsn = primary.wait_for_catchup(standby, LsnKind::Replay, None).await?;
    let ms = t.elapsed().as_millis();
    standby.note("pglab (harness)", &format!("wait until caught up with {} at {lsn}", primary.name), &format!("reached after {ms} ms"), t.elapsed());
    Ok(format!("caught up with {} ({lsn}) after {ms} ms", primary.name))
}
