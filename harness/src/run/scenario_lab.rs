//! A scenario as a starting point for your own test: run it (to a step, or
//! to the end with its checks) and get the lab, still up, to work on.

use std::path::PathBuf;

use crate::error::{Error, Failure, Result};
use crate::lab::{Keep, Lab};
use crate::outcome::RunReport;
use crate::platform::Platform;
use crate::progress::Progress;
use crate::scenario::Scenario;

use super::{locate, run_keeping_lab, RunOptions};

/// Builds a lab by running a scenario: `ScenarioLab::new("tutorial")` runs
/// the corrected tutorial shipped with pglab (or `./scenarios/tutorial.toml`,
/// or a path), `.through("8-streaming")` stops after that step, and
/// [`start`](ScenarioLab::start) hands you the [`Lab`]. The lab at that step
/// is a checkpoint: saved by the first run, started from its images by the
/// next ones (seconds instead of replaying the steps; see
/// [`fresh`](ScenarioLab::fresh)).
///
/// ```no_run
/// # async fn demo() -> pglab::Result<()> {
/// use pglab::prelude::*;
///
/// let lab = ScenarioLab::new("tutorial").through("8-streaming").start().await?;
/// let primary = lab.host("primary")?;
/// primary.safe_psql("CREATE TABLE t AS SELECT 1 AS x").await?;
/// primary.wait_for_catchup(lab.host("standby")?, LsnKind::Replay, None).await?;
/// assert_eq!(lab.host("standby")?.safe_psql("SELECT x FROM t").await?, "1");
/// lab.shutdown().await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ScenarioLab {
    scenario: String,
    opts: RunOptions,
    verbose: bool,
}

impl ScenarioLab {
    /// A scenario by path, by name in `./scenarios`, or shipped with pglab.
    pub fn new(scenario: impl Into<String>) -> Self {
        ScenarioLab { scenario: scenario.into(), opts: RunOptions { checkpoint: true, every_host: true, ..RunOptions::default() }, verbose: false }
    }

    /// Replay every step on a fresh lab, neither starting from a checkpoint
    /// nor saving one.
    pub fn fresh(mut self) -> Self {
        self.opts.checkpoint = false;
        self
    }

    /// Stop after this step (its id, or a tutorial step number such as `"8"`);
    /// the checks do not run. Without it every step and check runs.
    pub fn through(mut self, step: impl Into<String>) -> Self {
        self.opts.until = Some(step.into());
        self
    }

    /// Leave unstarted the spare hosts (`role = "spare"`) that no step
    /// through [`through`](ScenarioLab::through) names: each would boot a
    /// cluster (and copy its data directory up, from a checkpoint) that
    /// your test never uses. `lab.host("pitr")` is then an error.
    pub fn without_idle_spares(mut self) -> Self {
        self.opts.every_host = false;
        self
    }

    /// Run on this platform instead of the scenario's own.
    pub fn platform(mut self, platform: Platform) -> Self {
        self.opts.platform = Some(platform);
        self
    }

    /// Override one of the scenario's `[vars]`.
    pub fn set(mut self, var: impl Into<String>, value: impl Into<String>) -> Self {
        self.opts.sets.push((var.into(), value.into()));
        self
    }

    /// When a step or check fails (or your test panics), keep the lab to
    /// look at (`pglab list`, `pglab shell`); `pglab down` removes it.
    pub fn keep_on_failure(mut self) -> Self {
        self.opts.keep = Keep::OnFailure;
        self
    }

    /// Write the transcript and JSON report (`<scenario>-<lab>.md`, `.json`) here.
    pub fn reports(mut self, dir: impl Into<PathBuf>) -> Self {
        self.opts.report_dir = Some(dir.into());
        self
    }

    /// Show progress on stderr, as `pglab run` does.
    pub fn verbose(mut self) -> Self {
        self.verbose = true;
        self
    }

    /// Builds the image if missing, starts the lab and runs the scenario.
    /// A failing step or check is an error carrying its command, output
    /// and log lines; the lab is then removed, unless
    /// [`keep_on_failure`](ScenarioLab::keep_on_failure).
    pub async fn start(self) -> Result<Lab> {
        self.start_with_report().await.map(|(lab, _)| lab)
    }

    /// [`start`](ScenarioLab::start), and the run's report (steps, checks, timings).
    pub async fn start_with_report(self) -> Result<(Lab, RunReport)> {
        let scn = Scenario::load(&locate(&self.scenario)?)?;
        let progress = if self.verbose { Progress::new(false) } else { Progress::hidden() };
        let (report, mut lab) = run_keeping_lab(&scn, &self.opts, &progress).await?;
        progress.finish();
        if report.passed {
            return Ok((lab, report));
        }
        let failure = Box::new(report.error.clone().unwrap_or_else(|| failed_checks(&report)));
        lab.mark_failed();
        if let Err(e) = lab.shutdown().await {
            // The run's failure is the news; a teardown problem is said beside it.
            tracing::warn!("removing lab {} after its failure: {e}", report.lab);
        }
        Err(Error::Run { scenario: report.scenario.clone(), platform: report.platform.to_string(), lab: report.lab.clone(), failure })
    }
}

/// Steps passed, so checks failed: their names and what each saw instead.
fn failed_checks(report: &RunReport) -> Failure {
    let failed: Vec<String> = report.checks.iter().filter(|c| !c.passed()).map(|c| format!("check {} failed: {}", c.name, c.evidence)).collect();
    let err = Error::Check(failed.join("; "));
    err.failure(|t| t.to_string())
}
