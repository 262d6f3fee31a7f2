//! The publishing end.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::Ordering;

use crate::core::event::{self, Stop, POLLER};
use crate::core::ring::broadcast::{Broadcaster, Grant};
use crate::core::ring::RingError;
use crate::core::slots::Presence;
use crate::error::{Error, Result};
use crate::map::ViewMut;
use crate::posix::ShmName;

use super::connect::{self, Endpoint};
use super::errors::{SendTimeoutError, TrySendError};
use super::poll;
use super::Options;

/// The publishing end of a topic: one per topic. See the [module
/// docs](super).
#[derive(Debug)]
pub struct Publisher {
    ring: Broadcaster,
    end: Endpoint,
}

impl Publisher {
    /// Connects to the topic `name` as its publisher, creating it if no
    /// subscriber has yet. It does not wait for subscribers: a message
    /// published while nobody subscribes is kept only as history.
    ///
    /// # Errors
    /// [`Error::Busy`] if another process is (or was, and died while
    /// subscribers still read) the publisher; [`Error::CapacityMismatch`]
    /// if [`Options::capacity`] conflicts with the topic's;
    /// [`Error::InvalidArgument`] for a capacity that is not a power of
    /// two from 64 bytes to 1 TiB or `max_subscribers` not from 1 to 64;
    /// [`Error::Corrupt`] if `name` is not a topic; the errors of creating
    /// a POSIX object.
    ///
    /// # Examples
    /// ```
    /// use shmkit::topic::{Options, Publisher};
    /// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-pub-{}", std::process::id()))?;
    /// let mut publisher = Publisher::connect(&name, &Options::new().history(4))?;
    /// publisher.send(b"nobody listens yet: kept as history")?;
    /// assert_eq!(publisher.info().messages_published, 1);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn connect(name: &ShmName, opts: &Options) -> Result<Publisher> {
        let end = connect::connect_publisher(name, opts)?;
        let (own, marks, roster) = end.producer_refs();
        let seats = (0..end.max_subscribers).map(|i| end.seat(i)).collect();
        let ring = Broadcaster::new(own, seats, marks, roster, end.buf(), end.capacity);
        Ok(Publisher { ring, end })
    }

    /// Publishes `msg`, waiting while a blocking subscriber has not read
    /// what it would overwrite (a dead one is forgotten within a tenth of a
    /// second). Lossy subscribers never hold it up.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] beyond [`max_message`](Self::max_message);
    /// [`Error::Corrupt`] if a subscriber's state in shared memory is
    /// invalid; [`Error::Interrupted`] if [`Options::interrupt`] says so;
    /// [`Error::Truncated`] if the object shrank.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        // The busy path, all inline as the channel's: room now.
        if let Ok(g) = self.ring.reserve(msg.len()) {
            self.ring.buf().write(g.at, msg);
            self.commit(g);
            // A shrink under the copy sent (part of) it to zero pages.
            return self.end.check_intact();
        }
        self.send_slow(msg)
    }

    #[cold]
    #[inline(never)]
    fn send_slow(&mut self, msg: &[u8]) -> Result<()> {
        match self.send_until(msg, None) {
            Ok(()) => Ok(()),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::TimedOut) => unreachable!("no deadline"),
        }
    }

    /// Publishes `msg` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`], or the errors of [`send`](Self::send).
    ///
    /// Once the publisher's [descriptor](Publisher#polling) has been taken,
    /// a `Full` result also arms it: it becomes readable when a blocking
    /// subscriber makes room (or leaves, or dies).
    pub fn try_send(&mut self, msg: &[u8]) -> std::result::Result<(), TrySendError> {
        let g = self.try_grant(msg.len())?;
        self.ring.buf().write(g.at, msg);
        self.commit(g);
        self.end.check_intact()?;
        Ok(())
    }

    /// Like [`reserve`](Self::reserve) if there is room now: zero-copy
    /// without waiting (and arming the descriptor, as
    /// [`try_send`](Self::try_send)).
    ///
    /// # Errors
    /// As [`try_send`](Self::try_send).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::topic::{Options, Publisher};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-try-reserve-{}", std::process::id()))?;
    /// let mut publisher = Publisher::connect(&name, &Options::new())?;
    /// let mut loan = publisher.try_reserve(8)?; // nobody blocks it
    /// loan.store_u64(0, 7)?;
    /// loan.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_reserve(&mut self, len: usize) -> std::result::Result<Loan<'_>, TrySendError> {
        let g = self.try_grant(len)?;
        Ok(self.loan(g))
    }

    /// Room for `len` bytes now, or `Full` (arming the descriptor when
    /// polled).
    #[inline]
    fn try_grant(&mut self, len: usize) -> std::result::Result<Grant, TrySendError> {
        match self.ring.reserve(len) {
            Ok(g) => Ok(g),
            Err(RingError::Full) => self.when_full(len),
            Err(e) => Err(TrySendError::from(ring_error(&self.end, e))),
        }
    }

    /// The ring was full at the first look: forgets subscribers that died
    /// (told by their lives when polled), looks again; a polled publisher
    /// then arms its descriptor and looks once more.
    #[cold]
    #[inline(never)]
    fn when_full(&mut self, len: usize) -> std::result::Result<Grant, TrySendError> {
        let polled = self.end.poll.polled();
        if polled {
            self.confirm_hang_ups()?;
        }
        self.forget_departed()?;
        match self.ring.reserve(len) {
            Err(RingError::Full) => {}
            Ok(g) => return Ok(g),
            Err(e) => return Err(TrySendError::from(ring_error(&self.end, e))),
        }
        if !polled {
            return Err(TrySendError::Full);
        }
        self.arm()?;
        let space = &self.end.header().events.0.space;
        match self.ring.reserve(len) {
            Err(RingError::Full) => {
                // The look may have admitted a blocking subscriber that
                // joined meanwhile, and it may be the one holding the ring
                // now: watch it too (seats watched already cost nothing; a
                // holder dead by now hangs its watch up at once).
                self.watch_blocking()?;
                Err(TrySendError::Full)
            }
            Ok(g) => {
                // the publisher is the one poller of `space`
                space.disarm_poll(POLLER);
                Ok(g)
            }
            Err(e) => {
                space.disarm_poll(POLLER);
                Err(TrySendError::from(ring_error(&self.end, e)))
            }
        }
    }

    /// Makes the descriptor become readable when a blocking subscriber
    /// releases (or joins, or leaves), or when one that holds the ring up
    /// dies: drains the doorbell, watches the lives of the blocking
    /// subscribers, publishes the poll word, sets the poller bit. The
    /// caller looks at the ring once more after this.
    fn arm(&mut self) -> Result<()> {
        let nonce = self.end.poll.drain()?;
        self.watch_blocking()?;
        let word = self.end.poll_word();
        if word.load(Ordering::Relaxed) != nonce {
            // Release, before the arming's SeqCst: a subscriber that sees
            // the bit sees the nonce.
            word.store(nonce, Ordering::Release);
        }
        self.end.header().events.0.space.arm_poll(POLLER);
        Ok(())
    }

    /// Watches the lives of the blocking subscribers that hold the ring
    /// up now, and no others.
    fn watch_blocking(&mut self) -> Result<()> {
        let blocking = self.ring.blocking_seats();
        // seats that no longer hold it up are not watched any more
        self.end.poll.retain(|seat| blocking.contains(&(seat - 1)));
        for &i in &blocking {
            let gen = self.end.seat(i).member.get().gen.load(Ordering::Relaxed);
            // No life: it left (its seat says so at the next look, and it
            // rang when it left) — blocking subscribers make theirs before
            // they block.
            self.end.poll.watch(i + 1, gen)?;
        }
        Ok(())
    }

    /// For each watched subscriber whose life hung up: it left or is
    /// dying. The kernel closes a dying process's descriptors before its
    /// lock goes, so wait (at most a second) until its seat says it is gone
    /// (or has a new holder), then stop watching it; `forget_departed`
    /// does the rest.
    fn confirm_hang_ups(&mut self) -> Result<()> {
        for (seat, gen) in self.end.poll.hung_up() {
            poll::confirm(|| {
                let holder = self.end.seat(seat - 1).member.get().gen.load(Ordering::Relaxed);
                Ok(holder != gen || !matches!(self.end.presence(seat)?, Presence::Alive { .. }))
            })?;
            self.end.poll.unwatch(seat);
        }
        Ok(())
    }

    /// Publishes `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], or the errors of [`send`](Self::send).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> std::result::Result<(), SendTimeoutError> {
        match self.send_until(msg, event::deadline(timeout)) {
            Ok(()) => Ok(()),
            Err(Stop::TimedOut) => Err(SendTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(SendTimeoutError::from(e)),
        }
    }

    fn send_until(&mut self, msg: &[u8], deadline: Option<Instant>) -> std::result::Result<(), Stop<Error>> {
        let g = self.reserve_until(msg.len(), deadline)?;
        self.ring.buf().write(g.at, msg);
        self.commit(g);
        // A shrink under the copy sent (part of) it to zero pages.
        self.end.check_intact()?;
        Ok(())
    }

    /// Reserves room for a message of `len` bytes, waiting as
    /// [`send`](Self::send) does, and lends it out to be written in place:
    /// zero-copy, one copy for every subscriber. The message is published
    /// when the loan is [committed](Loan::commit); dropping the loan
    /// publishes nothing.
    ///
    /// The loan is a [`ViewMut`]: it copies in and out and stores
    /// integers, but never lends a `&mut [u8]` over shared memory. Its
    /// bytes hold whatever an earlier message left. A hostile subscriber
    /// could still write into them while the loan lives.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::topic::{Options, Publisher};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-loan-{}", std::process::id()))?;
    /// let mut publisher = Publisher::connect(&name, &Options::new())?;
    /// let mut loan = publisher.reserve(8)?;
    /// loan.store_u64(0, 42)?;
    /// loan.commit()?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<Loan<'_>> {
        match self.reserve_until(len, None) {
            Ok(g) => Ok(self.loan(g)),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::TimedOut) => unreachable!("no deadline"),
        }
    }

    /// Like [`reserve`](Self::reserve), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], or the errors of [`send`](Self::send).
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> std::result::Result<Loan<'_>, SendTimeoutError> {
        match self.reserve_until(len, event::deadline(timeout)) {
            Ok(g) => Ok(self.loan(g)),
            Err(Stop::TimedOut) => Err(SendTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(SendTimeoutError::from(e)),
        }
    }

    fn loan(&mut self, grant: Grant) -> Loan<'_> {
        let Publisher { ring, end } = self;
        let view = end.view_mut(ring.buf(), grant.at, grant.len);
        Loan { ring, end, grant, view }
    }

    #[inline]
    fn reserve_until(&mut self, len: usize, deadline: Option<Instant>) -> std::result::Result<Grant, Stop<Error>> {
        match self.ring.reserve(len) {
            Ok(g) => Ok(g),
            Err(RingError::Full) => self.wait_for_room(len, deadline),
            Err(e) => Err(Stop::Failed(ring_error(&self.end, e))),
        }
    }

    /// The slow path: a blocking subscriber holds the ring. Waits on the
    /// `space` event; between looks, forgets subscribers that died.
    #[cold]
    #[inline(never)]
    fn wait_for_room(&mut self, len: usize, deadline: Option<Instant>) -> std::result::Result<Grant, Stop<Error>> {
        let Publisher { ring, end } = self;
        let end = &*end;
        let ring = RefCell::new(ring);
        event::wait_for(
            &end.header().events.0.space,
            end.spin,
            deadline,
            || match ring.borrow_mut().reserve(len) {
                Ok(g) => Ok(Some(g)),
                Err(RingError::Full) => Ok(None),
                Err(e) => Err(ring_error(end, e)),
            },
            || {
                end.check_interrupt()?;
                end.check_size()?;
                forget_departed(&mut ring.borrow_mut(), end)
            },
        )
    }

    fn forget_departed(&mut self) -> Result<()> {
        forget_departed(&mut self.ring, &self.end)
    }

    #[inline]
    fn commit(&mut self, g: Grant) {
        self.ring.commit(g);
        notify(&self.end);
    }

    /// Waits until every blocking subscriber has read every message
    /// published so far (dead ones are forgotten).
    ///
    /// # Errors
    /// [`Error::Interrupted`], [`Error::Corrupt`], [`Error::Truncated`].
    pub fn flush(&mut self) -> Result<()> {
        match self.flush_until(None) {
            Ok(()) => Ok(()),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::TimedOut) => unreachable!("no deadline"),
        }
    }

    /// Like [`flush`](Self::flush), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], or the errors of [`flush`](Self::flush).
    pub fn flush_timeout(&mut self, timeout: Duration) -> std::result::Result<(), SendTimeoutError> {
        match self.flush_until(event::deadline(timeout)) {
            Ok(()) => Ok(()),
            Err(Stop::TimedOut) => Err(SendTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(SendTimeoutError::from(e)),
        }
    }

    fn flush_until(&mut self, deadline: Option<Instant>) -> std::result::Result<(), Stop<Error>> {
        let Publisher { ring, end } = self;
        let end = &*end;
        let ring = RefCell::new(ring);
        event::wait_for(
            &end.header().events.0.space,
            end.spin,
            deadline,
            || match ring.borrow_mut().is_drained() {
                Ok(true) => Ok(Some(())),
                Ok(false) => Ok(None),
                Err(e) => Err(ring_error(end, e)),
            },
            || {
                end.check_interrupt()?;
                end.check_size()?;
                forget_departed(&mut ring.borrow_mut(), end)
            },
        )
    }

    /// The longest message this topic carries: half its capacity, less 16.
    pub fn max_message(&self) -> usize {
        self.ring.max_message() as usize
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.end.capacity as usize
    }

    /// How many subscribers may take part at once.
    pub fn max_subscribers(&self) -> usize {
        self.end.max_subscribers
    }

    /// How many past messages a new subscriber starts with, at most.
    pub fn history(&self) -> u64 {
        self.end.history
    }

    /// Messages published so far.
    pub fn published(&self) -> u64 {
        self.ring.sent()
    }

    /// A snapshot of the topic's header, as [`super::info`] gives for a
    /// name, read through this side's own mapping.
    pub fn info(&self) -> super::TopicInfo {
        self.end.info()
    }

    /// Checks that the topic's object still has its full size.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the object has shrunk.
    pub fn check_intact(&self) -> Result<()> {
        self.end.check_size()
    }
}

/// Forgets every blocking subscriber whose seat shows it gone: the
/// publisher no longer waits for it.
fn forget_departed(ring: &mut Broadcaster, end: &Endpoint) -> Result<()> {
    for i in ring.blocking_seats() {
        if !matches!(end.presence(i + 1)?, Presence::Alive { .. }) {
            ring.drop_seat(i);
        }
    }
    Ok(())
}

/// Wakes the subscribers that sleep, rings those that poll (the busy path:
/// one fence and one load).
#[inline]
fn notify(end: &Endpoint) {
    end.header()
        .events
        .0
        .data
        .notify_or_ring(false, || end.ring_subscribers());
}

fn ring_error(end: &Endpoint, e: RingError) -> Error {
    match e {
        RingError::TooLarge { len, max } => Error::MessageTooLarge {
            target: end.target().clone(),
            len,
            max,
        },
        RingError::Corrupt(reason) => end.corrupt_error(reason),
        RingError::Full | RingError::Empty => end.corrupt_error(format!("unexpected ring state {e:?}")),
    }
}

/// # Polling
/// The publisher's descriptor (an `epoll` set holding its *doorbell*, see
/// [`crate::wait`]) becomes readable, after a
/// [`try_send`](Publisher::try_send) or
/// [`try_reserve`](Publisher::try_reserve) found the ring full, when a
/// blocking subscriber makes room (reads), joins or leaves, or when one
/// that holds the ring up dies (it watches their *lives*, which the kernel
/// closes when their processes end, in any namespace). Lossy subscribers
/// never hold it up. Taking it (`as_fd`, `as_raw_fd`) puts the publisher in
/// poll mode, in which those calls arm it when they return `Full`; a
/// readable descriptor means "try again", which may still find the ring
/// full (then it is armed again). It is the same descriptor for the
/// publisher's whole life, and it is readable once right after it is first
/// taken (a spurious wake-up). Wait on it only after a `Full`: between
/// those it may stay readable (a subscriber's join or a departed one's
/// hang-up, tidied at the next `Full`). A `try_*` call that finds a
/// watched subscriber's life hung up waits (up to a second, in practice
/// the moment a dying process takes to lose its lock) to tell a death
/// from a departure — a pause an async runtime's thread feels too.
///
/// ```
/// use shmkit::topic::{Options, Publisher, SubOptions, Subscriber, TrySendError};
/// use std::time::Duration;
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-poll-pub-{}", std::process::id()))?;
/// let mut publisher = Publisher::connect(&name, &Options::new().capacity(4096))?;
/// let mut sub = Subscriber::connect(&name, &SubOptions::new())?; // blocking
/// let reader = std::thread::spawn(move || (0..1000).map(|_| sub.recv().unwrap().len()).sum::<usize>());
/// let mut sent = 0;
/// while sent < 1000 {
///     match publisher.try_send(&[7; 100]) {
///         Ok(()) => sent += 1,
///         // full: wait until the subscriber reads (or dies)
///         Err(TrySendError::Full) => {
///             shmkit::wait::readable(&publisher, Some(Duration::from_secs(10)))?;
///         }
///         Err(e) => return Err(e.into()),
///     }
/// }
/// assert_eq!(reader.join().unwrap(), 100_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl AsFd for Publisher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.end.poll.fd()
    }
}

impl AsRawFd for Publisher {
    fn as_raw_fd(&self) -> RawFd {
        self.end.poll.fd().as_raw_fd()
    }
}

/// Room for one message in the ring, written in place; see
/// [`Publisher::reserve`]. It derefs to a [`ViewMut`] of the message's
/// bytes.
#[derive(Debug)]
pub struct Loan<'a> {
    ring: &'a mut Broadcaster,
    end: &'a Endpoint,
    grant: Grant,
    view: ViewMut<'a>,
}

impl Loan<'_> {
    /// Publishes the message.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the object shrank while the message was
    /// written: it is lost.
    pub fn commit(self) -> Result<()> {
        self.ring.commit(self.grant);
        notify(self.end);
        self.end.check_intact()
    }

    /// Shortens the message to its first `len` bytes; a larger `len`
    /// changes nothing.
    pub fn truncate(&mut self, len: usize) {
        if len < self.grant.len {
            self.grant.truncate(len);
            self.view = self.end.view_mut(self.ring.buf(), self.grant.at, len);
        }
    }
}

impl<'a> Deref for Loan<'a> {
    type Target = ViewMut<'a>;
    fn deref(&self) -> &ViewMut<'a> {
        &self.view
    }
}

impl<'a> DerefMut for Loan<'a> {
    fn deref_mut(&mut self) -> &mut ViewMut<'a> {
        &mut self.view
    }
}
