//! The labs on an engine, by their `pglab.lab` label: list them, remove
//! one, and `gc` what a killed process left.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions, RemoveImageOptions, RemoveVolumeOptions,
};
use bollard::Docker;
use serde::Serialize;

use crate::engine::{my_uid, network_name, owner_state, Owner, LABEL_CREATED, LABEL_HOST, LABEL_KEEP, LABEL_LAB, LABEL_OWNER, LABEL_SCENARIO, LABEL_UID};
use crate::error::{Error, Result};

/// Host-side state of labs (run state, markers), the user's own:
/// `$XDG_RUNTIME_DIR/pglab`, else `<tmp>/pglab-<uid>`.
pub(crate) fn state_root() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("pglab"),
        None => std::env::temp_dir().join(format!("pglab-{}", my_uid())),
    }
}

/// [`state_root`], made mode 0700 if missing, and refused unless it is this
/// user's: every writer of the user's state goes through here.
pub(crate) fn ensure_state_root() -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let root = state_root();
    let made = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&root);
    made.map_err(|e| Error::io(format!("creating {}", root.display()), e))?;
    let meta = std::fs::metadata(&root).map_err(|e| Error::io(format!("reading {}", root.display()), e))?;
    if meta.uid() != my_uid() {
        return Err(Error::Environment(format!(
            "{} belongs to uid {}, not to you (uid {}): set XDG_RUNTIME_DIR or TMPDIR to a directory of your own",
            root.display(),
            meta.uid(),
            my_uid()
        )));
    }
    // One of ours left open (an older pglab made it 0755): closed again.
    if meta.mode() & 0o077 != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(format!("chmod 0700 {}", root.display()), e))?;
    }
    Ok(root)
}

/// Creates a lab's state directory (0700) under [`ensure_state_root`].
pub(crate) fn create_lab_state_dir(lab: &str) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    ensure_state_root()?;
    let dir = lab_state_dir(lab);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .or_else(|e| if dir.is_dir() { Ok(()) } else { Err(e) })
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

/// A live process's hold on its new lab's state dir (an exclusive lock on
/// `claim` inside): `gc` leaves a held dir alone, though the lab has no
/// resource on the engine yet. Released when the process lets go or dies.
#[derive(Debug)]
pub(crate) struct Claim(#[allow(dead_code)] std::fs::File);

/// Makes a new lab's state dir already claimed: built under a name `gc`
/// does not take for a lab's (`<id>.new`), locked, then renamed into place.
pub(crate) fn claim_lab_state_dir(lab: &str) -> Result<Claim> {
    use std::os::unix::fs::DirBuilderExt;
    ensure_state_root()?;
    let dir = lab_state_dir(lab);
    let making = state_root().join(format!("{lab}.new"));
    let io = |what: &str, e| Error::io(format!("{what} {}", making.display()), e);
    std::fs::DirBuilder::new().mode(0o700).create(&making).map_err(|e| io("creating", e))?;
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(making.join(CLAIM)).map_err(|e| io("claiming", e))?;
    file.lock().map_err(|e| io("locking", e))?;
    std::fs::rename(&making, &dir).map_err(|e| Error::io(format!("renaming {} to {}", making.display(), dir.display()), e))?;
    Ok(Claim(file))
}

const CLAIM: &str = "claim";

/// Removes the state dirs of labs the engine does not know, unless claimed.
fn sweep_state_dirs(dirs: Vec<(String, PathBuf)>, known: &BTreeSet<String>) {
    for (name, path) in dirs {
        if !known.contains(&name) && !claimed(&path) {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// Some live process holds the claim on this state dir.
fn claimed(dir: &Path) -> bool {
    std::fs::File::open(dir.join(CLAIM)).is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

pub(crate) fn lab_state_dir(lab: &str) -> PathBuf {
    state_root().join(lab)
}

/// The lab's secrets, one per line (0600 in the 0700 state dir): whoever
/// attaches to a kept lab redacts them too (`pglab exec`, `sql`, `logs`).
fn secrets_file(lab: &str) -> PathBuf {
    lab_state_dir(lab).join("secrets")
}

/// Writes a file that holds secrets: mode 0600 from its first byte, and
/// whole or not at all (a temporary file of its own beside it, renamed over
/// it: writers at once, as runs starting from one checkpoint are, each
/// land whole and the last one stays).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |what: &str, e| Error::io(format!("{what} {}", path.display()), e);
    let mut f = tempfile::NamedTempFile::new_in(dir).map_err(|e| io("writing", e))?;
    f.write_all(bytes).map_err(|e| io("writing", e))?;
    f.persist(path).map_err(|e| io("renaming into", e.error))?;
    Ok(())
}

/// Records the lab's secrets for later attaches.
pub(crate) fn save_secrets(lab: &str, secrets: &[String]) -> Result<()> {
    create_lab_state_dir(lab)?;
    write_private(&secrets_file(lab), secrets.join("\n").as_bytes())
}

/// The lab's recorded secrets; none when it has no run state (`pglab up`).
pub(crate) fn load_secrets(lab: &str) -> Vec<String> {
    std::fs::read_to_string(secrets_file(lab)).map(|t| t.lines().filter(|l| !l.is_empty()).map(String::from).collect()).unwrap_or_default()
}

/// Marks a lab as kept on purpose (after a failure with `Keep::OnFailure`).
pub(crate) fn kept_marker(lab: &str) -> PathBuf {
    lab_state_dir(lab).join("kept")
}

fn label_filter(selector: &str) -> std::collections::HashMap<String, Vec<String>> {
    std::collections::HashMap::from([("label".to_string(), vec![selector.to_string()])])
}

/// What was removed.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Removed {
    pub labs: Vec<String>,
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
    /// Untagged host images a forced rebuild left behind.
    pub images: usize,
}

/// Removes every container, network and volume labelled with this lab, and
/// its host-side state dir.
pub(crate) async fn remove_lab(docker: &Docker, lab: &str) -> Result<Removed> {
    let sel = format!("{LABEL_LAB}={lab}");
    let mut removed = Removed { labs: vec![lab.to_string()], ..Default::default() };
    let mut first_err = None;
    let containers = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: Some(label_filter(&sel)), ..Default::default() }))
        .await
        .map_err(|e| Error::docker("list containers", e))?;
    for c in containers {
        let Some(id) = c.id else { continue };
        match docker.remove_container(&id, Some(RemoveContainerOptions { force: true, v: true, ..Default::default() })).await {
            Ok(()) => removed.containers += 1,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404 | 409, .. }) => {}
            Err(e) => {
                first_err.get_or_insert(Error::docker(format!("remove container {id}"), e));
            }
        }
    }
    let networks =
        docker.list_networks(Some(ListNetworksOptions { filters: Some(label_filter(&sel)) })).await.map_err(|e| Error::docker("list networks", e))?;
    for n in networks {
        let Some(id) = n.id else { continue };
        match docker.remove_network(&id).await {
            Ok(()) => removed.networks += 1,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => {
                first_err.get_or_insert(Error::docker(format!("remove network {id}"), e));
            }
        }
    }
    let volumes = docker.list_volumes(Some(ListVolumesOptions { filters: Some(label_filter(&sel)) })).await.map_err(|e| Error::docker("list volumes", e))?;
    for v in volumes.volumes.unwrap_or_default() {
        match docker.remove_volume(&v.name, Some(RemoveVolumeOptions { force: true })).await {
            Ok(()) => removed.volumes += 1,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => {
                first_err.get_or_insert(Error::docker(format!("remove volume {}", v.name), e));
            }
        }
    }
    let _ = std::fs::remove_dir_all(lab_state_dir(lab));
    match first_err {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// A lab as the engine shows it, from its labels.
#[derive(Debug, Clone, Serialize)]
pub struct LabSummary {
    /// Its id.
    pub lab: String,
    /// The process that made it (`pid@boot@machine`).
    pub owner: String,
    /// Where that process is: alive here, gone, or on another machine.
    pub owner_state: Owner,
    /// Kept on purpose (`--keep`).
    pub kept: bool,
    /// The scenario it was made for.
    pub scenario: Option<String>,
    /// Last step a scenario run completed on this lab.
    pub step: Option<String>,
    /// When it was made (Unix time).
    pub created: u64,
    /// The user who made it (labs of pglab before 0.2 have none).
    pub uid: Option<u32>,
    /// Its hosts.
    pub hosts: Vec<HostSummary>,
    /// Its networks (one, unless something went wrong).
    pub networks: usize,
}

/// A host of a lab as the engine shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HostSummary {
    /// Its name in the lab.
    pub host: String,
    /// Its kind, from its label (labs of older pglab: `pg`).
    pub kind: crate::vocab::HostKind,
    /// Its container.
    pub container: String,
    /// The container's state (`running`, `exited`, `paused`).
    pub state: String,
    /// Its lab address (see `lab::address`): what configs in the lab hold.
    pub ip: String,
}

/// Every lab with at least one labelled resource on the engine that this
/// user may touch: their own (and labs without a uid); root may touch all.
pub(crate) async fn list_labs(docker: &Docker) -> Result<Vec<LabSummary>> {
    let mut labs: BTreeMap<String, LabSummary> = BTreeMap::new();
    let entry = |labs: &mut BTreeMap<String, LabSummary>, labels: &std::collections::HashMap<String, String>| {
        let lab = labels.get(LABEL_LAB).cloned().unwrap_or_default();
        let owner = labels.get(LABEL_OWNER).cloned().unwrap_or_default();
        labs.entry(lab.clone()).or_insert_with(|| LabSummary {
            kept: labels.get(LABEL_KEEP).is_some_and(|v| v == "1") || kept_marker(&lab).exists(),
            owner_state: owner_state(&owner),
            owner,
            scenario: labels.get(LABEL_SCENARIO).cloned(),
            step: std::fs::read_to_string(lab_state_dir(&lab).join("step")).ok(),
            created: labels.get(LABEL_CREATED).and_then(|c| c.parse().ok()).unwrap_or(0),
            uid: labels.get(LABEL_UID).and_then(|u| u.parse().ok()),
            lab,
            hosts: Vec::new(),
            networks: 0,
        });
    };
    let containers = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: Some(label_filter(LABEL_LAB)), ..Default::default() }))
        .await
        .map_err(|e| Error::docker("list containers", e))?;
    for c in containers {
        let labels = c.labels.clone().unwrap_or_default();
        entry(&mut labs, &labels);
        let lab = labels.get(LABEL_LAB).cloned().unwrap_or_default();
        let name = c.names.and_then(|n| n.first().cloned()).unwrap_or_default().trim_start_matches('/').to_string();
        // A lab of an older pglab: the engine's address, while it runs.
        let engine_ip = || c.network_settings.and_then(|n| n.networks).and_then(|n| n.get(&network_name(&lab)).and_then(|e| e.ip_address.clone()));
        let ip = labels.get(crate::engine::LABEL_ADDRESS).cloned().or_else(engine_ip).unwrap_or_default();
        labs.get_mut(&lab).expect("inserted").hosts.push(HostSummary {
            host: labels.get(LABEL_HOST).cloned().unwrap_or_default(),
            kind: crate::vocab::HostKind::ALL.into_iter().find(|k| labels.get(crate::engine::LABEL_KIND).is_some_and(|l| l == k.name())).unwrap_or_default(),
            container: name,
            state: c.state.map(|s| format!("{s:?}").to_lowercase()).unwrap_or_default(),
            ip,
        });
    }
    let networks =
        docker.list_networks(Some(ListNetworksOptions { filters: Some(label_filter(LABEL_LAB)) })).await.map_err(|e| Error::docker("list networks", e))?;
    for n in networks {
        let labels = n.labels.clone().unwrap_or_default();
        entry(&mut labs, &labels);
        let lab = labels.get(LABEL_LAB).cloned().unwrap_or_default();
        labs.get_mut(&lab).expect("inserted").networks += 1;
    }
    let volumes =
        docker.list_volumes(Some(ListVolumesOptions { filters: Some(label_filter(LABEL_LAB)) })).await.map_err(|e| Error::docker("list volumes", e))?;
    for v in volumes.volumes.unwrap_or_default() {
        entry(&mut labs, &v.labels);
    }
    // A label without a lab id (`pglab.lab=""`) names no lab: its "state
    // dir" would be the state root itself.
    let me = my_uid();
    Ok(labs.into_values().filter(|l| is_lab_id(&l.lab) && (me == 0 || l.uid == Some(me))).collect())
}

/// A lab id as `Lab::start` makes them: eight lowercase hex digits.
fn is_lab_id(name: &str) -> bool {
    name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Removes labs whose owning process ran on this machine and is gone, and
/// that nobody kept; with `all`, kept and live ones too. Labs of another
/// machine on a shared engine are left to `pglab down ID`. Stale state
/// dirs without any resource go too.
pub(crate) async fn gc(docker: &Docker, all: bool) -> Result<Removed> {
    let mut total = Removed::default();
    // State dirs are read before the engine is asked: a lab made in between
    // is then either known to it or still claimed by its maker.
    let dirs = lab_state_dirs();
    let labs = list_labs(docker).await?;
    let known: BTreeSet<String> = labs.iter().map(|l| l.lab.clone()).collect();
    for l in labs {
        let here = l.owner_state != Owner::Elsewhere;
        if !here || (!all && (l.owner_state == Owner::Alive || l.kept)) {
            continue;
        }
        let r = remove_lab(docker, &l.lab).await?;
        total.labs.push(l.lab);
        total.containers += r.containers;
        total.networks += r.networks;
        total.volumes += r.volumes;
    }
    sweep_state_dirs(dirs, &known);
    // A build's intermediate images are dangling until it ends: those of
    // an image being built stay, and so does any build's scratch.
    let building = crate::engine::image::builds_running();
    if !building.is_empty() {
        tracing::info!("image build(s) running ({}): their dangling images and any build scratch left for the next gc", building.join(", "));
    }
    total.images = remove_dangling_images(docker, &building).await?;
    if building.is_empty() {
        remove_build_scratch();
    }
    Ok(total)
}

/// Each lab's state dir (and each one a killed maker left half made), by
/// lab id. Only these: the shipped scenarios and the engine's cgroup
/// answers live beside them.
fn lab_state_dirs() -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(state_root()) else { return Vec::new() };
    rd.flatten()
        .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|d| {
            let name = d.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".new").unwrap_or(&name);
            is_lab_id(id).then(|| (name.clone(), d.path()))
        })
        .collect()
}

/// What a killed build left: its scratch dir, a rootfs of some 300 MB (in
/// RAM on /dev/shm). Never one with a mount inside (a killed mmdebstrap may
/// leave /proc or /dev mounted in its chroot): that is said, not removed.
fn remove_build_scratch() {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    for dir in [std::path::PathBuf::from("/dev/shm"), std::env::temp_dir()] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !e.file_name().to_string_lossy().starts_with(crate::engine::image::SCRATCH_PREFIX) {
                continue;
            }
            let path = e.path();
            let prefix = format!("{}/", path.display());
            if mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).any(|m| m.starts_with(&prefix)) {
                tracing::warn!("{} has mounts inside (a killed image build): unmount them, then remove it", path.display());
                continue;
            }
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Untagged images carrying our image label: what `image build --force`
/// replaced (a build's intermediate layers are untagged too: never while one runs).
async fn remove_dangling_images(docker: &Docker, building: &[String]) -> Result<usize> {
    let filters = std::collections::HashMap::from([
        ("dangling".to_string(), vec!["true".to_string()]),
        ("label".to_string(), vec![crate::engine::LABEL_IMAGE.to_string()]),
    ]);
    let images =
        docker.list_images(Some(ListImagesOptions { filters: Some(filters), ..Default::default() })).await.map_err(|e| Error::docker("list images", e))?;
    let mut removed = 0;
    for i in images.into_iter().filter(|i| i.labels.get(crate::engine::LABEL_IMAGE).is_none_or(|l| !building.contains(l))) {
        // An image a container still uses stays; that is not an error.
        if docker.remove_image(&i.id, None::<RemoveImageOptions>, None).await.is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Memory in use per lab right now, as `docker stats` counts it for each
/// container (page cache that can be dropped left out), summed over the lab.
pub(crate) async fn memory_by_lab(docker: &Docker) -> Result<BTreeMap<String, u64>> {
    use futures_util::StreamExt;
    let containers = docker
        .list_containers(Some(ListContainersOptions { filters: Some(label_filter(LABEL_LAB)), ..Default::default() }))
        .await
        .map_err(|e| Error::docker("list containers", e))?;
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for c in containers {
        let (Some(id), Some(lab)) = (c.id, c.labels.and_then(|l| l.get(LABEL_LAB).cloned())) else { continue };
        let opts = bollard::query_parameters::StatsOptions { stream: false, one_shot: true };
        if let Some(Ok(stats)) = docker.stats(&id, Some(opts)).next().await {
            *out.entry(lab).or_default() += stats.memory_stats.map(|m| in_use(&m)).unwrap_or(0);
        }
    }
    Ok(out)
}

/// Usage less inactive file cache, as the docker CLI shows it (cgroup v1
/// and v2 name that cache differently).
fn in_use(m: &bollard::models::ContainerMemoryStats) -> u64 {
    let usage = m.usage.unwrap_or(0);
    let cache = m.stats.as_ref().and_then(|s| s.get("total_inactive_file").or_else(|| s.get("inactive_file")).copied()).unwrap_or(0);
    usage.saturating_sub(cache)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_lab_ids_are_state_dirs_gc_may_sweep() {
        assert!(super::is_lab_id("4b89fdf0"));
        for other in ["shipped-0.1.0", "engine-abc-pg15-0123456789ab.json", "4B89FDF0", "4b89fdf", "probe1234"] {
            assert!(!super::is_lab_id(other), "{other}");
        }
    }

    /// The race CI met: runs starting from one checkpoint each stamp its
    /// record at once; one shared `.tmp` made the later rename fail.
    #[test]
    fn writers_at_once_each_land_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        let writers: Vec<_> = (0..8u8)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || (0..50).try_for_each(|_| super::write_private(&path, &[w; 4096])))
            })
            .collect();
        for w in writers {
            w.join().unwrap().expect("every write lands");
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert!(bytes.iter().all(|b| *b == bytes[0]), "one writer's whole file");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    /// The race CI met: a lab's state dir made, its network not yet, and
    /// a `gc` of another process sweeping meanwhile.
    #[test]
    fn gc_leaves_a_claimed_state_dir_and_sweeps_it_once_let_go() {
        use std::collections::BTreeSet;
        let id = format!("{:08x}", std::process::id().wrapping_mul(2_654_435_761));
        let dir = super::lab_state_dir(&id);
        let claim = super::claim_lab_state_dir(&id).expect("claimed");
        let ours = |dirs: Vec<(String, std::path::PathBuf)>| dirs.into_iter().filter(|(n, _)| *n == id).collect::<Vec<_>>();
        assert_eq!(ours(super::lab_state_dirs()).len(), 1, "the new dir is listed");
        super::sweep_state_dirs(ours(super::lab_state_dirs()), &BTreeSet::new());
        assert!(dir.is_dir(), "a claimed dir survives a sweep");
        drop(claim);
        super::sweep_state_dirs(ours(super::lab_state_dirs()), &BTreeSet::from([id.clone()]));
        assert!(dir.is_dir(), "a known lab's dir survives a sweep");
        super::sweep_state_dirs(ours(super::lab_state_dirs()), &BTreeSet::new());
        assert!(!dir.exists(), "an unknown, unclaimed dir is swept");
    }
}
