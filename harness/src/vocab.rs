//! The words the lab, the checks and the run act on: how a cluster stops,
//! what a kill ends, what kind a host is, a PITR target, file modes. They
//! live below every layer that uses them, so the lab never imports the file
//! format; the scenario file only reads them.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a host of a lab is, and so which image it runs, what "ready"
/// means for it and which verbs it has (see `lab::kind`).
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Hash, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    /// A PostgreSQL server (the default): the cluster runs, sshd and cron;
    /// ready when PostgreSQL answers the harness.
    #[default]
    Pg,
    /// A pgBackRest repository host: sshd, cron and pgBackRest, no
    /// PostgreSQL cluster running; ready when sshd accepts and `pgbackrest
    /// version` answers.
    Repo,
    /// An S3-compatible object store (s3s-fs) on HTTPS port 443, its objects on its disk,
    /// with a certificate from the lab's CA and a bucket made before the
    /// first step; no PostgreSQL, no sshd. Ready when an authenticated
    /// `ListObjectsV2` of the bucket answers.
    S3,
}

impl HostKind {
    /// Every kind, in declaration order.
    pub const ALL: [HostKind; 3] = [HostKind::Pg, HostKind::Repo, HostKind::S3];

    /// Its name, as a scenario writes it.
    pub fn name(self) -> &'static str {
        match self {
            HostKind::Pg => "pg",
            HostKind::Repo => "repo",
            HostKind::S3 => "s3",
        }
    }
}

impl fmt::Display for HostKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a step or a check needs of a host, so validation can refuse a verb
/// the host's kind does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// A shell, files, the engine's verbs: every kind.
    Any,
    /// A running PostgreSQL cluster.
    Postgres,
    /// An object store (`kind = "s3"`).
    ObjectStore,
}

impl Needs {
    /// What the need is, in a sentence's words.
    pub fn said(self) -> &'static str {
        match self {
            Needs::Any => "a host",
            Needs::Postgres => "PostgreSQL",
            Needs::ObjectStore => "an object store",
        }
    }
}

/// A host's part in the setup, as pgBackRest's harness names them.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes writes; the tutorial's pgBackRest repository lives here.
    Primary,
    /// Restored from a backup, then streams from the primary.
    Standby,
    /// A dedicated pgBackRest repository host.
    Repo,
    /// A target for restores, promoted by checks (the default). A run
    /// starts a spare only when one of its steps or checks names it.
    #[default]
    Spare,
}

impl Role {
    /// As a file writes it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
            Role::Repo => "repo",
            Role::Spare => "spare",
        }
    }
}

/// What a `kill` ends.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KillWhat {
    /// The postmaster alone, with SIGKILL: crash recovery on the next start.
    Postmaster,
    /// The whole host, as a power cut (the engine kills its container).
    Host,
}

/// How `stop` ends the cluster, as `pg_ctl -m`: one type for the scenario
/// key and the host verb (`Host::stop`).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopMode {
    /// Through systemd (`systemctl stop` of the cluster's unit: pg_ctl -m
    /// fast): a shutdown checkpoint, clients told.
    Fast,
    /// `pg_ctl -m immediate`: no shutdown checkpoint, crash recovery on the next start.
    Immediate,
}

/// File permission bits, written in octal (`"0600"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(with = "String", extend("pattern" = "^(0o)?[0-7]{3,4}$", "default" = "0644"))]
pub struct Mode(pub u32);

impl Default for Mode {
    fn default() -> Self {
        Mode(0o644)
    }
}

impl TryFrom<String> for Mode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let digits = s.strip_prefix("0o").unwrap_or(&s);
        let octal = (3..=4).contains(&digits.len()) && digits.chars().all(|c| ('0'..='7').contains(&c));
        match u32::from_str_radix(digits, 8) {
            Ok(m) if octal => Ok(Mode(m)),
            _ => Err(format!("mode `{s}` is not an octal file mode such as \"0600\"")),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// `user[:group]`, by name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(with = "String", extend("pattern" = "^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$", "default" = "root"))]
pub struct Owner {
    /// The user, by name.
    pub user: String,
    /// The group, by name (the user's own when left out).
    pub group: Option<String>,
}

impl Default for Owner {
    fn default() -> Self {
        Owner { user: "root".into(), group: None }
    }
}

impl TryFrom<String> for Owner {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (user, group) = s.split_once(':').map(|(u, g)| (u, Some(g))).unwrap_or((s.as_str(), None));
        let name_ok = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !name_ok(user) || group.is_some_and(|g| !name_ok(g)) {
            return Err(format!("owner `{s}` is not `user` or `user:group`"));
        }
        Ok(Owner { user: user.into(), group: group.map(Into::into) })
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{g}", self.user),
            None => f.write_str(&self.user),
        }
    }
}

/// A point-in-time recovery target kind, as `pgbackrest restore --type`.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PitrTarget {
    /// A restore point made with `pg_create_restore_point`.
    Name,
    /// A moment (`clock_timestamp()` between two batches).
    Time,
    /// A transaction id: recovery stops after that transaction.
    Xid,
    /// A WAL position (`pg_current_wal_lsn()`).
    Lsn,
}

impl PitrTarget {
    /// Every kind, in the order checks restore to them.
    pub const ALL: [PitrTarget; 4] = [PitrTarget::Name, PitrTarget::Time, PitrTarget::Xid, PitrTarget::Lsn];

    /// As a file writes it.
    pub fn name(self) -> &'static str {
        match self {
            PitrTarget::Name => "name",
            PitrTarget::Time => "time",
            PitrTarget::Xid => "xid",
            PitrTarget::Lsn => "lsn",
        }
    }
}

impl std::str::FromStr for PitrTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PitrTarget::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| format!("`{s}`: PITR targets are name, time, xid, lsn"))
    }
}

impl fmt::Display for PitrTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A documented defect of the tutorial, referenced by steps as evidence.
#[derive(Debug, Deserialize, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defect {
    /// Named by steps' `defect`: `D1`.
    pub id: String,
    /// The defect in a line.
    pub title: String,
    /// What is wrong and how the steps show it.
    #[serde(default)]
    pub detail: String,
}

/// A name that becomes part of a file name (a scenario's, a step's id):
/// letters, digits, `-` and `_`, so no name reaches outside its folder.
pub(crate) fn is_ident(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What [`is_ident`] asks, as said to a user.
pub(crate) const IDENT_RULE: &str = "use letters, digits, - and _ (it becomes part of a file name)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_owners_are_parsed_once() {
        assert_eq!(Mode::try_from("0600".to_string()).unwrap(), Mode(0o600));
        assert_eq!(Mode::try_from("0o755".to_string()).unwrap().to_string(), "0755");
        assert!(Mode::try_from("rw-r--r--".to_string()).is_err());
        assert!(Mode::try_from("0999".to_string()).is_err());
        assert!(Mode::try_from("+7".to_string()).is_err());
        assert!(Mode::try_from("00000644".to_string()).is_err());
        let o = Owner::try_from("postgres:postgres".to_string()).unwrap();
        assert_eq!((o.user.as_str(), o.group.as_deref()), ("postgres", Some("postgres")));
        assert_eq!(Owner::try_from("root".to_string()).unwrap(), Owner::default());
        assert!(Owner::try_from("a b".to_string()).is_err());
    }

    #[test]
    fn pitr_targets_parse_by_name() {
        assert_eq!("xid".parse::<PitrTarget>().unwrap(), PitrTarget::Xid);
        assert!("yesterday".parse::<PitrTarget>().is_err());
    }
}
