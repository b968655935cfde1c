//! Checkpoints: a lab after a step, saved once and started again by every
//! later run that asks for the same steps on the same image. The key is a
//! content hash of what made the lab (the image, pglab's own source, the
//! platform, the hosts, the given state and the steps through the point as
//! written, with the values of the variables they use), so an edit to any
//! of them makes a new checkpoint, never a stale one.
//!
//! Where the images are: the engine (`pglab-checkpoint:<key>-<host>`).
//! Where the rest is (vars, secrets, step results, transcript): a record
//! beside the labs' state, mode 0600, never in a bug bundle.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::lab::checkpoint::{self as saved, SaveTimings, SavedHost};
use crate::lab::{HostKind, Hosts, Lab};
use crate::outcome::{Fault, StepResult};
use crate::platform::Platform;
use crate::scenario::{Scenario, When};
use crate::transcript::TranscriptEntry;
use crate::vars::Vars;

/// Where a run may be saved or started from: after step `last`, with these
/// hosts (a file that extends another adds hosts its base's steps never touch;
/// they start fresh beside a restored lab).
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub last: usize,
    pub hosts: Vec<String>,
}

impl Point {
    /// The point of a run through `until` (an index) or, for a file that
    /// extends another, after the base's last step. None when the steps
    /// through it leave something a saved filesystem does not hold (a fault,
    /// a writer), a host has a tmpfs volume, a host added after the point
    /// needs a certificate from a CA the saved hosts already trust (a
    /// checkpoint keeps the CA's certificate, never its key) or holds the
    /// given state.
    pub(crate) fn of(scn: &Scenario, until: Option<usize>) -> Option<Point> {
        let last = until.or_else(|| scn.base.as_ref().and_then(|b| b.steps.checked_sub(1)))?;
        let hosts = match &scn.base {
            Some(b) if last < b.steps => &scn.hosts[..b.hosts],
            _ => &scn.hosts[..],
        };
        let volatile = (0..=last).find(|&i| leaves_unsaved(scn, i, last)).map(|i| &scn.steps[i]);
        if let Some(s) = volatile {
            tracing::info!("no checkpoint for {}: step {} leaves what a saved filesystem does not hold", scn.name, s.id.get_ref());
            return None;
        }
        if let Some(h) = hosts.iter().find(|h| !h.volumes.is_empty()) {
            tracing::info!("no checkpoint for {}: host {} has a volume", scn.name, h.name.get_ref());
            return None;
        }
        let tls = |h: &&crate::scenario::HostDecl| h.kind == Some(HostKind::S3) || h.certificate;
        let added = &scn.hosts[hosts.len()..];
        if let (Some(saved), Some(new)) = (hosts.iter().find(tls), added.iter().find(tls)) {
            let (saved, new) = (saved.name.get_ref(), new.name.get_ref());
            tracing::info!("no checkpoint for {}: {new} needs a certificate from the CA {saved} trusts, whose key no checkpoint keeps", scn.name);
            return None;
        }
        // The given state is made in the saving run only, on its own hosts.
        if let Some(g) = scn.given.as_ref().filter(|g| !hosts.iter().any(|h| h.name.get_ref() == g.host.get_ref())) {
            tracing::info!("no checkpoint for {}: the given state is on {}, a host added after the point", scn.name, g.host.get_ref());
            return None;
        }
        Some(Point { last, hosts: hosts.iter().map(|h| h.name.get_ref().clone()).collect() })
    }
}

/// Whether step `i` leaves, after step `last`, what a saved filesystem
/// does not hold: a fault or a writer. A stopped or killed postmaster does
/// not, once a later step up to `last` waited for that host's server to
/// answer again: a restored host boots it, as it was running.
fn leaves_unsaved(scn: &Scenario, i: usize, last: usize) -> bool {
    let s = &scn.steps[i];
    // A wait some platform skips proves nothing there (the key has the platform, this rule not).
    let restarted =
        || scn.steps[i + 1..=last].iter().any(|l| l.host.get_ref() == s.host.get_ref() && l.action.waits_for_postgres() && l.when == When::default());
    match s.action.fault() {
        _ if s.action.as_load().is_some() => true,
        Fault::No => false,
        _ if s.action.downs_postgres() => !restarted(),
        _ => true,
    }
}

/// Whether runs use checkpoints here: `PGLAB_CHECKPOINTS=0` turns them off.
pub(crate) fn enabled() -> bool {
    !matches!(std::env::var("PGLAB_CHECKPOINTS").as_deref(), Ok("0" | "off" | "no" | "false"))
}

/// The content hash that names the checkpoint of `scn` at `point`, on the
/// image of id `image` (an image rebuilt under the same tag is another).
pub(crate) fn key(scn: &Scenario, platform: Platform, image: &str, sets: &[(String, String)], point: &Point) -> Result<String> {
    let addr = |h: &str| super::address_of(scn, h);
    let vars = Vars::build(scn, platform, sets, &|h| addr(h).map(|a| a.to_string()).unwrap_or_default(), &mut |_| Ok("<secret>".into()))?;
    let steps = &scn.step_texts()[..=point.last];
    let given = scn.given.as_ref().map(|g| format!("{} {} {}", g.host.get_ref(), g.table, g.rows));
    // Only the variables the steps (and the given table) use: a file's other vars do not change the lab.
    let uses = |k: &str| steps.iter().chain(&given).any(|s| s.contains(&format!("{{{k}}}")));
    let used: BTreeMap<&str, String> = vars.0.iter().filter(|(k, _)| uses(k)).map(|(k, v)| (k.as_str(), v.clone())).collect();
    let hosts: Vec<String> = scn
        .hosts
        .iter()
        .filter(|h| point.hosts.contains(h.name.get_ref()))
        .map(|h| format!("{} {:?} {:?}", h.name.get_ref(), h.kind.unwrap_or_default(), addr(h.name.get_ref())))
        .collect();
    let made_of = serde_json::json!({
        "format": 1,
        "pglab": env!("PGLAB_SOURCE_HASH"),
        "image": image,
        "platform": platform.name(),
        "parallel": scn.parallel,
        "hosts": hosts,
        "given": given,
        "steps": steps,
        "vars": used,
    });
    let digest = Sha256::digest(made_of.to_string().as_bytes());
    Ok(hex::encode(&digest[..12]))
}

/// What a checkpoint holds besides its images.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub key: String,
    pub scenario: String,
    /// The id of the last step in it.
    pub step: String,
    pub platform: Platform,
    pub image: String,
    pub hosts: Vec<SavedHost>,
    /// Every variable the steps saw, the generated secrets among them.
    pub vars: Vars,
    pub done: Vec<String>,
    pub results: Vec<StepResult>,
    pub transcript: Vec<TranscriptEntry>,
    /// From the start of the steps to the checkpoint, in the run that saved it.
    #[serde(with = "crate::time::millis")]
    pub elapsed: Duration,
    pub timings: SaveTimings,
    /// Unix seconds.
    pub created: u64,
    pub used: u64,
    /// The build of pglab that saved it (records of others are removed).
    #[serde(default)]
    pub pglab: String,
    /// The CA's certificate and each store's access (secret) its hosts were made with.
    #[serde(default)]
    pub kept: crate::lab::provided::Kept,
}

/// Everything but the secrets.
impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record").field("key", &self.key).field("scenario", &self.scenario).field("step", &self.step).finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Where records and locks are: `<state root>/checkpoints`, 0700.
pub(crate) fn dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let root = crate::lab::inventory::ensure_state_root()?;
    let dir = root.join("checkpoints");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

fn record_path(key: &str) -> Result<PathBuf> {
    Ok(dir()?.join(format!("{key}.json")))
}

impl Record {
    pub(crate) fn save(&self) -> Result<()> {
        crate::lab::inventory::write_private(&record_path(&self.key)?, serde_json::to_string(self).expect("serializable").as_bytes())
    }

    fn load(key: &str) -> Option<Record> {
        let path = record_path(key).ok()?;
        let bytes = std::fs::read(&path).ok()?;
        serde_json::from_slice(&bytes).map_err(|e| tracing::warn!("{} cannot be read (gc removes it): {e}", path.display())).ok()
    }

    /// The secret `name` had in the run that saved it.
    pub(crate) fn secret(&self, name: &str) -> Option<String> {
        self.vars.0.get(&format!("secret.{name}")).cloned()
    }
}

/// A checkpoint's lock, held: shared by runs starting from it, exclusive
/// for the run that makes it and for removal.
pub(crate) struct Lock(#[allow(dead_code)] std::fs::File);

fn lock_file(key: &str) -> Result<(std::fs::File, PathBuf)> {
    let path = dir()?.join(format!("{key}.lock"));
    let f =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    Ok((f, path))
}

async fn take(key: &str, shared: bool) -> Result<Lock> {
    let (f, path) = lock_file(key)?;
    tokio::task::spawn_blocking(move || {
        let locked = if shared { f.lock_shared() } else { f.lock() };
        locked.map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(Lock(f))
    })
    .await
    .map_err(|e| Error::Other(format!("waiting for a checkpoint's lock: {e}")))?
}

/// What a run found of its checkpoint, with the lock it holds.
pub(crate) enum Held {
    /// There: start from it (held shared until the lab is created).
    Found(Box<Record>, Lock),
    /// Not there: make it (held exclusive: the others that want it wait).
    Missing(Lock),
}

impl Held {
    /// The checkpoint `key`, or the right to make it.
    pub(crate) async fn find(docker: &Docker, key: &str) -> Result<Held> {
        let shared = take(key, true).await?;
        if let Some(r) = find(docker, key).await? {
            return Ok(Held::Found(Box::new(r), shared));
        }
        drop(shared);
        let exclusive = take(key, false).await?;
        // Another run may have made it while this one waited.
        Ok(match find(docker, key).await? {
            Some(r) => Held::Found(Box::new(r), exclusive),
            None => Held::Missing(exclusive),
        })
    }

    /// The exclusive lock of `key`.
    pub(crate) async fn lock(key: &str) -> Result<Lock> {
        take(key, false).await
    }
}

/// The lock of `key` if nobody holds it (`rm` and `gc` skip busy ones).
fn try_lock(key: &str) -> Result<Option<Lock>> {
    let (f, path) = lock_file(key)?;
    match f.try_lock() {
        Ok(()) => Ok(Some(Lock(f))),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(format!("locking {}", path.display()), e)),
    }
}

/// The checkpoint `key`, when its record and every image of it are here.
async fn find(docker: &Docker, key: &str) -> Result<Option<Record>> {
    let Some(mut record) = Record::load(key) else { return Ok(None) };
    let images = saved::images(docker).await?;
    let have: Vec<String> = images.get(key).into_iter().flatten().flat_map(|i| i.tags.clone()).collect();
    if !record.hosts.iter().all(|h| have.contains(&h.image)) {
        return Ok(None);
    }
    record.used = now();
    record.save()?;
    Ok(Some(record))
}

/// A checkpoint whose lab did not come up: removed, so the next run
/// replays instead of failing the same way.
pub(crate) async fn unusable(docker: &Docker, record: &Record, held: Lock, e: Error) -> Error {
    let removed = remove(docker, &record.key).await;
    drop(held);
    let said = match removed {
        Ok(()) => format!("checkpoint {} removed: the next run replays its steps", record.key),
        Err(r) => format!("removing checkpoint {} failed too ({r}): `pglab checkpoint rm {}`", record.key, record.key),
    };
    tracing::warn!("{said}");
    Error::Other(format!("a lab started from checkpoint {} did not come up: {e}; {said}", record.key))
}

/// Saves `lab`, which ran `report`'s steps through `point`, as checkpoint
/// `key`; then drops what other builds of pglab saved, and the least
/// recently used past the default cap.
pub(crate) async fn save(lab: &Lab, key: &str, point: &Point, report: &crate::outcome::RunReport) -> Result<Record> {
    let state = super::state::RunState::load(&lab.id)?;
    // A spare the run left idle is not saved: no step through the point
    // touched it, so a run that needs it starts it fresh (see `spares`).
    let names: Vec<&str> = point.hosts.iter().map(String::as_str).filter(|n| lab.host(n).is_ok()).collect();
    let (hosts, timings) = lab.save_hosts(key, &names).await?;
    let record = Record {
        key: key.to_string(),
        scenario: report.scenario.clone(),
        step: report.steps.last().map(|s| s.id.clone()).unwrap_or_default(),
        platform: state.platform,
        image: state.image.clone(),
        hosts,
        vars: state.vars,
        done: state.done,
        results: report.steps.clone(),
        transcript: lab.transcript().entries(),
        elapsed: report.steps.iter().map(|s| s.at + s.elapsed).max().unwrap_or_default(),
        timings,
        created: now(),
        used: now(),
        pglab: env!("PGLAB_SOURCE_HASH").to_string(),
        kept: lab.provided_kept(),
    };
    record.save()?;
    tracing::info!(key = %record.key, frozen_ms = timings.frozen.as_millis() as u64, "checkpoint saved");
    let docker = &lab.docker();
    for other in list(docker).await?.into_iter().filter(|c| c.key != key && c.pglab.as_deref().is_some_and(|p| p != record.pglab)) {
        let _ = remove_if_idle(docker, &other.key).await;
    }
    let _ = gc(docker, DEFAULT_CAP).await;
    Ok(record)
}

/// What checkpoints may take before the least recently used go: 20 GiB.
pub(crate) const DEFAULT_CAP: i64 = 20 << 30;

/// A checkpoint as `pglab checkpoint list` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CheckpointSummary {
    /// Its key (content hash).
    pub key: String,
    /// The scenario that saved it, and its last step.
    pub scenario: String,
    pub step: String,
    pub platform: String,
    /// Bytes of its hosts' own layers.
    pub bytes: i64,
    /// Unix seconds it was saved, and last started from.
    pub created: u64,
    pub used: u64,
    /// Images without a record (or the reverse): nothing can start from it.
    pub orphaned: bool,
    /// The build of pglab that saved it.
    pub pglab: Option<String>,
}

/// Every checkpoint on the engine or in the records.
pub(crate) async fn list(docker: &Docker) -> Result<Vec<CheckpointSummary>> {
    let images = saved::images(docker).await?;
    let mut keys: Vec<String> = images.keys().cloned().collect();
    if let Ok(entries) = std::fs::read_dir(dir()?) {
        for e in entries.flatten() {
            if let Some(k) = e.file_name().to_str().and_then(|n| n.strip_suffix(".json")) {
                keys.push(k.to_string());
            }
        }
    }
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let record = Record::load(&key);
        let have: Vec<String> = images.get(&key).into_iter().flatten().flat_map(|i| i.tags.clone()).collect();
        let whole = record.as_ref().is_some_and(|r| r.hosts.iter().all(|h| have.contains(&h.image)));
        out.push(CheckpointSummary {
            scenario: record.as_ref().map(|r| r.scenario.clone()).unwrap_or_default(),
            step: record.as_ref().map(|r| r.step.clone()).unwrap_or_default(),
            platform: record.as_ref().map(|r| r.platform.to_string()).unwrap_or_default(),
            bytes: record.as_ref().map(|r| r.hosts.iter().map(|h| h.bytes).sum()).unwrap_or(0),
            created: record.as_ref().map(|r| r.created).unwrap_or(0),
            used: record.as_ref().map(|r| r.used).unwrap_or(0),
            orphaned: !whole,
            pglab: record.as_ref().map(|r| r.pglab.clone()),
            key,
        });
    }
    Ok(out)
}

/// Removes a checkpoint unless a run holds it; whether it did.
pub(crate) async fn remove_if_idle(docker: &Docker, key: &str) -> Result<bool> {
    let Some(lock) = try_lock(key)? else { return Ok(false) };
    remove(docker, key).await?;
    drop(lock);
    let _ = std::fs::remove_file(dir()?.join(format!("{key}.lock")));
    Ok(true)
}

/// Removes a checkpoint: its images and its record.
pub(crate) async fn remove(docker: &Docker, key: &str) -> Result<()> {
    let images = saved::images(docker).await?;
    saved::remove_images(docker, images.get(key).map(Vec::as_slice).unwrap_or_default()).await?;
    let path = record_path(key)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

/// Removes orphans, then the least recently used checkpoints until the
/// rest take at most `cap` bytes; one a run holds stays. The keys removed.
pub(crate) async fn gc(docker: &Docker, cap: i64) -> Result<Vec<String>> {
    let mut all = list(docker).await?;
    let mut removed = Vec::new();
    for c in all.iter().filter(|c| c.orphaned) {
        if remove_if_idle(docker, &c.key).await? {
            removed.push(c.key.clone());
        }
    }
    all.retain(|c| !c.orphaned);
    all.sort_by_key(|c| std::cmp::Reverse(c.used));
    let mut total = 0;
    for c in all {
        total += c.bytes;
        if total > cap && remove_if_idle(docker, &c.key).await? {
            removed.push(c.key);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn shipped(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"))
    }

    fn key_of(path: &Path, until: Option<&str>, platform: Platform, image: &str) -> Option<String> {
        let scn = Scenario::load(path).unwrap();
        let until = until.map(|u| scn.step_index(u).unwrap());
        Point::of(&scn, until).map(|p| key(&scn, platform, image, &[], &p).unwrap())
    }

    /// The tutorial and a file that extends it share the lab after step 8;
    /// any edit before that point, another platform or image, a var the
    /// steps use, makes another key; an edit after it does not.
    #[test]
    fn a_key_is_what_made_the_lab() {
        let d12 = Platform::Debian12;
        let tutorial = key_of(&shipped("tutorial"), Some("8-streaming"), d12, "img:1").unwrap();
        assert_eq!(key_of(&shipped("partition"), None, d12, "img:1").as_ref(), Some(&tutorial));
        assert_eq!(key_of(&shipped("cascade"), None, d12, "img:1").as_ref(), Some(&tutorial), "a host the base never touches starts fresh");
        assert_ne!(key_of(&shipped("tutorial"), Some("8-streaming"), Platform::Debian13, "img:1").unwrap(), tutorial);
        assert_ne!(key_of(&shipped("tutorial"), Some("8-streaming"), d12, "img:2").unwrap(), tutorial);
        assert_ne!(key_of(&shipped("tutorial"), Some("8-restore"), d12, "img:1").unwrap(), tutorial);

        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(shipped("tutorial")).unwrap();
        let edited = |from: &str, to: &str| {
            assert!(text.contains(from));
            let p = dir.path().join("tutorial.toml");
            std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
            key_of(&p, Some("8-streaming"), d12, "img:1").unwrap()
        };
        assert_ne!(edited("run = \"pgbackrest --stanza={stanza} --type=full backup\"", "run = \"pgbackrest --stanza={stanza} --type=diff backup\""), tutorial);
        assert_ne!(edited("stanza = \"tutorial\"", "stanza = \"other\""), tutorial);
        let after = edited("run = \"sudo -u postgres pgbackrest --stanza={stanza} --type=full backup\"", "run = \"true\"");
        assert_eq!(after, tutorial, "step 9 is not in the lab after step 8");
    }

    /// What a saved filesystem does not hold is never saved: a tmpfs
    /// volume, a fault's routes, a writer.
    #[test]
    fn no_point_where_the_filesystem_is_not_the_lab() {
        let disk_full = Scenario::load(&shipped("disk-full")).unwrap();
        assert!(Point::of(&disk_full, None).is_none(), "a host with a volume");
        let partition = Scenario::load(&shipped("partition")).unwrap();
        let after_cut = partition.steps.iter().position(|s| s.action.fault() != Fault::No).unwrap();
        assert!(Point::of(&partition, Some(after_cut)).is_none(), "a cut is in routes, not files");
        assert!(Point::of(&partition, Some(after_cut - 1)).is_some());
        // rejoin stops its standby's own cluster, restores it and starts it again.
        let rejoin = Scenario::load(&shipped("rejoin")).unwrap();
        let at = |id: &str| rejoin.step_index(id).unwrap();
        assert!(rejoin.steps[at("s3-standby-stop")].action.downs_postgres());
        assert!(Point::of(&rejoin, Some(at("s5-start"))).is_none(), "started, but not yet waited for");
        assert!(Point::of(&rejoin, Some(at("s5-streaming"))).is_some(), "waited for: a restored standby boots streaming");
        assert!(Point::of(&rejoin, Some(at("f3-kill"))).is_none(), "a writer, then a killed postmaster");
        assert!(Point::of(&Scenario::load(&shipped("multi-repo")).unwrap(), None).is_some(), "rejoin's lab after s5-streaming");
    }

    /// An object store keeps its objects on its disk and the lab's CA its
    /// certificate in every host's: both are saved. A host added after the
    /// point that needs a certificate from that CA is not (no checkpoint
    /// keeps the CA's key); one beside a lab without a CA gets a new CA.
    #[test]
    fn stores_and_certificates_are_saved_unless_a_new_host_needs_the_ca() {
        let d12 = Platform::Debian12;
        let s3 = key_of(&shipped("s3-repo"), Some("8-streaming"), d12, "img:1 store:1").unwrap();
        assert_eq!(key_of(&shipped("store-outage"), None, d12, "img:1 store:1").as_ref(), Some(&s3), "shares s3-repo's lab");
        assert_ne!(key_of(&shipped("store-outage"), None, d12, "img:1 store:2").unwrap(), s3, "another store image, another lab");
        assert!(key_of(&shipped("tls-server"), Some("t1-repo-stanza"), d12, "img:1").is_some(), "hosts with certificates");

        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(shipped("s3-repo"), dir.path().join("s3-repo.toml")).unwrap();
        let extra = "name = \"more\"\ndescription = \"x\"\n[extends]\nscenario = \"s3-repo\"\nthrough = \"8-streaming\"\n\n[[hosts]]\nname = \"more\"\nrole = \"standby\"\n";
        std::fs::write(dir.path().join("more.toml"), extra).unwrap();
        assert!(key_of(&dir.path().join("more.toml"), None, d12, "img:1").is_some(), "a plain host added");
        std::fs::write(dir.path().join("more.toml"), format!("{extra}certificate = true\n")).unwrap();
        assert!(key_of(&dir.path().join("more.toml"), None, d12, "img:1").is_none(), "a certificate the saved CA would have to sign");
        std::fs::copy(shipped("tutorial"), dir.path().join("tutorial.toml")).unwrap();
        let store = "name = \"store\"\ndescription = \"x\"\n[extends]\nscenario = \"tutorial\"\nthrough = \"8-streaming\"\n\n[[hosts]]\nname = \"s3\"\nkind = \"s3\"\nrole = \"repo\"\n";
        std::fs::write(dir.path().join("store.toml"), store).unwrap();
        assert!(key_of(&dir.path().join("store.toml"), None, d12, "img:1").is_some(), "a store beside a lab without a CA: a new CA");
    }
}
