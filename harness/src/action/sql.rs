//! `sql = "..."`: SQL through the harness's own client.

use serde::Deserialize;
use toml::Spanned;

use super::{judge, Act, Cx, Miss};
use crate::error::{Error, Result};
use crate::lab::Hosts;
use crate::vocab::Needs;

/// SQL through the harness's own client (superuser, database `postgres`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Sql(#[schemars(with = "String")] pub Spanned<String>);

impl Act for Sql {
    fn needs(&self) -> Needs {
        Needs::Postgres
    }

    /// A failure is the step's outcome to judge.
    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let (host, sql) = (cx.host, cx.vars.subst(self.0.get_ref())?);
        let out = host.psql_recorded(&sql).await?;
        let status = if out.error.is_some() { 1 } else { 0 };
        match judge(cx.expect, cx.vars, status, &out.shown())? {
            None if out.error.is_some() => Ok(out.shown()),
            None if out.rows.is_empty() => Ok("ok".into()),
            // What it returned is what the report shows (a count, a state).
            None => Ok(host.transcript().redact(&crate::error::tail_lines(&out.text(), 5))),
            Some(Miss::Status { want, .. }) => match out.error {
                // Kept typed: a syntax error is not worth a retry.
                Some(e) => Err(host.refused(&sql, e)),
                None => Err(Error::Check(format!("SQL on {} succeeded; expected status {want}", host.name))),
            },
            Some(miss @ Miss::Output { .. }) => Err(Error::Check(format!("SQL result on {}: {miss}:\n{}", host.name, out.shown()))),
        }
    }
}
