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
    ("transcript", 2),
    ("scenario", 2),
    ("outcome", 3),
    ("engine", 3),
    ("report", 4),
    ("lab", 4),
    ("check", 5),
    ("run", 6),
    ("cli", 7),
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
