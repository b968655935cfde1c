//! What a scenario's steps are, independent of where they are written: a
//! checkpoint of the lab after step N is for every scenario whose first N
//! steps read the same (a file that extends the tutorial shares the
//! tutorial's).

use super::model::Scenario;

/// What a step says about itself without changing what it does.
const WORDS: [&str; 4] = ["title", "note", "added", "defect"];

/// The `[[steps]]` tables of a file's text, each as canonical JSON (keys
/// in the order written, no spans, no comments, none of [`WORDS`]).
fn tables(source: &str) -> Vec<String> {
    let parsed: toml::Table = toml::from_str(source).unwrap_or_default();
    let mut steps = parsed.get("steps").and_then(toml::Value::as_array).cloned().unwrap_or_default();
    for s in steps.iter_mut().filter_map(toml::Value::as_table_mut) {
        s.retain(|k, _| !WORDS.contains(&k));
    }
    steps.iter().map(|v| serde_json::to_string(v).expect("TOML values serialize")).collect()
}

impl Scenario {
    /// Each step as written, in run order (a base's first, from its file).
    pub(crate) fn step_texts(&self) -> Vec<String> {
        match &self.base {
            Some(b) => {
                let mut texts = tables(&b.source);
                texts.truncate(b.steps);
                texts.extend(tables(&self.source));
                texts
            }
            None => tables(&self.source),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::scenario::Scenario;

    fn shipped(name: &str) -> Scenario {
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"))).unwrap()
    }

    #[test]
    fn a_file_that_extends_the_tutorial_starts_with_the_tutorials_steps() {
        let tutorial = shipped("tutorial");
        let partition = shipped("partition");
        let (t, p) = (tutorial.step_texts(), partition.step_texts());
        assert_eq!(t.len(), tutorial.steps.len());
        assert_eq!(p.len(), partition.steps.len());
        let shared = partition.base.as_ref().unwrap().steps;
        assert_eq!(t[..shared], p[..shared]);
        assert!(t[shared - 1].contains(partition.steps[shared - 1].id.get_ref()), "{}", t[shared - 1]);
    }
}
