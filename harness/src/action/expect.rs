//! Judging what a step produced against its `expect`: pure, so it is
//! tested without an engine.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::vars::Vars;

/// What a step must produce. A step that fails otherwise stops the run.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Expect {
    /// Exit status (default 0), `"nonzero"`, or `"any"`. For `sql`: 0 ok, 1 an SQL error.
    pub status: Option<StatusExpect>,
    /// Regex that stdout+stderr (or the SQL result or error) must match.
    #[schemars(with = "Option<String>")]
    pub output: Option<Spanned<String>>,
    /// Regex a PostgreSQL log line on the step's host must match: a line
    /// written after the step began (polled; with `retry_s`, after its
    /// first try began, looked at once a try).
    #[schemars(with = "Option<String>")]
    pub log: Option<Spanned<String>>,
}

/// An exit status, or a word for several.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub(crate) enum StatusExpect {
    Code(i64),
    Word(StatusWord),
}

/// Words `expect.status` takes besides a number.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusWord {
    /// Every status passes (the output or log decides).
    Any,
    /// Any failure passes (evidence of a defect).
    Nonzero,
}

impl Default for StatusExpect {
    fn default() -> Self {
        StatusExpect::Code(0)
    }
}

impl StatusExpect {
    pub(crate) fn accepts(self, status: i64) -> bool {
        match self {
            StatusExpect::Code(c) => c == status,
            StatusExpect::Word(StatusWord::Any) => true,
            StatusExpect::Word(StatusWord::Nonzero) => status != 0,
        }
    }

    /// The one status this expects, if it is one.
    pub(crate) fn code(self) -> Option<i64> {
        match self {
            StatusExpect::Code(c) => Some(c),
            StatusExpect::Word(_) => None,
        }
    }
}

impl fmt::Display for StatusExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusExpect::Code(c) => write!(f, "{c}"),
            StatusExpect::Word(StatusWord::Any) => f.write_str("any"),
            StatusExpect::Word(StatusWord::Nonzero) => f.write_str("non-zero"),
        }
    }
}

/// Why a step's outcome is not what its `expect` asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Miss {
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
pub(crate) fn judge(expect: &Expect, vars: &Vars, status: i64, output: &str) -> Result<Option<Miss>> {
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

    #[derive(Deserialize)]
    struct Step {
        expect: Expect,
    }

    /// An `expect` table as a file writes it, and the platform's variables.
    fn step(expect: &str) -> (Step, Vars) {
        let step: Step = toml::from_str(&format!("expect = {expect}")).unwrap();
        (step, Vars(crate::vars::builtin(crate::platform::Platform::Debian12)))
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
