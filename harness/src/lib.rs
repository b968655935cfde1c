//! pglab: disposable PostgreSQL + pgBackRest replication labs in Docker, the
//! tutorial as declarative scenarios, and checks that prove the outcome.

pub mod bundle;
pub mod check;
pub mod cli;
pub mod config;
pub mod docker;
pub mod error;
pub mod exec;
pub mod host;
pub mod image;
pub mod lab;
pub mod platform;
pub mod progress;
pub mod reaper;
pub mod runner;
pub mod scenario;
pub mod state;
pub mod report;
pub mod wait;

pub use error::{Error, Result};
pub use exec::{Cmd, ExecOutput};
pub use host::Host;
pub use image::HostImage;
pub use lab::{Hosts, Keep, Lab, LabSpec};
pub use platform::Platform;
