//! The CI workflow users copy (`ci/pglab.yml`) and the nextest profile it
//! runs: parsed, and held to what they promise (no engine needed).

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn workflow() -> Yaml {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/pglab.yml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// Every `run:` line of a job, in order.
fn runs(job: &Yaml) -> Vec<String> {
    job["steps"].as_vec().unwrap().iter().filter_map(|s| s["run"].as_str().map(str::to_string)).collect()
}

fn uses(job: &Yaml) -> Vec<String> {
    job["steps"].as_vec().unwrap().iter().filter_map(|s| s["uses"].as_str().map(str::to_string)).collect()
}

#[test]
fn the_suite_is_sharded_over_a_matrix_with_images_built_once() {
    let wf = workflow();
    let jobs = &wf["jobs"];
    for job in ["images", "tutorial", "suite"] {
        assert!(!jobs[job].is_badvalue(), "job `{job}`");
    }

    // Images: one per platform, keyed by the recipe hash (`pglab image ref`), saved for the others.
    let images = &jobs["images"];
    let platforms = images["strategy"]["matrix"]["platform"].as_vec().unwrap().clone();
    for p in &platforms {
        assert!(p.as_str().unwrap().parse::<pglab::Platform>().is_ok(), "{p:?} is a pglab platform");
    }
    let image_runs = runs(images).join("\n");
    assert!(image_runs.contains("image ref ${{ matrix.platform }}") && image_runs.contains("docker save"), "{image_runs}");
    let cache = images["steps"].as_vec().unwrap().iter().find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/cache"))).unwrap();
    assert!(cache["with"]["key"].as_str().unwrap().contains("steps.ref.outputs.image"), "cached by the image's tag");

    // The suite: shards x platforms, each shard one nextest partition of N, after the images.
    let suite = &jobs["suite"];
    assert_eq!(suite["needs"].as_str(), Some("images"));
    assert_eq!(suite["strategy"]["matrix"]["platform"].as_vec().unwrap(), &platforms, "the suite covers every platform built");
    let offline: Vec<&str> = pglab::Platform::OFFLINE.iter().map(|p| p.name()).collect();
    assert_eq!(platforms.iter().map(|p| p.as_str().unwrap()).collect::<Vec<_>>(), offline, "every platform built offline, in CI");
    // Each platform's shards run the tests named for it; the default platform's also the unnamed rest.
    let include = suite["strategy"]["matrix"]["include"].as_vec().expect("a test filter per platform");
    let case = |p: &pglab::Platform| format!("{:?}", p);
    for p in pglab::Platform::OFFLINE {
        let tests = include.iter().find(|i| i["platform"].as_str() == Some(p.name())).and_then(|i| i["tests"].as_str()).expect("a filter");
        let others: Vec<String> = pglab::Platform::OFFLINE.iter().filter(|o| **o != p).map(case).collect();
        let want = if p == pglab::Platform::default() { format!("not test(/{}/)", others.join("|")) } else { format!("test(/{}/)", case(&p)) };
        assert_eq!(tests, want, "{p}");
    }
    let shards: Vec<i64> = suite["strategy"]["matrix"]["shard"].as_vec().unwrap().iter().map(|s| s.as_i64().unwrap()).collect();
    assert_eq!(shards, (1..=shards.len() as i64).collect::<Vec<_>>(), "shards are 1..N");
    let suite_runs = runs(suite);
    let load = suite_runs.iter().position(|r| r.contains("docker load")).expect("the image is loaded");
    let nextest = suite_runs.iter().position(|r| r.contains("cargo nextest run")).expect("nextest runs");
    assert!(load < nextest, "image loaded before the tests");
    let line = &suite_runs[nextest];
    assert!(line.contains("--profile ci"), "{line}");
    assert!(line.contains(&format!("--partition count:${{{{ matrix.shard }}}}/{}", shards.len())), "{line}");
    assert!(line.contains("-E '${{ matrix.tests }}'"), "{line}");
    // JUnit and reports uploaded; a failed lab bundled.
    let upload = suite["steps"].as_vec().unwrap().iter().find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact"))).unwrap();
    assert!(upload["with"]["path"].as_str().unwrap().contains("target/nextest/ci/junit.xml"));
    assert!(suite_runs.iter().any(|r| r.contains("pglab -- report")), "failed labs are bundled");
    assert!(uses(suite).iter().any(|u| u.starts_with("actions/download-artifact")));
}

#[test]
fn the_ci_profile_writes_junit_never_retries_and_ends_hung_tests() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".config/nextest.toml")).unwrap();
    let cfg: toml::Table = toml::from_str(&text).unwrap();
    let (ci, default) = (&cfg["profile"]["ci"], &cfg["profile"]["default"]);
    // What the ci profile leaves out, it inherits from the default profile, its
    // overrides included (`cargo nextest show-config test-groups --profile ci`
    // lists the default's; not asked from here: cargo, run inside the suite,
    // relinks the test binaries nextest is running).
    let setting = |key: &str| ci.get(key).or_else(|| default.get(key)).unwrap_or_else(|| panic!("`{key}` set for ci"));
    assert_eq!(ci["retries"].as_integer(), Some(0));
    assert_eq!(ci["junit"]["path"].as_str(), Some("junit.xml"));
    assert!(setting("slow-timeout")["terminate-after"].as_integer().is_some(), "a hung test is ended");
    let groups = cfg["test-groups"].as_table().unwrap();
    assert!(groups.contains_key("labs") && groups.contains_key("slow-labs"), "{groups:?}");
    let overrides = setting("overrides").as_array().unwrap();
    assert!(overrides.iter().any(|o| o["test-group"].as_str() == Some("slow-labs")), "slow scenarios have their own group");
}
