//! Waiting on a condition with a deadline: the only way pglab waits.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Default deadline for every wait, like `PG_TEST_TIMEOUT_DEFAULT`.
pub fn default_timeout() -> Duration {
    std::env::var("PGLAB_TIMEOUT_DEFAULT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(180))
}

/// What a wait saw before it gave up, so a timeout explains itself.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {elapsed:?} waiting for {what}\n  expected: {expected}\n  last seen: {last}")]
pub struct WaitTimeout {
    pub what: String,
    pub expected: String,
    pub last: String,
    pub elapsed: Duration,
}

/// Outcome of one probe of a polled condition.
pub enum Probe<T> {
    Ready(T),
    /// Not yet; the string is what was seen, reported on timeout.
    NotYet(String),
}

/// Polls `probe` until it is ready or `timeout` passes. Probes back off from
/// 5 ms to 100 ms: quick for short waits, cheap for slow ones.
pub async fn poll_until<T, F, Fut>(what: &str, expected: &str, timeout: Duration, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>>>,
{
    poll(what, expected, timeout, Duration::from_millis(5), Duration::from_millis(100), probe).await
}

/// Polls at a fixed short interval: for measuring latencies, where a backoff
/// would round every measurement up to its step.
pub async fn poll_every<T, F, Fut>(what: &str, expected: &str, timeout: Duration, interval: Duration, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>>>,
{
    poll(what, expected, timeout, interval, interval, probe).await
}

async fn poll<T, F, Fut>(what: &str, expected: &str, timeout: Duration, first: Duration, max: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>>>,
{
    let start = Instant::now();
    let mut pause = first;
    let mut last;
    loop {
        match probe().await {
            Ok(Probe::Ready(v)) => return Ok(v),
            Ok(Probe::NotYet(seen)) => last = seen,
            Err(e) => last = format!("error: {e}"),
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(Error::Timeout(Box::new(WaitTimeout {
                what: what.to_string(),
                expected: expected.to_string(),
                last,
                elapsed,
            })));
        }
        tokio::time::sleep(pause.min(timeout - elapsed)).await;
        pause = (pause * 2).min(max);
    }
}
