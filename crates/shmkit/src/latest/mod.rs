//! Latest values ("blackboards"): one writer publishes a value, any number
//! of readers read the newest one.
//!
//! A latest value is a state — a configuration, a position, a status — not
//! a stream: a reader wants the newest value, not every one. One POSIX
//! object holds it: a header and `B` buffers of the maximum size, chosen
//! when the object is created (`B` is 64 for values of up to 1 KiB, 16 up
//! to 16 KiB, 4 above: enough for a reader to keep up with a writer that
//! writes small values back to back).
//!
//! - **The writer never waits.** [`Writer::write`] copies the value into a
//!   buffer that no reader is told about yet and publishes it with a new
//!   version number (1, 2, …), whatever the readers do.
//! - **Readers get whole values.** [`Reader::read`] returns the newest value
//!   exactly as one `write` wrote it, with its version, or `None` if nothing
//!   was ever written — never a mix of two writes. The buffers form a
//!   seqlock (see below); a reader whose copy the writer overwrote copies
//!   again, spinning a few times, then sleeping briefly between tries
//!   (from 1 µs up to 1 ms). A writer would have to publish `B - 1` values
//!   and start another during every one of a reader's copies for a second
//!   to keep it out; then (or when a peer keeps scribbling on the header) the
//!   read gives up with [`Error::TimedOut`](crate::Error::TimedOut) rather
//!   than loop for ever.
//! - **Zero-copy.** [`Writer::write_with`] fills the next buffer in place
//!   through a [`ViewMut`](crate::map::ViewMut); [`Reader::read_with`]
//!   hands a [`View`](crate::map::View) of the value to a closure whose
//!   result counts only if the value did not change meanwhile.
//! - **Waiting for news.** [`Reader::wait_newer`] sleeps on a futex until a
//!   value newer than a version the reader has is published (or a timeout);
//!   the writer makes the wake-up system call only when somebody sleeps.
//! - **Polling.** A [`Reader`] is `AsFd`: its descriptor (for
//!   [`wait::WaitSet`](crate::wait::WaitSet), `epoll`, an event loop)
//!   becomes readable once a value newer than the one it last read is
//!   written, and [`Reader::try_read_newer`] returns it or re-arms the
//!   descriptor. A polling reader claims one of the value's 64 *poll
//!   roster* words (a killed reader's is taken over; the 65th polling
//!   reader gets an error) and a bell beside the object in `/dev/shm`
//!   (`core::doorbell`), removed when it is dropped. The writer never
//!   waits, so it has no descriptor; it rings the bells only after a
//!   write that a poller waits for.
//! - **A writer that dies.** The writer never touches the published
//!   buffer: a writer killed at any instruction leaves the last complete
//!   value readable. Its seat is free again at once (the kernel drops its
//!   lock), and the next writer continues from the published version.
//! - **One writer.** A second live writer gets
//!   [`Error::Busy`](crate::Error::Busy); a writer may come back after the
//!   previous one left or died.
//! - **Keep or remove.** The first writer (the one that makes the object)
//!   chooses with [`Options::keep`]: by default the object is removed when
//!   its last participant — writer or reader — leaves; a kept value stays
//!   until it is removed (`shmkit rm`, [`posix::remove`](crate::posix::remove)),
//!   so that readers can read it after its writer has exited, and a later
//!   writer can write it again.
//! - **Nobody else's object.** Created with mode `0600`; an existing object
//!   owned by another user or with wider permissions is refused unless
//!   [`Options::allow_foreign`].
//! - **Untrusted memory.** Every word read from the object is read once and
//!   validated (the version, each buffer's sequence word and length); the
//!   value is copied through a [`View`](crate::map::View), never a Rust
//!   reference. A peer writing anything anywhere can make a reader see
//!   [`Error::Corrupt`](crate::Error::Corrupt), a timeout, or wrong bytes in a
//!   value of valid length — never undefined behaviour, a panic, an
//!   out-of-bounds access or an endless loop. A truncated object gives
//!   [`Error::Truncated`](crate::Error::Truncated).
//!
//! # Examples
//!
//! ```
//! use shmkit::latest::{Options, Reader, Writer};
//! use shmkit::posix::ShmName;
//! use std::time::Duration;
//!
//! let name = ShmName::new(format!("/shmkit-doc-latest-{}", std::process::id()))?;
//! let mut writer = Writer::create(&name, &Options::new().max_size(64))?;
//! let mut reader = Reader::open(&name, &Options::new())?; // usually another process
//! assert!(reader.read()?.is_none()); // nothing written yet
//!
//! writer.write(b"speed=3")?;
//! writer.write(b"speed=4")?; // the writer never waits for readers
//! let value = reader.read()?.unwrap();
//! assert_eq!((value.version(), &value[..]), (2, &b"speed=4"[..]));
//!
//! // wait for something newer than what we have
//! let waiter = std::thread::spawn(move || reader.wait_newer(value.version(), Duration::from_secs(10)));
//! writer.write(b"speed=5")?;
//! assert_eq!(waiter.join().unwrap()?.as_bytes(), b"speed=5");
//! drop(writer); // the last participant: the object is removed (no `keep`)
//! assert!(shmkit::posix::PosixShm::open(&name, &Default::default()).is_err());
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! # The protocol
//!
//! Version `n` goes into buffer `n mod B` (in an order that keeps the heads
//! of consecutive versions on different cache lines). Each buffer has a
//! sequence word:
//! the writer makes it odd (`2n - 1`), copies the value and its length,
//! makes it even (`2n`), then publishes `n` in the header's version word. A
//! reader loads the version `v`, checks that the buffer of `v` says `2v`,
//! copies, and checks that it still says `2v`; if not, the writer came round
//! to that buffer again during the copy, and the reader tries again with the
//! newest version. Because the published buffer is never the one being
//! written, a dead writer leaves no torn value. (The loom model in
//! `seqlock.rs` checks every interleaving of two writes against a reader.)
//!
//! After a write the writer looks whether a reader sleeps (one load), and
//! makes the wake-up system call only then. That look must not pass the
//! write: a writer registered for global expedited membarriers skips the
//! fence that orders them, and a reader about to sleep issues
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` instead (`core::event`),
//! so a busy writer never waits for the lines its readers are reading.
//! A reader whose process may not issue it (a seccomp filter) asks every
//! writer to fence again, and sleeps in slices of a millisecond until a
//! writer has answered.
//!
//! # Who is there
//!
//! Readers are not counted and have no slots: any number may come and go.
//! Instead every participant, writer or reader, holds an
//! open-file-description *read* lock on one byte of the object's file (far
//! from the slots' bytes) while it takes part. Read locks do not conflict
//! with each other, the kernel drops each when its process dies (in any PID
//! or mount namespace, no `/proc` needed), and asking whether a write lock
//! could be taken tells a leaving participant whether anybody else holds
//! one. A participant that leaves an object that is not kept removes the
//! name if nobody else holds the lock, under the object's exclusive `flock`
//! (`core::segment`); a joiner takes its lock *before* it checks, under the
//! shared `flock`, that the name still names the object — so either the
//! leaver sees the joiner, or the joiner sees the name gone and looks again.
//! A `flock` would not do for the membership itself: `core::segment` takes
//! and drops the object's `flock` briefly on every claim, which would drop a
//! long-held one of the same description.
//!
//! The writer holds the object's one slot (`core::participant`), whose lock
//! says whether it is alive; [`info`] reports it. If every participant is
//! killed, an object that is not kept stays (`shmkit ls --stale` shows it)
//! until the next participant leaves it in order.

// Under loom only the protocol (`seqlock`, `area`) is exercised, by its tests.
#![cfg_attr(loom, allow(dead_code))]

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[allow(unsafe_code)] // the buffers' memory
mod area;
#[cfg(not(loom))]
mod endpoint;
#[cfg(not(loom))]
mod info;
#[cfg(not(loom))]
#[allow(unsafe_code)] // the header's place in the mapping
pub(crate) mod layout;
#[cfg(not(loom))]
#[allow(unsafe_code)] // two fcntl calls: open-file-description read locks
mod members;
#[cfg(not(loom))]
mod poll;
#[cfg(not(loom))]
mod reader;
mod seqlock;
#[cfg(not(loom))]
mod writer;

#[cfg(not(loom))]
pub use info::{info, LatestInfo, WriterInfo};
#[cfg(not(loom))]
pub use reader::{Reader, Value};
#[cfg(not(loom))]
pub use writer::Writer;

/// The fuzz harness, for the target in `fuzz/` (feature `fuzz`).
#[cfg(all(feature = "fuzz", not(loom)))]
#[doc(hidden)]
pub mod fuzz {
    /// Runs the latest-value harness on `data`: arbitrary bytes as the
    /// header and the buffers, rewritten by a "peer" between a writer's
    /// writes and a reader's reads. It must end without a panic, whatever
    /// the bytes.
    pub fn latest(data: &[u8]) {
        super::endpoint::fuzz::run(data);
    }
}

/// The maximum size a new latest value gets unless asked otherwise: 4 KiB.
pub const DEFAULT_MAX_SIZE: u64 = 4096;

/// The largest maximum size of a value: 4 GiB (the object holds four
/// buffers of the maximum size).
pub const MAX_SIZE: u64 = 1 << 32;

/// How to create or open a latest value: a plain value, reusable for many
/// calls.
///
/// ```
/// use std::time::Duration;
/// let opts = shmkit::latest::Options::new()
///     .max_size(1 << 20)
///     .keep(true)
///     .timeout(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    max_size: Option<u64>,
    keep: bool,
    mode: u32,
    timeout: Option<Duration>,
    allow_foreign: bool,
    interrupt: Option<Arc<AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_size: None,
            keep: false,
            mode: 0o600,
            timeout: None,
            allow_foreign: false,
            interrupt: None,
        }
    }
}

impl Options {
    /// The defaults: a new value holds up to [`DEFAULT_MAX_SIZE`] bytes, is
    /// removed when its last participant leaves, mode `0600`, and
    /// [`Reader::open`] does not wait for a missing object.
    pub fn new() -> Self {
        Self::default()
    }

    /// The longest value, in bytes (1 to [`MAX_SIZE`]). The writer that
    /// creates the object makes it this big; a writer that opens an existing
    /// one insists on it ([`Error::CapacityMismatch`](crate::Error::CapacityMismatch)
    /// otherwise). Without it, a writer takes the existing object's size.
    /// Readers ignore it.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// Keeps the object after its last participant has left, until it is
    /// removed (`shmkit rm`, [`posix::remove`](crate::posix::remove)); by
    /// default it is removed then. Only the first writer's choice counts:
    /// the one that creates the object (or finds it made by a reader that
    /// came first).
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// The permission bits of a new object (default `0600`). An existing
    /// object whose permissions are wider is refused, unless
    /// [`allow_foreign`](Options::allow_foreign).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// How long [`Reader::open`] waits for a missing object to be created
    /// by its writer (default: not at all, [`Error::NotFound`](crate::Error::NotFound)
    /// at once), so that either side may start first. A wait for a value
    /// takes its own timeout ([`Reader::wait_newer`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Accepts an existing object owned by another user or with wider
    /// permissions than [`mode`](Options::mode). By default such an object
    /// is refused with [`Error::Untrusted`](crate::Error::Untrusted):
    /// whoever made it can change the value.
    pub fn allow_foreign(mut self, yes: bool) -> Self {
        self.allow_foreign = yes;
        self
    }

    /// A flag that ends any wait (for the object, for a newer value, for a
    /// copy the writer did not overwrite) with
    /// [`Error::Interrupted`](crate::Error::Interrupted) once it is set,
    /// within a twentieth of a second: for a signal handler (Ctrl-C) or
    /// another thread. Clear it to wait again.
    pub fn interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }
}
