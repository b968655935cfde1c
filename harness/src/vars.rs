//! `{name}` variables: one set, built the same way for validation (with
//! placeholders) and for a run (with the lab's addresses and fresh secrets);
//! how a scenario's set is built is the scenario's (`scenario::vars`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::platform::Platform;

/// Every variable a scenario's steps can use, with its value.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub(crate) struct Vars(pub(crate) BTreeMap<String, String>);

/// What each built-in variable is, for the reference.
pub(crate) const BUILTIN_DOCS: [(&str, &str); 7] = [
    ("pg.version", "PostgreSQL's major version"),
    ("pg.config_dir", "postgresql-common's cluster config directory (postgresql.conf, pg_hba.conf)"),
    ("pg.data", "the cluster's data directory (pgBackRest's `pg1-path`)"),
    ("pg.bin", "PostgreSQL's programs (pg_ctl, postgres)"),
    ("pg.log", "the cluster's log file"),
    ("pg.unit", "the cluster's own systemd unit (`postgresql` is an umbrella over it)"),
    ("platform", "the platform's name"),
];

/// Built-in variables of a platform: `{pg.version}`, `{pg.data}`, ...
pub(crate) fn builtin(platform: Platform) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("pg.version".into(), platform.pg_major().to_string()),
        ("pg.config_dir".into(), platform.pg_config_dir()),
        ("pg.data".into(), platform.pg_data()),
        ("pg.bin".into(), platform.pg_bin()),
        ("pg.log".into(), platform.pg_log()),
        ("pg.unit".into(), platform.pg_unit()),
        ("platform".into(), platform.name().to_string()),
    ])
}

impl std::fmt::Debug for Vars {
    /// Names only: values hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Vars {
    /// A variable's value.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every variable's name.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The values of the scenario's `{secret.*}` variables.
    pub(crate) fn secrets(&self) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k.starts_with("secret.")).map(|(_, v)| v.clone()).collect()
    }

    /// Replaces every `{name}`; an unknown one is an error naming it.
    pub(crate) fn subst(&self, text: &str) -> Result<String> {
        substitute(text, &self.0).map_err(Error::UndefinedVariable)
    }

    /// As [`Vars::subst`], for regex fields: values match literally.
    pub(crate) fn subst_regex(&self, pattern: &str) -> Result<String> {
        let escaped: BTreeMap<String, String> = self.0.iter().map(|(k, v)| (k.clone(), regex::escape(v))).collect();
        substitute(pattern, &escaped).map_err(Error::UndefinedVariable)
    }

    /// The first undefined `{name}` in `text` and its byte offset there.
    pub(crate) fn first_undefined(&self, text: &str) -> Option<(String, usize)> {
        references(text).find(|c| !self.0.contains_key(&c[1])).map(|c| (c[1].to_string(), c.get(0).expect("match").start()))
    }
}

fn var_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\}").expect("valid regex"))
}

/// The `{name}`s of a text, but not a regex's `\p{Greek}` class.
fn references(text: &str) -> impl Iterator<Item = regex::Captures<'_>> {
    var_regex().captures_iter(text).filter(move |c| {
        let before = &text[..c.get(0).expect("match").start()];
        !(before.ends_with("\\p") || before.ends_with("\\P"))
    })
}

fn substitute(text: &str, vars: &BTreeMap<String, String>) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for c in references(text) {
        let m = c.get(0).expect("match");
        let Some(v) = vars.get(&c[1]) else { return Err(c[1].to_string()) };
        out.push_str(&text[last..m.start()]);
        out.push_str(v);
        last = m.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn every_builtin_is_documented() {
        let documented: Vec<&str> = BUILTIN_DOCS.iter().map(|(k, _)| *k).collect();
        let mut documented = documented.clone();
        documented.sort_unstable();
        assert_eq!(builtin(Platform::Debian12).keys().map(String::as_str).collect::<Vec<_>>(), documented);
    }

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn substitution_replaces_and_names_what_is_missing() {
        let v = vars(&[("a.ip", "10.0.0.1")]);
        assert_eq!(v.subst("host={a.ip} x").unwrap(), "host=10.0.0.1 x");
        assert!(matches!(v.subst("{b}"), Err(Error::UndefinedVariable(n)) if n == "b"));
        assert_eq!(v.first_undefined("ok {a.ip} then {c.d}"), Some(("c.d".into(), 15)));
        // Not variables: an awk program's braces, a regex's Unicode class.
        assert_eq!(v.subst("\\p{L}+ \\P{Greek}").unwrap(), "\\p{L}+ \\P{Greek}");
        assert_eq!(v.first_undefined("\\p{L} {x}"), Some(("x".into(), 6)));
        assert_eq!(v.subst("awk '{ print $1 }'").unwrap(), "awk '{ print $1 }'");
    }

    #[test]
    fn regex_fields_match_values_literally() {
        let v = vars(&[("dir", "/etc/postgresql/15/main")]);
        let re = regex::Regex::new(&v.subst_regex("{dir}/postgresql.conf").unwrap()).unwrap();
        assert!(re.is_match("/etc/postgresql/15/main/postgresql.conf"));
        let v = vars(&[("x", "a.c")]);
        let re = regex::Regex::new(&v.subst_regex("^{x}$").unwrap()).unwrap();
        assert!(!re.is_match("abc"), "the dot is literal");
    }
}
