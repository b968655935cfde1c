//! `pglab checkpoint list | rm | gc`.

use super::out;
use crate::engine;
use crate::error::{Error, Result};
use crate::run::checkpoint;

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn when(unix: u64) -> String {
    let ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).saturating_sub(unix);
    match ago {
        _ if unix == 0 => "-".into(),
        0..=119 => format!("{ago} s ago"),
        120..=7199 => format!("{} min ago", ago / 60),
        _ => format!("{} h ago", ago / 3600),
    }
}

pub(super) async fn list(json: bool) -> Result<()> {
    let all = checkpoint::list(&engine::connect().await?).await?;
    if json {
        out(serde_json::to_string_pretty(&all).expect("serializable"));
        return Ok(());
    }
    if all.is_empty() {
        out("no checkpoints (`pglab run X --until STEP --checkpoint` saves one)");
        return Ok(());
    }
    out(format_args!("{:<24}  {:<22} {:<16} {:<10} {:>10}  {:<12} {}", "KEY", "SCENARIO", "AFTER", "PLATFORM", "SIZE", "SAVED", "USED"));
    for c in &all {
        let scenario = if c.orphaned { "(orphaned: gc removes it)".to_string() } else { c.scenario.clone() };
        out(format_args!("{:<24}  {:<22} {:<16} {:<10} {:>10}  {:<12} {}", c.key, scenario, c.step, c.platform, mib(c.bytes), when(c.created), when(c.used)));
    }
    out(format_args!("{} checkpoint(s), {}", all.len(), mib(all.iter().map(|c| c.bytes).sum())));
    Ok(())
}

pub(super) async fn rm(keys: &[String], all: bool) -> Result<()> {
    let docker = engine::connect().await?;
    let known = checkpoint::list(&docker).await?;
    let keys: Vec<String> = if all { known.iter().map(|c| c.key.clone()).collect() } else { keys.to_vec() };
    for k in &keys {
        if !known.iter().any(|c| &c.key == k) {
            return Err(Error::Usage(format!("no checkpoint {k} (`pglab checkpoint list` shows them)")));
        }
    }
    for k in &keys {
        checkpoint::remove(&docker, k).await?;
    }
    out(format_args!("removed {} checkpoint(s)", keys.len()));
    Ok(())
}

pub(super) async fn gc(max_mib: u64) -> Result<()> {
    let cap = i64::try_from(max_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
    let removed = checkpoint::gc(&engine::connect().await?, cap).await?;
    out(format_args!("checkpoint gc: removed {} (kept at most {max_mib} MiB)", removed.len()));
    Ok(())
}
