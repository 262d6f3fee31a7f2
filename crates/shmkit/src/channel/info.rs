//! What a channel's header says, for `shmkit stat`.

use std::sync::atomic::Ordering;

use crate::error::Result;
use crate::posix::ShmName;

use super::endpoint;
use super::layout::{self, side, Header, Side};
use super::peer;

/// One side of a channel as its header records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideInfo {
    /// The process that holds (or held) the side.
    pub pid: u32,
    /// Whether that very process still runs (pid and start time).
    pub alive: bool,
    /// Whether it has left in order.
    pub closed: bool,
}

/// A snapshot of a channel's header. Another process may change any of it
/// at any time; every field was read once and is reported as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The ring's size in bytes.
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
    let (map, hdr, capacity) = endpoint::open_for_info(name)?;
    let info = read(hdr.get(), capacity);
    map.check_intact()?;
    Ok(info)
}

/// Reads a header whose capacity has been validated.
pub(crate) fn read(h: &Header, capacity: u64) -> ChannelInfo {
    let tail = h.tail.0.pos.load(Ordering::Acquire);
    let head = h.head.0.pos.load(Ordering::Acquire);
    let in_flight = tail.wrapping_sub(head);
    ChannelInfo {
        capacity,
        max_message: layout::max_message(capacity),
        bytes_in_flight: (in_flight <= capacity).then_some(in_flight),
        sender: side_info(&h.peers.0.sender),
        receiver: side_info(&h.peers.0.receiver),
        messages_sent: h.tail.0.messages.load(Ordering::Relaxed),
        bytes_sent: h.tail.0.bytes.load(Ordering::Relaxed),
        messages_received: h.head.0.messages.load(Ordering::Relaxed),
        bytes_received: h.head.0.bytes.load(Ordering::Relaxed),
    }
}

fn side_info(s: &Side) -> Option<SideInfo> {
    let state = s.state.load(Ordering::Acquire);
    if state == side::EMPTY {
        return None;
    }
    let pid = s.pid.load(Ordering::Relaxed);
    let start = s.start.load(Ordering::Relaxed);
    Some(SideInfo {
        pid,
        alive: peer::is_running(pid, start),
        closed: state == side::CLOSED,
    })
}
