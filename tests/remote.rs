//! The harness on a remote engine: this machine's engine exposed on a
//! loopback TCP port (a relay to its socket, run by the test), and the
//! corrected tutorial run through it with `DOCKER_HOST=tcp://…`. Nothing of
//! the harness's side may be mounted into a lab, and nothing may leak.

mod support;

use tokio::net::{TcpListener, UnixStream};

/// Relays every TCP connection on a free loopback port to the engine's
/// Unix socket, until the test ends; returns the port and how many
/// connections it relayed.
async fn engine_over_tcp() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let relayed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = relayed.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                let Ok(mut engine) = UnixStream::connect("/var/run/docker.sock").await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tcp, &mut engine).await;
            });
        }
    });
    (port, relayed)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_corrected_tutorial_runs_on_an_engine_reached_over_tcp() {
    let (port, relayed) = engine_over_tcp().await;
    let reports = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(support::pglab_bin())
        .args(["run", "tutorial", "--keep", "--json", "-q", "--transcript"])
        .arg(reports.path())
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .output()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&run.stderr)));
    let lab = report["lab"].as_str().unwrap().to_string();
    let docker = support::docker().await;
    let inspected = std::panic::AssertUnwindSafe(async {
        assert!(relayed.load(std::sync::atomic::Ordering::Relaxed) > 10, "the run went through the TCP relay");

        let labs = support::engine().await.labs().await.unwrap();
        let hosts: Vec<String> = labs.iter().filter(|l| l.lab == lab).flat_map(|l| l.hosts.iter().map(|h| h.container.clone())).collect();
        assert_eq!(hosts.len(), 3, "{hosts:?}");
        for c in &hosts {
            let mounts = docker.inspect_container(c, None).await.unwrap().mounts.unwrap_or_default();
            let binds: Vec<String> = mounts.iter().filter(|m| m.typ.as_deref() == Some("bind")).filter_map(|m| m.source.clone()).collect();
            // The cgroup tree is the engine's own (systemd needs it), never a path of the harness.
            assert!(binds.iter().all(|b| b == "/sys/fs/cgroup"), "{c} has a bind mount from the harness's side: {binds:?}");
        }
    });
    // Removed whatever the assertions found, through the same relay.
    let outcome = futures_util::FutureExt::catch_unwind(inspected).await;
    let down =
        tokio::process::Command::new(support::pglab_bin()).args(["down", &lab]).env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}")).output().await.unwrap();
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    assert_eq!(support::leftovers(&docker, &lab).await, Vec::<String>::new(), "lab {lab} leaked");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(run.status.success() && report["passed"] == true, "the tutorial over TCP: {}", String::from_utf8_lossy(&run.stderr));
}
