//! What a scenario must satisfy beyond its types: unique names, known
//! hosts, valid regexes, `after` naming earlier steps, known defects. Every
//! problem is reported, each at its own span. (Variables are checked where
//! the file is read, in `parse.rs`.)

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::model::{Scenario, Step};
use super::parse::Broken;
use super::vars::Vars;
use super::Problem;

/// What is wrong with `scn`, leaving out what would only follow from a
/// `broken` section (an unknown host when a `[[hosts]]` entry could not be
/// read, `after` naming a step that could not be read).
pub(super) fn validate(scn: &Scenario, broken: &Broken) -> Vec<Problem> {
    let mut found = Vec::new();
    let hosts_known = !broken.has("hosts");
    let steps_known = !broken.has("steps");
    let mut names: BTreeMap<&str, Range<usize>> = BTreeMap::new();
    for h in &scn.hosts {
        if let Some(first) = names.insert(h.name.get_ref(), h.name.span()) {
            found.push(Problem::new(Some(h.name.span()), format!("duplicate host name `{}`", h.name.get_ref()), "again here").also(first, "first named here"));
        }
    }
    if let Some(g) = scn.given.as_ref().filter(|_| hosts_known) {
        found.extend(unknown_host(scn, g.host.get_ref(), g.host.span(), "`given.host`"));
    }
    let vars = Vars::declared(scn, scn.platform);
    let mut seen: BTreeMap<&str, Range<usize>> = BTreeMap::new();
    for step in &scn.steps {
        if let Some(first) = seen.get(step.id.get_ref().as_str()) {
            let p = Problem::new(Some(step.id.span()), format!("duplicate step id `{}`", step.id.get_ref()), "used again here");
            found.push(p.also(first.clone(), "first used here"));
        }
        found.extend(step_problems(scn, step, &vars, &seen, broken));
        seen.entry(step.id.get_ref()).or_insert(step.id.span());
    }
    for v in &scn.verify {
        let name = v.check.name();
        // As the run will see it: `{primary.name}` is a host's name. An
        // undefined variable is reported where the file is read.
        let Ok(check) = v.resolved(&vars) else { continue };
        for (key, host) in check.hosts().into_iter().filter(|_| hosts_known) {
            let span = v.spans.get(key).cloned().unwrap_or(v.span.clone());
            found.extend(unknown_host(scn, host, span, &format!("check `{name}`: `{key}`")));
        }
        if let super::CheckDecl::NotStreaming { log, .. } = &check {
            if let Err(e) = regex::Regex::new(log) {
                let span = v.spans.get("log").cloned();
                found.push(Problem::new(span, format!("check `{name}`: `log`: not a valid regex: {e}"), "here"));
            }
        }
        for a in v.after.iter().filter(|a| steps_known && !seen.contains_key(a.get_ref().as_str())) {
            found.push(Problem::new(Some(a.span()), format!("check `{name}`: `after` names no step `{}`", a.get_ref()), "not a step of this scenario"));
        }
    }
    found
}

fn unknown_host(scn: &Scenario, host: &str, span: Range<usize>, key: &str) -> Option<Problem> {
    if scn.hosts.iter().any(|d| d.name.get_ref() == host) {
        return None;
    }
    let help = format!("hosts: {}", scn.hosts.iter().map(|h| h.name.get_ref().as_str()).collect::<Vec<_>>().join(", "));
    Some(Problem::new(Some(span), format!("{key}: unknown host `{host}`"), "not a host of this scenario").help(help))
}

fn step_problems(scn: &Scenario, step: &Step, vars: &Vars, seen: &BTreeMap<&str, Range<usize>>, broken: &Broken) -> Vec<Problem> {
    let mut found = Vec::new();
    if !broken.has("hosts") {
        found.extend(unknown_host(scn, step.host.get_ref(), step.host.span(), "`host`"));
        if let super::Action::Copy(c) = &step.action {
            found.extend(unknown_host(scn, c.from_host.get_ref(), c.from_host.span(), "`copy.from_host`"));
        }
    }
    for (text, key) in [(&step.expect.output, "expect.output"), (&step.expect.log, "expect.log")] {
        found.extend(text.as_ref().and_then(|t| bad_regex(t, key, vars)));
    }
    for a in step.after.iter().filter(|_| !broken.has("steps")) {
        // Only earlier steps: the file order stays a valid order and no cycle can form.
        if !seen.contains_key(a.get_ref().as_str()) || a.get_ref() == step.id.get_ref() {
            let later = scn.steps.iter().any(|s| s.id.get_ref() == a.get_ref());
            let why = if later { "a later step: `after` names earlier ones" } else { "no such step" };
            found.push(Problem::new(Some(a.span()), format!("`after`: no earlier step `{}` ({why})", a.get_ref()), "not a step above this one"));
        }
    }
    if let Some(d) = step.defect.as_ref().filter(|_| !broken.has("defects")) {
        if scn.defect(d.get_ref()).is_none() {
            let ids: Vec<&str> = scn.defects.iter().map(|d| d.id.as_str()).collect();
            let p = Problem::new(Some(d.span()), format!("`defect`: no [[defects]] entry `{}`", d.get_ref()), "unknown defect");
            found.push(p.help(format!("defects: {}", ids.join(", "))));
        }
    }
    found
}

fn bad_regex(t: &Spanned<String>, key: &str, vars: &Vars) -> Option<Problem> {
    // An undefined variable is reported by itself; here only the pattern counts.
    let pattern = vars.subst_regex(t.get_ref()).ok()?;
    let e = regex::Regex::new(&pattern).err()?;
    Some(Problem::new(Some(t.span()), format!("`{key}`: not a valid regex: {e}"), "here"))
}
