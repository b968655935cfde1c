//! `run = "..."`: a shell line exactly as the tutorial writes it.

use serde::Deserialize;
use toml::Spanned;

use super::{judge, Act, Cx, Miss};
use crate::error::Result;
use crate::lab::{Cmd, Hosts};

/// A shell line exactly as the tutorial writes it, run by bash as `user`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Run(#[schemars(with = "String")] pub Spanned<String>);

/// Words of a shell line that talk to systemd or postgresql-common.
const BOOT_WORDS: [&str; 4] = ["systemctl", "pg_ctlcluster", "service ", "reboot"];

impl Act for Run {
    fn waits_for_boot(&self) -> bool {
        BOOT_WORDS.iter().any(|w| self.0.get_ref().contains(w))
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let line = cx.vars.subst(self.0.get_ref())?;
        let mut cmd = Cmd::shell(&line).user(cx.user.to_string()).any_status().timeout(cx.deadline.budget());
        let out = cx.host.exec(cmd.clone()).await?;
        match judge(cx.expect, cx.vars, out.status, &out.combined())? {
            None => Ok(format!("exit {}", out.status)),
            Some(miss) => {
                if matches!(miss, Miss::Status { .. }) {
                    cmd.expect_status = cx.expect.status.unwrap_or_default().code();
                }
                // A status code wanted is said beside the status got; a word (`nonzero`) is the reason.
                let reason = cmd.expect_status.is_none().then(|| miss.to_string());
                Err(cx.host.failure(&cmd, &out, reason).await)
            }
        }
    }
}
