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

use bollard::models::ContainerConfig;
use bollard::query_parameters::{CommitContainerOptionsBuilder, DownloadFromContainerOptions, ListImagesOptions, RemoveImageOptions};
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
/// (`<dir>.checkpoint.tar`), which the commit takes. A host started from
/// the image unpacks it into its new, empty volume (the image's recipe
/// does). One file: on this engine's storage driver each file written
/// costs milliseconds.
async fn carry_data(docker: &Docker, f: &Frozen) -> Result<()> {
    let Some(dir) = f.data else { return Ok(()) };
    let opts = DownloadFromContainerOptions { path: dir.to_string() };
    let read: Vec<Bytes> =
        docker.download_from_container(&f.container, Some(opts)).try_collect().await.map_err(|e| Error::docker(format!("read {dir} of {}", f.host), e))?;
    super::files::upload_file(docker, &f.container, &format!("{dir}.checkpoint.tar"), &read.concat(), (0o600, 0, 0)).await
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
