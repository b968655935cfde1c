//! `pglab chaos` on failover-sync (a writer, synchronous replication, a
//! failover after the schedule, 0 acknowledged commits lost): the claims
//! hold under drawn schedules, and with a planted defect
//! (`synchronous_commit = local`) a schedule is found that loses commits,
//! shrunk, and written as a scenario file that replays it.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pglab::chaos::{chaos, ChaosOptions, ChaosOutcome, FaultKind};
use pglab::{Platform, Scenario};

fn options(seed: u64, faults: &[FaultKind], out: &Path) -> ChaosOptions {
    ChaosOptions {
        seed,
        duration: Duration::from_secs(15),
        faults: faults.to_vec(),
        most: 4,
        shrink_runs: 4,
        platform: Some(Platform::Debian12),
        sets: Vec::new(),
        out: out.to_path_buf(),
        checkpoint: true,
    }
}

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// The steps of a written schedule that start or end a fault (not holds, not the end's marks).
fn fault_steps(file: &Path) -> Vec<String> {
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let kinds = ["partition", "latency", "pause", "restart", "kill"];
    doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .filter(|id| id.starts_with('x') && kinds.iter().any(|k| id.ends_with(&format!("-{k}"))))
        .collect()
}

/// Every try's lab is gone (each report names its lab).
async fn no_lab_left(out: &Path) {
    let docker = support::docker().await;
    for e in std::fs::read_dir(out).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "json")) {
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
        let lab = report["lab"].as_str().unwrap();
        assert_eq!(support::leftovers(&docker, lab).await, Vec::<String>::new(), "lab {lab} leaked");
    }
}

async fn run(scn: &Scenario, opts: &ChaosOptions) -> ChaosOutcome {
    chaos(scn, opts, &mut |t| eprintln!("try {} ({} faults, {:.1} s): {:?}", t.file.display(), t.faults, t.elapsed.as_secs_f64(), t.failed))
        .await
        .expect("chaos runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planted_defect_is_found_and_shrunk_to_at_most_three_faults() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(scenarios().join("failover-sync.toml")).unwrap();
    let planted = src
        .replace("synchronous_commit = \"on\"", "synchronous_commit = \"local\"")
        .replace("scenario = \"tutorial\"", &format!("scenario = {:?}", scenarios().join("tutorial").display().to_string()));
    assert!(planted.contains("\"local\""), "the defect is planted");
    let file = dir.path().join("planted.toml");
    std::fs::write(&file, planted).unwrap();
    let scn = Scenario::load(&file).unwrap();

    // Network faults and pauses: commits acknowledged by the primary alone are lost when the standby is cut off or behind.
    let faults = [FaultKind::Partition, FaultKind::Latency, FaultKind::Pause];
    let mut found = None;
    for seed in 1..=4 {
        let out = dir.path().join(format!("seed{seed}"));
        let outcome = run(&scn, &options(seed, &faults, &out)).await;
        no_lab_left(&out).await;
        if let Some(v) = outcome.violation {
            found = Some((outcome.tries, v));
            break;
        }
    }
    let (tries, v) = found.expect("a schedule of seeds 1-4 loses acknowledged commits under synchronous_commit = local");
    assert!(v.what.starts_with("check writes") && v.what.contains("at most 0 may be lost"), "{}", v.what);
    assert!(v.faults_after <= 3 && v.faults_after <= v.faults_before, "{} faults shrunk to {}", v.faults_before, v.faults_after);
    // Shrinking kept only schedules that failed the same way.
    assert_eq!(tries.iter().filter(|t| t.failed.is_some()).map(|t| t.failed.as_deref()).collect::<std::collections::BTreeSet<_>>().len(), 1);
    // The smallest is an ordinary scenario file whose steps are its faults.
    Scenario::load(&v.shrunk).expect("the shrunk schedule is a scenario pglab runs");
    let steps = fault_steps(&v.shrunk);
    assert!(!steps.is_empty() && steps.len() <= 2 * v.faults_after, "{steps:?}");
    let bundle = v.bundle.expect("a bug bundle of the failing lab");
    assert!(std::fs::metadata(&bundle).unwrap().len() > 1000, "{}", bundle.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_sync_loses_nothing_under_drawn_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let scn = Scenario::load(&scenarios().join("failover-sync.toml")).unwrap();
    for seed in [1, 2] {
        let out = dir.path().join(format!("seed{seed}"));
        let outcome = run(&scn, &options(seed, &FaultKind::ALL, &out)).await;
        no_lab_left(&out).await;
        assert!(outcome.violation.is_none(), "seed {seed}: {:?}", outcome.violation);
        assert_eq!(outcome.tries.len(), 1);
        assert!(outcome.tries[0].faults >= 1, "seed {seed}: no fault landed");
        assert!(!fault_steps(&outcome.tries[0].file).is_empty());
    }
}
