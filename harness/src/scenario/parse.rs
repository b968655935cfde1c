//! Reading a scenario file into its types, section by section, so that one
//! fault does not hide the next: every problem is kept, each at the span
//! the TOML parser itself gives (never found by searching the text).

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::extend::{extend, Own};
use super::model::{ChaosDecl, Extends, Given, HostDecl, RawStep, Scenario, Step, Verify, When};
use super::vars::Vars;
use super::Problem;
use crate::action::Action;
use crate::check::CheckDecl;
use crate::platform::Platform;
use crate::vocab::Defect;

/// The top-level keys of a scenario file.
pub(crate) const KEYS: [&str; 14] =
    ["name", "description", "extends", "platform", "requires", "vars", "secrets", "parallel", "hosts", "given", "defects", "steps", "verify", "chaos"];

/// Largest scenario file read, so a stray huge file fails fast.
pub(crate) const MAX_BYTES: usize = 1 << 20;

/// Problems found so far, and the sections they were found in.
#[derive(Default)]
struct Found(Vec<Problem>, Vec<String>);

impl Found {
    fn push(&mut self, p: Problem) {
        self.0.push(p);
    }
}

fn from_toml(e: toml::de::Error) -> Problem {
    Problem::new(e.span(), plain(e.message().trim()), "here")
}

/// serde's words for a minimum the types state (`NonZero*`: the schema's
/// `minimum: 1`), as a scenario's author would say them.
fn plain(message: &str) -> String {
    match message.split_once("invalid value: integer `0`, expected a nonzero") {
        Some((before, _)) => format!("{before}must be at least 1 (0 would prove or do nothing)"),
        None => message.to_string(),
    }
}

/// Reads `v` as a `T`; a problem names the key whose value it is about.
fn de<T: DeserializeOwned>(v: &Spanned<DeValue<'_>>) -> Result<T, Problem> {
    T::deserialize(ValueDeserializer::from(v.clone())).map_err(|e| {
        let mut p = from_toml(e);
        if let Some(key) = p.span.as_ref().and_then(|s| key_at(v, s)) {
            if !p.message.contains(&format!("`{key}`")) && !p.message.contains(&format!("`{}`", key.rsplit('.').next().unwrap_or(&key))) {
                p.message = format!("`{key}`: {}", p.message);
            }
        }
        p
    })
}

fn de_all<T: DeserializeOwned>(v: &Spanned<DeValue<'_>>) -> Result<T, Vec<Problem>> {
    de(v).map_err(|p| vec![p])
}

/// The dotted key inside `v` whose value sits exactly at `span`.
fn key_at(v: &Spanned<DeValue<'_>>, span: &std::ops::Range<usize>) -> Option<String> {
    match v.get_ref() {
        DeValue::Table(t) => {
            t.iter().find_map(
                |(k, x)| {
                    if x.span() == *span {
                        Some(k.get_ref().to_string())
                    } else {
                        key_at(x, span).map(|inner| format!("{}.{inner}", k.get_ref()))
                    }
                },
            )
        }
        DeValue::Array(a) => a.iter().find_map(|x| key_at(x, span)),
        _ => None,
    }
}

/// Reads `source` (the text of `path`) into a scenario, or every problem.
/// Sections that could not be read whole: checks that look across them
/// (is this host declared? is that step earlier?) would only echo the fault.
#[derive(Debug, Default, Clone)]
pub(super) struct Broken(pub Vec<String>);

impl Broken {
    pub(super) fn has(&self, section: &str) -> bool {
        self.0.iter().any(|s| s == section)
    }
}

/// Reads `source` (the text of `path`) into what could be read, the
/// problems found, and the sections that are broken; `Err` when not even
/// that can be read (not TOML, empty).
pub(super) fn document(path: &Path, source: &str) -> Result<(Scenario, Vec<Problem>, Broken), Vec<Problem>> {
    let root = syntax(source)?;
    let mut found = Found::default();
    let scn = sections(&mut found, &root, path, source);
    // Variables need only hosts, secrets and vars: checked even when other
    // parts of the file are wrong, but not when those are (every name would
    // look undefined).
    let declared = ["hosts", "secrets", "vars", "platform"];
    if !found.1.iter().any(|s| declared.contains(&s.as_str())) {
        templates(&mut found, &root, source, &Vars::declared(&scn, scn.platform));
    }
    Ok((scn, found.0, Broken(found.1)))
}

/// The document's tables, or the first syntax error (after one, the
/// parser's recovery guesses; what it finds next is often an echo of it).
fn syntax(source: &str) -> Result<DeTable<'_>, Vec<Problem>> {
    let empty = || vec![Problem::new(None, "the file is empty: a scenario needs a name, [[hosts]] and [[steps]]".into(), "")];
    if source.trim().is_empty() {
        return Err(empty());
    }
    let (root, errors) = DeTable::parse_recoverable(source);
    if let Some(first) = errors.into_iter().next() {
        return Err(vec![from_toml(first)]);
    }
    let root = root.into_inner();
    if root.is_empty() {
        return Err(empty());
    }
    Ok(root)
}

/// The scenario's name: it names its report files, so it is an identifier.
fn scenario_name(found: &mut Found, v: Option<&Spanned<DeValue<'_>>>) -> String {
    let name: String = one(found, v, "name").unwrap_or_default();
    if let Some(v) = v.filter(|_| !name.is_empty() && !crate::vocab::is_ident(&name)) {
        found.push(Problem::new(Some(v.span()), format!("`name` `{name}`: {}", crate::vocab::IDENT_RULE), "here"));
    }
    name
}

fn get<'a, 'i>(root: &'a DeTable<'i>, key: &str) -> Option<(std::ops::Range<usize>, &'a Spanned<DeValue<'i>>)> {
    root.iter().find(|(k, _)| k.get_ref() == key).map(|(k, v)| (k.span(), v))
}

/// Each section read on its own; what is wrong goes to `found`, and what
/// could be read makes the scenario.
fn sections(found: &mut Found, root: &DeTable<'_>, path: &Path, source: &str) -> Scenario {
    for (k, _) in root.iter().filter(|(k, _)| !KEYS.contains(&k.get_ref().as_ref())) {
        let help = format!("top-level keys: {}", KEYS.join(", "));
        found.push(Problem::new(Some(k.span()), format!("unknown key `{}`", k.get_ref()), "not a scenario key").help(help));
    }
    let value = |key: &str| get(root, key).map(|(_, v)| v);
    let platform = one::<Platform>(found, value("platform"), "platform");
    let parallel = one::<bool>(found, value("parallel"), "parallel");
    let extends = one::<Extends>(found, value("extends"), "extends");
    let mut scn = Scenario {
        name: scenario_name(found, value("name")),
        description: one(found, value("description"), "description").unwrap_or_default(),
        platform: platform.unwrap_or_default(),
        requires: one::<When>(found, value("requires"), "requires").into_iter().collect(),
        vars: one::<BTreeMap<String, String>>(found, value("vars"), "vars").unwrap_or_default(),
        secrets: one(found, value("secrets"), "secrets").unwrap_or_default(),
        parallel: parallel.unwrap_or_default(),
        given: one::<Given>(found, value("given"), "given"),
        hosts: each::<HostDecl>(found, value("hosts"), "hosts", de_all),
        defects: each::<Defect>(found, value("defects"), "defects", de_all),
        steps: each(found, value("steps"), "steps", step_entry),
        verify: each(found, value("verify"), "verify", verify_entry),
        chaos: one::<ChaosDecl>(found, value("chaos"), "chaos"),
        path: path.to_path_buf(),
        source: source.to_string(),
        base: None,
    };
    if let Some(ext) = &extends {
        let problems = extend(&mut scn, ext, Own { platform: platform.is_some(), parallel: parallel.is_some() });
        if !problems.is_empty() {
            // Without its base, every inherited name would look unknown.
            found.1.extend(["hosts", "steps", "vars", "defects"].map(String::from));
        }
        problems.into_iter().for_each(|p| found.push(p));
    }
    required(found, root, extends.is_some());
    scn
}

/// What every scenario must have.
/// A scenario that extends another has the base's hosts and steps.
fn required(found: &mut Found, root: &DeTable<'_>, extends: bool) {
    if get(root, "name").is_none() {
        found.push(Problem::new(None, "missing key `name`: every scenario has a name".into(), "").help("name = \"my-scenario\"".into()));
    }
    if get(root, "hosts").is_none() && !extends {
        let help = "[[hosts]]\nname = \"primary\"".to_string();
        found.push(Problem::new(None, "missing key `hosts`: a scenario needs at least one [[hosts]] entry".into(), "").help(help));
    }
    match get(root, "steps") {
        None if !extends => found.push(Problem::new(None, "missing key `steps`: a scenario needs at least one [[steps]] entry".into(), "")),
        None => {}
        Some((span, v)) if v.get_ref().as_array().is_some_and(|a| a.is_empty()) => {
            found.push(Problem::new(Some(span), "`steps` is empty: a scenario needs at least one step".into(), "no steps"))
        }
        _ => {}
    }
}

/// Every string that is a template (a step's action and expectations, a
/// check's parameters, `given.table`) names only defined variables.
fn templates(found: &mut Found, root: &DeTable<'_>, source: &str, vars: &Vars) {
    for (section, skip) in [("steps", STEP_PLAIN.as_slice()), ("verify", ["check", "after"].as_slice())] {
        for item in get(root, section).and_then(|(_, v)| v.get_ref().as_array()).into_iter().flatten() {
            for (k, v) in item.get_ref().as_table().into_iter().flat_map(|t| t.iter()).filter(|(k, _)| !skip.contains(&k.get_ref().as_ref())) {
                undefined_vars(found, source, k.get_ref(), v, vars);
            }
        }
    }
    for (k, v) in get(root, "given").and_then(|(_, v)| v.get_ref().as_table()).into_iter().flat_map(|t| t.iter()).filter(|(k, _)| k.get_ref() != "host") {
        undefined_vars(found, source, &format!("given.{}", k.get_ref()), v, vars);
    }
}

/// Keys of a step whose strings are plain text, not templates.
const STEP_PLAIN: [&str; 11] = ["id", "title", "host", "user", "defect", "added", "note", "timeout_s", "retry_s", "after", "when"];

/// Every `{name}` in the strings of `value` must be defined; each one that
/// is not is reported where it is written.
fn undefined_vars(found: &mut Found, source: &str, key: &str, value: &Spanned<DeValue<'_>>, vars: &Vars) {
    match value.get_ref() {
        DeValue::String(text) => {
            let mut rest: &str = text;
            // Where in the raw value to look for the next one (escapes make
            // decoded and raw offsets differ, so the raw text is searched).
            let mut cursor = value.span().start;
            while let Some((name, at)) = vars.first_undefined(rest) {
                let written = format!("{{{name}}}");
                let span = value.span();
                let start = source.get(cursor..span.end).and_then(|raw| raw.find(&written)).map(|i| cursor + i);
                let place = start.map(|s| s..s + written.len()).unwrap_or(span);
                cursor = place.end.max(cursor);
                let help = format!("defined: {}", vars.names().collect::<Vec<_>>().join(", "));
                found.push(Problem::new(Some(place), format!("`{key}`: undefined variable `{written}`"), "undefined").help(help));
                rest = &rest[at + written.len()..];
            }
        }
        DeValue::Array(items) => items.iter().for_each(|v| undefined_vars(found, source, key, v, vars)),
        DeValue::Table(t) => t.iter().for_each(|(k, v)| undefined_vars(found, source, &format!("{key}.{}", k.get_ref()), v, vars)),
        _ => {}
    }
}

/// One top-level value, if present and of the right type.
fn one<T: DeserializeOwned>(found: &mut Found, value: Option<&Spanned<DeValue<'_>>>, key: &str) -> Option<T> {
    match de(value?) {
        Ok(t) => Some(t),
        Err(mut p) => {
            if !p.message.contains(&format!("`{key}`")) {
                p.message = format!("`{key}`: {}", p.message);
            }
            found.push(p);
            found.1.push(key.to_string());
            None
        }
    }
}

/// Each entry of an array of tables, read on its own: a bad entry does not
/// stop the others from being read (and checked).
fn each<T>(found: &mut Found, value: Option<&Spanned<DeValue<'_>>>, key: &str, read: impl Fn(&Spanned<DeValue<'_>>) -> Result<T, Vec<Problem>>) -> Vec<T> {
    let Some(value) = value else { return Vec::new() };
    let Some(items) = value.get_ref().as_array() else {
        found.1.push(key.to_string());
        found.push(Problem::new(Some(value.span()), format!("`{key}` must be an array of tables ([[{key}]])"), "not an array"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        match read(item) {
            Ok(t) => out.push(t),
            // A problem of the entry as a whole (two actions): at the entry.
            Err(problems) => {
                found.1.push(key.to_string());
                for mut p in problems {
                    p.span = p.span.or_else(|| Some(item.span()));
                    found.push(p)
                }
            }
        }
    }
    out
}

/// A `[[steps]]` entry: exactly one action key (its value is the action's
/// own), the other keys every step has.
fn step_entry(item: &Spanned<DeValue<'_>>) -> Result<Step, Vec<Problem>> {
    let table_span = item.span();
    let Some(table) = item.get_ref().as_table() else {
        return Err(vec![Problem::new(Some(table_span), "a [[steps]] entry must be a table".into(), "not a table")]);
    };
    let (mut actions, mut common) = (DeTable::new(), DeTable::new());
    for (k, v) in table.iter() {
        let into = if Action::NAMES.contains(&k.get_ref().as_ref()) { &mut actions } else { &mut common };
        into.insert(k.clone(), v.clone());
    }
    let raw: Result<RawStep, Problem> = de(&Spanned::new(table_span.clone(), DeValue::Table(common)));
    // A key that is no step key may be a misspelt action.
    let raw = raw.map_err(|p| match p.message.contains("unknown field") {
        true => vec![p.help(format!("actions: {}", Action::NAMES.join(", ")))],
        false => vec![p],
    })?;
    if actions.len() != 1 {
        let has: Vec<&str> = Action::NAMES.iter().copied().filter(|a| actions.iter().any(|(k, _)| k.get_ref() == a)).collect();
        let message = format!(
            "step `{}` needs exactly one action ({}); it has {}{}",
            raw.id.get_ref(),
            Action::NAMES.join(", "),
            has.len(),
            if has.is_empty() { String::new() } else { format!(": {}", has.join(", ")) }
        );
        return Err(vec![Problem::new(None, message, "this step")]);
    }
    let (key, at) = actions.iter().next().map(|(k, v)| (k.get_ref().to_string(), v.span())).expect("one action");
    let action: Action = de(&Spanned::new(table_span.clone(), DeValue::Table(actions))).map_err(|mut p| {
        // A fault of the value as a whole is the value's, under its key.
        if p.span.is_none() || p.span.as_ref() == Some(&table_span) {
            p.span = Some(at.clone());
        }
        if !p.message.contains(&format!("`{key}`")) {
            p.message = format!("`{key}`: {}", p.message);
        }
        vec![p]
    })?;
    Step::from_raw(raw, action, at).map_err(|e| vec![Problem::new(None, e, "this step")])
}

/// A `[[verify]]` entry: `check` names the check, `after` says when it may
/// start, the other keys are the check's own parameters.
fn verify_entry(item: &Spanned<DeValue<'_>>) -> Result<Verify, Vec<Problem>> {
    let table_span = item.span();
    let Some(table) = item.get_ref().as_table() else {
        return Err(vec![Problem::new(Some(table_span), "a [[verify]] entry must be a table".into(), "not a table")]);
    };
    let mut problems = Vec::new();
    let after: Vec<Spanned<String>> = match table.iter().find(|(k, _)| k.get_ref() == "after").map(|(_, v)| de(v)) {
        Some(Ok(a)) => a,
        Some(Err(mut p)) => {
            p.message = format!("`after`: {}", p.message);
            problems.push(p);
            Vec::new()
        }
        None => Vec::new(),
    };
    let Some((_, check)) = table.iter().find(|(k, _)| k.get_ref() == "check") else {
        let help = format!("checks: {}", CheckDecl::NAMES.join(", "));
        problems.push(Problem::new(Some(table_span), "missing key `check`: which check this is".into(), "this [[verify]] entry").help(help));
        return Err(problems);
    };
    let Some(name) = check.get_ref().as_str() else {
        problems.push(Problem::new(Some(check.span()), "`check` must be a string: the name of a check".into(), "not a string"));
        return Err(problems);
    };
    // The name becomes an externally tagged variant whose key carries the
    // `check` value's span: an unknown name and every parameter keep theirs.
    let mut params = DeTable::new();
    for (k, v) in table.iter().filter(|(k, _)| k.get_ref() != "check" && k.get_ref() != "after") {
        params.insert(k.clone(), v.clone());
    }
    let spans = params.iter().map(|(k, v)| (k.get_ref().to_string(), v.span())).collect();
    let raw: Result<toml::Table, Problem> = de(&Spanned::new(table_span.clone(), DeValue::Table(params.clone())));
    let mut tagged = DeTable::new();
    tagged.insert(Spanned::new(check.span(), name.to_string().into()), Spanned::new(table_span.clone(), DeValue::Table(params)));
    let decl: Result<CheckDecl, Problem> = de(&Spanned::new(table_span.clone(), DeValue::Table(tagged)));
    match (raw, decl) {
        (Ok(raw), Ok(decl)) if problems.is_empty() => Ok(Verify { after, check: decl, span: check.span(), params: raw, spans }),
        (raw, decl) => {
            problems.extend(raw.err().into_iter().chain(decl.err()));
            Err(problems)
        }
    }
}
