//! The sending end.

use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::core::event::{self, Stop};
use crate::core::ring::{Producer, Reservation, RingError};
use crate::error::{Error, Result, Role};
use crate::map::ViewMut;
use crate::posix::ShmName;

use super::connect::{self, Endpoint};
use super::errors::{SendTimeoutError, TrySendError};
use super::Options;

/// The sending end of a channel. See the [module docs](super) for the
/// whole story.
#[derive(Debug)]
pub struct Sender {
    ring: Producer,
    end: Endpoint,
}

impl Sender {
    /// Connects to the channel `name` as its sender, creating it if the
    /// receiver has not yet, and waits for the receiver to join (at most
    /// [`Options::timeout`]).
    ///
    /// # Errors
    /// [`Error::Busy`] if another process is the sender;
    /// [`Error::TimedOut`] if no receiver came in time;
    /// [`Error::CapacityMismatch`] if the channel exists with another
    /// capacity than [`Options::capacity`] asked for; [`Error::Corrupt`] if
    /// `name` is not a channel; the errors of creating a POSIX object.
    ///
    /// # Examples
    /// ```
    /// use shmkit::channel::{Options, Receiver, Sender};
    /// use shmkit::posix::ShmName;
    ///
    /// let name = ShmName::new(format!("/shmkit-doc-send-{}", std::process::id()))?;
    /// let rx_name = name.clone();
    /// let receiver = std::thread::spawn(move || -> shmkit::Result<Vec<u8>> {
    ///     let mut rx = Receiver::connect(&rx_name, &Options::new())?;
    ///     rx.recv()
    /// });
    /// let mut tx = Sender::connect(&name, &Options::new())?;
    /// tx.send(b"hello")?;
    /// assert_eq!(receiver.join().unwrap()?, b"hello");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn connect(name: &ShmName, opts: &Options) -> Result<Sender> {
        let end = connect::connect(name, opts, Role::Sender)?;
        let (producer, consumer) = end.counters();
        let ring = Producer::new(producer, vec![consumer], end.buf(), end.capacity);
        Ok(Sender { ring, end })
    }

    /// Sends `msg`, waiting while the channel is full.
    ///
    /// # Errors
    /// [`Error::Closed`] if the receiver has left, [`Error::PeerGone`] if it
    /// died; [`Error::MessageTooLarge`] beyond
    /// [`max_message`](Sender::max_message); [`Error::Corrupt`] if the
    /// receiver's state in shared memory is invalid.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        match self.send_until(msg, None) {
            Ok(()) => Ok(()),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::TimedOut) => unreachable!("no deadline"),
        }
    }

    /// Sends `msg` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`], or the errors of [`send`](Sender::send).
    ///
    /// Once the sender's [descriptor](Sender#polling) has been taken, a
    /// `Full` result also arms it: it becomes readable when the receiver
    /// makes room (or leaves, or dies).
    pub fn try_send(&mut self, msg: &[u8]) -> std::result::Result<(), TrySendError> {
        self.check_receiver()?;
        match self.ring.push(msg) {
            Ok(()) => {}
            Err(RingError::Full) => self.when_full(|ring| ring.push(msg))?,
            Err(e) => return Err(TrySendError::from(self.ring_error(e))),
        }
        self.end.notify(&self.end.header().events.0.data);
        self.end.check_written()?;
        Ok(())
    }

    /// Like [`reserve`](Sender::reserve) if there is room now: zero-copy
    /// without waiting.
    ///
    /// # Errors
    /// [`TrySendError::Full`] (which arms the descriptor once it has been
    /// taken, as [`try_send`](Sender::try_send)), or the errors of
    /// [`send`](Sender::send).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::channel::{Options, Receiver, Sender};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-try-reserve-{}", std::process::id()))?;
    /// # let n2 = name.clone();
    /// # let t = std::thread::spawn(move || Receiver::connect(&n2, &Options::new()).unwrap().recv().unwrap());
    /// let mut tx = Sender::connect(&name, &Options::new())?;
    /// let mut grant = tx.try_reserve(2).expect("an empty channel has room");
    /// grant.copy_from_slice(b"hi")?;
    /// grant.commit()?;
    /// # assert_eq!(t.join().unwrap(), b"hi");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn try_reserve(&mut self, len: usize) -> std::result::Result<Grant<'_>, TrySendError> {
        self.check_receiver()?;
        let res = match self.ring.reserve(len) {
            Ok(r) => r,
            Err(RingError::Full) => self.when_full(|ring| ring.reserve(len))?,
            Err(e) => return Err(TrySendError::from(self.ring_error(e))),
        };
        Ok(self.grant(res))
    }

    /// The ring was full at the first look. A polled sender arms its bell
    /// and looks once more; then, is the receiver still there to make room?
    #[cold]
    fn when_full<T>(
        &mut self,
        mut again: impl FnMut(&mut Producer) -> std::result::Result<T, RingError>,
    ) -> std::result::Result<T, TrySendError> {
        if self.end.polled() {
            let space = &self.end.header().events.0.space;
            self.end.arm(space);
            match again(&mut self.ring) {
                Ok(v) => {
                    self.end.disarm(space);
                    return Ok(v);
                }
                Err(RingError::Full) => {}
                Err(e) => return Err(TrySendError::from(ring_error(&self.end, e))),
            }
        }
        let peer = if self.end.polled() {
            self.end.check_peer_polled()
        } else {
            self.end.check_peer()
        };
        match peer {
            Ok(()) => Err(TrySendError::Full),
            Err(e) => Err(TrySendError::from(e)),
        }
    }

    /// The channel, for errors.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn target(&self) -> &crate::Target {
        self.end.target()
    }

    /// Whether a message of `len` bytes fits now (for spinning: no arming,
    /// no system call).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn has_room(&mut self, len: usize) -> bool {
        self.ring.reserve(len).is_ok()
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], or the errors of [`send`](Sender::send).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> std::result::Result<(), SendTimeoutError> {
        match self.send_until(msg, event::deadline(timeout)) {
            Ok(()) => Ok(()),
            Err(Stop::TimedOut) => Err(SendTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(SendTimeoutError::from(e)),
        }
    }

    fn send_until(&mut self, msg: &[u8], deadline: Option<Instant>) -> std::result::Result<(), Stop<Error>> {
        let r = self.reserve_until(msg.len(), deadline)?;
        self.ring.buf().write(r.at, msg);
        self.commit(r);
        // A shrink under the copy sent (part of) it to zero pages.
        self.end.check_written()?;
        Ok(())
    }

    /// Reserves room for a message of `len` bytes, waiting while the channel
    /// is full, and lends it out to be written in place: zero-copy. The
    /// message is sent when the grant is [committed](Grant::commit);
    /// dropping the grant sends nothing.
    ///
    /// The grant is a [`ViewMut`]: it copies in and out and stores integers,
    /// but never lends a `&mut [u8]` over memory the receiver could write.
    /// Its bytes are zeroed by nobody: they hold whatever an earlier message
    /// left. The ring's protocol gives them to the sender alone; a hostile
    /// receiver could still write into them while the grant lives.
    ///
    /// # Errors
    /// As [`send`](Sender::send).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::channel::{Options, Receiver, Sender};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-grant-{}", std::process::id()))?;
    /// # let n2 = name.clone();
    /// # let t = std::thread::spawn(move || Receiver::connect(&n2, &Options::new()).unwrap().recv().unwrap());
    /// let mut tx = Sender::connect(&name, &Options::new())?;
    /// let mut grant = tx.reserve(4)?;
    /// grant.copy_from_slice(b"ping")?;
    /// grant.commit()?;
    /// # assert_eq!(t.join().unwrap(), b"ping");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>> {
        match self.reserve_until(len, None) {
            Ok(res) => Ok(self.grant(res)),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::TimedOut) => unreachable!("no deadline"),
        }
    }

    /// Like [`reserve`](Sender::reserve), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], or the errors of [`send`](Sender::send).
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> std::result::Result<Grant<'_>, SendTimeoutError> {
        match self.reserve_until(len, event::deadline(timeout)) {
            Ok(res) => Ok(self.grant(res)),
            Err(Stop::TimedOut) => Err(SendTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(SendTimeoutError::from(e)),
        }
    }

    fn grant(&mut self, res: Reservation) -> Grant<'_> {
        let Sender { ring, end } = self;
        let view = end.view_mut(ring.buf(), res.at, res.len);
        Grant { ring, end, res, view }
    }

    /// Reserves room, waiting until `deadline`. Reserving writes nothing
    /// (padding is published with the frame), so a shrink of the object is
    /// checked after the message is written, by the commit's caller.
    #[inline]
    fn reserve_until(
        &mut self,
        len: usize,
        deadline: Option<Instant>,
    ) -> std::result::Result<Reservation, Stop<Error>> {
        self.check_receiver()?;
        // Fast path: room now.
        match self.ring.reserve(len) {
            Ok(r) => Ok(r),
            Err(e) => self.wait_for_room(len, deadline, e),
        }
    }

    /// The slow path of [`reserve_until`](Self::reserve_until): the ring
    /// was full (or failed) at the first look.
    #[cold]
    #[inline(never)]
    fn wait_for_room(
        &mut self,
        len: usize,
        deadline: Option<Instant>,
        first: RingError,
    ) -> std::result::Result<Reservation, Stop<Error>> {
        if first != RingError::Full {
            return Err(Stop::Failed(self.ring_error(first)));
        }
        let Sender { ring, end } = self;
        let end = &*end;
        event::wait_for(
            &end.header().events.0.space,
            end.spin,
            deadline,
            || match ring.reserve(len) {
                Ok(r) => Ok(Some(r)),
                Err(RingError::Full) => Ok(None),
                Err(e) => Err(ring_error(end, e)),
            },
            || end.check_wait(),
        )
    }

    #[inline]
    fn commit(&mut self, r: Reservation) {
        self.ring.commit(r);
        self.end.notify(&self.end.header().events.0.data);
    }

    /// Fails if the receiver has left (a cheap load, done on every send).
    #[inline]
    fn check_receiver(&self) -> Result<()> {
        if self.end.peer_closed() {
            return self.closed_receiver();
        }
        Ok(())
    }

    #[cold]
    fn closed_receiver(&self) -> Result<()> {
        self.end.check_peer()
    }

    fn ring_error(&self, e: RingError) -> Error {
        ring_error(&self.end, e)
    }

    /// Waits until the receiver has taken every message sent so far.
    ///
    /// # Errors
    /// [`Error::Closed`] or [`Error::PeerGone`] if the receiver leaves
    /// first; [`Error::Interrupted`] if [`Options::interrupt`] says so.
    pub fn flush(&mut self) -> Result<()> {
        match self.flush_until(None) {
            Ok(()) => Ok(()),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::TimedOut) => unreachable!("no deadline"),
        }
    }

    /// Like [`flush`](Sender::flush), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] if the receiver has not taken
    /// everything by then, or the errors of [`flush`](Sender::flush).
    pub fn flush_timeout(&mut self, timeout: Duration) -> std::result::Result<(), SendTimeoutError> {
        match self.flush_until(event::deadline(timeout)) {
            Ok(()) => Ok(()),
            Err(Stop::TimedOut) => Err(SendTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(SendTimeoutError::from(e)),
        }
    }

    fn flush_until(&mut self, deadline: Option<Instant>) -> std::result::Result<(), Stop<Error>> {
        let Sender { ring, end } = self;
        let end = &*end;
        event::wait_for(
            &end.header().events.0.space,
            end.spin,
            deadline,
            || match ring.is_drained() {
                Ok(true) => Ok(Some(())),
                Ok(false) => Ok(None),
                Err(e) => Err(ring_error(end, e)),
            },
            || end.check_wait(),
        )
    }

    /// The longest message this channel carries: half its capacity, less 8.
    pub fn max_message(&self) -> usize {
        self.ring.max_message() as usize
    }

    /// A snapshot of the channel's header, as [`super::info`] gives for a
    /// name, read through this side's own mapping (so it works after the
    /// name is gone). Like [`len`](Self::len), it cannot fail: after the
    /// object has shrunk it describes zeros, which
    /// [`check_intact`](Self::check_intact) tells apart.
    pub fn info(&self) -> super::ChannelInfo {
        self.end.info()
    }

    /// How many messages are in the channel now: sent and not yet received.
    /// A snapshot; the receiver changes it at any time (and a hostile one could
    /// make it wrong, never negative).
    ///
    /// ```
    /// # use shmkit::channel::{Options, Receiver, Sender};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-len-sender-{}", std::process::id()))?;
    /// # let n2 = name.clone();
    /// # let t = std::thread::spawn(move || Receiver::connect(&n2, &Options::new()).unwrap());
    /// # let mut tx = Sender::connect(&name, &Options::new())?;
    /// # let mut rx = t.join().unwrap();
    /// tx.send(b"a")?;
    /// tx.send(b"b")?;
    /// assert_eq!((tx.len(), rx.len()), (2, 2));
    /// rx.recv()?;
    /// assert_eq!(rx.len(), 1);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.ring.in_flight() as usize
    }

    /// Whether no message is in the channel now (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.end.capacity as usize
    }

    /// The receiver's pid.
    pub fn peer_pid(&self) -> Option<u32> {
        self.end.peer_pid
    }

    /// Checks that the channel's object still has its full size and that
    /// this side's mapping still shows it.
    ///
    /// Every operation notices a shrink of the object by itself once it
    /// touches a lost page (see
    /// [`Mapping::is_intact`](crate::map::Mapping::is_intact)). A system
    /// call does not: reading into a [`Grant`] with `read(2)`
    /// fails with `EFAULT` ("Bad address") instead. Call this after such an
    /// I/O error to learn whether the channel is the cause.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the object has shrunk; [`Error::Os`] if its
    /// size cannot be read.
    pub fn check_intact(&self) -> Result<()> {
        self.end.check_size()
    }
}

/// # Polling
/// The sender's descriptor (its *bell*, see [`crate::wait`]) becomes
/// readable when the receiver makes room after a [`try_send`](Sender::try_send)
/// or [`try_reserve`](Sender::try_reserve) found the channel full, and when
/// the receiver leaves or dies. Taking it (`as_fd`, `as_raw_fd`) puts the
/// sender in poll mode, in which those calls arm it when they return
/// `Full`; a readable descriptor means "try again", which may find the
/// channel still full (then it is armed again). Leave the descriptor's
/// bytes alone: the sender reads them itself.
///
/// A `try_*` call made *before* the descriptor was first taken armed
/// nothing; so that a loop which takes it only when it has to wait still
/// works, the descriptor is readable once right after it is first taken (a
/// spurious wake-up: try again, which arms it). Each side keeps the other's
/// descriptor open for writing; a process that forks while it takes part
/// hands a copy to its child, and the sender's hang-up is then seen only when
/// both have closed it.
///
/// ```
/// use shmkit::channel::{Options, Receiver, Sender, TrySendError};
/// use shmkit::wait::WaitSet;
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-poll-sender-{}", std::process::id()))?;
/// # let n2 = name.clone();
/// # let t = std::thread::spawn(move || {
/// #     let mut rx = Receiver::connect(&n2, &Options::new().capacity(4096)).unwrap();
/// #     std::thread::sleep(std::time::Duration::from_millis(50));
/// #     rx.iter().count()
/// # });
/// let mut tx = Sender::connect(&name, &Options::new().capacity(4096))?;
/// let mut set = WaitSet::new()?;
/// set.add(&tx, 0)?;
/// let mut sent = 0;
/// while sent < 1000 {
///     match tx.try_send(&[7; 100]) {
///         Ok(()) => sent += 1,
///         Err(TrySendError::Full) => {
///             set.wait(None)?; // until the receiver makes room
///         }
///         Err(e) => return Err(e.into_error().unwrap()),
///     }
/// }
/// drop(tx);
/// # assert_eq!(t.join().unwrap(), 1000);
/// # Ok::<(), shmkit::Error>(())
/// ```
impl AsFd for Sender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.end.poll_fd()
    }
}

impl AsRawFd for Sender {
    fn as_raw_fd(&self) -> RawFd {
        self.end.poll_fd().as_raw_fd()
    }
}

fn ring_error(end: &Endpoint, e: RingError) -> Error {
    match e {
        RingError::TooLarge { len, max } => Error::MessageTooLarge {
            target: end.target().clone(),
            len,
            max,
        },
        RingError::Corrupt(reason) => end.corrupt_error(reason),
        RingError::Full | RingError::Empty => unreachable!("handled by the caller"),
    }
}

/// Room for one message in the ring, written in place; see
/// [`Sender::reserve`]. It derefs to a [`ViewMut`] of the message's bytes.
#[derive(Debug)]
pub struct Grant<'a> {
    ring: &'a mut Producer,
    end: &'a Endpoint,
    res: Reservation,
    view: ViewMut<'a>,
}

impl Grant<'_> {
    /// Sends the message.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the channel's object shrank while the message
    /// was written or committed: it is lost. (A read(2) into the grant fails
    /// with `EFAULT` then; see [`Sender::check_intact`].)
    pub fn commit(self) -> Result<()> {
        self.ring.commit(self.res);
        self.end.notify(&self.end.header().events.0.data);
        self.end.check_written()
    }

    /// Shortens the message to its first `len` bytes (for a read that came
    /// up short); a larger `len` changes nothing.
    ///
    /// ```
    /// # use shmkit::channel::{Options, Receiver, Sender};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-trunc-{}", std::process::id()))?;
    /// # let n2 = name.clone();
    /// # let t = std::thread::spawn(move || Receiver::connect(&n2, &Options::new()).unwrap().recv().unwrap());
    /// # let mut tx = Sender::connect(&name, &Options::new())?;
    /// let mut grant = tx.reserve(4096)?;
    /// grant.write_at(0, b"hi")?;
    /// grant.truncate(2);
    /// grant.commit()?; // sends "hi"
    /// # assert_eq!(t.join().unwrap(), b"hi");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn truncate(&mut self, len: usize) {
        if len < self.res.len {
            self.res.len = len;
            self.view = self.end.view_mut(self.ring.buf(), self.res.at, len);
        }
    }
}

impl<'a> Deref for Grant<'a> {
    type Target = ViewMut<'a>;
    fn deref(&self) -> &ViewMut<'a> {
        &self.view
    }
}

impl<'a> DerefMut for Grant<'a> {
    fn deref_mut(&mut self) -> &mut ViewMut<'a> {
        &mut self.view
    }
}
