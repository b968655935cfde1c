//! Point-in-time recovery to a commit an application saw acknowledged: one
//! of a background writer's commits, drawn at random after the newest
//! backup, restored into a host of its own, which must hold exactly the
//! writer's rows up to that commit. What `pglab chaos` asks of a lab after
//! its faults: any acknowledged point is a point the archive can reach.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::pitr::{archive_now, clone_client_setup, newest_backup, restore_to, rows_there, timeline, Target};
use super::{any, eq, ms_since, pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Host, Hosts};
use crate::outcome::{Figures, Unit};
use crate::vocab::PitrTarget;

/// A background writer (a `load` step) is stopped; one of the commits it
/// saw acknowledged by `primary` after the newest backup ended is drawn
/// (from `seed`), that backup restored into `target_host` up to the
/// commit's transaction (`recovery_target_xid`, inclusive) and promoted:
/// it must hold exactly the writer's rows up to that commit, none after
/// it. Rows whose commit the writer never heard of are left out of the
/// comparison up to the target (committed or not, either is right).
/// Replaces `target_host`'s cluster; writes nothing on the primary but a
/// WAL switch.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PitrAcked {
    /// The writer's name (`load.writer`).
    pub writer: String,
    /// The host the writer committed on, which archives.
    pub primary: String,
    /// Host restored into; it ends promoted.
    pub target_host: String,
    /// For a spare host: the host whose pgBackRest client setup it gets
    /// first, as for `pitr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like: Option<String>,
    /// The pgBackRest stanza (`{stanza}` when the scenario has that var).
    pub stanza: String,
    /// Draws the commit. Left out, a fresh seed each run; the evidence
    /// names it, so a failing draw can be repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Proof for PitrAcked {
    fn uses(&self) -> Vec<Uses<'_>> {
        let mut u = vec![pg("primary", &self.primary), pg("target_host", &self.target_host)];
        u.extend(self.like.as_deref().map(|l| any("like", l)));
        u
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        let like = self.like.as_deref().filter(|l| *l != self.target_host).map(|l| lab.host(l)).transpose()?;
        let seed = self.seed.unwrap_or_else(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
        pitr_acked(lab, &self.writer, lab.host(&self.primary)?, lab.host(&self.target_host)?, like, &self.stanza, seed).await
    }
}

/// Point-in-time recovery to an acknowledged commit of `writer`, drawn with
/// `seed` among those `primary` acknowledged after the newest backup: the
/// backup restored into `host` (given `like`'s client setup first) up to
/// it, promoted, holding exactly the writer's rows up to it.
pub async fn pitr_acked<L: Hosts>(lab: &L, writer: &str, primary: &Host, host: &Host, like: Option<&Host>, stanza: &str, seed: u64) -> Result<Evidence> {
    let (table, log) = lab.workloads().stop(writer).await?;
    if let Some(like) = like {
        clone_client_setup(like, host).await?;
    }
    let (set, stopped) = newest_backup(host, stanza).await?;
    // Rows the server stamped a second or more after the backup ended, and the writer saw acknowledged.
    let acked: BTreeSet<i64> = log.acked.iter().filter(|a| a.host == primary.name).map(|a| a.id).collect();
    let after: Vec<i64> = ids(primary, &format!("SELECT id FROM {table} WHERE at > to_timestamp({stopped} + 1) ORDER BY id")).await?;
    let candidates: Vec<i64> = after.into_iter().filter(|id| acked.contains(id)).collect();
    let Some(&pick) = candidates.get((mix(seed) % candidates.len().max(1) as u64) as usize) else {
        return Err(Error::Check(format!("writer {writer}: no commit acknowledged by {} after backup {set} ended ({})", primary.name, log.summary())));
    };
    let unknown = log.unknown.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    // Unknown outcomes up to the target are not compared; after it none may be there.
    let compared = format!("NOT (id <= {pick} AND id = ANY('{{{unknown}}}'::bigint[]))");
    let xid = primary.safe_psql(&format!("SELECT xmin FROM {table} WHERE id = {pick}")).await?;
    let expected_ids = rows_there(primary, &table, &format!("id <= {pick} AND {compared}")).await?;
    archive_now(primary).await?;
    let target = Target { kind: PitrTarget::Xid, value: xid.clone(), expected_ids };
    let started = Instant::now();
    restore_to(host, stanza, &set, &target).await?;
    let restore_ms = ms_since(started);
    let got = rows_there(host, &table, &compared).await?;
    let what = format!("rows after restore to acknowledged commit {pick} (xid {xid}, seed {seed})");
    eq(&what, summarize(&got).as_str(), summarize(&target.expected_ids).as_str())?;
    let (tli, primary_tli) = (timeline(host).await?, timeline(primary).await?);
    if tli <= primary_tli {
        return Err(Error::Check(format!("{what}: timeline {tli} is not newer than the primary's {primary_tli}")));
    }
    let mut figures = Figures::default();
    figures.push("restore_acked", restore_ms, Unit::Ms);
    let rows = got.split(',').filter(|s| !s.is_empty()).count();
    Ok(Evidence::new(format!(
        "writer {writer}: commit {pick} drawn (seed {seed}) of {} acknowledged after backup {set}; restored into {} to xid {xid}: {rows} rows, exactly those up to it, timeline {tli}, {:.1}s",
        candidates.len(),
        host.name,
        restore_ms / 1000.0
    ))
    .with(figures))
}

async fn ids(h: &Host, sql: &str) -> Result<Vec<i64>> {
    Ok(h.safe_psql(sql).await?.lines().filter_map(|l| l.parse().ok()).collect())
}

/// A list of ids as runs (`1-40,42,44-90`): thousands of rows, readable
/// where they differ. What is no list (no table there) is shown as it is.
fn summarize(list: &str) -> String {
    let Ok(ids) = list.split(',').filter(|s| !s.is_empty()).map(str::parse).collect::<std::result::Result<Vec<i64>, _>>() else { return list.to_string() };
    let mut runs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        runs.push(if j == i { ids[i].to_string() } else { format!("{}-{}", ids[i], ids[j]) });
        i = j + 1;
    }
    runs.join(",")
}

/// splitmix64: neighbouring seeds draw far-apart commits.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shown_as_runs_so_a_missing_one_stands_out() {
        assert_eq!(summarize("1,2,3,5,7,8"), "1-3,5,7-8");
        assert_eq!(summarize(""), "");
        assert_eq!(summarize("(no table t: recovery stopped before it was made)"), "(no table t: recovery stopped before it was made)");
        assert_ne!(summarize("1,2,3,4"), summarize("1,2,3"));
    }

    #[test]
    fn neighbouring_seeds_draw_different_commits() {
        let picks: BTreeSet<u64> = (0..8).map(|s| mix(s) % 100).collect();
        assert!(picks.len() >= 6, "{picks:?}");
    }
}
