//! The repository is encrypted (`repo1-cipher-type = aes-256-cbc`), read
//! raw from the object store that holds it: every object is in the format
//! pgBackRest's cipher writes (OpenSSL's, opening `Salted__`), and what the
//! cluster holds in clear is in none of them: a value written into a table
//! before the backup, and the file names a backup's manifest lists.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{pg, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Cmd, Host, Hosts};
use crate::outcome::{Figures, Unit};
use crate::vocab::Needs;

/// Names a backup's manifest holds in clear when it is not encrypted.
/// (`PG_VERSION`'s content, `15\n`, is too short to search for: three
/// bytes turn up by chance in megabytes of cipher text.)
const MANIFEST_NAMES: [&str; 2] = ["PG_VERSION", "pg_filenode.map"];

/// The repository in the object store `store` is encrypted: it holds at
/// least one object, each begins `Salted__`, and none contains `marker` (a
/// value the check first finds in `table` on `primary`) or the names
/// PG_VERSION and pg_filenode.map.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RepoEncrypted {
    /// The object store (`kind = "s3"`) that holds the repository.
    pub store: String,
    /// The host whose cluster was backed up.
    pub primary: String,
    /// A table of that cluster with `marker` in a row.
    pub table: String,
    /// A value written into `table` before the backup; a `{secret.*}`
    /// variable makes it random (and it is never shown).
    pub marker: String,
}

/// What `pglab-s3-scan` found in the bucket's files on the store's disk.
#[derive(Deserialize)]
struct Scan {
    objects: u64,
    bytes: u64,
    unsalted: Vec<String>,
    found: std::collections::BTreeMap<String, Vec<String>>,
}

impl Proof for RepoEncrypted {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![Uses { key: "store", host: &self.store, needs: Needs::ObjectStore }, pg("primary", &self.primary)]
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let plain = self.table.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let mut out = Vec::new();
        if !plain {
            out.push(("table", format!("`{}` is not a plain table name (letters, digits, `_`, one optional schema)", self.table)));
        }
        if self.marker.len() < 8 {
            out.push(("marker", "a marker shorter than 8 characters could turn up in cipher text by chance".to_string()));
        }
        out
    }

    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        repo_encrypted(lab.host(&self.store)?, lab.host(&self.primary)?, &self.table, &self.marker).await
    }
}

/// Reads every object of the repository in `store` raw: each must open
/// `Salted__` and none hold `marker` (first found in `table` on `primary`)
/// or a manifest's file names (which a plain manifest lists).
pub async fn repo_encrypted(store: &Host, primary: &Host, table: &str, marker: &str) -> Result<Evidence> {
    // A marker that is not in the cluster would prove nothing by its absence.
    let sql = format!("SELECT count(*) FROM {table} t WHERE strpos(t::text, $1) > 0");
    let rows: i64 = primary.client().await?.query_one(&sql, &[&marker]).await.map_err(|e| Error::Check(format!("{sql} on {}: {e}", primary.name)))?.get(0);
    if rows == 0 {
        return Err(Error::Check(format!("the marker is in no row of {table} on {}: its absence from the repository would prove nothing", primary.name)));
    }
    let needles: Vec<&str> = std::iter::once(marker).chain(MANIFEST_NAMES).collect();
    if needles.iter().any(|n| n.contains('\n')) {
        return Err(Error::Check("the marker holds a line break: the store's scan takes one needle per line".into()));
    }
    let stdin = needles.iter().map(|n| format!("{n}\n")).collect::<String>().into_bytes();
    let scan = Cmd::new(["/usr/local/sbin/pglab-s3-scan", crate::lab::kind::s3::BUCKET]).user("root").stdin(stdin);
    let out = store.exec(scan).await?;
    let scan: Scan =
        serde_json::from_str(out.stdout.trim()).map_err(|e| Error::Check(format!("pglab-s3-scan on {}: {e}: {}", store.name, out.stdout.trim())))?;
    if scan.objects == 0 {
        return Err(Error::Check(format!("the bucket on {} is empty: no repository to look at", store.name)));
    }
    if !scan.unsalted.is_empty() {
        let some: Vec<&str> = scan.unsalted.iter().take(3).map(String::as_str).collect();
        return Err(Error::Check(format!(
            "{} of {} objects on {} are not encrypted (no `Salted__`): {}",
            scan.unsalted.len(),
            scan.objects,
            store.name,
            some.join(", ")
        )));
    }
    if let Some((i, names)) = scan.found.iter().next() {
        let what = match i.parse::<usize>().ok().and_then(|i| i.checked_sub(1)) {
            None => format!("the marker from {table}"),
            Some(n) => format!("`{}`", MANIFEST_NAMES.get(n).copied().unwrap_or("?")),
        };
        return Err(Error::Check(format!("{what} is in clear in {} object(s) on {}: {}", names.len(), store.name, names.join(", "))));
    }
    let mut figures = Figures::default();
    figures.push("objects", scan.objects as f64, Unit::Count);
    figures.push("bytes", scan.bytes as f64, Unit::Bytes);
    let said = format!(
        "{} objects ({:.1} MiB) read raw from {}: each begins `Salted__`; the marker (in {rows} row(s) of {table} on {}) and the names {} are in none",
        scan.objects,
        scan.bytes as f64 / 1048576.0,
        store.name,
        primary.name,
        MANIFEST_NAMES.join(", ")
    );
    Ok(Evidence::new(said).with(figures))
}
