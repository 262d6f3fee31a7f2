//! What a channel's header says, for `shmkit stat`.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use crate::core::segment::{self, Kind};
use crate::core::slots::{self, Presence};
use crate::error::{Result, Role};
use crate::posix::ShmName;

use super::layout::{slot_index, Header, DATA_OFFSET};

/// One side of a channel as its header records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideInfo {
    /// The process that holds (or held) the side, as a pid of its own PID
    /// namespace (a process in another container shows its number there).
    pub pid: u32,
    /// Whether it still takes part: it holds its slot's lock, which the
    /// kernel drops when the process dies, in any namespace.
    pub alive: bool,
    /// Whether it has left in order.
    pub closed: bool,
}

/// A snapshot of a channel's header. Another process may change any of it
/// at any time; every field was read once and is reported as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The ring's size in bytes; 0 while undecided (the side that made the
    /// channel chose none, and the other has not come yet).
    pub capacity: u64,
    /// The longest message the channel carries.
    pub max_message: u64,
    /// Bytes committed by the sender and not yet received (`None` if the
    /// counters are inconsistent).
    pub bytes_in_flight: Option<u64>,
    /// The sender, once one has joined.
    pub sender: Option<SideInfo>,
    /// The receiver, once one has joined.
    pub receiver: Option<SideInfo>,
    /// Messages the sender has sent.
    pub messages_sent: u64,
    /// Payload bytes the sender has sent.
    pub bytes_sent: u64,
    /// Messages the receiver has received.
    pub messages_received: u64,
    /// Payload bytes the receiver has received.
    pub bytes_received: u64,
}

/// Reads the header of the channel `name` without joining it.
///
/// # Errors
/// [`crate::Error::NotFound`]; [`crate::Error::Corrupt`] if `name` is not a
/// channel (a plain segment, say); [`crate::Error::PermissionDenied`].
///
/// # Examples
/// ```
/// use shmkit::posix::{Options, PosixShm, ShmName};
/// let name = ShmName::new(format!("/shmkit-doc-info-{}", std::process::id()))?;
/// let _plain = PosixShm::create(&name, &Options::new().size(8192))?.remove_on_drop();
/// assert!(matches!(shmkit::channel::info(&name), Err(shmkit::Error::Corrupt { .. })));
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn info(name: &ShmName) -> Result<ChannelInfo> {
    let (shm, map) = segment::open_for_info(name, Kind::Channel, DATA_OFFSET)?;
    let info = read(super::layout_of(&map), &shm);
    map.check_intact()?;
    Ok(info)
}

/// Reads a channel's header; `fd` is a descriptor of the object, to ask for
/// the slots' locks.
pub(crate) fn read(h: &Header, fd: impl AsFd) -> ChannelInfo {
    let mut capacity = h.meta.capacity.load(Ordering::Acquire);
    if !crate::core::ring::valid_capacity(capacity) {
        capacity = 0;
    }
    let tail = h.producer.0.pos.load(Ordering::Acquire);
    let head = h.consumer.0.pos.load(Ordering::Acquire);
    // The receiver may pass the sender's counter by a frame (headers are
    // published first): that is nothing in flight.
    let in_flight = if head.wrapping_sub(tail) <= capacity {
        0
    } else {
        tail.wrapping_sub(head)
    };
    // A frame is sent when its header is published; the sender's counters
    // follow it. A sender killed between the two has sent at least what its
    // receiver took.
    let (mut messages_sent, mut bytes_sent) = (
        h.producer.0.messages.load(Ordering::Relaxed),
        h.producer.0.bytes.load(Ordering::Relaxed),
    );
    let (messages_received, bytes_received) = (
        h.consumer.0.messages.load(Ordering::Relaxed),
        h.consumer.0.bytes.load(Ordering::Relaxed),
    );
    if messages_received > messages_sent {
        (messages_sent, bytes_sent) = (messages_received, bytes_received);
    }
    let fd = fd.as_fd();
    ChannelInfo {
        capacity,
        max_message: if capacity == 0 { 0 } else { super::max_message(capacity) },
        bytes_in_flight: (in_flight <= capacity).then_some(in_flight),
        sender: side_info(h, fd, Role::Sender),
        receiver: side_info(h, fd, Role::Receiver),
        messages_sent,
        bytes_sent,
        messages_received,
        bytes_received,
    }
}

fn side_info(h: &Header, fd: std::os::fd::BorrowedFd<'_>, role: Role) -> Option<SideInfo> {
    let p = slots::presence(fd, slot_index(role), h.slot(role)).ok()?;
    Some(SideInfo {
        pid: p.pid()?,
        alive: p.is_alive(),
        closed: matches!(p, Presence::Closed { .. }),
    })
}
