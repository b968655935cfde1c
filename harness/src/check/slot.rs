//! A physical replication slot (PostgreSQL's 001_stream_rep and
//! 019_replslot_limit): what it holds back, whether a standby uses it, and
//! whether `max_slot_wal_keep_size` has cost it its WAL.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Host, Hosts};
use crate::outcome::{Figures, Unit};

/// `pg_replication_slots.wal_status`, as PostgreSQL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WalStatus {
    /// Its WAL is within `max_wal_size`.
    Reserved,
    /// Past `max_wal_size`, kept for the slot (or `wal_keep_size`).
    Extended,
    /// About to be lost at the next checkpoint.
    Unreserved,
    /// Removed: a standby can no longer stream through the slot.
    Lost,
}

impl WalStatus {
    fn name(self) -> &'static str {
        match self {
            WalStatus::Reserved => "reserved",
            WalStatus::Extended => "extended",
            WalStatus::Unreserved => "unreserved",
            WalStatus::Lost => "lost",
        }
    }
}

/// The slot `name` on `host` as `pg_replication_slots` reports it: a
/// physical slot, used by a walsender (`active`) streaming to `standby`
/// (by its address in `pg_stat_replication`), with the `wal_status` given.
/// Says how many bytes of WAL it holds back (`pg_current_wal_lsn()` minus
/// its `restart_lsn`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Slot {
    /// The host that has the slot (the primary).
    pub host: String,
    /// The slot's name.
    pub name: String,
    /// Whether a walsender uses it now.
    #[serde(default)]
    pub active: Option<bool>,
    /// The standby that streams through it (implies `active = true`).
    #[serde(default)]
    pub standby: Option<String>,
    /// What `wal_status` must say.
    #[serde(default)]
    pub wal_status: Option<WalStatus>,
}

impl Proof for Slot {
    fn uses(&self) -> Vec<Uses<'_>> {
        let mut u = vec![pg("host", &self.host)];
        u.extend(self.standby.as_deref().map(|s| pg("standby", s)));
        u
    }
    fn problems(&self) -> Vec<(&'static str, String)> {
        match (self.active, &self.standby) {
            (Some(false), Some(s)) => vec![("active", format!("`active = false` with `standby = \"{s}\"`: a standby streams through an active slot"))],
            _ => Vec::new(),
        }
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        let standby = self.standby.as_deref().map(|s| lab.host(s)).transpose()?;
        let want = Want { active: self.active.or(standby.map(|_| true)), standby, wal_status: self.wal_status };
        slot(lab.host(&self.host)?, &self.name, want).await
    }
}

/// What [`slot`] asserts; `None` asserts nothing.
#[derive(Clone, Copy, Default)]
pub struct Want<'a> {
    /// A walsender uses it, or none does.
    pub active: Option<bool>,
    /// This standby streams through it.
    pub standby: Option<&'a Host>,
    /// Its `wal_status`.
    pub wal_status: Option<WalStatus>,
}

/// The physical slot `name` on `host`, as `want` says it is.
pub async fn slot(host: &Host, name: &str, want: Want<'_>) -> Result<Evidence> {
    let q = format!(
        "SELECT slot_type, active, coalesce(wal_status, ''), coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, -1), \
         coalesce((SELECT host(client_addr) FROM pg_stat_replication r WHERE r.pid = s.active_pid), '') \
         FROM pg_replication_slots s WHERE slot_name = '{}'",
        name.replace('\'', "''")
    );
    let row = host.safe_psql(&q).await?;
    if row.is_empty() {
        let all = host.safe_psql("SELECT coalesce(string_agg(slot_name, ', '), 'none') FROM pg_replication_slots").await?;
        return Err(Error::Check(format!("no replication slot `{name}` on {} (its slots: {all})", host.name)));
    }
    let f: Vec<&str> = row.split('|').collect();
    let (kind, active, status, retained, to) = (f[0], f[1] == "t", f[2], f[3].parse::<i64>().unwrap_or(-1), f[4]);
    let at = format!("slot `{name}` on {}", host.name);
    if kind != "physical" {
        return Err(Error::Check(format!("{at} is a {kind} slot, not a physical one")));
    }
    if let Some(a) = want.active.filter(|a| *a != active) {
        let (was, is) = if a { ("active", "inactive: no walsender uses it") } else { ("inactive", "active: a walsender uses it") };
        return Err(Error::Check(format!("{at} is {is}, not {was} (wal_status {status})")));
    }
    if let Some(s) = want.standby.filter(|s| to != s.ip.to_string()) {
        return Err(Error::Check(format!("{at} streams to `{to}`, not to {} ({})", s.name, s.ip)));
    }
    if let Some(w) = want.wal_status.filter(|w| w.name() != status) {
        return Err(Error::Check(format!("{at}: wal_status is `{status}`, expected `{}`", w.name())));
    }
    let holds = if retained < 0 { "holds no WAL (no restart_lsn)".to_string() } else { format!("holds back {:.1} MiB of WAL", retained as f64 / 1048576.0) };
    let user = match (active, want.standby) {
        (true, Some(s)) => format!("active, streaming to {} ({to})", s.name),
        (true, None) => format!("active (to {to})"),
        (false, _) => "inactive".to_string(),
    };
    let mut figures = Figures::default();
    figures.push("retained", retained.max(0) as f64, Unit::Bytes);
    Ok(Evidence::new(format!("{at}: physical, {user}, wal_status {status}, {holds}")).with(figures))
}
