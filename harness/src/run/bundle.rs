//! Bug bundles: everything someone else needs to see what a kept lab saw,
//! and to replay its scenario (`pglab run <bundle>`). Secrets never enter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::RunState;
use crate::error::{Error, Result};
use crate::lab::{Attached, Cmd, Host, LogTail};
use crate::platform::Platform;
use crate::scenario::PORTABLE_BASE;
use crate::transcript::Redactor;

/// `manifest.json` at the top of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub lab: String,
    pub scenario: String,
    pub platform: Platform,
    pub image: String,
    pub pglab: String,
    /// Last step done; a replay stops there unless told otherwise.
    pub step: Option<String>,
    /// Every step of the scenario was done.
    pub complete: bool,
    pub hosts: BTreeMap<String, String>,
    pub created_unix: u64,
}

/// No log at all: each log file of a bundle takes one part of it.
const NONE: LogTail = LogTail { postgresql: 0, pgbackrest: 0, pgbackrest_newest: None, journal: 0, units: &[], style: crate::lab::LogStyle::Headed };

/// What one host contributes, as (file name, shell command run as `user`).
fn host_files(h: &Host) -> Vec<(&'static str, &'static str, String)> {
    let p = h.platform;
    let cat = |f: String| format!("cat {f} 2>&1");
    vec![
        ("pgbackrest.conf", "root", cat("/etc/pgbackrest.conf".into())),
        ("postgresql.conf", "root", cat(format!("{}/postgresql.conf", p.pg_config_dir()))),
        ("pg_hba.conf", "root", cat(format!("{}/pg_hba.conf", p.pg_config_dir()))),
        ("postgresql.auto.conf", "root", cat(format!("{}/postgresql.auto.conf", p.pg_data()))),
        ("postgresql.log", "root", LogTail { postgresql: 2000, ..NONE }.script(p)),
        ("pgbackrest.log", "root", LogTail { pgbackrest: 1000, ..NONE }.script(p)),
        ("journal.txt", "root", LogTail { journal: 500, ..NONE }.script(p)),
        ("pgbackrest-info.txt", "postgres", "pgbackrest info 2>&1".into()),
        (
            "versions.txt",
            "root",
            format!(". /etc/os-release; echo \"$PRETTY_NAME\"; {}/postgres --version; pgbackrest version 2>&1 || echo 'pgbackrest: not installed'", p.pg_bin()),
        ),
        (
            "status.txt",
            "postgres",
            "pg_lsclusters 2>&1; echo; psql -X -c 'SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() AS replayed, CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn() END AS current' -c 'SELECT * FROM pg_stat_replication' -c 'SELECT status, sender_host, received_tli FROM pg_stat_wal_receiver' 2>&1".into(),
        ),
    ]
}

impl Attached {
    /// Writes a bug bundle of the lab to `path` (a tar.gz: its scenario, the
    /// transcripts, configs and PostgreSQL and pgBackRest logs, secrets
    /// redacted), which `pglab run BUNDLE` replays; its size in bytes.
    pub async fn write_bundle(&self, path: &std::path::Path) -> Result<u64> {
        write(self, path).await
    }
}

/// Writes the bundle of kept lab `lab` to `out`; returns its size in bytes.
pub(crate) async fn write(lab: &Attached, out: &Path) -> Result<u64> {
    let state = RunState::load(&lab.id)?;
    let scenario_src = std::fs::read_to_string(RunState::scenario_copy(&lab.id)).map_err(|e| Error::io("reading the lab's scenario copy", e))?;
    // Parsed where it lies, so that an `extends` finds the base beside it.
    let scn = crate::scenario::Scenario::parse(&RunState::scenario_copy(&lab.id), scenario_src.clone()).ok();
    let complete = scn.as_ref().is_some_and(|s| s.steps.iter().all(|st| state.done.contains(st.id.get_ref())));
    let manifest = Manifest {
        lab: lab.id.clone(),
        scenario: state.scenario.clone(),
        platform: state.platform,
        image: state.image.clone(),
        pglab: env!("CARGO_PKG_VERSION").into(),
        step: state.done.last().cloned(),
        complete,
        hosts: lab.hosts.iter().map(|h| (h.name.clone(), h.ip.to_string())).collect(),
        created_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    };
    let root = format!("pglab-report-{}", lab.id);
    let mut files: Vec<(String, String)> =
        vec![("manifest.json".into(), serde_json::to_string_pretty(&manifest).expect("serializable")), ("scenario.toml".into(), scenario_src)];
    if let Ok(base) = std::fs::read_to_string(RunState::base_copy(&lab.id)) {
        files.push((format!("{PORTABLE_BASE}.toml"), base));
    }
    for r in &state.reports {
        if let (Some(name), Ok(text)) = (r.file_name(), std::fs::read_to_string(r)) {
            files.push((format!("transcripts/{}", name.to_string_lossy()), text));
        }
    }
    let per_host = lab.hosts.iter().map(|h| async move {
        let mut got = Vec::new();
        for (name, user, script) in host_files(h) {
            let cmd = Cmd::new(["bash", "-c", script.as_str()]).user(user).any_status().timeout(crate::time::default_timeout());
            let text = match h.probe(&cmd).await {
                Ok(o) => format!("{}{}", o.stdout, o.stderr),
                Err(e) => format!("(could not collect: {e})"),
            };
            got.push((format!("{}/{name}", h.name), text));
        }
        got
    });
    for host_files in futures_util::future::join_all(per_host).await {
        files.extend(host_files);
    }
    let redactor = Redactor::with_secrets(state.secrets.iter().cloned());
    let file = std::fs::File::create(out).map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default()));
    for (name, text) in files {
        let data = redactor.redact(&text);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(manifest.created_unix);
        header.set_cksum();
        tar.append_data(&mut header, format!("{root}/{name}"), data.as_bytes()).map_err(|e| Error::io("writing the bundle", e))?;
    }
    tar.into_inner().and_then(|gz| gz.finish()).map_err(|e| Error::io("finishing the bundle", e))?;
    Ok(std::fs::metadata(out).map(|m| m.len()).unwrap_or(0))
}

/// A bundle unpacked for replay: its scenario file and manifest.
/// A bug bundle unpacked into a directory of its own (removed when dropped).
pub struct Unpacked {
    /// The scenario it replays, with the base it extends beside it.
    pub scenario: PathBuf,
    pub(crate) manifest: Manifest,
    _dir: tempfile::TempDir,
}

pub(crate) fn is_bundle(arg: &str) -> bool {
    (arg.ends_with(".tar.gz") || arg.ends_with(".tgz")) && Path::new(arg).is_file()
}

/// Unpacks a bug bundle (from [`Attached::write_bundle`] or `pglab report`).
pub fn unpack(bundle: &Path) -> Result<Unpacked> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("creating a temporary directory", e))?;
    let file = std::fs::File::open(bundle).map_err(|e| Error::Usage(format!("cannot open bundle {}: {e}", bundle.display())))?;
    let unreadable = |e: std::io::Error| Error::Usage(format!("{} is not a readable pglab bundle: {e}", bundle.display()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let (mut scenario, mut manifest) = (None, None);
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let path = entry.path().map_err(unreadable)?.into_owned();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let base = format!("{PORTABLE_BASE}.toml");
        if path.components().count() != 2 || !(name == "scenario.toml" || name == "manifest.json" || name == base) {
            continue;
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).map_err(unreadable)?;
        if name == base {
            std::fs::write(dir.path().join(&base), text).map_err(|e| Error::io("unpacking the base scenario", e))?;
        } else if name == "manifest.json" {
            let m = serde_json::from_str::<Manifest>(&text).map_err(|e| Error::Usage(format!("{}: bad manifest.json: {e}", bundle.display())))?;
            if !crate::vocab::is_ident(&m.scenario) {
                return Err(Error::Usage(format!("{}: manifest.json names scenario `{}`: {}", bundle.display(), m.scenario, crate::vocab::IDENT_RULE)));
            }
            manifest = Some(m);
        } else {
            let p = dir.path().join(format!("{}.toml", manifest.as_ref().map(|m: &Manifest| m.scenario.as_str()).unwrap_or("scenario")));
            std::fs::write(&p, text).map_err(|e| Error::io("unpacking the scenario", e))?;
            scenario = Some(p);
        }
    }
    match (scenario, manifest) {
        (Some(scenario), Some(manifest)) => Ok(Unpacked { scenario, manifest, _dir: dir }),
        _ => Err(Error::Usage(format!("{} is not a pglab bundle (no manifest.json and scenario.toml)", bundle.display()))),
    }
}
