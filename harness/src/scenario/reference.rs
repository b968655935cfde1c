//! The scenario format described from its own types, so the description
//! cannot drift from what is parsed: a JSON Schema for editors (`pglab
//! schema`, `docs/scenario.schema.json`) and the reference page
//! (`pglab schema --markdown`, `docs/scenarios.md`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde_json::{json, Value};

use super::model::{Extends, Given, HostDecl, RawStep};
use crate::action::Action;
use crate::check::CheckDecl;
use crate::platform::Platform;
use crate::vocab::Defect;

/// A pglab scenario: the lab's hosts, the state before step 1, the steps in
/// order, and the checks that prove the outcome.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct File {
    /// The scenario's name; reports and kept labs are named after it.
    name: String,
    /// One or two sentences at the top of the transcript.
    #[serde(default)]
    description: String,
    /// Start from another scenario: its hosts, variables, secrets, given
    /// state and steps (through `through`) come first; this file adds hosts,
    /// variables, steps and its own checks. `hosts` and `steps` are then optional.
    extends: Option<Extends>,
    /// The hosts' platform; `pglab run --platform` overrides it.
    #[serde(default)]
    platform: Platform,
    /// Versions the whole scenario needs, as a step's `when` says them:
    /// `requires = { pgbackrest = ">= 2.37" }`. On a platform without them
    /// `pglab run` starts nothing and says the scenario is not supported
    /// there (exit 4). A base's `requires` hold for the files that extend it.
    requires: Option<super::model::When>,
    /// Your own values, usable as `{name}` in steps and checks; `pglab run --set name=value` overrides one.
    #[serde(default)]
    vars: BTreeMap<String, String>,
    /// Secrets made anew for each run, usable as `{secret.NAME}`; never shown in any output.
    #[serde(default)]
    secrets: Vec<String>,
    /// Hosts work at once: a step waits only for the step before it on its
    /// host (and a `copy`'s source) and for its `after`. Off: one step at a
    /// time, in file order, as a person following the text would.
    #[serde(default)]
    parallel: bool,
    /// The lab's hosts (at least one, unless `extends` brings them).
    #[serde(default)]
    hosts: Vec<HostDecl>,
    /// The state the tutorial assumes before step 1: a table with rows.
    given: Option<Given>,
    /// Defects of the text the steps are evidence of (for `defect = "D1"`).
    #[serde(default)]
    defects: Vec<Defect>,
    /// The steps, in the order a reader follows them (at least one, unless `extends` brings them).
    #[serde(default)]
    steps: Vec<RawStep>,
    /// Checks, after the last step unless `after` says earlier.
    #[serde(default)]
    verify: Vec<CheckDecl>,
    /// Where `pglab chaos` may put a random fault schedule, and on which hosts.
    chaos: Option<super::model::ChaosDecl>,
}

/// The JSON Schema of a scenario file (draft 2020-12).
pub(crate) fn schema() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let root = generator.root_schema_for::<File>();
    // Each action's key is a step key, its value the action's own type.
    let actions = Action::schemas(&mut generator);
    let mut s = serde_json::to_value(root).expect("a schema serializes");
    let defs = serde_json::to_value(generator.definitions()).expect("definitions serialize");
    for (name, def) in defs.as_object().into_iter().flatten() {
        s["$defs"][name] = def.clone();
    }
    // The action keys come after who runs the step, before what must come of it.
    let common = s["$defs"]["RawStep"]["properties"].as_object().cloned().unwrap_or_default();
    let (who, rest): (Vec<_>, Vec<_>) = common.into_iter().partition(|(k, _)| ["id", "title", "host", "user"].contains(&k.as_str()));
    let mut properties: serde_json::Map<String, Value> = who.into_iter().collect();
    for (key, schema) in actions {
        let mut v = serde_json::to_value(schema).expect("a schema serializes");
        // The action's doc is the key's meaning, also where the type is shared ($ref).
        if v.get("description").is_none() {
            if let Some(r) = v["$ref"].as_str() {
                v["description"] = s["$defs"][r.trim_start_matches("#/$defs/")]["description"].clone();
            }
        }
        properties.insert(key.to_string(), v);
    }
    properties.extend(rest);
    s["$defs"]["RawStep"]["properties"] = Value::Object(properties);
    s["$id"] = json!("https://pglab.invalid/scenario.schema.json");
    s["properties"]["hosts"]["minItems"] = json!(1);
    s["properties"]["steps"]["minItems"] = json!(1);
    s["anyOf"] = json!([{ "required": ["extends"] }, { "required": ["hosts", "steps"] }]);
    // Exactly one action per step: each branch requires one of them.
    let actions: Vec<Value> = Action::NAMES.iter().map(|a| json!({ "required": [a] })).collect();
    s["$defs"]["RawStep"]["oneOf"] = Value::Array(actions);
    // Every check takes `after` beside its own parameters.
    let after = json!({
        "description": "Steps after which this check may start, beside the remaining steps (it must not touch what they use). Empty: after the last step, one check at a time in file order.",
        "type": "array",
        "items": { "type": "string" },
        "default": []
    });
    for variant in s["$defs"]["CheckDecl"]["oneOf"].as_array_mut().expect("checks are variants") {
        variant["properties"]["after"] = after.clone();
    }
    s
}

/// `docs/scenarios.md`: every key, action, check and variable, from [`schema`].
pub(crate) fn markdown() -> String {
    let s = schema();
    let defs = &s["$defs"];
    let mut md = String::from(
        "# Scenario files: the reference\n\n\
         Generated from pglab's scenario model by `pglab schema --markdown`; a test fails when this page \
         and the model differ. The same model gives the JSON Schema `docs/scenario.schema.json` \
         (`pglab schema`): start a file with `#:schema ../docs/scenario.schema.json` and a TOML \
         language server (Taplo, Even Better TOML) completes keys and flags mistakes as you type. \
         `pglab validate FILE` checks a file without an engine and prints its plan.\n\n",
    );
    section(&mut md, "Top-level keys", &s, defs);
    section(&mut md, "extends = { ... }", &defs["Extends"], defs);
    section(&mut md, "[[hosts]]", &defs["HostDecl"], defs);
    variants(&mut md, "Roles", &defs["Role"]);
    variants(&mut md, "Platforms", &defs["Platform"]);
    section(&mut md, "[given]", &defs["Given"], defs);
    section(&mut md, "[[defects]]", &defs["Defect"], defs);
    section(&mut md, "[[steps]]", &defs["RawStep"], defs);
    section(&mut md, "config = { ... }", &defs["ConfigEdit"], defs);
    section(&mut md, "config.pgbackrest = { ... }", &defs["IniEdit"], defs);
    section(&mut md, "file = { ... }", &defs["FileAction"], defs);
    section(&mut md, "copy = { ... }", &defs["CopyAction"], defs);
    variants(&mut md, "wait = \"...\"", &defs["WaitAction"]);
    md.push_str(&format!(
        "Or `wait = {{ caught_up_with = \"HOST\" }}`: {}\n\n",
        description(&defs["WaitAction"]["oneOf"].as_array().and_then(|o| o.iter().find(|v| v["required"][0] == "caught_up_with")).cloned().unwrap_or_default())
    ));
    section(&mut md, "load = { ... }", &defs["LoadAction"], defs);
    section(&mut md, "expect = { ... }", &defs["Expect"], defs);
    variants(&mut md, "expect.status words", &defs["StatusWord"]);
    checks(&mut md, defs);
    platforms(&mut md);
    variables(&mut md);
    md
}

/// The platform table, as `platform`, `--platform` and `when` see it.
fn platforms(md: &mut String) {
    use crate::platform::Base;
    use std::fmt::Write;
    let _ = writeln!(
        md,
        "## The platform table\n\nWhat `platform = \"...\"` in a file and `pglab run --platform` choose, and the versions \
         `when` compares (pgBackRest: the release the suite ships; a transcript names what was installed).\n\n\
         | platform | OS | PostgreSQL | pgBackRest | built from |\n|---|---|---|---|---|"
    );
    for p in Platform::ALL {
        let from = match p.base() {
            Base::Mmdebstrap { suite } => format!("mmdebstrap of `{suite}` from the host's Debian mirror"),
            Base::Registry { image } => format!("`{image}`, which must already be on the engine"),
        };
        let _ = writeln!(md, "| `{}` | {} | {} | {} | {from} |", p.name(), p.os(), p.pg_major(), p.pgbackrest());
    }
    md.push('\n');
}

fn description(v: &Value) -> String {
    v["description"].as_str().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A type as a reader writes it in TOML.
fn type_name(v: &Value, defs: &Value) -> String {
    if let Some(r) = v["$ref"].as_str() {
        let name = r.trim_start_matches("#/$defs/");
        let def = &defs[name];
        let values = constants(def);
        if !values.is_empty() && name != "WaitAction" {
            return values.iter().map(|(c, _)| format!("`\"{c}\"`")).collect::<Vec<_>>().join(" \\| ");
        }
        if def["type"] == "string" {
            return "string".into();
        }
        return match name {
            "IniValue" => "value or list".into(),
            "ConfValue" => "string, number, boolean or list".into(),
            "StatusExpect" => "integer or word".into(),
            "HostDecl" => "`[[hosts]]` tables".into(),
            "Given" => "the `[given]` table".into(),
            "Defect" => "`[[defects]]` tables".into(),
            "RawStep" => "`[[steps]]` tables".into(),
            "CheckDecl" => "`[[verify]]` tables".into(),
            "ConfigEdit" => "table (`config` below)".into(),
            "IniEdit" => "table (`config.pgbackrest` below)".into(),
            "FileAction" => "table (`file` below)".into(),
            "CopyAction" => "table (`copy` below)".into(),
            "Expect" => "table (`expect` below)".into(),
            "LoadAction" => "table (`load` below)".into(),
            "Peers" => "`\"all\"` or list of host names".into(),
            "WaitAction" => "word or table (`wait` below)".into(),
            _ => "table".into(),
        };
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = v[key].as_array() {
            let names: Vec<String> = options.iter().filter(|o| o["type"] != "null").map(|o| type_name(o, defs)).collect();
            return names.join(" or ");
        }
    }
    let t = match &v["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts.iter().filter_map(|t| t.as_str()).find(|t| *t != "null").unwrap_or("any"),
        _ => "any",
    };
    match t {
        "array" => format!("list of {}", type_name(&v["items"], defs)),
        "object" => format!("table of {}", type_name(&v["additionalProperties"], defs)),
        t => t.to_string(),
    }
}

/// The values an enum allows, with what each means.
fn constants(def: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in def["oneOf"].as_array().into_iter().flatten().chain(std::iter::once(def)) {
        if let Some(c) = v["const"].as_str() {
            out.push((c.to_string(), description(v)));
        }
        for e in v["enum"].as_array().into_iter().flatten().filter_map(|e| e.as_str()) {
            out.push((e.to_string(), String::new()));
        }
    }
    out
}

fn default_of(v: &Value, defs: &Value) -> String {
    let d = v.get("default").or_else(|| v["$ref"].as_str().and_then(|r| defs[r.trim_start_matches("#/$defs/")].get("default")));
    match d {
        Some(Value::String(s)) => format!("`\"{s}\"`"),
        Some(Value::Array(a)) if a.is_empty() => "none".into(),
        Some(Value::Object(o)) if o.is_empty() => "none".into(),
        Some(other) => format!("`{other}`"),
        None => String::new(),
    }
}

/// A table's keys: type, default (or "required") and meaning.
fn section(md: &mut String, title: &str, def: &Value, defs: &Value) {
    use std::fmt::Write;
    let _ = writeln!(md, "## {title}\n\n{}\n", description(def));
    let required: Vec<&str> = def["required"].as_array().into_iter().flatten().filter_map(|r| r.as_str()).collect();
    let _ = writeln!(md, "| key | type | default | meaning |\n|---|---|---|---|");
    for (key, v) in def["properties"].as_object().into_iter().flatten() {
        let default = if required.contains(&key.as_str()) { "required".to_string() } else { default_of(v, defs) };
        let mut meaning = description(v);
        if let Some(p) = defs_of(v, defs)["pattern"].as_str().or(v["pattern"].as_str()) {
            meaning = format!("{meaning} (matches `{p}`)");
        }
        let _ = writeln!(md, "| `{key}` | {} | {default} | {} |", type_name(v, defs), meaning.replace('|', "\\|"));
    }
    md.push('\n');
}

fn defs_of<'a>(v: &'a Value, defs: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => &defs[r.trim_start_matches("#/$defs/")],
        None => v,
    }
}

/// The values of an enum and what each means.
fn variants(md: &mut String, title: &str, def: &Value) {
    use std::fmt::Write;
    let _ = writeln!(md, "## {title}\n\n{}\n", description(def));
    for (c, what) in constants(def) {
        let _ = writeln!(md, "- `{c}`{}", if what.is_empty() { String::new() } else { format!(": {what}") });
    }
    md.push('\n');
}

fn checks(md: &mut String, defs: &Value) {
    use std::fmt::Write;
    let _ = writeln!(
        md,
        "## [[verify]]\n\nEach entry names a check with `check = \"...\"`, may say when it starts with \
         `after`, and gives the check's parameters beside them. Every string parameter takes variables. \
         What each check writes on the lab is said with it.\n"
    );
    for v in defs["CheckDecl"]["oneOf"].as_array().into_iter().flatten() {
        let name = v["properties"]["check"]["const"].as_str().unwrap_or("");
        let mut params = v.clone();
        params["properties"].as_object_mut().map(|p| p.remove("check"));
        section(md, &format!("check = \"{name}\""), &params, defs);
    }
    variants(md, "PITR target kinds (`targets`)", &defs["PitrTarget"]);
}

fn variables(md: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        md,
        "## Variables\n\n`{{name}}` in a step's action and expectation strings (`run`, `sql`, `config`, `file`, \
         `copy`, `expect.output`, `expect.log`), in `given.table`, and in every string parameter of a check is replaced \
         before it is used; an undefined name is an error at its line and column. Titles, notes and \
         descriptions are plain text. In `expect` regexes a variable's value matches literally.\n"
    );
    let platforms = Platform::ALL;
    let _ = writeln!(md, "| variable | {} | meaning |\n|---|{}---|", platforms.map(|p| p.name()).join(" | "), "---|".repeat(platforms.len()));
    for (name, doc) in super::vars::BUILTIN_DOCS {
        let values: Vec<String> = platforms.iter().map(|p| format!("`{}`", super::builtin_vars(*p)[name])).collect();
        let _ = writeln!(md, "| `{{{name}}}` | {} | {doc} |", values.join(" | "));
    }
    let _ = writeln!(
        md,
        "\nAnd per scenario:\n\n\
         - `{{<host>.ip}}`: the address of the host named `<host>` in `[[hosts]]` (`{{primary.ip}}` when a host is named `primary`; the name is the host's, not its role).\n\
         - `{{<host>.name}}`: its name, which the other hosts resolve.\n\
         - `{{secret.NAME}}`: a secret listed in `secrets`, made anew for each run, never shown (transcripts, reports and bundles show `********`).\n\
         - `{{NAME}}`: each key of `[vars]`; `pglab run --set NAME=value` overrides it.\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_knows_every_top_level_key_the_parser_knows() {
        let s = schema();
        let keys: Vec<&str> = s["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, super::super::KEYS);
        let checks: Vec<&str> =
            s["$defs"]["CheckDecl"]["oneOf"].as_array().unwrap().iter().map(|v| v["properties"]["check"]["const"].as_str().unwrap()).collect();
        assert_eq!(checks, CheckDecl::NAMES);
    }

    #[test]
    fn the_reference_lists_every_check_action_and_variable() {
        let md = markdown();
        for c in CheckDecl::NAMES {
            assert!(md.contains(&format!("## check = \"{c}\"")), "{c}");
        }
        for a in Action::NAMES {
            assert!(md.contains(&format!("| `{a}` |")), "{a}");
        }
        for (v, _) in super::super::vars::BUILTIN_DOCS {
            assert!(md.contains(&format!("`{{{v}}}`")), "{v}");
        }
        assert!(md.contains("| `mode` | string | `\"0644\"` |"), "defaults are shown");
    }
}
