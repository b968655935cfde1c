//! Recording what really ran (an executed guide), and the one redactor that
//! keeps secrets out of everything shown, written or bundled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

/// What a secret shows as.
pub const REDACTED: &str = "********";

/// Removes known secrets and anything that reads as `password=...`.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Arc<Mutex<Vec<String>>>,
}

/// How many secrets it holds, never what they are.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").field("secrets", &self.secrets.lock().map(|s| s.len()).unwrap_or(0)).finish()
    }
}

impl Redactor {
    pub(crate) fn with_secrets<I: IntoIterator<Item = S>, S: Into<String>>(secrets: I) -> Self {
        let r = Redactor::default();
        for s in secrets {
            r.add(&s.into());
        }
        r
    }

    /// From now on `secret` never appears in what this redactor passes.
    /// Adding one it already holds changes nothing (a resumed run adds the
    /// run state's secrets to those its attach already read).
    pub(crate) fn add(&self, secret: &str) {
        let mut secrets = self.secrets.lock().expect("redactor lock");
        if !secret.is_empty() && !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_string());
        }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let re = RE.get_or_init(|| regex::Regex::new(r"(?i)(password[ \t]*[=:][ \t]*)('[^'\n]*'|[^\s']+)").expect("valid regex"));
        let secrets = self.secrets.lock().expect("redactor lock");
        let text = secrets.iter().fold(text.to_string(), |t, s| t.replace(s.as_str(), REDACTED));
        re.replace_all(&text, format!("${{1}}{REDACTED}")).into_owned()
    }
}

/// One command (or harness action) as it ran.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TranscriptEntry {
    /// Step id this ran under (`given`, `3-postgresql-conf`, `verify-pitr`, `lab`).
    pub step: String,
    /// The host it ran on.
    pub host: String,
    /// Who ran it: an OS user, or the harness (`pglab (harness)`).
    pub user: String,
    /// The command as typed, or what the harness did.
    pub cmd: String,
    /// Its exit status (none for a harness action).
    pub status: Option<i64>,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// How long it took.
    #[serde(rename = "elapsed_ms", with = "crate::time::millis")]
    pub elapsed: Duration,
    /// Extra text shown with the command (a config diff, a SQL result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Of `elapsed`, how long the command itself ran in the host: from the
    /// engine starting its process to the end of its output. The rest is
    /// pglab's own time (none for a harness action: all of it is).
    #[serde(rename = "in_host_ms", default, skip_serializing_if = "Option::is_none", with = "crate::time::millis_opt")]
    pub in_host: Option<Duration>,
}

tokio::task_local! {
    /// The step a future runs under: steps of different hosts run at once, so
    /// the transcript cannot keep a single "current step".
    static STEP: String;
}

/// Runs `fut` with what it records filed under step `id`.
pub(crate) async fn in_step<F: std::future::Future>(id: &str, fut: F) -> F::Output {
    STEP.scope(id.to_string(), fut).await
}

/// Shared by a lab and its hosts; every entry is redacted as it is recorded.
#[derive(Clone, Default)]
pub struct Transcript {
    entries: Arc<Mutex<Vec<TranscriptEntry>>>,
    redactor: Redactor,
}

/// What a command did, for the transcript.
pub(crate) struct Ran<'a> {
    pub cmd: &'a str,
    pub status: i64,
    pub stdout: &'a str,
    pub stderr: &'a str,
    pub elapsed: Duration,
    /// How long its process ran in the host, when one did.
    pub in_host: Option<Duration>,
}

impl Transcript {
    pub(crate) fn new() -> Self {
        Transcript::default()
    }

    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// `text` with every secret of the lab's run, and every `password=...`, masked.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// A command that ran on `host` as `user`, with its status and output.
    pub(crate) fn command(&self, host: &str, user: &str, ran: Ran<'_>) {
        let e = self.entry(host, user, ran.cmd, ran.elapsed);
        self.push(TranscriptEntry { status: Some(ran.status), stdout: self.redact(ran.stdout), stderr: self.redact(ran.stderr), in_host: ran.in_host, ..e });
    }

    /// A harness action that is not a command (a file written, a wait, a diff).
    pub(crate) fn note(&self, host: &str, user: &str, what: &str, note: &str, elapsed: Duration) {
        let e = self.entry(host, user, what, elapsed);
        self.push(TranscriptEntry { note: Some(self.redact(note)), ..e });
    }

    /// An entry under the running step, its command redacted, nothing else yet.
    fn entry(&self, host: &str, user: &str, cmd: &str, elapsed: Duration) -> TranscriptEntry {
        TranscriptEntry {
            // Outside any step: setting up the lab (network, route, harness role).
            step: STEP.try_with(Clone::clone).unwrap_or_else(|_| "lab".into()),
            host: host.into(),
            user: user.into(),
            cmd: self.redact(cmd),
            status: None,
            stdout: String::new(),
            stderr: String::new(),
            elapsed,
            note: None,
            in_host: None,
        }
    }

    fn push(&self, entry: TranscriptEntry) {
        self.entries.lock().expect("transcript lock").push(entry);
    }

    /// Entries recorded by the run that saved a checkpoint, in front of
    /// this run's (they were redacted when they were recorded).
    pub(crate) fn restore(&self, earlier: Vec<TranscriptEntry>) {
        self.entries.lock().expect("transcript lock").splice(0..0, earlier);
    }

    /// How long the commands filed under `step` ran in their hosts, together.
    pub(crate) fn in_host(&self, step: &str) -> Duration {
        self.entries.lock().expect("transcript lock").iter().filter(|e| e.step == step).filter_map(|e| e.in_host).sum()
    }

    /// Every entry so far, in the order they were recorded.
    pub fn entries(&self) -> Vec<TranscriptEntry> {
        self.entries.lock().expect("transcript lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_password_settings_are_redacted_everywhere() {
        let t = Transcript::new();
        t.redactor().add("pw123456");
        t.redactor().add("pw123456");
        assert!(format!("{:?}", t.redactor()).contains("secrets: 1"), "held once");
        t.command(
            "h",
            "root",
            Ran { cmd: "echo pw123456", status: 0, stdout: "out pw123456", stderr: "password=hunter2 x", elapsed: Duration::ZERO, in_host: None },
        );
        t.note("h", "root", "write", "PASSWORD 'pw123456'", Duration::ZERO);
        let e = t.entries();
        assert_eq!(e[0].cmd, "echo ********");
        assert_eq!(e[0].stdout, "out ********");
        assert_eq!(e[0].stderr, "password=******** x");
        assert_eq!(e[1].note.as_deref(), Some("PASSWORD '********'"));
        assert_eq!(e[0].step, "lab");
    }

    #[tokio::test]
    async fn entries_are_filed_under_their_step() {
        let t = Transcript::new();
        in_step("7-backup", async {
            t.command("h", "postgres", Ran { cmd: "pgbackrest backup", status: 0, stdout: "", stderr: "", elapsed: Duration::ZERO, in_host: None })
        })
        .await;
        assert_eq!(t.entries()[0].step, "7-backup");
    }
}
