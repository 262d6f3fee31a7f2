//! The command's errors and their exit codes (documented in `--help` and the
//! README).

use std::process::ExitCode;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// An error from the library; its message names the object.
    Shm(shmkit::Error),
    /// Writing the output failed (a closed pipe ends quietly).
    Io(std::io::Error),
    /// A failure the command describes itself, with its exit code.
    Message(String, u8),
    /// Failures already printed one by one (`rm a b c` goes on after a
    /// failed target); only the exit code is left to give.
    Reported(u8),
}

impl From<shmkit::Error> for Failure {
    fn from(e: shmkit::Error) -> Self {
        Failure::Shm(e)
    }
}

impl From<shmkit::posix::InvalidName> for Failure {
    fn from(e: shmkit::posix::InvalidName) -> Self {
        Failure::Shm(e.into())
    }
}

impl From<shmkit::sysv::KeyError> for Failure {
    fn from(e: shmkit::sysv::KeyError) -> Self {
        Failure::Shm(e.into())
    }
}

#[cfg(feature = "bench")]
impl From<crate::bench::Error> for Failure {
    fn from(e: crate::bench::Error) -> Self {
        match (&e, e.as_shmkit()) {
            (crate::bench::Error::Usage(msg), _) => Failure::Message(msg.clone(), 2),
            (_, Some(inner)) => Failure::Message(e.to_string(), code(inner)),
            _ => Failure::Message(e.to_string(), 1),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

/// The exit code for a library error.
pub fn code(e: &shmkit::Error) -> u8 {
    use shmkit::Error::*;
    match e {
        // a name the rules refuse is a usage error, wherever it is found out
        InvalidName { .. } => 2,
        NotFound { .. } => 3,
        AlreadyExists { .. } => 4,
        PermissionDenied { .. } | Untrusted { .. } => 5,
        NoSpace { .. } | TooLarge { .. } | OutOfRange { .. } => 6,
        KeyPath { source, .. } if *source == shmkit::error::Errno::NOENT => 3,
        KeyPath { source, .. } if *source == shmkit::error::Errno::ACCESS => 5,
        Corrupt { .. } | Truncated { .. } => 7,
        PeerGone { .. } => 8,
        TimedOut { .. } => 9,
        MessageTooLarge { .. } => 6,
        // ended by SIGINT, SIGTERM or SIGHUP: the status a shell expects
        Interrupted { .. } => crate::signals::interrupted().map_or(130, |s| s.exit_code()),
        _ => 1,
    }
}

impl Failure {
    /// Prints the error as one line and returns its exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Shm(e @ shmkit::Error::Untrusted { .. }) => {
                // the library says "allow it explicitly"; here that is a flag
                warn(format!("{e} with --allow-foreign"));
                ExitCode::from(code(&e))
            }
            // a signal ended the command, as the user asked: nothing to say
            Failure::Shm(e @ shmkit::Error::Interrupted { .. }) => ExitCode::from(code(&e)),
            Failure::Shm(e) => {
                warn(&e);
                ExitCode::from(code(&e))
            }
            Failure::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Failure::Io(e) => {
                warn(&e);
                ExitCode::from(1)
            }
            Failure::Message(msg, code) => {
                warn(&msg);
                ExitCode::from(code)
            }
            Failure::Reported(code) => ExitCode::from(code),
        }
    }
}

impl Failure {
    /// Whether this "failure" still ends the command with success: a closed
    /// pipe on standard output (`shmkit create … | head -0`).
    pub fn is_success(&self) -> bool {
        matches!(self, Failure::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Returns `result`, after removing the object this command created (when
/// `created`) if the command failed: a failed command leaves nothing new
/// behind. If that removal fails too, says so, and the command's own error
/// stays the one reported.
pub fn undo_if_failed<T>(result: Result<T>, created: bool, remove: impl FnOnce() -> shmkit::Result<()>) -> Result<T> {
    if let Err(e) = &result {
        if created && !e.is_success() {
            if let Err(undo) = remove() {
                warn(format!("{undo} (while removing what this command created)"));
            }
        }
    }
    result
}

/// Prints `shmkit: <message>` on standard error; never panics, even when
/// standard error is closed.
pub fn warn(message: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "shmkit: {message}");
}

/// The result of a subcommand.
pub type Result<T = ()> = std::result::Result<T, Failure>;
