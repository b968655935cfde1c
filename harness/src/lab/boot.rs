//! Waiting for systemd to finish booting a host. Steps start while it
//! settles; those that use systemd (and every check) wait for it here.

use std::collections::BTreeMap;

use futures_util::future::{BoxFuture, FutureExt, Shared};

use super::exec::Cmd;
use super::host::Host;
use super::Hosts;
use crate::error::{Error, Result};
use crate::time::{poll_until, Deadline, Probe};

/// Waits until systemd on `host` is running (or degraded, with a warning).
pub(crate) async fn wait_for_host_boot(host: &Host) -> Result<()> {
    let deadline = Deadline::standard();
    let probe = Cmd::new(["systemctl", "is-system-running", "--wait"]).any_status().timeout(deadline.budget());
    poll_until(&format!("systemd to boot on {}", host.name), "running", deadline, || async {
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

/// Each host's "systemd has finished booting", polled once, shared by all
/// who wait for it.
pub(crate) struct BootGate<'a> {
    hosts: BTreeMap<String, Shared<BoxFuture<'a, std::result::Result<(), String>>>>,
}

impl<'a> BootGate<'a> {
    pub(crate) fn new<L: Hosts>(lab: &'a L) -> Self {
        let hosts = lab.hosts().iter().map(|h| (h.name.clone(), wait_for_host_boot(h).map(|r| r.map_err(|e| e.to_string())).boxed().shared())).collect();
        BootGate { hosts }
    }

    pub(crate) async fn host(&self, name: &str) -> Result<()> {
        match self.hosts.get(name) {
            Some(f) => f.clone().await.map_err(Error::Other),
            None => Ok(()),
        }
    }

    pub(crate) async fn all(&self) -> Result<()> {
        futures_util::future::try_join_all(self.hosts.values().cloned()).await.map(|_| ()).map_err(Error::Other)
    }
}
