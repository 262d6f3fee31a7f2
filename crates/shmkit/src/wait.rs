//! Waiting on many endpoints (and other descriptors) at once, without a
//! thread per endpoint.
//!
//! Every channel endpoint gives a file descriptor ([`AsFd`]) that becomes
//! readable when it may make progress: a message came, room was freed, the
//! peer left or died. A [`WaitSet`] waits on any number of them, and on any
//! other descriptors (sockets, pipes, timers, another `WaitSet`), with one
//! timeout, and says which are ready. It is an `epoll` instance, so it is a
//! descriptor itself: nest it in another event loop.
//!
//! # The protocol, in short
//! The descriptor is the read end of a FIFO beside the channel in
//! `/dev/shm` (a *bell*): it works between processes that share only
//! `/dev/shm` — other PID or network namespaces, no `/proc`. A side that
//! finds nothing to do in a `try_*` call *arms* its bell (a bit next to the
//! futex waiters' count, set before its last look at the ring); the other
//! side, which looks at that word after every message anyway, writes one
//! byte into the bell only when it finds the bit, and clears it: a busy
//! conversation makes no system call for the poller. The ordering is the
//! futex path's, checked by a loom model. The peer holds the bell open for
//! writing for as long as it takes part, so when it leaves or dies — any
//! signal, any namespace — the kernel closes it and the bell hangs up
//! (`POLLHUP`): readable within the time the kernel takes, without a timer.
//! See [`Receiver`](crate::channel::Receiver#polling) and
//! [`Sender`](crate::channel::Sender#polling).
//!
//! The patterns' endpoints (topic, many-to-one, service, latest value) wait
//! the same way, through `core::doorbell`: their participants join and
//! leave at any time, so a polling participant publishes its bell in a poll
//! word of its seat, notifiers ring every bell named there once a poller
//! armed, and a participant whose death matters holds a *life* (a FIFO it
//! keeps open) whose hang-up its pollers watch. Each endpoint's docs have a
//! `# Polling` section.
//!
//! # Rules
//! - A readable endpoint means "try again": call its `try_*` method until it
//!   returns `Empty` (or `Full`) — that call arms the descriptor again.
//!   Readiness may be spurious; it is never lost.
//! - Do not read from an endpoint's descriptor yourself.
//! - The set holds no reference to what it waits on: an endpoint dropped
//!   while in the set leaves it by itself (its descriptor is closed).
//!
//! # Examples
//! ```
//! use shmkit::channel::{Options, Receiver, Sender, TryRecvError};
//! use shmkit::wait::WaitSet;
//! use std::time::Duration;
//!
//! let names: Vec<_> = (0..3)
//!     .map(|i| shmkit::posix::ShmName::new(format!("/shmkit-doc-waitset-{}-{i}", std::process::id())))
//!     .collect::<Result<_, _>>()?;
//! let senders: Vec<_> = names.iter().cloned().enumerate().map(|(i, name)| {
//!     std::thread::spawn(move || {
//!         let mut tx = Sender::connect(&name, &Options::new()).unwrap();
//!         tx.send(format!("hello from {i}").as_bytes()).unwrap();
//!     })
//! }).collect();
//! let mut rxs = names.iter().map(|n| Receiver::connect(n, &Options::new())).collect::<Result<Vec<_>, _>>()?;
//! let mut set = WaitSet::new()?;
//! for (i, rx) in rxs.iter().enumerate() {
//!     set.add(rx, i as u64)?;
//! }
//! let mut open = rxs.len();
//! let mut got = 0;
//! while open > 0 {
//!     for key in set.wait(Some(Duration::from_secs(10)))?.to_vec() {
//!         let rx = &mut rxs[key as usize];
//!         loop {
//!             match rx.try_recv() {
//!                 Ok(msg) => { got += 1; println!("{key}: {}", String::from_utf8_lossy(&msg)) }
//!                 Err(TryRecvError::Empty) => break, // armed again
//!                 Err(_) => { open -= 1; set.remove(&*rx)?; break } // closed
//!             }
//!         }
//!     }
//! }
//! assert_eq!(got, 3);
//! for s in senders { s.join().unwrap(); }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// A shmkit endpoint that waits through a descriptor: its [`AsFd`] is
/// readable when it may make progress, and its `try_*` calls arm it when
/// they find nothing to do (see the [module docs](self)). Every such
/// endpoint keeps one descriptor, open and the same, for its whole life —
/// what a reactor that registers it needs (`shmkit::tokio::Async`). Sealed:
/// implemented by shmkit's endpoints only.
pub trait Pollable: AsFd + sealed::Sealed {}

pub(crate) mod sealed {
    /// Only shmkit's endpoints are [`Pollable`](super::Pollable).
    pub trait Sealed {}
}

/// Makes each endpoint type [`Pollable`].
macro_rules! pollable {
    ($($endpoint:ty),* $(,)?) => {
        $(
            impl sealed::Sealed for $endpoint {}
            impl Pollable for $endpoint {}
        )*
    };
}

pollable!(
    crate::channel::Sender,
    crate::channel::Receiver,
    crate::topic::Publisher,
    crate::topic::Subscriber,
    crate::many_to_one::Sender,
    crate::many_to_one::Receiver,
    crate::service::Client,
    crate::service::Server,
    crate::latest::Reader,
);

use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::io::Errno;

use crate::error::{Error, Result, Target};

/// A set of descriptors to wait on together, each with a key of the
/// caller's choice (an `epoll` instance; see the [module docs](self)).
pub struct WaitSet {
    epoll: OwnedFd,
    events: Vec<epoll::Event>,
    ready: Vec<u64>,
    len: usize,
}

impl std::fmt::Debug for WaitSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitSet")
            .field("epoll", &self.epoll)
            .field("len", &self.len)
            .field("ready", &self.ready)
            .finish()
    }
}

fn os(op: &'static str, e: Errno) -> Error {
    Error::from_errno(op, &Target::Memory, e)
}

impl WaitSet {
    /// `epoll_create1(EPOLL_CLOEXEC)`—an empty set.
    ///
    /// # Errors
    /// [`Error::Os`] if the kernel refuses (too many descriptors).
    #[doc(alias = "epoll_create1")]
    pub fn new() -> Result<WaitSet> {
        let epoll = epoll::create(CreateFlags::CLOEXEC).map_err(|e| os("epoll_create1", e))?;
        Ok(WaitSet {
            epoll,
            events: Vec::new(),
            ready: Vec::new(),
            len: 0,
        })
    }

    /// `epoll_ctl(EPOLL_CTL_ADD)`—waits on `source` from now on, reporting
    /// it as `key` when it is readable (or hung up). Taking a channel
    /// endpoint's descriptor puts it in poll mode (see the module docs).
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if `source` is in the set already;
    /// [`Error::Os`] otherwise (for example a descriptor that cannot be
    /// polled, such as a regular file: `EPERM`).
    #[doc(alias = "epoll_ctl")]
    pub fn add(&mut self, source: &impl AsFd, key: u64) -> Result<()> {
        epoll::add(&self.epoll, source.as_fd(), EventData::new_u64(key), EventFlags::IN)
            .map_err(|e| os("epoll_ctl(ADD)", e))?;
        self.len += 1;
        Ok(())
    }

    /// `epoll_ctl(EPOLL_CTL_DEL)`—stops waiting on `source`. (A descriptor
    /// that is closed leaves the set by itself.)
    ///
    /// # Errors
    /// [`Error::NotFound`] if it is not in the set.
    pub fn remove(&mut self, source: &impl AsFd) -> Result<()> {
        epoll::delete(&self.epoll, source.as_fd()).map_err(|e| os("epoll_ctl(DEL)", e))?;
        self.len = self.len.saturating_sub(1);
        Ok(())
    }

    /// Waits until at least one descriptor in the set is ready, or
    /// `timeout` has passed (`None`: no limit), and returns the keys of
    /// those that are ready (empty after a timeout). A signal that
    /// interrupts the wait does not end it early.
    ///
    /// # Errors
    /// [`Error::Os`] if `epoll_wait` fails.
    #[doc(alias = "epoll_wait")]
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<&[u64]> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        self.ready.clear();
        self.events.clear();
        self.events.reserve(self.len.clamp(1, 1024));
        loop {
            let ts = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    Some(rustix::time::Timespec {
                        tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                        tv_nsec: left.subsec_nanos().into(),
                    })
                }
            };
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut self.events),
                ts.as_ref(),
            ) {
                Ok(_) => break,
                Err(Errno::INTR) if deadline.is_none_or(|d| Instant::now() < d) => {}
                Err(Errno::INTR) => break,
                Err(e) => return Err(os("epoll_wait", e)),
            }
        }
        self.ready.extend(self.events.iter().map(|ev| ev.data.u64()));
        Ok(&self.ready)
    }

    /// How many descriptors are in the set (as added and removed here).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The set's own descriptor: readable when one of its members is.
impl AsFd for WaitSet {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

/// Waits until `fd` is readable (or hung up), at most `timeout`; whether
/// it is. For one endpoint, without a [`WaitSet`].
///
/// # Errors
/// [`Error::Os`] if `poll` fails.
///
/// ```
/// # let (a, _b) = std::os::unix::net::UnixStream::pair()?;
/// let ready = shmkit::wait::readable(&a, Some(std::time::Duration::from_millis(10)))?;
/// assert!(!ready);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn readable(fd: &impl AsFd, timeout: Option<Duration>) -> Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags};
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let ts = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            rustix::time::Timespec {
                tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: left.subsec_nanos().into(),
            }
        });
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, ts.as_ref()) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::INTR) if deadline.is_none_or(|d| Instant::now() < d) => {}
            Err(Errno::INTR) => return Ok(false),
            Err(e) => return Err(os("poll", e)),
        }
    }
}
