//! `load = { writer | pgbench }`: background writes on the step's host.

use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::partition::names;
use super::{Act, Cx, Lint, Named};
use crate::error::{Error, Problem, Result};
use crate::lab::Hosts;
use crate::vocab::Needs;

/// A background load on the step's host, started or stopped, of two kinds: `writer`, the harness's writer (one
/// row per transaction, every acknowledged commit remembered, see check
/// `writes`), or `pgbench`, PostgreSQL's own benchmark run inside the host
/// (TPC-B-like transactions; tables made with `pgbench -i` when missing).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LoadAction")]
pub(crate) struct Load {
    /// The writer's name, for the step that stops it and for check `writes`.
    pub writer: Option<String>,
    /// A pgbench run's name, for the step that stops it.
    pub pgbench: Option<String>,
    /// pgbench clients (connections).
    #[serde(default = "default_clients")]
    pub clients: NonZeroU32,
    /// Stop it (its summary becomes the step's outcome) instead of starting
    /// it. A pgbench run that ended by itself before it was stopped fails the step.
    #[serde(default)]
    pub stop: bool,
    /// Hosts it moves to, in order, when the step's host stops taking
    /// writes: the first that accepts a connection and is not in recovery
    /// (libpq's `target_session_attrs=read-write`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub failover: Vec<Spanned<String>>,
    /// Its table (id, host, at), created on the step's host if missing.
    #[serde(default = "default_load_table")]
    pub table: String,
    /// Milliseconds between commits.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: NonZeroU64,
}

impl Load {
    /// Which load it is, by name.
    pub(crate) fn kind(&self) -> Result<LoadKind<'_>, String> {
        match (&self.writer, &self.pgbench) {
            (Some(w), None) => Ok(LoadKind::Writer(w)),
            (None, Some(b)) => Ok(LoadKind::Pgbench(b)),
            _ => Err("`load` needs exactly one of `writer = \"NAME\"` or `pgbench = \"NAME\"`".into()),
        }
    }
}

/// The two kinds of background load.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LoadKind<'a> {
    Writer(&'a str),
    Pgbench(&'a str),
}

fn default_clients() -> NonZeroU32 {
    NonZeroU32::new(4).expect("4")
}
fn default_load_table() -> String {
    "pglab_writes".into()
}
fn default_interval_ms() -> NonZeroU64 {
    NonZeroU64::new(10).expect("10")
}

impl Act for Load {
    fn needs(&self) -> Needs {
        Needs::Postgres
    }

    fn named(&self) -> Vec<Named<'_>> {
        self.failover.iter().map(|h| Named::pg("load.failover", h)).collect()
    }

    fn problems(&self, lint: &Lint<'_>) -> Vec<Problem> {
        self.kind().err().map(|e| Problem::new(Some(lint.at.clone()), e, "here")).into_iter().collect()
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let host = cx.host;
        match self.kind().map_err(Error::Usage)? {
            LoadKind::Writer(name) => self.writer(cx, name).await,
            LoadKind::Pgbench(name) if self.stop => Ok(format!("pgbench {name}: {}", host.pgbench_stop(name).await?)),
            LoadKind::Pgbench(name) => {
                host.pgbench_start(name, self.clients.get()).await?;
                Ok(format!("pgbench {name} running: {} clients", self.clients))
            }
        }
    }
}

impl Load {
    async fn writer<L: Hosts>(&self, cx: &Cx<'_, L>, name: &str) -> Result<String> {
        let (lab, host) = (cx.lab, cx.host);
        if self.stop {
            let (table, log) = lab.workloads().stop(name).await?;
            host.note("pglab (harness)", &format!("stop writer {name}"), &log.summary(), Duration::ZERO);
            return Ok(format!("writer {name} into {table}: {}", log.summary()));
        }
        let table = cx.vars.subst(&self.table)?;
        let mut hosts = vec![host];
        for f in &self.failover {
            hosts.push(lab.host(f.get_ref())?);
        }
        lab.workloads().start(name, &table, &hosts, Duration::from_millis(self.interval_ms.get())).await?;
        let what = format!("start writer {name}: a commit into {table} every {} ms on the first writable of {}", self.interval_ms, names(&hosts));
        host.note("pglab (harness)", &what, "running in the background", Duration::ZERO);
        Ok(format!("writer {name} running"))
    }
}
