//! Backups: retention, the nightly cron line (and that it fires), and
//! pgBackRest's own check and verify.

use std::time::Instant;

use super::{eq, Metrics};
use crate::error::{Error, Result};
use crate::lab::{Br, BrCommand, Cmd, Host};
use crate::time::{poll_until, Deadline, Probe};

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
pub async fn retention(host: &Host, stanza: &str, backups: u32, expect_full: u32, metrics: &mut Metrics) -> Result<String> {
    let before = host.backup_info(stanza).await?;
    let archive_min = |i: &serde_json::Value| i["archive"][0]["min"].as_str().unwrap_or("").to_string();
    let min_before = archive_min(&before);
    for n in 1..=backups {
        let t = Instant::now();
        host.pgbackrest(full_backup(stanza)).await?;
        metrics.insert(format!("backup_{n}_ms"), t.elapsed().as_secs_f64() * 1000.0);
    }
    let after = host.backup_info(stanza).await?;
    let fulls = full_backups(&after);
    eq("full backups kept", fulls.len(), expect_full as usize)?;
    let min_after = archive_min(&after);
    if min_after <= min_before {
        return Err(Error::Check(format!("archive min did not advance with expiry: {min_before} -> {min_after}")));
    }
    Ok(format!("{backups} full backups taken, {} kept ({}); archive min {min_before} -> {min_after}", fulls.len(), fulls.join(", ")))
}

async fn crontab(host: &Host) -> Result<String> {
    Ok(host.exec(Cmd::new(["crontab", "-l", "-u", "postgres"])).await?.stdout)
}

/// `postgres`'s crontab on `host` holds `line` (the nightly backup).
pub async fn cron_line(host: &Host, line: &str) -> Result<String> {
    let tab = crontab(host).await?;
    if tab.lines().any(|l| l.trim() == line.trim()) {
        Ok(format!("postgres crontab on {} holds `{line}`", host.name))
    } else {
        Err(Error::Check(format!("postgres crontab lacks `{line}`; it holds:\n{tab}")))
    }
}

/// Adds the backup line for every minute, waits for the backup it makes,
/// and puts the crontab back.
pub async fn cron_fires(host: &Host, stanza: &str, metrics: &mut Metrics) -> Result<String> {
    let before = full_backups(&host.backup_info(stanza).await?);
    let saved = crontab(host).await?;
    let every_minute = format!("* * * * * {}\n", full_backup(stanza).argv().join(" "));
    let install = Cmd::new(["crontab", "-u", "postgres", "-"]).stdin(format!("{saved}{every_minute}"));
    host.exec(install.display("crontab -u postgres - (+ the backup line, every minute)")).await?;
    let t = Instant::now();
    // A minute boundary, then the backup itself.
    let seen = poll_until("cron to run a backup", "a new full backup in pgbackrest info", Deadline::standard(), || async {
        let now = full_backups(&host.backup_info(stanza).await?);
        Ok(match now.iter().find(|l| !before.contains(l)) {
            Some(l) => Probe::Ready(l.clone()),
            None => Probe::NotYet(format!("{} full backups", now.len())),
        })
    })
    .await;
    host.exec(Cmd::new(["crontab", "-u", "postgres", "-"]).stdin(saved).display("crontab -u postgres - (restore the original)")).await?;
    let label = seen?;
    metrics.insert("cron_wait_ms".into(), t.elapsed().as_secs_f64() * 1000.0);
    Ok(format!("cron ran the backup command: new full backup {label}"))
}

/// `pgbackrest check` (archiving and configuration) and `verify` (the
/// repository's contents) succeed for `stanza` from `host`.
pub async fn check_and_verify(host: &Host, stanza: &str) -> Result<String> {
    host.pgbackrest(Br::new(BrCommand::Check).stanza(stanza)).await?;
    let v = host.pgbackrest(Br::new(BrCommand::Verify).stanza(stanza)).await?;
    if v.combined().contains("ERROR") {
        return Err(Error::Check(format!("pgbackrest verify reported errors:\n{}", v.combined())));
    }
    Ok(format!("pgbackrest check and verify succeed for stanza {stanza}"))
}
