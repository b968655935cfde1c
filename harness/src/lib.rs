//! pglab: disposable PostgreSQL + pgBackRest replication labs in Docker, the
//! tutorial as declarative scenarios, and checks that prove the outcome.
//!
//! Layers, each importing only those below it:
//! `cli` → `run` → `check` → `lab` → `engine` → `outcome`/`scenario`/
//! `transcript`/`time`/`platform`/`error`; `report` renders `outcome` and
//! imports nothing that runs; `progress` is what a person watching sees.

pub mod check;
pub mod cli;
pub mod engine;
pub mod error;
pub mod lab;
pub mod outcome;
pub mod platform;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenario;
pub mod time;
pub mod transcript;

pub use engine::image::HostImage;
pub use error::{Error, Result};
pub use lab::{Cmd, ExecOutput, Host, Hosts, Keep, Lab, LabSpec};
pub use platform::Platform;
