//! What a fault cost: the commits a background writer saw acknowledged,
//! looked for on the host that should hold them.

use std::collections::BTreeSet;

use super::Metrics;
use crate::error::{Error, Result};
use crate::lab::{Host, Hosts};

/// Ids shown in a failure, at most.
const SHOWN: usize = 10;

/// What a fault cost a background writer of the lab (`load = { writer }`):
/// acknowledged commits missing on `host`, unknown outcomes, the failover
/// gap; fails when more than `max_lost` are lost.
pub async fn writes<L: Hosts>(lab: &L, writer: &str, host: &Host, max_lost: Option<u64>, metrics: &mut Metrics) -> Result<String> {
    let (table, log) = lab.workloads().stop(writer).await?;
    let present: BTreeSet<i64> = host.safe_psql(&format!("SELECT id FROM {table}")).await?.lines().filter_map(|l| l.parse().ok()).collect();
    let lost: Vec<i64> = log.acked.iter().map(|a| a.id).filter(|id| !present.contains(id)).collect();
    let unknown_committed = log.unknown.iter().filter(|id| present.contains(id)).count();
    metrics.insert("acknowledged".into(), log.acked.len() as f64);
    metrics.insert("lost".into(), lost.len() as f64);
    metrics.insert("unknown".into(), log.unknown.len() as f64);
    metrics.insert("unknown_committed".into(), unknown_committed as f64);
    let gap = log.failover_gap();
    if let Some(g) = gap {
        metrics.insert("failover_gap_ms".into(), g.as_secs_f64() * 1000.0);
    }
    let mut found = format!(
        "writer {writer}: {}; on {}: {} of them missing (lost), {} of {} unknown ones committed",
        log.summary(),
        host.name,
        lost.len(),
        unknown_committed,
        log.unknown.len()
    );
    if let Some(g) = gap {
        found.push_str(&format!("; failover gap {} ms", g.as_millis()));
    }
    match max_lost {
        Some(max) if lost.len() as u64 > max => {
            let ids: Vec<String> = lost.iter().take(SHOWN).map(i64::to_string).collect();
            Err(Error::Check(format!("{found}; at most {max} may be lost; missing ids: {}{}", ids.join(", "), if lost.len() > SHOWN { ", ..." } else { "" })))
        }
        _ if log.acked.is_empty() => Err(Error::Check(format!("{found}: the writer never had a commit acknowledged"))),
        _ => Ok(found),
    }
}
