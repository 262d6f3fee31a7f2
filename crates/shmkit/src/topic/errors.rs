//! The topic's errors. The publisher's non-blocking and timed calls use
//! crossbeam's names (`Full`, `Timeout`); a subscriber's receive calls can
//! also report **`Lagged`**: a lossy subscriber fell behind and lost
//! `missed` messages (exactly that many), and continues with the oldest one
//! still available (as tokio's `broadcast` reports it).
//!
//! A subscriber's calls tell apart: nothing now (`Empty`, `Timeout`), lost
//! messages (`Lagged`), the publisher is gone (`Disconnected`: it closed the
//! topic — [`Error::Closed`] — or died — [`Error::PeerGone`] — after every
//! message it published was received), and everything else (`Failed`).

use crate::error::Error;

macro_rules! helpers {
    ($ty:ident) => {
        impl $ty {
            /// The underlying [`Error`], if it was one (not `Empty`,
            /// `Full`, `Timeout` or `Lagged`).
            pub fn into_error(self) -> Option<Error> {
                match self {
                    $ty::Failed(e) => Some(e),
                    _ => None,
                }
            }
        }

        impl From<Error> for $ty {
            fn from(e: Error) -> Self {
                $ty::Failed(e)
            }
        }
    };
}

macro_rules! recv_helpers {
    ($ty:ident) => {
        impl $ty {
            /// Whether the publisher is gone ([`Error::Closed`] or
            /// [`Error::PeerGone`]) and every message was received.
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $ty::Disconnected(_))
            }

            /// The messages lost, if this is a `Lagged` report.
            pub fn lagged(&self) -> Option<u64> {
                match self {
                    $ty::Lagged { missed } => Some(*missed),
                    _ => None,
                }
            }

            /// The underlying [`Error`], if it was one (not `Empty`,
            /// `Timeout` or `Lagged`).
            pub fn into_error(self) -> Option<Error> {
                match self {
                    $ty::Disconnected(e) | $ty::Failed(e) => Some(e),
                    _ => None,
                }
            }
        }

        impl From<Error> for $ty {
            fn from(e: Error) -> Self {
                if e.is_disconnected() {
                    $ty::Disconnected(e)
                } else {
                    $ty::Failed(e)
                }
            }
        }
    };
}

/// Why [`Publisher::try_send`](super::Publisher::try_send) did not send.
#[derive(Debug, thiserror::Error)]
pub enum TrySendError {
    /// A blocking subscriber has not read what the message would overwrite;
    /// nothing was written. Try again later.
    #[error("topic is full")]
    Full,
    /// The topic failed: corrupt, shrunk, message too large, …
    #[error(transparent)]
    Failed(Error),
}
helpers!(TrySendError);

impl TrySendError {
    /// Whether the ring was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full)
    }
}

/// Why [`Publisher::send_timeout`](super::Publisher::send_timeout) did not
/// finish.
#[derive(Debug, thiserror::Error)]
pub enum SendTimeoutError {
    /// The deadline passed first; nothing was written.
    #[error("timed out waiting for a blocking subscriber")]
    Timeout,
    /// The topic failed.
    #[error(transparent)]
    Failed(Error),
}
helpers!(SendTimeoutError);

impl SendTimeoutError {
    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout)
    }
}

/// Why [`Subscriber::recv`](super::Subscriber::recv) gave no message.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// This (lossy) subscriber fell behind: `missed` messages were
    /// overwritten before it read them. The next call continues with the
    /// oldest message still available.
    #[error("lagged behind the publisher: {missed} messages lost")]
    Lagged {
        /// How many messages were lost, exactly.
        missed: u64,
    },
    /// The publisher has closed the topic or died, and every message it
    /// published has been received.
    #[error(transparent)]
    Disconnected(Error),
    /// The topic failed otherwise.
    #[error(transparent)]
    Failed(Error),
}
recv_helpers!(RecvError);

/// Why [`Subscriber::try_recv`](super::Subscriber::try_recv) gave no
/// message.
#[derive(Debug, thiserror::Error)]
pub enum TryRecvError {
    /// No message now. Try again later.
    #[error("topic is empty")]
    Empty,
    /// See [`RecvError::Lagged`].
    #[error("lagged behind the publisher: {missed} messages lost")]
    Lagged {
        /// How many messages were lost, exactly.
        missed: u64,
    },
    /// See [`RecvError::Disconnected`].
    #[error(transparent)]
    Disconnected(Error),
    /// The topic failed otherwise.
    #[error(transparent)]
    Failed(Error),
}
recv_helpers!(TryRecvError);

impl TryRecvError {
    /// Whether there was no message.
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }
}

/// Why [`Subscriber::recv_timeout`](super::Subscriber::recv_timeout) gave
/// no message.
#[derive(Debug, thiserror::Error)]
pub enum RecvTimeoutError {
    /// No message came before the deadline.
    #[error("timed out waiting for a message")]
    Timeout,
    /// See [`RecvError::Lagged`].
    #[error("lagged behind the publisher: {missed} messages lost")]
    Lagged {
        /// How many messages were lost, exactly.
        missed: u64,
    },
    /// See [`RecvError::Disconnected`].
    #[error(transparent)]
    Disconnected(Error),
    /// The topic failed otherwise.
    #[error(transparent)]
    Failed(Error),
}
recv_helpers!(RecvTimeoutError);

impl RecvTimeoutError {
    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }
}

/// What a wait for a message can end with, inside the subscriber.
#[derive(Debug)]
pub(crate) enum Stop {
    TimedOut,
    Empty,
    Lagged(u64),
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

impl From<Stop> for RecvError {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Lagged(missed) => RecvError::Lagged { missed },
            Stop::Failed(e) => RecvError::from(e),
            Stop::TimedOut | Stop::Empty => unreachable!("no deadline"),
        }
    }
}

impl From<Stop> for TryRecvError {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Lagged(missed) => TryRecvError::Lagged { missed },
            Stop::Failed(e) => TryRecvError::from(e),
            Stop::TimedOut | Stop::Empty => TryRecvError::Empty,
        }
    }
}

impl From<Stop> for RecvTimeoutError {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Lagged(missed) => RecvTimeoutError::Lagged { missed },
            Stop::Failed(e) => RecvTimeoutError::from(e),
            Stop::TimedOut | Stop::Empty => RecvTimeoutError::Timeout,
        }
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Lagged { missed } => RecvTimeoutError::Lagged { missed },
            RecvError::Disconnected(e) => RecvTimeoutError::Disconnected(e),
            RecvError::Failed(e) => RecvTimeoutError::Failed(e),
        }
    }
}

impl From<RecvError> for TryRecvError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Lagged { missed } => TryRecvError::Lagged { missed },
            RecvError::Disconnected(e) => TryRecvError::Disconnected(e),
            RecvError::Failed(e) => TryRecvError::Failed(e),
        }
    }
}
