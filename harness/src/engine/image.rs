//! Host images: built here from `docker/` recipes, found by a content-hash tag,
//! never pulled (the engine has no registry).

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bollard::query_parameters::{BuildImageOptions, BuilderVersion, CreateImageOptions, RemoveImageOptions};
use bollard::Docker;
use futures_util::StreamExt;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;

use super::{LABEL_IMAGE, LABEL_VERSION};
use crate::error::{tail_lines, Error, Result};
use crate::platform::{Base, Platform};

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

fn recipe(platform: Platform) -> &'static [RecipeFile] {
    match platform.recipe_dir() {
        "debian" => DEBIAN,
        _ => UBUNTU,
    }
}

/// The image a platform's hosts run, named by what it is built from.
#[derive(Debug, Clone)]
pub struct HostImage {
    pub platform: Platform,
    pub name: String,
    pub tag: String,
}

/// How `ensure` found or made the image.
#[derive(Debug, Clone)]
pub struct Ensured {
    pub image: HostImage,
    pub cached: bool,
    pub elapsed: Duration,
}

impl HostImage {
    pub fn for_platform(platform: Platform) -> Self {
        let mut h = Sha256::new();
        h.update(platform.name());
        h.update(platform.pg_major().to_string());
        match platform.base() {
            Base::Mmdebstrap { suite } => h.update(suite),
            Base::Registry { image } => h.update(image),
        }
        for f in recipe(platform) {
            h.update(f.name);
            h.update(f.mode.to_le_bytes());
            h.update(f.body);
        }
        let hash = hex::encode(h.finalize());
        HostImage { platform, name: format!("pglab/{}", platform.name()), tag: format!("pg{}-{}", platform.pg_major(), &hash[..12]) }
    }

    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }

    pub async fn exists(&self, docker: &Docker) -> Result<bool> {
        image_exists(docker, &self.reference()).await
    }

    /// Finds the image, or builds it (always when `force`).
    pub async fn ensure(&self, docker: &Docker, force: bool, progress: &ProgressBar) -> Result<Ensured> {
        let start = Instant::now();
        if !force && self.exists(docker).await? {
            return Ok(Ensured { image: self.clone(), cached: true, elapsed: start.elapsed() });
        }
        // Parallel test processes must not build the same image twice.
        let _lock = self.build_lock().await?;
        if !force && self.exists(docker).await? {
            return Ok(Ensured { image: self.clone(), cached: true, elapsed: start.elapsed() });
        }
        progress.set_message(format!("building {} (first use; about a minute)", self.reference()));
        tracing::info!(image = %self.reference(), "building host image");
        match self.platform.base() {
            Base::Mmdebstrap { suite } => self.build_debian(docker, suite, progress).await?,
            Base::Registry { image } => self.build_from_registry_base(docker, image, progress).await?,
        }
        Ok(Ensured { image: self.clone(), cached: false, elapsed: start.elapsed() })
    }

    async fn build_lock(&self) -> Result<std::fs::File> {
        let path = std::env::temp_dir().join(format!("pglab-image-{}-{}.lock", self.platform.name(), self.tag));
        let file = std::fs::File::create(&path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        tokio::task::spawn_blocking(move || file.lock().map(|_| file))
            .await
            .map_err(|e| Error::Other(format!("image lock: {e}")))?
            .map_err(|e| Error::io("locking the image build", e))
    }

    async fn build_debian(&self, docker: &Docker, suite: &str, progress: &ProgressBar) -> Result<()> {
        ensure_mmdebstrap(progress).await?;
        let mirror = host_apt_mirror()?;
        let dir = tempfile::tempdir().map_err(|e| Error::io("creating build dir", e))?;
        let script = dir.path().join("rootfs.sh");
        std::fs::write(&script, DEBIAN[0].body).map_err(|e| Error::io("writing rootfs.sh", e))?;

        let base = format!("{}-base:{}", self.name, self.tag);
        progress.set_message("mmdebstrap: starting".to_string());
        let mut child = tokio::process::Command::new("sh")
            .arg(&script)
            .arg(suite)
            .arg(self.platform.pg_major().to_string())
            .arg(&mirror)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::io("starting mmdebstrap", e))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");

        // The rootfs streams straight from mmdebstrap into the engine.
        let import = docker
            .create_image(
                Some(CreateImageOptions {
                    from_src: Some("-".into()),
                    repo: Some(format!("{}-base", self.name)),
                    tag: Some(self.tag.clone()),
                    changes: vec![format!("LABEL {LABEL_IMAGE}={}", self.platform.name())],
                    ..Default::default()
                }),
                Some(bollard::body_try_stream(tokio_util::io::ReaderStream::with_capacity(stdout, 1 << 20))),
                None,
            )
            .collect::<Vec<_>>();
        let log = async {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            let mut all = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(phase) = line.strip_prefix("I: ") {
                    progress.set_message(format!("mmdebstrap: {}", phase.chars().take(70).collect::<String>()));
                }
                tracing::debug!(target: "pglab::mmdebstrap", "{line}");
                all.push_str(&line);
                all.push('\n');
            }
            all
        };
        let (imported, log) = tokio::join!(import, log);
        let status = child.wait().await.map_err(|e| Error::io("waiting for mmdebstrap", e))?;
        if !status.success() {
            return Err(Error::ImageBuild { image: self.reference(), step: format!("mmdebstrap {suite} (exit {status})"), tail: tail_lines(&log, 20) });
        }
        for item in imported {
            item.map_err(|e| Error::ImageBuild { image: base.clone(), step: "docker import of the rootfs".into(), tail: e.to_string() })?;
        }

        progress.set_message("layer: Dockerfile".to_string());
        self.build_dockerfile(docker, DEBIAN, &base).await?;
        // The base tag is an intermediate: the final image keeps its layers.
        let _ = docker.remove_image(&base, Some(RemoveImageOptions { noprune: true, ..Default::default() }), None).await;
        Ok(())
    }

    async fn build_from_registry_base(&self, docker: &Docker, base: &str, progress: &ProgressBar) -> Result<()> {
        if !image_exists(docker, base).await? {
            return Err(Error::ImageMissing {
                image: base.to_string(),
                hint: format!(
                    "platform {} is built FROM {base}, which pglab never pulls; `docker pull {base}` on an engine that reaches a registry, or use --platform debian-12",
                    self.platform
                ),
            });
        }
        progress.set_message(format!("layer: Dockerfile FROM {base}"));
        self.build_dockerfile(docker, recipe(self.platform), base).await
    }

    /// Classic builder (no BuildKit: it asks a registry even for local bases).
    async fn build_dockerfile(&self, docker: &Docker, files: &[RecipeFile], base: &str) -> Result<()> {
        let context = context_tar(files)?;
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(self.reference()),
            rm: true,
            forcerm: true,
            pull: None,
            buildargs: Some(HashMap::from([("BASE".to_string(), base.to_string()), ("PG_MAJOR".to_string(), self.platform.pg_major().to_string())])),
            labels: Some(HashMap::from([
                (LABEL_IMAGE.to_string(), self.platform.name().to_string()),
                (LABEL_VERSION.to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ])),
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

/// mmdebstrap runs on the host; install it when we can, say how when we can't.
async fn ensure_mmdebstrap(progress: &ProgressBar) -> Result<()> {
    if which("mmdebstrap") {
        return Ok(());
    }
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false);
    if !(is_root && which("apt-get")) {
        return Err(Error::Other("mmdebstrap is not installed; install it with `sudo apt-get install -y mmdebstrap` and run again".into()));
    }
    progress.println("mmdebstrap not found: installing it with apt-get (needed once, to build the host image)");
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
pub fn host_apt_mirror() -> Result<String> {
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
    Err(Error::Other(
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
        assert!(a.tag.starts_with("pg15-"), "{}", a.tag);
        assert_eq!(a.tag, HostImage::for_platform(Platform::Debian12).tag);
    }
}
