//! Running a command on a host: always to the end, both streams collected,
//! the exit status checked against what the caller expected.

use std::fmt;
use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::error::{tail_lines, Error, Result};

/// A command to run inside a host.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub argv: Vec<String>,
    pub user: String,
    pub stdin: Option<Vec<u8>>,
    pub env: Vec<(String, String)>,
    /// What the transcript shows instead of argv (a shell line, or a redacted form).
    pub display: Option<String>,
    /// `None` accepts any status (the caller inspects the output).
    pub expect_status: Option<i64>,
    pub timeout: Option<Duration>,
}

impl Cmd {
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            user: "root".into(),
            stdin: None,
            env: Vec::new(),
            display: None,
            expect_status: Some(0),
            timeout: None,
        }
    }

    /// A shell line run by bash, shown in transcripts exactly as written.
    pub fn shell(line: impl Into<String>) -> Self {
        let line = line.into();
        let mut c = Cmd::new(["bash", "-c", line.as_str()]);
        c.display = Some(line);
        c
    }

    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn expect_status(mut self, status: i64) -> Self {
        self.expect_status = Some(status);
        self
    }

    /// Accept any exit status.
    pub fn any_status(mut self) -> Self {
        self.expect_status = None;
        self
    }

    pub fn display(mut self, shown: impl Into<String>) -> Self {
        self.display = Some(shown.into());
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    pub fn shown(&self) -> String {
        self.display.clone().unwrap_or_else(|| self.argv.join(" "))
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, Serialize)]
pub struct ExecOutput {
    pub status: i64,
    pub stdout: String,
    pub stderr: String,
    #[serde(with = "crate::report::millis")]
    pub elapsed: Duration,
}

impl ExecOutput {
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

/// A command that did not end as expected, with everything needed to see why.
#[derive(Debug)]
pub struct ExecFailure {
    pub host: String,
    pub user: String,
    pub cmd: String,
    pub status: Option<i64>,
    pub expected: Option<i64>,
    pub output_tail: String,
    /// Relevant PostgreSQL / pgBackRest log lines from the host.
    pub logs: String,
    pub reason: Option<String>,
}

impl fmt::Display for ExecFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command failed on {} as {}: {}", self.host, self.user, self.cmd)?;
        match (self.status, self.expected) {
            (Some(s), Some(e)) => write!(f, "\n  exit status {s}, but {e} was expected")?,
            (Some(s), None) => write!(f, "\n  exit status {s}")?,
            _ => {}
        }
        if let Some(r) = &self.reason {
            write!(f, "\n  {r}")?;
        }
        if !self.output_tail.trim().is_empty() {
            write!(f, "\n--- last lines of output ---\n{}", self.output_tail.trim_end())?;
        }
        if !self.logs.trim().is_empty() {
            write!(f, "\n--- relevant log lines on {} ---\n{}", self.host, self.logs.trim_end())?;
        }
        Ok(())
    }
}

/// Sink for output as it arrives (progress, `pglab exec` passthrough).
pub type OnOutput<'a> = &'a mut (dyn FnMut(&[u8], bool) + Send);

/// Runs `cmd` in `container` to completion. Does not judge the status.
pub async fn run(docker: &Docker, container: &str, cmd: &Cmd, mut on_output: Option<OnOutput<'_>>) -> Result<ExecOutput> {
    let start = Instant::now();
    let env: Vec<String> = cmd.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(cmd.stdin.is_some()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                user: Some(cmd.user.clone()),
                cmd: Some(cmd.argv.clone()),
                env: if env.is_empty() { None } else { Some(env) },
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
    let StartExecResults::Attached { mut output, mut input } = started else {
        return Err(Error::Other("exec started detached".into()));
    };
    if let Some(data) = &cmd.stdin {
        input.write_all(data).await.map_err(|e| Error::io("writing stdin", e))?;
        input.shutdown().await.map_err(|e| Error::io("closing stdin", e))?;
    }
    drop(input);
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let collect = async {
        while let Some(chunk) = output.next().await {
            match chunk.map_err(|e| Error::docker(format!("reading exec output in {container}"), e))? {
                bollard::container::LogOutput::StdOut { message } => {
                    if let Some(f) = on_output.as_mut() {
                        f(&message, false);
                    }
                    stdout.extend_from_slice(&message)
                }
                bollard::container::LogOutput::StdErr { message } => {
                    if let Some(f) = on_output.as_mut() {
                        f(&message, true);
                    }
                    stderr.extend_from_slice(&message)
                }
                _ => {}
            }
        }
        Ok::<_, Error>(())
    };
    match cmd.timeout {
        Some(t) => tokio::time::timeout(t, collect).await.map_err(|_| {
            Error::Timeout(Box::new(crate::wait::WaitTimeout {
                what: format!("`{}` to finish in {container}", cmd.shown()),
                expected: "exit".into(),
                last: tail_lines(&String::from_utf8_lossy(&stdout), 5),
                elapsed: start.elapsed(),
            }))
        })??,
        None => collect.await?,
    }
    // The stream ends before the daemon records the exit code: poll briefly.
    let status = crate::wait::poll_until("exec exit code", "an exit code", Duration::from_secs(10), || async {
        let info = docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| Error::docker("inspect exec", e))?;
        Ok(match (info.running, info.exit_code) {
            (Some(false), Some(code)) => crate::wait::Probe::Ready(code),
            _ => crate::wait::Probe::NotYet("still running".into()),
        })
    })
    .await?;
    Ok(ExecOutput {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: start.elapsed(),
    })
}
