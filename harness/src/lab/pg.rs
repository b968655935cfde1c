//! The cluster's verbs, named as PostgreSQL's TAP `Cluster` names them:
//! `start`, `stop(mode)`, `restart`, `promote`, `lsn`, `wait_for_catchup`,
//! `wait_for_log`. Steps and checks use these; none spells `systemctl`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::exec::Cmd;
use super::host::Host;
use crate::error::{Error, Result};
use crate::time::{poll_until, Deadline, Probe};
use crate::vocab::StopMode;

/// How long one try of [`Host::wait_for_pg_up`] may take: a connection
/// (an exec and a Perl start) takes 2-6 s on 2 cores with 8 labs booting
/// (measured: p90 3.3 s, max 5.6 s), milliseconds when idle.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// Which WAL position `lsn` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LsnKind {
    /// On a primary: where inserts go (`pg_current_wal_insert_lsn`).
    Insert,
    /// On a primary: written out (`pg_current_wal_lsn`); what standbys get.
    Write,
    /// On a primary: flushed to disk.
    Flush,
    /// On a standby: received from the primary.
    Receive,
    /// On a standby: replayed.
    Replay,
}

impl LsnKind {
    fn function(self) -> &'static str {
        match self {
            LsnKind::Insert => "pg_current_wal_insert_lsn()",
            LsnKind::Write => "pg_current_wal_lsn()",
            LsnKind::Flush => "pg_current_wal_flush_lsn()",
            LsnKind::Receive => "pg_last_wal_receive_lsn()",
            LsnKind::Replay => "pg_last_wal_replay_lsn()",
        }
    }
}

/// A WAL position (`16/B374D848`), ordered like `pg_lsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (hi, lo) = s.trim().split_once('/').ok_or_else(|| format!("`{s}` is not an LSN"))?;
        let part = |p: &str| u64::from_str_radix(p, 16).map_err(|_| format!("`{s}` is not an LSN"));
        Ok(Lsn((part(hi)? << 32) | part(lo)?))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A place in the PostgreSQL log, taken before an action, so that waiting
/// for a line only sees what the action caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogOffset(pub usize);

impl Host {
    fn unit(&self) -> String {
        self.platform.pg_unit()
    }

    /// Starts the cluster and waits until it accepts connections. systemd is
    /// not waited for (`--no-block`): postgresql-common's start confirmation
    /// spends ~2 s after the server already answers.
    pub async fn start(&self) -> Result<()> {
        self.exec(Cmd::new(["systemctl", "start", "--no-block", &self.unit()])).await?;
        self.wait_for_pg_up(Deadline::standard()).await
    }

    /// Stops the cluster and waits until its postmaster is gone.
    pub async fn stop(&self, mode: StopMode) -> Result<()> {
        let cmd = match mode {
            StopMode::Fast => Cmd::new(["systemctl", "stop", &self.unit()]),
            StopMode::Immediate => {
                let v = self.platform.pg_major().to_string();
                Cmd::new(["pg_ctlcluster", "--skip-systemctl-redirect", "-m", "immediate", &v, "main", "stop"])
            }
        };
        self.exec(cmd).await?;
        self.wait_for_pg_down(Deadline::standard()).await
    }

    /// Restarts the cluster and waits until it answers.
    pub async fn restart(&self) -> Result<()> {
        self.exec(Cmd::new(["systemctl", "restart", &self.unit()])).await?;
        self.wait_for_pg_up(Deadline::standard()).await
    }

    /// Promotes a standby and waits until it leaves recovery.
    pub async fn promote(&self) -> Result<()> {
        self.safe_psql("SELECT pg_promote(false)").await?;
        self.wait_for_promotion(Deadline::standard()).await
    }

    /// Waits until the server is out of recovery (a promotion, or a
    /// recovery target with `promote` as its action).
    pub async fn wait_for_promotion(&self, deadline: Deadline) -> Result<()> {
        self.poll_query_until("SELECT pg_is_in_recovery()", "f", deadline).await.map(|_| ())
    }

    /// A WAL position of this host: where it writes, flushes, receives or replays.
    pub async fn lsn(&self, kind: LsnKind) -> Result<Lsn> {
        let text = self.safe_psql(&format!("SELECT {}", kind.function())).await?;
        text.parse().map_err(|e: String| Error::Check(format!("{kind:?} LSN on {}: {e}", self.name)))
    }

    /// Waits until `standby` streams from this primary and has reached
    /// `target` (default: this primary's write LSN now) in `mode`. Write and
    /// flush are read from this primary's `pg_stat_replication`; replay from
    /// the standby itself, which knows it at once (the primary hears of it
    /// only with the standby's next status message).
    pub async fn wait_for_catchup(&self, standby: &Host, mode: LsnKind, target: Option<Lsn>) -> Result<Lsn> {
        let target = match target {
            Some(t) => t,
            None => self.lsn(LsnKind::Write).await?,
        };
        let column = match mode {
            LsnKind::Write | LsnKind::Insert => "write_lsn",
            LsnKind::Flush => "flush_lsn",
            LsnKind::Receive | LsnKind::Replay => "sent_lsn",
        };
        let streaming = format!(
            "SELECT coalesce(bool_or({column} >= '{target}'::pg_lsn), false) FROM pg_stat_replication WHERE client_addr = '{}' AND state = 'streaming'",
            standby.ip
        );
        self.poll_query_until(&streaming, "t", Deadline::standard()).await?;
        if matches!(mode, LsnKind::Receive | LsnKind::Replay) {
            let reached = format!("SELECT {} >= '{target}'::pg_lsn", mode.function());
            standby.poll_query_until(&reached, "t", Deadline::standard()).await?;
        }
        Ok(target)
    }

    /// Waits until the cluster accepts connections from the harness. Each
    /// try has a limit of its own (10 s): on a loaded engine an
    /// exec can hang, and one hung try must not spend the whole deadline.
    pub async fn wait_for_pg_up(&self, deadline: Deadline) -> Result<()> {
        poll_until(&format!("PostgreSQL to accept connections on {}", self.name), "SELECT 1 works", deadline, || async {
            let limit = PROBE_LIMIT.min(deadline.remaining()).max(Duration::from_millis(1));
            Ok(match tokio::time::timeout(limit, self.psql("SELECT 1")).await {
                Ok(Ok(o)) if o.error.is_none() => Probe::Ready(()),
                Ok(Ok(o)) => Probe::NotYet(format!("{:?}", o.error)),
                Ok(Err(e)) => Probe::NotYet(e.to_string()),
                Err(_) => {
                    // The try was dropped mid-way: its connection, if any, is not to be reused.
                    *self.client.lock().await = None;
                    Probe::NotYet(format!("no answer within {} ms (try abandoned, a new one follows)", limit.as_millis()))
                }
            })
        })
        .await
    }

    /// Waits until the postmaster is really gone: `systemctl stop` can return
    /// while postmaster.pid still exists.
    pub async fn wait_for_pg_down(&self, deadline: Deadline) -> Result<()> {
        let pidfile = format!("{}/postmaster.pid", self.platform.pg_data());
        // Through the archive API: a probe costs milliseconds, not an exec.
        poll_until(&format!("PostgreSQL to stop on {}", self.name), &format!("no {pidfile}"), deadline, || async {
            Ok(match self.stat_read(&pidfile).await? {
                None => Probe::Ready(()),
                Some(_) => Probe::NotYet(format!("{pidfile} exists")),
            })
        })
        .await?;
        *self.client.lock().await = None;
        Ok(())
    }

    /// Waits until this standby's WAL receiver streams.
    pub async fn wait_for_streaming(&self, deadline: Deadline) -> Result<()> {
        self.poll_query_until("SELECT status FROM pg_stat_wal_receiver", "streaming", deadline).await.map(|_| ())
    }

    /// Where the PostgreSQL log ends now.
    pub async fn log_offset(&self) -> Result<LogOffset> {
        Ok(LogOffset(self.stat_read(&self.platform.pg_log()).await?.map(|f| f.content.len()).unwrap_or(0)))
    }

    /// Waits for a PostgreSQL log line matching `pattern` written after
    /// `offset`; returns it, redacted.
    pub async fn wait_for_log(&self, pattern: &str, offset: LogOffset, deadline: Deadline) -> Result<String> {
        let re = regex::Regex::new(pattern).map_err(|e| Error::Check(format!("bad log pattern `{pattern}`: {e}")))?;
        poll_until(&format!("log line /{pattern}/ on {} after byte {}", self.name, offset.0), pattern, deadline, || async {
            let log = self.stat_read(&self.platform.pg_log()).await?.map(|f| f.content).unwrap_or_default();
            // Shorter than the offset: the log was truncated or made anew, all of it is new.
            let new = String::from_utf8_lossy(log.get(offset.0..).unwrap_or(&log)).into_owned();
            Ok(match new.lines().find(|l| re.is_match(l)) {
                Some(l) => Probe::Ready(self.transcript().redact(l)),
                None => Probe::NotYet(format!("{} new bytes, no such line", new.len())),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_parse_print_and_order_like_pg_lsn() {
        let a: Lsn = "0/3000060".parse().unwrap();
        let b: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(a.to_string(), "0/3000060");
        assert_eq!(b.to_string(), "16/B374D848");
        assert!(a < b);
        assert!("0/1".parse::<Lsn>().unwrap() < "1/0".parse::<Lsn>().unwrap());
        assert!("nope".parse::<Lsn>().is_err());
    }
}
