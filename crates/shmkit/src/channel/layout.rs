//! The channel's on-memory format: a fixed header, then the ring's bytes.
//!
//! ```text
//! offset    0  meta     magic, layout version, ready flag, capacity, data offset, creator
//! offset  128  tail     the sender's counter and statistics (only the sender writes)
//! offset  256  head     the receiver's counter and statistics (only the receiver writes)
//! offset  384  wake     futex words and waiter flags
//! offset  512  peers    who is the sender, who the receiver, and their states
//! offset 4096  data     `capacity` bytes of frames
//! ```
//!
//! Every field is an atomic of fixed width, so that another process writing
//! any byte at any time is never a data race in this process; and every
//! field is read once and validated before use. Offsets are pinned by
//! compile-time assertions because other builds (and other versions) read
//! the same bytes.

#![cfg_attr(loom, allow(dead_code))]

use super::sync::{AtomicU32, AtomicU64};

/// "SHMKITCH" as a little-endian number: the first eight bytes of a channel.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMKITCH");
/// The layout version; a reader refuses any other.
pub(crate) const VERSION: u32 = 1;
/// Where the ring's bytes start.
pub(crate) const DATA_OFFSET: u64 = 4096;
/// The smallest capacity, in bytes.
pub(crate) const MIN_CAPACITY: u64 = 64;
/// The largest capacity, in bytes (1 TiB).
pub(crate) const MAX_CAPACITY: u64 = 1 << 40;

/// `meta.ready` once the creator has written every meta field.
pub(crate) const READY: u32 = 1;

/// A side's state in [`Peers`].
pub(crate) mod side {
    /// Nobody has taken this side yet.
    pub const EMPTY: u32 = 0;
    /// A process has claimed it and is connected.
    pub const CONNECTED: u32 = 1;
    /// That process has left in order (dropped its half).
    pub const CLOSED: u32 = 2;
}

/// One cache line (two on CPUs that prefetch in pairs): a fixed 128 bytes on
/// every target, because it is a file format, not a per-target optimisation.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Line<T>(pub T);

/// Written once by the creator, then published with `ready`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Meta {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub ready: AtomicU32,
    pub capacity: AtomicU64,
    pub data_offset: AtomicU64,
    /// The creator's pid and start time, to tell a dead creator (hardening).
    pub creator_pid: AtomicU32,
    pub _pad: AtomicU32,
    pub creator_start: AtomicU64,
}

/// One side's counter and statistics; only that side writes them.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Counter {
    /// Bytes ever committed (tail) or released (head); positions are this
    /// modulo the capacity.
    pub pos: AtomicU64,
    /// Messages ever sent or received.
    pub messages: AtomicU64,
    /// Payload bytes ever sent or received.
    pub bytes: AtomicU64,
}

/// The futex words and the flags that say somebody sleeps on them.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Wake {
    /// Bumped by the sender to wake a receiver waiting for data.
    pub data_seq: AtomicU32,
    /// Non-zero while the receiver is (about to be) asleep on `data_seq`.
    pub rx_waiting: AtomicU32,
    /// Bumped by the receiver to wake a sender waiting for space.
    pub space_seq: AtomicU32,
    /// Non-zero while the sender is (about to be) asleep on `space_seq`.
    pub tx_waiting: AtomicU32,
    /// Bumped whenever a side joins or leaves, to wake a side waiting for it.
    pub peers_seq: AtomicU32,
}

/// One side's identity: pid and start time (in clock ticks since boot, as
/// `/proc/PID/stat` says), so a reused pid is not mistaken for the peer.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Side {
    pub state: AtomicU32,
    pub pid: AtomicU32,
    pub start: AtomicU64,
}

/// The two sides, and who has left the channel.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Peers {
    pub sender: Side,
    pub receiver: Side,
    /// How many sides have finished with the object; the one that makes it
    /// two removes its name.
    pub left: AtomicU32,
}

/// The whole header.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Header {
    pub meta: Line<Meta>,
    pub tail: Line<Counter>,
    pub head: Line<Counter>,
    pub wake: Line<Wake>,
    pub peers: Line<Peers>,
}

#[cfg(not(loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(Header, meta) == 0);
    assert!(offset_of!(Header, tail) == 128);
    assert!(offset_of!(Header, head) == 256);
    assert!(offset_of!(Header, wake) == 384);
    assert!(offset_of!(Header, peers) == 512);
    assert!(size_of::<Header>() == 640);
    assert!(align_of::<Header>() == 128);
    assert!(offset_of!(Meta, magic) == 0);
    assert!(offset_of!(Meta, version) == 8);
    assert!(offset_of!(Meta, ready) == 12);
    assert!(offset_of!(Meta, capacity) == 16);
    assert!(offset_of!(Meta, data_offset) == 24);
    assert!(offset_of!(Meta, creator_pid) == 32);
    assert!(offset_of!(Meta, creator_start) == 40);
    assert!(offset_of!(Counter, pos) == 0 && offset_of!(Counter, messages) == 8 && offset_of!(Counter, bytes) == 16);
    assert!(offset_of!(Peers, receiver) == 16 && offset_of!(Peers, left) == 32);
    assert!((size_of::<Header>() as u64) <= DATA_OFFSET);
};

impl Header {
    /// A zeroed header in ordinary memory, for tests of the ring.
    #[cfg(any(test, feature = "fuzz"))]
    pub(crate) fn new_boxed(capacity: u64) -> Box<Header> {
        let counter = || Counter {
            pos: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        };
        let side = || Side {
            state: AtomicU32::new(0),
            pid: AtomicU32::new(0),
            start: AtomicU64::new(0),
        };
        Box::new(Header {
            meta: Line(Meta {
                magic: AtomicU64::new(MAGIC),
                version: AtomicU32::new(VERSION),
                ready: AtomicU32::new(READY),
                capacity: AtomicU64::new(capacity),
                data_offset: AtomicU64::new(DATA_OFFSET),
                creator_pid: AtomicU32::new(0),
                _pad: AtomicU32::new(0),
                creator_start: AtomicU64::new(0),
            }),
            tail: Line(counter()),
            head: Line(counter()),
            wake: Line(Wake {
                data_seq: AtomicU32::new(0),
                rx_waiting: AtomicU32::new(0),
                space_seq: AtomicU32::new(0),
                tx_waiting: AtomicU32::new(0),
                peers_seq: AtomicU32::new(0),
            }),
            peers: Line(Peers {
                sender: side(),
                receiver: side(),
                left: AtomicU32::new(0),
            }),
        })
    }
}

/// Whether `capacity` is one the format allows: a power of two between
/// [`MIN_CAPACITY`] and [`MAX_CAPACITY`].
pub(crate) fn valid_capacity(capacity: u64) -> bool {
    capacity.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity)
}

/// The largest message a ring of `capacity` bytes carries: half the ring
/// less a frame header, so that a frame always fits once the ring is empty,
/// wherever the free space starts.
pub(crate) fn max_message(capacity: u64) -> u64 {
    capacity / 2 - FRAME_HEADER
}

/// Bytes before each frame's payload: its length (u32) and kind (u32).
pub(crate) const FRAME_HEADER: u64 = 8;
/// Frames start on multiples of this.
pub(crate) const FRAME_ALIGN: u64 = 8;
/// A frame that carries a message.
pub(crate) const KIND_MESSAGE: u32 = 0x4d53_4721; // "!GSM"
/// A frame that fills the ring's end, so the next frame starts at 0.
pub(crate) const KIND_PAD: u32 = 0x5041_4421; // "!DAP"

/// The bytes a frame with `len` payload bytes takes.
pub(crate) fn frame_size(len: u64) -> u64 {
    FRAME_HEADER + len.div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}
