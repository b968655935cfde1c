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
use crate::lab::{Hosts, Lab};
use crate::outcome::{Fault, StepResult};
use crate::platform::Platform;
use crate::scenario::Scenario;
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
    /// a writer) or a host has a tmpfs volume.
    pub(crate) fn of(scn: &Scenario, until: Option<usize>) -> Option<Point> {
        let last = until.or_else(|| scn.base.as_ref().and_then(|b| b.steps.checked_sub(1)))?;
        let hosts = match &scn.base {
            Some(b) if last < b.steps => &scn.hosts[..b.hosts],
            _ => &scn.hosts[..],
        };
        let volatile = scn.steps[..=last].iter().find(|s| s.action.fault() != Fault::No || s.action.as_load().is_some());
        if let Some(s) = volatile {
            tracing::info!("no checkpoint for {}: step {} leaves what a saved filesystem does not hold", scn.name, s.id.get_ref());
            return None;
        }
        if let Some(h) = hosts.iter().find(|h| !h.volumes.is_empty()) {
            tracing::info!("no checkpoint for {}: host {} has a volume", scn.name, h.name.get_ref());
            return None;
        }
        Some(Point { last, hosts: hosts.iter().map(|h| h.name.get_ref().clone()).collect() })
    }
}

/// Whether runs use checkpoints here: `PGLAB_CHECKPOINTS=0` turns them off.
pub(crate) fn enabled() -> bool {
    !matches!(std::env::var("PGLAB_CHECKPOINTS").as_deref(), Ok("0" | "off" | "no" | "false"))
}

/// The content hash that names the checkpoint of `scn` at `point`.
pub(crate) fn key(scn: &Scenario, platform: Platform, image: &str, sets: &[(String, String)], point: &Point) -> Result<String> {
    let addr = |h: &str| scn.hosts.iter().position(|d| d.name.get_ref() == h).and_then(|i| crate::lab::address::lab_address(i).ok());
    let vars = Vars::build(scn, platform, sets, &|h| addr(h).map(|a| a.to_string()).unwrap_or_default(), &mut |_| Ok("<secret>".into()))?;
    let steps = &scn.step_texts()[..=point.last];
    // Only the variables the steps use: a file's other vars do not change the lab.
    let used: BTreeMap<&str, String> =
        vars.0.iter().filter(|(k, _)| steps.iter().any(|s| s.contains(&format!("{{{k}}}")))).map(|(k, v)| (k.as_str(), v.clone())).collect();
    let hosts: Vec<String> = scn
        .hosts
        .iter()
        .filter(|h| point.hosts.contains(h.name.get_ref()))
        .map(|h| format!("{} {:?} {:?}", h.name.get_ref(), h.kind.unwrap_or_default(), addr(h.name.get_ref())))
        .collect();
    let given = scn.given.as_ref().map(|g| format!("{} {} {}", g.host.get_ref(), g.table, g.rows));
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
    pub vars: Vars,
    pub secrets: Vec<String>,
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
    let root = crate::lab::inventory::ensure_state_root()?;
    let dir = root.join("checkpoints");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

fn record_path(key: &str) -> Result<PathBuf> {
    Ok(dir()?.join(format!("{key}.json")))
}

impl Record {
    pub(crate) fn save(&self) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = record_path(&self.key)?;
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        f.write_all(serde_json::to_string(self).expect("serializable").as_bytes()).map_err(|e| Error::io("writing a checkpoint", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(format!("renaming {}", tmp.display()), e))
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

/// Holds the checkpoint `key` for this process: one run makes it while
/// the others that want it wait, then start from it.
pub(crate) struct Lock(#[allow(dead_code)] std::fs::File);

pub(crate) async fn lock(key: &str) -> Result<Lock> {
    let path = dir()?.join(format!("{key}.lock"));
    tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        f.lock().map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(Lock(f))
    })
    .await
    .map_err(|e| Error::Other(format!("waiting for a checkpoint's lock: {e}")))?
}

/// The checkpoint `key`, when its record and every image of it are here.
pub(crate) async fn find(docker: &Docker, key: &str) -> Result<Option<Record>> {
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

/// What a run knows when it reaches the point: saved with the hosts.
pub(crate) struct Reached<'a> {
    pub scn: &'a Scenario,
    pub key: &'a str,
    pub point: &'a Point,
    pub image: &'a str,
    pub platform: Platform,
    pub vars: &'a Vars,
    pub done: Vec<String>,
    pub results: Vec<StepResult>,
    pub elapsed: Duration,
}

/// Saves the lab at the point. A lab that could not be saved is a run
/// that goes on without one (said in the log), not a failure.
pub(crate) async fn save(lab: &Lab, r: Reached<'_>) -> Result<Record> {
    let names: Vec<&str> = r.point.hosts.iter().map(String::as_str).collect();
    let (hosts, timings) = lab.save_hosts(r.key, &names).await?;
    let entries = lab.transcript().entries().into_iter().filter(|e| e.step == "lab" || e.step == "given" || r.done.contains(&e.step)).collect();
    let record = Record {
        key: r.key.to_string(),
        scenario: r.scn.name.clone(),
        step: r.scn.steps[r.point.last].id.get_ref().clone(),
        platform: r.platform,
        image: r.image.to_string(),
        hosts,
        vars: r.vars.clone(),
        secrets: r.vars.secrets(),
        done: r.done,
        results: r.results,
        transcript: entries,
        elapsed: r.elapsed,
        timings,
        created: now(),
        used: now(),
    };
    record.save()?;
    tracing::info!(key = %record.key, frozen_ms = timings.frozen.as_millis() as u64, "checkpoint saved");
    Ok(record)
}

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
            key,
        });
    }
    Ok(out)
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
/// rest take at most `cap` bytes. The keys removed.
pub(crate) async fn gc(docker: &Docker, cap: i64) -> Result<Vec<String>> {
    let mut all = list(docker).await?;
    let mut removed = Vec::new();
    for c in all.iter().filter(|c| c.orphaned) {
        remove(docker, &c.key).await?;
        removed.push(c.key.clone());
    }
    all.retain(|c| !c.orphaned);
    all.sort_by_key(|c| std::cmp::Reverse(c.used));
    let mut total = 0;
    for c in all {
        total += c.bytes;
        if total > cap {
            remove(docker, &c.key).await?;
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
    }
}
