//! Transcripts (every command really run, like an executed user guide) and
//! the JSON report of a run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::scenario::Defect;

/// Serde helper: durations as whole milliseconds.
pub mod millis {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// One command as it ran.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptEntry {
    /// Step id this ran under (`given`, `3-postgresql-conf`, ...).
    pub step: String,
    pub host: String,
    pub user: String,
    pub cmd: String,
    pub status: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    #[serde(rename = "elapsed_ms", with = "millis")]
    pub elapsed: Duration,
    /// Extra text shown with the command (a config diff, a SQL result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

tokio::task_local! {
    /// The step a future runs under: steps of different hosts run at once, so
    /// the transcript cannot keep a single "current step".
    static STEP: String;
}

/// Runs `fut` with its commands recorded under step `id`.
pub async fn in_step<F: std::future::Future>(id: &str, fut: F) -> F::Output {
    STEP.scope(id.to_string(), fut).await
}

impl TranscriptEntry {
    /// A command that ran with a status and output; the step is filled in on record.
    pub fn command(host: &str, user: &str, cmd: String, status: i64, stdout: String, stderr: String, elapsed: Duration) -> Self {
        TranscriptEntry { step: String::new(), host: host.into(), user: user.into(), cmd, status: Some(status), stdout, stderr, elapsed, note: None }
    }
}

#[derive(Default)]
struct Inner {
    entries: Vec<TranscriptEntry>,
    secrets: Vec<String>,
}

/// Shared by a lab and its hosts; every exec lands here, redacted.
#[derive(Clone, Default)]
pub struct Transcript(Arc<Mutex<Inner>>);

pub const REDACTED: &str = "********";

impl Transcript {
    pub fn new() -> Self {
        Transcript::default()
    }

    /// Records a harness action (a file written, a wait) that is not a command.
    pub fn note(&self, host: &str, user: &str, cmd: String, note: String, elapsed: Duration) {
        let mut e = TranscriptEntry::command(host, user, cmd, 0, String::new(), String::new(), elapsed);
        (e.status, e.note) = (None, Some(note));
        self.record(e);
    }

    /// From now on `secret` never appears in the transcript or in errors.
    pub fn add_secret(&self, secret: &str) {
        if !secret.is_empty() {
            self.0.lock().unwrap().secrets.push(secret.to_string());
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let inner = self.0.lock().unwrap();
        inner.secrets.iter().fold(text.to_string(), |t, s| t.replace(s, REDACTED))
    }

    pub fn record(&self, mut e: TranscriptEntry) {
        let mut inner = self.0.lock().unwrap();
        let redact = |t: &str| inner.secrets.iter().fold(t.to_string(), |t, s| t.replace(s, REDACTED));
        e.cmd = redact(&e.cmd);
        e.stdout = redact(&e.stdout);
        e.stderr = redact(&e.stderr);
        e.note = e.note.as_deref().map(redact);
        if e.step.is_empty() {
            // Outside any step: setting up the lab (network, route, harness role).
            e.step = STEP.try_with(Clone::clone).unwrap_or_else(|_| "lab".into());
        }
        inner.entries.push(e);
    }

    pub fn entries(&self) -> Vec<TranscriptEntry> {
        self.0.lock().unwrap().entries.clone()
    }
}

const MAX_OUTPUT_LINES: usize = 40;

fn clip(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    if lines.len() <= MAX_OUTPUT_LINES {
        return lines.join("\n");
    }
    let head = &lines[..MAX_OUTPUT_LINES / 2];
    let tail = &lines[lines.len() - MAX_OUTPUT_LINES / 2..];
    format!("{}\n[filtered {} lines of output]\n{}", head.join("\n"), lines.len() - MAX_OUTPUT_LINES, tail.join("\n"))
}

/// The executed guide: every command that ran, where, as whom, with output.
pub fn render_markdown(r: &crate::runner::RunReport) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let verdict = if r.passed { "PASSED" } else { "FAILED" };
    let _ = writeln!(md, "# {} ({verdict})\n", r.scenario);
    if !r.description.is_empty() {
        let _ = writeln!(md, "{}\n", r.description.trim());
    }
    let _ = writeln!(
        md,
        "Platform `{}`, image `{}`, lab `{}` (up in {} ms), total {:.1} s. Every command below really ran; secrets show as `{REDACTED}`.\n",
        r.platform,
        r.image,
        r.lab,
        r.lab_timings.total.as_millis(),
        r.total.as_secs_f64()
    );
    if let Some(e) = &r.error {
        let _ = writeln!(md, "## Failure\n\n```\n{}\n```\n", e.trim_end());
    }
    let mut found: Vec<&Defect> = Vec::new();
    for s in &r.steps {
        if let Some(d) = &s.defect {
            if !found.iter().any(|f| f.id == d.id) {
                found.push(d);
            }
        }
    }
    if !found.is_empty() {
        let _ = writeln!(md, "## Defects diagnosed\n");
        for d in found {
            let evidence: Vec<&str> = r.steps.iter().filter(|s| s.defect.as_ref().is_some_and(|x| x.id == d.id)).map(|s| s.id.as_str()).collect();
            let _ = writeln!(md, "- **{}: {}** — {} (evidence: steps {})", d.id, d.title, d.detail.trim(), evidence.join(", "));
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Steps\n\n`at`: seconds from the start of the steps; rows that overlap ran at the same time.\n\n| step | host | user | result | at | ms | observed |\n|---|---|---|---|---|---|---|");
    for s in &r.steps {
        let mark = if s.passed { "ok" } else { "FAILED" };
        let tag = if s.added { " (added)" } else { "" };
        let obs = s.observed.lines().next().unwrap_or("").replace('|', "\\|");
        let _ = writeln!(md, "| {}{tag} | {} | {} | {mark} | {:.1} | {} | {obs} |", s.id, s.host, s.user, s.at.as_secs_f64(), s.elapsed.as_millis());
    }
    if !r.checks.is_empty() {
        let _ = writeln!(md, "\n## Checks\n\n| check | result | at | ms | detail |\n|---|---|---|---|---|");
        for c in &r.checks {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {} | {} |",
                c.name,
                if c.passed { "passed" } else { "FAILED" },
                c.at.as_secs_f64(),
                c.elapsed.as_millis(),
                c.detail.lines().next().unwrap_or("").replace('|', "\\|")
            );
        }
    }
    let _ = writeln!(md, "\n## Transcript");
    let mut current = String::new();
    for e in grouped(r) {
        if e.step != current {
            current = e.step.clone();
            let title = r.steps.iter().find(|s| s.id == current).map(|s| format!(" — {}", s.title)).unwrap_or_default();
            let _ = writeln!(md, "\n### {current}{title}\n");
            if let Some(s) = r.steps.iter().find(|s| s.id == current && !s.note.is_empty()) {
                let _ = writeln!(md, "> {}\n", s.note.trim());
            }
        }
        let status = e.status.map(|s| if s == 0 { String::new() } else { format!("  # exit {s}") }).unwrap_or_default();
        let _ = writeln!(md, "`{}@{}` ({} ms)\n```\n$ {}{status}", e.user, e.host, e.elapsed.as_millis(), e.cmd.trim_end());
        let out = clip(&format!("{}{}", e.stdout, e.stderr));
        if !out.is_empty() {
            let _ = writeln!(md, "{out}");
        }
        let _ = writeln!(md, "```");
        if let Some(n) = &e.note {
            let lang = if n.starts_with("---") || n.starts_with("@@") { "diff" } else { "" };
            let _ = writeln!(md, "```{lang}\n{}\n```", clip(n));
        }
    }
    md
}

/// Entries grouped by step, steps in file order: with hosts working at once
/// their commands interleave in time, but a reader follows one step at a time.
fn grouped(r: &crate::runner::RunReport) -> Vec<&TranscriptEntry> {
    let mut order: Vec<&str> = Vec::new();
    for e in &r.transcript {
        if !order.contains(&e.step.as_str()) {
            order.push(&e.step);
        }
    }
    let rank = |step: &str| -> (usize, usize) {
        let first = order.iter().position(|s| *s == step).unwrap_or(usize::MAX);
        match r.steps.iter().position(|s| s.id == step) {
            Some(i) => (1, i),
            None if step.starts_with("verify") => (2, first),
            None => (0, first),
        }
    };
    let mut entries: Vec<&TranscriptEntry> = r.transcript.iter().collect();
    entries.sort_by_key(|e| rank(&e.step));
    entries
}

/// Writes `<scenario>-<lab>.md` and `.json` into `dir`; returns the paths.
pub fn write(dir: &std::path::Path, r: &crate::runner::RunReport) -> crate::Result<(std::path::PathBuf, std::path::PathBuf)> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(format!("creating {}", dir.display()), e))?;
    let base = dir.join(r.file_stem());
    let md = base.with_extension("md");
    let json = base.with_extension("json");
    std::fs::write(&md, render_markdown(r)).map_err(|e| crate::Error::io(format!("writing {}", md.display()), e))?;
    std::fs::write(&json, serde_json::to_string_pretty(r).expect("serializable")).map_err(|e| crate::Error::io(format!("writing {}", json.display()), e))?;
    Ok((md, json))
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Per-step medians over several runs of one scenario, and the medians of
/// every check metric (streaming latency percentiles, restore times).
pub fn bench_table(runs: &[crate::runner::RunReport]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let Some(first) = runs.first() else { return "no runs".into() };
    let _ = writeln!(out, "{}: {} runs on {}", first.scenario, runs.len(), first.image);
    let col = |f: &dyn Fn(&crate::runner::RunReport) -> f64| median(runs.iter().map(f).collect());
    let _ = writeln!(out, "  {:<28} {:>9}", "lab up", format!("{:.0} ms", col(&|r| r.lab_timings.total.as_secs_f64() * 1000.0)));
    for phase in first.phases.keys() {
        let m = col(&|r| r.phases.get(phase).map(|v| *v as f64).unwrap_or(f64::NAN));
        let _ = writeln!(out, "  {:<28} {:>9}", format!("phase {}", phase.trim_end_matches("_ms")), format!("{m:.0} ms"));
    }
    for (i, s) in first.steps.iter().enumerate() {
        let m = col(&|r| r.steps.get(i).map(|x| x.elapsed.as_secs_f64() * 1000.0).unwrap_or(f64::NAN));
        let _ = writeln!(out, "  {:<28} {:>9}", s.id, format!("{m:.0} ms"));
    }
    for (i, c) in first.checks.iter().enumerate() {
        let m = col(&|r| r.checks.get(i).map(|x| x.elapsed.as_secs_f64() * 1000.0).unwrap_or(f64::NAN));
        let _ = writeln!(out, "  check {:<22} {:>9}", c.name, format!("{m:.0} ms"));
        for k in c.metrics.keys() {
            let v = col(&|r| r.checks.get(i).and_then(|x| x.metrics.get(k).copied()).unwrap_or(f64::NAN));
            let _ = writeln!(out, "      {k:<30} {v:>9.1}");
        }
    }
    let _ = writeln!(out, "  {:<28} {:>9}", "total", format!("{:.1} s", col(&|r| r.total.as_secs_f64())));
    out
}

/// The run as JUnit XML for CI dashboards: one test case per step and per check.
pub fn junit(r: &crate::runner::RunReport) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("{} ({})", r.scenario, r.platform));
    let failed = |message: String, detail: &str| {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(message);
        s.set_description(detail.to_string());
        s
    };
    for s in &r.steps {
        let status = if s.passed { TestCaseStatus::success() } else { failed(format!("step {} failed on {}", s.id, s.host), &s.observed) };
        let mut case = TestCase::new(format!("step {}", s.id), status);
        case.set_classname(format!("{}.steps", r.scenario)).set_time(s.elapsed);
        suite.add_test_case(case);
    }
    for c in &r.checks {
        let status = if c.passed { TestCaseStatus::success() } else { failed(format!("check {} failed", c.name), &c.detail) };
        let mut case = TestCase::new(format!("check {}", c.name), status);
        case.set_classname(format!("{}.checks", r.scenario)).set_time(c.elapsed);
        suite.add_test_case(case);
    }
    // A run that stopped before any step (image, lab) still shows as failed.
    if let (Some(e), true) = (&r.error, r.steps.iter().all(|s| s.passed)) {
        let mut case = TestCase::new("run", failed("the run failed".into(), e));
        case.set_classname(r.scenario.clone());
        suite.add_test_case(case);
    }
    suite.set_time(r.total);
    let mut report = Report::new("pglab");
    report.add_test_suite(suite);
    report.to_string().expect("JUnit XML serializes")
}
