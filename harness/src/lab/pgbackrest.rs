//! pgBackRest commands built as pgBackRest's own harness builds them: a
//! command, a stanza, options, and an expected outcome; an expected failure
//! is matched by pgBackRest's error code (`ERROR: [038]: ...`).

use super::exec::{Cmd, ExecOutput};
use super::host::Host;
use crate::error::{Error, Result};

/// The pgBackRest commands pglab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrCommand {
    /// `backup`
    Backup,
    /// `check`: archiving and configuration.
    Check,
    /// `expire`: what retention no longer keeps.
    Expire,
    /// `info`
    Info,
    /// `repo-ls`: a repository path's contents.
    RepoLs,
    /// `restore`
    Restore,
    /// `stanza-create`
    StanzaCreate,
    /// `verify`: the repository's contents.
    Verify,
}

impl BrCommand {
    /// The command as pgBackRest spells it.
    pub fn name(self) -> &'static str {
        match self {
            BrCommand::Backup => "backup",
            BrCommand::Check => "check",
            BrCommand::Expire => "expire",
            BrCommand::Info => "info",
            BrCommand::RepoLs => "repo-ls",
            BrCommand::Restore => "restore",
            BrCommand::StanzaCreate => "stanza-create",
            BrCommand::Verify => "verify",
        }
    }
}

/// One pgBackRest invocation, run as `postgres` by [`Host::pgbackrest`](crate::Host::pgbackrest);
/// `expect_error(38)` makes pgBackRest's error `[038]` the expected outcome.
///
/// ```
/// use pglab::prelude::*;
/// let restore = Br::new(BrCommand::Restore).stanza("main").flag("delta").opt("type", "standby");
/// assert_eq!(restore.argv().join(" "), "pgbackrest --stanza=main --delta --type=standby restore");
/// ```
#[derive(Debug, Clone)]
pub struct Br {
    command: BrCommand,
    stanza: Option<String>,
    options: Vec<String>,
    /// What follows the command (`repo-ls`'s path).
    args: Vec<String>,
    expect_error: Option<u16>,
}

impl Br {
    /// A pgBackRest command with no options yet.
    pub fn new(command: BrCommand) -> Self {
        Br { command, stanza: None, options: Vec::new(), args: Vec::new(), expect_error: None }
    }

    /// `--stanza=NAME`.
    pub fn stanza(mut self, stanza: impl Into<String>) -> Self {
        self.stanza = Some(stanza.into());
        self
    }

    /// An option as pgBackRest spells it: `opt("type", "full")` is `--type=full`.
    pub fn opt(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.options.push(format!("--{name}={value}"));
        self
    }

    /// A flag: `flag("delta")` is `--delta`.
    pub fn flag(mut self, name: &str) -> Self {
        self.options.push(format!("--{name}"));
        self
    }

    /// An argument after the command: `repo-ls`'s path.
    pub fn arg(mut self, value: impl Into<String>) -> Self {
        self.args.push(value.into());
        self
    }

    /// The command must fail with this pgBackRest error code.
    pub fn expect_error(mut self, code: u16) -> Self {
        self.expect_error = Some(code);
        self
    }

    /// The full command line.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec!["pgbackrest".to_string()];
        argv.extend(self.stanza.iter().map(|s| format!("--stanza={s}")));
        argv.extend(self.options.iter().cloned());
        argv.push(self.command.name().into());
        argv.extend(self.args.iter().cloned());
        argv
    }
}

/// The error code of pgBackRest's first `ERROR: [NNN]:` line.
pub fn error_code(output: &str) -> Option<u16> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"ERROR: \[(\d{3})\]").expect("valid regex"));
    re.captures(output).and_then(|c| c[1].parse().ok())
}

impl Host {
    /// Runs `br` as postgres; fails unless it ends as expected (success, or
    /// the expected error code), with the output and log evidence.
    pub async fn pgbackrest(&self, br: Br) -> Result<ExecOutput> {
        let cmd = Cmd::new(br.argv()).user("postgres").any_status();
        let out = self.exec(cmd.clone()).await?;
        let code = error_code(&out.combined());
        let reason = match (br.expect_error, out.status, code) {
            (None, 0, _) => return Ok(out),
            (Some(want), s, Some(got)) if s != 0 && got == want => return Ok(out),
            (None, _, Some(got)) => format!("pgBackRest error [{got:03}]"),
            (None, _, None) => "pgBackRest failed without an error code".to_string(),
            (Some(want), 0, _) => format!("expected pgBackRest error [{want:03}], but it succeeded"),
            (Some(want), _, got) => {
                format!("expected pgBackRest error [{want:03}], got {}", got.map(|g| format!("[{g:03}]")).unwrap_or_else(|| "no error code".into()))
            }
        };
        let mut shown = cmd;
        shown.expect_status = Some(if br.expect_error.is_some() { 1 } else { 0 });
        Err(self.failure(&shown, &out, Some(reason)).await)
    }

    /// The stanza's entry of `pgbackrest info --output=json`.
    pub async fn backup_info(&self, stanza: &str) -> Result<serde_json::Value> {
        self.backup_info_of(stanza, None).await
    }

    /// As [`backup_info`](Self::backup_info), of repository `repo` alone when given (`--repo`).
    pub async fn backup_info_of(&self, stanza: &str, repo: Option<u8>) -> Result<serde_json::Value> {
        let mut cmd = Br::new(BrCommand::Info).stanza(stanza).opt("output", "json");
        if let Some(r) = repo {
            cmd = cmd.opt("repo", r);
        }
        let out = self.pgbackrest(cmd).await?;
        let v: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| Error::Check(format!("pgbackrest info is not JSON: {e}")))?;
        v.as_array().and_then(|a| a.iter().find(|s| s["name"] == stanza)).cloned().ok_or_else(|| Error::Check(format!("no stanza {stanza} in pgbackrest info")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_built_in_pgbackrest_order() {
        let br = Br::new(BrCommand::Restore).stanza("demo").flag("delta").opt("type", "name").opt("target-action", "promote");
        assert_eq!(br.argv().join(" "), "pgbackrest --stanza=demo --delta --type=name --target-action=promote restore");
    }

    #[test]
    fn error_codes_are_read_from_pgbackrest_output() {
        let out = "P00   INFO: restore command begin\nP00  ERROR: [038]: unable to restore while PostgreSQL is running\nP00  ERROR: [055]: other";
        assert_eq!(error_code(out), Some(38));
        assert_eq!(error_code("all good"), None);
    }
}
