//! Running a command on a host: always to the end, both streams collected;
//! a command with a timeout is stopped inside the host when it overruns.

use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::error::{tail_lines, Error, Result, WaitTimeout};
use crate::time::{poll_until, Deadline, Probe};

/// A command to run inside a host ([`Host::exec`](crate::Host::exec)): an
/// argv, as root unless said, with a timeout that stops it inside the host too.
///
/// ```
/// use pglab::Cmd;
/// let c = Cmd::new(["pg_lsclusters", "-h"]).user("postgres");
/// assert_eq!(c.shown(), "pg_lsclusters -h");
/// assert_eq!(Cmd::shell("ls | wc -l").argv, ["bash", "-c", "ls | wc -l"]);
/// ```
#[derive(Clone)]
pub struct Cmd {
    /// The program and its arguments (no shell unless you ask for one).
    pub argv: Vec<String>,
    /// The OS user it runs as.
    pub user: String,
    /// Bytes written to its stdin, then closed.
    pub stdin: Option<Vec<u8>>,
    /// What the transcript shows instead of argv (a shell line, or a redacted form).
    pub display: Option<String>,
    /// `None` accepts any status (the caller inspects the output).
    pub expect_status: Option<i64>,
    /// Stopped (inside the host too) after this long; default `PGLAB_TIMEOUT_DEFAULT`.
    pub timeout: Option<Duration>,
}

/// What the transcript would show, and the size of stdin, never its bytes
/// (a private key or a password file goes in there).
impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cmd")
            .field("shown", &self.shown())
            .field("user", &self.user)
            .field("stdin", &self.stdin.as_ref().map(|b| format!("{} bytes", b.len())))
            .field("expect_status", &self.expect_status)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Cmd {
    /// A program and its arguments, run as root.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd { argv: argv.into_iter().map(Into::into).collect(), user: "root".into(), stdin: None, display: None, expect_status: Some(0), timeout: None }
    }

    /// A shell line run by bash, shown in transcripts exactly as written.
    pub fn shell(line: impl Into<String>) -> Self {
        let line = line.into();
        let mut c = Cmd::new(["bash", "-c", line.as_str()]);
        c.display = Some(line);
        c
    }

    /// Runs it as this OS user (`postgres`, `dba`, `root`).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Feeds it these bytes on stdin.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// The exit status that counts as success (default 0).
    pub fn expect_status(mut self, status: i64) -> Self {
        self.expect_status = Some(status);
        self
    }

    /// Accept any exit status.
    pub fn any_status(mut self) -> Self {
        self.expect_status = None;
        self
    }

    /// How the transcript shows it (a secret-free or shorter form).
    pub fn display(mut self, shown: impl Into<String>) -> Self {
        self.display = Some(shown.into());
        self
    }

    /// Ends the command (TERM, then KILL 5 s later) when it runs longer.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// The command line as the transcript shows it.
    pub fn shown(&self) -> String {
        self.display.clone().unwrap_or_else(|| self.argv.join(" "))
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, Serialize)]
pub struct ExecOutput {
    /// Its exit status.
    pub status: i64,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    #[serde(with = "crate::time::millis")]
    /// How long it took, engine calls included.
    pub elapsed: Duration,
    /// Of that, from the engine starting its process to the end of its output.
    #[serde(rename = "in_host_ms", with = "crate::time::millis")]
    pub in_host: Duration,
}

impl ExecOutput {
    /// It exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
    /// stdout and stderr together, for matching and for error tails.
    pub fn combined(&self) -> String {
        match (self.stdout.is_empty(), self.stderr.is_empty()) {
            (_, true) => self.stdout.clone(),
            (true, false) => self.stderr.clone(),
            _ => format!("{}\n{}", self.stdout.trim_end(), self.stderr),
        }
    }
}

/// Sink for output as it arrives (progress, `pglab exec` passthrough).
pub(super) type OnOutput<'a> = &'a mut (dyn FnMut(&[u8], bool) + Send);

/// Status `timeout(1)` ends with when it had to stop the command.
const TIMED_OUT: [i64; 2] = [124, 137];

/// argv as it runs: inside `timeout(1)` when the command has a limit, so the
/// process ends in the host too, not only our wait for it.
fn argv(cmd: &Cmd) -> Vec<String> {
    match cmd.timeout {
        Some(t) => ["timeout", "--kill-after=5", &format!("{:.3}", t.as_secs_f64())].into_iter().map(String::from).chain(cmd.argv.iter().cloned()).collect(),
        None => cmd.argv.clone(),
    }
}

/// Runs `cmd` in `container` to completion. Does not judge the status; a
/// command stopped by its timeout is a [`WaitTimeout`] with both streams' tails.
pub(super) async fn run(docker: &Docker, container: &str, cmd: &Cmd, on_output: Option<OnOutput<'_>>) -> Result<ExecOutput> {
    let start = Instant::now();
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(cmd.stdin.is_some()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                user: Some(cmd.user.clone()),
                cmd: Some(argv(cmd)),
                working_dir: Some("/".to_string()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| Error::docker(format!("exec in {container}"), e))?;
    let started = docker
        .start_exec(&created.id, Some(StartExecOptions { detach: false, tty: false, output_capacity: None }))
        .await
        .map_err(|e| Error::docker(format!("start exec in {container}"), e))?;
    let running = Instant::now();
    let StartExecResults::Attached { output, mut input } = started else {
        return Err(Error::Other("exec started detached".into()));
    };
    if let Some(data) = &cmd.stdin {
        input.write_all(data).await.map_err(|e| Error::io("writing stdin", e))?;
        input.shutdown().await.map_err(|e| Error::io("closing stdin", e))?;
    }
    drop(input);
    // The limit runs inside the host (`timeout`); this one catches what it
    // cannot: a descendant that keeps the output open after its parent ended.
    let backstop = cmd.timeout.map(|t| t + Duration::from_secs(15));
    let collected = match backstop {
        Some(limit) => tokio::time::timeout(limit, collect(container, output, on_output)).await.map_err(|_| {
            Error::Timeout(Box::new(WaitTimeout {
                what: format!("the output of `{}` in {container} to end", cmd.shown()),
                expected: "the output closed after the command ended".into(),
                last: "a process it started may still hold its output open".into(),
                elapsed: start.elapsed(),
            }))
        })?,
        None => collect(container, output, on_output).await,
    };
    let (stdout, stderr) = collected?;
    let in_host = running.elapsed();
    let status = exit_code(docker, &created.id).await?;
    let out = ExecOutput {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: start.elapsed(),
        in_host,
    };
    match cmd.timeout {
        Some(limit) if TIMED_OUT.contains(&out.status) && out.elapsed >= limit => Err(Error::Timeout(Box::new(WaitTimeout {
            what: format!("`{}` to finish in {container}", cmd.shown()),
            expected: format!("an exit within {limit:?} (the command was stopped)"),
            last: format!("stdout:\n{}\nstderr:\n{}", tail_lines(&out.stdout, 5), tail_lines(&out.stderr, 5)),
            elapsed: out.elapsed,
        }))),
        _ => Ok(out),
    }
}

type OutputStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = std::result::Result<bollard::container::LogOutput, bollard::errors::Error>> + Send>>;

/// Both streams to their end, each chunk also handed to `on_output`.
async fn collect(container: &str, mut output: OutputStream, mut on_output: Option<OnOutput<'_>>) -> Result<(Vec<u8>, Vec<u8>)> {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(chunk) = output.next().await {
        let (message, is_err) = match chunk.map_err(|e| Error::docker(format!("reading exec output in {container}"), e))? {
            bollard::container::LogOutput::StdOut { message } => (message, false),
            bollard::container::LogOutput::StdErr { message } => (message, true),
            _ => continue,
        };
        if let Some(f) = on_output.as_mut() {
            f(&message, is_err);
        }
        if is_err { &mut stderr } else { &mut stdout }.extend_from_slice(&message);
    }
    Ok((stdout, stderr))
}

/// The stream ends before the daemon records the exit code: poll briefly.
async fn exit_code(docker: &Docker, exec: &str) -> Result<i64> {
    poll_until("exec exit code", "an exit code", Deadline::standard(), || async {
        let info = docker.inspect_exec(exec).await.map_err(|e| Error::docker("inspect exec", e))?;
        Ok(match (info.running, info.exit_code) {
            (Some(false), Some(code)) => Probe::Ready(code),
            _ => Probe::NotYet("still running".into()),
        })
    })
    .await
}
