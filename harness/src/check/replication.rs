//! Replication: the standby has the data, inserts stream to it, or (for the
//! literal tutorial) it cannot stream and its log says why.

use std::num::{NonZeroU32, NonZeroU64};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{drop_and_checkpoint, eq, pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Host, Hosts, LsnKind};
use crate::outcome::{Figures, Unit};
use crate::time::{poll_every, Deadline, Probe};

/// The standby is in recovery, streams, has replayed the primary's
/// position, and in every database every user table's row count and
/// checksum match.
/// Writes nothing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StandbyData {
    /// The host that takes writes.
    pub primary: String,
    /// The host that must have the data.
    pub standby: String,
}

/// The standby streams (a walsender for it on the primary), then
/// `inserts` single-row inserts are each seen on the standby, no backup
/// taken; latency p50/p95/max go to the report. Writes table
/// `pglab_stream` on the primary, then drops it and checkpoints.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Streaming {
    /// The host that takes the inserts.
    pub primary: String,
    /// The host that must see them.
    pub standby: String,
    /// How many inserts to time.
    #[serde(default = "default_inserts")]
    pub inserts: NonZeroU32,
    /// Seconds each insert may take to show up on the standby.
    #[serde(default = "default_deadline")]
    pub deadline_s: NonZeroU64,
}

/// The standby has no WAL receiver, and its PostgreSQL log says why in a
/// line written while the check runs. Writes nothing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotStreaming {
    /// The host that should stream but does not.
    pub standby: String,
    /// Regex for that log line.
    pub log: String,
}

/// In every database, every user table of `copy` has the rows and checksum it has on
/// `primary`: for a host restored to a point after which the primary
/// changed none of them. Writes nothing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SameData {
    /// The source of truth.
    pub primary: String,
    /// The restored host.
    pub copy: String,
}

impl Proof for StandbyData {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![pg("primary", &self.primary), pg("standby", &self.standby)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        standby_data(lab.host(&self.primary)?, lab.host(&self.standby)?).await
    }
}

impl Proof for SameData {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![pg("primary", &self.primary), pg("copy", &self.copy)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        same_data(lab.host(&self.primary)?, lab.host(&self.copy)?).await
    }
}

impl Proof for Streaming {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![pg("primary", &self.primary), pg("standby", &self.standby)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        streaming(lab.host(&self.primary)?, lab.host(&self.standby)?, self.inserts.get(), Duration::from_secs(self.deadline_s.get())).await
    }
}

impl Proof for NotStreaming {
    const REGEX_PARAMS: &'static [&'static str] = &["log"];
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![pg("standby", &self.standby)]
    }
    fn problems(&self) -> Vec<(&'static str, String)> {
        regex::Regex::new(&self.log).err().map(|e| ("log", format!("not a valid regex: {e}"))).into_iter().collect()
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        not_streaming(lab.host(&self.standby)?, &self.log).await
    }
}

fn default_inserts() -> NonZeroU32 {
    NonZeroU32::new(100).expect("100")
}
fn default_deadline() -> NonZeroU64 {
    NonZeroU64::new(10).expect("10")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// The host is in recovery: a promoted one has no WAL receiver and
/// replays nothing either, and would pass for a standby that stopped.
async fn still_a_standby(standby: &Host) -> Result<()> {
    eq(&format!("pg_is_in_recovery() on {} (a standby)", standby.name), standby.safe_psql("SELECT pg_is_in_recovery()").await?.as_str(), "t")
}

/// In recovery, streaming, caught up, and every user table of every database equal (count and
/// an order-independent checksum).
pub async fn standby_data(primary: &Host, standby: &Host) -> Result<Evidence> {
    still_a_standby(standby).await?;
    primary.wait_for_catchup(standby, LsnKind::Replay, None).await?;
    let summary = tables_equal(primary, standby).await?;
    Ok(format!("{} in recovery, caught up with {}; {summary}", standby.name, primary.name).into())
}

/// In every database, every user table of `copy` has the rows and checksum it has on `primary`:
/// a host restored to a point after which the primary changed nothing.
pub async fn same_data(primary: &Host, copy: &Host) -> Result<Evidence> {
    Ok(format!("{} equals {}: {}", copy.name, primary.name, tables_equal(primary, copy).await?).into())
}

/// The databases a check compares: every one that takes connections
/// (`template0` does not; `template1` is compared like the others).
const DATABASES: &str = "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1";

/// The user tables of a database, schema-qualified and quoted.
const USER_TABLES: &str = "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r','p') AND c.relpersistence = 'p' AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1";

/// Compares every database of `primary` with `other`: the same databases,
/// and in each the same user tables with the same row count and a checksum
/// of the rows in order.
async fn tables_equal(primary: &Host, other: &Host) -> Result<String> {
    let dbs = primary.safe_psql(DATABASES).await?;
    eq(&format!("databases on {}", other.name), other.safe_psql(DATABASES).await?, dbs.clone())?;
    let mut summary = Vec::new();
    let mut count = 0;
    for db in dbs.lines().filter(|l| !l.is_empty()) {
        let tables = primary.safe_psql_in(db, USER_TABLES).await?;
        eq(&format!("user tables of database {db} on {}", other.name), other.safe_psql_in(db, USER_TABLES).await?, tables.clone())?;
        for t in tables.lines().filter(|l| !l.is_empty()) {
            let q = format!("SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '-') FROM (SELECT md5(x::text) h FROM {t} x) s");
            let (p, o) = (primary.safe_psql_in(db, &q).await?, other.safe_psql_in(db, &q).await?);
            eq(&format!("rows|checksum of {t} in database {db} on {}", other.name), o.as_str(), p.as_str())?;
            let shown = if db == "postgres" { t.to_string() } else { format!("{db}:{t}") };
            summary.push(format!("{shown}: {} rows", p.split('|').next().unwrap_or("?")));
            count += 1;
        }
    }
    if count == 0 {
        return Err(Error::Check(format!("the primary has no user table to compare in any database ({})", dbs.replace('\n', ", "))));
    }
    Ok(format!("{count} table(s) equal in {} database(s): {}", dbs.lines().count(), summary.join(", ")))
}

/// Streaming, then `inserts` single-row inserts, each polled on the standby
/// until visible; no backup in between. Latency percentiles are its figures.
pub async fn streaming(primary: &Host, standby: &Host, inserts: u32, deadline: Duration) -> Result<Evidence> {
    standby.wait_for_streaming(Deadline::standard()).await?;
    let senders = primary.safe_psql(&format!("SELECT count(*) FROM pg_stat_replication WHERE client_addr = '{}' AND state = 'streaming'", standby.ip)).await?;
    eq(&format!("walsenders streaming to {} on the primary", standby.ip), senders.as_str(), "1")?;

    primary.safe_psql("DROP TABLE IF EXISTS pglab_stream; CREATE TABLE pglab_stream (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())").await?;
    let created = standby.poll_query_until("SELECT to_regclass('pglab_stream') IS NOT NULL", "t", Deadline::after(deadline)).await;
    if let Err(e) = created {
        return Err(Error::Check(format!("{} did not replay the check's CREATE TABLE within {} s though it streams: {e}", standby.name, deadline.as_secs())));
    }
    let mut lat = Vec::with_capacity(inserts as usize);
    for i in 1..=inserts {
        let t0 = Instant::now();
        primary.safe_psql(&format!("INSERT INTO pglab_stream (id) VALUES ({i})")).await?;
        let probe = format!("SELECT count(*) FROM pglab_stream WHERE id = {i}");
        poll_every(&format!("insert {i} to reach {}", standby.name), "1 row", Deadline::after(deadline), Duration::from_millis(1), || async {
            let n = standby.safe_psql(&probe).await?;
            Ok(if n == "1" { Probe::Ready(()) } else { Probe::NotYet(format!("{n} rows")) })
        })
        .await?;
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    drop_and_checkpoint(primary, "pglab_stream").await?;
    lat.sort_by(|a, b| a.total_cmp(b));
    let (p50, p95, max) = (percentile(&lat, 50.0), percentile(&lat, 95.0), *lat.last().unwrap_or(&f64::NAN));
    let mut figures = Figures::default();
    figures.push("inserts", inserts as f64, Unit::Count);
    figures.push("latency_p50", p50, Unit::Ms);
    figures.push("latency_p95", p95, Unit::Ms);
    figures.push("latency_max", max, Unit::Ms);
    let said = format!("streaming; {inserts} inserts each visible on {} without a backup: p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms", standby.name);
    Ok(Evidence::new(said).with(figures))
}

/// No WAL receiver, and the log says why in a line written while the check
/// runs (the WAL receiver retries every few seconds), not an old one.
pub async fn not_streaming(standby: &Host, log: &str) -> Result<Evidence> {
    // A promoted host has no WAL receiver either: it must still be a standby.
    still_a_standby(standby).await?;
    let offset = standby.log_offset().await?;
    let line = standby.wait_for_log(log, offset, Deadline::standard()).await?;
    eq("WAL receivers on the standby", standby.safe_psql("SELECT count(*) FROM pg_stat_wal_receiver").await?.as_str(), "0")?;
    Ok(format!("no WAL receiver on {}; its log says now: {}", standby.name, line.trim()).into())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_pick_from_sorted_samples() {
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 95.0), 100.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
