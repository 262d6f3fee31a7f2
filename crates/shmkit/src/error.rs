//! One typed error for the whole library.
//!
//! Every error names the object it concerns (its [`Target`]) and, where the
//! operating system reported it, keeps the OS error as its
//! [`source`](std::error::Error::source). `Display` is one sentence a user can
//! act on, so a command-line tool can print it as it is:
//!
//! ```
//! use shmkit::posix::{PosixShm, ShmName};
//!
//! let name = ShmName::new("/shmkit-doc-error-surely-missing").unwrap();
//! let err = PosixShm::open(&name, &Default::default()).unwrap_err();
//! assert!(matches!(err, shmkit::Error::NotFound { .. }));
//! assert_eq!(err.to_string(), "/shmkit-doc-error-surely-missing: no such segment");
//! ```

use std::fmt;
use std::path::PathBuf;

pub use rustix::io::Errno;

use crate::key::Key;
use crate::name::ShmName;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The object an error is about.
///
/// It displays in the syntax the `shmkit` command line accepts:
/// `/name` for a POSIX object, `key:0x0000abcd` for a System V key and
/// `id:123` for a System V segment id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A POSIX shared-memory object.
    Posix(ShmName),
    /// A System V segment found (or to be created) by key.
    SysvKey(Key),
    /// A System V segment by id.
    SysvId(i32),
    /// A file path, as given to `ftok`.
    Path(PathBuf),
    /// A mapping not tied to one named object (for example anonymous memory).
    Memory,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Posix(name) => f.write_str(name.as_str()),
            Target::SysvKey(key) if key.is_private() => f.write_str("key:IPC_PRIVATE"),
            Target::SysvKey(key) => write!(f, "key:{key}"),
            Target::SysvId(id) => write!(f, "id:{id}"),
            Target::Path(path) => write!(f, "{}", path.display()),
            Target::Memory => f.write_str("memory"),
        }
    }
}

/// A participant's part in a channel or another pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// A channel's (or a many-to-one's) sending end.
    Sender,
    /// A channel's (or a many-to-one's) receiving end.
    Receiver,
    /// A topic's one publisher.
    Publisher,
    /// One of a topic's subscribers.
    Subscriber,
    /// A service's one server.
    Server,
    /// One of a service's clients.
    Client,
    /// A latest value's one writer.
    Writer,
    /// A reader of a latest value.
    Reader,
}

impl Role {
    /// The role's name: `"sender"`, `"receiver"`, `"publisher"`,
    /// `"subscriber"`, `"server"`, `"client"`, `"writer"`, `"reader"`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
            Role::Server => "server",
            Role::Client => "client",
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A kernel limit that a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The limit's name as the kernel documents it, e.g. `SHMMAX`.
    pub name: &'static str,
    /// Its value, when it could be read (bytes for sizes, a count otherwise).
    pub value: Option<u64>,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Some(v) => write!(f, "{} = {v}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// Formats an optional limit as `" (SHMMAX = 123)"`, or nothing.
fn limit_suffix(limit: &Option<Limit>) -> String {
    limit.map(|l| format!(" ({l})")).unwrap_or_default()
}

/// Everything that can go wrong in shmkit.
///
/// Match on the variant for the meaning; the OS error, where there was one,
/// is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A POSIX name that the rules refuse; nothing was called.
    #[error("{name:?}: invalid shared memory name: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// An argument that cannot be used (a zero size, a bad `ftok` id, …).
    #[error("{target}: {reason}")]
    InvalidArgument {
        /// The object the call was for.
        target: Target,
        /// What is wrong with the argument.
        reason: String,
    },

    /// The object does not exist.
    #[error("{target}: no such segment")]
    NotFound {
        /// The missing object.
        target: Target,
    },

    /// The object exists already, and the call asked to create it exclusively.
    #[error("{target}: already exists")]
    AlreadyExists {
        /// The existing object.
        target: Target,
    },

    /// The caller lacks the permission the operation needs.
    #[error("{target}: permission denied ({op})")]
    PermissionDenied {
        /// The object.
        target: Target,
        /// The operation refused, e.g. `shm_open`.
        op: &'static str,
        /// The OS error (`EACCES` or `EPERM`).
        #[source]
        source: Errno,
    },

    /// Not enough memory or space for the request, or a kernel limit reached.
    #[error("{target}: not enough space for {requested} bytes{}: {source}", limit_suffix(.limit))]
    NoSpace {
        /// The object.
        target: Target,
        /// The size asked for.
        requested: u64,
        /// The limit that was hit, when known.
        limit: Option<Limit>,
        /// The OS error (`ENOSPC`, `ENOMEM`, `EFBIG`, …).
        #[source]
        source: Errno,
    },

    /// A size the kernel refuses because of a limit (`SHMMAX`, `SHMMIN`).
    #[error("{target}: size {requested} is outside the allowed range{}", limit_suffix(.limit))]
    TooLarge {
        /// The object.
        target: Target,
        /// The size asked for.
        requested: u64,
        /// The limit that refused it, when known.
        limit: Option<Limit>,
    },

    /// An existing object has another size than the caller asked for.
    #[error("{target}: is {actual} bytes, but {expected} bytes were asked for")]
    SizeMismatch {
        /// The object.
        target: Target,
        /// Its real size.
        actual: u64,
        /// The size asked for.
        expected: u64,
    },

    /// An access outside the object or mapping.
    #[error("{target}: {len} bytes at offset {offset} do not fit in its {size} bytes")]
    OutOfRange {
        /// The object.
        target: Target,
        /// Where the access starts.
        offset: u64,
        /// How many bytes it covers.
        len: u64,
        /// The size of the object or mapping.
        size: u64,
    },

    /// A write or a writable mapping asked of something opened read-only.
    #[error("{target}: opened read-only, cannot write")]
    ReadOnly {
        /// The object.
        target: Target,
    },

    /// An atomic access at an address not aligned for it.
    #[error("{target}: offset {offset} is not aligned to {align} bytes")]
    Misaligned {
        /// The object.
        target: Target,
        /// The offset asked for.
        offset: u64,
        /// The alignment the access needs.
        align: u64,
    },

    /// Data in shared memory that does not follow its format.
    #[error("{target}: corrupt data: {reason}")]
    Corrupt {
        /// The object.
        target: Target,
        /// What was wrong.
        reason: String,
    },

    /// The object shrank while mapped here: another process truncated it
    /// (or, for a sparse object, `/dev/shm` had no page left to give). The
    /// mapping now shows private zero pages instead of the object, so what
    /// was read or written through it since is not the object's.
    #[error(
        "{target}: the object shrank while mapped here (another process truncated it, or /dev/shm ran out of space); data read or written since is lost"
    )]
    Truncated {
        /// The object.
        target: Target,
    },

    /// An existing object that another user owns, or whose permissions are
    /// wider than asked: someone may have created it first to read or
    /// change the traffic. Refused unless the caller allows it explicitly.
    #[error(
        "{target}: refused: {reason} (owner uid {uid}, mode {mode:04o}); if this is expected, allow it explicitly"
    )]
    Untrusted {
        /// The object.
        target: Target,
        /// Its owner's user id.
        uid: u32,
        /// Its permission bits.
        mode: u32,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The side asked for is taken by another process.
    #[error("{target}: already has a {side} (pid {pid}{})", if *.alive { "" } else { ", which is no longer running: remove the object to start over" })]
    Busy {
        /// The channel.
        target: Target,
        /// The side asked for.
        side: Role,
        /// The process that holds it (in its own PID namespace).
        pid: u32,
        /// Whether that process still takes part.
        alive: bool,
    },

    /// The other side has left the channel in order (and, for a receiver,
    /// every message has been received).
    #[error("{target}: closed: the {side} has finished")]
    Closed {
        /// The channel.
        target: Target,
        /// The side that left.
        side: Role,
    },

    /// The other side's process died without closing the channel.
    #[error("{target}: the {side} (pid {pid}) is gone: it exited without closing its end")]
    PeerGone {
        /// The channel.
        target: Target,
        /// The side that died.
        side: Role,
        /// Its pid, in its own PID namespace (another container's pid may
        /// name a different process here).
        pid: u32,
    },

    /// A wait ended at its deadline.
    #[error("{target}: timed out waiting for {waiting_for}")]
    TimedOut {
        /// The channel.
        target: Target,
        /// What it waited for, e.g. `"a receiver"`.
        waiting_for: &'static str,
    },

    /// A wait ended because the caller's interrupt flag was set (see
    /// `channel::Options::interrupt`).
    #[error("{target}: interrupted")]
    Interrupted {
        /// The object waited on.
        target: Target,
    },

    /// A message longer than the channel carries.
    #[error("{target}: a message of {len} bytes is longer than the {max} bytes this object carries")]
    MessageTooLarge {
        /// The channel.
        target: Target,
        /// The message's length.
        len: u64,
        /// The longest message the channel carries (half its capacity, less
        /// 8 bytes).
        max: u64,
    },

    /// Two participants asked for different capacities: the first one's
    /// choice stands, and both learn of the conflict.
    #[error("{target}: capacity conflict: this side asked for {expected} bytes, the other side for {actual} bytes; ask both for the same capacity, or choose it on one side only")]
    CapacityMismatch {
        /// The channel.
        target: Target,
        /// The capacity the other side chose (the channel's, if it was
        /// decided first).
        actual: u64,
        /// The capacity this side asked for.
        expected: u64,
    },

    /// An object made by another version of shmkit, whose layout this
    /// version does not read.
    #[error("{target}: made by another shmkit version (layout version {version}; this shmkit reads version {supported}); remove it, or use the same shmkit on both sides")]
    Incompatible {
        /// The object.
        target: Target,
        /// Its layout version.
        version: u32,
        /// The version this shmkit reads.
        supported: u32,
    },

    /// The path given to `ftok` cannot be used.
    #[error("{}: cannot make a System V key from this path: {source}", .path.display())]
    KeyPath {
        /// The path.
        path: PathBuf,
        /// The OS error from `stat`/`ftok`.
        #[source]
        source: Errno,
    },

    /// Any other OS error, with the operation that failed.
    #[error("{target}: {op} failed: {source}")]
    Os {
        /// The object.
        target: Target,
        /// The call that failed, e.g. `mmap`.
        op: &'static str,
        /// The OS error.
        #[source]
        source: Errno,
    },
}

impl From<crate::name::InvalidName> for Error {
    fn from(e: crate::name::InvalidName) -> Self {
        Error::InvalidName {
            name: e.name,
            reason: e.reason,
        }
    }
}

impl From<crate::key::KeyError> for Error {
    fn from(e: crate::key::KeyError) -> Self {
        match e {
            crate::key::KeyError::Path { path, source } => Error::KeyPath { path, source },
            crate::key::KeyError::Invalid { path, reason } => Error::InvalidArgument {
                target: path.map_or(Target::Memory, Target::Path),
                reason,
            },
        }
    }
}

impl Error {
    /// Turns an OS error from `op` on `target` into the variant that says
    /// what it means. Size-related errors need more context: see
    /// [`Error::no_space`].
    pub(crate) fn from_errno(op: &'static str, target: &Target, errno: Errno) -> Error {
        let target = target.clone();
        match errno {
            Errno::NOENT => Error::NotFound { target },
            Errno::EXIST => Error::AlreadyExists { target },
            Errno::ACCESS | Errno::PERM => Error::PermissionDenied {
                target,
                op,
                source: errno,
            },
            _ => Error::Os {
                target,
                op,
                source: errno,
            },
        }
    }

    /// A "no space" error for `requested` bytes.
    pub(crate) fn no_space(target: &Target, requested: u64, limit: Option<Limit>, errno: Errno) -> Error {
        Error::NoSpace {
            target: target.clone(),
            requested,
            limit,
            source: errno,
        }
    }

    /// The object this error is about, when there is one.
    ///
    /// ```
    /// let name = shmkit::posix::ShmName::new("/shmkit-doc-target-missing").unwrap();
    /// let err = shmkit::posix::PosixShm::open(&name, &Default::default()).unwrap_err();
    /// assert_eq!(err.target().unwrap().to_string(), "/shmkit-doc-target-missing");
    /// ```
    pub fn target(&self) -> Option<&Target> {
        match self {
            Error::InvalidName { .. } | Error::KeyPath { .. } => None,
            Error::InvalidArgument { target, .. }
            | Error::NotFound { target }
            | Error::AlreadyExists { target }
            | Error::PermissionDenied { target, .. }
            | Error::NoSpace { target, .. }
            | Error::TooLarge { target, .. }
            | Error::SizeMismatch { target, .. }
            | Error::OutOfRange { target, .. }
            | Error::ReadOnly { target }
            | Error::Misaligned { target, .. }
            | Error::Corrupt { target, .. }
            | Error::Truncated { target }
            | Error::Busy { target, .. }
            | Error::Untrusted { target, .. }
            | Error::Closed { target, .. }
            | Error::PeerGone { target, .. }
            | Error::TimedOut { target, .. }
            | Error::MessageTooLarge { target, .. }
            | Error::CapacityMismatch { target, .. }
            | Error::Incompatible { target, .. }
            | Error::Interrupted { target }
            | Error::Os { target, .. } => Some(target),
        }
    }

    /// Whether the other side of a channel is gone, in order or not
    /// ([`Error::Closed`] or [`Error::PeerGone`]), as crossbeam's
    /// `is_disconnected`.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Closed { .. } | Error::PeerGone { .. })
    }

    /// The OS error behind this error, when there is one.
    ///
    /// ```
    /// let name = shmkit::posix::ShmName::new("/shmkit-doc-errno-missing").unwrap();
    /// let err = shmkit::posix::PosixShm::open(&name, &Default::default()).unwrap_err();
    /// assert_eq!(err.errno(), None); // NotFound says it all
    /// ```
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::PermissionDenied { source, .. }
            | Error::NoSpace { source, .. }
            | Error::KeyPath { source, .. }
            | Error::Os { source, .. } => Some(*source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_maps_to_meaning() {
        let t = Target::SysvId(7);
        assert!(matches!(
            Error::from_errno("shmget", &t, Errno::NOENT),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            Error::from_errno("shmget", &t, Errno::EXIST),
            Error::AlreadyExists { .. }
        ));
        assert!(matches!(
            Error::from_errno("shmget", &t, Errno::PERM),
            Error::PermissionDenied { .. }
        ));
        let e = Error::from_errno("shmat", &t, Errno::INVAL);
        assert_eq!(e.to_string(), format!("id:7: shmat failed: {}", Errno::INVAL));
    }

    #[test]
    fn targets_display_in_cli_syntax() {
        assert_eq!(Target::SysvKey(Key::new(0x1234)).to_string(), "key:0x00001234");
        assert_eq!(Target::SysvKey(Key::PRIVATE).to_string(), "key:IPC_PRIVATE");
        assert_eq!(Target::SysvId(42).to_string(), "id:42");
        let limit = Some(Limit {
            name: "SHMMAX",
            value: Some(10),
        });
        let e = Error::TooLarge {
            target: Target::SysvId(1),
            requested: 20,
            limit,
        };
        assert_eq!(
            e.to_string(),
            "id:1: size 20 is outside the allowed range (SHMMAX = 10)"
        );
    }
}
