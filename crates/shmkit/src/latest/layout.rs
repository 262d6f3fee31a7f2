//! The latest value's on-memory format: the segment's meta line, its own
//! lines, then the buffers.
//!
//! ```text
//! offset    0  meta     magic, version, ready, kind = latest-value, slots = 1,
//!                       capacity = BUFFERS × the maximum size, …  (core::segment)
//! offset  128  control  the published version, keep, the buffers' heads (seq, len)
//! offset  256  events   newer: notified after each write; readers sleep on it
//! offset  384  slots    the writer's slot: state and pid (core::slots)
//! offset 4096  data     BUFFERS buffers of the maximum size each, back to back
//! ```
//!
//! The maximum size is the meta line's capacity divided by [`BUFFERS`]: it
//! is published with the header, atomically, when the object is created.
//! The control line holds every word the writer changes on a write, so a
//! write dirties that line and the value's bytes, nothing else. Every field
//! is an atomic of fixed width, read once and validated; offsets are pinned
//! by compile-time assertions because other builds read the same bytes.
//!
//! Readers take no slot (they are not counted): each holds an
//! open-file-description read lock on file byte [`MEMBERS_BYTE`] instead
//! (see the [module docs](super#who-is-there)).

use crate::core::event::Event;
use crate::core::segment::Meta;
use crate::core::slots::Slot;
use crate::core::sync::{AtomicU32, AtomicU64};

use super::seqlock::{BufHead, Words, BUFFERS};
use super::MAX_SIZE;

/// Where the buffers start.
pub(crate) const DATA_OFFSET: u64 = 4096;
/// The number of participant slots: the writer's.
pub(crate) const SLOTS: u32 = 1;
/// Where the slots start in the header.
pub(crate) const SLOTS_AT: usize = 384;
/// The file byte every participant holds a read lock on while it takes
/// part (the slots' lock bytes are 0, 1, …: far below).
pub(crate) const MEMBERS_BYTE: u64 = 1 << 32;

/// `Control::keep` before the creator has said.
pub(crate) const KEEP_UNSET: u32 = 0;
/// The object is removed when its last participant leaves.
pub(crate) const KEEP_NO: u32 = 1;
/// The object stays until it is removed (`shmkit rm`).
pub(crate) const KEEP_YES: u32 = 2;

/// One cache line (two on CPUs that prefetch in pairs): a fixed 128 bytes.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Line<T>(pub T);

/// The words a write changes, and the creator's choice.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    /// The newest complete version; 0 before the first write.
    pub version: AtomicU64,
    /// [`KEEP_UNSET`], [`KEEP_NO`] or [`KEEP_YES`] (anything else: keep).
    pub keep: AtomicU32,
    pub _pad: AtomicU32,
    /// Buffer `i`'s sequence word and length.
    pub heads: [BufHead; BUFFERS],
}

/// The whole header.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Header {
    pub meta: Meta,
    pub control: Line<Control>,
    pub newer: Line<Event>,
    pub slots: Line<[Slot; SLOTS as usize]>,
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(Header, meta) == 0);
    assert!(offset_of!(Header, control) == 128);
    assert!(offset_of!(Header, newer) == 256);
    assert!(offset_of!(Header, slots) == SLOTS_AT);
    assert!(size_of::<Header>() == 512);
    assert!(align_of::<Header>() == 128);
    assert!(offset_of!(Control, version) == 0);
    assert!(offset_of!(Control, keep) == 8);
    assert!(offset_of!(Control, heads) == 16);
    assert!(size_of::<BufHead>() == 16 && offset_of!(BufHead, seq) == 0 && offset_of!(BufHead, len) == 8);
    assert!(size_of::<Control>() == 16 + 16 * BUFFERS && size_of::<Control>() <= 128);
    assert!(size_of::<Event>() == 12);
    assert!(size_of::<Slot>() == 8);
    assert!((size_of::<Header>() as u64) <= DATA_OFFSET);
};

/// The data area's size (the meta line's capacity) for values of at most
/// `max_size` bytes.
pub(crate) fn capacity_for(max_size: u64) -> u64 {
    max_size * BUFFERS as u64
}

/// The maximum size a capacity read from a header stands for, if it is one
/// the format allows.
pub(crate) fn max_size_of(capacity: u64) -> Option<u64> {
    let max = capacity / BUFFERS as u64;
    (capacity % BUFFERS as u64 == 0 && (1..=MAX_SIZE).contains(&max)).then_some(max)
}

impl Header {
    /// The protocol's words.
    pub(crate) fn words(&self) -> Words<'_> {
        Words {
            version: &self.control.0.version,
            heads: &self.control.0.heads,
        }
    }

    /// The writer's slot.
    pub(crate) fn writer_slot(&self) -> &Slot {
        &self.slots.0[0]
    }
}

/// The header at the start of `map` (at least [`DATA_OFFSET`] bytes,
/// page-aligned).
pub(crate) fn layout_of(map: &crate::map::Mapping) -> &Header {
    assert!(map.len() as u64 >= DATA_OFFSET && (map.as_ptr() as usize) % 128 == 0);
    let ptr = map.as_ptr().cast::<Header>();
    // SAFETY: the mapping starts on a page boundary (128-aligned) and holds
    // at least DATA_OFFSET >= size_of::<Header>() bytes (asserted); the
    // header is made of atomics only, for which any bit pattern is valid and
    // which may be shared with other processes; the reference borrows `map`,
    // so it cannot outlive it.
    unsafe { &*ptr }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_and_maximum_sizes() {
        assert_eq!(max_size_of(capacity_for(1)), Some(1));
        assert_eq!(max_size_of(capacity_for(4096)), Some(4096));
        assert_eq!(max_size_of(capacity_for(MAX_SIZE)), Some(MAX_SIZE));
        assert_eq!(max_size_of(capacity_for(MAX_SIZE + 1)), None);
        assert_eq!(max_size_of(0), None);
        assert_eq!(max_size_of(6), None);
        assert_eq!(max_size_of(u64::MAX), None);
    }
}
