//! One test per scenario file: each runs on a fresh lab and must pass, with
//! outcomes checked here too (not only the runner's own verdict).

mod support;

use std::path::PathBuf;

use pglab::runner::{run, RunOptions, RunReport};
use pglab::scenario::Scenario;
use rstest::rstest;

async fn run_file(path: &PathBuf) -> (Scenario, RunReport, tempfile::TempDir) {
    let scn = Scenario::load(path).expect("scenario parses");
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        // Slow checks (cron firing) run unless PGLAB_FAST=1.
        slow: !std::env::var("PGLAB_FAST").is_ok_and(|v| v == "1"),
        report_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let report = run(&scn, &opts, &pglab::progress::Progress::hidden()).await.expect("scenario runs");
    (scn, report, dir)
}

#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn scenario(#[files("scenarios/*.toml")] path: PathBuf) {
    let (scn, report, dir) = run_file(&path).await;
    let docker = support::docker().await;
    assert_eq!(support::leftovers(&docker, &report.lab).await, Vec::<String>::new(), "lab leaked");

    let failed: Vec<String> = report
        .steps
        .iter()
        .filter(|s| !s.passed)
        .map(|s| format!("{}: {}", s.id, s.observed))
        .chain(report.checks.iter().filter(|c| !c.passed).map(|c| format!("check {}: {}", c.name, c.detail)))
        .collect();
    assert!(report.passed, "{} failed: {:?}\n{failed:#?}", scn.name, report.error);
    assert_eq!(report.steps.len(), scn.steps.len(), "every step ran");

    // Every check the file declares ran (slow ones only when asked) and passed.
    let slow = !std::env::var("PGLAB_FAST").is_ok_and(|v| v == "1");
    let want: Vec<&str> = scn.verify.iter().filter(|v| slow || !v.check.is_slow()).map(|v| v.check.name()).collect();
    let got: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(got, want);

    // A check with `after` starts only once those steps have ended; the
    // others only after every step (what runs beside what is causal).
    let end_of = |id: &str| report.steps.iter().find(|s| s.id == id).map(|s| s.at + s.elapsed).expect("step ran");
    let last_end = report.steps.iter().map(|s| s.at + s.elapsed).max().unwrap_or_default();
    for (v, c) in scn.verify.iter().filter(|v| slow || !v.check.is_slow()).zip(&report.checks) {
        if v.after.is_empty() {
            assert!(c.at >= last_end, "check {} started at {:?}, before the last step ended at {last_end:?}", c.name, c.at);
        }
        for a in &v.after {
            assert!(c.at >= end_of(a), "check {} started at {:?}, before {a} ended", c.name, c.at);
        }
    }

    // Each declared defect was observed: its evidence steps ran as expected.
    for d in &scn.defects {
        let evidence = report.steps.iter().filter(|s| s.defect.as_ref().is_some_and(|x| x.id == d.id)).count();
        assert!(evidence > 0, "defect {} has no evidence step", d.id);
    }

    // Secrets never reach transcripts or reports.
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 2, "a transcript and a report: {files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!regex_secret().is_match(&text), "a secret leaked into {}", f.display());
    }

    // An executed guide: every command a step runs is in the transcript as written.
    let cmds: Vec<&str> = report.transcript.iter().map(|e| e.cmd.as_str()).collect();
    for step in scn.steps.iter().filter_map(|s| s.run.as_ref()) {
        let line = step.get_ref();
        if !line.contains('{') {
            assert!(cmds.contains(&line.as_str()), "`{line}` is not in the transcript");
        }
    }
    for s in scn.steps.iter().filter_map(|s| s.sql.as_ref()).filter(|q| q.get_ref().contains("{secret.")) {
        let shown = report.transcript.iter().find(|e| e.cmd.starts_with(s.get_ref().split('{').next().unwrap())).expect("secret step recorded");
        assert!(shown.cmd.contains(pglab::report::REDACTED), "{}", shown.cmd);
    }

    // Measurements are there for reports and benchmarks.
    for c in &report.checks {
        match c.name.as_str() {
            "streaming" => {
                assert!(c.metrics["inserts"] >= 1.0);
                assert!(c.metrics["latency_p50_ms"] <= c.metrics["latency_p95_ms"]);
                assert!(c.metrics["latency_p95_ms"] <= c.metrics["latency_max_ms"]);
            }
            "pitr" => {
                let Some(pglab::scenario::CheckDecl::Pitr { targets, .. }) = scn.verify.iter().map(|v| &v.check).find(|d| d.name() == "pitr") else { unreachable!() };
                for kind in targets {
                    assert!(c.metrics.contains_key(&format!("restore_{kind}_ms")), "{kind} restore measured");
                }
            }
            _ => {}
        }
    }
}

/// Generated secrets look like `pw` + 36 hex digits.
fn regex_secret() -> regex::Regex {
    regex::Regex::new(r"pw[0-9a-f]{36}").unwrap()
}
