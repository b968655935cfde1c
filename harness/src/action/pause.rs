//! `pause` and `resume`: every process of a host frozen (`docker pause`), and thawed.

use serde::Deserialize;

use super::{Act, Cx, Yes};
use crate::error::Result;
use crate::lab::Hosts;
use crate::outcome::Fault;

/// Fault: `true` freezes every process of the host (`docker pause`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Pause(pub Yes);

/// `true` thaws a paused host.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Resume(pub Yes);

impl Act for Pause {
    const FAULT: Fault = Fault::Starts { undo: Some("resume") };

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        cx.host.pause().await?;
        Ok(format!("{} frozen", cx.host.name))
    }
}

impl Act for Resume {
    const FAULT: Fault = Fault::Ends;

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        cx.host.resume().await?;
        Ok(format!("{} running again", cx.host.name))
    }
}
