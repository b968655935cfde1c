//! Built-in checks: each proves one outcome on the running lab through
//! tokio-postgres (and pgBackRest's own JSON), and returns a named outcome.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::exec::Cmd;
use crate::host::Host;
use crate::lab::Hosts;
use crate::scenario::CheckDecl;
use crate::wait::{poll_every, poll_until, Probe};

/// The result of one check, as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    /// Measurements (ms, counts) for reports and benchmarks.
    pub metrics: BTreeMap<String, f64>,
    /// When it started, from the start of the steps phase (a check may run
    /// beside steps); the runner sets it.
    #[serde(rename = "at_ms", with = "crate::report::millis")]
    pub at: Duration,
    #[serde(rename = "elapsed_ms", with = "crate::report::millis")]
    pub elapsed: Duration,
}

/// Named equality, the building block of checks.
pub fn eq<T: PartialEq + std::fmt::Debug>(name: &str, got: T, want: T) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Check(format!("{name}: got {got:?}, expected {want:?}")))
    }
}

pub async fn run<L: Hosts>(lab: &L, decl: &CheckDecl) -> CheckOutcome {
    let start = Instant::now();
    let mut metrics = BTreeMap::new();
    let result = match decl {
        CheckDecl::StandbyData { primary, standby } => standby_data(lab.host(primary), lab.host(standby)).await,
        CheckDecl::Streaming { primary, standby, inserts, deadline_s } => {
            streaming(lab.host(primary), lab.host(standby), *inserts, Duration::from_secs(*deadline_s), &mut metrics).await
        }
        CheckDecl::NotStreaming { standby, log } => not_streaming(lab.host(standby), log).await,
        CheckDecl::Pitr { primary, target_host, like, stanza, targets } => {
            let like = like.as_deref().filter(|l| l != target_host).map(|l| lab.host(l)).transpose();
            pitr(lab.host(primary), lab.host(target_host), like, stanza, targets, &mut metrics).await
        }
        CheckDecl::Retention { host, stanza, backups, expect_full } => {
            retention(lab.host(host), stanza, *backups, *expect_full, &mut metrics).await
        }
        CheckDecl::CronLine { host, line } => cron_line(lab.host(host), line).await,
        CheckDecl::CronFires { host, stanza } => cron_fires(lab.host(host), stanza, &mut metrics).await,
        CheckDecl::Pgbackrest { host, stanza } => pgbackrest_check_verify(lab.host(host), stanza).await,
    };
    let (passed, detail) = match result {
        Ok(d) => (true, d),
        Err(e) => (false, lab.transcript().redact(&e.to_string())),
    };
    CheckOutcome { name: decl.name().to_string(), passed, detail, metrics, at: Duration::ZERO, elapsed: start.elapsed() }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Waits until `standby` has replayed everything `primary` had written.
pub async fn wait_for_replay_catchup(primary: &Host, standby: &Host, timeout: Duration) -> Result<()> {
    let lsn = primary.safe_psql("SELECT pg_current_wal_lsn()").await?;
    standby
        .poll_query_until(&format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"), "t", timeout)
        .await
        .map(|_| ())
}

async fn standby_data(primary: Result<&Host>, standby: Result<&Host>) -> Result<String> {
    let (primary, standby) = (primary?, standby?);
    eq("pg_is_in_recovery() on the standby", standby.safe_psql("SELECT pg_is_in_recovery()").await?.as_str(), "t")?;
    wait_for_replay_catchup(primary, standby, Duration::from_secs(30)).await?;
    let tables = primary
        .safe_psql(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1",
        )
        .await?;
    let tables: Vec<&str> = tables.lines().filter(|l| !l.is_empty()).collect();
    if tables.is_empty() {
        return Err(Error::Check("the primary has no user table to compare".into()));
    }
    let mut summary = Vec::new();
    for t in &tables {
        // Order-independent: the checksum sorts the row hashes first.
        let q = format!("SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '-') FROM (SELECT md5(x::text) h FROM {t} x) s");
        let (p, s) = (primary.safe_psql(&q).await?, standby.safe_psql(&q).await?);
        eq(&format!("rows|checksum of {t}"), s.as_str(), p.as_str())?;
        summary.push(format!("{t}: {} rows", p.split('|').next().unwrap_or("?")));
    }
    Ok(format!("standby in recovery; {} table(s) equal: {}", tables.len(), summary.join(", ")))
}

async fn streaming(
    primary: Result<&Host>,
    standby: Result<&Host>,
    inserts: u32,
    deadline: Duration,
    metrics: &mut BTreeMap<String, f64>,
) -> Result<String> {
    let (primary, standby) = (primary?, standby?);
    standby.poll_query_until("SELECT status FROM pg_stat_wal_receiver", "streaming", Duration::from_secs(30)).await?;
    let senders = primary
        .safe_psql(&format!("SELECT count(*) FROM pg_stat_replication WHERE client_addr = '{}' AND state = 'streaming'", standby.ip))
        .await?;
    eq(&format!("walsenders streaming to {} on the primary", standby.ip), senders.as_str(), "1")?;

    primary.safe_psql("DROP TABLE IF EXISTS pglab_stream; CREATE TABLE pglab_stream (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())").await?;
    standby.poll_query_until("SELECT to_regclass('pglab_stream') IS NOT NULL", "t", deadline).await?;
    let mut lat = Vec::with_capacity(inserts as usize);
    for i in 1..=inserts {
        let t0 = Instant::now();
        primary.safe_psql(&format!("INSERT INTO pglab_stream (id) VALUES ({i})")).await?;
        let probe = format!("SELECT count(*) FROM pglab_stream WHERE id = {i}");
        poll_every(&format!("insert {i} to reach {}", standby.name), "1 row", deadline, Duration::from_millis(1), || async {
            let n = standby.safe_psql(&probe).await?;
            Ok(if n == "1" { Probe::Ready(()) } else { Probe::NotYet(format!("{n} rows")) })
        })
        .await?;
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    drop_and_checkpoint(primary, "pglab_stream").await?;
    lat.sort_by(|a, b| a.total_cmp(b));
    let (p50, p95, max) = (percentile(&lat, 50.0), percentile(&lat, 95.0), *lat.last().unwrap_or(&f64::NAN));
    metrics.insert("inserts".into(), inserts as f64);
    metrics.insert("latency_p50_ms".into(), p50);
    metrics.insert("latency_p95_ms".into(), p95);
    metrics.insert("latency_max_ms".into(), max);
    Ok(format!("streaming; {inserts} inserts each visible on {} without a backup: p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms", standby.name))
}

async fn not_streaming(standby: Result<&Host>, log: &str) -> Result<String> {
    let standby = standby?;
    let line = standby.wait_for_log(log, Duration::from_secs(30)).await?;
    eq("WAL receivers on the standby", standby.safe_psql("SELECT count(*) FROM pg_stat_wal_receiver").await?.as_str(), "0")?;
    Ok(format!("no WAL receiver on {}; its log says: {}", standby.name, line.trim()))
}

/// Leaves the primary as a check found it: its table gone and no dirty
/// pages, so the scenario's next backup (a spread checkpoint: about 100 ms
/// per dirty page here) is not slowed by the check's writes.
async fn drop_and_checkpoint(primary: &Host, table: &str) -> Result<()> {
    primary.safe_psql(&format!("DROP TABLE {table}")).await?;
    primary.safe_psql("CHECKPOINT").await?;
    Ok(())
}

/// A point to recover to, recorded between batches like 003_recovery_targets.
struct Target {
    kind: String,
    value: String,
    expected_ids: String,
}

/// Gives `target` pgBackRest and the client setup of `like` (its
/// pgbackrest.conf, postgres' SSH keys and known hosts), so a spare host can
/// restore from the same repository. Private keys stay out of the transcript.
async fn clone_client_setup(like: &Host, target: &Host) -> Result<()> {
    target.exec(Cmd::shell("command -v pgbackrest >/dev/null || (apt-get update -q && apt-get install -y -q pgbackrest)")).await?;
    let t = Instant::now();
    let paths = "etc/pgbackrest.conf var/lib/postgresql/.ssh";
    let packed = like.probe(&Cmd::shell(format!("tar -C / -cf - {paths} | base64 -w0"))).await?;
    if !packed.success() {
        return Err(Error::Check(format!("cannot read the pgBackRest client setup of {}: {}", like.name, packed.stderr.trim())));
    }
    let unpacked = target.probe(&Cmd::shell("base64 -d | tar -C / -xpf -").stdin(packed.stdout)).await?;
    if !unpacked.success() {
        return Err(Error::Check(format!("cannot install the pgBackRest client setup on {}: {}", target.name, unpacked.stderr.trim())));
    }
    target.transcript().note(
        &target.name,
        "root",
        format!("copy {}:/etc/pgbackrest.conf and ~postgres/.ssh -> {}", like.name, target.name),
        "the restore target gets the same pgBackRest client setup (contents not shown: private key)".into(),
        t.elapsed(),
    );
    Ok(())
}

/// The newest backup set, so restores stay on it while later backups run.
async fn latest_backup(h: &Host, stanza: &str) -> Result<String> {
    let info = backup_info(h, stanza).await?;
    info["backup"]
        .as_array()
        .and_then(|b| b.last())
        .and_then(|b| b["label"].as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::Check(format!("no backup of stanza {stanza} to restore from")))
}

async fn pitr(
    primary: Result<&Host>,
    target: Result<&Host>,
    like: Result<Option<&Host>>,
    stanza: &str,
    kinds: &[String],
    metrics: &mut BTreeMap<String, f64>,
) -> Result<String> {
    let (primary, host) = (primary?, target?);
    if let Some(like) = like? {
        clone_client_setup(like, host).await?;
    }
    // Chosen before the targets exist: every target lies after its end.
    let set = latest_backup(host, stanza).await?;
    let batch = 10;
    primary.safe_psql("DROP TABLE IF EXISTS pglab_pitr; CREATE TABLE pglab_pitr (id int PRIMARY KEY, batch int)").await?;
    let primary_tli = timeline(primary).await?;
    let mut targets = Vec::new();
    let mut next_id = 1;
    for (i, kind) in kinds.iter().enumerate() {
        let ids = (next_id, next_id + batch - 1);
        next_id += batch;
        let xid = primary
            .safe_psql(&format!(
                "BEGIN; INSERT INTO pglab_pitr SELECT g, {i} FROM generate_series({}, {}) g; SELECT pg_current_xact_id(); COMMIT;",
                ids.0, ids.1
            ))
            .await?;
        let value = match kind.as_str() {
            "name" => {
                let name = format!("pglab_pitr_{i}");
                primary.safe_psql(&format!("SELECT pg_create_restore_point('{name}')")).await?;
                name
            }
            "time" => primary.safe_psql("SELECT clock_timestamp()").await?,
            "xid" => xid,
            "lsn" => primary.safe_psql("SELECT pg_current_wal_lsn()").await?,
            other => return Err(Error::Check(format!("unknown PITR target kind `{other}` (name, time, xid, lsn)"))),
        };
        let expected_ids = primary.safe_psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM pglab_pitr").await?;
        targets.push(Target { kind: kind.clone(), value, expected_ids });
    }
    // A batch after every target, then the disaster: none of it may come back.
    primary.safe_psql(&format!("INSERT INTO pglab_pitr SELECT g, -1 FROM generate_series({next_id}, {}) g", next_id + batch - 1)).await?;
    primary.safe_psql("DELETE FROM pglab_pitr").await?;
    let seg = primary.safe_psql("SELECT pg_walfile_name(pg_switch_wal())").await?;
    primary
        .poll_query_until(&format!("SELECT coalesce(last_archived_wal >= '{seg}', false) FROM pg_stat_archiver"), "t", Duration::from_secs(60))
        .await?;
    // Done with the primary: the restores below only read the repository.
    drop_and_checkpoint(primary, "pglab_pitr").await?;

    let mut lines = Vec::new();
    for t in &targets {
        let started = Instant::now();
        host.sh("root", "systemctl stop postgresql").await?;
        host.wait_for_pg_down(Duration::from_secs(60)).await?;
        host.exec(
            Cmd::new([
                "pgbackrest".to_string(),
                format!("--stanza={stanza}"),
                "--delta".into(),
                format!("--set={set}"),
                format!("--type={}", t.kind),
                format!("--target={}", t.value),
                "--target-action=promote".into(),
                "restore".into(),
            ])
            .user("postgres"),
        )
        .await?;
        // --no-block: the harness polls for promotion itself instead of
        // waiting out pg_ctlcluster's settle loop (0.5 s probes, ~2 s).
        host.sh("root", "systemctl start --no-block postgresql").await?;
        let promoted = async {
            host.wait_for_pg_up(Duration::from_secs(60)).await?;
            host.poll_query_until("SELECT pg_is_in_recovery()", "f", Duration::from_secs(60)).await
        }
        .await;
        if let Err(e) = promoted {
            return Err(Error::Check(format!("{} target {}: not promoted: {e}\n{}", t.kind, t.value, host.relevant_logs().await)));
        }
        let restore_ms = started.elapsed().as_secs_f64() * 1000.0;
        let got = host.safe_psql("SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM pglab_pitr").await?;
        eq(&format!("rows after restore to {} {}", t.kind, t.value), got.as_str(), t.expected_ids.as_str())?;
        let tli = timeline(host).await?;
        if tli <= primary_tli {
            return Err(Error::Check(format!("{} target: timeline {tli} is not newer than the primary's {primary_tli}", t.kind)));
        }
        metrics.insert(format!("restore_{}_ms", t.kind), restore_ms);
        let rows = got.split(',').filter(|s| !s.is_empty()).count();
        lines.push(format!("{}: {rows} rows, timeline {tli}, {:.1}s", t.kind, restore_ms / 1000.0));
    }
    Ok(format!("restored {set} into {}: {}", host.name, lines.join("; ")))
}

async fn timeline(h: &Host) -> Result<u32> {
    let name = h.safe_psql("SELECT pg_walfile_name(pg_current_wal_lsn())").await?;
    u32::from_str_radix(&name[..8.min(name.len())], 16).map_err(|e| Error::Check(format!("timeline from {name}: {e}")))
}

/// The stanza's entry of `pgbackrest info --output=json`.
pub async fn backup_info(h: &Host, stanza: &str) -> Result<serde_json::Value> {
    let out = h.exec(Cmd::new(["pgbackrest", &format!("--stanza={stanza}"), "--output=json", "info"]).user("postgres")).await?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| Error::Check(format!("pgbackrest info is not JSON: {e}")))?;
    v.as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == stanza))
        .cloned()
        .ok_or_else(|| Error::Check(format!("no stanza {stanza} in pgbackrest info")))
}

pub fn full_backups(info: &serde_json::Value) -> Vec<String> {
    info["backup"]
        .as_array()
        .map(|b| b.iter().filter(|x| x["type"] == "full").filter_map(|x| x["label"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

async fn retention(host: Result<&Host>, stanza: &str, backups: u32, expect_full: u32, metrics: &mut BTreeMap<String, f64>) -> Result<String> {
    let host = host?;
    let before = backup_info(host, stanza).await?;
    let archive_min = |i: &serde_json::Value| i["archive"][0]["min"].as_str().unwrap_or("").to_string();
    let min_before = archive_min(&before);
    for n in 1..=backups {
        let t = Instant::now();
        host.sh("postgres", &format!("pgbackrest --stanza={stanza} --type=full backup")).await?;
        metrics.insert(format!("backup_{n}_ms"), t.elapsed().as_secs_f64() * 1000.0);
    }
    let after = backup_info(host, stanza).await?;
    let fulls = full_backups(&after);
    eq("full backups kept", fulls.len(), expect_full as usize)?;
    let min_after = archive_min(&after);
    if min_after <= min_before {
        return Err(Error::Check(format!("archive min did not advance with expiry: {min_before} -> {min_after}")));
    }
    Ok(format!("{backups} full backups taken, {} kept ({}); archive min {min_before} -> {min_after}", fulls.len(), fulls.join(", ")))
}

async fn cron_line(host: Result<&Host>, line: &str) -> Result<String> {
    let host = host?;
    let tab = host.exec(Cmd::new(["crontab", "-l", "-u", "postgres"])).await?;
    if tab.stdout.lines().any(|l| l.trim() == line.trim()) {
        Ok(format!("postgres crontab on {} holds `{line}`", host.name))
    } else {
        Err(Error::Check(format!("postgres crontab lacks `{line}`; it holds:\n{}", tab.stdout)))
    }
}

async fn cron_fires(host: Result<&Host>, stanza: &str, metrics: &mut BTreeMap<String, f64>) -> Result<String> {
    let host = host?;
    let before = full_backups(&backup_info(host, stanza).await?);
    let saved = host.exec(Cmd::new(["crontab", "-l", "-u", "postgres"])).await?.stdout;
    let every_minute = format!("* * * * * pgbackrest --stanza={stanza} --type=full backup\n");
    host.exec(Cmd::new(["crontab", "-u", "postgres", "-"]).stdin(format!("{saved}{every_minute}")).display("crontab -u postgres - (+ the backup line, every minute)")).await?;
    let t = Instant::now();
    let seen = poll_until("cron to run a backup", "a new full backup in pgbackrest info", Duration::from_secs(150), || async {
        let now = full_backups(&backup_info(host, stanza).await?);
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

async fn pgbackrest_check_verify(host: Result<&Host>, stanza: &str) -> Result<String> {
    let host = host?;
    host.sh("postgres", &format!("pgbackrest --stanza={stanza} check")).await?;
    let v = host.sh("postgres", &format!("pgbackrest --stanza={stanza} verify")).await?;
    if v.combined().contains("ERROR") {
        return Err(Error::Check(format!("pgbackrest verify reported errors:\n{}", v.combined())));
    }
    Ok(format!("pgbackrest check and verify succeed for stanza {stanza}"))
}
