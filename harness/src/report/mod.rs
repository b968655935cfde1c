//! What a person reads: the executed transcript (Markdown), the JSON
//! report, JUnit XML and bench tables, all rendered from a [`RunReport`].
//! Rendering only: nothing here runs anything.

mod bench;
mod junit;
mod markdown;

pub use bench::bench_table;
pub use junit::junit;
pub use markdown::render_markdown;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::outcome::RunReport;

/// PASSED, FAILED or INTERRUPTED.
pub fn verdict(r: &RunReport) -> &'static str {
    match (r.passed, r.interrupted) {
        (true, _) => "PASSED",
        (false, true) => "INTERRUPTED",
        (false, false) => "FAILED",
    }
}

/// Writes `<scenario>-<lab>.md` and `.json` into `dir`; returns the paths.
pub fn write(dir: &Path, r: &RunReport) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let base = dir.join(r.file_stem());
    let md = base.with_extension("md");
    let json = base.with_extension("json");
    std::fs::write(&md, render_markdown(r)).map_err(|e| Error::io(format!("writing {}", md.display()), e))?;
    std::fs::write(&json, serde_json::to_string_pretty(r).expect("serializable")).map_err(|e| Error::io(format!("writing {}", json.display()), e))?;
    Ok((md, json))
}
