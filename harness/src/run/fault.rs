//! The fault steps: one function per fault [`Action`], each a host verb
//! of `lab::faults` or a background writer of `lab::load`, returning what
//! it observed for reports.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::lab::{Host, Hosts, LsnKind};
use crate::scenario::{KillWhat, LatencyAction, LoadAction, LoadKind, Peers, StopMode, Vars};
use crate::time::Deadline;

/// The hosts `peers` names, or every other host for `"all"`.
fn peers<'a, L: Hosts>(lab: &'a L, host: &Host, peers: &Peers) -> Result<Vec<&'a Host>> {
    match peers {
        Peers::All => Ok(lab.hosts().iter().filter(|h| h.name != host.name).collect()),
        Peers::Hosts(names) => names.iter().map(|n| lab.host(n.get_ref())).collect(),
    }
}

fn names(hosts: &[&Host]) -> String {
    hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
}

pub async fn partition<L: Hosts>(lab: &L, host: &Host, p: &Peers) -> Result<String> {
    let peers = peers(lab, host, p)?;
    host.partition(&peers).await?;
    Ok(format!("{} cut off from {}", host.name, names(&peers)))
}

pub async fn heal<L: Hosts>(lab: &L, host: &Host, p: &Peers) -> Result<String> {
    let peers = peers(lab, host, p)?;
    host.heal(&peers).await?;
    Ok(format!("{} reaches {} again", host.name, names(&peers)))
}

pub async fn latency<L: Hosts>(lab: &L, host: &Host, l: &LatencyAction) -> Result<String> {
    let peer = lab.host(l.to.get_ref())?;
    let how = host.add_latency(peer, l.ms).await?;
    Ok(format!("{how}; {}", restream(host, peer).await?))
}

/// A replication connection made before a change of path goes on as it
/// was: its walsender is ended so the standby connects again, by the new path.
async fn restream(standby: &Host, primary: &Host) -> Result<String> {
    let t = Instant::now();
    let since = primary.safe_psql("SELECT now()").await?;
    let ended = primary.safe_psql(&format!("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication WHERE client_addr = '{}'", standby.ip)).await?;
    if ended == "0" {
        return Ok(format!("no replication connection from {} to restart", standby.name));
    }
    let q = format!("SELECT count(*) > 0 FROM pg_stat_replication WHERE client_addr = '{}' AND state = 'streaming' AND backend_start > '{since}'", standby.ip);
    primary.poll_query_until(&q, "t", Deadline::standard()).await?;
    Ok(format!("{}'s replication connection restarted, streaming again after {} ms", standby.name, t.elapsed().as_millis()))
}

pub async fn kill(host: &Host, what: KillWhat) -> Result<String> {
    timed(format!("{what:?} of {} killed, gone", host.name), host.kill(what)).await
}

pub async fn stop(host: &Host, mode: StopMode) -> Result<String> {
    timed(format!("stopped ({mode:?})"), host.stop(mode)).await
}

pub async fn fill(host: &Host, path: &str) -> Result<String> {
    Ok(format!("{path} on {} filled: {} bytes free", host.name, host.fill(path).await?))
}

pub async fn free(host: &Host, path: &str) -> Result<String> {
    Ok(format!("{path} on {} freed: {} MiB free", host.name, host.free(path).await? >> 20))
}

/// What was done, and how long it took.
async fn timed(what: String, done: impl std::future::Future<Output = Result<()>>) -> Result<String> {
    let t = Instant::now();
    done.await?;
    Ok(format!("{what} after {} ms", t.elapsed().as_millis()))
}

pub async fn pause(host: &Host, frozen: bool) -> Result<String> {
    if frozen {
        host.pause().await?;
        Ok(format!("{} frozen", host.name))
    } else {
        host.resume().await?;
        Ok(format!("{} running again", host.name))
    }
}

pub async fn load<L: Hosts>(lab: &L, host: &Host, l: &LoadAction, vars: &Vars) -> Result<String> {
    match l.kind().map_err(Error::Usage)? {
        LoadKind::Writer(name) => writer(lab, host, l, name, vars).await,
        LoadKind::Pgbench(name) if l.stop => Ok(format!("pgbench {name}: {}", host.pgbench_stop(name).await?)),
        LoadKind::Pgbench(name) => {
            host.pgbench_start(name, l.clients).await?;
            Ok(format!("pgbench {name} running: {} clients", l.clients))
        }
    }
}

async fn writer<L: Hosts>(lab: &L, host: &Host, l: &LoadAction, name: &str, vars: &Vars) -> Result<String> {
    if l.stop {
        let (table, log) = lab.workloads().stop(name).await?;
        host.note("pglab (harness)", &format!("stop writer {name}"), &log.summary(), Duration::ZERO);
        return Ok(format!("writer {name} into {table}: {}", log.summary()));
    }
    let table = vars.subst(&l.table)?;
    let mut hosts = vec![host];
    for f in &l.failover {
        hosts.push(lab.host(f.get_ref())?);
    }
    lab.workloads().start(name, &table, &hosts, Duration::from_millis(l.interval_ms)).await?;
    let what = format!("start writer {name}: a commit into {table} every {} ms on the first writable of {}", l.interval_ms, names(&hosts));
    host.note("pglab (harness)", &what, "running in the background", Duration::ZERO);
    Ok(format!("writer {name} running"))
}

/// Waits until `standby` streams from `primary` and has replayed the
/// primary's WAL position as of now.
pub async fn caught_up(primary: &Host, standby: &Host) -> Result<String> {
    let t = Instant::now();
    let lsn = primary.wait_for_catchup(standby, LsnKind::Replay, None).await?;
    let ms = t.elapsed().as_millis();
    standby.note("pglab (harness)", &format!("wait until caught up with {} at {lsn}", primary.name), &format!("reached after {ms} ms"), t.elapsed());
    Ok(format!("caught up with {} ({lsn}) after {ms} ms", primary.name))
}
