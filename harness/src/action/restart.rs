//! `restart = true`: the engine restarts the host's container; systemd
//! boots again and the cluster comes back by itself, as after a reboot.

use serde::Deserialize;

use super::{timed, Act, Boot, Cx, Yes};
use crate::error::Result;
use crate::lab::Hosts;
use crate::outcome::Fault;

/// Fault: `true` restarts the whole host (the engine stops its container,
/// systemd shutting down cleanly, then starts it: systemd boots again and
/// brings the cluster back). The step ends when the host is ready again;
/// its address stays.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Restart(pub Yes);

impl Act for Restart {
    const FAULT: Fault = Fault::Within;

    fn boot(&self) -> Boot<'_> {
        Boot::Own
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        timed(format!("{} restarted, ready again", cx.host.name), cx.host.restart_host()).await
    }
}
