//! The topic's on-memory format: the segment's meta line, the topic's own
//! lines, the subscribers' seats, then the ring's bytes.
//!
//! ```text
//! offset     0  meta      magic, version, ready, kind = topic, slots = 65, capacity, …  (core::segment)
//! offset   128  config    decided, max_subscribers, history, membarrier (the publisher writes it once)
//! offset   256  producer  the publisher's position and statistics, the oldest intact and the newest frame, its poll word (only it writes)
//! offset   384  roster    joins and departures (subscribers bump it)
//! offset   512  events    data (subscribers sleep on it), space (the publisher), peers (joining, leaving)
//! offset   640  slots     seat 0: the publisher; seats 1..=64: subscribers (core::slots)
//! offset  1280  seats     64 lines: a subscriber's position, statistics, mode and generation (core::ring::broadcast), poll word
//! offset 12288  data      `capacity` bytes of frames (core::ring)
//! ```
//!
//! As for the channel: atomics of fixed width only, offsets pinned by
//! compile-time assertions, every word read once and validated. The layout
//! always has 64 subscriber seats; `max_subscribers` limits how many are
//! used, so that every participant knows the layout before the publisher
//! has chosen.

use crate::channel::layout::Line;
use crate::core::event::Event;
use crate::core::ring::broadcast::{Marks, Membership, Roster, MAX_SEATS};
use crate::core::ring::Counter;
use crate::core::segment::Meta;
use crate::core::slots::Slot;
use std::sync::atomic::AtomicU32;

/// Where the ring's bytes start.
pub(crate) const DATA_OFFSET: u64 = 12288;
/// The participant slots: the publisher's, then one per subscriber seat.
pub(crate) const SLOTS: u32 = 1 + MAX_SEATS as u32;
/// Where the slots lie in the header.
pub(crate) const SLOTS_AT: usize = 640;
/// The publisher's slot.
pub(crate) const PUBLISHER: usize = 0;

/// `Config::decided` once the publisher has written the config.
pub(crate) const DECIDED: u32 = 1;
/// `Config::decided` while a publisher writes it.
pub(crate) const DECIDING: u32 = 2;

/// What the publisher decides for everybody (written once).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Config {
    /// [`DECIDED`] once the other fields are written.
    pub decided: std::sync::atomic::AtomicU32,
    /// How many subscriber seats may be used (1 to 64).
    pub max_subscribers: std::sync::atomic::AtomicU32,
    /// How many past messages a new subscriber starts with, at most.
    pub history: std::sync::atomic::AtomicU64,
    /// [`MEMBARRIER`] if the publisher's process is registered for global
    /// expedited membarriers, so that it can issue one in the place of a
    /// subscriber that notifies it without a fence (`core::event`).
    pub membarrier: std::sync::atomic::AtomicU32,
}

/// `Config::membarrier` of a publisher that can issue membarriers.
pub(crate) const MEMBARRIER: u32 = 1;

/// The publisher's words.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ProducerWords {
    pub counter: Counter,
    pub marks: Marks,
    /// The publisher's poll word: the nonce of its doorbell once it polls
    /// (waits for room through its descriptor), 0 before (`core::doorbell`).
    pub poll: AtomicU32,
}

/// A subscriber seat's words.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SeatWords {
    pub counter: Counter,
    pub member: Membership,
    /// The subscriber's poll word: the nonce of its doorbell once it polls,
    /// 0 before and after (`core::doorbell`).
    pub poll: AtomicU32,
}

/// The topic's events.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Events {
    /// The publisher notifies it after each commit; subscribers sleep on it.
    pub data: Event,
    /// Blocking subscribers notify it after each release; the publisher
    /// sleeps on it when the ring is full.
    pub space: Event,
    /// Notified whenever a participant joins or leaves.
    pub peers: Event,
}

/// The whole header.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Header {
    pub meta: Meta,
    pub config: Line<Config>,
    pub producer: Line<ProducerWords>,
    pub roster: Line<Roster>,
    pub events: Line<Events>,
    pub slots: Line<[Slot; SLOTS as usize]>,
    pub seats: [Line<SeatWords>; MAX_SEATS],
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(Header, meta) == 0);
    assert!(offset_of!(Header, config) == 128);
    assert!(offset_of!(Header, producer) == 256);
    assert!(offset_of!(Header, roster) == 384);
    assert!(offset_of!(Header, events) == 512);
    assert!(offset_of!(Header, slots) == SLOTS_AT);
    assert!(offset_of!(Header, seats) == 1280);
    assert!(size_of::<Header>() == 1280 + 128 * MAX_SEATS);
    assert!(align_of::<Header>() == 128);
    assert!(offset_of!(Config, decided) == 0 && offset_of!(Config, max_subscribers) == 4);
    assert!(offset_of!(Config, history) == 8 && offset_of!(Config, membarrier) == 16);
    assert!(offset_of!(ProducerWords, counter) == 0 && offset_of!(ProducerWords, marks) == 24);
    assert!(offset_of!(Marks, oldest) == 0 && offset_of!(Marks, oldest_seq) == 8 && offset_of!(Marks, intent) == 16);
    assert!(offset_of!(Marks, newest) == 24 && size_of::<ProducerWords>() <= 128);
    assert!(offset_of!(ProducerWords, poll) == 56);
    assert!(offset_of!(SeatWords, counter) == 0 && offset_of!(SeatWords, member) == 24);
    assert!(offset_of!(SeatWords, poll) == 40 && size_of::<SeatWords>() <= 128);
    assert!(offset_of!(Membership, mode) == 0 && offset_of!(Membership, gen) == 8);
    assert!(offset_of!(Events, data) == 0 && offset_of!(Events, space) == 12 && offset_of!(Events, peers) == 24);
    assert!(size_of::<Slot>() == 8);
    assert!((size_of::<Header>() as u64) <= DATA_OFFSET && DATA_OFFSET % 4096 == 0);
};

/// The topic header at the start of `map` (at least [`DATA_OFFSET`] bytes,
/// page-aligned).
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
