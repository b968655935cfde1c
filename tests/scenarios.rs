//! One test per scenario file and platform: each runs on a fresh lab and
//! must pass, and what its checks claim is then looked at again on the kept
//! lab with the test's own client (the engine's exec API and psql), so a
//! runner that reports success wrongly is caught. The same files run on
//! every platform built here (PostgreSQL 13, 15 and 17).

mod support;

use std::path::{Path, PathBuf};

use bollard::Docker;
use pglab::lab::Keep;
use pglab::outcome::StepStatus;
use pglab::platform::Platform;
use pglab::{run_scenario, Outline, RunOptions, RunReport, Scenario};
use rstest::rstest;

fn slow() -> bool {
    // Slow checks (cron firing) run unless PGLAB_FAST=1.
    !std::env::var("PGLAB_FAST").is_ok_and(|v| v == "1")
}

async fn run_file(path: &Path, platform: Platform) -> (Scenario, RunReport, tempfile::TempDir) {
    let scn = Scenario::load(path).expect("scenario parses");
    let dir = tempfile::tempdir().unwrap();
    // Kept, to be looked at independently below, then removed by the test.
    // A file that extends another starts from a checkpoint after its base's
    // last step (the first such run of a platform saves it) when another
    // file starts there too: one only this test would use costs a save and
    // a restore and spares nothing.
    let opts = RunOptions {
        platform: Some(platform),
        slow: slow(),
        keep: Keep::Always,
        report_dir: Some(dir.path().to_path_buf()),
        checkpoint: point_shared(path),
        ..Default::default()
    };
    let report = run_scenario(&scn, &opts).await.expect("scenario runs");
    (scn, report, dir)
}

/// Whether another file beside `path` extends the same scenario through the
/// same step (`[extends]`), so that a checkpoint there serves two tests.
fn point_shared(path: &Path) -> bool {
    let point = |p: &Path| -> Option<(String, String)> {
        let file: toml::Table = toml::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
        let e = file.get("extends")?.as_table()?;
        Some((e.get("scenario")?.as_str()?.to_string(), e.get("through").and_then(|t| t.as_str()).unwrap_or_default().to_string()))
    };
    let Some(mine) = point(path) else { return false };
    let others = std::fs::read_dir(path.parent().expect("a file in a folder")).expect("the scenarios folder").flatten().map(|e| e.path());
    others.filter(|p| p != path && p.extension().is_some_and(|x| x == "toml")).any(|p| point(&p).as_ref() == Some(&mine))
}

#[test]
fn only_a_shared_point_is_saved() {
    let shipped = |n: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{n}.toml"));
    assert!(point_shared(&shipped("partition")), "the tutorial's lab after 8-streaming");
    assert!(point_shared(&shipped("store-outage")), "s3-repo's, with async-archive");
    assert!(!point_shared(&shipped("encrypted-repo")), "s3-repo through 6-pgpass: its own");
    assert!(!point_shared(&shipped("tutorial")), "extends nothing");
}

#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn scenario(#[files("scenarios/*.toml")] path: PathBuf, #[values(Platform::Debian11, Platform::Debian12, Platform::Debian13)] platform: Platform) {
    let outline = Scenario::load(&path).expect("scenario parses").outline(platform);
    if let Some(why) = &outline.unsupported {
        return refused_before_any_lab(&path, platform, why).await;
    }
    let (scn, report, dir) = run_file(&path, platform).await;
    let docker = support::docker().await;
    let verified = std::panic::AssertUnwindSafe(async {
        assert_eq!(report.platform, platform);
        assert_report(&scn, &outline, &report, dir.path());
        ran_on(&docker, &report).await;
        spares_started_when_named(&docker, &outline, &report).await;
        verify_on_lab(&docker, &outline, &report).await;
        certificates_chain_to_the_lab_ca(&docker, &outline, &report).await;
        no_secret_anywhere(&report, dir.path()).await;
    });
    let outcome = futures_util::FutureExt::catch_unwind(verified).await;
    support::engine().await.remove_lab(&report.lab).await.expect("remove the kept lab");
    assert_eq!(support::leftovers(&docker, &report.lab).await, Vec::<String>::new(), "lab leaked");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A scenario whose `requires` the platform lacks is refused as not
/// supported (exit 4 in the CLI), naming the platform's version from the
/// table, before any lab: nothing is written where its reports would go.
async fn refused_before_any_lab(path: &Path, platform: Platform, why: &str) {
    let scn = Scenario::load(path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { platform: Some(platform), keep: Keep::Always, report_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    match run_scenario(&scn, &opts).await {
        Err(e @ pglab::Error::NotSupported { .. }) => {
            assert_eq!(e.exit_code(), 4);
            assert!(e.to_string().contains(why) && why.contains(&format!("has pgBackRest {}", platform.pgbackrest())), "{e}");
        }
        other => panic!("{} on {platform}: not refused as unsupported: {other:?}", scn.name()),
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no lab, no report");
}

/// Each host given a certificate holds one that the lab CA signed for its
/// name (openssl, not pglab, says so), with a key only postgres can read.
async fn certificates_chain_to_the_lab_ca(docker: &Docker, o: &Outline, report: &RunReport) {
    for host in &o.certificates {
        let c = format!("pglab-{}-{host}", report.lab);
        let verify =
            format!("openssl verify -CAfile /etc/pglab/lab-ca.crt -verify_hostname {host} /etc/pglab/tls/host.crt && stat -c '%a %U' /etc/pglab/tls/host.key");
        let (status, out) = support::exec_in(docker, &c, "root", &["sh", "-c", &verify]).await;
        assert_eq!(status, 0, "{host}: {out}");
        assert!(out.contains("host.crt: OK") && out.contains("600 postgres"), "{host}: {out}");
    }
}

/// What the runner's own report says.
fn assert_report(scn: &Scenario, o: &Outline, report: &RunReport, dir: &std::path::Path) {
    let failed: Vec<String> = report
        .steps
        .iter()
        .filter(|s| !s.passed)
        .map(|s| format!("{}: {}", s.id, s.observed))
        .chain(report.checks.iter().filter(|c| !c.passed()).map(|c| format!("check {}: {}", c.name, c.evidence)))
        .collect();
    assert!(report.passed, "{} failed: {:?}\n{failed:#?}", scn.name(), report.error);
    assert_eq!(report.steps.len(), o.steps.len(), "every step ran");

    // Every check the file declares ran (slow ones only when asked) and passed.
    let declared: Vec<_> = o.checks.iter().filter(|v| slow() || !v.slow).collect();
    let got: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(got, declared.iter().map(|v| v.name).collect::<Vec<_>>());

    // A check with `after` starts only once those steps have ended; the
    // others only after every step (what runs beside what is causal).
    let end_of = |id: &str| report.steps.iter().find(|s| s.id == id).map(|s| s.at + s.elapsed).expect("step ran");
    let last_end = report.steps.iter().map(|s| s.at + s.elapsed).max().unwrap_or_default();
    for (v, c) in declared.iter().zip(&report.checks) {
        if v.after.is_empty() {
            assert!(c.at >= last_end, "check {} started at {:?}, before the last step ended at {last_end:?}", c.name, c.at);
        }
        for a in &v.after {
            assert!(c.at >= end_of(a), "check {} started at {:?}, before {a} ended", c.name, c.at);
        }
    }

    // Each declared defect was observed: its evidence steps ran as expected,
    // unless every one is for other platforms (`when`).
    let skipped = |id: &str| report.steps.iter().any(|s| s.id == id && s.status == StepStatus::Skipped);
    for s in &o.steps {
        assert_eq!(skipped(&s.id), s.skipped.is_some(), "step {} skipped exactly when `when` says", s.id);
    }
    for d in &o.defects {
        let evidence = report.steps.iter().filter(|s| s.defect.as_ref().is_some_and(|x| x.id == d.id) && s.status == StepStatus::Passed).count();
        let declaring: Vec<_> = o.steps.iter().filter(|s| s.defect.as_deref() == Some(d.id.as_str())).collect();
        assert!(!declaring.is_empty(), "defect {} has no step that shows it", d.id);
        let elsewhere = declaring.iter().all(|s| s.skipped.is_some());
        assert!(evidence > 0 || elsewhere, "defect {} has no evidence step on {}", d.id, report.platform);
    }

    // Of each step this run ran, what ran in hosts is within its wall time;
    // a command step ran something there, and its transcript entries hold at
    // least that (a writer a step started may record under it afterwards).
    for s in report.steps.iter().filter(|s| !s.restored && s.status == StepStatus::Passed) {
        let in_host = s.in_host.unwrap_or_else(|| panic!("step {}: no in-host time", s.id));
        assert!(in_host <= s.elapsed, "step {}: {in_host:?} in hosts, more than its {:?}", s.id, s.elapsed);
        let entries: std::time::Duration = report.transcript.iter().filter(|e| e.step == s.id).filter_map(|e| e.in_host).sum();
        assert!(entries >= in_host, "step {}: its entries {entries:?}, its figure {in_host:?}", s.id);
        assert!(s.action != "run" || !in_host.is_zero(), "step {} ran a command, none of it in a host?", s.id);
    }

    // Secrets never reach transcripts or reports.
    let files: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 3, "a transcript, a report and its timeline: {files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!regex_secret().is_match(&text), "a secret leaked into {}", f.display());
    }

    // An executed guide: every command a step runs is in the transcript as written.
    let cmds: Vec<&str> = report.transcript.iter().map(|e| e.cmd.as_str()).collect();
    for step in o.steps.iter().filter(|s| !skipped(&s.id)) {
        match (step.action, step.value.as_str()) {
            ("run", Some(line)) if !line.contains('{') => assert!(cmds.contains(&line), "`{line}` is not in the transcript"),
            ("sql", Some(sql)) if sql.contains("{secret.") => {
                let prefix = sql.split('{').next().unwrap();
                let shown = report.transcript.iter().find(|e| e.cmd.starts_with(prefix)).expect("secret step recorded");
                assert!(shown.cmd.contains(pglab::REDACTED), "{}", shown.cmd);
            }
            _ => {}
        }
    }

    // Measurements are there for reports and benchmarks.
    for c in &report.checks {
        match c.name.as_str() {
            "streaming" => {
                let f = |n: &str| c.figures.get(n).unwrap_or_else(|| panic!("streaming measured {n}"));
                // As many inserts timed as the scenario asked for, each seen (a time above zero).
                let declared =
                    o.checks.iter().find(|d| d.name == "streaming").and_then(|d| d.params.get("inserts")).and_then(|v| v.as_integer()).unwrap_or(100);
                assert_eq!(f("inserts"), declared as f64, "inserts timed");
                assert!(f("latency_max") > 0.0 && f("latency_p50") > 0.0, "{:?}", c.figures);
            }
            "pitr" => {
                let pitr = o.checks.iter().find(|d| d.name == "pitr").expect("declared");
                for kind in pitr.params["targets"].as_array().expect("targets").iter().filter_map(|t| t.as_str()) {
                    assert!(c.figures.get(&format!("restore_{kind}")).is_some(), "{kind} restore measured");
                }
            }
            _ => {}
        }
    }
}

/// A store's objects are on a volume of its lab's (labelled, so its
/// teardown takes it), or on the small filesystem a scenario gives it:
/// never in the container's layers, where each file costs milliseconds.
async fn objects_off_the_layers(docker: &Docker, container: &str, lab: &str) {
    let dir = "/var/lib/pglab-s3";
    let info = docker.inspect_container(container, None).await.unwrap();
    let tmpfs = info
        .host_config
        .and_then(|h| h.mounts)
        .unwrap_or_default()
        .iter()
        .any(|m| m.target.as_deref() == Some(dir) && m.typ == Some(bollard::models::MountType::TMPFS));
    if tmpfs {
        return;
    }
    let mounts = info.mounts.unwrap_or_default();
    let m = mounts.iter().find(|m| m.destination.as_deref() == Some(dir)).unwrap_or_else(|| panic!("{container}: nothing mounted at {dir}: {mounts:?}"));
    let volume = docker.inspect_volume(m.name.as_deref().unwrap()).await.unwrap();
    assert_eq!(volume.labels.get("pglab.lab").map(String::as_str), Some(lab), "{container}: {dir} on {volume:?}");
}

/// The lab ran the platform's versions, asked of every host directly, and
/// the transcript opens with them.
async fn ran_on(docker: &Docker, report: &RunReport) {
    let want = report.platform.pg_major().to_string();
    let mut answered = 0;
    for h in &report.hosts {
        let c = format!("pglab-{}-{}", report.lab, h.name);
        let running = docker.inspect_container(&c, None).await.ok().and_then(|i| i.state).and_then(|s| s.running).unwrap_or(false);
        if !running {
            continue; // a host a fault killed
        }
        let (_, os) = support::exec_in(docker, &c, "root", &["sh", "-c", ". /etc/os-release; echo $VERSION_ID"]).await;
        if h.kind == pglab::lab::HostKind::S3 {
            // The object store has one image on every platform, and no PostgreSQL.
            let (status, _) = support::exec_in(docker, &c, "root", &["sh", "-c", "command -v postgres pg_ctlcluster"]).await;
            assert_ne!(status, 0, "{} runs no PostgreSQL", h.name);
            objects_off_the_layers(docker, &c, &report.lab).await;
            continue;
        }
        assert_eq!(report.platform.name(), format!("debian-{}", os.trim()), "{} runs the platform's Debian", h.name);
        let (status, v) = support::exec_in(docker, &c, "postgres", &["psql", "-XAtc", "SELECT current_setting('server_version_num')::int / 10000"]).await;
        if status == 0 {
            assert_eq!(v.trim(), want, "{} runs PostgreSQL {want}", h.name);
            answered += 1;
        }
    }
    assert!(answered > 0, "no host of lab {} answered psql", report.lab);
    let versions = report.versions.as_ref().expect("the report says what it ran on");
    assert!(versions.postgresql.starts_with(&format!("{want}.")), "{versions:?}");
    assert!(versions.pgbackrest.starts_with(report.platform.pgbackrest()), "{versions:?}");
}

/// A spare host has a container exactly when a step or a check of the run
/// names it (by the words of the file's outline), asked of the engine.
async fn spares_started_when_named(docker: &Docker, o: &Outline, report: &RunReport) {
    let words = |text: String| text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).map(str::to_string).collect::<Vec<_>>();
    let mut said: Vec<String> = o.steps.iter().flat_map(|s| [s.host.clone()].into_iter().chain(words(s.value.to_string()))).collect();
    said.extend(o.checks.iter().filter(|c| slow() || !c.slow).flat_map(|c| words(c.params.to_string())));
    for spare in &o.spares {
        let c = format!("pglab-{}-{}", report.lab, spare);
        let exists = docker.inspect_container(&c, None).await.is_ok();
        let named = said.contains(spare);
        assert_eq!(exists, named, "spare {spare}: a container {exists}, named by a step or check {named}");
        assert_eq!(exists, report.hosts.iter().any(|h| &h.name == spare), "spare {spare} in the report's hosts");
    }
}

/// What each declared check claims, looked at again on the lab after the
/// run, through the engine and psql rather than pglab's hosts.
async fn verify_on_lab(docker: &Docker, o: &Outline, report: &RunReport) {
    let lab = report.lab.as_str();
    let c = |host: &str| format!("pglab-{lab}-{host}");
    // The checks' own `{variables}` (the stanza) as the run resolved them.
    for v in &o.checks {
        let p = |key: &str| v.params.get(key).and_then(|x| x.as_str()).unwrap_or_else(|| panic!("check {}: `{key}`", v.name)).to_string();
        let hosts = || v.params["hosts"].as_array().expect("hosts").iter().map(|h| h.as_str().expect("a host").to_string()).collect::<Vec<_>>();
        match v.name {
            "standby_data" => {
                let (primary, standby) = (&p("primary"), &p("standby"));
                assert_eq!(support::psql(docker, &c(standby), "SELECT pg_is_in_recovery()").await, "t", "{standby} is a standby");
                if let Some(g) = &o.given {
                    let q = format!("SELECT count(*) FROM {}", g.table);
                    let on_primary = support::psql(docker, &c(primary), &q).await;
                    assert!(on_primary.parse::<u32>().unwrap() >= g.rows, "{q} on {primary}: {on_primary}");
                }
                // Every table of every database, by count and checksum, on both.
                let on_primary = support::all_tables(docker, &c(primary)).await;
                assert!(!on_primary.is_empty(), "{primary} has user tables");
                assert_eq!(support::all_tables(docker, &c(standby)).await, on_primary, "{standby} against {primary}");
            }
            "streaming" => {
                let (primary, standby) = (&p("primary"), &p("standby"));
                assert_eq!(support::psql(docker, &c(standby), "SELECT status FROM pg_stat_wal_receiver").await, "streaming");
                let senders = support::psql(docker, &c(primary), "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").await;
                assert_eq!(senders, "1", "one walsender on {primary}");
            }
            "not_streaming" => {
                let standby = &p("standby");
                assert_eq!(support::psql(docker, &c(standby), "SELECT count(*) FROM pg_stat_wal_receiver").await, "0", "no WAL receiver on {standby}");
                assert_eq!(support::psql(docker, &c(standby), "SELECT pg_is_in_recovery()").await, "t", "{standby} is still a standby");
            }
            "pitr" => {
                let target_host = &p("target_host");
                assert_eq!(support::psql(docker, &c(target_host), "SELECT pg_is_in_recovery()").await, "f", "{target_host} was promoted");
                let tli = support::psql(docker, &c(target_host), "SELECT timeline_id FROM pg_control_checkpoint()").await;
                assert!(tli.parse::<u32>().unwrap() > 1, "{target_host} is on a new timeline: {tli}");
                // The last restore holds every batch up to its target (10 rows each), none after.
                let targets = v.params.get("targets").and_then(|t| t.as_array()).map_or(4, |t| t.len());
                let rows = support::psql(docker, &c(target_host), "SELECT count(*), min(id), max(id) FROM pglab_pitr").await;
                assert_eq!(rows, format!("{}|1|{}", 10 * targets, 10 * targets), "exact rows on {target_host} after the last target");
            }
            "retention" => {
                let (host, stanza, expect_full) = (&p("host"), p("stanza"), v.params["expect_full"].as_integer().expect("expect_full"));
                let (status, json) =
                    support::exec_in(docker, &c(host), "postgres", &["pgbackrest", &format!("--stanza={stanza}"), "--output=json", "info"]).await;
                assert_eq!(status, 0, "{json}");
                let info: serde_json::Value = serde_json::from_str(&json).unwrap();
                let fulls = info[0]["backup"].as_array().unwrap().iter().filter(|b| b["type"] == "full").count();
                assert_eq!(fulls as i64, expect_full, "full backups kept on {host}");
            }
            "cron_line" => {
                let (host, line) = (&p("host"), p("line"));
                let (_, tab) = support::exec_in(docker, &c(host), "root", &["crontab", "-l", "-u", "postgres"]).await;
                assert!(tab.lines().any(|l| l.trim() == line.trim()), "crontab on {host}: {tab}");
            }
            "pgbackrest" => {
                let (host, stanza) = (&p("host"), p("stanza"));
                let (status, out) = support::exec_in(docker, &c(host), "postgres", &["pgbackrest", &format!("--stanza={stanza}"), "check"]).await;
                assert_eq!(status, 0, "pgbackrest check on {host}: {out}");
                let (status, out) = support::exec_in(docker, &c(host), "postgres", &["pgbackrest", &format!("--stanza={stanza}"), "verify"]).await;
                assert!(status == 0 && !out.contains("status: error") && !out.contains("status: invalid"), "pgbackrest verify on {host}: {out}");
            }
            "writes" => {
                let (host, writer, max_lost) = (&p("host"), p("writer"), v.params.get("max_lost").and_then(|m| m.as_integer()));
                // The rows there are the acknowledged ones not lost plus
                // some of the unknown ones: counted here with psql.
                let figures = &report.checks.iter().find(|c| c.name == "writes").expect("writes ran").figures;
                let m = |n: &str| figures.get(n).unwrap_or_else(|| panic!("writes measured {n}"));
                // The load step that starts it names its table (`pglab_writes` unless it says).
                let table = writer_table(o, &writer);
                let q = format!("SELECT count(*) FROM {table}");
                let rows: f64 = support::psql(docker, &c(host), &q).await.parse().unwrap();
                let kept = m("acknowledged") - m("lost");
                assert!(rows >= kept + m("unknown_committed") && rows <= kept + m("unknown"), "{q} on {host}: {rows} rows against {figures:?}");
                assert!(m("lost") <= max_lost.map_or(f64::INFINITY, |x| x as f64));
                assert_eq!(support::psql(docker, &c(host), "SELECT pg_is_in_recovery()").await, "f", "{host} takes writes");
            }
            "pitr_acked" => {
                let (target_host, primary, table) = (&p("target_host"), &p("primary"), writer_table(o, &p("writer")));
                let said = &report.checks.iter().find(|c| c.name == "pitr_acked").expect("pitr_acked ran").evidence;
                let drawn: i64 =
                    said.split("commit ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).expect("the drawn commit, in the evidence");
                assert_eq!(support::psql(docker, &c(target_host), "SELECT pg_is_in_recovery()").await, "f", "{target_host} was promoted");
                let tli = support::psql(docker, &c(target_host), "SELECT timeline_id FROM pg_control_checkpoint()").await;
                assert!(tli.parse::<u32>().unwrap() > 1, "{target_host} is on a new timeline: {tli}");
                // The restored host ends at the drawn commit, and holds what the primary holds up to it
                // (give or take the writer's commits of unknown outcome, which `writes` counts).
                let q = format!("SELECT count(*), coalesce(max(id), 0) FROM {table} WHERE id <= {drawn}");
                let (there, here) = (support::psql(docker, &c(target_host), &q).await, support::psql(docker, &c(primary), &q).await);
                let count = |s: &str| s.split('|').next().unwrap().parse::<f64>().unwrap();
                assert_eq!(
                    support::psql(docker, &c(target_host), &format!("SELECT max(id) FROM {table}")).await,
                    drawn.to_string(),
                    "{target_host} ends at {drawn}"
                );
                let unknown = report.checks.iter().find(|c| c.name == "writes").and_then(|w| w.figures.get("unknown")).unwrap_or(0.0);
                assert!((count(&there) - count(&here)).abs() <= unknown, "{q}: {there} on {target_host}, {here} on {primary}");
            }
            "replication_role" => {
                let (host, role) = (&p("host"), p("role"));
                let q = format!(
                    "SELECT rolsuper, rolreplication, rolcanlogin, rolcreaterole, rolcreatedb, rolbypassrls, left(rolpassword, 14), \
                     (SELECT count(*) FROM pg_auth_members m WHERE m.member = a.oid) FROM pg_authid a WHERE rolname = '{role}'"
                );
                assert_eq!(support::psql(docker, &c(host), &q).await, "f|t|t|f|f|f|SCRAM-SHA-256$|0", "{role} on {host}: attributes and memberships");
            }
            "hba_refuses" => {
                let (primary, outsider, role) = (&p("primary"), p("outsider"), p("role"));
                let (_, text) = support::exec_in(docker, &c(primary), "root", &["cat", &report.platform.pg_log()]).await;
                assert!(text.contains("no pg_hba.conf entry for replication connection from host"), "{outsider} refused, in {primary}'s log");
                assert!(text.contains(&format!("password authentication failed for user \"{role}\"")), "wrong password refused, in {primary}'s log");
            }
            "no_route_out" => {
                let hosts = hosts();
                for h in &hosts {
                    for family in ["-4", "-6"] {
                        let (_, routes) = support::exec_in(docker, &c(h), "root", &["ip", family, "route"]).await;
                        assert!(!routes.contains("default"), "{h} has a default route ({family}): {routes}");
                    }
                }
            }
            "ssh_keys" => {
                let hosts = hosts();
                let mut fingerprints = std::collections::BTreeSet::new();
                for h in &hosts {
                    let (_, cfg) = support::exec_in(docker, &c(h), "root", &["sshd", "-T"]).await;
                    for want in ["passwordauthentication no", "kbdinteractiveauthentication no", "permitrootlogin no"] {
                        assert!(cfg.lines().any(|l| l == want), "sshd on {h} says `{want}`: {cfg}");
                    }
                    let (_, fp) = support::exec_in(docker, &c(h), "root", &["ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"]).await;
                    assert!(fingerprints.insert(fp.clone()), "{h} has a host key of its own: {fp}");
                }
            }
            "same_data" => {
                let (primary, copy) = (&p("primary"), &p("copy"));
                let on_primary = support::all_tables(docker, &c(primary)).await;
                assert!(!on_primary.is_empty(), "{primary} has user tables");
                assert_eq!(support::all_tables(docker, &c(copy)).await, on_primary, "{copy} against {primary}");
            }
            "cron_fires" => {}
            "cascade" => {
                let (primary, middle, standby) = (&p("primary"), &p("middle"), &p("standby"));
                let ip = |h: &str| report.hosts.iter().find(|x| x.name == h).map(|x| x.ip.clone()).expect("a host of the lab");
                let senders =
                    |h: String| async move { support::psql(docker, &c(&h), "SELECT string_agg(host(client_addr), ',') FROM pg_stat_replication").await };
                assert_eq!(senders(primary.clone()).await, ip(middle), "{primary} streams to {middle} alone");
                assert_eq!(senders(middle.clone()).await, ip(standby), "{middle} streams to {standby}");
                assert_eq!(
                    support::psql(docker, &c(standby), "SELECT sender_host FROM pg_stat_wal_receiver").await,
                    ip(middle),
                    "{standby} streams from {middle}"
                );
                let on_primary = support::all_tables(docker, &c(primary)).await;
                for h in [middle, standby] {
                    assert_eq!(support::all_tables(docker, &c(h)).await, on_primary, "{h} against {primary}");
                }
            }
            "replay_delay" => {
                let (standby, delay) = (&p("standby"), v.params["delay_ms"].as_integer().expect("delay_ms"));
                let shown = support::psql(docker, &c(standby), "SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'").await;
                assert_eq!(shown, delay.to_string(), "{standby} runs with the delay (ms)");
                let seen = report.checks.iter().find(|c| c.name == "replay_delay").and_then(|c| c.figures.get("visible_after")).expect("measured");
                assert!(seen >= delay as f64, "visible {seen} ms after the commit, delay {delay} ms");
            }
            "slot" => {
                let (host, name) = (&p("host"), p("name"));
                let ip = |h: &str| report.hosts.iter().find(|x| x.name == h).map(|x| x.ip.clone()).expect("a host of the lab");
                let q = format!(
                    "SELECT s.active, s.wal_status, coalesce(host(r.client_addr), '') FROM pg_replication_slots s \
                     LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = '{name}'"
                );
                let row = support::psql(docker, &c(host), &q).await;
                let f: Vec<&str> = row.split('|').collect();
                assert_eq!(f.len(), 3, "slot {name} on {host}: {row}");
                if let Some(w) = v.params.get("wal_status").and_then(|x| x.as_str()) {
                    assert_eq!(f[1], w, "slot {name}'s wal_status");
                }
                if let Some(s) = v.params.get("standby").and_then(|x| x.as_str()) {
                    assert_eq!((f[0], f[2]), ("t", ip(s).as_str()), "slot {name} in use by {s}");
                }
            }
            "repo_info" => {
                let (host, stanza) = (&p("host"), p("stanza"));
                let mut argv = vec!["pgbackrest".to_string(), format!("--stanza={stanza}"), "--output=json".into()];
                argv.extend(v.params.get("repo").and_then(|r| r.as_integer()).map(|r| format!("--repo={r}")));
                argv.push("info".into());
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                let (status, json) = support::exec_in(docker, &c(host), "postgres", &argv).await;
                assert_eq!(status, 0, "{json}");
                let info: serde_json::Value = serde_json::from_str(&json).unwrap();
                assert_eq!(info[0]["status"]["code"], 0, "stanza {stanza} ok on {host}: {json}");
                let got: Vec<&str> = info[0]["backup"].as_array().unwrap().iter().map(|b| b["type"].as_str().unwrap()).collect();
                match v.params.get("types").and_then(|t| t.as_array()) {
                    Some(want) => assert_eq!(got, want.iter().map(|t| t.as_str().unwrap()).collect::<Vec<_>>(), "backups on {host}"),
                    None => assert!(!got.is_empty(), "backups on {host}"),
                }
            }
            "archive_continuous" => {
                // Nothing waits on the primary, and its last archived segment is in the repository's listing.
                let (primary, host, stanza) = (&p("primary"), &p("host"), p("stanza"));
                let ready = "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'";
                assert_eq!(support::psql(docker, &c(primary), ready).await, "0", "segments wait on {primary}");
                let last = support::psql(docker, &c(primary), "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").await;
                assert!(!last.is_empty(), "{primary} archived nothing");
                let repo = v.params.get("repo").and_then(|r| r.as_integer()).unwrap_or(1);
                let ls = format!("pgbackrest --stanza={stanza} --repo={repo} --recurse repo-ls archive/{stanza}");
                let (status, listing) = support::exec_in(docker, &c(host), "postgres", &["sh", "-c", &ls]).await;
                assert_eq!(status, 0, "{listing}");
                // A segment is stored as `<name>-<sha1>`; a history or .backup file under its own name.
                let stored = listing.contains(&format!("{last}-")) || (last.len() > 24 && listing.contains(&last));
                assert!(stored, "{primary}'s last archived {last} is not in the archive listed on {host}");
            }
            "repo_encrypted" => {
                // Read again with the test's own code in the store: every object's file on its disk, its first bytes.
                let script = "cd /var/lib/pglab-s3/pglab && find . -type f | wc -l && \
                    find . -type f -exec sh -c 'for f; do [ \"$(dd if=\"$f\" bs=8 count=1 2>/dev/null)\" = Salted__ ] && echo; done' sh {} + | wc -l";
                let store = &p("store");
                let (status, out) = support::exec_in(docker, &c(store), "root", &["sh", "-c", script]).await;
                assert_eq!(status, 0, "{out}");
                let n: Vec<u64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
                assert!(n[0] > 0 && n[0] == n[1], "objects on {store}, and those opening Salted__: {n:?}");
            }
            "sync_rep" => {
                // No server is left stopped; the lab ends as the last of these checks set it.
                for h in v.params.get("pause").and_then(|x| x.as_array()).into_iter().flatten() {
                    let h = h.as_str().unwrap();
                    let (_, stat) = support::exec_in(docker, &c(h), "root", &["ps", "-o", "stat=", "-C", "postgres"]).await;
                    assert!(!stat.is_empty() && !stat.lines().any(|l| l.trim_start().starts_with('T')), "{h}'s postgres processes run: {stat}");
                }
                let last = o.checks.iter().rposition(|x| x.name == "sync_rep").unwrap();
                if std::ptr::eq(v, &o.checks[last]) {
                    let primary = &p("primary");
                    assert_eq!(support::psql(docker, &c(primary), "SHOW synchronous_standby_names").await, p("names"));
                    for (standby, state) in v.params["states"].as_table().expect("states") {
                        // Its lab address, as /etc/hosts on the primary names it.
                        let (_, line) = support::exec_in(docker, &c(primary), "root", &["getent", "hosts", standby]).await;
                        let ip = line.split_whitespace().next().expect("an address");
                        let q = format!("SELECT sync_state FROM pg_stat_replication WHERE client_addr = '{ip}'");
                        assert_eq!(support::psql(docker, &c(primary), &q).await, state.as_str().unwrap(), "{standby} ({ip})");
                    }
                    assert_eq!(support::psql(docker, &c(primary), "SELECT to_regclass('pglab_sync') IS NULL").await, "t", "pglab_sync dropped");
                }
            }
            other => panic!("check {other} is not looked at again here: add it"),
        }
    }
}

/// The table of a writer: the load step that starts it names it (`pglab_writes` unless it says).
fn writer_table(o: &pglab::Outline, writer: &str) -> String {
    let starts = |s: &&pglab::StepOutline| s.action == "load" && s.value.get("writer").and_then(|w| w.as_str()) == Some(writer);
    let start = o.steps.iter().filter(starts).find(|s| s.value.get("stop").and_then(|x| x.as_bool()) != Some(true)).expect("a load step starts the writer");
    start.value.get("table").and_then(|t| t.as_str()).unwrap_or("pglab_writes").to_string()
}

/// The run's real secret values (from the kept lab's run state) appear in
/// no artefact: transcript, JSON report, timeline, JUnit, and a bug bundle
/// (configs, logs, transcripts) made from the lab.
async fn no_secret_anywhere(report: &RunReport, dir: &Path) {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pglab::lab::state_dir(&report.lab).join("run.json")).expect("the kept lab's run state")).unwrap();
    let mut secrets: Vec<String> = state["secrets"].as_array().expect("secrets").iter().map(|s| s.as_str().expect("a secret").to_string()).collect();
    // Independently of the list the redactor was given: every generated
    // secret the lab's hosts hold (.pgpass, configs), read by the engine.
    let docker = support::docker().await;
    for h in &report.hosts {
        let container = format!("pglab-{}-{}", report.lab, h.name);
        // A host the scenario killed or stopped holds nothing one can read.
        let running = docker.inspect_container(&container, None).await.ok().and_then(|i| i.state).and_then(|s| s.running).unwrap_or(false);
        if !running {
            continue;
        }
        let (_, held) = support::exec_in(
            &docker,
            &container,
            "root",
            &["bash", "-c", "grep -rhoE 'pw[0-9a-f]{36}' /var/lib/postgresql/.pgpass /etc/postgresql /etc/pgbackrest.conf /var/lib/postgresql/*/main/postgresql.auto.conf 2>/dev/null; true"],
        )
        .await;
        secrets.extend(held.lines().map(str::trim).filter(|l| regex_secret().is_match(l)).map(String::from));
        // An object store's access key, as pgBackRest was given it and as the store's server reads it.
        let (_, keys) = support::exec_in(
            &docker,
            &container,
            "root",
            &[
                "bash",
                "-c",
                "sed -n 's/^repo[0-9]*-s3-key\\(-secret\\)\\?=//p' /etc/pgbackrest.conf 2>/dev/null; \
                 sed -n 's/^PGLAB_S3_KEY\\(_SECRET\\)\\?=//p' /etc/pglab/s3/access.env 2>/dev/null; true",
            ],
        )
        .await;
        secrets.extend(keys.lines().map(str::trim).filter(|l| l.len() >= 16).map(String::from));
    }
    secrets.sort();
    secrets.dedup();
    let mut artefacts: Vec<(String, String)> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| (e.path().display().to_string(), std::fs::read_to_string(e.path()).unwrap())).collect();
    artefacts.push(("junit".into(), report.junit()));
    let attached = support::engine().await.attach(&report.lab).await.expect("attach to the kept lab");
    let bundle = dir.join("bundle.tar.gz");
    attached.write_bundle(&bundle).await.expect("a bug bundle");
    // The bundle replays: its scenario (and the base it extends) read back whole.
    let unpacked = pglab::run::unpack_bundle(&bundle).expect("unpack the bundle");
    let again = Scenario::load(&unpacked.scenario).expect("the bundled scenario parses away from scenarios/");
    assert_eq!(again.step_ids().len(), report.steps.len(), "the bundled scenario has the steps that ran");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&bundle).unwrap()));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut text = String::new();
        let name = entry.path().unwrap().display().to_string();
        if std::io::Read::read_to_string(&mut entry, &mut text).is_ok() {
            artefacts.push((format!("bundle:{name}"), text));
        }
    }
    assert!(artefacts.len() > 5, "artefacts: {:?}", artefacts.iter().map(|a| &a.0).collect::<Vec<_>>());
    for secret in &secrets {
        for (name, text) in &artefacts {
            assert!(!text.contains(secret.as_str()), "a secret of the run is in {name}");
        }
    }
}

/// Generated secrets look like `pw` + 36 hex digits.
fn regex_secret() -> regex::Regex {
    regex::Regex::new(r"pw[0-9a-f]{36}").unwrap()
}
