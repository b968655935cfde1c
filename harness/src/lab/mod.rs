//! A disposable lab: one private network, N systemd hosts on it, torn down
//! exactly once on every path out (return, error, panic, signal).

pub(crate) mod address;
mod bench;
pub(crate) mod boot;
mod cgroup;
pub(crate) mod checkpoint;
mod exec;
mod faults;
pub(crate) mod files;
mod host;
pub(crate) mod inventory;
pub(crate) mod kind;
mod latency;
pub(crate) mod load;
pub(crate) mod logs;
mod pg;
mod pgbackrest;
pub(crate) mod provided;
pub(crate) mod route;
pub(crate) mod sampler;
pub(crate) mod signals;
pub(crate) mod tls;

pub use crate::vocab::{HostKind, KillWhat, StopMode};
pub(crate) use boot::BootGate;
pub use exec::{Cmd, ExecOutput};
pub(crate) use files::SSH_HOST_KEY;
use host::Placement;
pub use host::{Host, PsqlOutcome};
pub use inventory::{HostSummary, LabSummary};
pub use load::Workloads;
pub(crate) use logs::{LogTail, Style as LogStyle};
pub use pg::{LogOffset, Lsn, LsnKind};
pub use pgbackrest::{error_code, Br, BrCommand};
pub use provided::ObjectStore;
use provided::Provided;
pub(crate) use route::HARNESS_USER;
pub(crate) use sampler::LagSampler;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use bollard::models::NetworkCreateRequest;
use bollard::Docker;
use futures_util::future::try_join_all;
use serde::Serialize;
use testcontainers::core::{Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use crate::engine::image::HostImage;
use crate::engine::{self, container_name, lab_labels, network_name, Engine, LABEL_ADDRESS, LABEL_HOST, LABEL_KIND};
use crate::error::{Error, Result};
use crate::outcome::StartTimings;
use crate::platform::Platform;
use crate::transcript::Transcript;

/// The hosts of a lab, started by this process or found on the engine: steps
/// and checks run on either.
pub trait Hosts: Sync {
    /// The lab's id (`pglab list`, the `pglab.lab` label).
    fn id(&self) -> &str;
    /// Its hosts, in the order they were declared.
    fn hosts(&self) -> &[Host];
    /// The record of every command and SQL statement run on the hosts.
    fn transcript(&self) -> &Transcript;
    /// Background writers started by this process's steps.
    fn workloads(&self) -> &Workloads;
    /// The platform its hosts run (every host of a lab runs the same).
    fn platform(&self) -> Platform {
        self.hosts().first().map(|h| h.platform).unwrap_or_default()
    }
    /// A host by name, or an error naming the ones there are.
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
            fn workloads(&self) -> &Workloads {
                &self.workloads
            }
        }
    )*};
}
impl_hosts!(Lab, Attached);

/// When a lab survives its run, like `PG_TEST_NOCLEAN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Keep {
    #[default]
    /// Removed on shutdown, on drop and on a panic.
    Never,
    /// Kept when it failed or the test panicked; removed otherwise.
    OnFailure,
    /// Always kept (`pglab down` removes it).
    Always,
}

/// One host to start: its name, its kind, its own small filesystems.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// Its container's hostname, resolved by the others.
    pub name: String,
    /// What runs there.
    pub kind: HostKind,
    /// Small filesystems (tmpfs): path and size in bytes.
    pub volumes: Vec<(String, i64)>,
    /// It gets a certificate and key of its own from the lab's CA.
    pub certificate: bool,
    /// A checkpoint's image of this host, to start from instead of the platform's.
    pub(crate) checkpoint: Option<String>,
    /// Not started: its name and address stay reserved (see `run::spares`).
    pub(crate) idle: bool,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// What every host runs.
    pub platform: Platform,
    /// The hosts, in the order they are declared.
    pub hosts: Vec<HostSpec>,
    /// What shutdown, drop and a panic do with it.
    pub keep: Keep,
    /// Scenario name, shown by `pglab list`.
    pub(crate) scenario: Option<String>,
    /// The caller tears the lab down itself when interrupted (it listens to
    /// [`signals::interrupted`]); otherwise the signal handler does.
    pub(crate) attended: bool,
    /// What the checkpoint its restored hosts come from kept of its CA and stores.
    pub(crate) kept: Option<provided::Kept>,
}

impl LabSpec {
    /// Every image its hosts run: the platform's, and each kind's own.
    pub(crate) fn images(&self) -> Vec<HostImage> {
        let mut out = vec![HostImage::for_platform(self.platform)];
        for i in self.hosts.iter().filter_map(|h| kind::spec(h.kind).image()) {
            if !out.iter().any(|o| o.reference() == i.reference()) {
                out.push(i);
            }
        }
        out
    }

    /// PostgreSQL hosts by name on a platform, each with the cluster
    /// initialised and running (Debian's defaults), sshd and cron; nothing
    /// configured yet.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(platform: Platform, hosts: I) -> Self {
        let hosts = hosts
            .into_iter()
            .map(|n| HostSpec { name: n.into(), kind: HostKind::Pg, volumes: Vec::new(), certificate: false, checkpoint: None, idle: false })
            .collect();
        LabSpec { platform, hosts, keep: Keep::Never, scenario: None, attended: false, kept: None }
    }

    /// One more host, of `kind`: `LabSpec::new(p, ["pg1"]).host("repo", HostKind::Repo)`.
    pub fn host(mut self, name: &str, kind: HostKind) -> Self {
        self.hosts.push(HostSpec { name: name.to_string(), kind, volumes: Vec::new(), certificate: false, checkpoint: None, idle: false });
        self
    }

    /// Gives `host` a certificate and key from the lab's CA, named for it
    /// and its address, at `/etc/pglab/tls/host.crt` (`{tls.cert}`) with its
    /// key beside it (`{tls.key}`).
    pub fn certificate(mut self, host: &str) -> Self {
        if let Some(h) = self.hosts.iter_mut().find(|h| h.name == host) {
            h.certificate = true;
        }
        self
    }

    /// Starts these hosts from a checkpoint's images (the others fresh),
    /// with what it kept of the CA and stores they were made with.
    pub(crate) fn start_from(&mut self, saved: &[checkpoint::SavedHost], kept: provided::Kept) {
        for s in saved {
            if let Some(h) = self.hosts.iter_mut().find(|h| h.name == s.name) {
                h.checkpoint = Some(s.image.clone());
            }
        }
        self.kept = Some(kept);
    }

    /// Leaves these hosts unstarted; the others still know their names and addresses.
    pub(crate) fn idle(mut self, names: &[String]) -> Self {
        for h in self.hosts.iter_mut().filter(|h| names.contains(&h.name)) {
            h.idle = true;
        }
        self
    }

    /// Whether [`Lab::shutdown`] (or a panic) leaves the lab up.
    pub fn keep(mut self, keep: Keep) -> Self {
        self.keep = keep;
        self
    }

    /// A small filesystem of its own (tmpfs) at `path` on `host` (a host
    /// of the spec), to fill.
    pub fn volume(mut self, host: &str, path: &str, size_mb: u32) -> Self {
        if let Some(h) = self.hosts.iter_mut().find(|h| h.name == host) {
            h.volumes.push((path.to_string(), i64::from(size_mb) << 20));
        }
        self
    }

    /// Builds the platform's image if missing and starts the lab.
    ///
    /// ```no_run
    /// # async fn demo() -> pglab::Result<()> {
    /// use pglab::prelude::*;
    /// let lab = LabSpec::new(Platform::Debian12, ["pg1", "pg2"]).start().await?;
    /// assert_eq!(lab.host("pg1")?.safe_psql("SELECT 1").await?, "1");
    /// lab.shutdown().await
    /// # }
    /// ```
    pub async fn start(&self) -> Result<Lab> {
        Engine::connect().await?.start(self).await
    }
}

/// A running lab: its hosts on a private network of their own. Removed
/// exactly once, by [`Lab::shutdown`] or when dropped (even in a panic),
/// unless its [`Keep`] says otherwise.
pub struct Lab {
    /// The lab's id, in every resource's `pglab.lab` label.
    pub id: String,
    /// Its Docker network (`pglab-<id>`).
    pub network: String,
    /// The image its hosts run.
    pub image: HostImage,
    /// How long starting it took, by part.
    pub timings: StartTimings,
    docker: Docker,
    hosts: Vec<Host>,
    transcript: Transcript,
    workloads: Workloads,
    keep: Keep,
    failed: bool,
    closed: bool,
    provided: Provided,
    /// Held for the lab's life: `gc` leaves its state dir alone meanwhile.
    _claim: inventory::Claim,
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
    pub(crate) async fn start(docker: &Docker, spec: &LabSpec) -> Result<Lab> {
        let total = Instant::now();
        let image = HostImage::for_platform(spec.platform);
        for i in spec.images() {
            if !i.exists(docker).await? {
                return Err(Error::ImageMissing { image: i.reference(), hint: format!("build it first: `pglab image build {}`", spec.platform) });
            }
        }
        let id = new_lab_id();
        // Before anything is made on the engine: a state dir that cannot be made stops here.
        let claim = inventory::claim_lab_state_dir(&id)?;
        let network = network_name(&id);
        let labels = lab_labels(&id, spec.keep == Keep::Always, spec.scenario.as_deref());
        signals::starting(&id, spec.attended);

        let mut timings = StartTimings::default();
        let t = Instant::now();
        // Hosts talk at lab addresses (see `address`), which an `internal`
        // network would drop; nothing is masqueraded, and no host has a route out.
        let created = docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                options: Some(HashMap::from([("com.docker.network.bridge.enable_ip_masquerade".to_string(), "false".to_string())])),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await;
        if let Err(e) = created {
            signals::release(&id);
            return Err(Error::docker(format!("create network {network}"), e));
        }
        timings.network = t.elapsed();

        let transcript = Transcript::new();
        let provided = match Provided::for_spec(&id, spec) {
            Ok(p) => p,
            Err(e) => {
                let _ = inventory::remove_lab(docker, &id).await;
                signals::release(&id);
                return Err(e);
            }
        };
        let on = Network { id: &id, network: &network, image: &image, labels: &labels };
        let started = Self::start_hosts(docker, spec, &on, (&transcript, &provided), &mut timings).await;
        let hosts = match started {
            Ok(v) => v,
            Err(e) => {
                let _ = inventory::remove_lab(docker, &id).await;
                signals::release(&id);
                return Err(e);
            }
        };
        signals::live(&id);
        timings.total = total.elapsed();
        tracing::info!(lab = %id, ms = timings.total.as_millis() as u64, "lab up");
        Ok(Lab {
            id,
            network,
            image,
            timings,
            docker: docker.clone(),
            hosts,
            transcript,
            workloads: Workloads::default(),
            keep: spec.keep,
            failed: false,
            closed: false,
            provided,
            _claim: claim,
        })
    }

    async fn start_hosts(
        docker: &Docker,
        spec: &LabSpec,
        on: &Network<'_>,
        (transcript, provided): (&Transcript, &Provided),
        timings: &mut StartTimings,
    ) -> Result<Vec<Host>> {
        let t = Instant::now();
        let access = cgroup::cgroup_access(docker, on.image).await?;
        // Addresses by place in the spec, idle hosts included: configs that
        // name an address hold whichever hosts a run starts.
        let addresses = spec.hosts.iter().enumerate().map(|(i, h)| Ok((h.name.clone(), address::lab_address(i)?))).collect::<Result<Vec<_>>>()?;
        let live: Vec<(&HostSpec, Ipv4Addr)> = spec.hosts.iter().zip(&addresses).filter(|(h, _)| !h.idle).map(|(h, (_, ip))| (h, *ip)).collect();
        let containers = try_join_all(live.iter().map(|(h, ip)| start_container(docker, &access, spec.platform, on, h, *ip))).await?;
        timings.containers = t.elapsed();
        for h in spec.hosts.iter().filter(|h| h.idle) {
            // Not in the transcript: a checkpoint carries its transcript to runs that do start it.
            tracing::info!(lab = on.id, host = %h.name, "not started: no step or check of this run names it");
        }

        let t = Instant::now();
        // An object store also answers at `<bucket>.<host>` (virtual-host style).
        let mut names = addresses.clone();
        for (h, ip) in live.iter().filter(|(h, _)| h.kind == HostKind::S3) {
            names.extend(kind::s3::aliases(&h.name).into_iter().map(|a| (a, *ip)));
        }
        let hosts_file = address::hosts_file(&names);
        let mut hosts = Vec::new();
        for ((h, ip), container) in live.iter().zip(containers) {
            let at = Placement {
                name: h.name.clone(),
                kind: h.kind,
                lab: on.id.to_string(),
                container,
                ip: *ip,
                platform: spec.platform,
                hosts_file: hosts_file.clone(),
            };
            hosts.push(Host::new(at, docker.clone(), transcript.clone()));
        }
        try_join_all(hosts.iter().zip(live.iter().map(|(s, _)| *s)).map(|(h, s)| async move {
            // A lab that could reach out is not the lab the checks speak of.
            h.place().await?;
            // A restored host has what it was provided with in its filesystem.
            let restored = s.checkpoint.is_some();
            if let Some(ca) = provided.ca_pem().filter(|_| !(restored && provided.ca_kept())) {
                let t = Instant::now();
                h.write_file(tls::CA_FILE, ca.as_bytes(), 0o644, "root", None).await?;
                h.note("pglab (harness)", &format!("the lab CA's certificate at {}", tls::CA_FILE), "its key stays with the harness", t.elapsed());
            }
            if s.certificate && !restored {
                give_certificate(h, provided).await?;
            }
            if !restored {
                kind::spec(h.kind).provision(h, provided).await?;
            }
            kind::spec(h.kind).ready(h).await
        }))
        .await?;
        timings.sql_ready = t.elapsed();
        Ok(hosts)
    }

    /// Waits until every host's systemd has finished booting (postgresql-common
    /// spends about 2 s confirming a start, after the server already answers).
    pub async fn wait_for_boot(&self) -> Result<()> {
        try_join_all(self.hosts.iter().map(boot::wait_for_host_boot)).await.map(|_| ())
    }

    /// The variables of what pglab made for this lab (its CA, each
    /// store's bucket and key): see [`Provided::vars`].
    pub(crate) fn provided_vars(&self) -> Vec<(String, String)> {
        self.provided.vars()
    }

    /// The object store `name` (a host of kind `s3`): its endpoint, bucket,
    /// region, the lab's CA and the lab's key, for your own client.
    ///
    /// ```no_run
    /// # async fn demo() -> pglab::Result<()> {
    /// use pglab::prelude::*;
    ///
    /// let lab = LabSpec::new(Platform::Debian12, ["pg1"]).host("s3", HostKind::S3).start().await?;
    /// let store = lab.object_store("s3")?;
    /// println!("{} bucket {} (CA at {} on every host)", store.url, store.bucket, store.ca_file);
    /// lab.shutdown().await
    /// # }
    /// ```
    pub fn object_store(&self, name: &str) -> Result<ObjectStore> {
        self.provided.object_store(name)
    }

    /// What a checkpoint of this lab keeps of its CA and stores.
    pub(crate) fn provided_kept(&self) -> provided::Kept {
        self.provided.kept()
    }

    /// The engine it runs on.
    pub(crate) fn docker(&self) -> Docker {
        self.docker.clone()
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

    /// Tears the lab down, or keeps it as asked.
    pub async fn shutdown(mut self) -> Result<()> {
        self.close(self.keeps()).await
    }

    /// Tears the lab down whatever `Keep` says: after an interrupt.
    pub async fn discard(mut self) -> Result<()> {
        self.close(false).await
    }

    async fn close(&mut self, keep: bool) -> Result<()> {
        self.closed = true;
        if !signals::claim(&self.id) {
            return Ok(());
        }
        let result = if keep {
            self.mark_kept();
            Ok(())
        } else {
            inventory::remove_lab(&self.docker, &self.id).await.map(|_| ())
        };
        signals::release(&self.id);
        result
    }

    fn mark_kept(&self) {
        let _ = std::fs::write(inventory::kept_marker(&self.id), b"kept\n");
    }
}

impl Drop for Lab {
    /// The fallback teardown (an early return, a panic): the same claim, the
    /// same removal, on a thread of its own since Drop may run inside or
    /// outside a runtime, unwinding or not.
    fn drop(&mut self) {
        if self.closed || !signals::claim(&self.id) {
            return;
        }
        if self.keeps() {
            self.mark_kept();
        } else {
            let docker = self.docker.clone();
            let id = self.id.clone();
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    if let Err(e) = rt.block_on(inventory::remove_lab(&docker, &id)) {
                        crate::progress::say(format_args!("pglab: cleaning up lab {id}: {e}"));
                    }
                }
            })
            .join();
        }
        signals::release(&self.id);
    }
}

/// Where a lab's hosts are made: its id, network, image and labels.
struct Network<'a> {
    id: &'a str,
    network: &'a str,
    image: &'a HostImage,
    labels: &'a HashMap<String, String>,
}

/// Creates and starts one host's container; its name on the engine.
/// Its own certificate (common name: its name; also its address) and key,
/// for pgBackRest's TLS server and client; the key is `postgres`'s alone.
async fn give_certificate(h: &Host, provided: &Provided) -> Result<()> {
    let t = Instant::now();
    let issued = provided.issue(&[h.name.clone(), h.ip.to_string()])?;
    let dir = std::path::Path::new(tls::HOST_CERT).parent().map(|d| d.display().to_string()).unwrap_or_default();
    h.probe(&Cmd::shell(format!("install -d -m 0755 {dir}")).user("root")).await?;
    h.write_file(tls::HOST_CERT, issued.cert_pem.as_bytes(), 0o644, "root", None).await?;
    h.write_file(tls::HOST_KEY, issued.key_pem.as_bytes(), 0o600, "postgres", None).await?;
    let said = format!("{} and its key {} (CN={}), from the lab CA", tls::HOST_CERT, tls::HOST_KEY, h.name);
    h.note("pglab (harness)", "the host's certificate", &said, t.elapsed());
    Ok(())
}

async fn start_container(docker: &Docker, access: &cgroup::CgroupAccess, platform: Platform, on: &Network<'_>, h: &HostSpec, ip: Ipv4Addr) -> Result<String> {
    let container_name = container_name(on.id, &h.name);
    let own = kind::spec(h.kind).image();
    let (name, tag) = match (h.checkpoint.as_deref().and_then(|r| r.split_once(':')), &own) {
        (Some((name, tag)), _) => (name.to_string(), tag.to_string()),
        (None, Some(i)) => (i.name.clone(), i.tag.clone()),
        (None, None) => (on.image.name.clone(), on.image.tag.clone()),
    };
    // systemd's arguments are those of the platform its image is built on.
    let init = own.as_ref().map_or(platform, |i| i.platform).init_cmd();
    // Every host waits to boot until it is at its lab address, sealed (see `address`).
    let image = GenericImage::new(name, tag).with_wait_for(WaitFor::Nothing).with_entrypoint("/bin/sh");
    let mut req = image
        .with_container_name(container_name.clone())
        .with_hostname(h.name.clone())
        .with_network(on.network.to_string())
        .with_labels(on.labels.clone())
        .with_label(LABEL_HOST, h.name.clone())
        .with_label(LABEL_KIND, h.kind.name())
        .with_label(LABEL_ADDRESS, ip.to_string())
        // No frame past the routing table (which has no route out).
        .with_cap_drop("NET_RAW")
        .with_env_var("container", "docker")
        .with_mount(Mount::tmpfs_mount("/run"))
        .with_mount(Mount::tmpfs_mount("/run/lock"))
        .with_startup_timeout(crate::time::default_timeout());
    let extra = kind::spec(h.kind).init_args(platform);
    // A small filesystem the scenario gives the data directory takes its place.
    let data = kind::spec(h.kind).data_dir().filter(|d| !h.volumes.iter().any(|(p, _)| p == d));
    let restore = if h.checkpoint.is_some() { checkpoint::before_boot(data) } else { String::new() };
    let script = format!("{} {restore}exec \"$@\"", address::WAIT_PLACED);
    req = req.with_cmd(["-c".to_string(), script, "sh".to_string()].into_iter().chain(init).chain(extra));
    for (path, bytes) in &h.volumes {
        req = req.with_mount(Mount::tmpfs_mount(path.clone()).with_size_bytes(*bytes));
    }
    if let Some(dir) = data {
        req = req.with_mount(Mount::volume_mount(data_volume(docker, on, &h.name).await?, dir));
    }
    // systemd as PID 1 needs a writable cgroup tree: the least privilege the engine takes.
    let c = access.apply(req).start().await.map_err(|e| Error::docker(format!("start {container_name}"), e))?;
    // The lab's one teardown removes it by label; testcontainers'
    // own removal on drop would race that one.
    std::mem::forget(c);
    Ok(container_name)
}

/// A new volume for the data directory of `host` (see [`kind::Kind::data_dir`]),
/// labelled as the lab is: its teardown and `pglab gc` remove it.
async fn data_volume(docker: &Docker, on: &Network<'_>, host: &str) -> Result<String> {
    let name = format!("{}-data", container_name(on.id, host));
    let mut labels = on.labels.clone();
    labels.insert(LABEL_HOST.to_string(), host.to_string());
    let req = bollard::models::VolumeCreateRequest { name: Some(name.clone()), labels: Some(labels), ..Default::default() };
    docker.create_volume(req).await.map_err(|e| Error::docker(format!("create volume {name}"), e))?;
    Ok(name)
}

/// Finds or builds every image a lab of `spec` runs.
pub(crate) async fn ensure_images(docker: &Docker, spec: &LabSpec, progress: &crate::progress::PhaseBar) -> Result<()> {
    for image in spec.images() {
        image.ensure(docker, false, progress).await?;
    }
    Ok(())
}

/// Builds (or finds) the image and starts a lab: the one call most users need.
pub(crate) async fn up(spec: &LabSpec, progress: &crate::progress::PhaseBar) -> Result<Lab> {
    Engine::connect().await?.start_showing(spec, progress).await
}

impl Engine {
    /// Starts a lab of `spec` on this engine, building its image first if it is missing.
    pub async fn start(&self, spec: &LabSpec) -> Result<Lab> {
        self.start_showing(spec, &crate::progress::PhaseBar::hidden()).await
    }

    /// [`start`](Engine::start), showing an image build's phases on `progress`.
    pub(crate) async fn start_showing(&self, spec: &LabSpec, progress: &crate::progress::PhaseBar) -> Result<Lab> {
        ensure_images(&self.docker, spec, progress).await?;
        Lab::start(&self.docker, spec).await
    }

    /// This user's labs on the engine (every user's, for root), by their labels.
    pub async fn labs(&self) -> Result<Vec<inventory::LabSummary>> {
        inventory::list_labs(&self.docker).await
    }

    /// Removes a lab: its containers, network and volumes, and its run state.
    pub async fn remove_lab(&self, id: &str) -> Result<()> {
        inventory::remove_lab(&self.docker, id).await.map(|_| ())
    }

    /// A kept lab (`--keep`, or started by another process), to enter and inspect.
    pub async fn attach(&self, id: &str) -> Result<Attached> {
        Attached::find(&self.docker, id).await
    }
}

/// Where pglab keeps what a lab's run remembers (its run state, a copy of
/// its scenario): `/tmp/pglab-<uid>/<lab>`, 0700, removed with the lab.
pub fn state_dir(lab: &str) -> std::path::PathBuf {
    inventory::lab_state_dir(lab)
}

/// A lab started by another process (a kept lab): its hosts, to enter and
/// inspect. Attaching owns nothing; dropping it removes nothing.
pub struct Attached {
    /// The lab's id.
    pub id: String,
    /// Its hosts, running or stopped.
    pub hosts: Vec<Host>,
    transcript: Transcript,
    workloads: Workloads,
}

impl Attached {
    /// The kept lab `id` of this user, found by its labels.
    pub(crate) async fn find(docker: &Docker, id: &str) -> Result<Attached> {
        let labs = inventory::list_labs(docker).await?;
        let lab = labs.into_iter().find(|l| l.lab == id).ok_or_else(|| Error::UnknownLab(id.to_string()))?;
        let transcript = Transcript::new();
        for s in inventory::load_secrets(id) {
            transcript.redactor().add(&s);
        }
        let address = |h: &inventory::HostSummary| h.ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let hosts_file = address::hosts_file(&lab.hosts.iter().map(|h| (h.host.clone(), address(h))).collect::<Vec<_>>());
        let mut hosts = Vec::new();
        for summary @ inventory::HostSummary { host: name, kind, container, .. } in &lab.hosts {
            let kind = *kind;
            let info = docker
                .inspect_image(&docker.inspect_container(container, None).await.map_err(|e| Error::docker("inspect", e))?.image.unwrap_or_default())
                .await;
            let platform = info
                .ok()
                .and_then(|i| i.config.and_then(|c| c.labels).and_then(|l| l.get(engine::LABEL_IMAGE).cloned()))
                .and_then(|p| p.parse().ok())
                .unwrap_or_default();
            let at = Placement {
                name: name.clone(),
                kind,
                lab: id.to_string(),
                container: container.clone(),
                ip: address(summary),
                platform,
                hosts_file: hosts_file.clone(),
            };
            hosts.push(Host::new(at, docker.clone(), transcript.clone()));
        }
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Attached { id: id.to_string(), hosts, transcript, workloads: Workloads::default() })
    }
}
