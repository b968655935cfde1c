//! The crate's modules import one way only: each top-level module may use
//! those on a lower layer and none above or beside it, so the import graph
//! has no cycle. Read from the source, no engine needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layer of each top-level module of `harness/src`: imports go to lower numbers.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("platform", 0),
    ("progress", 0),
    ("time", 1),
    ("vocab", 1),
    ("vars", 1),
    ("transcript", 2),
    ("outcome", 3),
    ("engine", 3),
    ("report", 4),
    ("lab", 4),
    ("check", 5),
    ("action", 5),
    ("scenario", 6),
    ("run", 7),
    ("chaos", 8),
    ("cli", 9),
];

fn modules_and_imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/src");
    let re = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let uses = graph.entry(top.clone()).or_default();
            for c in re.captures_iter(&text) {
                if c[1] != *top {
                    uses.insert(c[1].to_string());
                }
            }
        }
    }
    graph
}

#[test]
fn every_import_goes_to_a_lower_layer() {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let graph = modules_and_imports();
    let unknown: Vec<&String> = graph.keys().filter(|m| !layer.contains_key(m.as_str())).collect();
    assert!(unknown.is_empty(), "modules with no layer (add them to LAYERS): {unknown:?}");
    let mut wrong = Vec::new();
    for (from, uses) in &graph {
        for to in uses {
            match layer.get(to.as_str()) {
                Some(l) if *l < layer[from.as_str()] => {}
                _ => wrong.push(format!("{from} (layer {}) -> {to} (layer {:?})", layer[from.as_str()], layer.get(to.as_str()))),
            }
        }
    }
    assert!(wrong.is_empty(), "imports that go sideways or up:\n{}", wrong.join("\n"));
}

#[test]
fn the_import_graph_has_no_cycle() {
    // Independent of the layer table: a depth-first search for a back edge.
    let graph = modules_and_imports();
    fn visit<'a>(m: &'a str, g: &'a BTreeMap<String, BTreeSet<String>>, path: &mut Vec<&'a str>, done: &mut BTreeSet<&'a str>) -> Option<String> {
        if let Some(i) = path.iter().position(|p| *p == m) {
            return Some(format!("{} -> {m}", path[i..].join(" -> ")));
        }
        if done.contains(m) {
            return None;
        }
        path.push(m);
        for n in g.get(m).into_iter().flatten() {
            if let Some(cycle) = visit(n, g, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(m);
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {cycle}");
        }
    }
}

fn src(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The modules of a folder of `harness/src`, by name, without `mod.rs`.
fn modules_in(dir: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/src").join(dir);
    std::fs::read_dir(dir).unwrap().flatten().filter_map(|e| e.file_name().to_str()?.strip_suffix(".rs").map(String::from)).filter(|m| m != "mod").collect()
}

/// What `docs/architecture.md` says a new action, check and host kind take
/// is what the code asks: an action is a module of `action/` and one line of
/// the `actions!` table (no other list of action names exists), a check is
/// a type beside its proof in `check/` and one line of `checks!`, a host
/// kind is a module of `lab/kind/` and one arm of `spec`.
#[test]
fn a_new_action_check_or_host_kind_is_one_module_and_one_line() {
    let doc = src("docs/architecture.md");
    for says in ["one line in the `actions!` table", "one line in the `checks!` table", "a module in `lab/kind/`"] {
        assert!(doc.contains(says), "docs/architecture.md no longer says: {says}");
    }
    // Actions: every module (but the shared `expect`) is registered, each once.
    let actions = src("harness/src/action/mod.rs");
    let table = &actions[actions.find("actions! {").expect("the actions! table")..];
    let table = &table[..table.find("\n}").unwrap()];
    let lines: Vec<&str> = table.lines().skip(1).map(str::trim).collect();
    let keys: Vec<&str> = lines.iter().map(|l| l.split('"').nth(1).expect("a key")).collect();
    let impls = regex::Regex::new(r"impl Act for (\w+)").unwrap();
    for m in modules_in("action").iter().filter(|m| *m != "expect") {
        let text = src(&format!("harness/src/action/{m}.rs"));
        let types: Vec<String> = impls.captures_iter(&text).map(|c| c[1].to_string()).collect();
        assert!(!types.is_empty(), "action/{m}.rs implements no action");
        for t in types {
            let registered = lines.iter().filter(|l| l.ends_with(&format!("{t}),")) || l.ends_with(&format!("::{t}),"))).count();
            assert_eq!(registered, 1, "action type {t} of action/{m}.rs is registered {registered} times in actions!");
        }
    }
    // No parallel list of action names: a key's string is written in the table only.
    for m in modules_in("report").iter().chain(&modules_in("run")).chain(&modules_in("scenario")) {
        for dir in ["report", "run", "scenario"] {
            let Ok(text) = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("harness/src/{dir}/{m}.rs"))) else { continue };
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for k in keys.iter().filter(|k| ["partition", "heal", "pause", "resume", "fill", "free", "restart", "latency"].contains(*k)) {
                assert!(!code.contains(&format!("\"{k}\"")), "harness/src/{dir}/{m}.rs names action `{k}` as a string: derive it from the action instead");
            }
        }
    }
    // Checks: every parameter type with a proof is registered, once.
    let checks = src("harness/src/check/mod.rs");
    let table = &checks[checks.find("checks! {").expect("the checks! table")..];
    let table = &table[..table.find("\n}").unwrap()];
    let proofs = regex::Regex::new(r"impl Proof for (\w+)").unwrap();
    for m in modules_in("check") {
        let text = src(&format!("harness/src/check/{m}.rs"));
        for c in proofs.captures_iter(&text) {
            assert_eq!(table.matches(&format!("::{}),", &c[1])).count(), 1, "check type {} of check/{m}.rs is registered once in checks!", &c[1]);
        }
    }
    // Host kinds: each module of lab/kind/ is an arm of `spec`.
    let kinds = src("harness/src/lab/kind/mod.rs");
    for m in modules_in("lab/kind") {
        let ty: String = m[..1].to_uppercase() + &m[1..];
        assert!(kinds.contains(&format!("=> &{m}::{ty},")), "lab/kind/{m}.rs has no arm in spec()");
    }
}

/// Every integration test is in the `labs` group (at most as many labs at
/// once as 2 cores hold) unless its file is named as one that starts none;
/// a new test file is in it without a word. Such a file is read here: it
/// may not start a lab. The default profile says so; a profile with
/// overrides of its own says so too (the others inherit the default's).
#[test]
fn a_test_that_starts_a_lab_cannot_escape_the_labs_group() {
    let cfg: toml::Table = toml::from_str(&src(".config/nextest.toml")).unwrap();
    let offline = regex::Regex::new(r"^binary\((\w+)\)$").unwrap();
    assert!(cfg["profile"]["default"].get("overrides").is_some(), "the default profile has the overrides");
    for (name, profile) in cfg["profile"].as_table().unwrap() {
        let Some(overrides) = profile.get("overrides").and_then(|o| o.as_array()) else { continue };
        let last = overrides.last().unwrap();
        assert_eq!(
            (last["filter"].as_str(), last["test-group"].as_str()),
            (Some("kind(test)"), Some("labs")),
            "profile {name}: the last override puts every integration test in labs"
        );
        for o in overrides.iter().filter(|o| o["test-group"].as_str() == Some("@global")) {
            for part in o["filter"].as_str().unwrap().split('|').map(str::trim) {
                let bin = &offline.captures(part).unwrap_or_else(|| panic!("profile {name}: `{part}`: an engine-free binary is named whole"))[1];
                let text = src(&format!("tests/{bin}.rs"));
                // Spelled in pieces, so that this file does not find them in itself.
                let starts =
                    [("support::", "lab("), ("support::", "engine("), ("support::", "docker("), ("Scenario", "Lab"), ("Lab", "Spec"), ("run_", "scenario")];
                // `pglab run` and `pglab up` from the binary.
                let commands = ["run", "up"].iter().flat_map(|w| [format!("args([\"{w}\""), format!("arg(\"{w}\")")]).collect::<Vec<_>>();
                for s in starts.iter().map(|(a, b)| format!("{a}{b}")).chain(commands) {
                    assert!(!text.contains(&s), "tests/{bin}.rs is outside the labs group but uses {s}");
                }
            }
        }
    }
}

/// Every Rust file of the library, with its text.
fn all_sources() -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/src")];
    while let Some(dir) = stack.pop() {
        for path in std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()) {
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

/// A minimum the JSON Schema states comes from the field's type (`NonZero*`),
/// which serde enforces when the file is read: a schema-only bound
/// (`schemars(range(..))`) would be a second source the loader ignores.
#[test]
fn every_minimum_of_the_schema_is_one_the_loader_enforces() {
    let range = ["schemars", "(range"].concat();
    let offenders: Vec<String> = all_sources().into_iter().filter(|(_, t)| t.contains(&range)).map(|(p, _)| p.display().to_string()).collect();
    assert!(offenders.is_empty(), "schema-only bounds in {offenders:?}: use a NonZero type");
    let schema = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenario.schema.json")).unwrap();
    assert!(schema.contains("\"minimum\": 1"), "the schema states its minimums");
}
