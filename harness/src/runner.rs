//! Runs a scenario on a fresh lab: create, prepare (given), converge (steps),
//! verify (checks), destroy; every command lands in the transcript.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde::Serialize;

use crate::check::{self, CheckOutcome};
use crate::docker;
use crate::error::{Error, Result};
use crate::exec::{Cmd, ExecOutput};
use crate::host::Host;
use crate::image::HostImage;
use crate::lab::{Keep, Lab, LabSpec, StartTimings};
use crate::platform::Platform;
use crate::report::TranscriptEntry;
use crate::scenario::{Defect, Scenario, StatusExpect, Step, WaitAction};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub platform: Option<Platform>,
    pub keep: Keep,
    /// Stop after this step (id or tutorial step number); skips verify.
    pub until: Option<String>,
    /// Run checks marked slow (cron firing).
    pub slow: bool,
    /// `key=value` overriding the scenario's `vars`.
    pub sets: Vec<(String, String)>,
    /// Where to write `<scenario>-<lab>.md` and `.json`.
    pub report_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub id: String,
    pub title: String,
    pub host: String,
    pub user: String,
    pub action: String,
    pub added: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defect: Option<Defect>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    pub passed: bool,
    #[serde(rename = "elapsed_ms", with = "crate::report::millis")]
    pub elapsed: Duration,
    /// What was observed (status, matched output or log line).
    pub observed: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub description: String,
    pub platform: Platform,
    pub image: String,
    pub lab: String,
    pub lab_timings: StartTimings,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub steps: Vec<StepResult>,
    pub checks: Vec<CheckOutcome>,
    pub defects: Vec<Defect>,
    #[serde(rename = "total_ms", with = "crate::report::millis")]
    pub total: Duration,
    pub transcript: Vec<TranscriptEntry>,
}

/// Random hex for generated secrets (never shown: registered for redaction).
fn secret() -> String {
    let mut buf = [0u8; 18];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf)).is_err() {
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        buf[..16].copy_from_slice(&n.to_le_bytes());
    }
    format!("pw{}", hex::encode(buf))
}

pub async fn run(scn: &Scenario, opts: &RunOptions, progress: &ProgressBar) -> Result<RunReport> {
    let started = Instant::now();
    let platform = opts.platform.unwrap_or(scn.platform);
    let docker = docker::connect().await?;
    progress.set_message(format!("{}: image", scn.name));
    HostImage::for_platform(platform).ensure(&docker, false, progress).await?;
    progress.set_message(format!("{}: create lab", scn.name));
    let spec = LabSpec {
        platform,
        hosts: scn.hosts.iter().map(|h| h.name.get_ref().clone()).collect(),
        keep: opts.keep,
        scenario: Some(scn.name.clone()),
    };
    let mut lab = Lab::start(&docker, &spec).await?;
    let outcome = converge_and_verify(scn, opts, &lab, platform, progress).await;
    let (steps, checks, error) = match outcome {
        Ok((s, c)) => (s, c, None),
        Err((s, c, e)) => (s, c, Some(e)),
    };
    let passed = error.is_none() && checks.iter().all(|c| c.passed);
    if !passed {
        lab.mark_failed();
    }
    let report = RunReport {
        scenario: scn.name.clone(),
        description: scn.description.clone(),
        platform,
        image: lab.image.reference(),
        lab: lab.id.clone(),
        lab_timings: lab.timings.clone(),
        passed,
        error: error.as_ref().map(|e| lab.transcript().redact(&e.to_string())),
        steps,
        checks,
        defects: scn.defects.clone(),
        total: started.elapsed(),
        transcript: lab.transcript().entries(),
    };
    if let Some(dir) = &opts.report_dir {
        crate::report::write(dir, &report)?;
    }
    progress.set_message(format!("{}: destroy", scn.name));
    lab.shutdown().await?;
    Ok(report)
}

type Partial = (Vec<StepResult>, Vec<CheckOutcome>);

async fn converge_and_verify(
    scn: &Scenario,
    opts: &RunOptions,
    lab: &Lab,
    platform: Platform,
    progress: &ProgressBar,
) -> std::result::Result<Partial, (Vec<StepResult>, Vec<CheckOutcome>, Error)> {
    let mut steps = Vec::new();
    let mut checks = Vec::new();
    let vars = match variables(scn, lab, platform, opts) {
        Ok(v) => v,
        Err(e) => return Err((steps, checks, e)),
    };
    // prepare: the state the tutorial assumes, while systemd finishes booting.
    lab.transcript().set_step("given");
    progress.set_message(format!("{}: given", scn.name));
    let given = async {
        if let Some(g) = &scn.given {
            let h = lab.host(g.host.get_ref())?;
            let sql = format!(
                "CREATE TABLE {t} (select_column text, select_number int); \
                 INSERT INTO {t} SELECT 'row ' || g, g FROM generate_series(1, {n}) g",
                t = g.table,
                n = g.rows
            );
            sql_step(h, &sql).await?;
        }
        Ok::<_, Error>(())
    };
    let (boot, given) = tokio::join!(lab.wait_for_boot(), given);
    if let Err(e) = boot.and(given) {
        return Err((steps, checks, e));
    }

    let last = match &opts.until {
        Some(u) => match scn.step_index(u) {
            Some(i) => i,
            None => return Err((steps, checks, Error::Other(format!("--until {u}: no such step in {}", scn.name)))),
        },
        None => scn.steps.len().saturating_sub(1),
    };
    let total = scn.steps.len();
    for (n, step) in scn.steps.iter().enumerate().take(last + 1) {
        let id = step.id.get_ref().clone();
        lab.transcript().set_step(&id);
        progress.set_message(format!("{}: step {}/{total} {id} on {}", scn.name, n + 1, step.host.get_ref()));
        let t = Instant::now();
        let result = match step.retry_s {
            None => run_step(lab, step, &vars).await,
            Some(secs) => {
                crate::wait::poll_until(&format!("step {id}"), "its expectation", Duration::from_secs(secs), || async {
                    Ok(match run_step(lab, step, &vars).await {
                        Ok(o) => crate::wait::Probe::Ready(o),
                        Err(e) => crate::wait::Probe::NotYet(e.to_string()),
                    })
                })
                .await
            }
        };
        let (passed, observed) = match &result {
            Ok(o) => (true, o.clone()),
            Err(e) => (false, lab.transcript().redact(&e.to_string())),
        };
        steps.push(StepResult {
            id: id.clone(),
            title: step.title.clone(),
            host: step.host.get_ref().clone(),
            user: step.user.clone(),
            action: step.action_name().into(),
            added: step.added,
            defect: step.defect.as_ref().and_then(|d| scn.defect(d.get_ref()).cloned()),
            note: step.note.clone(),
            passed,
            elapsed: t.elapsed(),
            observed,
        });
        if let Err(e) = result {
            return Err((steps, checks, Error::Other(format!("step {id} failed: {e}"))));
        }
        // `pglab list` shows how far a kept lab got.
        let _ = std::fs::write(crate::reaper::lab_state_dir(&lab.id).join("step"), &id);
    }
    if opts.until.is_some() {
        return Ok((steps, checks));
    }
    lab.transcript().set_step("verify");
    for decl in &scn.verify {
        if decl.is_slow() && !opts.slow {
            continue;
        }
        progress.set_message(format!("{}: check {}", scn.name, decl.name()));
        lab.transcript().set_step(&format!("verify-{}", decl.name()));
        checks.push(check::run(lab, decl).await);
    }
    Ok((steps, checks))
}

fn variables(scn: &Scenario, lab: &Lab, platform: Platform, opts: &RunOptions) -> Result<BTreeMap<String, String>> {
    let mut vars = crate::scenario::builtin_vars(platform);
    for h in lab.hosts() {
        vars.insert(format!("{}.ip", h.name), h.ip.to_string());
        vars.insert(format!("{}.name", h.name), h.name.clone());
    }
    for s in &scn.secrets {
        let value = secret();
        lab.transcript().add_secret(&value);
        vars.insert(format!("secret.{s}"), value);
    }
    for (k, v) in &scn.vars {
        vars.insert(k.clone(), v.clone());
    }
    for (k, v) in &opts.sets {
        if !scn.vars.contains_key(k) {
            return Err(Error::Other(format!("--set {k}: the scenario has no such var (vars: {})", scn.vars.keys().cloned().collect::<Vec<_>>().join(", "))));
        }
        vars.insert(k.clone(), v.clone());
    }
    Ok(vars)
}

pub(crate) fn subst(text: &str, vars: &BTreeMap<String, String>) -> Result<String> {
    crate::scenario::substitute(text, vars).map_err(|m| Error::Other(format!("undefined variable {{{m}}}")))
}

fn subst_regex(text: &str, vars: &BTreeMap<String, String>) -> Result<String> {
    crate::scenario::substitute_regex(text, vars).map_err(|m| Error::Other(format!("undefined variable {{{m}}}")))
}

/// Runs SQL through the harness's client and records it.
async fn sql_step(h: &Host, sql: &str) -> Result<crate::host::PsqlOutcome> {
    let t = Instant::now();
    let out = h.psql(sql).await?;
    let text = rows_text(&out);
    h.transcript().record(TranscriptEntry {
        step: String::new(),
        host: h.name.clone(),
        user: "pglab (harness SQL)".into(),
        cmd: sql.to_string(),
        status: Some(if out.error.is_some() { 1 } else { 0 }),
        stdout: text,
        stderr: out.error.as_ref().map(|(c, m)| format!("ERROR: {m} (SQLSTATE {c})")).unwrap_or_default(),
        elapsed: t.elapsed(),
        note: None,
    });
    Ok(out)
}

fn rows_text(out: &crate::host::PsqlOutcome) -> String {
    out.rows.iter().map(|r| r.iter().map(|c| c.clone().unwrap_or_default()).collect::<Vec<_>>().join("|")).collect::<Vec<_>>().join("\n")
}

fn octal(mode: &str) -> Result<u32> {
    u32::from_str_radix(mode.trim_start_matches("0o"), 8).map_err(|_| Error::Other(format!("mode `{mode}` is not octal")))
}

/// Runs one step and judges it; Ok carries what was observed.
async fn run_step(lab: &Lab, step: &Step, vars: &BTreeMap<String, String>) -> Result<String> {
    let host = lab.host(step.host.get_ref())?;
    let want = step.expect.status.unwrap_or(StatusExpect::Code(0));
    let timeout = Duration::from_secs(step.timeout_s.unwrap_or(300));
    let mut observed;
    if let Some(run) = &step.run {
        let line = subst(run.get_ref(), vars)?;
        let cmd = Cmd::shell(line).user(step.user.clone()).any_status().timeout(timeout);
        let out = host.exec(cmd.clone()).await?;
        observed = format!("exit {}", out.status);
        judge_output(host, &cmd, &out, want, step, vars).await?;
    } else if let Some(sql) = &step.sql {
        let sql = subst(sql.get_ref(), vars)?;
        let out = sql_step(host, &sql).await?;
        let status = if out.error.is_some() { 1 } else { 0 };
        let text = match &out.error {
            Some((code, m)) => format!("ERROR: {m} (SQLSTATE {code})"),
            None => rows_text(&out),
        };
        observed = match &out.error {
            Some(_) => text.clone(),
            None => "ok".into(),
        };
        if !want.accepts(status) {
            return Err(Error::Check(format!("SQL on {}: {text}; expected status {want}", host.name)));
        }
        if let Some(re) = &step.expect.output {
            let re = regex::Regex::new(&subst_regex(re.get_ref(), vars)?).map_err(|e| Error::Other(e.to_string()))?;
            if !re.is_match(&text) {
                return Err(Error::Check(format!("SQL result on {} does not match /{re}/:\n{text}", host.name)));
            }
        }
    } else if let Some(cfg) = &step.config {
        observed = crate::config::apply(host, cfg, vars).await?;
    } else if let Some(f) = &step.file {
        let path = subst(&f.path, vars)?;
        let mut content = subst(&f.content, vars)?;
        if f.append {
            content = format!("{}{}", host.read_file(&path).await.unwrap_or_default(), content);
        }
        let t = Instant::now();
        host.write_file(&path, content.as_bytes(), octal(&f.mode)?, &f.owner).await?;
        record_note(host, &step.user, format!("write {path} (mode {}, owner {})", f.mode, f.owner), subst(&f.content, vars)?, t);
        observed = format!("wrote {path}");
    } else if let Some(c) = &step.copy {
        let from = lab.host(c.from_host.get_ref())?;
        let (src, dst) = (subst(&c.from, vars)?, subst(&c.to, vars)?);
        let t = Instant::now();
        let data = from.read_file(&src).await?;
        let content = if c.append { format!("{}{}", host.read_file(&dst).await.unwrap_or_default(), data) } else { data.clone() };
        host.write_file(&dst, content.as_bytes(), octal(&c.mode)?, &c.owner).await?;
        record_note(host, "root", format!("copy {}:{src} -> {}:{dst}{}", from.name, host.name, if c.append { " (append)" } else { "" }), data, t);
        observed = format!("copied {src}");
    } else if let Some(w) = step.wait {
        let t = Instant::now();
        match w {
            WaitAction::PgDown => host.wait_for_pg_down(timeout).await?,
            WaitAction::PgUp => host.wait_for_pg_up(timeout).await?,
            WaitAction::Streaming => {
                host.poll_query_until("SELECT status FROM pg_stat_wal_receiver", "streaming", timeout).await?;
            }
        }
        record_note(host, "pglab (harness)", format!("wait until {w:?}"), format!("reached after {} ms", t.elapsed().as_millis()), t);
        observed = format!("{w:?} after {} ms", t.elapsed().as_millis());
    } else {
        return Err(Error::Other("step has no action".into()));
    }
    if let Some(re) = &step.expect.log {
        let pattern = subst_regex(re.get_ref(), vars)?;
        let line = host.wait_for_log(&pattern, Duration::from_secs(30)).await?;
        record_note(host, "pglab (harness)", format!("wait for log line /{pattern}/"), line.clone(), Instant::now());
        observed = format!("{observed}; log: {}", line.trim());
    }
    Ok(observed)
}

fn record_note(host: &Host, user: &str, cmd: String, note: String, t: Instant) {
    host.transcript().record(TranscriptEntry {
        step: String::new(),
        host: host.name.clone(),
        user: user.into(),
        cmd,
        status: None,
        stdout: String::new(),
        stderr: String::new(),
        elapsed: t.elapsed(),
        note: Some(note),
    });
}

async fn judge_output(host: &Host, cmd: &Cmd, out: &ExecOutput, want: StatusExpect, step: &Step, vars: &BTreeMap<String, String>) -> Result<()> {
    if !want.accepts(out.status) {
        let mut c = cmd.clone();
        c.expect_status = match want {
            StatusExpect::Code(x) => Some(x),
            _ => None,
        };
        return Err(host.failure(&c, out, Some(format!("expected exit status {want}"))).await);
    }
    if let Some(re) = &step.expect.output {
        let pattern = subst_regex(re.get_ref(), vars)?;
        let re = regex::Regex::new(&pattern).map_err(|e| Error::Other(e.to_string()))?;
        if !re.is_match(&out.combined()) {
            return Err(host.failure(cmd, out, Some(format!("output does not match /{pattern}/"))).await);
        }
    }
    Ok(())
}
