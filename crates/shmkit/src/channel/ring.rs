//! The ring: variable-length frames between one producer and one consumer.
//!
//! Each side keeps its own counter in a local variable, which is the truth;
//! the shared copy only publishes it. A side reads the other's counter
//! (Acquire) only when its cached copy says the ring is full or empty, and
//! validates it before use. Frames are 8-byte aligned: a header (`len: u32`,
//! `kind: u32`) and the payload. A frame never wraps: when it does not fit
//! before the ring's end, a padding frame fills the end and the frame starts
//! at offset 0, so a reader always sees a payload as one contiguous run (which
//! zero-copy grants and guards need).
//!
//! This module knows nothing of processes, futexes or files, so the same code
//! runs over heap memory in unit tests, under Miri and under loom.

// Under loom only the core is exercised.
#![cfg_attr(loom, allow(dead_code))]

use super::layout::{frame_size, Header, FRAME_ALIGN, FRAME_HEADER, KIND_MESSAGE, KIND_PAD};
use super::sync::Ordering;

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

pub(crate) use buf::Buf;

/// Space for one frame, reserved by [`Producer::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// The counter value at the frame's start (after any padding).
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
    /// How far the head moves when the frame is released (padding included).
    advance: u64,
}

/// Sizes every side derives from the validated capacity.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    cap: u64,
    mask: u64,
    max: u64,
}

impl Geometry {
    fn new(cap: u64) -> Geometry {
        debug_assert!(super::layout::valid_capacity(cap));
        Geometry {
            cap,
            mask: cap - 1,
            max: super::layout::max_message(cap),
        }
    }
}

/// The sending half of the ring.
#[derive(Debug)]
pub(crate) struct Producer {
    hdr: HeaderRef,
    buf: Buf,
    geo: Geometry,
    /// Bytes ever committed: the truth; `hdr.tail.pos` publishes it.
    tail: u64,
    /// The last head seen; the real one can only be further.
    cached_head: u64,
    messages: u64,
    bytes: u64,
}

/// The receiving half of the ring.
#[derive(Debug)]
pub(crate) struct Consumer {
    hdr: HeaderRef,
    buf: Buf,
    geo: Geometry,
    /// Bytes ever released: the truth; `hdr.head.pos` publishes it.
    head: u64,
    /// The last tail seen; the real one can only be further.
    cached_tail: u64,
    messages: u64,
    bytes: u64,
}

impl Producer {
    /// Messages committed and not yet released by the consumer: this side's
    /// own count less the consumer's published one (0 if that is ahead).
    pub(crate) fn in_flight(&self) -> u64 {
        let released = self.hdr.get().head.0.messages.load(Ordering::Relaxed);
        self.messages.saturating_sub(released)
    }

    /// The producer for `hdr` and `buf`, resuming at `tail`.
    pub(crate) fn new(hdr: HeaderRef, buf: Buf, capacity: u64, tail: u64) -> Producer {
        Producer {
            hdr,
            buf,
            geo: Geometry::new(capacity),
            tail,
            // A new channel: both counters start together.
            cached_head: tail,
            messages: 0,
            bytes: 0,
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

    /// Reserves a frame for `len` payload bytes, padding the ring's end if
    /// the frame does not fit before it.
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
        let need = if frame <= to_end { frame } else { to_end + frame };
        if self.free() < need {
            self.cached_head = self.load_head()?;
            if self.free() < need {
                return Err(RingError::Full);
            }
        }
        if frame <= to_end {
            return Ok(Reservation {
                start: self.tail,
                at: (pos + FRAME_HEADER) as usize,
                len,
            });
        }
        // Fill the end; it is published together with the frame.
        self.buf
            .write_header(pos as usize, (to_end - FRAME_HEADER) as u32, KIND_PAD);
        Ok(Reservation {
            start: self.tail.wrapping_add(to_end),
            at: FRAME_HEADER as usize,
            len,
        })
    }

    /// Publishes the reserved frame, whose payload has been written.
    pub(crate) fn commit(&mut self, r: Reservation) {
        let frame_at = r.at - FRAME_HEADER as usize;
        self.buf.write_header(frame_at, r.len as u32, KIND_MESSAGE);
        self.tail = r.start.wrapping_add(frame_size(r.len as u64));
        self.messages += 1;
        self.bytes += r.len as u64;
        let counter = &self.hdr.get().tail.0;
        // Release: the payload and header writes above happen before a
        // consumer that Acquire-loads this tail reads them.
        counter.pos.store(self.tail, Ordering::Release);
        counter.messages.store(self.messages, Ordering::Relaxed);
        counter.bytes.store(self.bytes, Ordering::Relaxed);
    }

    /// Copies `msg` into the ring as one frame.
    pub(crate) fn push(&mut self, msg: &[u8]) -> Result<(), RingError> {
        let r = self.reserve(msg.len())?;
        self.buf.write(r.at, msg);
        self.commit(r);
        Ok(())
    }

    /// The bytes of a reservation this producer made, to read.
    #[cfg(not(loom))]
    pub(crate) fn payload(&self, r: &Reservation) -> &[u8] {
        // SAFETY: a reservation's bytes lie between the tail and the next
        // frame: the consumer's head is behind them, so the protocol gives
        // them to the producer alone until it commits; a hostile consumer
        // could still write them (the public grant's docs say so).
        unsafe { self.buf.slice(r.at, r.len) }
    }

    /// The bytes of a reservation this producer made, to write in place.
    #[cfg(not(loom))]
    pub(crate) fn payload_mut(&mut self, r: &Reservation) -> &mut [u8] {
        // SAFETY: as in `payload`; `&mut self` excludes other access here.
        unsafe { self.buf.slice_mut(r.at, r.len) }
    }

    /// Free bytes by the cached head (never more than really free).
    fn free(&self) -> u64 {
        self.geo.cap - self.tail.wrapping_sub(self.cached_head)
    }

    /// Loads and validates the consumer's head.
    fn load_head(&self) -> Result<u64, RingError> {
        // Acquire: the consumer's reads of the frames it released happen
        // before we overwrite them.
        let head = self.hdr.get().head.0.pos.load(Ordering::Acquire);
        // The head only moves forward, and never past the tail.
        let moved = head.wrapping_sub(self.cached_head);
        if moved > self.tail.wrapping_sub(self.cached_head) || head % FRAME_ALIGN != 0 {
            return Err(corrupt(format!(
                "the receiver's position {head} is not between its last position {} and the sender's {}",
                self.cached_head, self.tail
            )));
        }
        Ok(head)
    }

    /// Whether everything committed has been released by the consumer (by
    /// the last head seen, reloaded now).
    pub(crate) fn is_drained(&mut self) -> Result<bool, RingError> {
        self.cached_head = self.load_head()?;
        Ok(self.cached_head == self.tail)
    }
}

impl Consumer {
    /// Messages committed by the producer and not yet released here: the
    /// producer's published count less this side's own (0 if it is behind).
    pub(crate) fn in_flight(&self) -> u64 {
        let committed = self.hdr.get().tail.0.messages.load(Ordering::Relaxed);
        committed.saturating_sub(self.messages)
    }

    /// The consumer for `hdr` and `buf`, resuming at `head`.
    pub(crate) fn new(hdr: HeaderRef, buf: Buf, capacity: u64, head: u64) -> Consumer {
        Consumer {
            hdr,
            buf,
            geo: Geometry::new(capacity),
            head,
            cached_tail: head,
            messages: 0,
            bytes: 0,
        }
    }

    /// The buffer the frames point into.
    pub(crate) fn buf(&self) -> &Buf {
        &self.buf
    }

    /// The largest message this ring carries.
    pub(crate) fn max_message(&self) -> u64 {
        self.geo.max
    }

    /// The next frame, validated, without consuming it.
    pub(crate) fn peek(&mut self) -> Result<Frame, RingError> {
        if self.cached_tail == self.head {
            self.cached_tail = self.load_tail()?;
            if self.cached_tail == self.head {
                return Err(RingError::Empty);
            }
        }
        let mut avail = self.cached_tail.wrapping_sub(self.head);
        let mut pos = self.head & self.geo.mask;
        let mut skipped = 0;
        let (mut len, mut kind) = self.buf.read_header(pos as usize);
        if kind == KIND_PAD {
            let to_end = self.geo.cap - pos;
            if u64::from(len) + FRAME_HEADER != to_end || to_end >= avail {
                return Err(corrupt(format!(
                    "padding frame of {len} bytes at {pos} does not end the ring or is not followed by a message"
                )));
            }
            skipped = to_end;
            avail -= to_end;
            pos = 0;
            (len, kind) = self.buf.read_header(0);
        }
        if kind != KIND_MESSAGE {
            return Err(corrupt(format!("unknown frame kind {kind:#010x} at {pos}")));
        }
        let frame = frame_size(u64::from(len));
        if u64::from(len) > self.geo.max || frame > avail || frame > self.geo.cap - pos {
            return Err(corrupt(format!(
                "frame of {len} bytes at {pos} exceeds the {avail} bytes committed or the ring's end"
            )));
        }
        Ok(Frame {
            at: (pos + FRAME_HEADER) as usize,
            len: len as usize,
            advance: skipped + frame,
        })
    }

    /// The payload of a frame this consumer found, in place.
    #[cfg(not(loom))]
    pub(crate) fn payload(&self, f: &Frame) -> &[u8] {
        // SAFETY: a committed frame lies between the head and the tail: the
        // producer does not write it until the consumer releases it; a
        // hostile producer could (the public guard's docs say so).
        unsafe { self.buf.slice(f.at, f.len) }
    }

    /// Consumes `frame`, giving its space back to the producer.
    pub(crate) fn release(&mut self, frame: Frame) {
        self.head = self.head.wrapping_add(frame.advance);
        self.messages += 1;
        self.bytes += frame.len as u64;
        let counter = &self.hdr.get().head.0;
        // Release: our reads of the frame happen before the producer, having
        // Acquire-loaded this head, overwrites it.
        counter.pos.store(self.head, Ordering::Release);
        counter.messages.store(self.messages, Ordering::Relaxed);
        counter.bytes.store(self.bytes, Ordering::Relaxed);
    }

    /// Copies the next message into `out` (replacing its contents).
    #[cfg(test)]
    pub(crate) fn pop_into(&mut self, out: &mut Vec<u8>) -> Result<(), RingError> {
        let frame = self.peek()?;
        out.clear();
        out.resize(frame.len, 0);
        self.buf.read(frame.at, out);
        self.release(frame);
        Ok(())
    }

    /// Loads and validates the producer's tail.
    fn load_tail(&self) -> Result<u64, RingError> {
        // Acquire: pairs with the producer's Release in `commit`.
        let tail = self.hdr.get().tail.0.pos.load(Ordering::Acquire);
        // The tail only moves forward, and never more than a ring ahead of
        // the head.
        let moved = tail.wrapping_sub(self.cached_tail);
        let limit = self.head.wrapping_add(self.geo.cap).wrapping_sub(self.cached_tail);
        if moved > limit || tail % FRAME_ALIGN != 0 {
            return Err(corrupt(format!(
                "the sender's position {tail} is not between its last position {} and {} bytes after the receiver's {}",
                self.cached_tail, self.geo.cap, self.head
            )));
        }
        Ok(tail)
    }

    /// Bytes committed and not yet released, by a fresh look at the tail.
    pub(crate) fn refresh(&mut self) -> Result<u64, RingError> {
        self.cached_tail = self.load_tail()?;
        Ok(self.cached_tail.wrapping_sub(self.head))
    }
}

/// A pointer to the header, valid for as long as its owner keeps the memory
/// (the channel's mapping, or a test's box).
#[derive(Debug, Clone)]
pub(crate) struct HeaderRef {
    #[cfg(not(loom))]
    ptr: std::ptr::NonNull<Header>,
    #[cfg(loom)]
    arc: std::sync::Arc<Header>,
}

// SAFETY: the header is made of atomics only, which are Sync; the pointer is
// valid for the owner's lifetime (the contract of `HeaderRef::new`).
#[cfg(not(loom))]
unsafe impl Send for HeaderRef {}
// SAFETY: as for Send.
#[cfg(not(loom))]
unsafe impl Sync for HeaderRef {}

impl HeaderRef {
    /// # Safety
    /// `ptr` must point to a `Header` (128-aligned, 640 bytes) that stays
    /// mapped for as long as this value and its clones live.
    #[cfg(not(loom))]
    pub(crate) unsafe fn new(ptr: std::ptr::NonNull<Header>) -> HeaderRef {
        HeaderRef { ptr }
    }

    /// Wraps a header that tests share between threads.
    #[cfg(loom)]
    pub(crate) fn from_arc(arc: std::sync::Arc<Header>) -> HeaderRef {
        HeaderRef { arc }
    }

    /// The header.
    pub(crate) fn get(&self) -> &Header {
        #[cfg(not(loom))]
        // SAFETY: valid for our lifetime (contract of `new`); a header of
        // atomics may be shared with any other process or thread.
        return unsafe { self.ptr.as_ref() };
        #[cfg(loom)]
        return &self.arc;
    }
}

#[cfg(not(loom))]
mod buf {
    use std::ptr::NonNull;

    /// The ring's bytes: `len` bytes at `ptr`, shared with another process.
    ///
    /// Accesses are bounds-checked (a failed check is a bug in this module,
    /// never the peer's doing: every offset comes from validated values).
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Buf {
        ptr: NonNull<u8>,
        len: usize,
    }

    // SAFETY: shared memory is accessed only by copies and volatile reads
    // within bounds; see the type's docs.
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

        fn check(&self, at: usize, len: usize) {
            assert!(
                at <= self.len && len <= self.len - at,
                "ring access out of bounds: a shmkit bug"
            );
        }

        /// Copies `data` to `at`.
        pub(crate) fn write(&self, at: usize, data: &[u8]) {
            self.check(at, data.len());
            // SAFETY: in bounds (checked); `data` is private memory, so it
            // cannot overlap the shared buffer.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(at), data.len()) };
        }

        /// Copies `out.len()` bytes at `at` into `out`.
        #[cfg(any(test, feature = "fuzz"))]
        pub(crate) fn read(&self, at: usize, out: &mut [u8]) {
            self.check(at, out.len());
            // SAFETY: in bounds (checked); `out` is private memory.
            unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(at), out.as_mut_ptr(), out.len()) };
        }

        /// Appends `len` bytes at `at` to `out`, copying once (no zero-fill
        /// first).
        pub(crate) fn append_to(&self, at: usize, len: usize, out: &mut Vec<u8>) {
            self.check(at, len);
            out.reserve(len);
            let spare = out.spare_capacity_mut();
            // SAFETY: the source is in bounds (checked); `spare` has room for
            // `len` bytes (reserved) and is private memory, so no overlap.
            unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(at), spare.as_mut_ptr().cast::<u8>(), len) };
            // SAFETY: the `len` bytes after the old length were just written.
            unsafe { out.set_len(out.len() + len) };
        }

        /// Writes a frame header (length, kind) at the 8-aligned `at`.
        pub(crate) fn write_header(&self, at: usize, len: u32, kind: u32) {
            self.check(at, 8);
            assert!(at % 8 == 0);
            let word = u64::from(len) | (u64::from(kind) << 32);
            // SAFETY: in bounds and 8-aligned (checked; the buffer is 8-aligned).
            unsafe { self.ptr.as_ptr().add(at).cast::<u64>().write_volatile(word.to_le()) };
        }

        /// Reads a frame header at the 8-aligned `at`, once.
        pub(crate) fn read_header(&self, at: usize) -> (u32, u32) {
            self.check(at, 8);
            assert!(at % 8 == 0);
            // SAFETY: in bounds and aligned (checked). Volatile: one read,
            // whatever the peer does meanwhile; the values are validated.
            let word = u64::from_le(unsafe { self.ptr.as_ptr().add(at).cast::<u64>().read_volatile() });
            (word as u32, (word >> 32) as u32)
        }

        /// The bytes at `at` as a slice.
        ///
        /// # Safety
        /// Nobody may write them while the slice lives: the ring's protocol
        /// gives them to the caller (a released frame is not reused before
        /// the consumer's head passes it), but a hostile peer may break that,
        /// which is why the public types that use this say so.
        pub(crate) unsafe fn slice(&self, at: usize, len: usize) -> &[u8] {
            self.check(at, len);
            // SAFETY: in bounds (checked); the caller takes on exclusivity.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(at), len) }
        }

        /// The bytes at `at` as a mutable slice.
        ///
        /// # Safety
        /// As for `slice`, and nobody may read them either.
        #[allow(clippy::mut_from_ref)]
        pub(crate) unsafe fn slice_mut(&self, at: usize, len: usize) -> &mut [u8] {
            self.check(at, len);
            // SAFETY: in bounds (checked); the caller takes on exclusivity.
            unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(at), len) }
        }
    }
}

#[cfg(loom)]
mod buf {
    use loom::cell::UnsafeCell;
    use std::sync::Arc;

    /// Under loom: the bytes as 8-byte cells, so that loom checks that every
    /// access to a cell is ordered after the writes it must see.
    #[derive(Debug, Clone)]
    pub(crate) struct Buf {
        cells: Arc<[UnsafeCell<u64>]>,
    }

    impl Buf {
        pub(crate) fn new_loom(len: usize) -> Buf {
            Buf {
                cells: (0..len / 8).map(|_| UnsafeCell::new(0)).collect(),
            }
        }

        pub(crate) fn write(&self, at: usize, data: &[u8]) {
            for (i, &b) in data.iter().enumerate() {
                let cell = &self.cells[(at + i) / 8];
                // SAFETY: loom checks the access.
                cell.with_mut(|p| unsafe {
                    let mut bytes = (*p).to_le_bytes();
                    bytes[(at + i) % 8] = b;
                    *p = u64::from_le_bytes(bytes);
                });
            }
        }

        pub(crate) fn read(&self, at: usize, out: &mut [u8]) {
            for (i, o) in out.iter_mut().enumerate() {
                // SAFETY: loom checks the access.
                *o = self.cells[(at + i) / 8].with(|p| unsafe { (*p).to_le_bytes()[(at + i) % 8] });
            }
        }

        pub(crate) fn write_header(&self, at: usize, len: u32, kind: u32) {
            let word = u64::from(len) | (u64::from(kind) << 32);
            // SAFETY: loom checks the access.
            self.cells[at / 8].with_mut(|p| unsafe { *p = word });
        }

        pub(crate) fn read_header(&self, at: usize) -> (u32, u32) {
            // SAFETY: loom checks the access.
            let word = self.cells[at / 8].with(|p| unsafe { *p });
            (word as u32, (word >> 32) as u32)
        }
    }
}

/// Builds a producer and consumer over heap memory (tests, Miri, fuzzing).
#[cfg(all(any(test, feature = "fuzz"), not(loom)))]
pub(crate) mod heap {
    use super::*;

    /// The memory both halves point into; keep it alive while they are
    /// used. The header is a raw allocation (not a `Box` moved around), so
    /// the pointers the halves hold stay valid under Miri's aliasing rules.
    pub(crate) struct HeapRing {
        hdr: std::ptr::NonNull<Header>,
        _data: Vec<u64>,
    }

    impl HeapRing {
        /// The header, as a test or "peer" sees it.
        pub(crate) fn header(&self) -> &Header {
            // SAFETY: allocated in `ring` and freed only in `drop`.
            unsafe { self.hdr.as_ref() }
        }
    }

    impl Drop for HeapRing {
        fn drop(&mut self) {
            // SAFETY: made by `Box::into_raw` in `ring`, freed once, here.
            drop(unsafe { Box::from_raw(self.hdr.as_ptr()) });
        }
    }

    /// A ring of `capacity` bytes in ordinary memory.
    pub(crate) fn ring(capacity: u64) -> (HeapRing, Producer, Consumer) {
        let hdr = std::ptr::NonNull::new(Box::into_raw(Header::new_boxed(capacity))).expect("not null");
        let mut data = vec![0u64; capacity as usize / 8];
        // SAFETY: the header allocation and the vector's buffer live in
        // `HeapRing`, which the caller keeps alive while the halves are used
        // (moving a Vec does not move its buffer).
        let (h, b) = unsafe {
            (
                HeaderRef::new(hdr),
                Buf::new(
                    std::ptr::NonNull::new(data.as_mut_ptr().cast()).unwrap(),
                    capacity as usize,
                ),
            )
        };
        let p = Producer::new(h.clone(), b, capacity, 0);
        let c = Consumer::new(h, b, capacity, 0);
        (HeapRing { hdr, _data: data }, p, c)
    }
}

/// The fuzz harness: arbitrary bytes as the ring's memory, rewritten by a
/// "peer" between operations, while both halves keep working. It must end,
/// without a panic or an out-of-bounds access, whatever the bytes.
#[cfg(all(any(test, feature = "fuzz"), not(loom)))]
pub(crate) mod fuzz {
    use super::heap::ring;
    use super::*;

    /// Writes `value` into one of the header's fields, chosen by `which`.
    fn scribble_field(h: &Header, which: usize, value: u64) {
        let o = Ordering::Relaxed;
        let v32 = value as u32;
        match which % 20 {
            0 => h.meta.0.magic.store(value, o),
            1 => h.meta.0.version.store(v32, o),
            2 => h.meta.0.ready.store(v32, o),
            3 => h.meta.0.capacity.store(value, o),
            4 => h.meta.0.data_offset.store(value, o),
            5 => h.tail.0.pos.store(value, o),
            6 => h.tail.0.pos.store(h.tail.0.pos.load(o).wrapping_add(value % 64), o),
            7 => h.tail.0.messages.store(value, o),
            8 => h.head.0.pos.store(value, o),
            9 => h.head.0.pos.store(h.head.0.pos.load(o).wrapping_add(value % 64), o),
            10 => h.head.0.bytes.store(value, o),
            11 => h.wake.0.data_seq.store(v32, o),
            12 => h.wake.0.rx_waiting.store(v32, o),
            13 => h.wake.0.space_seq.store(v32, o),
            14 => h.wake.0.tx_waiting.store(v32, o),
            15 => h.peers.0.sender.state.store(v32, o),
            16 => h.peers.0.sender.pid.store(v32, o),
            17 => h.peers.0.receiver.state.store(v32, o),
            18 => h.peers.0.receiver.start.store(value, o),
            _ => h.peers.0.left.store(v32, o),
        }
    }

    /// Runs the harness on `data`.
    pub(crate) fn run(data: &[u8]) {
        let mut input = data.iter().copied();
        let mut next = move || input.next();
        let cap = 64u64 << (next().unwrap_or(0) % 6); // 64 .. 2048
        let (mem, mut p, mut c) = ring(cap);
        let hdr_len = std::mem::size_of::<Header>();
        let hdr = mem.header();
        let buf = *p.buf();
        // The "peer" writes whole header fields through their atomics (the
        // ring reads them only so), and any byte of the ring.
        let scribble = |at: usize, byte: u8| {
            let at = at % (hdr_len + cap as usize);
            if at < hdr_len {
                scribble_field(hdr, at, u64::from_le_bytes([byte; 8]) ^ at as u64);
            } else {
                buf.write(at - hdr_len, &[byte]);
            }
        };
        // Half the runs start from arbitrary memory; the others from a clean
        // ring, so that the peer's scribbles hit a working channel.
        let fill = if next().unwrap_or(0) % 2 == 0 {
            0
        } else {
            hdr_len + cap as usize
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
            match op % 4 {
                0 => {
                    let len = usize::from(next().unwrap_or(0)) * 4;
                    match p.push(&vec![op; len]) {
                        Ok(()) | Err(RingError::Full | RingError::TooLarge { .. } | RingError::Corrupt(_)) => {}
                        Err(RingError::Empty) => unreachable!("a producer is never empty"),
                    }
                }
                1 | 2 => match c.peek() {
                    Ok(frame) => {
                        assert!(frame.at + frame.len <= cap as usize && frame.len as u64 <= p.max_message());
                        out.resize(frame.len, 0);
                        c.buf().read(frame.at, &mut out);
                        c.release(frame);
                    }
                    Err(RingError::Empty | RingError::Corrupt(_)) => {}
                    Err(e) => unreachable!("{e:?}"),
                },
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
    use super::heap::ring;
    use super::*;

    #[test]
    fn messages_come_out_in_order_across_wraps() {
        let (_mem, mut p, mut c) = ring(256);
        let mut out = Vec::new();
        let mut next_in = 0u32;
        let mut next_out = 0u32;
        let rounds: u32 = if cfg!(miri) { 200 } else { 2000 };
        for round in 0..rounds {
            // a few messages of varying size, then drain some
            for _ in 0..(round % 4) {
                let len = ((next_in * 37) % 100) as usize;
                let msg: Vec<u8> = (0..len).map(|i| (next_in as usize + i) as u8).collect();
                match p.push(&msg) {
                    Ok(()) => next_in += 1,
                    Err(RingError::Full) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            for _ in 0..(round % 3) {
                match c.pop_into(&mut out) {
                    Ok(()) => {
                        let len = ((next_out * 37) % 100) as usize;
                        let want: Vec<u8> = (0..len).map(|i| (next_out as usize + i) as u8).collect();
                        assert_eq!(out, want, "message {next_out}");
                        next_out += 1;
                    }
                    Err(RingError::Empty) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
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
            let max = super::super::layout::max_message(cap) as usize;
            let (_mem, mut p, mut c) = ring(cap);
            let mut out = Vec::new();
            let shifts = if cfg!(miri) { (cap / 8).min(24) } else { cap / 8 };
            for shift in 0..shifts {
                // move the positions by `shift` frames of 0 bytes
                for _ in 0..shift % 3 {
                    p.push(&[]).unwrap();
                    c.pop_into(&mut out).unwrap();
                }
                let msg = vec![shift as u8; max];
                p.push(&msg).unwrap();
                c.pop_into(&mut out).unwrap();
                assert_eq!(out, msg);
            }
            assert!(matches!(p.push(&vec![0; max + 1]), Err(RingError::TooLarge { .. })));
        }
    }

    #[test]
    fn full_and_empty() {
        let (_mem, mut p, mut c) = ring(64);
        let mut out = Vec::new();
        assert_eq!(c.pop_into(&mut out), Err(RingError::Empty));
        p.push(&[1; 24]).unwrap(); // 32 bytes
        p.push(&[2; 24]).unwrap(); // 64: full
        assert_eq!(p.push(&[]), Err(RingError::Full));
        c.pop_into(&mut out).unwrap();
        assert_eq!(out, [1; 24]);
        p.push(&[3; 8]).unwrap();
        assert!(!p.is_drained().unwrap());
    }

    #[test]
    fn hostile_counters_are_corrupt_not_a_crash() {
        let (mem, mut p, mut c) = ring(128);
        let mut out = Vec::new();
        p.push(b"fine").unwrap();
        // a tail beyond the ring, a tail behind the head, a misaligned tail
        for bad in [1000u64, u64::MAX - 7, 3] {
            mem.header().tail.0.pos.store(bad, Ordering::Relaxed);
            c.cached_tail = c.head;
            assert!(matches!(c.pop_into(&mut out), Err(RingError::Corrupt(_))), "tail {bad}");
        }
        mem.header().head.0.pos.store(u64::MAX - 7, Ordering::Relaxed);
        for _ in 0..20 {
            match p.push(&[0; 40]) {
                Ok(()) => {}
                Err(RingError::Corrupt(_)) => return,
                Err(e) => panic!("{e:?}"),
            }
        }
        panic!("a head ahead of the tail was accepted");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 256 }))]

        /// Random sizes, pushed and popped in random bursts, wrapping a
        /// small ring many times: what comes out is what went in.
        #[test]
        fn random_sizes_wrap_and_arrive_intact(
            sizes in proptest::collection::vec(0usize..=120, 1..400),
            bursts in proptest::collection::vec(1usize..8, 1..50),
        ) {
            let (_mem, mut p, mut c) = ring(256);
            let mut sent = std::collections::VecDeque::new();
            let mut out = Vec::new();
            let (mut i, mut b) = (0, 0);
            while i < sizes.len() || !sent.is_empty() {
                for _ in 0..bursts[b % bursts.len()] {
                    let Some(&len) = sizes.get(i) else { break };
                    let msg: Vec<u8> = (0..len).map(|k| (i * 31 + k) as u8).collect();
                    match p.push(&msg) {
                        Ok(()) => { sent.push_back(msg); i += 1; }
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

    #[test]
    fn hostile_frames_are_corrupt_not_a_crash() {
        let (mem, mut p, mut c) = ring(128);
        let mut out = Vec::new();
        p.push(b"hello").unwrap();
        // overwrite the frame header with every kind of nonsense
        let cases: [(u32, u32); 5] = [
            (5, 0xdead_beef),     // unknown kind
            (1000, KIND_MESSAGE), // longer than committed
            (u32::MAX, KIND_MESSAGE),
            (0, KIND_PAD),   // padding that does not end the ring
            (120, KIND_PAD), // padding of the whole ring
        ];
        for (len, kind) in cases {
            p.buf().write_header(0, len, kind);
            assert!(
                matches!(c.pop_into(&mut out), Err(RingError::Corrupt(_))),
                "{len} {kind:#x}"
            );
        }
        drop(mem);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::super::layout::Header;
    use super::*;
    use std::sync::Arc;

    fn halves(cap: u64) -> (Producer, Consumer) {
        let hdr = HeaderRef::from_arc(Arc::new(*Header::new_boxed(cap)));
        let buf = Buf::new_loom(cap as usize);
        (
            Producer::new(hdr.clone(), buf.clone(), cap, 0),
            Consumer::new(hdr, buf, cap, 0),
        )
    }

    /// Three messages of different sizes through a ring that must wrap and
    /// pad: every interleaving delivers them intact and in order.
    #[test]
    fn messages_cross_threads_intact() {
        loom::model(|| {
            let (mut p, mut c) = halves(64);
            let sizes = [20usize, 12, 20];
            let t = loom::thread::spawn(move || {
                for (i, &len) in sizes.iter().enumerate() {
                    let msg = vec![i as u8 + 1; len];
                    loop {
                        match p.push(&msg) {
                            Ok(()) => break,
                            Err(RingError::Full) => loom::thread::yield_now(),
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                }
            });
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
            t.join().unwrap();
        });
    }
}
