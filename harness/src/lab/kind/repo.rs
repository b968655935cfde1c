//! `repo`: a pgBackRest repository host, the layout pgBackRest's user guide
//! recommends: sshd, cron and pgBackRest (installed from the image's own
//! package cache), and no PostgreSQL cluster running (its unit is masked at
//! boot, so nothing idles there). Ready when sshd accepts a connection and
//! `pgbackrest version` answers.

use futures_util::future::{BoxFuture, FutureExt};

use super::Kind;
use crate::error::Result;
use crate::lab::host::Host;
use crate::lab::Cmd;
use crate::platform::Platform;
use crate::time::{poll_until, Deadline, Probe};
use crate::vocab::Needs;

pub(crate) struct Repo;

/// pgBackRest from the image's own package cache (every package there:
/// some suites need a library beside it), unless it is installed.
const INSTALL: &str = "command -v pgbackrest >/dev/null || dpkg -i /opt/pglab/apt/*.deb";
/// Ready: sshd accepts on port 22 and pgBackRest runs.
const READY: &str = "(exec 3<>/dev/tcp/127.0.0.1/22 && head -c 4 <&3 | grep -q SSH-) && pgbackrest version";

impl Kind for Repo {
    fn about(&self) -> &'static str {
        "a pgBackRest repository host: sshd, cron, pgBackRest, no PostgreSQL"
    }

    fn has(&self, needs: Needs) -> bool {
        needs == Needs::Any
    }

    fn init_args(&self, platform: Platform) -> Vec<String> {
        vec![format!("systemd.mask={}.service", platform.pg_unit())]
    }

    fn ready<'a>(&'a self, host: &'a Host) -> BoxFuture<'a, Result<()>> {
        async move {
            let t = std::time::Instant::now();
            // Recorded: the transcript shows what the harness installed.
            host.exec(Cmd::shell(INSTALL).user("root")).await?;
            let probe = Cmd::shell(READY).user("root").any_status();
            let said = poll_until(&format!("{} to take SSH and run pgBackRest", host.name), "`pgBackRest <version>`", Deadline::standard(), || async {
                let out = host.probe(&probe).await?;
                Ok(match out.status {
                    0 => Probe::Ready(out.stdout.trim().to_string()),
                    _ => Probe::NotYet(out.combined().trim().to_string()),
                })
            })
            .await?;
            let what = format!("repository host: sshd accepts, {said}");
            host.note("pglab (harness)", &what, &format!("no PostgreSQL cluster ({}.service masked)", host.platform.pg_unit()), t.elapsed());
            Ok(())
        }
        .boxed()
    }
}
