//! `copy = { ... }`: a file from another host, through the harness.

use std::time::Instant;

use serde::Deserialize;
use toml::Spanned;

use super::{existing, Act, Cx, Named};
use crate::error::Result;
use crate::lab::Hosts;
use crate::vocab::{Mode, Owner};

/// Copies a file between hosts (e.g. a public key), through the harness.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CopyAction")]
pub(crate) struct Copy {
    /// The host that has the file.
    #[schemars(with = "String")]
    pub from_host: Spanned<String>,
    /// Its path there.
    pub from: String,
    /// The path on the step's host; its directory must exist.
    pub to: String,
    /// Add to the end of `to` (a missing file counts as empty).
    #[serde(default)]
    pub append: bool,
    /// Permission bits in octal.
    #[serde(default)]
    pub mode: Mode,
    /// `user` or `user:group`, by name on the step's host.
    #[serde(default)]
    pub owner: Owner,
}

impl Act for Copy {
    fn named(&self) -> Vec<Named<'_>> {
        vec![Named::any("copy.from_host", &self.from_host)]
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let t = Instant::now();
        let (host, from) = (cx.host, cx.lab.host(self.from_host.get_ref())?);
        let (src, dst) = (cx.vars.subst(&self.from)?, cx.vars.subst(&self.to)?);
        let data = from.read_file(&src).await?;
        let mut content = if self.append { existing(host, &dst).await? } else { Vec::new() };
        content.extend_from_slice(data.as_bytes());
        host.write_file(&dst, &content, self.mode.0, &self.owner.user, self.owner.group.as_deref()).await?;
        let what = format!("copy {}:{src} -> {}:{dst}{}", from.name, host.name, if self.append { " (append)" } else { "" });
        host.note("root", &what, &data, t.elapsed());
        Ok(format!("copied {src}"))
    }
}
