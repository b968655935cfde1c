//! Delayed replay (PostgreSQL's 005_replay_delay): a standby with
//! `recovery_min_apply_delay` shows a commit no sooner than that long after
//! it, and does show it.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Host, Hosts};
use crate::outcome::{Figures, Unit};
use crate::time::{poll_every, Deadline, Probe};

/// A row committed on `primary` is not visible on `standby` before
/// `delay_ms` after its commit and is visible after it: both bounds from
/// the servers' own clocks (the standby's `clock_timestamp()` when it first
/// sees the row, against the commit's timestamp as the standby replayed it,
/// `pg_last_xact_replay_timestamp()`), never from a sleep. Writes table
/// `pglab_delay` on the primary, then drops it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayDelay {
    /// The host that takes the write.
    pub primary: String,
    /// The delayed standby.
    pub standby: String,
    /// Its `recovery_min_apply_delay`, in milliseconds.
    pub delay_ms: NonZeroU64,
}

impl Proof for ReplayDelay {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![pg("primary", &self.primary), pg("standby", &self.standby)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        replay_delay(lab.host(&self.primary)?, lab.host(&self.standby)?, Duration::from_millis(self.delay_ms.get())).await
    }
}

/// A row's commit, and when the delayed standby first showed it.
pub async fn replay_delay(primary: &Host, standby: &Host, delay: Duration) -> Result<Evidence> {
    // The table first, and past the delay, so the row is the only news.
    primary.safe_psql("DROP TABLE IF EXISTS pglab_delay; CREATE TABLE pglab_delay (id int PRIMARY KEY)").await?;
    standby.poll_query_until("SELECT to_regclass('pglab_delay') IS NOT NULL", "t", Deadline::after(delay + crate::time::default_timeout())).await?;
    primary.safe_psql("INSERT INTO pglab_delay VALUES (1)").await?;
    let commit = primary.safe_psql("SELECT pg_current_wal_lsn()").await?;
    // Polled as often as a query allows; each answer carries the standby's
    // clock, and whether the commit had already arrived (hidden because of
    // the delay, not because WAL had not come: paused or archive-fed replay).
    let probe = format!(
        "SELECT count(*), extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000, \
         coalesce(pg_last_wal_receive_lsn() >= '{commit}'::pg_lsn, false) FROM pglab_delay"
    );
    let probe = probe.as_str();
    let hidden = AtomicU32::new(0);
    let received_while_hidden = AtomicU32::new(0);
    let seen_after_ms: f64 = poll_every(
        &format!("the row to show on {}", standby.name),
        "1 row",
        Deadline::after(delay * 3 + Duration::from_secs(30)),
        Duration::from_millis(5),
        || async {
            let row = standby.safe_psql(probe).await?;
            let f: Vec<&str> = row.split('|').collect();
            Ok(match f.first() {
                Some(&"1") => Probe::Ready(f.get(1).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)),
                _ => {
                    hidden.fetch_add(1, Ordering::Relaxed);
                    if f.get(2) == Some(&"t") {
                        received_while_hidden.fetch_add(1, Ordering::Relaxed);
                    }
                    Probe::NotYet(format!("0 rows ({row})"))
                }
            })
        },
    )
    .await?;
    let (hidden, received) = (hidden.into_inner(), received_while_hidden.into_inner());
    primary.safe_psql("DROP TABLE pglab_delay").await?;
    let delay_ms = delay.as_secs_f64() * 1000.0;
    if seen_after_ms.is_nan() || seen_after_ms < delay_ms {
        return Err(Error::Check(format!("{} showed the row {seen_after_ms:.0} ms after its commit, before the {delay_ms:.0} ms replay delay", standby.name)));
    }
    if received == 0 {
        return Err(Error::Check(format!(
            "{} never held the received commit back ({hidden} polls saw the row hidden, none with its WAL received): replay waited for WAL, not for the delay",
            standby.name
        )));
    }
    let mut figures = Figures::default();
    figures.push("visible_after", seen_after_ms, Unit::Ms);
    figures.push("polls_hidden", f64::from(hidden), Unit::Count);
    let said = format!(
        "{} showed the row {seen_after_ms:.0} ms after its commit (delay {delay_ms:.0} ms; hidden in {hidden} polls before, {received} of them with its WAL already received), by the standby's own clock",
        standby.name
    );
    Ok(Evidence::new(said).with(figures))
}
