//! What the repository says of itself (`pgbackrest info --output=json`):
//! the stanza is ok, it holds the backups expected, and its archive holds
//! the WAL from each backup's start to its stop, so each can be restored
//! consistently.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{any, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Host, Hosts};
use crate::outcome::{Figures, Unit};

/// A backup's type, as pgBackRest names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupType {
    /// A copy of every file.
    Full,
    /// The files changed since the last full backup.
    Diff,
    /// The files changed since the last backup of any type.
    Incr,
}

impl BackupType {
    fn name(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Diff => "diff",
            BackupType::Incr => "incr",
        }
    }
}

/// `pgbackrest info` on `host` for `stanza` (of one repository when `repo`
/// says which): status ok; the backups' types, oldest first, are `types`
/// (when given; else at least one backup); and each backup's WAL, start to
/// stop, lies within the range its own repository's archive reports for
/// its database.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RepoInfo {
    /// A host with pgBackRest configured for the stanza.
    pub host: String,
    /// The stanza.
    pub stanza: String,
    /// Each backup's type, oldest first: `["full", "incr"]`.
    #[serde(default)]
    pub types: Option<Vec<BackupType>>,
    /// Only this repository (`--repo`, 1 to 255): one a host can still
    /// reach when another is gone. Default: every repository of the stanza.
    #[serde(default)]
    pub repo: Option<std::num::NonZeroU8>,
}

impl Proof for RepoInfo {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![any("host", &self.host)]
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        match &self.types {
            Some(t) if t.is_empty() => vec![("types", "an empty list: a repository with no backup is not one to check".into())],
            Some(t) if t[0] != BackupType::Full => vec![("types", "the oldest backup of a stanza is a full one".into())],
            _ => Vec::new(),
        }
    }

    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        repo_info(lab.host(&self.host)?, &self.stanza, self.repo.map(|r| r.get()), self.types.as_deref()).await
    }
}

/// `pgbackrest info` on `host` for `stanza`: status ok, the backups'
/// types (oldest first) as `types` says (else at least one backup), and
/// each backup's WAL within its database's archive range.
pub async fn repo_info(host: &Host, stanza: &str, repo: Option<u8>, types: Option<&[BackupType]>) -> Result<Evidence> {
    let info = host.backup_info_of(stanza, repo).await?;
    let status = &info["status"];
    if status["code"] != 0 {
        return Err(Error::Check(format!("stanza {stanza} on {}: status {} ({})", host.name, status["code"], status["message"].as_str().unwrap_or("?"))));
    }
    let backups = info["backup"].as_array().cloned().unwrap_or_default();
    let got: Vec<&str> = backups.iter().map(|b| b["type"].as_str().unwrap_or("?")).collect();
    match types {
        Some(want) if want.iter().map(|t| t.name()).ne(got.iter().copied()) => {
            let want: Vec<&str> = want.iter().map(|t| t.name()).collect();
            return Err(Error::Check(format!("backups of {stanza} on {}, oldest first: got {got:?}, expected {want:?}", host.name)));
        }
        None if got.is_empty() => return Err(Error::Check(format!("stanza {stanza} on {} holds no backup", host.name))),
        _ => {}
    }
    let archives = info["archive"].as_array().cloned().unwrap_or_default();
    for b in &backups {
        let label = b["label"].as_str().unwrap_or("?");
        let (start, stop) = (b["archive"]["start"].as_str().unwrap_or(""), b["archive"]["stop"].as_str().unwrap_or(""));
        // WAL segment names of one timeline order as their positions do.
        // `database` is the database's id and, with several repositories, its `repo-key`.
        let db = &b["database"];
        let covered = archives.iter().filter(|a| &a["database"] == db).any(|a| {
            let (min, max) = (a["min"].as_str().unwrap_or(""), a["max"].as_str().unwrap_or(""));
            !start.is_empty() && min <= start && stop <= max
        });
        if !covered {
            let ranges: Vec<String> = archives.iter().map(|a| format!("{}..{}", a["min"].as_str().unwrap_or("-"), a["max"].as_str().unwrap_or("-"))).collect();
            return Err(Error::Check(format!(
                "backup {label} needs WAL {start}..{stop}, which the archive of {stanza} on {} does not hold (it holds {})",
                host.name,
                if ranges.is_empty() { "none".to_string() } else { ranges.join(", ") }
            )));
        }
    }
    let mut figures = Figures::default();
    figures.push("backups", backups.len() as f64, Unit::Count);
    let range: Vec<String> = archives.iter().map(|a| format!("{}..{}", a["min"].as_str().unwrap_or("-"), a["max"].as_str().unwrap_or("-"))).collect();
    Ok(Evidence::new(format!(
        "stanza {stanza} on {}{}: ok; {} backup(s) ({}); the archive ({}) holds each one's WAL",
        host.name,
        repo.map(|r| format!(", repo{r}")).unwrap_or_default(),
        backups.len(),
        got.join(", "),
        range.join(", ")
    ))
    .with(figures))
}
