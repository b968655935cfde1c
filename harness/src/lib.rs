#![deny(missing_docs)]
#![warn(unreachable_pub)]
//! pglab: disposable PostgreSQL + pgBackRest replication labs in Docker,
//! for your own `cargo test`.
//!
//! A lab is a few hosts (systemd, PostgreSQL, sshd, cron; pgBackRest ready
//! to install) on a private Docker network. Start one bare
//! ([`LabSpec::start`]), or let a scenario set it up ([`ScenarioLab`]: the
//! corrected tutorial "Configuring Binary Replication with pgBackRest"
//! ships with pglab, so `ScenarioLab::new("tutorial")` gives you a primary,
//! a streaming standby and a pgBackRest repository). Then work on its
//! [`Host`]s with the verbs of PostgreSQL's TAP framework (`safe_psql`,
//! `poll_query_until`, `wait_for_catchup`, `stop`, `start`, `promote`),
//! run [`pgbackrest`](Host::pgbackrest) commands, break things
//! ([`Host::kill`], [`Host::partition`], [`Host::pause`]), prove outcomes with
//! the built-in [`check`]s, and talk to any host with a tokio-postgres
//! [`Client`](tokio_postgres::Client) of your own ([`Host::client`]).
//! Images are built offline on first use; nothing is ever pulled.
//!
//! ```no_run
//! use pglab::prelude::*;
//!
//! // In your tests: #[tokio::test(flavor = "multi_thread")]
//! async fn my_rows_survive_a_failover() -> Result<()> {
//!     let lab = ScenarioLab::new("tutorial").through("8-streaming").start().await?;
//!     let (primary, standby) = (lab.host("primary")?, lab.host("standby")?);
//!     primary.safe_psql("CREATE TABLE mine AS SELECT generate_series(1, 100) AS id").await?;
//!     primary.wait_for_catchup(standby, LsnKind::Replay, None).await?;
//!     primary.kill(KillWhat::Postmaster).await?;
//!     standby.promote().await?;
//!     standby.wait_for_promotion(Deadline::standard()).await?;
//!     assert_eq!(standby.safe_psql("SELECT count(*) FROM mine").await?, "100");
//!     lab.shutdown().await
//! }
//! ```
//!
//! A lab is removed exactly once: by [`Lab::shutdown`], or when dropped
//! (also when your test panics), unless it is kept
//! ([`ScenarioLab::keep_on_failure`], [`Keep`]); `pglab gc` removes what a
//! killed process left. Every resource carries the `pglab.lab` label.
//!
//! What it costs: the first lab on a machine builds its image (about 30 s);
//! a bare two-host lab starts in 2–4 s and takes about 120 MiB per host; the
//! tutorial through `8-streaming` takes about 20 s.
//!
//! Run a scenario file of your own and look at what it found with
//! [`run_scenario`] ([`Scenario::load`], [`RunOptions`], [`RunReport`]); reach
//! the engine (labs on it, images) through [`Engine`].
//!
//! Layers, each importing only those below it (`docs/architecture.md`):
//! `cli` → `run` → `scenario` → `action`/`check` → `lab`/`report` →
//! `engine`/`outcome` → `transcript` → `time`/`vars`/`vocab` → `error`/`platform`/`progress`.

pub(crate) mod action;
pub mod chaos;
pub mod check;
pub(crate) mod cli;
pub mod engine;
pub mod error;
pub mod lab;
pub mod outcome;
pub mod platform;
pub(crate) mod progress;
pub(crate) mod report;
pub mod run;
pub(crate) mod scenario;
pub mod time;
pub(crate) mod transcript;
pub(crate) mod vars;
pub mod vocab;

pub use engine::{Engine, HostImage};
pub use error::{Error, Result};
pub use lab::{Cmd, ExecOutput, Host, HostSpec, Hosts, Keep, Lab, LabSpec, ObjectStore};
pub use outcome::RunReport;
pub use platform::Platform;
pub use run::{run_scenario, RunOptions, ScenarioLab};
pub use scenario::{CheckOutline, GivenOutline, Outline, Scenario, StepOutline};
pub use transcript::{Transcript, TranscriptEntry, REDACTED};

/// The `pglab` program's entry point (its `main` calls only this); not an API.
#[doc(hidden)]
pub fn cli_main() -> i32 {
    cli::entry()
}

/// What a test of your own needs: `use pglab::prelude::*;`.
pub mod prelude {
    pub use crate::error::{Error, Result};
    pub use crate::lab::{Br, BrCommand, Cmd, ExecOutput, Host, Hosts, Keep, Lab, LabSpec, Lsn, LsnKind, ObjectStore, StopMode};
    pub use crate::platform::Platform;
    pub use crate::run::ScenarioLab;
    pub use crate::time::Deadline;
    pub use crate::vocab::{HostKind, KillWhat};
    pub use crate::{Engine, HostSpec, RunOptions, RunReport, Scenario};
}
