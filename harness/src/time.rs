//! Deadlines and polling: the only way pglab waits.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, WaitTimeout};

/// Seconds every harness wait allows unless told otherwise, like
/// `PG_TEST_TIMEOUT_DEFAULT`: `PGLAB_TIMEOUT_DEFAULT`, else 180.
pub fn default_timeout() -> Duration {
    parse_timeout(std::env::var("PGLAB_TIMEOUT_DEFAULT").ok().as_deref())
}

fn parse_timeout(value: Option<&str>) -> Duration {
    value.and_then(|v| v.trim().parse::<f64>().ok()).filter(|s| *s > 0.0).map(Duration::from_secs_f64).unwrap_or(Duration::from_secs(180))
}

/// When a wait must give up. Built once per wait, so the time a probe takes
/// counts against it. [`Deadline::standard`] is `PGLAB_TIMEOUT_DEFAULT`
/// seconds (180 unless set), like PostgreSQL's `PG_TEST_TIMEOUT_DEFAULT`.
///
/// ```
/// use std::time::Duration;
/// use pglab::time::Deadline;
/// let d = Deadline::after(Duration::from_secs(5));
/// assert!(!d.expired() && d.remaining() <= Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    budget: Duration,
}

impl Deadline {
    /// A deadline this long from now.
    pub fn after(budget: Duration) -> Self {
        Deadline { start: Instant::now(), budget }
    }

    /// [`default_timeout`] from now.
    pub fn standard() -> Self {
        Deadline::after(default_timeout())
    }

    /// From a scenario's `timeout_s`-like field, else the standard one.
    pub fn secs_or_standard(secs: Option<u64>) -> Self {
        secs.map(|s| Deadline::after(Duration::from_secs(s))).unwrap_or_else(Deadline::standard)
    }

    /// The whole budget it was made with.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Time since it was made.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Time left (zero once expired).
    pub fn remaining(&self) -> Duration {
        self.budget.saturating_sub(self.start.elapsed())
    }

    /// No time is left.
    pub fn expired(&self) -> bool {
        self.start.elapsed() >= self.budget
    }
}

/// Outcome of one probe of a polled condition.
pub enum Probe<T> {
    /// The condition holds, with this value.
    Ready(T),
    /// Not yet; the string is what was seen, reported on timeout.
    NotYet(String),
}

/// Polls `probe` until it is ready or the deadline passes. Probes back off
/// from 5 ms to 100 ms: quick for short waits, cheap for slow ones. A probe
/// error that cannot heal ([`Error::is_permanent`]) ends the wait at once.
pub async fn poll_until<T, F, Fut>(what: &str, expected: &str, deadline: Deadline, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>>>,
{
    poll(what, expected, deadline, Duration::from_millis(5), Duration::from_millis(100), probe).await
}

/// Polls at a fixed short interval: for measuring latencies, where a backoff
/// would round every measurement up to its step.
pub async fn poll_every<T, F, Fut>(what: &str, expected: &str, deadline: Deadline, interval: Duration, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>>>,
{
    poll(what, expected, deadline, interval, interval, probe).await
}

async fn poll<T, F, Fut>(what: &str, expected: &str, deadline: Deadline, first: Duration, max: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>>>,
{
    let mut pause = first;
    let mut last;
    loop {
        match probe().await {
            Ok(Probe::Ready(v)) => return Ok(v),
            Ok(Probe::NotYet(seen)) => last = seen,
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => last = format!("error: {e}"),
        }
        if deadline.expired() {
            return Err(Error::Timeout(Box::new(WaitTimeout { what: what.to_string(), expected: expected.to_string(), last, elapsed: deadline.elapsed() })));
        }
        tokio::time::sleep(pause.min(deadline.remaining())).await;
        pause = (pause * 2).min(max);
    }
}

/// Serde helper: durations as whole milliseconds.
pub mod millis {
    use std::time::Duration;
    /// Milliseconds, as reports write durations.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_timeout_comes_from_the_environment_value() {
        assert_eq!(parse_timeout(None), Duration::from_secs(180));
        assert_eq!(parse_timeout(Some("7")), Duration::from_secs(7));
        assert_eq!(parse_timeout(Some("0.5")), Duration::from_millis(500));
        assert_eq!(parse_timeout(Some("soon")), Duration::from_secs(180));
        assert_eq!(parse_timeout(Some("0")), Duration::from_secs(180));
    }

    #[tokio::test]
    async fn a_wait_times_out_with_what_it_saw() {
        let err = poll_until("x", "ready", Deadline::after(Duration::from_millis(50)), || async { Ok(Probe::<()>::NotYet("nope".into())) }).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("waiting for x") && text.contains("last seen: nope"), "{text}");
    }

    #[tokio::test]
    async fn a_permanent_error_ends_the_wait_at_once() {
        let mut probes = 0;
        let started = Instant::now();
        let err = poll_until("x", "ready", Deadline::after(Duration::from_secs(30)), || {
            probes += 1;
            async { Err::<Probe<()>, _>(Error::Sql { host: "h".into(), sql: "SELEC 1".into(), sqlstate: Some("42601".into()), message: "syntax".into() }) }
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Sql { .. }), "{err}");
        assert_eq!(probes, 1);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_passing_error_is_retried() {
        let mut probes = 0;
        let got = poll_until("x", "ready", Deadline::after(Duration::from_secs(30)), || {
            probes += 1;
            let n = probes;
            async move {
                if n < 3 {
                    Err(Error::Check("not yet".into()))
                } else {
                    Ok(Probe::Ready(n))
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);
    }
}
