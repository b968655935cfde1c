//! Runs a scenario on a fresh lab: create, prepare (given), converge (steps),
//! verify (checks), destroy; every command lands in the transcript.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::check::{self, CheckOutcome};
use crate::docker;
use crate::error::{Error, Result};
use crate::exec::{Cmd, ExecOutput};
use crate::host::Host;
use crate::image::HostImage;
use crate::lab::{Attached, Hosts, Keep, Lab, LabSpec, StartTimings};
use crate::platform::Platform;
use crate::progress::Progress;
use crate::report::TranscriptEntry;
use crate::state::RunState;
use crate::scenario::{CheckDecl, Defect, Scenario, StatusExpect, Step, WaitAction};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub platform: Option<Platform>,
    pub keep: Keep,
    /// Stop after this step (id or tutorial step number); skips verify.
    pub until: Option<String>,
    /// Run checks marked slow (cron firing).
    pub slow: bool,
    /// `key=value` overriding the scenario's `vars`.
    pub sets: Vec<(String, String)>,
    /// Where to write `<scenario>-<lab>.md` and `.json`.
    pub report_dir: Option<PathBuf>,
    /// Run only these checks (`streaming`, `pitr=name,lsn`); empty: all.
    pub checks: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub id: String,
    pub title: String,
    pub host: String,
    pub user: String,
    pub action: String,
    pub added: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defect: Option<Defect>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    pub passed: bool,
    /// When it started, from the start of the steps phase: shows what ran
    /// beside what.
    #[serde(rename = "at_ms", with = "crate::report::millis")]
    pub at: Duration,
    #[serde(rename = "elapsed_ms", with = "crate::report::millis")]
    pub elapsed: Duration,
    /// What was observed (status, matched output or log line).
    pub observed: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub description: String,
    pub platform: Platform,
    pub image: String,
    pub lab: String,
    /// Set when a kept lab went on from this step (`pglab step`, `run --from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub lab_timings: StartTimings,
    /// Wall time of each phase (given, steps, checks): steps of different
    /// hosts overlap, so their own times do not add up to this.
    pub phases: BTreeMap<String, u64>,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub steps: Vec<StepResult>,
    pub checks: Vec<CheckOutcome>,
    pub defects: Vec<Defect>,
    #[serde(rename = "total_ms", with = "crate::report::millis")]
    pub total: Duration,
    pub transcript: Vec<TranscriptEntry>,
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

/// Random hex for generated secrets (never shown: registered for redaction).
fn secret() -> String {
    let mut buf = [0u8; 18];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf)).is_err() {
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        buf[..16].copy_from_slice(&n.to_le_bytes());
    }
    format!("pw{}", hex::encode(buf))
}

pub async fn run(scn: &Scenario, opts: &RunOptions, progress: &Progress) -> Result<RunReport> {
    let started = Instant::now();
    let platform = opts.platform.unwrap_or(scn.platform);
    let last = match &opts.until {
        Some(u) => scn.step_index(u).ok_or_else(|| no_step("--until", u, scn))?,
        None => scn.steps.len().saturating_sub(1),
    };
    validate_checks(scn, &opts.checks)?;
    let docker = docker::connect().await?;
    progress.phase(format!("{}: image", scn.name));
    HostImage::for_platform(platform).ensure(&docker, false, &progress.main).await?;
    progress.phase(format!("{}: create lab", scn.name));
    let spec = LabSpec {
        platform,
        hosts: scn.hosts.iter().map(|h| h.name.get_ref().clone()).collect(),
        keep: opts.keep,
        scenario: Some(scn.name.clone()),
    };
    let mut lab = Lab::start(&docker, &spec).await?;
    let mut steps = Vec::new();
    let mut checks = Vec::new();
    let mut phases = BTreeMap::new();
    let mut state = None;
    let error = async {
        let vars = variables(scn, &lab, platform, opts)?;
        let state = state.insert(RunState {
            lab: lab.id.clone(),
            scenario: scn.name.clone(),
            scenario_path: std::fs::canonicalize(&scn.path).unwrap_or_else(|_| scn.path.clone()),
            platform,
            image: lab.image.reference(),
            secrets: scn.secrets.iter().filter_map(|s| vars.get(&format!("secret.{s}")).cloned()).collect(),
            vars,
            done: Vec::new(),
            reports: Vec::new(),
        });
        std::fs::write(RunState::scenario_copy(&lab.id), &scn.source).map_err(|e| Error::io("saving the scenario beside the lab", e))?;
        state.save()?;
        let t = Instant::now();
        prepare(scn, &lab, progress).await?;
        phases.insert("given_ms".to_string(), t.elapsed().as_millis() as u64);
        let todo: Vec<usize> = (0..=last).filter(|i| *i < scn.steps.len()).collect();
        // Checks with `after` start as soon as those steps are done, beside
        // the remaining steps; the others run at the end, one at a time.
        let planned = if opts.until.is_none() { planned_checks(scn, opts.slow, &opts.checks) } else { Vec::new() };
        let (early, tail): (Vec<_>, Vec<_>) = planned.into_iter().partition(|p| !p.after.is_empty());
        let (done_tx, done_rx) = tokio::sync::watch::channel(BTreeSet::new());
        let t = Instant::now();
        // Steps start while systemd finishes booting; those that use it wait.
        let boot = BootGate::new(&lab);
        let vars = state.vars.clone();
        let steps_done = async {
            let r = converge(scn, &lab, &vars, &todo, Some(&boot), progress, state, t, Some(done_tx)).await;
            (r, t.elapsed())
        };
        let (((done, failure), steps_elapsed), early_outcomes) = tokio::join!(steps_done, early_checks(&lab, &boot, &early, done_rx, t, progress));
        steps = done;
        checks = early_outcomes;
        phases.insert("steps_ms".to_string(), steps_elapsed.as_millis() as u64);
        if let Some(e) = failure {
            return Err(e);
        }
        boot.all().await?;
        if opts.until.is_none() {
            let tail_start = Instant::now();
            checks.extend(run_checks(&lab, &tail, t, progress).await);
            checks.sort_by_key(|(i, _)| *i);
            phases.insert("checks_ms".to_string(), tail_start.elapsed().as_millis() as u64);
        }
        Ok(())
    }
    .await
    .err();
    let checks: Vec<CheckOutcome> = checks.into_iter().map(|(_, c)| c).collect();
    let passed = error.is_none() && checks.iter().all(|c| c.passed);
    if !passed {
        lab.mark_failed();
    }
    let report = RunReport {
        scenario: scn.name.clone(),
        description: scn.description.clone(),
        platform,
        image: lab.image.reference(),
        lab: lab.id.clone(),
        from: None,
        lab_timings: lab.timings.clone(),
        phases,
        passed,
        error: error.as_ref().map(|e| lab.transcript().redact(&e.to_string())),
        steps,
        checks,
        defects: scn.defects.clone(),
        total: started.elapsed(),
        transcript: lab.transcript().entries(),
    };
    if let Some(dir) = &opts.report_dir {
        write_report(dir, &report, state)?;
    }
    progress.phase(format!("{}: destroy", scn.name));
    lab.shutdown().await?;
    Ok(report)
}

/// Where a resumed run stops.
#[derive(Debug, Clone)]
pub enum Until {
    /// The next step not yet done.
    Next,
    /// Through this step (an id or a tutorial step number).
    Step(String),
    /// The remaining steps and then the checks.
    End,
}

/// Goes on with a kept lab's scenario: `pglab step` and `pglab run --from`.
pub async fn resume(lab_id: &str, from: Option<&str>, until: &Until, slow: bool, report_dir: Option<&std::path::Path>, progress: &Progress) -> Result<RunReport> {
    let started = Instant::now();
    let mut state = RunState::load(lab_id)?;
    let path = if state.scenario_path.is_file() { state.scenario_path.clone() } else { RunState::scenario_copy(lab_id) };
    let scn = Scenario::load(&path)?;
    let docker = docker::connect().await?;
    let lab = Attached::find(&docker, lab_id).await?;
    for s in &state.secrets {
        lab.transcript().add_secret(s);
    }
    let first = match from {
        Some(f) => scn.step_index(f).ok_or_else(|| no_step("--from", f, &scn))?,
        None => match scn.steps.iter().position(|s| !state.done.contains(s.id.get_ref())) {
            Some(i) => i,
            None if matches!(until, Until::End) => scn.steps.len(),
            None => return Err(Error::Usage(format!("lab {lab_id} has done every step of {}; `pglab step {lab_id} verify` runs the checks", scn.name))),
        },
    };
    let last = match until {
        Until::Next => first,
        Until::Step(s) => scn.step_index(s).ok_or_else(|| no_step("until", s, &scn))?,
        Until::End => scn.steps.len().saturating_sub(1),
    };
    if last < first && first < scn.steps.len() {
        return Err(Error::Usage(format!("step `{}` comes before `{}`, where lab {lab_id} goes on from", scn.steps[last].id.get_ref(), scn.steps[first].id.get_ref())));
    }
    // With --from every step in the range runs again; otherwise only those not done.
    let todo: Vec<usize> = (first..=last).filter(|i| *i < scn.steps.len() && (from.is_some() || !state.done.contains(scn.steps[*i].id.get_ref()))).collect();
    let vars = state.vars.clone();
    let t = Instant::now();
    let (steps, failure) = converge(&scn, &lab, &vars, &todo, None, progress, &mut state, t, None).await;
    let mut phases = BTreeMap::from([("steps_ms".to_string(), t.elapsed().as_millis() as u64)]);
    let t = Instant::now();
    let checks = if failure.is_none() && matches!(until, Until::End) { verify(&scn, &lab, slow, &[], progress).await } else { Vec::new() };
    phases.insert("checks_ms".to_string(), t.elapsed().as_millis() as u64);
    let report = RunReport {
        scenario: scn.name.clone(),
        description: scn.description.clone(),
        platform: state.platform,
        image: state.image.clone(),
        lab: lab_id.to_string(),
        from: scn.steps.get(first).map(|s| s.id.get_ref().clone()).or(Some("verify".into())),
        lab_timings: StartTimings::default(),
        phases,
        passed: failure.is_none() && checks.iter().all(|c| c.passed),
        error: failure.as_ref().map(|e| lab.transcript().redact(&e.to_string())),
        steps,
        checks,
        defects: scn.defects.clone(),
        total: started.elapsed(),
        transcript: lab.transcript().entries(),
    };
    if let Some(dir) = report_dir {
        write_report(dir, &report, Some(state))?;
    }
    Ok(report)
}

/// Writes the transcript and report, and remembers them for `pglab report`.
fn write_report(dir: &std::path::Path, report: &RunReport, state: Option<RunState>) -> Result<()> {
    let (md, json) = crate::report::write(dir, report)?;
    if let Some(mut s) = state {
        s.reports.extend([md, json].map(|p| std::fs::canonicalize(&p).unwrap_or(p)));
        s.save()?;
    }
    Ok(())
}

fn no_step(flag: &str, id: &str, scn: &Scenario) -> Error {
    let ids: Vec<&str> = scn.steps.iter().map(|s| s.id.get_ref().as_str()).collect();
    Error::Usage(format!("{flag} {id}: no such step in {} (steps: {})", scn.name, ids.join(", ")))
}

/// The state the tutorial assumes before step 1.
async fn prepare(scn: &Scenario, lab: &Lab, progress: &Progress) -> Result<()> {
    progress.phase(format!("{}: given", scn.name));
    if let Some(g) = &scn.given {
        let h = lab.host(g.host.get_ref())?;
        let sql = format!(
            "CREATE TABLE {t} (select_column text, select_number int); \
             INSERT INTO {t} SELECT 'row ' || g, g FROM generate_series(1, {n}) g",
            t = g.table,
            n = g.rows
        );
        crate::report::in_step("given", sql_step(h, &sql)).await?;
    }
    Ok(())
}

/// Each host's "systemd has finished booting", awaited by the steps that
/// use systemd and before the checks; polled once, shared by all waiters.
struct BootGate<'a> {
    hosts: BTreeMap<String, Shared<BoxFuture<'a, std::result::Result<(), String>>>>,
}

impl<'a> BootGate<'a> {
    fn new(lab: &'a Lab) -> Self {
        let hosts = lab
            .hosts()
            .iter()
            .map(|h| (h.name.clone(), crate::lab::wait_for_host_boot(h).map(|r| r.map_err(|e| e.to_string())).boxed().shared()))
            .collect();
        BootGate { hosts }
    }

    async fn host(&self, name: &str) -> Result<()> {
        match self.hosts.get(name) {
            Some(f) => f.clone().await.map_err(Error::Other),
            None => Ok(()),
        }
    }

    async fn all(&self) -> Result<()> {
        futures_util::future::try_join_all(self.hosts.values().map(|f| f.clone())).await.map(|_| ()).map_err(Error::Other)
    }
}

/// Runs the steps `todo` (indices into the scenario), each as soon as the
/// steps it depends on are done; stops starting new ones after a failure.
async fn converge<L: Hosts>(
    scn: &Scenario,
    lab: &L,
    vars: &BTreeMap<String, String>,
    todo: &[usize],
    boot: Option<&BootGate<'_>>,
    progress: &Progress,
    state: &mut RunState,
    // The start of the steps phase: steps' and checks' `at` count from it.
    phase_start: Instant,
    done: Option<tokio::sync::watch::Sender<BTreeSet<String>>>,
) -> (Vec<StepResult>, Option<Error>) {
    let deps = scn.dependencies();
    let mut pending: Vec<usize> = todo.to_vec();
    let mut finished: Vec<usize> = Vec::new();
    let mut running = FuturesUnordered::new();
    let mut results = Vec::new();
    let mut failure = None;
    let total = todo.len();
    let mut started = 0;
    progress.steps(total);
    progress.phase(format!("{}: steps", scn.name));
    loop {
        if failure.is_none() {
            let ready: Vec<usize> = pending.iter().copied().filter(|i| deps[*i].iter().all(|d| !todo.contains(d) || finished.contains(d))).collect();
            for i in ready {
                pending.retain(|p| *p != i);
                started += 1;
                let step = &scn.steps[i];
                let line = progress.start_step(started, total, step.id.get_ref(), step.host.get_ref());
                running.push(async move {
                    let t = Instant::now();
                    let result = async {
                        if let (Some(gate), true) = (boot, step.needs_boot()) {
                            gate.host(step.host.get_ref()).await?;
                        }
                        crate::report::in_step(step.id.get_ref(), attempt(lab, step, vars)).await
                    }
                    .await;
                    (i, line, result, t.duration_since(phase_start), t.elapsed())
                });
            }
        }
        let Some((i, line, result, at, elapsed)) = running.next().await else { break };
        finished.push(i);
        let step = &scn.steps[i];
        let id = step.id.get_ref().clone();
        let (passed, observed) = match &result {
            Ok(o) => (true, o.clone()),
            Err(e) => (false, lab.transcript().redact(&e.to_string())),
        };
        progress.finish_step(line, passed, elapsed, &observed);
        results.push(StepResult {
            id: id.clone(),
            title: step.title.clone(),
            host: step.host.get_ref().clone(),
            user: step.user.clone(),
            action: step.action_name().into(),
            added: step.added,
            defect: step.defect.as_ref().and_then(|d| scn.defect(d.get_ref()).cloned()),
            note: step.note.clone(),
            passed,
            at,
            elapsed,
            observed,
        });
        match result {
            Ok(_) => {
                if let Some(tx) = &done {
                    tx.send_modify(|d| {
                        d.insert(id.clone());
                    });
                }
                state.done.retain(|d| *d != id);
                state.done.push(id);
                if let Err(e) = state.save() {
                    tracing::warn!("cannot save the run state: {e}");
                }
            }
            Err(e) => {
                failure.get_or_insert_with(|| Error::Other(format!("step {id} failed: {}", lab.transcript().redact(&e.to_string()))));
            }
        }
    }
    results.sort_by_key(|r| scn.steps.iter().position(|s| *s.id.get_ref() == r.id));
    (results, failure)
}

/// One step, re-run until its expectation holds when it has `retry_s`.
async fn attempt<L: Hosts>(lab: &L, step: &Step, vars: &BTreeMap<String, String>) -> Result<String> {
    match step.retry_s {
        None => run_step(lab, step, vars).await,
        Some(secs) => {
            crate::wait::poll_until(&format!("step {}", step.id.get_ref()), "its expectation", Duration::from_secs(secs), || async {
                Ok(match run_step(lab, step, vars).await {
                    Ok(o) => crate::wait::Probe::Ready(o),
                    Err(e) => crate::wait::Probe::NotYet(e.to_string()),
                })
            })
            .await
        }
    }
}

/// A check as this run will run it: its place in the file (reports keep
/// file order), the steps it may start after, and its parameters.
struct PlannedCheck {
    index: usize,
    after: Vec<String>,
    decl: CheckDecl,
}

/// The checks this run runs: `--check` selects, slow ones only with `--slow`.
fn planned_checks(scn: &Scenario, slow: bool, only: &[String]) -> Vec<PlannedCheck> {
    scn.verify
        .iter()
        .enumerate()
        .filter(|(_, v)| slow || !v.check.is_slow() || !only.is_empty())
        .filter_map(|(index, v)| Some(PlannedCheck { index, after: v.after.clone(), decl: selected(&v.check, only)? }))
        .collect()
}

async fn run_check<L: Hosts>(lab: &L, p: &PlannedCheck, since: Instant, progress: &Progress) -> (usize, CheckOutcome) {
    progress.phase(format!("check {}", p.decl.name()));
    let at = since.elapsed();
    let mut outcome = crate::report::in_step(&format!("verify-{}", p.decl.name()), check::run(lab, &p.decl)).await;
    outcome.at = at;
    (p.index, outcome)
}

/// Checks one after another, in file order.
async fn run_checks<L: Hosts>(lab: &L, checks: &[PlannedCheck], since: Instant, progress: &Progress) -> Vec<(usize, CheckOutcome)> {
    let mut out = Vec::new();
    for p in checks {
        out.push(run_check(lab, p, since, progress).await);
    }
    out
}

/// Each early check waits for its `after` steps (and for every host's
/// boot), then runs beside whatever else is running. A check whose steps
/// never finish (a step failed) does not run.
async fn early_checks(
    lab: &Lab,
    boot: &BootGate<'_>,
    early: &[PlannedCheck],
    done: tokio::sync::watch::Receiver<BTreeSet<String>>,
    since: Instant,
    progress: &Progress,
) -> Vec<(usize, CheckOutcome)> {
    let runs = early.iter().map(|p| {
        let mut done = done.clone();
        async move {
            done.wait_for(|d| p.after.iter().all(|a| d.contains(a))).await.ok()?;
            boot.all().await.ok()?;
            Some(run_check(lab, p, since, progress).await)
        }
    });
    futures_util::future::join_all(runs).await.into_iter().flatten().collect()
}

async fn verify<L: Hosts>(scn: &Scenario, lab: &L, slow: bool, only: &[String], progress: &Progress) -> Vec<CheckOutcome> {
    run_checks(lab, &planned_checks(scn, slow, only), Instant::now(), progress).await.into_iter().map(|(_, c)| c).collect()
}

/// The check as `--check` selects it: by name, and for `pitr=a,b` with
/// only those restore targets.
fn selected(decl: &CheckDecl, only: &[String]) -> Option<CheckDecl> {
    if only.is_empty() {
        return Some(decl.clone());
    }
    let pick = only.iter().find(|o| o.split('=').next() == Some(decl.name()))?;
    let mut decl = decl.clone();
    if let (CheckDecl::Pitr { targets, .. }, Some((_, list))) = (&mut decl, pick.split_once('=')) {
        *targets = list.split(',').map(str::to_string).collect();
    }
    Some(decl)
}

/// `--check` names a check the scenario has and, for pitr, known targets.
pub fn validate_checks(scn: &Scenario, only: &[String]) -> Result<()> {
    for o in only {
        let (name, args) = o.split_once('=').map(|(n, a)| (n, Some(a))).unwrap_or((o.as_str(), None));
        let names: Vec<&str> = scn.verify.iter().map(|v| v.check.name()).collect();
        if !names.contains(&name) {
            return Err(Error::Usage(format!("--check {o}: {} has no check `{name}` (checks: {})", scn.name, names.join(", "))));
        }
        match (name, args) {
            ("pitr", Some(a)) if a.split(',').all(|t| ["name", "time", "xid", "lsn"].contains(&t)) => {}
            ("pitr", Some(a)) => return Err(Error::Usage(format!("--check pitr={a}: targets are name, time, xid, lsn"))),
            (_, Some(_)) => return Err(Error::Usage(format!("--check {o}: only pitr takes arguments"))),
            _ => {}
        }
    }
    Ok(())
}

fn variables(scn: &Scenario, lab: &Lab, platform: Platform, opts: &RunOptions) -> Result<BTreeMap<String, String>> {
    let mut vars = crate::scenario::builtin_vars(platform);
    for h in lab.hosts() {
        vars.insert(format!("{}.ip", h.name), h.ip.to_string());
        vars.insert(format!("{}.name", h.name), h.name.clone());
    }
    for s in &scn.secrets {
        let value = secret();
        lab.transcript().add_secret(&value);
        vars.insert(format!("secret.{s}"), value);
    }
    for (k, v) in &scn.vars {
        vars.insert(k.clone(), v.clone());
    }
    for (k, v) in &opts.sets {
        if !scn.vars.contains_key(k) {
            return Err(Error::Usage(format!("--set {k}: the scenario has no such var (vars: {})", scn.vars.keys().cloned().collect::<Vec<_>>().join(", "))));
        }
        vars.insert(k.clone(), v.clone());
    }
    Ok(vars)
}

pub(crate) fn subst(text: &str, vars: &BTreeMap<String, String>) -> Result<String> {
    crate::scenario::substitute(text, vars).map_err(|m| Error::Other(format!("undefined variable {{{m}}}")))
}

fn subst_regex(text: &str, vars: &BTreeMap<String, String>) -> Result<String> {
    crate::scenario::substitute_regex(text, vars).map_err(|m| Error::Other(format!("undefined variable {{{m}}}")))
}

/// Runs SQL through the harness's client and records it.
async fn sql_step(h: &Host, sql: &str) -> Result<crate::host::PsqlOutcome> {
    let t = Instant::now();
    let out = h.psql(sql).await?;
    let text = rows_text(&out);
    let stderr = out.error.as_ref().map(|(c, m)| format!("ERROR: {m} (SQLSTATE {c})")).unwrap_or_default();
    h.transcript().record(TranscriptEntry::command(&h.name, "pglab (harness SQL)", sql.to_string(), if out.error.is_some() { 1 } else { 0 }, text, stderr, t.elapsed()));
    Ok(out)
}

fn rows_text(out: &crate::host::PsqlOutcome) -> String {
    out.rows.iter().map(|r| r.iter().map(|c| c.clone().unwrap_or_default()).collect::<Vec<_>>().join("|")).collect::<Vec<_>>().join("\n")
}

fn octal(mode: &str) -> Result<u32> {
    u32::from_str_radix(mode.trim_start_matches("0o"), 8).map_err(|_| Error::Other(format!("mode `{mode}` is not octal")))
}

/// Runs one step and judges it; Ok carries what was observed.
async fn run_step<L: Hosts>(lab: &L, step: &Step, vars: &BTreeMap<String, String>) -> Result<String> {
    let host = lab.host(step.host.get_ref())?;
    let want = step.expect.status.unwrap_or(StatusExpect::Code(0));
    let timeout = Duration::from_secs(step.timeout_s.unwrap_or(300));
    let mut observed;
    if let Some(run) = &step.run {
        let line = subst(run.get_ref(), vars)?;
        let cmd = Cmd::shell(line).user(step.user.clone()).any_status().timeout(timeout);
        let out = host.exec(cmd.clone()).await?;
        observed = format!("exit {}", out.status);
        judge_output(host, &cmd, &out, want, step, vars).await?;
    } else if let Some(sql) = &step.sql {
        let sql = subst(sql.get_ref(), vars)?;
        let out = sql_step(host, &sql).await?;
        let status = if out.error.is_some() { 1 } else { 0 };
        let text = match &out.error {
            Some((code, m)) => format!("ERROR: {m} (SQLSTATE {code})"),
            None => rows_text(&out),
        };
        observed = match &out.error {
            Some(_) => text.clone(),
            None => "ok".into(),
        };
        if !want.accepts(status) {
            return Err(Error::Check(format!("SQL on {}: {text}; expected status {want}", host.name)));
        }
        if let Some(re) = &step.expect.output {
            let re = regex::Regex::new(&subst_regex(re.get_ref(), vars)?).map_err(|e| Error::Other(e.to_string()))?;
            if !re.is_match(&text) {
                return Err(Error::Check(format!("SQL result on {} does not match /{re}/:\n{text}", host.name)));
            }
        }
    } else if let Some(cfg) = &step.config {
        observed = crate::config::apply(host, cfg, vars).await?;
    } else if let Some(f) = &step.file {
        let path = subst(&f.path, vars)?;
        let mut content = subst(&f.content, vars)?;
        if f.append {
            content = format!("{}{}", host.read_file(&path).await.unwrap_or_default(), content);
        }
        let t = Instant::now();
        host.write_file(&path, content.as_bytes(), octal(&f.mode)?, &f.owner).await?;
        record_note(host, &step.user, format!("write {path} (mode {}, owner {})", f.mode, f.owner), subst(&f.content, vars)?, t);
        observed = format!("wrote {path}");
    } else if let Some(c) = &step.copy {
        let from = lab.host(c.from_host.get_ref())?;
        let (src, dst) = (subst(&c.from, vars)?, subst(&c.to, vars)?);
        let t = Instant::now();
        let data = from.read_file(&src).await?;
        let content = if c.append { format!("{}{}", host.read_file(&dst).await.unwrap_or_default(), data) } else { data.clone() };
        host.write_file(&dst, content.as_bytes(), octal(&c.mode)?, &c.owner).await?;
        record_note(host, "root", format!("copy {}:{src} -> {}:{dst}{}", from.name, host.name, if c.append { " (append)" } else { "" }), data, t);
        observed = format!("copied {src}");
    } else if let Some(w) = step.wait {
        let t = Instant::now();
        match w {
            WaitAction::PgDown => host.wait_for_pg_down(timeout).await?,
            WaitAction::PgUp => host.wait_for_pg_up(timeout).await?,
            WaitAction::Streaming => {
                host.poll_query_until("SELECT status FROM pg_stat_wal_receiver", "streaming", timeout).await?;
            }
        }
        record_note(host, "pglab (harness)", format!("wait until {w:?}"), format!("reached after {} ms", t.elapsed().as_millis()), t);
        observed = format!("{w:?} after {} ms", t.elapsed().as_millis());
    } else {
        return Err(Error::Other("step has no action".into()));
    }
    if let Some(re) = &step.expect.log {
        let pattern = subst_regex(re.get_ref(), vars)?;
        let line = host.wait_for_log(&pattern, Duration::from_secs(30)).await?;
        record_note(host, "pglab (harness)", format!("wait for log line /{pattern}/"), line.clone(), Instant::now());
        observed = format!("{observed}; log: {}", line.trim());
    }
    Ok(observed)
}

fn record_note(host: &Host, user: &str, cmd: String, note: String, t: Instant) {
    host.transcript().note(&host.name, user, cmd, note, t.elapsed());
}

async fn judge_output(host: &Host, cmd: &Cmd, out: &ExecOutput, want: StatusExpect, step: &Step, vars: &BTreeMap<String, String>) -> Result<()> {
    if !want.accepts(out.status) {
        let mut c = cmd.clone();
        c.expect_status = match want {
            StatusExpect::Code(x) => Some(x),
            _ => None,
        };
        return Err(host.failure(&c, out, Some(format!("expected exit status {want}"))).await);
    }
    if let Some(re) = &step.expect.output {
        let pattern = subst_regex(re.get_ref(), vars)?;
        let re = regex::Regex::new(&pattern).map_err(|e| Error::Other(e.to_string()))?;
        if !re.is_match(&out.combined()) {
            return Err(host.failure(cmd, out, Some(format!("output does not match /{pattern}/"))).await);
        }
    }
    Ok(())
}
