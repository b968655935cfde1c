//! `pglab chaos`: a scenario's `[chaos]` point given a random fault
//! schedule drawn from a seed (proptest's strategies and ChaCha), run as an
//! ordinary scenario file; when its claims fail, the schedule is shrunk
//! (each fault left out in turn, kept out while the same claim still
//! fails: one run per fault, the count only goes down; then each window
//! halved while it still fails) and the smallest
//! one still failing is kept as a file that replays it, with a bug bundle
//! of its lab.
//!
//! One mechanism: every try is a file written beside the others and run by
//! `pglab run`'s runner, so what was tried is what the file replays.

mod schedule;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use schedule::FaultKind;
use schedule::{Plan, Target};

use crate::error::{Error, Result};
use crate::lab::Keep;
use crate::outcome::{Fault, RunReport};
use crate::platform::Platform;
use crate::run::RunOptions;
use crate::scenario::Scenario;

/// What `pglab chaos` is asked.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// Draws the schedule: the same seed, the same schedule.
    pub seed: u64,
    /// How long the schedule lasts (its holds add up to this).
    pub duration: Duration,
    /// The kinds of fault drawn from.
    pub faults: Vec<FaultKind>,
    /// Faults drawn at most (some may not land; see the plan).
    pub most: usize,
    /// Runs spent shrinking a failing schedule, at most.
    pub shrink_runs: usize,
    /// Run on this platform instead of the scenario's.
    pub platform: Option<Platform>,
    /// `--set key=value`, as for `pglab run`.
    pub sets: Vec<(String, String)>,
    /// Where the tried files, their reports and the bundle go.
    pub out: PathBuf,
    /// Start each try from a checkpoint of the scenario's base when there is one.
    pub checkpoint: bool,
}

/// One schedule run.
#[derive(Debug, Clone)]
pub struct Try {
    /// The scenario file it ran.
    pub file: PathBuf,
    /// Faults that landed.
    pub faults: usize,
    /// What failed (a check's name, or a step's id), when something did.
    pub failed: Option<String>,
    /// Writing, running and bundling it.
    pub elapsed: Duration,
}

/// A schedule under which the scenario's claims failed.
#[derive(Debug, Clone)]
pub struct Violation {
    /// What failed, and how (the first failing check's evidence, or the step's error).
    pub what: String,
    /// Faults in the first failing schedule.
    pub faults_before: usize,
    /// And in the smallest.
    pub faults_after: usize,
    /// The smallest failing schedule, as a scenario file `pglab run` replays.
    pub shrunk: PathBuf,
    /// A bug bundle of the lab it failed on.
    pub bundle: Option<PathBuf>,
}

/// Every try, and the violation when one was found.
#[derive(Debug, Clone)]
pub struct ChaosOutcome {
    /// In the order they ran.
    pub tries: Vec<Try>,
    /// The smallest failing schedule found, if any failed.
    pub violation: Option<Violation>,
}

/// Writes the scenario with the schedule of `opts.seed` in it, without
/// running it (`pglab chaos --dry-run`): what a seed would do.
pub fn write_schedule(scn: &Scenario, opts: &ChaosOptions) -> Result<PathBuf> {
    write_try(scn, opts, &draw(scn, opts)?, 1)
}

/// The scenario with `plan` in it, written as try `n`'s file in `opts.out`.
fn write_try(scn: &Scenario, opts: &ChaosOptions, plan: &Plan, n: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(format!("creating {}", opts.out.display()), e))?;
    let file = opts.out.join(format!("{}-seed{}-try{n}.toml", scn.name, opts.seed));
    std::fs::write(&file, splice(scn, plan, opts.seed)?).map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
    Ok(file)
}

/// The schedule of `opts.seed` on the scenario's `[chaos]` hosts.
fn draw(scn: &Scenario, opts: &ChaosOptions) -> Result<Plan> {
    let decl = scn.chaos.as_ref().ok_or_else(|| Error::Usage(format!("{} has no [chaos] table: nothing says where faults may go", scn.path.display())))?;
    if opts.faults.is_empty() {
        return Err(Error::Usage("--faults: name at least one kind".into()));
    }
    let targets: Vec<Target> = decl
        .hosts
        .iter()
        .map(|h| Target { name: h.get_ref().clone(), role: scn.role_of(h.get_ref()), keep_up: decl.keep_up.iter().any(|k| k.get_ref() == h.get_ref()) })
        .collect();
    schedule::draw(opts.seed, &opts.faults, &targets, opts.duration.as_millis() as u64, opts.most)
}

/// Runs `scn` under the schedule of `opts.seed`; shrinks it when it fails.
/// `on_try` sees each try as it ends.
pub async fn chaos(scn: &Scenario, opts: &ChaosOptions, on_try: &mut dyn FnMut(&Try)) -> Result<ChaosOutcome> {
    let mut plan = draw(scn, opts)?;
    let mut session = Session { scn, opts, tries: Vec::new() };
    let Some(mut smallest) = session.attempt(&plan, on_try).await? else { return Ok(ChaosOutcome { tries: session.tries, violation: None }) };
    if !smallest.claim {
        let (file, what) = (smallest.file.display().to_string(), smallest.what.clone());
        smallest.discard();
        return Err(Error::Environment(format!("{file}: the schedule could not run ({what}); no claim was tested")));
    }
    let before = smallest.faults;
    // Fewer faults first (one run each, the count only goes down), then shorter windows.
    let mut runs = 0;
    session.shrink(&mut plan, &mut smallest, &mut runs, |p, i| (p.faults.len() > 1).then(|| p.without(i)), on_try).await?;
    session.shrink(&mut plan, &mut smallest, &mut runs, Plan::shorter, on_try).await?;
    let shrunk = opts.out.join(format!("{}-seed{}-shrunk.toml", scn.name, opts.seed));
    std::fs::copy(&smallest.file, &shrunk).map_err(|e| Error::io(format!("writing {}", shrunk.display()), e))?;
    let bundle = smallest.bundle.as_ref().map(|b| {
        let to = shrunk.with_extension("tar.gz");
        std::fs::rename(b, &to).map(|_| to).map_err(|e| Error::io("moving the bundle", e))
    });
    let violation = Violation { what: smallest.what.clone(), faults_before: before, faults_after: smallest.faults, shrunk, bundle: bundle.transpose()? };
    Ok(ChaosOutcome { tries: session.tries, violation: Some(violation) })
}

/// A try that failed, with what it left.
struct Failing {
    file: PathBuf,
    faults: usize,
    /// The check or step that failed (tries are compared by it).
    signature: String,
    /// A claim of the scenario failed (a check, or a step that is no
    /// fault): not a fault that could not be made.
    claim: bool,
    what: String,
    bundle: Option<PathBuf>,
}

impl Failing {
    fn same_as(&self, other: &Failing) -> bool {
        self.signature == other.signature
    }

    /// Takes `smaller`'s place; the bundle it replaces goes.
    fn replace_with(&mut self, smaller: Failing) {
        let old = std::mem::replace(self, smaller);
        old.discard();
    }

    fn discard(self) {
        if let Some(b) = self.bundle {
            let _ = std::fs::remove_file(b);
        }
    }
}

struct Session<'a> {
    scn: &'a Scenario,
    opts: &'a ChaosOptions,
    tries: Vec<Try>,
}

impl Session<'_> {
    /// One pass over the faults: `change` makes a smaller schedule of the
    /// `i`th, kept while the same claim still fails; at most
    /// `shrink_runs` runs in all passes.
    async fn shrink(
        &mut self,
        plan: &mut Plan,
        smallest: &mut Failing,
        runs: &mut usize,
        change: fn(&Plan, usize) -> Option<Plan>,
        on_try: &mut dyn FnMut(&Try),
    ) -> Result<()> {
        let mut i = 0;
        while *runs < self.opts.shrink_runs && i < plan.faults.len() {
            let Some(candidate) = change(plan, i) else {
                i += 1;
                continue;
            };
            *runs += 1;
            match self.attempt(&candidate, on_try).await? {
                Some(v) if v.same_as(smallest) => {
                    smallest.replace_with(v);
                    *plan = candidate;
                }
                other => {
                    other.into_iter().for_each(Failing::discard);
                    i += 1;
                }
            }
        }
        Ok(())
    }

    /// Writes the schedule into the scenario, runs it, and says what failed.
    async fn attempt(&mut self, plan: &Plan, on_try: &mut dyn FnMut(&Try)) -> Result<Option<Failing>> {
        let file = write_try(self.scn, self.opts, plan, self.tries.len() + 1)?;
        let t = Instant::now();
        let scn = Scenario::load(&file)?;
        let run = RunOptions {
            platform: self.opts.platform,
            keep: Keep::OnFailure,
            sets: self.opts.sets.clone(),
            report_dir: Some(self.opts.out.clone()),
            checkpoint: self.opts.checkpoint,
            ..Default::default()
        };
        let report = crate::run::run_scenario(&scn, &run).await?;
        // Ctrl-C: the runner tore the lab down; no more tries.
        if report.interrupted {
            return Err(Error::Interrupted);
        }
        let violation = match failure(&report, &scn) {
            None => None,
            Some((signature, what, claim)) => {
                Some(Failing { file: file.clone(), faults: plan.faults.len(), signature, what, claim, bundle: bundle(&report, &file).await? })
            }
        };
        let tried = Try { file, faults: plan.faults.len(), failed: violation.as_ref().map(|v| v.signature.clone()), elapsed: t.elapsed() };
        on_try(&tried);
        self.tries.push(tried);
        Ok(violation)
    }
}

/// What failed in a run: the first failing check, else the failed step;
/// and whether that is a claim (a step whose action makes or ends a fault
/// failing is a schedule that could not run, not a claim that failed).
fn failure(report: &RunReport, scn: &Scenario) -> Option<(String, String, bool)> {
    if report.passed {
        return None;
    }
    if let Some(c) = report.checks.iter().find(|c| !c.passed()) {
        return Some((format!("check {}", c.name), format!("check {}: {}", c.name, c.evidence), true));
    }
    let e = report.error.as_ref();
    let step = e.and_then(|e| e.step.clone()).unwrap_or_else(|| "the lab".into());
    let fault = scn.steps.iter().find(|s| *s.id.get_ref() == step).is_some_and(|s| s.action.fault() != Fault::No);
    Some((format!("step {step}"), format!("step {step}: {}", e.map(|e| e.message.as_str()).unwrap_or_default()), !fault))
}

/// The kept lab of a failed run, bundled beside its file, then removed.
async fn bundle(report: &RunReport, file: &Path) -> Result<Option<PathBuf>> {
    let docker = crate::engine::connect().await?;
    let Ok(lab) = crate::lab::Attached::find(&docker, &report.lab).await else { return Ok(None) };
    let to = file.with_extension("tar.gz");
    let written = lab.write_bundle(&to).await;
    crate::lab::inventory::remove_lab(&docker, &report.lab).await?;
    written.map(|_| Some(to))
}

/// The scenario's own text with the schedule after `[chaos].after` and the
/// heals after its last step; a base named beside it named by its path.
fn splice(scn: &Scenario, plan: &Plan, seed: u64) -> Result<String> {
    let decl = scn.chaos.as_ref().expect("checked by the caller");
    let hosts: Vec<String> = decl.hosts.iter().map(|h| h.get_ref().clone()).collect();
    let last = scn.steps.last().map(|s| s.id.get_ref().clone()).unwrap_or_default();
    let written = schedule::write(plan, seed, &hosts, decl.after.get_ref(), &last);
    let src = &scn.source;
    let own_from = scn.base.as_ref().map_or(0, |b| b.steps);
    let i = scn.steps.iter().position(|s| s.id.get_ref() == decl.after.get_ref()).expect("validated: an own step");
    let at = match scn.steps.get(i + 1).filter(|_| i + 1 >= own_from) {
        Some(next) => src[..next.id.span().start]
            .rfind("[[steps]]")
            .ok_or_else(|| Error::Usage(format!("{}: the step after `{}` is not a [[steps]] table", scn.path.display(), decl.after.get_ref())))?,
        None => src.len(),
    };
    let mut text = format!("{}{}\n{}\n{}", &src[..at], written.schedule, &src[at..], written.heals);
    if let Some(b) = &scn.base {
        let path = b.path.canonicalize().map_err(|e| Error::io(format!("finding {}", b.path.display()), e))?;
        // The schedule went in after `extends` (a file's steps follow it), or before it.
        let shift = if b.at.start >= at { text.len() - src.len() } else { 0 };
        text.replace_range(b.at.start + shift..b.at.end + shift, &toml::Value::String(path.display().to_string()).to_string());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::schedule::Planned;
    use super::*;

    fn fault(kind: FaultKind, host: &str, peer: Option<&str>, at_ms: u64, end_ms: Option<u64>) -> Planned {
        Planned { kind, host: host.into(), peer: peer.map(String::from), at_ms, end_ms, delay_ms: 50 }
    }

    #[test]
    fn the_schedule_goes_in_after_the_chaos_point_and_its_open_heals_after_the_last_step() {
        let scn = Scenario::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/failover-sync.toml"))).unwrap();
        let plan = Plan {
            faults: vec![fault(FaultKind::Pause, "standby", None, 1000, None), fault(FaultKind::Partition, "primary", Some("standby"), 0, None)],
            duration_ms: 5000,
        };
        // Written elsewhere, the file still finds its base.
        let dir = tempfile::tempdir().unwrap();
        let text = splice(&scn, &plan, 9).unwrap();
        let written = Scenario::parse(&dir.path().join("x.toml"), text).expect("the written file is a scenario");
        let ids = written.step_ids();
        let at = |id: &str| ids.iter().position(|s| *s == id).unwrap_or_else(|| panic!("no step {id}: {ids:?}"));
        assert!(at("f2-writing") < at("x01-partition") && at("x02-hold") < at("x03-pause"), "{ids:?}");
        // The pause ends before the file goes on, the partition after its last step.
        assert!(at("x04-hold") < at("x05-resume") && at("x07-standby-answers") < at("f3-kill"), "{ids:?}");
        assert_eq!(ids.last(), Some(&"x08-heal"), "{ids:?}");
        assert_eq!(written.chaos.as_ref().map(|c| c.after.get_ref().as_str()), Some("f2-writing"));
    }

    #[test]
    fn shrinking_leaves_faults_out_and_halves_windows_that_end_within() {
        let plan =
            Plan { faults: vec![fault(FaultKind::Pause, "standby", None, 0, Some(3000)), fault(FaultKind::Kill, "standby", None, 0, None)], duration_ms: 5000 };
        assert_eq!(plan.without(0).faults, vec![plan.faults[1].clone()]);
        assert_eq!(plan.shorter(0).unwrap().faults[0].end_ms, Some(1500));
        assert!(plan.shorter(1).is_none(), "on at the end: not shortened");
    }
}
