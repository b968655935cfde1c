//! What a scenario must satisfy beyond its types: known hosts, defined
//! variables, valid regexes, `after` naming earlier steps. The first fault
//! is reported at its place in the file.

use std::collections::HashSet;

use toml::Spanned;

use super::model::{Action, Scenario, Step};
use super::vars::Vars;
use super::Located;
use crate::error::Result;

pub(super) fn validate(scn: &Scenario) -> Result<()> {
    let at = Located(scn);
    if scn.hosts.is_empty() {
        return Err(at.err(None, "a scenario needs at least one [[hosts]] entry".into(), "", None));
    }
    let vars = Vars::declared(scn, scn.platform);
    if let Some(g) = &scn.given {
        known_host(scn, &g.host, "given.host")?;
    }
    let mut seen = HashSet::new();
    for step in &scn.steps {
        if !seen.insert(step.id.get_ref().clone()) {
            return Err(at.err(Some(step.id.span()), format!("duplicate step id `{}`", step.id.get_ref()), "used before", None));
        }
        validate_step(scn, step, &vars, &seen)?;
    }
    for (n, v) in scn.verify.iter().enumerate() {
        // Checks are internally tagged, so toml keeps no spans inside
        // them: point at their `[[verify]]` header.
        let header = scn.source.match_indices("[[verify]]").nth(n).map(|(i, m)| i..i + m.len());
        let c = &v.check;
        for h in c.hosts() {
            if !scn.hosts.iter().any(|d| d.name.get_ref() == h) {
                return Err(at.err(header, format!("check `{}`: unknown host `{h}`", c.name()), "in this check", Some(host_list(scn))));
            }
        }
        if let Some(a) = v.after.iter().find(|a| !seen.contains(*a)) {
            return Err(at.err(header, format!("check `{}`: `after` names no step `{a}`", c.name()), "in this check", None));
        }
    }
    Ok(())
}

fn host_list(scn: &Scenario) -> String {
    format!("hosts: {}", scn.hosts.iter().map(|h| h.name.get_ref().as_str()).collect::<Vec<_>>().join(", "))
}

fn known_host(scn: &Scenario, h: &Spanned<String>, key: &str) -> Result<()> {
    if scn.hosts.iter().any(|d| d.name.get_ref() == h.get_ref()) {
        return Ok(());
    }
    Err(Located(scn).err(Some(h.span()), format!("`{key}`: unknown host `{}`", h.get_ref()), "not a host of this scenario", Some(host_list(scn))))
}

fn validate_step(scn: &Scenario, step: &Step, vars: &Vars, seen: &HashSet<String>) -> Result<()> {
    let at = Located(scn);
    known_host(scn, &step.host, "host")?;
    let mut spanned: Vec<(&Spanned<String>, &str)> = Vec::new();
    match &step.action {
        Action::Run(t) => spanned.push((t, "run")),
        Action::Sql(t) => spanned.push((t, "sql")),
        Action::Copy(c) => known_host(scn, &c.from_host, "copy.from_host")?,
        _ => {}
    }
    spanned.extend(step.expect.output.iter().map(|t| (t, "expect.output")));
    spanned.extend(step.expect.log.iter().map(|t| (t, "expect.log")));
    for (text, key) in &spanned {
        defined_vars(scn, text, key, vars)?;
    }
    for (text, key) in [(&step.expect.output, "expect.output"), (&step.expect.log, "expect.log")] {
        if let Some(t) = text {
            let pattern = vars.subst_regex(t.get_ref()).unwrap_or_default();
            if let Err(e) = regex::Regex::new(&pattern) {
                return Err(at.err(Some(t.span()), format!("`{key}`: not a valid regex: {e}"), "here", None));
            }
        }
    }
    for a in &step.after {
        // Only earlier steps: the file order stays a valid order and no cycle can form.
        if !seen.contains(a.get_ref()) || a.get_ref() == step.id.get_ref() {
            return Err(at.err(Some(a.span()), format!("`after`: no earlier step `{}`", a.get_ref()), "not a step above this one", None));
        }
    }
    if let Some(d) = &step.defect {
        if scn.defect(d.get_ref()).is_none() {
            let ids: Vec<&str> = scn.defects.iter().map(|d| d.id.as_str()).collect();
            return Err(at.err(
                Some(d.span()),
                format!("`defect`: no [[defects]] entry `{}`", d.get_ref()),
                "unknown defect",
                Some(format!("defects: {}", ids.join(", "))),
            ));
        }
    }
    // Plain strings inside tables have no span of their own: check them and
    // point at the step.
    for t in unspanned_texts(&step.action) {
        if let Some((name, _)) = vars.first_undefined(&t) {
            let help = format!("defined: {}", vars.names().collect::<Vec<_>>().join(", "));
            return Err(at.err(Some(step.id.span()), format!("step `{}`: undefined variable `{{{name}}}`", step.id.get_ref()), "in this step", Some(help)));
        }
    }
    Ok(())
}

fn defined_vars(scn: &Scenario, text: &Spanned<String>, key: &str, vars: &Vars) -> Result<()> {
    let Some((name, offset)) = vars.first_undefined(text.get_ref()) else { return Ok(()) };
    let span = text.span();
    // +1 skips the opening quote of a basic string.
    let start = (span.start + 1 + offset).min(span.end);
    let help = format!("defined: {}", vars.names().collect::<Vec<_>>().join(", "));
    Err(Located(scn).err(Some(start..start + name.len() + 2), format!("`{key}`: undefined variable `{{{name}}}`"), "undefined", Some(help)))
}

/// The strings of an action that toml gives no span for.
fn unspanned_texts(action: &Action) -> Vec<String> {
    let mut texts = Vec::new();
    match action {
        Action::Config(cfg) => {
            if let Some(ini) = &cfg.pgbackrest {
                texts.push(ini.section.clone());
                texts.extend(ini.set.values().map(|v| v.to_string()));
            }
            if let Some(pc) = &cfg.postgresql_conf {
                texts.extend(pc.values().map(|v| v.to_string()));
            }
            texts.extend(cfg.pg_hba.iter().flatten().cloned());
        }
        Action::File(f) => texts.extend([f.path.clone(), f.content.clone()]),
        Action::Copy(c) => texts.extend([c.from.clone(), c.to.clone()]),
        Action::Run(_) | Action::Sql(_) | Action::Wait(_) => {}
    }
    texts
}
