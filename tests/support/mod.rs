//! Shared by the integration tests: a lab on the default platform, the
//! `pglab` binary, and a leak probe.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use bollard::Docker;
use pglab::{Lab, LabSpec, Platform};

/// The test's own engine client, independent of pglab's.
pub async fn docker() -> Docker {
    let docker = Docker::connect_with_defaults().expect("Docker engine");
    docker.ping().await.expect("the Docker engine answers");
    docker
}

/// pglab's engine.
pub async fn engine() -> pglab::Engine {
    pglab::Engine::connect().await.expect("Docker engine")
}

/// A lab of `hosts` on debian-12, building the image on first use.
pub async fn lab(hosts: &[&str]) -> Lab {
    let spec = LabSpec::new(Platform::Debian12, hosts.iter().copied());
    spec.start().await.expect("lab starts")
}

/// Every resource still labelled with this lab (containers, networks,
/// volumes), asked of the engine directly.
pub async fn leftovers(docker: &Docker, lab: &str) -> Vec<String> {
    use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions, ListVolumesOptions};
    let label = |k: &str| std::collections::HashMap::from([("label".to_string(), vec![format!("{k}={lab}")])]);
    let mut left = Vec::new();
    let containers = docker.list_containers(Some(ListContainersOptions { all: true, filters: Some(label("pglab.lab")), ..Default::default() })).await;
    left.extend(containers.expect("list containers").into_iter().map(|c| format!("container {:?}", c.names)));
    let networks = docker.list_networks(Some(ListNetworksOptions { filters: Some(label("pglab.lab")) })).await;
    left.extend(networks.expect("list networks").into_iter().map(|n| format!("network {:?}", n.name)));
    let volumes = docker.list_volumes(Some(ListVolumesOptions { filters: Some(label("pglab.lab")) })).await.expect("list volumes");
    left.extend(volumes.volumes.into_iter().flatten().map(|v| format!("volume {}", v.name)));
    left
}

/// Runs `argv` as `user` in a container with the engine's exec API, not
/// through pglab: an independent look at a lab. Returns (status, stdout+stderr).
pub async fn exec_in(docker: &Docker, container: &str, user: &str, argv: &[&str]) -> (i64, String) {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    use futures_util::StreamExt;
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                user: Some(user.to_string()),
                cmd: Some(argv.iter().map(|a| a.to_string()).collect()),
                ..Default::default()
            },
        )
        .await
        .expect("create exec");
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&created.id, None).await.expect("start exec") {
        while let Some(Ok(chunk)) = output.next().await {
            text.push_str(&chunk.to_string());
        }
    }
    for _ in 0..100 {
        let info = docker.inspect_exec(&created.id).await.expect("inspect exec");
        if let (Some(false), Some(code)) = (info.running, info.exit_code) {
            return (code, text);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("exec in {container} did not end");
}

/// `psql -XAt` as postgres on a lab host, through the engine: the test's
/// own client, independent of pglab's route.
pub async fn psql(docker: &Docker, container: &str, sql: &str) -> String {
    psql_in(docker, container, "postgres", sql).await
}

/// [`psql`] in database `db`.
pub async fn psql_in(docker: &Docker, container: &str, db: &str, sql: &str) -> String {
    let (status, out) = exec_in(docker, container, "postgres", &["psql", "-d", db, "-XAtc", sql]).await;
    assert_eq!(status, 0, "psql on {container} in {db}: {sql}: {out}");
    out.trim().to_string()
}

/// Every database that takes connections, and in each every permanent
/// user table with its row count and a checksum, as the test's own psql
/// reads them: `db.table count hash` lines.
pub async fn all_tables(docker: &Docker, container: &str) -> Vec<String> {
    let mut out = Vec::new();
    for db in psql(docker, container, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1").await.lines() {
        let tables = psql_in(
            docker,
            container,
            db,
            "SELECT format('%I.%I', s.schemaname, s.relname) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE c.relpersistence = 'p' ORDER BY 1",
        )
        .await;
        for t in tables.lines() {
            let q = format!("SELECT count(*), coalesce(sum(hashtext(x::text)::bigint), 0) FROM {t} x");
            out.push(format!("{db}.{t} {}", psql_in(docker, container, db, &q).await));
        }
    }
    out
}

/// The `pglab` binary of this workspace, built once if the test runner did not.
pub fn pglab_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test exe");
        // target/<profile>/deps/<test> -> target/<profile>/pglab
        let bin = exe.parent().and_then(|d| d.parent()).expect("target dir").join("pglab");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "pglab", "--bin", "pglab"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build pglab");
        assert!(status.success(), "building the pglab binary failed");
        assert!(bin.exists(), "no pglab binary at {}", bin.display());
        bin
    })
    .clone()
}
