//! A lab frozen at one instant, kept as images, and started again: every
//! host is paused at once (the whole lab loses power together, so primary,
//! standby and repository agree with one another), each is committed to an
//! image, and all run on. Started again, each host boots from its image at
//! the same lab address (see `address`); PostgreSQL comes back through
//! crash recovery, as after that power cut.
//!
//! What is not in a container's filesystem is not saved: tmpfs volumes,
//! routes and qdiscs of faults, the harness's own writers. The run layer
//! saves only labs that have none of them. A kind's data directory on a
//! volume of the engine is carried into the image (see [`carry_data`]).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bollard::body_stream;
use bollard::models::ContainerConfig;
use bollard::query_parameters::{CommitContainerOptionsBuilder, DownloadFromContainerOptions, ListImagesOptions, RemoveImageOptions, UploadToContainerOptions};
use bollard::Docker;
use bytes::Bytes;
use futures_util::future::{join_all, try_join_all};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::{Host, Hosts, Lab};
use crate::engine::{my_uid, LABEL_CHECKPOINT, LABEL_UID};
use crate::error::{Error, Result};
use crate::time::Deadline;
use crate::vocab::HostKind;

/// The repository every checkpoint image is in: `pglab-checkpoint:<key>-<uid>-<host>`.
pub(crate) const REPO: &str = "pglab-checkpoint";

/// One host of a saved lab: where its filesystem went, and what it was
/// doing that a restore must see again before the lab counts as back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedHost {
    pub name: String,
    pub kind: HostKind,
    /// `pglab-checkpoint:<key>-<uid>-<host>`.
    pub image: String,
    pub ip: Ipv4Addr,
    /// A standby whose WAL receiver streamed when the lab was saved.
    pub streaming: bool,
    /// Bytes of its own layer (what the host wrote since its lab started).
    pub bytes: i64,
}

/// What saving took.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct SaveTimings {
    /// Every host paused until the last one's commit ended.
    #[serde(with = "crate::time::millis")]
    pub frozen: Duration,
    #[serde(with = "crate::time::millis")]
    pub total: Duration,
}

impl Lab {
    /// Saves the hosts named in `hosts` as `pglab-checkpoint:<key>-<uid>-<host>`
    /// images, all frozen at the same instant. The lab runs on afterwards,
    /// whether the commits worked or not; a host that could not be
    /// unpaused is an error (the lab is not fit to go on).
    pub(crate) async fn save_hosts(&self, key: &str, hosts: &[&str]) -> Result<(Vec<SavedHost>, SaveTimings)> {
        let t = Instant::now();
        let chosen: Vec<&Host> = hosts.iter().map(|n| self.host(n)).collect::<Result<_>>()?;
        let mut streaming = Vec::new();
        for h in &chosen {
            streaming.push(
                h.runs_postgres().is_ok() && h.query_value::<String>("SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), '')").await? == "streaming",
            );
        }
        // Pause, commit and unpause run to the end in a task of their own,
        // even when this run is interrupted meanwhile: no host stays frozen.
        // (A scenario's tmpfs in place of a data directory never gets here: such labs are not saved.)
        let containers: Vec<Frozen> =
            chosen.iter().map(|h| Frozen { container: h.container.clone(), host: h.name.clone(), data: super::kind::spec(h.kind).data_dir() }).collect();
        let freeze = tokio::spawn(freeze_and_commit(self.docker.clone(), containers, key.to_string()));
        let (committed, frozen) = freeze.await.map_err(|e| Error::Other(format!("saving checkpoint {key}: {e}")))??;
        let images = committed?;
        if let Some(first) = chosen.first() {
            let said = format!("{} host(s) frozen together for {} ms and committed as {REPO}:{key}-<uid>-<host>", chosen.len(), frozen.as_millis());
            first.note("pglab (engine)", &format!("checkpoint {key}"), &said, t.elapsed());
        }
        let mut saved = Vec::new();
        for ((h, image), streaming) in chosen.iter().zip(images).zip(streaming) {
            let bytes = own_bytes(&self.docker, &h.container, &image).await;
            saved.push(SavedHost { name: h.name.clone(), kind: h.kind, image, ip: h.ip, streaming, bytes });
        }
        Ok((saved, SaveTimings { frozen, total: t.elapsed() }))
    }

    /// After a lab was started from a checkpoint: waits until each standby
    /// that streamed when it was saved streams again.
    /// (`idle`: the hosts this run left unstarted.)
    pub(crate) async fn wait_for_restored(&self, saved: &[SavedHost], idle: &[String]) -> Result<()> {
        let streamed = saved.iter().filter(|s| s.streaming && !idle.contains(&s.name));
        try_join_all(streamed.map(|s| async move { self.host(&s.name)?.wait_for_streaming(Deadline::standard()).await })).await?;
        Ok(())
    }
}

/// One host to freeze: its container, its name, and its data directory on
/// a volume (which a commit leaves out).
struct Frozen {
    container: String,
    host: String,
    data: Option<&'static str>,
}

/// Pauses every container at once, commits each (with its data directory,
/// see [`carry_data`]), and unpauses them all, whatever happened: the
/// images' references and how long they were frozen. A container that
/// cannot be unpaused is an error of its own (the lab is not fit to go on).
async fn freeze_and_commit(docker: Docker, containers: Vec<Frozen>, key: String) -> Result<(Result<Vec<String>>, Duration)> {
    let t = Instant::now();
    let paused = join_all(containers.iter().map(|f| crate::engine::pause(&docker, &f.container))).await;
    let frozen_ones: Vec<bool> = paused.iter().map(Result::is_ok).collect();
    let committed = match paused.into_iter().find_map(Result::err) {
        Some(e) => Err(e),
        None => {
            try_join_all(containers.iter().map(|f| async {
                carry_data(&docker, f).await?;
                commit(&docker, &f.container, &f.host, &key).await
            }))
            .await
        }
    };
    let frozen = t.elapsed();
    for (f, was_paused) in containers.iter().zip(frozen_ones) {
        if was_paused {
            let c = &f.container;
            docker.unpause_container(c).await.map_err(|e| Error::docker(format!("unpause {c} after saving checkpoint {key}"), e))?;
        }
    }
    Ok((committed, frozen))
}

/// A data directory on a volume is not in a commit: read from the frozen
/// host, it goes into the host's own filesystem as one archive beside it
/// ([`data_archive`]), which the commit takes; a host started from the
/// image unpacks it before it boots ([`before_boot`]). One file: on this
/// engine's storage driver each file written costs milliseconds. (The
/// saving lab's copy is inert: only a restored host unpacks one.)
async fn carry_data(docker: &Docker, f: &Frozen) -> Result<()> {
    let Some(dir) = f.data else { return Ok(()) };
    let opts = DownloadFromContainerOptions { path: dir.to_string() };
    let read: Vec<Bytes> =
        docker.download_from_container(&f.container, Some(opts)).try_collect().await.map_err(|e| Error::docker(format!("read {dir} of {}", f.host), e))?;
    let to = data_archive(dir);
    let archive = stream_file(&to, read)?;
    let opts = UploadToContainerOptions { path: "/".into(), ..Default::default() };
    docker.upload_to_container(&f.container, Some(opts), body_stream(archive)).await.map_err(|e| Error::docker(format!("write {to} on {}", f.host), e))
}

/// A tar of one file at `path` (root's, 0600) holding `chunks`, as a
/// stream: the data is not copied again.
fn stream_file(path: &str, chunks: Vec<Bytes>) -> Result<impl futures_util::Stream<Item = Bytes>> {
    let len: usize = chunks.iter().map(Bytes::len).sum();
    let mut header = tar::Header::new_gnu();
    header.set_path(path.trim_start_matches('/')).map_err(|e| Error::io("tar", e))?;
    header.set_size(len as u64);
    header.set_mode(0o600);
    header.set_cksum();
    // The entry's data is padded to a block, and two empty blocks end the archive.
    let tail = Bytes::from(vec![0u8; (512 - len % 512) % 512 + 1024]);
    let parts = std::iter::once(Bytes::copy_from_slice(header.as_bytes())).chain(chunks).chain(std::iter::once(tail));
    Ok(futures_util::stream::iter(parts))
}

/// Where a saved host's data directory waits, as one archive, to be unpacked.
fn data_archive(dir: &str) -> String {
    format!("{dir}.checkpoint.tar")
}

/// What a host started from a checkpoint runs before systemd: its frozen
/// filesystem still names the postmaster that ran then (a process of the
/// new boot may have its pid); its data directory (`data`, on a new,
/// empty volume) is unpacked from the archive the save left, or the host
/// does not boot and the restore fails. A restart finds no archive left.
pub(crate) fn before_boot(data: Option<&str>) -> String {
    let pid = "find /var/lib/postgresql -maxdepth 4 -name postmaster.pid -delete; ";
    let Some(dir) = data else { return pid.to_string() };
    let (a, parent) = (data_archive(dir), std::path::Path::new(dir).parent().map_or("/".into(), |p| p.display().to_string()));
    format!("{pid}if [ -f {a} ]; then find {dir} -mindepth 1 -delete && tar -xf {a} -C {parent} && rm -f {a} || exit 1; fi; ")
}

/// Bytes the commit of `container` added to the image it ran: its own
/// layer, from the images' sizes (the container's own size walks every
/// file of its layer, seconds each on this storage driver).
async fn own_bytes(docker: &Docker, container: &str, image: &str) -> i64 {
    let size = |r: String| async move { docker.inspect_image(&r).await.ok().and_then(|i| i.size).unwrap_or(0) };
    let Some(base) = docker.inspect_container(container, None).await.ok().and_then(|c| c.image) else { return 0 };
    (size(image.to_string()).await - size(base).await).max(0)
}

/// Commits the paused container of `host`: the image's reference,
/// `pglab-checkpoint:<key>-<uid>-<host>`.
async fn commit(docker: &Docker, container: &str, host: &str, key: &str) -> Result<String> {
    let tag = format!("{key}-{}-{host}", my_uid());
    let opts = CommitContainerOptionsBuilder::new().container(container).repo(REPO).tag(&tag).pause(false).build();
    // Its records are this user's (in their state directory): so are its images.
    let labels = HashMap::from([(LABEL_CHECKPOINT.to_string(), key.to_string()), (LABEL_UID.to_string(), my_uid().to_string())]);
    docker
        .commit_container(opts, ContainerConfig { labels: Some(labels), ..Default::default() })
        .await
        .map_err(|e| Error::docker(format!("commit {container}"), e))?;
    Ok(format!("{REPO}:{tag}"))
}

/// One image of a checkpoint: its id, and its tags (none once a later save
/// of the same key took them).
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub id: String,
    pub tags: Vec<String>,
}

/// Every checkpoint image of this user on the engine, by key.
pub(crate) async fn images(docker: &Docker) -> Result<HashMap<String, Vec<Image>>> {
    let filters = HashMap::from([("label".to_string(), vec![LABEL_CHECKPOINT.to_string(), format!("{LABEL_UID}={}", my_uid())])]);
    let list =
        docker.list_images(Some(ListImagesOptions { filters: Some(filters), ..Default::default() })).await.map_err(|e| Error::docker("list images", e))?;
    let mut by_key: HashMap<String, Vec<Image>> = HashMap::new();
    for i in list {
        let Some(key) = i.labels.get(LABEL_CHECKPOINT).cloned() else { continue };
        let tags = i.repo_tags.iter().filter(|t| t.starts_with(REPO)).cloned().collect();
        by_key.entry(key).or_default().push(Image { id: i.id, tags });
    }
    Ok(by_key)
}

/// Removes these images (a missing one is fine); tries every one, and
/// says the first that could not go (a kept lab still runs from it).
pub(crate) async fn remove_images(docker: &Docker, images: &[Image]) -> Result<()> {
    let mut first = None;
    for r in images.iter().map(|i| &i.id) {
        match docker.remove_image(r, Some(RemoveImageOptions { force: true, ..Default::default() }), None).await {
            Ok(_) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => {
                first.get_or_insert(Error::docker(format!("remove image {r}"), e));
            }
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// `before_boot`'s script, its paths moved under `root`; its exit status.
    fn boot(root: &std::path::Path, data: &str) -> i32 {
        let script = before_boot(Some(data)).replace("/var/lib", &format!("{}/var/lib", root.display()));
        std::process::Command::new("sh").arg("-c").arg(format!("{script} exit 0")).status().unwrap().code().unwrap()
    }

    /// What the save leaves is what a restored host unpacks, into a volume
    /// the engine made empty; once: a restart finds no archive; a damaged
    /// archive stops the boot instead of serving part of the data.
    #[tokio::test]
    async fn a_saved_data_directory_is_unpacked_once_before_boot() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("var/lib/pglab-s3");
        std::fs::create_dir_all(dir.join("pglab")).unwrap();
        // The engine's archive of the directory: entries under its own name.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "pglab-s3/pglab/object", &b"bytes"[..]).unwrap();
        let read = b.into_inner().unwrap();
        let (half, rest) = read.split_at(700);
        let archive: Vec<Bytes> =
            stream_file("/var/lib/pglab-s3.checkpoint.tar", vec![Bytes::copy_from_slice(half), Bytes::copy_from_slice(rest)]).unwrap().collect().await;
        tar::Archive::new(&archive.concat()[..]).unpack(root.path()).unwrap();
        let saved = root.path().join("var/lib/pglab-s3.checkpoint.tar");
        assert_eq!(std::fs::read(&saved).unwrap(), read, "one file, the archive as read");

        std::fs::write(dir.join("stale"), "x").unwrap();
        assert_eq!(boot(root.path(), "/var/lib/pglab-s3"), 0);
        assert_eq!(std::fs::read(dir.join("pglab/object")).unwrap(), b"bytes");
        assert!(!dir.join("stale").exists() && !saved.exists(), "the directory is the saved one, the archive gone");
        std::fs::write(dir.join("pglab/new"), "y").unwrap();
        assert_eq!(boot(root.path(), "/var/lib/pglab-s3"), 0);
        assert!(dir.join("pglab/new").exists(), "a restart leaves the data alone");

        std::fs::write(&saved, &read[..600]).unwrap();
        assert_ne!(boot(root.path(), "/var/lib/pglab-s3"), 0, "a damaged archive stops the boot");
    }
}
