//! `file = { ... }`: writes a file on the step's host.

use std::time::Instant;

use serde::Deserialize;

use super::{existing, Act, Cx};
use crate::error::Result;
use crate::lab::Hosts;
use crate::vocab::{Mode, Owner};

/// Writes `content` to `path` (or appends it).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FileAction")]
pub(crate) struct File {
    /// Where, on the step's host; its directory must exist.
    pub path: String,
    /// What it holds (a `\n` ends a line).
    pub content: String,
    /// Permission bits in octal.
    #[serde(default)]
    pub mode: Mode,
    /// `user` or `user:group`, by name on that host.
    #[serde(default)]
    pub owner: Owner,
    /// Add to the end of the file (a missing file counts as empty).
    #[serde(default)]
    pub append: bool,
}

impl Act for File {
    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let t = Instant::now();
        let path = cx.vars.subst(&self.path)?;
        let text = cx.vars.subst(&self.content)?;
        let mut content = if self.append { existing(cx.host, &path).await? } else { Vec::new() };
        content.extend_from_slice(text.as_bytes());
        cx.host.write_file(&path, &content, self.mode.0, &self.owner.user, self.owner.group.as_deref()).await?;
        cx.host.note(cx.user, &format!("write {path} (mode {}, owner {})", self.mode, self.owner), &text, t.elapsed());
        Ok(format!("wrote {path}"))
    }
}
