//! The one way pglab reads a host's logs: PostgreSQL's, pgBackRest's and
//! the journal, tailed by a single script shape for failing steps, `pglab
//! logs` and bug bundles.

use super::exec::Cmd;
use super::host::Host;
use crate::platform::Platform;

/// How a tail marks where lines come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `[postgresql] line`: for evidence inside an error message.
    Prefixed,
    /// `== /path` before each file: for a person reading whole logs.
    Headed,
}

/// How many lines of which logs (0 leaves a log out).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogTail {
    pub postgresql: usize,
    pub pgbackrest: usize,
    /// Only the newest N pgBackRest logs (by mtime); `None`: all of them.
    pub pgbackrest_newest: Option<usize>,
    pub journal: usize,
    /// The units the journal's lines are of (none: every unit's).
    pub units: &'static [&'static str],
    pub style: Style,
}

impl LogTail {
    /// What a failing step shows: the last lines that usually say why.
    pub(crate) const EVIDENCE: LogTail = LogTail { postgresql: 15, pgbackrest: 8, pgbackrest_newest: Some(2), journal: 0, units: &[], style: Style::Prefixed };

    /// Every log, `lines` each, for a person.
    pub(crate) fn all(lines: usize) -> LogTail {
        LogTail { postgresql: lines, pgbackrest: lines, pgbackrest_newest: None, journal: lines, units: &[], style: Style::Headed }
    }

    /// The shell script that prints this tail on a host of `platform`.
    pub(crate) fn script(&self, platform: Platform) -> String {
        let mark = |label: &str| match self.style {
            Style::Prefixed => format!(" | sed 's|^|[{label}] |'"),
            Style::Headed => String::new(),
        };
        let head = |path: &str| match self.style {
            Style::Prefixed => String::new(),
            Style::Headed => format!("echo \"== {path}\"; "),
        };
        let mut parts = Vec::new();
        if self.postgresql > 0 {
            let log = platform.pg_log();
            parts.push(format!("[ -f {log} ] && {{ {}tail -n {} {log}{}; }}", head(&log), self.postgresql, mark("postgresql")));
        }
        if self.pgbackrest > 0 {
            let files = match self.pgbackrest_newest {
                Some(n) => format!("$(ls -t /var/log/pgbackrest/*.log 2>/dev/null | head -{n})"),
                None => "/var/log/pgbackrest/*.log".into(),
            };
            parts.push(format!(
                "for f in {files}; do [ -f \"$f\" ] && {{ {}tail -n {} \"$f\"{}; }}; done",
                head("$f"),
                self.pgbackrest,
                mark("$(basename $f)").replace('\'', "\"")
            ));
        }
        if self.journal > 0 {
            let units: String = self.units.iter().map(|u| format!(" -u {u}")).collect();
            parts.push(format!("{}journalctl --no-pager -n {} -o short-precise{units}{}", head("journal"), self.journal, mark("journal")));
        }
        parts.join("; ")
    }
}

impl Host {
    /// Reads a tail of this host's logs (not recorded), redacted.
    pub(crate) async fn logs(&self, tail: LogTail) -> String {
        let script = tail.script(self.platform);
        match self.probe(&Cmd::new(["bash", "-c", script.as_str()]).any_status()).await {
            Ok(o) => self.transcript().redact(&o.stdout),
            Err(e) => format!("(could not read logs: {e})"),
        }
    }

    /// The last PostgreSQL and pgBackRest log lines: the evidence attached
    /// to a failing step.
    pub async fn relevant_logs(&self) -> String {
        // A kind whose evidence is its units' journal (the object store's) adds those lines.
        let units = super::kind::spec(self.kind).log_units();
        let journal = if units.is_empty() { 0 } else { LogTail::EVIDENCE.postgresql };
        self.logs(LogTail { journal, units, ..LogTail::EVIDENCE }).await
    }

    /// `waited`, and when it timed out, with this host's relevant log lines
    /// beside the last value seen: what says why it never got ready.
    pub(crate) async fn with_logs<T>(&self, waited: crate::error::Result<T>) -> crate::error::Result<T> {
        match waited {
            Err(crate::error::Error::Timeout(mut t)) => {
                t.last = format!("{}\n{}", t.last, self.relevant_logs().await);
                Err(crate::error::Error::Timeout(t))
            }
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str, root: &std::path::Path) -> String {
        // The script's paths, moved under a temporary root.
        let script = script.replace("/var/log/", &format!("{}/var/log/", root.display()));
        let out = std::process::Command::new("bash").arg("-c").arg(script).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn one_script_shape_prefixes_or_heads_each_log() {
        let root = tempfile::tempdir().unwrap();
        let pg = root.path().join("var/log/postgresql");
        let br = root.path().join("var/log/pgbackrest");
        std::fs::create_dir_all(&pg).unwrap();
        std::fs::create_dir_all(&br).unwrap();
        std::fs::write(pg.join("postgresql-15-main.log"), "a\nb\nFATAL: x\n").unwrap();
        std::fs::write(br.join("tutorial-backup.log"), "1\n2\nERROR: [038]: y\n").unwrap();
        let tail = LogTail { journal: 0, ..LogTail::EVIDENCE };
        let text = run(&tail.script(Platform::Debian12), root.path());
        assert!(text.contains("[postgresql] FATAL: x"), "{text}");
        assert!(text.contains("[tutorial-backup.log] ERROR: [038]: y"), "{text}");
        let tail = LogTail { postgresql: 1, pgbackrest: 1, journal: 0, ..LogTail::all(1) };
        let text = run(&tail.script(Platform::Debian12), root.path());
        assert!(text.contains("== ") && text.contains("postgresql-15-main.log\nFATAL: x"), "{text}");
        assert!(!text.contains("\na\n"), "only the last line: {text}");
        let units = LogTail { journal: 15, units: &["pglab-s3.service"], ..LogTail::EVIDENCE }.script(Platform::Debian12);
        assert!(units.contains("journalctl --no-pager -n 15 -o short-precise -u pglab-s3.service | sed 's|^|[journal] |'"), "{units}");
    }
}
