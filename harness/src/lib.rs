#![deny(missing_docs)]
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
//! Layers, each importing only those below it:
//! `cli` → `run` → `check` → `lab` → `engine` → `outcome`/`scenario`/
//! `transcript`/`time`/`platform`/`error`; `report` renders `outcome` and
//! imports nothing that runs; `progress` is what a person watching sees.
//! Modules not shown in these docs are the CLI's and the harness's own.

pub(crate) mod action;
pub mod check;
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod engine;
pub mod error;
pub mod lab;
#[doc(hidden)]
pub mod outcome;
pub mod platform;
#[doc(hidden)]
pub mod progress;
#[doc(hidden)]
pub mod report;
pub mod run;
#[doc(hidden)]
pub mod scenario;
pub mod time;
#[doc(hidden)]
pub mod transcript;
pub(crate) mod vars;
pub mod vocab;

pub use engine::image::HostImage;
pub use error::{Error, Result};
pub use lab::{Cmd, ExecOutput, Host, Hosts, Keep, Lab, LabSpec};
pub use platform::Platform;
pub use run::ScenarioLab;

/// What a test of your own needs: `use pglab::prelude::*;`.
pub mod prelude {
    pub use crate::error::{Error, Result};
    pub use crate::lab::{Br, BrCommand, Cmd, ExecOutput, Host, Hosts, Keep, Lab, LabSpec, Lsn, LsnKind, StopMode};
    pub use crate::platform::Platform;
    pub use crate::run::ScenarioLab;
    pub use crate::vocab::{HostKind, KillWhat};
    pub use crate::time::Deadline;
}
