//! Running a scenario: on a fresh lab (create, given, steps, checks,
//! destroy) or going on with a kept one. Both build a session and execute
//! a plan; the report is written by `report`, never formatted here.

pub(crate) mod bundle;
pub(crate) mod checkpoint;
mod locate;
pub(crate) mod plan;
mod scenario_lab;
pub(crate) mod schedule;
pub(crate) mod select;
pub(crate) mod session;
mod spares;
pub(crate) mod state;
mod step;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use bundle::{unpack as unpack_bundle, Unpacked};
pub(crate) use locate::locate;
pub use scenario_lab::ScenarioLab;
pub use select::CheckPick;
pub(crate) use session::{Executed, Plan, Session};

use crate::engine::{self, image};
use crate::error::{Error, Result};
use crate::lab::{signals, Attached, Hosts, Keep, Lab, LabSpec};
use crate::outcome::{HostInfo, RunReport, StartTimings, Versions};
use crate::platform::Platform;
use crate::progress::Progress;
use crate::scenario::Scenario;
use crate::vars::Vars;
use state::RunState;

/// How `pglab run` runs a scenario on a fresh lab.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run on this platform instead of the scenario's.
    pub platform: Option<Platform>,
    /// Keep the lab afterwards (always, or when it failed).
    pub keep: Keep,
    /// Stop after this step (id or tutorial step number); skips the checks.
    pub until: Option<String>,
    /// Run checks marked slow (cron firing).
    pub slow: bool,
    /// `key=value` overriding the scenario's `vars`.
    pub sets: Vec<(String, String)>,
    /// Where to write `<scenario>-<lab>.md` and `.json`.
    pub report_dir: Option<PathBuf>,
    /// Run only these checks; empty: all.
    pub checks: Vec<CheckPick>,
    /// Where to write the result as JUnit XML (as the run goes, like the report).
    pub junit: Option<PathBuf>,
    /// Start from a checkpoint of the lab at the run's point (`until`, or
    /// the last step of the scenario a file extends) when there is one,
    /// and save one there when there is not (see `run::checkpoint`).
    pub checkpoint: bool,
    /// Start every host the scenario declares, the spares nothing of the
    /// run names too: for a lab handed on to code or a person that may
    /// use any of them (`ScenarioLab`, `pglab run --keep`).
    pub every_host: bool,
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

/// How `pglab step` and `run --from` go on with a kept lab.
#[derive(Debug, Clone)]
pub struct Resume {
    /// Re-run from this step (re-reading the scenario); `None`: the next not done.
    pub from: Option<String>,
    /// How far to go.
    pub until: Until,
    /// Run checks marked slow (cron firing).
    pub slow: bool,
    /// Run only these checks; empty: all.
    pub checks: Vec<CheckPick>,
    /// Where the transcript and report go.
    pub report_dir: Option<PathBuf>,
    /// Where JUnit XML goes.
    pub junit: Option<PathBuf>,
}

/// Random hex for generated secrets (never shown: registered for redaction),
/// from the OS's random source; without one there is no secret, not a
/// guessable one.
fn secret() -> Result<String> {
    let mut buf = [0u8; 18];
    getrandom::fill(&mut buf).map_err(|e| Error::Environment(format!("no random source for the lab's secrets: {e}")))?;
    Ok(format!("pw{}", hex::encode(buf)))
}

fn no_step(flag: &str, id: &str, scn: &Scenario) -> Error {
    let ids: Vec<&str> = scn.steps.iter().map(|s| s.id.get_ref().as_str()).collect();
    Error::Usage(format!("{flag} {id}: no such step in {} (steps: {})", scn.name, ids.join(", ")))
}

fn step_index(scn: &Scenario, flag: &str, id: &str) -> Result<usize> {
    scn.step_index(id).ok_or_else(|| no_step(flag, id, scn))
}

/// Runs a scenario file on a fresh lab, as `pglab run` does, and removes
/// the lab unless `opts.keep` says otherwise; a failed step or check is in
/// the report ([`RunReport::passed`]), not an `Err`.
///
/// ```no_run
/// # async fn demo() -> pglab::Result<()> {
/// let scn = pglab::Scenario::load(std::path::Path::new("scenarios/tutorial.toml"))?;
/// let report = pglab::run_scenario(&scn, &pglab::RunOptions::default()).await?;
/// assert!(report.passed, "{:?}", report.error);
/// # Ok(()) }
/// ```
pub async fn run_scenario(scn: &Scenario, opts: &RunOptions) -> Result<RunReport> {
    run(scn, opts, &Progress::hidden()).await
}

/// Runs `scn` on a fresh lab and removes the lab (unless kept).
pub(crate) async fn run(scn: &Scenario, opts: &RunOptions, progress: &Progress) -> Result<RunReport> {
    let (report, lab) = run_keeping_lab(scn, opts, progress).await?;
    progress.phase(format!("{}: destroy", scn.name));
    if report.interrupted {
        lab.discard().await?;
    } else {
        lab.shutdown().await?;
    }
    Ok(report)
}

/// Runs `scn` and hands the lab over, still up, with the report, whether
/// the run passed or not: the caller tears it down ([`Lab::shutdown`]).
/// With `opts.checkpoint`, the steps through the run's point run on a lab
/// started from its checkpoint, made first when there is none: every run
/// past a point goes on from a restored lab, the saving one too.
pub(crate) async fn run_keeping_lab(scn: &Scenario, opts: &RunOptions, progress: &Progress) -> Result<(RunReport, Lab)> {
    let platform = opts.platform.unwrap_or(scn.platform);
    if let Some(reason) = scn.unsupported_on(platform) {
        return Err(Error::NotSupported { platform: platform.to_string(), reason });
    }
    let until = opts.until.as_deref().map(|u| step_index(scn, "--until", u)).transpose()?;
    select::validate(scn, &opts.checks)?;
    // A bad --set is bad input: refused before the engine is touched.
    Vars::build(scn, platform, &opts.sets, &|_| String::new(), &mut |_| Ok(String::new()))?;
    let point = if opts.checkpoint && checkpoint::enabled() { checkpoint::Point::of(scn, until) } else { None };
    let Some(point) = point else { return run_fresh(scn, opts, progress, None).await };
    let docker = engine::connect().await?;
    let key = checkpoint::key(scn, platform, &images_of(&docker, scn, platform, &point, progress).await?, &opts.sets, &point)?;
    progress.phase(format!("{}: checkpoint {key}", scn.name));
    let held = checkpoint::Held::find(&docker, &key).await?;
    let (record, held, made) = match held {
        checkpoint::Held::Found(record, lock) => (*record, lock, false),
        checkpoint::Held::Missing(lock) => {
            let through =
                RunOptions { until: Some(scn.steps[point.last].id.get_ref().clone()), report_dir: None, junit: None, checks: Vec::new(), ..opts.clone() };
            let (report, lab) = run_fresh(scn, &through, progress, Some(&point)).await?;
            if !report.passed {
                if let Some(dir) = &opts.report_dir {
                    write_report(dir, &report, RunState::load(&report.lab).ok())?;
                }
                return Ok((report, lab));
            }
            let saved = checkpoint::save(&lab, &key, &point, &report).await;
            lab.discard().await?;
            (saved?, lock, true)
        }
    };
    let last = until.unwrap_or(scn.steps.len().saturating_sub(1));
    run_from(scn, opts, progress, (&point, last), (record, made), held).await
}

/// The ids of the images the point's hosts run (the platform's, and each
/// kind's own), built first when missing: an image rebuilt under the same
/// tag makes another checkpoint.
async fn images_of(docker: &bollard::Docker, scn: &Scenario, platform: Platform, point: &checkpoint::Point, progress: &Progress) -> Result<String> {
    let mut saved = spec_of(scn, platform, Keep::Never);
    saved.hosts.retain(|h| point.hosts.contains(&h.name));
    let mut ids = Vec::new();
    for image in saved.images() {
        image.ensure(docker, false, &image.phases(progress)).await?;
        ids.push(image.id(docker).await?);
    }
    Ok(ids.join(" "))
}

/// The run after its point, on a lab started from the checkpoint `record`.
async fn run_from(
    scn: &Scenario,
    opts: &RunOptions,
    progress: &Progress,
    (point, last): (&checkpoint::Point, usize),
    (record, made): (checkpoint::Record, bool),
    held: checkpoint::Lock,
) -> Result<(RunReport, Lab)> {
    let started = Instant::now();
    let platform = record.platform;
    let docker = engine::connect().await?;
    progress.phase(format!("{}: lab from checkpoint {}", scn.name, record.key));
    let verify = opts.until.is_none();
    let checks = planned(scn, verify, opts.slow, &opts.checks);
    let idle = idle_spares(scn, opts, last, &checks);
    let mut spec = spec_of(scn, platform, opts.keep).idle(&idle);
    spec.start_from(&record.hosts, record.kept.clone());
    let t = Instant::now();
    let mut lab = match Lab::start(&docker, &spec).await {
        Ok(lab) => lab,
        Err(e) => return Err(checkpoint::unusable(&docker, &record, held, e).await),
    };
    // Started: the images may go now (gc waits for nobody).
    drop(held);
    let _hold = signals::hold();
    lab.transcript().restore(record.transcript.clone());
    if let Err(e) = lab.wait_for_restored(&record.hosts, &idle).await {
        lab.mark_failed();
        let _ = lab.shutdown().await;
        let held = checkpoint::Held::lock(&record.key).await?;
        return Err(checkpoint::unusable(&docker, &record, held, e).await);
    }
    let restore = t.elapsed();
    let ip = |h: &str| address_of(scn, h).map(|a| a.to_string()).unwrap_or_default();
    // What the checkpoint kept of its stores (their keys: secrets, redacted) comes back as the lab's.
    let vars = Vars::build(scn, platform, &opts.sets, &ip, &mut |name| match record.secret(name) {
        Some(s) => Ok(s),
        None => secret(),
    })?
    .provided(&lab);
    let mut state = fresh_state(scn, &lab, platform, vars)?;
    state.done = record.done.clone();
    state.save()?;
    let steps: Vec<usize> = (point.last + 1..=last).filter(|i| *i < scn.steps.len()).collect();
    let plan = Plan { given: false, steps, verify, checks };
    let versions = versions_of(&docker, &lab.image.reference()).await;
    let used = crate::outcome::CheckpointUse { key: record.key.clone(), step: record.step.clone(), restore, made };
    let meta = Meta { platform, image: lab.image.reference(), versions, lab_timings: lab.timings.clone(), from: None, checkpoint: Some(used), started };
    let live = |so_far| write_live(&build_report(scn, &lab, meta.clone(), so_far), opts.report_dir.as_deref(), opts.junit.as_deref());
    let session = Session::new(scn, &lab, state, progress).live(&live).restored(record.results.clone(), record.elapsed);
    let (executed, state) = session.execute(&plan).await;
    finish_run(scn, lab, meta, executed, state, opts)
}

/// A declared host's lab address, by its place in the file: the one its
/// container gets, and the one a spare left idle keeps reserved.
pub(crate) fn address_of(scn: &Scenario, host: &str) -> Option<std::net::Ipv4Addr> {
    scn.hosts.iter().position(|d| d.name.get_ref() == host).and_then(|i| crate::lab::address::lab_address(i).ok())
}

/// The spares a run through step `last` with `checks` leaves unstarted
/// (none when it starts every host): see `spares`.
fn idle_spares(scn: &Scenario, opts: &RunOptions, last: usize, checks: &[select::PlannedCheck]) -> Vec<String> {
    if opts.every_host {
        Vec::new()
    } else {
        spares::idle(scn, last, checks, &opts.sets)
    }
}

/// A lab of the scenario's hosts on `platform`.
fn spec_of(scn: &Scenario, platform: Platform, keep: Keep) -> LabSpec {
    let mut spec = LabSpec::new(platform, Vec::<String>::new()).keep(keep);
    for h in &scn.hosts {
        spec = spec.host(h.name.get_ref(), h.kind.unwrap_or_default());
        if h.certificate {
            spec = spec.certificate(h.name.get_ref());
        }
        for v in &h.volumes {
            spec = spec.volume(h.name.get_ref(), &v.path, v.size_mb.get());
        }
    }
    spec.scenario = Some(scn.name.clone());
    spec.attended = true;
    spec
}

/// The report of a finished session, written where asked; the lab handed over.
fn finish_run(scn: &Scenario, mut lab: Lab, meta: Meta, executed: Executed, state: RunState, opts: &RunOptions) -> Result<(RunReport, Lab)> {
    let report = build_report(scn, &lab, meta, executed);
    if !report.passed {
        lab.mark_failed();
    }
    if let Some(dir) = &opts.report_dir {
        write_report(dir, &report, Some(state))?;
    }
    Ok((report, lab))
}

/// Runs `scn` on a fresh lab, every step from the first. A run `saving` a
/// checkpoint starts the point's hosts alone (those added after it start
/// fresh beside the restored ones, whose lab then makes the CA a new host
/// needs).
async fn run_fresh(scn: &Scenario, opts: &RunOptions, progress: &Progress, saving: Option<&checkpoint::Point>) -> Result<(RunReport, Lab)> {
    let started = Instant::now();
    let platform = opts.platform.unwrap_or(scn.platform);
    let last = match &opts.until {
        Some(u) => step_index(scn, "--until", u)?,
        None => scn.steps.len().saturating_sub(1),
    };
    let docker = engine::connect().await?;
    progress.phase(format!("{}: image", scn.name));
    let verify = opts.until.is_none();
    let checks = planned(scn, verify, opts.slow, &opts.checks);
    let idle = match saving {
        None => idle_spares(scn, opts, last, &checks),
        // Its lab goes once saved: what a checkpoint holds does not depend
        // on whether the runs after it start every host.
        Some(point) => {
            let mut idle = spares::idle(scn, last, &checks, &opts.sets);
            let added: Vec<String> = scn.hosts.iter().map(|h| h.name.get_ref()).filter(|n| !point.hosts.contains(n) && !idle.contains(n)).cloned().collect();
            idle.extend(added);
            idle
        }
    };
    let spec = spec_of(scn, platform, opts.keep).idle(&idle);
    for image in spec.images() {
        image.ensure(&docker, false, &image.phases(progress)).await?;
    }
    progress.phase(format!("{}: create lab", scn.name));
    let lab = Lab::start(&docker, &spec).await?;
    // After a signal the process stays until the report is written and the lab gone.
    let _hold = signals::hold();
    let ip = |h: &str| address_of(scn, h).map(|a| a.to_string()).unwrap_or_default();
    let vars = Vars::build(scn, platform, &opts.sets, &ip, &mut |_| secret())?.provided(&lab);
    let state = fresh_state(scn, &lab, platform, vars)?;
    let plan = Plan { given: true, steps: (0..=last).filter(|i| *i < scn.steps.len()).collect(), verify, checks };
    let versions = versions_of(&docker, &lab.image.reference()).await;
    let meta = Meta { platform, image: lab.image.reference(), versions, lab_timings: lab.timings.clone(), from: None, checkpoint: None, started };
    let live = |so_far| write_live(&build_report(scn, &lab, meta.clone(), so_far), opts.report_dir.as_deref(), opts.junit.as_deref());
    let (executed, state) = Session::new(scn, &lab, state, progress).live(&live).execute(&plan).await;
    finish_run(scn, lab, meta, executed, state, opts)
}

fn planned(scn: &Scenario, verify: bool, slow: bool, picks: &[CheckPick]) -> Vec<select::PlannedCheck> {
    if verify {
        select::planned(scn, slow, picks)
    } else {
        Vec::new()
    }
}

/// The run state of a new lab: saved beside it (with the scenario's text)
/// so `pglab step`, `run --from` and `pglab report` can go on from it.
fn fresh_state(scn: &Scenario, lab: &Lab, platform: Platform, vars: Vars) -> Result<RunState> {
    let secrets = vars.secrets();
    for s in &secrets {
        lab.transcript().redactor().add(s);
    }
    let state = RunState {
        lab: lab.id.clone(),
        scenario: scn.name.clone(),
        scenario_path: std::fs::canonicalize(&scn.path).unwrap_or_else(|_| scn.path.clone()),
        platform,
        image: lab.image.reference(),
        secrets,
        vars,
        done: Vec::new(),
        reports: Vec::new(),
    };
    std::fs::write(RunState::scenario_copy(&lab.id), scn.portable_source()).map_err(|e| Error::io("saving the scenario beside the lab", e))?;
    if let Some(b) = &scn.base {
        std::fs::write(RunState::base_copy(&lab.id), &b.source).map_err(|e| Error::io("saving the base scenario beside the lab", e))?;
    }
    state.save()?;
    Ok(state)
}

/// Goes on with a kept lab's scenario: `pglab step` and `pglab run --from`.
pub(crate) async fn resume(lab_id: &str, r: &Resume, progress: &Progress) -> Result<RunReport> {
    let started = Instant::now();
    let state = RunState::load(lab_id)?;
    let path = if state.scenario_path.is_file() { state.scenario_path.clone() } else { RunState::scenario_copy(lab_id) };
    let scn = Scenario::load(&path)?;
    // The file may have gained a `requires` since the lab was kept.
    if let Some(reason) = scn.unsupported_on(state.platform) {
        return Err(Error::NotSupported { platform: state.platform.to_string(), reason });
    }
    select::validate(&scn, &r.checks)?;
    let todo = resumed_steps(&scn, &state, r)?;
    let docker = engine::connect().await?;
    let lab = Attached::find(&docker, lab_id).await?;
    let _hold = signals::hold();
    // A lab kept by an older pglab has its secrets in run.json only.
    for s in &state.secrets {
        lab.transcript().redactor().add(s);
    }
    let first = todo.first().copied().unwrap_or(scn.steps.len());
    let meta = Meta {
        platform: state.platform,
        image: state.image.clone(),
        versions: versions_of(&docker, &state.image).await,
        lab_timings: StartTimings::default(),
        from: Some(scn.steps.get(first).map(|s| s.id.get_ref().clone()).unwrap_or_else(|| "verify".into())),
        checkpoint: None,
        started,
    };
    let verify = matches!(r.until, Until::End);
    let plan = Plan { given: false, steps: todo, verify, checks: planned(&scn, verify, r.slow, &r.checks) };
    let live = |so_far| write_live(&build_report(&scn, &lab, meta.clone(), so_far), r.report_dir.as_deref(), r.junit.as_deref());
    let (executed, state) = Session::new(&scn, &lab, state, progress).live(&live).execute(&plan).await;
    let report = build_report(&scn, &lab, meta, executed);
    if let Some(dir) = &r.report_dir {
        write_report(dir, &report, Some(state))?;
    }
    Ok(report)
}

/// The steps a resume runs: from `--from` (every one again) or from the
/// first not done (only those not done), through `until`.
fn resumed_steps(scn: &Scenario, state: &RunState, r: &Resume) -> Result<Vec<usize>> {
    let not_done = |i: &usize| !state.done.contains(scn.steps[*i].id.get_ref());
    let first = match &r.from {
        Some(f) => step_index(scn, "--from", f)?,
        None => match (0..scn.steps.len()).find(not_done) {
            Some(i) => i,
            None if matches!(r.until, Until::End) => scn.steps.len(),
            None => {
                return Err(Error::Usage(format!("lab {} has done every step of {}; `pglab step {} verify` runs the checks", state.lab, scn.name, state.lab)))
            }
        },
    };
    let last = match &r.until {
        Until::Next => first,
        Until::Step(s) => step_index(scn, "until", s)?,
        Until::End => scn.steps.len().saturating_sub(1),
    };
    if last < first && first < scn.steps.len() {
        return Err(Error::Usage(format!(
            "step `{}` comes before `{}`, where lab {} goes on from",
            scn.steps[last].id.get_ref(),
            scn.steps[first].id.get_ref(),
            state.lab
        )));
    }
    Ok((first..=last).filter(|i| *i < scn.steps.len() && (r.from.is_some() || not_done(i))).collect())
}

/// What the image says it was built from (nothing when it cannot be read).
async fn versions_of(docker: &bollard::Docker, image: &str) -> Option<Versions> {
    image::built(docker, image).await.ok().and_then(|b| Versions::from_built(&b))
}

/// What a report says about where it ran.
#[derive(Clone)]
struct Meta {
    platform: Platform,
    image: String,
    versions: Option<Versions>,
    lab_timings: StartTimings,
    from: Option<String>,
    checkpoint: Option<crate::outcome::CheckpointUse>,
    started: Instant,
}

fn build_report<L: Hosts>(scn: &Scenario, lab: &L, meta: Meta, executed: Executed) -> RunReport {
    let hosts = lab.hosts().iter().map(|h| HostInfo { name: h.name.clone(), kind: h.kind, role: scn.role_of(&h.name), ip: h.ip.to_string() }).collect();
    RunReport {
        scenario: scn.name.clone(),
        description: scn.description.clone(),
        platform: meta.platform,
        image: meta.image,
        versions: meta.versions,
        lab: lab.id().to_string(),
        hosts,
        from: meta.from,
        checkpoint: meta.checkpoint,
        lab_timings: meta.lab_timings,
        passed: executed.passed(),
        interrupted: executed.interrupted(),
        error: executed.error.as_ref().map(|e| e.failure(|t| lab.transcript().redact(t))),
        phases: executed.phases,
        steps: executed.steps,
        checks: executed.checks,
        defects: scn.defects.clone(),
        total: meta.started.elapsed(),
        transcript: lab.transcript().entries(),
        series: executed.series,
    }
}

/// The report so far, written where the finished one goes: a run killed
/// mid-way leaves valid files that say it had not finished. A file that
/// cannot be written is said once the run ends, not here.
fn write_live(report: &RunReport, dir: Option<&Path>, junit: Option<&Path>) {
    if let Some(dir) = dir {
        if let Err(e) = crate::report::write(dir, report) {
            tracing::debug!("report so far: {e}");
        }
    }
    if let Some(path) = junit {
        if let Err(e) = crate::report::write_whole(path, crate::report::junit(report).as_bytes()) {
            tracing::debug!("JUnit so far: {e}");
        }
    }
}

/// Writes the transcript and report, and remembers them for `pglab report`.
fn write_report(dir: &Path, report: &RunReport, state: Option<RunState>) -> Result<()> {
    let (md, json) = crate::report::write(dir, report)?;
    if let Some(mut s) = state {
        s.reports.extend([md, json].map(|p| std::fs::canonicalize(&p).unwrap_or(p)));
        s.save()?;
    }
    Ok(())
}
