//! Point-in-time recovery, as PostgreSQL's 003_recovery_targets does it:
//! batches of rows with a target recorded between them, then a restore to
//! each target into a host of its own, checked for its exact rows.

use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{any, drop_and_checkpoint, eq, ms_since, pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Br, BrCommand, Cmd, Host, Hosts, StopMode};
use crate::outcome::{Figures, Unit};
use crate::time::Deadline;
use crate::vocab::PitrTarget;

/// Point-in-time recovery: on the primary, batches of rows with a target
/// recorded after each (a restore point `pglab_pitr_N`, a time, an xid,
/// an LSN), then more rows and a DELETE; then for each target a restore
/// of the newest backup (fixed when the check starts) into `target_host`,
/// promoted, must hold exactly the rows of its target on a new timeline.
/// Writes table `pglab_pitr` on the primary (dropped at the end, with a
/// checkpoint) and replaces `target_host`'s cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pitr {
    /// The host that takes the writes the targets are recorded between.
    pub primary: String,
    /// Host restored into; it ends promoted. A spare host keeps the
    /// standby a standby.
    pub target_host: String,
    /// For a spare host: the host whose pgBackRest client setup the target
    /// gets first (/etc/pgbackrest.conf and ~postgres/.ssh: keys and
    /// known_hosts). pgBackRest itself is installed there if missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like: Option<String>,
    /// The pgBackRest stanza (`{stanza}` when the scenario has that var).
    pub stanza: String,
    /// Which kinds of target to restore to, in this order.
    #[serde(default = "default_targets")]
    pub targets: Vec<PitrTarget>,
}

impl Proof for Pitr {
    fn uses(&self) -> Vec<Uses<'_>> {
        let mut u = vec![pg("primary", &self.primary), pg("target_host", &self.target_host)];
        u.extend(self.like.as_deref().map(|l| any("like", l)));
        u
    }
    fn problems(&self) -> Vec<(&'static str, String)> {
        match self.targets.is_empty() {
            true => vec![("targets", "no target to restore to: the check would prove nothing (name at least one of name, time, xid, lsn)".into())],
            false => Vec::new(),
        }
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        let like = self.like.as_deref().filter(|l| *l != self.target_host).map(|l| lab.host(l)).transpose()?;
        pitr(lab.host(&self.primary)?, lab.host(&self.target_host)?, like, &self.stanza, &self.targets).await
    }
}

fn default_targets() -> Vec<PitrTarget> {
    PitrTarget::ALL.to_vec()
}

/// A point to recover to, and the rows that exist there.
pub(super) struct Target {
    pub kind: PitrTarget,
    pub value: String,
    pub expected_ids: String,
}

const BATCH: i64 = 10;

/// Point-in-time recovery of each target kind: rows and a target made on
/// `primary`, the newest backup restored into `host` (given `like`'s
/// pgBackRest client setup first), promoted, holding exactly the target's
/// rows on a new timeline. Restore times are its figures.
pub async fn pitr(primary: &Host, host: &Host, like: Option<&Host>, stanza: &str, kinds: &[PitrTarget]) -> Result<Evidence> {
    let mut figures = Figures::default();
    if let Some(like) = like {
        clone_client_setup(like, host).await?;
    }
    // Chosen before the targets exist: every target lies after its end.
    let (set, _) = newest_backup(host, stanza).await?;
    let primary_tli = timeline(primary).await?;
    let targets = record_targets(primary, kinds).await?;
    let mut lines = Vec::new();
    for t in &targets {
        let started = Instant::now();
        restore_to(host, stanza, &set, t).await?;
        let restore_ms = ms_since(started);
        let got = rows_there(host, "pglab_pitr", "true").await?;
        eq(&format!("rows after restore to {} {}", t.kind, t.value), got.as_str(), t.expected_ids.as_str())?;
        let tli = timeline(host).await?;
        if tli <= primary_tli {
            return Err(Error::Check(format!("{} target: timeline {tli} is not newer than the primary's {primary_tli}", t.kind)));
        }
        figures.push(format!("restore_{}", t.kind), restore_ms, Unit::Ms);
        let rows = got.split(',').filter(|s| !s.is_empty()).count();
        lines.push(format!("{}: {rows} rows, timeline {tli}, {:.1}s", t.kind, restore_ms / 1000.0));
    }
    Ok(Evidence::new(format!("restored {set} into {}: {}", host.name, lines.join("; "))).with(figures))
}

/// Writes a batch per target and records the target after it; then a batch
/// after every target and a DELETE of everything (none of it may come back),
/// and waits until the last segment is archived.
async fn record_targets(primary: &Host, kinds: &[PitrTarget]) -> Result<Vec<Target>> {
    primary.safe_psql("DROP TABLE IF EXISTS pglab_pitr; CREATE TABLE pglab_pitr (id int PRIMARY KEY, batch int)").await?;
    let mut targets = Vec::new();
    let mut next_id = 1;
    for (i, kind) in kinds.iter().enumerate() {
        let (first, last) = (next_id, next_id + BATCH - 1);
        next_id += BATCH;
        let insert = format!("BEGIN; INSERT INTO pglab_pitr SELECT g, {i} FROM generate_series({first}, {last}) g; SELECT pg_current_xact_id(); COMMIT;");
        let xid = primary.safe_psql(&insert).await?;
        let value = match kind {
            PitrTarget::Name => {
                let name = format!("pglab_pitr_{i}");
                primary.safe_psql(&format!("SELECT pg_create_restore_point('{name}')")).await?;
                name
            }
            PitrTarget::Time => primary.safe_psql("SELECT clock_timestamp()").await?,
            PitrTarget::Xid => xid,
            PitrTarget::Lsn => primary.safe_psql("SELECT pg_current_wal_lsn()").await?,
        };
        let expected_ids = primary.safe_psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM pglab_pitr").await?;
        targets.push(Target { kind: *kind, value, expected_ids });
    }
    primary.safe_psql(&format!("INSERT INTO pglab_pitr SELECT g, -1 FROM generate_series({next_id}, {}) g", next_id + BATCH - 1)).await?;
    primary.safe_psql("DELETE FROM pglab_pitr").await?;
    archive_now(primary).await?;
    // Done with the primary: the restores only read the repository.
    drop_and_checkpoint(primary, "pglab_pitr").await?;
    Ok(targets)
}

/// Switches WAL and waits until the segment holding everything so far is archived.
pub(super) async fn archive_now(primary: &Host) -> Result<()> {
    let seg = primary.safe_psql("SELECT pg_walfile_name(pg_switch_wal())").await?;
    primary.poll_query_until(&format!("SELECT coalesce(last_archived_wal >= '{seg}', false) FROM pg_stat_archiver"), "t", Deadline::standard()).await?;
    Ok(())
}

/// Stop, restore the fixed set to the target with promote as its action,
/// start, and wait until promoted.
pub(super) async fn restore_to(host: &Host, stanza: &str, set: &str, t: &Target) -> Result<()> {
    host.stop(StopMode::Fast).await?;
    let base = Br::new(BrCommand::Restore).stanza(stanza).flag("delta").opt("set", set);
    let restore = if t.kind == PitrTarget::Lsn && !host.platform.pgbackrest_restores_to_lsn() {
        // Before 2.35 pgBackRest has no --type=lsn: PostgreSQL's own settings do the same.
        base.opt("type", "default").opt("recovery-option", format!("recovery_target_lsn={}", t.value)).opt("recovery-option", "recovery_target_action=promote")
    } else {
        base.opt("type", t.kind).opt("target", &t.value).opt("target-action", "promote")
    };
    host.pgbackrest(restore).await?;
    let promoted = async {
        host.start().await?;
        host.wait_for_promotion(Deadline::standard()).await
    }
    .await;
    match promoted {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::Check(format!("{} target {}: not promoted: {e}\n{}", t.kind, t.value, host.relevant_logs().await))),
    }
}

/// Gives `target` pgBackRest and the client setup of `like` (its
/// pgbackrest.conf, postgres' SSH keys and known hosts), so a spare host can
/// restore from the same repository. Private keys stay out of the transcript.
pub(super) async fn clone_client_setup(like: &Host, target: &Host) -> Result<()> {
    target.exec(Cmd::shell("command -v pgbackrest >/dev/null || (apt-get update -q && apt-get install -y -q pgbackrest)")).await?;
    let t = Instant::now();
    let paths = "etc/pgbackrest.conf var/lib/postgresql/.ssh";
    let packed = like.probe(&Cmd::shell(format!("tar -C / -cf - {paths} | base64 -w0"))).await?;
    if !packed.success() {
        return Err(Error::Check(format!("cannot read the pgBackRest client setup of {}: {}", like.name, packed.stderr.trim())));
    }
    let unpacked = target.probe(&Cmd::shell("base64 -d | tar -C / -xpf -").stdin(packed.stdout)).await?;
    if !unpacked.success() {
        return Err(Error::Check(format!("cannot install the pgBackRest client setup on {}: {}", target.name, unpacked.stderr.trim())));
    }
    target.note(
        "root",
        &format!("copy {}:/etc/pgbackrest.conf and ~postgres/.ssh -> {}", like.name, target.name),
        "the restore target gets the same pgBackRest client setup (contents not shown: private key)",
        t.elapsed(),
    );
    Ok(())
}

/// The ids in `table` on `host` where `filter` holds, in order and
/// comma-separated; a recovery that stopped before the table was made has
/// none to show, and says so.
pub(super) async fn rows_there(host: &Host, table: &str, filter: &str) -> Result<String> {
    if host.safe_psql(&format!("SELECT to_regclass('{table}') IS NULL")).await? == "t" {
        return Ok(format!("(no table {table}: recovery stopped before it was made)"));
    }
    host.safe_psql(&format!("SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM {table} WHERE {filter}")).await
}

/// The newest backup set's label and when it stopped (Unix seconds), so
/// restores stay on it while later backups run.
pub(super) async fn newest_backup(h: &Host, stanza: &str) -> Result<(String, i64)> {
    let info = h.backup_info(stanza).await?;
    let newest = info["backup"].as_array().and_then(|b| b.last());
    newest
        .and_then(|b| Some((b["label"].as_str()?.to_string(), b["timestamp"]["stop"].as_i64()?)))
        .ok_or_else(|| Error::Check(format!("no backup of stanza {stanza} to restore from")))
}

pub(super) async fn timeline(h: &Host) -> Result<u32> {
    let name = h.safe_psql("SELECT pg_walfile_name(pg_current_wal_lsn())").await?;
    u32::from_str_radix(&name[..8.min(name.len())], 16).map_err(|e| Error::Check(format!("timeline from {name}: {e}")))
}
