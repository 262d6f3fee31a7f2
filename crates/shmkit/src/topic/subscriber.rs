//! The subscribing end.

use std::cell::RefCell;
use std::ops::Deref;
use std::time::{Duration, Instant};

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::Ordering;

use crate::core::event::{self, POLLER};
use crate::core::ring::broadcast::{Msg, Reader, RETRIES};
use crate::core::ring::RingError;
use crate::core::slots::Presence;
use crate::error::{Error, Result};
use crate::map::View;
use crate::posix::ShmName;

use super::connect::{self, Endpoint};
use super::errors::{RecvError, RecvTimeoutError, Stop, TryRecvError};
use super::layout::PUBLISHER;
use super::poll;
use super::SubOptions;

/// One subscriber of a topic. See the [module docs](super).
#[derive(Debug)]
pub struct Subscriber {
    ring: Reader,
    end: Endpoint,
}

impl Subscriber {
    /// Connects to the topic `name` as a subscriber, creating it if nobody
    /// has yet, and waits (at most [`SubOptions::timeout`]) for a publisher
    /// to set it up. It starts with the next message published, or with
    /// the last `k` messages still in the ring if the topic keeps history
    /// ([`Options::history`](super::Options::history)).
    ///
    /// # Errors
    /// [`Error::Busy`] if the topic has its `max_subscribers` already;
    /// [`Error::TimedOut`] if no publisher came in time;
    /// [`Error::PeerGone`] if the topic's publisher has died (the topic is
    /// finishing); [`Error::Corrupt`] if `name` is not a topic; the errors
    /// of creating a POSIX object.
    ///
    /// # Examples
    /// ```
    /// use shmkit::topic::{Options, Publisher, SubOptions, Subscriber};
    /// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-sub-{}", std::process::id()))?;
    /// let mut publisher = Publisher::connect(&name, &Options::new())?;
    /// let mut sub = Subscriber::connect(&name, &SubOptions::new())?;
    /// publisher.send(b"hello")?;
    /// assert_eq!(sub.recv()?, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(name: &ShmName, opts: &SubOptions) -> Result<Subscriber> {
        let end = connect::connect_subscriber(name, opts)?;
        let (producer, marks, roster) = end.producer_refs();
        let seat = end.seat(end.index() - 1);
        let ring = Reader::join(
            seat,
            producer,
            marks,
            roster,
            end.buf(),
            end.capacity,
            opts.lossy,
            end.history,
            end.announced,
        )
        .map_err(|e| ring_error(&end, e))?;
        end.header().events.0.space.notify_always();
        // a polling publisher looks again (it may wait for this seat now)
        end.ring_publisher();
        Ok(Subscriber { ring, end })
    }

    /// The next message, waiting for one.
    ///
    /// # Errors
    /// [`RecvError::Lagged`] (lossy subscribers only) when messages were
    /// lost before the next one: call again to get it;
    /// [`RecvError::Disconnected`] once the publisher has closed
    /// ([`Error::Closed`]) or died ([`Error::PeerGone`]) and everything it
    /// published was received; [`RecvError::Failed`] with
    /// [`Error::Corrupt`] and the like.
    pub fn recv(&mut self) -> std::result::Result<Vec<u8>, RecvError> {
        let mut out = Vec::new();
        self.recv_into(&mut out)?;
        Ok(out)
    }

    /// Like [`recv`](Self::recv), into `buf` (replacing its contents).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> std::result::Result<(), RecvError> {
        self.take(buf, None, true).map_err(RecvError::from)
    }

    /// The next message if there is one now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or as [`recv`](Self::recv).
    ///
    /// Once the subscriber's [descriptor](Subscriber#polling) has been
    /// taken, an `Empty` result also arms it: it becomes readable when a
    /// message is published (or the publisher leaves, or dies).
    pub fn try_recv(&mut self) -> std::result::Result<Vec<u8>, TryRecvError> {
        let mut out = Vec::new();
        self.take(&mut out, None, false).map_err(TryRecvError::from)?;
        Ok(out)
    }

    /// Like [`try_recv`](Self::try_recv), into `buf` (replacing its
    /// contents).
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv).
    ///
    /// # Examples
    /// ```
    /// use shmkit::topic::{Options, Publisher, SubOptions, Subscriber, TryRecvError};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-try-recv-into-{}", std::process::id()))?;
    /// let mut publisher = Publisher::connect(&name, &Options::new())?;
    /// let mut sub = Subscriber::connect(&name, &SubOptions::new())?;
    /// let mut buf = Vec::new();
    /// assert!(matches!(sub.try_recv_into(&mut buf), Err(TryRecvError::Empty)));
    /// publisher.send(b"now")?;
    /// sub.try_recv_into(&mut buf)?;
    /// assert_eq!(buf, b"now");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> std::result::Result<(), TryRecvError> {
        self.take(buf, None, false).map_err(TryRecvError::from)
    }

    /// Like [`recv_ref`](Self::recv_ref) if a message is there now:
    /// zero-copy without waiting (and arming the descriptor, as
    /// [`try_recv`](Self::try_recv)).
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::topic::{Options, Publisher, SubOptions, Subscriber};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-try-recv-ref-{}", std::process::id()))?;
    /// let mut publisher = Publisher::connect(&name, &Options::new())?;
    /// let mut sub = Subscriber::connect(&name, &SubOptions::new())?;
    /// assert!(sub.try_recv_ref().is_err());
    /// publisher.send(&5u64.to_ne_bytes())?;
    /// assert_eq!(sub.try_recv_ref()?.load_u64(0)?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_ref(&mut self) -> std::result::Result<RecvGuard<'_>, TryRecvError> {
        let msg = self.next_accepted(None, false).map_err(TryRecvError::from)?;
        Ok(self.guard(msg))
    }

    /// The next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or as [`recv`](Self::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> std::result::Result<Vec<u8>, RecvTimeoutError> {
        let mut out = Vec::new();
        self.take(&mut out, event::deadline(timeout), true)
            .map_err(RecvTimeoutError::from)?;
        Ok(out)
    }

    /// The next message in place, waiting for one: zero-copy. Its space
    /// goes back to the publisher when the guard is dropped.
    ///
    /// The guard is a [`View`]: it copies out and loads integers, never a
    /// `&[u8]` over shared memory. For a **blocking** subscriber the
    /// publisher does not overwrite the bytes while the guard lives. A
    /// **lossy** subscriber's bytes may be overwritten at any time: read
    /// what you need, then ask [`RecvGuard::is_intact`]; if it says `false`,
    /// what you read may be mixed with a newer message — discard it (the
    /// next call reports the loss as [`RecvError::Lagged`]).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::topic::{Options, Publisher, SubOptions, Subscriber};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-sub-ref-{}", std::process::id()))?;
    /// # let mut publisher = Publisher::connect(&name, &Options::new())?;
    /// let mut sub = Subscriber::connect(&name, &SubOptions::new().lossy(true))?;
    /// publisher.send(&7u64.to_ne_bytes())?;
    /// let msg = sub.recv_ref()?;
    /// let value = msg.load_u64(0)?;
    /// assert!(msg.is_intact(), "not overwritten while read");
    /// assert_eq!(value, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_ref(&mut self) -> std::result::Result<RecvGuard<'_>, RecvError> {
        let msg = self.next_accepted(None, true).map_err(RecvError::from)?;
        Ok(self.guard(msg))
    }

    /// Like [`recv_ref`](Self::recv_ref), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or as [`recv`](Self::recv).
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> std::result::Result<RecvGuard<'_>, RecvTimeoutError> {
        let msg = self
            .next_accepted(event::deadline(timeout), true)
            .map_err(RecvTimeoutError::from)?;
        Ok(self.guard(msg))
    }

    fn guard(&mut self, msg: Msg) -> RecvGuard<'_> {
        let Subscriber { ring, end } = self;
        let end = &*end;
        let view = end.view(ring.buf(), msg.at, msg.len);
        RecvGuard { ring, end, msg, view }
    }

    /// An iterator over messages, waiting for each. It ends when the
    /// publisher has closed the topic and everything is received; it
    /// yields `Lagged` reports (lossy subscribers) and failures as
    /// `Err` (after a failure, it ends).
    pub fn iter(&mut self) -> Iter<'_> {
        Iter {
            subscriber: self,
            done: false,
        }
    }

    /// Copies the next message into `out`: peek, copy, check it was
    /// intact, check its number, release.
    #[inline]
    fn take(&mut self, out: &mut Vec<u8>, deadline: Option<Instant>, wait: bool) -> std::result::Result<(), Stop> {
        // The busy path, all inline as the channel's: a message is there,
        // intact, and the one expected.
        if let Ok(msg) = self.ring.peek() {
            out.clear();
            self.ring.buf().append_to(msg.at, msg.len, out);
            // A shrink under the copy gave zeros.
            self.end.check_intact()?;
            if self.ring.intact(&msg).map_err(|e| ring_error(&self.end, e))? {
                if let Some(missed) = self.ring.accept(&msg).map_err(|e| ring_error(&self.end, e))? {
                    return Err(Stop::Lagged(missed));
                }
                self.release(msg);
                return Ok(());
            }
        }
        self.take_slow(out, deadline, wait)
    }

    /// The rest of [`take`](Self::take): nothing there yet (wait), or a
    /// lossy subscriber lapped under its copy.
    #[cold]
    #[inline(never)]
    fn take_slow(&mut self, out: &mut Vec<u8>, deadline: Option<Instant>, wait: bool) -> std::result::Result<(), Stop> {
        let msg = self.next_read(Some(out), deadline, wait)?;
        self.release(msg);
        Ok(())
    }

    /// The next message, intact so far and accepted (its number checked),
    /// for a guard.
    fn next_accepted(&mut self, deadline: Option<Instant>, wait: bool) -> std::result::Result<Msg, Stop> {
        self.next_read(None, deadline, wait)
    }

    /// The next message, copied into `out` (if given), then found intact
    /// and accepted (its number checked); not yet released. A lossy
    /// subscriber lapped under the copy (or, for a guard, before) looks
    /// again, at most [`RETRIES`] times between looks at the caller's
    /// deadline and interrupt.
    #[inline(always)]
    fn next_read(
        &mut self,
        mut out: Option<&mut Vec<u8>>,
        deadline: Option<Instant>,
        wait: bool,
    ) -> std::result::Result<Msg, Stop> {
        loop {
            for _ in 0..RETRIES {
                let msg = self.next_msg(deadline, wait)?;
                if let Some(out) = out.as_deref_mut() {
                    out.clear();
                    self.ring.buf().append_to(msg.at, msg.len, out);
                }
                // A shrink under the copy gave zeros.
                self.end.check_intact()?;
                if !self.ring.intact(&msg).map_err(|e| ring_error(&self.end, e))? {
                    continue;
                }
                if let Some(missed) = self.ring.accept(&msg).map_err(|e| ring_error(&self.end, e))? {
                    return Err(Stop::Lagged(missed));
                }
                return Ok(msg);
            }
            // Lapped again and again (or fooled by a hostile publisher):
            // the caller's deadline and interrupt still hold.
            if !wait {
                // a poller is told to come again (nothing was armed)
                self.end.poll.ring_self();
                return Err(Stop::Empty);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Stop::TimedOut);
            }
            self.end.check_interrupt()?;
        }
    }

    /// The next message found (not yet copied nor checked), waiting for one
    /// if `wait`.
    #[inline]
    fn next_msg(&mut self, deadline: Option<Instant>, wait: bool) -> std::result::Result<Msg, Stop> {
        match self.ring.peek() {
            Ok(msg) => Ok(msg),
            Err(RingError::Empty) if !wait => self.when_empty(),
            Err(RingError::Empty) => self.wait_msg(deadline),
            Err(e) => Err(Stop::Failed(ring_error(&self.end, e))),
        }
    }

    /// Nothing at the first look of a `try_*` call. A polled subscriber
    /// arms its descriptor and looks once more; then, is the publisher
    /// still there?
    #[cold]
    #[inline(never)]
    fn when_empty(&mut self) -> std::result::Result<Msg, Stop> {
        let polled = self.end.poll.polled();
        if polled {
            self.arm()?;
            match self.ring.peek() {
                // Not disarmed: every subscriber shares the poller bit
                // (see `super::poll`); the next commit rings once more.
                Ok(msg) => return Ok(msg),
                Err(RingError::Empty) => {}
                Err(e) => return Err(Stop::Failed(ring_error(&self.end, e))),
            }
        }
        let publisher = if polled {
            self.check_publisher_polled()
        } else {
            self.end.check_publisher()
        };
        match publisher {
            Ok(()) => Err(Stop::Empty),
            // The publisher commits before it leaves: look once more.
            Err(gone) => match self.ring.peek() {
                Ok(msg) => Ok(msg),
                Err(RingError::Empty) => Err(Stop::Failed(gone)),
                Err(e) => Err(Stop::Failed(ring_error(&self.end, e))),
            },
        }
    }

    /// Makes the descriptor become readable at the next commit (or when
    /// the publisher leaves or dies): drains the doorbell, watches the
    /// publisher's life, publishes the poll word, sets the poller bit. The
    /// caller looks at the ring once more after this.
    fn arm(&self) -> Result<()> {
        let nonce = self.end.poll.drain()?;
        if !self.end.poll.watches(PUBLISHER) {
            // A publisher between taking its seat and making its life
            // (rare, and short): wait a moment for it.
            poll::confirm(|| {
                Ok(self.end.poll.watch(PUBLISHER, 0)?
                    || !matches!(self.end.presence(PUBLISHER)?, Presence::Alive { .. }))
            })?;
        }
        let word = self.end.poll_word();
        if word.load(Ordering::Relaxed) != nonce {
            // Release, before the arming's SeqCst: a publisher that sees
            // the bit sees the nonce.
            word.store(nonce, Ordering::Release);
        }
        self.end.header().events.0.data.arm_poll(POLLER);
        Ok(())
    }

    /// `check_publisher` for a polled subscriber. Once the publisher's life
    /// has hung up, it has left or is dying: the kernel closes a dying
    /// process's descriptors first, so the hang-up may come a moment before
    /// its lock goes. Saying "nothing yet" then would leave an
    /// edge-triggered poller without an edge: wait (at most a second) for
    /// the lock to go too.
    fn check_publisher_polled(&self) -> Result<()> {
        self.end.check_publisher()?;
        if self.end.poll.hung_up().is_empty() {
            return Ok(());
        }
        let gone = poll::confirm(|| self.end.check_publisher().map(|()| false))?;
        if !gone {
            // still there (a forked child holds its life?): stop watching
            // a life that says nothing any more; the next arming looks again
            self.end.poll.unwatch(PUBLISHER);
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn wait_msg(&mut self, deadline: Option<Instant>) -> std::result::Result<Msg, Stop> {
        let Subscriber { ring, end } = self;
        let end = &*end;
        let ring = RefCell::new(ring);
        event::wait_for(
            &end.header().events.0.data,
            end.spin,
            deadline,
            || match ring.borrow_mut().peek() {
                Ok(msg) => Ok(Some(msg)),
                Err(RingError::Empty) => Ok(None),
                Err(e) => Err(ring_error(end, e)),
            },
            || {
                // A silent publisher whose counter says otherwise is corrupt.
                ring.borrow_mut().check_stalled().map_err(|e| ring_error(end, e))?;
                end.check_interrupt()?;
                end.check_publisher()
            },
        )
        .map_err(|stop| match stop {
            event::Stop::TimedOut => Stop::TimedOut,
            event::Stop::Failed(e) => Stop::Failed(e),
        })
    }

    #[inline]
    fn release(&mut self, msg: Msg) {
        release(&mut self.ring, &self.end, msg);
    }

    /// Whether this subscriber is lossy (the publisher never waits for it).
    pub fn is_lossy(&self) -> bool {
        self.ring.is_lossy()
    }

    /// How many messages are published and not yet received here (a
    /// snapshot; a lossy subscriber may have lost some of them already).
    pub fn len(&self) -> usize {
        self.ring.in_flight() as usize
    }

    /// Whether no message is waiting now (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.end.capacity as usize
    }

    /// The longest message this topic carries.
    pub fn max_message(&self) -> usize {
        self.ring.max_message() as usize
    }

    /// This subscriber's seat (0-based), as [`TopicInfo`](super::TopicInfo)
    /// lists it.
    pub fn seat(&self) -> usize {
        self.end.index() - 1
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

/// # Polling
/// The subscriber's descriptor (an `epoll` set holding its *doorbell*, see
/// [`crate::wait`]) becomes readable when a message is published after a
/// [`try_recv`](Subscriber::try_recv) (or
/// [`try_recv_into`](Subscriber::try_recv_into),
/// [`try_recv_ref`](Subscriber::try_recv_ref)) found nothing, and when the
/// publisher closes the topic or dies (it watches the publisher's *life*,
/// which the kernel closes when the publisher's process ends, in any
/// namespace). Taking it (`as_fd`, `as_raw_fd`) puts the subscriber in poll
/// mode, in which those calls arm it when they return `Empty`; a readable
/// descriptor means "try again", which may still find nothing (then it is
/// armed again). It is the same descriptor for the subscriber's whole life,
/// so it can be registered once with an event loop
/// ([`WaitSet`](crate::wait::WaitSet), `shmkit::tokio::Async`). Leave the
/// descriptor alone otherwise: the subscriber reads its doorbell itself.
///
/// The descriptor is readable once right after it is first taken (a
/// spurious wake-up: try again, which arms it), so that a loop which takes
/// it only when it has to wait still works. Once the publisher is gone and
/// every message was received, it stays readable and every call returns
/// `Disconnected` at once.
///
/// ```
/// use shmkit::topic::{Options, Publisher, SubOptions, Subscriber, TryRecvError};
/// use shmkit::wait::WaitSet;
/// use std::time::Duration;
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-poll-sub-{}", std::process::id()))?;
/// let mut publisher = Publisher::connect(&name, &Options::new())?;
/// let mut sub = Subscriber::connect(&name, &SubOptions::new())?;
/// let t = std::thread::spawn(move || {
///     for i in 0..100u32 {
///         publisher.send(&i.to_le_bytes()).unwrap();
///     }
///     // dropping the publisher closes the topic
/// });
/// let mut set = WaitSet::new()?;
/// set.add(&sub, 0)?;
/// let mut got = 0;
/// loop {
///     match sub.try_recv() {
///         Ok(_msg) => got += 1,
///         Err(TryRecvError::Empty) => {
///             set.wait(Some(Duration::from_secs(10)))?; // a message, or the publisher left
///         }
///         Err(e) if e.is_disconnected() => break, // closed, everything received
///         Err(e) => return Err(e.into()),
///     }
/// }
/// assert_eq!(got, 100);
/// # t.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl AsFd for Subscriber {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.end.poll.fd()
    }
}

impl AsRawFd for Subscriber {
    fn as_raw_fd(&self) -> RawFd {
        self.end.poll.fd().as_raw_fd()
    }
}

#[inline]
fn release(ring: &mut Reader, end: &Endpoint, msg: Msg) {
    ring.release(msg);
    if !ring.is_lossy() {
        end.header()
            .events
            .0
            .space
            .notify_or_ring(end.fenceless, || end.ring_publisher());
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

/// A received message in place; see [`Subscriber::recv_ref`]. It derefs to
/// a [`View`] of the message's bytes; dropping it gives the space back.
#[derive(Debug)]
pub struct RecvGuard<'a> {
    ring: &'a mut Reader,
    end: &'a Endpoint,
    msg: Msg,
    view: View<'a>,
}

impl RecvGuard<'_> {
    /// Whether the message's bytes are still the ones published: always for
    /// a blocking subscriber; for a lossy one, `false` once the publisher
    /// has begun to overwrite them. Ask it **after** reading: what was read
    /// before a `true` answer was intact.
    pub fn is_intact(&self) -> bool {
        self.ring.still_intact(&self.msg) && self.end.check_intact().is_ok()
    }

    /// The message's sequence number: the publisher's count of messages
    /// before it.
    pub fn seq(&self) -> u64 {
        self.msg.seq
    }
}

impl<'a> Deref for RecvGuard<'a> {
    type Target = View<'a>;
    fn deref(&self) -> &View<'a> {
        &self.view
    }
}

impl Drop for RecvGuard<'_> {
    fn drop(&mut self) {
        release(self.ring, self.end, self.msg);
    }
}

/// The iterator of [`Subscriber::iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    subscriber: &'a mut Subscriber,
    done: bool,
}

impl Iterator for Iter<'_> {
    type Item = std::result::Result<Vec<u8>, RecvError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.subscriber.recv() {
            Ok(msg) => Some(Ok(msg)),
            Err(RecvError::Disconnected(Error::Closed { .. })) => {
                self.done = true;
                None
            }
            Err(e @ RecvError::Lagged { .. }) => Some(Err(e)),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
