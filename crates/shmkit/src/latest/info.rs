//! What a latest value's header says, for `shmkit stat`.

use std::os::fd::AsFd;

use crate::core::segment::{self, Kind};
use crate::core::slots::{self, Presence};
use crate::core::sync::Ordering;
use crate::error::Result;
use crate::posix::ShmName;

use super::layout::{layout_of, max_size_of, Header, DATA_OFFSET, KEEP_NO, KEEP_UNSET};
use super::seqlock::MAX_VERSION;

/// The writer of a latest value as its slot records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterInfo {
    /// The process that holds (or held) the writer's seat, as a pid of its
    /// own PID namespace.
    pub pid: u32,
    /// Whether it still takes part: it holds its slot's lock, which the
    /// kernel drops when the process dies, in any namespace.
    pub alive: bool,
    /// Whether it has left in order.
    pub closed: bool,
}

/// A snapshot of a latest value's header. Another process may change any
/// of it at any time; every field was read once and is reported as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestInfo {
    /// The longest value it holds, in bytes (0 if the header says nothing
    /// valid: a reader made the object and no writer has come yet).
    pub max_size: u64,
    /// The newest complete version: the number of values written; 0 before
    /// the first.
    pub version: u64,
    /// The newest value's length in bytes, if there is one (not checked
    /// against a write in progress: a snapshot).
    pub len: Option<u64>,
    /// The writer, once one has joined.
    pub writer: Option<WriterInfo>,
    /// Whether the object stays after its last participant has left.
    pub keep: bool,
    /// Whether any process takes part now, writer or reader (readers are
    /// not counted: see the [module docs](super#who-is-there)).
    pub in_use: bool,
    /// How many readers poll it now: poll roster words held by a live
    /// reader (see [`Reader`](super::Reader)'s `AsFd`; a reader asking
    /// through its own [`Reader::info`](super::Reader::info) does not
    /// count itself).
    pub pollers: u32,
}

/// Reads the header of the latest value `name` without taking part.
///
/// # Errors
/// [`crate::Error::NotFound`]; [`crate::Error::Corrupt`] if `name` is not a
/// latest value (a plain segment, say); [`crate::Error::PermissionDenied`].
///
/// # Examples
/// ```
/// use shmkit::latest::{self, Options, Writer};
/// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-info-{}", std::process::id()))?;
/// let mut w = Writer::create(&name, &Options::new().max_size(100))?;
/// w.write(b"42")?;
/// let info = latest::info(&name)?;
/// assert_eq!((info.max_size, info.version, info.len, info.keep), (100, 1, Some(2), false));
/// assert_eq!(info.pollers, 0);
/// assert!(info.writer.unwrap().alive);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn info(name: &ShmName) -> Result<LatestInfo> {
    let (shm, map) = segment::open_for_info(name, Kind::LatestValue, DATA_OFFSET)?;
    let info = read(layout_of(&map), &shm);
    map.check_intact()?;
    Ok(info)
}

/// Reads the header; `fd` is a descriptor of the object, to ask for locks.
pub(crate) fn read(h: &Header, fd: impl AsFd) -> LatestInfo {
    let mut info = snapshot(h);
    let fd = fd.as_fd();
    info.writer = slots::presence(fd, 0, h.writer_slot()).ok().and_then(|p| {
        Some(WriterInfo {
            pid: p.pid()?,
            alive: p.is_alive(),
            closed: matches!(p, Presence::Closed { .. }),
        })
    });
    info.in_use = super::members::others(fd).unwrap_or(false);
    info.pollers = (0..super::poll::ROSTER)
        .filter(|&i| crate::sys::ofd::is_locked(fd, super::poll::lock_byte(i)).unwrap_or(false))
        .count() as u32;
    info
}

/// What the header's words say, without asking the kernel about locks.
pub(crate) fn snapshot(h: &Header) -> LatestInfo {
    let max_size = max_size_of(h.meta.capacity.load(Ordering::Acquire)).unwrap_or(0);
    let words = h.words(max_size);
    let version = words.version.load(Ordering::Acquire);
    let len = (1..=MAX_VERSION)
        .contains(&version)
        .then(|| words.heads[words.buffer_of(version)].len.load(Ordering::Relaxed))
        .filter(|&len| len <= max_size);
    let keep = h.control.0.keep.load(Ordering::Relaxed);
    LatestInfo {
        max_size,
        version,
        len,
        writer: None,
        keep: keep != KEEP_NO && keep != KEEP_UNSET,
        in_use: false,
        pollers: 0,
    }
}
