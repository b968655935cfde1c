//! What a scenario must satisfy beyond its types: unique names, known
//! hosts, valid regexes, `after` naming earlier steps, known defects. Every
//! problem is reported, each at its own span. (Variables are checked where
//! the file is read, in `parse.rs`.)

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::model::{Action, Scenario, Step};
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
    // Inherited hosts and steps were checked in their own file; their spans are there.
    let (base_hosts, base_steps) = scn.base.as_ref().map_or((0, 0), |b| (b.hosts, b.steps));
    let mut names: BTreeMap<&str, Option<Range<usize>>> = BTreeMap::new();
    for (i, h) in scn.hosts.iter().enumerate() {
        let here = (i >= base_hosts).then(|| h.name.span());
        if let (Some(first), Some(span)) = (names.insert(h.name.get_ref(), here.clone()), here) {
            found.push(again(span, "host name", h.name.get_ref(), first, scn));
        }
    }
    if let Some(g) = scn.given.as_ref().filter(|_| hosts_known) {
        found.extend(unknown_host(scn, g.host.get_ref(), g.host.span(), "`given.host`"));
    }
    let vars = Vars::declared(scn, scn.platform);
    let mut seen: BTreeMap<&str, Option<Range<usize>>> = BTreeMap::new();
    for (i, step) in scn.steps.iter().enumerate() {
        let here = (i >= base_steps).then(|| step.id.span());
        if let Some(span) = here.clone() {
            if let Some(first) = seen.get(step.id.get_ref().as_str()) {
                found.push(again(span, "step id", step.id.get_ref(), first.clone(), scn));
            }
            found.extend(step_problems(scn, step, &vars, &seen, broken));
        }
        seen.entry(step.id.get_ref()).or_insert(here);
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

/// A name used twice: both places when both are in this file.
fn again(span: Range<usize>, what: &str, name: &str, first: Option<Range<usize>>, scn: &Scenario) -> Problem {
    let p = Problem::new(Some(span), format!("duplicate {what} `{name}`"), "used again here");
    match (first, &scn.base) {
        (Some(first), _) => p.also(first, "first used here"),
        (None, Some(b)) => p.help(format!("`{name}` comes from the base scenario {}", b.path.display())),
        (None, None) => p,
    }
}

fn unknown_host(scn: &Scenario, host: &str, span: Range<usize>, key: &str) -> Option<Problem> {
    if scn.hosts.iter().any(|d| d.name.get_ref() == host) {
        return None;
    }
    let help = format!("hosts: {}", scn.hosts.iter().map(|h| h.name.get_ref().as_str()).collect::<Vec<_>>().join(", "));
    Some(Problem::new(Some(span), format!("{key}: unknown host `{host}`"), "not a host of this scenario").help(help))
}

fn step_problems(scn: &Scenario, step: &Step, vars: &Vars, seen: &BTreeMap<&str, Option<Range<usize>>>, broken: &Broken) -> Vec<Problem> {
    let mut found = Vec::new();
    if !broken.has("hosts") {
        found.extend(unknown_host(scn, step.host.get_ref(), step.host.span(), "`host`"));
        for (key, h) in step.other_hosts() {
            found.extend(unknown_host(scn, h.get_ref(), h.span(), &format!("`{key}`")));
        }
    }
    if let Action::Fill(path) | Action::Free(path) = &step.action {
        found.extend(not_a_volume(scn, step, path));
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

fn not_a_volume(scn: &Scenario, step: &Step, path: &Spanned<String>) -> Option<Problem> {
    let host = scn.hosts.iter().find(|h| h.name.get_ref() == step.host.get_ref())?;
    if host.volumes.iter().any(|v| v.path == *path.get_ref()) {
        return None;
    }
    let key = step.action.name();
    let p = Problem::new(Some(path.span()), format!("`{key}`: `{}` is not a volume of `{}`", path.get_ref(), host.name.get_ref()), "not a volume");
    Some(p.help(format!(
        "give the host one: volumes = [{{ path = \"{}\", size_mb = 128 }}] in its [[hosts]] entry (a file that extends another may declare the base's host again)",
        path.get_ref()
    )))
}

fn bad_regex(t: &Spanned<String>, key: &str, vars: &Vars) -> Option<Problem> {
    // An undefined variable is reported by itself; here only the pattern counts.
    let pattern = vars.subst_regex(t.get_ref()).ok()?;
    let e = regex::Regex::new(&pattern).err()?;
    Some(Problem::new(Some(t.span()), format!("`{key}`: not a valid regex: {e}"), "here"))
}
