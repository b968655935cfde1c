//! Files in and out of a host through the engine's archive API: no exec,
//! no shell quoting, mode and owner in the tar header.

use std::path::Path;

use bollard::query_parameters::UploadToContainerOptions;
use futures_util::StreamExt;

use super::exec::Cmd;
use super::host::Host;
use crate::error::{Error, Result};
use crate::time::Deadline;

/// A file read with what an edit must keep.
#[derive(Debug, Clone)]
pub struct FileMeta {
    /// The file itself, links followed: where an edit writes back.
    pub path: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub content: Vec<u8>,
}

/// A symlink's target as an absolute path.
fn p_join(link: &str, target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        Path::new(link).parent().unwrap_or(Path::new("/")).join(target).to_string_lossy().into_owned()
    }
}
impl Host {
    /// Writes a file through the engine's archive API: no exec, no shell
    /// quoting; mode and owner (by name) travel in the tar header.
    pub async fn write_file(&self, path: &str, contents: &[u8], mode: u32, user: &str, group: Option<&str>) -> Result<()> {
        let (uid, gid) = self.resolve_owner(user, group).await?;
        self.write_file_as(path, contents, mode, uid, gid).await
    }

    /// As `write_file`, with numeric ids (an edit keeps the file's own).
    pub async fn write_file_as(&self, path: &str, contents: &[u8], mode: u32, uid: u64, gid: u64) -> Result<()> {
        let p = Path::new(path);
        let (dir, file) = (p.parent().unwrap_or(Path::new("/")), p.file_name().unwrap_or_default());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(contents.len() as u64);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
        h.set_cksum();
        b.append_data(&mut h, file, contents).map_err(|e| Error::io("tar", e))?;
        let body = b.into_inner().map_err(|e| Error::io("tar", e))?;
        self.docker
            .upload_to_container(
                &self.container,
                Some(UploadToContainerOptions { path: dir.to_string_lossy().into_owned(), ..Default::default() }),
                bollard::body_full(body.into()),
            )
            .await
            .map_err(|e| Error::docker(format!("writing {path} on {}", self.name), e))
    }

    /// A regular file with its mode and owner, through the archive API;
    /// `None` when it does not exist.
    pub async fn stat_read(&self, path: &str) -> Result<Option<FileMeta>> {
        let mut path = path.to_string();
        // The archive API does not follow links: follow them here (a few hops).
        for _ in 0..8 {
            let opts = bollard::query_parameters::DownloadFromContainerOptions { path: path.clone() };
            let mut stream = self.docker.download_from_container(&self.container, Some(opts));
            let mut buf = Vec::new();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(b) => buf.extend_from_slice(&b),
                    Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
                    Err(e) => return Err(Error::docker(format!("reading {path} on {}", self.name), e)),
                }
            }
            let mut archive = tar::Archive::new(buf.as_slice());
            let mut entries = archive.entries().map_err(|e| Error::io("tar", e))?;
            let Some(entry) = entries.next() else { return Ok(None) };
            let mut entry = entry.map_err(|e| Error::io("tar", e))?;
            let h = entry.header();
            let kind = h.entry_type();
            if kind.is_symlink() {
                match entry.link_name().ok().flatten() {
                    Some(t) => path = p_join(&path, &t.to_string_lossy()),
                    None => return Ok(None),
                }
                continue;
            }
            if !kind.is_file() {
                return Err(Error::Other(format!("{path} on {} is not a regular file", self.name)));
            }
            let (mode, uid, gid) = (h.mode().unwrap_or(0o644) & 0o7777, h.uid().unwrap_or(0), h.gid().unwrap_or(0));
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).map_err(|e| Error::io("tar", e))?;
            return Ok(Some(FileMeta { path, mode, uid, gid, content }));
        }
        Err(Error::Other(format!("{path} on {}: too many levels of symbolic links", self.name)))
    }

    /// Reads a text file (archive API, no exec).
    pub async fn read_file(&self, path: &str) -> Result<String> {
        match self.stat_read(path).await? {
            Some(f) => Ok(String::from_utf8_lossy(&f.content).into_owned()),
            None => Err(Error::Other(format!("cannot read {path} on {}: no such file", self.name))),
        }
    }

    /// This host's SSH host key as `type base64`, read off its disk by the
    /// engine once its sshd listens with it: each host makes its own when
    /// sshd first starts, and sshd writes its pid file once it listens, long
    /// before systemd has finished booting (PostgreSQL's start takes seconds).
    /// The pid file is on a tmpfs the engine's file API cannot see: one
    /// command waits for it in the host.
    pub async fn ssh_host_key(&self) -> Result<String> {
        let deadline = Deadline::standard();
        let wait = Cmd::shell(format!("until test -s {SSHD_PID} && test -s {SSH_HOST_KEY}; do sleep 0.05; done")).timeout(deadline.budget());
        self.probe(&wait).await?;
        let text = self.read_file(SSH_HOST_KEY).await?;
        match text.split_whitespace().take(2).collect::<Vec<_>>()[..] {
            [kind, body] => Ok(format!("{kind} {body}")),
            _ => Err(Error::Other(format!("{}:{SSH_HOST_KEY} is not an SSH public key", self.name))),
        }
    }

    /// Numeric ids of `user[:group]` from the host's /etc/passwd and /etc/group.
    async fn resolve_owner(&self, user: &str, group: Option<&str>) -> Result<(u64, u64)> {
        if user == "root" && group.is_none_or(|g| g == "root") {
            return Ok((0, 0));
        }
        let passwd = self.read_file("/etc/passwd").await?;
        let entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() > 3 && f[0] == user);
        let Some(f) = entry else { return Err(Error::Other(format!("no user `{user}` on {}", self.name))) };
        let uid = f[2].parse().unwrap_or(0);
        let gid = match group {
            None => f[3].parse().unwrap_or(0),
            Some(g) => {
                let groups = self.read_file("/etc/group").await?;
                let found = groups.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() > 2 && f[0] == g);
                match found {
                    Some(f) => f[2].parse().unwrap_or(0),
                    None => return Err(Error::Other(format!("no group `{g}` on {}", self.name))),
                }
            }
        };
        Ok((uid, gid))
    }
}

/// sshd's ed25519 host key.
pub(crate) const SSH_HOST_KEY: &str = "/etc/ssh/ssh_host_ed25519_key.pub";

/// Written by sshd once it listens (on every platform built here).
const SSHD_PID: &str = "/run/sshd.pid";
