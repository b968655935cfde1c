//! How a host gets the writable cgroup tree systemd needs as PID 1. Found by
//! asking the engine, least privilege first (a probe host per way, until
//! systemd boots in one), and remembered per engine, so the next lab starts
//! at once. When no way works, one sentence says what was tried and what the
//! engine or systemd answered.

use std::time::Duration;

use bollard::query_parameters::RemoveContainerOptions;
use bollard::Docker;
use serde::{Deserialize, Serialize};
use testcontainers::core::{AccessMode, CgroupnsMode, ContainerRequest, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use super::exec::{self, Cmd};
use super::inventory::state_root;
use crate::engine::image::HostImage;
use crate::engine::{container_name, lab_labels};
use crate::error::{Error, Result};
use crate::time::{poll_until, Deadline, Probe};

/// The ways, least privilege first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum CgroupAccess {
    /// cgroup v1: the machine's /sys/fs/cgroup bound read-write.
    Bind,
    /// cgroup v2 without privilege: the machine's cgroup namespace, its
    /// /sys/fs/cgroup bound read-write.
    HostNamespaceBind,
    /// Privileged, in a private cgroup namespace: what is left.
    Privileged,
}

impl CgroupAccess {
    pub(super) const ALL: [CgroupAccess; 3] = [CgroupAccess::Bind, CgroupAccess::HostNamespaceBind, CgroupAccess::Privileged];

    pub(super) fn describe(self) -> &'static str {
        match self {
            CgroupAccess::Bind => "/sys/fs/cgroup bound read-write, no capability",
            CgroupAccess::HostNamespaceBind => "the host cgroup namespace with /sys/fs/cgroup bound read-write, no capability",
            CgroupAccess::Privileged => "privileged with a private cgroup namespace",
        }
    }

    pub(super) fn apply(self, req: ContainerRequest<GenericImage>) -> ContainerRequest<GenericImage> {
        let bind = || Mount::bind_mount("/sys/fs/cgroup", "/sys/fs/cgroup").with_access_mode(AccessMode::ReadWrite);
        match self {
            CgroupAccess::Bind => req.with_mount(bind()),
            CgroupAccess::HostNamespaceBind => req.with_cgroupns_mode(CgroupnsMode::Host).with_mount(bind()),
            CgroupAccess::Privileged => req.with_privileged(true).with_cgroupns_mode(CgroupnsMode::Private),
        }
    }
}

/// The way this engine takes: remembered, or found by probing.
pub(super) async fn cgroup_access(docker: &Docker, image: &HostImage) -> Result<CgroupAccess> {
    let engine = docker.info().await.ok().and_then(|i| i.id).unwrap_or_else(|| "unknown".into());
    // Per engine and image: another systemd (another platform) may boot another way.
    let cache = state_root().join(format!("engine-{}-{}.json", engine.replace(['/', ':'], "_"), image.tag));
    if let Some(known) = std::fs::read(&cache).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
        return Ok(known);
    }
    let mut answers = Vec::new();
    for way in CgroupAccess::ALL {
        match probe(docker, image, way).await {
            Ok(()) => {
                if let Err(e) = super::inventory::ensure_state_root().and_then(|_| {
                    std::fs::write(&cache, serde_json::to_vec(&way).expect("serializable")).map_err(|e| Error::io("caching the cgroup answer", e))
                }) {
                    tracing::warn!("not remembered, probed again next time: {e}");
                }
                tracing::info!(?way, "systemd boots with {}", way.describe());
                return Ok(way);
            }
            Err(e) => answers.push(format!("{}: {}", way.describe(), e.to_string().lines().map(str::trim).collect::<Vec<_>>().join(" / "))),
        }
    }
    Err(Error::Environment(format!("the engine runs no host with systemd as PID 1; tried {}", answers.join("; "))))
}

/// Starts a probe host the given way and waits for systemd to boot in it.
async fn probe(docker: &Docker, image: &HostImage, way: CgroupAccess) -> Result<()> {
    let id = format!("probe{:04x}", std::process::id() & 0xffff);
    let name = container_name(&id, "host");
    let req = GenericImage::new(image.name.clone(), image.tag.clone())
        .with_wait_for(WaitFor::Nothing)
        .with_container_name(name.clone())
        .with_labels(lab_labels(&id, false, None))
        .with_env_var("container", "docker")
        .with_mount(Mount::tmpfs_mount("/run"))
        .with_mount(Mount::tmpfs_mount("/run/lock"));
    let remove = || docker.remove_container(&name, Some(RemoveContainerOptions { force: true, ..Default::default() }));
    let container = match way.apply(req).start().await {
        Ok(c) => c,
        Err(e) => {
            // Created but refused at start: it must not stay behind.
            let _ = remove().await;
            return Err(Error::docker("start a probe host", e));
        }
    };
    // Removed below, by name: testcontainers' removal on drop would race it.
    std::mem::forget(container);
    // Polled: before systemd listens, systemctl fails at once instead of waiting.
    let deadline = Deadline::after(Duration::from_secs(60));
    let cmd = Cmd::new(["systemctl", "is-system-running", "--wait"]).any_status().timeout(deadline.budget());
    let booted = poll_until("systemd to boot in a probe host", "running", deadline, || async {
        let out = exec::run(docker, &name, &cmd, None).await?;
        Ok(match out.stdout.trim() {
            "running" | "degraded" => Probe::Ready(()),
            state => Probe::NotYet(format!("{state} {}", out.stderr.trim())),
        })
    })
    .await;
    let _ = remove().await;
    booted
}
