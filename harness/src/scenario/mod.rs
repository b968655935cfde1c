//! Scenario files: the tutorial as declarative steps a DBA can read and
//! change. Parsed once into types; anything unknown or inconsistent is
//! rejected with file, line, column and key.

mod extend;
mod fingerprint;
mod model;
mod outline;
mod parse;
pub(crate) mod reference;
pub(crate) mod shipped;
mod validate;
mod vars;

use std::ops::Range;
use std::path::Path;

use miette::LabeledSpan;

pub(crate) use crate::vars::{builtin as builtin_vars, Vars};
pub(crate) use extend::PORTABLE_BASE;
pub use model::Scenario;
pub(crate) use model::{HostDecl, Step, When};
pub use outline::{CheckOutline, GivenOutline, Outline, StepOutline};
#[cfg(test)]
pub(crate) use parse::KEYS;
pub(crate) use parse::MAX_BYTES;

pub(crate) use crate::error::Problem;
use crate::error::{Error, Excerpt, Result, ScenarioError};
use crate::platform::Platform;
use crate::vocab::{Defect, HostKind, Role};

impl Scenario {
    /// Its name (`name = "..."`): reports and kept labs are named after it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The platform it runs on unless a run says otherwise.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why it cannot run on `platform` (a version its `requires` names), if it cannot.
    pub fn unsupported_on(&self, platform: Platform) -> Option<String> {
        self.requires.iter().find_map(|w| w.unmet(platform)).map(|why| format!("{} needs {why}", self.name))
    }

    /// Its steps' ids, in order (a base's first, for a file that extends one).
    pub fn step_ids(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.id.get_ref().as_str()).collect()
    }

    /// Its checks' names, in file order.
    pub fn check_names(&self) -> Vec<&str> {
        self.verify.iter().map(|v| v.check.name()).collect()
    }

    /// Reads and checks a scenario file; every problem is reported at once.
    pub fn load(path: &Path) -> Result<Scenario> {
        let whole = |message: String| scenario_error(path, "", vec![Problem::new(None, message, "")]);
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Usage(format!("no scenario file {}", path.display())),
            _ => whole(format!("cannot read it: {e}")),
        })?;
        if bytes.len() > MAX_BYTES {
            return Err(whole(format!("{} bytes: a scenario file is at most {MAX_BYTES} bytes (1 MiB)", bytes.len())));
        }
        let source = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            scenario_error(path, &text, vec![Problem::new(Some(at..at + 1), "not UTF-8 text: a scenario file is UTF-8".into(), "invalid byte")])
        })?;
        // A byte-order mark is not part of the text a person sees.
        let source = source.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(source);
        Scenario::parse(path, source)
    }

    /// Reads and checks `source` as the text of the file `path`.
    pub fn parse(path: &Path, source: String) -> Result<Scenario> {
        let (scn, mut problems, broken) = parse::document(path, &source).map_err(|problems| scenario_error(path, &source, problems))?;
        problems.extend(validate::validate(&scn, &broken));
        if !problems.is_empty() {
            return Err(scenario_error(path, &source, problems));
        }
        Ok(scn)
    }

    /// Index of the step with this id, or of the last step of a tutorial
    /// step number (`8` finds `8-streaming`).
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id.get_ref() == id).or_else(|| self.steps.iter().rposition(|s| s.id.get_ref().split('-').next() == Some(id)))
    }

    /// The `[[defects]]` entry with this id.
    pub fn defect(&self, id: &str) -> Option<&Defect> {
        self.defects.iter().find(|d| d.id == id)
    }

    /// The role the file gives a host (spare when it gives none).
    pub fn role_of(&self, host: &str) -> Role {
        self.hosts.iter().find(|h| h.name.get_ref() == host).map(|h| h.role).unwrap_or_default()
    }

    /// The spare PostgreSQL hosts: there to restore into, started only
    /// for a run that names them (see `run::spares`).
    pub(crate) fn spares(&self) -> impl Iterator<Item = &HostDecl> {
        self.hosts.iter().filter(|h| h.role == Role::Spare && h.kind.unwrap_or_default() == HostKind::Pg)
    }

    /// Step `i`'s action as written (a base's step is in the base's file).
    pub(crate) fn action_text(&self, i: usize) -> &str {
        let in_base = self.base.as_ref().is_some_and(|b| i < b.steps);
        let text = if in_base { self.base.as_ref().map_or("", |b| b.source.as_str()) } else { self.source.as_str() };
        self.steps.get(i).and_then(|s| text.get(s.action_span.clone())).unwrap_or_default()
    }

    /// The kind of the host named `host` (a PostgreSQL server if it is not declared).
    pub fn kind_of(&self, host: &str) -> HostKind {
        self.hosts.iter().find(|h| h.name.get_ref() == host).and_then(|h| h.kind).unwrap_or_default()
    }
}

fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
    let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, col)
}

/// Longest line shown around a problem: longer ones are clipped to a
/// window around it, so a huge one-line file does not come back whole.
const EXCERPT_WIDTH: usize = 160;
/// Lines shown before and after the problem's own.
const CONTEXT_LINES: usize = 2;
/// Problems reported for one file; the rest are counted.
const MAX_PROBLEMS: usize = 50;

fn char_floor(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The lines around `span` (a long line clipped around it) as an excerpt,
/// and the span inside it.
fn excerpt(name: &str, source: &str, span: &Range<usize>) -> (Excerpt, Range<usize>) {
    let start = char_floor(source, span.start.min(source.len()));
    let line_start = source[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = source[start..].find('\n').map(|i| start + i).unwrap_or(source.len());
    let (line, _) = line_col(source, start);
    if line_end - line_start > EXCERPT_WIDTH {
        let from = char_floor(source, start.saturating_sub(EXCERPT_WIDTH / 2).max(line_start));
        let to = char_floor(source, (from + EXCERPT_WIDTH).min(line_end));
        let text = source[from..to].to_string();
        let first_column = source[line_start..from].chars().count();
        let inner = (start - from)..(span.end.min(to).max(start) - from);
        return (Excerpt { name: name.into(), text, first_line: line - 1, first_column }, inner);
    }
    let mut from = line_start;
    for _ in 0..CONTEXT_LINES {
        if from == 0 {
            break;
        }
        from = source[..from - 1].rfind('\n').map(|i| i + 1).unwrap_or(0);
    }
    let end = char_floor(source, span.end.min(source.len()).max(line_end));
    let mut to = source[end..].find('\n').map(|i| end + i).unwrap_or(source.len());
    for _ in 0..CONTEXT_LINES {
        if to >= source.len() {
            break;
        }
        to = source[to + 1..].find('\n').map(|i| to + 1 + i).unwrap_or(source.len());
    }
    let (first_line, _) = line_col(source, from);
    let text = source[from..to].to_string();
    let inner = (start - from)..(span.end.clamp(start, to) - from);
    (Excerpt { name: name.into(), text, first_line: first_line - 1, first_column: 0 }, inner)
}

fn one_error(path: &Path, source: &str, p: Problem) -> ScenarioError {
    let name = path.display().to_string();
    let at = match &p.span {
        Some(r) => {
            let (l, c) = line_col(source, r.start);
            format!("{name}:{l}:{c}")
        }
        None => name.clone(),
    };
    let mut help = p.help.clone();
    let (src, labels) = match &p.span {
        Some(span) => {
            let (src, inner) = excerpt(&name, source, span);
            let offset = span.start - inner.start;
            let mut labels = vec![LabeledSpan::new_primary_with_span(Some(p.label.to_string()), inner.clone())];
            if let Some(also) = &p.also {
                let shown = also.0.start >= offset && also.0.end <= offset + src.text.len();
                if shown {
                    labels.push(LabeledSpan::new_with_span(Some(also.1.to_string()), (also.0.start - offset)..(also.0.end - offset)));
                } else if help.is_none() {
                    help = Some(format!("{}: line {}", also.1, line_col(source, also.0.start).0));
                }
            }
            (src, labels)
        }
        None => (Excerpt { name: name.clone(), ..Default::default() }, Vec::new()),
    };
    ScenarioError { message: format!("{at}: {}", p.message), src, labels, help, related: Vec::new() }
}

/// The problems of one file as one error: the first, with the others related.
fn scenario_error(path: &Path, source: &str, mut problems: Vec<Problem>) -> Error {
    problems.sort_by_key(|p| p.span.as_ref().map(|s| s.start));
    if problems.len() > MAX_PROBLEMS {
        let more = problems.len() - MAX_PROBLEMS;
        problems.truncate(MAX_PROBLEMS);
        problems.push(Problem::new(None, format!("and {more} more problems (the first {MAX_PROBLEMS} are shown)"), ""));
    }
    let mut errors = problems.into_iter().map(|p| one_error(path, source, p));
    let mut first = errors.next().unwrap_or_else(|| one_error(path, source, Problem::new(None, "invalid scenario".into(), "")));
    first.related = errors.collect();
    Error::Scenario(Box::new(first))
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
        assert!(matches!(&s.steps[0].action, crate::action::Action::Run(r) if r.0.get_ref().starts_with("echo")));
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
        assert_eq!(s.verify[0].after[0].get_ref(), "1-x");
        assert_eq!(s.verify[0].check.name(), "cron_line");
        let err = parse(&format!("{OK}{}", CHECK.replace("line = ", "lien = "))).unwrap_err().to_string();
        assert!(err.contains("lien"), "{err}");
        let err = parse(&format!("{OK}{}", CHECK.replace("\"1-x\"]", "\"2-y\"]"))).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:13:10:") && err.contains("`after` names no step `2-y`"), "exactly at the value: {err}");
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
        let crate::check::CheckDecl::Pitr(crate::check::Pitr { targets, .. }) = &s.verify[0].check else { panic!("pitr") };
        assert_eq!(targets, &[crate::vocab::PitrTarget::Name, crate::vocab::PitrTarget::Lsn]);
        assert!(parse(&pitr("[\"yesterday\"]")).unwrap_err().to_string().contains("yesterday"));
    }

    #[test]
    fn after_must_name_an_earlier_step() {
        let two = "name = \"t\"\nparallel = true\n[[hosts]]\nname = \"a\"\n[[steps]]\nid = \"a1\"\ntitle = \"x\"\nhost = \"a\"\nrun = \"true\"\nafter = [\"a2\"]\n[[steps]]\nid = \"a2\"\ntitle = \"x\"\nhost = \"a\"\nrun = \"true\"\n";
        let err = parse(two).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:10:") && err.contains("no earlier step `a2`"), "{err}");
    }
}
