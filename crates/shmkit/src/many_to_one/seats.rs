//! Seats: N rings into one receiver, handed from sender to sender.
//!
//! This module knows nothing of processes or files: it is given a
//! [`Region`] and keeps the receiver's side ([`Collector`]) and a sender's
//! ([`claim_ring`], [`ring_ready`]). The many-to-one receiver and the
//! service's server are both a `Collector`; senders and clients both claim
//! a seat's rings this way.
//!
//! # Fairness: round robin
//! [`Collector::poll`] looks at the seats in turn, starting after the seat
//! it delivered from last, and delivers the first frame it finds: with k
//! busy senders each gets every k-th message, however fast one of them is.
//! Per-seat order is the ring's order.
//!
//! # Handing a seat to a new sender
//! A sender that dies (or leaves) may leave frames in its ring; the
//! receiver delivers them all, under the old sender's identity. A new
//! sender that claims the seat (the participant slot says the old one is
//! gone) must not write into that ring, nor be confused with the old one:
//!
//! 1. The new sender stores `want = gen + 1` and wakes the receiver. (On a
//!    seat never claimed before, with `want == gen`, it uses the ring as it
//!    is: nobody wrote into it.)
//! 2. The receiver, finding the ring empty and `want != gen`, zeroes the
//!    seat's rings and counters, starts its own halves at position 0, and
//!    stores `gen = want` (Release: the zeroes happen before).
//! 3. The sender, seeing `gen == want` (Acquire), stores its pid and starts
//!    its ring at position 0.
//!
//! Only the receiver ever resets a ring, and only when the sender that
//! wrote it is gone and the one waiting has not written yet, so no ring
//! changes under a half that uses it. Messages carry the generation, so the
//! old sender's last messages and the new sender's first ones are told
//! apart (`SenderId`).
//!
//! A hostile process can write anything into `gen` and `want`: it can make
//! the receiver reset a ring early (the frames in it are lost) or a sender
//! wait for ever; never make a half read or write outside its ring.

use crate::core::ring::{Buf, Consumer, Frame, Producer, RingError};
use crate::core::sync::Ordering;

use super::layout::{Region, RING_IN, RING_OUT};

/// The receiver's (or server's) halves of one seat.
#[derive(Debug)]
struct SeatState {
    /// The generation the halves read (and write).
    gen: u32,
    input: Consumer,
    /// The server's half of the response ring (services only).
    output: Option<Producer>,
}

/// A frame found by [`Collector::poll`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming {
    pub seat: usize,
    pub gen: u32,
    pub frame: Frame,
}

/// The receiver's side of every seat.
#[derive(Debug)]
pub(crate) struct Collector {
    region: Region,
    seats: Vec<SeatState>,
    /// The seat the next poll looks at first.
    next: usize,
    /// This process is registered for membarriers (and announced so on
    /// every seat's events): see [`fenceless_for`](Self::fenceless_for).
    registered: bool,
}

impl Collector {
    /// The receiver's halves over `region`, as the rings are now (a new
    /// receiver: every ring is in its first generation, at position 0).
    /// `registered`: this process is registered for global expedited
    /// membarriers and announced it on every seat's events before it took
    /// part.
    pub(crate) fn new(region: Region, registered: bool) -> Collector {
        let seats = (0..region.geo().seats)
            .map(|s| fresh(&region, s, region.ctl(s).gen.load(Ordering::Acquire)))
            .collect();
        Collector {
            region,
            seats,
            next: 0,
            registered,
        }
    }

    /// Whether this side may notify seat `s`'s events (`space`, `reply`)
    /// without a fence: it is registered, and so is the sender that wrote
    /// the frames it answers — which stored so in the seat before its first
    /// frame, so a load after taking one of them sees it. The sender then
    /// supplies the barrier when it sleeps (see `core::event`).
    #[inline]
    pub(crate) fn fenceless_for(&self, s: usize) -> bool {
        self.registered && self.region.ctl(s).fenceless.load(Ordering::Relaxed) != 0
    }

    /// The region.
    #[cfg(test)]
    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// One look at every seat, round robin: the first frame found.
    #[inline]
    pub(crate) fn poll(&mut self) -> Result<Option<Incoming>, RingError> {
        let n = self.seats.len();
        let mut s = self.next;
        for _ in 0..n {
            let st = &mut self.seats[s];
            match st.input.peek() {
                Ok(frame) => {
                    self.next = if s + 1 == n { 0 } else { s + 1 };
                    return Ok(Some(Incoming {
                        seat: s,
                        gen: st.gen,
                        frame,
                    }));
                }
                Err(RingError::Empty) => {}
                Err(e) => return Err(e),
            }
            s = if s + 1 == n { 0 } else { s + 1 };
        }
        Ok(None)
    }

    /// For a receiver that found nothing: `Corrupt` if a sender's counter
    /// claims frames the headers do not show; and every seat whose new
    /// sender waits for a fresh ring, and whose ring is drained, is reset.
    /// Returns the seats reset.
    pub(crate) fn settle(&mut self) -> Result<Vec<usize>, RingError> {
        let mut reset = Vec::new();
        for s in 0..self.seats.len() {
            let st = &mut self.seats[s];
            st.input.check_stalled()?;
            // Acquire: the new sender's claim (after the old sender's last
            // commit) happens before.
            let want = self.region.ctl(s).want.load(Ordering::Acquire);
            if want == st.gen {
                continue;
            }
            match st.input.peek() {
                Ok(_) => continue, // the old sender's frames first
                Err(RingError::Empty) => {}
                Err(e) => return Err(e),
            }
            self.reset(s, want);
            reset.push(s);
        }
        Ok(reset)
    }

    /// Zeroes seat `s`'s rings and counters and starts generation `gen`.
    fn reset(&mut self, s: usize, gen: u32) {
        let region = self.region;
        for ring in 0..region.geo().rings {
            let buf = region.buf(s, ring);
            for at in (0..region.geo().cap as usize).step_by(8) {
                buf.store_word(at, 0, Ordering::Relaxed);
            }
        }
        for k in 0..2 * region.geo().rings {
            let c = region.counter(s, k);
            let c = c.get();
            c.pos.store(0, Ordering::Relaxed);
            c.messages.store(0, Ordering::Relaxed);
            c.bytes.store(0, Ordering::Relaxed);
        }
        self.seats[s] = fresh(&region, s, gen);
        let ctl = region.ctl(s);
        ctl.pid.store(0, Ordering::Relaxed);
        // Release: the zeroes above happen before the sender that
        // Acquire-loads `gen` writes its first frame.
        ctl.gen.store(gen, Ordering::Release);
        ctl.space.notify(false);
    }

    /// Gives frame `inc` back to its sender (who is told by the caller:
    /// `receiver::release`).
    #[inline]
    pub(crate) fn release(&mut self, inc: &Incoming) {
        self.seats[inc.seat].input.release(inc.frame);
    }

    /// Seat `s`'s incoming ring, whose bytes the frames [`poll`](Self::poll)
    /// finds lie in: made (and its bounds checked) once per generation, when
    /// the seat's halves are, not once per frame. A pointer and a length,
    /// not a reference: the bytes are read by copies only.
    #[inline]
    pub(crate) fn input_buf(&self, s: usize) -> &Buf {
        self.seats[s].input.buf()
    }

    /// The generation seat `s` is in, as this side knows it.
    pub(crate) fn gen(&self, s: usize) -> u32 {
        self.seats[s].gen
    }

    /// The response ring's half of seat `s` (services).
    pub(crate) fn output(&mut self, s: usize) -> Option<&mut Producer> {
        self.seats[s].output.as_mut()
    }

    /// The number of seats.
    pub(crate) fn seats(&self) -> usize {
        self.seats.len()
    }

    /// Messages committed and not yet delivered, over every seat.
    pub(crate) fn in_flight(&self) -> u64 {
        self.seats.iter().map(|st| st.input.in_flight()).sum()
    }
}

/// The receiver's halves of seat `s`, at position 0 of generation `gen`.
fn fresh(region: &Region, s: usize, gen: u32) -> SeatState {
    let cap = region.geo().cap;
    let input = Consumer::new(region.counter(s, 1), region.counter(s, 0), region.buf(s, RING_IN), cap);
    let output = (region.geo().rings > 1).then(|| {
        Producer::new(
            region.counter(s, 2),
            vec![region.counter(s, 3)],
            region.buf(s, RING_OUT),
            cap,
        )
    });
    SeatState { gen, input, output }
}

/// A sender that has claimed seat `s` asks for its rings: returns the
/// generation to wait for with [`ring_ready`]. `fresh`: the seat was never
/// claimed before, so its rings are unwritten and usable at once.
pub(crate) fn claim_ring(region: &Region, s: usize, fresh: bool) -> u32 {
    let ctl = region.ctl(s);
    let gen = ctl.gen.load(Ordering::Acquire);
    if fresh && ctl.want.load(Ordering::Acquire) == gen {
        return gen;
    }
    let want = gen.wrapping_add(1);
    // Release: the claim happens before the receiver's reset.
    ctl.want.store(want, Ordering::Release);
    region.top().data.notify_always();
    want
}

/// Whether generation `gen` of seat `s` has started; then stores this
/// sender's pid for the receiver (display only).
pub(crate) fn ring_ready(region: &Region, s: usize, gen: u32, pid: u32) -> bool {
    let ctl = region.ctl(s);
    // Acquire: the receiver's zeroes happen before our first write.
    if ctl.gen.load(Ordering::Acquire) != gen {
        return false;
    }
    ctl.pid.store(pid, Ordering::Relaxed);
    true
}

/// A sender's half of seat `s`'s incoming ring, at position 0.
pub(crate) fn sender_half(region: &Region, s: usize) -> Producer {
    Producer::new(
        region.counter(s, 0),
        vec![region.counter(s, 1)],
        region.buf(s, RING_IN),
        region.geo().cap,
    )
}

/// A client's half of seat `s`'s response ring, at position 0.
pub(crate) fn client_half(region: &Region, s: usize) -> Consumer {
    Consumer::new(
        region.counter(s, 3),
        region.counter(s, 2),
        region.buf(s, RING_OUT),
        region.geo().cap,
    )
}

/// The fuzz harness: arbitrary bytes as the header and rings of an object
/// with two or three seats, rewritten by a "peer" between the operations of
/// a receiver and its senders (which join, write and leave). It must end
/// without a panic, whatever the bytes.
#[cfg(any(test, feature = "fuzz"))]
pub(crate) mod fuzz {
    use super::*;
    use crate::many_to_one::layout::{Geometry, HeapRegion};

    /// Runs the harness on `data`; `rings`: 1 (many-to-one) or 2 (service).
    pub(crate) fn run(data: &[u8], rings: usize) {
        let mut input = data.iter().copied();
        let mut next = move || input.next();
        let geo = Geometry {
            seats: 2 + usize::from(next().unwrap_or(0) % 2),
            rings,
            cap: 64 << (next().unwrap_or(0) % 4),
        };
        let mem = HeapRegion::new(geo);
        let region = mem.region();
        let size = geo.data_offset() + geo.data_len().unwrap() as usize;
        if next().unwrap_or(0) % 2 == 0 {
            for i in 0..size.min(4096) {
                match next() {
                    Some(b) => mem.scribble(geo.seats_at() + i, b),
                    None => break,
                }
            }
        }
        let mut rx = Collector::new(region, false);
        let mut senders: Vec<Option<(u32, Option<Producer>)>> = (0..geo.seats).map(|_| None).collect();
        let mut out = Vec::new();
        for _ in 0..512 {
            let Some(op) = next() else { break };
            let s = usize::from(next().unwrap_or(0)) % geo.seats;
            match op % 7 {
                0 => {
                    // a sender joins seat s (or the one there leaves)
                    senders[s] = match senders[s] {
                        None => Some((claim_ring(&region, s, op & 8 != 0), None)),
                        Some(_) => None,
                    };
                }
                1 | 2 => {
                    if let Some((gen, half)) = &mut senders[s] {
                        if half.is_none() && ring_ready(&region, s, *gen, 7) {
                            *half = Some(sender_half(&region, s));
                        }
                        if let Some(p) = half {
                            let len = usize::from(next().unwrap_or(0));
                            let _ = p.push(&vec![op; len]);
                        }
                    }
                }
                3 | 4 => match rx.poll() {
                    Ok(Some(inc)) => {
                        assert!(inc.frame.at + inc.frame.len <= geo.cap as usize);
                        out.clear();
                        region
                            .buf(inc.seat, RING_IN)
                            .append_to(inc.frame.at, inc.frame.len, &mut out);
                        rx.release(&inc);
                        if let Some(p) = rx.output(inc.seat) {
                            let _ = p.push(&out);
                        }
                    }
                    Ok(None) => {
                        let _ = rx.settle();
                    }
                    Err(_) => {}
                },
                5 => {
                    if rings > 1 {
                        let mut c = client_half(&region, s);
                        if let Ok(frame) = c.peek() {
                            assert!(frame.at + frame.len <= geo.cap as usize);
                        }
                    }
                }
                _ => {
                    let at = usize::from(next().unwrap_or(0)) << 8 | usize::from(next().unwrap_or(0));
                    mem.scribble(
                        geo.seats_at() + at * 8 % (size - geo.seats_at()),
                        next().unwrap_or(0xff),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::many_to_one::layout::{Geometry, HeapRegion};
    use std::collections::HashMap;

    fn geo(seats: usize) -> Geometry {
        Geometry {
            seats,
            rings: 1,
            cap: 256,
        }
    }

    fn take(rx: &mut Collector) -> Option<(usize, u32, Vec<u8>)> {
        let inc = rx.poll().unwrap()?;
        let mut out = Vec::new();
        rx.region()
            .buf(inc.seat, RING_IN)
            .append_to(inc.frame.at, inc.frame.len, &mut out);
        rx.release(&inc);
        Some((inc.seat, inc.gen, out))
    }

    #[test]
    fn round_robin_a_busy_sender_does_not_starve_the_others() {
        let mem = HeapRegion::new(geo(3));
        let r = mem.region();
        let mut ps: Vec<Producer> = (0..3)
            .map(|s| {
                assert_eq!(claim_ring(&r, s, true), 0);
                sender_half(&r, s)
            })
            .collect();
        let mut rx = Collector::new(r, false);
        // seat 0 fills its ring; seats 1 and 2 send one each
        while ps[0].push(b"busy").is_ok() {}
        ps[1].push(b"one").unwrap();
        ps[2].push(b"two").unwrap();
        let first: Vec<usize> = (0..3).map(|_| take(&mut rx).unwrap().0).collect();
        assert_eq!(first, [0, 1, 2]);
    }

    #[test]
    fn a_new_sender_waits_until_the_old_ones_frames_are_delivered() {
        let mem = HeapRegion::new(geo(2));
        let r = mem.region();
        let mut rx = Collector::new(r, false);
        let g0 = claim_ring(&r, 1, true);
        assert!(ring_ready(&r, 1, g0, 10));
        let mut old = sender_half(&r, 1);
        old.push(b"last words").unwrap();
        drop(old); // dies
        let g1 = claim_ring(&r, 1, false);
        assert_ne!(g0, g1);
        assert!(!ring_ready(&r, 1, g1, 11), "not before the old frames are delivered");
        assert!(rx.settle().unwrap().is_empty());
        assert_eq!(take(&mut rx).unwrap(), (1, g0, b"last words".to_vec()));
        assert!(take(&mut rx).is_none());
        assert_eq!(rx.settle().unwrap(), [1]);
        assert!(ring_ready(&r, 1, g1, 11));
        let mut new = sender_half(&r, 1);
        new.push(b"hello").unwrap();
        assert_eq!(take(&mut rx).unwrap(), (1, g1, b"hello".to_vec()));
    }

    /// Each fuzz target's harness over deterministic random bytes (CI has no
    /// cargo-fuzz): `fuzz/fuzz_targets/many_to_one.rs` and `service.rs`.
    #[test]
    fn the_fuzz_harnesses_survive_random_bytes() {
        let mut rng = 0x853c_49e6_748f_ea9bu64;
        for case in 0..400 {
            let len = (case * 37) % 3000;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect();
            fuzz::run(&data, 1); // many_to_one
            fuzz::run(&data, 2); // service
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Random joins, leaves (in order or not), sends and receives over
        /// three seats: every message committed is delivered exactly once,
        /// in order per sender, under its sender's identity.
        #[test]
        fn random_join_leave_send_sequences(ops in proptest::collection::vec((0u8..6, 0usize..3, 0usize..40), 1..400)) {
            let mem = HeapRegion::new(geo(3));
            let r = mem.region();
            let mut rx = Collector::new(r, false);
            // per seat: (generation, ready half, next sequence number)
            let mut seats: Vec<Option<(u32, Option<Producer>, u32)>> = (0..3).map(|_| None).collect();
            let mut used = [false; 3];
            let mut sent: HashMap<(usize, u32), Vec<Vec<u8>>> = HashMap::new();
            let mut got: HashMap<(usize, u32), Vec<Vec<u8>>> = HashMap::new();
            for (op, s, len) in ops {
                match op {
                    0 => if seats[s].is_none() {
                        let g = claim_ring(&r, s, !used[s]);
                        used[s] = true;
                        seats[s] = Some((g, None, 0));
                    },
                    1 => seats[s] = None, // leaves or dies: the same to the rings
                    2 | 3 => if let Some((g, half, seq)) = &mut seats[s] {
                        if half.is_none() && ring_ready(&r, s, *g, 1) {
                            *half = Some(sender_half(&r, s));
                        }
                        if let Some(p) = half {
                            let mut m = seq.to_le_bytes().to_vec();
                            m.resize(4 + len, *seq as u8);
                            if p.push(&m).is_ok() {
                                sent.entry((s, *g)).or_default().push(m);
                                *seq += 1;
                            }
                        }
                    },
                    _ => match take(&mut rx) {
                        Some((s, g, m)) => got.entry((s, g)).or_default().push(m),
                        None => { rx.settle().unwrap(); }
                    },
                }
            }
            // everybody leaves; the receiver drains
            while let Some((s, g, m)) = take(&mut rx) {
                got.entry((s, g)).or_default().push(m);
            }
            proptest::prop_assert_eq!(sent, got);
        }

        /// Arbitrary memory and a scribbling peer: errors, never a panic.
        #[test]
        fn arbitrary_memory_never_crashes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000), rings in 1usize..3) {
            fuzz::run(&data, rings);
        }
    }
}
