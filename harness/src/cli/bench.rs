//! `pglab bench --parallel N`: how cost grows with labs. N labs of one
//! scenario at once, each a `pglab run` process of its own (as N CI jobs on
//! one runner would be), measured from outside: wall time, each run's time,
//! peak memory per lab, failures, and whether names and subnets collided.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::out;
use crate::engine::{self, image::HostImage};
use crate::error::{Error, Result};
use crate::lab::inventory;
use crate::scenario::Scenario;

/// One batch: `labs` runs started together.
#[derive(Debug, Serialize)]
pub(super) struct Batch {
    pub labs: usize,
    pub wall_s: f64,
    /// Each run's own total, as its report says.
    pub run_s: Vec<f64>,
    /// Highest memory a lab's containers used together, per lab.
    pub peak_mib: Vec<f64>,
    /// Runs that failed, with the first line of what they said.
    pub failures: Vec<String>,
    pub distinct_labs: usize,
    pub distinct_subnets: usize,
}

pub(super) async fn parallel(scenario: &Path, sizes: &[usize], json: Option<&Path>) -> Result<()> {
    let scn = Scenario::load(scenario)?;
    let docker = engine::connect().await?;
    // Built before the batches, so no batch races its own image build.
    HostImage::for_platform(scn.platform).ensure(&docker, false, &crate::progress::PhaseBar::hidden()).await?;
    let mut batches = Vec::new();
    for &n in sizes {
        let batch = batch(&docker, scenario, n).await?;
        out(row(&batch, batches.first()));
        batches.push(batch);
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&batches).expect("serializable")).map_err(|e| Error::io("writing bench json", e))?;
    }
    Ok(())
}

async fn batch(docker: &bollard::Docker, scenario: &Path, n: usize) -> Result<Batch> {
    let exe = std::env::current_exe().map_err(|e| Error::io("finding pglab's own binary", e))?;
    let reports = tempfile::tempdir().map_err(|e| Error::io("a report dir", e))?;
    let peaks: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let sampler = {
        let (docker, peaks) = (docker.clone(), peaks.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(now) = inventory::memory_by_lab(&docker).await {
                    let mut p = peaks.lock().expect("peaks lock");
                    for (lab, bytes) in now {
                        let e = p.entry(lab).or_default();
                        *e = (*e).max(bytes);
                    }
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let t = Instant::now();
    let runs = futures_util::future::join_all(
        (0..n).map(|_| tokio::process::Command::new(&exe).arg("run").arg(scenario).args(["-q", "--json", "--transcript"]).arg(reports.path()).output()),
    )
    .await;
    let wall_s = t.elapsed().as_secs_f64();
    sampler.abort();
    let peaks = peaks.lock().expect("peaks lock").clone();
    let mut b = Batch { labs: n, wall_s, run_s: Vec::new(), peak_mib: Vec::new(), failures: Vec::new(), distinct_labs: 0, distinct_subnets: 0 };
    let (mut labs, mut subnets) = (BTreeSet::new(), BTreeSet::new());
    for r in runs {
        let r = r.map_err(|e| Error::io("running pglab", e))?;
        let report: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap_or_default();
        if !r.status.success() || report["passed"] != true {
            let said = String::from_utf8_lossy(&r.stderr);
            b.failures.push(crate::error::tail_lines(said.trim(), 6).replace('\n', " / "));
        }
        let Some(lab) = report["lab"].as_str() else { continue };
        labs.insert(lab.to_string());
        b.run_s.push(report["total_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0);
        b.peak_mib.push(peaks.get(lab).copied().unwrap_or(0) as f64 / 1048576.0);
        // A lab's hosts share its network: the first three octets name it.
        if let Some(ip) = report["hosts"][0]["ip"].as_str() {
            subnets.insert(ip.rsplit_once('.').map_or(ip, |(net, _)| net).to_string());
        }
    }
    (b.distinct_labs, b.distinct_subnets) = (labs.len(), subnets.len());
    Ok(b)
}

fn row(b: &Batch, one: Option<&Batch>) -> String {
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let mut s = format!(
        "{} lab(s) at once: wall {:.1} s, runs {:.1}-{:.1} s, peak memory per lab {:.0}-{:.0} MiB, {} failed, {} lab ids, {} subnets",
        b.labs,
        b.wall_s,
        b.run_s.iter().copied().fold(f64::NAN, f64::min),
        max(&b.run_s),
        b.peak_mib.iter().copied().fold(f64::NAN, f64::min),
        max(&b.peak_mib),
        b.failures.len(),
        b.distinct_labs,
        b.distinct_subnets
    );
    if let Some(one) = one {
        let _ = write!(s, "; {:.2}x the wall time of {}", b.wall_s / one.wall_s, one.labs);
    }
    for f in &b.failures {
        let _ = write!(s, "\n    failed: {f}");
    }
    s
}
