//! Host images: built here from `docker/` recipes, found by a content-hash tag,
//! never pulled (the engine has no registry).

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bollard::query_parameters::{BuildImageOptions, BuilderVersion, CreateImageOptions, RemoveImageOptions};
use bollard::Docker;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;

use super::{LABEL_IMAGE, LABEL_VERSION};
use crate::error::{tail_lines, Error, Result};
use crate::platform::{Base, Platform};
use crate::progress::{PhaseBar, Progress};

/// Prefix of a build's scratch directory (the rootfs tar and mmdebstrap's tree).
pub(crate) const SCRATCH_PREFIX: &str = "pglab-build-";

/// mmdebstrap's own phases (its `I:` lines) that a build shows.
const MMDEBSTRAP_PHASES: [&str; 9] = [
    "running apt-get update",
    "downloading packages",
    "extracting archives",
    "installing essential",
    "installing remaining",
    "running --customize-hook",
    "cleaning package lists",
    "creating tarball",
    "success in",
];

/// How many phases a build shows: mmdebstrap's, the import, the layer, the end.
const BUILD_PHASES: u64 = MMDEBSTRAP_PHASES.len() as u64 + 3;

/// A file of a recipe, embedded so the binary is self-contained and the
/// content hash is exactly what gets built.
struct RecipeFile {
    name: &'static str,
    body: &'static str,
    mode: u32,
}

const DEBIAN: &[RecipeFile] = &[
    RecipeFile { name: "rootfs.sh", body: include_str!("../../docker/debian/rootfs.sh"), mode: 0o755 },
    RecipeFile { name: "Dockerfile", body: include_str!("../../docker/debian/Dockerfile"), mode: 0o644 },
    RecipeFile { name: "sudoers-dba", body: include_str!("../../docker/debian/sudoers-dba"), mode: 0o440 },
    RecipeFile { name: "journald-pglab.conf", body: include_str!("../../docker/debian/journald-pglab.conf"), mode: 0o644 },
    RecipeFile { name: "sshd-pglab.conf", body: include_str!("../../docker/debian/sshd-pglab.conf"), mode: 0o644 },
    RecipeFile { name: "ssh-hostkeys.conf", body: include_str!("../../docker/debian/ssh-hostkeys.conf"), mode: 0o644 },
];

const UBUNTU: &[RecipeFile] = &[
    RecipeFile { name: "Dockerfile", body: include_str!("../../docker/ubuntu/Dockerfile"), mode: 0o644 },
    RecipeFile { name: "sudoers-dba", body: include_str!("../../docker/ubuntu/sudoers-dba"), mode: 0o440 },
    RecipeFile { name: "journald-pglab.conf", body: include_str!("../../docker/ubuntu/journald-pglab.conf"), mode: 0o644 },
    RecipeFile { name: "sshd-pglab.conf", body: include_str!("../../docker/ubuntu/sshd-pglab.conf"), mode: 0o644 },
    RecipeFile { name: "ssh-hostkeys.conf", body: include_str!("../../docker/ubuntu/ssh-hostkeys.conf"), mode: 0o644 },
];

const S3: &[RecipeFile] = &[
    RecipeFile { name: "rootfs.sh", body: include_str!("../../../docker/s3/rootfs.sh"), mode: 0o755 },
    RecipeFile { name: "Dockerfile", body: include_str!("../../../docker/s3/Dockerfile"), mode: 0o644 },
    RecipeFile { name: "server/Cargo.toml", body: include_str!("../../../docker/s3/pglab-s3d.toml"), mode: 0o644 },
    RecipeFile { name: "server/Cargo.lock", body: include_str!("../../../docker/s3/pglab-s3d.lock"), mode: 0o644 },
    RecipeFile { name: "server/src/main.rs", body: include_str!("../../../docker/s3/pglab-s3d.rs"), mode: 0o644 },
    RecipeFile { name: "pglab-s3.service", body: include_str!("../../../docker/s3/pglab-s3.service"), mode: 0o644 },
    RecipeFile { name: "pglab-s3-tls.service", body: include_str!("../../../docker/s3/pglab-s3-tls.service"), mode: 0o644 },
    RecipeFile { name: "stunnel.conf", body: include_str!("../../../docker/s3/stunnel.conf"), mode: 0o644 },
    RecipeFile { name: "pglab-s3-scan", body: include_str!("../../../docker/s3/pglab-s3-scan"), mode: 0o755 },
    RecipeFile { name: "journald-pglab.conf", body: include_str!("../../../docker/s3/journald-pglab.conf"), mode: 0o644 },
];

/// What an image's tag says of what it is built from: the platform's row
/// (suite, versions, init arguments) and the recipe's files (12 hex digits).
fn recipe_hash(platform: Platform, files: &[RecipeFile]) -> String {
    let mut h = Sha256::new();
    h.update(format!("{:?}", platform.row()));
    for f in files {
        h.update(f.name);
        h.update(f.mode.to_le_bytes());
        h.update(f.body);
    }
    hex::encode(h.finalize())[..12].to_string()
}

/// Which recipe an image is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recipe {
    /// A platform's host: PostgreSQL, pgBackRest's packages, sshd, cron.
    Platform,
    /// The object store (`s3` hosts), the same on every platform.
    ObjectStore,
}

/// The platform whose suite the object store's image is built from.
pub(crate) const OBJECT_STORE_BASE: Platform = Platform::Debian12;

fn recipe(platform: Platform) -> &'static [RecipeFile] {
    match platform.recipe_dir() {
        "debian" => DEBIAN,
        _ => UBUNTU,
    }
}

/// The image a platform's hosts run, named by what it is built from.
#[derive(Debug, Clone)]
pub struct HostImage {
    /// The platform it is for.
    pub platform: Platform,
    /// `pglab/<platform>`.
    pub name: String,
    /// A hash of the recipe and the platform's row: an edit makes a new tag.
    pub tag: String,
    pub(crate) recipe: Recipe,
}

/// How `ensure` found or made the image.
#[derive(Debug, Clone)]
pub(crate) struct Ensured {
    pub image: HostImage,
    pub cached: bool,
    pub elapsed: Duration,
}

impl HostImage {
    /// The image a platform's hosts run (built or not).
    pub fn for_platform(platform: Platform) -> Self {
        let hash = recipe_hash(platform, recipe(platform));
        HostImage { platform, name: format!("pglab/{}", platform.name()), tag: format!("pg{}-{hash}", platform.pg_major()), recipe: Recipe::Platform }
    }

    /// The image of every lab's object store (`s3` hosts): one per machine,
    /// whatever the lab's platform.
    pub fn object_store() -> Self {
        let hash = recipe_hash(OBJECT_STORE_BASE, S3);
        HostImage { platform: OBJECT_STORE_BASE, name: "pglab/s3".into(), tag: format!("s3s-{hash}"), recipe: Recipe::ObjectStore }
    }

    fn files(&self) -> &'static [RecipeFile] {
        match self.recipe {
            Recipe::Platform => recipe(self.platform),
            Recipe::ObjectStore => S3,
        }
    }

    /// What its `pglab.image` label says: the platform, or `s3`.
    fn label(&self) -> &'static str {
        match self.recipe {
            Recipe::Platform => self.platform.name(),
            Recipe::ObjectStore => OBJECT_STORE_LABEL,
        }
    }

    /// `name:tag`, as the engine names it.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }

    /// The engine's id of the image now under [`reference`](HostImage::reference):
    /// a forced rebuild keeps the tag, not the id.
    pub(crate) async fn id(&self, docker: &Docker) -> Result<String> {
        let info = docker.inspect_image(&self.reference()).await.map_err(|e| Error::docker(format!("inspect {}", self.reference()), e))?;
        info.id.ok_or_else(|| Error::Other(format!("{} has no id", self.reference())))
    }

    /// The line on which a build of this image shows its phases.
    pub(crate) fn phases(&self, progress: &Progress) -> PhaseBar {
        progress.phases(format!("image {}", self.label()), BUILD_PHASES)
    }

    /// The labels every build of it carries: its platform and pglab's version.
    fn own_labels(&self) -> HashMap<String, String> {
        HashMap::from([(LABEL_IMAGE.to_string(), self.label().to_string()), (LABEL_VERSION.to_string(), env!("CARGO_PKG_VERSION").to_string())])
    }

    /// Whether the engine has it.
    pub(crate) async fn exists(&self, docker: &Docker) -> Result<bool> {
        image_exists(docker, &self.reference()).await
    }

    /// Finds the image, or builds it (always when `force`).
    pub(crate) async fn ensure(&self, docker: &Docker, force: bool, progress: &PhaseBar) -> Result<Ensured> {
        let ensured = self.find_or_build(docker, force, progress).await;
        progress.finish();
        ensured
    }

    async fn find_or_build(&self, docker: &Docker, force: bool, progress: &PhaseBar) -> Result<Ensured> {
        let start = Instant::now();
        if !force && self.exists(docker).await? {
            return Ok(Ensured { image: self.clone(), cached: true, elapsed: start.elapsed() });
        }
        // Parallel test processes must not build the same image twice.
        let _lock = self.build_lock().await?;
        if !force && self.exists(docker).await? {
            return Ok(Ensured { image: self.clone(), cached: true, elapsed: start.elapsed() });
        }
        let takes = match self.recipe {
            Recipe::Platform => "under a minute",
            Recipe::ObjectStore => "a few minutes: its server is compiled",
        };
        progress.phase(format!("building {} (first use; {takes})", self.reference()), false);
        tracing::info!(image = %self.reference(), "building host image");
        match self.platform.base() {
            Base::Mmdebstrap { suite } => self.build_debian(docker, suite, progress).await?,
            Base::Registry { image } => self.build_from_registry_base(docker, image, progress).await?,
        }
        progress.phase(format!("built in {:.1}s", start.elapsed().as_secs_f64()), true);
        Ok(Ensured { image: self.clone(), cached: false, elapsed: start.elapsed() })
    }

    async fn build_lock(&self) -> Result<std::fs::File> {
        let path = std::env::temp_dir().join(format!("{LOCK_PREFIX}{}@{}.lock", self.label(), self.tag));
        let file = std::fs::File::create(&path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        tokio::task::spawn_blocking(move || file.lock().map(|_| file))
            .await
            .map_err(|e| Error::Other(format!("image lock: {e}")))?
            .map_err(|e| Error::io("locking the image build", e))
    }

    async fn build_debian(&self, docker: &Docker, suite: &str, progress: &PhaseBar) -> Result<()> {
        ensure_mmdebstrap().await?;
        let mirror = host_apt_mirror()?;
        let dir = tempfile::tempdir().map_err(|e| Error::io("creating build dir", e))?;
        write_recipe(dir.path(), self.files())?;

        let base = format!("{}-base:{}", self.name, self.tag);
        // The rootfs goes to a file first: its labels (what was installed)
        // are known only at the end, and the import is the one place that
        // sets them all at once (the builder makes a layer per label).
        // Named so that `pglab gc` finds what a killed build left (in RAM, on /dev/shm).
        let scratch = tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir_in(fast_tmpdir().unwrap_or_else(std::env::temp_dir))
            .map_err(|e| Error::io("creating scratch dir", e))?;
        let tar_path = scratch.path().join("rootfs.tar");
        let tar = std::fs::File::create(&tar_path).map_err(|e| Error::io("creating rootfs.tar", e))?;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg(dir.path().join("rootfs.sh")).arg(suite);
        match self.recipe {
            Recipe::Platform => cmd.arg(self.platform.pg_major().to_string()).arg(&mirror).arg(dir.path()),
            Recipe::ObjectStore => {
                progress.phase("cargo install: the object store's server, s3s-fs (minutes, once per machine)", true);
                let bin = dir.path().join("server-bin");
                build_server(&dir.path().join("server"), &bin).await?;
                cmd.arg(&mirror).arg(dir.path()).arg(bin.join("bin"))
            }
        };
        // dpkg writes the rootfs file by file: a tmpfs takes a quarter off.
        cmd.env("TMPDIR", scratch.path());
        let mut child = cmd.stdout(tar).stderr(Stdio::piped()).kill_on_drop(true).spawn().map_err(|e| Error::io("starting mmdebstrap", e))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let log = self.follow_mmdebstrap(stderr, suite, progress).await;
        let status = child.wait().await.map_err(|e| Error::io("waiting for mmdebstrap", e))?;
        if !status.success() {
            return Err(Error::ImageBuild { image: self.reference(), step: format!("mmdebstrap {suite} (exit {status})"), tail: tail_lines(&log, 20) });
        }
        let built = std::fs::read_to_string(dir.path().join("image.env")).map_err(|e| Error::io("reading what mmdebstrap installed (image.env)", e))?;

        progress.phase("import: the rootfs, its command and labels", true);
        let mut changes =
            vec!["ENV container=docker".to_string(), format!("CMD {}", serde_json::to_string(&self.platform.init_cmd()).expect("strings serialize"))];
        let mut labels = built_labels(&built);
        labels.extend(self.own_labels());
        changes.extend(labels.iter().map(|(k, v)| format!("LABEL {k}={}", serde_json::to_string(v).expect("strings serialize"))));
        let file = tokio::fs::File::open(&tar_path).await.map_err(|e| Error::io("opening rootfs.tar", e))?;
        let imported = docker
            .create_image(
                Some(CreateImageOptions {
                    from_src: Some("-".into()),
                    repo: Some(format!("{}-base", self.name)),
                    tag: Some(self.tag.clone()),
                    changes,
                    ..Default::default()
                }),
                Some(bollard::body_try_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20))),
                None,
            )
            .collect::<Vec<_>>()
            .await;
        for item in imported {
            item.map_err(|e| Error::ImageBuild { image: base.clone(), step: "docker import of the rootfs".into(), tail: e.to_string() })?;
        }
        drop(scratch);

        progress.phase("layer: the stop signal", true);
        let layered = self.build_dockerfile(docker, self.files(), &base, None).await;
        // The base tag is an intermediate, gone whether the layer worked or not
        // (the final image keeps its layers).
        let _ = docker.remove_image(&base, Some(RemoveImageOptions { noprune: true, ..Default::default() }), None).await;
        layered
    }

    /// Shows mmdebstrap's phases as they come; returns its whole log.
    async fn follow_mmdebstrap(&self, stderr: tokio::process::ChildStderr, suite: &str, progress: &PhaseBar) -> String {
        let mut reader = tokio::io::BufReader::new(stderr);
        let mut all = String::new();
        let mut customizing = false;
        let mut raw = Vec::new();
        // Read to the end whatever the bytes: a pipe closed early would kill mmdebstrap.
        while reader.read_until(b'\n', &mut raw).await.is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&raw).trim_end_matches('\n').to_string();
            raw.clear();
            if let Some(phase) = line.strip_prefix("I: ").filter(|p| MMDEBSTRAP_PHASES.iter().any(|s| p.starts_with(s))) {
                let hook = phase.starts_with("running --customize-hook");
                if !hook || !customizing {
                    let what = if hook { "customize hooks (local apt repository, recipe files, versions)" } else { phase.trim_end_matches("...") };
                    progress.phase(format!("mmdebstrap {suite}: {}", what.chars().take(70).collect::<String>()), true);
                }
                customizing = hook;
            }
            tracing::debug!(target: "pglab::mmdebstrap", "{line}");
            all.push_str(&line);
            all.push('\n');
        }
        all
    }

    async fn build_from_registry_base(&self, docker: &Docker, base: &str, progress: &PhaseBar) -> Result<()> {
        if !image_exists(docker, base).await? {
            return Err(Error::ImageMissing {
                image: base.to_string(),
                hint: format!(
                    "platform {} is built FROM {base}, which pglab never pulls; `docker pull {base}` on an engine that reaches a registry, or use --platform debian-12",
                    self.platform
                ),
            });
        }
        progress.phase(format!("layer: Dockerfile FROM {base}"), true);
        self.build_dockerfile(docker, recipe(self.platform), base, Some(self.own_labels())).await
    }

    /// Classic builder (no BuildKit: it asks a registry even for local bases).
    /// `labels`: each is a layer of its own (the classic builder's way), so few.
    async fn build_dockerfile(&self, docker: &Docker, files: &[RecipeFile], base: &str, labels: Option<HashMap<String, String>>) -> Result<()> {
        let context = context_tar(files)?;
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(self.reference()),
            rm: true,
            forcerm: true,
            pull: None,
            buildargs: Some(HashMap::from([("BASE".to_string(), base.to_string()), ("PG_MAJOR".to_string(), self.platform.pg_major().to_string())])),
            labels,
            version: BuilderVersion::BuilderV1,
            ..Default::default()
        };
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
        let mut out = String::new();
        let mut step = String::from("Dockerfile");
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = info.stream {
                        if let Some(rest) = s.trim().strip_prefix("Step ") {
                            step = rest.to_string();
                        }
                        out.push_str(&s);
                    }
                    if let Some(detail) = info.error_detail {
                        return Err(Error::ImageBuild {
                            image: self.reference(),
                            step,
                            tail: format!("{}\n{}", tail_lines(&out, 20), detail.message.unwrap_or_default()),
                        });
                    }
                }
                Err(e) => return Err(Error::ImageBuild { image: self.reference(), step, tail: format!("{}\n{e}", tail_lines(&out, 20)) }),
            }
        }
        Ok(())
    }
}

/// An image on the engine that pglab built, and what it was built from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageInfo {
    /// `name:tag`.
    pub reference: String,
    /// The platform it is for (`debian-12`).
    pub platform: String,
    /// Its tag is the one this pglab's recipe gives (else an older recipe's).
    pub current: bool,
    /// Its size on the engine.
    pub size_mb: u64,
    /// When it was made (Unix time).
    pub created: i64,
    /// `pglab.built.*` labels without the prefix: os, suite, archive_date,
    /// postgresql, pgbackrest, systemd, openssh, packages (a digest of every
    /// installed package and version).
    pub built: BTreeMap<String, String>,
}

/// The host images on the engine, newest first.
pub(crate) async fn list(docker: &Docker) -> Result<Vec<ImageInfo>> {
    let filters = HashMap::from([("label".to_string(), vec![LABEL_IMAGE.to_string()])]);
    let images = docker
        .list_images(Some(bollard::query_parameters::ListImagesOptions { filters: Some(filters), ..Default::default() }))
        .await
        .map_err(|e| Error::docker("list images", e))?;
    let mut out = Vec::new();
    // A checkpoint's images carry their platform's labels too: they are `pglab checkpoint list`'s.
    for i in images.into_iter().filter(|i| !i.labels.contains_key(super::LABEL_CHECKPOINT)) {
        let platform = i.labels.get(LABEL_IMAGE).cloned().unwrap_or_default();
        let current_ref = match platform.as_str() {
            OBJECT_STORE_LABEL => Some(HostImage::object_store().reference()),
            p => p.parse::<Platform>().ok().map(|p| HostImage::for_platform(p).reference()),
        };
        for reference in i.repo_tags.iter().filter(|t| !t.contains("-base:") && t.as_str() != "<none>:<none>") {
            out.push(ImageInfo {
                reference: reference.clone(),
                platform: platform.clone(),
                current: current_ref.as_deref() == Some(reference.as_str()),
                size_mb: (i.size.max(0) as u64) >> 20,
                created: i.created,
                built: built_of(&i.labels),
            });
        }
    }
    out.sort_by_key(|i| std::cmp::Reverse(i.created));
    Ok(out)
}

fn built_of(labels: &HashMap<String, String>) -> BTreeMap<String, String> {
    labels.iter().filter_map(|(k, v)| k.strip_prefix(LABEL_BUILT).map(|k| (k.to_string(), v.clone()))).collect()
}

/// What the image `reference` was built from (its `pglab.built.*` labels).
pub(crate) async fn built(docker: &Docker, reference: &str) -> Result<BTreeMap<String, String>> {
    let info = docker.inspect_image(reference).await.map_err(|e| Error::docker(format!("inspect image {reference}"), e))?;
    Ok(info.config.and_then(|c| c.labels).map(|l| built_of(&l)).unwrap_or_default())
}

async fn image_exists(docker: &Docker, reference: &str) -> Result<bool> {
    match docker.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(e) => Err(Error::docker(format!("inspect image {reference}"), e)),
    }
}

fn context_tar(files: &[RecipeFile]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(f.body.len() as u64);
        header.set_mode(f.mode);
        header.set_mtime(0);
        header.set_cksum();
        b.append_data(&mut header, f.name, f.body.as_bytes()).map_err(|e| Error::io("build context", e))?;
    }
    b.into_inner().map_err(|e| Error::io("build context", e))
}

/// An image build's lock file: `<prefix><label>@<tag>.lock` in the temp dir.
const LOCK_PREFIX: &str = "pglab-image-";

/// The `pglab.image` labels of the images some pglab process is building now.
pub(crate) fn builds_running() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((label, _)) = name.strip_prefix(LOCK_PREFIX).and_then(|n| n.strip_suffix(".lock")).and_then(|n| n.split_once('@')) else { continue };
        if std::fs::File::open(e.path()).is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock))) {
            out.push(label.to_string());
        }
    }
    out
}

/// The `pglab.image` label of the object store's image.
pub(crate) const OBJECT_STORE_LABEL: &str = "s3";

/// Builds the object store's server (`docker/s3/pglab-s3d.*`, s3s-fs and the
/// crates its lockfile pins, from crates.io) with the building machine's
/// cargo (the one running pglab, else `cargo` on the PATH) into `root/bin`.
async fn build_server(source: &std::path::Path, root: &std::path::Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = tokio::process::Command::new(&cargo)
        .args(["install", "--quiet", "--locked", "--path"])
        .arg(source)
        .arg("--root")
        .arg(root)
        .env_remove("RUSTFLAGS")
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(Error::ImageBuild {
            image: "pglab/s3".into(),
            step: format!("cargo install pglab-s3d (exit {})", o.status),
            tail: tail_lines(&String::from_utf8_lossy(&o.stderr), 20),
        }),
        Err(e) => Err(Error::Environment(format!(
            "the object store's image builds its server with cargo, which is not on this machine ({e}); install Rust's toolchain (rustup)"
        ))),
    }
}

/// Writes a recipe's files into a build directory, each with its mode.
fn write_recipe(dir: &std::path::Path, files: &[RecipeFile]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for f in files {
        let path = dir.join(f.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(&path, f.body).map_err(|e| Error::io(format!("writing {}", f.name), e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode)).map_err(|e| Error::io(format!("chmod {}", f.name), e))?;
    }
    Ok(())
}

/// `/dev/shm` when it has room for a rootfs build (2 GiB) and may run
/// programs (mmdebstrap's chroot does), else the default.
fn fast_tmpdir() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let shm = mounts.lines().find(|l| l.split_whitespace().nth(1) == Some("/dev/shm"))?;
    if shm.split_whitespace().nth(3).is_some_and(|opts| opts.split(',').any(|o| o == "noexec")) {
        return None;
    }
    let out = std::process::Command::new("df").args(["-Pk", "/dev/shm"]).output().ok()?;
    let avail_kib: u64 = String::from_utf8_lossy(&out.stdout).lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    (avail_kib >= 2 << 20).then(|| "/dev/shm".into())
}

/// Prefix of the labels that say what an image was built from.
pub(crate) const LABEL_BUILT: &str = "pglab.built.";

/// `key=value` lines of `image.env` as image labels (`pglab.built.<key>`).
fn built_labels(env: &str) -> HashMap<String, String> {
    env.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (format!("{LABEL_BUILT}{}", k.trim()), v.trim().to_string())).collect()
}

/// mmdebstrap runs on the host; install it when we can, say how when we can't.
async fn ensure_mmdebstrap() -> Result<()> {
    if which("mmdebstrap") {
        return Ok(());
    }
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false);
    if !(is_root && which("apt-get")) {
        return Err(Error::Environment("mmdebstrap is not installed; install it with `sudo apt-get install -y mmdebstrap` and run again".into()));
    }
    // Builds of several platforms (`image build --all`, tests in parallel)
    // all get here: one installs, the others wait and find it.
    let lock_path = std::env::temp_dir().join("pglab-mmdebstrap.lock");
    let _held = tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
        f.lock().map(|()| f)
    })
    .await
    .map_err(|e| Error::Other(format!("waiting to install mmdebstrap: {e}")))?
    .map_err(|e| Error::io("locking the mmdebstrap install", e))?;
    if which("mmdebstrap") {
        return Ok(());
    }
    crate::progress::say("mmdebstrap not found: installing it with apt-get (needed once, to build the host image)");
    for args in [&["update", "-qq"][..], &["install", "-y", "-qq", "mmdebstrap"][..]] {
        let out = tokio::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .await
            .map_err(|e| Error::io("running apt-get", e))?;
        if !out.status.success() {
            return Err(Error::ImageBuild {
                image: "mmdebstrap".into(),
                step: format!("apt-get {}", args.join(" ")),
                tail: tail_lines(&String::from_utf8_lossy(&out.stderr), 10),
            });
        }
    }
    Ok(())
}

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file())).unwrap_or(false)
}

/// The Debian mirror this host's apt already uses (deb822 or one-line form).
/// Security and updates suites are skipped: the base suite is what we need.
/// `PGLAB_DEBIAN_MIRROR` overrides it (a non-Debian host, such as an Ubuntu CI runner).
pub(crate) fn host_apt_mirror() -> Result<String> {
    if let Ok(m) = std::env::var("PGLAB_DEBIAN_MIRROR") {
        if !m.trim().is_empty() {
            return Ok(m.trim().to_string());
        }
    }
    let mut files = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        let found = if f.extension().is_some_and(|e| e == "sources") { mirror_from_deb822(&text) } else { mirror_from_one_line(&text) };
        if let Some(m) = found {
            return Ok(m);
        }
    }
    Err(Error::Environment(
        "no Debian mirror found in the host's apt sources (/etc/apt/sources.list[.d]); pglab builds its images from the mirror apt already uses".into(),
    ))
}

fn is_base_suite(suite: &str) -> bool {
    !suite.contains('-') && !suite.contains('/')
}

fn mirror_from_deb822(text: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| stanza.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()));
        let (Some(types), Some(uris), Some(suites)) = (field("Types:"), field("URIs:"), field("Suites:")) else { continue };
        if types.split_whitespace().any(|t| t == "deb") && suites.split_whitespace().any(is_base_suite) {
            return uris.split_whitespace().next().map(str::to_string);
        }
    }
    None
}

fn mirror_from_one_line(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix("deb ")?;
        let mut words = rest.split_whitespace().peekable();
        if words.peek()?.starts_with('[') {
            // Options in brackets may hold spaces: skip to the closing one.
            for w in words.by_ref() {
                if w.ends_with(']') {
                    break;
                }
            }
        }
        let uri = words.next()?;
        let suite = words.next()?;
        is_base_suite(suite).then(|| uri.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_is_read_from_either_sources_format() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n";
        assert_eq!(mirror_from_deb822(deb822).as_deref(), Some("http://mirror.example/debian"));
        let one = "# c\ndeb [signed-by=/x arch=amd64] http://m.example/debian bookworm main\n";
        assert_eq!(mirror_from_one_line(one).as_deref(), Some("http://m.example/debian"));
        assert_eq!(mirror_from_one_line("deb http://m.example/s bookworm-security main"), None);
    }

    #[test]
    fn tag_changes_with_the_recipe_and_platform() {
        let a = HostImage::for_platform(Platform::Debian12);
        let b = HostImage::for_platform(Platform::Ubuntu2204);
        assert_ne!(a.tag, b.tag);
        let tags: std::collections::BTreeSet<String> = Platform::ALL.iter().map(|p| HostImage::for_platform(*p).reference()).collect();
        assert_eq!(tags.len(), Platform::ALL.len(), "one image per platform: {tags:?}");
        assert!(a.tag.starts_with("pg15-"), "{}", a.tag);
        assert_eq!(a.tag, HostImage::for_platform(Platform::Debian12).tag);
    }

    /// gc spares the dangling images of a build that runs, and only those.
    #[tokio::test]
    async fn a_held_build_lock_names_the_image_being_built() {
        let image = HostImage { tag: format!("test-{}", std::process::id()), ..HostImage::object_store() };
        let held = image.build_lock().await.unwrap();
        assert!(builds_running().contains(&OBJECT_STORE_LABEL.to_string()), "{:?}", builds_running());
        drop(held);
        let path = std::env::temp_dir().join(format!("{LOCK_PREFIX}{OBJECT_STORE_LABEL}@{}.lock", image.tag));
        assert!(path.exists(), "the lock is the file gc reads");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn the_object_store_image_is_one_per_machine_and_not_a_platform() {
        let s3 = HostImage::object_store();
        assert_eq!(s3.name, "pglab/s3");
        assert_eq!(s3.label(), OBJECT_STORE_LABEL);
        assert!(Platform::ALL.iter().all(|p| HostImage::for_platform(*p).reference() != s3.reference()));
    }
}
