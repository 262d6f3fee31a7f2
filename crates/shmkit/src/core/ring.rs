//! The ring: variable-length frames from one producer to N consumer
//! positions.
//!
//! This module knows nothing of processes, futexes, files or roles: it is
//! given the producer's [`Counter`], the consumers' counters and the bytes,
//! so the same code runs over a shared object, over heap memory in unit
//! tests, under Miri and under loom. One producer over one consumer counter
//! is a channel; over N, a broadcast; N rings under one event, many-to-one.
//!
//! # Frames
//! A frame is an 8-byte header word, then the payload, padded to 8 bytes. The
//! header holds the payload's length (40 bits: any length a ring of up to
//! [`MAX_CAPACITY`] carries), the frame's kind (a message, or padding to
//! skip) and a 16-bit *stamp*: the lap of the ring the frame was written in
//! (its position divided by the capacity). A frame never wraps: when it does
//! not fit before the ring's end, a padding frame fills the end and the frame
//! starts at offset 0, so a payload is always one contiguous run (which
//! zero-copy grants and guards need).
//!
//! # Consumers watch the next header, not the producer's counter
//! A consumer waits on the header word at its own position, so a small
//! message moves in the cache lines it occupies and no more. That is exact
//! because of the *end mark*: before it publishes a frame, the producer
//! stores a zero word where the next frame will start (it reserves those
//! eight bytes too). So the word at a consumer's position is either zero
//! (nothing yet), the header of the frame at that position (published with
//! Release after its payload and its own end mark), or — only after a jump,
//! below — a padding header of the previous lap, which its stamp tells apart.
//! The producer still publishes its counter (for `len`, `stat`, and the
//! consumer's check that a silent producer is not a corrupt one).
//!
//! # Keeping small messages in one line, large ones in warm memory
//! - A frame of up to 64 bytes (payloads up to 56) that would straddle a
//!   64-byte line starts at the next line instead, behind a padding frame:
//!   it then moves in one line.
//! - A frame of at least [`JUMP_MIN`] bytes, sent when every consumer has
//!   taken everything and another frame as large fits between offset 0 and
//!   their position, starts again at offset 0 (padding the rest of the
//!   lap): a conversation of large messages keeps reusing the first two
//!   frames' memory, still in the caches, instead of walking the whole
//!   ring, while a stream keeps one message in flight.
//!
//! # Untrusted memory
//! Each side keeps its own position locally; that is the truth, the shared
//! counter only publishes it. Every value read from shared memory is read
//! once and validated: a consumer's position must lie between the last one
//! seen and the producer's; a header's length must fit the ring and the
//! space before its end; padding must end on a line or at the ring's end.
//! A peer writing anything anywhere yields [`RingError::Corrupt`] or wrong
//! payload bytes in well-formed frames, never an out-of-bounds access.

// Under loom only the core is exercised.
#![cfg_attr(loom, allow(dead_code))]

use super::sync::{AtomicU64, Ordering};

/// The smallest capacity, in bytes.
pub(crate) const MIN_CAPACITY: u64 = 64;
/// The largest capacity, in bytes (1 TiB): the header's 40-bit length holds
/// any message of a ring this large.
pub(crate) const MAX_CAPACITY: u64 = 1 << 40;
/// Bytes before each frame's payload: the header word.
pub(crate) const FRAME_HEADER: u64 = 8;
/// Frames start on multiples of this.
pub(crate) const FRAME_ALIGN: u64 = 8;
/// A cache line: small frames do not straddle one.
pub(crate) const LINE: u64 = 64;
/// Frames this large or larger restart at offset 0 when the ring is empty.
pub(crate) const JUMP_MIN: u64 = 2048;
/// The header's kind: a message.
pub(crate) const KIND_MESSAGE: u64 = 0x4d; // 'M'
/// The header's kind: padding to skip.
pub(crate) const KIND_PAD: u64 = 0x50; // 'P'
const LEN_BITS: u32 = 40;
const LEN_MASK: u64 = (1 << LEN_BITS) - 1;

/// Whether `capacity` is one the format allows: a power of two between
/// [`MIN_CAPACITY`] and [`MAX_CAPACITY`].
pub(crate) fn valid_capacity(capacity: u64) -> bool {
    capacity.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity)
}

/// The largest message a ring of `capacity` bytes carries: half the ring
/// less a frame header, so that a frame always fits once the ring is empty,
/// wherever the free space starts (with its end mark).
pub(crate) fn max_message(capacity: u64) -> u64 {
    capacity / 2 - FRAME_HEADER
}

/// The bytes a frame with `len` payload bytes takes.
pub(crate) fn frame_size(len: u64) -> u64 {
    FRAME_HEADER + len.div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}

fn encode(len: u64, kind: u64, stamp: u64) -> u64 {
    debug_assert!(len <= LEN_MASK);
    len | (kind << LEN_BITS) | ((stamp & 0xffff) << 48)
}

fn decode(word: u64) -> (u64, u64, u64) {
    (word & LEN_MASK, (word >> LEN_BITS) & 0xff, word >> 48)
}

/// What can stop a ring operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RingError {
    /// No room for the frame now.
    Full,
    /// Nothing to read now.
    Empty,
    /// The message is longer than the ring carries.
    TooLarge { len: u64, max: u64 },
    /// The peer's counter or a frame is invalid.
    Corrupt(String),
}

fn corrupt(reason: impl Into<String>) -> RingError {
    RingError::Corrupt(reason.into())
}

/// One side's position and statistics (24 bytes, `repr(C)`); only that side
/// writes them.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Counter {
    /// Bytes ever committed (producer) or released (consumer); positions
    /// are this modulo the capacity.
    pub pos: AtomicU64,
    /// Messages ever sent or received.
    pub messages: AtomicU64,
    /// Payload bytes ever sent or received.
    pub bytes: AtomicU64,
}

impl Counter {
    /// A zeroed counter (heap memory: tests).
    #[cfg(any(test, feature = "fuzz", loom))]
    pub(crate) fn new() -> Counter {
        Counter {
            pos: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

pub(crate) use buf::Buf;
pub(crate) use shared_ref::Ref;

/// A pointer to a [`Counter`] in shared memory (see [`Ref`]).
pub(crate) type CounterRef = Ref<Counter>;

pub(crate) mod broadcast;

/// Space for one frame, reserved by [`Producer::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// The position of the frame's header; padding fills the bytes from the
    /// producer's position to it, if any.
    start: u64,
    /// Where the payload starts in the buffer.
    pub at: usize,
    /// The payload's length.
    pub len: usize,
}

/// A readable frame, found by [`Consumer::peek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Where the payload starts in the buffer.
    pub at: usize,
    /// The payload's length.
    pub len: usize,
    /// How far the position moves when the frame is released (padding
    /// included).
    advance: u64,
}

/// Sizes every side derives from the validated capacity.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    cap: u64,
    mask: u64,
    shift: u32,
    max: u64,
}

impl Geometry {
    fn new(cap: u64) -> Geometry {
        assert!(valid_capacity(cap), "capacity validated by the caller");
        Geometry {
            cap,
            mask: cap - 1,
            shift: cap.trailing_zeros(),
            max: max_message(cap),
        }
    }

    /// The stamp of a header at position `pos`: its lap.
    fn stamp(&self, pos: u64) -> u64 {
        (pos >> self.shift) & 0xffff
    }

    fn offset(&self, pos: u64) -> usize {
        (pos & self.mask) as usize
    }
}

/// Where a producer learns how far its consumers have read: a fixed list
/// of counters ([`Fixed`]: a channel), or a broadcast's changing set of
/// blocking subscribers (`broadcast::Members`).
pub(crate) trait Heads: std::fmt::Debug {
    /// Loads and validates every position the producer must not overwrite;
    /// returns the slowest. `tail` is the producer's position, `last` the
    /// slowest it saw before (no position may be behind it).
    fn load(&mut self, tail: u64, last: u64) -> Result<u64, RingError>;
}

/// A fixed list of consumer counters: a channel's one receiver.
#[derive(Debug)]
pub(crate) struct Fixed {
    consumers: Vec<CounterRef>,
}

impl Heads for Fixed {
    #[inline]
    fn load(&mut self, tail: u64, last: u64) -> Result<u64, RingError> {
        let mut slowest = tail;
        for c in &self.consumers {
            // Acquire: the consumer's reads of the frames it released
            // happen before we overwrite them.
            let head = c.get().pos.load(Ordering::Acquire);
            check_head(head, tail, last)?;
            if tail.wrapping_sub(head) > tail.wrapping_sub(slowest) {
                slowest = head;
            }
        }
        Ok(slowest)
    }
}

/// A consumer's position only moves forward from `last`, and never past
/// the producer's `tail`.
#[inline]
fn check_head(head: u64, tail: u64, last: u64) -> Result<(), RingError> {
    let moved = head.wrapping_sub(last);
    if moved > tail.wrapping_sub(last) || head % FRAME_ALIGN != 0 {
        return Err(corrupt(format!(
            "a receiver's position {head} is not between its last position {last} and the sender's {tail}"
        )));
    }
    Ok(())
}

/// The producing half of the ring.
#[derive(Debug)]
pub(crate) struct Producer<H: Heads = Fixed> {
    own: CounterRef,
    heads: H,
    buf: Buf,
    geo: Geometry,
    /// Bytes ever committed: the truth; `own.pos` publishes it.
    tail: u64,
    /// The last position of the slowest consumer seen; the real one can
    /// only be further.
    cached_head: u64,
    messages: u64,
    bytes: u64,
    jump_min: u64,
}

/// The consuming half of the ring (one of N).
#[derive(Debug)]
pub(crate) struct Consumer {
    own: CounterRef,
    producer: CounterRef,
    buf: Buf,
    geo: Geometry,
    /// Bytes ever released: the truth; `own.pos` publishes it.
    head: u64,
    messages: u64,
    bytes: u64,
}

impl Producer<Fixed> {
    /// The producer publishing through `own` to `consumers` over `buf`
    /// (`capacity` bytes), from position 0 of a new ring.
    pub(crate) fn new(own: CounterRef, consumers: Vec<CounterRef>, buf: Buf, capacity: u64) -> Producer {
        assert!(!consumers.is_empty());
        Producer::with_heads(own, Fixed { consumers }, buf, capacity)
    }

    /// Messages committed and not yet released by the slowest consumer.
    pub(crate) fn in_flight(&self) -> u64 {
        let released = self
            .heads
            .consumers
            .iter()
            .map(|c| c.get().messages.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        self.messages.saturating_sub(released)
    }
}

impl<H: Heads> Producer<H> {
    /// The producer publishing through `own` over `buf` (`capacity`
    /// bytes), from position 0 of a new ring, learning the consumers'
    /// positions from `heads`.
    pub(crate) fn with_heads(own: CounterRef, heads: H, buf: Buf, capacity: u64) -> Producer<H> {
        Producer {
            own,
            heads,
            buf,
            geo: Geometry::new(capacity),
            tail: 0,
            cached_head: 0,
            messages: 0,
            bytes: 0,
            jump_min: JUMP_MIN,
        }
    }

    /// The largest message this ring carries.
    pub(crate) fn max_message(&self) -> u64 {
        self.geo.max
    }

    /// The buffer the reservations point into.
    pub(crate) fn buf(&self) -> &Buf {
        &self.buf
    }

    /// Reserves a frame for `len` payload bytes (with padding before it if
    /// it must not straddle a line or the ring's end, or jumps to offset 0).
    #[inline]
    pub(crate) fn reserve(&mut self, len: usize) -> Result<Reservation, RingError> {
        let len64 = len as u64;
        if len64 > self.geo.max {
            return Err(RingError::TooLarge {
                len: len64,
                max: self.geo.max,
            });
        }
        let frame = frame_size(len64);
        let pos = self.tail & self.geo.mask;
        let to_end = self.geo.cap - pos;
        // A large frame on an empty ring starts over at offset 0, in warm
        // memory — if another frame as large fits after it before the
        // consumers' position: the padding stays in the way until they pass
        // it, and a stream must keep one message ahead.
        if frame >= self.jump_min && pos >= 2 * frame + FRAME_HEADER {
            self.cached_head = self.load_head()?;
            if self.cached_head == self.tail {
                return Ok(Reservation {
                    start: self.tail.wrapping_add(to_end),
                    at: FRAME_HEADER as usize,
                    len,
                });
            }
        }
        let line_off = pos % LINE;
        let skip = if frame > to_end {
            to_end
        } else if frame <= LINE && line_off + frame > LINE && pos - line_off + LINE < self.geo.cap {
            LINE - line_off
        } else {
            0
        };
        // The frame, its padding, and its end mark.
        let need = skip + frame + FRAME_HEADER;
        if self.free() < need {
            self.cached_head = self.load_head()?;
            if self.free() < need {
                return Err(RingError::Full);
            }
        }
        let start = self.tail.wrapping_add(skip);
        Ok(Reservation {
            start,
            at: self.geo.offset(start) + FRAME_HEADER as usize,
            len,
        })
    }

    /// Publishes the reserved frame, whose payload has been written.
    #[inline]
    pub(crate) fn commit(&mut self, r: Reservation) {
        let end = r.start.wrapping_add(frame_size(r.len as u64));
        // The end mark first: a consumer that sees this frame's header
        // (Acquire) sees a zero, not an older lap's bytes, where the next
        // frame will start.
        self.buf.store_word(self.geo.offset(end), 0, Ordering::Relaxed);
        // Release: the payload and the end mark happen before a consumer
        // that Acquire-loads this header reads them.
        let header = encode(r.len as u64, KIND_MESSAGE, self.geo.stamp(r.start));
        self.buf.store_word(self.geo.offset(r.start), header, Ordering::Release);
        let skipped = r.start.wrapping_sub(self.tail);
        if skipped != 0 {
            // Release, after the frame: a consumer that follows the padding
            // finds the frame published.
            let pad = encode(skipped - FRAME_HEADER, KIND_PAD, self.geo.stamp(self.tail));
            self.buf.store_word(self.geo.offset(self.tail), pad, Ordering::Release);
        }
        self.tail = end;
        self.messages += 1;
        self.bytes += r.len as u64;
        let own = self.own.get();
        // Release: for the consumers' check that a silent producer is not a
        // corrupt one (the headers above happen before).
        own.pos.store(self.tail, Ordering::Release);
        own.messages.store(self.messages, Ordering::Relaxed);
        own.bytes.store(self.bytes, Ordering::Relaxed);
    }

    /// Copies `msg` into the ring as one frame.
    pub(crate) fn push(&mut self, msg: &[u8]) -> Result<(), RingError> {
        let r = self.reserve(msg.len())?;
        self.buf.write(r.at, msg);
        self.commit(r);
        Ok(())
    }

    /// Free bytes by the cached head (never more than really free).
    fn free(&self) -> u64 {
        self.geo.cap - self.tail.wrapping_sub(self.cached_head)
    }

    /// Loads and validates every consumer's position; returns the slowest.
    #[inline]
    fn load_head(&mut self) -> Result<u64, RingError> {
        self.heads.load(self.tail, self.cached_head)
    }

    /// Whether every consumer has released everything committed.
    pub(crate) fn is_drained(&mut self) -> Result<bool, RingError> {
        self.cached_head = self.load_head()?;
        Ok(self.cached_head == self.tail)
    }

    /// Sets the smallest frame that may jump to offset 0 (tests).
    #[cfg(test)]
    pub(crate) fn set_jump_min(&mut self, bytes: u64) {
        self.jump_min = bytes;
    }
}

impl Consumer {
    /// The consumer publishing through `own`, reading what `producer`
    /// commits into `buf` (`capacity` bytes), from position 0.
    pub(crate) fn new(own: CounterRef, producer: CounterRef, buf: Buf, capacity: u64) -> Consumer {
        Consumer {
            own,
            producer,
            buf,
            geo: Geometry::new(capacity),
            head: 0,
            messages: 0,
            bytes: 0,
        }
    }

    /// Messages committed by the producer and not yet released here.
    pub(crate) fn in_flight(&self) -> u64 {
        let committed = self.producer.get().messages.load(Ordering::Relaxed);
        committed.saturating_sub(self.messages)
    }

    /// The buffer the frames point into.
    pub(crate) fn buf(&self) -> &Buf {
        &self.buf
    }

    /// The largest message this ring carries.
    pub(crate) fn max_message(&self) -> u64 {
        self.geo.max
    }

    /// The next frame, validated, without consuming it. Reads only the
    /// header words at this consumer's position (and after one padding).
    #[inline]
    pub(crate) fn peek(&mut self) -> Result<Frame, RingError> {
        self.peek_at(self.head)
    }

    /// The frame at `pos` (a frame's or a padding's start), validated, as
    /// [`peek`](Self::peek) reads it.
    #[inline]
    fn peek_at(&self, mut pos: u64) -> Result<Frame, RingError> {
        let mut skipped = 0;
        loop {
            let off = self.geo.offset(pos);
            // Acquire: pairs with the producer's Release of this header.
            let word = self.buf.load_word(off);
            if word == 0 {
                return Err(RingError::Empty);
            }
            let (len, kind, stamp) = decode(word);
            if stamp != self.geo.stamp(pos) {
                // An older lap's padding (after a jump), not yet rewritten.
                return Err(RingError::Empty);
            }
            match kind {
                KIND_MESSAGE => {
                    if len > self.geo.max || off as u64 + FRAME_HEADER + len > self.geo.cap {
                        return Err(corrupt(format!(
                            "frame of {len} bytes at {off} exceeds the ring's end or its largest message"
                        )));
                    }
                    return Ok(Frame {
                        at: off + FRAME_HEADER as usize,
                        len: len as usize,
                        advance: skipped + frame_size(len),
                    });
                }
                KIND_PAD if skipped == 0 => {
                    let size = len + FRAME_HEADER;
                    let end = off as u64 + size;
                    let to_line = end % LINE == 0 && size < LINE && end < self.geo.cap;
                    if !(end == self.geo.cap || to_line) {
                        return Err(corrupt(format!(
                            "padding of {len} bytes at {off} ends neither the ring nor a line"
                        )));
                    }
                    pos = pos.wrapping_add(size);
                    skipped = size;
                }
                KIND_PAD => return Err(corrupt(format!("padding after padding at {off}"))),
                _ => return Err(corrupt(format!("unknown frame kind {kind:#04x} at {off}"))),
            }
        }
    }

    /// Consumes `frame`, giving its space back to the producer.
    #[inline]
    pub(crate) fn release(&mut self, frame: Frame) {
        self.head = self.head.wrapping_add(frame.advance);
        // wrapping: a topic's reader sets `messages` from a frame's number,
        // which a hostile peer may make u64::MAX
        self.messages = self.messages.wrapping_add(1);
        self.bytes += frame.len as u64;
        let own = self.own.get();
        // Release: our reads of the frame happen before the producer, having
        // Acquire-loaded this position, overwrites it.
        own.pos.store(self.head, Ordering::Release);
        own.messages.store(self.messages, Ordering::Relaxed);
        own.bytes.store(self.bytes, Ordering::Relaxed);
    }

    /// Copies the next message into `out` (replacing its contents).
    #[cfg(any(test, loom))]
    pub(crate) fn pop_into(&mut self, out: &mut Vec<u8>) -> Result<(), RingError> {
        let frame = self.peek()?;
        out.clear();
        out.resize(frame.len, 0);
        self.buf.read(frame.at, out);
        self.release(frame);
        Ok(())
    }

    /// Loads and validates the producer's published position; returns the
    /// bytes committed beyond this consumer's position (0 if the counter
    /// lags behind it: the producer publishes a frame's header before its
    /// counter, so a consumer may pass the counter by a frame).
    fn committed_ahead(&self) -> Result<u64, RingError> {
        // Acquire: the headers the producer stored before it are visible.
        let tail = self.producer.get().pos.load(Ordering::Acquire);
        let ahead = tail.wrapping_sub(self.head);
        let behind = self.head.wrapping_sub(tail);
        if tail % FRAME_ALIGN != 0 || (ahead > self.geo.cap && behind > self.geo.cap) {
            return Err(corrupt(format!(
                "the sender's position {tail} is more than {} bytes from the receiver's {}",
                self.geo.cap, self.head
            )));
        }
        Ok(if ahead <= self.geo.cap { ahead } else { 0 })
    }

    /// For a consumer that found nothing: `Corrupt` if the producer's
    /// counter says frames were committed that the headers do not show
    /// (a producer publishes its headers before its counter).
    pub(crate) fn check_stalled(&mut self) -> Result<(), RingError> {
        if self.committed_ahead()? == 0 {
            return Ok(());
        }
        match self.peek() {
            Err(RingError::Empty) => Err(corrupt(format!(
                "the sender's position says a frame is committed at {}, but its header is missing",
                self.head
            ))),
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    /// Bytes committed and not yet released, by a look at the producer's
    /// counter.
    pub(crate) fn bytes_in_flight(&self) -> Result<u64, RingError> {
        self.committed_ahead()
    }
}

#[cfg(not(loom))]
mod shared_ref {
    use std::ptr::NonNull;

    /// A pointer to a value of atomics in shared memory (a [`Counter`],
    /// the broadcast's marks and seats), valid for as long as its owner
    /// keeps the memory (the object's mapping, or a test's allocation).
    ///
    /// [`Counter`]: super::Counter
    #[derive(Debug)]
    pub(crate) struct Ref<T>(NonNull<T>);

    impl<T> Clone for Ref<T> {
        fn clone(&self) -> Self {
            *self
        }
    }

    impl<T> Copy for Ref<T> {}

    // SAFETY: the values are made of atomics only (Sync); the pointer is
    // valid for the owner's lifetime (the contract of `new`).
    unsafe impl<T: Sync> Send for Ref<T> {}
    // SAFETY: as for Send.
    unsafe impl<T: Sync> Sync for Ref<T> {}

    impl<T> Ref<T> {
        /// # Safety
        /// `ptr` must point to a `T` made of atomics (aligned: a `Counter`
        /// is 8-aligned, 24 bytes) that stays mapped for as long as this
        /// value and its copies live.
        pub(crate) unsafe fn new(ptr: NonNull<T>) -> Ref<T> {
            Ref(ptr)
        }

        /// The value.
        #[inline]
        pub(crate) fn get(&self) -> &T {
            // SAFETY: valid for our lifetime (contract of `new`); atomics
            // may be shared with any other process or thread.
            unsafe { self.0.as_ref() }
        }
    }
}

#[cfg(loom)]
mod shared_ref {
    use std::sync::Arc;

    /// Under loom: a value shared between model threads.
    #[derive(Debug)]
    pub(crate) struct Ref<T>(Arc<T>);

    impl<T> Clone for Ref<T> {
        fn clone(&self) -> Self {
            Ref(self.0.clone())
        }
    }

    impl<T> Ref<T> {
        pub(crate) fn from_arc(arc: Arc<T>) -> Ref<T> {
            Ref(arc)
        }
        pub(crate) fn get(&self) -> &T {
            &self.0
        }
    }
}

#[cfg(not(loom))]
mod buf {
    use std::ptr::NonNull;

    use super::super::sync::{AtomicU64, Ordering};

    /// The ring's bytes: `len` bytes at `ptr`, shared with other processes.
    ///
    /// Accesses are bounds-checked (a failed check is a bug in this module,
    /// never the peer's doing: every offset comes from validated values).
    /// Nothing here makes a Rust reference to the bytes: payloads are copied
    /// with raw pointers, header words are atomics.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Buf {
        ptr: NonNull<u8>,
        len: usize,
    }

    // SAFETY: shared memory is accessed only by copies and atomics within
    // bounds; see the type's docs.
    unsafe impl Send for Buf {}
    // SAFETY: as for Send.
    unsafe impl Sync for Buf {}

    impl Buf {
        /// # Safety
        /// `ptr` must be valid for reads and writes of `len` bytes, 8-byte
        /// aligned, for as long as this value and its copies live.
        pub(crate) unsafe fn new(ptr: NonNull<u8>, len: usize) -> Buf {
            Buf { ptr, len }
        }

        #[inline]
        fn check(&self, at: usize, len: usize) {
            assert!(
                at <= self.len && len <= self.len - at,
                "ring access out of bounds: a shmkit bug"
            );
        }

        /// The header word at the 8-aligned `at`.
        #[inline]
        fn word(&self, at: usize) -> &AtomicU64 {
            self.check(at, 8);
            assert!(at % 8 == 0, "unaligned ring word: a shmkit bug");
            // SAFETY: in bounds and 8-aligned (checked; the buffer is
            // 8-aligned); any bit pattern is a valid AtomicU64, and atomics
            // may be shared with other processes.
            unsafe { &*self.ptr.as_ptr().add(at).cast::<AtomicU64>() }
        }

        /// Loads the word at `at` (Acquire), once.
        #[inline]
        pub(crate) fn load_word(&self, at: usize) -> u64 {
            self.word(at).load(Ordering::Acquire)
        }

        /// Stores `value` at `at`.
        #[inline]
        pub(crate) fn store_word(&self, at: usize, value: u64, order: Ordering) {
            self.word(at).store(value, order);
        }

        /// A pointer to the `len` bytes at `at`, checked to lie in the buffer.
        pub(crate) fn range(&self, at: usize, len: usize) -> NonNull<u8> {
            self.check(at, len);
            // SAFETY: in bounds (checked), so not past the allocation.
            unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(at)) }
        }

        /// Copies `data` to `at`.
        #[inline]
        pub(crate) fn write(&self, at: usize, data: &[u8]) {
            let dst = self.range(at, data.len());
            // SAFETY: in bounds (checked); `data` is private memory, so it
            // cannot overlap the shared buffer.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst.as_ptr(), data.len()) };
        }

        /// Copies `out.len()` bytes at `at` into `out`.
        #[cfg(any(test, feature = "fuzz"))]
        pub(crate) fn read(&self, at: usize, out: &mut [u8]) {
            let src = self.range(at, out.len());
            // SAFETY: in bounds (checked); `out` is private memory.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), out.as_mut_ptr(), out.len()) };
        }

        /// Appends `len` bytes at `at` to `out`, copying once (no zero-fill
        /// first).
        pub(crate) fn append_to(&self, at: usize, len: usize, out: &mut Vec<u8>) {
            let src = self.range(at, len);
            out.reserve(len);
            let spare = out.spare_capacity_mut();
            // SAFETY: the source is in bounds (checked); `spare` has room for
            // `len` bytes (reserved) and is private memory, so no overlap.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), spare.as_mut_ptr().cast::<u8>(), len) };
            // SAFETY: the `len` bytes after the old length were just written.
            unsafe { out.set_len(out.len() + len) };
        }
    }
}

#[cfg(loom)]
mod buf {
    use super::super::sync::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Under loom: the bytes as 8-byte atomic words, so that the model
    /// checks which writes each read may see. Payload bytes go through
    /// Relaxed accesses (one writer at a time), headers through the same
    /// orderings as in real memory.
    #[derive(Debug, Clone)]
    pub(crate) struct Buf {
        words: Arc<[AtomicU64]>,
    }

    impl Buf {
        pub(crate) fn new_loom(len: usize) -> Buf {
            Buf {
                words: (0..len / 8).map(|_| AtomicU64::new(0)).collect(),
            }
        }

        pub(crate) fn load_word(&self, at: usize) -> u64 {
            self.words[at / 8].load(Ordering::Acquire)
        }

        pub(crate) fn store_word(&self, at: usize, value: u64, order: Ordering) {
            self.words[at / 8].store(value, order);
        }

        pub(crate) fn write(&self, at: usize, data: &[u8]) {
            for (i, &b) in data.iter().enumerate() {
                let word = &self.words[(at + i) / 8];
                let mut bytes = word.load(Ordering::Relaxed).to_le_bytes();
                bytes[(at + i) % 8] = b;
                word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
            }
        }

        pub(crate) fn read(&self, at: usize, out: &mut [u8]) {
            for (i, o) in out.iter_mut().enumerate() {
                *o = self.words[(at + i) / 8].load(Ordering::Relaxed).to_le_bytes()[(at + i) % 8];
            }
        }
    }
}

/// Builds a producer and consumers over heap memory (tests, Miri, fuzzing).
#[cfg(all(any(test, feature = "fuzz"), not(loom)))]
pub(crate) mod heap {
    use super::*;
    use std::ptr::NonNull;

    /// The memory the halves point into; keep it alive while they are used.
    /// The counters are one raw allocation (not a `Box` moved around), so
    /// the pointers the halves hold stay valid under Miri's aliasing rules.
    pub(crate) struct HeapRing {
        counters: NonNull<[Counter; 4]>,
        data: NonNull<u64>,
        words: usize,
    }

    impl HeapRing {
        /// Counter `i`: 0 is the producer's, 1.. the consumers'.
        pub(crate) fn counter(&self, i: usize) -> &Counter {
            // SAFETY: allocated in `ring` and freed only in `drop`.
            unsafe { &self.counters.as_ref()[i] }
        }

        /// The ring's bytes, for a "peer" that scribbles on them.
        pub(crate) fn buf(&self) -> Buf {
            // SAFETY: allocated in `ring` with `words * 8` bytes, 8-aligned,
            // freed only in `drop`.
            unsafe { Buf::new(self.data.cast(), self.words * 8) }
        }
    }

    impl Drop for HeapRing {
        fn drop(&mut self) {
            // SAFETY: both made by `Box::into_raw` in `ring`, freed once,
            // here.
            unsafe {
                drop(Box::from_raw(self.counters.as_ptr()));
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.data.as_ptr(),
                    self.words,
                )));
            }
        }
    }

    /// A ring of `capacity` bytes in ordinary memory, with `consumers`
    /// consumers (1 to 3).
    pub(crate) fn ring_n(capacity: u64, consumers: usize) -> (HeapRing, Producer, Vec<Consumer>) {
        assert!((1..=3).contains(&consumers));
        let counters = NonNull::new(Box::into_raw(Box::new([
            Counter::new(),
            Counter::new(),
            Counter::new(),
            Counter::new(),
        ])))
        .unwrap();
        let words = capacity as usize / 8;
        let data = NonNull::new(Box::into_raw(vec![0u64; words].into_boxed_slice()).cast::<u64>()).unwrap();
        let mem = HeapRing { counters, data, words };
        // SAFETY: the counters live in `mem`, which the caller keeps alive
        // while the halves are used.
        let refs: Vec<CounterRef> = (0..4)
            .map(|i| unsafe { CounterRef::new(NonNull::from(mem.counter(i))) })
            .collect();
        let p = Producer::new(refs[0], refs[1..=consumers].to_vec(), mem.buf(), capacity);
        let cs = (1..=consumers)
            .map(|i| Consumer::new(refs[i], refs[0], mem.buf(), capacity))
            .collect();
        (mem, p, cs)
    }

    /// A ring of `capacity` bytes with one consumer.
    #[cfg(test)]
    pub(crate) fn ring(capacity: u64) -> (HeapRing, Producer, Consumer) {
        let (mem, p, mut cs) = ring_n(capacity, 1);
        (mem, p, cs.pop().unwrap())
    }
}

/// The fuzz harness: arbitrary bytes as the ring's memory, rewritten by a
/// "peer" between operations, while both halves keep working. It must end,
/// without a panic or an out-of-bounds access, whatever the bytes.
#[cfg(all(any(test, feature = "fuzz"), not(loom)))]
pub(crate) mod fuzz {
    use super::heap::ring_n;
    use super::*;

    /// Writes `value` into one of the counters' fields, chosen by `which`.
    fn scribble_counter(mem: &heap::HeapRing, which: usize, value: u64) {
        let o = Ordering::Relaxed;
        let c = mem.counter(which % 3);
        match (which / 3) % 4 {
            0 => c.pos.store(value, o),
            1 => c.pos.store(c.pos.load(o).wrapping_add(value % 64), o),
            2 => c.messages.store(value, o),
            _ => c.bytes.store(value, o),
        }
    }

    /// Runs the harness on `data`.
    pub(crate) fn run(data: &[u8]) {
        let mut input = data.iter().copied();
        let mut next = move || input.next();
        let cap = 64u64 << (next().unwrap_or(0) % 6); // 64 .. 2048
        let consumers = 1 + usize::from(next().unwrap_or(0) % 2);
        let (mem, mut p, mut cs) = ring_n(cap, consumers);
        p.jump_min = 64 << (next().unwrap_or(0) % 4);
        let buf = mem.buf();
        let scribble = |at: usize, byte: u8| {
            let at = at % (64 + cap as usize);
            if at < 64 {
                scribble_counter(&mem, at, u64::from_le_bytes([byte; 8]) ^ at as u64);
            } else {
                buf.write(at - 64, &[byte]);
            }
        };
        // Half the runs start from arbitrary memory; the others from a clean
        // ring, so that the peer's scribbles hit a working ring.
        let fill = if next().unwrap_or(0) % 2 == 0 {
            0
        } else {
            64 + cap as usize
        };
        for i in 0..fill {
            match next() {
                Some(b) => scribble(i, b),
                None => break,
            }
        }
        let mut out = Vec::new();
        for _ in 0..256 {
            let Some(op) = next() else { break };
            match op % 5 {
                0 => {
                    let len = usize::from(next().unwrap_or(0)) * 4;
                    match p.push(&vec![op; len]) {
                        Ok(()) | Err(RingError::Full | RingError::TooLarge { .. } | RingError::Corrupt(_)) => {}
                        Err(RingError::Empty) => unreachable!("a producer is never empty"),
                    }
                }
                1..=3 => {
                    let c = &mut cs[usize::from(op) % consumers];
                    match c.peek() {
                        Ok(frame) => {
                            assert!(frame.at + frame.len <= cap as usize && frame.len as u64 <= p.max_message());
                            out.resize(frame.len, 0);
                            c.buf().read(frame.at, &mut out);
                            c.release(frame);
                        }
                        Err(RingError::Empty) => {
                            let _ = c.check_stalled();
                        }
                        Err(RingError::Corrupt(_)) => {}
                        Err(e) => unreachable!("{e:?}"),
                    }
                }
                _ => {
                    // the peer writes a byte somewhere
                    let at = usize::from(next().unwrap_or(0)) << 4 | usize::from(next().unwrap_or(0));
                    scribble(at, next().unwrap_or(0xff));
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::{ring, ring_n};
    use super::*;

    fn msg(n: usize, len: usize) -> Vec<u8> {
        (0..len).map(|i| (n * 7 + i) as u8).collect()
    }

    #[test]
    fn messages_come_out_in_order_across_wraps() {
        let (_mem, mut p, mut c) = ring(256);
        let mut out = Vec::new();
        let mut next_in = 0usize;
        let mut next_out = 0usize;
        let rounds: usize = if cfg!(miri) { 200 } else { 2000 };
        for round in 0..rounds {
            // a few messages of varying size, then drain some
            for _ in 0..(round % 4) {
                match p.push(&msg(next_in, (next_in * 37) % 100)) {
                    Ok(()) => next_in += 1,
                    Err(RingError::Full) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            for _ in 0..(round % 3) {
                match c.pop_into(&mut out) {
                    Ok(()) => {
                        assert_eq!(out, msg(next_out, (next_out * 37) % 100), "message {next_out}");
                        next_out += 1;
                    }
                    Err(RingError::Empty) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            c.check_stalled().unwrap();
        }
        while c.pop_into(&mut out).is_ok() {
            next_out += 1;
        }
        assert_eq!(next_in, next_out);
        assert!(next_in > rounds / 2);
    }

    #[test]
    fn the_largest_message_fits_at_any_position() {
        for cap in [64u64, 128, 4096] {
            let max = max_message(cap) as usize;
            let (_mem, mut p, mut c) = ring(cap);
            let mut out = Vec::new();
            let shifts = if cfg!(miri) { (cap / 8).min(24) } else { cap / 8 };
            for shift in 0..shifts {
                // move the positions by `shift` frames of 0 bytes
                for _ in 0..shift % 3 {
                    p.push(&[]).unwrap();
                    c.pop_into(&mut out).unwrap();
                }
                let m = vec![shift as u8; max];
                p.push(&m).unwrap();
                c.pop_into(&mut out).unwrap();
                assert_eq!(out, m);
            }
            assert!(matches!(p.push(&vec![0; max + 1]), Err(RingError::TooLarge { .. })));
        }
    }

    #[test]
    fn small_frames_do_not_straddle_a_line() {
        let (_mem, mut p, mut c) = ring(4096);
        let mut out = Vec::new();
        for n in 0..300 {
            let len = [0, 8, 24, 56, 13][n % 5];
            let r = p.reserve(len).unwrap();
            let start = r.at - FRAME_HEADER as usize;
            assert_eq!(
                start / 64,
                (start + frame_size(len as u64) as usize - 1) / 64,
                "frame {n}"
            );
            p.buf().write(r.at, &msg(n, len));
            p.commit(r);
            c.pop_into(&mut out).unwrap();
            assert_eq!(out, msg(n, len));
        }
    }

    #[test]
    fn large_frames_on_an_empty_ring_restart_at_zero() {
        let (_mem, mut p, mut c) = ring(1 << 16);
        let mut out = Vec::new();
        let f = frame_size(10_000) as usize;
        for n in 0..50 {
            let r = p.reserve(10_000).unwrap();
            // 0, f, 2f; then two fit before the consumer's position: back to 0
            assert_eq!(r.at, 8 + (n % 3) * f, "message {n}");
            p.buf().write(r.at, &msg(n, 10_000));
            p.commit(r);
            c.pop_into(&mut out).unwrap();
            assert_eq!(out, msg(n, 10_000));
        }
        // 50 % 3 == 2: the next goes to 2f; with it in flight, no jump
        p.push(&msg(1, 10_000)).unwrap();
        let r = p.reserve(10_000).unwrap();
        assert_eq!(r.at, 8 + 3 * f);
        p.buf().write(r.at, &msg(2, 10_000));
        p.commit(r);
        for n in [1, 2] {
            c.pop_into(&mut out).unwrap();
            assert_eq!(out, msg(n, 10_000));
        }
    }

    #[test]
    fn full_and_empty() {
        let (_mem, mut p, mut c) = ring(64);
        let mut out = Vec::new();
        assert_eq!(c.pop_into(&mut out), Err(RingError::Empty));
        p.push(&[1; 16]).unwrap(); // 24 bytes
        p.push(&[2; 16]).unwrap(); // 48
        assert_eq!(
            p.push(&[3; 8]),
            Err(RingError::Full),
            "16 bytes and an end mark do not fit in 16"
        );
        c.pop_into(&mut out).unwrap();
        assert_eq!(out, [1; 16]);
        p.push(&[3; 8]).unwrap();
        assert!(!p.is_drained().unwrap());
    }

    #[test]
    fn broadcast_every_consumer_sees_every_message_and_the_slowest_holds_the_producer() {
        let (_mem, mut p, mut cs) = ring_n(256, 2);
        let mut out = Vec::new();
        let mut sent = 0;
        while p.push(&msg(sent, 20)).is_ok() {
            sent += 1;
        }
        for n in 0..sent {
            cs[0].pop_into(&mut out).unwrap();
            assert_eq!(out, msg(n, 20));
        }
        assert_eq!(
            p.push(&msg(sent, 20)),
            Err(RingError::Full),
            "consumer 1 has taken nothing"
        );
        assert_eq!(p.in_flight(), sent as u64);
        for n in 0..sent {
            cs[1].pop_into(&mut out).unwrap();
            assert_eq!(out, msg(n, 20));
        }
        p.push(&msg(sent, 20)).unwrap();
        assert!(!p.is_drained().unwrap());
    }

    #[test]
    fn hostile_counters_are_corrupt_not_a_crash() {
        let (mem, mut p, mut c) = ring(128);
        p.push(b"fine").unwrap();
        // a tail beyond the ring, a misaligned tail
        for bad in [1000u64, 3] {
            mem.counter(0).pos.store(bad, Ordering::Relaxed);
            assert!(matches!(c.check_stalled(), Err(RingError::Corrupt(_))), "tail {bad}");
        }
        // a tail that claims frames whose headers are missing
        let mut out = Vec::new();
        c.pop_into(&mut out).unwrap();
        mem.counter(0).pos.store(c.head + 16, Ordering::Relaxed);
        assert!(matches!(c.check_stalled(), Err(RingError::Corrupt(_))));
        mem.counter(1).pos.store(u64::MAX - 7, Ordering::Relaxed);
        for _ in 0..20 {
            match p.push(&[0; 40]) {
                Ok(()) => {}
                Err(RingError::Corrupt(_)) => return,
                Err(e) => panic!("{e:?}"),
            }
        }
        panic!("a head ahead of the tail was accepted");
    }

    #[test]
    fn hostile_frames_are_corrupt_or_empty_not_a_crash() {
        let (_mem, mut p, mut c) = ring(128);
        let mut out = Vec::new();
        p.push(b"hello").unwrap();
        let stamp = 0;
        let cases = [
            (5, 0x33, stamp),            // unknown kind
            (1000, KIND_MESSAGE, stamp), // longer than the largest message
            (LEN_MASK, KIND_MESSAGE, stamp),
            (0, KIND_PAD, stamp),   // padding that ends neither the ring nor a line
            (200, KIND_PAD, stamp), // padding past the ring's end
        ];
        for (len, kind, stamp) in cases {
            p.buf().store_word(0, encode(len, kind, stamp), Ordering::Relaxed);
            assert!(
                matches!(c.pop_into(&mut out), Err(RingError::Corrupt(_))),
                "{len} {kind:#x}"
            );
        }
        // a header from another lap reads as nothing yet
        p.buf().store_word(0, encode(5, KIND_MESSAGE, 9), Ordering::Relaxed);
        assert_eq!(c.pop_into(&mut out), Err(RingError::Empty));
        assert!(
            matches!(c.check_stalled(), Err(RingError::Corrupt(_))),
            "but the tail says otherwise"
        );
    }

    #[test]
    fn lengths_use_all_forty_bits() {
        let big = max_message(MAX_CAPACITY);
        assert!(big >= 1 << 38);
        let word = encode(big, KIND_MESSAGE, 0xffff);
        assert_eq!(decode(word), (big, KIND_MESSAGE, 0xffff));
        assert_eq!(frame_size(big) % FRAME_ALIGN, 0);
    }

    /// A message over 4 GiB, in a 16 GiB ring that is never touched but
    /// for its headers (an anonymous mapping reserved lazily).
    #[test]
    #[cfg_attr(miri, ignore = "mmap")]
    fn the_largest_message_over_4_gib_and_one_byte_more() {
        use rustix::mm::{mmap_anonymous, munmap, MapFlags, ProtFlags};
        let cap: u64 = 1 << 34;
        let len = cap as usize;
        // SAFETY: a fresh private anonymous mapping, unmapped below; nothing
        // else refers to it.
        let Ok(base) = (unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }) else {
            println!("skipped: no 16 GiB of address space to reserve here");
            return;
        };
        let (mem, _, _) = ring(64); // only for its counters
                                    // SAFETY: `base` is valid for `len` bytes until the munmap below,
                                    // after the halves are gone.
        let (p, c) = unsafe {
            let buf = Buf::new(std::ptr::NonNull::new(base.cast()).unwrap(), len);
            let own = CounterRef::new(std::ptr::NonNull::from(mem.counter(2)));
            let theirs = CounterRef::new(std::ptr::NonNull::from(mem.counter(3)));
            (
                Producer::new(own, vec![theirs], buf, cap),
                Consumer::new(theirs, own, buf, cap),
            )
        };
        let (mut p, mut c) = (p, c);
        let max = max_message(cap) as usize;
        assert!(max > u32::MAX as usize);
        assert_eq!(
            p.reserve(max + 1),
            Err(RingError::TooLarge {
                len: max as u64 + 1,
                max: max as u64
            })
        );
        let r = p.reserve(max).unwrap();
        p.buf().write(r.at + max - 4, b"tail");
        p.commit(r);
        let frame = c.peek().unwrap();
        assert_eq!(frame.len, max, "the whole length, not cut to 32 bits");
        let mut tail = [0u8; 4];
        c.buf().read(frame.at + max - 4, &mut tail);
        assert_eq!(&tail, b"tail");
        c.release(frame);
        p.push(b"next").unwrap();
        let mut out = Vec::new();
        c.pop_into(&mut out).unwrap();
        assert_eq!(out, b"next");
        drop((p, c));
        // SAFETY: mapped above; the halves that pointed into it are gone.
        unsafe { munmap(base, len).unwrap() };
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 256 }))]

        /// Random sizes, pushed and popped in random bursts, wrapping a
        /// small ring many times (with line padding and jumps): what comes
        /// out is what went in.
        #[test]
        fn random_sizes_wrap_and_arrive_intact(
            sizes in proptest::collection::vec(0usize..=120, 1..400),
            bursts in proptest::collection::vec(1usize..8, 1..50),
            jump in 0u64..4,
        ) {
            let (_mem, mut p, mut c) = ring(256);
            p.set_jump_min(32 << jump);
            let mut sent = std::collections::VecDeque::new();
            let mut out = Vec::new();
            let (mut i, mut b) = (0, 0);
            while i < sizes.len() || !sent.is_empty() {
                for _ in 0..bursts[b % bursts.len()] {
                    let Some(&len) = sizes.get(i) else { break };
                    let m = msg(i, len);
                    match p.push(&m) {
                        Ok(()) => { sent.push_back(m); i += 1; }
                        Err(RingError::Full) => break,
                        Err(e) => panic!("{e:?}"),
                    }
                }
                for _ in 0..bursts[(b + 1) % bursts.len()] {
                    match c.pop_into(&mut out) {
                        Ok(()) => {
                            let want = sent.pop_front();
                            proptest::prop_assert_eq!(Some(&out), want.as_ref());
                        }
                        Err(RingError::Empty) => break,
                        Err(e) => panic!("{e:?}"),
                    }
                }
                proptest::prop_assert_eq!(c.check_stalled(), Ok(()));
                b += 1;
            }
        }

        /// Arbitrary memory and a scribbling peer: the ring ends in errors,
        /// never a panic or an out-of-bounds access.
        #[test]
        fn arbitrary_memory_never_crashes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000)) {
            super::fuzz::run(&data);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use std::sync::Arc;

    fn halves(cap: u64, consumers: usize, jump_min: u64) -> (Producer, Vec<Consumer>) {
        let counters: Vec<CounterRef> = (0..=consumers)
            .map(|_| CounterRef::from_arc(Arc::new(Counter::new())))
            .collect();
        let buf = Buf::new_loom(cap as usize);
        let mut p = Producer::new(counters[0].clone(), counters[1..].to_vec(), buf.clone(), cap);
        p.jump_min = jump_min;
        let cs = (1..=consumers)
            .map(|i| Consumer::new(counters[i].clone(), counters[0].clone(), buf.clone(), cap))
            .collect();
        (p, cs)
    }

    fn produce(mut p: Producer, sizes: &'static [usize]) {
        for (i, &len) in sizes.iter().enumerate() {
            let m = vec![i as u8 + 1; len];
            loop {
                match p.push(&m) {
                    Ok(()) => break,
                    Err(RingError::Full) => loom::thread::yield_now(),
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
    }

    fn consume(c: &mut Consumer, sizes: &[usize]) {
        let mut out = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            loop {
                match c.pop_into(&mut out) {
                    Ok(()) => break,
                    Err(RingError::Empty) => loom::thread::yield_now(),
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert_eq!(out, vec![i as u8 + 1; len]);
        }
    }

    /// Three messages of different sizes through a ring that must wrap and
    /// pad: every interleaving delivers them intact and in order, the
    /// consumer watching the headers only.
    #[test]
    fn loom_ring_messages_cross_threads_intact() {
        loom::model(|| {
            const SIZES: &[usize] = &[20, 12, 20];
            let (p, mut cs) = halves(64, 1, u64::MAX);
            let t = loom::thread::spawn(move || produce(p, SIZES));
            consume(&mut cs[0], SIZES);
            t.join().unwrap();
        });
    }

    /// The same with large-frame jumps to offset 0 enabled for every frame.
    #[test]
    fn loom_ring_jumps_to_zero_are_seen_in_order() {
        loom::model(|| {
            const SIZES: &[usize] = &[8, 16, 8];
            let (p, mut cs) = halves(64, 1, 16);
            let t = loom::thread::spawn(move || produce(p, SIZES));
            consume(&mut cs[0], SIZES);
            t.join().unwrap();
        });
    }

    /// One producer, two consumers: each receives every message intact and
    /// in order, and the producer, which must wait for the slower consumer
    /// before the second message fits, never overwrites what it still
    /// reads. The second consumer runs on the producer's thread, between
    /// its pushes (a third spinning thread makes the model too large to
    /// search); the first runs concurrently.
    #[test]
    fn loom_ring_broadcast_to_two_consumers() {
        loom::model(|| {
            const SIZES: &[usize] = &[20, 20];
            let (mut p, mut cs) = halves(64, 2, u64::MAX);
            let mut c1 = cs.pop().unwrap();
            let t = loom::thread::spawn(move || {
                let mut out = Vec::new();
                for (i, &len) in SIZES.iter().enumerate() {
                    let m = vec![i as u8 + 1; len];
                    loop {
                        match p.push(&m) {
                            Ok(()) => break,
                            Err(RingError::Full) => loom::thread::yield_now(),
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    c1.pop_into(&mut out).unwrap();
                    assert_eq!(out, m);
                }
            });
            consume(&mut cs[0], SIZES);
            t.join().unwrap();
        });
    }
}
