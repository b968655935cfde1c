//! One error type for the whole harness: every failure says where it happened
//! (host, command, step, file:line) and keeps its typed cause.

use std::fmt;
use std::time::Duration;

use miette::{Diagnostic, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

/// pglab's result: its [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, each saying where: host, command, step,
/// or file, line and column. [`Error::exit_code`] maps it to `pglab`'s exit codes.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    /// The engine is not there at all; one line, with the fix.
    #[error("cannot reach the Docker daemon at {tried}: {reason}. Start it (`sudo systemctl start docker`) or point DOCKER_HOST at a running engine")]
    #[diagnostic(code(pglab::docker_unreachable))]
    DockerUnreachable {
        /// Where it was looked for (`DOCKER_HOST`, or the default socket).
        tried: String,
        /// What the connection answered.
        reason: String,
    },

    /// The engine refused or failed a call.
    #[error("docker: {context}: {source}")]
    #[diagnostic(code(pglab::docker))]
    Docker {
        /// What pglab was doing.
        context: String,
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A host image is not on the engine and cannot be built here.
    #[error("image {image} is not on this engine and there is no registry to pull it from: {hint}")]
    #[diagnostic(code(pglab::image_missing))]
    ImageMissing {
        /// The image's reference.
        image: String,
        /// How to get it.
        hint: String,
    },

    /// Building a host image failed.
    #[error("building image {image} failed at step `{step}`\n--- last lines ---\n{tail}")]
    #[diagnostic(code(pglab::image_build))]
    ImageBuild {
        /// The image's reference.
        image: String,
        /// The phase that failed (mmdebstrap, the import, a Dockerfile step).
        step: String,
        /// The last lines it printed.
        tail: String,
    },

    /// A command on a host did not end as expected.
    #[error("{0}")]
    #[diagnostic(code(pglab::exec))]
    Exec(Box<ExecFailure>),

    /// A statement failed.
    #[error("SQL on {host} failed{code}: {message}\n  sql: {sql}", code = sqlstate.as_deref().map(|c| format!(" [SQLSTATE {c}]")).unwrap_or_default())]
    #[diagnostic(code(pglab::sql))]
    Sql {
        /// The host that answered.
        host: String,
        /// The statement (secrets redacted).
        sql: String,
        /// PostgreSQL's SQLSTATE, when the server answered with one.
        sqlstate: Option<String>,
        /// The server's or the connection's message.
        message: String,
    },

    /// A wait ran out of time; it says what it saw last.
    #[error(transparent)]
    #[diagnostic(code(pglab::timeout))]
    Timeout(#[from] Box<WaitTimeout>),

    /// A scenario step that failed, with what made it fail.
    #[error("step {id} failed: {source}")]
    #[diagnostic(code(pglab::step))]
    Step {
        /// The step's id.
        id: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },

    /// A scenario file that cannot be used, at its place in the file.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Scenario(Box<ScenarioError>),

    /// A `{name}` with no value (a scenario edited under a kept lab).
    #[error("undefined variable {{{0}}}")]
    #[diagnostic(code(pglab::undefined_variable))]
    UndefinedVariable(String),

    /// A scenario run by [`ScenarioLab`](crate::ScenarioLab) failed: a step
    /// (its command, output and log lines are in `error`) or a check.
    #[error("scenario {scenario} on {platform} failed (lab {lab}): {failure}")]
    #[diagnostic(code(pglab::run))]
    Run {
        /// The scenario's name.
        scenario: String,
        /// The platform it ran on.
        platform: String,
        /// The lab's id (kept when asked to keep it on failure).
        lab: String,
        /// What failed, with its kind and the step it failed in.
        failure: Box<Failure>,
    },

    /// `pglab chaos` found a fault schedule under which a scenario's claims fail.
    #[error("chaos: {0}")]
    #[diagnostic(code(pglab::chaos_violation))]
    Violation(String),

    /// A check (or your assertion through one) found the lab not as claimed.
    #[error("check failed: {0}")]
    #[diagnostic(code(pglab::check))]
    Check(String),

    /// No lab of that id (of this user) on the engine.
    #[error("no lab `{0}` on this engine (see `pglab list`)")]
    #[diagnostic(code(pglab::unknown_lab))]
    UnknownLab(String),

    /// No host of that name in the lab.
    #[error("no host `{host}` in lab {lab}; hosts: {known}")]
    #[diagnostic(code(pglab::unknown_host))]
    UnknownHost {
        /// The lab's id.
        lab: String,
        /// The name asked for.
        host: String,
        /// The names there are.
        known: String,
    },

    /// A file of the harness's own (state, reports) could not be used.
    #[error("{context}: {source}")]
    #[diagnostic(code(pglab::io))]
    Io {
        /// What pglab was doing.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Bad arguments: an unknown step, a lab with nothing to resume.
    #[error("{0}")]
    #[diagnostic(code(pglab::usage))]
    Usage(String),

    /// This machine or engine cannot run a lab as asked: a tool missing
    /// (mmdebstrap), a cgroup systemd cannot use, a host that could not be
    /// sealed. Says what to install or change.
    #[error("{0}")]
    #[diagnostic(code(pglab::environment))]
    Environment(String),

    /// The scenario needs versions the platform does not have (its
    /// `requires`): nothing was started.
    #[error("not supported on {platform}: {reason}")]
    #[diagnostic(code(pglab::not_supported))]
    NotSupported {
        /// The platform asked for.
        platform: String,
        /// What the scenario needs and the platform has.
        reason: String,
    },

    /// SIGINT, SIGTERM or SIGHUP arrived; the lab was torn down.
    #[error("interrupted")]
    #[diagnostic(code(pglab::interrupted))]
    Interrupted,

    /// What the host or engine answered that pglab cannot use (a file that
    /// is a directory, an address missing).
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An engine call that failed, with what pglab was doing.
    pub fn docker(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Docker { context: context.into(), source: Box::new(source) }
    }

    /// An I/O error, with what pglab was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// What kind of failure this is, for a report or a caller to act on.
    pub fn cause(&self) -> Cause {
        match self {
            Error::DockerUnreachable { .. } | Error::Docker { .. } | Error::ImageMissing { .. } | Error::ImageBuild { .. } | Error::Environment(_) => {
                Cause::Engine
            }
            Error::Exec(_) => Cause::Exec,
            Error::Sql { .. } => Cause::Sql,
            Error::Timeout(_) => Cause::Timeout,
            Error::Step { source, .. } => source.cause(),
            Error::Scenario(_) | Error::UndefinedVariable(_) | Error::Usage(_) | Error::UnknownLab(_) | Error::UnknownHost { .. } => Cause::Input,
            Error::Run { failure, .. } => failure.cause,
            Error::Check(_) | Error::Violation(_) => Cause::Check,
            Error::Interrupted => Cause::Interrupted,
            Error::NotSupported { .. } => Cause::NotSupported,
            Error::Io { .. } | Error::Other(_) => Cause::Other,
        }
    }

    /// The step it happened in, when it happened in one.
    pub fn step(&self) -> Option<&str> {
        match self {
            Error::Step { id, .. } => Some(id),
            Error::Run { failure, .. } => failure.step.as_deref(),
            _ => None,
        }
    }

    /// The error as data: its kind, its step, its words (passed through `redact`).
    pub fn failure(&self, redact: impl Fn(&str) -> String) -> Failure {
        Failure { cause: self.cause(), step: self.step().map(String::from), message: redact(&self.to_string()), exit_code: self.exit_code() }
    }

    /// Exit code documented in the README: 1 a check or step failed, 2 bad
    /// input, 3 the environment (Docker, images) is not usable, 4 not
    /// supported on the platform (nothing ran), 130 interrupted.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Scenario(_) | Error::Usage(_) | Error::UnknownLab(_) | Error::UnknownHost { .. } => 2,
            Error::DockerUnreachable { .. }
            | Error::Docker { .. }
            | Error::ImageMissing { .. }
            | Error::ImageBuild { .. }
            | Error::Environment(_)
            | Error::Io { .. } => 3,
            Error::NotSupported { .. } => 4,
            Error::Interrupted => 130,
            Error::Step { source, .. } => source.exit_code(),
            Error::Run { failure, .. } => failure.exit_code,
            _ => 1,
        }
    }

    /// Errors that waiting cannot heal: a poll stops at once instead of
    /// retrying until its deadline. SQL that is wrong in itself (syntax,
    /// permission, unknown object: class 42; bad data: 22; unsupported: 0A)
    /// stays wrong; a closed connection or a server starting up does not.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Sql { sqlstate: Some(code), .. } => ["42", "22", "0A"].iter().any(|class| code.starts_with(class)),
            Error::Step { source, .. } => source.is_permanent(),
            Error::Scenario(_) | Error::Usage(_) | Error::UndefinedVariable(_) | Error::UnknownHost { .. } | Error::Interrupted => true,
            _ => false,
        }
    }

    /// SQL about an object that is not there (yet): a table, a function, a
    /// schema or database. Permanent for a wait on one server; a step that
    /// retries may be waiting for replication to bring it.
    pub fn is_missing_object(&self) -> bool {
        match self {
            Error::Sql { sqlstate: Some(code), .. } => ["42P01", "42704", "42883", "3F000", "3D000"].contains(&code.as_str()),
            Error::Step { source, .. } => source.is_missing_object(),
            _ => false,
        }
    }
}

/// Where in a scenario file something is wrong, drawn by miette; the other
/// problems of the same file (or of other files) come as related ones.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(pglab::scenario))]
pub struct ScenarioError {
    /// `path:line:column: what is wrong`.
    pub message: String,
    #[source_code]
    /// The lines of the file around the problem.
    pub src: Excerpt,
    /// Where in them, each with what is wrong there.
    #[label(collection)]
    pub labels: Vec<LabeledSpan>,
    /// How to fix it, when pglab knows.
    #[help]
    /// How to fix it, when it can be said.
    pub help: Option<String>,
    /// The file's other problems.
    #[related]
    pub related: Vec<ScenarioError>,
}

/// A few lines of a file, shown with their own line and column numbers:
/// an error carries this, never the whole file.
#[derive(Debug, Default)]
pub struct Excerpt {
    /// The file's path.
    pub name: String,
    /// The lines shown.
    pub text: String,
    /// Line (0-based) of the file where `text` begins.
    pub first_line: usize,
    /// Column (0-based) where `text` begins, when it starts inside a line.
    pub first_column: usize,
}

impl SourceCode for Excerpt {
    fn read_span<'a>(&'a self, span: &SourceSpan, before: usize, after: usize) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        let column = if inner.line() == 0 { inner.column() + self.first_column } else { inner.column() };
        let line = inner.line() + self.first_line;
        Ok(Box::new(MietteSpanContents::new_named(self.name.clone(), inner.data(), *inner.span(), line, column, inner.line_count())))
    }
}

impl ScenarioError {
    /// Every problem's message, the first one first.
    pub fn messages(&self) -> Vec<String> {
        std::iter::once(self.message.clone()).chain(self.related.iter().flat_map(|r| r.messages())).collect()
    }
}

/// Keeps the last `n` lines of a text, for error messages that must stay readable.
pub(crate) fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// A command that did not end as expected, with everything needed to see why.
#[derive(Debug)]
pub struct ExecFailure {
    /// The host it ran on.
    pub host: String,
    /// The OS user it ran as.
    pub user: String,
    /// The command as the transcript shows it.
    pub cmd: String,
    /// Its exit status, if it exited.
    pub status: Option<i64>,
    /// The status that was expected, if one was.
    pub expected: Option<i64>,
    /// The last lines of its stdout and stderr.
    pub output_tail: String,
    /// Relevant PostgreSQL / pgBackRest log lines from the host.
    pub logs: String,
    /// The same from each other host its command reached (named by the
    /// action, or by name or address in the command): the primary a
    /// `pg_basebackup` connected to knows why it was cut off.
    pub peer_logs: Vec<(String, String)>,
    /// Why it counts as failed beyond its status (output not matching, a timeout).
    pub reason: Option<String>,
}

impl fmt::Display for ExecFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command failed on {} as {}: {}", self.host, self.user, self.cmd)?;
        match (self.status, self.expected) {
            (Some(s), Some(e)) => write!(f, "\n  exit status {s}, but {e} was expected")?,
            (Some(s), None) => write!(f, "\n  exit status {s}")?,
            _ => {}
        }
        if let Some(r) = &self.reason {
            write!(f, "\n  {r}")?;
        }
        if !self.output_tail.trim().is_empty() {
            write!(f, "\n--- last lines of output ---\n{}", self.output_tail.trim_end())?;
        }
        if !self.logs.trim().is_empty() {
            write!(f, "\n--- relevant log lines on {} ---\n{}", self.host, self.logs.trim_end())?;
        }
        for (host, logs) in self.peer_logs.iter().filter(|(_, l)| !l.trim().is_empty()) {
            write!(f, "\n--- relevant log lines on {host} (the command reached it) ---\n{}", logs.trim_end())?;
        }
        Ok(())
    }
}

/// What a wait saw before it gave up, so a timeout explains itself.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {elapsed:?} waiting for {what}\n  expected: {expected}\n  last seen: {last}")]
pub struct WaitTimeout {
    /// The condition waited for.
    pub what: String,
    /// The value that would have ended the wait.
    pub expected: String,
    /// The last value seen.
    pub last: String,
    /// How long it waited.
    pub elapsed: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(code: &str) -> Error {
        Error::Sql { host: "h".into(), sql: "x".into(), sqlstate: Some(code.into()), message: "m".into() }
    }

    #[test]
    fn wrong_sql_is_permanent_and_a_lost_connection_is_not() {
        assert!(sql("42601").is_permanent(), "syntax error");
        assert!(sql("42501").is_permanent(), "insufficient privilege");
        assert!(sql("42P01").is_permanent(), "undefined table");
        assert!(!sql("57P03").is_permanent(), "cannot connect now");
        assert!(!sql("08006").is_permanent(), "connection failure");
        assert!(!Error::Check("x".into()).is_permanent());
        let step = Error::Step { id: "1".into(), source: Box::new(sql("42601")) };
        assert!(step.is_permanent());
    }

    #[test]
    fn an_interrupted_step_exits_130() {
        let step = Error::Step { id: "8".into(), source: Box::new(Error::Interrupted) };
        assert_eq!(step.exit_code(), 130);
        assert_eq!(Error::Step { id: "8".into(), source: Box::new(Error::Check("x".into())) }.exit_code(), 1);
    }
}

/// One thing wrong in a scenario file, at its span.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Where, in bytes of the file (none: the file as a whole).
    pub span: Option<std::ops::Range<usize>>,
    /// What is wrong.
    pub message: String,
    /// The word under the span.
    pub label: &'static str,
    /// How to fix it, when it can be said.
    pub help: Option<String>,
    /// A second place that explains the first (where a duplicate was first used).
    pub also: Option<Box<(std::ops::Range<usize>, &'static str)>>,
}

impl Problem {
    /// A problem at `span`.
    pub fn new(span: Option<std::ops::Range<usize>>, message: String, label: &'static str) -> Self {
        Problem { span, message, label, help: None, also: None }
    }

    /// With a fix.
    pub fn help(mut self, help: String) -> Self {
        self.help = Some(help);
        self
    }

    /// With a second place that explains it.
    pub fn also(mut self, span: std::ops::Range<usize>, label: &'static str) -> Self {
        self.also = Some(Box::new((span, label)));
        self
    }
}

/// Why a run did not pass, as data: for the JSON report and for a caller of
/// `ScenarioLab` or `run_scenario`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// What kind of failure.
    pub cause: Cause,
    /// The step it happened in, when one.
    pub step: Option<String>,
    /// The error as `pglab` prints it (secrets redacted).
    pub message: String,
    /// The exit code `pglab run` gives it (README).
    pub exit_code: i32,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The kinds of failure a run can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A command ended with the wrong status.
    Exec,
    /// SQL was refused, or the server could not be reached.
    Sql,
    /// A condition did not hold before its deadline.
    Timeout,
    /// A check or a step's expectation found the lab not as claimed.
    Check,
    /// The engine could not do what was asked (or is not there).
    Engine,
    /// A scenario, an option or a name that cannot be used.
    Input,
    /// The platform lacks a version the scenario requires: nothing ran.
    NotSupported,
    /// A signal stopped the run.
    Interrupted,
    /// Anything else (a file that could not be written).
    Other,
}
