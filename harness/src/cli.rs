//! The `pglab` command line.

use clap::{Parser, Subcommand};

use crate::docker;
use crate::error::{Error, Result};
use crate::image::HostImage;
use crate::lab::{Keep, Lab, LabSpec};
use crate::lab::Hosts;
use crate::platform::Platform;
use crate::progress::Progress;
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
        /// A scenario file, a name under scenarios/ (`tutorial`, `tutorial-literal`),
        /// or a bug bundle from `pglab report` (replayed up to the step it reached).
        scenario: String,
        #[arg(long)]
        platform: Option<Platform>,
        /// Stop after this step (an id, or a tutorial step number) and skip the checks.
        #[arg(long)]
        until: Option<String>,
        /// Go on with a kept lab from this step (re-read the scenario: edit, re-run).
        #[arg(long)]
        from: Option<String>,
        /// The kept lab for --from (default: the one kept lab of this scenario).
        #[arg(long, requires = "from")]
        lab: Option<String>,
        /// Run only this check (repeatable); `pitr=name,lsn` picks restore targets.
        #[arg(long = "check")]
        checks: Vec<String>,
        /// Also write the result as JUnit XML.
        #[arg(long)]
        junit: Option<std::path::PathBuf>,
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
    /// Go on with a kept lab's scenario: the next step, through STEP, or
    /// `verify` (the remaining steps and the checks).
    Step {
        lab: String,
        #[arg(default_value = "next")]
        step: String,
        /// Also run slow checks (with `verify`).
        #[arg(long, env = "PGLAB_SLOW")]
        slow: bool,
        #[arg(long, default_value = "reports")]
        transcript: std::path::PathBuf,
    },
    /// Write a bug bundle (tar.gz) of a kept lab: scenario, transcripts,
    /// configs, logs, `pgbackrest info`, versions; secrets redacted.
    Report {
        lab: String,
        /// Default: pglab-report-<lab>.tar.gz
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
        Error::Usage(format!("no scenario `{arg}`: not a file, and no scenarios/{file} (list them with `ls scenarios/`)"))
    })
}

/// Writes a commented scenario to start from: the corrected tutorial.
pub fn new_scenario(name: &str, dir: &std::path::Path) -> Result<std::path::PathBuf> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(Error::Usage(format!("scenario name `{name}`: use letters, digits, - and _")));
    }
    let path = dir.join(format!("{name}.toml"));
    if path.exists() {
        return Err(Error::Usage(format!("{} exists; pick another name or remove it", path.display())));
    }
    const TUTORIAL: &str = include_str!("../../scenarios/tutorial.toml");
    let body: String = TUTORIAL.lines().skip_while(|l| l.starts_with('#') || l.is_empty()).map(|l| format!("{l}\n")).collect();
    let body = body.replacen("name = \"tutorial\"", &format!("name = \"{name}\""), 1);
    let text = format!(
        "# {name}: a pglab scenario, scaffolded from the corrected tutorial.\n\
         #\n\
         # How it reads:\n\
         #   [[hosts]]   the lab's hosts; each gives {{<host>.ip}} and {{<host>.name}}\n\
         #   [given]     the state before step 1: PostgreSQL running, a table with rows\n\
         #   [[steps]]   id, title, host, user (default dba) and exactly one action:\n\
         #       run = \"shell line\"             as a person types it, sudo included\n\
         #       config = {{ pgbackrest = {{ section, set }} }} | {{ postgresql_conf = {{..}} }} | {{ pg_hba = [..] }}\n\
         #       sql = \"...\"                    through the harness's client\n\
         #       file = {{ path, content, mode, owner }}   copy = {{ from_host, from, to, append }}\n\
         #       wait = \"pg_up\" | \"pg_down\" | \"streaming\"\n\
         #     and optionally expect = {{ status = 0 | \"any\" | \"nonzero\", output = \"regex\", log = \"regex\" }},\n\
         #     note, added, defect, timeout_s, retry_s, after = [\"earlier-step\"] (with parallel = true).\n\
         #   [[verify]]  checks: standby_data, streaming, pitr, retention, pgbackrest, cron_line, cron_fires, not_streaming\n\
         #   Variables: {{pg.version}} {{pg.config_dir}} {{pg.data}} {{pg.bin}} {{secret.NAME}} and [vars].\n\
         #\n\
         # Run it:            pglab run {path}\n\
         # Stop and enter:    pglab run {path} --until 8 --keep; pglab shell <lab> standby\n\
         # Then go on:        pglab step <lab> [next|STEP|verify]\n\n{body}",
        path = path.display()
    );
    crate::scenario::Scenario::parse(&path, text.clone())?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}

/// The one kept lab running `scenario`, for `run --from` without `--lab`.
async fn kept_lab_of(docker: &bollard::Docker, scenario: &str) -> Result<String> {
    let labs: Vec<String> = reaper::list_labs(docker).await?.into_iter().filter(|l| l.scenario.as_deref() == Some(scenario)).map(|l| l.lab).collect();
    match labs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::Usage(format!("no kept lab of {scenario}: start one with `pglab run {scenario} --until STEP --keep`"))),
        many => Err(Error::Usage(format!("several labs of {scenario} ({}): name one with --lab", many.join(", ")))),
    }
}

fn finish_run(report: &crate::runner::RunReport, json: bool, junit: Option<&std::path::Path>, dir: &std::path::Path) -> Result<()> {
    if let Some(path) = junit {
        std::fs::write(path, crate::report::junit(report)).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(report).expect("serializable"));
    } else {
        print_report(report, dir);
    }
    if report.passed {
        Ok(())
    } else {
        Err(Error::Check(report.error.clone().unwrap_or_else(|| "a check failed".into())))
    }
}

pub async fn main(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Image { command: ImageCommand::Build { platform, force } } => {
            let docker = docker::connect().await?;
            let progress = Progress::new(cli.quiet);
            let ensured = HostImage::for_platform(platform).ensure(&docker, force, &progress.main).await;
            progress.finish();
            let ensured = ensured?;
            println!(
                "{} {} in {:.2}s",
                ensured.image.reference(),
                if ensured.cached { "found in cache" } else { "built" },
                ensured.elapsed.as_secs_f64()
            );
            Ok(())
        }
        Command::Run { scenario, platform, until, from, lab, checks, junit, keep, keep_on_failure, sets, slow, json, transcript } => {
            let progress = Progress::new(cli.quiet);
            if let Some(from) = from {
                let scn = crate::scenario::Scenario::load(&resolve_scenario(&scenario)?)?;
                let lab = match lab {
                    Some(l) => l,
                    None => kept_lab_of(&docker::connect().await?, &scn.name).await?,
                };
                let until = until.map(crate::runner::Until::Step).unwrap_or(crate::runner::Until::End);
                let report = crate::runner::resume(&lab, Some(&from), &until, slow, Some(&transcript), &progress).await;
                progress.finish();
                return finish_run(&report?, json, junit.as_deref(), &transcript);
            }
            // A bug bundle replays its scenario on its platform, up to where its lab got.
            let bundle = if crate::bundle::is_bundle(&scenario) { Some(crate::bundle::unpack(std::path::Path::new(&scenario))?) } else { None };
            let (path, platform, until) = match &bundle {
                Some(b) => (b.scenario.clone(), platform.or(Some(b.manifest.platform)), until.or_else(|| b.manifest.step.clone().filter(|_| !b.manifest.complete))),
                None => (resolve_scenario(&scenario)?, platform, until),
            };
            let scn = crate::scenario::Scenario::load(&path)?;
            let opts = crate::runner::RunOptions {
                platform,
                keep: if keep { Keep::Always } else if keep_on_failure { Keep::OnFailure } else { Keep::Never },
                until,
                slow,
                sets,
                report_dir: Some(transcript.clone()),
                checks,
            };
            let report = crate::runner::run(&scn, &opts, &progress).await;
            progress.finish();
            let report = report?;
            if keep || (keep_on_failure && !report.passed) {
                println!("lab {} kept: pglab shell {} <host> / pglab step {} / pglab report {} / pglab down {}", report.lab, report.lab, report.lab, report.lab, report.lab);
            }
            finish_run(&report, json, junit.as_deref(), &transcript)
        }
        Command::Step { lab, step, slow, transcript } => {
            let until = match step.as_str() {
                "next" => crate::runner::Until::Next,
                "verify" | "end" => crate::runner::Until::End,
                s => crate::runner::Until::Step(s.to_string()),
            };
            let progress = Progress::new(cli.quiet);
            let report = crate::runner::resume(&lab, None, &until, slow, Some(&transcript), &progress).await;
            progress.finish();
            finish_run(&report?, false, None, &transcript)
        }
        Command::Report { lab, output } => {
            let docker = docker::connect().await?;
            let attached = crate::lab::Attached::find(&docker, &lab).await?;
            let out = output.unwrap_or_else(|| std::path::PathBuf::from(format!("pglab-report-{lab}.tar.gz")));
            let size = crate::bundle::write(&attached, &out).await?;
            println!("wrote {} ({:.1} KiB); replay it with `pglab run {}`", out.display(), size as f64 / 1024.0, out.display());
            Ok(())
        }
        Command::New { name, dir } => {
            let path = new_scenario(&name, &dir)?;
            println!("wrote {}; run it with `pglab run {}`", path.display(), path.display());
            Ok(())
        }
        Command::Bench { scenario, runs, json } => {
            let scn = crate::scenario::Scenario::load(&resolve_scenario(&scenario)?)?;
            let progress = Progress::new(cli.quiet);
            let mut reports = Vec::new();
            for i in 1..=runs {
                progress.phase(format!("bench run {i}/{runs}"));
                let r = crate::runner::run(&scn, &crate::runner::RunOptions::default(), &progress).await?;
                if !r.passed {
                    return Err(Error::Check(format!("bench run {i} failed: {:?}", r.error)));
                }
                reports.push(r);
            }
            progress.finish();
            println!("{}", crate::report::bench_table(&reports));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&reports).expect("serializable")).map_err(|e| Error::io("writing bench json", e))?;
            }
            Ok(())
        }
        Command::Up { platform, hosts, foreground } => {
            let progress = Progress::new(cli.quiet);
            let mut spec = LabSpec::new(platform, hosts);
            spec.keep = if foreground { Keep::Never } else { Keep::Always };
            progress.phase("starting lab");
            let lab = crate::lab::up(&spec, &progress.main).await;
            progress.finish();
            let lab = lab?;
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
                    let hosts: Vec<String> = l.hosts.iter().map(|h| if h.ip.is_empty() { format!("{}({})", h.host, h.state) } else { format!("{}={}", h.host, h.ip) }).collect();
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
                "gc: removed {} lab(s): {} containers, {} networks, {} volumes; {} dangling image(s)",
                r.labs.len(),
                r.containers,
                r.networks,
                r.volumes,
                r.images
            );
            Ok(())
        }
    }
}

fn print_report(r: &crate::runner::RunReport, dir: &std::path::Path) {
    let phases: Vec<String> = r.phases.iter().map(|(k, v)| format!("{} {:.1}s", k.trim_end_matches("_ms"), *v as f64 / 1000.0)).collect();
    println!(
        "{} on {}: {} in {:.1}s (lab {} up in {} ms; {})",
        r.scenario,
        r.platform,
        if r.passed { "PASSED" } else { "FAILED" },
        r.total.as_secs_f64(),
        r.lab,
        r.lab_timings.total.as_millis(),
        phases.join(", ")
    );
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
    let base = dir.join(r.file_stem());
    println!("transcript: {}.md  report: {}.json", base.display(), base.display());
}

fn print_lab(lab: &Lab) {
    println!("lab {} ({}, up in {:.2}s)", lab.id, lab.image.reference(), lab.timings.total.as_secs_f64());
    tracing::info!("start timings: {:?}", lab.timings);
    for h in lab.hosts() {
        println!("  {:<10} {:<15} {}", h.name, h.ip, h.psql_hint());
    }
}
