//! What a step does. Each action is one module: its parameters as a
//! scenario file writes them (serde types, whose doc comments are the
//! schema's and the reference's text), what it needs of the hosts it
//! names, whether it is a fault and what undoes it, and how it runs. A new
//! action is its module plus one line in [`actions!`] below; the names, the
//! fault list, the report's drawing and the schema are derived from that line.

mod config;
mod copy;
pub(crate) mod expect;
mod file;
mod kill;
mod known_host;
mod latency;
mod load;
mod partition;
mod pause;
mod restart;
mod shell;
mod sql;
mod stop;
mod volume;
mod wait;

use std::future::Future;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

pub(crate) use config::ConfigEdit;
pub(crate) use copy::Copy;
pub(crate) use expect::{judge, Expect, Miss};
pub(crate) use file::File;
pub(crate) use load::Load;
pub(crate) use wait::Wait;

use crate::error::{Problem, Result};
use crate::lab::{Host, Hosts};
use crate::outcome::Fault;
use crate::time::Deadline;
use crate::vars::Vars;
use crate::vocab::{HostKind, Needs};

/// What an action runs with.
pub(crate) struct Cx<'a, L: Hosts> {
    pub lab: &'a L,
    /// The step's host.
    pub host: &'a Host,
    /// The OS user the step names.
    pub user: &'a str,
    pub expect: &'a Expect,
    pub vars: &'a Vars,
    /// The step's deadline.
    pub deadline: Deadline,
}

/// What validation knows of the lab's hosts, for an action's own problems.
pub(crate) struct Lint<'a> {
    /// The step's host.
    pub host: &'a str,
    /// Where the action's value is in the file.
    pub at: Range<usize>,
    /// The volumes a host declares (`None`: no such host, said elsewhere).
    pub volumes: &'a dyn Fn(&str) -> Option<Vec<String>>,
}

/// A host an action names besides its step's own, and what it needs of it.
pub(crate) struct Named<'a> {
    /// The key naming it (`copy.from_host`).
    pub key: &'static str,
    pub host: &'a Spanned<String>,
    pub needs: Needs,
}

impl<'a> Named<'a> {
    pub(crate) fn any(key: &'static str, host: &'a Spanned<String>) -> Self {
        Named { key, host, needs: Needs::Any }
    }
    pub(crate) fn pg(key: &'static str, host: &'a Spanned<String>) -> Self {
        Named { key, host, needs: Needs::Postgres }
    }
}

/// One action: implemented by each module's parameter type.
pub(crate) trait Act {
    /// Whether it breaks something, mends it, or neither (for reports).
    const FAULT: Fault = Fault::No;
    /// What the step's own host must be able to do.
    fn needs(&self) -> Needs {
        Needs::Any
    }
    /// The other hosts it names.
    fn named(&self) -> Vec<Named<'_>> {
        Vec::new()
    }
    /// Whether it must not race its host's boot: when it talks to systemd
    /// or the cluster (the host's own cluster start settles for ~2 s). A
    /// peer's SSH host key is waited for by itself (sshd makes it early).
    fn waits_for_boot(&self) -> bool {
        false
    }
    /// What is wrong with it beyond its types.
    fn problems(&self, _lint: &Lint<'_>) -> Vec<Problem> {
        Vec::new()
    }
    /// Runs it; Ok says what was observed, for reports.
    fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> impl Future<Output = Result<String>> + Send;
}

/// The one registration table: a line per action, `key => Variant(type)`.
macro_rules! actions {
    ($($key:literal => $variant:ident($ty:ty),)*) => {
        /// What a step does: exactly one per step, named by its key.
        #[derive(Debug, Deserialize)]
        pub(crate) enum Action {
            $(#[serde(rename = $key)] $variant($ty),)*
        }

        impl Action {
            /// Every action's key, in the table's order.
            pub(crate) const NAMES: &'static [&'static str] = &[$($key),*];

            pub(crate) fn name(&self) -> &'static str {
                match self { $(Action::$variant(_) => $key,)* }
            }

            pub(crate) fn fault(&self) -> Fault {
                match self { $(Action::$variant(_) => <$ty as Act>::FAULT,)* }
            }

            /// The fault kind of the action with this key.
            #[cfg(test)]
            pub(crate) fn fault_of(key: &str) -> Option<Fault> {
                match key { $($key => Some(<$ty as Act>::FAULT),)* _ => None }
            }

            pub(crate) fn needs(&self) -> Needs {
                match self { $(Action::$variant(a) => a.needs(),)* }
            }

            pub(crate) fn named(&self) -> Vec<Named<'_>> {
                match self { $(Action::$variant(a) => a.named(),)* }
            }

            pub(crate) fn waits_for_boot(&self) -> bool {
                match self { $(Action::$variant(a) => a.waits_for_boot(),)* }
            }

            pub(crate) fn problems(&self, lint: &Lint<'_>) -> Vec<Problem> {
                match self { $(Action::$variant(a) => a.problems(lint),)* }
            }

            pub(crate) async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
                match self { $(Action::$variant(a) => a.run(cx).await,)* }
            }

            /// Each action's key and the schema of its value (its type's doc is the description).
            pub(crate) fn schemas(generator: &mut schemars::SchemaGenerator) -> Vec<(&'static str, schemars::Schema)> {
                vec![$(($key, generator.subschema_for::<$ty>()),)*]
            }
        }
    };
}

actions! {
    "run" => Run(shell::Run),
    "config" => Config(ConfigEdit),
    "sql" => Sql(sql::Sql),
    "file" => File(File),
    "copy" => Copy(Copy),
    "known_host" => KnownHost(known_host::KnownHost),
    "wait" => Wait(Wait),
    "partition" => Partition(partition::Partition),
    "heal" => Heal(partition::Heal),
    "latency" => Latency(latency::Latency),
    "kill" => Kill(kill::Kill),
    "stop" => Stop(stop::Stop),
    "pause" => Pause(pause::Pause),
    "resume" => Resume(pause::Resume),
    "restart" => Restart(restart::Restart),
    "load" => Load(Load),
    "fill" => Fill(volume::Fill),
    "free" => Free(volume::Free),
}

impl Action {
    /// The background load it starts or stops, when it is `load`.
    pub(crate) fn as_load(&self) -> Option<&Load> {
        match self {
            Action::Load(l) => Some(l),
            _ => None,
        }
    }

    /// Whether it leaves its host's PostgreSQL down and nothing else
    /// broken (a stop, or the postmaster killed): the host's next boot
    /// starts it again.
    pub(crate) fn downs_postgres(&self) -> bool {
        matches!(self, Action::Stop(_) | Action::Kill(kill::Kill(crate::vocab::KillWhat::Postmaster)))
    }

    /// Whether it returns only once its host's PostgreSQL answers.
    pub(crate) fn waits_for_postgres(&self) -> bool {
        matches!(self, Action::Wait(Wait::PgUp | Wait::Streaming | Wait::CaughtUpWith(_)))
    }
}

/// Whether a host of `kind` has what `needs` asks.
pub(crate) fn kind_has(kind: HostKind, needs: Needs) -> bool {
    crate::lab::kind::spec(kind).has(needs)
}

/// `true` in a file: a flag key that is there or not (`pause = true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "bool")]
pub(crate) struct Yes;

impl TryFrom<bool> for Yes {
    type Error = String;
    fn try_from(b: bool) -> std::result::Result<Self, String> {
        if b {
            Ok(Yes)
        } else {
            Err("`false` does nothing; leave the key out".into())
        }
    }
}

impl schemars::JsonSchema for Yes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Yes".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "boolean", "const": true })
    }
}

/// What was done, and how long it took.
async fn timed(what: String, done: impl Future<Output = Result<()>>) -> Result<String> {
    let t = std::time::Instant::now();
    done.await?;
    Ok(format!("{what} after {} ms", t.elapsed().as_millis()))
}

/// What is on the host at `path` already, for an append: a missing file is
/// empty; a file that cannot be read is an error (never overwritten).
async fn existing(host: &Host, path: &str) -> Result<Vec<u8>> {
    Ok(host.stat_read(path).await?.map(|f| f.content).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_that_starts_names_an_action_that_ends_it() {
        for key in Action::NAMES {
            if let Some(Fault::Starts { undo: Some(undo) }) = Action::fault_of(key) {
                assert_eq!(Action::fault_of(undo), Some(Fault::Ends), "{key}'s undo `{undo}` is an action that ends a fault");
            }
        }
        assert!(Action::NAMES.contains(&"restart"));
    }
}
