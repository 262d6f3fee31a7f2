//! The on-memory format shared by many-to-one objects and services: the
//! segment's meta line, the events, the participant slots, one control line
//! and four counters per seat, then the rings.
//!
//! ```text
//! offset    0  meta      magic, version, ready, kind, slots = 1 + N, capacity = N × rings × ring size, …
//! offset  128  top       data (the receiver or server sleeps on it), peers (joining, leaving), joined
//! offset  256  slots     slot 0: the receiver (server); slots 1..=N: the seats of senders (clients)
//! seats_at     seats     N × 640 bytes: a control line, then four counter lines
//! data_offset  rings     seat s, ring r at data_offset + (s × rings + r) × ring size
//! ```
//!
//! `seats_at` is 256 plus the slots rounded up to 128 bytes; `data_offset`
//! is the end of the seats rounded up to a page. A many-to-one object has one
//! ring per seat (sender → receiver), a service two (client → server, then
//! server → client). Every field is a fixed-width atomic; the offsets of the
//! structures are pinned by compile-time assertions, the others follow from
//! N, which the meta line records (and every opener checks).
//!
//! A seat's control line:
//! - `gen`: the generation of the seat's rings, written by the receiver
//!   only: the rings hold frames of generation `gen`.
//! - `want`: written by a new sender: the generation it asks the receiver
//!   to start, with fresh rings, once the previous sender's frames are all
//!   delivered (see `seats`).
//! - `pid`: the pid of the sender writing generation `gen` (display only).
//! - `fenceless`: written by each sender (client) when it claims the seat:
//!   non-zero if its process is registered for global expedited
//!   membarriers, so that the receiver (server) may notify the seat's events
//!   without a fence (see `core::event`).
//! - `poll`: the sender's (client's) poll word (`core::doorbell`); `Top`
//!   has the receiver's (server's).
//! - `space`: the sender sleeps on it (room in its ring, a fresh ring, the
//!   receiver joining or leaving); `reply`: a client sleeps on it for
//!   responses; `out_space`: a server sleeps on it for room in a client's
//!   response ring.

use std::ptr::NonNull;

use crate::channel::layout::Line;
use crate::core::event::Event;
use crate::core::ring::{Buf, Counter, CounterRef};
use crate::core::slots::Slot;
use crate::core::sync::AtomicU32;

/// Where the events' line starts.
pub(crate) const TOP_AT: usize = 128;
/// Where the participant slots start.
pub(crate) const SLOTS_AT: usize = 256;
/// The bytes of one seat's lines.
pub(crate) const SEAT_SIZE: usize = 640;
/// The most seats an object may have.
pub(crate) const MAX_SEATS: usize = 1024;
/// The page the rings start on.
const PAGE: usize = 4096;

/// Ring 0: sender → receiver (client → server).
pub(crate) const RING_IN: usize = 0;
/// Ring 1: server → client.
pub(crate) const RING_OUT: usize = 1;

/// The events everybody shares.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Top {
    /// Senders notify it after each commit, when they ask for a fresh ring,
    /// and when they leave; the receiver sleeps on it.
    pub data: Event,
    /// Notified whenever a participant joins or leaves.
    pub peers: Event,
    /// How many senders (clients) have ever joined: the receiver's stream
    /// ends once N have, and all have left.
    pub joined: AtomicU32,
    /// The receiver's (server's) poll word: its doorbell's nonce once its
    /// descriptor was taken, 0 before (see `core::doorbell`); senders
    /// (clients) ring it when they notify `data` and it has armed.
    pub poll: AtomicU32,
}

/// A seat's control line (see the module docs).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SeatCtl {
    pub gen: AtomicU32,
    pub want: AtomicU32,
    pub pid: AtomicU32,
    pub fenceless: AtomicU32,
    pub space: Event,
    pub reply: Event,
    pub out_space: Event,
    /// The seat's sender's (client's) poll word: its doorbell's nonce once
    /// its descriptor was taken, 0 before and after it leaves; the receiver
    /// (server) rings it when it notifies `space` or `reply` and the
    /// sender armed.
    pub poll: AtomicU32,
}

/// One seat: its control line and its rings' counters: the incoming ring's
/// producer and consumer, then the outgoing ring's producer and consumer.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Seat {
    pub ctl: Line<SeatCtl>,
    pub counters: [Line<Counter>; 4],
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<Top>() == 32);
    assert!(offset_of!(Top, data) == 0 && offset_of!(Top, peers) == 12 && offset_of!(Top, joined) == 24);
    assert!(offset_of!(Top, poll) == 28);
    assert!(size_of::<Line<Top>>() == 128);
    assert!(offset_of!(SeatCtl, gen) == 0);
    assert!(offset_of!(SeatCtl, want) == 4);
    assert!(offset_of!(SeatCtl, pid) == 8);
    assert!(offset_of!(SeatCtl, fenceless) == 12);
    assert!(offset_of!(SeatCtl, space) == 16);
    assert!(offset_of!(SeatCtl, reply) == 28);
    assert!(offset_of!(SeatCtl, out_space) == 40);
    assert!(offset_of!(SeatCtl, poll) == 52);
    assert!(size_of::<SeatCtl>() <= 128);
    assert!(offset_of!(Seat, ctl) == 0);
    assert!(offset_of!(Seat, counters) == 128);
    assert!(size_of::<Seat>() == SEAT_SIZE);
    assert!(size_of::<Slot>() == 8);
};

/// The sizes of one object, from its number of seats, rings per seat and
/// ring size (each validated by whoever builds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// N: the seats for senders (clients).
    pub seats: usize,
    /// Rings per seat: 1 (many-to-one) or 2 (service).
    pub rings: usize,
    /// Each ring's size in bytes (0 while only the header is known).
    pub cap: u64,
}

impl Geometry {
    /// The participant slots: the receiver's, then one per seat.
    pub(crate) fn slots(&self) -> u32 {
        1 + self.seats as u32
    }

    /// Where the seats start.
    pub(crate) fn seats_at(&self) -> usize {
        SLOTS_AT + (8 * (1 + self.seats)).div_ceil(128) * 128
    }

    /// Where the rings start (a page boundary).
    pub(crate) fn data_offset(&self) -> usize {
        (self.seats_at() + self.seats * SEAT_SIZE).div_ceil(PAGE) * PAGE
    }

    /// The bytes of all rings (`None` if that overflows or exceeds the
    /// largest object this format describes).
    pub(crate) fn data_len(&self) -> Option<u64> {
        let total = (self.seats as u64)
            .checked_mul(self.rings as u64)?
            .checked_mul(self.cap)?;
        (total <= crate::core::ring::MAX_CAPACITY).then_some(total)
    }

    /// Where ring `ring` of seat `seat` starts in the object.
    fn ring_at(&self, seat: usize, ring: usize) -> usize {
        self.data_offset() + (seat * self.rings + ring) * self.cap as usize
    }
}

/// The object's bytes: a header (and rings) at `ptr`, `len` bytes long,
/// laid out by `geo`. Copies point to the same memory; whoever made it keeps
/// the memory alive while any copy, or anything taken from one, is used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    geo: Geometry,
}

// SAFETY: the memory is reached only through atomics and the ring's `Buf`
// (copies and atomics within bounds); see `new`.
unsafe impl Send for Region {}
// SAFETY: as for Send.
unsafe impl Sync for Region {}

impl Region {
    /// # Safety
    /// `ptr` must be page-aligned and valid for reads (and, unless only
    /// loads are made, writes) of `len` bytes for as long as this value,
    /// its copies and the rings' halves made from them live. `len` covers at
    /// least the header (checked).
    pub(crate) unsafe fn new(ptr: NonNull<u8>, len: usize, geo: Geometry) -> Region {
        assert!(
            geo.seats >= 1 && geo.seats <= MAX_SEATS && (1..=2).contains(&geo.rings) && len >= geo.data_offset(),
            "region smaller than its header: a shmkit bug"
        );
        assert!((ptr.as_ptr() as usize) % 128 == 0, "unaligned region: a shmkit bug");
        Region { ptr, len, geo }
    }

    /// The sizes.
    pub(crate) fn geo(&self) -> &Geometry {
        &self.geo
    }

    /// A `T` at `at` (in the header, checked, 128-aligned).
    fn at<T>(&self, at: usize) -> &T {
        assert!(at % 128 == 0 && at + std::mem::size_of::<T>() <= self.geo.data_offset());
        // SAFETY: in the header (checked above; `new` checked that the
        // memory holds it) and aligned (the region is page-aligned, `at` a
        // multiple of 128 and every `T` here aligned to at most 128);
        // the header's types are atomics only, valid for any bit pattern and
        // shareable with other processes; the memory outlives `self`
        // (contract of `new`).
        unsafe { &*self.ptr.as_ptr().add(at).cast::<T>() }
    }

    /// The events' line.
    pub(crate) fn top(&self) -> &Top {
        &self.at::<Line<Top>>(TOP_AT).0
    }

    /// Participant slot `i` (0: the receiver; 1 + s: seat s).
    pub(crate) fn slot(&self, i: usize) -> &Slot {
        assert!(i < 1 + self.geo.seats);
        &self.at::<Line<[Slot; 16]>>(SLOTS_AT + i / 16 * 128).0[i % 16]
    }

    /// Seat `s`.
    pub(crate) fn seat(&self, s: usize) -> &Seat {
        assert!(s < self.geo.seats);
        self.at::<Seat>(self.geo.seats_at() + s * SEAT_SIZE)
    }

    /// Seat `s`'s control line.
    pub(crate) fn ctl(&self, s: usize) -> &SeatCtl {
        &self.seat(s).ctl.0
    }

    /// Counter `k` of seat `s` (0, 1: the incoming ring's producer and
    /// consumer; 2, 3: the outgoing ring's).
    pub(crate) fn counter(&self, s: usize, k: usize) -> CounterRef {
        let c = &self.seat(s).counters[k].0;
        // SAFETY: the counter lies in the header, which outlives every user
        // of this region (contract of `new`).
        unsafe { CounterRef::new(NonNull::from(c)) }
    }

    /// Ring `ring` of seat `s`.
    pub(crate) fn buf(&self, s: usize, ring: usize) -> Buf {
        assert!(s < self.geo.seats && ring < self.geo.rings);
        let at = self.geo.ring_at(s, ring);
        let cap = self.geo.cap as usize;
        assert!(cap > 0 && at.checked_add(cap).is_some_and(|end| end <= self.len));
        // SAFETY: in the region (checked), 8-aligned (page-aligned start,
        // ring sizes are powers of two of at least 64); valid as long as the
        // region's memory (contract of `new`).
        unsafe { Buf::new(NonNull::new_unchecked(self.ptr.as_ptr().add(at)), cap) }
    }

    /// A read-only view of `len` bytes at `at` of ring `ring` of seat `s`,
    /// borrowing `owner` (whatever keeps the memory alive).
    pub(crate) fn view<'a, O>(&self, _owner: &'a O, buf: &Buf, at: usize, len: usize) -> crate::map::View<'a> {
        // SAFETY: `range` checks that the bytes lie in the ring; the caller
        // passes the owner of the memory, which the view borrows.
        unsafe { crate::map::View::new(buf.range(at, len), len) }
    }

    /// A writable view, as [`view`](Self::view).
    pub(crate) fn view_mut<'a, O>(&self, _owner: &'a O, buf: &Buf, at: usize, len: usize) -> crate::map::ViewMut<'a> {
        // SAFETY: as in `view`; a view makes no reference to the bytes.
        unsafe { crate::map::ViewMut::new(buf.range(at, len), len) }
    }
}

/// A zeroed, page-aligned allocation holding a whole object (tests, fuzzing).
#[cfg(any(test, feature = "fuzz"))]
pub(crate) struct HeapRegion {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
    region: Region,
}

#[cfg(any(test, feature = "fuzz"))]
impl HeapRegion {
    /// Room for an object of `geo`, zeroed (as a new object is).
    pub(crate) fn new(geo: Geometry) -> HeapRegion {
        let len = geo.data_offset() + geo.data_len().expect("small") as usize;
        let layout = std::alloc::Layout::from_size_align(len, PAGE).unwrap();
        // SAFETY: the layout has a non-zero size (at least a header).
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).expect("allocation");
        // SAFETY: allocated above with `len` bytes, page-aligned; freed only
        // when this value drops, which the tests do after the halves.
        let region = unsafe { Region::new(ptr, len, geo) };
        HeapRegion { ptr, layout, region }
    }

    /// The region.
    pub(crate) fn region(&self) -> Region {
        self.region
    }

    /// Writes `byte` at `at` (modulo the size) with an atomic store of the
    /// word around it: a "peer" scribbling.
    pub(crate) fn scribble(&self, at: usize, byte: u8) {
        let at = at % self.layout.size();
        let word = at & !7;
        // SAFETY: in the allocation, 8-aligned; every access to this memory
        // is atomic or a copy, so an atomic store races with nothing unsound.
        let w = unsafe { &*self.ptr.as_ptr().add(word).cast::<std::sync::atomic::AtomicU64>() };
        let mut bytes = w.load(std::sync::atomic::Ordering::Relaxed).to_le_bytes();
        bytes[at - word] = byte;
        w.store(u64::from_le_bytes(bytes), std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(any(test, feature = "fuzz"))]
impl Drop for HeapRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}
