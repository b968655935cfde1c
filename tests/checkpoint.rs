//! Checkpoints end to end: the tutorial saved after step 8 (without the
//! spare `pitr`, which nothing through 8 names), two copies of it started
//! at once from the saved images (the spare fresh), the remaining steps and
//! every check (PITR into the spare) passing on each, a restored lab not
//! kept unless asked, then the checkpoint removed with nothing of it left.

mod support;

use std::process::{Command, Output};

use pglab::prelude::*;
use support::{docker, pglab_bin};

fn pglab(args: &[&str]) -> Output {
    Command::new(pglab_bin()).arg("--quiet").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("pglab runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn keys() -> Vec<String> {
    let list = json(&pglab(&["checkpoint", "list", "--json"]));
    list.as_array().unwrap().iter().map(|c| c["key"].as_str().unwrap().to_string()).collect()
}

/// Checkpoint images labelled with `key`, asked of the engine directly.
async fn images_of(key: &str) -> usize {
    use bollard::query_parameters::ListImagesOptions;
    let filters = std::collections::HashMap::from([("label".to_string(), vec![format!("pglab.checkpoint={key}")])]);
    docker().await.list_images(Some(ListImagesOptions { filters: Some(filters), ..Default::default() })).await.expect("list images").len()
}

/// Whatever the test leaves (kept labs, its checkpoint), removed even when it fails.
#[derive(Default)]
struct Cleanup {
    labs: Vec<String>,
    key: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for lab in &self.labs {
            let _ = pglab(&["down", lab]);
        }
        if let Some(k) = &self.key {
            let _ = pglab(&["checkpoint", "rm", k]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lab_restored_twice_at_once_finishes_the_tutorial_on_each() {
    // A stanza of its own: a key no other test shares, so this run makes it.
    let stanza = format!("cp{}", std::process::id());
    let set = format!("stanza={stanza}");
    let reports = tempfile::tempdir().unwrap();
    let r = reports.path().to_str().unwrap();
    let until = ["run", "tutorial", "--platform", "debian-12", "--until", "8-streaming", "--checkpoint", "--set", &set, "--transcript", r, "--json"];
    let mut cleanup = Cleanup::default();

    // Two runs at once want it, and it is not there: one makes it (then
    // starts from it), the other waits for it.
    let before = keys();
    let firsts: Vec<serde_json::Value> = std::thread::scope(|s| {
        let (a, b) = (s.spawn(|| pglab(&until)), s.spawn(|| pglab(&until)));
        vec![json(&a.join().unwrap()), json(&b.join().unwrap())]
    });
    // (Other tests make checkpoints of their own meanwhile: this one is by its key.)
    let key = firsts[0]["checkpoint"]["key"].as_str().unwrap_or_else(|| panic!("from a checkpoint: {}", firsts[0])).to_string();
    cleanup.key = Some(key.clone());
    assert!(!before.contains(&key) && keys().contains(&key), "{key} is new");
    assert_eq!(firsts[1]["checkpoint"]["key"], key.as_str(), "both runs started from the one checkpoint: {}", firsts[1]["checkpoint"]);
    let made: Vec<bool> = firsts.iter().map(|f| f["checkpoint"]["made"] == true).collect();
    assert_eq!(made.iter().filter(|m| **m).count(), 1, "exactly one run made it: {made:?}");
    // A spare no step through 8 names was not started, nor saved.
    let names = |r: &serde_json::Value| r["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names(&firsts[0]), ["primary", "standby"], "{}", firsts[0]["hosts"]);
    assert_eq!(images_of(&key).await, 2, "an image per started host");

    // Two copies at once, each kept to go on with.
    let copies: Vec<Output> = std::thread::scope(|s| {
        let keep = || {
            let mut args = until.to_vec();
            args.push("--keep");
            s.spawn(move || pglab(&args))
        };
        let (a, b) = (keep(), keep());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let mut labs = Vec::new();
    for c in &copies {
        let report = json(c);
        cleanup.labs.push(report["lab"].as_str().unwrap().to_string());
        assert_eq!(report["checkpoint"]["key"], key.as_str(), "{}", report["checkpoint"]);
        assert_eq!(report["checkpoint"]["made"], false);
        // Kept to go on with: every host, the spare started fresh beside the restored two.
        assert_eq!(names(&report), ["primary", "standby", "pitr"], "{}", report["hosts"]);
        let steps = report["steps"].as_array().unwrap();
        assert!(steps.iter().all(|s| s["restored"] == true && s["passed"] == true), "every step through 8 is the saving run's: {steps:?}");
        labs.push(report["lab"].as_str().unwrap().to_string());
    }
    assert_ne!(labs[0], labs[1], "two labs");
    // Both up at once, each at the same lab addresses: the steps after 8 and
    // every check (pg_hba by address, streaming, PITR) pass on each.
    let verified: Vec<Output> = std::thread::scope(|s| {
        let rest = |lab: &String| {
            let lab = lab.clone();
            s.spawn(move || pglab(&["step", &lab, "verify", "--transcript", r]))
        };
        let (a, b) = (rest(&labs[0]), rest(&labs[1]));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    for (lab, out) in labs.iter().zip(&verified) {
        let said = text(out);
        assert!(out.status.success(), "lab {lab} from the checkpoint:\n{said}");
        for line in ["9-backup", "10-cron", "check standby_data", "check streaming", "check pgbackrest", "check hba_refuses", "check ssh_keys", "check pitr"] {
            assert!(said.contains(line), "`{line}` on {lab}:\n{said}");
        }
    }

    // A restored lab carries the labels of its own run, not the saving lab's:
    // not kept unless asked.
    let lab = ScenarioLab::new("tutorial").platform(Platform::Debian12).set("stanza", &stanza).through("8-streaming").start().await.unwrap();
    let summary = support::engine().await.labs().await.unwrap().into_iter().find(|l| l.lab == lab.id).expect("listed");
    assert!(!summary.kept, "{summary:?}");
    lab.shutdown().await.unwrap();

    // Removed: its record and its images.
    for lab in std::mem::take(&mut cleanup.labs) {
        assert!(pglab(&["down", &lab]).status.success());
    }
    let rm = pglab(&["checkpoint", "rm", &key]);
    assert!(rm.status.success(), "{}", text(&rm));
    cleanup.key = None;
    assert_eq!(images_of(&key).await, 0);
    assert!(!keys().contains(&key));
}

/// A point after a cluster stopped and started again, and a store added
/// after it: `multi-repo` starts from `rejoin`'s lab once its standby
/// streams (its own cluster was stopped, the standby restored into it,
/// started and waited for). The saving run starts the three saved hosts
/// alone; a restored lab starts the store fresh, with a CA of its own
/// whose certificate the restored hosts are given, and the steps after
/// the point reach the store over TLS from them.
#[tokio::test(flavor = "multi_thread")]
async fn a_lab_from_before_a_store_was_added_reaches_the_new_store() {
    let set = format!("stanza=mr{}", std::process::id());
    let until = ["run", "multi-repo", "--platform", "debian-12", "--until", "s5-streaming", "--checkpoint", "--set", &set, "--json"];
    let mut cleanup = Cleanup::default();
    let first = json(&pglab(&until));
    let key = first["checkpoint"]["key"].as_str().unwrap_or_else(|| panic!("from a checkpoint: {first}")).to_string();
    cleanup.key = Some(key.clone());
    assert_eq!(first["checkpoint"]["made"], true, "{}", first["checkpoint"]);
    assert_eq!(images_of(&key).await, 3, "primary, standby and repo: the store was not started by the saving run");

    let kept = json(&pglab(&[&until[..], &["--keep"]].concat()));
    let lab = kept["lab"].as_str().unwrap().to_string();
    cleanup.labs.push(lab.clone());
    assert_eq!((&kept["checkpoint"]["key"], &kept["checkpoint"]["made"]), (&key.as_str().into(), &false.into()), "{}", kept["checkpoint"]);
    let hosts: Vec<&str> = kept["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["primary", "standby", "repo", "s3"], "the store started beside the restored hosts");
    // The repository host, restored, makes the stanza in the new store and
    // archives to both repositories, the store's certificate checked
    // against the CA file it was given.
    let on = pglab(&["step", &lab, "m2-check"]);
    let said = text(&on);
    assert!(on.status.success(), "{said}");
    assert!(said.contains("m1-stanza-create") && said.contains("m2-check"), "{said}");
}
