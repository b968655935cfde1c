//! Deadlines and polling: the only way pglab waits.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, WaitTimeout};

/// Seconds every harness wait allows unless told otherwise, like
/// `PG_TEST_TIMEOUT_DEFAULT`: `PGLAB_TIMEOUT_DEFAULT`, else 180.
/// A value that [`check_env`] refuses never gets here: the CLI and a lab's
/// start check it first.
pub fn default_timeout() -> Duration {
    parse_timeout(std::env::var("PGLAB_TIMEOUT_DEFAULT").ok().as_deref()).unwrap_or(DEFAULT_TIMEOUT)
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);
/// A week: past it, a wait is a hang.
const MAX_TIMEOUT_S: f64 = 7.0 * 86_400.0;

/// `PGLAB_TIMEOUT_DEFAULT` as seconds: unset is 180; anything but a number
/// of seconds from 0.001 to a week is an error naming the variable.
fn parse_timeout(value: Option<&str>) -> Result<Duration> {
    let Some(v) = value else { return Ok(DEFAULT_TIMEOUT) };
    match v.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.001..=MAX_TIMEOUT_S).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(Error::Usage(format!("PGLAB_TIMEOUT_DEFAULT={v}: give seconds, from 0.001 to {MAX_TIMEOUT_S} (a week); unset it for 180"))),
    }
}

/// The environment pglab reads, checked: an error names the variable and
/// what it takes.
pub fn check_env() -> Result<()> {
    parse_timeout(std::env::var("PGLAB_TIMEOUT_DEFAULT").ok().as_deref()).map(|_| ())
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
/// from 5 ms to 100 ms, then to a tenth of the time already waited (at most
/// 2 s): quick for short waits, and a long one (cron's next minute, an
/// archiver's retry) no longer runs a command in a host ten times a second,
/// which cost more CPU than the lab's own work. A probe error that cannot
/// heal ([`Error::is_permanent`]) ends the wait at once.
pub async fn poll_until<T, F, Fut>(what: &str, expected: &str, deadline: Deadline, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>>>,
{
    poll(what, expected, deadline, Pace::Backoff, probe).await
}

/// Polls at a fixed short interval: for measuring latencies, where a backoff
/// would round every measurement up to its step.
pub async fn poll_every<T, F, Fut>(what: &str, expected: &str, deadline: Deadline, interval: Duration, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>>>,
{
    poll(what, expected, deadline, Pace::Every(interval), probe).await
}

/// How often a wait probes.
#[derive(Clone, Copy)]
enum Pace {
    /// From 5 ms, doubling up to [`Pace::ceiling`].
    Backoff,
    /// Always this interval.
    Every(Duration),
}

impl Pace {
    fn first(self) -> Duration {
        match self {
            Pace::Backoff => Duration::from_millis(5),
            Pace::Every(d) => d,
        }
    }

    /// The longest pause after `waited`: 100 ms, or a tenth of the wait
    /// so far once that is more (a probe's lateness stays within 10 % of
    /// the wait), never above [`LONGEST_PAUSE`].
    fn ceiling(self, waited: Duration) -> Duration {
        match self {
            Pace::Backoff => (waited / 10).clamp(Duration::from_millis(100), LONGEST_PAUSE),
            Pace::Every(d) => d,
        }
    }
}

/// The longest pause between two probes of a backing-off wait.
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

async fn poll<T, F, Fut>(what: &str, expected: &str, deadline: Deadline, pace: Pace, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>>>,
{
    let mut pause = pace.first();
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
        pause = (pause * 2).min(pace.ceiling(deadline.elapsed()));
    }
}

/// Serde helper: durations as whole milliseconds.
pub mod millis {
    use std::time::Duration;
    /// Milliseconds, as reports write durations.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    /// And read back (a checkpoint's saved step results).
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_millis)
    }
}

/// Serde helper: an optional duration as whole milliseconds.
pub mod millis_opt {
    use std::time::Duration;
    /// Milliseconds, when there is a duration.
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
    /// And read back.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        <Option<u64> as serde::Deserialize>::deserialize(d).map(|v| v.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_timeout_comes_from_the_environment_value() {
        assert_eq!(parse_timeout(None).unwrap(), Duration::from_secs(180));
        assert_eq!(parse_timeout(Some("7")).unwrap(), Duration::from_secs(7));
        assert_eq!(parse_timeout(Some("0.5")).unwrap(), Duration::from_millis(500));
        for bad in ["soon", "0", "-1", "inf", "NaN", "1e20", "1e-12", ""] {
            let e = parse_timeout(Some(bad)).unwrap_err();
            assert!(e.to_string().starts_with(&format!("PGLAB_TIMEOUT_DEFAULT={bad}:")), "{e}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn probes_slow_down_with_the_wait_but_stay_within_a_tenth_of_it() {
        let b = Pace::Backoff;
        assert_eq!(b.ceiling(Duration::from_millis(300)), Duration::from_millis(100));
        assert_eq!(b.ceiling(Duration::from_secs(5)), Duration::from_millis(500));
        assert_eq!(b.ceiling(Duration::from_secs(60)), LONGEST_PAUSE);
        let fixed = Pace::Every(Duration::from_millis(1));
        assert_eq!(fixed.ceiling(Duration::from_secs(5)), Duration::from_millis(1));
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
        let err = poll_until("x", "ready", Deadline::after(Duration::from_secs(30)), || {
            probes += 1;
            async { Err::<Probe<()>, _>(Error::Sql { host: "h".into(), sql: "SELEC 1".into(), sqlstate: Some("42601".into()), message: "syntax".into() }) }
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Sql { .. }), "{err}");
        assert_eq!(probes, 1, "stopped at the first probe, not retried until the deadline");
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
