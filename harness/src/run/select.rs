//! Which checks a run runs and when: `--check` picks, slow ones only with
//! `--slow`, and a check with `after` starts early. Pure.

use std::str::FromStr;

use crate::check::CheckDecl;
use crate::error::{Error, Result};
use crate::scenario::Scenario;
use crate::vars::Vars;
use crate::vocab::PitrTarget;

/// One `--check NAME` or `--check pitr=name,lsn`, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPick {
    /// The check's name.
    pub name: String,
    /// For `pitr`: only these restore targets.
    pub targets: Option<Vec<PitrTarget>>,
}

impl FromStr for CheckPick {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_once('=') {
            None => Ok(CheckPick { name: s.to_string(), targets: None }),
            Some(("pitr", list)) => {
                let targets = list.split(',').map(str::parse).collect::<std::result::Result<Vec<PitrTarget>, String>>()?;
                Ok(CheckPick { name: "pitr".into(), targets: Some(targets) })
            }
            Some((name, _)) => Err(format!("`{s}`: only pitr takes arguments (`{name}` does not)")),
        }
    }
}

impl std::fmt::Display for CheckPick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.targets {
            Some(t) => write!(f, "{}={}", self.name, t.iter().map(|t| t.name()).collect::<Vec<_>>().join(",")),
            None => f.write_str(&self.name),
        }
    }
}

/// Every pick names a check the scenario has.
pub(crate) fn validate(scn: &Scenario, picks: &[CheckPick]) -> Result<()> {
    let names: Vec<&str> = scn.verify.iter().map(|v| v.check.name()).collect();
    match picks.iter().find(|p| !names.contains(&p.name.as_str())) {
        Some(p) => Err(Error::Usage(format!("--check {p}: {} has no check `{}` (checks: {})", scn.name, p.name, names.join(", ")))),
        None => Ok(()),
    }
}

/// A check as this run will run it: its place in the file (reports keep
/// file order), the steps it may start after, and its parameters.
#[derive(Debug, Clone)]
pub(crate) struct PlannedCheck {
    pub index: usize,
    pub after: Vec<String>,
    /// As written (variables unresolved), narrowed by its pick.
    pub decl: CheckDecl,
    pick: Option<CheckPick>,
}

impl PlannedCheck {
    /// The check to run: its parameters' `{variables}` resolved, narrowed by its pick.
    pub(crate) fn resolve(&self, scn: &Scenario, vars: &Vars) -> Result<CheckDecl> {
        let decl = scn.verify[self.index].resolved(vars)?;
        Ok(match &self.pick {
            Some(p) => narrowed(decl, p),
            None => decl,
        })
    }
}

/// The checks this run runs: `picks` select (and may run a slow one), slow
/// ones otherwise only with `slow`.
pub(crate) fn planned(scn: &Scenario, slow: bool, picks: &[CheckPick]) -> Vec<PlannedCheck> {
    scn.verify
        .iter()
        .enumerate()
        .filter(|(_, v)| slow || !v.check.is_slow() || !picks.is_empty())
        .filter_map(|(index, v)| {
            let pick = match picks {
                [] => None,
                _ => Some(picks.iter().find(|p| p.name == v.check.name())?.clone()),
            };
            let decl = match &pick {
                Some(p) => narrowed(v.check.clone(), p),
                None => v.check.clone(),
            };
            Some(PlannedCheck { index, after: v.after.iter().map(|a| a.get_ref().clone()).collect(), decl, pick })
        })
        .collect()
}

/// `pitr=a,b` keeps only those restore targets.
fn narrowed(mut decl: CheckDecl, pick: &CheckPick) -> CheckDecl {
    if let (CheckDecl::Pitr(crate::check::Pitr { targets, .. }), Some(only)) = (&mut decl, &pick.targets) {
        *targets = only.clone();
    }
    decl
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scn() -> Scenario {
        let src = r#"
name = "t"
[[hosts]]
name = "p"
[[steps]]
id = "1"
title = "x"
host = "p"
run = "true"
[[verify]]
check = "cron_line"
host = "p"
line = "x"
[[verify]]
check = "cron_fires"
host = "p"
stanza = "s"
[[verify]]
check = "pitr"
after = ["1"]
primary = "p"
target_host = "p"
stanza = "s"
"#;
        Scenario::parse(Path::new("t.toml"), src.into()).unwrap()
    }

    #[test]
    fn picks_parse_once_with_typed_targets() {
        assert_eq!("streaming".parse::<CheckPick>().unwrap(), CheckPick { name: "streaming".into(), targets: None });
        let p: CheckPick = "pitr=name,lsn".parse().unwrap();
        assert_eq!(p.targets, Some(vec![PitrTarget::Name, PitrTarget::Lsn]));
        assert_eq!(p.to_string(), "pitr=name,lsn");
        assert!("pitr=yesterday".parse::<CheckPick>().unwrap_err().contains("yesterday"));
        assert!("streaming=3".parse::<CheckPick>().unwrap_err().contains("only pitr"));
    }

    #[test]
    fn slow_checks_need_slow_or_a_pick() {
        let s = scn();
        let names = |p: Vec<PlannedCheck>| p.into_iter().map(|c| c.decl.name()).collect::<Vec<_>>();
        assert_eq!(names(planned(&s, false, &[])), ["cron_line", "pitr"]);
        assert_eq!(names(planned(&s, true, &[])), ["cron_line", "cron_fires", "pitr"]);
        assert_eq!(names(planned(&s, false, &["cron_fires".parse().unwrap()])), ["cron_fires"]);
    }

    #[test]
    fn a_pitr_pick_narrows_targets_and_keeps_place_and_after() {
        let s = scn();
        let p = planned(&s, false, &["pitr=xid".parse().unwrap()]);
        assert_eq!((p.len(), p[0].index, p[0].after.clone()), (1, 2, vec!["1".to_string()]));
        let CheckDecl::Pitr(crate::check::Pitr { targets, .. }) = &p[0].decl else { panic!() };
        assert_eq!(targets, &[PitrTarget::Xid]);
        assert!(validate(&s, &["nosuch".parse().unwrap()]).is_err());
        assert!(validate(&s, &["pitr".parse().unwrap()]).is_ok());
    }
}
