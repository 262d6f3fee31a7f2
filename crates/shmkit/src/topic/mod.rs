//! Topics: publish/subscribe, one publisher to many subscribers, crash-aware.
//!
//! A topic is one POSIX shared-memory object holding a header, up to 64
//! subscriber seats and one ring of bytes. One process holds its
//! [`Publisher`]; up to [`Options::max_subscribers`] others (16 unless the
//! publisher says otherwise) hold a [`Subscriber`] each. A message is copied
//! into the ring **once**, however many subscribers read it.
//!
//! - **Either side may start first.** Subscribers that come first create
//!   the object and wait ([`SubOptions::timeout`]) until a publisher sets it
//!   up (its capacity, `max_subscribers` and history); a publisher that
//!   comes first does not wait for anybody.
//! - **Joining and leaving at any time.** A new subscriber starts with the
//!   next message, or with the last [`Options::history`] messages the ring
//!   still holds. Its seat is free again once it leaves or dies.
//! - **Blocking or lossy, per subscriber.** A blocking subscriber (the
//!   default) is waited for, as a channel's receiver is: it never misses a
//!   message. A lossy one ([`SubOptions::lossy`]) is never waited for: when
//!   it falls behind, the publisher overwrites what it has not read, and its
//!   next receive returns [`RecvError::Lagged`] with the exact number of
//!   messages lost, then continues with the oldest message still held.
//!   Exact from the moment it joins: it learns then the number of the first
//!   message it is owed (it starts right after the newest message committed,
//!   whose position the publisher publishes with each commit), so the
//!   losses it is told of plus the messages it receives are everything
//!   published since it joined, even if it is lapped before its first
//!   receive. A lossy subscriber never returns a message overwritten while it was
//!   copying it: every frame carries a sequence number, the publisher
//!   publishes the oldest intact frame before overwriting, and the
//!   subscriber checks it after copying (seqlock style).
//! - **Crashes.** A blocking subscriber that dies (even by `SIGKILL`) holds
//!   the publisher up for at most a tenth of a second (its seat's lock,
//!   which the kernel drops, is asked while the publisher waits), then is
//!   forgotten. When the publisher dies, subscribers receive everything it
//!   published, then [`Error::PeerGone`](crate::Error::PeerGone); when it
//!   closes (drops its handle), they receive everything, then the end of
//!   the stream ([`Error::Closed`](crate::Error::Closed), which
//!   [`Subscriber::iter`] turns into its end).
//! - **Cleanup.** The publisher removes the name when it leaves (its
//!   subscribers keep their mappings and finish; new subscribers start a new
//!   topic under the name); the last subscriber out removes it if no
//!   publisher is there. An object whose participants all died is taken
//!   over by the next one to connect.
//! - **Zero-copy.** [`Publisher::reserve`] lends room in the ring as a
//!   [`ViewMut`](crate::map::ViewMut); [`Subscriber::recv_ref`] lends a
//!   message as a [`View`](crate::map::View) — for a lossy subscriber, check
//!   [`RecvGuard::is_intact`] after reading.
//! - **Waiting without a thread.** [`Subscriber`] and [`Publisher`] are
//!   descriptors too ([`AsFd`](std::os::fd::AsFd), [`crate::wait::Pollable`]):
//!   once taken, a `try_*` call that finds nothing to do arms it, and it
//!   becomes readable when a message is published or the publisher closes
//!   or dies (a subscriber), when a blocking subscriber reads, leaves or
//!   dies (a publisher that found the ring full). See
//!   [`Subscriber#polling`] and [`Publisher#polling`]; a busy topic still
//!   makes no system call for it.
//! - **Untrusted memory.** As for channels: every value read from the
//!   object is validated; a hostile participant can make the others see
//!   [`Error::Corrupt`](crate::Error::Corrupt), lose messages or read wrong
//!   bytes in well-formed frames, never undefined behaviour, a panic or an
//!   endless wait.
//!
//! # Examples
//!
//! ```
//! use shmkit::topic::{Options, Publisher, RecvError, SubOptions, Subscriber};
//! use shmkit::posix::ShmName;
//!
//! let name = ShmName::new(format!("/shmkit-doc-topic-{}", std::process::id()))?;
//! let mut publisher = Publisher::connect(&name, &Options::new().capacity(1 << 16))?;
//! // usually other processes; threads here
//! let readers: Vec<_> = [false, true]
//!     .into_iter()
//!     .map(|lossy| {
//!         let mut sub = Subscriber::connect(&name, &SubOptions::new().lossy(lossy)).unwrap();
//!         std::thread::spawn(move || {
//!             let (mut got, mut lost) = (0u64, 0u64);
//!             for msg in sub.iter() {
//!                 match msg {
//!                     Ok(_) => got += 1,
//!                     Err(RecvError::Lagged { missed }) => lost += missed,
//!                     Err(e) => panic!("{e}"),
//!                 }
//!             }
//!             (got, lost) // the iterator ends when the publisher has closed
//!         })
//!     })
//!     .collect();
//! for i in 0..1000 {
//!     publisher.send(format!("message {i}").as_bytes())?;
//! }
//! drop(publisher); // close
//! let counts: Vec<(u64, u64)> = readers.into_iter().map(|t| t.join().unwrap()).collect();
//! assert_eq!(counts[0], (1000, 0), "the blocking subscriber gets everything");
//! assert_eq!(counts[1].0 + counts[1].1, 1000, "the lossy one: everything, or told what it lost");
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
mod poll;
mod publisher;
mod subscriber;

pub use errors::{RecvError, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
pub use info::{info, PublisherInfo, SubscriberInfo, TopicInfo};
pub use publisher::{Loan, Publisher};
pub use subscriber::{Iter, RecvGuard, Subscriber};

/// The fuzz harness, for the targets in `fuzz/` (feature `fuzz`).
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod fuzz {
    /// Runs the broadcast ring's fuzz harness on `data`: arbitrary bytes as
    /// the ring's memory, seats and marks, rewritten between operations by
    /// a "peer", while a publisher and subscribers join, leave, publish and
    /// read. It must end without a panic, whatever the bytes.
    pub fn topic(data: &[u8]) {
        crate::core::ring::broadcast::fuzz::run(data);
    }
}

/// The most subscribers a topic can have.
pub const MAX_SUBSCRIBERS: usize = crate::core::ring::broadcast::MAX_SEATS;

/// The subscribers a topic allows unless its publisher says otherwise.
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 16;

/// The capacity a new topic gets unless its publisher asks otherwise: 1 MiB.
pub const DEFAULT_CAPACITY: u64 = 1 << 20;

/// How long a waiting side spins before it sleeps, unless asked otherwise.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);

/// The longest message a topic of `capacity` bytes carries: half the
/// capacity, less 16 (a frame's header and its sequence number).
///
/// ```
/// assert_eq!(shmkit::topic::max_message(1 << 20), 524_272);
/// ```
pub const fn max_message(capacity: u64) -> u64 {
    // the channel's largest frame, less the message's number in it
    crate::channel::max_message(capacity) - crate::core::ring::broadcast::SEQ
}

/// How to publish: a plain value, reusable for many calls. The publisher
/// decides the topic's capacity, `max_subscribers` and history.
///
/// ```
/// let opts = shmkit::topic::Options::new()
///     .capacity(4 << 20)
///     .max_subscribers(4)
///     .history(10);
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    capacity: Option<u64>,
    max_subscribers: usize,
    history: u64,
    spin: Duration,
    mode: u32,
    allow_foreign: bool,
    interrupt: Option<Arc<AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            capacity: None,
            max_subscribers: DEFAULT_MAX_SUBSCRIBERS,
            history: 0,
            spin: DEFAULT_SPIN,
            mode: 0o600,
            allow_foreign: false,
            interrupt: None,
        }
    }
}

impl Options {
    /// The defaults: [`DEFAULT_CAPACITY`], [`DEFAULT_MAX_SUBSCRIBERS`], no
    /// history, [`DEFAULT_SPIN`], mode `0600`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ring's size in bytes, a power of two from 64 bytes to 1 TiB.
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = Some(bytes);
        self
    }

    /// How many subscribers may take part at once, 1 to
    /// [`MAX_SUBSCRIBERS`]; one more gets [`Error::Busy`](crate::Error::Busy).
    pub fn max_subscribers(mut self, n: usize) -> Self {
        self.max_subscribers = n;
        self
    }

    /// How many past messages a new subscriber starts with (those the ring
    /// still holds, at most `k`); 0 (the default): it starts with the next.
    pub fn history(mut self, k: u64) -> Self {
        self.history = k;
        self
    }

    /// How long the publisher spins, when the ring is full, before it
    /// sleeps on a futex.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// The permission bits of a new topic object (default `0600`); an
    /// existing one with wider permissions is refused unless
    /// [`allow_foreign`](Self::allow_foreign).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Accepts an existing topic object owned by another user or with wider
    /// permissions than [`mode`](Self::mode).
    pub fn allow_foreign(mut self, yes: bool) -> Self {
        self.allow_foreign = yes;
        self
    }

    /// A flag that ends the publisher's waits (for room, for a flush) with
    /// [`Error::Interrupted`](crate::Error::Interrupted) once set, within a
    /// twentieth of a second. Nothing is lost: an interrupted send sent
    /// nothing.
    pub fn interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }
}

/// How to subscribe: a plain value, reusable for many calls.
///
/// ```
/// use std::time::Duration;
/// let opts = shmkit::topic::SubOptions::new()
///     .lossy(true)
///     .timeout(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct SubOptions {
    lossy: bool,
    timeout: Option<Duration>,
    spin: Duration,
    mode: u32,
    allow_foreign: bool,
    interrupt: Option<Arc<AtomicBool>>,
}

impl Default for SubOptions {
    fn default() -> Self {
        SubOptions {
            lossy: false,
            timeout: None,
            spin: DEFAULT_SPIN,
            mode: 0o600,
            allow_foreign: false,
            interrupt: None,
        }
    }
}

impl SubOptions {
    /// The defaults: blocking, no timeout, [`DEFAULT_SPIN`], mode `0600`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lossy (`true`: the publisher never waits for this subscriber, which
    /// learns how many messages it lost) or blocking (`false`, the default).
    pub fn lossy(mut self, lossy: bool) -> Self {
        self.lossy = lossy;
        self
    }

    /// How long `connect` waits for a publisher (default: for ever).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long a waiting subscriber spins before it sleeps on a futex.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// The permission bits of a topic object this subscriber creates.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Accepts a topic object owned by another user or with wider
    /// permissions than [`mode`](Self::mode).
    pub fn allow_foreign(mut self, yes: bool) -> Self {
        self.allow_foreign = yes;
        self
    }

    /// A flag that ends the subscriber's waits (connecting, waiting for a
    /// message) with [`Error::Interrupted`](crate::Error::Interrupted) once
    /// set, within a twentieth of a second. An interrupted receive took
    /// nothing.
    pub fn interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }
}
