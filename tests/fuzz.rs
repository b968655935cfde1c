//! The scenario loader and the bug-bundle reader under fuzzing, as an
//! ordinary bounded test (proptest, a fixed number of cases, no files
//! written): whatever the input, no panic and no hang, and every error
//! says where (a scenario problem at `file:line:col`, drawn by miette
//! without a span out of bounds; a bad bundle as bad input).

use std::path::{Path, PathBuf};

use pglab::{Error, Scenario};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Every scenario we ship or keep as a malformed case: the seeds mutations start from.
fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["scenarios", "tests/malformed"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap().flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// One edit of a text: bytes replaced, deleted, duplicated, or a scenario word put in.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, String),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let words = prop::sample::select(vec![
        "\"",
        "'",
        "[",
        "]",
        "]]",
        "[[steps]]",
        "[[verify]]",
        "[[hosts]]",
        "=",
        "{",
        "}",
        ",",
        "\n",
        "0",
        "-1",
        "99999999999999999999",
        "1e400",
        "\"{",
        "{secret.x}",
        "{primary.ip}",
        "after = [\"x\"]",
        "check = \"pitr\"",
        "extends = \"../x\"",
        "name = \"../up\"",
        "é",
        "\u{0}",
        "\\u0000",
        "#",
    ]);
    prop_oneof![
        (any::<usize>(), prop_oneof![words.prop_map(String::from), "[ -~]{0,12}"]).prop_map(|(at, w)| Edit::Replace(at, w)),
        (any::<usize>(), 0usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), 0usize..64).prop_map(|(at, n)| Edit::Duplicate(at, n)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        let at = |i: usize| if b.is_empty() { 0 } else { i % (b.len() + 1) };
        match e {
            Edit::Replace(i, w) => {
                let i = at(*i);
                let end = (i + w.len().min(3)).min(b.len());
                b.splice(i..end, w.bytes());
            }
            Edit::Delete(i, n) => {
                let i = at(*i);
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Edit::Duplicate(i, n) => {
                let i = at(*i);
                let end = (i + n).min(b.len());
                let copy = b[i..end].to_vec();
                b.splice(i..i, copy);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// What a loader answer must be: a scenario, or a scenario error located
/// in the file (or `Usage` for a base file that is not there), drawn.
fn judge(path: &Path, text: &str) -> Result<(), TestCaseError> {
    match Scenario::parse(path, text.to_string()) {
        Ok(_) => Ok(()),
        Err(e @ Error::Scenario(_)) => {
            let said = e.to_string();
            prop_assert!(said.starts_with(&format!("{}:", path.display())), "no location: {said}");
            let drawn = format!("{:?}", miette::Report::new(e));
            prop_assert!(!drawn.is_empty());
            Ok(())
        }
        Err(Error::Usage(_)) if text.contains("extends") => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!("not a located scenario error: {e:?}"))),
    }
}

fn runner(cases: u32) -> TestRunner {
    // Fixed seed: a failure here fails again, the same way, on every machine.
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]))
}

#[test]
fn the_scenario_loader_never_panics_and_locates_every_problem() {
    let seeds = seeds();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.toml");
    let n = seeds.len();
    runner(3000).run(&(0..n, prop::collection::vec(edit(), 1..6)), |(i, edits)| judge(&path, &apply(&seeds[i], &edits))).unwrap();
    // Text with no seed at all.
    runner(1000).run(&"(?s).{0,300}", |text| judge(&path, &text)).unwrap();
}

/// A gzip'd tar of `(path, contents)`.
fn bundle_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // The name as a hostile archive would hold it (set_path refuses `..`).
        let raw = &mut h.as_gnu_mut().unwrap().name;
        let n = name.len().min(raw.len() - 1);
        raw[..n].copy_from_slice(&name.as_bytes()[..n]);
        h.set_cksum();
        tar.append(&h, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn the_bundle_reader_never_panics_and_refuses_as_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("b.tar.gz");
    let manifest = |scenario: &str| {
        serde_json::json!({"lab": "abcd1234", "scenario": scenario, "platform": "debian-12", "image": "x", "pglab": "0",
            "step": null, "complete": false, "hosts": {}, "created_unix": 0})
        .to_string()
    };
    let good = bundle_of(&[("b/manifest.json".into(), manifest("demo").into_bytes()), ("b/scenario.toml".into(), b"name = \"demo\"\n".to_vec())]);
    let check = |bytes: &[u8]| -> Result<(), TestCaseError> {
        std::fs::write(&path, bytes).unwrap();
        match pglab::run::unpack_bundle(&path) {
            Ok(u) => {
                // Whatever it unpacked stays inside its own folder.
                let parent = u.scenario.parent().unwrap().to_path_buf();
                prop_assert!(u.scenario.starts_with(&parent) && !u.scenario.to_string_lossy().contains(".."), "{:?}", u.scenario);
                Ok(())
            }
            Err(Error::Usage(_)) => Ok(()),
            Err(e) => Err(TestCaseError::fail(format!("a bad bundle is bad input, not: {e:?}"))),
        }
    };
    // Random bytes, and the good bundle with bytes flipped.
    runner(300).run(&prop::collection::vec(any::<u8>(), 0..512), |b| check(&b)).unwrap();
    runner(500)
        .run(&prop::collection::vec((any::<usize>(), any::<u8>()), 1..8), |flips| {
            let mut b = good.clone();
            for (i, x) in flips {
                let i = i % b.len();
                b[i] ^= x | 1;
            }
            check(&b)
        })
        .unwrap();
    // Well-formed archives with hostile names: paths and scenario names.
    let names = prop::sample::select(vec!["demo", "../../x", "/etc/passwd", "a/b", "..", "", "x\u{0}y", "ok-name_1"]);
    runner(300)
        .run(&(names.clone(), names, "[ -~]{0,40}"), |(scenario, entry, body)| {
            let files = [
                ("b/manifest.json".to_string(), manifest(scenario).into_bytes()),
                (format!("b/{}", if entry.is_empty() { "scenario.toml" } else { entry }).replace('\u{0}', ""), body.clone().into_bytes()),
                ("b/scenario.toml".to_string(), body.into_bytes()),
            ];
            check(&bundle_of(&files))
        })
        .unwrap();
}
