//! What a person reads: the executed transcript (Markdown), the JSON
//! report, JUnit XML and bench tables, all rendered from a [`RunReport`].
//! Rendering only: nothing here runs anything.

mod bench;
mod junit;
mod markdown;
mod svg;

pub(crate) use bench::bench_table;
pub(crate) use junit::junit;
pub(crate) use markdown::render_markdown;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::outcome::RunReport;

/// PASSED, FAILED or INTERRUPTED.
impl RunReport {
    /// The run as JUnit XML (a test case per step and check), as `--junit` writes it.
    pub fn junit(&self) -> String {
        junit(self)
    }

    /// The executed transcript in Markdown, as `pglab run` writes it.
    pub fn markdown(&self) -> String {
        render_markdown(self)
    }
}

pub(crate) fn verdict(r: &RunReport) -> &'static str {
    match (r.passed, r.interrupted) {
        (true, _) => "PASSED",
        (false, true) => "INTERRUPTED",
        (false, false) => "FAILED",
    }
}

/// Writes `<scenario>-<lab>.md`, `.json` and the `.svg` timeline the
/// Markdown shows into `dir`; returns the first two.
pub(crate) fn write(dir: &Path, r: &RunReport) -> Result<(PathBuf, PathBuf)> {
    // The folder is the user's (`--transcript`): one they cannot write is bad input.
    let bad = |what: &Path, e: std::io::Error| Error::Usage(format!("cannot write {}: {e} (choose another folder with --transcript)", what.display()));
    std::fs::create_dir_all(dir).map_err(|e| bad(dir, e))?;
    let base = dir.join(r.file_stem());
    let (md, json, svg) = (base.with_extension("md"), base.with_extension("json"), base.with_extension("svg"));
    write_whole(&svg, svg::timeline(r).as_bytes()).map_err(|e| bad(&svg, e))?;
    write_whole(&md, render_markdown(r).as_bytes()).map_err(|e| bad(&md, e))?;
    write_whole(&json, serde_json::to_string_pretty(r).expect("serializable").as_bytes()).map_err(|e| bad(&json, e))?;
    Ok((md, json))
}

/// Writes `path` whole or not at all (a temporary file renamed over it):
/// a reader, or a run killed mid-write, never sees half a report.
pub(crate) fn write_whole(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    // A temporary file of its own per write: two steps that end at once
    // each write theirs, and the later rename wins.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // Readable as a plain write would leave it (a temporary file is 0600).
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.write_all(data)?;
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::{CheckOutcome, HostInfo, Phases, StartTimings, StepResult, StepStatus};
    use crate::platform::Platform;
    use crate::transcript::TranscriptEntry;
    use crate::vocab::Role;

    fn step(id: &str, status: StepStatus) -> StepResult {
        StepResult {
            id: id.into(),
            title: format!("title of {id}"),
            host: "primary".into(),
            user: "dba".into(),
            action: "run".into(),
            fault: crate::outcome::Fault::No,
            added: false,
            defect: None,
            note: String::new(),
            passed: status == StepStatus::Passed,
            status,
            at: Duration::from_millis(100),
            elapsed: Duration::from_millis(2500),
            observed: "exit 0 | piped".into(),
            in_host: None,
            restored: false,
        }
    }

    fn entry(step: &str, cmd: &str) -> TranscriptEntry {
        TranscriptEntry {
            step: step.into(),
            host: "primary".into(),
            user: "dba".into(),
            cmd: cmd.into(),
            status: Some(0),
            stdout: "out\n".into(),
            stderr: String::new(),
            elapsed: Duration::from_millis(5),
            note: None,
            in_host: None,
        }
    }

    pub(crate) fn report() -> RunReport {
        RunReport {
            scenario: "demo".into(),
            description: "A demo.".into(),
            platform: Platform::Debian12,
            image: "pglab/debian-12:x".into(),
            versions: Some(crate::outcome::Versions {
                os: "Debian GNU/Linux 12 (bookworm), 12.15".into(),
                postgresql: "15.18-0+deb12u1".into(),
                pgbackrest: "2.45-1".into(),
                archive_date: "Sat, 11 Jul 2026 10:16:37 UTC".into(),
                packages: "f0f5fe37a9bed5f5".into(),
            }),
            lab: "abc".into(),
            hosts: vec![HostInfo { name: "primary".into(), kind: Default::default(), role: Role::Primary, ip: "10.0.0.2".into() }],
            from: None,
            checkpoint: None,
            lab_timings: StartTimings::default(),
            phases: Phases::default(),
            passed: false,
            interrupted: true,
            error: Some(Error::Interrupted.failure(|t| t.to_string())),
            steps: vec![step("1-a", StepStatus::Passed), step("2-b", StepStatus::Interrupted)],
            checks: vec![CheckOutcome {
                name: "streaming".into(),
                verdict: crate::outcome::Verdict::Passed,
                evidence: "ok".into(),
                figures: Default::default(),
                at: Duration::ZERO,
                elapsed: Duration::ZERO,
            }],
            defects: Vec::new(),
            total: Duration::from_secs(3),
            // Recorded in time order: hosts overlapped.
            transcript: vec![
                entry("lab", "sed -i ..."),
                entry("2-b", "second"),
                entry("verify-streaming", "check"),
                entry("1-a", "first"),
                entry("given", "CREATE TABLE"),
            ],
            series: Default::default(),
        }
    }

    #[test]
    fn markdown_shows_the_verdict_hosts_and_steps_and_reads_in_file_order() {
        let md = render_markdown(&report());
        assert!(md.starts_with("# demo (INTERRUPTED)"), "{md}");
        let second = md.lines().nth(2).unwrap_or("");
        assert!(
            second.starts_with("Ran on **Debian GNU/Linux 12 (bookworm), 12.15** with **PostgreSQL 15.18-0+deb12u1** and **pgBackRest 2.45-1**"),
            "{second}"
        );
        assert!(md.contains("## Interrupted"), "{md}");
        assert!(md.contains("| primary | primary | 10.0.0.2 |"), "{md}");
        assert!(md.contains("| 2-b | primary | dba | INTERRUPTED | 0.1 | 2500 | exit 0 \\| piped |"), "{md}");
        let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} missing"));
        assert!(at("$ sed -i") < at("$ CREATE TABLE"), "lab set-up first");
        assert!(at("$ CREATE TABLE") < at("$ first") && at("$ first") < at("$ second") && at("$ second") < at("$ check"), "{md}");
        assert!(md.contains("### 2-b — title of 2-b"), "{md}");
    }

    #[test]
    fn junit_has_a_case_per_step_and_check_and_fails_the_interrupted_one() {
        let xml = junit(&report());
        assert!(xml.contains("name=\"step 1-a\"") && xml.contains("name=\"check streaming\""), "{xml}");
        assert!(xml.contains("step 2-b was interrupted on primary"), "{xml}");
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    }

    #[test]
    fn the_report_file_is_named_for_scenario_lab_and_resume_point() {
        let mut r = report();
        assert_eq!(r.file_stem(), "demo-abc");
        r.from = Some("8-restore".into());
        assert_eq!(r.file_stem(), "demo-abc-from-8-restore");
        let dir = tempfile::tempdir().unwrap();
        let (md, json) = write(dir.path(), &r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        assert_eq!((v["interrupted"].as_bool(), v["steps"][1]["status"].as_str()), (Some(true), Some("interrupted")));
        assert!(md.ends_with("demo-abc-from-8-restore.md"));
        let svg = std::fs::read_to_string(dir.path().join("demo-abc-from-8-restore.svg")).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(std::fs::read_to_string(&md).unwrap().contains("![what ran when](demo-abc-from-8-restore.svg)"));
    }
}
