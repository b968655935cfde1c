//! One host of a lab: commands as an OS user, and SQL through the
//! harness's route (an exec stream to the server's socket, `route`). Files are in `files`, the cluster's verbs in
//! `pg`, pgBackRest in `pgbackrest`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bollard::Docker;
use tokio::sync::Mutex;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::exec::{self, Cmd, ExecOutput};
use super::route::Route;
use crate::error::{tail_lines, Error, ExecFailure, Result};
use crate::platform::Platform;
use crate::time::{poll_until, Deadline, Probe};
use crate::transcript::{Ran, Transcript};
use crate::vocab::{HostKind, Needs};

/// Who the transcript shows for SQL the harness runs.
const HARNESS_SQL: &str = "pglab (harness SQL)";

/// One host of a lab: a systemd container with its PostgreSQL cluster.
/// Commands run as an OS user ([`exec`](Host::exec)); SQL goes through
/// the engine to the server's socket ([`safe_psql`](Host::safe_psql),
/// [`client`](Host::client)); the cluster's verbs follow PostgreSQL's
/// TAP framework (`start`, `stop`, `promote`, `wait_for_catchup`, ...).
pub struct Host {
    /// Its name in the lab, which the other hosts resolve.
    pub name: String,
    /// The lab it belongs to.
    pub lab: String,
    /// Container name (`pglab-<lab>-<host>`).
    pub container: String,
    /// Its address on the lab's network.
    pub ip: Ipv4Addr,
    /// What it runs (paths, versions, units come from here).
    pub platform: Platform,
    /// What kind of host it is: which verbs it has.
    pub kind: HostKind,
    pub(super) docker: Docker,
    transcript: Transcript,
    pub(super) client: Mutex<Option<Client>>,
    /// While it restarts (see [`Route`]).
    pub(super) offline: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Its `/etc/hosts`: every host of the lab at its lab address.
    pub(super) hosts_file: String,
}

/// Where a host is: what [`Host`] is made from, besides the engine.
pub(crate) struct Placement {
    pub name: String,
    pub kind: HostKind,
    pub lab: String,
    pub container: String,
    pub ip: Ipv4Addr,
    pub platform: Platform,
    /// What [`Host::place`] writes to `/etc/hosts`.
    pub hosts_file: String,
}

/// Result of a query whose failure is expected and inspected.
#[derive(Debug)]
pub struct PsqlOutcome {
    /// Each row, each column as text (`None` for NULL).
    pub rows: Vec<Vec<Option<String>>>,
    /// SQLSTATE and message.
    pub error: Option<(String, String)>,
}

/// The rows of a simple query's answer, each column as text.
fn rows_of(msgs: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    msgs.into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

impl PsqlOutcome {
    /// Rows as `psql -At` prints them.
    pub fn text(&self) -> String {
        self.rows.iter().map(|r| r.iter().map(|c| c.clone().unwrap_or_default()).collect::<Vec<_>>().join("|")).collect::<Vec<_>>().join("\n")
    }

    /// The error as psql shows it, or the rows.
    pub fn shown(&self) -> String {
        match &self.error {
            Some((code, m)) => format!("ERROR: {m} (SQLSTATE {code})"),
            None => self.text(),
        }
    }
}

impl Host {
    /// A connection of your own to this host's PostgreSQL, as the superuser
    /// `postgres` to database `postgres`: a tokio-postgres [`Client`] over
    /// the engine (an exec stream to the server's socket), so it works with
    /// a remote engine too and needs no port, role or pg_hba line.
    ///
    /// ```no_run
    /// # async fn demo(host: &pglab::Host) -> Result<(), Box<dyn std::error::Error>> {
    /// let client = host.client().await?;
    /// let n: i64 = client.query_one("SELECT count(*) FROM pg_class", &[]).await?.get(0);
    /// assert!(n > 0);
    /// # Ok(()) }
    /// ```
    pub async fn client(&self) -> Result<Client> {
        self.connect().await
    }

    /// A connection of your own to database `db`, as [`Host::client`] is to `postgres`.
    pub async fn client_of(&self, db: &str) -> Result<Client> {
        self.runs_postgres()?;
        self.route().connect_to(db, crate::time::default_timeout()).await
    }

    /// Runs SQL that must succeed in database `db` (on a connection of its
    /// own, but for `postgres`); rows as [`Host::safe_psql`] gives them.
    pub async fn safe_psql_in(&self, db: &str, sql: &str) -> Result<String> {
        if db == "postgres" {
            return self.safe_psql(sql).await;
        }
        let client = self.client_of(db).await?;
        let msgs = client.simple_query(sql).await.map_err(|e| self.sql_error(sql, e))?;
        Ok(PsqlOutcome { rows: rows_of(msgs), error: None }.text())
    }

    pub(crate) fn new(at: Placement, docker: Docker, transcript: Transcript) -> Self {
        let Placement { name, kind, lab, container, ip, platform, hosts_file } = at;
        Host { name, lab, container, ip, platform, kind, docker, transcript, client: Mutex::new(None), offline: Default::default(), hosts_file }
    }

    /// The lab's record of commands, shared by its hosts.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Records a harness action on this host that is not a command.
    pub fn note(&self, user: &str, what: &str, note: &str, elapsed: Duration) {
        self.transcript.note(&self.name, user, what, note, elapsed);
    }

    /// A paste-ready line to get a psql prompt on this host.
    pub fn psql_hint(&self) -> String {
        format!("docker exec -it -u postgres {} psql", self.container)
    }

    /// Runs a command, records it, and fails (with output tail and logs)
    /// unless its status is the expected one.
    pub async fn exec(&self, cmd: Cmd) -> Result<ExecOutput> {
        self.exec_streaming(cmd, None).await
    }

    /// [`exec`](Host::exec), handing each chunk of output to `on_output` as it comes.
    pub(crate) async fn exec_streaming(&self, cmd: Cmd, on_output: Option<exec::OnOutput<'_>>) -> Result<ExecOutput> {
        let out = exec::run(&self.docker, &self.container, &cmd, on_output).await?;
        let ran = Ran { cmd: &cmd.shown(), status: out.status, stdout: &out.stdout, stderr: &out.stderr, elapsed: out.elapsed, in_host: Some(out.in_host) };
        self.transcript.command(&self.name, &cmd.user, ran);
        match cmd.expect_status {
            Some(want) if want != out.status => Err(self.failure(&cmd, &out, None).await),
            _ => Ok(out),
        }
    }

    /// Builds the error for a command that ended wrongly, with log evidence.
    pub async fn failure(&self, cmd: &Cmd, out: &ExecOutput, reason: Option<String>) -> Error {
        let logs = self.relevant_logs().await;
        Error::Exec(Box::new(ExecFailure {
            host: self.name.clone(),
            user: cmd.user.clone(),
            cmd: self.transcript.redact(&cmd.shown()),
            status: Some(out.status),
            expected: cmd.expect_status,
            output_tail: self.transcript.redact(&tail_lines(&out.combined(), 20)),
            logs: self.transcript.redact(&logs),
            peer_logs: Vec::new(),
            reason,
        }))
    }

    /// `bash -c LINE` as `user`, expected to succeed.
    pub async fn sh(&self, user: &str, line: &str) -> Result<ExecOutput> {
        self.exec(Cmd::shell(line).user(user)).await
    }

    /// Runs a command without recording it (harness probes, log reads).
    pub async fn probe(&self, cmd: &Cmd) -> Result<ExecOutput> {
        exec::run(&self.docker, &self.container, cmd, None).await
    }

    // ---- SQL -------------------------------------------------------------

    /// How to reach this host's PostgreSQL without the host itself: for
    /// tasks that outlive a borrow of it (a background writer).
    pub(crate) fn route(&self) -> Route {
        Route::new(&self.name, &self.docker, &self.container, self.platform.pg_socket(), self.offline.clone())
    }

    /// A connection takes an exec and a Perl start: milliseconds on a quiet
    /// engine, seconds when many labs boot at once (8 labs on 2 cores went
    /// past 5 s), so the limit is the standard deadline's, not a test of speed.
    async fn connect(&self) -> Result<Client> {
        self.runs_postgres()?;
        self.route().connect(crate::time::default_timeout()).await
    }

    /// Whether this host's kind has what `needs` asks.
    pub fn has(&self, needs: Needs) -> bool {
        super::kind::spec(self.kind).has(needs)
    }

    /// An error unless this kind of host runs PostgreSQL.
    pub(crate) fn runs_postgres(&self) -> Result<()> {
        match self.has(Needs::Postgres) {
            true => Ok(()),
            false => Err(Error::Usage(format!(
                "{} is a `{}` host ({}): it has no PostgreSQL to talk to",
                self.name,
                self.kind,
                super::kind::spec(self.kind).about()
            ))),
        }
    }

    fn sql_error(&self, sql: &str, e: tokio_postgres::Error) -> Error {
        let (sqlstate, message) = match e.as_db_error() {
            Some(db) => (Some(db.code().code().to_string()), db.message().to_string()),
            None => (e.code().map(|c| c.code().to_string()), e.to_string()),
        };
        Error::Sql { host: self.name.clone(), sql: self.transcript.redact(sql), sqlstate, message: self.transcript.redact(&message) }
    }

    /// Runs SQL on a cached connection, reconnecting once if it was lost
    /// (a restart, a restore).
    pub async fn psql(&self, sql: &str) -> Result<PsqlOutcome> {
        let mut guard = self.client.lock().await;
        for attempt in 0..2 {
            if guard.as_ref().is_none_or(|c| c.is_closed()) {
                *guard = Some(self.connect().await?);
            }
            let client = guard.as_ref().expect("connected");
            match client.simple_query(sql).await {
                Ok(msgs) => return Ok(PsqlOutcome { rows: rows_of(msgs), error: None }),
                Err(e) if e.as_db_error().is_some() => {
                    let db = e.as_db_error().expect("db error");
                    return Ok(PsqlOutcome { rows: Vec::new(), error: Some((db.code().code().to_string(), self.transcript.redact(db.message()))) });
                }
                Err(e) if attempt == 0 && (e.is_closed() || client.is_closed()) => {
                    *guard = None;
                }
                Err(e) => return Err(self.sql_error(sql, e)),
            }
        }
        unreachable!("second attempt returns")
    }

    /// The error for `sql` the server refused (its SQLSTATE and message, as
    /// [`PsqlOutcome::error`] holds them).
    pub fn refused(&self, sql: &str, (code, message): (String, String)) -> Error {
        Error::Sql { host: self.name.clone(), sql: self.transcript.redact(sql), sqlstate: Some(code), message }
    }

    /// Runs SQL that must succeed; returns rows as `psql -At` would print them.
    pub async fn safe_psql(&self, sql: &str) -> Result<String> {
        let out = self.psql(sql).await?;
        match out.error {
            Some(e) => Err(self.refused(sql, e)),
            None => Ok(out.text()),
        }
    }

    /// First column of the first row, parsed.
    pub async fn query_value<T: std::str::FromStr>(&self, sql: &str) -> Result<T> {
        let text = self.safe_psql(sql).await?;
        let first = text.lines().next().unwrap_or("").split('|').next().unwrap_or("");
        first.parse::<T>().map_err(|_| Error::Sql {
            host: self.name.clone(),
            sql: self.transcript.redact(sql),
            sqlstate: None,
            message: format!("returned `{first}`, not the expected type"),
        })
    }

    /// Polls `sql` until it returns `expected` (as text) or the deadline passes.
    pub async fn poll_query_until(&self, sql: &str, expected: &str, deadline: Deadline) -> Result<Duration> {
        let start = Instant::now();
        poll_until(&format!("`{sql}` on {}", self.name), expected, deadline, || async {
            let got = self.safe_psql(sql).await?;
            Ok(if got == expected { Probe::Ready(()) } else { Probe::NotYet(got) })
        })
        .await?;
        Ok(start.elapsed())
    }

    /// Runs SQL and records it in the transcript, failure or not (a step's
    /// or the given state's SQL; checks' own queries are not shown).
    pub async fn psql_recorded(&self, sql: &str) -> Result<PsqlOutcome> {
        let t = Instant::now();
        let out = self.psql(sql).await?;
        let status = if out.error.is_some() { 1 } else { 0 };
        let stderr = if out.error.is_some() { out.shown() } else { String::new() };
        self.transcript.command(&self.name, HARNESS_SQL, Ran { cmd: sql, status, stdout: &out.text(), stderr: &stderr, elapsed: t.elapsed(), in_host: None });
        Ok(out)
    }

    /// Whether a postmaster answers on the socket at all, as pg_isready
    /// asks it; a refusal by the server (no such role yet) is an answer.
    pub async fn postmaster_answers(&self) -> Probe<()> {
        match self.route().connect(Duration::from_secs(2)).await {
            Ok(_) => Probe::Ready(()),
            Err(Error::Sql { sqlstate: Some(code), .. }) if code != tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW.code() => Probe::Ready(()),
            Err(e) => Probe::NotYet(e.to_string()),
        }
    }
}
