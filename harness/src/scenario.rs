//! Scenario files: the tutorial as declarative steps a DBA can read and
//! change. Parsing rejects anything unknown with file, line, column and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use miette::{NamedSource, SourceSpan};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::platform::Platform;

/// A scenario as written in its file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Default platform; `pglab run --platform` overrides it.
    #[serde(default)]
    pub platform: Platform,
    /// Plain values usable as `{name}` in any step.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Secrets generated for each run, usable as `{secret.NAME}`, never shown.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Hosts work at once: a step waits only for the previous step on the
    /// hosts it touches and for the steps named in its `after`. Off, steps
    /// run one by one in file order, as a person following the text would.
    #[serde(default)]
    pub parallel: bool,
    pub hosts: Vec<HostDecl>,
    pub given: Option<Given>,
    #[serde(default)]
    pub defects: Vec<Defect>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub verify: Vec<Verify>,
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(skip)]
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostDecl {
    pub name: Spanned<String>,
    #[serde(default)]
    pub role: String,
}

/// The state the tutorial assumes before step 1.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Given {
    /// Host that holds the data (the tutorial's primary).
    pub host: Spanned<String>,
    pub table: String,
    pub rows: u32,
}

/// A documented defect of the tutorial, referenced by steps as evidence.
#[derive(Debug, Deserialize, Clone, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Defect {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Tutorial step number and a short name: `8-restore`.
    pub id: Spanned<String>,
    pub title: String,
    pub host: Spanned<String>,
    #[serde(default = "default_user")]
    pub user: String,
    pub run: Option<Spanned<String>>,
    pub config: Option<ConfigEdit>,
    pub sql: Option<Spanned<String>>,
    pub file: Option<FileAction>,
    pub copy: Option<CopyAction>,
    pub wait: Option<WaitAction>,
    #[serde(default)]
    pub expect: Expect,
    /// The defect this step's outcome is evidence of.
    pub defect: Option<Spanned<String>>,
    /// Not in the tutorial: a fix or a diagnostic the harness adds.
    #[serde(default)]
    pub added: bool,
    /// Why the step is here or differs from the tutorial.
    #[serde(default)]
    pub note: String,
    pub timeout_s: Option<u64>,
    /// Re-run the step until its expectation holds, for this many seconds.
    pub retry_s: Option<u64>,
    /// Earlier steps (on other hosts) this one needs, for `parallel` scenarios.
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
}

fn default_user() -> String {
    "dba".into()
}

/// Edits of configuration files, shown as diffs in the transcript.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigEdit {
    /// `/etc/pgbackrest.conf`: set keys in one INI section.
    pub pgbackrest: Option<IniEdit>,
    /// `{pg.config_dir}/postgresql.conf`: uncomment or set GUCs.
    pub postgresql_conf: Option<toml::Table>,
    /// `{pg.config_dir}/pg_hba.conf`: lines appended unless present.
    pub pg_hba: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IniEdit {
    pub section: String,
    /// A value or a list of values (repeated keys such as recovery-option).
    pub set: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAction {
    pub path: String,
    pub content: String,
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default = "default_owner")]
    pub owner: String,
    #[serde(default)]
    pub append: bool,
}

fn default_mode() -> String {
    "0644".into()
}
fn default_owner() -> String {
    "root".into()
}

/// Copies a file between hosts (e.g. a public key), through the harness.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyAction {
    pub from_host: Spanned<String>,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub append: bool,
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default = "default_owner")]
    pub owner: String,
}

/// A condition the harness polls with a deadline.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WaitAction {
    /// The postmaster is gone (no postmaster.pid).
    PgDown,
    /// PostgreSQL answers the harness.
    PgUp,
    /// The host is a standby whose WAL receiver streams.
    Streaming,
}

/// What a step must produce. A step that fails otherwise stops the run.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exit status (default 0); `any` accepts every status.
    pub status: Option<StatusExpect>,
    /// Regex that stdout+stderr (or the SQL result/error) must match.
    pub output: Option<Spanned<String>>,
    /// Regex a PostgreSQL log line on the step's host must match (polled).
    pub log: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(untagged)]
pub enum StatusExpect {
    Code(i64),
    Word(StatusWord),
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StatusWord {
    Any,
    Nonzero,
}

impl StatusExpect {
    pub fn accepts(self, status: i64) -> bool {
        match self {
            StatusExpect::Code(c) => c == status,
            StatusExpect::Word(StatusWord::Any) => true,
            StatusExpect::Word(StatusWord::Nonzero) => status != 0,
        }
    }
}

impl std::fmt::Display for StatusExpect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusExpect::Code(c) => write!(f, "{c}"),
            StatusExpect::Word(StatusWord::Any) => f.write_str("any"),
            StatusExpect::Word(StatusWord::Nonzero) => f.write_str("non-zero"),
        }
    }
}

/// One `[[verify]]` entry: a check, and when it may start.
#[derive(Debug, Deserialize, Clone)]
pub struct Verify {
    /// Steps after which this check may start, while the remaining steps
    /// go on (it must not touch what they use). Empty: after every step and
    /// after the early checks, one check at a time in file order.
    #[serde(default)]
    pub after: Vec<String>,
    #[serde(flatten)]
    pub check: CheckDecl,
}

/// A built-in check and its parameters (see `check.rs`).
#[derive(Debug, Deserialize, Clone)]
#[serde(tag = "check", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckDecl {
    /// Standby in recovery; every user table's count and checksum match the primary.
    StandbyData { primary: String, standby: String },
    /// Streaming replication, then N inserts each seen on the standby, no backup taken.
    Streaming {
        primary: String,
        standby: String,
        #[serde(default = "default_inserts")]
        inserts: u32,
        #[serde(default = "default_deadline")]
        deadline_s: u64,
    },
    /// The standby does not stream, and its log says why.
    NotStreaming { standby: String, log: String },
    /// Restore to named/time/xid/lsn targets and assert exact rows and a new timeline.
    Pitr {
        primary: String,
        /// Host restored into; it ends promoted. A spare host keeps the
        /// standby a standby.
        target_host: String,
        /// Host whose pgBackRest client setup (/etc/pgbackrest.conf and
        /// postgres' SSH keys) the target gets first; for a spare host.
        #[serde(default)]
        like: Option<String>,
        stanza: String,
        #[serde(default = "default_targets")]
        targets: Vec<String>,
    },
    /// N more full backups leave exactly `expect_full` in `pgbackrest info`.
    Retention { host: String, stanza: String, backups: u32, expect_full: u32 },
    /// The postgres crontab holds this line.
    CronLine { host: String, line: String },
    /// The crontab's backup command, scheduled for the next minute, makes a backup.
    CronFires { host: String, stanza: String },
    /// `pgbackrest check` and `pgbackrest verify` succeed.
    Pgbackrest { host: String, stanza: String },
}

fn default_inserts() -> u32 {
    100
}
fn default_deadline() -> u64 {
    10
}
fn default_targets() -> Vec<String> {
    ["name", "time", "xid", "lsn"].map(String::from).to_vec()
}

impl CheckDecl {
    pub fn name(&self) -> &'static str {
        match self {
            CheckDecl::StandbyData { .. } => "standby_data",
            CheckDecl::Streaming { .. } => "streaming",
            CheckDecl::NotStreaming { .. } => "not_streaming",
            CheckDecl::Pitr { .. } => "pitr",
            CheckDecl::Retention { .. } => "retention",
            CheckDecl::CronLine { .. } => "cron_line",
            CheckDecl::CronFires { .. } => "cron_fires",
            CheckDecl::Pgbackrest { .. } => "pgbackrest",
        }
    }

    /// Checks that take a minute or more; run with `--slow` / `PGLAB_SLOW=1`.
    pub fn is_slow(&self) -> bool {
        matches!(self, CheckDecl::CronFires { .. })
    }

    fn hosts(&self) -> Vec<&str> {
        match self {
            CheckDecl::StandbyData { primary, standby } | CheckDecl::Streaming { primary, standby, .. } => vec![primary, standby],
            CheckDecl::NotStreaming { standby, .. } => vec![standby],
            CheckDecl::Pitr { primary, target_host, like, .. } => [primary, target_host].into_iter().chain(like).map(String::as_str).collect(),
            CheckDecl::Retention { host, .. }
            | CheckDecl::CronLine { host, .. }
            | CheckDecl::CronFires { host, .. }
            | CheckDecl::Pgbackrest { host, .. } => vec![host],
        }
    }
}

impl Step {
    /// Talks to systemd or postgresql-common, so it must not race the host's
    /// boot (whose own cluster start is still settling for ~2 s).
    pub fn needs_boot(&self) -> bool {
        let run = self.run.as_ref().map(|r| r.get_ref().as_str()).unwrap_or("");
        ["systemctl", "pg_ctlcluster", "service ", "reboot"].iter().any(|w| run.contains(w))
    }

    /// Hosts the step reads or changes.
    pub fn hosts(&self) -> Vec<&str> {
        let mut h = vec![self.host.get_ref().as_str()];
        if let Some(c) = &self.copy {
            h.push(c.from_host.get_ref());
        }
        h
    }

    pub fn action_name(&self) -> &'static str {
        match () {
            _ if self.run.is_some() => "run",
            _ if self.config.is_some() => "config",
            _ if self.sql.is_some() => "sql",
            _ if self.file.is_some() => "file",
            _ if self.copy.is_some() => "copy",
            _ if self.wait.is_some() => "wait",
            _ => "none",
        }
    }
}

/// Built-in variables a scenario may use besides its own `vars`.
pub fn builtin_vars(platform: Platform) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("pg.version".into(), platform.pg_major().to_string()),
        ("pg.config_dir".into(), platform.pg_config_dir()),
        ("pg.data".into(), platform.pg_data()),
        ("pg.bin".into(), platform.pg_bin()),
        ("pg.log".into(), platform.pg_log()),
        ("pg.unit".into(), platform.pg_unit()),
        ("platform".into(), platform.name().to_string()),
    ])
}

/// Like [`substitute`], for regex fields: values match literally.
pub fn substitute_regex(pattern: &str, vars: &BTreeMap<String, String>) -> std::result::Result<String, String> {
    let escaped: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.clone(), regex::escape(v))).collect();
    substitute(pattern, &escaped)
}

fn var_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\}").expect("valid regex"))
}

/// Replaces `{name}` from `vars`; an unknown name is an error naming it.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> std::result::Result<String, String> {
    let mut missing = None;
    let out = var_regex().replace_all(text, |c: &regex::Captures| match vars.get(&c[1]) {
        Some(v) => v.clone(),
        None => {
            missing.get_or_insert_with(|| c[1].to_string());
            c[0].to_string()
        }
    });
    match missing {
        Some(m) => Err(m),
        None => Ok(out.into_owned()),
    }
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario> {
        let source = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading scenario {}", path.display()), e))?;
        Scenario::parse(path, source)
    }

    pub fn parse(path: &Path, source: String) -> Result<Scenario> {
        let mut s: Scenario = match toml::from_str(&source) {
            Ok(s) => s,
            Err(e) => {
                let span = e.span();
                return Err(scenario_error(path, &source, span, e.message().trim().to_string(), "here", None));
            }
        };
        s.path = path.to_path_buf();
        s.source = source;
        s.validate()?;
        Ok(s)
    }

    /// Every name a scenario can reference, for the given platform.
    pub fn known_vars(&self, platform: Platform) -> BTreeMap<String, String> {
        let mut v = builtin_vars(platform);
        for h in &self.hosts {
            v.insert(format!("{}.ip", h.name.get_ref()), format!("<{}.ip>", h.name.get_ref()));
            v.insert(format!("{}.name", h.name.get_ref()), h.name.get_ref().clone());
        }
        for s in &self.secrets {
            v.insert(format!("secret.{s}"), "<secret>".into());
        }
        for (k, val) in &self.vars {
            v.insert(k.clone(), val.clone());
        }
        v
    }

    fn err(&self, span: Option<std::ops::Range<usize>>, message: String, label: &str, help: Option<String>) -> Error {
        scenario_error(&self.path, &self.source, span, message, label, help)
    }

    fn validate(&self) -> Result<()> {
        let hosts: Vec<&str> = self.hosts.iter().map(|h| h.name.get_ref().as_str()).collect();
        let known_hosts = hosts.join(", ");
        let check_host = |h: &Spanned<String>, key: &str| -> Result<()> {
            if hosts.contains(&h.get_ref().as_str()) {
                Ok(())
            } else {
                Err(self.err(Some(h.span()), format!("`{key}`: unknown host `{}`", h.get_ref()), "not a host of this scenario", Some(format!("hosts: {known_hosts}"))))
            }
        };
        if hosts.is_empty() {
            return Err(self.err(None, "a scenario needs at least one [[hosts]] entry".into(), "", None));
        }
        let vars = self.known_vars(self.platform);
        let check_vars = |text: &Spanned<String>, key: &str| -> Result<()> {
            check_text_vars(text.get_ref(), &vars).map_err(|(name, at)| {
                let span = text.span();
                // +1 skips the opening quote of a basic string.
                let start = (span.start + 1 + at).min(span.end);
                self.err(Some(start..start + name.len() + 2), format!("`{key}`: undefined variable `{{{name}}}`"), "undefined", Some(format!("defined: {}", vars.keys().cloned().collect::<Vec<_>>().join(", "))))
            })
        };
        if let Some(g) = &self.given {
            check_host(&g.host, "given.host")?;
        }
        let defect_ids: Vec<&str> = self.defects.iter().map(|d| d.id.as_str()).collect();
        let mut seen = std::collections::HashSet::new();
        for step in &self.steps {
            check_host(&step.host, "host")?;
            if !seen.insert(step.id.get_ref().clone()) {
                return Err(self.err(Some(step.id.span()), format!("duplicate step id `{}`", step.id.get_ref()), "used before", None));
            }
            let actions = [step.run.is_some(), step.config.is_some(), step.sql.is_some(), step.file.is_some(), step.copy.is_some(), step.wait.is_some()];
            let n = actions.iter().filter(|a| **a).count();
            if n != 1 {
                return Err(self.err(
                    Some(step.id.span()),
                    format!("step `{}` needs exactly one action (run, config, sql, file, copy, wait); it has {n}", step.id.get_ref()),
                    "this step",
                    None,
                ));
            }
            for (text, key) in [(&step.run, "run"), (&step.sql, "sql"), (&step.expect.output, "expect.output"), (&step.expect.log, "expect.log")] {
                if let Some(t) = text {
                    check_vars(t, key)?;
                }
            }
            for (text, key) in [(&step.expect.output, "expect.output"), (&step.expect.log, "expect.log")] {
                if let Some(t) = text {
                    let pattern = substitute_regex(t.get_ref(), &vars).unwrap_or_default();
                    if let Err(e) = regex::Regex::new(&pattern) {
                        return Err(self.err(Some(t.span()), format!("`{key}`: not a valid regex: {e}"), "here", None));
                    }
                }
            }
            if let Some(c) = &step.copy {
                check_host(&c.from_host, "copy.from_host")?;
            }
            for a in &step.after {
                // Only earlier steps: the file order stays a valid order and no cycle can form.
                if !seen.contains(a.get_ref()) || a.get_ref() == step.id.get_ref() {
                    return Err(self.err(Some(a.span()), format!("`after`: no earlier step `{}`", a.get_ref()), "not a step above this one", None));
                }
            }
            if let Some(d) = &step.defect {
                if !defect_ids.contains(&d.get_ref().as_str()) {
                    return Err(self.err(Some(d.span()), format!("`defect`: no [[defects]] entry `{}`", d.get_ref()), "unknown defect", Some(format!("defects: {}", defect_ids.join(", ")))));
                }
            }
            // Plain strings inside tables have no span of their own: check
            // them and point at the step.
            let mut texts: Vec<String> = Vec::new();
            if let Some(cfg) = &step.config {
                if let Some(ini) = &cfg.pgbackrest {
                    texts.push(ini.section.clone());
                    texts.extend(ini.set.values().map(|v| v.to_string()));
                }
                if let Some(pc) = &cfg.postgresql_conf {
                    texts.extend(pc.values().map(|v| v.to_string()));
                }
                texts.extend(cfg.pg_hba.iter().flatten().cloned());
            }
            if let Some(f) = &step.file {
                texts.extend([f.path.clone(), f.content.clone()]);
            }
            if let Some(c) = &step.copy {
                texts.extend([c.from.clone(), c.to.clone()]);
            }
            for t in texts {
                if let Err(name) = substitute(&t, &vars) {
                    return Err(self.err(Some(step.id.span()), format!("step `{}`: undefined variable `{{{name}}}`", step.id.get_ref()), "in this step", Some(format!("defined: {}", vars.keys().cloned().collect::<Vec<_>>().join(", ")))));
                }
            }
        }
        for (n, v) in self.verify.iter().enumerate() {
            // Checks are internally tagged, so toml keeps no spans inside
            // them: point at their `[[verify]]` header.
            let at = self.source.match_indices("[[verify]]").nth(n).map(|(i, m)| i..i + m.len());
            let c = &v.check;
            for h in c.hosts() {
                if !hosts.contains(&h) {
                    return Err(self.err(at, format!("check `{}`: unknown host `{h}`", c.name()), "in this check", Some(format!("hosts: {known_hosts}"))));
                }
            }
            for a in &v.after {
                if !seen.contains(a) {
                    return Err(self.err(at, format!("check `{}`: `after` names no step `{a}`", c.name()), "in this check", None));
                }
            }
        }
        Ok(())
    }

    /// Index of the step with this id, or of the first step of a tutorial
    /// step number (`8` finds `8-stop-standby`).
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| s.id.get_ref() == id)
            .or_else(|| self.steps.iter().rposition(|s| s.id.get_ref().split('-').next() == Some(id)))
    }

    /// For each step, the steps that must finish before it starts. In file
    /// order: the previous step. In `parallel` scenarios: the previous step on
    /// each host it touches (its own, a copy's source) plus its `after`.
    pub fn dependencies(&self) -> Vec<Vec<usize>> {
        let mut last_on: BTreeMap<&str, usize> = BTreeMap::new();
        let mut deps = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            if !self.parallel {
                deps.push(i.checked_sub(1).into_iter().collect());
                continue;
            }
            let mut d: Vec<usize> = step.hosts().iter().filter_map(|h| last_on.get(h).copied()).collect();
            d.extend(step.after.iter().filter_map(|a| self.steps[..i].iter().position(|s| s.id.get_ref() == a.get_ref())));
            d.sort_unstable();
            d.dedup();
            for h in step.hosts() {
                last_on.insert(h, i);
            }
            deps.push(d);
        }
        deps
    }

    pub fn defect(&self, id: &str) -> Option<&Defect> {
        self.defects.iter().find(|d| d.id == id)
    }
}

fn check_text_vars(text: &str, vars: &BTreeMap<String, String>) -> std::result::Result<(), (String, usize)> {
    for c in var_regex().captures_iter(text) {
        if !vars.contains_key(&c[1]) {
            return Err((c[1].to_string(), c.get(0).expect("match").start()));
        }
    }
    Ok(())
}

fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

fn scenario_error(path: &Path, source: &str, span: Option<std::ops::Range<usize>>, message: String, label: &str, help: Option<String>) -> Error {
    let at = match &span {
        Some(r) => {
            let (l, c) = line_col(source, r.start);
            format!("{}:{l}:{c}", path.display())
        }
        None => path.display().to_string(),
    };
    Error::Scenario {
        message: format!("{at}: {message}"),
        src: NamedSource::new(path.display().to_string(), source.to_string()),
        span: span.map(|r| SourceSpan::from(r.start..r.end.max(r.start))),
        label: label.to_string(),
        help,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Scenario> {
        Scenario::parse(Path::new("t.toml"), src.to_string())
    }

    const OK: &str = r#"
name = "t"
[[hosts]]
name = "primary"
[[steps]]
id = "1-x"
title = "x"
host = "primary"
run = "echo {primary.ip} {pg.version}"
"#;

    #[test]
    fn a_minimal_scenario_parses() {
        let s = parse(OK).unwrap();
        assert_eq!(s.steps.len(), 1);
        assert_eq!(s.steps[0].user, "dba");
    }

    const CHECK: &str = r#"
[[verify]]
check = "cron_line"
after = ["1-x"]
host = "primary"
line = "x"
"#;

    #[test]
    fn checks_take_after_and_still_reject_unknown_keys() {
        let s = parse(&format!("{OK}{CHECK}")).unwrap();
        assert_eq!(s.verify[0].after, ["1-x"]);
        assert_eq!(s.verify[0].check.name(), "cron_line");
        let err = parse(&format!("{OK}{}", CHECK.replace("line = ", "lien = "))).unwrap_err().to_string();
        assert!(err.contains("lien"), "{err}");
        let err = parse(&format!("{OK}{}", CHECK.replace("\"1-x\"]", "\"2-y\"]"))).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:11:1:") && err.contains("`after` names no step `2-y`"), "{err}");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse(&OK.replace("run = ", "rn = ")).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:9:1:"), "{err}");
        assert!(err.contains("rn"), "{err}");
    }

    #[test]
    fn unknown_host_and_undefined_variable_are_located() {
        let err = parse(&OK.replace("host = \"primary\"", "host = \"primry\"")).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:8:8:") && err.contains("unknown host `primry`"), "{err}");
        let err = parse(&OK.replace("{pg.version}", "{pg.verison}")).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:9:") && err.contains("{pg.verison}"), "{err}");
    }

    #[test]
    fn missing_field_and_two_actions_are_rejected() {
        let err = parse(&OK.replace("title = \"x\"\n", "")).unwrap_err().to_string();
        assert!(err.contains("missing field `title`"), "{err}");
        let err = parse(&OK.replace("run = ", "sql = \"select 1\"\nrun = ")).unwrap_err().to_string();
        assert!(err.contains("exactly one action"), "{err}");
    }

    const TWO: &str = r#"
name = "t"
parallel = true
[[hosts]]
name = "a"
[[hosts]]
name = "b"
[[steps]]
id = "a1"
title = "x"
host = "a"
run = "true"
[[steps]]
id = "b1"
title = "x"
host = "b"
run = "true"
[[steps]]
id = "a2"
title = "x"
host = "a"
copy = { from_host = "b", from = "/x", to = "/y" }
[[steps]]
id = "b2"
title = "x"
host = "b"
run = "true"
after = ["a1"]
"#;

    #[test]
    fn parallel_steps_wait_for_their_hosts_and_after() {
        let s = parse(TWO).unwrap();
        assert_eq!(s.dependencies(), vec![vec![], vec![], vec![0, 1], vec![0, 2]]);
        let seq = parse(&TWO.replace("parallel = true", "")).unwrap();
        assert_eq!(seq.dependencies(), vec![vec![], vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn after_must_name_an_earlier_step() {
        let err = parse(&TWO.replace("after = [\"a1\"]", "after = [\"b2\"]")).unwrap_err().to_string();
        assert!(err.contains("no earlier step `b2`"), "{err}");
        let err = parse(&TWO.replace("after = [\"a1\"]", "after = [\"zz\"]")).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:28:"), "{err}");
    }

    #[test]
    fn substitution_replaces_and_reports_missing() {
        let vars = BTreeMap::from([("a.ip".to_string(), "10.0.0.1".to_string())]);
        assert_eq!(substitute("host={a.ip} x", &vars).unwrap(), "host=10.0.0.1 x");
        assert_eq!(substitute("{b}", &vars).unwrap_err(), "b");
    }
}
