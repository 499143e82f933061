//! The error every command returns, and its [`Kind`]: whose fault a failure is, the one thing
//! `main` decides the exit code from. Each subsystem has its own typed error; this wraps them,
//! keeping their `source` chains, which [`Error::report`] prints as one line.

use crate::config::ConfigError;
use crate::config::schemes::SchemeError;
use crate::engine::calendar::UnknownZone;
use crate::kafka::KafkaError;
use crate::ops::OpsError;
use crate::score::ScoreError;
use crate::source::SourceError;
use crate::store::StoreError;

/// Whose fault a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The command line asked for something impossible.
    Usage,
    /// The configuration (files, environment, a store made for something else) is wrong.
    Config,
    /// An input (an event file, a score input) cannot be read or used.
    Input,
    /// The outside world failed: a broker, a database, a disk, the network.
    World,
    /// A bug of ours.
    Internal,
}

impl Kind {
    /// The process's exit code: 2 for what the user must change in the command or the
    /// configuration, 1 for everything else.
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Usage | Kind::Config => 2,
            Kind::Input | Kind::World | Kind::Internal => 1,
        }
    }
}

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage, said in the user's terms.
    #[error("{0}")]
    Usage(String),
    /// The configuration does not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configured time zone is unknown.
    #[error(transparent)]
    Zone(#[from] UnknownZone),
    /// An OPR scheme cannot be found or is invalid.
    #[error(transparent)]
    Scheme(#[from] SchemeError),
    /// Scoring refused its inputs or arguments.
    #[error(transparent)]
    Score(#[from] ScoreError),
    /// An event source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The month outputs could not be written.
    #[error(transparent)]
    Sink(#[from] crate::sink::outputs::SinkError),
    /// The state store failed or belongs to something else.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `report` found no state store to read, and was given no event files.
    #[error("{0}; to report from event files instead, give --replay FILE…")]
    ReportStore(StoreError),
    /// Kafka: the consumer group, the dead-letter producer or the simulator's producer.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The service's endpoint or alerting could not start.
    #[error(transparent)]
    Ops(#[from] crate::ops::OpsError),
    /// The report could not be rendered.
    #[error(transparent)]
    Report(#[from] crate::report::error::ReportError),
    /// A file could not be read (or is too large, or not text); the error names it.
    #[error(transparent)]
    Read(#[from] crate::textfile::TextFileError),
    /// Output could not be written (the message names the file).
    #[error(transparent)]
    Output(#[from] std::io::Error),
    /// Something that cannot happen did.
    #[error("internal: {0}")]
    Internal(String),
}

/// A sign-off's failure keeps its kind: bad usage is still usage, the store still the store.
impl From<crate::signoff::SignOffError> for Error {
    fn from(e: crate::signoff::SignOffError) -> Error {
        use crate::signoff::SignOffError as S;
        match e {
            S::Usage(m) => Error::Usage(m),
            S::Zone(z) => Error::Zone(z),
            S::Store(s) => Error::Store(s),
        }
    }
}

impl Error {
    /// Whether it is standard output's reader having gone (`srv-opr status --json | head -1`):
    /// the command ends quietly with exit 0, as `head` expects, whatever wrapped the error.
    pub fn is_closed_pipe(&self) -> bool {
        // `transparent` variants hand out their inner error's source, not the inner error: look
        // at the one this holds first.
        let first: &(dyn std::error::Error + 'static) = match self {
            Error::Output(io) => io,
            Error::Source(e) => e,
            Error::Sink(e) => e,
            Error::Kafka(e) => e,
            _ => self,
        };
        let mut e = Some(first);
        while let Some(x) = e {
            if let Some(io) = x.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return true;
            }
            e = x.source();
        }
        false
    }

    /// Whose fault it is.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Usage(_) => Kind::Usage,
            Error::Config(_) | Error::Zone(_) => Kind::Config,
            Error::Scheme(_) => Kind::Usage,
            Error::Score(e) => match e {
                ScoreError::NonPositiveMargin(_)
                | ScoreError::UnknownMargin(_)
                | ScoreError::WhatIf(_) => Kind::Usage,
                ScoreError::Inputs(_) | ScoreError::Report { .. } => Kind::Input,
                ScoreError::Streaming(_) => Kind::Internal,
            },
            Error::Source(_) | Error::Read(_) => Kind::Input,
            // A store that belongs to something else is a configuration problem.
            // So is a secret that cannot be read (a variable not set, a file not mounted).
            Error::Store(StoreError::Refused(_) | StoreError::Secret(_)) => Kind::Config,
            Error::Store(_) | Error::ReportStore(_) => Kind::World,
            Error::Kafka(
                KafkaError::Store(StoreError::Refused(_) | StoreError::Secret(_))
                | KafkaError::Secret(_),
            ) => Kind::Config,
            // A property librdkafka does not know, a value it refuses, or a client it cannot
            // make from them (a certificate file it cannot load).
            Error::Kafka(KafkaError::Client {
                source:
                    rdkafka::error::KafkaError::ClientConfig(..)
                    | rdkafka::error::KafkaError::ClientCreation(..),
                ..
            }) => Kind::Config,
            // A wrong password or an untrusted certificate: the operator must change a setting.
            Error::Kafka(KafkaError::Authentication { .. } | KafkaError::Tls { .. }) => {
                Kind::Config
            }
            Error::Kafka(_) => Kind::World,
            // A TLS file or secret of the Alertmanager client, or the web configuration.
            Error::Ops(
                OpsError::Alerts(crate::ops::alerts::SpawnError::Alertmanager(_))
                | OpsError::Http(crate::ops::http::ServeError::WebConfig(_)),
            ) => Kind::Config,
            Error::Sink(crate::sink::outputs::SinkError::Scheme(_)) => Kind::Config,
            Error::Ops(_) | Error::Output(_) | Error::Sink(_) => Kind::World,
            Error::Report(_) | Error::Internal(_) => Kind::Internal,
        }
    }

    /// The error and its causes as one line each joined by `: ` (the first line is the reason;
    /// a list of problems follows on the next lines).
    pub fn report(&self) -> String {
        crate::diagnostic::chain(self)
    }
}
