//! Synchronous replication (PostgreSQL's 007_sync_rep): how the primary
//! ranks its standbys under `synchronous_standby_names`, and that a commit
//! waits while no synchronous standby can confirm it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Cmd, Host, Hosts};
use crate::outcome::{Figures, Unit};
use crate::time::{poll_until, Deadline, Probe};

/// `pg_stat_replication.sync_state`, as PostgreSQL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Not a synchronous standby.
    Async,
    /// Next in line under `FIRST`, should a synchronous one go.
    Potential,
    /// Synchronous under `FIRST`.
    Sync,
    /// A candidate under `ANY`: any N of them confirm a commit.
    Quorum,
}

impl SyncState {
    fn name(self) -> &'static str {
        match self {
            SyncState::Async => "async",
            SyncState::Potential => "potential",
            SyncState::Sync => "sync",
            SyncState::Quorum => "quorum",
        }
    }
}

/// Sets `synchronous_standby_names` on `primary` (ALTER SYSTEM, reload),
/// then: each standby in `states`, found by its address in
/// `pg_stat_replication`, has that `sync_state`; and, when `pause` names
/// hosts, with their PostgreSQL paused (every `postgres` process stopped
/// with SIGSTOP) a commit on the primary waits (its backend in wait event
/// `SyncRep`, its row invisible to another session) until `resume` goes
/// on (SIGCONT), and then returns. Writes table `pglab_sync` on the
/// primary, then drops it; leaves the setting as given.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncRep {
    /// The primary.
    pub primary: String,
    /// `synchronous_standby_names`, e.g. `FIRST 1 (standby, standby2)`.
    pub names: String,
    /// Each standby's `sync_state`, by host: `{ standby = "sync", standby2 = "potential" }`.
    pub states: BTreeMap<String, SyncState>,
    /// Hosts whose PostgreSQL is paused (SIGSTOP) while a commit is made: it must wait.
    #[serde(default)]
    pub pause: Vec<String>,
    /// The paused host that goes on first (SIGCONT): the commit must then return.
    #[serde(default)]
    pub resume: Option<String>,
}

impl Proof for SyncRep {
    fn uses(&self) -> Vec<Uses<'_>> {
        let mut u = vec![pg("primary", &self.primary)];
        u.extend(self.states.keys().map(|h| pg("states", h)));
        u.extend(self.pause.iter().map(|h| pg("pause", h)));
        u
    }
    fn problems(&self) -> Vec<(&'static str, String)> {
        match (&self.resume, self.pause.is_empty()) {
            (Some(r), _) if !self.pause.contains(r) => vec![("resume", format!("`{r}` is not in `pause`: only a paused host can go on"))],
            (None, false) => vec![("resume", "`pause` needs `resume`: the paused host that goes on first and lets the commit return".to_string())],
            _ => Vec::new(),
        }
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        let states = self.states.iter().map(|(h, s)| Ok((lab.host(h)?, *s))).collect::<Result<Vec<_>>>()?;
        let pause = self.pause.iter().map(|h| lab.host(h)).collect::<Result<Vec<_>>>()?;
        let resume = self.resume.as_deref().map(|h| lab.host(h)).transpose()?;
        sync_rep(lab.host(&self.primary)?, &self.names, &states, &pause, resume).await
    }
}

/// The primary's synchronous standbys under `names`: each of `states` has
/// its `sync_state`; with `pause` paused a commit waits until `resume` (one
/// of them) goes on. Check `sync_rep` of a scenario.
pub async fn sync_rep(primary: &Host, names: &str, states: &[(&Host, SyncState)], pause: &[&Host], resume: Option<&Host>) -> Result<Evidence> {
    primary.safe_psql(&format!("ALTER SYSTEM SET synchronous_standby_names = '{}'", names.replace('\'', "''"))).await?;
    primary.safe_psql("SELECT pg_reload_conf()").await?;
    let ranked = ranked_as(primary, states).await?;
    let mut said = format!("synchronous_standby_names = '{names}': {ranked}");
    let mut figures = Figures::default();
    if let Some(resume) = resume {
        primary.safe_psql("CREATE TABLE IF NOT EXISTS pglab_sync (id int)").await?;
        let waited = commit_waits(primary, pause, resume).await;
        for h in pause {
            signal_postgres(h, "CONT").await.ok();
        }
        let returned = waited?;
        primary.safe_psql("DROP TABLE pglab_sync").await?;
        let paused: Vec<&str> = pause.iter().map(|h| h.name.as_str()).collect();
        said.push_str(&format!(
            "; with {} paused (SIGSTOP) a commit waited (SyncRep, its row invisible to another session) and returned {} ms after {} went on",
            paused.join(", "),
            returned.as_millis(),
            resume.name
        ));
        figures.push("returned_after_resume", returned.as_secs_f64() * 1000.0, Unit::Ms);
    }
    Ok(Evidence::new(said).with(figures))
}

/// Polls until every standby has its state; says them by name.
async fn ranked_as(primary: &Host, states: &[(&Host, SyncState)]) -> Result<String> {
    let mut want: Vec<(String, &str)> = states.iter().map(|(h, s)| (h.ip.to_string(), s.name())).collect();
    want.sort();
    let ips: Vec<String> = want.iter().map(|(ip, _)| format!("'{ip}'")).collect();
    let q = format!(
        "SELECT coalesce(string_agg(host(client_addr) || '=' || sync_state, ' ' ORDER BY host(client_addr)), '') \
         FROM pg_stat_replication WHERE host(client_addr) IN ({})",
        ips.join(", ")
    );
    let expected: Vec<String> = want.iter().map(|(ip, s)| format!("{ip}={s}")).collect();
    let named = |text: &str| states.iter().fold(text.to_string(), |t, (h, _)| t.replace(&format!("{}=", h.ip), &format!("{} ({})=", h.name, h.ip)));
    match primary.poll_query_until(&q, &expected.join(" "), Deadline::standard()).await {
        Ok(_) => Ok(named(&expected.join(", "))),
        Err(Error::Timeout(t)) => {
            Err(Error::Check(format!("sync_state on {}: expected {}, got {}", primary.name, named(&expected.join(", ")), named(&t.last))))
        }
        Err(e) => Err(e),
    }
}

/// Pauses `pause`, commits on a connection of its own, proves the commit
/// waits, lets `resume` go on; how long the commit took to return after that.
async fn commit_waits(primary: &Host, pause: &[&Host], resume: &Host) -> Result<Duration> {
    for h in pause {
        signal_postgres(h, "STOP").await?;
    }
    let client = primary.client().await?;
    let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.map_err(|e| Error::Check(format!("pg_backend_pid(): {e}")))?.get(0);
    let commit = tokio::spawn(async move { client.simple_query("INSERT INTO pglab_sync VALUES (1)").await.map(|_| ()) });
    let paused: Vec<&str> = pause.iter().map(|h| h.name.as_str()).collect();
    let q = format!("SELECT coalesce(wait_event, '') FROM pg_stat_activity WHERE pid = {pid}");
    poll_until("the commit to wait for a synchronous standby", "SyncRep", Deadline::after(Duration::from_secs(30)), || async {
        if commit.is_finished() {
            return Err(Error::Check(format!(
                "the commit on {} returned with {} paused: it did not wait for a synchronous standby",
                primary.name,
                paused.join(", ")
            )));
        }
        let event = primary.safe_psql(&q).await?;
        Ok(if event == "SyncRep" { Probe::Ready(()) } else { Probe::NotYet(event) })
    })
    .await?;
    let seen = primary.safe_psql("SELECT count(*) FROM pglab_sync").await?;
    if seen != "0" || commit.is_finished() {
        return Err(Error::Check(format!("the waiting commit on {} was visible ({seen} row) or returned before a standby went on", primary.name)));
    }
    signal_postgres(resume, "CONT").await?;
    let resumed = Instant::now();
    match tokio::time::timeout(crate::time::default_timeout(), commit).await {
        Ok(Ok(Ok(()))) => Ok(resumed.elapsed()),
        Ok(Ok(Err(e))) => Err(Error::Check(format!("the waiting commit on {} failed: {e}", primary.name))),
        Ok(Err(e)) => Err(Error::Check(format!("the waiting commit's task: {e}"))),
        Err(_) => Err(Error::Check(format!("the commit on {} did not return after {} went on", primary.name, resume.name))),
    }
}

/// Sends `sig` to every PostgreSQL process of `host`: a paused server, not
/// a frozen host. `docker pause` was the first way, and cgroup v1's freezer
/// failed under load here ("unable to freeze"), leaving a container half
/// frozen while the engine called it running.
async fn signal_postgres(host: &Host, sig: &str) -> Result<()> {
    host.exec(Cmd::new(["pkill", &format!("-{sig}"), "-x", "postgres"]).user("root")).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(pause: &[&str], resume: Option<&str>) -> SyncRep {
        SyncRep {
            primary: "primary".into(),
            names: "FIRST 1 (standby)".into(),
            states: BTreeMap::from([("standby".to_string(), SyncState::Sync)]),
            pause: pause.iter().map(|h| h.to_string()).collect(),
            resume: resume.map(str::to_string),
        }
    }

    #[test]
    fn only_a_paused_host_can_go_on_and_a_pause_needs_one() {
        assert_eq!(decl(&["standby"], Some("standby2")).problems()[0].0, "resume");
        assert_eq!(decl(&["standby"], None).problems()[0].0, "resume");
        assert!(decl(&["standby"], Some("standby")).problems().is_empty());
        assert!(decl(&[], None).problems().is_empty());
    }
}
