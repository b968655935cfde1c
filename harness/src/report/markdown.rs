//! The executed guide: every command that ran, where, as whom, with output,
//! grouped by step in file order.

use std::fmt::Write;

use super::verdict;
use crate::outcome::{RunReport, StepStatus};
use crate::transcript::{TranscriptEntry, REDACTED};
use crate::vocab::Defect;

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
pub(crate) fn render_markdown(r: &RunReport) -> String {
    let mut md = String::new();
    header(&mut md, r);
    defects(&mut md, r);
    tables(&mut md, r);
    transcript(&mut md, r);
    md
}

fn header(md: &mut String, r: &RunReport) {
    let _ = writeln!(md, "# {} ({})\n", r.scenario, verdict(r));
    if let Some(c) = &r.checkpoint {
        let _ = writeln!(
            md,
            "Started from checkpoint `{}`{}, the lab as it was after step `{}` (restored in {:.1} s): the steps through it are the records of the run that saved it.\n",
            c.key,
            if c.made { " (made by this run first)" } else { "" },
            c.step,
            c.restore.as_secs_f64()
        );
    }
    if let Some(v) = &r.versions {
        let _ = writeln!(
            md,
            "Ran on **{}** with **PostgreSQL {}** and **pgBackRest {}** (archive of {}; packages digest `{}`).\n",
            v.os, v.postgresql, v.pgbackrest, v.archive_date, v.packages
        );
    }
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
    let _ = writeln!(md, "![what ran when]({}.svg)\n", r.file_stem());
    if let Some(line) = series_line(r) {
        let _ = writeln!(md, "{line}\n");
    }
    if let Some(e) = &r.error {
        let heading = if r.interrupted { "Interrupted" } else { "Failure" };
        let _ = writeln!(md, "## {heading}\n\n```\n{}\n```\n", e.message.trim_end());
    }
}

/// The peaks of what was sampled, beside the plots that show them.
fn series_line(r: &RunReport) -> Option<String> {
    let s = &r.series;
    if s.is_empty() {
        return None;
    }
    let bytes = s.lag.iter().map(|l| l.bytes).fold(0.0, f64::max);
    let secs = s.lag.iter().filter_map(|l| l.seconds).fold(0.0, f64::max);
    let peak = s.writes.iter().map(|w| w.commits).max().unwrap_or(0);
    Some(format!(
        "Sampled: {} replication lag samples (peak {:.0} KiB not yet replayed, replay_lag peak {secs:.2} s); writes peaked at {peak} acknowledged commits per second.",
        s.lag.len(),
        bytes / 1024.0
    ))
}

/// Each defect the steps showed, with the steps that are its evidence.
fn defects(md: &mut String, r: &RunReport) {
    let mut found: Vec<&Defect> = Vec::new();
    // A skipped step (`when`) is no evidence: its defect is not this platform's.
    let shown = || r.steps.iter().filter(|s| s.status != StepStatus::Skipped);
    for d in shown().filter_map(|s| s.defect.as_ref()) {
        if !found.iter().any(|f| f.id == d.id) {
            found.push(d);
        }
    }
    if found.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Defects diagnosed\n");
    for d in found {
        let evidence: Vec<&str> = shown().filter(|s| s.defect.as_ref().is_some_and(|x| x.id == d.id)).map(|s| s.id.as_str()).collect();
        let _ = writeln!(md, "- **{}: {}** — {} (evidence: steps {})", d.id, d.title, d.detail.trim(), evidence.join(", "));
    }
    md.push('\n');
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").replace('|', "\\|")
}

/// Hosts, steps and checks as tables.
fn tables(md: &mut String, r: &RunReport) {
    let _ = writeln!(md, "## Hosts\n\n| host | role | address |\n|---|---|---|");
    for h in &r.hosts {
        let _ = writeln!(md, "| {} | {} | {} |", h.name, h.role.name(), h.ip);
    }
    let _ = writeln!(md, "\n## Steps\n\n`at`: seconds from the start of the steps; rows that overlap ran at the same time.\n\n| step | host | user | result | at | ms | observed |\n|---|---|---|---|---|---|---|");
    for s in &r.steps {
        let tag = match (s.added, s.restored) {
            (_, true) => " (restored)",
            (true, _) => " (added)",
            _ => "",
        };
        let (at, ms) = (s.at.as_secs_f64(), s.elapsed.as_millis());
        let _ = writeln!(md, "| {}{tag} | {} | {} | {} | {at:.1} | {ms} | {} |", s.id, s.host, s.user, s.status.word(), first_line(&s.observed));
    }
    if r.checks.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Checks\n\n| check | result | at | ms | detail |\n|---|---|---|---|---|");
    for c in &r.checks {
        let result = if c.passed() { "passed" } else { "FAILED" };
        let _ = writeln!(md, "| {} | {result} | {:.1} | {} | {} |", c.name, c.at.as_secs_f64(), c.elapsed.as_millis(), first_line(&c.evidence));
    }
}

fn transcript(md: &mut String, r: &RunReport) {
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
        entry(md, e);
    }
}

fn entry(md: &mut String, e: &TranscriptEntry) {
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

/// Entries grouped by step, steps in file order: with hosts working at once
/// their commands interleave in time, but a reader follows one step at a time.
fn grouped(r: &RunReport) -> Vec<&TranscriptEntry> {
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
