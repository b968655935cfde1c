//! The run as a picture: one lane per host and one for the checks, each
//! step and check a bar from when it started to when it ended, faults in
//! red, and the time a fault was active shaded across its host's lane.
//! Drawn with plotters' SVG backend; rendering only, from a `RunReport`.

use std::time::Duration;

use plotters::prelude::*;

use crate::outcome::{RunReport, StepStatus};

const WIDTH: u32 = 960;
const LANE_PX: u32 = 34;

/// Steps that start a fault on their host, and those that end one.
const FAULTS: [&str; 4] = ["partition", "pause", "kill", "stop"];
const UNDO: [&str; 2] = ["heal", "resume"];

/// A window during which a fault was active on a host (lane index).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub lane: usize,
    pub from: f64,
    pub to: f64,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The lanes: every host of the report, then `checks`.
pub fn lanes(r: &RunReport) -> Vec<String> {
    r.hosts.iter().map(|h| h.name.clone()).chain(std::iter::once("checks".to_string())).collect()
}

/// Fault windows: from a fault step's start to the end of the next undoing
/// step on the same host, or to the end of the run.
pub fn windows(r: &RunReport) -> Vec<Window> {
    let lanes = lanes(r);
    let end = end_of(r);
    let mut out: Vec<Window> = Vec::new();
    for s in &r.steps {
        let Some(lane) = lanes.iter().position(|l| *l == s.host) else { continue };
        if FAULTS.contains(&s.action.as_str()) && !out.iter().any(|w| w.lane == lane && w.to >= end) {
            out.push(Window { lane, from: secs(s.at), to: end });
        } else if UNDO.contains(&s.action.as_str()) {
            if let Some(w) = out.iter_mut().rev().find(|w| w.lane == lane && w.to >= end) {
                w.to = secs(s.at + s.elapsed);
            }
        }
    }
    out
}

fn end_of(r: &RunReport) -> f64 {
    let steps = r.steps.iter().map(|s| secs(s.at + s.elapsed));
    let checks = r.checks.iter().map(|c| secs(c.at + c.elapsed));
    steps.chain(checks).fold(0.0, f64::max).max(1.0)
}

/// The timeline as SVG text.
pub fn timeline(r: &RunReport) -> String {
    let lanes = lanes(r);
    let height = 70 + LANE_PX * lanes.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        if draw(&root, r, &lanes).is_err() {
            return String::new();
        }
        let _ = root.present();
    }
    svg
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw<'a>(root: &Area<'a>, r: &RunReport, lanes: &[String]) -> Result<(), Box<dyn std::error::Error + 'a>> {
    root.fill(&WHITE)?;
    let end = end_of(r);
    let n = lanes.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{}: what ran when (red: faults, shaded while active; orange: load; grey: added; green: checks)", r.scenario), ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end * 1.02, -0.5..n - 0.5)?;
    // Lane i is centred on y = n - 1 - i, so the first lane is on top.
    let row = |lane: usize| n - lane as f64 - 1.0;
    let label = |y: &f64| match ((n - 1.0 - y.round()) as usize, (y - y.round()).abs() < 1e-6) {
        (i, true) if i < lanes.len() => lanes[i].clone(),
        _ => String::new(),
    };
    chart.configure_mesh().disable_y_mesh().y_labels(lanes.len()).y_label_formatter(&label).x_desc("seconds").draw()?;
    chart.draw_series(windows(r).into_iter().map(|w| Rectangle::new([(w.from, row(w.lane) - 0.5), (w.to, row(w.lane) + 0.5)], RED.mix(0.12).filled())))?;
    let bar = |from: f64, to: f64, lane: usize, color: RGBColor| {
        let y = row(lane);
        // A hair of white between bars that touch.
        Rectangle::new([(from, y - 0.3), ((to - end / 900.0).max(from + end / 600.0), y + 0.3)], color.filled())
    };
    chart.draw_series(r.steps.iter().filter_map(|s| {
        let lane = lanes.iter().position(|l| *l == s.host)?;
        let color = match (s.status, FAULTS.contains(&s.action.as_str()) || UNDO.contains(&s.action.as_str()), s.added) {
            (StepStatus::Failed | StepStatus::Interrupted, _, _) => BLACK,
            (_, true, _) => RGBColor(200, 30, 30),
            _ if s.action == "load" => RGBColor(230, 140, 20),
            (_, _, true) => RGBColor(150, 150, 150),
            _ => RGBColor(40, 90, 180),
        };
        Some(bar(secs(s.at), secs(s.at + s.elapsed), lane, color))
    }))?;
    let checks = lanes.len() - 1;
    chart.draw_series(r.checks.iter().map(|c| {
        let color = if c.passed { RGBColor(40, 150, 70) } else { BLACK };
        bar(secs(c.at), secs(c.at + c.elapsed), checks, color)
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{HostInfo, StepResult};

    fn step(id: &str, host: &str, action: &str, at_ms: u64, ms: u64) -> StepResult {
        StepResult {
            id: id.into(),
            title: id.into(),
            host: host.into(),
            user: "dba".into(),
            action: action.into(),
            added: false,
            defect: None,
            note: String::new(),
            passed: true,
            status: StepStatus::Passed,
            at: Duration::from_millis(at_ms),
            elapsed: Duration::from_millis(ms),
            observed: String::new(),
        }
    }

    fn report(steps: Vec<StepResult>) -> RunReport {
        let mut r = crate::report::tests::report();
        r.hosts = ["primary", "standby"].iter().map(|h| HostInfo { name: h.to_string(), role: Default::default(), ip: String::new() }).collect();
        r.steps = steps;
        r
    }

    #[test]
    fn a_fault_is_shaded_until_it_is_undone_or_the_run_ends() {
        let r = report(vec![
            step("setup", "primary", "run", 0, 1000),
            step("cut", "standby", "partition", 1000, 500),
            step("heal", "standby", "heal", 3000, 500),
            step("kill", "primary", "kill", 4000, 300),
            step("after", "standby", "sql", 4500, 1500),
        ]);
        assert_eq!(windows(&r), vec![Window { lane: 1, from: 1.0, to: 3.5 }, Window { lane: 0, from: 4.0, to: 6.0 }]);
        let svg = timeline(&r);
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("primary") && svg.contains("standby") && svg.contains("checks"), "lanes are labelled");
        // One bar per step, and two shaded windows.
        assert!(svg.matches("<rect").count() >= 5 + 2, "{svg}");
    }
}
