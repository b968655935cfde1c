//! Shared by the integration tests: a lab on the default platform, the
//! `pglab` binary, and a leak probe.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use bollard::Docker;
use pglab::{Lab, LabSpec, Platform};

pub async fn docker() -> Docker {
    pglab::docker::connect().await.expect("Docker engine")
}

/// A lab of `hosts` on debian-12, building the image on first use.
pub async fn lab(hosts: &[&str]) -> Lab {
    let spec = LabSpec::new(Platform::Debian12, hosts.iter().copied());
    pglab::lab::up(&spec, &indicatif::ProgressBar::hidden()).await.expect("lab starts")
}

/// Every resource still labelled with this lab (containers, networks, volumes).
pub async fn leftovers(docker: &Docker, lab: &str) -> Vec<String> {
    pglab::reaper::list_labs(docker)
        .await
        .expect("list labs")
        .into_iter()
        .filter(|l| l.lab == lab)
        .map(|l| format!("{l:?}"))
        .collect()
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
