//! The Docker engine and nothing else: the connection, the labels that tie
//! every resource to pglab, the names of a lab's network and containers, and
//! host images.

pub(crate) mod image;

pub use image::{HostImage, ImageInfo};

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;

use crate::error::{Error, Result};
use crate::time::{poll_until, Deadline, Probe};

/// Freezes a container's processes. The cgroup v1 freezer gives up when a
/// task does not stop in time (one in uninterruptible I/O on a loaded
/// machine: runc answers "unable to freeze" and leaves it running), so that
/// answer is tried again until a deadline; any other is the error.
pub(crate) async fn pause(docker: &Docker, container: &str) -> Result<()> {
    let deadline = Deadline::after(Duration::from_secs(60));
    let what = format!("the engine to freeze {container}");
    let frozen = poll_until(&what, "paused", deadline, || async {
        Ok(match docker.pause_container(container).await {
            Err(e) if e.to_string().contains("unable to freeze") => Probe::NotYet(e.to_string()),
            done => Probe::Ready(done),
        })
    });
    frozen.await?.map_err(|e| Error::docker(format!("pause {container}"), e))
}

/// The lab's network: `pglab-<lab>`.
pub(crate) fn network_name(lab: &str) -> String {
    format!("pglab-{lab}")
}

/// A host's container: `pglab-<lab>-<host>`.
pub(crate) fn container_name(lab: &str, host: &str) -> String {
    format!("pglab-{lab}-{host}")
}

/// Label every lab resource carries; its value is the lab id.
pub(crate) const LABEL_LAB: &str = "pglab.lab";
/// pglab version that made a resource.
pub(crate) const LABEL_VERSION: &str = "pglab.version";
/// `pid@boot-id@machine` of the process that owns a lab: gc removes labs
/// whose owner ran on this machine and is gone.
pub(crate) const LABEL_OWNER: &str = "pglab.owner";
/// Set on labs kept on purpose (`--keep`); gc leaves them unless asked.
pub(crate) const LABEL_KEEP: &str = "pglab.keep";
/// Host name inside the lab.
pub(crate) const LABEL_HOST: &str = "pglab.host";
/// The host's lab address (see `lab::address`).
pub(crate) const LABEL_ADDRESS: &str = "pglab.address";
/// The host's kind (`pg`, `repo`).
pub(crate) const LABEL_KIND: &str = "pglab.kind";
/// Scenario a lab was started for, for `pglab list`.
pub(crate) const LABEL_SCENARIO: &str = "pglab.scenario";
/// Unix time a lab was created.
pub(crate) const LABEL_CREATED: &str = "pglab.created";
/// A checkpoint's images (and the hosts started from them) carry its key here.
pub(crate) const LABEL_CHECKPOINT: &str = "pglab.checkpoint";
/// Images built by pglab carry their platform here.
pub(crate) const LABEL_IMAGE: &str = "pglab.image";

/// Where the engine is expected, as the user would write it.
pub(crate) fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

/// The Docker engine pglab works on (`DOCKER_HOST`, else the local socket):
/// the labs on it, their images. pglab's own type, so a user's tests do not
/// depend on the Docker client pglab uses.
#[derive(Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
}

impl Engine {
    /// Connects and pings, failing in one line (with the fix) when no engine answers.
    pub async fn connect() -> Result<Engine> {
        Ok(Engine { docker: connect().await? })
    }

    /// The platform's host image, built first if it is missing (never pulled).
    pub async fn image(&self, platform: crate::platform::Platform) -> Result<HostImage> {
        let image = HostImage::for_platform(platform);
        image.ensure(&self.docker, false, &crate::progress::PhaseBar::hidden()).await?;
        Ok(image)
    }

    /// The host images on the engine, current or stale.
    pub async fn images(&self) -> Result<Vec<ImageInfo>> {
        image::list(&self.docker).await
    }
}

/// Connects and pings, failing in one line (with the fix) when no engine answers.
pub(crate) async fn connect() -> Result<Docker> {
    let tried = docker_host();
    if tried.starts_with("ssh://") {
        // bollard's ssh transport is not built in, and no test here proves one.
        return Err(Error::Usage(format!(
            "DOCKER_HOST={tried}: pglab speaks to an engine over unix:// or tcp://; forward the remote socket instead: \
             `ssh -nNT -L /tmp/remote-docker.sock:/var/run/docker.sock HOST &` and DOCKER_HOST=unix:///tmp/remote-docker.sock"
        )));
    }
    let unreachable = |reason: String| Error::DockerUnreachable { tried: tried.clone(), reason };
    let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
    match tokio::time::timeout(Duration::from_secs(10), docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(unreachable(short_reason(&e))),
        Err(_) => Err(unreachable("no answer within 10s".into())),
    }
}

fn short_reason(e: &bollard::errors::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s = inner.to_string();
        src = inner.source();
    }
    s
}

/// The user who made a lab (numeric uid): `list`, `gc` and `down` touch
/// only a user's own labs (root's: all).
pub(crate) const LABEL_UID: &str = "pglab.uid";

/// This process's user id: the owner of `/proc/self`, or of a file it
/// creates; never a guess (a guessed 0 would let it touch every user's labs).
pub(crate) fn my_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    static UID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UID.get_or_init(|| {
        std::fs::metadata("/proc/self")
            .or_else(|_| tempfile::tempfile().and_then(|f| f.metadata()))
            .map(|m| m.uid())
            .expect("the user id: neither /proc/self nor a new temporary file can be read")
    })
}

/// This process, as written in [`LABEL_OWNER`].
pub(crate) fn owner_id() -> String {
    format!("{}@{}@{}", std::process::id(), boot_id(), machine_id())
}

/// Where a lab's owner is, from its `pglab.owner` label (`pid@boot@machine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    /// Its process runs on this machine.
    Alive,
    /// It ran on this machine (this boot or an earlier one) and is gone.
    Gone,
    /// It ran on another machine sharing the engine (or its label is not
    /// one this pglab wrote): only `pglab down ID` removes it.
    Elsewhere,
}

/// Where the process named by an owner label is.
pub(crate) fn owner_state(owner: &str) -> Owner {
    let mut parts = owner.split('@');
    let (Some(pid), Some(boot), Some(machine), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else { return Owner::Elsewhere };
    if machine != machine_id() {
        return Owner::Elsewhere;
    }
    match pid.parse::<u32>() {
        Ok(pid) if boot == boot_id() && std::path::Path::new(&format!("/proc/{pid}")).exists() => Owner::Alive,
        _ => Owner::Gone,
    }
}

/// This machine as far as its processes can be seen from here: its
/// systemd machine id (else its host name) and this process's pid
/// namespace (two containers may share a machine id and a kernel, but a
/// pid means something only in its own namespace).
fn machine_id() -> String {
    let id = std::fs::read_to_string("/etc/machine-id").ok().map(|s| s.trim().chars().take(12).collect::<String>()).filter(|s| !s.is_empty());
    let host = id.or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string())).unwrap_or_else(|| "unknown".into());
    let ns = std::fs::read_link("/proc/self/ns/pid").ok().map(|l| l.to_string_lossy().trim_start_matches("pid:[").trim_end_matches(']').to_string());
    format!("{host}.{}", ns.unwrap_or_else(|| "0".into()))
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().chars().take(8).collect()).unwrap_or_else(|_| "noboot".into())
}

/// Labels shared by everything a lab creates.
pub(crate) fn lab_labels(lab: &str, keep: bool, scenario: Option<&str>) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_LAB.to_string(), lab.to_string()),
        (LABEL_VERSION.to_string(), env!("CARGO_PKG_VERSION").to_string()),
        (LABEL_OWNER.to_string(), owner_id()),
        (LABEL_UID.to_string(), my_uid().to_string()),
        (LABEL_CREATED.to_string(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).to_string()),
    ]);
    // Always written: a lab started from a checkpoint's images would
    // otherwise inherit the saving lab's.
    labels.insert(LABEL_KEEP.to_string(), if keep { "1" } else { "0" }.to_string());
    if let Some(s) = scenario {
        labels.insert(LABEL_SCENARIO.to_string(), s.to_string());
    }
    labels
}

#[cfg(test)]
mod owner_tests {
    use super::{boot_id, machine_id, owner_id, owner_state, Owner};

    /// gc removes only what this machine's dead processes left: another
    /// machine's label (a shared remote engine) is never "gone" to it.
    #[test]
    fn an_owner_is_alive_gone_or_elsewhere() {
        assert_eq!(owner_state(&owner_id()), Owner::Alive);
        assert_eq!(owner_state(&format!("4194304999@{}@{}", boot_id(), machine_id())), Owner::Gone, "no such pid");
        assert_eq!(owner_state(&format!("1@{}@{}", "0ldb00t0", machine_id())), Owner::Gone, "an earlier boot");
        assert_eq!(owner_state(&format!("{}@{}@another-machine", std::process::id(), boot_id())), Owner::Elsewhere);
        assert_eq!(owner_state(&format!("{}@{}", std::process::id(), boot_id())), Owner::Elsewhere, "a label without a machine");
        assert_eq!(owner_state("x@y@z@w"), Owner::Elsewhere);
    }
}
