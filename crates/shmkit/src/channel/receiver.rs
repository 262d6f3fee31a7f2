//! The receiving end.

use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::core::event::{self, Stop};
use crate::core::ring::{Consumer, Frame, RingError};
use crate::error::{Error, Result, Role};
use crate::map::View;
use crate::posix::ShmName;

use super::connect::{self, Endpoint};
use super::errors::{RecvTimeoutError, TryRecvError};
use super::Options;

/// The receiving end of a channel. See the [module docs](super).
#[derive(Debug)]
pub struct Receiver {
    ring: Consumer,
    end: Endpoint,
}

impl Receiver {
    /// Connects to the channel `name` as its receiver, creating it if the
    /// sender has not yet, and waits for the sender to join (at most
    /// [`Options::timeout`]).
    ///
    /// # Errors
    /// As [`Sender::connect`](super::Sender::connect), for the receiver's
    /// side.
    pub fn connect(name: &ShmName, opts: &Options) -> Result<Receiver> {
        let end = connect::connect(name, opts, Role::Receiver)?;
        let (producer, consumer) = end.counters();
        let ring = Consumer::new(consumer, producer, end.buf(), end.capacity);
        Ok(Receiver { ring, end })
    }

    /// The next message, waiting for one.
    ///
    /// Once the sender has left and every message it committed has been
    /// received, this returns [`Error::Closed`] (or [`Error::PeerGone`] if
    /// the sender died rather than closing).
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::PeerGone`], and [`Error::Corrupt`] when
    /// the sender's state or a frame in shared memory is invalid.
    pub fn recv(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.recv_into(&mut out)?;
        Ok(out)
    }

    /// Like [`recv`](Receiver::recv), into `buf` (replacing its contents),
    /// so a loop can reuse one allocation.
    ///
    /// # Errors
    /// As [`recv`](Receiver::recv).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        let frame = self.wait_frame(None).map_err(|stop| match stop {
            Stop::Failed(e) => e,
            Stop::TimedOut => unreachable!("no deadline"),
        })?;
        self.take(frame, buf)
    }

    /// The next message if there is one now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or the errors of [`recv`](Receiver::recv).
    ///
    /// Once the receiver's [descriptor](Receiver#polling) has been taken, an
    /// `Empty` result also arms it: it becomes readable when a message comes
    /// (or the sender leaves, or dies).
    pub fn try_recv(&mut self) -> std::result::Result<Vec<u8>, TryRecvError> {
        let mut out = Vec::new();
        self.try_recv_into(&mut out)?;
        Ok(out)
    }

    /// Like [`try_recv`](Receiver::try_recv), into `buf` (replacing its
    /// contents).
    ///
    /// # Errors
    /// As [`try_recv`](Receiver::try_recv).
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> std::result::Result<(), TryRecvError> {
        let frame = self.try_frame()?;
        self.take(frame, buf).map_err(TryRecvError::from)
    }

    /// Like [`recv_ref`](Receiver::recv_ref) if a message is there now:
    /// zero-copy without waiting.
    ///
    /// # Errors
    /// As [`try_recv`](Receiver::try_recv).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::channel::{Options, Receiver, Sender};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-try-recv-ref-{}", std::process::id()))?;
    /// # let n2 = name.clone();
    /// # let t = std::thread::spawn(move || Sender::connect(&n2, &Options::new()).unwrap());
    /// let mut rx = Receiver::connect(&name, &Options::new())?;
    /// # let mut tx = t.join().unwrap();
    /// assert!(rx.try_recv_ref().unwrap_err().is_empty());
    /// tx.send(b"now")?;
    /// assert_eq!(rx.try_recv_ref().unwrap().to_vec(), b"now");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn try_recv_ref(&mut self) -> std::result::Result<RecvGuard<'_>, TryRecvError> {
        let frame = self.try_frame()?;
        self.guard(frame).map_err(TryRecvError::from)
    }

    /// The next frame if there is one now.
    #[inline]
    fn try_frame(&mut self) -> std::result::Result<Frame, TryRecvError> {
        match self.ring.peek() {
            Ok(frame) => Ok(frame),
            Err(RingError::Empty) => self.when_empty(),
            Err(e) => Err(TryRecvError::from(self.ring_error(e))),
        }
    }

    /// The ring was empty at the first look. A polled receiver arms its
    /// bell and looks once more; then, is the sender still there?
    #[cold]
    fn when_empty(&mut self) -> std::result::Result<Frame, TryRecvError> {
        if self.end.polled() {
            let data = &self.end.header().events.0.data;
            self.end.arm(data);
            match self.ring.peek() {
                Ok(frame) => {
                    self.end.disarm(data);
                    return Ok(frame);
                }
                Err(RingError::Empty) => {}
                Err(e) => return Err(TryRecvError::from(ring_error(&self.end, e))),
            }
        }
        let peer = if self.end.polled() {
            self.end.check_peer_polled()
        } else {
            self.end.check_peer()
        };
        match peer {
            Ok(()) => Err(TryRecvError::Empty),
            // The sender commits before it leaves: look once more.
            Err(gone) => match self.ring.peek() {
                Ok(frame) => Ok(frame),
                Err(RingError::Empty) => Err(TryRecvError::from(gone)),
                Err(e) => Err(TryRecvError::from(self.ring_error(e))),
            },
        }
    }

    /// The channel, for errors.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn target(&self) -> &crate::Target {
        self.end.target()
    }

    /// Whether a message is there now (for spinning: no arming, no system
    /// call).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn has_message(&mut self) -> bool {
        self.ring.peek().is_ok()
    }

    /// The next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or the errors of
    /// [`recv`](Receiver::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> std::result::Result<Vec<u8>, RecvTimeoutError> {
        match self.wait_frame(event::deadline(timeout)) {
            Ok(frame) => {
                let mut out = Vec::new();
                self.take(frame, &mut out).map_err(RecvTimeoutError::from)?;
                Ok(out)
            }
            Err(Stop::TimedOut) => Err(RecvTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(RecvTimeoutError::from(e)),
        }
    }

    /// The next message in place, waiting for one: zero-copy. Its space goes
    /// back to the sender when the guard is dropped.
    ///
    /// The guard is a [`View`]: it copies out and loads integers, but never
    /// lends a `&[u8]` over memory the sender could write. The ring's
    /// protocol keeps the sender from writing these bytes until the guard
    /// goes, but a hostile or buggy sender could still change them under it
    /// (or shrink the object, after which they read as zeros and the next
    /// call returns [`Error::Truncated`]); copy what must not change, and
    /// validate what you read.
    ///
    /// # Errors
    /// As [`recv`](Receiver::recv).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::channel::{Options, Receiver, Sender};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-guard-{}", std::process::id()))?;
    /// # let n2 = name.clone();
    /// # let t = std::thread::spawn(move || Sender::connect(&n2, &Options::new()).unwrap().send(b"pong").unwrap());
    /// let mut rx = Receiver::connect(&name, &Options::new())?;
    /// let msg = rx.recv_ref()?;
    /// assert_eq!(msg.to_vec(), b"pong");
    /// drop(msg); // gives the space back
    /// # t.join().unwrap();
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn recv_ref(&mut self) -> Result<RecvGuard<'_>> {
        let frame = self.wait_frame(None).map_err(|stop| match stop {
            Stop::Failed(e) => e,
            Stop::TimedOut => unreachable!("no deadline"),
        })?;
        self.guard(frame)
    }

    /// Like [`recv_ref`](Receiver::recv_ref), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or the errors of
    /// [`recv`](Receiver::recv).
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> std::result::Result<RecvGuard<'_>, RecvTimeoutError> {
        match self.wait_frame(event::deadline(timeout)) {
            Ok(frame) => self.guard(frame).map_err(RecvTimeoutError::from),
            Err(Stop::TimedOut) => Err(RecvTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(RecvTimeoutError::from(e)),
        }
    }

    /// An iterator over messages, waiting for each; it ends when the sender
    /// has closed the channel and everything is received, and yields an
    /// error (then ends) if the channel fails.
    pub fn iter(&mut self) -> Iter<'_> {
        Iter {
            receiver: self,
            done: false,
        }
    }

    /// The next frame, waiting for one until `deadline`. Not yet checked
    /// against a shrink of the object (which would make the frame's header
    /// zeros): [`take`](Self::take) checks after copying, and the zero-copy
    /// calls through [`guard`](Self::guard).
    #[inline]
    fn wait_frame(&mut self, deadline: Option<Instant>) -> std::result::Result<Frame, Stop<Error>> {
        match self.ring.peek() {
            Ok(frame) => Ok(frame),
            Err(e) => self.wait_slow(deadline, e),
        }
    }

    /// The slow path of [`wait_frame`](Self::wait_frame): nothing (or a
    /// failure) at the first look.
    #[cold]
    #[inline(never)]
    fn wait_slow(&mut self, deadline: Option<Instant>, first: RingError) -> std::result::Result<Frame, Stop<Error>> {
        if first != RingError::Empty {
            return Err(Stop::Failed(self.ring_error(first)));
        }
        let Receiver { ring, end } = self;
        let end = &*end;
        let ring = std::cell::RefCell::new(ring);
        event::wait_for(
            &end.header().events.0.data,
            end.spin,
            deadline,
            || match ring.borrow_mut().peek() {
                Ok(frame) => Ok(Some(frame)),
                Err(RingError::Empty) => Ok(None),
                Err(e) => Err(ring_error(end, e)),
            },
            || {
                // A silent sender whose counter says otherwise is corrupt.
                ring.borrow_mut().check_stalled().map_err(|e| ring_error(end, e))?;
                end.check_wait()
            },
        )
    }

    /// Lends the frame out, once checked against a shrink of the object.
    fn guard(&mut self, frame: Frame) -> Result<RecvGuard<'_>> {
        self.end.check_intact()?;
        let Receiver { ring, end } = self;
        let end = &*end;
        let view = end.view(ring.buf(), frame.at, frame.len);
        Ok(RecvGuard { ring, end, frame, view })
    }

    /// Copies the frame's payload into `out` and releases the frame; fails
    /// if the object shrank under the copy (then `out` holds zeros).
    #[inline]
    fn take(&mut self, frame: Frame, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        self.ring.buf().append_to(frame.at, frame.len, out);
        self.end.check_intact()?;
        self.release(frame);
        Ok(())
    }

    fn release(&mut self, frame: Frame) {
        release(&mut self.ring, &self.end, frame);
    }

    fn ring_error(&self, e: RingError) -> Error {
        ring_error(&self.end, e)
    }

    /// Bytes committed by the sender and not yet received (0 if the
    /// sender's counter is invalid, or the object has shrunk).
    pub fn bytes_in_flight(&mut self) -> u64 {
        self.ring.bytes_in_flight().unwrap_or(0)
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
    /// A snapshot; the sender changes it at any time (and a hostile one could
    /// make it wrong, never negative).
    ///
    /// ```
    /// # use shmkit::channel::{Options, Receiver, Sender};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-len-receiver-{}", std::process::id()))?;
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

    /// The sender's pid.
    pub fn peer_pid(&self) -> Option<u32> {
        self.end.peer_pid
    }

    /// Checks that the channel's object still has its full size and that
    /// this side's mapping still shows it.
    ///
    /// Every operation notices a shrink of the object by itself once it
    /// touches a lost page (see
    /// [`Mapping::is_intact`](crate::map::Mapping::is_intact)). A system
    /// call does not: writing out of a [`RecvGuard`] with `write(2)`
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
/// The receiver's descriptor (its *bell*, see [`crate::wait`]) becomes
/// readable when a message comes after a [`try_recv`](Receiver::try_recv)
/// (or [`try_recv_into`](Receiver::try_recv_into),
/// [`try_recv_ref`](Receiver::try_recv_ref)) found the channel empty, and
/// when the sender leaves or dies. Taking it (`as_fd`, `as_raw_fd`) puts
/// the receiver in poll mode, in which those calls arm it when they return
/// `Empty`; a readable descriptor means "try again", which may still find
/// nothing (then it is armed again). Leave the descriptor's bytes alone:
/// the receiver reads them itself.
///
/// A `try_*` call made *before* the descriptor was first taken armed
/// nothing; so that a loop which takes it only when it has to wait still
/// works, the descriptor is readable once right after it is first taken (a
/// spurious wake-up: try again, which arms it). Each side keeps the other's
/// descriptor open for writing; a process that forks while it takes part
/// hands a copy to its child, and the receiver's hang-up is then seen only when
/// both have closed it.
///
/// ```
/// use shmkit::channel::{Options, Receiver, Sender, TryRecvError};
/// use std::os::fd::AsFd;
/// use rustix::event::{poll, PollFd, PollFlags};
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-poll-receiver-{}", std::process::id()))?;
/// # let n2 = name.clone();
/// # let t = std::thread::spawn(move || {
/// #     let mut tx = Sender::connect(&n2, &Options::new()).unwrap();
/// #     for i in 0..100u32 { tx.send(&i.to_le_bytes()).unwrap(); }
/// # });
/// let mut rx = Receiver::connect(&name, &Options::new())?;
/// let mut got = 0;
/// loop {
///     match rx.try_recv() {
///         Ok(_msg) => got += 1,
///         Err(TryRecvError::Empty) => {
///             let mut fds = [PollFd::new(&rx, PollFlags::IN)];
///             poll(&mut fds, None)?; // a message, or the sender left
///         }
///         Err(e) if e.is_disconnected() => break, // closed, all received
///         Err(e) => return Err(e.into()),
///     }
/// }
/// assert_eq!(got, 100);
/// # t.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl AsFd for Receiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.end.poll_fd()
    }
}

impl AsRawFd for Receiver {
    fn as_raw_fd(&self) -> RawFd {
        self.end.poll_fd().as_raw_fd()
    }
}

fn ring_error(end: &Endpoint, e: RingError) -> Error {
    match e {
        RingError::Corrupt(reason) => end.corrupt_error(reason),
        RingError::TooLarge { .. } | RingError::Full | RingError::Empty => {
            end.corrupt_error(format!("unexpected ring state {e:?}"))
        }
    }
}

fn release(ring: &mut Consumer, end: &Endpoint, frame: Frame) {
    ring.release(frame);
    end.notify(&end.header().events.0.space);
}

/// A received message in place; see [`Receiver::recv_ref`]. It derefs to a
/// [`View`] of the message's bytes; dropping it gives the space back.
#[derive(Debug)]
pub struct RecvGuard<'a> {
    ring: &'a mut Consumer,
    end: &'a Endpoint,
    frame: Frame,
    view: View<'a>,
}

impl<'a> Deref for RecvGuard<'a> {
    type Target = View<'a>;
    fn deref(&self) -> &View<'a> {
        &self.view
    }
}

impl Drop for RecvGuard<'_> {
    fn drop(&mut self) {
        release(self.ring, self.end, self.frame);
    }
}

/// The iterator of [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    receiver: &'a mut Receiver,
    done: bool,
}

impl Iterator for Iter<'_> {
    type Item = Result<Vec<u8>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.receiver.recv() {
            Ok(msg) => Some(Ok(msg)),
            Err(Error::Closed { .. }) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
