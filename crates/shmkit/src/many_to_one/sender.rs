//! A sending end: one seat of a many-to-one object.

use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::core::event::{self, Stop};
use crate::core::ring::{Producer, Reservation, RingError};
use crate::error::{Error, Result, Role};
use crate::map::ViewMut;
use crate::posix::ShmName;

use super::connect::{self, Link};
use super::{seats, Options, SendTimeoutError, TrySendError};

/// A sending end of a many-to-one object. See the [module docs](super).
#[derive(Debug)]
pub struct Sender {
    ring: Producer,
    link: Link,
    gen: u32,
    spin: Duration,
}

impl Sender {
    /// Connects to `name` as one of its senders, creating the object if it
    /// does not exist, and waits for the receiver (at most
    /// [`Options::timeout`]).
    ///
    /// # Errors
    /// [`Error::Busy`] if every seat is taken; [`Error::TimedOut`] if no
    /// receiver came in time; [`Error::Closed`] or [`Error::PeerGone`] if
    /// the receiver has left or died; [`Error::InvalidArgument`] if the
    /// object exists with another number of seats than
    /// [`Options::senders`]; [`Error::CapacityMismatch`]; [`Error::Corrupt`]
    /// if `name` is not a many-to-one object; the errors of creating a
    /// POSIX object.
    ///
    /// # Examples
    /// ```
    /// use shmkit::many_to_one::{Options, Receiver, Sender};
    /// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-m2o-send-{}", std::process::id()))?;
    /// let mut rx = Receiver::connect(&name, &Options::new().senders(1))?;
    /// let mut tx = Sender::connect(&name, &Options::new())?;
    /// tx.send(b"hello")?;
    /// let msg = rx.recv()?;
    /// assert_eq!((msg.bytes.as_slice(), msg.sender.seat), (&b"hello"[..], 0));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn connect(name: &ShmName, opts: &Options) -> Result<Sender> {
        let mut link = connect::join(name, &opts.want(false), Role::Receiver)?;
        let s = link.seat();
        let fresh = link.member.previous() == crate::core::slots::Presence::Empty;
        let gen = seats::claim_ring(&link.region, s, fresh);
        link.ring_hub(); // a polled receiver settles the seats too
        link.wait_for_ring(gen, connect::deadline_of(opts.timeout), "a receiver")?;
        let ring = seats::sender_half(&link.region, s);
        Ok(Sender {
            ring,
            link,
            gen,
            spin: opts.spin,
        })
    }

    /// Sends `msg`, waiting while this sender's ring is full.
    ///
    /// # Errors
    /// [`Error::Closed`] if the receiver has left, [`Error::PeerGone`] if it
    /// died; [`Error::MessageTooLarge`] beyond
    /// [`max_message`](Sender::max_message); [`Error::Corrupt`].
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
        let r = self.try_reserve_at(msg.len())?;
        self.ring.buf().write(r.at, msg);
        self.ring.commit(r);
        self.notify();
        self.link.check_written(self.link.fenceless())?;
        Ok(())
    }

    /// Like [`reserve`](Sender::reserve) if there is room now: zero-copy
    /// without waiting.
    ///
    /// # Errors
    /// As [`try_send`](Sender::try_send) (`Full` arms the descriptor once
    /// it has been taken).
    pub fn try_reserve(&mut self, len: usize) -> std::result::Result<Grant<'_>, TrySendError> {
        let r = self.try_reserve_at(len)?;
        Ok(self.grant(r))
    }

    /// Room for `len` bytes now, or `Full` (arming the descriptor when
    /// polled), or why not.
    fn try_reserve_at(&mut self, len: usize) -> std::result::Result<Reservation, TrySendError> {
        self.check_receiver()?;
        match self.ring.reserve(len) {
            Ok(r) => Ok(r),
            Err(RingError::Full) => self.when_full(len),
            Err(e) => Err(TrySendError::from(ring_error(&self.link, e))),
        }
    }

    /// The ring was full at the first look: arm (when polled) and look
    /// once more; `Full` unless the receiver is gone.
    #[cold]
    fn when_full(&mut self, len: usize) -> std::result::Result<Reservation, TrySendError> {
        let polled = self.link.poll.polled();
        if polled {
            let region = self.link.region;
            let space = &region.ctl(self.link.seat()).space;
            self.link.arm(space)?;
            let again = self.ring.reserve(len);
            if !matches!(again, Err(RingError::Full)) {
                self.link.poll.disarm(space);
            }
            match again {
                Ok(r) => return Ok(r),
                Err(RingError::Full) => {}
                Err(e) => return Err(TrySendError::from(ring_error(&self.link, e))),
            }
        }
        self.link.member.check_interrupt()?;
        self.link.check_size()?;
        if polled {
            self.link.check_hub_polled()?;
        } else {
            self.link.collector_present()?;
        }
        Err(TrySendError::Full)
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
        self.ring.commit(r);
        self.notify();
        self.link.check_written(self.link.fenceless())?;
        Ok(())
    }

    /// Reserves room for a message of `len` bytes, waiting while the ring is
    /// full, and lends it out to be written in place (zero-copy), as
    /// [`channel::Sender::reserve`](crate::channel::Sender::reserve) does.
    ///
    /// # Errors
    /// As [`send`](Sender::send).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::many_to_one::{Options, Receiver, Sender};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-m2o-grant-{}", std::process::id()))?;
    /// # let mut rx = Receiver::connect(&name, &Options::new().senders(1))?;
    /// let mut tx = Sender::connect(&name, &Options::new())?;
    /// let mut grant = tx.reserve(4)?;
    /// grant.copy_from_slice(b"ping")?;
    /// grant.commit()?;
    /// # assert_eq!(rx.recv()?.bytes, b"ping");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>> {
        match self.reserve_until(len, None) {
            Ok(res) => Ok(self.grant(res)),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::TimedOut) => unreachable!("no deadline"),
        }
    }

    fn grant(&mut self, res: Reservation) -> Grant<'_> {
        let Sender { ring, link, .. } = self;
        let view = link.region.view_mut(&*link, ring.buf(), res.at, res.len);
        Grant { ring, link, res, view }
    }

    fn reserve_until(
        &mut self,
        len: usize,
        deadline: Option<Instant>,
    ) -> std::result::Result<Reservation, Stop<Error>> {
        self.check_receiver()?;
        match self.ring.reserve(len) {
            Ok(r) => Ok(r),
            Err(RingError::Full) => {
                let Sender { ring, link, spin, .. } = self;
                let link = &*link;
                event::wait_for(
                    &link.region.ctl(link.seat()).space,
                    *spin,
                    deadline,
                    || match ring.reserve(len) {
                        Ok(r) => Ok(Some(r)),
                        Err(RingError::Full) => Ok(None),
                        Err(e) => Err(ring_error(link, e)),
                    },
                    || link.check_wait(),
                )
            }
            Err(e) => Err(Stop::Failed(ring_error(&self.link, e))),
        }
    }

    /// Tells the receiver that a frame was committed.
    #[inline]
    fn notify(&self) {
        self.link
            .notify_hub(&self.link.region.top().data, self.link.fenceless());
    }

    #[inline]
    fn check_receiver(&self) -> Result<()> {
        if self.link.collector_closed() {
            self.link.collector_present()?;
        }
        Ok(())
    }

    /// Waits until the receiver has taken every message this sender sent.
    ///
    /// # Errors
    /// [`Error::Closed`] or [`Error::PeerGone`] if the receiver leaves
    /// first; [`Error::Interrupted`].
    pub fn flush(&mut self) -> Result<()> {
        self.flush_until(None).map_err(|stop| match stop {
            Stop::Failed(e) => e,
            Stop::TimedOut => unreachable!("no deadline"),
        })
    }

    /// Like [`flush`](Sender::flush), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], or the errors of [`flush`](Sender::flush).
    pub fn flush_timeout(&mut self, timeout: Duration) -> std::result::Result<(), SendTimeoutError> {
        match self.flush_until(event::deadline(timeout)) {
            Ok(()) => Ok(()),
            Err(Stop::TimedOut) => Err(SendTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(SendTimeoutError::from(e)),
        }
    }

    fn flush_until(&mut self, deadline: Option<Instant>) -> std::result::Result<(), Stop<Error>> {
        let Sender { ring, link, spin, .. } = self;
        let link = &*link;
        event::wait_for(
            &link.region.ctl(link.seat()).space,
            *spin,
            deadline,
            || match ring.is_drained() {
                Ok(true) => Ok(Some(())),
                Ok(false) => Ok(None),
                Err(e) => Err(ring_error(link, e)),
            },
            || link.check_wait(),
        )
    }

    /// The longest message a ring carries: half its size, less 8.
    pub fn max_message(&self) -> usize {
        self.link.max_message()
    }

    /// Each ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.link.region.geo().cap as usize
    }

    /// This sender's identity, as the receiver sees it.
    pub fn id(&self) -> super::SenderId {
        super::SenderId {
            seat: self.link.seat(),
            generation: self.gen,
            pid: std::process::id(),
        }
    }

    /// Messages sent and not yet received.
    pub fn len(&self) -> usize {
        self.ring.in_flight() as usize
    }

    /// Whether the receiver has taken everything sent (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that the object still has its full size (see
    /// [`channel::Sender::check_intact`](crate::channel::Sender::check_intact)).
    ///
    /// # Errors
    /// [`Error::Truncated`] if it shrank.
    pub fn check_intact(&self) -> Result<()> {
        self.link.check_size()
    }
}

/// # Polling
/// The sender's descriptor (`AsFd`) is readable when it may make progress:
/// the receiver made room in this sender's ring, or it left, or it died.
/// Take it and wait on it with `poll(2)`, `epoll`, a
/// [`WaitSet`](crate::wait::WaitSet) or an async runtime (it is
/// [`Pollable`](crate::wait::Pollable)); the sender is then in poll mode:
/// [`try_send`](Sender::try_send) and [`try_reserve`](Sender::try_reserve)
/// arm it when they return `Full`. A readable descriptor may be a
/// spurious wake-up: try again, which arms it. The first time it is taken,
/// the sender makes its doorbell (a FIFO beside the object in `/dev/shm`,
/// removed when it leaves) and watches the receiver's *life*, a FIFO the
/// receiver holds open while it takes part: its hang-up tells the
/// receiver's death in any PID namespace, without a timer.
///
/// ```
/// use shmkit::many_to_one::{Options, Receiver, Sender, TrySendError};
/// use shmkit::wait::readable;
/// use std::time::Duration;
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-m2o-spoll-{}", std::process::id()))?;
/// let mut rx = Receiver::connect(&name, &Options::new().senders(1).capacity(4096))?;
/// let mut tx = Sender::connect(&name, &Options::new())?;
/// while tx.try_send(&[7; 1000]).is_ok() {} // fill the ring
/// let drain = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(20));
///     let len = rx.recv()?.bytes.len() + rx.recv()?.bytes.len(); // room for one more
///     Ok::<_, shmkit::Error>((len, rx)) // (the receiver stays)
/// });
/// loop {
///     match tx.try_send(&[7; 1000]) {
///         Ok(()) => break,
///         Err(TrySendError::Full) => {
///             readable(&tx, Some(Duration::from_secs(10)))?;
///         }
///         Err(e) => return Err(e.into_error().unwrap()),
///     }
/// }
/// assert_eq!(drain.join().unwrap()?.0, 2000);
/// # Ok::<(), shmkit::Error>(())
/// ```
impl AsFd for Sender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.link.poll.fd()
    }
}

impl AsRawFd for Sender {
    fn as_raw_fd(&self) -> RawFd {
        self.link.poll.fd().as_raw_fd()
    }
}

pub(crate) fn ring_error(link: &Link, e: RingError) -> Error {
    match e {
        RingError::TooLarge { len, max } => Error::MessageTooLarge {
            target: link.target().clone(),
            len,
            max,
        },
        RingError::Corrupt(reason) => link.member.corrupt(reason),
        RingError::Full | RingError::Empty => link.member.corrupt(format!("unexpected ring state {e:?}")),
    }
}

/// Room for one message, written in place; see [`Sender::reserve`]. It
/// derefs to a [`ViewMut`] of the message's bytes; dropping it sends
/// nothing.
#[derive(Debug)]
pub struct Grant<'a> {
    ring: &'a mut Producer,
    link: &'a Link,
    res: Reservation,
    view: ViewMut<'a>,
}

impl Grant<'_> {
    /// Sends the message.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the object shrank meanwhile.
    pub fn commit(self) -> Result<()> {
        self.ring.commit(self.res);
        let fenceless = self.link.fenceless();
        self.link.notify_hub(&self.link.region.top().data, fenceless);
        self.link.check_written(fenceless)
    }

    /// Shortens the message to its first `len` bytes; a larger `len`
    /// changes nothing.
    pub fn truncate(&mut self, len: usize) {
        if len < self.res.len {
            self.res.len = len;
            self.view = self.link.region.view_mut(self.link, self.ring.buf(), self.res.at, len);
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
