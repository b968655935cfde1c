//! The scenario file's types: what a DBA writes, parsed once into types
//! (an action is an enum, a mode a number, a PITR target a kind).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::platform::Platform;

/// A scenario as written in its file. Parsed section by section (see
/// `parse.rs`), so every fault of a file is reported at once.
#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Default platform; `pglab run --platform` overrides it.
    pub platform: Platform,
    /// Plain values usable as `{name}` in any string.
    pub vars: BTreeMap<String, String>,
    /// Secrets generated for each run, usable as `{secret.NAME}`, never shown.
    pub secrets: Vec<String>,
    /// Hosts work at once: a step waits only for the previous step on the
    /// hosts it touches and for the steps named in its `after`. Off, steps
    /// run one by one in file order, as a person following the text would.
    pub parallel: bool,
    pub hosts: Vec<HostDecl>,
    pub given: Option<Given>,
    pub defects: Vec<Defect>,
    pub steps: Vec<Step>,
    pub verify: Vec<Verify>,
    pub path: PathBuf,
    pub source: String,
    /// The scenario this one extends, when it does.
    pub base: Option<Base>,
}

/// `extends`: start from another scenario's hosts, variables, given state
/// and steps (through one of them), then go on with this file's steps.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Extends {
    /// The base scenario: a name beside this file (`tutorial`) or a path relative to it.
    #[schemars(with = "String")]
    pub scenario: Spanned<String>,
    /// The base's last step to keep (default: every step). Its checks are never kept.
    #[schemars(with = "Option<String>")]
    pub through: Option<Spanned<String>>,
}

/// What a scenario took from the one it extends. Those hosts and steps come
/// first in `hosts` and `steps`; their spans are in the base's file.
#[derive(Debug, Clone)]
pub struct Base {
    pub name: String,
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
pub struct HostDecl {
    /// Its name: the container's host name, and `{<name>.ip}`, `{<name>.name}` in templates.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What the host is for; shown in reports. Several hosts may share a role.
    #[serde(default)]
    pub role: Role,
    /// Small filesystems of its own (tmpfs, in memory), for a `fill` fault:
    /// `[{ path = "/mnt/wal", size_mb = 128 }]`. A file that extends another
    /// may declare a base host again, by name, to give it volumes.
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

/// A host's own small filesystem.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Where it is mounted (absolute).
    pub path: String,
    /// Its size in MiB.
    #[schemars(range(min = 1))]
    pub size_mb: u32,
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
    /// A target for restores, promoted by checks (the default).
    #[default]
    Spare,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
            Role::Repo => "repo",
            Role::Spare => "spare",
        }
    }
}

/// The state the tutorial assumes before step 1.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Given {
    /// Host that holds the data (the tutorial's primary).
    #[schemars(with = "String")]
    pub host: Spanned<String>,
    /// A table the harness creates there before step 1, with columns
    /// `select_column text` ('row N') and `select_number int` (N).
    pub table: String,
    /// How many rows it gets (1..=rows).
    pub rows: u32,
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

/// One step: who does what where, and what must come of it.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawStep")]
pub struct Step {
    /// Tutorial step number and a short name: `8-restore`.
    pub id: Spanned<String>,
    pub title: String,
    pub host: Spanned<String>,
    pub user: String,
    pub action: Action,
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
    pub fn skipped_on(&self, platform: Platform) -> Option<String> {
        self.when.excludes(platform)
    }
}

/// Versions a step is for, from the platform table; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// PostgreSQL's major version: `"13"`, `"< 14"`, `">= 15"`.
    #[schemars(with = "Option<String>")]
    pub pg: Option<VersionReq>,
    /// pgBackRest's release on the platform: `"< 2.55"`, `">= 2.35"`.
    #[schemars(with = "Option<String>")]
    pub pgbackrest: Option<VersionReq>,
}

impl When {
    /// The first condition `platform` fails, said as a reason.
    pub fn excludes(&self, platform: Platform) -> Option<String> {
        let pg = platform.pg_major().to_string();
        let checks = [("pg", &self.pg, "PostgreSQL", pg.as_str()), ("pgbackrest", &self.pgbackrest, "pgBackRest", platform.pgbackrest())];
        let why = checks.into_iter().find_map(|(key, req, what, have)| {
            let req = req.as_ref()?;
            (!req.matches(have)).then(|| format!("skipped: when {key} {req} ({platform} has {what} {have})"))
        });
        why
    }
}

/// A comparison with a dotted version: `"< 14"`, `">= 2.55"`, `"13"` (equal).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct VersionReq {
    op: std::cmp::Ordering,
    or_equal: bool,
    version: Vec<u32>,
}

impl VersionReq {
    /// Whether the table's version `have` satisfies it. `=` names a series:
    /// `= 2.55` holds for 2.55.1; the others compare number by number.
    pub fn matches(&self, have: &str) -> bool {
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

/// What a step does: exactly one per step.
#[derive(Debug)]
pub enum Action {
    /// A shell line exactly as the tutorial writes it.
    Run(Spanned<String>),
    /// Edits of configuration files, shown as diffs.
    Config(ConfigEdit),
    /// SQL through the harness's client.
    Sql(Spanned<String>),
    /// Writes a file.
    File(FileAction),
    /// Copies a file between hosts.
    Copy(CopyAction),
    /// Pins another host's SSH host key, read through the engine.
    KnownHost(Spanned<String>),
    /// A condition polled with a deadline.
    Wait(WaitAction),
    /// Cuts the host off from peers (a fault).
    Partition(Peers),
    /// Undoes a partition and added latency.
    Heal(Peers),
    /// Adds delay toward a peer's PostgreSQL (a fault).
    Latency(LatencyAction),
    /// Kills the postmaster or the host (a fault).
    Kill(KillWhat),
    /// Stops the cluster.
    Stop(StopMode),
    /// Freezes the host (a fault).
    Pause,
    /// Thaws a paused host.
    Resume,
    /// Starts or stops a background writer.
    Load(LoadAction),
    /// Fills a volume of the host to the brim (a fault).
    Fill(Spanned<String>),
    /// Frees what `fill` took.
    Free(Spanned<String>),
}

impl Action {
    pub const NAMES: [&'static str; 17] = [
        "run",
        "config",
        "sql",
        "file",
        "copy",
        "known_host",
        "wait",
        "partition",
        "heal",
        "latency",
        "kill",
        "stop",
        "pause",
        "resume",
        "load",
        "fill",
        "free",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Action::Run(_) => "run",
            Action::Config(_) => "config",
            Action::Sql(_) => "sql",
            Action::File(_) => "file",
            Action::Copy(_) => "copy",
            Action::KnownHost(_) => "known_host",
            Action::Wait(_) => "wait",
            Action::Partition(_) => "partition",
            Action::Heal(_) => "heal",
            Action::Latency(_) => "latency",
            Action::Kill(_) => "kill",
            Action::Stop(_) => "stop",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Load(_) => "load",
            Action::Fill(_) => "fill",
            Action::Free(_) => "free",
        }
    }

    /// A fault, or the undoing of one: shown as such in reports.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Action::Partition(_)
                | Action::Heal(_)
                | Action::Latency(_)
                | Action::Kill(_)
                | Action::Stop(_)
                | Action::Pause
                | Action::Resume
                | Action::Fill(_)
                | Action::Free(_)
        )
    }
}

/// The hosts a `partition` or `heal` is about: named ones, or `"all"` the others.
#[derive(Debug, Clone)]
pub enum Peers {
    All,
    Hosts(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Peers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Peers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"all\" or a list of host names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Peers, E> {
                match v {
                    "all" => Ok(Peers::All),
                    _ => Err(E::custom(format!("`{v}`: write \"all\" or a list of host names ([\"{v}\"])"))),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Peers, A::Error> {
                let mut hosts = Vec::new();
                while let Some(h) = seq.next_element::<Spanned<String>>()? {
                    hosts.push(h);
                }
                if hosts.is_empty() {
                    return Err(serde::de::Error::custom("an empty list cuts nothing: name hosts, or write \"all\""));
                }
                Ok(Peers::Hosts(hosts))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Peers {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Peers".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`\"all\"` (every other host of the lab), or a list of host names.",
            "anyOf": [{ "const": "all" }, { "type": "array", "items": { "type": "string" }, "minItems": 1 }]
        })
    }
}

/// Delay added between the step's host and a peer's PostgreSQL port, each
/// way; `heal` with the peer takes it away. netem where the kernel has it,
/// else a delaying relay (the step's outcome says which ran).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyAction {
    /// The peer.
    #[schemars(with = "String")]
    pub to: Spanned<String>,
    /// Milliseconds added each way.
    #[schemars(range(min = 1))]
    pub ms: u32,
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

/// Background load, one of two kinds: `writer`, the harness's writer (one
/// row per transaction, every acknowledged commit remembered, see check
/// `writes`), or `pgbench`, PostgreSQL's own benchmark run inside the host
/// (TPC-B-like transactions; tables made with `pgbench -i` when missing).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadAction {
    /// The writer's name, for the step that stops it and for check `writes`.
    pub writer: Option<String>,
    /// A pgbench run's name, for the step that stops it.
    pub pgbench: Option<String>,
    /// pgbench clients (connections).
    #[serde(default = "default_clients")]
    #[schemars(range(min = 1))]
    pub clients: u32,
    /// Stop it (its summary becomes the step's outcome) instead of starting
    /// it. A pgbench run that ended by itself before it was stopped fails the step.
    #[serde(default)]
    pub stop: bool,
    /// Hosts it moves to, in order, when the step's host stops taking
    /// writes: the first that accepts a connection and is not in recovery
    /// (libpq's `target_session_attrs=read-write`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub failover: Vec<Spanned<String>>,
    /// Its table (id, host, at), created on the step's host if missing.
    #[serde(default = "default_load_table")]
    pub table: String,
    /// Milliseconds between commits.
    #[serde(default = "default_interval_ms")]
    #[schemars(range(min = 1))]
    pub interval_ms: u64,
}

impl LoadAction {
    /// Which load it is, by name.
    pub fn kind(&self) -> Result<LoadKind<'_>, String> {
        match (&self.writer, &self.pgbench) {
            (Some(w), None) => Ok(LoadKind::Writer(w)),
            (None, Some(b)) => Ok(LoadKind::Pgbench(b)),
            _ => Err("`load` needs exactly one of `writer = \"NAME\"` or `pgbench = \"NAME\"`".into()),
        }
    }
}

/// The two kinds of background load.
#[derive(Debug, Clone, Copy)]
pub enum LoadKind<'a> {
    Writer(&'a str),
    Pgbench(&'a str),
}

fn default_clients() -> u32 {
    4
}
fn default_load_table() -> String {
    "pglab_writes".into()
}
fn default_interval_ms() -> u64 {
    10
}

/// One `[[steps]]` entry: who does what where, and what must come of it.
/// Exactly one action: `run`, `config`, `sql`, `file`, `copy`, `known_host`,
/// `wait`, or a fault (`partition`, `heal`, `latency`, `kill`, `stop`,
/// `pause`, `resume`, `load`, `fill`, `free`).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    /// Tutorial step number and a short name, unique in the file: `8-restore`.
    #[schemars(with = "String")]
    id: Spanned<String>,
    /// What the step does, as a heading in the transcript.
    title: String,
    /// The host it runs on.
    #[schemars(with = "String")]
    host: Spanned<String>,
    /// The OS user who runs `run`: `dba` (may sudo, as the tutorial's reader
    /// does), `postgres` (home /var/lib/postgresql) or `root`.
    #[serde(default = "default_user")]
    user: String,
    /// A shell line exactly as the tutorial writes it, run by bash as `user`.
    #[schemars(with = "Option<String>")]
    run: Option<Spanned<String>>,
    /// Edits of configuration files as an editor makes them; the transcript shows the diff.
    config: Option<ConfigEdit>,
    /// SQL through the harness's own client (superuser, database `postgres`).
    #[schemars(with = "Option<String>")]
    sql: Option<Spanned<String>>,
    /// Writes a file.
    file: Option<FileAction>,
    /// Copies a file from another host (through the harness, not the network).
    copy: Option<CopyAction>,
    /// Pin this host's SSH host key in the step user's `~/.ssh/known_hosts`,
    /// under its address; the key is read off the host through the engine,
    /// never trusted on first use over the network (`ssh-keyscan`).
    #[schemars(with = "Option<String>")]
    known_host: Option<Spanned<String>>,
    /// Waits for a condition, with the step's deadline.
    wait: Option<WaitAction>,
    /// Fault: cut the step's host off from these hosts, or from `"all"`,
    /// both ways (blackhole routes set by a helper with NET_ADMIN that
    /// shares the host's network namespace); addresses stay.
    partition: Option<Peers>,
    /// Undo a `partition` or `latency` of the step's host with these hosts, or `"all"`.
    heal: Option<Peers>,
    /// Fault: `{ to = "primary", ms = 50 }` delays the step's host's
    /// connections to the peer's PostgreSQL by `ms` each way (its
    /// replication connection is restarted to take the new path).
    latency: Option<LatencyAction>,
    /// Fault: `"postmaster"` (SIGKILL; crash recovery on the next start) or
    /// `"host"` (the engine kills the whole host).
    kill: Option<KillWhat>,
    /// Stop the step's cluster: `"fast"` or `"immediate"`; waits until it is down.
    stop: Option<StopMode>,
    /// Fault: `true` freezes every process of the host (`docker pause`).
    pause: Option<bool>,
    /// `true` thaws a paused host.
    resume: Option<bool>,
    /// A background writer on the step's host: start it, or stop it.
    load: Option<LoadAction>,
    /// Fault: fill this volume of the step's host (one of its `volumes`) to
    /// the last byte, with a file `pglab-fill` written as root.
    #[schemars(with = "Option<String>")]
    fill: Option<Spanned<String>>,
    /// Remove what `fill` wrote to this volume.
    #[schemars(with = "Option<String>")]
    free: Option<Spanned<String>>,
    /// What the step must produce; otherwise it fails and the run stops.
    #[serde(default)]
    expect: Expect,
    /// The `[[defects]]` entry whose evidence this step is.
    #[schemars(with = "Option<String>")]
    defect: Option<Spanned<String>>,
    /// Not in the tutorial: a fix or a diagnostic (marked in reports).
    #[serde(default)]
    added: bool,
    /// Why the step is here or differs from the tutorial (shown in the transcript).
    #[serde(default)]
    note: String,
    /// Deadline in seconds for the action (default: `PGLAB_TIMEOUT_DEFAULT`, 180).
    #[schemars(range(min = 1))]
    timeout_s: Option<u64>,
    /// Re-run the step until its expectation holds, for this many seconds.
    #[schemars(range(min = 1))]
    retry_s: Option<u64>,
    /// Earlier steps (usually of other hosts) this one waits for, in `parallel` scenarios.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    after: Vec<Spanned<String>>,
    /// Run the step only on platforms whose versions match: `pg` (PostgreSQL's
    /// major, `when = { pg = "< 14" }`) and `pgbackrest` (its release,
    /// `{ pgbackrest = ">= 2.55" }`), each `<`, `<=`, `>`, `>=` or `=` a
    /// version, from the platform table. Elsewhere the step is reported as
    /// skipped and counts as done for the steps after it: one file, every platform.
    #[serde(default)]
    when: When,
}

fn default_user() -> String {
    "dba".into()
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(r: RawStep) -> Result<Self, String> {
        let mut actions: Vec<Action> = Vec::new();
        actions.extend(r.run.map(Action::Run));
        actions.extend(r.config.map(Action::Config));
        actions.extend(r.sql.map(Action::Sql));
        actions.extend(r.file.map(Action::File));
        actions.extend(r.copy.map(Action::Copy));
        actions.extend(r.known_host.map(Action::KnownHost));
        actions.extend(r.wait.map(Action::Wait));
        actions.extend(r.partition.map(Action::Partition));
        actions.extend(r.heal.map(Action::Heal));
        if r.latency.as_ref().is_some_and(|l| l.ms == 0) {
            return Err(format!("step `{}`: `latency.ms = 0` adds nothing; `heal` takes latency away", r.id.get_ref()));
        }
        actions.extend(r.latency.map(Action::Latency));
        actions.extend(r.kill.map(Action::Kill));
        actions.extend(r.stop.map(Action::Stop));
        for (key, flag, action) in [("pause", r.pause, Action::Pause), ("resume", r.resume, Action::Resume)] {
            match flag {
                Some(true) => actions.push(action),
                Some(false) => return Err(format!("step `{}`: `{key} = false` does nothing; leave it out", r.id.get_ref())),
                None => {}
            }
        }
        if let Some(l) = &r.load {
            l.kind().map_err(|e| format!("step `{}`: {e}", r.id.get_ref()))?;
        }
        actions.extend(r.load.map(Action::Load));
        actions.extend(r.fill.map(Action::Fill));
        actions.extend(r.free.map(Action::Free));
        if let Some((key, _)) = [("timeout_s", r.timeout_s), ("retry_s", r.retry_s)].into_iter().find(|(_, v)| *v == Some(0)) {
            return Err(format!("step `{}`: `{key}` must be at least 1 (seconds)", r.id.get_ref()));
        }
        if actions.len() != 1 {
            let has: Vec<&str> = actions.iter().map(Action::name).collect();
            return Err(format!(
                "step `{}` needs exactly one action ({}); it has {}{}",
                r.id.get_ref(),
                Action::NAMES.join(", "),
                has.len(),
                if has.is_empty() { String::new() } else { format!(": {}", has.join(", ")) }
            ));
        }
        Ok(Step {
            id: r.id,
            title: r.title,
            host: r.host,
            user: r.user,
            action: actions.pop().expect("one action"),
            expect: r.expect,
            defect: r.defect,
            added: r.added,
            note: r.note,
            timeout_s: r.timeout_s,
            retry_s: r.retry_s,
            after: r.after,
            when: r.when,
        })
    }
}

/// Edits of configuration files, shown as diffs in the transcript; an edit
/// that changes nothing says so.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigEdit {
    /// `/etc/pgbackrest.conf`: set keys in one INI section.
    pub pgbackrest: Option<IniEdit>,
    /// `{pg.config_dir}/postgresql.conf`: each GUC set where the file mentions it
    /// (uncommented), else appended. A value is written bare when it is a plain
    /// word or number, else in single quotes (`'*'`, `'pgbackrest ... %p'`).
    #[schemars(with = "Option<BTreeMap<String, ConfValue>>")]
    pub postgresql_conf: Option<toml::Table>,
    /// `{pg.config_dir}/pg_hba.conf`: lines appended unless present.
    pub pg_hba: Option<Vec<String>>,
}

/// `[section]` keys of an INI file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IniEdit {
    /// The section, created if missing: `global`, or the stanza.
    pub section: String,
    /// Keys to set; a list sets a repeated key (`recovery-option`), replacing earlier lines of it.
    #[schemars(with = "BTreeMap<String, IniValue>")]
    pub set: toml::Table,
}

/// A configuration value as TOML writes it (schema only).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ConfValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    /// Written joined with commas (`shared_preload_libraries`).
    List(Vec<ConfValue>),
}

/// An INI value, or a list of them for a repeated key (schema only).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum IniValue {
    One(ConfValue),
}

/// Writes `content` to `path` (or appends it).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileAction {
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

/// Copies a file between hosts (e.g. a public key), through the harness.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyAction {
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
    pub user: String,
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

/// A condition the harness polls with a deadline.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitAction {
    /// The postmaster is gone (no postmaster.pid).
    PgDown,
    /// PostgreSQL answers the harness.
    PgUp,
    /// The host is a standby whose WAL receiver streams.
    Streaming,
    /// The step's host streams from that primary and has replayed the
    /// primary's WAL position as of the step's start; how long that took
    /// is the step's outcome (a catch-up time).
    CaughtUpWith(#[schemars(with = "String")] Spanned<String>),
}

impl WaitAction {
    pub fn name(&self) -> &'static str {
        match self {
            WaitAction::PgDown => "pg_down",
            WaitAction::PgUp => "pg_up",
            WaitAction::Streaming => "streaming",
            WaitAction::CaughtUpWith(_) => "caught_up_with",
        }
    }
}

/// What a step must produce. A step that fails otherwise stops the run.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exit status (default 0), `"nonzero"`, or `"any"`. For `sql`: 0 ok, 1 an SQL error.
    pub status: Option<StatusExpect>,
    /// Regex that stdout+stderr (or the SQL result or error) must match.
    #[schemars(with = "Option<String>")]
    pub output: Option<Spanned<String>>,
    /// Regex a PostgreSQL log line on the step's host must match: a line
    /// written after the step began (polled).
    #[schemars(with = "Option<String>")]
    pub log: Option<Spanned<String>>,
}

/// An exit status, or a word for several.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum StatusExpect {
    Code(i64),
    Word(StatusWord),
}

/// Words `expect.status` takes besides a number.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusWord {
    /// Every status passes (the output or log decides).
    Any,
    /// Any failure passes (evidence of a defect).
    Nonzero,
}

impl Default for StatusExpect {
    fn default() -> Self {
        StatusExpect::Code(0)
    }
}

impl StatusExpect {
    pub fn accepts(self, status: i64) -> bool {
        match self {
            StatusExpect::Code(c) => c == status,
            StatusExpect::Word(StatusWord::Any) => true,
            StatusExpect::Word(StatusWord::Nonzero) => status != 0,
        }
    }

    /// The one status this expects, if it is one.
    pub fn code(self) -> Option<i64> {
        match self {
            StatusExpect::Code(c) => Some(c),
            StatusExpect::Word(_) => None,
        }
    }
}

impl fmt::Display for StatusExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusExpect::Code(c) => write!(f, "{c}"),
            StatusExpect::Word(StatusWord::Any) => f.write_str("any"),
            StatusExpect::Word(StatusWord::Nonzero) => f.write_str("non-zero"),
        }
    }
}

/// One `[[verify]]` entry: a check, and when it may start.
#[derive(Debug, Clone)]
pub struct Verify {
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
    pub fn resolved(&self, vars: &super::Vars) -> crate::error::Result<CheckDecl> {
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
    pub const ALL: [PitrTarget; 4] = [PitrTarget::Name, PitrTarget::Time, PitrTarget::Xid, PitrTarget::Lsn];

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

/// A built-in check and its parameters (see `check/`). In the file the
/// name is the `check` key beside them.
#[derive(Debug, Deserialize, Serialize, Clone, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(tag = "check")]
pub enum CheckDecl {
    /// The standby is in recovery, streams, has replayed the primary's
    /// position, and every user table's row count and checksum match.
    /// Writes nothing.
    StandbyData {
        /// The host that takes writes.
        primary: String,
        /// The host that must have the data.
        standby: String,
    },
    /// The standby streams (a walsender for it on the primary), then
    /// `inserts` single-row inserts are each seen on the standby, no backup
    /// taken; latency p50/p95/max go to the report. Writes table
    /// `pglab_stream` on the primary, then drops it and checkpoints.
    Streaming {
        /// The host that takes the inserts.
        primary: String,
        /// The host that must see them.
        standby: String,
        /// How many inserts to time.
        #[serde(default = "default_inserts")]
        inserts: u32,
        /// Seconds each insert may take to show up on the standby.
        #[serde(default = "default_deadline")]
        deadline_s: u64,
    },
    /// The standby has no WAL receiver, and its PostgreSQL log says why in a
    /// line written while the check runs. Writes nothing.
    NotStreaming {
        /// The host that should stream but does not.
        standby: String,
        /// Regex for that log line.
        log: String,
    },
    /// Point-in-time recovery: on the primary, batches of rows with a target
    /// recorded after each (a restore point `pglab_pitr_N`, a time, an xid,
    /// an LSN), then more rows and a DELETE; then for each target a restore
    /// of the newest backup (fixed when the check starts) into `target_host`,
    /// promoted, must hold exactly the rows of its target on a new timeline.
    /// Writes table `pglab_pitr` on the primary (dropped at the end, with a
    /// checkpoint) and replaces `target_host`'s cluster.
    Pitr {
        /// The host that takes the writes the targets are recorded between.
        primary: String,
        /// Host restored into; it ends promoted. A spare host keeps the
        /// standby a standby.
        target_host: String,
        /// For a spare host: the host whose pgBackRest client setup the target
        /// gets first (/etc/pgbackrest.conf and ~postgres/.ssh: keys and
        /// known_hosts). pgBackRest itself is installed there if missing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        like: Option<String>,
        /// The pgBackRest stanza (`{stanza}` when the scenario has that var).
        stanza: String,
        /// Which kinds of target to restore to, in this order.
        #[serde(default = "default_targets")]
        targets: Vec<PitrTarget>,
    },
    /// `backups` more full backups leave exactly `expect_full` full backups
    /// in `pgbackrest info`, and expiry moved the archive's start. Writes
    /// those backups to the repository.
    Retention {
        /// Where pgBackRest backs up (the repository's side).
        host: String,
        /// The pgBackRest stanza.
        stanza: String,
        /// How many more full backups to take.
        backups: u32,
        /// How many full backups `repo1-retention-full` must leave.
        expect_full: u32,
    },
    /// The postgres crontab on `host` holds this line. Writes nothing.
    CronLine {
        /// The host whose crontab it is.
        host: String,
        /// The crontab line, as `crontab -l` prints it.
        line: String,
    },
    /// The nightly backup command, scheduled for every minute for a while,
    /// makes a new full backup (a minute or more: runs with `--slow`). Adds
    /// a line to the postgres crontab and puts the crontab back afterwards.
    CronFires {
        /// The host whose crontab it is.
        host: String,
        /// The stanza the line backs up.
        stanza: String,
    },
    /// A background writer (a `load` step) is stopped, and every commit it
    /// saw acknowledged is looked for on `host`: the acknowledged commits
    /// missing there are what was lost. Reports acknowledged, lost and
    /// unknown commits (sent, never answered) and the failover gap (last
    /// acknowledged commit on the first host to the first on another).
    /// Writes nothing.
    Writes {
        /// The writer's name (`load.writer`).
        writer: String,
        /// Where the rows must be: the primary after the fault.
        host: String,
        /// How many acknowledged commits may be missing. Left out, the
        /// number is only reported (asynchronous replication may lose some).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_lost: Option<u64>,
    },
    /// The replication role has LOGIN and REPLICATION and nothing more (no
    /// superuser, createrole, createdb, bypassrls, no role memberships), and
    /// its stored password is a SCRAM-SHA-256 verifier. Writes nothing.
    ReplicationRole {
        /// Where the role lives (the primary).
        host: String,
        /// The role's name.
        role: String,
    },
    /// pg_hba turns away what it should: a replication connection as `role`
    /// from `outsider` (a lab host with no pg_hba line), and one from
    /// `standby` with a wrong password; both asserted from the primary's
    /// log lines written during the check. Writes nothing.
    HbaRefuses {
        /// The host whose pg_hba.conf decides.
        primary: String,
        /// The host allowed to replicate; it tries a wrong password.
        standby: String,
        /// A host of the lab that must not be allowed in.
        outsider: String,
        /// The replication role.
        role: String,
    },
    /// No host has a route out of the lab's network: no default route in
    /// its routing table, and `ip route get` to an outside address answers
    /// "Network is unreachable" (nothing is sent). Writes nothing.
    NoRouteOut {
        /// The hosts to look at.
        hosts: Vec<String>,
    },
    /// SSH between these hosts is key-only and trusts no key it was not
    /// given: sshd on each refuses passwords, keyboard-interactive and root;
    /// no two hosts share a host key; every `known_hosts` line on them that
    /// names a lab host holds that host's real key (read by the engine); a
    /// password login from the first host to the second is refused. Writes
    /// nothing.
    SshKeys {
        /// The hosts to look at (at least two).
        hosts: Vec<String>,
    },
    /// Every user table of `copy` has the rows and checksum it has on
    /// `primary`: for a host restored to a point after which the primary
    /// changed none of them. Writes nothing.
    SameData {
        /// The source of truth.
        primary: String,
        /// The restored host.
        copy: String,
    },
    /// `pgbackrest check` (it archives a WAL segment) and `pgbackrest verify` succeed.
    Pgbackrest {
        /// Where to run them (the repository's side).
        host: String,
        /// The pgBackRest stanza.
        stanza: String,
    },
}

fn default_inserts() -> u32 {
    100
}
fn default_deadline() -> u64 {
    10
}
fn default_targets() -> Vec<PitrTarget> {
    PitrTarget::ALL.to_vec()
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
            CheckDecl::Writes { .. } => "writes",
            CheckDecl::ReplicationRole { .. } => "replication_role",
            CheckDecl::HbaRefuses { .. } => "hba_refuses",
            CheckDecl::NoRouteOut { .. } => "no_route_out",
            CheckDecl::SshKeys { .. } => "ssh_keys",
            CheckDecl::SameData { .. } => "same_data",
        }
    }

    /// Checks that take a minute or more; run with `--slow` / `PGLAB_SLOW=1`.
    pub fn is_slow(&self) -> bool {
        matches!(self, CheckDecl::CronFires { .. })
    }

    pub const NAMES: [&'static str; 14] = [
        "standby_data",
        "streaming",
        "not_streaming",
        "pitr",
        "retention",
        "cron_line",
        "cron_fires",
        "writes",
        "replication_role",
        "hba_refuses",
        "no_route_out",
        "ssh_keys",
        "same_data",
        "pgbackrest",
    ];

    /// Parameters that are regexes.
    pub fn regex_params(&self) -> &'static [&'static str] {
        match self {
            CheckDecl::NotStreaming { .. } => &["log"],
            _ => &[],
        }
    }

    /// Hosts the check uses, by the key that names each.
    pub fn hosts(&self) -> Vec<(&'static str, &str)> {
        match self {
            CheckDecl::StandbyData { primary, standby } | CheckDecl::Streaming { primary, standby, .. } => vec![("primary", primary), ("standby", standby)],
            CheckDecl::NotStreaming { standby, .. } => vec![("standby", standby)],
            CheckDecl::SameData { primary, copy } => vec![("primary", primary), ("copy", copy)],
            CheckDecl::HbaRefuses { primary, standby, outsider, .. } => vec![("primary", primary), ("standby", standby), ("outsider", outsider)],
            CheckDecl::NoRouteOut { hosts } | CheckDecl::SshKeys { hosts } => hosts.iter().map(|h| ("hosts", h.as_str())).collect(),
            CheckDecl::Pitr { primary, target_host, like, .. } => {
                [("primary", primary.as_str()), ("target_host", target_host.as_str())].into_iter().chain(like.as_deref().map(|l| ("like", l))).collect()
            }
            CheckDecl::Retention { host, .. }
            | CheckDecl::CronLine { host, .. }
            | CheckDecl::CronFires { host, .. }
            | CheckDecl::Pgbackrest { host, .. }
            | CheckDecl::Writes { host, .. }
            | CheckDecl::ReplicationRole { host, .. } => {
                vec![("host", host)]
            }
        }
    }
}

impl Step {
    /// Hosts whose boot the step must not race: its own when it talks to
    /// systemd or postgresql-common (the host's own cluster start settles for
    /// ~2 s), a peer whose SSH host key it pins (sshd makes it at boot).
    pub fn boot_waits(&self) -> Vec<&str> {
        match &self.action {
            Action::Run(run) if ["systemctl", "pg_ctlcluster", "service ", "reboot"].iter().any(|w| run.get_ref().contains(w)) => vec![self.host.get_ref()],
            Action::Kill(_) | Action::Stop(_) => vec![self.host.get_ref()],
            Action::KnownHost(peer) => vec![peer.get_ref()],
            _ => Vec::new(),
        }
    }

    /// Hosts the step reads or changes.
    pub fn hosts(&self) -> Vec<&str> {
        let mut h = vec![self.host.get_ref().as_str()];
        h.extend(self.other_hosts().into_iter().map(|(_, s)| s.get_ref().as_str()));
        h
    }

    /// Hosts besides its own that the step names, with the key naming them.
    pub fn other_hosts(&self) -> Vec<(&'static str, &Spanned<String>)> {
        match &self.action {
            Action::Copy(c) => vec![("copy.from_host", &c.from_host)],
            Action::KnownHost(h) => vec![("known_host", h)],
            Action::Latency(l) => vec![("latency.to", &l.to)],
            Action::Partition(Peers::Hosts(p)) => p.iter().map(|h| ("partition", h)).collect(),
            Action::Heal(Peers::Hosts(p)) => p.iter().map(|h| ("heal", h)).collect(),
            Action::Load(l) => l.failover.iter().map(|h| ("load.failover", h)).collect(),
            Action::Wait(WaitAction::CaughtUpWith(h)) => vec![("wait.caught_up_with", h)],
            _ => Vec::new(),
        }
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
