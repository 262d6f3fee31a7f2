//! The receiving end.

use std::cell::RefCell;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::core::event::{self, Stop};
use crate::core::sync::Ordering;
use crate::error::{Error, Result, Role};
use crate::map::View;
use crate::posix::ShmName;

use super::connect::{self, Link};
use super::seats::{Collector, Incoming};
use super::sender::ring_error;
use super::{Options, RecvTimeoutError, TryRecvError};

/// Who sent a message: a seat, and which of the senders that held it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SenderId {
    /// The seat, from 0 to N − 1.
    pub seat: usize,
    /// The seat's generation: each new sender in a seat starts a new one,
    /// so a dead sender's last messages and its successor's first ones are
    /// told apart.
    pub generation: u32,
    /// The sender's pid, in its own PID namespace, as it recorded it
    /// (display only: another process could write anything there).
    pub pid: u32,
}

/// A message and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub sender: SenderId,
    /// The message's bytes.
    pub bytes: Vec<u8>,
}

/// The receiving end of a many-to-one object. See the [module docs](super).
#[derive(Debug)]
pub struct Receiver {
    col: Collector,
    link: Link,
    spin: Duration,
    /// When to settle the seats.
    pace: Pace,
}

/// How many messages the receiver delivers between two looks for seats
/// whose new sender waits (when it is never idle).
const SETTLE_EVERY: u32 = 256;

impl Receiver {
    /// Connects to `name` as its receiver, creating the object if no sender
    /// has yet. Waits for nobody.
    ///
    /// # Errors
    /// [`Error::Busy`] if another process is the receiver (or was, and died
    /// while senders still finish); [`Error::InvalidArgument`] if the object
    /// exists with another number of seats than [`Options::senders`];
    /// [`Error::CapacityMismatch`]; [`Error::Corrupt`] if `name` is not a
    /// many-to-one object; the errors of creating a POSIX object.
    pub fn connect(name: &ShmName, opts: &Options) -> Result<Receiver> {
        let link = connect::join(name, &opts.want(true), Role::Sender)?;
        let col = Collector::new(link.region, link.registered());
        // Senders waiting for us sleep on their seats' events.
        for s in 0..link.region.geo().seats {
            link.region.ctl(s).space.notify_always();
        }
        Ok(Receiver {
            col,
            link,
            spin: opts.spin,
            pace: Pace::default(),
        })
    }

    /// The next message and its sender, waiting for one.
    ///
    /// # Errors
    /// [`Error::Closed`] once as many senders as there are seats have
    /// joined, all have left and everything is delivered ([`Error::PeerGone`] if one of the last
    /// died); [`Error::Corrupt`]; [`Error::Interrupted`].
    pub fn recv(&mut self) -> Result<Message> {
        let mut bytes = Vec::new();
        let sender = self.recv_into(&mut bytes)?;
        Ok(Message { sender, bytes })
    }

    /// Like [`recv`](Receiver::recv), into `buf` (replacing its contents);
    /// returns the sender.
    ///
    /// # Errors
    /// As [`recv`](Receiver::recv).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<SenderId> {
        let inc = self.wait(None).map_err(|stop| match stop {
            Stop::Failed(e) => e,
            Stop::TimedOut => unreachable!("no deadline"),
        })?;
        self.take(inc, buf)
    }

    /// The next message if there is one now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or the errors of [`recv`](Receiver::recv).
    ///
    /// Once the receiver's [descriptor](Receiver#polling) has been taken, an
    /// `Empty` result also arms it: it becomes readable when a message comes
    /// (or a sender leaves).
    pub fn try_recv(&mut self) -> std::result::Result<Message, TryRecvError> {
        let mut bytes = Vec::new();
        let sender = self.try_recv_into(&mut bytes)?;
        Ok(Message { sender, bytes })
    }

    /// Like [`try_recv`](Receiver::try_recv), into `buf` (replacing its
    /// contents); returns the sender.
    ///
    /// # Errors
    /// As [`try_recv`](Receiver::try_recv).
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> std::result::Result<SenderId, TryRecvError> {
        let inc = self.try_look()?;
        Ok(self.take(inc, buf)?)
    }

    /// Like [`recv_ref`](Receiver::recv_ref) if a message is there now:
    /// zero-copy without waiting.
    ///
    /// # Errors
    /// As [`try_recv`](Receiver::try_recv).
    pub fn try_recv_ref(&mut self) -> std::result::Result<RecvGuard<'_>, TryRecvError> {
        let inc = self.try_look()?;
        Ok(self.guard(inc)?)
    }

    /// A frame if there is one now; else `Empty` (arming the descriptor
    /// when polled), or the end of the stream.
    fn try_look(&mut self) -> std::result::Result<Incoming, TryRecvError> {
        if let Some(inc) = self.look()? {
            return Ok(inc);
        }
        if let Err(end) = self.link.check_ended() {
            return match self.look()? {
                Some(inc) => Ok(inc),
                None => Err(TryRecvError::from(end)),
            };
        }
        if !self.link.poll.polled() {
            return Err(TryRecvError::Empty);
        }
        let region = self.link.region;
        let data = &region.top().data;
        self.link.arm(data)?;
        // Both conditions once more: a message, or the end of the stream
        // (a sender's leaving rang the doorbell before the drain above).
        let found = match self.look() {
            Ok(Some(inc)) => Ok(inc),
            Ok(None) => match self.link.check_ended() {
                Ok(()) => return Err(TryRecvError::Empty),
                Err(end) => self.look().and_then(|inc| inc.ok_or(end)),
            },
            Err(e) => Err(e),
        };
        self.link.poll.disarm(data);
        Ok(found?)
    }

    /// The next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or the errors of
    /// [`recv`](Receiver::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> std::result::Result<Message, RecvTimeoutError> {
        match self.wait(event::deadline(timeout)) {
            Ok(inc) => {
                let mut bytes = Vec::new();
                let sender = self.take(inc, &mut bytes).map_err(RecvTimeoutError::from)?;
                Ok(Message { sender, bytes })
            }
            Err(Stop::TimedOut) => Err(RecvTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(RecvTimeoutError::from(e)),
        }
    }

    /// The next message in place, waiting for one: zero-copy. Its space goes
    /// back to its sender when the guard is dropped. The guard is a
    /// [`View`] (see [`channel::Receiver::recv_ref`](crate::channel::Receiver::recv_ref)
    /// for what a hostile sender can still do).
    ///
    /// # Errors
    /// As [`recv`](Receiver::recv).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::many_to_one::{Options, Receiver, Sender};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-m2o-ref-{}", std::process::id()))?;
    /// let mut rx = Receiver::connect(&name, &Options::new().senders(1))?;
    /// let mut tx = Sender::connect(&name, &Options::new())?;
    /// tx.send(b"pong")?;
    /// let msg = rx.recv_ref()?;
    /// assert_eq!((msg.to_vec(), msg.sender().seat), (b"pong".to_vec(), 0));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn recv_ref(&mut self) -> Result<RecvGuard<'_>> {
        let inc = self.wait(None).map_err(|stop| match stop {
            Stop::Failed(e) => e,
            Stop::TimedOut => unreachable!("no deadline"),
        })?;
        self.guard(inc)
    }

    /// Like [`recv_ref`](Receiver::recv_ref), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or the errors of
    /// [`recv`](Receiver::recv).
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> std::result::Result<RecvGuard<'_>, RecvTimeoutError> {
        match self.wait(event::deadline(timeout)) {
            Ok(inc) => self.guard(inc).map_err(RecvTimeoutError::from),
            Err(Stop::TimedOut) => Err(RecvTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(RecvTimeoutError::from(e)),
        }
    }

    /// One look at every seat (and, now and then or when there is nothing,
    /// at seats whose new sender waits for fresh rings).
    fn look(&mut self) -> Result<Option<Incoming>> {
        look(&mut self.col, &self.link, &mut self.pace)
    }

    fn wait(&mut self, deadline: Option<Instant>) -> std::result::Result<Incoming, Stop<Error>> {
        if let Some(inc) = self.look()? {
            return Ok(inc);
        }
        let Receiver { col, link, spin, pace } = self;
        let link = &*link;
        let state = RefCell::new((col, pace));
        event::wait_for(
            &link.region.top().data,
            *spin,
            deadline,
            || {
                let (col, n) = &mut *state.borrow_mut();
                look(col, link, n)
            },
            || {
                link.member.check_interrupt()?;
                link.check_size()?;
                link.check_ended()
            },
        )
    }

    fn sender_of(&self, inc: &Incoming) -> SenderId {
        SenderId {
            seat: inc.seat,
            generation: inc.gen,
            pid: self.link.region.ctl(inc.seat).pid.load(Ordering::Relaxed),
        }
    }

    fn take(&mut self, inc: Incoming, out: &mut Vec<u8>) -> Result<SenderId> {
        let sender = self.sender_of(&inc);
        out.clear();
        self.col.input_buf(inc.seat).append_to(inc.frame.at, inc.frame.len, out);
        self.link.check_intact()?;
        release(&mut self.col, &self.link, &inc);
        Ok(sender)
    }

    fn guard(&mut self, inc: Incoming) -> Result<RecvGuard<'_>> {
        self.link.check_intact()?;
        let sender = self.sender_of(&inc);
        let Receiver { col, link, .. } = self;
        let view = link
            .region
            .view(&*link, col.input_buf(inc.seat), inc.frame.at, inc.frame.len);
        Ok(RecvGuard {
            col,
            link,
            inc,
            sender,
            view,
        })
    }

    /// The number of seats (N).
    pub fn senders(&self) -> usize {
        self.col.seats()
    }

    /// Each ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.link.region.geo().cap as usize
    }

    /// The longest message a sender can send.
    pub fn max_message(&self) -> usize {
        self.link.max_message()
    }

    /// Messages sent and not yet received, over every seat (a snapshot).
    pub fn len(&self) -> usize {
        self.col.in_flight() as usize
    }

    /// Whether no message waits now (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of the object, as [`super::info`] gives for a name, read
    /// through this side's mapping.
    pub fn info(&self) -> super::ManyToOneInfo {
        super::info::read(&self.link.region, &self.link.member.seg().shm, Some(0))
    }

    /// Checks that the object still has its full size.
    ///
    /// # Errors
    /// [`Error::Truncated`] if it shrank.
    pub fn check_intact(&self) -> Result<()> {
        self.link.check_size()
    }
}

/// # Polling
/// The receiver's descriptor (`AsFd`) is readable when it may make
/// progress: a sender's message came (or a sender left, which may end the
/// stream). Take it and wait on it with `poll(2)`, `epoll`, a
/// [`WaitSet`](crate::wait::WaitSet) or an async runtime (it is
/// [`Pollable`](crate::wait::Pollable)); the receiver is then in poll mode: [`try_recv`](Receiver::try_recv),
/// [`try_recv_into`](Receiver::try_recv_into) and
/// [`try_recv_ref`](Receiver::try_recv_ref) arm it when they return
/// `Empty`. A readable descriptor may be a spurious wake-up: try again,
/// which arms it. The first time it is taken, the receiver makes its
/// doorbell, a FIFO beside the object in `/dev/shm` (removed when it
/// leaves). A polled receiver also watches its senders' lives (FIFOs each
/// holds while it takes part): a sender killed by `SIGKILL`, even between
/// its last frame and its ring, makes the descriptor readable, for its
/// frames and for the end of the stream.
///
/// ```
/// use shmkit::many_to_one::{Options, Receiver, Sender, TryRecvError};
/// use shmkit::wait::WaitSet;
/// use std::time::Duration;
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-m2o-poll-{}", std::process::id()))?;
/// let mut rx = Receiver::connect(&name, &Options::new().senders(2))?;
/// let (n2, o2) = (name.clone(), Options::new());
/// let sender = std::thread::spawn(move || -> shmkit::Result<()> {
///     let mut tx = Sender::connect(&n2, &o2)?;
///     std::thread::sleep(Duration::from_millis(20));
///     tx.send(b"late")
/// });
/// let mut set = WaitSet::new()?;
/// set.add(&rx, 1)?;
/// let msg = loop {
///     match rx.try_recv() {
///         Ok(msg) => break msg,
///         Err(TryRecvError::Empty) => {
///             set.wait(Some(Duration::from_secs(10)))?;
///         }
///         Err(e) => return Err(e.into_error().unwrap()),
///     }
/// };
/// assert_eq!(msg.bytes, b"late");
/// sender.join().unwrap()?;
/// # Ok::<(), shmkit::Error>(())
/// ```
impl AsFd for Receiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.link.poll.fd()
    }
}

impl AsRawFd for Receiver {
    fn as_raw_fd(&self) -> RawFd {
        self.link.poll.fd().as_raw_fd()
    }
}

/// Gives frame `inc` back to its sender and tells it (waking it if it
/// sleeps, ringing it if it polls).
#[inline]
pub(crate) fn release(col: &mut Collector, link: &Link, inc: &Incoming) {
    col.release(inc);
    link.notify_spoke(inc.seat, &link.region.ctl(inc.seat).space, col.fenceless_for(inc.seat));
}

/// When a receiver (server) settles its seats (see [`look`]).
#[derive(Debug, Default)]
pub(crate) struct Pace {
    /// Looks since the seats were last settled.
    looks: u32,
    /// Empty looks, counted.
    empty: u32,
    /// `data`'s sequence word when the seats were last settled.
    seq: u32,
}

/// How many empty looks (a spinning receiver's) between two settlings,
/// when no participant came or went.
const SETTLE_EMPTY: u32 = 16;

/// One look at every seat, round robin: the first frame found. The seats are
/// settled (a seat whose new sender waits gets fresh rings; a sender's
/// counter that claims frames the headers do not show is `Corrupt`) every
/// [`SETTLE_EVERY`] looks while frames come, and on a look that finds
/// nothing — when a participant joined, claimed a seat or left since the
/// last time (each bumps `data`'s sequence word: a sleeper's wake-up, and a
/// spinner's next look, see it) and on every [`SETTLE_EMPTY`]th one
/// otherwise, not on every turn of a spinning receiver's loop (which would
/// delay its answer to the frame that comes).
#[inline]
pub(crate) fn look(col: &mut Collector, link: &Link, pace: &mut Pace) -> Result<Option<Incoming>> {
    pace.looks += 1;
    if pace.looks >= SETTLE_EVERY {
        pace.looks = 0;
        col.settle().map_err(|e| ring_error(link, e))?;
    }
    match col.poll() {
        Ok(Some(inc)) => Ok(Some(inc)),
        Ok(None) => {
            // Acquire: a claim's `want` (stored before the bump) is seen.
            let seq = link.region.top().data.seq.load(Ordering::Acquire);
            pace.empty = pace.empty.wrapping_add(1);
            if seq == pace.seq && pace.empty % SETTLE_EMPTY != 0 {
                return Ok(None);
            }
            pace.seq = seq;
            if col.settle().map_err(|e| ring_error(link, e))?.is_empty() {
                return Ok(None);
            }
            col.poll().map_err(|e| ring_error(link, e))
        }
        Err(e) => Err(ring_error(link, e)),
    }
}

/// A received message in place; see [`Receiver::recv_ref`]. It derefs to a
/// [`View`] of the message's bytes; dropping it gives the space back.
#[derive(Debug)]
pub struct RecvGuard<'a> {
    col: &'a mut Collector,
    link: &'a Link,
    inc: Incoming,
    sender: SenderId,
    view: View<'a>,
}

impl RecvGuard<'_> {
    /// Who sent it.
    pub fn sender(&self) -> SenderId {
        self.sender
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
        release(self.col, self.link, &self.inc);
    }
}
