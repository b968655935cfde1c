//! `stop = "fast" | "immediate"`: the cluster stopped, waited until down.

use serde::Deserialize;

use super::{timed, Act, Cx};
use crate::error::Result;
use crate::lab::Hosts;
use crate::outcome::Fault;
use crate::vocab::{Needs, StopMode};

/// Stop the step's cluster: `"fast"` or `"immediate"`; waits until it is down.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Stop(pub StopMode);

impl Act for Stop {
    const FAULT: Fault = Fault::Starts { undo: None };

    fn needs(&self) -> Needs {
        Needs::Postgres
    }

    fn waits_for_boot(&self) -> bool {
        true
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        timed(format!("stopped ({:?})", self.0), cx.host.stop(self.0)).await
    }
}
