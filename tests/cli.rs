//! The `pglab` binary end to end: a kept lab to enter, inspect and remove.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{docker, leftovers, pglab_bin};

fn pglab(args: &[&str]) -> Output {
    Command::new(pglab_bin()).arg("--quiet").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("pglab runs")
}

/// Takes kept labs down when dropped: a failing assertion leaks none.
struct DownOnDrop(Vec<String>);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        for lab in &self.0 {
            let _ = pglab(&["down", lab]);
        }
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn kept_lab(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("lab ").and_then(|r| r.split_whitespace().next()).filter(|_| l.contains(" kept")))
        .unwrap_or_else(|| panic!("no kept lab in:\n{stdout}"))
        .to_string()
}

fn listed_step(lab: &str) -> String {
    let list = pglab(&["list"]);
    let line = String::from_utf8_lossy(&list.stdout).lines().find(|l| l.starts_with(lab)).map(str::to_string).expect("listed");
    line.split_whitespace().nth(1).unwrap_or("").to_string()
}

/// Every file of a bundle, by path inside it.
fn unpack(bundle: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let mut files = std::collections::BTreeMap::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(bundle).unwrap()));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        files.insert(path.split_once('/').map(|(_, rest)| rest.to_string()).unwrap_or(path), text);
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn run_until_keep_then_enter_step_report_replay_and_remove() {
    let reports = tempfile::tempdir().unwrap();
    let r = reports.path().to_str().unwrap();
    let junit = reports.path().join("junit.xml");
    let out = pglab(&["run", "tutorial", "--until", "2-role", "--keep", "--transcript", r, "--junit", junit.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lab = kept_lab(&stdout);
    assert!(stdout.contains("2-role") && !stdout.contains("2-password"), "stopped after 2-role:\n{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("name=\"step 2-role\"") && !xml.contains("2-password") && !xml.contains("<failure"), "{xml}");
    assert_eq!(listed_step(&lab), "tutorial@2-role");
    let list = String::from_utf8_lossy(&pglab(&["list"]).stdout).to_string();
    let line = list.lines().find(|l| l.starts_with(&lab)).unwrap_or_default();
    let ip = regex::Regex::new(r"standby=(\d+\.\d+\.\d+\.\d+)").unwrap();
    assert!(ip.is_match(line) && line.contains("kept"), "hosts with IPs: {line}");

    // Go on one step, then through step 5, then the standby's step 6.
    let step = pglab(&["step", &lab, "--transcript", r]);
    assert!(step.status.success() && text(&step).contains("2-password"), "{}", text(&step));
    assert_eq!(listed_step(&lab), "tutorial@2-password");
    let step = pglab(&["step", &lab, "5", "--transcript", r]);
    assert!(step.status.success(), "{}", text(&step));
    assert!(text(&step).contains("5-wait-up") && !text(&step).contains("6-apt-update"), "{}", text(&step));
    let sql = pglab(&["sql", &lab, "primary", "SHOW archive_mode"]);
    assert_eq!(String::from_utf8_lossy(&sql.stdout).trim(), "on", "step 3 changed the running server: {}", text(&sql));
    assert!(pglab(&["step", &lab, "6-pgpass", "--transcript", r]).status.success());
    let bad = pglab(&["step", &lab, "no-such-step"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));

    // --from re-runs a step after the scenario changed (here: unchanged, so a no-op edit).
    let again = pglab(&["run", "tutorial", "--from", "6-conf-global", "--until", "6-conf-stanza", "--lab", &lab, "--transcript", r]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already set"), "{}", text(&again));

    let exec = pglab(&["exec", &lab, "primary", "--", "pg_lsclusters", "--no-header"]);
    assert!(String::from_utf8_lossy(&exec.stdout).contains("online"), "{}", text(&exec));
    assert_eq!(pglab(&["exec", &lab, "primary", "--", "sh", "-c", "exit 4"]).status.code(), Some(4));
    let logs = pglab(&["logs", &lab, "primary", "--lines", "5"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("== /var/log/postgresql/"), "{}", text(&logs));
    assert_eq!(pglab(&["sql", &lab, "nohost", "SELECT 1"]).status.code(), Some(2));

    // The replicator's password is real: it is in the standby's .pgpass (read
    // by the engine, not by pglab) ...
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pglab::lab::state_dir(&lab).join("run.json")).unwrap()).unwrap();
    let secret = state["secrets"][0].as_str().unwrap().to_string();
    assert!(secret.len() > 16);
    let (_, pgpass) = support::exec_in(&docker().await, &format!("pglab-{lab}-standby"), "root", &["cat", "/var/lib/postgresql/.pgpass"]).await;
    assert!(pgpass.contains(&secret), "{pgpass}");
    // ... redacted from what pglab shows of the kept lab ...
    let shown = pglab(&["exec", &lab, "standby", "--", "cat", "/var/lib/postgresql/.pgpass"]);
    assert!(shown.status.success() && !text(&shown).contains(&secret) && text(&shown).contains(pglab::REDACTED), "{}", text(&shown));
    let sql = pglab(&["sql", &lab, "primary", &format!("SELECT '{secret}' AS echoed")]);
    assert!(sql.status.success() && !text(&sql).contains(&secret), "{}", text(&sql));

    // ... and nowhere in the bug bundle, which holds everything else.
    let bundle = reports.path().join("bug.tar.gz");
    let rep = pglab(&["report", &lab, "-o", bundle.to_str().unwrap()]);
    assert!(rep.status.success(), "{}", text(&rep));
    let files = unpack(&bundle);
    for f in [
        "manifest.json",
        "scenario.toml",
        "primary/pgbackrest.conf",
        "primary/postgresql.conf",
        "standby/pg_hba.conf",
        "primary/postgresql.log",
        "primary/pgbackrest-info.txt",
        "standby/versions.txt",
    ] {
        assert!(files.contains_key(f), "bundle lacks {f}: {:?}", files.keys().collect::<Vec<_>>());
    }
    assert!(files["standby/versions.txt"].contains("PostgreSQL") && files["standby/versions.txt"].contains("pgBackRest"), "{}", files["standby/versions.txt"]);
    assert!(files["primary/pgbackrest.conf"].contains("[tutorial]"), "{}", files["primary/pgbackrest.conf"]);
    assert!(files["standby/pgbackrest.conf"].contains("repo1-host="), "{}", files["standby/pgbackrest.conf"]);
    assert!(files["primary/postgresql.conf"].contains("archive_command"));
    assert!(
        files.iter().any(|(k, v)| k.starts_with("transcripts/") && k.ends_with(".md") && v.contains("PASSWORD '********'")),
        "the password step is in a transcript, redacted: {:?}",
        files.keys().collect::<Vec<_>>()
    );
    for (name, content) in &files {
        assert!(!content.contains(&secret), "{name} holds the secret");
    }
    let manifest: serde_json::Value = serde_json::from_str(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["step"], "6-conf-stanza");

    // A bundle replays its scenario in a fresh lab, up to where its lab got.
    let replay = pglab(&["run", bundle.to_str().unwrap(), "--transcript", r]);
    assert!(replay.status.success(), "{}", text(&replay));
    let shown = String::from_utf8_lossy(&replay.stdout).to_string();
    assert!(shown.contains("6-conf-stanza") && !shown.contains("6-pgpass") && !shown.contains("7-stanza-create"), "{shown}");

    let down = pglab(&["down", &lab]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(leftovers(&docker().await, &lab).await, Vec::<String>::new());
    assert!(!pglab::lab::state_dir(&lab).exists(), "the run state (with its secrets) goes with the lab");
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_removes_orphans_and_keeps_kept_labs() {
    let up = pglab(&["up", "--hosts", "pg1"]);
    assert!(up.status.success(), "{}", text(&up));
    let kept = String::from_utf8_lossy(&up.stdout).split_whitespace().nth(1).expect("lab id").to_string();
    let _down = DownOnDrop(vec![kept.clone()]);
    // An owner that dies without cleaning up leaves an orphan.
    let mut child = Command::new(pglab_bin()).args(["--quiet", "up", "--hosts", "pg1", "--foreground"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let orphan = line.split_whitespace().nth(1).expect("lab id").to_string();
    child.kill().unwrap();
    child.wait().unwrap();
    let docker = docker().await;
    assert!(!leftovers(&docker, &orphan).await.is_empty(), "SIGKILL leaves the lab behind");

    // A forced rebuild leaves the old host image untagged: gc removes it.
    let ours = Command::new("docker").args(["images", "--filter", "label=pglab.image", "--format", "{{.Repository}}:{{.Tag}}"]).output().unwrap();
    let base = String::from_utf8_lossy(&ours.stdout).lines().find(|l| !l.contains("<none>")).expect("a host image").to_string();
    let build = |n: u32| {
        let mut child = Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", "pglab-gc-test:dangling", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("FROM {base}\nLABEL pglab.gc-test={n}\n").as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let replaced = build(1);
    build(2);
    let exists = |id: &str| Command::new("docker").args(["image", "inspect", id]).output().unwrap().status.success();
    assert!(exists(&replaced), "the replaced image is still there, untagged");

    let gc = pglab(&["gc"]);
    assert!(gc.status.success(), "{}", text(&gc));
    assert!(!exists(&replaced), "gc removed the dangling image: {}", text(&gc));
    assert!(exists("pglab-gc-test:dangling") && exists(&base), "tagged images stay");
    assert!(Command::new("docker").args(["rmi", "pglab-gc-test:dangling"]).output().unwrap().status.success());
    assert_eq!(leftovers(&docker, &orphan).await, Vec::<String>::new(), "gc removed the orphan");
    assert!(!leftovers(&docker, &kept).await.is_empty(), "gc keeps a kept lab");
    // (`gc --all` would also take other tests' kept labs: `down` this one.)
    assert!(pglab(&["down", &kept]).status.success());
    assert_eq!(leftovers(&docker, &kept).await, Vec::<String>::new());
}

#[test]
fn new_scaffolds_a_commented_scenario_that_parses() {
    let dir = tempfile::tempdir().unwrap();
    let out = pglab(&["new", "demo", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let path = dir.path().join("demo.toml");
    let scn = pglab::Scenario::load(&path).expect("scaffold parses");
    assert_eq!(scn.name(), "demo");
    assert!(scn.step_ids().len() > 20 && !scn.check_names().is_empty());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("#:schema ../docs/scenario.schema.json\n# demo: a pglab scenario"), "{text}");
    assert!(text.contains("docs/scenarios.md"), "it points to the reference");
    assert_eq!(pglab(&["validate", path.to_str().unwrap()]).status.code(), Some(0));
    assert_eq!(pglab(&["new", "demo", "--dir", dir.path().to_str().unwrap()]).status.code(), Some(2), "no overwrite");
    assert_eq!(pglab(&["new", "../x", "--dir", dir.path().to_str().unwrap()]).status.code(), Some(2));
}

#[test]
fn bad_arguments_are_usage_errors_before_any_lab_starts() {
    for args in [
        &["run", "tutorial", "--until", "no-such-step"][..],
        &["run", "tutorial", "--check", "nosuch"],
        &["run", "tutorial", "--check", "pitr=yesterday"],
        &["run", "no-such-scenario"],
        &["step", "nosuchlab"],
        // chaos: a scenario that says nowhere faults may go, a length that is not one, a fault kind pglab lacks.
        &["chaos", "tutorial", "--seed", "1"],
        &["chaos", "failover-sync", "--seed", "1", "--duration", "soon"],
        &["chaos", "failover-sync", "--seed", "1", "--faults", "flood"],
    ] {
        let out = pglab(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    let out = pglab(&["run", "tutorial", "--bogus"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error: {}", text(&out));
    // Flags that only shape a new lab are refused with --from, not ignored.
    for flag in [&["--set", "stanza=x"][..], &["--platform", "debian-12"], &["--keep"]] {
        let out = pglab(&[&["run", "tutorial", "--from", "8-restore", "--lab", "nosuchlab"][..], flag].concat());
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {}", text(&out));
        assert!(text(&out).contains("does not apply to --from"), "{flag:?}: {}", text(&out));
    }
}

#[test]
fn list_into_a_closed_pipe_ends_quietly() {
    let mut child =
        Command::new(pglab_bin()).args(["list", "--json"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
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

/// Starts `pglab run tutorial`, waits until `after` has finished (so the
/// next step runs), and sends SIGINT. Returns the exit status, the lab and
/// the JSON report it wrote.
fn interrupt_after(after: &str) -> (Option<i32>, serde_json::Value) {
    use std::io::BufRead;
    let reports = tempfile::tempdir().unwrap();
    let mut child = Command::new(pglab_bin())
        .args(["run", "tutorial", "--transcript", reports.path().to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Not a terminal: one plain line per finished step on stderr.
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains(&format!(" {after} ")) && line.contains("ok") {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.contains(after)), "{after} never finished:\n{}", seen.join("\n"));
    // Keep reading, as a terminal would: the run goes on talking while it stops.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let said = rest.join().unwrap().join("\n");
    assert!(!said.contains("panicked"), "{said}");
    let report = std::fs::read_dir(reports.path()).unwrap().flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "json"));
    let report = report.unwrap_or_else(|| panic!("no report written; stdout:\n{}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_step_marks_it_interrupted_and_removes_the_lab_once() {
    let (code, report) = interrupt_after("7-check");
    let lab = report["lab"].as_str().unwrap();
    assert_eq!(code, Some(130), "exit code after SIGINT");
    assert_eq!(leftovers(&docker().await, lab).await, Vec::<String>::new(), "nothing of lab {lab} is left");
    assert!(!pglab::lab::state_dir(lab).exists(), "its state dir went too");
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["passed"], false);
    let steps = report["steps"].as_array().unwrap();
    let status = |id: &str| steps.iter().find(|s| s["id"] == id).map(|s| s["status"].as_str().unwrap().to_string());
    assert_eq!(status("7-check").as_deref(), Some("passed"));
    assert_eq!(status("7-backup").as_deref(), Some("interrupted"), "the running step shows as interrupted, not failed: {steps:#?}");
    assert!(steps.iter().all(|s| s["status"] != "failed"), "{steps:#?}");
    assert!(status("9-backup").is_none(), "nothing after the interrupt ran");
}

/// From any directory the shipped scenarios are found (they are inside the
/// binary); a `./scenarios/NAME.toml` of one's own comes first.
#[test]
fn shipped_scenarios_are_found_from_any_directory_and_a_local_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| Command::new(pglab_bin()).args(args).current_dir(dir.path()).output().expect("pglab runs");
    let listed = run(&["list-scenarios"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    let shipped: Vec<&str> = listed.lines().filter(|l| l.contains("shipped with pglab")).collect();
    let files = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")).unwrap().count();
    assert_eq!(shipped.len(), files, "every file of scenarios/ ships:\n{listed}");
    let ok = run(&["validate", "tutorial", "failover-async"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("failover-async: 3 hosts"), "the base it extends was found: {}", text(&ok));

    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    std::fs::write(dir.path().join("scenarios/tutorial.toml"), "name = \"mine\"\n").unwrap();
    let listed = run(&["list-scenarios"]);
    assert!(String::from_utf8_lossy(&listed.stdout).lines().any(|l| l.starts_with("tutorial ") && l.contains("./scenarios/tutorial.toml")));
    let mine = run(&["validate", "tutorial"]);
    assert_eq!(mine.status.code(), Some(2), "the local file is the one read: {}", text(&mine));
    assert!(text(&mine).contains("scenarios/tutorial.toml"), "{}", text(&mine));

    // A user's first command may be one that only unpacks the shipped
    // scenarios: their state dir is still made private.
    use std::os::unix::fs::PermissionsExt;
    let runtime = tempfile::tempdir().unwrap();
    let first = Command::new(pglab_bin()).args(["validate", "tutorial"]).env("XDG_RUNTIME_DIR", runtime.path()).current_dir(runtime.path()).output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let state = runtime.path().join("pglab");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700, "the state dir is the user's alone");
    // One an older pglab left open is closed again.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let again = Command::new(pglab_bin()).args(["validate", "tutorial"]).env("XDG_RUNTIME_DIR", runtime.path()).current_dir(runtime.path()).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(mode(&state), 0o700);
}

/// `pglab` with `env` set, from the repository.
fn pglab_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(pglab_bin());
    c.arg("--quiet").args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("pglab runs")
}

/// One case of each exit code of the README's table (130: `a_run_interrupted_*`).
#[tokio::test(flavor = "multi_thread")]
async fn each_exit_code_of_the_table_has_a_case() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    // 0: passed.
    assert_eq!(pglab(&["validate", "tutorial"]).status.code(), Some(0));
    // 1: a step failed (its command exited 1).
    std::fs::write(
        d("fails.toml"),
        "name = \"fails\"\n[[hosts]]\nname = \"a\"\n[[steps]]\nid = \"no\"\ntitle = \"a command that fails\"\nhost = \"a\"\nrun = \"false\"\n",
    )
    .unwrap();
    let failed = pglab(&["run", &d("fails.toml"), "--transcript", &d("reports")]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    // Its evidence has the log lines of the host its command reached (b, by
    // address), and not of one it did not (c), each marked by a line of its own
    // (written so that the statement's text is not the line).
    let mark = |h: &str| format!("[[steps]]\nid = \"mark-{h}\"\ntitle = \"t\"\nhost = \"{h}\"\nsql = \"DO $$ BEGIN RAISE LOG 'marker-of-%', '{h}'; END $$\"\n");
    let hosts: String = ["a", "b", "c"].iter().map(|h| format!("[[hosts]]\nname = \"{h}\"\n")).collect();
    let reach = "[[steps]]\nid = \"reach\"\ntitle = \"t\"\nhost = \"a\"\nrun = \"echo {b.ip}; exit 5\"\n";
    std::fs::write(d("reaches.toml"), format!("name = \"reaches\"\n{hosts}{}{}{reach}", mark("b"), mark("c"))).unwrap();
    let failed = pglab(&["run", &d("reaches.toml")]);
    let said = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{said}");
    assert!(said.contains("exit status 5") && said.contains("relevant log lines on b (the command reached it)"), "{said}");
    assert!(said.contains("marker-of-b") && !said.contains("marker-of-c"), "{said}");
    // 2: bad input, each kind the table names.
    let unwritable = d("a-file");
    std::fs::write(&unwritable, "").unwrap();
    let crafted = d("crafted.tar.gz");
    crafted_bundle(Path::new(&crafted), "../../escaped");
    for (args, env, says) in [
        (vec!["run", "tutorial", "--until", "7-backup", "--check", "pitr"], vec![], "cannot be used with"),
        (vec!["list"], vec![("PGLAB_TIMEOUT_DEFAULT", "soon")], "PGLAB_TIMEOUT_DEFAULT=soon"),
        (vec!["list"], vec![("PGLAB_TIMEOUT_DEFAULT", "1e20")], "PGLAB_TIMEOUT_DEFAULT=1e20"),
        (vec!["bench", "--runs", "0"], vec![], "0 is not in 1.."),
        (vec!["list"], vec![("PGLAB_LOG", "pglab=[")], "PGLAB_LOG=pglab=[: not a log filter"),
        (vec!["list", "-v"], vec![], "--quiet cannot be used with --verbose"),
        (vec!["run", &d("fails.toml"), "--transcript", &unwritable], vec![], "cannot write"),
        (vec!["run", &crafted], vec![], "use letters, digits, - and _"),
        (vec!["run", &d("fails.toml")], vec![("DOCKER_HOST", "ssh://me@nowhere")], "forward the remote socket"),
    ] {
        let o = pglab_env(&args, &env);
        assert_eq!(o.status.code(), Some(2), "{args:?} {env:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
    assert!(
        !Path::new(env!("CARGO_MANIFEST_DIR")).join("../escaped.toml").exists() && !dir.path().join("../../escaped.toml").exists(),
        "nothing written outside"
    );
    // 3: the environment (no engine where DOCKER_HOST points).
    let o = pglab_env(&["list"], &[("DOCKER_HOST", "tcp://127.0.0.1:9")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // 4: not supported on the platform (before the engine: none is needed to say so).
    std::fs::write(d("new.toml"), "name = \"new\"\nrequires = { pgbackrest = \">= 2.37\" }\n[[hosts]]\nname = \"a\"\n[[steps]]\nid = \"s\"\ntitle = \"t\"\nhost = \"a\"\nrun = \"true\"\n").unwrap();
    let o = pglab_env(&["run", &d("new.toml"), "--platform", "debian-11"], &[("DOCKER_HOST", "tcp://127.0.0.1:9")]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("not supported on debian-11: new needs pgbackrest >= 2.37 (debian-11 has pgBackRest 2.33)"), "{}", text(&o));
}

/// A bug bundle whose manifest names its scenario `scenario` (a path that
/// would climb out of the folder it is unpacked into).
fn crafted_bundle(path: &Path, scenario: &str) {
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let manifest = serde_json::json!({
        "lab": "abcd1234", "scenario": scenario, "platform": "debian-12", "image": "x", "pglab": "0",
        "step": null, "complete": false, "hosts": {}, "created_unix": 0
    })
    .to_string();
    for (name, data) in [("b/manifest.json", manifest.as_str()), ("b/scenario.toml", "name = \"x\"\n")] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

/// A run killed outright (SIGKILL: no handler runs) leaves a transcript,
/// report and JUnit file that parse and say the run had not finished, with
/// the steps done so far; `pglab gc` then collects its orphaned lab.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_run_leaves_valid_partial_reports() {
    use std::io::BufRead;
    let reports = tempfile::tempdir().unwrap();
    let junit = reports.path().join("junit.xml");
    let mut child = Command::new(pglab_bin())
        .args(["run", "tutorial", "--transcript", reports.path().to_str().unwrap(), "--junit", junit.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let reached = lines.by_ref().map_while(Result::ok).any(|l| l.contains(" 2-role ") && l.contains("ok"));
    assert!(reached, "2-role never finished");
    // Its report line is written right after the progress line: wait for it.
    let report_file = || std::fs::read_dir(reports.path()).unwrap().flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "json"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !report_file().and_then(|p| std::fs::read_to_string(p).ok()).is_some_and(|t| t.contains("\"2-role\"")) {
        assert!(std::time::Instant::now() < deadline, "the report never listed 2-role");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let json = report_file().expect("a report");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("the report parses");
    assert_eq!(report["passed"], false);
    assert!(report["error"]["message"].as_str().unwrap().contains("had not finished"), "{}", report["error"]);
    let steps: Vec<&str> = report["steps"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(steps.contains(&"2-role"), "the steps done so far: {steps:?}");
    assert!(std::fs::read_to_string(json.with_extension("md")).unwrap().contains("2-role"));
    let xml = std::fs::read_to_string(&junit).expect("a JUnit file");
    assert!(xml.starts_with("<?xml") && xml.trim_end().ends_with("</testsuites>") && xml.contains("2-role"), "{xml}");
    let lab = report["lab"].as_str().unwrap().to_string();
    let gc = pglab(&["gc"]);
    assert!(gc.status.success(), "{}", text(&gc));
    assert_eq!(leftovers(&docker().await, &lab).await, Vec::<String>::new(), "gc collected the killed run's lab");
}
