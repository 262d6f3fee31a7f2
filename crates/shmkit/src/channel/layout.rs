//! The channel's on-memory format: the segment's meta line, then its own
//! lines, then the ring's bytes.
//!
//! ```text
//! offset    0  meta      magic, version, ready, kind = channel, slots = 2, capacity, …  (core::segment)
//! offset  128  producer  the sender's position and statistics (only the sender writes)
//! offset  256  consumer  the receiver's position and statistics (only the receiver writes)
//! offset  384  events    data (the receiver sleeps on it), space (the sender), peers (joining, leaving)
//! offset  512  slots     the sender's and the receiver's slot: state and pid (core::slots)
//! offset 4096  data      `capacity` bytes of frames (core::ring)
//! ```
//!
//! Every field is an atomic of fixed width, so that another process writing
//! any byte at any time is never a data race in this process; and every
//! field is read once and validated before use. Offsets are pinned by
//! compile-time assertions because other builds (and other versions) read
//! the same bytes. The events share a line that nobody writes on the busy
//! path (only a side about to sleep does), so it stays in both caches.

use crate::core::event::Event;
use crate::core::ring::Counter;
use crate::core::segment::Meta;
use crate::core::slots::Slot;
use crate::error::Role;

/// Where the ring's bytes start.
pub(crate) const DATA_OFFSET: u64 = 4096;
/// The number of participant slots: sender and receiver.
pub(crate) const SLOTS: u32 = 2;
/// Where the slots lie in the header.
pub(crate) const SLOTS_AT: usize = 512;

/// One cache line (two on CPUs that prefetch in pairs): a fixed 128 bytes on
/// every target, because it is a file format, not a per-target optimisation.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Line<T>(pub T);

/// The channel's events.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Events {
    /// The sender notifies it after each commit; the receiver sleeps on it.
    pub data: Event,
    /// The receiver notifies it after each release; the sender sleeps on it.
    pub space: Event,
    /// Notified whenever a side joins or leaves, or a capacity conflicts.
    pub peers: Event,
}

/// The whole header.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Header {
    pub meta: Meta,
    pub producer: Line<Counter>,
    pub consumer: Line<Counter>,
    pub events: Line<Events>,
    pub slots: Line<[Slot; SLOTS as usize]>,
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(Header, meta) == 0);
    assert!(offset_of!(Header, producer) == 128);
    assert!(offset_of!(Header, consumer) == 256);
    assert!(offset_of!(Header, events) == 384);
    assert!(offset_of!(Header, slots) == SLOTS_AT);
    assert!(size_of::<Header>() == 640);
    assert!(align_of::<Header>() == 128);
    assert!(offset_of!(Counter, pos) == 0 && offset_of!(Counter, messages) == 8 && offset_of!(Counter, bytes) == 16);
    assert!(offset_of!(Events, data) == 0 && offset_of!(Events, space) == 12 && offset_of!(Events, peers) == 24);
    assert!(size_of::<Slot>() == 8);
    assert!((size_of::<Header>() as u64) <= DATA_OFFSET);
};

/// The slot index of each side.
pub(crate) fn slot_index(role: Role) -> usize {
    match role {
        Role::Sender => 0,
        _ => 1,
    }
}

impl Header {
    /// A side's slot.
    pub(crate) fn slot(&self, role: Role) -> &Slot {
        &self.slots.0[slot_index(role)]
    }
}

/// The channel header at the start of `map` (at least [`DATA_OFFSET`]
/// bytes, page-aligned).
pub(crate) fn layout_of(map: &crate::map::Mapping) -> &Header {
    assert!(map.len() as u64 >= DATA_OFFSET && (map.as_ptr() as usize) % 128 == 0);
    let ptr = map.as_ptr().cast::<Header>();
    // SAFETY: the mapping starts on a page boundary (128-aligned) and holds
    // at least DATA_OFFSET >= size_of::<Header>() bytes (asserted); the
    // header is made of atomics only, for which any bit pattern is valid
    // and which may be shared with other processes; the reference borrows
    // `map`, so it cannot outlive it.
    unsafe { &*ptr }
}
