//! `pg`: a PostgreSQL server, as Debian's packages leave it (the cluster
//! initialised and running), with sshd and cron. Ready when PostgreSQL
//! answers the harness's route.

use futures_util::future::{BoxFuture, FutureExt};

use super::Kind;
use crate::error::Result;
use crate::lab::host::Host;
use crate::lab::HARNESS_USER;
use crate::platform::Platform;
use crate::time::Deadline;
use crate::vocab::Needs;

pub(crate) struct Pg;

impl Kind for Pg {
    fn about(&self) -> &'static str {
        "PostgreSQL, sshd, cron"
    }

    fn has(&self, needs: Needs) -> bool {
        needs != Needs::ObjectStore
    }

    fn init_args(&self, _: Platform) -> Vec<String> {
        Vec::new()
    }

    /// Waits until the harness's route reaches the host's PostgreSQL, and
    /// says in the transcript what the route is: it changes nothing on the host.
    fn ready<'a>(&'a self, host: &'a Host) -> BoxFuture<'a, Result<()>> {
        async move {
            let t = std::time::Instant::now();
            // Whether its server ever started says why: the log lines go with the last value seen.
            host.with_logs(host.wait_for_pg_up(Deadline::standard()).await).await?;
            let what = format!("SQL route: {}", host.route().describe());
            let said = format!("connected as {HARNESS_USER} (peer authentication, Debian's own pg_hba line); no role or pg_hba line added");
            host.note("pglab (harness)", &what, &said, t.elapsed());
            Ok(())
        }
        .boxed()
    }
}
