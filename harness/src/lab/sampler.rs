//! Replication lag sampled in the background while a fault scenario runs:
//! what each writable host's `pg_stat_replication` says about every 100 ms,
//! over connections of the sampler's own (a step's client is never held).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::host::Host;
use super::route::Route;
use crate::outcome::LagSample;

const EVERY: Duration = Duration::from_millis(100);
/// A frozen or cut-off host must not hold the others' samples back long.
const PATIENCE: Duration = Duration::from_millis(300);
const SQL: &str = "SELECT host(client_addr), pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8, \
                   extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication WHERE NOT pg_is_in_recovery()";

pub(crate) struct LagSampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<LagSample>>,
}

impl LagSampler {
    /// Starts sampling every host; `clock` is the run's time zero.
    pub(crate) fn start(hosts: &[Host], clock: Instant) -> Self {
        // Only hosts whose kind runs PostgreSQL have a pg_stat_replication.
        let hosts: Vec<&Host> = hosts.iter().filter(|h| h.has(crate::vocab::Needs::Postgres)).collect();
        let routes: Vec<Route> = hosts.iter().map(|h| h.route()).collect();
        let names: BTreeMap<String, String> = hosts.iter().map(|h| (h.ip.to_string(), h.name.clone())).collect();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut clients: Vec<Option<Client>> = routes.iter().map(|_| None).collect();
            let mut out = Vec::new();
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stopped.changed() => return out,
                    _ = tick.tick() => {}
                }
                let at_s = clock.elapsed().as_secs_f64();
                let rows = join_all(routes.iter().zip(clients.iter_mut()).map(|(r, c)| sample(r, c))).await;
                for (route, rows) in routes.iter().zip(rows) {
                    for (addr, bytes, seconds) in rows.into_iter().flatten() {
                        let standby = names.get(&addr).cloned().unwrap_or(addr);
                        out.push(LagSample { at_s, primary: route.host.clone(), standby, bytes, seconds });
                    }
                }
            }
        });
        LagSampler { stop, task }
    }

    /// Stops sampling and returns the samples, oldest first.
    pub(crate) async fn stop(self) -> Vec<LagSample> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// One host's rows, connecting first when needed; `None` when it does not answer in time.
async fn sample(route: &Route, client: &mut Option<Client>) -> Option<Vec<(String, f64, Option<f64>)>> {
    if client.as_ref().is_none_or(Client::is_closed) {
        *client = Some(route.connect(PATIENCE).await.ok()?);
    }
    match tokio::time::timeout(PATIENCE, client.as_ref()?.query(SQL, &[])).await {
        // A walsender that has not replayed anything yet has no lag to show.
        Ok(Ok(rows)) => Some(
            rows.iter().filter_map(|r| Some((r.try_get::<_, Option<String>>(0).ok()??, r.try_get::<_, Option<f64>>(1).ok()??, r.try_get(2).ok()?))).collect(),
        ),
        _ => {
            *client = None;
            None
        }
    }
}
