//! The archive has no hole: every WAL segment from the oldest backup's
//! start to the last one the primary completed is in the repository, and
//! none is left waiting. `verify` says whether what is there is sound; this
//! says whether anything is missing, which a restore past a hole would
//! find too late.

use std::collections::BTreeSet;
use std::num::NonZeroU8;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{any, pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Host, Hosts};
use crate::outcome::{Figures, Unit};
use crate::time::{poll_until, Deadline, Probe};

/// Every segment from the oldest backup's start to the one before the
/// primary's current segment is in the archive of `stanza` (as
/// `pgbackrest repo-ls` lists it, on `host`), once the primary has no
/// `.ready` file left (archiving caught up; polled to a deadline).
/// Segments of every timeline count: the first of a new timeline continues
/// the numbering of the one before.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveContinuous {
    /// The PostgreSQL host whose WAL is archived.
    pub primary: String,
    /// A host with pgBackRest configured for the stanza, to list the repository from.
    pub host: String,
    /// The stanza.
    pub stanza: String,
    /// Only this repository (`--repo`); default: pgBackRest's first.
    #[serde(default)]
    pub repo: Option<NonZeroU8>,
}

impl Proof for ArchiveContinuous {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![pg("primary", &self.primary), any("host", &self.host)]
    }

    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        archive_continuous(lab.host(&self.primary)?, lab.host(&self.host)?, &self.stanza, self.repo.map(|r| r.get())).await
    }
}

/// See [`ArchiveContinuous`]: `primary`'s WAL in the archive of `stanza`
/// listed on `host` (of repository `repo` when given).
pub async fn archive_continuous(primary: &Host, host: &Host, stanza: &str, repo: Option<u8>) -> Result<Evidence> {
    let waiting = nothing_waiting(primary).await?;
    let size = wal_segment_size(primary).await?;
    let per_log = 0x1_0000_0000 / size;
    // The segment that holds the insert position (at a boundary, the next
    // one: pg_walfile_name would name the one before, already complete).
    let (position, timeline) = (
        primary.safe_psql("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::text").await?,
        primary.safe_psql("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)").await?,
    );
    let position: u64 = position.parse().map_err(|_| Error::Check(format!("the WAL position on {} reads `{position}`", primary.name)))?;
    let current = format!("{timeline}{:08X}{:08X}", position / size / per_log, position / size % per_log);
    let info = host.backup_info_of(stanza, repo).await?;
    let oldest = info["backup"].as_array().and_then(|b| b.first()).and_then(|b| b["archive"]["start"].as_str()).map(str::to_string);
    let oldest = oldest.ok_or_else(|| Error::Check(format!("stanza {stanza} on {} holds no backup to start the archive from", host.name)))?;
    let present = archived(host, stanza, repo, per_log).await?;
    let (first, last) = (number(&oldest, per_log)?, number(&current, per_log)?.saturating_sub(1));
    let missing: Vec<u64> = (first..=last).filter(|n| !present.contains(n)).collect();
    let name = |n: u64| format!("{}{:08X}{:08X}", &current[..8], n / per_log, n % per_log);
    if let Some(m) = missing.first() {
        let more = if missing.len() > 1 { format!(" and {} more", missing.len() - 1) } else { String::new() };
        return Err(Error::Check(format!(
            "the archive of {stanza} on {} misses segment {}{more} (of {} from the oldest backup's {oldest} to {}, the one before {}'s current {current})",
            host.name,
            name(*m),
            (last + 1).saturating_sub(first),
            name(last),
            primary.name
        )));
    }
    let mut figures = Figures::default();
    figures.push("segments", (last + 1).saturating_sub(first) as f64, Unit::Count);
    Ok(Evidence::new(format!(
        "the archive of {stanza} on {}{} holds every segment from {oldest} to {} ({} segments); {waiting}",
        host.name,
        repo.map(|r| format!(", repo{r}")).unwrap_or_default(),
        name(last),
        (last + 1).saturating_sub(first)
    ))
    .with(figures))
}

/// Waits until `primary` has no segment waiting to be archived; says what
/// pg_stat_archiver reports when it does not come to that.
async fn nothing_waiting(primary: &Host) -> Result<String> {
    let ready = "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'";
    let archiver =
        "SELECT format('archived %s, failed %s (last failed: %s)', archived_count, failed_count, coalesce(last_failed_wal, 'none')) FROM pg_stat_archiver";
    let what = format!("{} to archive every completed segment", primary.name);
    poll_until(&what, "no .ready file in pg_wal/archive_status", Deadline::standard(), || async {
        let n = primary.safe_psql(ready).await?;
        let stats = primary.safe_psql(archiver).await?;
        Ok(if n == "0" {
            Probe::Ready(format!("nothing waits to be archived on {} ({stats})", primary.name))
        } else {
            Probe::NotYet(format!("{n} .ready; {stats}"))
        })
    })
    .await
}

/// The server's WAL segment size in bytes (16 MiB unless initdb was told otherwise).
async fn wal_segment_size(primary: &Host) -> Result<u64> {
    let size = primary.safe_psql("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'").await?;
    size.parse().ok().filter(|s| *s > 0).ok_or_else(|| Error::Check(format!("wal_segment_size on {} reads `{size}`", primary.name)))
}

/// A segment's position from its name (`TTTTTTTTLLLLLLLLSSSSSSSS`), timeline aside.
fn number(name: &str, per_log: u64) -> Result<u64> {
    let hex = |r: std::ops::Range<usize>| name.get(r).and_then(|s| u64::from_str_radix(s, 16).ok());
    match (name.len() >= 24, hex(8..16), hex(16..24)) {
        (true, Some(log), Some(seg)) => Ok(log * per_log + seg),
        _ => Err(Error::Check(format!("`{name}` is not a WAL segment name"))),
    }
}

/// The positions of the segments in the archive (any timeline; `.partial`
/// and history files aside), from `pgbackrest repo-ls --recurse`.
async fn archived(host: &Host, stanza: &str, repo: Option<u8>, per_log: u64) -> Result<BTreeSet<u64>> {
    let repo = repo.map(|r| format!(" --repo={r}")).unwrap_or_default();
    let cmd = format!("pgbackrest --stanza={stanza}{repo} --output=json --recurse repo-ls archive/{stanza}");
    let out = host.sh("postgres", &cmd).await?;
    if !out.success() {
        return Err(Error::Check(format!("`{cmd}` on {}: {}", host.name, out.combined().trim())));
    }
    let listing: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| Error::Check(format!("repo-ls on {} is not JSON: {e}", host.name)))?;
    let names = listing.as_object().into_iter().flat_map(|m| m.keys());
    Ok(names.filter_map(|path| segment_of(path)).filter_map(|s| number(s, per_log).ok()).collect())
}

/// The segment a file of the archive holds: `.../000000010000000000000003-<sha1>.gz` (not `.partial`).
fn segment_of(path: &str) -> Option<&str> {
    let file = path.rsplit('/').next()?;
    let (name, rest) = file.split_at_checked(24)?;
    (name.bytes().all(|b| b.is_ascii_hexdigit()) && rest.starts_with('-') && !rest.contains(".partial")).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_number_across_logs_and_partials_do_not_count() {
        assert_eq!(number("000000010000000000000003", 256).unwrap(), 3);
        assert_eq!(number("0000000200000001000000FF", 256).unwrap(), 511);
        assert_eq!(number("000000010000000200000000", 256).unwrap(), 512, "after ...01FF comes ...0200");
        assert!(number("00000002.history", 256).is_err());
        let seg = "0000000100000000/000000010000000000000003-bc8db640b2c4da9464f195f04cdbe45308136476.gz";
        assert_eq!(segment_of(seg), Some("000000010000000000000003"));
        assert_eq!(segment_of("0000000100000000/000000010000000000000004.partial-0123456789abcdef0123456789abcdef01234567.gz"), None);
        assert_eq!(segment_of("00000002.history"), None);
        assert_eq!(segment_of("0000000100000000"), None, "a directory");
    }
}
