//! Judging what a step produced against its `expect`: pure, so it is
//! tested without an engine.

use crate::error::{Error, Result};
use crate::scenario::{Expect, Vars};

/// Why a step's outcome is not what its `expect` asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    Status { want: String, got: i64 },
    Output { pattern: String },
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::Status { want, .. } => write!(f, "expected exit status {want}"),
            Miss::Output { pattern } => write!(f, "output does not match /{pattern}/"),
        }
    }
}

/// Checks `status` and `output` (stdout+stderr, or a SQL result or error)
/// against `expect`. `Err` only for a pattern that cannot be used.
pub fn judge(expect: &Expect, vars: &Vars, status: i64, output: &str) -> Result<Option<Miss>> {
    let want = expect.status.unwrap_or_default();
    if !want.accepts(status) {
        return Ok(Some(Miss::Status { want: want.to_string(), got: status }));
    }
    if let Some(re) = &expect.output {
        let pattern = vars.subst_regex(re.get_ref())?;
        let compiled = regex::Regex::new(&pattern).map_err(|e| Error::Check(format!("`expect.output` /{pattern}/: {e}")))?;
        if !compiled.is_match(output) {
            return Ok(Some(Miss::Output { pattern }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Scenario, Step};
    use std::path::Path;

    /// A step with this `expect` table, parsed as a scenario file would be.
    fn step(expect: &str) -> (Step, Vars) {
        let src = format!("name = \"t\"\n[[hosts]]\nname = \"pg1\"\n[[steps]]\nid = \"1\"\ntitle = \"x\"\nhost = \"pg1\"\nrun = \"true\"\nexpect = {expect}\n");
        let mut scn = Scenario::parse(Path::new("t.toml"), src).unwrap();
        let vars = Vars::declared(&scn, scn.platform);
        (scn.steps.remove(0), vars)
    }

    #[test]
    fn status_zero_is_the_default() {
        let (s, v) = step("{}");
        assert_eq!(judge(&s.expect, &v, 0, "").unwrap(), None);
        assert_eq!(judge(&s.expect, &v, 1, "").unwrap(), Some(Miss::Status { want: "0".into(), got: 1 }));
    }

    #[test]
    fn words_accept_any_or_any_failure() {
        let (s, v) = step("{ status = \"nonzero\" }");
        assert!(judge(&s.expect, &v, 0, "").unwrap().is_some());
        assert_eq!(judge(&s.expect, &v, 3, "").unwrap(), None);
        let (s, v) = step("{ status = \"any\" }");
        assert_eq!(judge(&s.expect, &v, 7, "").unwrap(), None);
    }

    #[test]
    fn output_is_a_regex_with_variables_matched_literally() {
        let (s, v) = step("{ output = \"{pg.config_dir}/postgresql.conf\" }");
        assert_eq!(judge(&s.expect, &v, 0, " /etc/postgresql/15/main/postgresql.conf\n").unwrap(), None);
        let miss = judge(&s.expect, &v, 0, "/etc/postgresql/15/mainXpostgresql.conf").unwrap();
        assert!(matches!(miss, Some(Miss::Output { .. })), "{miss:?}");
        let (s, v) = step("{ status = 1, output = \"\\\\[038\\\\]\" }");
        assert_eq!(judge(&s.expect, &v, 1, "ERROR: [038]: unable to restore").unwrap(), None);
        assert_eq!(judge(&s.expect, &v, 0, "ERROR: [038]").unwrap(), Some(Miss::Status { want: "1".into(), got: 0 }), "status first");
    }
}
