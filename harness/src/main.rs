use clap::Parser;
use pglab::progress::say;

fn main() {
    let cli = pglab::cli::Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("PGLAB_LOG").unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        .init();
    // Signals are handled from the start: an interrupt before any lab exits at once.
    pglab::lab::signals::install();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = match rt.block_on(pglab::cli::main(cli)) {
        Ok(()) => 0,
        Err(e) => {
            let code = e.exit_code();
            match e {
                // Spans into a scenario file read best as miette draws them.
                pglab::Error::Scenario(_) => say(format_args!("{:?}", miette::Report::new(e))),
                pglab::Error::Interrupted => say("pglab: interrupted"),
                e => say(format_args!("pglab: {e}")),
            }
            code
        }
    };
    drop(rt);
    std::process::exit(code);
}
