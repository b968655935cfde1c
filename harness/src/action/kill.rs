//! `kill = "postmaster" | "host"`: SIGKILL of the postmaster, or a power cut.

use serde::Deserialize;

use super::{timed, Act, Cx};
use crate::error::Result;
use crate::lab::Hosts;
use crate::outcome::Fault;
use crate::vocab::{KillWhat, Needs};

/// Fault: `"postmaster"` (SIGKILL; crash recovery on the next start) or
/// `"host"` (the engine kills the whole host).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Kill(pub KillWhat);

impl Act for Kill {
    const FAULT: Fault = Fault::Starts { undo: None };

    fn needs(&self) -> Needs {
        match self.0 {
            KillWhat::Postmaster => Needs::Postgres,
            KillWhat::Host => Needs::Any,
        }
    }

    fn waits_for_boot(&self) -> bool {
        true
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        timed(format!("{:?} of {} killed, gone", self.0, cx.host.name), cx.host.kill(self.0)).await
    }
}
