//! Configuration edits as a DBA makes them with an editor: set keys in
//! pgbackrest.conf sections, uncomment or set GUCs, append pg_hba lines.
//! Every edit is recorded as a unified diff, and an edit that changes
//! nothing is an error (the scenario would be lying).

use std::collections::BTreeMap;
use std::time::Instant;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Act, Cx};
use crate::error::Result;
use crate::lab::{Host, Hosts};
use crate::vars::Vars;
use crate::vocab::Needs;

/// Edits of configuration files, shown as diffs in the transcript; an edit
/// that changes nothing says so.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigEdit {
    /// `/etc/pgbackrest.conf`: set keys in one INI section.
    pub pgbackrest: Option<IniEdit>,
    /// `{pg.config_dir}/postgresql.conf`: each GUC set where the file mentions it
    /// (uncommented), else appended. A value is written bare when it is a plain
    /// word or number, else in single quotes (`'*'`, `'pgbackrest ... %p'`).
    #[schemars(with = "Option<BTreeMap<String, ConfValue>>")]
    pub postgresql_conf: Option<toml::Table>,
    /// `{pg.config_dir}/pg_hba.conf`: lines appended unless present.
    pub pg_hba: Option<Vec<String>>,
}

/// `[section]` keys of an INI file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IniEdit {
    /// The section, created if missing: `global`, or the stanza.
    pub section: String,
    /// Keys to set; a list sets a repeated key (`recovery-option`), replacing earlier lines of it.
    #[schemars(with = "BTreeMap<String, IniValue>")]
    pub set: toml::Table,
}

/// A configuration value as TOML writes it (schema only).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum ConfValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    /// Written joined with commas (`shared_preload_libraries`).
    List(Vec<ConfValue>),
}

/// An INI value, or a list of them for a repeated key (schema only).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum IniValue {
    One(ConfValue),
}

impl Act for ConfigEdit {
    /// The PostgreSQL files are the cluster's; pgbackrest.conf is on every kind.
    fn needs(&self) -> Needs {
        if self.postgresql_conf.is_some() || self.pg_hba.is_some() {
            Needs::Postgres
        } else {
            Needs::Any
        }
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        apply(cx.host, self, cx.vars).await
    }
}

/// Values of a TOML value as config strings (a list means a repeated key).
fn values(v: &toml::Value) -> Vec<String> {
    match v {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(a) => a.iter().flat_map(values).collect(),
        other => vec![other.to_string()],
    }
}

/// The names pgBackRest gave an option before 2.x numbered it (its
/// `deprecated` names): still read, and an old and a new name at once is an
/// error ([031]). Debian 11's package ships `repo-path`.
fn pgbackrest_old_names(key: &str) -> Vec<String> {
    const RENAMED: [(&str, &[&str]); 6] = [
        ("repo1-host", &["backup-host", "repo-host"]),
        ("repo1-host-user", &["backup-user", "repo-host-user"]),
        ("repo1-host-config", &["backup-config", "repo-host-config"]),
        ("repo1-host-cmd", &["backup-cmd", "repo-host-cmd"]),
        ("pg1-host-user", &["db-user", "db1-user"]),
        ("pg1-host-cmd", &["db-cmd", "db1-cmd"]),
    ];
    if let Some((_, old)) = RENAMED.iter().find(|(k, _)| *k == key) {
        return old.iter().map(|o| o.to_string()).collect();
    }
    if let Some(rest) = key.strip_prefix("repo1-") {
        // repo1-retention-full was retention-full, then repo-retention-full.
        let mut old = vec![format!("repo-{rest}")];
        old.extend(rest.starts_with("retention-").then(|| rest.to_string()));
        return old;
    }
    key.strip_prefix("pg1-").map(|rest| vec![format!("db-{rest}"), format!("db1-{rest}")]).unwrap_or_default()
}

/// Sets `key=value` lines in one section of pgbackrest.conf; repeated keys
/// replace all earlier lines of that key in the section, and of its old names.
pub(crate) fn ini_set(text: &str, section: &str, sets: &[(String, Vec<String>)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header = format!("[{section}]");
    let start = match lines.iter().position(|l| l.trim() == header) {
        Some(i) => i,
        None => {
            if lines.last().is_some_and(|l| !l.trim().is_empty()) {
                lines.push(String::new());
            }
            lines.push(header);
            lines.len() - 1
        }
    };
    let mut end = lines[start + 1..].iter().position(|l| l.trim().starts_with('[')).map(|i| start + 1 + i).unwrap_or(lines.len());
    for (key, vals) in sets {
        let old = pgbackrest_old_names(key);
        let is_key = |l: &str| l.split_once('=').is_some_and(|(k, _)| k.trim() == key || old.iter().any(|o| o == k.trim()));
        let first = lines[start + 1..end].iter().position(|l| is_key(l)).map(|i| start + 1 + i);
        let mut i = start + 1;
        while i < end {
            if is_key(&lines[i]) {
                lines.remove(i);
                end -= 1;
            } else {
                i += 1;
            }
        }
        let mut at = first.unwrap_or_else(|| {
            // after the section's last non-blank line
            let mut e = end;
            while e > start + 1 && lines[e - 1].trim().is_empty() {
                e -= 1;
            }
            e
        });
        for v in vals {
            lines.insert(at, format!("{key}={v}"));
            at += 1;
            end += 1;
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `key = value` for postgresql.conf, quoted unless a plain word or number.
fn guc_line(key: &str, value: &str) -> String {
    let plain = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if plain {
        format!("{key} = {value}")
    } else {
        format!("{key} = '{}'", value.replace('\'', "''"))
    }
}

/// Uncomments and sets a GUC where postgresql.conf mentions it, like the
/// tutorial says; appends it when the file does not.
pub(crate) fn guc_set(text: &str, key: &str, value: &str) -> String {
    let re = regex::Regex::new(&format!(r"^\s*#?\s*{}\s*=", regex::escape(key))).expect("valid regex");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let line = guc_line(key, value);
    // Prefer an active line, then the commented default.
    let active = lines.iter().position(|l| re.is_match(l) && !l.trim_start().starts_with('#'));
    match active.or_else(|| lines.iter().position(|l| re.is_match(l))) {
        Some(i) => {
            let comment = lines[i].find(" #").filter(|_| !lines[i].trim_start().starts_with('#')).map(|c| lines[i][c..].to_string());
            let tail = lines[i].trim_start().strip_prefix('#').and_then(|rest| rest.find('#').map(|c| format!("\t#{}", &rest[c + 1..])));
            lines[i] = format!("{line}{}", comment.or(tail).unwrap_or_default());
        }
        None => lines.push(line),
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

pub(crate) fn hba_append(text: &str, new: &[String]) -> String {
    let mut out = text.to_string();
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    for l in new {
        if !text.lines().any(|x| x.split_whitespace().eq(l.split_whitespace())) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

pub(crate) fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(2).header(path, path).to_string()
}

/// A file's new text from its old one.
type Edit = Box<dyn Fn(&str) -> String + Send + Sync>;

/// Applies one step's edits on `host` as root; returns a summary.
async fn apply(host: &Host, cfg: &ConfigEdit, vars: &Vars) -> Result<String> {
    let mut edits: Vec<(String, Edit)> = Vec::new();
    if let Some(ini) = &cfg.pgbackrest {
        let section = vars.subst(&ini.section)?;
        let mut sets = Vec::new();
        for (k, v) in &ini.set {
            sets.push((k.clone(), values(v).iter().map(|x| vars.subst(x)).collect::<Result<Vec<_>>>()?));
        }
        edits.push(("/etc/pgbackrest.conf".into(), Box::new(move |t| ini_set(t, &section, &sets))));
    }
    let conf_dir = vars.get("pg.config_dir").unwrap_or_default().to_string();
    if let Some(gucs) = &cfg.postgresql_conf {
        let mut sets = Vec::new();
        for (k, v) in gucs {
            sets.push((k.clone(), vars.subst(&values(v).join(","))?));
        }
        edits.push((format!("{conf_dir}/postgresql.conf"), Box::new(move |t| sets.iter().fold(t.to_string(), |acc, (k, v)| guc_set(&acc, k, v)))));
    }
    if let Some(lines) = &cfg.pg_hba {
        let lines = lines.iter().map(|l| vars.subst(l)).collect::<Result<Vec<_>>>()?;
        edits.push((format!("{conf_dir}/pg_hba.conf"), Box::new(move |t| hba_append(t, &lines))));
    }
    let mut summary = Vec::new();
    for (path, edit) in edits {
        let t = Instant::now();
        // A missing file reads as empty, to be created root-owned, mode 0644.
        let file = host.stat_read(&path).await?;
        let (mode, uid, gid) = file.as_ref().map(|f| (f.mode, f.uid, f.gid)).unwrap_or((0o644, 0, 0));
        let target = file.as_ref().map(|f| f.path.clone()).unwrap_or_else(|| path.clone());
        let old = file.map(|f| String::from_utf8_lossy(&f.content).into_owned()).unwrap_or_default();
        let new = edit(&old);
        if new == old {
            // Already so (a step run again with `run --from`): say so, change nothing.
            host.note("root", &format!("edit {path}"), "(already set: no change)", t.elapsed());
            summary.push(format!("{path} already set"));
            continue;
        }
        host.write_file_as(&target, new.as_bytes(), mode, uid, gid).await?;
        let diff = unified_diff(&path, &old, &new);
        host.note("root", &format!("edit {path}"), &diff, t.elapsed());
        summary.push(format!("edited {path}"));
    }
    Ok(summary.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sets_replace_and_repeat_keys() {
        let t = "[global]\nrepo1-path=/old\n\n[demo]\npg1-path=/x\n";
        let out = ini_set(t, "global", &[("repo1-path".into(), vec!["/var/lib/pgbackrest".into()]), ("log-level-file".into(), vec!["debug".into()])]);
        assert_eq!(out, "[global]\nrepo1-path=/var/lib/pgbackrest\nlog-level-file=debug\n\n[demo]\npg1-path=/x\n");
        let out = ini_set(&out, "tutorial", &[("recovery-option".into(), vec!["a=1".into(), "b=2".into()])]);
        assert!(out.ends_with("[tutorial]\nrecovery-option=a=1\nrecovery-option=b=2\n"), "{out}");
    }

    #[test]
    fn an_old_option_name_is_replaced_not_doubled() {
        // Debian 11's shipped /etc/pgbackrest.conf
        let t = "[global]\nrepo-path=/var/lib/pgbackrest\n\n#[main]\n#db-path=/var/lib/postgresql/9.4/main\n";
        let out = ini_set(t, "global", &[("repo1-path".into(), vec!["/var/lib/pgbackrest".into()])]);
        assert_eq!(out, "[global]\nrepo1-path=/var/lib/pgbackrest\n\n#[main]\n#db-path=/var/lib/postgresql/9.4/main\n");
        let out = ini_set("[s]\ndb-path=/a\n", "s", &[("pg1-path".into(), vec!["/b".into()])]);
        assert_eq!(out, "[s]\npg1-path=/b\n");
        let out = ini_set(
            "[global]\nbackup-user=x\nretention-full=1\n",
            "global",
            &[("repo1-host-user".into(), vec!["postgres".into()]), ("repo1-retention-full".into(), vec!["2".into()])],
        );
        assert_eq!(out, "[global]\nrepo1-host-user=postgres\nrepo1-retention-full=2\n");
    }

    #[test]
    fn gucs_are_uncommented_in_place() {
        let t = "#listen_addresses = 'localhost'\t\t# what IP address(es) to listen on;\nmax_wal_senders = 10\n";
        let out = guc_set(t, "listen_addresses", "*");
        assert!(out.starts_with("listen_addresses = '*'\t# what IP"), "{out}");
        let out = guc_set(&out, "max_wal_senders", "3");
        assert!(out.contains("\nmax_wal_senders = 3\n"), "{out}");
        let out = guc_set(&out, "archive_command", "pgbackrest --stanza=tutorial archive-push %p");
        assert!(out.ends_with("archive_command = 'pgbackrest --stanza=tutorial archive-push %p'\n"), "{out}");
    }

    #[test]
    fn hba_lines_are_appended_once() {
        let t = "local all all peer\n";
        let out = hba_append(t, &["host replication replicator 10.0.0.2/32 scram-sha-256".into()]);
        assert_eq!(hba_append(&out, &["host  replication replicator 10.0.0.2/32 scram-sha-256".into()]), out);
    }
}
