//! Writing a scenario: every malformed case in tests/malformed/ is rejected
//! with each of its problems at the line and column its `# expect:` lines
//! give, by the library and by `pglab validate` (exit 2, no engine needed).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use pglab::Scenario;
use rstest::rstest;

/// `(where, text)` from the file's `# expect: L:C text` lines; `where` is
/// `path:L:C` (or `path` for `-`: a problem of the whole file).
fn expected(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|e| {
            let (at, what) = e.split_once(' ').unwrap_or((e, ""));
            let place = if at == "-" { path.display().to_string() } else { format!("{}:{at}", path.display()) };
            (place, what.trim().to_string())
        })
        .collect()
}

fn problems(path: &Path) -> Vec<String> {
    match Scenario::load(path) {
        Ok(_) => Vec::new(),
        Err(pglab::Error::Scenario(e)) => e.messages(),
        Err(e) => panic!("{}: not a scenario error: {e}", path.display()),
    }
}

#[rstest]
fn each_problem_is_reported_where_it_is(#[files("tests/malformed/*.toml")] path: PathBuf) {
    let want = expected(&path);
    assert!(!want.is_empty(), "{} has no `# expect:` line", path.display());
    let got = problems(&path);
    for (place, what) in &want {
        let at = format!("{place}: ");
        assert!(got.iter().any(|m| m.starts_with(&at) && m.contains(what.as_str())), "{at}{what} not reported; got:\n{}", got.join("\n"));
    }
    assert_eq!(got.len(), want.len(), "every problem once, no more:\n{}", got.join("\n"));
}

#[test]
fn validate_reports_every_file_in_one_pass_and_exits_2() {
    let files: Vec<PathBuf> =
        std::fs::read_dir("tests/malformed").unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
    let mut args = vec!["validate".to_string(), "scenarios/tutorial.toml".into()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    // No engine is needed: point DOCKER_HOST nowhere.
    let out = Command::new(support::pglab_bin()).args(&args).env("DOCKER_HOST", "unix:///nonexistent.sock").env("NO_COLOR", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for f in &files {
        for (place, _) in expected(f) {
            assert!(err.contains(&format!("{place}:")), "{place} missing from:\n{err}");
        }
    }
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("ok: scenarios/tutorial.toml"), "the good file's plan is printed: {shown}");
}

#[test]
fn shipped_scenarios_validate_and_print_their_plan() {
    let out =
        Command::new(support::pglab_bin()).args(["validate", "tutorial", "tutorial-literal"]).env("DOCKER_HOST", "unix:///nonexistent.sock").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("tutorial: 3 hosts") && text.contains("waits for 7-backup (primary)"), "{text}");
    assert!(text.contains("pitr           as soon as 7-backup is done"), "{text}");
}

#[test]
fn what_is_not_a_scenario_at_all_is_bad_input_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, b"name = \"x\xff\"\n").unwrap();
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, vec![b'#'; (1 << 20) + 1]).unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, b"").unwrap();
    for (path, what) in [(&binary, "not UTF-8"), (&huge, "at most"), (&empty, "empty")] {
        let got = problems(path);
        assert!(got.len() == 1 && got[0].starts_with(&path.display().to_string()) && got[0].contains(what), "{}: {got:?}", path.display());
        let out = Command::new(support::pglab_bin()).args(["validate", path.to_str().unwrap()]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
    }
    let missing = dir.path().join("missing.toml");
    let out = Command::new(support::pglab_bin()).args(["validate", missing.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("no scenario file {}", missing.display())) && !err.contains("scenarios//"), "{err}");
}

#[test]
fn a_huge_line_is_clipped_around_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.toml");
    let filler = "x".repeat(200_000);
    std::fs::write(&path, format!("name = \"long\"\n[[hosts]]\nname = \"primary\"\n[[steps]]\nid = \"1\"\ntitle = \"{filler}\"\nhost = \"primary\"\nrun = \"true\"\nbogus = 1 # {filler}\n")).unwrap();
    let out = Command::new(support::pglab_bin()).args(["validate", path.to_str().unwrap()]).env("NO_COLOR", "1").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("long.toml:9:1: unknown field `bogus`"), "{}", &err[..err.len().min(2000)]);
    assert!(err.len() < 5_000, "the 200 kB line is not printed back: {} bytes", err.len());
}

/// A TOML file as the JSON a schema validator reads.
fn as_json(path: &Path) -> Option<serde_json::Value> {
    let value: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).ok()?;
    Some(serde_json::to_value(value).unwrap())
}

fn schema() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string("docs/scenario.schema.json").unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

#[rstest]
fn shipped_scenarios_pass_the_schema_and_name_it(#[files("scenarios/*.toml")] path: PathBuf) {
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("#:schema ../docs/scenario.schema.json\n"), "{} names the schema on its first line", path.display());
    let errors: Vec<String> = schema().iter_errors(&as_json(&path).unwrap()).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
}

#[rstest]
fn the_schema_rejects_what_a_shape_can_show(#[files("tests/malformed/*.toml")] path: PathBuf) {
    let text = std::fs::read_to_string(&path).unwrap();
    let verdict = text.lines().find_map(|l| l.strip_prefix("# schema: ")).unwrap_or_else(|| panic!("{} has no `# schema:` line", path.display()));
    let json = as_json(&path);
    match (verdict.split_whitespace().next(), json) {
        (Some("rejects"), Some(j)) => assert!(!schema().is_valid(&j), "{}: the schema lets it pass", path.display()),
        (Some("accepts"), Some(j)) => {
            assert!(schema().is_valid(&j), "{}: {:?}", path.display(), schema().iter_errors(&j).map(|e| e.to_string()).collect::<Vec<_>>())
        }
        (Some("not"), None) => {}
        (v, j) => panic!("{}: `# schema: {verdict}` but parsed: {} ({v:?})", path.display(), j.is_some()),
    }
}

#[test]
fn the_reference_and_the_schema_are_what_the_model_says() {
    // PGLAB_BLESS=1 writes them anew after a change to the model.
    for (file, args) in [("docs/scenarios.md", &["schema", "--markdown"][..]), ("docs/scenario.schema.json", &["schema"][..])] {
        let out = Command::new(support::pglab_bin()).args(args).output().unwrap();
        assert!(out.status.success());
        let generated = String::from_utf8(out.stdout).unwrap();
        if std::env::var("PGLAB_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(file, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(file).unwrap();
        assert!(committed == generated, "{file} differs from `pglab {}`: run the tests with PGLAB_BLESS=1 and commit it", args.join(" "));
    }
}
