//! The errors of the non-blocking and timed calls, named as crossbeam names
//! them. Blocking calls return [`crate::Error`] directly.
//!
//! Each tells three outcomes apart by its variant: nothing now (`Full`,
//! `Empty`, `Timeout`: try again), the other side is gone (`Disconnected`:
//! it closed, or died — [`Error::Closed`] or [`Error::PeerGone`] inside),
//! and everything else (`Failed`: corrupt memory, a shrunk object, a message
//! too large, an interrupt, an OS error).

use crate::error::Error;

/// Sorts an error into `Disconnected` or `Failed`.
macro_rules! from_error {
    ($ty:ident) => {
        impl From<Error> for $ty {
            fn from(e: Error) -> Self {
                if e.is_disconnected() {
                    $ty::Disconnected(e)
                } else {
                    $ty::Failed(e)
                }
            }
        }

        impl $ty {
            /// Whether the other side is gone ([`Error::Closed`] or
            /// [`Error::PeerGone`]).
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $ty::Disconnected(_))
            }

            /// The channel's error, if it was one (not `Full`, `Empty` or
            /// `Timeout`).
            pub fn into_error(self) -> Option<Error> {
                match self {
                    $ty::Disconnected(e) | $ty::Failed(e) => Some(e),
                    _ => None,
                }
            }
        }
    };
}

/// Why [`Sender::try_send`](super::Sender::try_send) did not send.
#[derive(Debug, thiserror::Error)]
pub enum TrySendError {
    /// The ring has no room now; nothing was written. Try again later.
    #[error("channel is full")]
    Full,
    /// The receiver has left or died; nothing was written.
    #[error(transparent)]
    Disconnected(Error),
    /// The channel failed otherwise: corrupt, shrunk, message too large, …
    #[error(transparent)]
    Failed(Error),
}
from_error!(TrySendError);

impl TrySendError {
    /// Whether the ring was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full)
    }
}

/// Why [`Sender::send_timeout`](super::Sender::send_timeout) (or another
/// timed call of the sender) did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SendTimeoutError {
    /// The deadline passed first; nothing was written.
    #[error("timed out waiting for the receiver")]
    Timeout,
    /// The receiver has left or died.
    #[error(transparent)]
    Disconnected(Error),
    /// The channel failed otherwise.
    #[error(transparent)]
    Failed(Error),
}
from_error!(SendTimeoutError);

impl SendTimeoutError {
    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout)
    }
}

/// Why [`Receiver::try_recv`](super::Receiver::try_recv) gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum TryRecvError {
    /// No message now. Try again later.
    #[error("channel is empty")]
    Empty,
    /// The sender has left (and every message has been received) or died.
    #[error(transparent)]
    Disconnected(Error),
    /// The channel failed otherwise.
    #[error(transparent)]
    Failed(Error),
}
from_error!(TryRecvError);

impl TryRecvError {
    /// Whether there was no message.
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }
}

/// Why [`Receiver::recv_timeout`](super::Receiver::recv_timeout) gave
/// nothing.
#[derive(Debug, thiserror::Error)]
pub enum RecvTimeoutError {
    /// No message came before the deadline.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The sender has left (and every message has been received) or died.
    #[error(transparent)]
    Disconnected(Error),
    /// The channel failed otherwise.
    #[error(transparent)]
    Failed(Error),
}
from_error!(RecvTimeoutError);

impl RecvTimeoutError {
    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }
}
