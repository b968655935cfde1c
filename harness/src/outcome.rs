//! What a run found, as data: steps, checks, timings. Filled by the run,
//! read by the renderers in `report`; nothing here runs anything.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::Failure;
use crate::platform::Platform;
use crate::transcript::TranscriptEntry;
use crate::vocab::{Defect, HostKind, Role};

/// How long each phase of `Lab::start` took, for reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StartTimings {
    #[serde(with = "crate::time::millis")]
    /// Creating the lab's network.
    pub network: Duration,
    #[serde(with = "crate::time::millis")]
    /// Creating and starting every host's container.
    pub containers: Duration,
    /// Until every host's PostgreSQL answers the harness.
    #[serde(with = "crate::time::millis")]
    pub sql_ready: Duration,
    #[serde(with = "crate::time::millis")]
    /// All of it.
    pub total: Duration,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Its action did what `expect` asks.
    Passed,
    /// It did not; the run stopped.
    Failed,
    /// A signal arrived while it ran; it was stopped.
    Interrupted,
    /// Not for this platform (`when`); counts as done.
    Skipped,
}

impl CheckOutcome {
    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }

    /// A check that failed before it could measure anything.
    pub fn failed(name: impl Into<String>, evidence: String, at: Duration, elapsed: Duration) -> Self {
        CheckOutcome { name: name.into(), verdict: Verdict::Failed, evidence, figures: Figures::default(), at, elapsed }
    }
}

impl StepStatus {
    /// Four columns, for lines of finished steps.
    pub fn mark(self) -> &'static str {
        match self {
            StepStatus::Passed => "ok  ",
            StepStatus::Failed => "FAIL",
            StepStatus::Interrupted => "INT ",
            StepStatus::Skipped => "skip",
        }
    }

    /// As progress lines and tables show it.
    pub fn word(self) -> &'static str {
        match self {
            StepStatus::Passed => "ok",
            StepStatus::Failed => "FAILED",
            StepStatus::Interrupted => "INTERRUPTED",
            StepStatus::Skipped => "skipped",
        }
    }
}

/// What a step's action does to its host, as the report draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Not a fault.
    No,
    /// Breaks something on its host until an action that `Ends` one runs
    /// there (`undo` names it, when one exists), or the run ends.
    Starts {
        /// The action that undoes it (never read back: a checkpoint's
        /// steps start none with an undo).
        #[serde(skip_deserializing)]
        undo: Option<&'static str>,
    },
    /// Undoes a fault of its host.
    Ends,
    /// Breaks and mends within the step itself: the step is the window.
    Within,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
/// One step as it ran.
pub struct StepResult {
    /// Its id (`8-restore`).
    pub id: String,
    /// Its title.
    pub title: String,
    /// The host it ran on.
    pub host: String,
    /// The OS user it ran as.
    pub user: String,
    /// Its action's key (`run`, `sql`, `restart`).
    pub action: String,
    /// Whether the action is a fault, for the timeline.
    pub fault: Fault,
    /// Not in the tutorial: a fix or a diagnostic the harness adds.
    pub added: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The defect its outcome is evidence of.
    pub defect: Option<Defect>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    /// Why the step is there, as the file says.
    pub note: String,
    /// Passed, or skipped for the platform.
    pub passed: bool,
    /// How it ended.
    pub status: StepStatus,
    /// When it started, from the start of the steps phase: shows what ran
    /// beside what.
    #[serde(rename = "at_ms", with = "crate::time::millis")]
    pub at: Duration,
    #[serde(rename = "elapsed_ms", with = "crate::time::millis")]
    /// How long it took.
    pub elapsed: Duration,
    /// What was observed (status, matched output or log line).
    pub observed: String,
    /// Of `elapsed`, how long its commands ran in their hosts (from the
    /// engine starting each process to the end of its output); the rest is
    /// pglab's own time: engine calls, file transfers, waits, SQL.
    #[serde(rename = "in_host_ms", default, skip_serializing_if = "Option::is_none", with = "crate::time::millis_opt")]
    pub in_host: Option<Duration>,
    /// Ran in the run that saved the checkpoint this run started from: its
    /// effects are in the restored lab, its record is that run's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restored: bool,
}

impl StepResult {
    /// pglab's own time in this step: its wall time less what ran in hosts.
    pub fn own_time(&self) -> Duration {
        self.elapsed.saturating_sub(self.in_host.unwrap_or_default())
    }
}

/// The checkpoint a run started from.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointUse {
    /// Its key (`pglab checkpoint list`).
    pub key: String,
    /// The last step in it.
    pub step: String,
    /// From creating the lab until every standby in it streamed again.
    #[serde(rename = "restore_ms", with = "crate::time::millis")]
    pub restore: Duration,
    /// This run made it (replayed the steps on a lab of its own, saved that
    /// lab, then started from it like any later run); otherwise it was there.
    pub made: bool,
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The property holds: the evidence says what was seen.
    Passed,
    /// It does not, or could not be shown: the evidence says why.
    Failed,
}

/// What a figure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// A number of things (commits, inserts, rows).
    Count,
    /// Bytes.
    Bytes,
}

impl Unit {
    /// As a column header writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::Count => "",
            Unit::Bytes => "B",
        }
    }
}

/// One measurement a check made, named, with its unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// What was measured (`latency_p50`).
    pub name: String,
    /// Its value, in `unit`.
    pub value: f64,
    /// What it counts.
    pub unit: Unit,
}

/// The figures of one check, in the order they were measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Figures(pub Vec<Figure>);

impl Figures {
    /// Adds a figure.
    pub fn push(&mut self, name: impl Into<String>, value: f64, unit: Unit) {
        self.0.push(Figure { name: name.into(), value, unit });
    }

    /// The value of the figure named `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|f| f.name == name).map(|f| f.value)
    }

    /// Every figure, in the order measured.
    pub fn iter(&self) -> impl Iterator<Item = &Figure> {
        self.0.iter()
    }
}

/// The result of one check, as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    /// The check's name (`standby_data`).
    pub name: String,
    /// Passed or failed.
    pub verdict: Verdict,
    /// What was seen: the proof when it passed, what was seen instead when not.
    pub evidence: String,
    /// Measurements (ms, counts) for reports and benchmarks.
    pub figures: Figures,
    /// When it started, from the start of the steps phase (a check may run
    /// beside steps).
    #[serde(rename = "at_ms", with = "crate::time::millis")]
    pub at: Duration,
    #[serde(rename = "elapsed_ms", with = "crate::time::millis")]
    /// How long it took.
    pub elapsed: Duration,
}

/// The phases of a run whose wall time a report gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The state before step 1 (`[given]`).
    Given,
    /// Every step (hosts overlap, so step times do not add up to this).
    Steps,
    /// The checks after the last step.
    Checks,
}

impl Phase {
    /// As reports write it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Given => "given",
            Phase::Steps => "steps",
            Phase::Checks => "checks",
        }
    }
}

/// Wall time per phase; serialized as `{"given_ms": n, ...}`.
#[derive(Debug, Clone, Default)]
pub struct Phases(pub BTreeMap<Phase, Duration>);

impl Serialize for Phases {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(p, d)| (format!("{}_ms", p.name()), d.as_millis() as u64)))
    }
}

/// A host of the lab as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    /// Its name in the lab.
    pub name: String,
    /// What kind of host it is (`pg`, `repo`, `s3`).
    pub kind: HostKind,
    /// What it is for, as the file says.
    pub role: Role,
    /// Its address on the lab's network.
    pub ip: String,
}

#[derive(Debug, Clone, Serialize)]
/// What a run of a scenario found: every step, every check, the transcript
/// and the timings; what `pglab run` writes as JSON and Markdown.
pub struct RunReport {
    /// The scenario's name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// The platform it ran on.
    pub platform: Platform,
    /// The image its hosts ran.
    pub image: String,
    /// What the image was built from; none for a recipe that cannot say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Versions>,
    /// The lab's id (`pglab list`).
    pub lab: String,
    /// The lab's hosts.
    pub hosts: Vec<HostInfo>,
    /// Set when a kept lab went on from this step (`pglab step`, `run --from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Set when the lab was started from a checkpoint: the steps through it
    /// are the saving run's records (each marked `restored`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointUse>,
    /// How long starting the lab took.
    pub lab_timings: StartTimings,
    /// Wall time of each phase.
    pub phases: Phases,
    /// Every step and every check passed.
    pub passed: bool,
    /// A signal stopped the run.
    pub interrupted: bool,
    /// Why it did not pass, when a step (or the lab) failed; failed
    /// checks are in `checks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// Each step that ran, in the order they ended.
    pub steps: Vec<StepResult>,
    /// Each check that ran, in file order.
    pub checks: Vec<CheckOutcome>,
    /// The defects the scenario documents.
    pub defects: Vec<Defect>,
    #[serde(rename = "total_ms", with = "crate::time::millis")]
    /// The whole run.
    pub total: Duration,
    /// Every command and SQL statement, as run (secrets redacted).
    pub transcript: Vec<TranscriptEntry>,
    #[serde(skip_serializing_if = "Series::is_empty")]
    /// Replication lag and commit rates, for runs with faults or load.
    pub series: Series,
}

/// The OS and the versions a run ran on, read from its image's labels.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Versions {
    /// The operating system and its point release.
    pub os: String,
    /// The PostgreSQL package's version.
    pub postgresql: String,
    /// The pgBackRest package's version.
    pub pgbackrest: String,
    /// The `Date` of the suite's Release file the image was built from.
    pub archive_date: String,
    /// A digest of every package and version installed.
    pub packages: String,
}

impl Versions {
    /// From an image's `pglab.built.*` labels; `None` when they are not there.
    pub fn from_built(built: &BTreeMap<String, String>) -> Option<Versions> {
        let get = |k: &str| built.get(k).filter(|v| !v.is_empty()).cloned();
        let os = match (get("os"), get("debian")) {
            (Some(os), Some(point)) => format!("{os}, {point}"),
            (os, _) => os?,
        };
        Some(Versions {
            os,
            postgresql: get("postgresql")?,
            pgbackrest: get("pgbackrest")?,
            archive_date: get("archive_date").unwrap_or_default(),
            packages: get("packages").unwrap_or_default(),
        })
    }
}

impl RunReport {
    /// `<scenario>-<lab>`, or `<scenario>-<lab>-from-<step>` for a resumed part.
    pub fn file_stem(&self) -> String {
        match &self.from {
            Some(f) => format!("{}-{}-from-{f}", self.scenario, self.lab),
            None => format!("{}-{}", self.scenario, self.lab),
        }
    }
}

/// Measured in the background while a fault scenario ran: what the
/// timeline's plots show, in seconds of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    /// Replication lag about every 100 ms, as each writable host's
    /// `pg_stat_replication` reported it.
    pub lag: Vec<LagSample>,
    /// Acknowledged commits of each harness writer, per second of the run.
    pub writes: Vec<WriteRate>,
}

impl Series {
    /// Nothing was sampled.
    pub fn is_empty(&self) -> bool {
        self.lag.is_empty() && self.writes.is_empty()
    }
}

/// One row of `pg_stat_replication` at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct LagSample {
    /// Seconds since the steps began.
    pub at_s: f64,
    /// The host sending WAL.
    pub primary: String,
    /// The host receiving it (its address when it is not a lab host).
    pub standby: String,
    /// Sent WAL not yet replayed: `pg_current_wal_lsn() - replay_lsn`.
    pub bytes: f64,
    /// `replay_lag`, when PostgreSQL has a value for it.
    pub seconds: Option<f64>,
}

/// Commits a writer had acknowledged in one second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct WriteRate {
    /// The writer's name.
    pub writer: String,
    /// The second of the run.
    pub second: u32,
    /// Commits acknowledged in it.
    pub commits: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_serialize_as_millisecond_keys() {
        let p = Phases(BTreeMap::from([(Phase::Steps, Duration::from_millis(1500)), (Phase::Given, Duration::from_millis(20))]));
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"given_ms":20,"steps_ms":1500}"#);
    }
}
