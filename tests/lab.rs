//! Foundation: images, labs, commands, SQL and cleanup against the real engine.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use pglab::lab::{Br, BrCommand, LsnKind, StopMode};
use pglab::time::Deadline;
use pglab::{Cmd, Error, HostImage, Hosts, Platform};
use support::{docker, lab, leftovers, pglab_bin};

#[tokio::test(flavor = "multi_thread")]
async fn image_is_found_in_cache_the_second_time() {
    let (docker, engine) = (docker().await, support::engine().await);
    let image = engine.image(Platform::Debian12).await.expect("first ensure");
    let id = docker.inspect_image(&image.reference()).await.expect("it is on the engine").id;
    let again = engine.image(Platform::Debian12).await.expect("second ensure");
    assert_eq!(docker.inspect_image(&again.reference()).await.unwrap().id, id, "the second ensure found it, built nothing");
}

/// Each platform's image says what it was built from, and a host of it
/// agrees: the labels against the host's own files, psql and pgBackRest.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn an_image_records_what_it_was_built_from(#[values(Platform::Debian11, Platform::Debian12, Platform::Debian13)] platform: Platform) {
    let (docker, engine) = (docker().await, support::engine().await);
    let lab = pglab::LabSpec::new(platform, ["a"]).start().await.expect("lab starts");
    let image = HostImage::for_platform(platform);
    let listed = engine.images().await.unwrap();
    let me = listed.iter().find(|i| i.reference == image.reference()).expect("listed");
    let built = me.built.clone();
    let h = lab.host("a").unwrap();
    let sh = |cmd: &'static str| async move { h.sh("root", cmd).await.unwrap().stdout.trim().to_string() };

    // The labels are what the host holds.
    let in_host: std::collections::BTreeMap<String, String> =
        sh("cat /etc/pglab/image").await.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(in_host, built, "labels and /etc/pglab/image");
    assert_eq!(built["debian"], sh("cat /etc/debian_version").await);
    assert_eq!(built["postgresql"], sh("dpkg-query -W -f '${Version}' postgresql-$(ls /usr/lib/postgresql)").await);
    let suite = match platform.base() {
        pglab::platform::Base::Mmdebstrap { suite } => suite,
        _ => unreachable!(),
    };
    assert_eq!(built["suite"], suite);
    assert!(built["os"].contains(&format!("({suite})")), "{built:?}");
    assert!(built["packages"].len() == 16 && built["packages"].chars().all(|c| c.is_ascii_hexdigit()), "{built:?}");
    assert!(!built["archive_date"].is_empty(), "{built:?}");
    // The server is the platform's major; pgBackRest, once installed, the labelled one.
    let v: String = h.query_value("SHOW server_version_num").await.unwrap();
    assert_eq!(v[..v.len() - 4], platform.pg_major().to_string());
    h.sh("root", "apt-get update -q >/dev/null && apt-get install -y -q pgbackrest >/dev/null").await.unwrap();
    let br = sh("pgbackrest version").await;
    assert!(built["pgbackrest"].starts_with(br.trim_start_matches("pgBackRest ")), "{br} vs {built:?}");
    assert!(br.trim_start_matches("pgBackRest ").starts_with(platform.pgbackrest()), "the table says {}: {br}", platform.pgbackrest());
    // What a lab never reads is not there; JIT is off rather than broken.
    assert_eq!(sh("find /usr/share/doc /usr/share/man -type f | wc -l").await, "0");
    assert_eq!(h.safe_psql("SELECT pg_jit_available()").await.unwrap(), "f");
    // Metadata: systemd stops cleanly; `pglab image list` shows it as current.
    let cfg = docker.inspect_image(&image.reference()).await.unwrap().config.unwrap();
    assert_eq!(cfg.stop_signal.as_deref(), Some("SIGRTMIN+3"));
    assert_eq!(cfg.cmd.unwrap(), platform.init_cmd());
    assert!(me.current, "{me:?}");
    let id = lab.id.clone();
    lab.shutdown().await.unwrap();
    assert_eq!(leftovers(&docker, &id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn ubuntu_without_its_base_image_fails_fast_with_one_sentence() {
    let docker = docker().await;
    // No registry here, so no ubuntu:22.04: an engine with it would test something else.
    assert!(
        docker.inspect_image(&HostImage::for_platform(Platform::Ubuntu2204).reference()).await.is_err(),
        "this engine has the ubuntu image; this test proves the refusal without it"
    );
    let err = support::engine().await.image(Platform::Ubuntu2204).await.expect_err("no ubuntu:22.04 here");
    assert!(matches!(err, Error::ImageMissing { .. }), "{err}");
    assert!(err.to_string().contains("ubuntu:22.04"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_resolve_each_other_run_systemd_and_answer_sql() {
    let lab = lab(&["primary", "standby"]).await;
    lab.wait_for_boot().await.expect("systemd boots");
    let primary = lab.host("primary").unwrap();
    let standby = lab.host("standby").unwrap();

    for (from, to) in [(primary, standby), (standby, primary)] {
        let out = from.sh("root", &format!("getent hosts {}", to.name)).await.unwrap();
        assert!(out.stdout.starts_with(&to.ip.to_string()), "{} resolves {}: {}", from.name, to.name, out.stdout);
        // sshd answers by name and by address.
        from.sh("root", &format!("exec 3<>/dev/tcp/{}/22", to.name)).await.unwrap();
        from.sh("root", &format!("exec 3<>/dev/tcp/{}/22", to.ip)).await.unwrap();
    }
    for h in lab.hosts() {
        let unit = h.platform.pg_unit();
        let out = h.sh("root", &format!("systemctl is-active {unit} ssh cron")).await.unwrap();
        assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), ["active"; 3], "{}", h.name);
        let v: String = h.query_value("SHOW server_version_num").await.unwrap();
        assert!(v.starts_with(&h.platform.pg_major().to_string()), "{v}");
        assert_eq!(h.safe_psql("SELECT 1 + 1").await.unwrap(), "2");
    }
    // The harness's route adds nothing to a host: no pg_hba line, no role,
    // no mount of the harness's machine (only the cgroup tree systemd needs).
    let hba = primary.read_file(&format!("{}/pg_hba.conf", primary.platform.pg_config_dir())).await.unwrap();
    assert!(!hba.contains("pglab"), "{hba}");
    assert_eq!(primary.safe_psql("SELECT current_user, (SELECT count(*) FROM pg_authid WHERE rolname = 'pglab')").await.unwrap(), "postgres|0");
    for h in lab.hosts() {
        // The least privilege the engine took (the probe's answer): never
        // privileged on an engine that boots systemd without it, no capability.
        let info = docker().await.inspect_container(&h.container, None).await.unwrap();
        let cfg = info.host_config.unwrap();
        // The engine's probe answer is kept beside the labs' state dirs.
        let state_root = pglab::lab::state_dir("x").parent().expect("the state root").to_path_buf();
        let privileged_needed = std::fs::read_dir(state_root)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("engine-"))
            .any(|e| std::fs::read_to_string(e.path()).unwrap().contains("Privileged"));
        assert_eq!(cfg.privileged.unwrap_or(false), privileged_needed, "{}", h.name);
        assert!(cfg.cap_add.unwrap_or_default().is_empty(), "{}: no added capability", h.name);
        let mounts = docker().await.inspect_container(&h.container, None).await.unwrap().mounts.unwrap_or_default();
        let binds: Vec<_> = mounts.iter().filter(|m| m.typ.as_deref() == Some("bind")).filter_map(|m| m.source.clone()).collect();
        assert!(binds.iter().all(|b| b == "/sys/fs/cgroup"), "{}: only the cgroup tree is bound from the machine: {binds:?}", h.name);
    }
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_command_reports_exit_code_and_stderr() {
    let lab = lab(&["pg1"]).await;
    let h = lab.host("pg1").unwrap();
    let out = h.exec(Cmd::shell("echo to-out; echo to-err >&2; exit 3").any_status()).await.unwrap();
    assert_eq!(out.status, 3);
    assert_eq!(out.stdout, "to-out\n");
    assert_eq!(out.stderr, "to-err\n");

    // What ran in the host, against the command's own clock: at least as
    // long as it measured itself, and never more than the whole exec.
    let out = h.exec(Cmd::shell("a=$(date +%s%N); sleep 0.3; echo $(( ($(date +%s%N) - a) / 1000000 ))")).await.unwrap();
    let own_clock = std::time::Duration::from_millis(out.stdout.trim().parse().unwrap());
    assert!(own_clock >= std::time::Duration::from_millis(300), "{own_clock:?}");
    assert!(out.in_host >= own_clock && out.in_host <= out.elapsed, "in host {:?}, its own clock {own_clock:?}, exec {:?}", out.in_host, out.elapsed);
    let entry = lab.transcript().entries().into_iter().last().unwrap();
    assert_eq!(entry.in_host, Some(out.in_host), "the transcript keeps it");

    let err = h.sh("postgres", "echo boom >&2; exit 7").await.expect_err("status 7 is a failure");
    let Error::Exec(f) = &err else { panic!("not an exec error: {err}") };
    assert_eq!(f.status, Some(7));
    assert_eq!(f.expected, Some(0));
    assert_eq!(f.user, "postgres");
    assert!(f.output_tail.contains("boom"), "{f}");
    let text = err.to_string();
    assert!(text.contains("pg1") && text.contains("exit status 7"), "{text}");
    // The failing step's evidence includes the PostgreSQL log.
    assert!(text.contains("[postgresql]"), "{text}");

    // Files through the archive API: owner and mode by name, links followed
    // to the real file, missing files are None, directories an error.
    h.write_file("/etc/pglab-real.conf", b"a=1\n", 0o640, "postgres", Some("postgres")).await.unwrap();
    h.sh("root", "ln -s /etc/pglab-real.conf /etc/pglab-link.conf").await.unwrap();
    let f = h.stat_read("/etc/pglab-link.conf").await.unwrap().expect("read through the link");
    assert_eq!((f.path.as_str(), f.mode, f.content.as_slice()), ("/etc/pglab-real.conf", 0o640, b"a=1\n".as_slice()));
    let shown = h.sh("root", "stat -c '%a %U:%G' /etc/pglab-real.conf").await.unwrap();
    assert_eq!(shown.stdout.trim(), "640 postgres:postgres");
    assert!(h.stat_read("/etc/pglab-missing.conf").await.unwrap().is_none());
    assert!(h.stat_read("/etc").await.is_err());
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_past_its_timeout_is_stopped_inside_the_host_with_its_output() {
    let lab = lab(&["pg1"]).await;
    let h = lab.host("pg1").unwrap();
    let cmd = Cmd::shell("echo started; echo warn >&2; sleep 30; echo never").timeout(Duration::from_secs(1));
    let err = h.exec(cmd).await.expect_err("the command overruns");
    let text = err.to_string();
    assert!(matches!(err, Error::Timeout(_)), "{text}");
    assert!(text.contains("started") && text.contains("warn"), "stdout and stderr tails: {text}");
    assert!(!text.lines().any(|l| l.trim() == "never"), "stopped before the sleep ended (no `never` printed): {text}");
    let left = h.sh("root", "pgrep -x sleep || true").await.unwrap();
    assert_eq!(left.stdout.trim(), "", "the command was stopped in the host");
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_verbs_stop_start_and_read_the_log_from_an_offset() {
    let lab = lab(&["pg1"]).await;
    lab.wait_for_boot().await.unwrap();
    let h = lab.host("pg1").unwrap();
    let before = h.lsn(LsnKind::Write).await.unwrap();
    h.safe_psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g").await.unwrap();
    assert!(h.lsn(LsnKind::Insert).await.unwrap() > before, "WAL moved");

    // A line from before the offset does not satisfy a wait after it.
    h.safe_psql("DO $$ BEGIN RAISE LOG 'pglab-marker-one'; END $$").await.unwrap();
    h.wait_for_log("pglab-marker-one", pglab::lab::LogOffset(0), Deadline::standard()).await.unwrap();
    let offset = h.log_offset().await.unwrap();
    let short = Deadline::after(Duration::from_millis(500));
    assert!(h.wait_for_log("pglab-marker-one", offset, short).await.is_err(), "old line, before the offset");

    // Immediate stop, then a start that finds the data: crash recovery ran.
    h.stop(StopMode::Immediate).await.unwrap();
    assert!(h.stat_read(&format!("{}/postmaster.pid", h.platform.pg_data())).await.unwrap().is_none());
    h.start().await.unwrap();
    h.wait_for_log("database system was interrupted|redo starts|automatic recovery", offset, Deadline::standard()).await.expect("crash recovery in the log");
    assert_eq!(h.safe_psql("SELECT count(*) FROM t").await.unwrap(), "1000");
    h.restart().await.unwrap();
    h.stop(StopMode::Fast).await.unwrap();
    h.start().await.unwrap();
    assert_eq!(h.query_value::<i64>("SELECT count(*) FROM t").await.unwrap(), 1000);
    // A wrong query is not retried until the deadline.
    // Retried, it would end in a timeout after 60 s; it ends in the SQL error itself.
    let err = h.poll_query_until("SELEC 1", "1", Deadline::after(Duration::from_secs(60))).await.expect_err("syntax error");
    assert!(matches!(&err, Error::Sql { sqlstate: Some(c), .. } if c == "42601"), "{err}");
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn pgbackrest_failures_are_matched_by_error_code() {
    let lab = lab(&["pg1"]).await;
    let h = lab.host("pg1").unwrap();
    h.sh("root", "apt-get update -q && apt-get install -y -q pgbackrest").await.unwrap();
    let data = h.platform.pg_data();
    // PostgreSQL runs: a restore into its data directory is refused with [038].
    let restore = || Br::new(BrCommand::Restore).stanza("demo").opt("pg1-path", &data);
    let out = h.pgbackrest(restore().expect_error(38)).await.expect("the expected [038]");
    assert_eq!(pglab::lab::error_code(&out.combined()), Some(38));
    let err = h.pgbackrest(restore().expect_error(55)).await.expect_err("a different code is a failure");
    assert!(err.to_string().contains("expected pgBackRest error [055], got [038]"), "{err}");
    let err = h.pgbackrest(restore()).await.expect_err("not expected at all");
    assert!(err.to_string().contains("pgBackRest error [038]"), "{err}");
    h.pgbackrest(Br::new(BrCommand::Info)).await.expect("info succeeds with no stanza");
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn apt_installs_pgbackrest_offline_inside_a_host() {
    let lab = lab(&["pg1"]).await;
    let h = lab.host("pg1").unwrap();
    // The host has no route out and cannot make one (no NET_ADMIN, no
    // NET_RAW), and nothing is masqueraded: the install below can only
    // come from the image's local repository.
    let net = docker().await.inspect_network(&lab.network, None::<bollard::query_parameters::InspectNetworkOptions>).await.unwrap();
    assert_eq!(net.options.unwrap_or_default().get("com.docker.network.bridge.enable_ip_masquerade").map(String::as_str), Some("false"));
    assert_eq!(h.route_out().await.unwrap(), None);
    let forged = h
        .sh("root", "python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)' 2>&1 || perl -e 'socket(my $s, 17, 3, 0) or die \"raw: $!\"'")
        .await;
    assert!(forged.is_err(), "a raw socket was opened: {forged:?}");
    h.sh("dba", "sudo apt update").await.unwrap();
    h.sh("dba", "sudo apt -y install pgbackrest").await.unwrap();
    let v = h.sh("postgres", "pgbackrest version").await.unwrap();
    assert!(v.stdout.starts_with("pgBackRest 2."), "{}", v.stdout);
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_leaks_after_pass_failure_or_panic() {
    let docker = docker().await;

    // pass: explicit shutdown
    let passed = lab(&["pg1"]).await;
    let pass_id = passed.id.clone();
    passed.shutdown().await.unwrap();

    // failure: an error makes the test return early; the lab is dropped
    async fn failing() -> Result<(), (String, Error)> {
        let lab = support::lab(&["pg1"]).await;
        let id = lab.id.clone();
        lab.host("pg1").unwrap().sh("root", "exit 1").await.map_err(|e| (id, e))?;
        Ok(())
    }
    let (fail_id, _) = failing().await.expect_err("the step fails");

    // panic: a task panics while it owns a lab
    let (tx, rx) = tokio::sync::oneshot::channel();
    let joined = tokio::spawn(async move {
        let lab = support::lab(&["pg1"]).await;
        tx.send(lab.id.clone()).unwrap();
        panic!("deliberate panic with lab {}", lab.id);
    })
    .await;
    assert!(joined.expect_err("task panicked").is_panic());
    let panic_id = rx.await.unwrap();

    for id in [pass_id, fail_id, panic_id] {
        assert_eq!(leftovers(&docker, &id).await, Vec::<String>::new(), "lab {id} leaked");
        assert!(!pglab::lab::state_dir(&id).exists(), "state dir of {id} leaked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_removes_the_lab() {
    let docker = docker().await;
    let mut child = Command::new(pglab_bin())
        .args(["--quiet", "up", "--foreground", "--hosts", "pg1,pg2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lab_id = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("lab ") {
            if let Some(id) = rest.strip_suffix(" is up; Ctrl-C removes it") {
                lab_id = Some(id.to_string());
                break;
            }
        }
    }
    let lab_id = lab_id.expect("pglab up printed its lab");
    assert!(!leftovers(&docker, &lab_id).await.is_empty(), "the lab exists while running");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit code after SIGINT");
    assert_eq!(leftovers(&docker, &lab_id).await, Vec::<String>::new());
}

#[test]
fn unreachable_docker_is_one_line_with_the_fix() {
    let out = Command::new(pglab_bin()).args(["list"]).env("DOCKER_HOST", "unix:///nonexistent/docker.sock").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unix:///nonexistent/docker.sock"), "{err}");
    assert!(err.contains("DOCKER_HOST") && err.contains("systemctl start docker"), "{err}");
}

/// Whether `from` opens a TCP connection to `to`'s sshd (PostgreSQL
/// listens only on localhost until a scenario changes it), asked with bash
/// inside `from` through the engine (not through pglab's hosts).
async fn reaches(docker: &bollard::Docker, from: &str, to: std::net::Ipv4Addr) -> bool {
    let (status, _) = support::exec_in(docker, from, "root", &["timeout", "3", "bash", "-c", &format!("echo > /dev/tcp/{to}/22")]).await;
    status == 0
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_cut_freeze_and_kill_hosts_and_the_teardown_takes_them_all() {
    let docker = docker().await;
    let lab = lab(&["pg1", "pg2", "pg3"]).await;
    let (pg1, pg2, pg3) = (lab.host("pg1").unwrap(), lab.host("pg2").unwrap(), lab.host("pg3").unwrap());
    assert!(reaches(&docker, &pg1.container, pg2.ip).await, "before the cut");
    // Sealed at start: no route out of the lab, from each host's own table.
    for h in [pg1, pg2, pg3] {
        let (_, routes) = support::exec_in(&docker, &h.container, "root", &["ip", "route"]).await;
        assert!(!routes.contains("default") && routes.contains("dev eth0"), "{}: {routes}", h.name);
        assert!(h.sealed().await.unwrap());
    }

    // A partition is both ways and only between the hosts named.
    pg1.partition(&[pg2]).await.unwrap();
    assert!(!reaches(&docker, &pg1.container, pg2.ip).await, "pg1 -> pg2 cut");
    assert!(!reaches(&docker, &pg2.container, pg1.ip).await, "pg2 -> pg1 cut");
    assert!(reaches(&docker, &pg1.container, pg3.ip).await, "pg1 -> pg3 untouched");
    // The hosts gained no capability: the route cannot be changed from inside.
    let (status, out) = support::exec_in(&docker, &pg1.container, "root", &["ip", "route", "del", &format!("blackhole {}/32", pg2.ip)]).await;
    assert_ne!(status, 0, "a lab host has no NET_ADMIN: {out}");
    pg1.heal(&[pg2]).await.unwrap();
    assert!(reaches(&docker, &pg1.container, pg2.ip).await, "healed");
    assert!(reaches(&docker, &pg2.container, pg1.ip).await, "healed, the other way");
    // Still at its lab address (beside the engine's), and no helper container left.
    let (_, addr) = support::exec_in(&docker, &pg2.container, "root", &["hostname", "-I"]).await;
    assert!(addr.split_whitespace().any(|a| a == pg2.ip.to_string()), "{addr}");
    let labs = support::engine().await.labs().await.unwrap();
    let containers: Vec<_> = labs.iter().filter(|l| l.lab == lab.id).flat_map(|l| l.hosts.iter().map(|h| h.container.clone())).collect();
    assert_eq!(containers.len(), 3, "only the hosts: {containers:?}");

    // Latency toward pg1's PostgreSQL, from pg3: every round trip of a
    // postgres-owned connection takes at least 2 x 50 ms; heal takes it away.
    pg1.safe_psql("ALTER SYSTEM SET listen_addresses = '*'").await.unwrap();
    pg1.stop(pglab::lab::StopMode::Fast).await.unwrap();
    pg1.start().await.unwrap();
    let isready = format!("TIMEFORMAT=%R; time pg_isready -q -t 5 -h {}", pg1.ip);
    let how = pg3.add_latency(pg1, 50).await.unwrap();
    assert!(how.starts_with("relay:") || how.starts_with("netem:"), "{how}");
    let (status, took) = support::exec_in(&docker, &pg3.container, "postgres", &["bash", "-c", &isready]).await;
    let took: f64 = took.trim().lines().last().unwrap().parse().unwrap();
    assert!(status == 0 && took >= 0.1, "pg_isready through the delay: status {status}, {took} s ({how})");
    let relay = format!("{}-lat-pg1", pg3.container);
    assert_eq!(docker.inspect_container(&relay, None).await.is_ok(), how.starts_with("relay:"), "the relay runs beside pg3");
    pg3.heal(&[pg1]).await.unwrap();
    assert!(docker.inspect_container(&relay, None).await.is_err(), "heal removed the relay");
    let (status, out) = support::exec_in(&docker, &pg3.container, "postgres", &["bash", "-c", &isready]).await;
    assert_eq!(status, 0, "pg1 answers directly after heal: {out}");

    // Pause freezes the host as the engine sees it.
    pg3.pause().await.unwrap();
    let state = docker.inspect_container(&pg3.container, None).await.unwrap().state.unwrap();
    assert_eq!(state.paused, Some(true));
    pg3.resume().await.unwrap();
    assert_eq!(pg3.safe_psql("SELECT 1").await.unwrap(), "1");

    // SIGKILL of the postmaster: the host lives, the cluster is down, and starts with crash recovery.
    let offset = pg2.log_offset().await.unwrap();
    pg2.kill(pglab::vocab::KillWhat::Postmaster).await.unwrap();
    assert_ne!(support::exec_in(&docker, &pg2.container, "postgres", &["pg_isready"]).await.0, 0, "no server on pg2");
    pg2.start().await.unwrap();
    pg2.wait_for_log("database system was interrupted|automatic recovery|not properly shut down", offset, Deadline::standard()).await.unwrap();

    // The whole host, killed; then pg1 left paused: teardown still takes all.
    pg2.kill(pglab::vocab::KillWhat::Host).await.unwrap();
    let state = docker.inspect_container(&pg2.container, None).await.unwrap().state.unwrap();
    assert_eq!(state.running, Some(false));
    pg1.pause().await.unwrap();
    // A lab with a dead host can still be attached to (pglab exec, logs,
    // report); the host keeps its lab address (a label), down or not.
    let attached = support::engine().await.attach(&lab.id).await.expect("attach with a host down");
    assert_eq!(attached.hosts.iter().find(|h| h.name == "pg2").map(|h| h.ip), Some(pg2.ip));
    let id = lab.id.clone();
    lab.shutdown().await.unwrap();
    assert_eq!(leftovers(&docker, &id).await, Vec::<String>::new(), "lab {id} leaked");
}

/// A `repo` host runs sshd and pgBackRest and no PostgreSQL: asked of the
/// host through the engine, not through pglab; SQL to it is refused as
/// bad input, while its `pg` neighbour answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_repository_host_runs_pgbackrest_and_no_postgresql() {
    let docker = docker().await;
    let lab = pglab::LabSpec::new(Platform::Debian12, ["pg1"]).host("repo", pglab::vocab::HostKind::Repo).start().await.expect("lab starts");
    let (repo, pg1) = (lab.host("repo").unwrap(), lab.host("pg1").unwrap());
    assert_eq!(repo.kind, pglab::vocab::HostKind::Repo);
    let unit = Platform::Debian12.pg_unit();
    let (_, active) = support::exec_in(&docker, &repo.container, "root", &["systemctl", "is-active", &unit, "ssh"]).await;
    assert_eq!(active.split_whitespace().collect::<Vec<_>>(), ["inactive", "active"], "{unit} and ssh on the repository host");
    let (status, _) = support::exec_in(&docker, &repo.container, "root", &["pgrep", "-x", "postgres"]).await;
    assert_eq!(status, 1, "no postgres process on the repository host");
    let (status, version) = support::exec_in(&docker, &repo.container, "postgres", &["pgbackrest", "version"]).await;
    assert_eq!(status, 0, "{version}");
    assert!(version.starts_with(&format!("pgBackRest {}", Platform::Debian12.pgbackrest())), "{version}");
    let err = repo.safe_psql("SELECT 1").await.expect_err("no SQL on a repository host");
    assert!(matches!(err, Error::Usage(_)) && err.to_string().contains("`repo` host"), "{err}");
    assert_eq!(pg1.safe_psql("SELECT 1").await.unwrap(), "1");
    // The kind is on the engine too: a kept lab attached later knows it.
    let labs = support::engine().await.labs().await.unwrap();
    let kinds: Vec<_> = labs.iter().filter(|l| l.lab == lab.id).flat_map(|l| l.hosts.iter().map(|h| (h.host.clone(), h.kind))).collect();
    assert!(kinds.contains(&("repo".to_string(), pglab::vocab::HostKind::Repo)), "{kinds:?}");
    let id = lab.id.clone();
    lab.shutdown().await.unwrap();
    assert_eq!(leftovers(&docker, &id).await, Vec::<String>::new());
}
