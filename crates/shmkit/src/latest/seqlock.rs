//! The latest-value protocol: a seqlock over `B` buffers (2 or more; a
//! shared object has `layout::buffers_for(max)` of them).
//!
//! This module knows nothing of processes, files, futexes or roles: it is
//! given the shared `version` word, the buffers' heads and their bytes (an
//! [`Area`]), so the same code runs over a shared object, over heap memory in
//! unit tests and fuzzing, and under loom.
//!
//! # The protocol
//! Version `n` (1, 2, …; 0 means "never written") lives in buffer
//! `n % B`. Each buffer has a head: a sequence word `seq` and the
//! value's length. The writer of version `n`
//!
//! 1. stores `seq = 2n - 1` (odd: being written), then a Release fence;
//! 2. stores the length and copies the bytes;
//! 3. stores `seq = 2n` (even: complete) with Release;
//! 4. publishes `version = n` with Release.
//!
//! A reader loads `version` (Acquire) = `v`, then the head of buffer
//! `v % B`: its `seq` must be `2v` (Acquire), its length at most the
//! maximum; it copies the bytes, issues an Acquire fence and loads `seq`
//! again: unchanged, the copy is version `v` exactly as written by one
//! `write`. Changed, the writer has come round to this buffer again (it
//! wrote `B - 1` newer versions meanwhile and started the next): the
//! copy may be mixed, and the reader tries again with the newest version.
//!
//! The fences make that exact: if the copy saw any byte of a later write,
//! that byte was stored after the writer's fence, which follows its odd
//! `seq`; the reader's fence after the copy then orders that odd store
//! before the second load of `seq`, which sees it (or later) and differs.
//!
//! # A writer that dies
//! The writer never touches the buffer of the published version: it writes
//! the next buffer and publishes only once that is complete. A writer killed
//! at any instruction leaves the published version whole; the next writer
//! reads `version` and continues from it (rewriting an unpublished buffer
//! its predecessor may have left odd).
//!
//! # Untrusted memory
//! A peer may write anything anywhere. The reader reads each word once and
//! checks it: `version` at most [`MAX_VERSION`], the buffer's `seq` never
//! older than the version that names it (a writer completes a buffer before
//! it publishes it), the length at most the maximum. What fails is
//! [`Attempt::Corrupt`]; a peer that keeps `seq` moving makes the reader
//! retry, which its caller bounds. Bytes are copied through
//! [`View`](crate::map::View)s, never through a Rust reference.

use super::area::Area;
use crate::core::sync::{fence, AtomicU64, Ordering};

/// The largest version the format allows (`2 * version` must fit in a
/// `u64`): more than four billion values a second for a century.
pub(crate) const MAX_VERSION: u64 = 1 << 62;

/// A buffer's head (16 bytes, `repr(C)`): written by the writer only.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct BufHead {
    /// `2n - 1` while version `n` is written into the buffer, `2n` once it
    /// is complete; 0 before the first.
    pub seq: AtomicU64,
    /// The length of the value in the buffer.
    pub len: AtomicU64,
}

impl BufHead {
    /// A zeroed head (the loom model's memory).
    #[cfg(loom)]
    pub(crate) fn new() -> BufHead {
        BufHead {
            seq: AtomicU64::new(0),
            len: AtomicU64::new(0),
        }
    }
}

/// The shared words of one latest value; where they live is the caller's
/// business.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Words<'a> {
    /// The newest complete version; 0 before the first write.
    pub version: &'a AtomicU64,
    /// The buffers' heads, one per buffer of the [`Area`] (2 or more): a
    /// reader's copy is disturbed only when the writer completes `B - 1`
    /// newer values and starts another while it copies. (The loom model
    /// uses 2, so that two writes already lap a reader.)
    pub heads: &'a [BufHead],
}

impl Words<'_> {
    /// The buffer that holds version `n` (the number of buffers is a
    /// power of two). Versions go round the buffers in an order that puts
    /// the heads of consecutive versions on different cache lines (four
    /// 16-byte heads share a line): the line of the head a reader checks is
    /// not the one the writer marks next, and rewrites only `B / 4` versions
    /// later.
    #[inline]
    pub(crate) fn buffer_of(&self, n: u64) -> usize {
        let b = self.heads.len();
        debug_assert!(b.is_power_of_two());
        let idx = (n as usize) & (b - 1);
        let per_line = b.min(4);
        let lines = b / per_line;
        (idx & (lines - 1)) * per_line + (idx >> lines.trailing_zeros())
    }
}

/// Writes `data` (at most `area.max()` bytes: the caller checks) as version
/// `next`, which must be one more than the version published now, and
/// publishes it. Never waits.
#[cfg(any(test, feature = "fuzz", loom))]
pub(crate) fn write(words: Words<'_>, area: &Area<'_>, next: u64, data: &[u8]) {
    write_with(words, area, next, data.len(), |b| area.write(b, data));
}

/// Like [`write`], with `fill` writing the `len` bytes into buffer `b`
/// (given to it) in place. If `fill` panics, nothing is published: the
/// buffer stays marked as being written, as a dead writer's does.
pub(crate) fn write_with<T>(
    words: Words<'_>,
    area: &Area<'_>,
    next: u64,
    len: usize,
    fill: impl FnOnce(usize) -> T,
) -> T {
    debug_assert!((1..=MAX_VERSION).contains(&next) && len <= area.max());
    debug_assert!(words.heads.len() == area.buffers());
    let b = words.buffer_of(next);
    let head = &words.heads[b];
    head.seq.store(2 * next - 1, Ordering::Relaxed);
    // Release fence: the odd mark is ordered before every byte below, so a
    // reader whose copy sees one of them sees the mark when it checks again.
    fence(Ordering::Release);
    head.len.store(len as u64, Ordering::Relaxed);
    let result = fill(b);
    // Release: the length and bytes above are visible to whoever sees 2n.
    head.seq.store(2 * next, Ordering::Release);
    // Release: ... and to whoever sees the new version.
    words.version.store(next, Ordering::Release);
    result
}

/// The outcome of one attempt to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Nothing was ever written.
    Empty,
    /// The output holds this version's value, complete.
    #[cfg_attr(not(any(test, feature = "fuzz", loom)), allow(dead_code))]
    Got(u64),
    /// The writer overwrote the buffer during the copy: try again.
    Retry,
    /// The shared words break the protocol.
    Corrupt(String),
}

/// The version published now (validated), without reading the value.
pub(crate) fn version(words: Words<'_>) -> Result<u64, String> {
    // Acquire: pairs with the writer's Release store of the version.
    let v = words.version.load(Ordering::Acquire);
    if v > MAX_VERSION {
        return Err(format!("version {v} is out of range"));
    }
    Ok(v)
}

/// One attempt to copy the newest value into `out` (replacing its
/// contents). On anything but [`Attempt::Got`], `out` holds nothing
/// meaningful.
#[cfg(any(test, feature = "fuzz", loom))]
pub(crate) fn try_read(words: Words<'_>, area: &Area<'_>, out: &mut Vec<u8>) -> Attempt {
    try_read_with(words, area, |src| {
        src.read_to_vec(out);
    })
    .map_or_else(|a| a, |(v, ())| Attempt::Got(v))
}

/// One attempt to hand the newest value to `f` as a [`Source`]; `f`'s
/// result counts only with `Ok`: the bytes it saw were version `v` exactly.
/// `f` may see bytes that a writer is changing (then the attempt is
/// `Err(Attempt::Retry)` and its result is dropped).
pub(crate) fn try_read_with<T>(
    words: Words<'_>,
    area: &Area<'_>,
    f: impl FnOnce(Source<'_>) -> T,
) -> Result<(u64, T), Attempt> {
    let v = version(words).map_err(Attempt::Corrupt)?;
    if v == 0 {
        return Err(Attempt::Empty);
    }
    let b = words.buffer_of(v);
    let head = &words.heads[b];
    let want = 2 * v;
    // Acquire: pairs with the writer's Release of `2v`: the length and the
    // bytes of version v (or later ones) are visible below.
    let s1 = head.seq.load(Ordering::Acquire);
    if s1 != want {
        return Err(if s1 < want {
            Attempt::Corrupt(format!(
                "buffer {b} holds sequence {s1}, older than the published version {v}"
            ))
        } else {
            Attempt::Retry
        });
    }
    let len = head.len.load(Ordering::Relaxed);
    if len > area.max() as u64 {
        // Acquire fence: a length from a newer write shows in `seq`.
        fence(Ordering::Acquire);
        return Err(if head.seq.load(Ordering::Relaxed) != s1 {
            Attempt::Retry
        } else {
            Attempt::Corrupt(format!(
                "a value of {len} bytes is longer than the maximum, {}",
                area.max()
            ))
        });
    }
    let result = f(Source {
        area,
        buffer: b,
        len: len as usize,
    });
    // Acquire fence: any byte the copy took from a newer write makes the
    // load below see that write's odd mark (see the module docs).
    fence(Ordering::Acquire);
    if head.seq.load(Ordering::Relaxed) != s1 {
        return Err(Attempt::Retry);
    }
    Ok((v, result))
}

/// The bytes of one buffer's value, as a reader sees them during an attempt.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    area: &'a Area<'a>,
    buffer: usize,
    len: usize,
}

impl<'a> Source<'a> {
    /// Replaces `out`'s contents with a copy of the value (no zero-fill
    /// first).
    pub(crate) fn read_to_vec(&self, out: &mut Vec<u8>) {
        #[cfg(not(loom))]
        self.view().read_to_vec(out);
        #[cfg(loom)]
        {
            out.clear();
            out.resize(self.len, 0);
            self.area.read(self.buffer, out);
        }
    }

    /// A view of the value's bytes in shared memory.
    #[cfg(not(loom))]
    pub(crate) fn view(&self) -> crate::map::View<'a> {
        self.area.view(self.buffer, self.len)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::area::heap::HeapValue;
    use super::*;

    fn value(n: u64, len: usize) -> Vec<u8> {
        (0..len).map(|i| (n as usize * 31 + i) as u8).collect()
    }

    #[test]
    fn versions_go_round_every_buffer_with_neighbours_apart() {
        for (max, buffers) in [(8, 2), (8, 4), (8, 16), (8, 64)] {
            let mem = HeapValue::with_buffers(max, buffers);
            let words = mem.words();
            let mut seen = vec![false; buffers];
            for n in 0..buffers as u64 {
                let b = words.buffer_of(n);
                assert!(!seen[b], "buffer {b} twice in one round of {buffers}");
                seen[b] = true;
                assert_eq!(words.buffer_of(n + buffers as u64), b);
                if buffers > 4 {
                    assert_ne!(b / 4, words.buffer_of(n + 1) / 4, "neighbours share a line");
                }
            }
        }
    }

    #[test]
    fn nothing_then_each_write_in_turn() {
        let mem = HeapValue::new(100);
        let (words, area) = (mem.words(), mem.area());
        let mut out = vec![1, 2, 3];
        assert_eq!(try_read(words, &area, &mut out), Attempt::Empty);
        for n in 1..=20u64 {
            let v = value(n, (n as usize * 7) % 101);
            write(words, &area, n, &v);
            assert_eq!(try_read(words, &area, &mut out), Attempt::Got(n));
            assert_eq!(out, v);
            assert_eq!(version(words), Ok(n));
        }
        write(words, &area, 21, &[]);
        assert_eq!(try_read(words, &area, &mut out), Attempt::Got(21));
        assert!(out.is_empty());
    }

    #[test]
    fn a_write_in_progress_leaves_the_published_value_whole() {
        let mem = HeapValue::new(8);
        let (words, area) = (mem.words(), mem.area());
        write(words, &area, 1, b"complete");
        // a writer dies after marking buffer 2 and copying half
        let b2 = words.buffer_of(2);
        words.heads[b2].seq.store(3, Ordering::Relaxed);
        area.write(b2, b"torn");
        let mut out = Vec::new();
        assert_eq!(try_read(words, &area, &mut out), Attempt::Got(1));
        assert_eq!(out, b"complete");
        // the next writer continues from the published version
        write(words, &area, 2, b"next one");
        assert_eq!(try_read(words, &area, &mut out), Attempt::Got(2));
        assert_eq!(out, b"next one");
    }

    #[test]
    fn a_lapped_copy_is_retried_and_a_broken_head_is_corrupt() {
        // four buffers, as large values have
        let mem = HeapValue::with_buffers(8, 4);
        let (words, area) = (mem.words(), mem.area());
        write(words, &area, 1, b"one");
        // the writer comes round to buffer 1 while a reader copies it
        let r = try_read_with(words, &area, |_| write(words, &area, 5, b"five"));
        assert_eq!(r.map(|(v, ())| v), Err(Attempt::Retry));
        // ... four more writes: buffer 1 again, while the reader copies
        for n in 2..=4 {
            write(words, &area, n, b"x");
        }
        let r = try_read_with(words, &area, |_| {
            write(words, &area, 5, b"five");
            write(words, &area, 6, b"six");
            write(words, &area, 7, b"seven");
            write(words, &area, 8, b"eight");
            write(words, &area, 9, b"nine");
        });
        assert_eq!(r.map(|(v, ())| v), Err(Attempt::Retry));
        let mut out = Vec::new();
        assert_eq!(try_read(words, &area, &mut out), Attempt::Got(9));
        assert_eq!(out, b"nine");
        // a peer's scribbles
        words.heads[1].len.store(9, Ordering::Relaxed);
        assert!(matches!(try_read(words, &area, &mut out), Attempt::Corrupt(_)));
        words.heads[1].len.store(4, Ordering::Relaxed);
        words.heads[1].seq.store(4, Ordering::Relaxed);
        assert!(matches!(try_read(words, &area, &mut out), Attempt::Corrupt(_)));
        words.version.store(u64::MAX, Ordering::Relaxed);
        assert!(matches!(try_read(words, &area, &mut out), Attempt::Corrupt(_)));
        words.heads[1].seq.store(u64::MAX, Ordering::Relaxed);
        words.version.store(9, Ordering::Relaxed);
        assert_eq!(try_read(words, &area, &mut out), Attempt::Retry);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 256 }))]

        /// Random writes and reads, with writers that die part-way (a
        /// marked buffer, half-copied bytes) between them: a reader always
        /// gets the last complete value, exactly, with its version.
        #[test]
        fn random_writes_reads_and_deaths(
            max in 1usize..80,
            ops in proptest::collection::vec((0u8..4, 0usize..100, proptest::prelude::any::<u8>()), 1..200),
        ) {
            let mem = HeapValue::new(max);
            let (words, area) = (mem.words(), mem.area());
            let mut published: Option<(u64, Vec<u8>)> = None;
            let mut next = 1u64;
            let mut out = Vec::new();
            for (op, len, byte) in ops {
                let len = len % (max + 1);
                match op {
                    0 | 1 => {
                        let v: Vec<u8> = (0..len).map(|i| byte.wrapping_add(i as u8)).collect();
                        write(words, &area, next, &v);
                        published = Some((next, v));
                        next += 1;
                    }
                    2 => {
                        // a writer dies during version `next`, after `len` bytes
                        let b = words.buffer_of(next);
                        words.heads[b].seq.store(2 * next - 1, Ordering::Relaxed);
                        words.heads[b].len.store(len as u64, Ordering::Relaxed);
                        area.write(b, &vec![byte; len]);
                    }
                    _ => {
                        let got = try_read(words, &area, &mut out);
                        match &published {
                            None => proptest::prop_assert_eq!(got, Attempt::Empty),
                            Some((n, v)) => {
                                proptest::prop_assert_eq!(got, Attempt::Got(*n));
                                proptest::prop_assert_eq!(&out, v);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The protocol under the loom model checker, over two buffers (so that
/// two writes already come round to the buffer a reader copies): a writer
/// writes twice while a reader reads twice; in every interleaving the
/// reader gets nothing, or one complete value with its own version, never a
/// mix of two writes, and afterwards the last complete value.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    struct Shared {
        version: AtomicU64,
        heads: [BufHead; 2],
        area: Area<'static>,
    }

    impl Shared {
        fn words(&self) -> Words<'_> {
            Words {
                version: &self.version,
                heads: &self.heads,
            }
        }
    }

    /// Value `n`: 16 bytes (two loom words, so that a mix of two writes
    /// would show), `n` in every byte.
    fn value(n: u64) -> Vec<u8> {
        vec![n as u8; 16]
    }

    /// `before` values are written first; then a writer thread writes two
    /// more (and, if `dies`, is "killed" half-way through a third) while
    /// this thread reads twice.
    fn model(before: u64, dies: bool) {
        loom::model(move || {
            let shared = Arc::new(Shared {
                version: AtomicU64::new(0),
                heads: [BufHead::new(), BufHead::new()],
                area: Area::new_loom(2, 16),
            });
            for n in 1..=before {
                write(shared.words(), &shared.area, n, &value(n));
            }
            let w = shared.clone();
            let writer = loom::thread::spawn(move || {
                for n in before + 1..=before + 2 {
                    write(w.words(), &w.area, n, &value(n));
                }
                if dies {
                    // the next write stops after its mark and half the bytes
                    let n = before + 3;
                    let b = w.words().buffer_of(n);
                    w.heads[b].seq.store(2 * n - 1, Ordering::Relaxed);
                    fence(Ordering::Release);
                    w.area.write(b, &[0xee; 8]);
                }
            });
            let mut out = Vec::new();
            for _ in 0..2 {
                match try_read(shared.words(), &shared.area, &mut out) {
                    Attempt::Empty => assert_eq!(before, 0, "a value was published before"),
                    Attempt::Got(v) => {
                        assert!(v >= before.max(1) && v <= before + 2, "version {v}");
                        assert_eq!(out, value(v), "a mixed value");
                    }
                    Attempt::Retry => {}
                    Attempt::Corrupt(why) => panic!("corrupt: {why}"),
                }
            }
            writer.join().unwrap();
            let last = before + 2;
            assert_eq!(try_read(shared.words(), &shared.area, &mut out), Attempt::Got(last));
            assert_eq!(out, value(last));
        });
    }

    /// Polled readers share one poller bit of the `newer` event (readers
    /// have no seats): two pollers each drain their bell, arm, and look at
    /// the version; the writer writes one value and notifies, ringing every
    /// bell if it consumed the bit. Whenever a poller ends up waiting
    /// without having seen the value, its bell was rung. `disarm`: a
    /// poller that found the value clears the shared bit, as a channel's
    /// one poller may — which loses the other poller's wake-up (the guard
    /// is never to disarm a shared bit).
    fn poll_model(disarm: bool) {
        use crate::core::event::{Event, POLLER};
        use loom::sync::atomic::AtomicBool;
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            let shared = Arc::new(Shared {
                version: AtomicU64::new(0),
                heads: [BufHead::new(), BufHead::new()],
                area: Area::new_loom(2, 8),
            });
            let event = Arc::new(Event::new());
            let bells: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
            let pollers: Vec<_> = (0..2)
                .map(|i| {
                    let (s, e, b) = (shared.clone(), event.clone(), bells.clone());
                    loom::thread::spawn(move || {
                        b[i].store(false, Ordering::Relaxed); // drain
                        e.arm_poll(POLLER);
                        let saw = version(s.words()).unwrap() >= 1;
                        if saw && disarm {
                            e.disarm_poll(POLLER);
                        }
                        saw
                    })
                })
                .collect();
            write(shared.words(), &shared.area, 1, &[1; 8]);
            let b = bells.clone();
            event.notify_or_ring(false, || {
                for bell in b.iter() {
                    bell.store(true, Ordering::Release);
                }
            });
            for (i, p) in pollers.into_iter().enumerate() {
                let saw = p.join().unwrap();
                if !saw {
                    assert!(bells[i].load(Ordering::Acquire), "poller {i} waits and was not rung");
                }
            }
        });
    }

    #[test]
    fn loom_latest_polled_readers_are_rung() {
        poll_model(false);
    }

    /// The guard removed: the model finds the lost wake-up.
    #[test]
    #[should_panic(expected = "was not rung")]
    fn loom_latest_a_disarmed_shared_bit_loses_a_wake_up() {
        poll_model(true);
    }

    /// From an empty value.
    #[test]
    fn loom_latest_two_writes_never_mix() {
        model(0, false);
    }

    /// A value is there: the second write reuses the buffer the reader
    /// copies.
    #[test]
    fn loom_latest_a_lapped_reader_never_mixes() {
        model(1, false);
    }

    /// The writer dies half-way through a third value, in the buffer of
    /// the one a reader may be copying: the last complete value stays.
    #[test]
    fn loom_latest_a_dead_writer_leaves_the_last_value_whole() {
        model(1, true);
    }
}
