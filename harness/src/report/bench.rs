//! Medians over several runs of one scenario, for `pglab bench`.

use std::fmt::Write;

use crate::outcome::RunReport;

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Milliseconds, or `-` where a run had no figure.
fn cell(ms: f64) -> String {
    if ms.is_nan() {
        "-".into()
    } else {
        format!("{ms:.0} ms")
    }
}

/// Per-step medians over several runs of one scenario, and the medians of
/// every check metric (streaming latency percentiles, restore times).
pub(crate) fn bench_table(runs: &[RunReport]) -> String {
    let mut out = String::new();
    let Some(first) = runs.first() else { return "no runs".into() };
    let _ = writeln!(out, "{}: {} runs on {}", first.scenario, runs.len(), first.image);
    let col = |f: &dyn Fn(&RunReport) -> f64| median(runs.iter().map(f).collect());
    let _ = writeln!(out, "  {:<28} {:>9}", "lab up", format!("{:.0} ms", col(&|r| r.lab_timings.total.as_secs_f64() * 1000.0)));
    for phase in first.phases.0.keys() {
        let m = col(&|r| r.phases.0.get(phase).map(|v| v.as_secs_f64() * 1000.0).unwrap_or(f64::NAN));
        let _ = writeln!(out, "  {:<28} {:>9}", format!("phase {}", phase.name()), format!("{m:.0} ms"));
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let _ = writeln!(out, "  {:<28} {:>9} {:>9} {:>9}", "step", "wall", "in host", "pglab");
    for (i, s) in first.steps.iter().enumerate() {
        let step = |f: &dyn Fn(&crate::outcome::StepResult) -> f64| col(&|r| r.steps.get(i).map(f).unwrap_or(f64::NAN));
        let (wall, host) = (step(&|x| ms(x.elapsed)), step(&|x| x.in_host.map_or(f64::NAN, ms)));
        let own = step(&|x| ms(x.own_time()));
        let _ = writeln!(out, "  {:<28} {:>9} {:>9} {:>9}", s.id, cell(wall), cell(host), cell(own));
    }
    let own = col(&|r| r.steps.iter().map(|s| ms(s.own_time())).sum());
    let wall = col(&|r| r.steps.iter().map(|s| ms(s.elapsed)).sum());
    let _ = writeln!(out, "  {:<28} {:>9} of {:.0} ms of steps ({:.0} %)", "pglab's own time", format!("{own:.0} ms"), wall, 100.0 * own / wall);
    for (i, c) in first.checks.iter().enumerate() {
        let m = col(&|r| r.checks.get(i).map(|x| x.elapsed.as_secs_f64() * 1000.0).unwrap_or(f64::NAN));
        let _ = writeln!(out, "  check {:<22} {:>9}", c.name, format!("{m:.0} ms"));
        for f in c.figures.iter() {
            let v = col(&|r| r.checks.get(i).and_then(|x| x.figures.get(&f.name)).unwrap_or(f64::NAN));
            let _ = writeln!(out, "      {:<30} {v:>9.1} {}", f.name, f.unit.symbol());
        }
    }
    let _ = writeln!(out, "  {:<28} {:>9}", "total", format!("{:.1} s", col(&|r| r.total.as_secs_f64())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step's own time is its wall time less what ran in hosts (none
    /// recorded: all of it), over the runs' medians.
    #[test]
    fn own_time_is_wall_less_in_host() {
        let mut one = crate::report::tests::report();
        one.steps[0].in_host = Some(std::time::Duration::from_millis(2400));
        let mut two = one.clone();
        two.steps[0].in_host = Some(std::time::Duration::from_millis(3000));
        assert_eq!(two.steps[0].own_time(), std::time::Duration::ZERO, "more in host than wall: none of its own");
        let table = bench_table(&[one.clone(), two, one]);
        assert!(table.contains("1-a                            2500 ms   2400 ms    100 ms"), "{table}");
        assert!(table.contains("2-b                            2500 ms         -   2500 ms"), "{table}");
        assert!(table.contains("pglab's own time               2600 ms of 5000 ms of steps (52 %)"), "{table}");
    }

    #[test]
    fn median_takes_the_middle_run() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert!(median(Vec::new()).is_nan());
    }
}
