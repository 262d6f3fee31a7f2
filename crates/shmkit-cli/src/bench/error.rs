//! The benchmark's one error type.

/// Why a benchmark (or one of its measurements) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The shmkit library failed (a channel or a segment).
    #[error(transparent)]
    Shmkit(#[from] shmkit::Error),
    /// A name the rules refuse.
    #[error(transparent)]
    Name(#[from] shmkit::posix::InvalidName),
    /// A system call or an I/O operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The arguments cannot be used (the message says why).
    #[error("{0}")]
    Usage(String),
    /// The second process failed, died, or ended too early.
    #[error("the second process {0}")]
    Peer(String),
    /// A received message was not the one sent.
    #[error("wrong data received: {0}")]
    Check(String),
    /// One measurement failed.
    #[error("{case}: {source}")]
    Case {
        /// Which measurement: pattern, transport and size.
        case: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
    /// Some measurements failed; their errors were printed on stderr and
    /// the others' results on stdout.
    #[error("{failed} of {total} measurements failed")]
    SomeFailed {
        /// How many failed.
        failed: usize,
        /// How many were run.
        total: usize,
    },
}

impl Error {
    /// The library error behind this one, if any, for a caller that maps
    /// library errors to exit codes.
    pub fn as_shmkit(&self) -> Option<&shmkit::Error> {
        match self {
            Error::Shmkit(e) => Some(e),
            Error::Case { source, .. } => source.as_shmkit(),
            _ => None,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: impl Into<std::io::Error>) -> Error {
        Error::Io {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// The benchmark's result type.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
