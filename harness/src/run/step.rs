//! Running one step: one function per [`Action`], then the step's log
//! expectation. Each returns what it observed, for reports.

use std::time::{Duration, Instant};

use super::expect::{judge, Miss};
use super::fault;
use crate::error::{Error, Result};
use crate::lab::{Cmd, Host, Hosts, SSH_HOST_KEY};
use crate::scenario::{Action, CopyAction, FileAction, Step, Vars, WaitAction};
use crate::time::{poll_until, Deadline, Probe};

/// Runs the step, re-running it until its expectation holds when it has
/// `retry_s` (errors that cannot heal stop at once).
pub async fn attempt<L: Hosts>(lab: &L, step: &Step, vars: &Vars) -> Result<String> {
    let Some(secs) = step.retry_s else { return run(lab, step, vars).await };
    poll_until(&format!("step {}", step.id.get_ref()), "its expectation", Deadline::after(Duration::from_secs(secs)), || async {
        match run(lab, step, vars).await {
            Ok(o) => Ok(Probe::Ready(o)),
            // An object a retried step waits for may come with replication.
            Err(e) if e.is_permanent() && !e.is_missing_object() => Err(e),
            Err(e) => Ok(Probe::NotYet(e.to_string())),
        }
    })
    .await
}

/// Runs the step once and judges it; Ok carries what was observed.
pub async fn run<L: Hosts>(lab: &L, step: &Step, vars: &Vars) -> Result<String> {
    let host = lab.host(step.host.get_ref())?;
    // Taken before the action, so only lines it caused can satisfy `expect.log`.
    let log_from = match &step.expect.log {
        Some(_) => Some(host.log_offset().await?),
        None => None,
    };
    let deadline = Deadline::secs_or_standard(step.timeout_s);
    let observed = match &step.action {
        Action::Run(line) => shell(host, step, &vars.subst(line.get_ref())?, vars, deadline).await?,
        Action::Sql(sql) => sql_step(host, step, &vars.subst(sql.get_ref())?, vars).await?,
        Action::Config(cfg) => super::config::apply(host, cfg, vars).await?,
        Action::File(f) => file(host, &step.user, f, vars).await?,
        Action::Copy(c) => copy(lab, host, c, vars).await?,
        Action::KnownHost(peer) => known_host(host, &step.user, lab.host(peer.get_ref())?).await?,
        Action::Wait(w) => wait(lab, host, w, deadline).await?,
        Action::Partition(p) => fault::partition(lab, host, p).await?,
        Action::Heal(p) => fault::heal(lab, host, p).await?,
        Action::Latency(l) => fault::latency(lab, host, l).await?,
        Action::Kill(k) => fault::kill(host, *k).await?,
        Action::Stop(s) => fault::stop(host, *s).await?,
        Action::Pause => fault::pause(host, true).await?,
        Action::Resume => fault::pause(host, false).await?,
        Action::Load(l) => fault::load(lab, host, l, vars).await?,
        Action::Fill(path) => fault::fill(host, path.get_ref()).await?,
        Action::Free(path) => fault::free(host, path.get_ref()).await?,
    };
    let (Some(re), Some(offset)) = (&step.expect.log, log_from) else { return Ok(observed) };
    let t = Instant::now();
    let pattern = vars.subst_regex(re.get_ref())?;
    let line = host.wait_for_log(&pattern, offset, Deadline::standard()).await?;
    host.note("pglab (harness)", &format!("wait for log line /{pattern}/"), &line, t.elapsed());
    Ok(format!("{observed}; log: {}", line.trim()))
}

/// A shell line as the tutorial writes it.
async fn shell(host: &Host, step: &Step, line: &str, vars: &Vars, deadline: Deadline) -> Result<String> {
    let mut cmd = Cmd::shell(line).user(step.user.clone()).any_status().timeout(deadline.budget());
    let out = host.exec(cmd.clone()).await?;
    match judge(&step.expect, vars, out.status, &out.combined())? {
        None => Ok(format!("exit {}", out.status)),
        Some(miss) => {
            if matches!(miss, Miss::Status { .. }) {
                cmd.expect_status = step.expect.status.unwrap_or_default().code();
            }
            Err(host.failure(&cmd, &out, Some(miss.to_string())).await)
        }
    }
}

/// SQL through the harness's client; a failure is the step's outcome to judge.
async fn sql_step(host: &Host, step: &Step, sql: &str, vars: &Vars) -> Result<String> {
    let out = host.psql_recorded(sql).await?;
    let status = if out.error.is_some() { 1 } else { 0 };
    match judge(&step.expect, vars, status, &out.shown())? {
        None if out.error.is_some() => Ok(out.shown()),
        None if out.rows.is_empty() => Ok("ok".into()),
        // What it returned is what the report shows (a count, a state).
        None => Ok(host.transcript().redact(&crate::error::tail_lines(&out.text(), 5))),
        Some(Miss::Status { want, .. }) => match out.error {
            // Kept typed: a syntax error is not worth a retry.
            Some(e) => Err(host.refused(sql, e)),
            None => Err(Error::Check(format!("SQL on {} succeeded; expected status {want}", host.name))),
        },
        Some(miss @ Miss::Output { .. }) => Err(Error::Check(format!("SQL result on {}: {miss}:\n{}", host.name, out.shown()))),
    }
}

/// What is on the host at `path` already, for an append: a missing file is
/// empty; a file that cannot be read is an error (never overwritten).
async fn existing(host: &Host, path: &str) -> Result<Vec<u8>> {
    Ok(host.stat_read(path).await?.map(|f| f.content).unwrap_or_default())
}

async fn file(host: &Host, user: &str, f: &FileAction, vars: &Vars) -> Result<String> {
    let t = Instant::now();
    let path = vars.subst(&f.path)?;
    let text = vars.subst(&f.content)?;
    let mut content = if f.append { existing(host, &path).await? } else { Vec::new() };
    content.extend_from_slice(text.as_bytes());
    host.write_file(&path, &content, f.mode.0, &f.owner.user, f.owner.group.as_deref()).await?;
    host.note(user, &format!("write {path} (mode {}, owner {})", f.mode, f.owner), &text, t.elapsed());
    Ok(format!("wrote {path}"))
}

async fn copy<L: Hosts>(lab: &L, host: &Host, c: &CopyAction, vars: &Vars) -> Result<String> {
    let t = Instant::now();
    let from = lab.host(c.from_host.get_ref())?;
    let (src, dst) = (vars.subst(&c.from)?, vars.subst(&c.to)?);
    let data = from.read_file(&src).await?;
    let mut content = if c.append { existing(host, &dst).await? } else { Vec::new() };
    content.extend_from_slice(data.as_bytes());
    host.write_file(&dst, &content, c.mode.0, &c.owner.user, c.owner.group.as_deref()).await?;
    let what = format!("copy {}:{src} -> {}:{dst}{}", from.name, host.name, if c.append { " (append)" } else { "" });
    host.note("root", &what, &data, t.elapsed());
    Ok(format!("copied {src}"))
}

/// Pins `peer`'s host key for `user` on `host`: the engine reads the key off
/// the peer's disk, so no answer over the lab network is trusted.
async fn known_host(host: &Host, user: &str, peer: &Host) -> Result<String> {
    let t = Instant::now();
    let key = peer.ssh_host_key().await?;
    let home = host.probe(&Cmd::shell("printf %s \"$HOME\"").user(user)).await?.stdout;
    let path = format!("{home}/.ssh/known_hosts");
    // Both names the tutorial's commands may use: the host name and its address.
    let line = format!("{},{} {key}\n", peer.name, peer.ip);
    let mut content = existing(host, &path).await?;
    content.extend_from_slice(line.as_bytes());
    host.write_file(&path, &content, 0o644, user, None).await?;
    host.note("pglab (harness)", &format!("pin {}'s host key ({SSH_HOST_KEY}, read by the engine) in {path}", peer.name), &line, t.elapsed());
    Ok(format!("pinned the host key of {}", peer.name))
}

async fn wait<L: Hosts>(lab: &L, host: &Host, w: &WaitAction, deadline: Deadline) -> Result<String> {
    let t = Instant::now();
    match w {
        WaitAction::CaughtUpWith(primary) => return fault::caught_up(lab.host(primary.get_ref())?, host).await,
        WaitAction::PgDown => host.wait_for_pg_down(deadline).await?,
        WaitAction::PgUp => host.wait_for_pg_up(deadline).await?,
        WaitAction::Streaming => host.wait_for_streaming(deadline).await?,
    }
    let ms = t.elapsed().as_millis();
    host.note("pglab (harness)", &format!("wait until {}", w.name()), &format!("reached after {ms} ms"), t.elapsed());
    Ok(format!("{} after {ms} ms", w.name()))
}
