//! What a run found, as data: steps, checks, timings. Filled by the run,
//! read by the renderers in `report`; nothing here runs anything.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::platform::Platform;
use crate::vocab::{Defect, HostKind, Role};
use crate::transcript::TranscriptEntry;

/// How long each phase of `Lab::start` took, for reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StartTimings {
    #[serde(with = "crate::time::millis")]
    pub network: Duration,
    #[serde(with = "crate::time::millis")]
    pub containers: Duration,
    /// Until every host's PostgreSQL answers the harness.
    #[serde(with = "crate::time::millis")]
    pub sql_ready: Duration,
    #[serde(with = "crate::time::millis")]
    pub total: Duration,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Passed,
    Failed,
    /// A signal arrived while it ran; it was stopped.
    Interrupted,
    /// Not for this platform (`when`); counts as done.
    Skipped,
}

impl CheckOutcome {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Not a fault.
    No,
    /// Breaks something on its host until an action that `Ends` one runs
    /// there (`undo` names it, when one exists), or the run ends.
    Starts {
        /// The action that undoes it.
        undo: Option<&'static str>,
    },
    /// Undoes a fault of its host.
    Ends,
    /// Breaks and mends within the step itself: the step is the window.
    Within,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub id: String,
    pub title: String,
    pub host: String,
    pub user: String,
    pub action: String,
    /// Whether the action is a fault, for the timeline.
    pub fault: Fault,
    pub added: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defect: Option<Defect>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    pub passed: bool,
    pub status: StepStatus,
    /// When it started, from the start of the steps phase: shows what ran
    /// beside what.
    #[serde(rename = "at_ms", with = "crate::time::millis")]
    pub at: Duration,
    #[serde(rename = "elapsed_ms", with = "crate::time::millis")]
    pub elapsed: Duration,
    /// What was observed (status, matched output or log line).
    pub observed: String,
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
    pub name: String,
    pub value: f64,
    pub unit: Unit,
}

/// The figures of one check, in the order they were measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Figures(pub Vec<Figure>);

impl Figures {
    pub fn push(&mut self, name: impl Into<String>, value: f64, unit: Unit) {
        self.0.push(Figure { name: name.into(), value, unit });
    }

    /// The value of the figure named `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|f| f.name == name).map(|f| f.value)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Figure> {
        self.0.iter()
    }
}

/// The result of one check, as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub name: String,
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
    pub name: String,
    /// What kind of host it is (`pg`, `repo`).
    pub kind: HostKind,
    pub role: Role,
    pub ip: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub description: String,
    pub platform: Platform,
    pub image: String,
    /// What the image was built from; none for a recipe that cannot say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Versions>,
    pub lab: String,
    pub hosts: Vec<HostInfo>,
    /// Set when a kept lab went on from this step (`pglab step`, `run --from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub lab_timings: StartTimings,
    pub phases: Phases,
    pub passed: bool,
    /// A signal stopped the run.
    pub interrupted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub steps: Vec<StepResult>,
    pub checks: Vec<CheckOutcome>,
    pub defects: Vec<Defect>,
    #[serde(rename = "total_ms", with = "crate::time::millis")]
    pub total: Duration,
    pub transcript: Vec<TranscriptEntry>,
    #[serde(skip_serializing_if = "Series::is_empty")]
    pub series: Series,
}

/// The OS and the versions a run ran on, read from its image's labels.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Versions {
    pub os: String,
    pub postgresql: String,
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
    pub fn is_empty(&self) -> bool {
        self.lag.is_empty() && self.writes.is_empty()
    }
}

/// One row of `pg_stat_replication` at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct LagSample {
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
    pub writer: String,
    pub second: u32,
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
