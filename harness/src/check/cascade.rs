//! A cascading standby (PostgreSQL's 001_stream_rep): a standby fed by
//! another standby, not by the primary.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Host, Hosts, LsnKind};

/// The chain primary → middle → standby as PostgreSQL reports it: the
/// primary's only streaming walsender is to `middle`, `middle` (itself in
/// recovery) streams to `standby`, and `standby` (in recovery) streams from
/// `middle`'s address; then a row written on the primary reaches both, and
/// every table of every database is equal on all three. Writes table
/// `pglab_cascade` on the primary, then drops it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cascade {
    /// The host that takes writes.
    pub primary: String,
    /// The standby of the primary that feeds the cascade.
    pub middle: String,
    /// The standby of `middle`.
    pub standby: String,
}

impl Proof for Cascade {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![pg("primary", &self.primary), pg("middle", &self.middle), pg("standby", &self.standby)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        cascade(lab.host(&self.primary)?, lab.host(&self.middle)?, lab.host(&self.standby)?).await
    }
}

/// Who a host's walsenders stream to, by address, sorted.
async fn streams_to(h: &Host) -> Result<Vec<String>> {
    let rows = h.safe_psql("SELECT client_addr FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1").await?;
    Ok(rows.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

/// The cascade primary → middle → standby, proven from each server's own
/// view and by a row that travels it.
pub async fn cascade(primary: &Host, middle: &Host, standby: &Host) -> Result<Evidence> {
    for h in [middle, standby] {
        if h.safe_psql("SELECT pg_is_in_recovery()").await? != "t" {
            return Err(Error::Check(format!("{} is not in recovery: not a standby of the cascade", h.name)));
        }
    }
    let from_primary = streams_to(primary).await?;
    if from_primary != [middle.ip.to_string()] {
        return Err(Error::Check(format!(
            "{} streams to [{}], not to {} ({}) alone: the cascade's first link is not as claimed",
            primary.name,
            from_primary.join(", "),
            middle.name,
            middle.ip
        )));
    }
    let from_middle = streams_to(middle).await?;
    if from_middle != [standby.ip.to_string()] {
        return Err(Error::Check(format!(
            "{} does not stream to {} ({}) alone; it streams to [{}]",
            middle.name,
            standby.name,
            standby.ip,
            from_middle.join(", ")
        )));
    }
    let upstream = standby.safe_psql("SELECT coalesce(sender_host, '?') || '|' || status FROM pg_stat_wal_receiver").await?;
    if upstream != format!("{}|streaming", middle.ip) {
        return Err(Error::Check(format!("{}'s WAL receiver is `{upstream}`, not streaming from {} ({})", standby.name, middle.name, middle.ip)));
    }
    primary.safe_psql("DROP TABLE IF EXISTS pglab_cascade; CREATE TABLE pglab_cascade (id int PRIMARY KEY); INSERT INTO pglab_cascade VALUES (1)").await?;
    let target = primary.lsn(LsnKind::Write).await?;
    primary.wait_for_catchup(middle, LsnKind::Replay, Some(target)).await?;
    middle.wait_for_catchup(standby, LsnKind::Replay, Some(target)).await?;
    let seen = standby.safe_psql("SELECT count(*) FROM pglab_cascade").await?;
    if seen != "1" {
        return Err(Error::Check(format!("the row written on {} is not on {} after it replayed {target}", primary.name, standby.name)));
    }
    // Compared while nothing writes: both replayed past the row.
    let on_middle = super::replication::same_data(primary, middle).await?;
    let on_standby = super::replication::same_data(primary, standby).await?;
    primary.safe_psql("DROP TABLE pglab_cascade").await?;
    Ok(format!(
        "{} → {} → {}: {} streams to {} only, {} to {}; a row reached {} through {} ({target}); {on_middle}; {on_standby}",
        primary.name, middle.name, standby.name, primary.name, middle.name, middle.name, standby.name, standby.name, middle.name
    )
    .into())
}
