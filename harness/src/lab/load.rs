//! Background load: a writer that commits numbered rows, one per
//! transaction, through the harness route, and remembers which commits the
//! server acknowledged, as an application would. After a fault, the rows
//! that are missing although acknowledged are what was lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::error::Severity;
use tokio_postgres::Client;

use super::host::Host;
use super::route::Route;
use crate::error::{Error, Result};
use crate::outcome::WriteRate;

/// Longest a single insert may take before its outcome counts as unknown
/// (a frozen or cut-off server never answers).
const STATEMENT_LIMIT: Duration = Duration::from_secs(5);

/// One acknowledged commit.
#[derive(Debug, Clone)]
pub struct Ack {
    pub id: i64,
    /// The host that acknowledged it.
    pub host: String,
    /// Since the writer started.
    pub at: Duration,
}

/// What a writer did.
#[derive(Debug, Clone, Default)]
pub struct WriteLog {
    pub acked: Vec<Ack>,
    /// Sent, then the connection broke or the answer never came: committed
    /// or not, the client cannot know.
    pub unknown: Vec<i64>,
    /// Refused with an error: not committed.
    pub refused: u64,
}

impl WriteLog {
    /// Acknowledged commits per host, in the order the hosts first acknowledged.
    pub fn by_host(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for a in &self.acked {
            match out.iter_mut().find(|(h, _)| *h == a.host) {
                Some((_, n)) => *n += 1,
                None => out.push((a.host.clone(), 1)),
            }
        }
        out
    }

    /// The gap a failover left: from the last acknowledged commit on the
    /// first host to the first one on another.
    pub fn failover_gap(&self) -> Option<Duration> {
        let first = self.acked.first()?;
        let i = self.acked.iter().position(|a| a.host != first.host)?;
        Some(self.acked[i].at - self.acked[i - 1].at)
    }

    pub fn summary(&self) -> String {
        let hosts: Vec<String> = self.by_host().iter().map(|(h, n)| format!("{n} on {h}")).collect();
        let hosts = if hosts.is_empty() { "none".to_string() } else { hosts.join(", ") };
        format!("{} commits acknowledged ({hosts}), {} unknown, {} refused", self.acked.len(), self.unknown.len(), self.refused)
    }
}

struct Writer {
    table: String,
    stop: watch::Sender<bool>,
    /// Taken by the first stop.
    task: Option<JoinHandle<()>>,
    log: Arc<Mutex<WriteLog>>,
    started: Instant,
}

/// The writers of a lab, by name; a writer lives as long as this process.
#[derive(Default)]
pub struct Workloads(Mutex<BTreeMap<String, Writer>>);

impl Workloads {
    /// Creates `table` on `hosts[0]` and starts committing one row every
    /// `interval` to the first of `hosts` that takes writes, moving on to
    /// the next writable one when it fails (as libpq's
    /// `target_session_attrs=read-write` does).
    pub async fn start(&self, name: &str, table: &str, hosts: &[&Host], interval: Duration) -> Result<()> {
        if self.0.lock().expect("workloads lock").contains_key(name) {
            return Err(Error::Usage(format!("writer `{name}` is already running")));
        }
        if interval.is_zero() {
            return Err(Error::Usage(format!("writer `{name}`: an interval of 0 would never yield; give at least 1 ms")));
        }
        let first = hosts.first().ok_or_else(|| Error::Usage(format!("writer `{name}` has no host")))?;
        first
            .safe_psql(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY, host text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"
            ))
            .await?;
        let routes: Vec<Route> = hosts.iter().map(|h| h.route()).collect();
        let (stop, stopped) = watch::channel(false);
        let log = Arc::new(Mutex::new(WriteLog::default()));
        let started = Instant::now();
        let task = Some(tokio::spawn(write(routes, table.to_string(), interval, log.clone(), stopped)));
        self.0.lock().expect("workloads lock").insert(name.to_string(), Writer { table: table.to_string(), stop, task, log, started });
        Ok(())
    }

    /// Stops the writer once the insert under way has its answer (or its
    /// time is up: then it is unknown) and returns what it did, with its table. Stopping a stopped writer returns the same.
    pub async fn stop(&self, name: &str) -> Result<(String, WriteLog)> {
        let (table, log, task) = {
            let mut all = self.0.lock().expect("workloads lock");
            let w = all
                .get_mut(name)
                .ok_or_else(|| Error::Usage(format!("no writer `{name}` in this run (writers live only as long as the run that started them)")))?;
            let _ = w.stop.send(true);
            (w.table.clone(), w.log.clone(), w.task.take())
        };
        if let Some(task) = task {
            let _ = task.await;
        }
        let log = log.lock().expect("write log lock").clone();
        Ok((table, log))
    }

    /// Each writer's acknowledged commits per second since `clock`.
    pub fn rates(&self, clock: Instant) -> Vec<WriteRate> {
        let all = self.0.lock().expect("workloads lock");
        let mut out = Vec::new();
        for (name, w) in all.iter() {
            let offset = w.started.saturating_duration_since(clock);
            let mut per: BTreeMap<u32, u32> = BTreeMap::new();
            for a in &w.log.lock().expect("write log lock").acked {
                *per.entry((offset + a.at).as_secs() as u32).or_default() += 1;
            }
            // Seconds with no commit count as 0, from the first commit to the last.
            let (Some(first), Some(last)) = (per.keys().next().copied(), per.keys().last().copied()) else { continue };
            out.extend((first..=last).map(|second| WriteRate { writer: name.clone(), second, commits: per.get(&second).copied().unwrap_or(0) }));
        }
        out
    }

    /// Stops every writer: the end of a run.
    pub async fn stop_all(&self) {
        let names: Vec<String> = self.0.lock().expect("workloads lock").keys().cloned().collect();
        for n in names {
            let _ = self.stop(&n).await;
        }
    }
}

async fn write(routes: Vec<Route>, table: String, interval: Duration, log: Arc<Mutex<WriteLog>>, mut stopped: watch::Receiver<bool>) {
    let start = Instant::now();
    let sql = format!("INSERT INTO {table} (id, host) VALUES ($1, $2)");
    let mut conn: Option<(String, Client)> = None;
    let mut next: i64 = 1;
    let mut retry = Reconnect { at: start, gap: Duration::ZERO };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tick.tick() => {}
        }
        if conn.as_ref().is_none_or(|(_, c)| c.is_closed()) {
            if Instant::now() < retry.at {
                continue;
            }
            conn = writable(&routes).await;
            retry.after(conn.is_some(), interval);
        }
        let Some((host, client)) = &conn else { continue };
        let id = next;
        next += 1;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&id, host];
        // Not abandoned when asked to stop: its outcome is what a check counts.
        let sent = tokio::time::timeout(STATEMENT_LIMIT, client.execute(&sql, &params)).await;
        let host = host.clone();
        let mut log = log.lock().expect("write log lock");
        match sent {
            Ok(Ok(_)) => log.acked.push(Ack { id, host, at: start.elapsed() }),
            // An ERROR: the transaction did not commit. A FATAL or PANIC ends
            // the session instead, and the commit may have been made durable.
            Ok(Err(e)) if e.as_db_error().is_some_and(|d| !matches!(d.parsed_severity(), Some(Severity::Fatal | Severity::Panic))) => log.refused += 1,
            Ok(Err(_)) | Err(_) => {
                log.unknown.push(id);
                conn = None;
            }
        }
    }
}

/// When the writer may look for a writable host again: at once after a
/// success, then twice as long after each miss, up to `MAX_RECONNECT_GAP`,
/// as an application's pool backs off; without it a standby that is still
/// starting up is asked every tick (2,000 "the database system is starting
/// up" lines in its log while a primary was frozen).
struct Reconnect {
    at: Instant,
    gap: Duration,
}

const MAX_RECONNECT_GAP: Duration = Duration::from_millis(200);

impl Reconnect {
    fn after(&mut self, found: bool, interval: Duration) {
        self.gap = if found { Duration::ZERO } else { (self.gap * 2).max(interval).min(MAX_RECONNECT_GAP.max(interval)) };
        self.at = Instant::now() + self.gap;
    }
}

/// The first host, in order, that accepts a connection and is not in recovery.
async fn writable(routes: &[Route]) -> Option<(String, Client)> {
    for r in routes {
        let Ok(client) = r.connect(Duration::from_secs(2)).await else { continue };
        let primary = tokio::time::timeout(Duration::from_secs(2), client.query_one("SELECT NOT pg_is_in_recovery()", &[])).await;
        if let Ok(Ok(row)) = primary {
            if row.get::<_, bool>(0) {
                return Some((r.host.clone(), client));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(id: i64, host: &str, ms: u64) -> Ack {
        Ack { id, host: host.into(), at: Duration::from_millis(ms) }
    }

    #[test]
    fn a_writer_that_finds_no_writable_host_asks_less_often_up_to_a_bound() {
        let interval = Duration::from_millis(10);
        let mut r = Reconnect { at: Instant::now(), gap: Duration::ZERO };
        let gaps: Vec<u128> = (0..7)
            .map(|_| {
                r.after(false, interval);
                r.gap.as_millis()
            })
            .collect();
        assert_eq!(gaps, [10, 20, 40, 80, 160, 200, 200]);
        r.after(true, interval);
        assert_eq!(r.gap, Duration::ZERO, "found: the next miss starts from the interval again");
    }

    #[test]
    fn the_failover_gap_runs_from_the_last_ack_on_the_old_host_to_the_first_on_the_new() {
        let log = WriteLog { acked: vec![ack(1, "pg1", 10), ack(2, "pg1", 20), ack(5, "pg2", 1520), ack(6, "pg2", 1530)], unknown: vec![3, 4], refused: 0 };
        assert_eq!(log.failover_gap(), Some(Duration::from_millis(1500)));
        assert_eq!(log.by_host(), vec![("pg1".to_string(), 2), ("pg2".to_string(), 2)]);
        assert_eq!(log.summary(), "4 commits acknowledged (2 on pg1, 2 on pg2), 2 unknown, 0 refused");
        let one = WriteLog { acked: vec![ack(1, "pg1", 10)], ..Default::default() };
        assert_eq!(one.failover_gap(), None);
    }
}
