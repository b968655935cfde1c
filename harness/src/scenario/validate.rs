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
use crate::action::{kind_has, Lint};
use crate::vocab::Needs;

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
    // Every host, a base's too: this file may declare one again with `certificate = true`.
    for h in scn.hosts.iter().filter(|h| h.certificate && scn.kind_of(h.name.get_ref()) == crate::vocab::HostKind::S3) {
        let p = Problem::new(Some(h.name.span()), format!("host `{}`: an object store has a certificate of its own", h.name.get_ref()), "kind s3");
        found.push(p.help("drop `certificate = true` here".into()));
    }
    if let Some(g) = scn.given.as_ref().filter(|_| hosts_known) {
        let (host, span) = (g.host.get_ref(), g.host.span());
        found.extend(unknown_host(scn, host, span.clone(), "`given.host`").or_else(|| wrong_kind(scn, host, Needs::Postgres, span, "`given.host`")));
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
        } else if hosts_known {
            found.extend(base_step_on_changed_kind(scn, step, base_hosts));
        }
        seen.entry(step.id.get_ref()).or_insert(here);
    }
    for v in &scn.verify {
        let name = v.check.name();
        // As the run will see it: `{primary.name}` is a host's name. An
        // undefined variable is reported where the file is read.
        let Ok(check) = v.resolved(&vars) else { continue };
        for u in check.uses().into_iter().filter(|_| hosts_known) {
            let span = v.spans.get(u.key).cloned().unwrap_or(v.span.clone());
            let key = format!("check `{name}`: `{}`", u.key);
            found.extend(unknown_host(scn, u.host, span.clone(), &key).or_else(|| wrong_kind(scn, u.host, u.needs, span, &key)));
        }
        for (key, problem) in check.problems() {
            found.push(Problem::new(v.spans.get(key).cloned(), format!("check `{name}`: `{key}`: {problem}"), "here"));
        }
        for a in v.after.iter().filter(|a| steps_known && !seen.contains_key(a.get_ref().as_str())) {
            found.push(Problem::new(Some(a.span()), format!("check `{name}`: `after` names no step `{}`", a.get_ref()), "not a step of this scenario"));
        }
    }
    if let Some(c) = &scn.chaos {
        found.extend(chaos_problems(scn, c, hosts_known, steps_known));
    }
    found
}

/// `[chaos]` names this file's own step and PostgreSQL hosts of the lab.
fn chaos_problems(scn: &Scenario, c: &crate::scenario::model::ChaosDecl, hosts_known: bool, steps_known: bool) -> Vec<Problem> {
    let mut found = Vec::new();
    let base_steps = scn.base.as_ref().map_or(0, |b| b.steps);
    if steps_known && !scn.steps[base_steps..].iter().any(|s| s.id.get_ref() == c.after.get_ref()) {
        let p = Problem::new(Some(c.after.span()), format!("`chaos.after`: this file has no step `{}`", c.after.get_ref()), "not a step of this file");
        found.push(p.help("the schedule goes after one of this file's own steps".into()));
    }
    if c.hosts.is_empty() {
        found.push(Problem::new(None, "`chaos.hosts`: name at least one host faults may land on".into(), ""));
    }
    for h in c.hosts.iter().filter(|_| hosts_known) {
        let (host, span) = (h.get_ref(), h.span());
        found.extend(unknown_host(scn, host, span.clone(), "`chaos.hosts`").or_else(|| wrong_kind(scn, host, Needs::Postgres, span, "`chaos.hosts`")));
    }
    for k in c.keep_up.iter().filter(|k| !c.hosts.iter().any(|h| h.get_ref() == k.get_ref())) {
        let p = Problem::new(Some(k.span()), format!("`chaos.keep_up`: `{}` is not in `chaos.hosts`", k.get_ref()), "no fault lands here anyway");
        found.push(p.help("keep_up names hosts of `chaos.hosts` that faults may freeze or cut off but never kill or restart".into()));
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

/// A host whose kind lacks what a step or check needs of it.
fn wrong_kind(scn: &Scenario, host: &str, needs: Needs, span: Range<usize>, key: &str) -> Option<Problem> {
    let kind = scn.kind_of(host);
    if kind_has(kind, needs) {
        return None;
    }
    let spec = crate::lab::kind::spec(kind);
    let p = Problem::new(Some(span), format!("{key} needs {} on `{host}`, a host of kind `{kind}` ({})", needs.said(), spec.about()), "wrong kind of host");
    Some(p.help(format!("give it `kind = \"pg\"` in its [[hosts]] entry, or name a host that runs {}", needs.said())))
}

/// A base's step on a host this file declares again with another kind: said
/// at that declaration (the step's own spans are in the base's file).
fn base_step_on_changed_kind(scn: &Scenario, step: &Step, base_hosts: usize) -> Option<Problem> {
    let host = step.host.get_ref();
    let decl = scn.hosts.iter().take(base_hosts).find(|h| h.name.get_ref() == host && h.kind.is_some())?;
    let kind = scn.kind_of(host);
    let needs = step.action.needs();
    if kind_has(kind, needs) {
        return None;
    }
    let message =
        format!("host `{host}` is of kind `{kind}` here, but the base's step `{}` (`{}`) needs {} on it", step.id.get_ref(), step.action.name(), needs.said());
    Some(Problem::new(Some(decl.name.span()), message, "declared again with another kind"))
}

fn step_problems(scn: &Scenario, step: &Step, vars: &Vars, seen: &BTreeMap<&str, Option<Range<usize>>>, broken: &Broken) -> Vec<Problem> {
    let mut found = Vec::new();
    if !crate::vocab::is_ident(step.id.get_ref()) {
        found.push(Problem::new(Some(step.id.span()), format!("step id `{}`: {}", step.id.get_ref(), crate::vocab::IDENT_RULE), "here"));
    }
    if !broken.has("hosts") {
        let (host, action) = (step.host.get_ref(), step.action.name());
        let own = unknown_host(scn, host, step.host.span(), "`host`");
        let known = own.is_none();
        found.extend(own.or_else(|| wrong_kind(scn, host, step.action.needs(), step.host.span(), &format!("`{action}`"))));
        for n in step.action.named() {
            let key = format!("`{}`", n.key);
            found.extend(unknown_host(scn, n.host.get_ref(), n.host.span(), &key).or_else(|| wrong_kind(scn, n.host.get_ref(), n.needs, n.host.span(), &key)));
        }
        if known && step.expect.log.is_some() {
            // A log line is PostgreSQL's: a host without it never writes one.
            found.extend(wrong_kind(scn, host, Needs::Postgres, step.host.span(), "`expect.log`"));
        }
    }
    // The action's own problems hold whatever the hosts are; a volume is looked up only on a known host.
    let volumes = |h: &str| scn.hosts.iter().find(|d| d.name.get_ref() == h).map(|d| d.volumes.iter().map(|v| v.path.clone()).collect());
    found.extend(step.action.problems(&Lint { host: step.host.get_ref(), at: step.action_span.clone(), volumes: &volumes }));
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
