//! Built-in checks: each proves one outcome on the running lab through
//! tokio-postgres and the host verbs (pgBackRest's own JSON included), and
//! says what it saw, or fails with what it saw instead. A check never calls
//! the runner; each is a function you can call on your own lab's hosts.
//!
//! ```no_run
//! # async fn demo() -> pglab::Result<()> {
//! use pglab::prelude::*;
//! let lab = ScenarioLab::new("tutorial").through("8-streaming").start().await?;
//! let seen = pglab::check::standby_data(lab.host("primary")?, lab.host("standby")?).await?;
//! println!("{seen}"); // standby in recovery, caught up with primary; 1 table(s) equal: ...
//! pglab::check::check_and_verify(lab.host("primary")?, "tutorial").await?;
//! lab.shutdown().await
//! # }
//! ```

mod archive;
mod backup;
mod cascade;
mod cipher;
mod delay;
mod pitr;
mod pitr_acked;
mod replication;
mod repo_info;
mod security;
mod slot;
mod sync;
mod writes;

use std::future::Future;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lab::{Host, Hosts};
use crate::outcome::{CheckOutcome, Figures, Verdict};
use crate::vocab::Needs;

pub use archive::archive_continuous;
pub use backup::{check_and_verify, cron_fires, cron_line, full_backups, retention};
pub use cascade::cascade;
pub use cipher::repo_encrypted;
pub use delay::replay_delay;
pub use pitr::pitr;
pub use pitr_acked::pitr_acked;
pub use replication::{not_streaming, same_data, standby_data, streaming};
pub use repo_info::{repo_info, BackupType};
pub use security::{hba_refuses, no_route_out, replication_role, ssh_keys};
pub use slot::{slot, WalStatus, Want as SlotWant};
pub use sync::{sync_rep, SyncState};
pub use writes::writes;

pub(crate) use pitr::Pitr;

/// What a check saw when it passed: a sentence, and figures with units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// What was seen, in a sentence or two.
    pub said: String,
    /// What was measured on the way.
    pub figures: Figures,
}

impl Evidence {
    /// Evidence of what was seen, with figures to follow.
    pub fn new(said: impl Into<String>) -> Self {
        Evidence { said: said.into(), figures: Figures::default() }
    }

    /// The same evidence with these figures.
    pub fn with(mut self, figures: Figures) -> Self {
        self.figures = figures;
        self
    }
}

impl From<String> for Evidence {
    fn from(said: String) -> Self {
        Evidence::new(said)
    }
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.said)
    }
}

/// Named equality, the building block of checks.
pub fn eq<T: PartialEq + std::fmt::Debug>(name: &str, got: T, want: T) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Check(format!("{name}: got {got:?}, expected {want:?}")))
    }
}

/// A host a check names, by the key that names it, and what it needs of it.
pub(crate) struct Uses<'a> {
    pub key: &'static str,
    pub host: &'a str,
    pub needs: Needs,
}

fn pg<'a>(key: &'static str, host: &'a str) -> Uses<'a> {
    Uses { key, host, needs: Needs::Postgres }
}

fn any<'a>(key: &'static str, host: &'a str) -> Uses<'a> {
    Uses { key, host, needs: Needs::Any }
}

/// One built-in check: implemented by each check's parameter type, beside
/// the function that proves it.
pub(crate) trait Proof {
    /// Takes a minute or more; runs with `--slow` / `PGLAB_SLOW=1`.
    const SLOW: bool = false;
    /// Parameters that are regexes (a variable's value matches literally there).
    const REGEX_PARAMS: &'static [&'static str] = &[];
    /// The hosts it names.
    fn uses(&self) -> Vec<Uses<'_>>;
    /// What is wrong with its parameters beyond their types, by key.
    fn problems(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Proves it on the lab.
    fn prove<L: Hosts>(&self, lab: &L) -> impl Future<Output = Result<Evidence>> + Send;
}

/// The one registration table: a line per check, `name => Variant(type)`.
macro_rules! checks {
    ($($key:literal => $variant:ident($ty:ty),)*) => {
        /// A built-in check and its parameters. In the file the name is the
        /// `check` key beside them.
        #[derive(Debug, Deserialize, Serialize, Clone, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(tag = "check")]
        pub(crate) enum CheckDecl {
            $(#[serde(rename = $key)] $variant($ty),)*
        }

        impl CheckDecl {
            /// Every check's name, in the table's order.
            pub(crate) const NAMES: &'static [&'static str] = &[$($key),*];

            pub(crate) fn name(&self) -> &'static str {
                match self { $(CheckDecl::$variant(_) => $key,)* }
            }

            pub(crate) fn is_slow(&self) -> bool {
                match self { $(CheckDecl::$variant(_) => <$ty as Proof>::SLOW,)* }
            }

            pub(crate) fn regex_params(&self) -> &'static [&'static str] {
                match self { $(CheckDecl::$variant(_) => <$ty as Proof>::REGEX_PARAMS,)* }
            }

            pub(crate) fn uses(&self) -> Vec<Uses<'_>> {
                match self { $(CheckDecl::$variant(c) => c.uses(),)* }
            }

            pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
                match self { $(CheckDecl::$variant(c) => c.problems(),)* }
            }

            async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
                match self { $(CheckDecl::$variant(c) => c.prove(lab).await,)* }
            }
        }
    };
}

checks! {
    "standby_data" => StandbyData(replication::StandbyData),
    "streaming" => Streaming(replication::Streaming),
    "not_streaming" => NotStreaming(replication::NotStreaming),
    "pitr" => Pitr(pitr::Pitr),
    "retention" => Retention(backup::Retention),
    "cron_line" => CronLine(backup::CronLine),
    "cron_fires" => CronFires(backup::CronFires),
    "writes" => Writes(writes::Writes),
    "replication_role" => ReplicationRole(security::ReplicationRole),
    "hba_refuses" => HbaRefuses(security::HbaRefuses),
    "no_route_out" => NoRouteOut(security::NoRouteOut),
    "ssh_keys" => SshKeys(security::SshKeys),
    "same_data" => SameData(replication::SameData),
    "pgbackrest" => Pgbackrest(backup::Pgbackrest),
    "cascade" => Cascade(cascade::Cascade),
    "replay_delay" => ReplayDelay(delay::ReplayDelay),
    "slot" => Slot(slot::Slot),
    "sync_rep" => SyncRep(sync::SyncRep),
    "repo_encrypted" => RepoEncrypted(cipher::RepoEncrypted),
    "repo_info" => RepoInfo(repo_info::RepoInfo),
    "archive_continuous" => ArchiveContinuous(archive::ArchiveContinuous),
    "pitr_acked" => PitrAcked(pitr_acked::PitrAcked),
}

/// Runs one check; its `at` is left for the caller, who knows the clock.
pub(crate) async fn run<L: Hosts>(lab: &L, decl: &CheckDecl) -> CheckOutcome {
    let start = Instant::now();
    let (verdict, evidence, figures) = match decl.prove(lab).await {
        Ok(e) => (Verdict::Passed, lab.transcript().redact(&e.said), e.figures),
        Err(e) => (Verdict::Failed, lab.transcript().redact(&e.to_string()), Figures::default()),
    };
    CheckOutcome { name: decl.name().to_string(), verdict, evidence, figures, at: Duration::ZERO, elapsed: start.elapsed() }
}

/// Milliseconds since `t`, as a figure's value.
fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Leaves the primary as a check found it: its table gone and no dirty
/// pages, so the scenario's next backup (a spread checkpoint: about 100 ms
/// per dirty page here) is not slowed by the check's writes.
async fn drop_and_checkpoint(primary: &Host, table: &str) -> Result<()> {
    primary.safe_psql(&format!("DROP TABLE {table}")).await?;
    primary.safe_psql("CHECKPOINT").await?;
    Ok(())
}
