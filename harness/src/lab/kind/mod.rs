//! Host kinds: each is one module saying which image its hosts run (and
//! how systemd starts there), what "ready" means, which verbs it has, and
//! what the transcript says of it once ready. A new kind is a module here
//! plus its arm in [`spec`] (and its recipe, when it has an image of its own).

mod pg;
mod repo;
pub(crate) mod s3;

use futures_util::future::BoxFuture;

use super::host::Host;
pub(crate) use super::provided::Provided;
use crate::engine::image::HostImage;
use crate::error::Result;
use crate::platform::Platform;
use crate::vocab::{HostKind, Needs};

/// What a kind of host is.
pub(crate) trait Kind: Sync {
    /// What runs there, in a few words (for errors and reports).
    fn about(&self) -> &'static str;
    /// Whether its hosts have what `needs` asks.
    fn has(&self, needs: Needs) -> bool;
    /// Arguments to systemd (PID 1) beyond the platform's own.
    fn init_args(&self, platform: Platform) -> Vec<String>;
    /// The systemd units whose journal is a failing step's evidence here
    /// (none: PostgreSQL's and pgBackRest's own logs are).
    fn log_units(&self) -> &'static [&'static str] {
        &[]
    }
    /// The image its hosts run when it is not the platform's.
    fn image(&self) -> Option<HostImage> {
        None
    }
    /// A directory of many small files kept on a volume of the engine, not
    /// in the container's layers: on a storage driver like fuse-overlayfs
    /// every file made there costs milliseconds. A checkpoint carries it
    /// in the host's image as one archive (see `checkpoint`).
    fn data_dir(&self) -> Option<&'static str> {
        None
    }
    /// Once, as the lab starts: sets the host up with what pglab made for
    /// the lab (`provided`), before [`ready`](Kind::ready).
    fn provision<'a>(&'a self, _host: &'a Host, _provided: &'a Provided) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Waits until the host can take steps (at start and after a restart),
    /// and says in the transcript what is there.
    fn ready<'a>(&'a self, host: &'a Host) -> BoxFuture<'a, Result<()>>;
}

/// The module of `kind`.
pub(crate) fn spec(kind: HostKind) -> &'static dyn Kind {
    match kind {
        HostKind::Pg => &pg::Pg,
        HostKind::Repo => &repo::Repo,
        HostKind::S3 => &s3::S3,
    }
}

/// Every kind knows it is one: each module's `has` agrees with the others on `Any`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_shell_and_only_pg_runs_postgres() {
        for k in HostKind::ALL {
            assert!(spec(k).has(Needs::Any), "{k}");
            assert_eq!(spec(k).has(Needs::Postgres), k == HostKind::Pg, "{k}");
        }
        assert!(spec(HostKind::Repo).init_args(Platform::Debian12).iter().any(|a| a == "systemd.mask=postgresql@15-main.service"));
    }
}
