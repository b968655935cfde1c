//! The `pglab` command line.

use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::docker;
use crate::error::{Error, Result};
use crate::image::HostImage;
use crate::lab::{Keep, Lab, LabSpec};
use crate::platform::Platform;
use crate::reaper;

#[derive(Parser, Debug)]
#[command(name = "pglab", version, about = "Disposable PostgreSQL + pgBackRest replication labs")]
pub struct Cli {
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
pub enum Command {
    /// Host images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Run a scenario on a fresh lab: given, steps, checks; write transcript and report.
    Run {
        /// A scenario file, or a name under scenarios/ (`tutorial`, `tutorial-literal`).
        scenario: String,
        #[arg(long)]
        platform: Option<Platform>,
        /// Stop after this step (an id, or a tutorial step number) and skip the checks.
        #[arg(long)]
        until: Option<String>,
        /// Keep the lab afterwards (enter it, break it; `pglab down` removes it).
        #[arg(long)]
        keep: bool,
        /// Keep the lab only if the run fails.
        #[arg(long, conflicts_with = "keep")]
        keep_on_failure: bool,
        /// Override a scenario var: --set stanza=demo
        #[arg(long = "set", value_parser = parse_set)]
        sets: Vec<(String, String)>,
        /// Also run slow checks (cron firing: a minute or more).
        #[arg(long, env = "PGLAB_SLOW")]
        slow: bool,
        /// Print the JSON report on stdout.
        #[arg(long)]
        json: bool,
        /// Where transcripts and reports go.
        #[arg(long, default_value = "reports")]
        transcript: std::path::PathBuf,
    },
    /// Run a scenario N times on a warm image; print per-step medians and streaming percentiles.
    Bench {
        #[arg(default_value = "tutorial")]
        scenario: String,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Write the per-run reports here too.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
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
    },
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Build a platform's host image (found in the cache unless --force).
    Build {
        #[arg(default_value = "debian-12")]
        platform: Platform,
        #[arg(long)]
        force: bool,
    },
}

fn parse_set(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not key=value"))
}

/// A scenario by path, or by name in ./scenarios or this checkout's scenarios/.
pub fn resolve_scenario(arg: &str) -> Result<std::path::PathBuf> {
    let direct = std::path::PathBuf::from(arg);
    if direct.is_file() {
        return Ok(direct);
    }
    let file = if arg.ends_with(".toml") { arg.to_string() } else { format!("{arg}.toml") };
    let candidates = [
        std::path::PathBuf::from("scenarios").join(&file),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(&file),
    ];
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        Error::Other(format!("no scenario `{arg}`: not a file, and no scenarios/{file} (list them with `ls scenarios/`)"))
    })
}

pub fn spinner(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_draw_target(ProgressDrawTarget::stderr());
    pb.set_style(ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("valid template"));
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

pub async fn main(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Image { command: ImageCommand::Build { platform, force } } => {
            let docker = docker::connect().await?;
            let pb = spinner(cli.quiet);
            let ensured = HostImage::for_platform(platform).ensure(&docker, force, &pb).await?;
            pb.finish_and_clear();
            println!(
                "{} {} in {:.2}s",
                ensured.image.reference(),
                if ensured.cached { "found in cache" } else { "built" },
                ensured.elapsed.as_secs_f64()
            );
            Ok(())
        }
        Command::Run { scenario, platform, until, keep, keep_on_failure, sets, slow, json, transcript } => {
            let path = resolve_scenario(&scenario)?;
            let scn = crate::scenario::Scenario::load(&path)?;
            let opts = crate::runner::RunOptions {
                platform,
                keep: if keep { Keep::Always } else if keep_on_failure { Keep::OnFailure } else { Keep::Never },
                until,
                slow,
                sets,
                report_dir: Some(transcript.clone()),
            };
            let pb = spinner(cli.quiet);
            let report = crate::runner::run(&scn, &opts, &pb).await?;
            pb.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("serializable"));
            } else {
                print_report(&report, &transcript);
            }
            if keep || (keep_on_failure && !report.passed) {
                println!("lab {} kept: pglab list / docker exec -it pglab-{}-<host> bash / pglab down {}", report.lab, report.lab, report.lab);
            }
            if report.passed {
                Ok(())
            } else {
                Err(Error::Check(report.error.clone().unwrap_or_else(|| "a check failed".into())))
            }
        }
        Command::Bench { scenario, runs, json } => {
            let scn = crate::scenario::Scenario::load(&resolve_scenario(&scenario)?)?;
            let pb = spinner(cli.quiet);
            let mut reports = Vec::new();
            for i in 1..=runs {
                pb.set_message(format!("run {i}/{runs}"));
                let r = crate::runner::run(&scn, &crate::runner::RunOptions::default(), &pb).await?;
                if !r.passed {
                    return Err(Error::Check(format!("bench run {i} failed: {:?}", r.error)));
                }
                reports.push(r);
            }
            pb.finish_and_clear();
            println!("{}", crate::report::bench_table(&reports));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&reports).expect("serializable")).map_err(|e| Error::io("writing bench json", e))?;
            }
            Ok(())
        }
        Command::Up { platform, hosts, foreground } => {
            let pb = spinner(cli.quiet);
            let mut spec = LabSpec::new(platform, hosts);
            spec.keep = if foreground { Keep::Never } else { Keep::Always };
            pb.set_message("starting lab");
            let lab = crate::lab::up(&spec, &pb).await?;
            pb.finish_and_clear();
            print_lab(&lab);
            if foreground {
                println!("lab {} is up; Ctrl-C removes it", lab.id);
                // Parks until a signal: the reaper removes the lab and exits.
                std::future::pending::<()>().await;
            }
            Ok(())
        }
        Command::Exec { lab, host, user, cmd } => {
            let docker = docker::connect().await?;
            let attached = crate::lab::Attached::find(&docker, &lab).await?;
            let h = attached.host(&host)?;
            let mut sink = |chunk: &[u8], err: bool| {
                use std::io::Write;
                if err {
                    let _ = std::io::stderr().write_all(chunk);
                } else {
                    let _ = std::io::stdout().write_all(chunk);
                }
            };
            let out = h.exec_streaming(crate::exec::Cmd::new(cmd).user(user).any_status(), Some(&mut sink)).await?;
            if out.status != 0 {
                std::process::exit(out.status.clamp(1, 255) as i32);
            }
            Ok(())
        }
        Command::Sql { lab, host, sql } => {
            let docker = docker::connect().await?;
            let attached = crate::lab::Attached::find(&docker, &lab).await?;
            println!("{}", attached.host(&host)?.safe_psql(&sql).await?);
            Ok(())
        }
        Command::Shell { lab, host, user } => {
            let docker = docker::connect().await?;
            let attached = crate::lab::Attached::find(&docker, &lab).await?;
            let h = attached.host(&host)?;
            let status = std::process::Command::new("docker")
                .args(["exec", "-it", "-u", &user, "-w", "/", &h.container, "bash", "-l"])
                .status()
                .map_err(|e| Error::io("running docker exec -it (is the docker CLI installed?)", e))?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Command::Logs { lab, host, lines } => {
            let docker = docker::connect().await?;
            let attached = crate::lab::Attached::find(&docker, &lab).await?;
            for h in attached.hosts.iter().filter(|h| host.as_deref().is_none_or(|n| n == h.name)) {
                let script = format!(
                    "for f in {pg} /var/log/pgbackrest/*.log; do [ -f \"$f\" ] && echo \"== $f\" && tail -n {lines} \"$f\"; done; \
                     echo '== journal'; journalctl --no-pager -n {lines} -o short-precise",
                    pg = h.platform.pg_log()
                );
                let out = h.probe(&crate::exec::Cmd::new(["bash", "-c", script.as_str()]).any_status()).await?;
                println!("######## {} ({})\n{}", h.name, h.container, out.stdout);
            }
            if let Some(name) = &host {
                attached.host(name)?;
            }
            Ok(())
        }
        Command::Down { lab, all } => {
            let docker = docker::connect().await?;
            let labs = reaper::list_labs(&docker).await?;
            let targets: Vec<String> = match (lab, all) {
                (_, true) => labs.into_iter().map(|l| l.lab).collect(),
                (Some(l), false) => {
                    if !labs.iter().any(|s| s.lab == l) {
                        return Err(Error::UnknownLab(l));
                    }
                    vec![l]
                }
                (None, false) => return Err(Error::Other("name a lab (see `pglab list`) or pass --all".into())),
            };
            for l in targets {
                let r = reaper::remove_lab(&docker, &l).await?;
                println!("removed lab {l}: {} containers, {} networks, {} volumes", r.containers, r.networks, r.volumes);
            }
            Ok(())
        }
        Command::List { json } => {
            let docker = docker::connect().await?;
            let labs = reaper::list_labs(&docker).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&labs).expect("serializable"));
            } else if labs.is_empty() {
                println!("no labs");
            } else {
                for l in labs {
                    let hosts: Vec<String> = l.hosts.iter().map(|(h, _, s)| format!("{h}({s})")).collect();
                    let age = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).saturating_sub(l.created);
                    println!(
                        "{}  {}@{}  {}m{:02}s  {}  {}",
                        l.lab,
                        l.scenario.as_deref().unwrap_or("-"),
                        l.step.as_deref().unwrap_or("-"),
                        age / 60,
                        age % 60,
                        if l.kept { "kept" } else if l.owner_alive { "running" } else { "orphaned" },
                        hosts.join(" ")
                    );
                }
            }
            Ok(())
        }
        Command::Gc { all } => {
            let docker = docker::connect().await?;
            let r = reaper::gc(&docker, all).await?;
            println!(
                "gc: removed {} lab(s): {} containers, {} networks, {} volumes",
                r.labs.len(),
                r.containers,
                r.networks,
                r.volumes
            );
            Ok(())
        }
    }
}

fn print_report(r: &crate::runner::RunReport, dir: &std::path::Path) {
    println!("{} on {}: {} in {:.1}s (lab {} up in {} ms)", r.scenario, r.platform, if r.passed { "PASSED" } else { "FAILED" }, r.total.as_secs_f64(), r.lab, r.lab_timings.total.as_millis());
    for s in &r.steps {
        let tag = match (&s.defect, s.added) {
            (Some(d), _) => format!(" [{}]", d.id),
            (None, true) => " [added]".into(),
            _ => String::new(),
        };
        println!("  {} {:<28} {:>6} ms  {}{tag}", if s.passed { "ok  " } else { "FAIL" }, s.id, s.elapsed.as_millis(), s.observed.lines().next().unwrap_or(""));
    }
    for c in &r.checks {
        println!("  {} check {:<18} {:>6} ms  {}", if c.passed { "ok  " } else { "FAIL" }, c.name, c.elapsed.as_millis(), c.detail.lines().next().unwrap_or(""));
    }
    let base = dir.join(format!("{}-{}", r.scenario, r.lab));
    println!("transcript: {}.md  report: {}.json", base.display(), base.display());
}

fn print_lab(lab: &Lab) {
    println!("lab {} ({}, up in {:.2}s)", lab.id, lab.image.reference(), lab.timings.total.as_secs_f64());
    tracing::info!("start timings: {:?}", lab.timings);
    for h in lab.hosts() {
        println!("  {:<10} {:<15} {}", h.name, h.ip, h.psql_hint());
    }
}
