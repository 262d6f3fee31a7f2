//! The latest value's on-memory format: the segment's meta line, its own
//! lines, then the buffers.
//!
//! ```text
//! offset    0  meta     magic, version, ready, kind = latest-value, slots = 1,
//!                       capacity = BUFFERS × the maximum size, …  (core::segment)
//! offset  128  control  the published version, keep, the buffers' heads (seq, len)
//! offset  256  newer    the event notified after each write (readers sleep on
//!                       it), the fence requests (see `Newer`)
//! offset  384  slots    the writer's slot: state and pid (core::slots)
//! offset  512  heads    each buffer's head (seq, len): 64 of 16 bytes, of
//!                       which the first `buffers_for(max)` are used
//! offset 1536  roster   64 poll words: a polling reader's bell nonce, 0 = free
//!                       (see `poll`)
//! offset 4096  data     the buffers of the maximum size each, back to back
//! ```
//!
//! The number of buffers depends on the maximum size ([`buffers_for`]): 64
//! for values of up to 1 KiB, 16 up to 16 KiB, 4 above. A reader's copy is
//! spoiled only when the writer completes all but one of the buffers during
//! it; a writer that never waits writes a small value in a few
//! nanoseconds, while a reader's copy of the newest one (lines the writer
//! has just written) takes tens, so small values need many buffers for a
//! reader to keep up with a writer that writes back to back; large values
//! take as long to write as to read, and four buffers bound their memory.
//!
//! The meta line's capacity says both the maximum size and the number of
//! buffers: it is `buffers × max + tag`, with tag 2, 1, 0 for 64, 16, 4
//! buffers; the residues (2 mod 64, 1 mod 16, 0 mod 4) never coincide, so
//! a capacity read from the header means one shape or none
//! ([`max_size_of`]). It is published with the header, atomically, when
//! the object is created. The control line holds the version, which the
//! writer changes on every write, and a write dirties a head's line and the
//! value's bytes besides. Every field is an atomic of fixed width, read once
//! and validated; offsets are pinned by compile-time assertions because
//! other builds read the same bytes.
//!
//! Readers take no slot (they are not counted): each holds an
//! open-file-description read lock on file byte [`MEMBERS_BYTE`] instead
//! (see the [module docs](super#who-is-there)).

use crate::core::event::Event;
use crate::core::segment::Meta;
use crate::core::slots::Slot;
use crate::core::sync::{AtomicU32, AtomicU64};

use super::seqlock::{BufHead, Words};
use super::MAX_SIZE;

/// Where the buffers start.
pub(crate) const DATA_OFFSET: u64 = 4096;
/// The most buffers a value has (see the module docs).
pub(crate) const MAX_BUFFERS: usize = 64;
/// Values up to this size have [`MAX_BUFFERS`] buffers.
const MANY_UP_TO: u64 = 1024;
/// Values up to this size (and over [`MANY_UP_TO`]) have 16 buffers; larger
/// ones 4.
const SOME_UP_TO: u64 = 16 * 1024;
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
}

/// What waiting readers and the writer share, on a line of its own: the
/// writer loads `event.waiters` after every write (and nothing else here
/// unless a reader asked it to fence), readers write it only to sleep.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Newer {
    /// Notified after each write. A writer registered for global expedited
    /// membarriers sets its `fenceless` word and skips its fence
    /// (`core::event`); a reader then issues the membarrier before it
    /// sleeps.
    pub event: Event,
    /// Non-zero once a reader that cannot issue the membarrier (a seccomp
    /// filter forbids it) asked the writer to fence again: every writer
    /// that sees it fences on every write from then on.
    pub fence_asks: AtomicU32,
    /// Non-zero once a writer has seen `fence_asks`: it stores this after
    /// a write with its fence, so that every write after it fences. Until
    /// then an asking reader sleeps in short slices (see `reader`).
    pub fence_acked: AtomicU32,
}

/// The whole header.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Header {
    pub meta: Meta,
    pub control: Line<Control>,
    pub newer: Line<Newer>,
    pub slots: Line<[Slot; SLOTS as usize]>,
    /// Buffer `i`'s sequence word and length (the first
    /// [`buffers_for`]`(max)` of them).
    pub heads: Line<[BufHead; MAX_BUFFERS]>,
    /// The poll roster (see `poll`).
    pub roster: Line<[AtomicU32; super::poll::ROSTER]>,
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(Header, meta) == 0);
    assert!(offset_of!(Header, control) == 128);
    assert!(offset_of!(Header, newer) == 256);
    assert!(offset_of!(Header, slots) == SLOTS_AT);
    assert!(offset_of!(Header, heads) == 512);
    assert!(offset_of!(Header, roster) == 1536);
    assert!(size_of::<Header>() == 1536 + 4 * super::poll::ROSTER);
    assert!(align_of::<Header>() == 128);
    assert!(offset_of!(Control, version) == 0);
    assert!(offset_of!(Control, keep) == 8);
    assert!(size_of::<BufHead>() == 16 && offset_of!(BufHead, seq) == 0 && offset_of!(BufHead, len) == 8);
    assert!(size_of::<Control>() == 16);
    assert!(size_of::<Event>() == 12);
    assert!(offset_of!(Newer, event) == 0);
    assert!(offset_of!(Newer, fence_asks) == 12 && offset_of!(Newer, fence_acked) == 16);
    assert!(size_of::<Newer>() == 20);
    assert!(size_of::<Slot>() == 8);
    assert!((size_of::<Header>() as u64) <= DATA_OFFSET);
};

/// How many buffers a value of at most `max_size` bytes has (see the
/// module docs).
pub(crate) fn buffers_for(max_size: u64) -> usize {
    if max_size <= MANY_UP_TO {
        MAX_BUFFERS
    } else if max_size <= SOME_UP_TO {
        16
    } else {
        4
    }
}

/// The tag added to the capacity for `buffers` buffers.
fn tag_of(buffers: usize) -> u64 {
    match buffers {
        MAX_BUFFERS => 2,
        16 => 1,
        _ => 0,
    }
}

/// The data area's size (the meta line's capacity) for values of at most
/// `max_size` (1 to [`MAX_SIZE`]) bytes: the buffers and a tag byte or two
/// that says their number (see the module docs).
pub(crate) fn capacity_for(max_size: u64) -> u64 {
    let b = buffers_for(max_size);
    max_size * b as u64 + tag_of(b)
}

/// The maximum size a capacity read from a header stands for, if it is one
/// the format allows (exactly what [`capacity_for`] makes).
pub(crate) fn max_size_of(capacity: u64) -> Option<u64> {
    let b = if capacity % 64 == 2 {
        MAX_BUFFERS
    } else if capacity % 16 == 1 {
        16
    } else if capacity % 4 == 0 {
        4
    } else {
        return None;
    };
    let max = (capacity - tag_of(b)) / b as u64;
    ((1..=MAX_SIZE).contains(&max) && buffers_for(max) == b).then_some(max)
}

impl Header {
    /// The protocol's words, for values of at most `max` bytes (a
    /// validated maximum: 1 to [`MAX_SIZE`]).
    pub(crate) fn words(&self, max: u64) -> Words<'_> {
        Words {
            version: &self.control.0.version,
            heads: &self.heads.0[..buffers_for(max)],
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
        for max in [
            1,
            2,
            3,
            63,
            64,
            65,
            1023,
            1024,
            1025,
            4096,
            16383,
            16384,
            16385,
            1 << 20,
            MAX_SIZE,
        ] {
            assert_eq!(max_size_of(capacity_for(max)), Some(max), "{max}");
        }
        assert_eq!(capacity_for(64), 64 * 64 + 2);
        assert_eq!(capacity_for(4096), 16 * 4096 + 1);
        assert_eq!(capacity_for(1 << 20), 4 << 20);
        assert_eq!(max_size_of(capacity_for(MAX_SIZE + 1)), None);
        assert_eq!(max_size_of(0), None);
        assert_eq!(max_size_of(6), None);
        assert_eq!(max_size_of(u64::MAX), None);
        // a shape that another count of buffers would make
        assert_eq!(max_size_of(4 * 64), None);
        assert_eq!(max_size_of(64 * 4096 + 2), None);
        // every capacity up to a few of the largest small shapes means one
        // maximum at most, and that maximum makes it
        for cap in 0..(64 * 1024 + 16 * 1100) {
            if let Some(max) = max_size_of(cap) {
                assert_eq!(capacity_for(max), cap);
            }
        }
    }
}
