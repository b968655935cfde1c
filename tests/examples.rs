//! The crate's examples, run as a user runs them (`cargo run --example`):
//! each must pass its own assertions, say what it proved, and leave no lab.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// `target/<profile>/examples/<name>`, built if the test runner did not.
fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir").join("examples");
    let bin = dir.join(name);
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "pglab", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --example");
        assert!(status.success(), "building example {name} failed");
    }
    bin
}

#[rstest::rstest]
#[case::failover("failover", &["before: standby in recovery, caught up with primary", "failover: 500 orders kept, new primary takes writes on timeline"])]
#[case::backup_restore("backup_restore", &["restored to before_mistake: 1000|"])]
#[case::object_store("object_store", &["store https://s3 bucket pglab", "stanza mine in https://s3/pglab: ok, 1 full backup(s)"])]
#[tokio::test(flavor = "multi_thread")]
async fn example_runs_and_cleans_up(#[case] name: &str, #[case] says: &[&str]) {
    let bin = example_bin(name);
    let started = Instant::now();
    // From an empty directory: the shipped tutorial is found without ./scenarios.
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(&bin).current_dir(cwd.path()).output().expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{stderr}");
    for line in says {
        assert!(stdout.contains(line), "{name} does not say `{line}`: {stdout}");
    }
    eprintln!("example {name}: {:.1} s", started.elapsed().as_secs_f64());
    let lab = stdout.lines().find_map(|l| l.strip_prefix("lab ")).expect("the example names its lab").trim().to_string();
    let docker = support::docker().await;
    assert_eq!(support::leftovers(&docker, &lab).await, Vec::<String>::new(), "{name} left lab {lab}");
}
