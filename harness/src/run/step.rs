//! Running one step: its action (each in its module of `action/`), then
//! the step's log expectation. Each returns what it observed, for reports.

use std::time::{Duration, Instant};

use super::spares::mentions;
use crate::action::Cx;
use crate::error::{Error, Result};
use crate::lab::{Hosts, LogOffset};
use crate::scenario::Step;
use crate::time::{poll_until, Deadline, Probe};
use crate::vars::Vars;

/// Runs the step, re-running it until its expectation holds when it has
/// `retry_s` (errors that cannot heal stop at once). The log window opens
/// before the first try: a line one try caused may be written while the
/// next begins, and belongs to the step all the same. A try looks at the
/// log once; the retry is the wait.
pub(super) async fn attempt<L: Hosts>(lab: &L, step: &Step, vars: &Vars) -> Result<String> {
    // Boxed: a step's future is large (every action's), and a debug build
    // copies it through the stack once per level that holds it inline.
    match Box::pin(tries(lab, step, vars)).await {
        Err(Error::Exec(mut failure)) => {
            failure.peer_logs = peer_logs(lab, step, &failure.host, &failure.cmd).await;
            Err(Error::Exec(failure))
        }
        r => r,
    }
}

async fn tries<L: Hosts>(lab: &L, step: &Step, vars: &Vars) -> Result<String> {
    let log_from = log_window(lab, step).await?;
    let Some(secs) = step.retry_s else { return run(lab, step, vars, log_from, Deadline::standard()).await };
    poll_until(&format!("step {}", step.id.get_ref()), "its expectation", Deadline::after(Duration::from_secs(secs)), || async {
        match run(lab, step, vars, log_from, Deadline::after(Duration::ZERO)).await {
            Ok(o) => Ok(Probe::Ready(o)),
            // An object a retried step waits for may come with replication.
            Err(e) if e.is_permanent() && !e.is_missing_object() => Err(e),
            Err(e) => Ok(Probe::NotYet(e.to_string())),
        }
    })
    .await
}

/// The relevant log lines of every other host a failed command reached:
/// named by the action, or by name or address in the command line. Read
/// side by side, each for at most 10 s; a host that cannot say is left out.
async fn peer_logs<L: Hosts>(lab: &L, step: &Step, failed_on: &str, cmd: &str) -> Vec<(String, String)> {
    let named = step.action.named();
    let reached = lab
        .hosts()
        .iter()
        .filter(|h| h.name != failed_on)
        .filter(|h| named.iter().any(|n| n.host.get_ref() == &h.name) || mentions(cmd, &h.name) || mentions(cmd, &h.ip.to_string()));
    let read = reached.map(|h| async move {
        let logs = tokio::time::timeout(Duration::from_secs(10), h.relevant_logs()).await.ok()?;
        (!logs.starts_with("(could not read logs")).then(|| (h.name.clone(), logs))
    });
    futures_util::future::join_all(read).await.into_iter().flatten().collect()
}

/// Where the step's host's PostgreSQL log ends before the step acts, when
/// the step expects a line: only lines the step caused can satisfy it.
async fn log_window<L: Hosts>(lab: &L, step: &Step) -> Result<Option<LogOffset>> {
    match &step.expect.log {
        Some(_) => Ok(Some(lab.host(step.host.get_ref())?.log_offset().await?)),
        None => Ok(None),
    }
}

/// Runs the step once and judges it; Ok carries what was observed.
async fn run<L: Hosts>(lab: &L, step: &Step, vars: &Vars, log_from: Option<LogOffset>, log_wait: Deadline) -> Result<String> {
    let host = lab.host(step.host.get_ref())?;
    let deadline = Deadline::secs_or_standard(step.timeout_s);
    let cx = Cx { lab, host, user: &step.user, expect: &step.expect, vars, deadline };
    let observed = step.action.run(&cx).await?;
    let (Some(re), Some(offset)) = (&step.expect.log, log_from) else { return Ok(observed) };
    let t = Instant::now();
    let pattern = vars.subst_regex(re.get_ref())?;
    let line = host.wait_for_log(&pattern, offset, log_wait).await?;
    host.note("pglab (harness)", &format!("wait for log line /{pattern}/"), &line, t.elapsed());
    Ok(format!("{observed}; log: {}", line.trim()))
}
