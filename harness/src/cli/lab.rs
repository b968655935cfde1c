//! Subcommands on labs and images: `up`, `exec`, `sql`, `shell`, `logs`,
//! `report`, `down`, `list`, `gc`, `image build`.

use std::path::PathBuf;

use super::out;
use crate::engine::{self, image, image::HostImage};
use crate::error::{Error, Result};
use crate::lab::{inventory, signals, Attached, Cmd, Hosts, Keep, Lab, LabSpec, LogTail};
use crate::platform::Platform;
use crate::progress::Progress;

async fn attach(lab: &str) -> Result<Attached> {
    Attached::find(&engine::connect().await?, lab).await
}

/// Builds what is missing, every image at once (each on its own line).
pub(super) async fn image_build(images: &[HostImage], force: bool, quiet: bool) -> Result<()> {
    let docker = engine::connect().await?;
    let progress = Progress::new(quiet);
    progress.phase(format!("images: {}", images.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")));
    let builds = images.iter().map(|image| {
        let phases = image.phases(&progress);
        let docker = docker.clone();
        async move { image.ensure(&docker, force, &phases).await }
    });
    let ensured = futures_util::future::join_all(builds).await;
    progress.finish();
    let mut failed = Vec::new();
    for (i, e) in images.iter().zip(ensured) {
        match e {
            Ok(e) => out(format_args!("{} {} in {:.2}s", e.image.reference(), if e.cached { "found in cache" } else { "built" }, e.elapsed.as_secs_f64())),
            Err(e) => {
                crate::progress::say(format_args!("image {}: {e}", i.name));
                failed.push(e);
            }
        }
    }
    // Each failure was said above; the exit code is the first one's.
    failed.into_iter().next().map_or(Ok(()), Err)
}

/// `pglab image list`: what each image on the engine was built from.
pub(super) async fn image_list(json: bool) -> Result<()> {
    let images = image::list(&engine::connect().await?).await?;
    if json {
        out(serde_json::to_string_pretty(&images).expect("images serialize"));
        return Ok(());
    }
    out(format_args!("{:<34} {:<8} {:>7}  {:<22} {:<18} {:<10} {}", "IMAGE", "STATE", "SIZE", "OS", "POSTGRESQL", "PGBACKREST", "ARCHIVE"));
    for i in images {
        let b = |k: &str| i.built.get(k).cloned().unwrap_or_else(|| "-".into());
        out(format_args!(
            "{:<34} {:<8} {:>5}MB  {:<22} {:<18} {:<10} {}",
            i.reference,
            if i.current { "current" } else { "stale" },
            i.size_mb,
            b("os").replace("Debian GNU/Linux", "Debian"),
            b("postgresql"),
            b("pgbackrest"),
            b("archive_date"),
        ));
    }
    Ok(())
}

/// A bare lab; with `foreground` it lives until a signal, then goes.
pub(super) async fn up(platform: Platform, hosts: Vec<String>, foreground: bool, quiet: bool) -> Result<()> {
    let progress = Progress::new(quiet);
    let mut spec = LabSpec::new(platform, hosts);
    spec.keep = if foreground { Keep::Never } else { Keep::Always };
    spec.attended = foreground;
    progress.phase("starting lab");
    let lab = crate::lab::up(&spec, &HostImage::for_platform(platform).phases(&progress)).await;
    progress.finish();
    let lab = lab?;
    print_lab(&lab);
    if !foreground {
        return lab.shutdown().await;
    }
    out(format_args!("lab {} is up; Ctrl-C removes it", lab.id));
    signals::interrupted().await;
    lab.discard().await?;
    Err(Error::Interrupted)
}

fn print_lab(lab: &Lab) {
    out(format_args!("lab {} ({}, up in {:.2}s)", lab.id, lab.image.reference(), lab.timings.total.as_secs_f64()));
    tracing::info!("start timings: {:?}", lab.timings);
    for h in lab.hosts() {
        out(format_args!("  {:<10} {:<15} {}", h.name, h.ip, h.psql_hint()));
    }
}

/// Runs a command on a host; exits with its status.
pub(super) async fn exec(lab: &str, host: &str, user: &str, cmd: Vec<String>) -> Result<()> {
    use std::io::Write;
    let attached = attach(lab).await?;
    let h = attached.host(host)?;
    // Whole lines, redacted (a secret may straddle two chunks); a closed
    // reader just stops the passthrough.
    let (mut held_out, mut held_err) = (Vec::new(), Vec::new());
    // Text is redacted; bytes that are not text (a `pg_dump -Fc`) pass as they are.
    let show = |bytes: &[u8], err: bool| {
        let redacted = std::str::from_utf8(bytes).ok().map(|t| attached.transcript().redact(t));
        let out = redacted.as_ref().map_or(bytes, |t| t.as_bytes());
        let _ = if err { std::io::stderr().write_all(out) } else { std::io::stdout().write_all(out) };
    };
    let mut sink = |chunk: &[u8], err: bool| {
        let held = if err { &mut held_err } else { &mut held_out };
        held.extend_from_slice(chunk);
        // Whole lines go out; a long run without a newline goes out too.
        let end = held.iter().rposition(|b| *b == b'\n').map(|i| i + 1).or((held.len() > 1 << 16).then_some(held.len()));
        if let Some(end) = end {
            let rest = held.split_off(end);
            show(held, err);
            *held = rest;
        }
    };
    let out = h.exec_streaming(Cmd::new(cmd).user(user).any_status(), Some(&mut sink)).await?;
    show(&held_out, false);
    show(&held_err, true);
    if out.status != 0 {
        std::process::exit(out.status.clamp(1, 255) as i32);
    }
    Ok(())
}

pub(super) async fn sql(lab: &str, host: &str, sql: &str) -> Result<()> {
    let attached = attach(lab).await?;
    out(attached.transcript().redact(&attached.host(host)?.safe_psql(sql).await?));
    Ok(())
}

pub(super) async fn shell(lab: &str, host: &str, user: &str) -> Result<()> {
    let attached = attach(lab).await?;
    let h = attached.host(host)?;
    let status = std::process::Command::new("docker")
        .args(["exec", "-it", "-u", user, "-w", "/", &h.container, "bash", "-l"])
        .status()
        .map_err(|e| Error::io("running docker exec -it (is the docker CLI installed?)", e))?;
    std::process::exit(status.code().unwrap_or(1));
}

pub(super) async fn logs(lab: &str, host: Option<&str>, lines: usize) -> Result<()> {
    let attached = attach(lab).await?;
    if let Some(name) = host {
        attached.host(name)?;
    }
    for h in attached.hosts.iter().filter(|h| host.is_none_or(|n| n == h.name)) {
        out(format_args!("######## {} ({})\n{}", h.name, h.container, h.logs(LogTail::all(lines)).await));
    }
    Ok(())
}

pub(super) async fn report(lab: &str, output: Option<PathBuf>) -> Result<()> {
    let attached = attach(lab).await?;
    let path = output.unwrap_or_else(|| PathBuf::from(format!("pglab-report-{lab}.tar.gz")));
    let size = crate::run::bundle::write(&attached, &path).await?;
    out(format_args!("wrote {} ({:.1} KiB); replay it with `pglab run {}`", path.display(), size as f64 / 1024.0, path.display()));
    Ok(())
}

pub(super) async fn down(lab: Option<String>, all: bool) -> Result<()> {
    let docker = engine::connect().await?;
    let labs = inventory::list_labs(&docker).await?;
    let targets: Vec<String> = match (lab, all) {
        (_, true) => labs.into_iter().map(|l| l.lab).collect(),
        (Some(l), false) if labs.iter().any(|s| s.lab == l) => vec![l],
        (Some(l), false) => return Err(Error::UnknownLab(l)),
        (None, false) => return Err(Error::Usage("name a lab (see `pglab list`) or pass --all".into())),
    };
    for l in targets {
        let r = inventory::remove_lab(&docker, &l).await?;
        out(format_args!("removed lab {l}: {} containers, {} networks, {} volumes", r.containers, r.networks, r.volumes));
    }
    Ok(())
}

pub(super) async fn list(json: bool) -> Result<()> {
    let docker = engine::connect().await?;
    let labs = inventory::list_labs(&docker).await?;
    if json {
        out(serde_json::to_string_pretty(&labs).expect("serializable"));
        return Ok(());
    }
    if labs.is_empty() {
        out("no labs");
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    for l in labs {
        let hosts: Vec<String> =
            l.hosts.iter().map(|h| if h.ip.is_empty() { format!("{}({})", h.host, h.state) } else { format!("{}={}", h.host, h.ip) }).collect();
        let age = now.saturating_sub(l.created);
        let status = match (l.kept, l.owner_state) {
            (true, _) => "kept",
            (_, engine::Owner::Alive) => "running",
            (_, engine::Owner::Gone) => "orphaned",
            (_, engine::Owner::Elsewhere) => "another machine's",
        };
        let at = format!("{}@{}", l.scenario.as_deref().unwrap_or("-"), l.step.as_deref().unwrap_or("-"));
        out(format_args!("{}  {at}  {}m{:02}s  {status}  {}", l.lab, age / 60, age % 60, hosts.join(" ")));
    }
    Ok(())
}

pub(super) async fn gc(all: bool, checkpoints: bool) -> Result<()> {
    let docker = engine::connect().await?;
    let r = inventory::gc(&docker, all).await?;
    if checkpoints {
        let removed = crate::run::checkpoint::gc(&docker, -1).await?;
        out(format_args!("gc: removed {} checkpoint(s)", removed.len()));
    }
    out(format_args!(
        "gc: removed {} lab(s): {} containers, {} networks, {} volumes; {} dangling image(s)",
        r.labs.len(),
        r.containers,
        r.networks,
        r.volumes,
        r.images
    ));
    Ok(())
}
