//! The `pglab` command line: parsing here, one small function per
//! subcommand in `run` (scenarios) and `lab` (labs, images).

mod bench;
mod chaos;
mod checkpoint;
mod lab;
mod run;

use std::io::Write;

use clap::{Args, Parser, Subcommand};

use crate::error::Result;
use crate::platform::Platform;
use crate::run::CheckPick;

#[derive(Parser, Debug)]
#[command(
    name = "pglab",
    version,
    about = "Disposable PostgreSQL + pgBackRest replication labs",
    after_help = "Exit codes: 0 passed; 1 a step or check failed; 2 bad input (a scenario, a name, a flag, an environment value, a path); \
                  3 environment (engine, image, mmdebstrap, cgroup); 4 not supported on the platform (a version the scenario requires); 130 interrupted."
)]
pub(crate) struct Cli {
    /// No progress output.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More log output (repeat for more).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Host images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Run a scenario on a fresh lab: given, steps, checks; write transcript and report.
    Run(RunArgs),
    /// Break a scenario's lab at random (its `[chaos]` point, a schedule
    /// drawn from --seed), then check its claims; a failing schedule is
    /// shrunk and written as a scenario file that replays it, with a bug
    /// bundle. Exit 0: the claims held; 1: a violation (see the file).
    Chaos(ChaosArgs),
    /// Check scenario files without an engine: every problem of every file
    /// at its line and column, and each good file's plan. Exit 0 or 2.
    Validate {
        /// Files or names under scenarios/.
        #[arg(required = true)]
        scenarios: Vec<String>,
    },
    /// Print the JSON Schema of scenario files (for editors), or with
    /// --markdown the reference page; both come from the scenario model.
    Schema {
        #[arg(long)]
        markdown: bool,
    },
    /// Run a scenario N times on a warm image; print per-step medians and streaming percentiles.
    Bench {
        #[arg(default_value = "tutorial")]
        scenario: String,
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
        runs: u16,
        /// Instead: N labs at once, each a `pglab run` of its own (repeat
        /// for several batches: --parallel 1 --parallel 4).
        #[arg(long, conflicts_with = "runs", value_parser = clap::value_parser!(u16).range(1..))]
        parallel: Vec<u16>,
        /// Write the per-run reports (or batches) here too.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Every scenario `pglab run NAME` finds (./scenarios, then the shipped ones) and where it comes from.
    ListScenarios,
    /// Start a lab and keep it (enter it with `docker exec`, remove it with `pglab down`).
    Up {
        #[arg(long, default_value = "debian-12")]
        platform: Platform,
        /// Host names, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "primary,standby")]
        hosts: Vec<String>,
        /// Stay in the foreground; the lab is removed on exit or Ctrl-C.
        #[arg(long)]
        foreground: bool,
    },
    /// Run a command on a host of a kept lab; exits with its status.
    Exec {
        lab: String,
        host: String,
        #[arg(long, short, default_value = "root")]
        user: String,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Run SQL on a host of a kept lab through the harness route.
    Sql { lab: String, host: String, sql: String },
    /// An interactive shell on a host of a kept lab.
    Shell {
        lab: String,
        host: String,
        #[arg(long, short, default_value = "postgres")]
        user: String,
    },
    /// PostgreSQL log, pgBackRest logs and the journal of a kept lab's hosts.
    Logs {
        lab: String,
        host: Option<String>,
        #[arg(long, default_value_t = 40)]
        lines: usize,
    },
    /// Go on with a kept lab's scenario: the next step, through STEP, or
    /// `verify` (the remaining steps and the checks).
    Step {
        lab: String,
        #[arg(default_value = "next")]
        step: String,
        /// Run only this check (with `verify`; repeatable).
        #[arg(long = "check")]
        checks: Vec<CheckPick>,
        /// Also run slow checks (with `verify`).
        #[arg(long, env = "PGLAB_SLOW", value_parser = clap::builder::BoolishValueParser::new())]
        slow: bool,
        #[arg(long, default_value = "reports")]
        transcript: std::path::PathBuf,
    },
    /// Write a bug bundle (tar.gz) of a kept lab: scenario, transcripts,
    /// configs, logs, `pgbackrest info`, versions; secrets redacted.
    Report {
        lab: String,
        /// Default: `pglab-report-<lab>.tar.gz`
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Scaffold a scenario from the corrected tutorial, commented.
    New {
        name: String,
        #[arg(long, default_value = "scenarios")]
        dir: std::path::PathBuf,
    },
    /// Remove a lab (or every lab).
    Down {
        lab: Option<String>,
        #[arg(long, conflicts_with = "lab")]
        all: bool,
    },
    /// List labs on this engine.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove what dead runs left behind (kept labs stay unless --all).
    Gc {
        #[arg(long)]
        all: bool,
        /// Remove every checkpoint too (they hold the labs' secrets).
        #[arg(long)]
        checkpoints: bool,
    },
    /// Labs saved at a step (`run --checkpoint`, `ScenarioLab::through`).
    Checkpoint {
        #[command(subcommand)]
        command: CheckpointCommand,
    },
}

/// `pglab checkpoint`.
#[derive(Subcommand, Debug)]
pub(crate) enum CheckpointCommand {
    /// Every checkpoint: key, scenario and step, platform, size, when saved and last used.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove checkpoints by key (or all of them).
    Rm {
        #[arg(required_unless_present = "all")]
        keys: Vec<String>,
        #[arg(long, conflicts_with = "keys")]
        all: bool,
    },
    /// Remove orphans, then the least recently used until the rest fit in --max-mib.
    Gc {
        #[arg(long, default_value_t = 20480)]
        max_mib: u64,
    },
}

/// `pglab run`.
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// A scenario file, a name under scenarios/ (`tutorial`, `tutorial-literal`),
    /// or a bug bundle from `pglab report` (replayed up to the step it reached).
    pub scenario: String,
    #[arg(long)]
    pub platform: Option<Platform>,
    /// Stop after this step (an id, or a tutorial step number) and skip the checks.
    #[arg(long)]
    pub until: Option<String>,
    /// Go on with a kept lab from this step (re-read the scenario: edit, re-run).
    #[arg(long)]
    pub from: Option<String>,
    /// The kept lab for --from (default: the one kept lab of this scenario).
    #[arg(long, requires = "from")]
    pub lab: Option<String>,
    /// Run only this check (repeatable); `pitr=name,lsn` picks restore targets.
    #[arg(long = "check", conflicts_with = "until")]
    pub checks: Vec<CheckPick>,
    /// Also write the result as JUnit XML.
    #[arg(long)]
    pub junit: Option<std::path::PathBuf>,
    /// Keep the lab afterwards (enter it, break it; `pglab down` removes it).
    #[arg(long)]
    pub keep: bool,
    /// Keep the lab only if the run fails.
    #[arg(long, conflicts_with = "keep")]
    pub keep_on_failure: bool,
    /// Start from a checkpoint of the lab after --until's step (or after the
    /// last step of the scenario a file extends), saving one there first if
    /// there is none (`PGLAB_CHECKPOINTS=0` turns them off).
    #[arg(long)]
    pub checkpoint: bool,
    /// Override a scenario var: --set stanza=demo
    #[arg(long = "set", value_parser = parse_set)]
    pub sets: Vec<(String, String)>,
    /// Also run slow checks (cron firing: a minute or more).
    #[arg(long, env = "PGLAB_SLOW", value_parser = clap::builder::BoolishValueParser::new())]
    pub slow: bool,
    /// Print the JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Where transcripts and reports go.
    #[arg(long, default_value = "reports")]
    pub transcript: std::path::PathBuf,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ImageCommand {
    /// Build platforms' host images (found in the cache unless --force);
    /// several missing ones are built at once.
    Build {
        #[arg(default_value = "debian-12")]
        platforms: Vec<Platform>,
        /// Every platform built offline (debian-11, debian-12, debian-13), and the object store's image.
        #[arg(long, conflicts_with = "platforms")]
        all: bool,
        /// Also the object store's image (hosts of kind `s3`; one for every platform).
        #[arg(long)]
        s3: bool,
        #[arg(long)]
        force: bool,
    },
    /// The host images on the engine: platform, what each was built from
    /// (suite, archive date, package versions), and whether it is current.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print a platform's image reference (name:tag, the tag a hash of its
    /// recipe): a cache key for CI, no engine needed.
    Ref {
        #[arg(default_value = "debian-12")]
        platform: Platform,
    },
}

/// `pglab chaos`.
#[derive(Args, Debug)]
pub(crate) struct ChaosArgs {
    /// A scenario file (or a name under scenarios/) with a `[chaos]` table.
    pub scenario: String,
    /// Draws the schedule: the same seed, the same schedule.
    #[arg(long)]
    pub seed: u64,
    /// How long the schedule lasts: `90s`, `2m`, `1500ms`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// Kinds of fault drawn from, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "partition,latency,pause,restart,kill")]
    pub faults: Vec<crate::chaos::FaultKind>,
    /// Faults drawn at most.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub most: u16,
    /// Runs spent shrinking a failing schedule, at most.
    #[arg(long, default_value_t = 10)]
    pub shrink_runs: u16,
    #[arg(long)]
    pub platform: Option<Platform>,
    /// Override a variable of the scenario (repeatable): `--set name=value`.
    #[arg(long = "set", value_parser = parse_set)]
    pub sets: Vec<(String, String)>,
    /// Where the tried files, their reports and the bundle go.
    #[arg(long, default_value = "reports/chaos")]
    pub out: std::path::PathBuf,
    /// Start every try from a fresh lab, not from a checkpoint of the scenario's base.
    #[arg(long)]
    pub no_checkpoint: bool,
    /// Write the scenario with the seed's schedule in it and stop: what the seed would do.
    #[arg(long)]
    pub dry_run: bool,
}

/// `90s`, `2m`, `1500ms`, or seconds.
fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = n.parse().map_err(|_| format!("`{s}`: a number and a unit (90s, 2m, 1500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: unit `{unit}` is not ms, s or m")),
    };
    std::time::Duration::try_from_secs_f64(secs).ok().filter(|d| !d.is_zero()).ok_or_else(|| format!("`{s}`: not a length of time"))
}

fn parse_set(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not key=value"))
}

/// Prints a line on stdout; a reader that went away (`| head`) ends the
/// output quietly instead of a panic.
pub(crate) fn out(text: impl std::fmt::Display) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{text}") {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::warn!("writing to stdout: {e}");
        }
    }
}

/// The `pglab` program: parses the command line, runs it, and returns the
/// exit code (documented in the README).
pub(crate) fn entry() -> i32 {
    let cli = Cli::parse();
    // Said here, not by clap: a global flag after the subcommand escapes clap's conflict check.
    if cli.quiet && cli.verbose > 0 {
        crate::progress::say("pglab: --quiet cannot be used with --verbose: pick one");
        return 2;
    }
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    // PGLAB_LOG, when set, is a tracing filter (`pglab=debug`), and a wrong one is said, not ignored.
    let filter = match std::env::var("PGLAB_LOG") {
        Ok(v) => match tracing_subscriber::EnvFilter::try_new(&v) {
            Ok(f) => f,
            Err(e) => {
                crate::progress::say(format_args!("pglab: PGLAB_LOG={v}: not a log filter ({e}); try PGLAB_LOG=pglab=debug"));
                return 2;
            }
        },
        Err(_) => level.into(),
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    // Signals are handled from the start: an interrupt before any lab exits at once.
    crate::lab::signals::install();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = match rt.block_on(main(cli)) {
        Ok(()) => 0,
        Err(e) => {
            let code = e.exit_code();
            match e {
                // Spans into a scenario file read best as miette draws them.
                crate::Error::Scenario(_) => crate::progress::say(format_args!("{:?}", miette::Report::new(e))),
                crate::Error::Interrupted => crate::progress::say("pglab: interrupted"),
                e => crate::progress::say(format_args!("pglab: {e}")),
            }
            code
        }
    };
    drop(rt);
    code
}

async fn main(cli: Cli) -> Result<()> {
    crate::time::check_env()?;
    let quiet = cli.quiet;
    match cli.command {
        Command::Image { command: ImageCommand::Build { platforms, all, s3, force } } => {
            let platforms = if all { Platform::OFFLINE.to_vec() } else { platforms };
            let mut images: Vec<crate::engine::image::HostImage> = platforms.iter().map(|p| crate::engine::image::HostImage::for_platform(*p)).collect();
            if all || s3 {
                images.push(crate::engine::image::HostImage::object_store());
            }
            lab::image_build(&images, force, quiet).await
        }
        Command::Image { command: ImageCommand::List { json } } => lab::image_list(json).await,
        Command::Image { command: ImageCommand::Ref { platform } } => {
            out(crate::engine::image::HostImage::for_platform(platform).reference());
            Ok(())
        }
        Command::Run(args) => run::run(args, quiet).await,
        Command::Chaos(args) => chaos::chaos(args).await,
        Command::Step { lab, step, checks, slow, transcript } => run::step(&lab, &step, checks, slow, &transcript, quiet).await,
        Command::Bench { scenario, parallel, json, .. } if !parallel.is_empty() => {
            bench::parallel(&crate::run::locate(&scenario)?, &parallel.iter().map(|n| usize::from(*n)).collect::<Vec<_>>(), json.as_deref()).await
        }
        Command::Bench { scenario, runs, json, .. } => run::bench(&scenario, usize::from(runs), json.as_deref(), quiet).await,
        Command::New { name, dir } => run::new(&name, &dir),
        Command::ListScenarios => run::list_scenarios(),
        Command::Validate { scenarios } => run::validate(&scenarios),
        Command::Schema { markdown } => {
            use crate::scenario::reference;
            out(if markdown { reference::markdown() } else { serde_json::to_string_pretty(&reference::schema()).expect("a schema serializes") });
            Ok(())
        }
        Command::Report { lab, output } => lab::report(&lab, output).await,
        Command::Up { platform, hosts, foreground } => lab::up(platform, hosts, foreground, quiet).await,
        Command::Exec { lab, host, user, cmd } => lab::exec(&lab, &host, &user, cmd).await,
        Command::Sql { lab, host, sql } => lab::sql(&lab, &host, &sql).await,
        Command::Shell { lab, host, user } => lab::shell(&lab, &host, &user).await,
        Command::Logs { lab, host, lines } => lab::logs(&lab, host.as_deref(), lines).await,
        Command::Down { lab, all } => lab::down(lab, all).await,
        Command::List { json } => lab::list(json).await,
        Command::Gc { all, checkpoints } => lab::gc(all, checkpoints).await,
        Command::Checkpoint { command: CheckpointCommand::List { json } } => checkpoint::list(json).await,
        Command::Checkpoint { command: CheckpointCommand::Rm { keys, all } } => checkpoint::rm(&keys, all).await,
        Command::Checkpoint { command: CheckpointCommand::Gc { max_mib } } => checkpoint::gc(max_mib).await,
    }
}
