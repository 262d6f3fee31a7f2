//! Many senders, one receiver: several processes send messages to one
//! process through one shared object.
//!
//! The object holds N *seats* (N chosen by whoever creates it, [`Options::senders`]),
//! each with its own ring, so senders never contend with each other; the
//! receiver sleeps on one event for all of them.
//!
//! - **Fair: round robin.** The receiver takes the next message from the
//!   next seat that has one, in turn, starting after the seat it took from
//!   last: with k busy senders each gets every k-th message, however fast
//!   one of them is. Each sender's messages arrive in the order sent.
//! - **Who sent it.** Every message comes with its [`SenderId`]: the seat,
//!   the seat's *generation* (a new sender in a seat starts a new one) and
//!   the sender's pid (display only).
//! - **Either side may start first.** [`Sender::connect`] and
//!   [`Receiver::connect`] create the object (mode `0600`) or open it; a
//!   sender waits for the receiver to join (at most [`Options::timeout`]),
//!   the receiver waits for nobody. An opener learns N and the ring size from
//!   the object; asking for others is an error.
//! - **A sender that dies** (even by `SIGKILL`): everything it committed is
//!   delivered, then its seat is free for a new sender. A new sender in a
//!   used seat waits until the receiver has delivered the old one's last
//!   messages and handed it fresh rings, so the two are never confused.
//!   Survivors are not disturbed.
//! - **The receiver dies:** every sender's next wait (a full ring,
//!   [`Sender::flush`]) or a `try_send` on a full ring fails with
//!   [`Error::PeerGone`](crate::Error::PeerGone) within a tenth of a second.
//!   When it leaves in order, `send` fails with
//!   [`Error::Closed`](crate::Error::Closed).
//! - **The end of the stream.** [`Receiver::recv`] returns
//!   [`Error::Closed`](crate::Error::Closed) once as many senders as the
//!   object has seats have joined, none is left and everything is delivered
//!   ([`Error::PeerGone`](crate::Error::PeerGone) if one of the last senders
//!   died). Create the object with as many seats as senders you expect, or
//!   use `recv_timeout`/`try_recv`.
//! - **Cleanup.** The receiver removes the name when it leaves (nobody can
//!   join as receiver after it); after the receiver died, the last sender
//!   to leave removes it. An object whose participants all died is taken
//!   over by the next `connect`.
//! - **Pollable.** [`Receiver`] and [`Sender`] are file descriptors
//!   (`AsFd`, [`Pollable`](crate::wait::Pollable)): readable when a message
//!   came (the receiver's) or room was freed or the receiver left or died
//!   (a sender's); their `try_*` calls arm them (see
//!   [`Receiver`'s polling](Receiver#polling)).
//! - **Untrusted memory.** As for [channels](crate::channel): a process
//!   writing any byte anywhere in the object causes
//!   [`Error::Corrupt`](crate::Error::Corrupt) or wrong payload bytes, never
//!   undefined behaviour, a panic or an endless wait.
//!
//! # Examples
//!
//! ```
//! use shmkit::many_to_one::{Options, Receiver, Sender};
//! use shmkit::posix::ShmName;
//!
//! let name = ShmName::new(format!("/shmkit-doc-m2o-{}", std::process::id()))?;
//! let opts = Options::new().senders(2);
//! let mut rx = Receiver::connect(&name, &opts)?;
//! // usually other processes; threads here
//! let workers: Vec<_> = (0..2)
//!     .map(|w| {
//!         let (name, opts) = (name.clone(), opts.clone());
//!         std::thread::spawn(move || -> shmkit::Result<()> {
//!             let mut tx = Sender::connect(&name, &opts)?;
//!             for i in 0..100 {
//!                 tx.send(format!("worker {w}: {i}").as_bytes())?;
//!             }
//!             Ok(())
//!         })
//!     })
//!     .collect();
//! let mut count = 0;
//! loop {
//!     match rx.recv() {
//!         Ok(msg) => {
//!             assert!(msg.bytes.starts_with(b"worker "));
//!             count += 1;
//!         }
//!         Err(shmkit::Error::Closed { .. }) => break, // two senders came, both left
//!         Err(e) => return Err(e),
//!     }
//! }
//! for w in workers {
//!     w.join().unwrap()?;
//! }
//! assert_eq!(count, 200);
//! # Ok::<(), shmkit::Error>(())
//! ```

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[allow(unsafe_code)] // the region's place in the mapping
pub(crate) mod connect;
pub(crate) mod info;
#[allow(unsafe_code)] // the header's and the rings' places in the memory
pub(crate) mod layout;
pub(crate) mod poll;
pub(crate) mod receiver;
pub(crate) mod seats;
pub(crate) mod sender;

pub use crate::channel::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
pub use info::{info, ManyToOneInfo, RingInfo, SeatInfo};
pub use receiver::{Message, Receiver, RecvGuard, SenderId};
pub use sender::{Grant, Sender};

/// The fuzz harness, for the target in `fuzz/` (feature `fuzz`).
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod fuzz {
    /// Runs the many-to-one harness on `data`: arbitrary bytes as the
    /// seats' control lines, counters and rings, rewritten by a "peer"
    /// while a receiver and its senders work. It must end without a panic.
    pub fn many_to_one(data: &[u8]) {
        super::seats::fuzz::run(data, 1);
    }

    /// The same with two rings per seat, as a service has.
    pub fn service(data: &[u8]) {
        super::seats::fuzz::run(data, 2);
    }
}

/// How many seats a new object gets unless asked otherwise.
pub const DEFAULT_SENDERS: usize = 16;

/// The most seats an object may have.
pub const MAX_SENDERS: usize = layout::MAX_SEATS;

/// Each sender's ring size unless asked otherwise: 64 KiB.
pub const DEFAULT_CAPACITY: u64 = 64 << 10;

/// How to connect: a plain value, reusable for many calls.
///
/// ```
/// let opts = shmkit::many_to_one::Options::new().senders(4).capacity(1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) senders: Option<usize>,
    pub(crate) capacity: Option<u64>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) spin: Duration,
    pub(crate) mode: u32,
    pub(crate) allow_foreign: bool,
    pub(crate) interrupt: Option<Arc<AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            senders: None,
            capacity: None,
            timeout: None,
            spin: crate::channel::DEFAULT_SPIN,
            mode: 0o600,
            allow_foreign: false,
            interrupt: None,
        }
    }
}

impl Options {
    /// The defaults: [`DEFAULT_SENDERS`] seats and [`DEFAULT_CAPACITY`]
    /// per ring for a new object, no timeout, mode `0600`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of seats (1 to [`MAX_SENDERS`]) if this side creates the
    /// object; if it exists, it must have this many.
    pub fn senders(mut self, n: usize) -> Self {
        self.senders = Some(n);
        self
    }

    /// Each sender's ring size, a power of two from 64 bytes, if this side
    /// creates the object; if it exists, it must have this size.
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = Some(bytes);
        self
    }

    /// How long [`Sender::connect`] waits for the receiver (and, in a seat
    /// used before, for the previous sender's last messages to be
    /// delivered). Default: for ever.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long a waiting side spins before sleeping on a futex.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// The permission bits of a new object (default `0600`); an existing
    /// one with wider permissions is refused unless
    /// [`allow_foreign`](Options::allow_foreign).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Accepts an existing object owned by another user or with wider
    /// permissions than [`mode`](Options::mode).
    pub fn allow_foreign(mut self, yes: bool) -> Self {
        self.allow_foreign = yes;
        self
    }

    /// A flag that ends any wait with [`Error::Interrupted`](crate::Error::Interrupted)
    /// once set (as for [channels](crate::channel::Options::interrupt)).
    pub fn interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    pub(crate) fn want(&self, collector: bool) -> connect::Want {
        connect::Want {
            kind: crate::core::segment::Kind::ManyToOne,
            rings: 1,
            role: if collector {
                crate::Role::Receiver
            } else {
                crate::Role::Sender
            },
            collector,
            seats: self.senders,
            default_seats: DEFAULT_SENDERS,
            capacity: self.capacity,
            default_capacity: DEFAULT_CAPACITY,
            mode: self.mode,
            allow_foreign: self.allow_foreign,
            interrupt: self.interrupt.clone(),
        }
    }
}
