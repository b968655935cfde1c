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
use crate::lab::{Br, BrCommand, Host, Hosts};
use crate::outcome::{Figures, Unit};
use crate::time::{poll_until, Deadline, Probe};

/// Every segment from the oldest backup's start to the one before the
/// primary's current segment is in the archive of `stanza` (as
/// `pgbackrest repo-ls` lists the backup's archive id, on `host`), each of
/// the timeline the primary's history says it must come from, once
/// archiving caught up with that segment (polled to a deadline).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveContinuous {
    /// The PostgreSQL host whose WAL is archived.
    pub primary: String,
    /// A host with pgBackRest configured for the stanza, to list the repository from.
    pub host: String,
    /// The stanza.
    pub stanza: String,
    /// The repository (`--repo`, 1 to 255); default: repo1.
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

/// A WAL segment: its timeline and its position (timeline aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Segment {
    timeline: u32,
    position: u64,
}

/// The check `archive_continuous`: every WAL segment of `primary` from the
/// oldest backup's start to the one before its current segment is in the
/// archive of `stanza` listed on `host` (of repository `repo`, default 1),
/// each under the timeline its history names, once archiving caught up.
pub async fn archive_continuous(primary: &Host, host: &Host, stanza: &str, repo: Option<u8>) -> Result<Evidence> {
    let repo = repo.unwrap_or(1);
    let size = wal_segment_size(primary).await?;
    let per_log = 0x1_0000_0000 / size;
    // Read first: every segment before the one holding the insert position
    // is complete (and .ready or archived) by now. At a boundary the
    // position starts the next segment (pg_walfile_name would name the one
    // before, already complete).
    let position = primary.safe_psql("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::text").await?;
    let position: u64 = position.parse().map_err(|_| Error::Check(format!("the WAL position on {} reads `{position}`", primary.name)))?;
    let history = timeline_history(primary, size).await?;
    let current = position / size;
    // The segment at position `n`, of the timeline the history says.
    let at = |n: u64| Segment { timeline: timeline_of(&history, n), position: n };
    let name = |n: u64| at(n).name(per_log);
    let info = host.backup_info_of(stanza, Some(repo)).await?;
    let oldest = info["backup"].as_array().and_then(|b| b.first()).cloned();
    let oldest = oldest.ok_or_else(|| Error::Check(format!("stanza {stanza} on {}, repo{repo}, holds no backup to start the archive from", host.name)))?;
    let start = oldest["archive"]["start"].as_str().unwrap_or_default().to_string();
    let first = Segment::parse(&start, per_log).ok_or_else(|| Error::Check(format!("the oldest backup's archive start `{start}` is not a segment")))?.position;
    if current <= first {
        return Err(Error::Check(format!(
            "{}'s current segment {} is not after the oldest backup's start {start}: this archive is not {}'s",
            primary.name,
            name(current),
            primary.name
        )));
    }
    let last = current - 1;
    let waiting = archived_through(primary, last, per_log, &name(last)).await?;
    // The backup's own archive id (`15-1`): another database's segments do not count.
    let id = info["archive"].as_array().into_iter().flatten().find(|a| a["database"] == oldest["database"]).and_then(|a| a["id"].as_str()).unwrap_or_default();
    let present = archived(host, stanza, repo, id, per_log).await?;
    let missing: Vec<Segment> = (first..=last).map(at).filter(|s| !present.contains(s)).collect();
    if let Some(m) = missing.first() {
        let more = if missing.len() > 1 { format!(" and {} more", missing.len() - 1) } else { String::new() };
        return Err(Error::Check(format!(
            "the archive of {stanza} on {} misses segment {}{more} (of {} from the oldest backup's {start} to {}, the one before {}'s current {})",
            host.name,
            m.name(per_log),
            last + 1 - first,
            name(last),
            primary.name,
            name(current)
        )));
    }
    let mut figures = Figures::default();
    figures.push("segments", (last + 1 - first) as f64, Unit::Count);
    Ok(Evidence::new(format!(
        "the archive of {stanza} on {}, repo{repo} ({id}), holds every segment from {start} to {} ({} segments, timelines as {}'s history says); {waiting}",
        host.name,
        name(last),
        last + 1 - first,
        primary.name
    ))
    .with(figures))
}

impl Segment {
    /// From a name such as `000000020000000100000003` (any suffix after the 24 digits).
    fn parse(name: &str, per_log: u64) -> Option<Segment> {
        let hex = |r: std::ops::Range<usize>| name.get(r).filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit())).and_then(|s| u64::from_str_radix(s, 16).ok());
        let (timeline, log, seg) = (hex(0..8)?, hex(8..16)?, hex(16..24)?);
        Some(Segment { timeline: timeline as u32, position: log * per_log + seg })
    }

    fn name(&self, per_log: u64) -> String {
        format!("{:08X}{:08X}{:08X}", self.timeline, self.position / per_log, self.position % per_log)
    }
}

/// The primary's timelines, oldest first, each with the position of the
/// segment it began in (`0` for the first), from its current timeline's
/// history file (`pg_wal/0000000T.history`: `parent<TAB>switch LSN<TAB>why`).
async fn timeline_history(primary: &Host, size: u64) -> Result<Vec<(u32, u64)>> {
    let tli = primary.safe_psql("SELECT timeline_id FROM pg_control_checkpoint()").await?;
    let tli: u32 = tli.parse().map_err(|_| Error::Check(format!("the timeline of {} reads `{tli}`", primary.name)))?;
    if tli == 1 {
        return Ok(vec![(1, 0)]);
    }
    let file = format!("pg_wal/{tli:08X}.history");
    let text = primary.safe_psql(&format!("SELECT pg_read_file('{file}')")).await?;
    Ok(parse_history(&text, tli, size))
}

/// See [`timeline_history`]: each parent begins where the one before it ended.
fn parse_history(text: &str, current: u32, size: u64) -> Vec<(u32, u64)> {
    let lsn = |s: &str| s.split_once('/').and_then(|(hi, lo)| Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?));
    let switches: Vec<(u32, u64)> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.parse().ok()?, lsn(f.next()?)?))
        })
        .collect();
    let mut out = Vec::new();
    let mut begins = 0;
    for (parent, end) in &switches {
        out.push((*parent, begins));
        begins = end / size;
    }
    out.push((current, begins));
    out
}

/// The timeline segment `n` must come from: the newest one that had begun
/// by then (a new timeline's first segment holds its parent's WAL up to
/// the switch too).
fn timeline_of(history: &[(u32, u64)], n: u64) -> u32 {
    history.iter().rev().find(|(_, begins)| *begins <= n).map_or(1, |(t, _)| *t)
}

/// Waits until no segment up to `last` waits to be archived on `primary`
/// (its `.ready` files); says what pg_stat_archiver reports either way.
async fn archived_through(primary: &Host, last: u64, per_log: u64, last_name: &str) -> Result<String> {
    let ready = "SELECT coalesce(string_agg(name, ' '), '') FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'";
    let archiver =
        "SELECT format('archived %s, failed %s (last failed: %s)', archived_count, failed_count, coalesce(last_failed_wal, 'none')) FROM pg_stat_archiver";
    let what = format!("{} to archive every segment through {last_name}", primary.name);
    poll_until(&what, "no such segment .ready in pg_wal/archive_status", Deadline::standard(), || async {
        let names = primary.safe_psql(ready).await?;
        let stats = primary.safe_psql(archiver).await?;
        let pending: Vec<&str> = names.split_whitespace().filter(|n| Segment::parse(n, per_log).is_some_and(|s| s.position <= last)).collect();
        Ok(if pending.is_empty() {
            Probe::Ready(format!("nothing through {last_name} waits to be archived on {} ({stats})", primary.name))
        } else {
            Probe::NotYet(format!("{} waiting: {}; {stats}", pending.len(), pending.join(" ")))
        })
    })
    .await
}

/// The server's WAL segment size in bytes (16 MiB unless initdb was told otherwise).
async fn wal_segment_size(primary: &Host) -> Result<u64> {
    let size = primary.safe_psql("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'").await?;
    size.parse().ok().filter(|s| *s > 0).ok_or_else(|| Error::Check(format!("wal_segment_size on {} reads `{size}`", primary.name)))
}

/// The segments in the archive id `id` (`.partial` files and history aside),
/// from `pgbackrest repo-ls --recurse`.
async fn archived(host: &Host, stanza: &str, repo: u8, id: &str, per_log: u64) -> Result<BTreeSet<Segment>> {
    let ls = Br::new(BrCommand::RepoLs).stanza(stanza).opt("repo", repo).opt("output", "json").flag("recurse").arg(format!("archive/{stanza}/{id}"));
    let out = host.pgbackrest(ls).await?;
    let listing: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| Error::Check(format!("repo-ls on {} is not JSON: {e}", host.name)))?;
    let names = listing.as_object().into_iter().flat_map(|m| m.keys());
    Ok(names.filter_map(|path| segment_of(path)).filter_map(|s| Segment::parse(s, per_log)).collect())
}

/// The segment a file of the archive holds: `.../000000010000000000000003-<sha1>.gz` (not `.partial`).
fn segment_of(path: &str) -> Option<&str> {
    let file = path.rsplit('/').next()?;
    let (name, rest) = file.split_at_checked(24)?;
    (name.bytes().all(|b| b.is_ascii_hexdigit()) && rest.starts_with('-')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_number_across_logs_and_partials_do_not_count() {
        let p = |n: &str| Segment::parse(n, 256).map(|s| (s.timeline, s.position));
        assert_eq!(p("000000010000000000000003"), Some((1, 3)));
        assert_eq!(p("0000000200000001000000FF"), Some((2, 511)));
        assert_eq!(p("000000010000000200000000"), Some((1, 512)), "after ...01FF comes ...0200");
        assert_eq!(p("00000002.history"), None);
        assert_eq!(Segment { timeline: 2, position: 511 }.name(256), "0000000200000001000000FF");
        let seg = "15-1/0000000100000000/000000010000000000000003-bc8db640b2c4da9464f195f04cdbe45308136476.gz";
        assert_eq!(segment_of(seg), Some("000000010000000000000003"));
        assert_eq!(segment_of("0000000100000000/000000010000000000000004.partial-0123456789abcdef0123456789abcdef01234567.gz"), None);
        assert_eq!(segment_of("00000002.history"), None);
        assert_eq!(segment_of("0000000100000000"), None, "a directory");
    }

    #[test]
    fn each_position_comes_from_the_timeline_that_had_begun_by_then() {
        // Timeline 3 after a switch from 1 at 0/3000100 and from 2 at 0/5000000.
        let h = parse_history("1\t0/3000100\tno recovery target specified\n\n2\t0/5000000\tbefore 2000-01-01\n", 3, 16 << 20);
        assert_eq!(h, [(1, 0), (2, 3), (3, 5)]);
        let t: Vec<u32> = (1..=6).map(|n| timeline_of(&h, n)).collect();
        assert_eq!(t, [1, 1, 2, 2, 3, 3], "the switch segment is the new timeline's; an abandoned branch's later segments never count");
    }
}
