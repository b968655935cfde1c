//! `pglab chaos`: draws, runs and shrinks; prints a line per try.

use super::{out, ChaosArgs};
use crate::chaos::{chaos as run_chaos, write_schedule, ChaosOptions};
use crate::error::{Error, Result};
use crate::scenario::Scenario;

pub(super) async fn chaos(a: ChaosArgs) -> Result<()> {
    let scn = Scenario::load(&crate::run::locate(&a.scenario)?)?;
    let opts = ChaosOptions {
        seed: a.seed,
        duration: a.duration,
        faults: a.faults,
        most: usize::from(a.most),
        shrink_runs: usize::from(a.shrink_runs),
        platform: a.platform,
        sets: a.sets,
        out: a.out,
        checkpoint: !a.no_checkpoint,
    };
    if a.dry_run {
        out(format_args!("wrote {}; run it with `pglab run` or drop --dry-run", write_schedule(&scn, &opts)?.display()));
        return Ok(());
    }
    let outcome = run_chaos(&scn, &opts, &mut |t| {
        let verdict = t.failed.as_deref().map_or("claims held".to_string(), |f| format!("FAILED: {f}"));
        out(format_args!("try {} ({} faults, {:.1} s): {verdict}", t.file.display(), t.faults, t.elapsed.as_secs_f64()));
    })
    .await?;
    match outcome.violation {
        None => {
            out(format_args!("seed {}: {}'s claims held ({} run)", a.seed, scn.name(), outcome.tries.len()));
            Ok(())
        }
        Some(v) => {
            out(format_args!(
                "seed {}: violation, {} fault(s) shrunk to {} in {} runs: {}\nreplay: pglab run {}",
                a.seed,
                v.faults_before,
                v.faults_after,
                outcome.tries.len(),
                v.what.lines().next().unwrap_or_default(),
                v.shrunk.display()
            ));
            if let Some(b) = &v.bundle {
                out(format_args!("bundle: {}", b.display()));
            }
            Err(Error::Violation(format!("{}: its claims failed under seed {}", scn.name(), a.seed)))
        }
    }
}
