//! What a many-to-one object's header says, for `shmkit stat`.

use std::os::fd::AsFd;

use crate::channel::SideInfo;
use crate::core::segment::Kind;
use crate::core::slots::{self, Presence};
use crate::core::sync::Ordering;
use crate::error::Result;
use crate::posix::ShmName;

use super::layout::Region;

/// One ring of a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingInfo {
    /// Messages its writer has committed (in the seat's generation).
    pub messages_sent: u64,
    /// Messages its reader has taken.
    pub messages_received: u64,
    /// Messages committed and not yet taken.
    pub backlog: u64,
}

/// One seat, as its slot and counters say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatInfo {
    /// The seat, from 0 to N − 1.
    pub seat: usize,
    /// Its participant now or last, if any: pid, alive, closed.
    pub participant: Option<SideInfo>,
    /// The rings' generation (each new participant starts one).
    pub generation: u32,
    /// Whether a new participant waits for the receiver (server) to
    /// deliver the previous one's last messages and hand it fresh rings.
    pub waiting: bool,
    /// The rings: one for a many-to-one seat (sender → receiver); for a
    /// service's seat, requests, then responses.
    pub rings: Vec<RingInfo>,
    /// Whether its participant waits through a descriptor (its poll word
    /// names a doorbell; see [`Sender#polling`](super::Sender#polling)).
    pub polling: bool,
}

/// A snapshot of a many-to-one object's header. Another process may change
/// any of it at any time; every field was read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManyToOneInfo {
    /// Each ring's size in bytes.
    pub capacity: u64,
    /// The longest message a sender can send.
    pub max_message: u64,
    /// The receiver, once one has joined.
    pub receiver: Option<SideInfo>,
    /// Whether the receiver waits through a descriptor (see
    /// [`Receiver#polling`](super::Receiver#polling)).
    pub receiver_polling: bool,
    /// Every seat, used or not.
    pub seats: Vec<SeatInfo>,
}

impl ManyToOneInfo {
    /// Messages sent and not yet received, over every seat.
    pub fn backlog(&self) -> u64 {
        self.seats
            .iter()
            .filter_map(|s| s.rings.first())
            .map(|r| r.backlog)
            .sum()
    }

    /// Messages received, over every seat's current generation.
    pub fn messages_received(&self) -> u64 {
        self.seats
            .iter()
            .filter_map(|s| s.rings.first())
            .map(|r| r.messages_received)
            .sum()
    }
}

/// Reads the header of the many-to-one object `name` without joining it.
///
/// # Errors
/// [`crate::Error::NotFound`]; [`crate::Error::Corrupt`] if `name` is not a
/// many-to-one object; [`crate::Error::PermissionDenied`].
///
/// # Examples
/// ```
/// use shmkit::many_to_one::{info, Options, Receiver};
/// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-m2o-info-{}", std::process::id()))?;
/// let rx = Receiver::connect(&name, &Options::new().senders(3))?;
/// let i = info(&name)?;
/// assert_eq!(i.seats.len(), 3);
/// assert!(i.receiver.unwrap().alive);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn info(name: &ShmName) -> Result<ManyToOneInfo> {
    super::connect::with_header(name, Kind::ManyToOne, 1, |region, shm| read(region, shm, None))
}

/// Reads the header; `own`: the slot the caller holds (which the kernel
/// does not report as locked to the lock's own holder).
pub(crate) fn read(region: &Region, fd: impl AsFd, own: Option<usize>) -> ManyToOneInfo {
    let (seats, receiver) = read_seats(region, fd, own);
    let cap = region.geo().cap;
    ManyToOneInfo {
        capacity: cap,
        max_message: crate::core::ring::max_message(cap),
        receiver,
        receiver_polling: region.top().poll.load(Ordering::Relaxed) != 0,
        seats,
    }
}

/// The seats and the receiver's (server's) side.
pub(crate) fn read_seats(region: &Region, fd: impl AsFd, own: Option<usize>) -> (Vec<SeatInfo>, Option<SideInfo>) {
    let fd = fd.as_fd();
    let side = |i: usize| {
        let p = slots::presence(fd, i, region.slot(i)).ok()?;
        let mut info = SideInfo {
            pid: p.pid()?,
            alive: p.is_alive(),
            closed: matches!(p, Presence::Closed { .. }),
        };
        if own == Some(i) && !info.closed {
            info.alive = true;
        }
        Some(info)
    };
    let seats = (0..region.geo().seats)
        .map(|s| {
            let ctl = region.ctl(s);
            let gen = ctl.gen.load(Ordering::Acquire);
            let rings = (0..region.geo().rings)
                .map(|r| {
                    let sent = region.counter(s, 2 * r).get().messages.load(Ordering::Relaxed);
                    let received = region.counter(s, 2 * r + 1).get().messages.load(Ordering::Relaxed);
                    // A sender killed between publishing a frame and its
                    // counter has sent what was received.
                    let sent = sent.max(received);
                    RingInfo {
                        messages_sent: sent,
                        messages_received: received,
                        backlog: sent.saturating_sub(received),
                    }
                })
                .collect();
            SeatInfo {
                seat: s,
                participant: side(1 + s),
                generation: gen,
                waiting: ctl.want.load(Ordering::Acquire) != gen,
                rings,
                polling: ctl.poll.load(Ordering::Relaxed) != 0,
            }
        })
        .collect();
    (seats, side(0))
}
