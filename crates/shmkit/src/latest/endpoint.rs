//! What the writer and the readers share: the segment's spec, the header
//! and buffers of an open object, membership, the bounded read, leaving.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::segment::{Kind, Segment, Spec};
use crate::core::sync::Ordering;
use crate::error::{Error, Result, Target};

use super::area::Area;
use super::layout::{layout_of, max_size_of, Header, DATA_OFFSET, KEEP_NO, KEEP_UNSET, SLOTS};
use super::members;
use super::seqlock::{self, Attempt, Source};

/// How long a read keeps trying to get a copy that the writer did not
/// overwrite (or that a peer scribbling on the header lets through).
pub(crate) const READ_PATIENCE: Duration = Duration::from_secs(1);

/// The segment a latest value lives in; `capacity` is asked of a new one.
pub(crate) fn spec(mode: u32, allow_foreign: bool, capacity: Option<u64>) -> Spec {
    Spec {
        kind: Kind::LatestValue,
        slots: SLOTS,
        data_offset: DATA_OFFSET,
        capacity,
        mode,
        allow_foreign,
    }
}

/// The header of an open object (its first page is always mapped).
pub(crate) fn header(seg: &Segment) -> &Header {
    layout_of(&seg.map)
}

/// The buffers of an object mapped whole for values of `max` bytes.
pub(crate) fn area(seg: &Segment, max: u64) -> Area<'_> {
    Area::of_segment(seg, max)
}

/// The maximum size the header's capacity stands for, validated.
pub(crate) fn max_size(seg: &Segment, capacity: u64) -> Result<u64> {
    max_size_of(capacity).ok_or_else(|| seg.corrupt(format!("invalid capacity {capacity}")))
}

/// Takes part: this description's read lock on the members' byte.
pub(crate) fn join_members(seg: &Segment) -> Result<()> {
    members::join(&seg.shm).map_err(|e| Error::from_errno("fcntl(F_OFD_SETLK)", &seg.target, e))
}

/// Whether anybody else takes part (an error counts as "yes": then the
/// name stays).
pub(crate) fn others(seg: &Segment) -> bool {
    members::others(&seg.shm).unwrap_or(true)
}

/// Leaves the object: unless it is kept, removes its name if nobody else
/// takes part (see the module docs). An unsaid choice (a creator that died
/// before saying, or a reader's placeholder) counts as "remove".
pub(crate) fn leave(seg: &Segment) {
    let keep = header(seg).control.0.keep.load(Ordering::Relaxed);
    if keep == KEEP_NO || keep == KEEP_UNSET {
        let ino = rustix::fs::fstat(&seg.shm).map(|st| st.st_ino);
        if seg.unlink_if(|| !others(seg)) {
            // the bells that killed polling readers left beside it
            if let (Ok(ino), Target::Posix(name)) = (ino, &seg.target) {
                crate::core::bell::remove_of(name, ino);
            }
        }
    }
}

/// `Err(Interrupted)` once `flag` is set.
pub(crate) fn check_interrupt(flag: &Option<Arc<AtomicBool>>, target: &Target) -> Result<()> {
    match flag {
        Some(f) if f.load(std::sync::atomic::Ordering::Relaxed) => Err(Error::Interrupted { target: target.clone() }),
        _ => Ok(()),
    }
}

/// Reads the newest value through `f`, trying again while the writer
/// overwrites the copy: a few times at once, then yielding, then sleeping
/// 1 µs, 2 µs, … up to 1 ms between tries, for at most [`READ_PATIENCE`]
/// (then `TimedOut`). `None` if nothing was written.
pub(crate) fn read_stable<T>(
    seg: &Segment,
    max: u64,
    interrupt: &Option<Arc<AtomicBool>>,
    mut f: impl FnMut(Source<'_>) -> T,
) -> Result<Option<(u64, T)>> {
    let words = header(seg).words(max);
    let area = area(seg, max);
    let mut start: Option<Instant> = None;
    for attempt in 0u32.. {
        match seqlock::try_read_with(words, &area, &mut f) {
            Ok((v, t)) => {
                // What a shrink turned into zeros is not the value.
                seg.map.check_intact()?;
                return Ok(Some((v, t)));
            }
            Err(Attempt::Empty) => {
                seg.map.check_intact()?;
                return Ok(None);
            }
            Err(Attempt::Corrupt(why)) => return Err(seg.corrupt(why)),
            Err(Attempt::Retry) | Err(Attempt::Got(_)) => {}
        }
        match attempt {
            0..8 => std::hint::spin_loop(),
            8..16 => std::thread::yield_now(),
            _ => {
                let start = *start.get_or_insert_with(Instant::now);
                check_interrupt(interrupt, &seg.target)?;
                seg.map.check_intact()?;
                if start.elapsed() >= READ_PATIENCE {
                    return Err(Error::TimedOut {
                        target: seg.target.clone(),
                        waiting_for: "a copy of the value that the writer did not overwrite meanwhile",
                    });
                }
                std::thread::sleep(Duration::from_micros(1 << (attempt - 16).min(10)));
            }
        }
    }
    unreachable!("the loop returns")
}

/// The fuzz harness: arbitrary bytes as a latest value's header and
/// buffers, rewritten by a "peer" between a writer's writes and a reader's
/// reads. It must end without a panic or an out-of-bounds access whatever
/// the bytes; and whenever nobody scribbled since the last write, a read
/// must return exactly that write.
#[cfg(any(test, feature = "fuzz"))]
pub(crate) mod fuzz {
    use super::super::area::heap::HeapValue;
    use super::super::info;
    use super::super::layout::capacity_for;
    use super::super::seqlock::{self, Attempt, MAX_VERSION};

    /// Runs the harness on `data`.
    pub(crate) fn run(data: &[u8]) {
        let mut input = data.iter().copied();
        let mut next = move || input.next();
        let shape = next().unwrap_or(0);
        let max = 1 + usize::from(shape % 48);
        // mostly the 64 buffers of small values; now and then 16 or 4
        let mem = match shape >> 6 {
            0 => HeapValue::with_buffers(max, 4),
            1 => HeapValue::with_buffers(max, 16),
            _ => HeapValue::new(max),
        };
        let (words, area) = (mem.words(), mem.area());
        // Half the runs start from arbitrary memory; the others from a
        // fresh object, so that the scribbles hit a working one.
        if next().unwrap_or(0) % 2 == 0 {
            for i in 0..mem.len() {
                match next() {
                    Some(b) => mem.scribble(i, b),
                    None => break,
                }
            }
        } else {
            let cap = &mem.header().meta.capacity;
            cap.store(capacity_for(max as u64), std::sync::atomic::Ordering::Relaxed);
        }
        // The writer joins as a real one does: from the published version,
        // if it is one.
        let mut version = match seqlock::version(words) {
            Ok(v) if v < MAX_VERSION => Some(v),
            _ => None,
        };
        let mut last: Option<(u64, Vec<u8>)> = None;
        let mut clean = false;
        let mut out = Vec::new();
        for _ in 0..256 {
            let Some(op) = next() else { break };
            match op % 6 {
                0 | 1 => {
                    let Some(v) = version.filter(|&v| v < MAX_VERSION) else {
                        continue;
                    };
                    let len = usize::from(next().unwrap_or(0)) % (max + 1);
                    let value = vec![op; len];
                    seqlock::write(words, &area, v + 1, &value);
                    version = Some(v + 1);
                    last = Some((v + 1, value));
                    clean = true;
                }
                2 | 3 => match seqlock::try_read(words, &area, &mut out) {
                    Attempt::Got(v) => {
                        assert!(out.len() <= max);
                        if clean {
                            let (n, value) = last.as_ref().expect("a write made it clean");
                            assert_eq!((v, &out), (*n, value), "not the last write");
                        }
                    }
                    other => assert!(!clean, "{other:?} after a write, with nobody scribbling"),
                },
                4 => {
                    let got = seqlock::try_read_with(words, &area, |src| src.view().to_vec());
                    if let Ok((_, bytes)) = got {
                        assert!(bytes.len() <= max);
                    }
                    let i = info::snapshot(mem.header());
                    assert!(i.len.is_none_or(|l| l <= i.max_size));
                }
                _ => {
                    // the peer writes a byte somewhere (mostly the header's
                    // lines: control, newer, slots, heads, roster)
                    let hi = usize::from(next().unwrap_or(0));
                    let at = if hi % 4 == 0 { hi << 8 } else { (hi / 4 % 13 + 1) * 128 };
                    let low = usize::from(next().unwrap_or(0)) % 128;
                    mem.scribble(at | low, next().unwrap_or(0xff));
                    clean = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 512 }))]

        /// Arbitrary memory and a scribbling peer: errors, never a panic or
        /// an out-of-bounds access; exact values whenever nobody scribbled.
        #[test]
        fn arbitrary_memory_never_crashes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..6000)) {
            super::fuzz::run(&data);
        }
    }

    /// The harness over plain random bytes too (CI does not run cargo-fuzz).
    #[test]
    fn the_fuzz_harness_survives_random_bytes() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut data = vec![0u8; 8192];
        for round in 0..300 {
            for b in data.iter_mut() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                *b = rng as u8;
            }
            // short inputs and long ones, fresh memory and arbitrary
            let len = (round * 97) % data.len();
            super::fuzz::run(&data[..len]);
        }
    }
}
