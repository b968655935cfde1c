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

#[derive(Debug, Clone, Serialize, Deserialize)]
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
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = Self::path(&self.lab);
        crate::lab::inventory::create_lab_state_dir(&self.lab)?;
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        f.write_all(serde_json::to_string_pretty(self).expect("serializable").as_bytes()).map_err(|e| Error::io("writing run state", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(format!("renaming {}", tmp.display()), e))?;
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
