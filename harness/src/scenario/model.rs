//! The scenario file's types: what a DBA writes, parsed once into types
//! (an action is an enum, a mode a number, a PITR target a kind).

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::action::{Action, Expect};
use crate::check::CheckDecl;
use crate::platform::Platform;
use crate::vocab::{Defect, HostKind, Role};

/// A scenario as written in its file. Parsed section by section (see
/// `parse.rs`), so every fault of a file is reported at once.
#[derive(Debug)]
pub struct Scenario {
    pub(crate) name: String,
    pub(crate) description: String,
    /// Default platform; `pglab run --platform` overrides it.
    pub(crate) platform: Platform,
    /// Versions the whole scenario needs (its base's, then its own).
    pub(crate) requires: Vec<When>,
    /// Plain values usable as `{name}` in any string.
    pub(crate) vars: BTreeMap<String, String>,
    /// Secrets generated for each run, usable as `{secret.NAME}`, never shown.
    pub(crate) secrets: Vec<String>,
    /// Hosts work at once: a step waits only for the previous step on the
    /// hosts it touches and for the steps named in its `after`. Off, steps
    /// run one by one in file order, as a person following the text would.
    pub(crate) parallel: bool,
    pub(crate) hosts: Vec<HostDecl>,
    pub(crate) given: Option<Given>,
    pub(crate) defects: Vec<Defect>,
    pub(crate) steps: Vec<Step>,
    pub(crate) verify: Vec<Verify>,
    /// Where `pglab chaos` may put a fault schedule, and on which hosts.
    pub(crate) chaos: Option<ChaosDecl>,
    pub(crate) path: PathBuf,
    pub(crate) source: String,
    /// The scenario this one extends, when it does.
    pub(crate) base: Option<Base>,
}

/// `extends`: start from another scenario's hosts, variables, given state
/// and steps (through one of them), then go on with this file's steps.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Extends {
    /// The base scenario: a name beside this file (`tutorial`) or a path relative to it.
    #[schemars(with = "String")]
    pub scenario: Spanned<String>,
    /// The base's last step to keep (default: every step). Its checks are never kept.
    #[schemars(with = "Option<String>")]
    pub through: Option<Spanned<String>>,
}

/// `[chaos]`: where `pglab chaos` may put a random fault schedule into
/// this scenario. The schedule runs after step `after` (the writers the
/// claims are about running by then); the file's later steps and its
/// checks are the claims, run with whatever network fault is still on.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChaosDecl {
    /// This file's step after which the schedule starts.
    #[schemars(with = "String")]
    pub after: Spanned<String>,
    /// The PostgreSQL hosts faults land on (partitions and latency between
    /// two of them, pauses, restarts and kills of one).
    #[schemars(with = "Vec<String>")]
    pub hosts: Vec<Spanned<String>>,
    /// Hosts among them never killed or restarted (the one the writers
    /// commit on, whose loss the file's later steps stage themselves).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub keep_up: Vec<Spanned<String>>,
}

/// What a scenario took from the one it extends. Those hosts and steps come
/// first in `hosts` and `steps`; their spans are in the base's file.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    pub path: PathBuf,
    /// How many of `hosts` are the base's.
    pub hosts: usize,
    /// How many of `steps` are the base's.
    pub steps: usize,
    /// The base file's text, kept so a run can be resumed or bundled away from it.
    pub source: String,
    /// Where `extends.scenario`'s value is in this file.
    pub at: std::ops::Range<usize>,
}

/// A host of the lab: a container named for it, reachable by that name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostDecl {
    /// Its name: the container's host name, and `{<name>.ip}`, `{<name>.name}` in templates.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What kind of host it is: `"pg"`, a PostgreSQL server (the default);
    /// `"repo"`, a pgBackRest repository host (sshd, cron, pgBackRest; no
    /// PostgreSQL cluster running); or `"s3"`, an S3-compatible object
    /// store on HTTPS with a certificate from the lab's CA, its bucket
    /// `{<name>.bucket}` made, reached with `{secret.<name>.key}` and
    /// `{secret.<name>.key_secret}`. A step or check that needs PostgreSQL
    /// on a host without it is refused before the run.
    #[serde(default)]
    #[schemars(with = "HostKind", extend("default" = "pg"))]
    pub kind: Option<HostKind>,
    /// What the host is for; shown in reports. Several hosts may share a role.
    #[serde(default)]
    pub role: Role,
    /// Small filesystems of its own (tmpfs, in memory), for a `fill` fault:
    /// `[{ path = "/mnt/wal", size_mb = 128 }]`. A file that extends another
    /// may declare a base host again, by name, to give it volumes.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// pglab issues it a certificate from the lab's CA (common name: its
    /// name; also valid for its address), at `{tls.cert}` with its key at
    /// `{tls.key}` (the `postgres` user's, mode 0600), the CA's certificate
    /// at `{lab.ca}`: what pgBackRest's TLS server and its clients need
    /// (`tls-server-cert-file`, `repo1-host-cert-file`, ...). Not for an
    /// object store, which has its own.
    #[serde(default)]
    pub certificate: bool,
}

/// A host's own small filesystem.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Volume {
    /// Where it is mounted (absolute).
    pub path: String,
    /// Its size in MiB.
    pub size_mb: NonZeroU32,
}

/// The state the tutorial assumes before step 1.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Given {
    /// Host that holds the data (the tutorial's primary).
    #[schemars(with = "String")]
    pub host: Spanned<String>,
    /// A table the harness creates there before step 1, with columns
    /// `select_column text` ('row N') and `select_number int` (N).
    pub table: String,
    /// How many rows it gets (1..=rows).
    pub rows: u32,
}

/// One step: who does what where, and what must come of it.
#[derive(Debug)]
pub(crate) struct Step {
    /// Tutorial step number and a short name: `8-restore`.
    pub id: Spanned<String>,
    pub title: String,
    pub host: Spanned<String>,
    pub user: String,
    pub action: Action,
    /// Where the action's value is in the file.
    pub action_span: std::ops::Range<usize>,
    pub expect: Expect,
    /// The defect this step's outcome is evidence of.
    pub defect: Option<Spanned<String>>,
    /// Not in the tutorial: a fix or a diagnostic the harness adds.
    pub added: bool,
    /// Why the step is here or differs from the tutorial.
    pub note: String,
    pub timeout_s: Option<u64>,
    /// Re-run the step until its expectation holds, for this many seconds.
    pub retry_s: Option<u64>,
    /// Earlier steps (on other hosts) this one needs, for `parallel` scenarios.
    pub after: Vec<Spanned<String>>,
    /// The platforms the step is for; elsewhere it is skipped.
    pub when: When,
}

impl Step {
    /// Why the step does not run on `platform`, if it does not.
    pub(crate) fn skipped_on(&self, platform: Platform) -> Option<String> {
        self.when.excludes(platform)
    }
}

/// Versions a step is for, from the platform table; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct When {
    /// PostgreSQL's major version: `"13"`, `"< 14"`, `">= 15"`.
    #[schemars(with = "Option<String>")]
    pub pg: Option<VersionReq>,
    /// pgBackRest's release on the platform: `"< 2.55"`, `">= 2.35"`.
    #[schemars(with = "Option<String>")]
    pub pgbackrest: Option<VersionReq>,
}

impl When {
    /// The first condition `platform` fails, said as a reason.
    pub(crate) fn excludes(&self, platform: Platform) -> Option<String> {
        self.unmet(platform).map(|why| format!("skipped: when {why}"))
    }

    /// The first condition `platform` fails: `pgbackrest >= 2.37 (debian-11 has pgBackRest 2.33)`.
    pub(crate) fn unmet(&self, platform: Platform) -> Option<String> {
        let pg = platform.pg_major().to_string();
        let checks = [("pg", &self.pg, "PostgreSQL", pg.as_str()), ("pgbackrest", &self.pgbackrest, "pgBackRest", platform.pgbackrest())];
        let why = checks.into_iter().find_map(|(key, req, what, have)| {
            let req = req.as_ref()?;
            (!req.matches(have)).then(|| format!("{key} {req} ({platform} has {what} {have})"))
        });
        why
    }
}

/// A comparison with a dotted version: `"< 14"`, `">= 2.55"`, `"13"` (equal).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct VersionReq {
    op: std::cmp::Ordering,
    or_equal: bool,
    version: Vec<u32>,
}

impl VersionReq {
    /// Whether the table's version `have` satisfies it. `=` names a series:
    /// `= 2.55` holds for 2.55.1; the others compare number by number.
    pub(crate) fn matches(&self, have: &str) -> bool {
        let have = crate::platform::dotted(have).unwrap_or_else(|| panic!("the table's version `{have}` is not dotted"));
        if self.op == std::cmp::Ordering::Equal {
            return have.starts_with(&self.version);
        }
        let ord = crate::platform::compare_versions(&have, &self.version);
        ord == self.op || (self.or_equal && ord == std::cmp::Ordering::Equal)
    }
}

/// The comparisons a requirement may write, two-character ones first.
const VERSION_OPS: [(&str, std::cmp::Ordering, bool); 5] = [
    ("<=", std::cmp::Ordering::Less, true),
    (">=", std::cmp::Ordering::Greater, true),
    ("<", std::cmp::Ordering::Less, false),
    (">", std::cmp::Ordering::Greater, false),
    ("=", std::cmp::Ordering::Equal, true),
];

impl TryFrom<String> for VersionReq {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        use std::cmp::Ordering::*;
        let t = s.trim();
        let (op, or_equal, rest) = VERSION_OPS.into_iter().find_map(|(p, op, eq)| t.strip_prefix(p).map(|r| (op, eq, r))).unwrap_or((Equal, true, t));
        let version = crate::platform::dotted(rest)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("`{s}` is not a version comparison such as \"< 14\" or \">= 2.55\""))?;
        Ok(VersionReq { op, or_equal, version })
    }
}

impl std::fmt::Display for VersionReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = VERSION_OPS.iter().find(|(_, op, eq)| *op == self.op && *eq == self.or_equal).map_or("=", |(p, ..)| *p);
        write!(f, "{op} {}", self.version.iter().map(u32::to_string).collect::<Vec<_>>().join("."))
    }
}

/// One `[[steps]]` entry: who does what where, and what must come of it.
/// Exactly one action key (each is in the table, from `run` to `free`);
/// the others are the keys every step has beside it.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    /// Tutorial step number and a short name, unique in the file: `8-restore`.
    #[schemars(with = "String")]
    pub(crate) id: Spanned<String>,
    /// What the step does, as a heading in the transcript.
    pub(crate) title: String,
    /// The host it runs on.
    #[schemars(with = "String")]
    pub(crate) host: Spanned<String>,
    /// The OS user who runs `run`: `dba` (may sudo, as the tutorial's reader
    /// does), `postgres` (home /var/lib/postgresql) or `root`.
    #[serde(default = "default_user")]
    pub(crate) user: String,
    /// What the step must produce; otherwise it fails and the run stops.
    #[serde(default)]
    pub(crate) expect: Expect,
    /// The `[[defects]]` entry whose evidence this step is.
    #[schemars(with = "Option<String>")]
    pub(crate) defect: Option<Spanned<String>>,
    /// Not in the tutorial: a fix or a diagnostic (marked in reports).
    #[serde(default)]
    pub(crate) added: bool,
    /// Why the step is here or differs from the tutorial (shown in the transcript).
    #[serde(default)]
    pub(crate) note: String,
    /// Deadline in seconds for the action (default: `PGLAB_TIMEOUT_DEFAULT`, 180).
    pub(crate) timeout_s: Option<NonZeroU64>,
    /// Re-run the step until its expectation holds, for this many seconds.
    pub(crate) retry_s: Option<NonZeroU64>,
    /// Earlier steps (usually of other hosts) this one waits for, in `parallel` scenarios.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub(crate) after: Vec<Spanned<String>>,
    /// Run the step only on platforms whose versions match: `pg` (PostgreSQL's
    /// major, `when = { pg = "< 14" }`) and `pgbackrest` (its release,
    /// `{ pgbackrest = ">= 2.55" }`), each `<`, `<=`, `>`, `>=` or `=` a
    /// version, from the platform table. Elsewhere the step is reported as
    /// skipped and counts as done for the steps after it: one file, every platform.
    #[serde(default)]
    pub(crate) when: When,
}

fn default_user() -> String {
    "dba".into()
}

impl Step {
    /// The step from its common keys and its one action.
    pub(crate) fn from_raw(r: RawStep, action: Action, action_span: std::ops::Range<usize>) -> Result<Self, String> {
        Ok(Step {
            id: r.id,
            title: r.title,
            host: r.host,
            user: r.user,
            action,
            action_span,
            expect: r.expect,
            defect: r.defect,
            added: r.added,
            note: r.note,
            timeout_s: r.timeout_s.map(NonZeroU64::get),
            retry_s: r.retry_s.map(NonZeroU64::get),
            after: r.after,
            when: r.when,
        })
    }
}

/// One `[[verify]]` entry: a check, and when it may start.
#[derive(Debug, Clone)]
pub(crate) struct Verify {
    /// Steps after which this check may start, while the remaining steps
    /// go on (it must not touch what they use). Empty: after every step and
    /// after the early checks, one check at a time in file order.
    pub after: Vec<Spanned<String>>,
    pub check: CheckDecl,
    /// Where `check = "..."` names it.
    pub span: std::ops::Range<usize>,
    /// The parameters as written, `{variables}` unresolved (see [`Verify::resolved`]).
    pub params: toml::Table,
    /// Where each parameter's value is, by key.
    pub spans: BTreeMap<String, std::ops::Range<usize>>,
}

impl Verify {
    /// The check with `{variables}` in its parameters replaced (in a regex
    /// parameter a value matches literally, as in `expect`).
    pub(crate) fn resolved(&self, vars: &super::Vars) -> crate::error::Result<CheckDecl> {
        fn subst(v: &toml::Value, vars: &super::Vars, regex: bool) -> crate::error::Result<toml::Value> {
            Ok(match v {
                toml::Value::String(s) if regex => toml::Value::String(vars.subst_regex(s)?),
                toml::Value::String(s) => toml::Value::String(vars.subst(s)?),
                toml::Value::Array(a) => toml::Value::Array(a.iter().map(|x| subst(x, vars, regex)).collect::<crate::error::Result<_>>()?),
                other => other.clone(),
            })
        }
        let params = self
            .params
            .iter()
            .map(|(k, v)| Ok((k.clone(), subst(v, vars, self.check.regex_params().contains(&k.as_str()))?)))
            .collect::<crate::error::Result<toml::Table>>()?;
        let params = toml::Value::Table(params);
        let tagged = toml::Value::Table(toml::Table::from_iter([(self.check.name().to_string(), params)]));
        CheckDecl::deserialize(tagged).map_err(|e| crate::error::Error::Check(format!("check `{}` after substitution: {e}", self.check.name())))
    }
}

impl Step {
    /// Hosts the step reads or changes.
    pub(crate) fn hosts(&self) -> Vec<&str> {
        let mut h = vec![self.host.get_ref().as_str()];
        h.extend(self.action.named().into_iter().map(|n| n.host.get_ref().as_str()));
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_requirements_say_which_platforms_a_step_is_for() {
        let req = |s: &str| VersionReq::try_from(s.to_string()).unwrap();
        assert!(req("< 14").matches("13") && !req("< 14").matches("15"));
        assert!(req(">= 2.55").matches("2.55.1") && !req(">= 2.55").matches("2.45"));
        assert!(req(">= 2.55.1").matches("2.55.1") && req("> 2.55").matches("2.55.1") && !req("<= 2.55").matches("2.55.1"));
        assert!(req("= 2.55").matches("2.55.1") && !req("= 2.5").matches("2.55.1") && req("2.55.1").matches("2.55.1"));
        assert!(req("15").matches("15") && req("<=13").matches("13") && req("> 2.33").matches("2.45"));
        assert!(VersionReq::try_from("~14".to_string()).is_err() && VersionReq::try_from("<".to_string()).is_err());
        assert_eq!(req(">=14").to_string(), ">= 14");
        let when = When { pg: Some(req("< 14")), pgbackrest: None };
        assert_eq!(when.excludes(Platform::Debian11), None);
        assert_eq!(when.excludes(Platform::Debian13).as_deref(), Some("skipped: when pg < 14 (debian-13 has PostgreSQL 17)"));
        let both = When { pg: Some(req(">= 15")), pgbackrest: Some(req(">= 2.55")) };
        assert!(both.excludes(Platform::Debian12).unwrap().contains("pgBackRest 2.45"));
        assert_eq!(both.excludes(Platform::Debian13), None);
    }
}
