//! The errors of the non-blocking and timed calls, named as crossbeam names
//! them. Blocking calls return [`crate::Error`] directly.

use crate::error::Error;

/// Why [`Sender::try_send`](super::Sender::try_send) did not send.
#[derive(Debug, thiserror::Error)]
pub enum TrySendError {
    /// The ring has no room now; nothing was written. Try again later.
    #[error("channel is full")]
    Full,
    /// The channel failed: closed, peer gone, corrupt, message too large, …
    #[error(transparent)]
    Failed(#[from] Error),
}

impl TrySendError {
    /// Whether the ring was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full)
    }
    /// Whether the receiver is gone ([`Error::Closed`] or [`Error::PeerGone`]).
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TrySendError::Failed(e) if e.is_disconnected())
    }
}

/// Why [`Sender::send_timeout`](super::Sender::send_timeout) did not send.
#[derive(Debug, thiserror::Error)]
pub enum SendTimeoutError {
    /// No room came free before the deadline; nothing was written.
    #[error("timed out waiting for room in the channel")]
    Timeout,
    /// The channel failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl SendTimeoutError {
    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout)
    }
    /// Whether the receiver is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendTimeoutError::Failed(e) if e.is_disconnected())
    }
}

/// Why [`Receiver::try_recv`](super::Receiver::try_recv) gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum TryRecvError {
    /// No message now. Try again later.
    #[error("channel is empty")]
    Empty,
    /// The channel failed, or is closed and drained.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl TryRecvError {
    /// Whether there was no message.
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }
    /// Whether the sender is gone and every message has been received.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TryRecvError::Failed(e) if e.is_disconnected())
    }
}

/// Why [`Receiver::recv_timeout`](super::Receiver::recv_timeout) gave
/// nothing.
#[derive(Debug, thiserror::Error)]
pub enum RecvTimeoutError {
    /// No message came before the deadline.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The channel failed, or is closed and drained.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl RecvTimeoutError {
    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }
    /// Whether the sender is gone and every message has been received.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvTimeoutError::Failed(e) if e.is_disconnected())
    }
}
