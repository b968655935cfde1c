//! `known_host = "HOST"`: pins a peer's SSH host key, read by the engine.

use std::time::Instant;

use serde::Deserialize;
use toml::Spanned;

use super::{existing, Act, Cx, Named};
use crate::error::Result;
use crate::lab::{Cmd, Hosts, SSH_HOST_KEY};

/// Pin this host's SSH host key in the step user's `~/.ssh/known_hosts`,
/// under its address; the key is read off the host through the engine,
/// never trusted on first use over the network (`ssh-keyscan`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct KnownHost(#[schemars(with = "String")] pub Spanned<String>);

impl Act for KnownHost {
    fn named(&self) -> Vec<Named<'_>> {
        vec![Named::any("known_host", &self.0)]
    }

    /// Pins the peer's host key for the step's user: the engine reads the
    /// key off the peer's disk, so no answer over the lab network is trusted.
    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let t = Instant::now();
        let (host, peer) = (cx.host, cx.lab.host(self.0.get_ref())?);
        let key = peer.ssh_host_key().await?;
        let home = host.probe(&Cmd::shell("printf %s \"$HOME\"").user(cx.user)).await?.stdout;
        let path = format!("{home}/.ssh/known_hosts");
        // Both names the tutorial's commands may use: the host name and its address.
        let line = format!("{},{} {key}\n", peer.name, peer.ip);
        let mut content = existing(host, &path).await?;
        content.extend_from_slice(line.as_bytes());
        host.write_file(&path, &content, 0o644, cx.user, None).await?;
        host.note("pglab (harness)", &format!("pin {}'s host key ({SSH_HOST_KEY}, read by the engine) in {path}", peer.name), &line, t.elapsed());
        Ok(format!("pinned the host key of {}", peer.name))
    }
}
