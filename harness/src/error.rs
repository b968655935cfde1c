//! One error type for the whole harness: every failure says where it happened
//! (host, command, file:line) and what to look at next.

use miette::{Diagnostic, NamedSource, SourceSpan};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    /// The engine is not there at all; one line, with the fix.
    #[error("cannot reach the Docker daemon at {tried}: {reason}. Start it (`sudo systemctl start docker`) or point DOCKER_HOST at a running engine")]
    #[diagnostic(code(pglab::docker_unreachable))]
    DockerUnreachable { tried: String, reason: String },

    #[error("docker: {context}: {source}")]
    #[diagnostic(code(pglab::docker))]
    Docker {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("image {image} is not on this engine and there is no registry to pull it from: {hint}")]
    #[diagnostic(code(pglab::image_missing))]
    ImageMissing { image: String, hint: String },

    #[error("building image {image} failed at step `{step}`\n--- last lines ---\n{tail}")]
    #[diagnostic(code(pglab::image_build))]
    ImageBuild { image: String, step: String, tail: String },

    #[error("{0}")]
    #[diagnostic(code(pglab::exec))]
    Exec(Box<crate::exec::ExecFailure>),

    #[error("SQL on {host} failed{code}: {message}\n  sql: {sql}", code = sqlstate.as_deref().map(|c| format!(" [SQLSTATE {c}]")).unwrap_or_default())]
    #[diagnostic(code(pglab::sql))]
    Sql { host: String, sql: String, sqlstate: Option<String>, message: String },

    #[error(transparent)]
    #[diagnostic(code(pglab::timeout))]
    Timeout(#[from] Box<crate::wait::WaitTimeout>),

    #[error("{message}")]
    #[diagnostic(code(pglab::scenario))]
    Scenario {
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{label}")]
        span: Option<SourceSpan>,
        label: String,
        #[help]
        help: Option<String>,
    },

    #[error("check failed: {0}")]
    #[diagnostic(code(pglab::check))]
    Check(String),

    #[error("no lab `{0}` on this engine (see `pglab list`)")]
    #[diagnostic(code(pglab::unknown_lab))]
    UnknownLab(String),

    #[error("no host `{host}` in lab {lab}; hosts: {known}")]
    #[diagnostic(code(pglab::unknown_host))]
    UnknownHost { lab: String, host: String, known: String },

    #[error("{context}: {source}")]
    #[diagnostic(code(pglab::io))]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// Bad arguments: an unknown step, a lab with nothing to resume.
    #[error("{0}")]
    #[diagnostic(code(pglab::usage))]
    Usage(String),

    #[error("interrupted")]
    Interrupted,

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn docker(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Docker { context: context.into(), source: Box::new(source) }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// Exit code documented in the README: 1 a check or step failed, 2 bad
    /// input, 3 the environment (Docker, images) is not usable.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Scenario { .. } | Error::Usage(_) | Error::UnknownLab(_) | Error::UnknownHost { .. } => 2,
            Error::DockerUnreachable { .. } | Error::Docker { .. } | Error::ImageMissing { .. } | Error::ImageBuild { .. } | Error::Io { .. } => 3,
            Error::Interrupted => 130,
            _ => 1,
        }
    }
}

/// Keeps the last `n` lines of a text, for error messages that must stay readable.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}
