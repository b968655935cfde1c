//! A run session: one scenario on one lab, with its variables, progress,
//! run state and clock. A fresh run and a resumed one (`pglab step`,
//! `run --from`) execute the same way; only how they got their lab differs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::select::PlannedCheck;
use super::state::RunState;
use super::step;
use crate::error::{Error, Result};
use crate::lab::{signals, BootGate, Hosts, LagSampler};
use crate::outcome::Fault;
use crate::outcome::{CheckOutcome, Phase, Phases, Series, StepResult, StepStatus};
use crate::progress::{Progress, StepLine};
use crate::scenario::{Scenario, Step};
use crate::transcript::in_step;
use crate::vars::Vars;

/// What a session is asked to do.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Set up the `[given]` state first (a fresh lab).
    pub given: bool,
    /// Steps to run, as indices into the scenario.
    pub steps: Vec<usize>,
    /// Go on to the checks once the steps are done.
    pub verify: bool,
    pub checks: Vec<PlannedCheck>,
}

/// What a session did.
#[derive(Debug)]
pub(crate) struct Executed {
    pub steps: Vec<StepResult>,
    pub checks: Vec<CheckOutcome>,
    pub phases: Phases,
    pub error: Option<Error>,
    pub series: Series,
}

impl Executed {
    pub(crate) fn interrupted(&self) -> bool {
        matches!(&self.error, Some(e) if e.exit_code() == 130)
    }

    pub(crate) fn passed(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.passed())
    }
}

pub(crate) struct Session<'a, L: Hosts> {
    scn: &'a Scenario,
    lab: &'a L,
    vars: Vars,
    progress: &'a Progress,
    state: Mutex<RunState>,
    results: Mutex<Vec<StepResult>>,
    /// Steps running now and when they started: what an interrupt stops.
    running: Mutex<BTreeMap<usize, Instant>>,
    /// Checks running now (by their place in the file), for the same reason.
    checking: Mutex<BTreeMap<usize, (String, Instant)>>,
    checks: Mutex<Vec<(usize, CheckOutcome)>>,
    /// The start of the steps phase: every `at` counts from it.
    clock: std::sync::OnceLock<Instant>,
    phases: Mutex<Phases>,
    /// Replication lag, sampled while a run with faults or load goes on.
    sampler: Mutex<Option<LagSampler>>,
    /// Told what was done so far after every step and check (the report
    /// files are written as the run goes, so a killed run leaves them).
    live: Option<&'a (dyn Fn(Executed) + Sync)>,
}

impl<'a, L: Hosts> Session<'a, L> {
    pub(crate) fn new(scn: &'a Scenario, lab: &'a L, state: RunState, progress: &'a Progress) -> Self {
        Session {
            scn,
            lab,
            vars: state.vars.clone(),
            progress,
            state: Mutex::new(state),
            results: Mutex::default(),
            running: Mutex::default(),
            checking: Mutex::default(),
            checks: Mutex::default(),
            clock: std::sync::OnceLock::new(),
            phases: Mutex::default(),
            sampler: Mutex::default(),
            live: None,
        }
    }

    /// Goes on from a checkpoint: its steps' results come first, and this
    /// run's clock goes on from where that run's was when it saved.
    pub(crate) fn restored(self, mut results: Vec<StepResult>, elapsed: Duration) -> Self {
        for r in &mut results {
            r.restored = true;
        }
        *self.results.lock().expect("results lock") = results;
        let now = Instant::now();
        let _ = self.clock.set(now.checked_sub(elapsed).unwrap_or(now));
        self
    }

    /// Hands `live` what was done so far after every step and check.
    pub(crate) fn live(mut self, live: &'a (dyn Fn(Executed) + Sync)) -> Self {
        self.live = Some(live);
        self
    }

    /// Steps in file order, checks in file order: what was done so far.
    fn done_so_far(&self) -> (Vec<StepResult>, Vec<CheckOutcome>) {
        let mut steps = self.results.lock().expect("results lock").clone();
        steps.sort_by_key(|r| self.scn.steps.iter().position(|s| *s.id.get_ref() == r.id));
        let mut checks = self.checks.lock().expect("checks lock").clone();
        checks.sort_by_key(|(i, _)| *i);
        (steps, checks.into_iter().map(|(_, c)| c).collect())
    }

    /// Tells `live` (if any) what was done so far, as a run not yet finished.
    fn publish(&self) {
        let Some(live) = self.live else { return };
        let (steps, checks) = self.done_so_far();
        let said = format!("the run had not finished when this was written ({} steps and {} checks done so far)", steps.len(), checks.len());
        let phases = self.phases.lock().expect("phases lock").clone();
        live(Executed { steps, checks, phases, error: Some(Error::Other(said)), series: Series::default() });
    }

    /// Runs the plan until it is done, a step fails, or a signal arrives;
    /// an interrupt stops what runs and marks those steps interrupted.
    /// The caller holds [`signals::hold`] until its report is written.
    pub(crate) async fn execute(self, plan: &Plan) -> (Executed, RunState) {
        let error = tokio::select! {
            // A run that ends as the signal comes has ended: not interrupted.
            biased;
            r = self.work(plan) => r.err(),
            _ = signals::interrupted() => Some(Error::Interrupted),
        };
        if matches!(error, Some(Error::Interrupted)) {
            self.mark_interrupted();
        }
        // Writers belong to the run: none outlives it, kept lab or not.
        self.lab.workloads().stop_all().await;
        let series = self.series().await;
        if self.scn.steps.iter().any(|s| s.action.as_load().is_some_and(|l| l.pgbench.is_some())) {
            for h in self.lab.hosts() {
                h.pgbench_stop_all().await;
            }
        }
        let (steps, checks) = self.done_so_far();
        let executed = Executed { steps, checks, phases: self.phases.into_inner().expect("phases lock"), error, series };
        (executed, self.state.into_inner().expect("state lock"))
    }

    async fn work(&self, plan: &Plan) -> Result<()> {
        if plan.given {
            let t = Instant::now();
            self.given().await?;
            self.phase(Phase::Given, t.elapsed());
        }
        // Steps start while systemd finishes booting; those that use it wait.
        let boot = BootGate::new(self.lab);
        let (early, tail): (Vec<&PlannedCheck>, Vec<&PlannedCheck>) = plan.checks.iter().partition(|p| !p.after.is_empty());
        let early = if plan.verify { early } else { Vec::new() };
        let clock = *self.clock.get_or_init(Instant::now);
        if plan.steps.iter().any(|i| self.scn.steps[*i].action.fault() != Fault::No || self.scn.steps[*i].action.as_load().is_some()) {
            *self.sampler.lock().expect("sampler lock") = Some(LagSampler::start(self.lab.hosts(), clock));
        }
        // Steps done before this session (a resume) count as done for `after`.
        let rerun: BTreeSet<&str> = plan.steps.iter().map(|i| self.scn.steps[*i].id.get_ref().as_str()).collect();
        let before = self.state.lock().expect("state lock").done.iter().filter(|d| !rerun.contains(d.as_str())).cloned().collect();
        let (done_tx, done_rx) = watch::channel(before);
        let steps = async {
            let r = self.steps(&plan.steps, &boot, clock, done_tx).await;
            // The steps phase ends with the last step, not with the early checks.
            self.phase(Phase::Steps, clock.elapsed());
            r
        };
        let (steps, ()) = tokio::join!(steps, self.early_checks(&early, &boot, done_rx, clock));
        steps?;
        boot.all().await?;
        if plan.verify {
            let t = Instant::now();
            for p in tail {
                self.check(p, clock).await;
            }
            self.phase(Phase::Checks, t.elapsed());
        }
        Ok(())
    }

    /// What was sampled and written, in seconds of the run.
    async fn series(&self) -> Series {
        let Some(clock) = self.clock.get().copied() else { return Series::default() };
        let sampler = self.sampler.lock().expect("sampler lock").take();
        let lag = match sampler {
            Some(s) => s.stop().await,
            None => Vec::new(),
        };
        Series { lag, writes: self.lab.workloads().rates(clock) }
    }

    fn phase(&self, phase: Phase, took: Duration) {
        self.phases.lock().expect("phases lock").0.insert(phase, took);
    }

    /// The state the tutorial assumes before step 1: a table with rows.
    async fn given(&self) -> Result<()> {
        self.progress.phase(format!("{}: given", self.scn.name));
        let Some(g) = &self.scn.given else { return Ok(()) };
        let h = self.lab.host(g.host.get_ref())?;
        let sql = format!(
            "CREATE TABLE {t} (select_column text, select_number int); \
             INSERT INTO {t} SELECT 'row ' || g, g FROM generate_series(1, {n}) g",
            t = self.vars.subst(&g.table)?,
            n = g.rows
        );
        let out = in_step("given", h.psql_recorded(&sql)).await?;
        match out.error {
            Some(e) => Err(h.refused(&sql, e)),
            None => Ok(()),
        }
    }

    /// Runs the steps `todo`, each as soon as the steps it depends on are
    /// done; starts no new one after a failure, and returns the first.
    async fn steps(&self, todo: &[usize], boot: &BootGate<'_>, clock: Instant, done: watch::Sender<BTreeSet<String>>) -> Result<()> {
        let mut schedule = super::schedule::Schedule::new(self.scn, todo);
        let total = todo.len();
        let mut started = 0;
        let mut running = FuturesUnordered::new();
        let mut failure = None;
        self.progress.steps(total);
        self.progress.phase(format!("{}: steps", self.scn.name));
        loop {
            if failure.is_none() {
                for i in schedule.ready() {
                    started += 1;
                    let step = &self.scn.steps[i];
                    let line = self.progress.start_step(started, total, step.id.get_ref(), step.host.get_ref());
                    running.push(self.step(i, line, boot, clock));
                }
            }
            let Some((i, result)) = running.next().await else { break };
            schedule.finish(i);
            match result {
                Ok(()) => done.send_modify(|d| {
                    d.insert(self.scn.steps[i].id.get_ref().clone());
                }),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// One step: waits for the boots it must not race, runs, records
    /// its result and, when it passed, the run state.
    async fn step(&self, i: usize, line: StepLine, boot: &BootGate<'_>, clock: Instant) -> (usize, Result<()>) {
        let step = &self.scn.steps[i];
        let id = step.id.get_ref().clone();
        let t = Instant::now();
        self.running.lock().expect("running lock").insert(i, t);
        let skipped = step.skipped_on(self.lab.platform());
        let result = async {
            if let Some(why) = &skipped {
                return Ok(why.clone());
            }
            if step.action.waits_for_boot() {
                boot.host(step.host.get_ref()).await?;
            }
            in_step(&id, step::attempt(self.lab, step, &self.vars)).await
        }
        .await;
        self.running.lock().expect("running lock").remove(&i);
        let (status, observed) = match &result {
            Ok(o) if skipped.is_some() => (StepStatus::Skipped, o.clone()),
            Ok(o) => (StepStatus::Passed, o.clone()),
            Err(e) => (StepStatus::Failed, self.lab.transcript().redact(&e.to_string())),
        };
        self.progress.finish_step(line, status.mark(), t.elapsed(), &observed);
        self.results.lock().expect("results lock").push(self.result(step, status, t.duration_since(clock), t.elapsed(), observed));
        self.publish();
        match result {
            Ok(_) => {
                self.remember_done(&id);
                (i, Ok(()))
            }
            Err(e) => (i, Err(Error::Step { id, source: Box::new(e) })),
        }
    }

    fn result(&self, step: &Step, status: StepStatus, at: Duration, elapsed: Duration, observed: String) -> StepResult {
        StepResult {
            id: step.id.get_ref().clone(),
            title: step.title.clone(),
            host: step.host.get_ref().clone(),
            user: step.user.clone(),
            action: step.action.name().into(),
            fault: step.action.fault(),
            added: step.added,
            defect: step.defect.as_ref().and_then(|d| self.scn.defect(d.get_ref()).cloned()),
            note: step.note.clone(),
            passed: matches!(status, StepStatus::Passed | StepStatus::Skipped),
            status,
            at,
            elapsed,
            observed,
            in_host: Some(self.lab.transcript().in_host(step.id.get_ref())),
            restored: false,
        }
    }

    fn remember_done(&self, id: &str) {
        let mut state = self.state.lock().expect("state lock");
        state.done.retain(|d| d != id);
        state.done.push(id.to_string());
        if let Err(e) = state.save() {
            tracing::warn!("cannot save the run state: {e}");
        }
    }

    /// Steps and checks that were running when the signal came: interrupted, not failed.
    fn mark_interrupted(&self) {
        let clock = self.clock.get().copied();
        let at = |started: Instant| clock.map(|c| started.duration_since(c)).unwrap_or_default();
        let running = std::mem::take(&mut *self.running.lock().expect("running lock"));
        for (i, started) in running {
            let step = &self.scn.steps[i];
            let r = self.result(step, StepStatus::Interrupted, at(started), started.elapsed(), "interrupted by a signal".into());
            self.results.lock().expect("results lock").push(r);
        }
        let checking = std::mem::take(&mut *self.checking.lock().expect("checking lock"));
        for (i, (name, started)) in checking {
            let outcome = CheckOutcome::failed(name, "interrupted by a signal".into(), at(started), started.elapsed());
            self.checks.lock().expect("checks lock").push((i, outcome));
        }
    }

    async fn check(&self, p: &PlannedCheck, clock: Instant) {
        let name = p.decl.name();
        self.progress.phase(format!("check {name}"));
        let at = clock.elapsed();
        self.checking.lock().expect("checking lock").insert(p.index, (name.to_string(), Instant::now()));
        let mut outcome = match p.resolve(self.scn, &self.vars) {
            Ok(decl) => in_step(&format!("verify-{name}"), crate::check::run(self.lab, &decl)).await,
            Err(e) => CheckOutcome::failed(name, e.to_string(), at, Duration::ZERO),
        };
        outcome.at = at;
        self.checking.lock().expect("checking lock").remove(&p.index);
        self.checks.lock().expect("checks lock").push((p.index, outcome));
        self.publish();
    }

    /// Each early check waits for its `after` steps (and every host's boot),
    /// then runs beside whatever else runs. One whose steps never finish (a
    /// step failed) does not run.
    async fn early_checks(&self, early: &[&PlannedCheck], boot: &BootGate<'_>, done: watch::Receiver<BTreeSet<String>>, clock: Instant) {
        let runs = early.iter().map(|p| {
            let mut done = done.clone();
            async move {
                if done.wait_for(|d| p.after.iter().all(|a| d.contains(a))).await.is_err() {
                    return;
                }
                if boot.all().await.is_ok() {
                    self.check(p, clock).await;
                }
            }
        });
        futures_util::future::join_all(runs).await;
    }
}
