//! What a fault cost: the commits a background writer saw acknowledged,
//! looked for on the host that should hold them.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Host, Hosts};
use crate::outcome::{Figures, Unit};

/// A background writer (a `load` step) is stopped, and every commit it
/// saw acknowledged is looked for on `host`: the acknowledged commits
/// missing there are what was lost. Reports acknowledged, lost and
/// unknown commits (sent, never answered) and the failover gap (last
/// acknowledged commit on the first host to the first on another).
/// Writes nothing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Writes {
    /// The writer's name (`load.writer`).
    pub writer: String,
    /// Where the rows must be: the primary after the fault.
    pub host: String,
    /// How many acknowledged commits may be missing. Left out, the
    /// number is only reported (asynchronous replication may lose some).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lost: Option<u64>,
}

impl Proof for Writes {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![pg("host", &self.host)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        writes(lab, &self.writer, lab.host(&self.host)?, self.max_lost).await
    }
}

/// Ids shown in a failure, at most.
const SHOWN: usize = 10;

/// What a fault cost a background writer of the lab (`load = { writer }`):
/// acknowledged commits missing on `host`, unknown outcomes, the failover
/// gap; fails when more than `max_lost` are lost.
pub async fn writes<L: Hosts>(lab: &L, writer: &str, host: &Host, max_lost: Option<u64>) -> Result<Evidence> {
    let mut figures = Figures::default();
    let (table, log) = lab.workloads().stop(writer).await?;
    let present: BTreeSet<i64> = host.safe_psql(&format!("SELECT id FROM {table}")).await?.lines().filter_map(|l| l.parse().ok()).collect();
    let lost: Vec<i64> = log.acked.iter().map(|a| a.id).filter(|id| !present.contains(id)).collect();
    let unknown_committed = log.unknown.iter().filter(|id| present.contains(id)).count();
    figures.push("acknowledged", log.acked.len() as f64, Unit::Count);
    figures.push("lost", lost.len() as f64, Unit::Count);
    figures.push("unknown", log.unknown.len() as f64, Unit::Count);
    figures.push("unknown_committed", unknown_committed as f64, Unit::Count);
    let gap = log.failover_gap();
    if let Some(g) = gap {
        figures.push("failover_gap", g.as_secs_f64() * 1000.0, Unit::Ms);
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
        _ => Ok(Evidence::new(found).with(figures)),
    }
}
