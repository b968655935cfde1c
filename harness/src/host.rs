//! One host of a lab: commands as an OS user, files in and out, and SQL
//! through the harness's own socket route.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::query_parameters::UploadToContainerOptions;
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::error::{tail_lines, Error, Result};
use crate::exec::{self, Cmd, ExecFailure, ExecOutput};
use crate::platform::Platform;
use crate::report::{Transcript, TranscriptEntry};
use crate::wait::{poll_until, Probe};

/// The harness's own PostgreSQL role. It logs in only over the Unix socket
/// directory that pglab bind-mounts from the host; it is never in a `host`
/// line, so no TCP rule of a scenario can pass because of it.
pub const HARNESS_ROLE: &str = "pglab";

pub struct Host {
    pub name: String,
    pub lab: String,
    /// Container name (`pglab-<lab>-<host>`).
    pub container: String,
    pub ip: Ipv4Addr,
    pub platform: Platform,
    /// Host-side directory bind-mounted at /run/postgresql.
    pub socket_dir: PathBuf,
    docker: Docker,
    transcript: Transcript,
    client: Mutex<Option<Client>>,
}

/// A file read with what an edit must keep.
#[derive(Debug, Clone)]
pub struct FileMeta {
    /// The file itself, links followed: where an edit writes back.
    pub path: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub content: Vec<u8>,
}

/// A symlink's target as an absolute path.
fn p_join(link: &str, target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        Path::new(link).parent().unwrap_or(Path::new("/")).join(target).to_string_lossy().into_owned()
    }
}

/// Result of a query whose failure is expected and inspected.
#[derive(Debug)]
pub struct PsqlOutcome {
    pub rows: Vec<Vec<Option<String>>>,
    pub error: Option<(String, String)>,
}

impl Host {
    pub(crate) fn new(
        name: String,
        lab: String,
        container: String,
        ip: Ipv4Addr,
        platform: Platform,
        socket_dir: PathBuf,
        docker: Docker,
        transcript: Transcript,
    ) -> Self {
        Host { name, lab, container, ip, platform, socket_dir, docker, transcript, client: Mutex::new(None) }
    }

    pub fn transcript(&self) -> &Transcript {
        &self.transcript
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

    pub async fn exec_streaming(&self, cmd: Cmd, on_output: Option<exec::OnOutput<'_>>) -> Result<ExecOutput> {
        let out = exec::run(&self.docker, &self.container, &cmd, on_output).await?;
        self.transcript.record(TranscriptEntry::command(&self.name, &cmd.user, cmd.shown(), out.status, out.stdout.clone(), out.stderr.clone(), out.elapsed));
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
            reason,
        }))
    }

    /// `bash -c LINE` as `user`, expected to succeed.
    pub async fn sh(&self, user: &str, line: &str) -> Result<ExecOutput> {
        self.exec(Cmd::shell(line).user(user)).await
    }

    /// Writes a file through the engine's archive API: no exec, no shell
    /// quoting; mode and owner travel in the tar header. `owner` is
    /// `user[:group]` by name.
    pub async fn write_file(&self, path: &str, contents: &[u8], mode: u32, owner: &str) -> Result<()> {
        let (uid, gid) = self.resolve_owner(owner).await?;
        self.write_file_as(path, contents, mode, uid, gid).await
    }

    /// As `write_file`, with numeric ids (an edit keeps the file's own).
    pub async fn write_file_as(&self, path: &str, contents: &[u8], mode: u32, uid: u64, gid: u64) -> Result<()> {
        let p = Path::new(path);
        let (dir, file) = (p.parent().unwrap_or(Path::new("/")), p.file_name().unwrap_or_default());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(contents.len() as u64);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
        h.set_cksum();
        b.append_data(&mut h, file, contents).map_err(|e| Error::io("tar", e))?;
        let body = b.into_inner().map_err(|e| Error::io("tar", e))?;
        self.docker
            .upload_to_container(
                &self.container,
                Some(UploadToContainerOptions { path: dir.to_string_lossy().into_owned(), ..Default::default() }),
                bollard::body_full(body.into()),
            )
            .await
            .map_err(|e| Error::docker(format!("writing {path} on {}", self.name), e))
    }

    /// A regular file with its mode and owner, through the archive API;
    /// `None` when it does not exist.
    pub async fn stat_read(&self, path: &str) -> Result<Option<FileMeta>> {
        let mut path = path.to_string();
        // The archive API does not follow links: follow them here (a few hops).
        for _ in 0..8 {
            let opts = bollard::query_parameters::DownloadFromContainerOptions { path: path.clone() };
            let mut stream = self.docker.download_from_container(&self.container, Some(opts));
            let mut buf = Vec::new();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(b) => buf.extend_from_slice(&b),
                    Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
                    Err(e) => return Err(Error::docker(format!("reading {path} on {}", self.name), e)),
                }
            }
            let mut archive = tar::Archive::new(buf.as_slice());
            let mut entries = archive.entries().map_err(|e| Error::io("tar", e))?;
            let Some(entry) = entries.next() else { return Ok(None) };
            let mut entry = entry.map_err(|e| Error::io("tar", e))?;
            let h = entry.header();
            let kind = h.entry_type();
            if kind.is_symlink() {
                match entry.link_name().ok().flatten() {
                    Some(t) => path = p_join(&path, &t.to_string_lossy()),
                    None => return Ok(None),
                }
                continue;
            }
            if !kind.is_file() {
                return Err(Error::Other(format!("{path} on {} is not a regular file", self.name)));
            }
            let (mode, uid, gid) = (h.mode().unwrap_or(0o644) & 0o7777, h.uid().unwrap_or(0), h.gid().unwrap_or(0));
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).map_err(|e| Error::io("tar", e))?;
            return Ok(Some(FileMeta { path, mode, uid, gid, content }));
        }
        Err(Error::Other(format!("{path} on {}: too many levels of symbolic links", self.name)))
    }

    /// Reads a text file (archive API, no exec).
    pub async fn read_file(&self, path: &str) -> Result<String> {
        match self.stat_read(path).await? {
            Some(f) => Ok(String::from_utf8_lossy(&f.content).into_owned()),
            None => Err(Error::Other(format!("cannot read {path} on {}: no such file", self.name))),
        }
    }

    /// Numeric ids of `user[:group]` from the host's /etc/passwd and /etc/group.
    async fn resolve_owner(&self, owner: &str) -> Result<(u64, u64)> {
        let (user, group) = owner.split_once(':').map(|(u, g)| (u, Some(g))).unwrap_or((owner, None));
        if user == "root" && group.is_none_or(|g| g == "root") {
            return Ok((0, 0));
        }
        let passwd = self.read_file("/etc/passwd").await?;
        let entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() > 3 && f[0] == user);
        let Some(f) = entry else { return Err(Error::Other(format!("no user `{user}` on {}", self.name))) };
        let uid = f[2].parse().unwrap_or(0);
        let gid = match group {
            None => f[3].parse().unwrap_or(0),
            Some(g) => {
                let groups = self.read_file("/etc/group").await?;
                let found = groups.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() > 2 && f[0] == g);
                match found {
                    Some(f) => f[2].parse().unwrap_or(0),
                    None => return Err(Error::Other(format!("no group `{g}` on {}", self.name))),
                }
            }
        };
        Ok((uid, gid))
    }

    /// Runs a command without recording it (harness probes, log reads).
    pub async fn probe(&self, cmd: &Cmd) -> Result<ExecOutput> {
        exec::run(&self.docker, &self.container, cmd, None).await
    }

    // ---- SQL -------------------------------------------------------------

    /// The harness's route: its role over the bind-mounted socket directory.
    fn pg_config(&self, timeout: Duration) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&self.socket_dir).port(5432).user(HARNESS_ROLE).dbname("postgres").application_name("pglab").connect_timeout(timeout);
        cfg
    }

    async fn connect(&self) -> Result<Client> {
        let (client, conn) = self.pg_config(Duration::from_secs(5)).connect(NoTls).await.map_err(|e| self.sql_error("(connect)", e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
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
                Ok(msgs) => {
                    let rows = msgs
                        .into_iter()
                        .filter_map(|m| match m {
                            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                            _ => None,
                        })
                        .collect();
                    return Ok(PsqlOutcome { rows, error: None });
                }
                Err(e) if e.as_db_error().is_some() => {
                    let db = e.as_db_error().expect("db error");
                    return Ok(PsqlOutcome {
                        rows: Vec::new(),
                        error: Some((db.code().code().to_string(), self.transcript.redact(db.message()))),
                    });
                }
                Err(e) if attempt == 0 && (e.is_closed() || client.is_closed()) => {
                    *guard = None;
                }
                Err(e) => return Err(self.sql_error(sql, e)),
            }
        }
        unreachable!("second attempt returns")
    }

    /// Runs SQL that must succeed; returns rows as `psql -At` would print them.
    pub async fn safe_psql(&self, sql: &str) -> Result<String> {
        let out = self.psql(sql).await?;
        if let Some((code, message)) = out.error {
            return Err(Error::Sql { host: self.name.clone(), sql: self.transcript.redact(sql), sqlstate: Some(code), message });
        }
        Ok(out
            .rows
            .iter()
            .map(|r| r.iter().map(|c| c.clone().unwrap_or_default()).collect::<Vec<_>>().join("|"))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// First column of the first row, parsed.
    pub async fn query_value<T: std::str::FromStr>(&self, sql: &str) -> Result<T> {
        let text = self.safe_psql(sql).await?;
        let first = text.lines().next().unwrap_or("").split('|').next().unwrap_or("");
        first
            .parse::<T>()
            .map_err(|_| Error::Other(format!("on {}: `{sql}` returned `{first}`, not the expected type", self.name)))
    }

    /// Polls `sql` until it returns `expected` (as text) or the deadline passes.
    pub async fn poll_query_until(&self, sql: &str, expected: &str, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        poll_until(&format!("`{sql}` on {}", self.name), expected, timeout, || async {
            let got = self.safe_psql(sql).await?;
            Ok(if got == expected { Probe::Ready(()) } else { Probe::NotYet(got) })
        })
        .await?;
        Ok(start.elapsed())
    }

    // ---- the cluster -----------------------------------------------------

    /// Whether a postmaster answers on the socket at all, as pg_isready
    /// asks it; a refusal by the server (no such role yet) is an answer.
    pub async fn postmaster_answers(&self) -> Probe<()> {
        match self.pg_config(Duration::from_secs(2)).connect(NoTls).await {
            Ok(_) => Probe::Ready(()),
            Err(e) => match e.as_db_error() {
                Some(db) if *db.code() != tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW => Probe::Ready(()),
                _ => Probe::NotYet(e.to_string()),
            },
        }
    }

    /// Waits until the cluster accepts connections from the harness.
    pub async fn wait_for_pg_up(&self, timeout: Duration) -> Result<()> {
        poll_until(&format!("PostgreSQL to accept connections on {}", self.name), "SELECT 1 works", timeout, || async {
            Ok(match self.psql("SELECT 1").await {
                Ok(o) if o.error.is_none() => Probe::Ready(()),
                Ok(o) => Probe::NotYet(format!("{:?}", o.error)),
                Err(e) => Probe::NotYet(e.to_string()),
            })
        })
        .await
    }

    /// Waits until the postmaster is really gone: `systemctl stop` can return
    /// while postmaster.pid still exists.
    pub async fn wait_for_pg_down(&self, timeout: Duration) -> Result<()> {
        let pidfile = format!("{}/postmaster.pid", self.platform.pg_data());
        // Through the archive API: a probe costs milliseconds, not an exec.
        poll_until(&format!("PostgreSQL to stop on {}", self.name), &format!("no {pidfile}"), timeout, || async {
            Ok(match self.stat_read(&pidfile).await? {
                None => Probe::Ready(()),
                Some(_) => Probe::NotYet(format!("{pidfile} exists")),
            })
        })
        .await?;
        *self.client.lock().await = None;
        Ok(())
    }

    /// The last PostgreSQL and pgBackRest log lines, redacted: the evidence
    /// attached to a failing step.
    pub async fn relevant_logs(&self) -> String {
        let script = format!(
            "tail -n 15 {pg} 2>/dev/null | sed 's/^/[postgresql] /'; \
             for f in $(ls -t /var/log/pgbackrest/*.log 2>/dev/null | head -2); do tail -n 8 \"$f\" | sed \"s|^|[$(basename $f)] |\"; done",
            pg = self.platform.pg_log()
        );
        match self.probe(&Cmd::new(["bash", "-c", script.as_str()]).any_status()).await {
            Ok(o) => self.transcript.redact(&o.stdout),
            Err(e) => format!("(could not read logs: {e})"),
        }
    }

    /// Lines of the PostgreSQL log matching `pattern` (a regex).
    pub async fn pg_log_matching(&self, pattern: &str) -> Result<Vec<String>> {
        let re = regex::Regex::new(pattern).map_err(|e| Error::Other(format!("bad log pattern `{pattern}`: {e}")))?;
        let log = self.read_file(&self.platform.pg_log()).await.unwrap_or_default();
        Ok(log.lines().filter(|l| re.is_match(l)).map(|l| self.transcript.redact(l)).collect())
    }

    /// Waits for a PostgreSQL log line matching `pattern`.
    pub async fn wait_for_log(&self, pattern: &str, timeout: Duration) -> Result<String> {
        poll_until(&format!("log line /{pattern}/ on {}", self.name), pattern, timeout, || async {
            let found = self.pg_log_matching(pattern).await?;
            Ok(match found.last() {
                Some(l) => Probe::Ready(l.clone()),
                None => Probe::NotYet("no such line yet".into()),
            })
        })
        .await
    }
}
