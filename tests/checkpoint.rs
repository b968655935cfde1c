//! Checkpoints end to end, through the `pglab` binary: the tutorial saved
//! after step 8, two copies of it started at once from the saved images,
//! the remaining steps and every check passing on each, then the
//! checkpoint removed with nothing of it left.

mod support;

use std::process::{Command, Output};

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

/// Checkpoint images labelled with `key`, asked of the engine directly.
async fn images_of(key: &str) -> usize {
    use bollard::query_parameters::ListImagesOptions;
    let filters = std::collections::HashMap::from([("label".to_string(), vec![format!("pglab.checkpoint={key}")])]);
    docker().await.list_images(Some(ListImagesOptions { filters: Some(filters), ..Default::default() })).await.expect("list images").len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lab_restored_twice_at_once_finishes_the_tutorial_on_each() {
    // A stanza of its own: a key no other test shares, so this run saves it.
    let stanza = format!("cp{}", std::process::id());
    let set = format!("stanza={stanza}");
    let reports = tempfile::tempdir().unwrap();
    let r = reports.path().to_str().unwrap();
    let until = ["run", "tutorial", "--platform", "debian-12", "--until", "8-streaming", "--checkpoint", "--set", &set, "--transcript", r, "--json"];

    let saved = json(&pglab(&until));
    assert!(saved["checkpoint"].is_null(), "the first run replays: {}", saved["checkpoint"]);
    let list = json(&pglab(&["checkpoint", "list", "--json"]));
    let mine: Vec<&serde_json::Value> = list.as_array().unwrap().iter().filter(|c| c["scenario"] == "tutorial" && c["step"] == "8-streaming").collect();
    let keys: Vec<String> = mine.iter().map(|c| c["key"].as_str().unwrap().to_string()).collect();

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
        let key = report["checkpoint"]["key"].as_str().unwrap_or_else(|| panic!("started from a checkpoint: {report}")).to_string();
        assert!(keys.contains(&key), "{key} is one of {keys:?}");
        assert_eq!(report["checkpoint"]["step"], "8-streaming");
        let steps = report["steps"].as_array().unwrap();
        assert!(steps.iter().all(|s| s["restored"] == true && s["passed"] == true), "every step through 8 is the saving run's: {steps:?}");
        labs.push((key, report["lab"].as_str().unwrap().to_string()));
    }
    assert_ne!(labs[0].1, labs[1].1, "two labs");
    let (p0, p1) = (labs[0].1.clone(), labs[1].1.clone());
    // Both up at once, each at the same lab addresses: the steps after 8 and
    // every check (pg_hba by address, streaming, PITR) pass on each.
    let rest = |lab: String| std::thread::spawn(move || pglab(&["step", &lab, "verify", "--transcript", &std::env::temp_dir().to_string_lossy()]));
    let (a, b) = (rest(p0.clone()), rest(p1.clone()));
    for (lab, out) in [(p0.clone(), a.join().unwrap()), (p1.clone(), b.join().unwrap())] {
        assert!(out.status.success(), "lab {lab} from the checkpoint:\n{}", text(&out));
        let said = text(&out);
        for check in ["standby_data", "streaming", "pgbackrest", "hba_refuses", "ssh_keys", "pitr", "10-cron"] {
            assert!(said.contains(check), "{check} ran on {lab}:\n{said}");
        }
    }
    for lab in [&p0, &p1] {
        assert!(pglab(&["down", lab]).status.success());
    }

    // Removed: its record and its images.
    let key = &labs[0].0;
    assert!(images_of(key).await > 0);
    let rm = pglab(&["checkpoint", "rm", key]);
    assert!(rm.status.success(), "{}", text(&rm));
    assert_eq!(images_of(key).await, 0);
    let list = json(&pglab(&["checkpoint", "list", "--json"]));
    assert!(!list.as_array().unwrap().iter().any(|c| c["key"] == key.as_str()), "{list}");
}
