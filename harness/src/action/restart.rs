//! `restart = true`: the engine restarts the host's container; systemd
//! boots again and the cluster comes back by itself, as after a reboot.

use serde::Deserialize;

use super::{timed, Act, Cx};
use crate::error::Result;
use crate::lab::Hosts;
use crate::outcome::Fault;

/// Fault: the whole host restarted (the engine stops its container,
/// systemd shutting down cleanly, then starts it: systemd boots again and
/// brings the cluster back); its address stays. `true`: the step ends when
/// the host is ready again (its PostgreSQL answers). `"booted"`: it ends
/// when systemd has booted, whether or not the cluster can yet take
/// connections (a standby whose `restore_command` reaches a frozen host
/// may not for long): a fault schedule waits for that later, after healing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Written")]
pub(crate) enum Restart {
    Ready,
    Booted,
}

/// What a file may say.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Flag(bool),
    Until(String),
}

impl TryFrom<Written> for Restart {
    type Error = String;
    fn try_from(w: Written) -> std::result::Result<Self, String> {
        match w {
            Written::Flag(true) => Ok(Restart::Ready),
            Written::Until(s) if s == "booted" => Ok(Restart::Booted),
            Written::Flag(false) => Err("`false` does nothing; leave the key out".into()),
            Written::Until(s) => Err(format!("`{s}`: restart is `true` (ends when the host is ready) or \"booted\" (ends when systemd has booted)")),
        }
    }
}

impl schemars::JsonSchema for Restart {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Restart".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "oneOf": [{ "type": "boolean", "const": true }, { "type": "string", "const": "booted" }] })
    }
}

impl Act for Restart {
    const FAULT: Fault = Fault::Within;

    fn waits_for_boot(&self) -> bool {
        true
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let ready = *self == Restart::Ready;
        let what = if ready { "ready again" } else { "booted" };
        timed(format!("{} restarted, {what}", cx.host.name), cx.host.restart_host(ready)).await
    }
}
