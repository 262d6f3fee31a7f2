//! Channels: fast, crash-aware messages from one process to another.
//!
//! A channel is one POSIX shared-memory object holding a header and a ring
//! of bytes. One process holds its [`Sender`], another its [`Receiver`];
//! messages are byte strings of 0 bytes up to half the capacity (less 8),
//! delivered in order, each exactly once.
//!
//! - **Either side may start first.** `connect` creates the object
//!   (exclusively, mode `0600`) or opens it, waits until the creator has
//!   published the header, claims its side and waits for the other side to
//!   join, at most [`Options::timeout`]. The creator's capacity wins; an
//!   opener that asks for another gets [`Error::CapacityMismatch`](crate::Error::CapacityMismatch).
//! - **Nobody else's object.** An existing channel object owned by another
//!   user, or with wider permissions than [`Options::mode`] (someone may have
//!   made it first to read the traffic), is refused with
//!   [`Error::Untrusted`](crate::Error::Untrusted) unless
//!   [`Options::allow_foreign`] says otherwise.
//! - **One sender, one receiver.** A second sender (or receiver) gets
//!   [`Error::Busy`](crate::Error::Busy) with the pid that holds the side.
//! - **Waiting costs no CPU.** A side that must wait spins briefly
//!   ([`Options::spin`]), then sleeps on a futex; the other side makes the
//!   wake-up system call only when the sleeper's flag is up, so a busy
//!   channel costs no system calls at all.
//! - **Waiting without a thread.** Each endpoint is a file descriptor
//!   (`AsFd`) that becomes readable when it may make progress, for
//!   `poll`/`epoll`, a [`WaitSet`](crate::wait::WaitSet) or tokio
//!   (`shmkit::tokio`, feature `tokio`): see [`crate::wait`]. Still no system
//!   call on the busy path: the other side rings the descriptor only when a
//!   `try_*` call found nothing to do and armed it.
//! - **Closing.** Dropping the sender lets the receiver drain every
//!   committed message; then `recv` returns [`Error::Closed`](crate::Error::Closed).
//!   Dropping the receiver makes `send` fail with `Closed`.
//! - **Crashes.** If the other process dies, even by `SIGKILL`, a blocked or
//!   later call returns [`Error::PeerGone`](crate::Error::PeerGone) within a
//!   tenth of a second (after the receiver has drained what was committed).
//!   Processes are named by pid *and* start time and watched through a
//!   pidfd, so a reused pid does not fool it. A sender notices a dead
//!   receiver when it has to wait (the ring is full), in `try_send` when the
//!   ring is full, and in [`Sender::flush`]: until then its messages simply
//!   queue in the ring.
//! - **Cleanup.** A side that has left is never taken again, so the first
//!   side to leave removes the object's name (the other keeps its mapping and
//!   finishes); a survivor removes it when the other side died. Only if both
//!   die without leaving does the object stay (`shmkit ls --stale` shows it),
//!   and the next `connect` to that name takes it over.
//! - **Untrusted memory.** Each side keeps its own counter privately and
//!   reads the other's once, validating it; frame lengths and kinds are
//!   validated too. A peer writing arbitrary bytes anywhere in the object can
//!   make this side see [`Error::Corrupt`](crate::Error::Corrupt) or receive
//!   wrong payload bytes in valid frames, never undefined behaviour, a panic,
//!   an out-of-bounds access, an unbounded allocation or an endless wait.
//! - **Shrinking.** A process that truncates the channel's object while it
//!   is in use makes both sides' next operations (and a blocked wait, within
//!   a tenth of a second) return [`Error::Truncated`](crate::Error::Truncated)
//!   instead of `SIGBUS`: see [`Mapping`](crate::map::Mapping#when-the-object-shrinks-under-the-mapping).
//!   After an I/O error on a grant or guard (`EFAULT`), ask
//!   [`Sender::check_intact`] or [`Receiver::check_intact`].
//!
//! # Examples
//!
//! ```
//! use shmkit::channel::{Options, Receiver, Sender};
//! use shmkit::posix::ShmName;
//!
//! let name = ShmName::new(format!("/shmkit-doc-chan-{}", std::process::id()))?;
//! // usually another process; a thread here
//! let rx_name = name.clone();
//! let consumer = std::thread::spawn(move || -> shmkit::Result<usize> {
//!     let mut rx = Receiver::connect(&rx_name, &Options::new())?;
//!     let mut n = 0;
//!     for msg in rx.iter() {
//!         assert_eq!(msg?, format!("message {n}").as_bytes());
//!         n += 1;
//!     }
//!     Ok(n) // the iterator ends when the sender has closed
//! });
//!
//! let mut tx = Sender::connect(&name, &Options::new())?;
//! for i in 0..1000 {
//!     tx.send(format!("message {i}").as_bytes())?;
//! }
//! drop(tx); // close
//! assert_eq!(consumer.join().unwrap()?, 1000);
//! // both sides are done: the object is gone
//! assert!(shmkit::posix::PosixShm::open(&name, &Default::default()).is_err());
//! # Ok::<(), shmkit::Error>(())
//! ```

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[allow(unsafe_code)] // the header and the ring's memory in the mapping
mod connect;
mod errors;
mod info;
#[allow(unsafe_code)] // the header's place in the mapping
pub(crate) mod layout;
mod receiver;
mod sender;

use layout::layout_of;

pub use crate::error::Role;
pub use errors::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
pub use info::{info, ChannelInfo, SideInfo};
pub use receiver::{Iter, Receiver, RecvGuard};
pub use sender::{Grant, Sender};

/// The fuzz harness, for the targets in `fuzz/` (feature `fuzz`).
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod fuzz {
    /// Runs the ring's fuzz harness on `data`: arbitrary bytes as the
    /// ring's memory and counters, rewritten between operations by a
    /// "peer", with one or two consumers. It must end without a panic,
    /// whatever the bytes.
    pub fn ring(data: &[u8]) {
        crate::core::ring::fuzz::run(data);
    }
}

/// The smallest capacity a channel can have, in bytes.
pub const MIN_CAPACITY: u64 = crate::core::ring::MIN_CAPACITY;

/// The largest capacity a channel can have, in bytes (1 TiB).
pub const MAX_CAPACITY: u64 = crate::core::ring::MAX_CAPACITY;

/// The longest message any channel carries: that of a channel of
/// [`MAX_CAPACITY`]. A channel of capacity `c` carries messages of up to
/// [`max_message(c)`](max_message) bytes.
pub const MAX_MESSAGE: u64 = max_message(MAX_CAPACITY);

/// The longest message a channel of `capacity` bytes carries: half the
/// capacity, less 8.
///
/// ```
/// assert_eq!(shmkit::channel::max_message(1 << 20), 524_280);
/// ```
pub const fn max_message(capacity: u64) -> u64 {
    capacity / 2 - crate::core::ring::FRAME_HEADER
}

/// The capacity a new channel gets unless asked otherwise: 1 MiB.
pub const DEFAULT_CAPACITY: u64 = 1 << 20;

/// How long a waiting side spins before it sleeps, unless asked otherwise.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);

/// How to connect: a plain value, reusable for many calls.
///
/// ```
/// use std::time::Duration;
/// let opts = shmkit::channel::Options::new()
///     .capacity(4 << 20)
///     .timeout(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    capacity: Option<u64>,
    timeout: Option<Duration>,
    spin: Duration,
    mode: u32,
    allow_foreign: bool,
    interrupt: Option<Arc<AtomicBool>>,
}

impl PartialEq for Options {
    fn eq(&self, other: &Options) -> bool {
        let same_flag = match (&self.interrupt, &other.interrupt) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_flag
            && (self.capacity, self.timeout, self.spin, self.mode, self.allow_foreign)
                == (
                    other.capacity,
                    other.timeout,
                    other.spin,
                    other.mode,
                    other.allow_foreign,
                )
    }
}

impl Eq for Options {}

impl Default for Options {
    fn default() -> Self {
        Options {
            capacity: None,
            timeout: None,
            spin: DEFAULT_SPIN,
            mode: 0o600,
            allow_foreign: false,
            interrupt: None,
        }
    }
}

impl Options {
    /// The defaults: the creator's capacity is [`DEFAULT_CAPACITY`], no
    /// timeout, [`DEFAULT_SPIN`], mode `0600`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ring's size in bytes, a power of two from 64 bytes to 4 GiB. The
    /// creator makes the channel this big; an opener insists on it (without
    /// it, an opener takes whatever the creator chose).
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = Some(bytes);
        self
    }

    /// How long `connect` waits for the other side (default: for ever).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long a waiting side spins before sleeping on a futex.
    /// `Duration::ZERO` sleeps at once (least CPU); `Duration::MAX` never
    /// sleeps (least latency, one busy core per waiting side).
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// The permission bits of a new channel object (default `0600`). An
    /// existing channel whose permissions are wider is refused, unless
    /// [`allow_foreign`](Options::allow_foreign).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Accepts an existing channel object owned by another user or with
    /// wider permissions than [`mode`](Options::mode). By default such an
    /// object is refused with [`Error::Untrusted`](crate::Error::Untrusted):
    /// whoever made it can read and change the traffic.
    pub fn allow_foreign(mut self, yes: bool) -> Self {
        self.allow_foreign = yes;
        self
    }

    /// A flag that ends any wait of the endpoint (connecting, waiting for
    /// room or for a message) with [`Error::Interrupted`](crate::Error::Interrupted)
    /// once it is set, within a twentieth of a second: for a signal handler
    /// (Ctrl-C) or another thread. The endpoint stays usable; clear the
    /// flag to wait again. Nothing is lost: an interrupted send sent
    /// nothing, an interrupted receive took nothing.
    ///
    /// ```
    /// use std::sync::{atomic::{AtomicBool, Ordering}, Arc};
    /// use std::time::Duration;
    /// let stop = Arc::new(AtomicBool::new(false));
    /// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-interrupt-{}", std::process::id()))?;
    /// let opts = shmkit::channel::Options::new().interrupt(stop.clone());
    /// let setter = std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(100));
    ///     stop.store(true, Ordering::Relaxed);
    /// });
    /// // nobody comes: the wait ends when the flag is set, and nothing is left
    /// let err = shmkit::channel::Receiver::connect(&name, &opts).unwrap_err();
    /// assert!(matches!(err, shmkit::Error::Interrupted { .. }));
    /// setter.join().unwrap();
    /// assert!(shmkit::posix::PosixShm::open(&name, &Default::default()).is_err());
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }
}
