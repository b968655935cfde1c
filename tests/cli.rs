//! The `pglab` binary end to end: a kept lab to enter, inspect and remove.

mod support;

use std::process::{Command, Output};

use support::{docker, leftovers, pglab_bin};

fn pglab(args: &[&str]) -> Output {
    Command::new(pglab_bin()).arg("--quiet").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("pglab runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn run_until_keep_then_enter_inspect_and_remove() {
    let reports = tempfile::tempdir().unwrap();
    let out = pglab(&["run", "tutorial", "--until", "5", "--keep", "--transcript", reports.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lab = stdout
        .lines()
        .find_map(|l| l.strip_prefix("lab ").and_then(|r| r.split_whitespace().next()).filter(|_| l.contains(" kept")))
        .unwrap_or_else(|| panic!("no kept lab in:\n{stdout}"))
        .to_string();
    assert!(stdout.contains("5-wait-up"), "stopped after step 5:\n{stdout}");
    assert!(!stdout.contains("6-apt-update"), "went past --until:\n{stdout}");

    let list = pglab(&["list"]);
    let line = String::from_utf8_lossy(&list.stdout).lines().find(|l| l.starts_with(&lab)).map(str::to_string).expect("listed");
    assert!(line.contains("tutorial@5-wait-up") && line.contains("kept"), "{line}");

    let exec = pglab(&["exec", &lab, "primary", "--", "pg_lsclusters", "--no-header"]);
    assert!(exec.status.success(), "{}", text(&exec));
    assert!(String::from_utf8_lossy(&exec.stdout).contains("online"), "{}", text(&exec));
    assert_eq!(pglab(&["exec", &lab, "primary", "--", "sh", "-c", "exit 4"]).status.code(), Some(4));

    let sql = pglab(&["sql", &lab, "primary", "SELECT count(*) FROM select_table"]);
    assert_eq!(String::from_utf8_lossy(&sql.stdout).trim(), "100", "{}", text(&sql));
    // Step 3 really changed the running server.
    let sql = pglab(&["sql", &lab, "primary", "SHOW archive_mode"]);
    assert_eq!(String::from_utf8_lossy(&sql.stdout).trim(), "on", "{}", text(&sql));

    let logs = pglab(&["logs", &lab, "primary", "--lines", "5"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("== /var/log/postgresql/"), "{}", text(&logs));

    let unknown_host = pglab(&["sql", &lab, "nohost", "SELECT 1"]);
    assert_eq!(unknown_host.status.code(), Some(2), "{}", text(&unknown_host));

    let down = pglab(&["down", &lab]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(leftovers(&docker().await, &lab).await, Vec::<String>::new());
}

#[test]
fn unknown_lab_and_bad_scenario_are_usage_errors() {
    let out = pglab(&["sql", "nosuchlab", "primary", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no lab `nosuchlab`"), "{}", text(&out));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"bad\"\n[[hosts]]\nname = \"primary\"\n[[steps]]\nid = \"1\"\ntitle = \"t\"\nhost = \"primary\"\nrn = \"true\"\n").unwrap();
    let out = pglab(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = text(&out);
    assert!(err.contains("bad.toml:8:1") && err.contains("unknown field `rn`"), "{err}");
}
