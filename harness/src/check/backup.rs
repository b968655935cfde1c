//! Backups: retention, the nightly cron line (and that it fires), and
//! pgBackRest's own check and verify.

use std::num::NonZeroU32;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{any, eq, ms_since, Evidence, Proof, Uses};
use crate::error::{Error, Result};
use crate::lab::{Br, BrCommand, Cmd, Host, Hosts};
use crate::outcome::{Figures, Unit};
use crate::time::{poll_until, Deadline, Probe};

/// `backups` more full backups leave exactly `expect_full` full backups
/// in `pgbackrest info`, and expiry moved the archive's start. Writes
/// those backups to the repository.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Retention {
    /// Where pgBackRest backs up (the repository's side).
    pub host: String,
    /// The pgBackRest stanza.
    pub stanza: String,
    /// How many more full backups to take.
    pub backups: NonZeroU32,
    /// How many full backups `repo1-retention-full` must leave.
    pub expect_full: NonZeroU32,
}

/// The postgres crontab on `host` holds this line. Writes nothing.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CronLine {
    /// The host whose crontab it is.
    pub host: String,
    /// The crontab line, as `crontab -l` prints it.
    pub line: String,
}

/// The postgres crontab's own backup line for `stanza`, its schedule
/// moved to every minute for a while and its command unchanged, makes a
/// new full backup (a minute or more: runs with `--slow`). Adds that line
/// to the crontab and puts the crontab back afterwards.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CronFires {
    /// The host whose crontab it is.
    pub host: String,
    /// The stanza the line backs up.
    pub stanza: String,
}

/// `pgbackrest check` (it archives a WAL segment) and `pgbackrest verify` succeed.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pgbackrest {
    /// Where to run them (the repository's side).
    pub host: String,
    /// The pgBackRest stanza.
    pub stanza: String,
}

impl Proof for Retention {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![any("host", &self.host)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        retention(lab.host(&self.host)?, &self.stanza, self.backups.get(), self.expect_full.get()).await
    }
}

impl Proof for CronLine {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![any("host", &self.host)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        cron_line(lab.host(&self.host)?, &self.line).await
    }
}

impl Proof for CronFires {
    const SLOW: bool = true;
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![any("host", &self.host)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        cron_fires(lab.host(&self.host)?, &self.stanza).await
    }
}

impl Proof for Pgbackrest {
    fn uses(&self) -> Vec<Uses<'_>> {
        vec![any("host", &self.host)]
    }
    async fn prove<L: Hosts>(&self, lab: &L) -> Result<Evidence> {
        check_and_verify(lab.host(&self.host)?, &self.stanza).await
    }
}

/// Labels of the full backups in a stanza's `pgbackrest info`.
pub fn full_backups(info: &serde_json::Value) -> Vec<String> {
    info["backup"]
        .as_array()
        .map(|b| b.iter().filter(|x| x["type"] == "full").filter_map(|x| x["label"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn full_backup(stanza: &str) -> Br {
    Br::new(BrCommand::Backup).stanza(stanza).opt("type", "full")
}

/// `backups` more full backups leave `expect_full`, and expiry moved the
/// archive's start.
pub async fn retention(host: &Host, stanza: &str, backups: u32, expect_full: u32) -> Result<Evidence> {
    let mut figures = Figures::default();
    let before = host.backup_info(stanza).await?;
    let archive_min = |i: &serde_json::Value| i["archive"][0]["min"].as_str().unwrap_or("").to_string();
    let min_before = archive_min(&before);
    for n in 1..=backups {
        let t = Instant::now();
        host.pgbackrest(full_backup(stanza)).await?;
        figures.push(format!("backup_{n}"), ms_since(t), Unit::Ms);
    }
    let after = host.backup_info(stanza).await?;
    let fulls = full_backups(&after);
    eq("full backups kept", fulls.len(), expect_full as usize)?;
    let min_after = archive_min(&after);
    if min_after <= min_before {
        return Err(Error::Check(format!("archive min did not advance with expiry: {min_before} -> {min_after}")));
    }
    let said = format!("{backups} full backups taken, {} kept ({}); archive min {min_before} -> {min_after}", fulls.len(), fulls.join(", "));
    Ok(Evidence::new(said).with(figures))
}

/// postgres's crontab; none at all reads as an empty one.
async fn crontab(host: &Host) -> Result<String> {
    let cmd = Cmd::new(["crontab", "-l", "-u", "postgres"]).any_status();
    let out = host.exec(cmd.clone()).await?;
    match out.status {
        0 => Ok(out.stdout),
        _ if out.stderr.contains("no crontab for") => Ok(String::new()),
        _ => Err(host.failure(&cmd, &out, None).await),
    }
}

/// `postgres`'s crontab on `host` holds `line` (the nightly backup).
pub async fn cron_line(host: &Host, line: &str) -> Result<Evidence> {
    let tab = crontab(host).await?;
    if tab.lines().any(|l| l.trim() == line.trim()) {
        Ok(format!("postgres crontab on {} holds `{line}`", host.name).into())
    } else {
        Err(Error::Check(format!("postgres crontab lacks `{line}`; it holds:\n{tab}")))
    }
}

/// The crontab's own backup line for `stanza`, its schedule moved to every
/// minute and its command left as it is, makes a new full backup; the
/// crontab is put back after. A crontab with no line that backs up the
/// stanza fails at once.
pub async fn cron_fires(host: &Host, stanza: &str) -> Result<Evidence> {
    let saved = crontab(host).await?;
    let ours = backup_lines(&saved, stanza);
    if ours.is_empty() {
        return Err(Error::Check(format!(
            "no line of postgres's crontab on {} backs up stanza {stanza} in full (`pgbackrest ... --stanza={stanza} --type=full ... backup`); it holds:\n{saved}",
            host.name
        )));
    }
    let before = full_backups(&host.backup_info(stanza).await?);
    let every_minute: String = ours.iter().map(|(_, command)| format!("* * * * * {command}\n")).collect();
    let install = Cmd::new(["crontab", "-u", "postgres", "-"]).stdin(format!("{saved}{every_minute}"));
    host.exec(install.display("crontab -u postgres - (+ its own backup line, every minute)")).await?;
    let t = Instant::now();
    // A minute boundary, then the backup itself.
    let seen = poll_until("cron to run the crontab's backup line", "a new full backup in pgbackrest info", Deadline::standard(), || async {
        let now = full_backups(&host.backup_info(stanza).await?);
        Ok(match now.iter().find(|l| !before.contains(l)) {
            Some(l) => Probe::Ready(l.clone()),
            None => Probe::NotYet(format!("{} full backups", now.len())),
        })
    })
    .await;
    host.exec(Cmd::new(["crontab", "-u", "postgres", "-"]).stdin(saved.clone()).display("crontab -u postgres - (restore the original)")).await?;
    let label = seen?;
    let mut figures = Figures::default();
    figures.push("cron_wait", ms_since(t), Unit::Ms);
    Ok(Evidence::new(format!("cron ran the crontab's own line `{}` (every minute for the check): new full backup {label}", ours[0].0)).with(figures))
}

/// The crontab's lines that run a full pgBackRest backup of `stanza`
/// (what the check waits for): each line, and its command without the
/// five schedule fields.
fn backup_lines<'a>(tab: &'a str, stanza: &str) -> Vec<(&'a str, String)> {
    let stanza_opt = format!("--stanza={stanza}");
    tab.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let command = fields.get(5..)?.join(" ");
            let words: Vec<&str> = command.split_whitespace().collect();
            let runs = words.iter().any(|w| w.ends_with("pgbackrest"))
                && words.contains(&"backup")
                && words.contains(&stanza_opt.as_str())
                && words.contains(&"--type=full");
            runs.then_some((l, command))
        })
        .collect()
}

/// `pgbackrest check` (archiving and configuration) and `verify` (the
/// repository's contents) succeed for `stanza` from `host`. verify's exit
/// status is not enough: since 2.45 it exits 0 with `status: error` when a
/// file's checksum is wrong, so its report is read as well.
pub async fn check_and_verify(host: &Host, stanza: &str) -> Result<Evidence> {
    host.pgbackrest(Br::new(BrCommand::Check).stanza(stanza)).await?;
    // Its findings are INFO lines: shown whatever the scenario's console level.
    let v = match host.pgbackrest(Br::new(BrCommand::Verify).stanza(stanza).opt("log-level-console", "info")).await {
        Ok(v) => v.combined(),
        Err(e) => return Err(Error::Check(format!("pgbackrest verify found the repository damaged (it failed): {e}"))),
    };
    if let Some(bad) = verify_problems(&v) {
        return Err(Error::Check(format!("pgbackrest verify found the repository damaged: {bad}\n{v}")));
    }
    Ok(format!("pgbackrest check and verify succeed for stanza {stanza}; verify found no invalid file").into())
}

/// What a `pgbackrest verify` report says is wrong, if anything: an error
/// line, a status other than ok/valid, or a count of bad files above zero.
fn verify_problems(report: &str) -> Option<String> {
    let counts = regex::Regex::new(r"(missing|checksum invalid|size invalid|other): [1-9]").expect("regex");
    report
        .lines()
        .map(str::trim)
        .find(|l| l.contains("ERROR") || l.contains("status: error") || l.contains("status: invalid") || counts.is_match(l) || l.contains("invalid checksum"))
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::backup_lines;

    #[test]
    fn a_verify_report_with_a_bad_file_is_read_as_damage() {
        use super::verify_problems;
        let bad_245 = "INFO: stanza: demo\n    status: error\n      backup: 1F, status: invalid, total files checked: 965, total valid files: 964\n        checksum invalid: 1\nINFO: verify command end: completed successfully";
        assert_eq!(verify_problems(bad_245).as_deref(), Some("status: error"));
        let bad_233 = "backup: 1F, status: invalid, total files checked: 934\n missing: 0, checksum invalid: 0, size invalid: 0, other: 1";
        assert!(verify_problems(bad_233).is_some());
        let good = "INFO: stanza: demo\n    status: ok\n  archiveId: 15-1, total WAL checked: 2, total valid WAL: 2\n    missing: 0, checksum invalid: 0, size invalid: 0, other: 0";
        assert_eq!(verify_problems(good), None);
    }

    #[test]
    fn a_backup_line_is_found_by_its_stanza_and_keeps_its_command() {
        let tab = "# m h dom mon dow command\n0 23 * * * pgbackrest --stanza=demo --type=full backup\n0 1 * * * pgbackrest --stanza=other backup\n";
        assert_eq!(
            backup_lines(tab, "demo"),
            vec![("0 23 * * * pgbackrest --stanza=demo --type=full backup", "pgbackrest --stanza=demo --type=full backup".to_string())]
        );
        assert!(backup_lines(tab, "dem").is_empty(), "a prefix of the stanza is another stanza");
        assert!(backup_lines("0 23 * * * pgbackrest --stanza=demo check\n", "demo").is_empty(), "not a backup");
        assert!(backup_lines("0 1 * * * pgbackrest --stanza=demo --type=diff backup\n", "demo").is_empty(), "not a full one");
    }
}
