//! Broadcast: one producer, a changing set of consumers ("subscribers"),
//! each either **blocking** (the producer waits for it, as for a channel's
//! receiver) or **lossy** (the producer never waits for it; it learns
//! exactly how many messages it lost).
//!
//! Like the rest of the ring, this knows nothing of processes, futexes or
//! files: it is given the shared words below and the bytes. Who is alive
//! is the caller's business (it tells the producer to forget a dead seat
//! with [`Broadcaster::drop_seat`]).
//!
//! # Frames carry sequence numbers
//! A broadcast frame's payload starts with an 8-byte sequence number (the
//! producer's message count when it was committed), then the message. A
//! subscriber that knows the next number it expects sees any gap, and a
//! duplicate or a step back is [`RingError::Corrupt`].
//!
//! # The oldest intact frame, seqlock style
//! The producer keeps a private list of the frames still in the ring and
//! publishes [`Marks::oldest`], the position of the oldest one whose bytes
//! are intact. **Before** it overwrites a frame's bytes it moves `oldest`
//! past that frame and issues a Release fence; a lossy reader copies a
//! frame, then issues an Acquire fence and loads `oldest`: if `oldest` is
//! still at or before the frame's start, nothing it copied was being
//! overwritten (had it read one overwritten byte, the fences would make it
//! see the new `oldest`). Otherwise it discards the copy, jumps to
//! `oldest` and reports `missed = seq(oldest frame) - expected`: exact,
//! because the numbers come from frames validated the same way.
//!
//! # Joining: a blocking subscriber is never overwritten
//! Subscribers write their own seat only ([`Membership`] and their
//! [`Counter`]); the producer keeps a private view of which seats block it.
//! A joining subscriber picks its start `P` (the producer's position, or
//! the last `k` frames of history), stores it and its mode, bumps
//! [`Roster::changes`], issues a SeqCst fence and loads [`Marks::intent`].
//! The producer, before it overwrites frames, stores in `intent` the
//! position that will be the oldest intact one, issues a SeqCst fence and
//! loads `changes`. The two fences (Dekker's pattern) make at least one
//! side see the other: either the producer sees the join, reads the seat
//! and admits `P` as a blocking position before overwriting anything (then
//! it waits for it like for any other), or the subscriber sees an `intent`
//! past `P` and starts again from a newer `P`. The producer admits a
//! position only if the ring still holds it intact (`P >= oldest`). Both
//! may happen: the producer then waits for `P` and publishes no newer
//! `oldest`, so a joiner that chose its history from `oldest` again would
//! pick `P` again, be turned away again, and the two would wait on each
//! other; a joiner therefore never chooses a start before `intent`, and
//! the position it announces next frees the producer.
//!
//! # Joining: a lossy subscriber knows its first number
//! A lossy subscriber's losses are exact from its start: it must know the
//! number of the first message it is owed even if that frame is overwritten
//! before it reads it. The producer's counter cannot tell it: `pos` and
//! `messages` are two stores (Release, then Relaxed), so loading both is no
//! consistent pair, and the channel's commit must not pay for one. Instead
//! the producer stores, after each commit (Release), [`Marks::newest`]: the
//! start of the frame just committed. A lossy joiner loads it (Acquire),
//! reads that frame's header and number, and checks as for any lossy read
//! that `oldest` had not passed it meanwhile; it then starts where that
//! frame ends, owed its number plus one. It validates a frame rather than
//! trusting a pair of words, so it needs no seqlock; it may start a few
//! messages before the producer's position (those committed since the
//! mark), which is the same as having joined a moment earlier. Had it
//! been overwritten, the joiner looks again (it does not announce before).
//! The cost: one Release store per message (a plain store on x86) into the
//! line the producer's counter dirties anyway, in the broadcast's commit
//! only; the channel's commit is unchanged. The producer need not look at
//! lossy seats at all. The alternative, the producer stamping the number
//! into a lossy seat when it sees the join, would need a new word in every
//! seat, the Dekker check for lossy joiners too and a way to tell a stamp
//! from an older join's. One corner stays: if every try of a join finds the
//! newest frame already overwritten by a grant still being written (a
//! message nearly the ring's size, its producer slow or dead mid-write), the
//! joiner starts at the producer's position counting from the first message
//! it reads.
//!
//! # Invalidating in batches
//! Moving `oldest` costs the producer a SeqCst fence (the join check
//! above), and in a ring that has wrapped, nearly every reservation
//! overwrites a frame. So when a reservation must invalidate, the producer
//! also gives up the frames that start in the next `capacity / 8` bytes
//! (all but the newest committed frame): the next reservations then find
//! nothing to invalidate until the writes have gone that much further, and
//! the fence is paid about once per eighth of the ring instead of once per
//! message. What it costs: a lossy reader counts as lapped, and a frame
//! stops being history, up to an eighth of the ring before its bytes are
//! overwritten; nothing changes for blocking readers, which the producer
//! waits for by their positions.
//!
//! # Untrusted memory
//! Every word read from the shared seats, marks and frames is validated
//! before use, as in the rest of the ring; a hostile peer can make this
//! side see [`RingError::Corrupt`], lose messages it is owed, or read
//! wrong bytes in well-formed frames, never an out-of-bounds access, a
//! panic or an endless loop (every retry loop here is bounded).

use std::collections::VecDeque;

use super::super::sync::{fence, AtomicU64, Ordering};
use super::{
    corrupt, frame_size, Buf, Consumer, CounterRef, Frame, Heads, Producer, Ref, Reservation, RingError, FRAME_ALIGN,
    FRAME_HEADER,
};

/// Bytes of a frame's payload taken by its sequence number.
pub(crate) const SEQ: u64 = 8;
/// The most subscriber seats a broadcast layout can have.
pub(crate) const MAX_SEATS: usize = 64;
/// A seat nobody reads through.
pub(crate) const MODE_FREE: u64 = 0;
/// A seat whose subscriber the producer waits for.
pub(crate) const MODE_BLOCKING: u64 = 1;
/// A seat whose subscriber the producer never waits for.
pub(crate) const MODE_LOSSY: u64 = 2;

/// The producer invalidates frames in batches of about `capacity / BATCH`
/// bytes (see the module docs).
const BATCH: u64 = 8;

/// How many times a call retries after a concurrent change (a join, a lap)
/// before it gives up for now (or, for a subscriber's receive, looks at its
/// deadline and interrupt): a hostile peer cannot make it loop forever.
pub(crate) const RETRIES: usize = 64;

/// The producer's published marks (32 bytes, `repr(C)`; only the producer
/// writes them).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Marks {
    /// The position of the oldest frame whose bytes are intact.
    pub oldest: AtomicU64,
    /// Its sequence number (for `stat`: how much history the ring holds).
    pub oldest_seq: AtomicU64,
    /// What `oldest` is about to become: stored before the producer looks
    /// for joins, ahead of overwriting (see the module docs).
    pub intent: AtomicU64,
    /// The newest committed frame's start (or its padding's) plus one; 0
    /// before the first commit. Stored (Release) after each commit: where a
    /// lossy subscriber starts, knowing the number of the first message it
    /// is owed (see the module docs).
    pub newest: AtomicU64,
}

/// Joins and departures (8 bytes; subscribers bump it).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Roster {
    /// Bumped (SeqCst) after every change of a seat's mode.
    pub changes: AtomicU64,
}

/// A seat's membership words (16 bytes; only its subscriber writes them).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Membership {
    /// [`MODE_FREE`], [`MODE_BLOCKING`] or [`MODE_LOSSY`] (anything else
    /// reads as free).
    pub mode: AtomicU64,
    /// Bumped by every subscriber that takes the seat, before its position.
    pub gen: AtomicU64,
}

impl Marks {
    /// Zeroed marks (heap memory: tests).
    #[cfg(any(test, feature = "fuzz", loom))]
    pub(crate) fn new() -> Marks {
        Marks {
            oldest: AtomicU64::new(0),
            oldest_seq: AtomicU64::new(0),
            intent: AtomicU64::new(0),
            newest: AtomicU64::new(0),
        }
    }
}

impl Roster {
    /// A zeroed roster (heap memory: tests).
    #[cfg(any(test, feature = "fuzz", loom))]
    pub(crate) fn new() -> Roster {
        Roster {
            changes: AtomicU64::new(0),
        }
    }
}

impl Membership {
    /// A free seat (heap memory: tests).
    #[cfg(any(test, feature = "fuzz", loom))]
    pub(crate) fn new() -> Membership {
        Membership {
            mode: AtomicU64::new(MODE_FREE),
            gen: AtomicU64::new(0),
        }
    }
}

/// One seat: its counter and its membership words.
#[derive(Debug, Clone)]
pub(crate) struct SeatRef {
    pub counter: CounterRef,
    pub member: Ref<Membership>,
}

/// Lets the producer run (a join that found its newest frame overwritten).
fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// `a` comes before `b` (positions are byte counts that never wrap in
/// practice; differences are taken modulo 2^64 and read as signed).
#[inline]
fn before(a: u64, b: u64) -> bool {
    (b.wrapping_sub(a) as i64) > 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not waited for: free, lossy, or not admitted.
    Out,
    /// Waited for; `last` is its last position seen.
    Blocking,
    /// Declared dead by the caller: ignored until another subscriber takes
    /// the seat (a new `gen`).
    Dead,
}

#[derive(Debug, Clone, Copy)]
struct View {
    gen: u64,
    state: State,
    last: u64,
}

/// The producer's private view of the seats: which block it, and where
/// they were last seen.
#[derive(Debug)]
pub(crate) struct Members {
    seats: Vec<SeatRef>,
    view: Vec<View>,
    /// A blocking seat changed hands or mode since the last rescan.
    dirty: bool,
}

impl Heads for Members {
    fn load(&mut self, tail: u64, _last: u64) -> Result<u64, RingError> {
        let mut slowest = tail;
        for (seat, v) in self.seats.iter().zip(self.view.iter_mut()) {
            if v.state != State::Blocking {
                continue;
            }
            // Acquire: the subscriber's reads of what it released happen
            // before we overwrite them. A new subscriber stores its `gen`
            // before its position, so a new position comes with a new gen.
            let head = seat.counter.get().pos.load(Ordering::Acquire);
            let m = seat.member.get();
            if m.gen.load(Ordering::Relaxed) != v.gen || m.mode.load(Ordering::Relaxed) != MODE_BLOCKING {
                v.state = State::Out;
                self.dirty = true;
                continue;
            }
            super::check_head(head, tail, v.last)?;
            v.last = head;
            if tail.wrapping_sub(head) > tail.wrapping_sub(slowest) {
                slowest = head;
            }
        }
        Ok(slowest)
    }
}

impl Members {
    /// Reads every seat's mode again: admits new blocking subscribers whose
    /// position the ring still holds intact (between `oldest` and `tail`),
    /// forgets those that left. `held`: the bytes before `tail` the ring
    /// holds intact. Returns the lowest position admitted.
    fn rescan(&mut self, tail: u64, held: u64) -> Option<u64> {
        self.dirty = false;
        let mut lowest: Option<u64> = None;
        for (seat, v) in self.seats.iter().zip(self.view.iter_mut()) {
            let m = seat.member.get();
            // Acquire: the position stored before the mode is visible.
            let mode = m.mode.load(Ordering::Acquire);
            let gen = m.gen.load(Ordering::Relaxed);
            if v.gen == gen && (v.state == State::Dead || (v.state == State::Blocking && mode == MODE_BLOCKING)) {
                continue;
            }
            if mode != MODE_BLOCKING {
                *v = View {
                    gen,
                    state: State::Out,
                    last: 0,
                };
                continue;
            }
            let pos = seat.counter.get().pos.load(Ordering::Acquire);
            if pos % FRAME_ALIGN == 0 && tail.wrapping_sub(pos) <= held {
                *v = View {
                    gen,
                    state: State::Blocking,
                    last: pos,
                };
                if lowest.is_none_or(|l| before(pos, l)) {
                    lowest = Some(pos);
                }
            } else {
                // Lapped before it was seen (or scribbled on): it starts
                // again from a newer position, and is admitted then.
                *v = View {
                    gen,
                    state: State::Out,
                    last: 0,
                };
            }
        }
        lowest
    }
}

/// Room for one broadcast message, reserved by [`Broadcaster::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    res: Reservation,
    /// Where the message's bytes start in the buffer.
    pub at: usize,
    /// The message's length.
    pub len: usize,
}

impl Grant {
    /// Shortens the message to `len` bytes (no longer than reserved).
    pub(crate) fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            self.res.len = len + SEQ as usize;
        }
    }
}

/// The producing half of a broadcast.
#[derive(Debug)]
pub(crate) struct Broadcaster {
    ring: Producer<Members>,
    marks: Ref<Marks>,
    roster: Ref<Roster>,
    /// The frames still intact in the ring: (position, sequence number).
    frames: VecDeque<(u64, u64)>,
    /// The oldest intact frame's position, as published.
    oldest: u64,
    /// `roster.changes` when last read.
    seen: u64,
}

impl Broadcaster {
    /// The producer of a new, empty ring of `capacity` bytes over `buf`,
    /// publishing through `own` and `marks`, with `seats` for subscribers.
    pub(crate) fn new(
        own: CounterRef,
        seats: Vec<SeatRef>,
        marks: Ref<Marks>,
        roster: Ref<Roster>,
        buf: Buf,
        capacity: u64,
    ) -> Broadcaster {
        let view = vec![
            View {
                gen: u64::MAX,
                state: State::Out,
                last: 0
            };
            seats.len()
        ];
        let members = Members {
            seats,
            view,
            dirty: true,
        };
        Broadcaster {
            ring: Producer::with_heads(own, members, buf, capacity),
            marks,
            roster,
            frames: VecDeque::new(),
            oldest: 0,
            seen: u64::MAX,
        }
    }

    /// The largest message the ring carries (8 bytes less than a channel of
    /// the same capacity: the sequence number).
    pub(crate) fn max_message(&self) -> u64 {
        self.ring.max_message() - SEQ
    }

    /// The buffer the grants point into.
    pub(crate) fn buf(&self) -> &Buf {
        self.ring.buf()
    }

    /// Messages committed so far (the next message's sequence number).
    pub(crate) fn sent(&self) -> u64 {
        self.ring.messages
    }

    /// The seats that hold the producer up now (blocking, at the slowest
    /// position seen): those whose liveness is worth asking when the ring
    /// is full.
    pub(crate) fn blocking_seats(&self) -> Vec<usize> {
        let m = &self.ring.heads;
        (0..m.view.len())
            .filter(|&i| m.view[i].state == State::Blocking)
            .collect()
    }

    /// Forgets the subscriber in seat `i` (it died): the producer no
    /// longer waits for it, until another subscriber takes the seat.
    pub(crate) fn drop_seat(&mut self, i: usize) {
        if let Some(v) = self.ring.heads.view.get_mut(i) {
            if v.state == State::Blocking {
                v.state = State::Dead;
            }
        }
    }

    /// Reserves room for a message of `len` bytes; `Full` while a blocking
    /// subscriber has not read what the room would overwrite.
    #[inline]
    pub(crate) fn reserve(&mut self, len: usize) -> Result<Grant, RingError> {
        let max = self.max_message();
        if len as u64 > max {
            return Err(RingError::TooLarge { len: len as u64, max });
        }
        // The busy path: no join, nothing to invalidate.
        self.membership();
        let res = self.ring.reserve(len + SEQ as usize)?;
        if !self.must_invalidate(&res) {
            return Ok(Grant {
                res,
                at: res.at + SEQ as usize,
                len,
            });
        }
        self.reserve_invalidating(len, res)
    }

    /// The rest of [`reserve`](Self::reserve): `res` overwrites intact
    /// frames (once per batch), or a subscriber joined meanwhile.
    #[cold]
    #[inline(never)]
    fn reserve_invalidating(&mut self, len: usize, mut res: Reservation) -> Result<Grant, RingError> {
        for _ in 0..RETRIES {
            if self.invalidate(&res) {
                return Ok(Grant {
                    res,
                    at: res.at + SEQ as usize,
                    len,
                });
            }
            // A subscriber joined meanwhile: reserve again, waiting for it.
            self.membership();
            res = self.ring.reserve(len + SEQ as usize)?;
        }
        Err(RingError::Full)
    }

    /// Publishes the reserved message, whose bytes have been written.
    #[inline]
    pub(crate) fn commit(&mut self, g: Grant) {
        let seq = self.ring.messages;
        // Relaxed: the header's Release store publishes it with the payload.
        self.ring.buf.store_word(g.res.at, seq, Ordering::Relaxed);
        let start = g.res.start;
        self.ring.commit(g.res);
        self.frames.push_back((start, seq));
        // Release: the frame's header and number happen before a joiner
        // that Acquire-loads this reads them (`Reader::newest`). The
        // broadcast's one store per message beyond the channel's, to the
        // line the producer's counter already dirties.
        self.marks.get().newest.store(start.wrapping_add(1), Ordering::Release);
    }

    /// Copies `msg` into the ring as one message.
    #[cfg(any(test, feature = "fuzz", loom))]
    pub(crate) fn push(&mut self, msg: &[u8]) -> Result<(), RingError> {
        let g = self.reserve(msg.len())?;
        self.ring.buf.write(g.at, msg);
        self.commit(g);
        Ok(())
    }

    /// Whether every blocking subscriber has read everything committed.
    pub(crate) fn is_drained(&mut self) -> Result<bool, RingError> {
        self.membership();
        self.ring.is_drained()
    }

    /// Takes note of joins and departures, if any since the last look.
    #[inline]
    fn membership(&mut self) {
        // Acquire: a joiner's seat is visible once its bump is.
        let changes = self.roster.get().changes.load(Ordering::Acquire);
        if changes != self.seen || self.ring.heads.dirty {
            self.seen = changes;
            self.rescan();
        }
    }

    #[cold]
    #[inline(never)]
    fn rescan(&mut self) {
        let (tail, oldest) = (self.ring.tail, self.oldest);
        // `oldest` is ahead of the tail after a grant that was not
        // committed: nothing before the tail is held then.
        let held = if before(tail, oldest) {
            0
        } else {
            tail.wrapping_sub(oldest).min(self.ring.geo.cap)
        };
        if let Some(lowest) = self.ring.heads.rescan(tail, held) {
            // The slowest position may now be behind the one cached.
            if tail.wrapping_sub(lowest) > tail.wrapping_sub(self.ring.cached_head) {
                self.ring.cached_head = lowest;
            }
        }
    }

    /// Everything before this position is overwritten by `res`: its
    /// padding, its frame and its end mark end a capacity later.
    #[inline]
    fn floor(&self, res: &Reservation) -> u64 {
        let end = res.start.wrapping_add(frame_size(res.len as u64) + FRAME_HEADER);
        end.wrapping_sub(self.ring.geo.cap)
    }

    /// Whether `res` overwrites a frame still counted as intact.
    #[inline]
    fn must_invalidate(&self, res: &Reservation) -> bool {
        let floor = self.floor(res);
        self.frames.front().is_some_and(|&(front, _)| before(front, floor))
    }

    /// Before the reservation `res` overwrites intact frames: announces the
    /// new oldest frame (`intent`), looks for joins (see the module docs),
    /// then publishes it (`oldest`) and fences, so that a lossy reader of
    /// the frames about to go sees that they go. `false` if a subscriber
    /// joined meanwhile: the caller reserves again.
    fn invalidate(&mut self, res: &Reservation) -> bool {
        if !self.must_invalidate(res) {
            return true;
        }
        let cap = self.ring.geo.cap;
        let floor = self.floor(res);
        // In batches (see the module docs): the frames before `floor` are
        // overwritten now; those before `batch` go with them, so that the
        // next reservations find nothing to invalidate until the writes
        // reach `batch + cap`. The newest frame stays unless overwritten.
        let batch = floor.wrapping_add(cap / BATCH);
        let mut gone = 0;
        for (i, &(pos, _)) in self.frames.iter().enumerate() {
            let overwritten = before(pos, floor);
            if !(overwritten || (before(pos, batch) && i + 1 < self.frames.len())) {
                break;
            }
            gone = i + 1;
        }
        let (oldest, seq) = self
            .frames
            .get(gone)
            .copied()
            .unwrap_or((res.start, self.ring.messages));
        let marks = self.marks.get();
        marks.intent.store(oldest, Ordering::Relaxed);
        // SeqCst: orders the store of `intent` before the load of
        // `changes` (and a joiner's store before its load of `intent`).
        fence(Ordering::SeqCst);
        // Acquire: a joiner's seat is visible once its bump is.
        let changes = self.roster.get().changes.load(Ordering::Acquire);
        if changes != self.seen {
            self.seen = changes;
            self.rescan();
            return false;
        }
        self.frames.drain(..gone);
        self.oldest = oldest;
        marks.oldest.store(oldest, Ordering::Relaxed);
        marks.oldest_seq.store(seq, Ordering::Relaxed);
        // Release: a reader that sees any byte written after this fence
        // (and fences with Acquire) sees the new `oldest` too.
        fence(Ordering::Release);
        true
    }
}

/// A message found by [`Reader::peek`]: its bytes are at `at..at + len`
/// in the buffer; for a lossy reader they count only if
/// [`Reader::intact`] says so after they were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Msg {
    frame: Frame,
    /// Where the frame (or the padding before it) starts.
    start: u64,
    /// The message's sequence number.
    pub seq: u64,
    /// Where the message's bytes start in the buffer.
    pub at: usize,
    /// The message's length.
    pub len: usize,
}

/// The consuming half of a broadcast: one subscriber's seat.
#[derive(Debug)]
pub(crate) struct Reader {
    ring: Consumer,
    marks: Ref<Marks>,
    roster: Ref<Roster>,
    lossy: bool,
    /// The sequence number expected next, once a message was read.
    next_seq: Option<u64>,
}

impl Reader {
    /// Announces a subscriber in `seat`, reading from `start` (where the
    /// producer's `messages`-th message is, or will be), before or after
    /// the ring is known: a new generation of the seat (when `new`), its
    /// position, its mode, a bump of the roster; then, for a blocking one,
    /// the Dekker check (see the module docs). `true` if the producer will
    /// wait for it from `start` (or it is lossy); `false`: announce again
    /// from a newer position.
    pub(crate) fn announce(
        seat: &SeatRef,
        marks: &Ref<Marks>,
        roster: &Ref<Roster>,
        start: u64,
        messages: u64,
        lossy: bool,
        new: bool,
    ) -> bool {
        let m = seat.member.get();
        if new {
            // The seat's previous subscriber no longer counts, whatever it
            // left behind.
            m.mode.store(MODE_FREE, Ordering::Relaxed);
            m.gen
                .store(m.gen.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        let own = seat.counter.get();
        own.messages.store(messages, Ordering::Relaxed);
        own.bytes.store(0, Ordering::Relaxed);
        // Release: after `gen` (see `Members::load`).
        own.pos.store(start, Ordering::Release);
        // Release: after the position (see `Members::rescan`).
        m.mode
            .store(if lossy { MODE_LOSSY } else { MODE_BLOCKING }, Ordering::Release);
        roster.get().changes.fetch_add(1, Ordering::SeqCst);
        // SeqCst: the seat's stores before the load of `intent` (the
        // producer's side: `Broadcaster::invalidate`).
        fence(Ordering::SeqCst);
        lossy || !before(start, marks.get().intent.load(Ordering::Relaxed))
    }

    /// Takes seat (`seat`, whose subscriber has left or died, or was never
    /// used) and joins the broadcast of `producer`: from the next message,
    /// or from the last `history` messages the ring still holds — or, if
    /// `announced` (by [`announce`](Self::announce) from position 0 before
    /// the producer came, and answered `true`), from the very first. A
    /// blocking reader is waited for from the position returned (see the
    /// module docs).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn join(
        seat: SeatRef,
        producer: CounterRef,
        marks: Ref<Marks>,
        roster: Ref<Roster>,
        buf: Buf,
        capacity: u64,
        lossy: bool,
        history: u64,
        announced: bool,
    ) -> Result<Reader, RingError> {
        let SeatRef { counter, .. } = seat.clone();
        let mut r = Reader {
            ring: Consumer::new(counter, producer, buf, capacity),
            marks,
            roster,
            lossy,
            next_seq: None,
        };
        if announced {
            r.next_seq = Some(0);
            return Ok(r);
        }
        let mut fresh = true;
        for attempt in 0..RETRIES * 16 {
            let Some((start, behind)) = r.choose_start(history)? else {
                continue;
            };
            // A lossy reader must know the number of the message at its
            // start before that message can be overwritten: the first
            // message of its history, or, at the producer's position, the
            // one after the newest committed (which may end a little before
            // that position: it starts there). Known before it announces,
            // so the producer need not look at lossy seats at all.
            let owed = match (lossy, behind) {
                (false, _) => None,
                (true, 0) => r.newest()?,
                (true, _) => r.seq_at(start).map(|seq| (start, seq)),
            };
            let (start, first) = match owed {
                Some((start, seq)) => (start, Some(seq)),
                // Overwritten under the look (or the producer's grant in
                // progress covers its newest frame): look again, and only
                // after every try start without knowing (counted from the
                // first message read; see the module docs).
                None if lossy && attempt + 1 < RETRIES * 16 => {
                    yield_now();
                    continue;
                }
                None => (start, None),
            };
            let sent = r.ring.producer.get().messages.load(Ordering::Relaxed);
            r.ring.head = start;
            r.ring.messages = first.unwrap_or(sent.saturating_sub(behind));
            r.ring.bytes = 0;
            let protected = Reader::announce(&seat, &r.marks, &r.roster, start, r.ring.messages, lossy, fresh);
            fresh = false;
            if protected {
                // A blocking reader is never lapped: it may learn the
                // numbers from the first message it reads.
                r.next_seq = if lossy {
                    first
                } else if behind > 0 {
                    r.seq_at(start)
                } else {
                    None
                };
                return Ok(r);
            }
        }
        Err(corrupt(
            "the publisher overwrites its ring faster than a subscriber can join (or its marks are invalid)",
        ))
    }

    /// Where to start: the producer's position, or the `history`-th last
    /// frame the ring still holds; with how many messages that is behind
    /// the producer. `None` if the ring moved under the look: try again.
    fn choose_start(&self, history: u64) -> Result<Option<(u64, u64)>, RingError> {
        let cap = self.ring.geo.cap;
        // Acquire: the headers before the producer's position are visible.
        let tail = self.ring.producer.get().pos.load(Ordering::Acquire);
        if tail % FRAME_ALIGN != 0 {
            return Err(corrupt(format!("the publisher's position {tail} is not aligned")));
        }
        if history == 0 {
            return Ok(Some((tail, 0)));
        }
        let oldest = self.marks.get().oldest.load(Ordering::Acquire);
        if !before(oldest, tail) {
            return Ok(Some((tail, 0)));
        }
        if tail.wrapping_sub(oldest) > cap || oldest % FRAME_ALIGN != 0 {
            return Ok(None);
        }
        let keep = history.min(cap / (FRAME_HEADER + SEQ)) as usize;
        // Frames before `intent` are about to go: never start there (see
        // the module docs, "Joining").
        let intent = self.marks.get().intent.load(Ordering::Relaxed);
        let mut recent = VecDeque::with_capacity(keep);
        let mut pos = oldest;
        while before(pos, tail) {
            let Ok(frame) = self.ring.peek_at(pos) else {
                // Overwritten under the walk, or corrupt: judged below.
                break;
            };
            if before(pos, intent) {
                pos = pos.wrapping_add(frame.advance);
                continue;
            }
            if recent.len() == keep {
                recent.pop_front();
            }
            recent.push_back(pos);
            pos = pos.wrapping_add(frame.advance);
        }
        // Acquire: had the walk read a header being overwritten, `oldest`
        // has moved (see the module docs).
        fence(Ordering::Acquire);
        let now = self.marks.get().oldest.load(Ordering::Relaxed);
        if now != oldest {
            return Ok(None);
        }
        if before(pos, tail) {
            return Err(corrupt(format!(
                "the frames from {oldest} do not reach the publisher's position {tail}"
            )));
        }
        Ok(Some(match recent.front() {
            Some(&start) => (start, recent.len() as u64),
            None => (tail, 0),
        }))
    }

    /// Where a lossy reader joining at the producer's position starts, and
    /// the number of the message owed there: the end of the newest
    /// committed frame, and its number plus one (position 0 and number 0
    /// before the first commit). `None` if that frame was overwritten
    /// under the look.
    fn newest(&self) -> Result<Option<(u64, u64)>, RingError> {
        // Acquire: pairs with the Release in `Broadcaster::commit`: the
        // frame's header and number are visible.
        let mark = self.marks.get().newest.load(Ordering::Acquire);
        if mark == 0 {
            return Ok(Some((0, 0)));
        }
        let at = mark.wrapping_sub(1);
        if at % FRAME_ALIGN != 0 {
            return Err(corrupt(format!(
                "the newest frame's mark {mark} is not a position plus one"
            )));
        }
        let Ok(frame) = self.ring.peek_at(at) else {
            return Ok(None);
        };
        Ok(self
            .seq_at(at)
            .map(|seq| (at.wrapping_add(frame.advance), seq.wrapping_add(1))))
    }

    /// The sequence number of the message at `pos` (history's first): read
    /// once, and trusted only if the frame was intact meanwhile.
    fn seq_at(&self, pos: u64) -> Option<u64> {
        let frame = self.ring.peek_at(pos).ok()?;
        if (frame.len as u64) < SEQ {
            return None;
        }
        let seq = self.ring.buf.load_word(frame.at);
        fence(Ordering::Acquire);
        let oldest = self.marks.get().oldest.load(Ordering::Relaxed);
        (!before(pos, oldest)).then_some(seq)
    }

    /// Whether this reader is lossy.
    pub(crate) fn is_lossy(&self) -> bool {
        self.lossy
    }

    /// The buffer the messages point into.
    pub(crate) fn buf(&self) -> &Buf {
        &self.ring.buf
    }

    /// The largest message the ring carries.
    pub(crate) fn max_message(&self) -> u64 {
        self.ring.max_message() - SEQ
    }

    /// Messages committed by the producer and not yet read here (a
    /// snapshot; 0 if the counters disagree).
    pub(crate) fn in_flight(&self) -> u64 {
        self.ring.in_flight()
    }

    /// The next message, validated but not yet copied. A lossy reader that
    /// finds itself lapped moves to the oldest intact frame first.
    #[inline]
    pub(crate) fn peek(&mut self) -> Result<Msg, RingError> {
        match self.ring.peek() {
            Ok(frame) if frame.len as u64 >= SEQ => Ok(self.msg(frame)),
            found => self.peek_again(found),
        }
    }

    /// The message in `frame` (at this reader's position).
    #[inline]
    fn msg(&self, frame: Frame) -> Msg {
        Msg {
            frame,
            start: self.ring.head,
            seq: self.ring.buf.load_word(frame.at),
            at: frame.at + SEQ as usize,
            len: frame.len - SEQ as usize,
        }
    }

    /// The rest of [`peek`](Self::peek): nothing found, a frame too short
    /// for its number, or a lossy reader lapped.
    #[cold]
    #[inline(never)]
    fn peek_again(&mut self, mut found: Result<Frame, RingError>) -> Result<Msg, RingError> {
        for _ in 0..RETRIES {
            if let Ok(frame) = found {
                if frame.len as u64 >= SEQ {
                    return Ok(self.msg(frame));
                }
            }
            // What a lossy reader found may be a newer lap's bytes.
            if !(self.lossy && self.jump_if_lapped()?) {
                return match found {
                    Ok(frame) => Err(corrupt(format!(
                        "a frame of {} bytes has no sequence number",
                        frame.len
                    ))),
                    Err(e) => Err(e),
                };
            }
            found = self.ring.peek();
        }
        Err(RingError::Empty)
    }

    /// Whether `msg`'s bytes, read since [`peek`](Self::peek), were intact
    /// all along. Always true for a blocking reader (the producer waits for
    /// it); a lossy one that was lapped moves to the oldest intact frame.
    #[inline]
    pub(crate) fn intact(&mut self, msg: &Msg) -> Result<bool, RingError> {
        if !self.lossy {
            return Ok(true);
        }
        // Acquire: pairs with the producer's Release fence before it
        // overwrites (see the module docs).
        fence(Ordering::Acquire);
        let oldest = self.marks.get().oldest.load(Ordering::Relaxed);
        if !before(msg.start, oldest) {
            return Ok(true);
        }
        self.jump_if_lapped()?;
        Ok(false)
    }

    /// Like [`intact`](Self::intact), without moving: for a guard.
    pub(crate) fn still_intact(&self, msg: &Msg) -> bool {
        if !self.lossy {
            return true;
        }
        // Acquire: as in `intact`.
        fence(Ordering::Acquire);
        !before(msg.start, self.marks.get().oldest.load(Ordering::Relaxed))
    }

    /// Checks an intact message's sequence number: `Ok(None)` if it is the
    /// one expected (take it), `Ok(Some(missed))` if a lossy reader lost
    /// `missed` messages before it (it stays the next one).
    #[inline]
    pub(crate) fn accept(&mut self, msg: &Msg) -> Result<Option<u64>, RingError> {
        match self.next_seq {
            Some(next) if msg.seq == next => Ok(None),
            _ => self.accept_other(msg),
        }
    }

    /// The rest of [`accept`](Self::accept): the first message, a gap, or a
    /// number that cannot be.
    #[cold]
    #[inline(never)]
    fn accept_other(&mut self, msg: &Msg) -> Result<Option<u64>, RingError> {
        match self.next_seq {
            Some(next) if msg.seq == next => Ok(None),
            None => {
                self.next_seq = Some(msg.seq);
                Ok(None)
            }
            Some(next) if self.lossy && msg.seq > next => {
                self.next_seq = Some(msg.seq);
                Ok(Some(msg.seq - next))
            }
            Some(next) => Err(corrupt(format!("message number {} where {next} was expected", msg.seq))),
        }
    }

    /// Consumes `msg` (accepted), giving its space back.
    #[inline]
    pub(crate) fn release(&mut self, msg: Msg) {
        self.next_seq = Some(msg.seq.wrapping_add(1));
        self.ring.messages = msg.seq;
        self.ring.release(msg.frame);
    }

    /// Moves a lapped lossy reader to the oldest intact frame; whether it
    /// was lapped.
    fn jump_if_lapped(&mut self) -> Result<bool, RingError> {
        let oldest = self.marks.get().oldest.load(Ordering::Acquire);
        if !before(self.ring.head, oldest) {
            return Ok(false);
        }
        let cap = self.ring.geo.cap;
        // Loaded after `oldest`, so it can only be further: `oldest` is
        // never more than a frame ahead of it, but may be far behind.
        let tail = self.ring.producer.get().pos.load(Ordering::Acquire);
        if oldest % FRAME_ALIGN != 0 || (before(tail, oldest) && oldest.wrapping_sub(tail) > cap) {
            return Err(corrupt(format!(
                "the oldest frame's position {oldest} is more than {cap} bytes ahead of the publisher's {tail}"
            )));
        }
        self.ring.head = oldest;
        // Release: as any position (only `stat` reads a lossy one).
        self.ring.own.get().pos.store(oldest, Ordering::Release);
        Ok(true)
    }

    /// For a reader that found nothing: `Corrupt` if the producer's
    /// counter says frames were committed that the headers do not show.
    pub(crate) fn check_stalled(&mut self) -> Result<(), RingError> {
        if self.lossy && self.jump_if_lapped()? {
            return Ok(());
        }
        self.ring.check_stalled()
    }
}

impl SeatRef {
    /// Leaves the seat: the producer no longer waits for it. Once per
    /// subscriber, by whoever holds the seat, with or without a [`Reader`]
    /// (which may never have been made: a join that failed, or an
    /// [`announce`](Reader::announce) before the producer came). Each
    /// departure costs a SeqCst bump here and a rescan by the producer.
    pub(crate) fn leave(&self, roster: &Ref<Roster>) {
        self.member.get().mode.store(MODE_FREE, Ordering::Release);
        roster.get().changes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A broadcast over heap memory (tests, Miri, fuzzing).
#[cfg(all(any(test, feature = "fuzz"), not(loom)))]
pub(crate) mod heap {
    use super::super::Counter;
    use super::*;
    use std::ptr::NonNull;

    /// Every shared word of a broadcast, as one allocation.
    pub(crate) struct Words {
        pub producer: Counter,
        pub marks: Marks,
        pub roster: Roster,
        pub seats: Vec<(Counter, Membership)>,
    }

    /// The memory the halves point into; keep it alive while they are used.
    pub(crate) struct HeapTopic {
        words: NonNull<Words>,
        data: NonNull<u64>,
        len: usize,
        pub capacity: u64,
    }

    impl HeapTopic {
        /// A broadcast ring of `capacity` bytes with `seats` seats.
        pub(crate) fn new(capacity: u64, seats: usize) -> HeapTopic {
            let words = Words {
                producer: Counter::new(),
                marks: Marks::new(),
                roster: Roster::new(),
                seats: (0..seats).map(|_| (Counter::new(), Membership::new())).collect(),
            };
            let words = NonNull::new(Box::into_raw(Box::new(words))).unwrap();
            let len = capacity as usize / 8;
            let data = NonNull::new(Box::into_raw(vec![0u64; len].into_boxed_slice()).cast::<u64>()).unwrap();
            HeapTopic {
                words,
                data,
                len,
                capacity,
            }
        }

        /// The shared words, for a "peer" that scribbles on them.
        pub(crate) fn words(&self) -> &Words {
            // SAFETY: allocated in `new`, freed only in `drop`.
            unsafe { self.words.as_ref() }
        }

        /// The ring's bytes.
        pub(crate) fn buf(&self) -> Buf {
            // SAFETY: allocated in `new` with `len * 8` bytes, 8-aligned,
            // freed only in `drop`.
            unsafe { Buf::new(self.data.cast(), self.len * 8) }
        }

        fn seat(&self, i: usize) -> SeatRef {
            let (c, m) = &self.words().seats[i];
            // SAFETY: the words live until `drop`; the caller keeps `self`
            // alive while the halves are used.
            unsafe {
                SeatRef {
                    counter: CounterRef::new(NonNull::from(c)),
                    member: Ref::new(NonNull::from(m)),
                }
            }
        }

        fn refs(&self) -> (CounterRef, Ref<Marks>, Ref<Roster>) {
            let w = self.words();
            // SAFETY: as in `seat`.
            unsafe {
                (
                    CounterRef::new(NonNull::from(&w.producer)),
                    Ref::new(NonNull::from(&w.marks)),
                    Ref::new(NonNull::from(&w.roster)),
                )
            }
        }

        /// The producer.
        pub(crate) fn broadcaster(&self) -> Broadcaster {
            let (own, marks, roster) = self.refs();
            let seats = (0..self.words().seats.len()).map(|i| self.seat(i)).collect();
            Broadcaster::new(own, seats, marks, roster, self.buf(), self.capacity)
        }

        /// The subscriber `r` of seat `i` leaves it.
        pub(crate) fn leave(&self, _r: Reader, i: usize) {
            self.seat(i).leave(&self.refs().2);
        }

        /// A subscriber joining through seat `i`.
        pub(crate) fn join(&self, i: usize, lossy: bool, history: u64) -> Result<Reader, RingError> {
            let (producer, marks, roster) = self.refs();
            Reader::join(
                self.seat(i),
                producer,
                marks,
                roster,
                self.buf(),
                self.capacity,
                lossy,
                history,
                false,
            )
        }
    }

    impl Drop for HeapTopic {
        fn drop(&mut self) {
            // SAFETY: both made by `Box::into_raw` in `new`, freed once, here.
            unsafe {
                drop(Box::from_raw(self.words.as_ptr()));
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.data.as_ptr(),
                    self.len,
                )));
            }
        }
    }

    /// What one read gave.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum Read {
        Msg(u64, Vec<u8>),
        Lagged(u64),
    }

    impl Reader {
        /// One read as an endpoint does it: peek, copy, check, accept.
        pub(crate) fn read(&mut self) -> Result<Read, RingError> {
            for _ in 0..RETRIES {
                let msg = self.peek()?;
                let mut out = vec![0; msg.len];
                self.buf().read(msg.at, &mut out);
                if !self.intact(&msg)? {
                    continue;
                }
                if let Some(missed) = self.accept(&msg)? {
                    return Ok(Read::Lagged(missed));
                }
                self.release(msg);
                return Ok(Read::Msg(msg.seq, out));
            }
            Err(RingError::Empty)
        }
    }
}

/// The fuzz harness of the broadcast: arbitrary bytes as the ring's memory
/// and shared words, rewritten by a "peer" between operations, while a
/// producer and subscribers join, leave, publish and read. It must end
/// without a panic, whatever the bytes.
#[cfg(all(any(test, feature = "fuzz"), not(loom)))]
pub(crate) mod fuzz {
    use super::heap::HeapTopic;
    use super::*;

    fn scribble_word(t: &HeapTopic, which: usize, value: u64) {
        let o = Ordering::Relaxed;
        let w = t.words();
        let seats = w.seats.len();
        match which % (7 + 5 * seats) {
            0 => w.producer.pos.store(value, o),
            1 => w.producer.messages.store(value, o),
            2 => w.marks.oldest.store(value, o),
            3 => w.marks.intent.store(value, o),
            4 => w.roster.changes.store(value, o),
            5 => w
                .marks
                .oldest
                .store(w.marks.oldest.load(o).wrapping_add(value % 256), o),
            6 => w.marks.newest.store(value, o),
            n => {
                let (c, m) = &w.seats[(n - 7) / 5 % seats];
                match (n - 7) % 5 {
                    0 => c.pos.store(value, o),
                    1 => c.pos.store(c.pos.load(o).wrapping_add(value % 64), o),
                    2 => c.messages.store(value, o),
                    3 => m.mode.store(value % 4, o),
                    _ => m.gen.store(value, o),
                }
            }
        }
    }

    /// Runs the harness on `data`.
    pub(crate) fn run(data: &[u8]) {
        let mut input = data.iter().copied();
        let mut next = move || input.next();
        let cap = 64u64 << (next().unwrap_or(0) % 5); // 64 .. 1024
        let seats = 1 + usize::from(next().unwrap_or(0) % 3);
        let t = HeapTopic::new(cap, seats);
        let mut p = t.broadcaster();
        let mut readers: Vec<Option<Reader>> = (0..seats).map(|_| None).collect();
        let buf = t.buf();
        if next().unwrap_or(0) % 2 == 1 {
            for i in 0..cap as usize {
                match next() {
                    Some(b) => buf.write(i, &[b]),
                    None => break,
                }
            }
        }
        for _ in 0..256 {
            let Some(op) = next() else { break };
            let arg = next().unwrap_or(0);
            match op % 7 {
                0 | 1 => {
                    let len = usize::from(arg) % 64;
                    match p.push(&vec![op; len]) {
                        Ok(()) | Err(RingError::Full | RingError::TooLarge { .. } | RingError::Corrupt(_)) => {}
                        Err(RingError::Empty) => unreachable!("a producer is never empty"),
                    }
                }
                2 => {
                    let i = usize::from(arg) % seats;
                    if let Some(r) = readers[i].take() {
                        t.leave(r, i);
                    } else {
                        readers[i] = t.join(i, arg & 0x10 != 0, u64::from(arg >> 5)).ok();
                    }
                }
                3 | 4 => {
                    if let Some(r) = readers[usize::from(arg) % seats].as_mut() {
                        match r.read() {
                            Ok(_) | Err(RingError::Empty | RingError::Corrupt(_)) => {}
                            Err(e) => unreachable!("{e:?}"),
                        }
                        let _ = r.check_stalled();
                    }
                }
                5 => {
                    p.drop_seat(usize::from(arg) % seats);
                    let _ = p.is_drained();
                }
                _ => {
                    let at = usize::from(arg) << 8 | usize::from(next().unwrap_or(0));
                    let value = u64::from_le_bytes([next().unwrap_or(0xff); 8]) ^ at as u64;
                    if at % 2 == 0 {
                        scribble_word(&t, at / 2, value);
                    } else {
                        buf.write((at / 2) % cap as usize, &[value as u8]);
                    }
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::{HeapTopic, Read};
    use super::*;

    fn msg(n: u64, len: usize) -> Vec<u8> {
        (0..len).map(|i| (n as usize * 7 + i) as u8).collect()
    }

    fn drain(r: &mut Reader) -> Vec<Read> {
        let mut out = Vec::new();
        loop {
            match r.read() {
                Ok(x) => out.push(x),
                Err(RingError::Empty) => return out,
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    /// A lossy subscriber that joins after the publisher (with or without
    /// history) and is lapped before its first read: `Lagged` first, with
    /// exactly the messages it lost, then the rest; nothing uncounted.
    #[test]
    fn a_lossy_reader_lapped_before_its_first_read_counts_every_loss() {
        for (before, history) in [(0u64, 0u64), (5, 0), (5, 3), (0, 3), (40, 100)] {
            let t = HeapTopic::new(4096, 1);
            let mut p = t.broadcaster();
            for n in 0..before {
                p.push(&msg(n, 20)).unwrap();
            }
            let mut r = t.join(0, true, history).unwrap();
            // the messages it is owed from its start: its history (those
            // still held, at most `history`), then everything after
            let held = before.min(history);
            for n in before..before + 2000 {
                p.push(&msg(n, 20)).unwrap();
            }
            let mut reads = drain(&mut r).into_iter();
            let Some(Read::Lagged(missed)) = reads.next() else {
                panic!("lapped before its first read without Lagged ({before}, {history})")
            };
            let mut expect = before - held + missed;
            let mut got = 0;
            for read in reads {
                let Read::Msg(n, body) = read else {
                    panic!("{read:?} after the lag")
                };
                assert_eq!((n, body), (expect, msg(expect, 20)));
                expect += 1;
                got += 1;
            }
            assert_eq!(expect, before + 2000);
            assert_eq!(missed + got, held + 2000, "({before}, {history})");
        }
    }

    #[test]
    fn every_subscriber_gets_every_message_once() {
        let t = HeapTopic::new(256, 3);
        let mut p = t.broadcaster();
        let mut a = t.join(0, false, 0).unwrap();
        let mut b = t.join(1, false, 0).unwrap();
        for n in 0..200u64 {
            p.push(&msg(n, (n as usize * 13) % 40)).unwrap();
            for r in [&mut a, &mut b] {
                assert_eq!(r.read().unwrap(), Read::Msg(n, msg(n, (n as usize * 13) % 40)));
            }
        }
    }

    #[test]
    fn a_blocking_subscriber_holds_the_producer_and_a_lossy_one_does_not() {
        let t = HeapTopic::new(256, 2);
        let mut p = t.broadcaster();
        let mut lossy = t.join(1, true, 0).unwrap();
        p.push(&msg(0, 20)).unwrap();
        assert_eq!(lossy.read().unwrap(), Read::Msg(0, msg(0, 20)));
        let mut sent = 1;
        for n in 1..100u64 {
            p.push(&msg(n, 20)).unwrap();
            sent += 1;
        }
        // the lossy reader was lapped: it learns exactly how many it lost
        let got = drain(&mut lossy);
        let Read::Lagged(missed) = got[0] else {
            panic!("{got:?}")
        };
        let rest: Vec<u64> = got[1..]
            .iter()
            .map(|r| match r {
                Read::Msg(n, m) => {
                    assert_eq!(*m, msg(*n, 20));
                    *n
                }
                Read::Lagged(x) => panic!("lagged twice: {x}"),
            })
            .collect();
        assert_eq!(missed, rest[0] - 1, "it lost 1..first");
        assert_eq!(rest.last(), Some(&(sent - 1)));
        assert!(rest.windows(2).all(|w| w[1] == w[0] + 1));
        // a blocking one holds the producer
        let mut blocking = t.join(0, false, 0).unwrap();
        let mut n = sent;
        while p.push(&msg(n, 20)).is_ok() {
            n += 1;
        }
        assert_eq!(p.push(&msg(n, 20)), Err(RingError::Full));
        let got = drain(&mut blocking);
        assert_eq!(got.len() as u64, n - sent);
        assert_eq!(got[0], Read::Msg(sent, msg(sent, 20)));
        p.push(&msg(n, 20)).unwrap();
        // it leaves: the producer no longer waits
        t.leave(blocking, 0);
        for m in n + 1..n + 50 {
            p.push(&msg(m, 20)).unwrap();
        }
    }

    #[test]
    fn frames_are_invalidated_in_batches_never_the_newest_early() {
        let t = HeapTopic::new(4096, 2);
        let mut p = t.broadcaster();
        let mut r = t.join(0, false, 0).unwrap();
        let (mut moves, mut last) = (0u64, 0u64);
        let n = 2000u64;
        for m in 0..n {
            p.push(&msg(m, 40)).unwrap();
            assert_eq!(r.read().unwrap(), Read::Msg(m, msg(m, 40)));
            let oldest = t.words().marks.oldest.load(Ordering::Relaxed);
            if oldest != last {
                moves += 1;
                last = oldest;
            }
            // the newest frame is never given up before it is overwritten
            let newest = t.words().marks.newest.load(Ordering::Relaxed) - 1;
            assert!(
                !before(newest, oldest),
                "message {m}: oldest {oldest} past the newest {newest}"
            );
            // nothing intact is more than the ring behind
            let tail = t.words().producer.pos.load(Ordering::Relaxed);
            assert!(tail - oldest <= 4096);
        }
        // 64-byte frames: one move per batch (an eighth of the ring), not
        // one per message
        let batches = n * 64 / (4096 / BATCH);
        assert!(moves <= batches + 1, "{moves} moves of `oldest` for {batches} batches");
        assert!(moves >= batches / 2, "{moves} moves");
        // a lossy reader that joins with history gets what is still held,
        // and a lossy reader lapped counts exactly
        let mut lossy = t.join(1, true, 1000).unwrap();
        let got = drain(&mut lossy);
        assert!(got.len() as u64 >= (4096 - 4096 / BATCH) / 64 - 1, "{} held", got.len());
        assert_eq!(got.last(), Some(&Read::Msg(n - 1, msg(n - 1, 40))));
    }

    #[test]
    fn history_gives_the_last_k_messages_still_held() {
        let t = HeapTopic::new(1024, 2);
        let mut p = t.broadcaster();
        for n in 0..5u64 {
            p.push(&msg(n, 10)).unwrap();
        }
        let mut r = t.join(0, false, 3).unwrap();
        let got = drain(&mut r);
        assert_eq!(got, (2..5).map(|n| Read::Msg(n, msg(n, 10))).collect::<Vec<_>>());
        // more history than held: what is held
        for n in 5..200u64 {
            p.push(&msg(n, 10)).unwrap();
            r.read().unwrap();
        }
        let mut all = t.join(1, true, 1000).unwrap();
        let got = drain(&mut all);
        let Read::Msg(first, _) = got[0] else { panic!() };
        assert!(first > 100, "the early ones were overwritten");
        assert_eq!(got.last(), Some(&Read::Msg(199, msg(199, 10))));
        assert_eq!(got.len() as u64, 200 - first);
    }

    #[test]
    fn a_dead_seat_stops_holding_the_producer_and_is_reused() {
        let t = HeapTopic::new(256, 1);
        let mut p = t.broadcaster();
        let dead = t.join(0, false, 0).unwrap();
        let mut n = 0;
        while p.push(&msg(n, 20)).is_ok() {
            n += 1;
        }
        assert_eq!(p.blocking_seats(), vec![0]);
        p.drop_seat(0);
        let _ = dead; // never leaves: killed
        p.push(&msg(n, 20)).unwrap();
        let mut again = t.join(0, false, 0).unwrap();
        for m in n + 1..n + 40 {
            p.push(&msg(m, 20)).unwrap();
            assert_eq!(again.read().unwrap(), Read::Msg(m, msg(m, 20)));
        }
        assert_eq!(p.blocking_seats(), vec![0], "the new subscriber is waited for");
    }

    #[test]
    fn a_lossy_reader_lapped_mid_copy_discards_the_copy() {
        let t = HeapTopic::new(128, 1);
        let mut p = t.broadcaster();
        let mut r = t.join(0, true, 0).unwrap();
        p.push(&msg(0, 16)).unwrap();
        assert_eq!(r.read().unwrap(), Read::Msg(0, msg(0, 16)));
        p.push(&msg(1, 16)).unwrap();
        let m = r.peek().unwrap();
        // the producer laps it between peek and the check
        for n in 2..10 {
            p.push(&msg(n, 16)).unwrap();
        }
        assert!(!r.intact(&m).unwrap());
        match r.read().unwrap() {
            Read::Lagged(missed) => assert!(missed >= 1),
            x => panic!("{x:?}"),
        }
        let Read::Msg(n, body) = r.read().unwrap() else {
            panic!()
        };
        assert_eq!(body, msg(n, 16));
    }

    #[test]
    fn hostile_words_are_corrupt_or_ignored_not_a_crash() {
        let t = HeapTopic::new(256, 2);
        let mut p = t.broadcaster();
        let _blocking = t.join(0, false, 0).unwrap();
        p.push(b"hello").unwrap();
        // a blocking position that moves back
        t.words().seats[0].0.pos.store(u64::MAX - 7, Ordering::Relaxed);
        let mut failed = false;
        for _ in 0..20 {
            match p.push(&[0; 40]) {
                Ok(()) => {}
                Err(RingError::Corrupt(_)) => {
                    failed = true;
                    break;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(failed, "a head ahead of the tail was accepted");
        // a sequence number out of order
        let t = HeapTopic::new(256, 1);
        let mut p = t.broadcaster();
        let mut r2 = t.join(0, false, 0).unwrap();
        p.push(b"a").unwrap();
        p.push(b"b").unwrap();
        r2.read().unwrap();
        let m = r2.peek().unwrap();
        t.buf().store_word(m.at - 8, 7, Ordering::Relaxed);
        assert!(matches!(r2.read(), Err(RingError::Corrupt(_))));
        // the largest number there is, as a blocking reader's first message
        // (which it takes as its start): read, no overflow
        let t = HeapTopic::new(256, 1);
        let mut p = t.broadcaster();
        let mut r3 = t.join(0, false, 0).unwrap();
        p.push(b"a").unwrap();
        let m = r3.peek().unwrap();
        t.buf().store_word(m.at - 8, u64::MAX, Ordering::Relaxed);
        assert!(r3.read().is_ok());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 128 }))]

        /// Random joins, departures, publications and reads, two to four
        /// seats, blocking and lossy: a blocking subscriber gets every
        /// message from its start, in order; a lossy one's losses equal the
        /// gaps it sees; nobody sees a duplicate or a wrong byte.
        #[test]
        fn random_join_leave_publish(ops in proptest::collection::vec((0u8..8, 0u8..255), 1..600), seats in 2usize..5) {
            let t = HeapTopic::new(512, seats);
            let mut p = t.broadcaster();
            let mut readers: Vec<Option<(Reader, Option<u64>)>> = (0..seats).map(|_| None).collect();
            let mut sent = 0u64;
            for (op, arg) in ops {
                match op {
                    0..=2 => {
                        let len = usize::from(arg) % 60;
                        match p.push(&msg(sent, len)) {
                            Ok(()) => sent += 1,
                            Err(RingError::Full) => {
                                // only a blocking subscriber behind can hold it
                                proptest::prop_assert!(readers.iter().flatten().any(|(r, _)| !r.is_lossy()));
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    3 => {
                        let i = usize::from(arg) % seats;
                        match readers[i].take() {
                            Some((r, _)) => t.leave(r, i),
                            None => {
                                let (lossy, history) = (arg & 1 == 1, u64::from(arg >> 6));
                                let r = t.join(i, lossy, history).unwrap();
                                // A lossy reader knows the number of the
                                // first message it is owed: the next one
                                // published, or one of its history.
                                let first = r.next_seq;
                                if lossy {
                                    let e = first.expect("a lossy reader joined without its first number");
                                    if history == 0 {
                                        proptest::prop_assert_eq!(e, sent);
                                    } else {
                                        proptest::prop_assert!(e <= sent && sent - e <= history);
                                    }
                                }
                                readers[i] = Some((r, first));
                            }
                        }
                    }
                    _ => {
                        let Some((r, expect)) = readers[usize::from(arg) % seats].as_mut() else { continue };
                        for _ in 0..(arg % 5) + 1 {
                            match r.read() {
                                Ok(Read::Msg(n, body)) => {
                                    proptest::prop_assert_eq!(&body, &msg(n, body.len()));
                                    if let Some(e) = *expect {
                                        proptest::prop_assert_eq!(n, e, "a gap without Lagged, or a duplicate");
                                    }
                                    *expect = Some(n + 1);
                                }
                                Ok(Read::Lagged(missed)) => {
                                    proptest::prop_assert!(r.is_lossy(), "a blocking subscriber lost messages");
                                    // a lossy reader's `expect` is known from its join:
                                    // missed + received == published since (or held at) it
                                    proptest::prop_assert!(expect.is_some() && missed > 0);
                                    *expect = expect.map(|e| e + missed);
                                }
                                Err(RingError::Empty) => break,
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                    }
                }
            }
            // every subscriber can read up to the end; a lossy one has
            // then received or been told of every message from its start
            for (r, expect) in readers.iter_mut().flatten() {
                loop {
                    match r.read() {
                        Ok(Read::Msg(n, _)) => {
                            if let Some(e) = *expect { proptest::prop_assert_eq!(n, e); }
                            *expect = Some(n + 1);
                        }
                        Ok(Read::Lagged(missed)) => {
                            proptest::prop_assert!(r.is_lossy() && expect.is_some() && missed > 0);
                            *expect = expect.map(|e| e + missed);
                        }
                        Err(RingError::Empty) => break,
                        Err(e) => panic!("{e:?}"),
                    }
                }
                if let Some(e) = *expect { proptest::prop_assert_eq!(e, sent); }
            }
        }

        /// Arbitrary memory and a scribbling peer: errors, never a panic.
        #[test]
        fn arbitrary_memory_never_crashes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000)) {
            super::fuzz::run(&data);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::super::Counter;
    use super::*;
    use std::sync::Arc;

    struct Topic {
        producer: CounterRef,
        marks: Ref<Marks>,
        roster: Ref<Roster>,
        seats: Vec<SeatRef>,
        buf: Buf,
        cap: u64,
    }

    fn topic(cap: u64, seats: usize) -> Topic {
        Topic {
            producer: CounterRef::from_arc(Arc::new(Counter::new())),
            marks: Ref::from_arc(Arc::new(Marks::new())),
            roster: Ref::from_arc(Arc::new(Roster::new())),
            seats: (0..seats)
                .map(|_| SeatRef {
                    counter: CounterRef::from_arc(Arc::new(Counter::new())),
                    member: Ref::from_arc(Arc::new(Membership::new())),
                })
                .collect(),
            buf: Buf::new_loom(cap as usize),
            cap,
        }
    }

    impl Topic {
        fn broadcaster(&self) -> Broadcaster {
            let mut b = Broadcaster::new(
                self.producer.clone(),
                self.seats.clone(),
                self.marks.clone(),
                self.roster.clone(),
                self.buf.clone(),
                self.cap,
            );
            b.ring.jump_min = u64::MAX;
            b
        }

        fn join(&self, i: usize, lossy: bool) -> Reader {
            Reader::join(
                self.seats[i].clone(),
                self.producer.clone(),
                self.marks.clone(),
                self.roster.clone(),
                self.buf.clone(),
                self.cap,
                lossy,
                0,
                false,
            )
            .unwrap()
        }
    }

    fn push(p: &mut Broadcaster, m: &[u8]) {
        loop {
            match p.push(m) {
                Ok(()) => return,
                Err(RingError::Full) => loom::thread::yield_now(),
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    /// One read: `Some(Ok(seq, bytes))`, `Some(Err(missed))`, or `None`
    /// when empty.
    fn read(r: &mut Reader) -> Option<Result<(u64, Vec<u8>), u64>> {
        let m = match r.peek() {
            Ok(m) => m,
            Err(RingError::Empty) => return None,
            Err(e) => panic!("{e:?}"),
        };
        let mut out = vec![0; m.len];
        r.buf().read(m.at, &mut out);
        if !r.intact(&m).unwrap() {
            return None;
        }
        if let Some(missed) = r.accept(&m).unwrap() {
            return Some(Err(missed));
        }
        r.release(m);
        Some(Ok((m.seq, out)))
    }

    /// A publisher and two subscribers, one blocking (read on the
    /// publisher's thread between its pushes) and one lossy (its own
    /// thread), over a ring that holds one message: the blocking one gets
    /// every message intact; the lossy one never returns mixed bytes, and
    /// what it reports lost plus what it gets is everything.
    /// The model checker, with at most `PREEMPTIONS` forced switches per
    /// execution (loom's advice for models this size: bugs need few).
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(PREEMPTIONS);
        b.check(f);
    }

    const PREEMPTIONS: usize = 3;

    #[test]
    fn loom_broadcast_blocking_and_lossy() {
        model(|| {
            let t = topic(64, 2);
            let mut blocking = t.join(0, false);
            let mut lossy = t.join(1, true);
            let mut p = t.broadcaster();
            // An empty message first, read by both: the next ones start at
            // 16, so that message 2 (at 0, after padding) and its end mark
            // overwrite message 1's header, number and first payload bytes.
            push(&mut p, &[]);
            assert_eq!(read(&mut blocking), Some(Ok((0, vec![]))));
            assert_eq!(read(&mut lossy), Some(Ok((0, vec![]))));
            let h = loom::thread::spawn(move || {
                for n in 1..3u64 {
                    push(&mut p, &[n as u8; 16]);
                    loop {
                        match read(&mut blocking) {
                            Some(Ok((seq, bytes))) => {
                                assert_eq!((seq, bytes), (n, vec![n as u8; 16]));
                                break;
                            }
                            Some(Err(missed)) => panic!("a blocking reader lost {missed}"),
                            None => loom::thread::yield_now(),
                        }
                    }
                }
            });
            let mut next = 1u64;
            for _ in 0..2 {
                match read(&mut lossy) {
                    Some(Ok((seq, bytes))) => {
                        assert_eq!(bytes, vec![seq as u8; 16], "mixed bytes");
                        assert_eq!(seq, next, "a gap without Lagged");
                        next = seq + 1;
                    }
                    Some(Err(missed)) => next += missed,
                    None => loom::thread::yield_now(),
                }
            }
            assert!(next <= 3);
            h.join().unwrap();
        });
    }

    /// A lossy subscriber joins while the publisher overwrites the ring
    /// (which holds one message): it knows from its join the number of the
    /// first message it is owed, and what it reports lost plus what it gets
    /// is exactly every message from there (so a loss before its first
    /// read is counted too); never mixed bytes.
    #[test]
    fn loom_broadcast_lossy_join_while_publishing() {
        model(|| {
            const N: u64 = 3;
            let t = Arc::new(topic(64, 1));
            let mut p = t.broadcaster();
            push(&mut p, &[1; 16]);
            let done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let (t2, done2) = (t.clone(), done.clone());
            let h = loom::thread::spawn(move || {
                let mut r = t2.join(0, true);
                let first = r.next_seq.expect("a lossy reader joined without its first number");
                assert!(first <= N);
                let mut next = first;
                loop {
                    // Acquire, before the read: every push is visible to it.
                    let finished = done2.load(Ordering::Acquire);
                    match read(&mut r) {
                        Some(Ok((seq, bytes))) => {
                            assert_eq!(bytes, vec![seq as u8 + 1; 16], "mixed bytes");
                            assert_eq!(seq, next, "a gap without Lagged, or a duplicate");
                            next = seq + 1;
                        }
                        Some(Err(missed)) => next += missed,
                        None if finished => {
                            // everything published is accounted for
                            assert_eq!(next, N, "losses not counted");
                            return;
                        }
                        None => loom::thread::yield_now(),
                    }
                }
            });
            for n in 1..N {
                push(&mut p, &[n as u8 + 1; 16]);
            }
            done.store(true, Ordering::Release);
            h.join().unwrap();
        });
    }

    /// A blocking subscriber joins while the publisher overwrites: from the
    /// start it was given, it never reads an overwritten message (the
    /// publisher waits for it) and it gets every message after it, in
    /// order, up to the publisher's last.
    #[test]
    fn loom_broadcast_join_while_publishing() {
        model(|| {
            const N: u64 = 3;
            let t = Arc::new(topic(64, 1));
            let mut p = t.broadcaster();
            // the ring holds one message: the second push overwrites the first
            push(&mut p, &[1; 16]);
            let done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let (t2, done2) = (t.clone(), done.clone());
            let h = loom::thread::spawn(move || {
                let mut r = t2.join(0, false);
                let mut last = None;
                loop {
                    // Acquire, before the read: every push is visible to it.
                    let finished = done2.load(Ordering::Acquire);
                    match read(&mut r) {
                        Some(Ok((seq, bytes))) => {
                            assert_eq!(bytes, vec![seq as u8 + 1; 16], "an overwritten message");
                            if let Some(l) = last {
                                assert_eq!(seq, l + 1, "a message lost");
                            }
                            last = Some(seq);
                        }
                        Some(Err(missed)) => panic!("a blocking reader lost {missed}"),
                        None if finished => {
                            // everything published was visible: nothing may
                            // be left unread
                            let tail = t2.producer.get().pos.load(Ordering::Acquire);
                            assert_eq!(r.ring.head, tail, "a message never arrived");
                            return;
                        }
                        None => loom::thread::yield_now(),
                    }
                }
            });
            for n in 1..N {
                push(&mut p, &[n as u8 + 1; 16]);
            }
            done.store(true, Ordering::Release);
            h.join().unwrap();
        });
    }
}

/// The arming protocol of a topic's polling subscribers (`topic::poll`):
/// they share one poller bit on the `data` event, each publishes a poll
/// word, and the publisher rings every subscriber whose word is set. So a
/// subscriber that finds a message after arming must not clear the bit
/// (another may have set it meanwhile): with the disarm, a lost ring is
/// found (the `should_panic` model); without it, never.
#[cfg(all(test, loom))]
mod loom_poll_tests {
    use crate::core::event::{Event, POLLER};
    use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
    use loom::sync::Arc;

    fn shared_bit_model(disarm: bool) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(move || {
            const MESSAGES: u64 = 2;
            let event = Arc::new(Event::new());
            let published = Arc::new(AtomicU64::new(0));
            let words: Arc<[AtomicU32; 2]> = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
            let bells: Arc<[AtomicBool; 2]> = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
            let pollers: Vec<_> = (0..2)
                .map(|me| {
                    let (e, p, w, b) = (event.clone(), published.clone(), words.clone(), bells.clone());
                    loom::thread::spawn(move || {
                        let mut seen = 0;
                        for _round in 0..2 {
                            // drain, publish the poll word, arm, look
                            b[me].store(false, Ordering::Relaxed);
                            w[me].store(1, Ordering::Release);
                            e.arm_poll(POLLER);
                            let now = p.load(Ordering::Relaxed);
                            if now == seen {
                                return Some(seen); // waits on its bell now
                            }
                            seen = now;
                            if disarm {
                                e.disarm_poll(POLLER);
                            }
                        }
                        None // still busy: not waiting
                    })
                })
                .collect();
            for m in 1..=MESSAGES {
                published.store(m, Ordering::Relaxed);
                event.notify_or_ring(false, || {
                    for me in 0..2 {
                        if words[me].load(Ordering::Relaxed) != 0 {
                            bells[me].store(true, Ordering::Release);
                        }
                    }
                });
            }
            for (me, p) in pollers.into_iter().enumerate() {
                if let Some(seen) = p.join().unwrap() {
                    if seen < MESSAGES {
                        assert!(bells[me].load(Ordering::Acquire), "subscriber {me} missed its ring");
                    }
                }
            }
        });
    }

    #[test]
    fn loom_polling_subscribers_sharing_a_bit_never_miss_a_ring() {
        shared_bit_model(false);
    }

    #[test]
    #[should_panic(expected = "missed its ring")]
    fn loom_polling_subscribers_that_disarm_a_shared_bit_miss_rings() {
        shared_bit_model(true);
    }
}
