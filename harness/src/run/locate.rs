//! Where a scenario named on the command line or in a test is found.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::lab::inventory;
use crate::scenario::shipped;

/// A scenario by path; else by name in `./scenarios`; else one shipped with
/// pglab (so `tutorial` works from any directory and in your own crate).
pub(crate) fn locate(arg: &str) -> Result<PathBuf> {
    let direct = PathBuf::from(arg);
    if direct.is_file() {
        return Ok(direct);
    }
    if arg.contains('/') {
        return Err(Error::Usage(format!("no scenario file {arg}")));
    }
    let name = arg.strip_suffix(".toml").unwrap_or(arg);
    let local = PathBuf::from("scenarios").join(format!("{name}.toml"));
    if local.is_file() {
        return Ok(local);
    }
    if shipped::text(name).is_some() {
        return Ok(extract_shipped()?.join(format!("{name}.toml")));
    }
    Err(Error::Usage(format!("no scenario `{arg}`: not a file, not scenarios/{name}.toml, not a shipped one (see `pglab list-scenarios`)")))
}

/// Writes the shipped scenarios, all together so that `extends` finds its
/// base beside them, into the user's state directory; returns where.
fn extract_shipped() -> Result<PathBuf> {
    let dir = inventory::ensure_state_root()?.join(format!("shipped-{}", env!("CARGO_PKG_VERSION")));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    for (name, text) in shipped::shipped() {
        let path = dir.join(format!("{name}.toml"));
        if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
            continue;
        }
        // Another process may be reading it: it sees the old file or the new, never half of one.
        let tmp = dir.join(format!(".{name}.toml.{}", std::process::id()));
        std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path)).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    Ok(dir)
}
