//! What a topic's header says, for `shmkit stat`.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use crate::core::ring::broadcast::{MAX_SEATS, MODE_LOSSY, SEQ};
use crate::core::segment::{self, Kind};
use crate::core::slots::{self, Presence};
use crate::error::Result;
use crate::posix::ShmName;

use super::layout::{layout_of, Header, DATA_OFFSET, DECIDED, PUBLISHER};

/// The publisher as its seat records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherInfo {
    /// Its pid, in its own PID namespace.
    pub pid: u32,
    /// Whether it still takes part (it holds its seat's lock, which the
    /// kernel drops when it dies).
    pub alive: bool,
    /// Whether it has closed the topic.
    pub closed: bool,
    /// Whether it waits through a descriptor (its poll word names a
    /// doorbell; see [`Publisher#polling`](super::Publisher#polling)).
    pub polling: bool,
}

/// One subscriber seat as the header records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberInfo {
    /// The seat (0-based).
    pub seat: usize,
    /// The pid of its subscriber (or last subscriber), in its own PID
    /// namespace.
    pub pid: u32,
    /// Whether that subscriber still takes part.
    pub alive: bool,
    /// Whether it has left in order.
    pub closed: bool,
    /// Whether it is lossy (the publisher does not wait for it).
    pub lossy: bool,
    /// Its position in the ring (bytes ever read).
    pub position: u64,
    /// Messages published and not yet read by it (for a lossy subscriber,
    /// some may be lost already).
    pub lag_messages: u64,
    /// Bytes of the ring between its position and the publisher's.
    pub lag_bytes: u64,
    /// Whether it waits through a descriptor (its poll word names a
    /// doorbell; see [`Subscriber#polling`](super::Subscriber#polling)).
    pub polling: bool,
}

/// A snapshot of a topic's header. Another process may change any of it at
/// any time; every field was read once and is reported as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The ring's size in bytes; 0 until a publisher has come.
    pub capacity: u64,
    /// The longest message the topic carries.
    pub max_message: u64,
    /// How many subscribers may take part at once (0 until a publisher
    /// has come).
    pub max_subscribers: usize,
    /// How many past messages a new subscriber starts with, at most.
    pub history: u64,
    /// The publisher, once one has joined.
    pub publisher: Option<PublisherInfo>,
    /// Messages published.
    pub messages_published: u64,
    /// Payload bytes published.
    pub bytes_published: u64,
    /// Messages the ring still holds intact (what history can give).
    pub messages_held: u64,
    /// Every seat that was ever used.
    pub subscribers: Vec<SubscriberInfo>,
}

/// Reads the header of the topic `name` without joining it.
///
/// # Errors
/// [`crate::Error::NotFound`]; [`crate::Error::Corrupt`] if `name` is not a
/// topic; [`crate::Error::PermissionDenied`].
///
/// # Examples
/// ```
/// use shmkit::topic::{Options, Publisher, SubOptions, Subscriber};
/// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-topic-info-{}", std::process::id()))?;
/// let mut publisher = Publisher::connect(&name, &Options::new())?;
/// let _sub = Subscriber::connect(&name, &SubOptions::new().lossy(true))?;
/// publisher.send(b"one")?;
/// let info = shmkit::topic::info(&name)?;
/// assert_eq!(info.messages_published, 1);
/// assert!(info.publisher.unwrap().alive);
/// assert_eq!(info.subscribers.len(), 1);
/// assert!(info.subscribers[0].lossy && info.subscribers[0].alive);
/// assert_eq!(info.subscribers[0].lag_messages, 1);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn info(name: &ShmName) -> Result<TopicInfo> {
    let (shm, map) = segment::open_for_info(name, Kind::Topic, DATA_OFFSET)?;
    let info = read(layout_of(&map), &shm);
    map.check_intact()?;
    Ok(info)
}

/// Reads a topic's header; `fd` is a descriptor of the object, to ask for
/// the seats' locks.
pub(crate) fn read(h: &Header, fd: impl AsFd) -> TopicInfo {
    let fd = fd.as_fd();
    let mut capacity = h.meta.capacity.load(Ordering::Acquire);
    if !crate::core::ring::valid_capacity(capacity) {
        capacity = 0;
    }
    let decided = h.config.0.decided.load(Ordering::Acquire) == DECIDED;
    let max_subscribers = if decided {
        (h.config.0.max_subscribers.load(Ordering::Relaxed) as usize).min(MAX_SEATS)
    } else {
        0
    };
    let presence = |i: usize| slots::presence(fd, i, &h.slots.0[i]).ok();
    let publisher = presence(PUBLISHER).and_then(|p| {
        Some(PublisherInfo {
            pid: p.pid()?,
            alive: p.is_alive(),
            closed: matches!(p, Presence::Closed { .. }),
            polling: h.producer.0.poll.load(Ordering::Relaxed) != 0,
        })
    });
    let producer = &h.producer.0;
    let tail = producer.counter.pos.load(Ordering::Acquire);
    let published = producer.counter.messages.load(Ordering::Relaxed);
    let oldest_seq = producer.marks.oldest_seq.load(Ordering::Relaxed);
    let subscribers = (0..MAX_SEATS)
        .filter_map(|i| {
            let p = presence(i + 1)?;
            let pid = p.pid()?;
            let words = &h.seats[i].0;
            let position = words.counter.pos.load(Ordering::Acquire);
            let next = words.counter.messages.load(Ordering::Relaxed);
            let mode = words.member.mode.load(Ordering::Relaxed);
            Some(SubscriberInfo {
                seat: i,
                pid,
                alive: p.is_alive(),
                closed: matches!(p, Presence::Closed { .. }),
                lossy: mode == MODE_LOSSY,
                position,
                lag_messages: published.saturating_sub(next),
                lag_bytes: tail.saturating_sub(position),
                polling: words.poll.load(Ordering::Relaxed) != 0,
            })
        })
        .collect();
    TopicInfo {
        capacity,
        max_message: if capacity == 0 { 0 } else { super::max_message(capacity) },
        max_subscribers,
        history: if decided {
            h.config.0.history.load(Ordering::Relaxed)
        } else {
            0
        },
        publisher,
        messages_published: published,
        bytes_published: producer
            .counter
            .bytes
            .load(Ordering::Relaxed)
            .saturating_sub(published.saturating_mul(SEQ)),
        messages_held: published.saturating_sub(oldest_seq),
        subscribers,
    }
}
