//! Scenario files: the tutorial as declarative steps a DBA can read and
//! change. Parsed once into types; anything unknown or inconsistent is
//! rejected with file, line, column and key.

mod model;
mod validate;
mod vars;

use std::path::Path;

use miette::{NamedSource, SourceSpan};

pub use model::{
    Action, CheckDecl, ConfigEdit, CopyAction, Defect, Expect, FileAction, Given, HostDecl, IniEdit, Mode, Owner, PitrTarget, Role, Scenario, StatusExpect,
    StatusWord, Step, Verify, WaitAction,
};
pub use vars::{builtin as builtin_vars, Vars};

use crate::error::{Error, Result, ScenarioError};

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario> {
        let source = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading scenario {}", path.display()), e))?;
        Scenario::parse(path, source)
    }

    pub fn parse(path: &Path, source: String) -> Result<Scenario> {
        let mut s: Scenario = match toml::from_str(&source) {
            Ok(s) => s,
            Err(e) => return Err(scenario_error(path, &source, e.span(), e.message().trim().to_string(), "here", None)),
        };
        s.path = path.to_path_buf();
        s.source = source;
        validate::validate(&s)?;
        Ok(s)
    }

    /// Index of the step with this id, or of the last step of a tutorial
    /// step number (`8` finds `8-streaming`).
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id.get_ref() == id).or_else(|| self.steps.iter().rposition(|s| s.id.get_ref().split('-').next() == Some(id)))
    }

    pub fn defect(&self, id: &str) -> Option<&Defect> {
        self.defects.iter().find(|d| d.id == id)
    }

    pub fn role_of(&self, host: &str) -> Role {
        self.hosts.iter().find(|h| h.name.get_ref() == host).map(|h| h.role).unwrap_or_default()
    }
}

/// Errors located in a parsed scenario's own text.
struct Located<'a>(&'a Scenario);

impl Located<'_> {
    fn err(&self, span: Option<std::ops::Range<usize>>, message: String, label: &str, help: Option<String>) -> Error {
        scenario_error(&self.0.path, &self.0.source, span, message, label, help)
    }
}

fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

fn scenario_error(path: &Path, source: &str, span: Option<std::ops::Range<usize>>, message: String, label: &str, help: Option<String>) -> Error {
    let at = match &span {
        Some(r) => {
            let (l, c) = line_col(source, r.start);
            format!("{}:{l}:{c}", path.display())
        }
        None => path.display().to_string(),
    };
    Error::Scenario(Box::new(ScenarioError {
        message: format!("{at}: {message}"),
        src: NamedSource::new(path.display().to_string(), source.to_string()),
        span: span.map(|r| SourceSpan::from(r.start..r.end.max(r.start))),
        label: label.to_string(),
        help,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Scenario> {
        Scenario::parse(Path::new("t.toml"), src.to_string())
    }

    pub(crate) const OK: &str = r#"
name = "t"
[[hosts]]
name = "primary"
[[steps]]
id = "1-x"
title = "x"
host = "primary"
run = "echo {primary.ip} {pg.version}"
"#;

    #[test]
    fn a_minimal_scenario_parses_into_typed_actions() {
        let s = parse(OK).unwrap();
        assert_eq!(s.steps.len(), 1);
        assert_eq!(s.steps[0].user, "dba");
        assert!(matches!(&s.steps[0].action, Action::Run(r) if r.get_ref().starts_with("echo")));
        assert_eq!(s.role_of("primary"), Role::Spare);
    }

    const CHECK: &str = r#"
[[verify]]
check = "cron_line"
after = ["1-x"]
host = "primary"
line = "x"
"#;

    #[test]
    fn checks_take_after_and_still_reject_unknown_keys() {
        let s = parse(&format!("{OK}{CHECK}")).unwrap();
        assert_eq!(s.verify[0].after, ["1-x"]);
        assert_eq!(s.verify[0].check.name(), "cron_line");
        let err = parse(&format!("{OK}{}", CHECK.replace("line = ", "lien = "))).unwrap_err().to_string();
        assert!(err.contains("lien"), "{err}");
        let err = parse(&format!("{OK}{}", CHECK.replace("\"1-x\"]", "\"2-y\"]"))).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:11:1:") && err.contains("`after` names no step `2-y`"), "{err}");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse(&OK.replace("run = ", "rn = ")).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:9:1:"), "{err}");
        assert!(err.contains("rn"), "{err}");
    }

    #[test]
    fn unknown_host_and_undefined_variable_are_located() {
        let err = parse(&OK.replace("host = \"primary\"", "host = \"primry\"")).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:8:8:") && err.contains("unknown host `primry`"), "{err}");
        let err = parse(&OK.replace("{pg.version}", "{pg.verison}")).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:9:") && err.contains("{pg.verison}"), "{err}");
    }

    #[test]
    fn missing_field_two_actions_and_bad_modes_are_rejected() {
        let err = parse(&OK.replace("title = \"x\"\n", "")).unwrap_err().to_string();
        assert!(err.contains("missing field `title`"), "{err}");
        let err = parse(&OK.replace("run = ", "sql = \"select 1\"\nrun = ")).unwrap_err().to_string();
        assert!(err.contains("exactly one action") && err.contains("run, sql"), "{err}");
        let err = parse(&OK.replace("run = \"echo {primary.ip} {pg.version}\"", "wait = \"pg_up\"\nrun = \"x\"")).unwrap_err().to_string();
        assert!(err.contains("exactly one action"), "{err}");
        let file = OK.replace("run = \"echo {primary.ip} {pg.version}\"", "file = { path = \"/x\", content = \"y\", mode = \"rwx\" }");
        let err = parse(&file).unwrap_err().to_string();
        assert!(err.contains("not an octal file mode"), "{err}");
        let roles = OK.replace("name = \"primary\"\n[[steps]]", "name = \"primary\"\nrole = \"leader\"\n[[steps]]");
        assert!(parse(&roles).unwrap_err().to_string().contains("unknown variant `leader`"));
    }

    #[test]
    fn pitr_targets_are_typed() {
        let pitr = |targets: &str| {
            format!("{OK}\n[[verify]]\ncheck = \"pitr\"\nprimary = \"primary\"\ntarget_host = \"primary\"\nstanza = \"s\"\ntargets = {targets}\n")
        };
        let s = parse(&pitr("[\"name\", \"lsn\"]")).unwrap();
        let CheckDecl::Pitr { targets, .. } = &s.verify[0].check else { panic!("pitr") };
        assert_eq!(targets, &[PitrTarget::Name, PitrTarget::Lsn]);
        assert!(parse(&pitr("[\"yesterday\"]")).unwrap_err().to_string().contains("yesterday"));
    }

    #[test]
    fn after_must_name_an_earlier_step() {
        let two = "name = \"t\"\nparallel = true\n[[hosts]]\nname = \"a\"\n[[steps]]\nid = \"a1\"\ntitle = \"x\"\nhost = \"a\"\nrun = \"true\"\nafter = [\"a2\"]\n[[steps]]\nid = \"a2\"\ntitle = \"x\"\nhost = \"a\"\nrun = \"true\"\n";
        let err = parse(two).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:10:") && err.contains("no earlier step `a2`"), "{err}");
    }
}
