//! `fill` and `free`: a volume of the host filled to the last byte, and freed.

use serde::Deserialize;
use toml::Spanned;

use super::{Act, Cx, Lint};
use crate::error::{Problem, Result};
use crate::lab::Hosts;
use crate::outcome::Fault;

/// Fault: fill this volume of the step's host (one of its `volumes`) to
/// the last byte, with a file `pglab-fill` written as root.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Fill(#[schemars(with = "String")] pub Spanned<String>);

/// Remove what `fill` wrote to this volume.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Free(#[schemars(with = "String")] pub Spanned<String>);

/// The path must be a volume the host declares.
fn not_a_volume(key: &str, path: &Spanned<String>, lint: &Lint<'_>) -> Vec<Problem> {
    match (lint.volumes)(lint.host) {
        Some(volumes) if !volumes.iter().any(|v| v == path.get_ref()) => {}
        _ => return Vec::new(),
    }
    let p = Problem::new(Some(path.span()), format!("`{key}`: `{}` is not a volume of `{}`", path.get_ref(), lint.host), "not a volume");
    vec![p.help(format!(
        "give the host one: volumes = [{{ path = \"{}\", size_mb = 128 }}] in its [[hosts]] entry (a file that extends another may declare the base's host again)",
        path.get_ref()
    ))]
}

impl Act for Fill {
    const FAULT: Fault = Fault::Starts { undo: Some("free") };

    fn problems(&self, lint: &Lint<'_>) -> Vec<Problem> {
        not_a_volume("fill", &self.0, lint)
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let path = self.0.get_ref();
        Ok(format!("{path} on {} filled: {} bytes free", cx.host.name, cx.host.fill(path).await?))
    }
}

impl Act for Free {
    const FAULT: Fault = Fault::Ends;

    fn problems(&self, lint: &Lint<'_>) -> Vec<Problem> {
        not_a_volume("free", &self.0, lint)
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let path = self.0.get_ref();
        Ok(format!("{path} on {} freed: {} MiB free", cx.host.name, cx.host.free(path).await? >> 20))
    }
}
