//! What a kept lab remembers of the run that made it, so `pglab step`,
//! `run --from` and `pglab report` can go on where it stopped. Lives in the
//! lab's state directory (mode 0600: it holds the run's secrets) and goes
//! away with the lab.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lab::inventory::lab_state_dir;
use crate::platform::Platform;
use crate::vars::Vars;

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct RunState {
    pub lab: String,
    pub scenario: String,
    /// The file as given to `pglab run` (re-read on resume, so edits count).
    pub scenario_path: PathBuf,
    pub platform: Platform,
    pub image: String,
    /// Every variable the steps saw, host addresses and secrets included.
    pub vars: Vars,
    /// Secret values, redacted from everything shown or bundled.
    pub secrets: Vec<String>,
    /// Ids of the steps that passed, in the order they finished.
    pub done: Vec<String>,
    /// Transcripts and reports written for this lab.
    pub reports: Vec<PathBuf>,
}

/// Everything but the secrets (the vars print names only).
impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState")
            .field("lab", &self.lab)
            .field("scenario", &self.scenario)
            .field("platform", &self.platform)
            .field("vars", &self.vars)
            .field("secrets", &format_args!("{} redacted", self.secrets.len()))
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl RunState {
    fn path(lab: &str) -> PathBuf {
        lab_state_dir(lab).join("run.json")
    }

    /// The scenario text as it ran (kept beside the state for bundles).
    pub(crate) fn scenario_copy(lab: &str) -> PathBuf {
        lab_state_dir(lab).join("scenario.toml")
    }

    /// The base of a scenario that `extends` one, beside its copy.
    pub(crate) fn base_copy(lab: &str) -> PathBuf {
        lab_state_dir(lab).join(format!("{}.toml", crate::scenario::PORTABLE_BASE))
    }

    pub(crate) fn save(&self) -> Result<()> {
        crate::lab::inventory::create_lab_state_dir(&self.lab)?;
        crate::lab::inventory::write_private(&Self::path(&self.lab), serde_json::to_string_pretty(self).expect("serializable").as_bytes())?;
        crate::lab::inventory::save_secrets(&self.lab, &self.secrets)?;
        // `pglab list` shows how far a kept lab got.
        if let Some(last) = self.done.last() {
            let _ = std::fs::write(lab_state_dir(&self.lab).join("step"), last);
        }
        Ok(())
    }

    pub(crate) fn load(lab: &str) -> Result<RunState> {
        let path = Self::path(lab);
        let text = std::fs::read_to_string(&path)
            .map_err(|_| Error::Usage(format!("lab `{lab}` has no scenario run to go on from (it was started by `pglab up`, or on another machine)")))?;
        serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::RunState;
    use crate::lab::Cmd;
    use crate::transcript::Redactor;
    use crate::vars::Vars;

    /// `{:?}` is what a panic, a `tracing` field or a `dbg!` prints: no
    /// type that holds a secret may print it.
    #[test]
    fn debug_output_never_holds_a_secret() {
        let secret = "pw-0123456789abcdef-not-to-be-seen";
        let vars = Vars([("secret.replicator_password".to_string(), secret.to_string())].into_iter().collect());
        let state = RunState {
            lab: "abcd1234".into(),
            scenario: "demo".into(),
            scenario_path: "demo.toml".into(),
            platform: Default::default(),
            image: "img".into(),
            vars: vars.clone(),
            secrets: vec![secret.into()],
            done: vec!["1".into()],
            reports: Vec::new(),
        };
        let cmd = Cmd::new(["psql", "-c", "ALTER ROLE r PASSWORD '********'"]).stdin(format!("*:*:*:r:{secret}\n"));
        let printed = [format!("{state:?}"), format!("{vars:?}"), format!("{:?}", Redactor::with_secrets([secret])), format!("{cmd:?}"), format!("{state:#?}")];
        for p in &printed {
            assert!(!p.contains(secret), "{p}");
        }
        assert!(printed[0].contains("abcd1234") && printed[0].contains("1 redacted"), "the rest is still there: {}", printed[0]);
        assert!(printed[3].contains("bytes"), "stdin's size, not its bytes: {}", printed[3]);
    }
}
