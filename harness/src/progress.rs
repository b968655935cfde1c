//! What a person watching a run sees: on a terminal, one bar for the run and
//! a line per running step; elsewhere (CI logs, pipes), one plain line per
//! finished step, no colour, no redraws.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A line for the person watching, on stderr; a reader that went away
/// (a closed pipe) is not an error worth dying for.
pub(crate) fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

pub(crate) struct Progress {
    multi: MultiProgress,
    /// The run's own line: phase and steps done out of all.
    pub main: ProgressBar,
    plain: bool,
    quiet: bool,
    started: Instant,
}

/// A step being shown while it runs.
pub(crate) struct StepLine {
    bar: ProgressBar,
    label: String,
}

impl Progress {
    pub(crate) fn new(quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if quiet || !terminal { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() });
        let main = multi.add(ProgressBar::new_spinner());
        main.set_style(ProgressStyle::with_template("{spinner} [{elapsed:>4}] {msg} {pos}/{len}").expect("valid template"));
        if terminal && !quiet {
            main.enable_steady_tick(Duration::from_millis(120));
        }
        Progress { multi, main, plain: !terminal, quiet, started: Instant::now() }
    }

    /// Shows nothing at all (library callers, tests).
    pub(crate) fn hidden() -> Self {
        Progress::new(true)
    }

    pub(crate) fn phase(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if self.plain && !self.quiet {
            say(format_args!("[{:>6.1}s] {msg}", self.started.elapsed().as_secs_f64()));
        }
        self.main.set_message(msg);
    }

    pub(crate) fn steps(&self, total: usize) {
        self.main.set_length(total as u64);
        self.main.set_position(0);
    }

    pub(crate) fn start_step(&self, n: usize, total: usize, id: &str, host: &str) -> StepLine {
        let label = format!("{n:>2}/{total} {id:<24} {host}");
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template("  {spinner} {msg} {elapsed}").expect("valid template"));
        bar.set_message(label.clone());
        if !self.plain && !self.quiet {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        StepLine { bar, label }
    }

    /// `mark`: four columns saying how it ended (`ok  `, `FAIL`).
    pub(crate) fn finish_step(&self, line: StepLine, mark: &str, elapsed: Duration, observed: &str) {
        let first = observed.lines().next().unwrap_or("");
        let text = format!("{mark} {} {:>6} ms  {first}", line.label, elapsed.as_millis());
        if self.plain && !self.quiet {
            say(format_args!("[{:>6.1}s] {text}", self.started.elapsed().as_secs_f64()));
        } else if !self.quiet {
            let _ = self.multi.println(format!("  {text}"));
        }
        line.bar.finish_and_clear();
        self.multi.remove(&line.bar);
        self.main.inc(1);
    }

    pub(crate) fn finish(&self) {
        self.main.finish_and_clear();
    }

    /// A line for a job with phases but no steps (an image build): a bar of
    /// its `total` phases on a terminal, a timed line per phase elsewhere.
    pub(crate) fn phases(&self, label: impl Into<String>, total: u64) -> PhaseBar {
        let bar = self.multi.insert_before(&self.main, ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix} [{bar:20}] {pos}/{len} {msg} {elapsed}").expect("valid template").progress_chars("=> "),
        );
        bar.set_prefix(label.into());
        if !self.plain && !self.quiet {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        PhaseBar { bar, plain: self.plain && !self.quiet, started: Instant::now() }
    }
}

/// What a long job without steps says while it runs; see [`Progress::phases`].
#[derive(Clone)]
pub(crate) struct PhaseBar {
    bar: ProgressBar,
    plain: bool,
    started: Instant,
}

impl PhaseBar {
    /// Says nothing (library callers, tests).
    pub(crate) fn hidden() -> Self {
        PhaseBar { bar: ProgressBar::hidden(), plain: false, started: Instant::now() }
    }

    /// A phase begins; `done` moves the bar one phase on.
    pub(crate) fn phase(&self, msg: impl Into<String>, done: bool) {
        let msg = msg.into();
        if done {
            self.bar.inc(1);
        }
        if self.plain {
            say(format_args!("[{:>6.1}s] {}: {msg}", self.started.elapsed().as_secs_f64(), self.bar.prefix()));
        }
        self.bar.set_message(msg);
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
