//! Transcripts (every command really run, like an executed user guide) and
//! the JSON report of a run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

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

#[derive(Default)]
struct Inner {
    step: String,
    entries: Vec<TranscriptEntry>,
    secrets: Vec<String>,
}

/// Shared by a lab and its hosts; every exec lands here, redacted.
#[derive(Clone, Default)]
pub struct Transcript(Arc<Mutex<Inner>>);

pub const REDACTED: &str = "********";

impl Transcript {
    pub fn new() -> Self {
        let t = Transcript::default();
        t.set_step("lab");
        t
    }

    pub fn set_step(&self, step: &str) {
        self.0.lock().unwrap().step = step.to_string();
    }

    pub fn step(&self) -> String {
        self.0.lock().unwrap().step.clone()
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
            e.step = inner.step.clone();
        }
        inner.entries.push(e);
    }

    pub fn entries(&self) -> Vec<TranscriptEntry> {
        self.0.lock().unwrap().entries.clone()
    }
}
