//! Subcommands that run scenarios: `run`, `step`, `bench`, `new`.

use std::path::{Path, PathBuf};

use super::{out, RunArgs};
use crate::engine;
use crate::error::{Error, Result};
use crate::lab::{inventory, Keep};
use crate::outcome::RunReport;
use crate::progress::Progress;
use crate::run::{bundle, locate as resolve_scenario, CheckPick, Resume, RunOptions, Until};
use crate::scenario::{shipped, Scenario};

/// Every scenario `pglab run NAME` finds, and where it comes from.
pub(super) fn list_scenarios() -> Result<()> {
    let mut names: Vec<(String, String)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("scenarios") {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml") {
                let name = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                names.push((name, format!("./{}", p.display())));
            }
        }
    }
    for (name, _) in shipped::shipped() {
        if !names.iter().any(|(n, _)| n == name) {
            names.push((name.to_string(), "shipped with pglab".into()));
        }
    }
    names.sort();
    for (name, from) in names {
        let description = resolve_scenario(&name).and_then(|p| Scenario::load(&p)).map(|s| s.description).unwrap_or_default();
        out(format_args!("{name:<20} {from:<34} {description}"));
    }
    Ok(())
}

pub(super) async fn run(a: RunArgs, quiet: bool) -> Result<()> {
    if let Some(from) = &a.from {
        return run_from(&a, from, quiet).await;
    }
    // A bug bundle replays its scenario on its platform, up to where its lab got.
    let bundle = if bundle::is_bundle(&a.scenario) { Some(bundle::unpack(Path::new(&a.scenario))?) } else { None };
    let (path, platform, until) = match &bundle {
        Some(b) => {
            (b.scenario.clone(), a.platform.or(Some(b.manifest.platform)), a.until.clone().or_else(|| b.manifest.step.clone().filter(|_| !b.manifest.complete)))
        }
        None => (resolve_scenario(&a.scenario)?, a.platform, a.until.clone()),
    };
    let scn = Scenario::load(&path)?;
    let keep = match (a.keep, a.keep_on_failure) {
        (true, _) => Keep::Always,
        (_, true) => Keep::OnFailure,
        _ => Keep::Never,
    };
    let opts = RunOptions {
        platform,
        keep,
        until,
        slow: a.slow,
        sets: a.sets.clone(),
        report_dir: Some(a.transcript.clone()),
        checks: a.checks.clone(),
        junit: a.junit.clone(),
        checkpoint: a.checkpoint,
        // A lab that may be kept is for a person to enter and go on with
        // (`pglab step`, `run --from`, `shell`): every host there.
        every_host: keep != Keep::Never,
    };
    let progress = Progress::new(quiet);
    let report = crate::run::run(&scn, &opts, &progress).await;
    progress.finish();
    let report = report?;
    let l = &report.lab;
    if !report.interrupted && (a.keep || (a.keep_on_failure && !report.passed)) {
        let hint = format!("lab {l} kept: pglab shell {l} <host> / pglab step {l} / pglab report {l} / pglab down {l}");
        // With --json, stdout is the report alone.
        if a.json {
            eprintln!("{hint}");
        } else {
            out(hint);
        }
    }
    finish(&report, a.json, a.junit.as_deref(), &a.transcript)
}

/// `run --from`: the same scenario file, re-read, on its kept lab. Flags
/// that only shape a new lab are refused rather than ignored.
async fn run_from(a: &RunArgs, from: &str, quiet: bool) -> Result<()> {
    let refused = [("--platform", a.platform.is_some()), ("--set", !a.sets.is_empty()), ("--keep", a.keep), ("--keep-on-failure", a.keep_on_failure)];
    if let Some((flag, _)) = refused.iter().find(|(_, given)| *given) {
        return Err(Error::Usage(format!("{flag} does not apply to --from: the kept lab already has its platform, vars and keep")));
    }
    let scn = Scenario::load(&resolve_scenario(&a.scenario)?)?;
    let lab = match &a.lab {
        Some(l) => l.clone(),
        None => kept_lab_of(&engine::connect().await?, &scn.name).await?,
    };
    let until = a.until.clone().map(Until::Step).unwrap_or(Until::End);
    let resume =
        Resume { from: Some(from.to_string()), until, slow: a.slow, checks: a.checks.clone(), report_dir: Some(a.transcript.clone()), junit: a.junit.clone() };
    let progress = Progress::new(quiet);
    let report = crate::run::resume(&lab, &resume, &progress).await;
    progress.finish();
    finish(&report?, a.json, a.junit.as_deref(), &a.transcript)
}

pub(super) async fn step(lab: &str, step: &str, checks: Vec<CheckPick>, slow: bool, transcript: &Path, quiet: bool) -> Result<()> {
    let until = match step {
        "next" => Until::Next,
        "verify" | "end" => Until::End,
        s => Until::Step(s.to_string()),
    };
    if !checks.is_empty() && !matches!(until, Until::End) {
        return Err(Error::Usage("--check applies to `pglab step LAB verify` only".into()));
    }
    let resume = Resume { from: None, until, slow, checks, report_dir: Some(transcript.to_path_buf()), junit: None };
    let progress = Progress::new(quiet);
    let report = crate::run::resume(lab, &resume, &progress).await;
    progress.finish();
    finish(&report?, false, None, transcript)
}

pub(super) async fn bench(scenario: &str, runs: usize, json: Option<&Path>, quiet: bool) -> Result<()> {
    let scn = Scenario::load(&resolve_scenario(scenario)?)?;
    let progress = Progress::new(quiet);
    let mut reports = Vec::new();
    for i in 1..=runs {
        progress.phase(format!("bench run {i}/{runs}"));
        let r = crate::run::run(&scn, &RunOptions::default(), &progress).await?;
        if r.interrupted {
            return Err(Error::Interrupted);
        }
        if !r.passed {
            return Err(Error::Check(format!("bench run {i} failed: {:?}", r.error)));
        }
        reports.push(r);
    }
    progress.finish();
    out(crate::report::bench_table(&reports));
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&reports).expect("serializable")).map_err(|e| Error::io("writing bench json", e))?;
    }
    Ok(())
}

/// Checks every file, printing each good one's plan; all problems of all
/// files come back as one error (exit 2).
pub(super) fn validate(args: &[String]) -> Result<()> {
    let mut bad: Vec<crate::error::ScenarioError> = Vec::new();
    let mut other = None;
    for a in args {
        match resolve_scenario(a).and_then(|p| Scenario::load(&p)) {
            Ok(scn) => out(format_args!("ok: {}\n{}", scn.path.display(), crate::run::plan::describe(&scn))),
            Err(Error::Scenario(e)) => bad.push(*e),
            Err(e) => {
                crate::progress::say(format_args!("pglab: {e}"));
                other.get_or_insert(e);
            }
        }
    }
    let mut bad = bad.into_iter();
    match (bad.next(), other) {
        (Some(mut first), _) => {
            first.related.extend(bad);
            Err(Error::Scenario(Box::new(first)))
        }
        (None, Some(e)) => Err(e),
        (None, None) => Ok(()),
    }
}

pub(super) fn new(name: &str, dir: &Path) -> Result<()> {
    let path = new_scenario(name, dir)?;
    out(format!("wrote {}; run it with `pglab run {}`", path.display(), path.display()));
    Ok(())
}

/// The one kept lab running `scenario`, for `run --from` without `--lab`.
async fn kept_lab_of(docker: &bollard::Docker, scenario: &str) -> Result<String> {
    let labs: Vec<String> = inventory::list_labs(docker).await?.into_iter().filter(|l| l.scenario.as_deref() == Some(scenario)).map(|l| l.lab).collect();
    match labs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::Usage(format!("no kept lab of {scenario}: start one with `pglab run {scenario} --until STEP --keep`"))),
        many => Err(Error::Usage(format!("several labs of {scenario} ({}): name one with --lab", many.join(", ")))),
    }
}

/// Prints the report (or its JSON), writes JUnit, and turns the verdict into the exit code.
fn finish(report: &RunReport, json: bool, junit: Option<&Path>, dir: &Path) -> Result<()> {
    if let Some(path) = junit {
        crate::report::write_whole(path, crate::report::junit(report).as_bytes()).map_err(|e| Error::Usage(format!("--junit {}: {e}", path.display())))?;
    }
    if json {
        out(serde_json::to_string_pretty(report).expect("serializable"));
    } else {
        print_report(report, dir);
    }
    match (report.passed, report.interrupted) {
        (true, _) => Ok(()),
        (false, true) => Err(Error::Interrupted),
        // The run's own failure says which exit code it is (a step's engine
        // error is 3, not 1); a check that failed is 1.
        (false, false) => match &report.error {
            Some(f) => Err(Error::Run {
                scenario: report.scenario.clone(),
                platform: report.platform.to_string(),
                lab: report.lab.clone(),
                failure: Box::new(f.clone()),
            }),
            None => Err(Error::Check("a check failed".into())),
        },
    }
}

fn print_report(r: &RunReport, dir: &Path) {
    let phases: Vec<String> = r.phases.0.iter().map(|(p, d)| format!("{} {:.1}s", p.name(), d.as_secs_f64())).collect();
    let verdict = crate::report::verdict(r);
    out(format_args!(
        "{} on {}: {verdict} in {:.1}s (lab {} up in {} ms; {})",
        r.scenario,
        r.platform,
        r.total.as_secs_f64(),
        r.lab,
        r.lab_timings.total.as_millis(),
        phases.join(", ")
    ));
    for s in &r.steps {
        let tag = match (&s.defect, s.added) {
            (Some(d), _) => format!(" [{}]", d.id),
            (None, true) => " [added]".into(),
            _ => String::new(),
        };
        let mark = s.status.mark();
        out(format_args!("  {mark} {:<28} {:>6} ms  {}{tag}", s.id, s.elapsed.as_millis(), s.observed.lines().next().unwrap_or("")));
    }
    for c in &r.checks {
        out(format_args!(
            "  {} check {:<18} {:>6} ms  {}",
            if c.passed() { "ok  " } else { "FAIL" },
            c.name,
            c.elapsed.as_millis(),
            c.evidence.lines().next().unwrap_or("")
        ));
    }
    let base = dir.join(r.file_stem());
    out(format_args!("transcript: {}.md  report: {}.json", base.display(), base.display()));
}

/// Writes a commented scenario to start from: the corrected tutorial.
pub(crate) fn new_scenario(name: &str, dir: &Path) -> Result<PathBuf> {
    if !crate::vocab::is_ident(name) {
        return Err(Error::Usage(format!("scenario name `{name}`: {}", crate::vocab::IDENT_RULE)));
    }
    let path = dir.join(format!("{name}.toml"));
    if path.exists() {
        return Err(Error::Usage(format!("{} exists; pick another name or remove it", path.display())));
    }
    let tutorial = shipped::text("tutorial").expect("the tutorial ships");
    let body: String = tutorial.lines().skip_while(|l| l.starts_with('#') || l.is_empty()).map(|l| format!("{l}\n")).collect();
    let body = body.replacen("name = \"tutorial\"", &format!("name = \"{name}\""), 1);
    let text = format!(
        "#:schema ../docs/scenario.schema.json\n\
         # {name}: a pglab scenario, scaffolded from the corrected tutorial.\n\
         #\n\
         # Every key, action, check and variable, with types and defaults:\n\
         #   docs/scenarios.md (or `pglab schema --markdown`). With the #:schema line\n\
         #   above, a TOML language server completes keys and flags mistakes as you type.\n\
         #\n\
         # How it reads: [[hosts]] (the lab), [given] (the state before step 1),\n\
         # [[steps]] in order (each: id, title, host, and one action: run, config, sql,\n\
         # file, copy or wait), then [[verify]] checks. {{stanza}} below is from [vars].\n\
         #\n\
         # Check it:          pglab validate {path}\n\
         # Run it:            pglab run {path}\n\
         # Stop and enter:    pglab run {path} --until 8 --keep; pglab shell <lab> standby\n\
         # Then go on:        pglab step <lab> [next|STEP|verify]\n\n{body}",
        path = path.display()
    );
    Scenario::parse(&path, text.clone())?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}
