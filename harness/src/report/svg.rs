//! The run as a picture: one lane per host and one for the checks, each
//! step and check a bar from when it started to when it ended, faults in
//! red, and the time a fault was active shaded across its host's lane.
//! A run with faults or load adds plots below on the same time axis:
//! replication lag in bytes and in seconds, and acknowledged writes per
//! second, with every fault window shaded.
//! Drawn with plotters' SVG backend; rendering only, from a `RunReport`.

use std::time::Duration;

use plotters::prelude::*;

use crate::outcome::{Fault, RunReport, StepStatus};

const WIDTH: u32 = 960;
const LANE_PX: u32 = 34;

const PLOT_PX: u32 = 150;

/// A window during which a fault was active on a host (lane index).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Window {
    pub lane: usize,
    pub from: f64,
    pub to: f64,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The lanes: every host of the report, then `checks`.
pub(super) fn lanes(r: &RunReport) -> Vec<String> {
    r.hosts.iter().map(|h| h.name.clone()).chain(std::iter::once("checks".to_string())).collect()
}

/// Fault windows: from a fault step's start to the end of the next undoing
/// step on the same host, or to the end of the run.
pub(super) fn windows(r: &RunReport) -> Vec<Window> {
    let lanes = lanes(r);
    let end = end_of(r);
    let mut out: Vec<Window> = Vec::new();
    for s in &r.steps {
        let Some(lane) = lanes.iter().position(|l| *l == s.host) else { continue };
        match s.fault {
            Fault::Starts { .. } if !out.iter().any(|w| w.lane == lane && w.to >= end) => out.push(Window { lane, from: secs(s.at), to: end }),
            Fault::Within => out.push(Window { lane, from: secs(s.at), to: secs(s.at + s.elapsed) }),
            Fault::Ends => {
                if let Some(w) = out.iter_mut().rev().find(|w| w.lane == lane && w.to >= end) {
                    w.to = secs(s.at + s.elapsed);
                }
            }
            _ => {}
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
pub(super) fn timeline(r: &RunReport) -> String {
    let lanes = lanes(r);
    let top = 70 + LANE_PX * lanes.len() as u32;
    let plots = plots(r);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, top + PLOT_PX * plots.len() as u32)).into_drawing_area();
        let (timeline, below) = root.split_vertically(top);
        if draw(&timeline, r, &lanes).is_err() {
            return String::new();
        }
        for (area, plot) in below.split_evenly((plots.len().max(1), 1)).iter().zip(&plots) {
            if draw_plot(area, r, plot).is_err() {
                return String::new();
            }
        }
        let _ = root.present();
    }
    svg
}

/// One plot under the timeline: named lines of (seconds, value) points.
struct Plot {
    title: &'static str,
    lines: Vec<(String, Vec<(f64, f64)>)>,
    /// Points further apart than this are not joined (nothing was reported
    /// in between: a standby disconnected, a host down, no commit).
    gap_s: f64,
}

/// The plots a run has data for.
fn plots(r: &RunReport) -> Vec<Plot> {
    let mut lag_bytes: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut lag_secs: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for s in &r.series.lag {
        let name = format!("{} -> {}", s.primary, s.standby);
        push(&mut lag_bytes, &name, (s.at_s, s.bytes / 1024.0));
        if let Some(secs) = s.seconds {
            push(&mut lag_secs, &name, (s.at_s, secs));
        }
    }
    let mut writes: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for w in &r.series.writes {
        push(&mut writes, &w.writer, (f64::from(w.second) + 0.5, f64::from(w.commits)));
    }
    [
        ("replication lag, KiB not yet replayed (pg_stat_replication)", lag_bytes, 0.5),
        ("replay_lag, seconds", lag_secs, 0.5),
        ("acknowledged commits per second", writes, 1.5),
    ]
    .into_iter()
    .filter(|(_, lines, _)| !lines.is_empty())
    .map(|(title, lines, gap_s)| Plot { title, lines, gap_s })
    .collect()
}

fn push(lines: &mut Vec<(String, Vec<(f64, f64)>)>, name: &str, point: (f64, f64)) {
    match lines.iter_mut().find(|(n, _)| n == name) {
        Some((_, points)) => points.push(point),
        None => lines.push((name.to_string(), vec![point])),
    }
}

/// Runs of points with no gap longer than `gap_s`.
fn segments(points: &[(f64, f64)], gap_s: f64) -> Vec<&[(f64, f64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].0 - points[i - 1].0 > gap_s {
            out.push(&points[start..i]);
            start = i;
        }
    }
    out
}

fn draw_plot<'a>(area: &Area<'a>, r: &RunReport, plot: &Plot) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let end = end_of(r);
    let top = plot.lines.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).fold(0.0, f64::max).max(1.0) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(plot.title, ("sans-serif", 13))
        .margin(8)
        .x_label_area_size(20)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end * 1.02, 0.0..top)?;
    chart.configure_mesh().y_labels(4).draw()?;
    chart.draw_series(windows(r).into_iter().map(|w| Rectangle::new([(w.from, 0.0), (w.to, top)], RED.mix(0.12).filled())))?;
    for (i, (name, points)) in plot.lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        for (k, seg) in segments(points, plot.gap_s).into_iter().enumerate() {
            let s = chart.draw_series(LineSeries::new(seg.iter().copied(), color.stroke_width(2)))?;
            if k == 0 {
                s.label(name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            }
        }
    }
    chart.configure_series_labels().position(SeriesLabelPosition::UpperRight).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
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
        let color = match (s.status, s.fault != Fault::No, s.added) {
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
        let color = if c.passed() { RGBColor(40, 150, 70) } else { BLACK };
        bar(secs(c.at), secs(c.at + c.elapsed), checks, color)
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{HostInfo, LagSample, StepResult, WriteRate};

    const CUT: Fault = Fault::Starts { undo: Some("heal") };

    fn step(id: &str, host: &str, fault: Fault, at_ms: u64, ms: u64) -> StepResult {
        StepResult {
            id: id.into(),
            title: id.into(),
            host: host.into(),
            user: "dba".into(),
            action: id.into(),
            fault,
            added: false,
            defect: None,
            note: String::new(),
            passed: true,
            status: StepStatus::Passed,
            at: Duration::from_millis(at_ms),
            elapsed: Duration::from_millis(ms),
            observed: String::new(),
            in_host: None,
            restored: false,
        }
    }

    fn report(steps: Vec<StepResult>) -> RunReport {
        let mut r = crate::report::tests::report();
        r.hosts = ["primary", "standby"]
            .iter()
            .map(|h| HostInfo { name: h.to_string(), kind: Default::default(), role: Default::default(), ip: String::new() })
            .collect();
        r.steps = steps;
        r
    }

    #[test]
    fn a_fault_is_shaded_until_it_is_undone_or_the_run_ends() {
        let r = report(vec![
            step("setup", "primary", Fault::No, 0, 1000),
            step("cut", "standby", CUT, 1000, 500),
            step("heal", "standby", Fault::Ends, 3000, 500),
            step("kill", "primary", Fault::Starts { undo: None }, 4000, 300),
            step("restart", "standby", Fault::Within, 4100, 400),
            step("after", "standby", Fault::No, 4500, 1500),
        ]);
        let want = vec![Window { lane: 1, from: 1.0, to: 3.5 }, Window { lane: 0, from: 4.0, to: 6.0 }, Window { lane: 1, from: 4.1, to: 4.5 }];
        assert_eq!(windows(&r), want, "a restart is shaded for its own time");
        let svg = timeline(&r);
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("primary") && svg.contains("standby") && svg.contains("checks"), "lanes are labelled");
        // One bar per step, and two shaded windows.
        assert!(svg.matches("<rect").count() >= 6 + 3, "{svg}");
    }

    #[test]
    fn lag_and_writes_are_plotted_under_the_timeline_with_gaps_left_open() {
        let mut r = report(vec![step("cut", "standby", CUT, 1000, 100), step("heal", "standby", Fault::Ends, 3000, 100)]);
        assert_eq!(plots(&r).len(), 0, "no series, no plots");
        let lag = |at_s: f64, bytes: f64| LagSample { at_s, primary: "primary".into(), standby: "standby".into(), bytes, seconds: Some(0.1) };
        r.series.lag = vec![lag(0.1, 0.0), lag(0.2, 2048.0), lag(2.5, 4096.0), lag(2.6, 0.0)];
        r.series.writes = vec![WriteRate { writer: "app".into(), second: 0, commits: 90 }, WriteRate { writer: "app".into(), second: 1, commits: 0 }];
        let plots = plots(&r);
        let titles: Vec<&str> = plots.iter().map(|p| p.title).collect();
        assert_eq!(titles.len(), 3, "{titles:?}");
        assert_eq!(plots[0].lines[0].1[1], (0.2, 2.0), "bytes are shown in KiB");
        // 0.2 s -> 2.5 s: nothing was reported in between, so two segments.
        assert_eq!(segments(&plots[0].lines[0].1, plots[0].gap_s).len(), 2);
        let svg = timeline(&r);
        assert!(svg.contains("replication lag") && svg.contains("acknowledged commits per second") && svg.contains("primary -&gt; standby"), "{svg}");
    }
}
