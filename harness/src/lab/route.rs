//! The harness's route to a host's PostgreSQL: a stream the engine gives
//! it. An exec in the host, as the OS user `postgres`, joins its stdin and
//! stdout to the server's Unix socket, and tokio-postgres speaks over that
//! exec. Nothing of the harness's machine is mounted into a lab, so a remote
//! engine works the same; the server sees a local connection of `postgres`,
//! let in by the peer rule Debian ships: the harness adds no role and no
//! pg_hba line.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

use crate::error::{Error, Result};

/// The bridge: Perl, which every host has (Debian's perl-base).
const BRIDGE: &str = include_str!("bridge.pl");
/// Who the harness is to PostgreSQL: the OS user and role `postgres`.
pub(crate) const HARNESS_USER: &str = "postgres";

/// How to reach one host's PostgreSQL without borrowing the host: for tasks
/// that outlive a borrow of it (a background writer, the lag sampler).
#[derive(Clone)]
pub(crate) struct Route {
    pub host: String,
    docker: Docker,
    container: String,
    /// The server's socket in the host (from the platform table).
    socket: String,
    /// Set while the host restarts: no exec is made into a host that is
    /// shutting down (each new one would hold its shutdown up).
    offline: Arc<AtomicBool>,
}

impl Route {
    pub(crate) fn new(host: &str, docker: &Docker, container: &str, socket: String, offline: Arc<AtomicBool>) -> Self {
        Route { host: host.to_string(), docker: docker.clone(), container: container.to_string(), socket, offline }
    }

    /// What the transcript says the route is.
    pub(crate) fn describe(&self) -> String {
        format!("docker exec -i -u {HARNESS_USER} {} perl bridge.pl {}  (tokio-postgres over the exec's stdin/stdout)", self.container, self.socket)
    }

    /// A new connection as `postgres` to database `postgres`, within `limit`.
    pub(crate) async fn connect(&self, limit: Duration) -> Result<Client> {
        self.connect_to("postgres", limit).await
    }

    /// A new connection as `postgres` to database `db`, within `limit`.
    pub(crate) async fn connect_to(&self, db: &str, limit: Duration) -> Result<Client> {
        if self.offline.load(Ordering::SeqCst) {
            return Err(self.error(None, format!("{} is restarting", self.host)));
        }
        match tokio::time::timeout(limit, self.open(db)).await {
            Ok(r) => r,
            Err(_) => Err(self.error(None, format!("no connection within {} ms", limit.as_millis()))),
        }
    }

    async fn open(&self, db: &str) -> Result<Client> {
        let stream = self.exec_stream().await?;
        let mut cfg = tokio_postgres::Config::new();
        cfg.user(HARNESS_USER).dbname(db).application_name("pglab").ssl_mode(SslMode::Disable);
        let (client, conn) = cfg.connect_raw(stream, NoTls).await.map_err(|e| {
            let code = e.as_db_error().map(|d| d.code().code().to_string());
            self.error(code, e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()))
        })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    async fn exec_stream(&self) -> Result<ExecStream> {
        let opts = CreateExecOptions {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            user: Some(HARNESS_USER.to_string()),
            cmd: Some(vec!["perl".into(), "-e".into(), BRIDGE.into(), self.socket.clone()]),
            ..Default::default()
        };
        let created = self.docker.create_exec(&self.container, opts).await.map_err(|e| Error::docker(format!("exec in {}", self.container), e))?;
        let started = self
            .docker
            .start_exec(&created.id, Some(StartExecOptions { detach: false, tty: false, output_capacity: None }))
            .await
            .map_err(|e| Error::docker(format!("start exec in {}", self.container), e))?;
        let StartExecResults::Attached { output, input } = started else { return Err(Error::Other("exec started detached".into())) };
        Ok(ExecStream { output, input, pending: Bytes::new(), stderr: Vec::new() })
    }

    fn error(&self, sqlstate: Option<String>, message: String) -> Error {
        Error::Sql { host: self.host.clone(), sql: "(connect)".into(), sqlstate, message }
    }
}

type Output = Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>>;

/// An attached exec as a byte stream: reads its stdout, writes its stdin.
struct ExecStream {
    output: Output,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    /// Stdout received and not yet read.
    pending: Bytes,
    /// What the bridge said on stderr (why it could not connect).
    stderr: Vec<u8>,
}

impl AsyncRead for ExecStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match self.output.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(LogOutput::StdOut { message }))) => self.pending = message,
                Poll::Ready(Some(Ok(LogOutput::StdErr { message }))) => self.stderr.extend_from_slice(&message),
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(std::io::Error::other(e))),
                // The bridge ended: end of stream, or why it could not start.
                Poll::Ready(None) if self.stderr.is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(None) => return Poll::Ready(Err(std::io::Error::other(String::from_utf8_lossy(&self.stderr).trim().to_string()))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for ExecStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.input.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.input.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.input.as_mut().poll_shutdown(cx)
    }
}
