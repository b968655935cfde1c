//! The scenarios that ship with pglab, carried inside the binary so that an
//! installed `pglab run tutorial` works from any directory.

use include_dir::{include_dir, Dir};

static SHIPPED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/scenarios");

/// Each shipped scenario: its name (the file stem) and its text, by name.
pub(crate) fn shipped() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<(&str, &str)> = SHIPPED.files().filter_map(|f| Some((f.path().file_stem()?.to_str()?, f.contents_utf8()?))).collect();
    all.sort_unstable();
    all
}

/// One shipped scenario's text.
pub(crate) fn text(name: &str) -> Option<&'static str> {
    shipped().into_iter().find(|(n, _)| *n == name).map(|(_, t)| t)
}
