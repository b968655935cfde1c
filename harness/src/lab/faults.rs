//! Faults as host verbs: `partition`/`heal`, `pause`/`resume`, `kill`.
//! Each acts through the engine, or through a helper container that shares
//! the host's network namespace and alone holds NET_ADMIN; never through
//! the host's own configuration, and the lab hosts gain no capability.
//! Whatever is still active goes with the containers at teardown (a
//! paused host is removed by force like any other).

use std::time::Instant;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, KillContainerOptions, RemoveContainerOptions, RestartContainerOptionsBuilder};

use super::exec::{self, Cmd};
use super::host::Host;
use crate::engine::image::HostImage;
use crate::engine::LABEL_HOST;
use crate::error::{Error, Result};
use crate::time::{poll_until, Deadline, Probe};
use crate::vocab::KillWhat;

/// Who the transcript shows for what the harness does through the engine.
const ENGINE: &str = "pglab (engine)";
/// And for commands of the network helper.
const NET_HELPER: &str = "pglab (net helper, NET_ADMIN)";

impl Host {
    /// Cuts this host off from `peers`, both ways: a blackhole route to each
    /// peer here, and to this host in each peer. Addresses stay as they are.
    pub async fn partition(&self, peers: &[&Host]) -> Result<()> {
        for peer in peers {
            self.net_admin(&format!("ip route replace blackhole {}/32", peer.ip)).await?;
            peer.net_admin(&format!("ip route replace blackhole {}/32", self.ip)).await?;
        }
        Ok(())
    }

    /// Gives the network with `peers` back: undoes [`Host::partition`] and
    /// [`Host::add_latency`]; what is not there is fine.
    pub async fn heal(&self, peers: &[&Host]) -> Result<()> {
        for peer in peers {
            let (here, there) = self.latency_undo(peer);
            self.net_admin(&format!("ip route del blackhole {}/32 2>/dev/null; {here}; true", peer.ip)).await?;
            peer.net_admin(&format!("ip route del blackhole {}/32 2>/dev/null; {there}; true", self.ip)).await?;
            self.remove_relay(peer).await;
        }
        Ok(())
    }

    /// Whether the host has no route out of the lab's network, from its own routing table.
    pub async fn sealed(&self) -> Result<bool> {
        Ok(self.route_out().await?.is_none())
    }

    /// How the host could reach outside the lab, from its own routing
    /// tables (IPv4 and IPv6): a default route, or an outside address `ip
    /// route get` would send to; `None` when it cannot.
    pub async fn route_out(&self) -> Result<Option<String>> {
        let probes = [
            ("IPv4 default route", "ip route show default"),
            ("IPv6 default route", "ip -6 route show default 2>/dev/null"),
            ("`ip route get 192.0.2.1`", "ip route get 192.0.2.1 2>&1 || true"),
            ("`ip -6 route get 2001:db8::1`", "ip -6 route get 2001:db8::1 2>&1 || true"),
        ];
        for (what, line) in probes {
            let out = self.probe(&Cmd::shell(line).any_status()).await?;
            let first = out.stdout.lines().map(str::trim).find(|l| !l.is_empty());
            // `ip route get` answers a route (`<addr> via|dev ...`) or why there is
            // none ("unreachable", "Address family not supported" without IPv6).
            let reaches = match first {
                None => false,
                Some(l) if what.starts_with('`') => l.split_whitespace().nth(1).is_some_and(|w| w == "via" || w == "dev"),
                Some(_) => true,
            };
            if reaches {
                return Ok(Some(format!("{what}: {}", first.unwrap_or_default())));
            }
        }
        Ok(None)
    }

    /// Freezes every process of the host (the engine's cgroup freezer).
    pub async fn pause(&self) -> Result<()> {
        self.engine_call("pause", "frozen", crate::engine::pause(&self.docker, &self.container)).await
    }

    /// Thaws a paused host.
    pub async fn resume(&self) -> Result<()> {
        let unpause = async { self.docker.unpause_container(&self.container).await.map_err(|e| Error::docker(format!("unpause {}", self.container), e)) };
        self.engine_call("unpause", "running again", unpause).await
    }

    /// One engine call on this host's container, recorded in the transcript
    /// as the `docker` command it is.
    async fn engine_call(&self, verb: &str, outcome: &str, call: impl std::future::Future<Output = Result<()>>) -> Result<()> {
        let t = Instant::now();
        call.await?;
        self.note(ENGINE, &format!("docker {verb} {}", self.container), outcome, t.elapsed());
        Ok(())
    }

    /// Fills the filesystem at `path` to the last byte with files named
    /// `pglab-fill*` (as root); returns the bytes it still has free (0, or a
    /// few blocks the kernel keeps back).
    pub async fn fill(&self, path: &str) -> Result<u64> {
        let f = format!("{path}/pglab-fill");
        let line = format!(
            "fallocate -l \"$(df --output=avail -B1 {path} | tail -1)\" {f}; dd if=/dev/zero of={f}.tail bs=4k status=none; df --output=avail -B1 {path} | tail -1"
        );
        self.free_bytes(&self.exec(Cmd::shell(line).any_status()).await?.stdout)
    }

    /// Removes what [`Host::fill`] wrote; returns the bytes free again.
    pub async fn free(&self, path: &str) -> Result<u64> {
        let line = format!("rm -f {path}/pglab-fill {path}/pglab-fill.tail && df --output=avail -B1 {path} | tail -1");
        self.free_bytes(&self.exec(Cmd::shell(line)).await?.stdout)
    }

    fn free_bytes(&self, df: &str) -> Result<u64> {
        let last = df.lines().last().unwrap_or_default().trim();
        last.parse().map_err(|_| Error::Other(format!("df on {}: not a byte count: {df}", self.name)))
    }

    /// Kills the postmaster (SIGKILL) or the whole host, and waits until it is gone.
    pub async fn kill(&self, target: KillWhat) -> Result<()> {
        match target {
            KillWhat::Postmaster => {
                let pidfile = format!("{}/postmaster.pid", self.platform.pg_data());
                self.exec(Cmd::shell(format!("kill -KILL $(head -1 {pidfile})"))).await?;
                self.wait_for_pg_down(Deadline::standard()).await?;
            }
            KillWhat::Host => {
                let t = Instant::now();
                let opts = KillContainerOptions { signal: "SIGKILL".into() };
                self.docker.kill_container(&self.container, Some(opts)).await.map_err(|e| Error::docker(format!("kill {}", self.container), e))?;
                self.wait_for_host_stopped().await?;
                self.note(ENGINE, &format!("docker kill {}", self.container), "the host is off", t.elapsed());
            }
        }
        *self.client.lock().await = None;
        Ok(())
    }

    /// Restarts the whole host through the engine: systemd shuts down
    /// cleanly (its stop signal), the container starts again, systemd boots,
    /// and, when `ready`, the host is ready again as its kind says (the
    /// cluster back, for a `pg` host). Partitions and latency of the host go with the old
    /// network namespace; it is placed at its lab address (which configs
    /// hold) and sealed again.
    pub async fn restart_host(&self, ready: bool) -> Result<()> {
        let t = Instant::now();
        *self.client.lock().await = None;
        // The harness's own clients (writers, the lag sampler) stay out meanwhile.
        self.offline.store(true, std::sync::atomic::Ordering::SeqCst);
        let opts = RestartContainerOptionsBuilder::new().t(30).build();
        let restarted = self.docker.restart_container(&self.container, Some(opts)).await;
        if let Err(e) = restarted {
            self.offline.store(false, std::sync::atomic::Ordering::SeqCst);
            return Err(Error::docker(format!("restart {}", self.container), e));
        }
        self.note(ENGINE, &format!("docker restart {}", self.container), "running again", t.elapsed());
        // A new network namespace: its lab address back, sealed again, before it boots.
        let booted = match self.place().await {
            Ok(()) => super::boot::wait_for_host_boot(self).await,
            Err(e) => Err(e),
        };
        self.offline.store(false, std::sync::atomic::Ordering::SeqCst);
        booted?;
        match ready {
            true => super::kind::spec(self.kind).ready(self).await,
            false => Ok(()),
        }
    }

    async fn wait_for_host_stopped(&self) -> Result<()> {
        poll_until(&format!("{} to stop", self.container), "not running", Deadline::standard(), || async {
            let info = self.docker.inspect_container(&self.container, None).await.map_err(|e| Error::docker("inspect", e))?;
            let running = info.state.and_then(|s| s.running).unwrap_or(false);
            Ok(if running { Probe::NotYet("running".into()) } else { Probe::Ready(()) })
        })
        .await
    }

    /// Runs `line` in a short-lived helper that shares this host's network
    /// namespace and has NET_ADMIN; the host itself keeps none. For
    /// breaking a lab's network on purpose (`ip route add default dev
    /// eth0`); recorded in the transcript.
    pub async fn net_admin(&self, line: &str) -> Result<()> {
        let t = Instant::now();
        let helper = self.start_helper("net", vec!["sleep".into(), "300".into()]).await?;
        let ran = exec::run(&self.docker, &helper, &Cmd::shell(line), None).await;
        let removed = self.remove_helper(&helper).await;
        let out = ran?;
        removed?;
        let ran = crate::transcript::Ran {
            cmd: line,
            status: out.status,
            stdout: &out.stdout,
            stderr: &out.stderr,
            elapsed: t.elapsed(),
            in_host: Some(out.in_host),
        };
        self.transcript().command(&self.name, NET_HELPER, ran);
        if out.status != 0 {
            return Err(Error::Other(format!("{line} on {} (net helper) exited {}: {}", self.name, out.status, out.combined().trim())));
        }
        Ok(())
    }

    /// Starts `<container>-<suffix>` from the host's image, running `argv`
    /// in the host's network namespace with NET_ADMIN, and labelled as the
    /// lab's (so `gc` and the teardown remove it). Returns its name.
    pub(super) async fn start_helper(&self, suffix: &str, argv: Vec<String>) -> Result<String> {
        let helper = self.helper_name(suffix);
        let info = self.docker.inspect_container(&self.container, None).await.map_err(|e| Error::docker(format!("inspect {}", self.container), e))?;
        let mut labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        labels.remove(LABEL_HOST);
        labels.insert("pglab.helper".into(), self.name.clone());
        let body = ContainerCreateBody {
            image: Some(HostImage::for_platform(self.platform).reference()),
            entrypoint: Some(argv),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some(format!("container:{}", self.container)),
                cap_add: Some(vec!["NET_ADMIN".into()]),
                auto_remove: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptions { name: Some(helper.clone()), ..Default::default() };
        self.docker.create_container(Some(opts), body).await.map_err(|e| Error::docker(format!("create {helper}"), e))?;
        if let Err(e) = self.docker.start_container(&helper, None).await {
            let _ = self.remove_helper(&helper).await;
            return Err(Error::docker(format!("start {helper}"), e));
        }
        Ok(helper)
    }

    /// The container name of this host's helper `suffix`.
    pub(super) fn helper_name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.container)
    }

    pub(super) async fn remove_helper(&self, helper: &str) -> Result<()> {
        let remove = RemoveContainerOptions { force: true, ..Default::default() };
        self.docker.remove_container(helper, Some(remove)).await.map_err(|e| Error::docker(format!("remove {helper}"), e))
    }
}
