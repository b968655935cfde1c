//! `latency = { to, ms }`: delay toward a peer's PostgreSQL.

use std::num::NonZeroU32;
use std::time::Instant;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::{Act, Cx, Named};
use crate::error::Result;
use crate::lab::{Host, Hosts};
use crate::outcome::Fault;
use crate::time::Deadline;

/// Fault: `{ to = "primary", ms = 50 }` delays the step's host's
/// connections to the peer's PostgreSQL by `ms` each way (its replication
/// connection is restarted to take the new path); `heal` with the peer takes
/// it away. netem where the kernel has it, else a delaying relay (the step's
/// outcome says which ran).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LatencyAction")]
pub(crate) struct Latency {
    /// The peer.
    #[schemars(with = "String")]
    pub to: Spanned<String>,
    /// Milliseconds added each way.
    pub ms: NonZeroU32,
}

impl Act for Latency {
    const FAULT: Fault = Fault::Starts { undo: Some("heal") };

    fn named(&self) -> Vec<Named<'_>> {
        vec![Named::pg("latency.to", &self.to)]
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let peer = cx.lab.host(self.to.get_ref())?;
        let how = cx.host.add_latency(peer, self.ms.get()).await?;
        Ok(format!("{how}; {}", restream(cx.host, peer).await?))
    }
}

/// A replication connection made before a change of path goes on as it
/// was: its walsender is ended so the standby connects again, by the new path.
async fn restream(standby: &Host, primary: &Host) -> Result<String> {
    let t = Instant::now();
    let since = primary.safe_psql("SELECT now()").await?;
    let ended = primary.safe_psql(&format!("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication WHERE client_addr = '{}'", standby.ip)).await?;
    if ended == "0" {
        return Ok(format!("no replication connection from {} to restart", standby.name));
    }
    let q = format!("SELECT count(*) > 0 FROM pg_stat_replication WHERE client_addr = '{}' AND state = 'streaming' AND backend_start > '{since}'", standby.ip);
    primary.poll_query_until(&q, "t", Deadline::standard()).await?;
    Ok(format!("{}'s replication connection restarted, streaming again after {} ms", standby.name, t.elapsed().as_millis()))
}
