//! A disposable lab: one private network, N systemd hosts on it, torn down
//! on every path out (return, error, panic, signal).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bollard::models::NetworkCreateRequest;
use bollard::Docker;
use futures_util::future::try_join_all;
use serde::Serialize;
use testcontainers::core::{AccessMode, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::docker::{self, lab_labels, LABEL_HOST};
use crate::error::{Error, Result};
use crate::exec::Cmd;
use crate::host::{Host, HARNESS_ROLE};
use crate::image::HostImage;
use crate::platform::Platform;
use crate::reaper;
use crate::report::Transcript;
use crate::wait::{poll_until, Probe};

/// The hosts of a lab, started by this process or found on the engine: steps
/// and checks run on either.
pub trait Hosts: Sync {
    fn id(&self) -> &str;
    fn hosts(&self) -> &[Host];
    fn transcript(&self) -> &Transcript;
    fn host(&self, name: &str) -> Result<&Host> {
        self.hosts().iter().find(|h| h.name == name).ok_or_else(|| Error::UnknownHost {
            lab: self.id().to_string(),
            host: name.to_string(),
            known: self.hosts().iter().map(|h| h.name.clone()).collect::<Vec<_>>().join(", "),
        })
    }
}

/// Both kinds of lab hold their id, hosts and transcript the same way.
macro_rules! impl_hosts {
    ($($t:ty),*) => {$(
        impl Hosts for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn hosts(&self) -> &[Host] {
                &self.hosts
            }
            fn transcript(&self) -> &Transcript {
                &self.transcript
            }
        }
    )*};
}
impl_hosts!(Lab, Attached);

/// When a lab survives its run, like `PG_TEST_NOCLEAN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Keep {
    #[default]
    Never,
    OnFailure,
    Always,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct LabSpec {
    pub platform: Platform,
    pub hosts: Vec<String>,
    pub keep: Keep,
    /// Scenario name, shown by `pglab list`.
    pub scenario: Option<String>,
}

impl LabSpec {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(platform: Platform, hosts: I) -> Self {
        LabSpec { platform, hosts: hosts.into_iter().map(Into::into).collect(), keep: Keep::Never, scenario: None }
    }
}

/// How long each phase of `Lab::start` took, for reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StartTimings {
    #[serde(with = "crate::report::millis")]
    pub network: Duration,
    #[serde(with = "crate::report::millis")]
    pub containers: Duration,
    #[serde(with = "crate::report::millis")]
    /// Until every host's PostgreSQL answers the harness.
    pub sql_ready: Duration,
    #[serde(with = "crate::report::millis")]
    pub total: Duration,
}

pub struct Lab {
    pub id: String,
    pub network: String,
    pub image: HostImage,
    pub timings: StartTimings,
    docker: Docker,
    hosts: Vec<Host>,
    containers: Vec<ContainerAsync<GenericImage>>,
    transcript: Transcript,
    keep: Keep,
    failed: bool,
    closed: bool,
}

fn new_lab_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}

impl Lab {
    /// Starts a lab on an image that must already exist (see [`HostImage::ensure`]).
    pub async fn start(docker: &Docker, spec: &LabSpec) -> Result<Lab> {
        let total = Instant::now();
        let image = HostImage::for_platform(spec.platform);
        if !image.exists(docker).await? {
            return Err(Error::ImageMissing {
                image: image.reference(),
                hint: format!("build it first: `pglab image build {}`", spec.platform),
            });
        }
        let id = new_lab_id();
        let network = format!("pglab-{id}");
        let labels = lab_labels(&id, spec.keep == Keep::Always, spec.scenario.as_deref());
        reaper::register(&id);

        let mut timings = StartTimings::default();
        let t = Instant::now();
        // Internal: lab hosts reach each other, never the outside world.
        docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                internal: Some(true),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::docker(format!("create network {network}"), e))?;
        timings.network = t.elapsed();

        let transcript = Transcript::new();
        let started = Self::start_hosts(docker, spec, &id, &network, &image, &labels, &transcript, &mut timings).await;
        let (hosts, containers) = match started {
            Ok(v) => v,
            Err(e) => {
                let _ = reaper::remove_lab(docker, &id).await;
                reaper::unregister(&id);
                return Err(e);
            }
        };
        timings.total = total.elapsed();
        tracing::info!(lab = %id, ms = timings.total.as_millis() as u64, "lab up");
        Ok(Lab {
            id,
            network,
            image,
            timings,
            docker: docker.clone(),
            hosts,
            containers,
            transcript,
            keep: spec.keep,
            failed: false,
            closed: false,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_hosts(
        docker: &Docker,
        spec: &LabSpec,
        id: &str,
        network: &str,
        image: &HostImage,
        labels: &HashMap<String, String>,
        transcript: &Transcript,
        timings: &mut StartTimings,
    ) -> Result<(Vec<Host>, Vec<ContainerAsync<GenericImage>>)> {
        let t = Instant::now();
        let cgroup_v2 = docker
            .info()
            .await
            .ok()
            .and_then(|i| i.cgroup_version)
            .is_some_and(|v| format!("{v:?}").contains('2'));
        let containers = try_join_all(spec.hosts.iter().map(|name| async move {
            let socket_dir = reaper::lab_state_dir(id).join(name);
            std::fs::create_dir_all(&socket_dir).map_err(|e| Error::io(format!("creating {}", socket_dir.display()), e))?;
            let container_name = format!("pglab-{id}-{name}");
            let mut req = GenericImage::new(image.name.clone(), image.tag.clone())
                .with_wait_for(WaitFor::Nothing)
                .with_container_name(container_name.clone())
                .with_hostname(name.clone())
                .with_network(network.to_string())
                .with_labels(labels.clone())
                .with_label(LABEL_HOST, name.clone())
                .with_env_var("container", "docker")
                .with_mount(Mount::tmpfs_mount("/run"))
                .with_mount(Mount::tmpfs_mount("/run/lock"))
                .with_mount(Mount::bind_mount(socket_dir.to_string_lossy(), "/run/postgresql"))
                .with_startup_timeout(Duration::from_secs(60));
            // systemd as PID 1 needs a writable cgroup tree. On cgroup v1 a rw
            // bind of /sys/fs/cgroup suffices (no capability, no privilege:
            // measured in docs/systemd.md); v2 needs a private namespace.
            req = if cgroup_v2 {
                req.with_privileged(true).with_cgroupns_mode(testcontainers::core::CgroupnsMode::Private)
            } else {
                req.with_mount(Mount::bind_mount("/sys/fs/cgroup", "/sys/fs/cgroup").with_access_mode(AccessMode::ReadWrite))
            };
            let c = req.start().await.map_err(|e| Error::docker(format!("start {container_name}"), e))?;
            Ok::<_, Error>((name.clone(), container_name, socket_dir, c))
        }))
        .await?;
        timings.containers = t.elapsed();

        let t = Instant::now();
        let mut hosts = Vec::new();
        let mut handles = Vec::new();
        for (name, container_name, socket_dir, c) in containers {
            let ip = container_ip(docker, &container_name, network).await?;
            hosts.push(Host::new(name, id.to_string(), container_name, ip, spec.platform, socket_dir, docker.clone(), transcript.clone()));
            handles.push(c);
        }
        try_join_all(hosts.iter().map(open_route)).await?;
        timings.sql_ready = t.elapsed();
        Ok((hosts, handles))
    }

    /// Waits until every host's systemd has finished booting (postgresql-common
    /// spends about 2 s confirming a start, after the server already answers).
    pub async fn wait_for_boot(&self) -> Result<()> {
        try_join_all(self.hosts.iter().map(wait_for_host_boot)).await.map(|_| ())
    }

    pub fn host_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Records that the run failed (matters for `Keep::OnFailure`).
    pub fn mark_failed(&mut self) {
        self.failed = true;
    }

    fn keeps(&self) -> bool {
        match self.keep {
            Keep::Always => true,
            Keep::OnFailure => self.failed || std::thread::panicking(),
            Keep::Never => false,
        }
    }

    /// Tears the lab down (or keeps it, as asked); hosts go in reverse order
    /// and one failure does not stop the rest.
    pub async fn shutdown(mut self) -> Result<()> {
        self.closed = true;
        reaper::unregister(&self.id);
        if self.keeps() {
            self.keep_resources();
            return Ok(());
        }
        let mut first_err = None;
        // All hosts at once: nothing in a lab outlives its neighbours.
        let removals = self.containers.drain(..).map(|c| c.rm());
        for r in futures_util::future::join_all(removals).await {
            if let Err(e) = r {
                tracing::warn!(lab = %self.id, "removing container: {e}");
                first_err.get_or_insert(Error::docker("remove container", e));
            }
        }
        if let Err(e) = reaper::remove_lab(&self.docker, &self.id).await {
            first_err.get_or_insert(e);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn keep_resources(&mut self) {
        let _ = std::fs::write(reaper::kept_marker(&self.id), b"kept\n");
        // Dropping a ContainerAsync removes it; a kept lab must outlive us.
        for c in self.containers.drain(..) {
            std::mem::forget(c);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        reaper::unregister(&self.id);
        if self.keeps() {
            self.keep_resources();
            return;
        }
        // Containers go first (testcontainers removes them on drop), then the
        // network and state dir, on a thread of its own: Drop may run inside
        // or outside a runtime, while unwinding or not.
        self.containers.clear();
        let docker = self.docker.clone();
        let id = self.id.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                if let Err(e) = rt.block_on(reaper::remove_lab(&docker, &id)) {
                    eprintln!("pglab: cleaning up lab {id}: {e}");
                }
            }
        })
        .join();
    }
}

async fn container_ip(docker: &Docker, container: &str, network: &str) -> Result<Ipv4Addr> {
    let info = docker
        .inspect_container(container, None)
        .await
        .map_err(|e| Error::docker(format!("inspect {container}"), e))?;
    info.network_settings
        .and_then(|n| n.networks)
        .and_then(|n| n.get(network).and_then(|e| e.ip_address.clone()))
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| Error::Other(format!("{container} has no address on {network}")))
}

/// Opens the harness's route as soon as PostgreSQL accepts connections:
/// role `pglab`, allowed only on the local socket. Both commands are in the
/// transcript, so the route is never a hidden assumption. systemd may still
/// be settling (see [`Lab::wait_for_boot`]).
async fn open_route(host: &Host) -> Result<()> {
    let hba = format!("{}/pg_hba.conf", host.platform.pg_config_dir());
    host.exec(Cmd::shell(format!(
        "sed -i '1i local   all   {HARNESS_ROLE}   trust   # pglab harness route: Unix socket only' {hba}"
    )))
    .await?;
    poll_until(&format!("PostgreSQL to start on {}", host.name), "the postmaster answering on its socket", Duration::from_secs(60), || async {
        Ok(host.postmaster_answers().await)
    })
    .await?;
    host.exec(
        Cmd::new(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-qc", &format!("CREATE ROLE {HARNESS_ROLE} SUPERUSER LOGIN"), "-c", "SELECT pg_reload_conf()"])
            .user("postgres")
            .display(format!("psql -c 'CREATE ROLE {HARNESS_ROLE} SUPERUSER LOGIN' -c 'SELECT pg_reload_conf()'")),
    )
    .await?;
    host.wait_for_pg_up(Duration::from_secs(30)).await
}

/// Waits until systemd has finished booting a host (`running`; `degraded`
/// is accepted and its failed units logged).
/// Waits until systemd on `host` is running (or degraded, with a warning).
pub async fn wait_for_host_boot(host: &Host) -> Result<()> {
    let probe = Cmd::new(["systemctl", "is-system-running", "--wait"]).any_status().timeout(Duration::from_secs(120));
    poll_until(&format!("systemd to boot on {}", host.name), "running", Duration::from_secs(120), || async {
        let out = host.probe(&probe).await?;
        let state = out.stdout.trim().to_string();
        Ok(match state.as_str() {
            "running" => Probe::Ready(()),
            "degraded" => {
                let failed = host.probe(&Cmd::new(["systemctl", "--failed", "--no-legend", "--plain"])).await?;
                tracing::warn!(host = %host.name, "systemd degraded: {}", failed.stdout.trim());
                Probe::Ready(())
            }
            _ => Probe::NotYet(format!("{state} {}", out.stderr.trim())),
        })
    })
    .await
}

/// Builds (or finds) the image and starts a lab: the one call most users need.
pub async fn up(spec: &LabSpec, progress: &indicatif::ProgressBar) -> Result<Lab> {
    let docker = docker::connect().await?;
    HostImage::for_platform(spec.platform).ensure(&docker, false, progress).await?;
    Lab::start(&docker, spec).await
}

/// A lab started by another process (a kept lab): its hosts, to enter and
/// inspect. Attaching owns nothing; dropping it removes nothing.
pub struct Attached {
    pub id: String,
    pub hosts: Vec<Host>,
    transcript: Transcript,
}

impl Attached {
    pub async fn find(docker: &Docker, id: &str) -> Result<Attached> {
        let labs = reaper::list_labs(docker).await?;
        let lab = labs.into_iter().find(|l| l.lab == id).ok_or_else(|| Error::UnknownLab(id.to_string()))?;
        let network = format!("pglab-{id}");
        let transcript = Transcript::new();
        let mut hosts = Vec::new();
        for crate::reaper::HostSummary { host: name, container, .. } in &lab.hosts {
            let info = docker.inspect_image(&docker.inspect_container(container, None).await.map_err(|e| Error::docker("inspect", e))?.image.unwrap_or_default()).await;
            let platform = info
                .ok()
                .and_then(|i| i.config.and_then(|c| c.labels).and_then(|l| l.get(crate::docker::LABEL_IMAGE).cloned()))
                .and_then(|p| p.parse().ok())
                .unwrap_or_default();
            let ip = container_ip(docker, container, &network).await?;
            hosts.push(Host::new(name.clone(), id.to_string(), container.clone(), ip, platform, reaper::lab_state_dir(id).join(name), docker.clone(), transcript.clone()));
        }
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Attached { id: id.to_string(), hosts, transcript })
    }

}

