//! Joining a topic (through `core::participant`), waiting for its publisher,
//! the ring's memory, and leaving.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::core::bell::{self, Place};
use crate::core::doorbell::Life;
use crate::core::event::{self, LIVENESS_INTERVAL};
use crate::core::participant::{self, Member, Plan};
use crate::core::ring::broadcast::{Marks, Reader, Roster, SeatRef, MAX_SEATS};
use crate::core::ring::{self, Buf, CounterRef, Ref};
use crate::core::segment::{Kind, Segment, Spec};
use crate::core::slots::Presence;
use crate::error::{Error, Result, Role, Target};
use crate::posix::ShmName;

use super::layout::{layout_of, Header, DATA_OFFSET, DECIDED, DECIDING, MEMBARRIER, PUBLISHER, SLOTS, SLOTS_AT};
use super::poll::Polling;
use super::{Options, SubOptions};

/// One participant's hold on a topic: the object, its seat, the ring's
/// memory and the publisher's choices.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub role: Role,
    pub capacity: u64,
    pub spin: Duration,
    pub max_subscribers: usize,
    pub history: u64,
    /// A subscriber that came before the publisher announced itself from
    /// the ring's first byte (see `Reader::announce`).
    pub announced: bool,
    /// A subscriber that notifies the publisher without a fence (see
    /// `core::event`): both registered for global expedited membarriers,
    /// so the publisher, the one sleeper on `space`, issues one instead.
    pub fenceless: bool,
    /// Where the doorbells and lives are (`core::bell`).
    pub place: Place,
    /// Waiting through a descriptor (see `super::poll`).
    pub poll: Polling,
    /// Held while taking part, by the publisher and by a blocking
    /// subscriber: pollers waiting for them watch it (`core::doorbell`).
    life: Option<Life>,
    hdr: NonNull<Header>,
    member: Member,
}

// SAFETY: the header pointer points into the member's mapping, which the
// endpoint owns and which lives as long as it; the header is atomics only.
unsafe impl Send for Endpoint {}

fn spec(capacity: Option<u64>, mode: u32, allow_foreign: bool) -> Spec {
    Spec {
        kind: Kind::Topic,
        slots: SLOTS,
        data_offset: DATA_OFFSET,
        capacity,
        mode,
        allow_foreign,
    }
}

/// Joins `name` as its publisher, creating it if no subscriber has; settles
/// the capacity and writes the topic's config before taking the seat.
pub(crate) fn connect_publisher(name: &ShmName, opts: &Options) -> Result<Endpoint> {
    let target = Target::Posix(name.clone());
    let invalid = |reason: String| Error::InvalidArgument {
        target: target.clone(),
        reason,
    };
    if let Some(cap) = opts.capacity {
        if !ring::valid_capacity(cap) {
            return Err(invalid(format!(
                "capacity {cap} is not a power of two from {} to {} bytes",
                ring::MIN_CAPACITY,
                ring::MAX_CAPACITY
            )));
        }
    }
    if !(1..=MAX_SEATS).contains(&opts.max_subscribers) {
        return Err(invalid(format!(
            "max_subscribers {} is not from 1 to {MAX_SEATS}",
            opts.max_subscribers
        )));
    }
    let plan = Plan {
        spec: spec(
            Some(opts.capacity.unwrap_or(super::DEFAULT_CAPACITY)),
            opts.mode,
            opts.allow_foreign,
        ),
        slots_at: SLOTS_AT,
        seats: PUBLISHER..PUBLISHER + 1,
        reusable: false,
        takeover: true,
        role: Role::Publisher,
        interrupt: opts.interrupt.clone(),
    };
    let mut capacity = 0;
    let member = participant::join(name, &plan, |seg| {
        capacity = settle_capacity(seg, opts)?;
        write_config(seg, opts);
        Ok(())
    })?;
    let mut end = Endpoint::new(Role::Publisher, opts.spin, member, name, opts.allow_foreign)?;
    end.map(capacity)?;
    end.read_config()?;
    // Subscribers that poll watch it (one that polls before it is made
    // waits a moment for it: `Subscriber`'s arming).
    end.life = Some(Life::create(&end.place, PUBLISHER)?);
    end.header().events.0.peers.notify_always();
    Ok(end)
}

/// The capacity: this publisher's choice if it made the object, else the
/// one the object has (a subscriber that made it chose none: then ours).
fn settle_capacity(seg: &Segment, opts: &Options) -> Result<u64> {
    if seg.created {
        return Ok(opts.capacity.unwrap_or(super::DEFAULT_CAPACITY));
    }
    match seg.negotiate(opts.capacity, super::DEFAULT_CAPACITY, ring::valid_capacity)? {
        Ok(Some(cap)) => Ok(cap),
        Ok(None) => Err(seg.corrupt("no capacity decided")),
        Err(theirs) => Err(Error::CapacityMismatch {
            target: seg.target.clone(),
            actual: theirs,
            expected: opts.capacity.unwrap_or(0),
        }),
    }
}

/// Writes the publisher's choices once (a racing second publisher leaves
/// them alone: it will find the seat taken).
fn write_config(seg: &Segment, opts: &Options) {
    let config = &layout_of(&seg.map).config.0;
    if config
        .decided
        .compare_exchange(0, DECIDING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        config
            .max_subscribers
            .store(opts.max_subscribers as u32, Ordering::Relaxed);
        config.history.store(opts.history, Ordering::Relaxed);
        if event::membarrier::registered() {
            config.membarrier.store(MEMBARRIER, Ordering::Relaxed);
        }
        // Release: the fields above are visible to whoever Acquire-loads it.
        config.decided.store(DECIDED, Ordering::Release);
    }
}

/// What a subscriber found when it joined.
enum Found {
    /// A publisher has set the topic up.
    Ready,
    /// The publisher has closed this topic: its name is going; start anew.
    Finished,
}

/// Joins `name` as a subscriber, creating it if nobody has, and waits (at
/// most `opts.timeout`) until a publisher has set it up.
pub(crate) fn connect_subscriber(name: &ShmName, opts: &SubOptions) -> Result<Endpoint> {
    let deadline = opts.timeout.and_then(event::deadline);
    let plan = Plan {
        spec: spec(None, opts.mode, opts.allow_foreign),
        slots_at: SLOTS_AT,
        seats: 1..SLOTS as usize,
        reusable: true,
        takeover: true,
        role: Role::Subscriber,
        interrupt: opts.interrupt.clone(),
    };
    for attempt in 0..20 {
        if attempt > 0 {
            // the publisher that closed removes the name in a moment
            std::thread::sleep(Duration::from_millis(1));
        }
        // A notifier that will skip its fence says so before it takes part
        // (see `core::event`); whether it may skip it is known once the
        // publisher has set the topic up (`set_up`).
        let registered = event::membarrier::registered();
        let member = participant::join(name, &plan, |seg| {
            if registered {
                layout_of(&seg.map).events.0.space.announce_fenceless();
            }
            Ok(())
        })?;
        let mut end = Endpoint::new(Role::Subscriber, opts.spin, member, name, opts.allow_foreign)?;
        // a killed predecessor's doorbell is not ours: nothing to ring yet
        end.poll_word().store(0, Ordering::Relaxed);
        if !opts.lossy {
            // before it blocks the publisher (its mode, below or in
            // `Reader::join`): a polling publisher watches it
            end.life = Some(Life::create(&end.place, end.index())?);
        }
        // Before any publisher: take part from the first message on (the
        // ring's first byte), so that nothing published is missed.
        if end.presence(PUBLISHER)? == Presence::Empty {
            let (_, marks, roster) = end.producer_refs();
            let seat = end.seat(end.index() - 1);
            end.announced = Reader::announce(&seat, &marks, &roster, 0, 0, opts.lossy, true);
        }
        end.header().events.0.peers.notify_always();
        match end.wait_for_publisher(deadline)? {
            Found::Ready => {}
            Found::Finished => continue,
        }
        // The config (read after `decided`) says whether the publisher can
        // issue the membarrier in our place.
        end.fenceless = registered && end.header().config.0.membarrier.load(Ordering::Relaxed) == MEMBARRIER;
        if end.member.index() > end.max_subscribers {
            // Every seat it may use is taken: name the holder of the last.
            let p = end.member.presence(end.max_subscribers)?;
            return Err(Error::Busy {
                target: end.target().clone(),
                side: Role::Subscriber,
                pid: p.pid().unwrap_or(0),
                alive: true,
            });
        }
        return Ok(end);
    }
    Err(Error::Os {
        target: Target::Posix(name.clone()),
        op: "join",
        source: rustix::io::Errno::AGAIN,
    })
}

impl Endpoint {
    fn new(role: Role, spin: Duration, member: Member, name: &ShmName, allow_foreign: bool) -> Result<Endpoint> {
        let place = Place::of(name, member.seg(), allow_foreign)?;
        let poll = Polling::new(place.clone(), member.index(), SLOTS as usize)?;
        Ok(Endpoint {
            role,
            capacity: 0,
            spin,
            max_subscribers: 0,
            history: 0,
            announced: false,
            fenceless: false,
            place,
            poll,
            life: None,
            hdr: NonNull::from(layout_of(&member.seg().map)),
            member,
        })
    }

    /// The topic's header.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `hdr` points at the start of the member's mapping
        // (page-aligned, at least DATA_OFFSET bytes: checked by
        // `layout_of`), which lives as long as `self`; the header is atomics
        // only. The one place that replaces the mapping (`map`) re-points
        // `hdr` right after, failed or not.
        unsafe { self.hdr.as_ref() }
    }

    /// Maps the whole object, once the capacity is known.
    fn map(&mut self, capacity: u64) -> Result<()> {
        self.capacity = capacity;
        let mapped = self.member.seg_mut().map_all(capacity);
        // Re-pointed whatever `map_all` says: it may have replaced the
        // mapping before failing, and `Drop` reads the header.
        self.hdr = NonNull::from(layout_of(&self.member.seg().map));
        mapped
    }

    /// Reads and validates the publisher's choices.
    fn read_config(&mut self) -> Result<()> {
        let config = &self.header().config.0;
        let n = config.max_subscribers.load(Ordering::Relaxed) as usize;
        let history = config.history.load(Ordering::Relaxed);
        if !(1..=MAX_SEATS).contains(&n) {
            return Err(self.corrupt_error(format!("max_subscribers {n} is not from 1 to {MAX_SEATS}")));
        }
        self.max_subscribers = n;
        self.history = history;
        Ok(())
    }

    /// Waits until a publisher has set the topic up, then maps the ring.
    fn wait_for_publisher(&mut self, deadline: Option<Instant>) -> Result<Found> {
        loop {
            let peers = &self.header().events.0.peers;
            let seen = peers.seq.load(Ordering::Acquire);
            self.check_interrupt()?;
            self.member.seg().check_size(DATA_OFFSET)?;
            let publisher = self.member.presence(PUBLISHER)?;
            match publisher {
                // A subscriber announced before the publisher came is owed
                // everything it published, however soon it left.
                Presence::Closed { .. } | Presence::Dead { .. } if self.announced => return self.set_up(),
                Presence::Closed { .. } => return Ok(Found::Finished),
                Presence::Dead { pid } => {
                    return Err(Error::PeerGone {
                        target: self.target().clone(),
                        side: Role::Publisher,
                        pid,
                    })
                }
                Presence::Alive { .. } => return self.set_up(),
                Presence::Empty => {}
            }
            let mut slice = LIVENESS_INTERVAL;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::TimedOut {
                        target: self.target().clone(),
                        waiting_for: "a publisher",
                    });
                }
                slice = slice.min(d - now);
            }
            event::sleep_on(peers, seen, slice);
        }
    }

    /// Reads what the publisher set up (it did so before taking its seat)
    /// and maps the ring.
    fn set_up(&mut self) -> Result<Found> {
        let h = self.header();
        if h.config.0.decided.load(Ordering::Acquire) != DECIDED {
            return Err(self.corrupt_error("a publisher without a config".into()));
        }
        let cap = h.meta.capacity.load(Ordering::Acquire);
        if !ring::valid_capacity(cap) {
            return Err(self.corrupt_error(format!("invalid capacity {cap}")));
        }
        self.read_config()?;
        self.map(cap)?;
        Ok(Found::Ready)
    }

    pub(crate) fn target(&self) -> &Target {
        &self.member.seg().target
    }

    /// The seat this participant holds (0: the publisher; 1..: subscribers).
    pub(crate) fn index(&self) -> usize {
        self.member.index()
    }

    /// Who is in seat `i`.
    pub(crate) fn presence(&self, i: usize) -> Result<Presence> {
        self.member.presence(i)
    }

    /// The ring's bytes (after connecting, the whole object is mapped).
    pub(crate) fn buf(&self) -> Buf {
        let len = usize::try_from(self.capacity).expect("mapped, so it fits");
        assert!(self.member.seg().map.len() as u64 >= DATA_OFFSET + self.capacity);
        // SAFETY: the mapping holds DATA_OFFSET + capacity bytes (asserted),
        // page-aligned; the endpoint keeps it alive as long as the ring half
        // that holds this buffer (both live in the same Publisher or
        // Subscriber).
        unsafe {
            Buf::new(
                NonNull::new(self.member.seg().map.as_mut_ptr().add(DATA_OFFSET as usize))
                    .expect("mapping is not null"),
                len,
            )
        }
    }

    /// A read-only view of `len` bytes of the ring at `at`.
    pub(crate) fn view(&self, buf: &Buf, at: usize, len: usize) -> crate::map::View<'_> {
        // SAFETY: `range` checks that the bytes lie in the ring, whose
        // mapping lives as long as `self`, which the view borrows.
        unsafe { crate::map::View::new(buf.range(at, len), len) }
    }

    /// A writable view of `len` bytes of the ring at `at` (the publisher's
    /// grant: the ring's protocol gives them to it alone).
    pub(crate) fn view_mut(&self, buf: &Buf, at: usize, len: usize) -> crate::map::ViewMut<'_> {
        // SAFETY: as in `view`; a view makes no reference to the bytes.
        unsafe { crate::map::ViewMut::new(buf.range(at, len), len) }
    }

    /// The publisher's counter, marks and the roster.
    pub(crate) fn producer_refs(&self) -> (CounterRef, Ref<Marks>, Ref<Roster>) {
        let h = self.header();
        // SAFETY: all lie in the header, which the mapping keeps alive as
        // long as the endpoint, and the endpoint outlives the ring half that
        // holds these (both live in the same Publisher or Subscriber).
        unsafe {
            (
                CounterRef::new(NonNull::from(&h.producer.0.counter)),
                Ref::new(NonNull::from(&h.producer.0.marks)),
                Ref::new(NonNull::from(&h.roster.0)),
            )
        }
    }

    /// Subscriber seat `i` (0-based: participant seat `i + 1`).
    pub(crate) fn seat(&self, i: usize) -> SeatRef {
        let words = &self.header().seats[i].0;
        // SAFETY: as in `producer_refs`.
        unsafe {
            SeatRef {
                counter: CounterRef::new(NonNull::from(&words.counter)),
                member: Ref::new(NonNull::from(&words.member)),
            }
        }
    }

    /// `Err(Truncated)` if the object shrank under the mapping.
    pub(crate) fn check_intact(&self) -> Result<()> {
        self.member.seg().map.check_intact()
    }

    /// [`check_intact`](Self::check_intact), and `Err(Truncated)` if the
    /// object is smaller now than the topic needs (by `fstat`).
    pub(crate) fn check_size(&self) -> Result<()> {
        self.member.seg().check_size(DATA_OFFSET + self.capacity)
    }

    /// `Err(Interrupted)` once the caller's interrupt flag is set.
    pub(crate) fn check_interrupt(&self) -> Result<()> {
        self.member.check_interrupt()
    }

    /// For a subscriber: `Err(Closed)` if the publisher has left in order,
    /// `Err(PeerGone)` if it died, `Ok` while it takes part.
    pub(crate) fn check_publisher(&self) -> Result<()> {
        self.check_size()?;
        match self.presence(PUBLISHER)? {
            Presence::Closed { .. } => Err(Error::Closed {
                target: self.target().clone(),
                side: Role::Publisher,
            }),
            Presence::Dead { pid } => Err(Error::PeerGone {
                target: self.target().clone(),
                side: Role::Publisher,
                pid,
            }),
            Presence::Alive { .. } | Presence::Empty => Ok(()),
        }
    }

    /// A [`Error::Corrupt`] about this topic, or [`Error::Truncated`] if
    /// what looked corrupt is the zero pages of a shrunk object.
    pub(crate) fn corrupt_error(&self, reason: String) -> Error {
        self.member.seg().corrupt(reason)
    }

    /// This participant's poll word (`super::poll`).
    pub(crate) fn poll_word(&self) -> &AtomicU32 {
        let h = self.header();
        match self.index() {
            PUBLISHER => &h.producer.0.poll,
            i => &h.seats[(i - 1).min(MAX_SEATS - 1)].0.poll,
        }
    }

    /// Rings the publisher's doorbell if it polls (it waits for room).
    #[cold]
    pub(crate) fn ring_publisher(&self) -> bool {
        let nonce = self.header().producer.0.poll.load(Ordering::Relaxed);
        self.poll.ring(PUBLISHER, nonce)
    }

    /// Rings the doorbell of every subscriber that polls.
    #[cold]
    pub(crate) fn ring_subscribers(&self) -> bool {
        let h = self.header();
        let mut delivered = true;
        for i in 0..self.max_subscribers.min(MAX_SEATS) {
            let nonce = h.seats[i].0.poll.load(Ordering::Relaxed);
            delivered &= self.poll.ring(i + 1, nonce);
        }
        delivered
    }

    /// A snapshot of the header, through this participant's own mapping.
    pub(crate) fn info(&self) -> super::TopicInfo {
        let mut info = super::info::read(self.header(), &self.member.seg().shm);
        // Our own lock is not reported to our own description.
        let me = self.index();
        if me == PUBLISHER {
            if let Some(p) = info.publisher.as_mut().filter(|p| !p.closed) {
                p.alive = true;
            }
        } else if let Some(s) = info.subscribers.iter_mut().find(|s| s.seat == me - 1 && !s.closed) {
            s.alive = true;
        }
        info
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if !self.member.is_owner() {
            // A forked child's copy: the seat belongs to the parent.
            return;
        }
        // Nobody rings this side any more.
        self.poll_word().store(0, Ordering::Relaxed);
        if self.role == Role::Subscriber {
            // The publisher stops waiting for this seat (whether or not the
            // subscriber got as far as reading): the one place a subscriber
            // leaves it.
            let (_, _, roster) = self.producer_refs();
            self.seat(self.index() - 1).leave(&roster);
        }
        self.member.leave();
        let events = &self.header().events.0;
        events.data.notify_always();
        events.space.notify_always();
        events.peers.notify_always();
        if self.role == Role::Subscriber {
            // a polling publisher held up by this seat looks again
            self.ring_publisher();
        }
        self.poll.leave();
        if let Some(life) = self.life.take() {
            // watchers see the hang-up now
            life.remove_name();
        }
        let unlinked = if self.role == Role::Publisher {
            // The publisher's seat is never taken again, so nobody can
            // publish here any more: new subscribers start a new topic
            // under the name, while these drain this one.
            self.member.unlink_if(|| true)
        } else {
            // The last one out (the publisher gone or never come) removes it.
            self.member
                .unlink_if(|| !self.member.anyone_else_alive().unwrap_or(true))
        };
        if unlinked {
            // doorbells and lives of participants that were killed (those
            // still taking part keep their descriptors)
            bell::remove_of(&self.place.object, self.place.ino);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ring::broadcast::{MODE_BLOCKING, MODE_FREE, MODE_LOSSY};
    use crate::topic::{Publisher, Subscriber};

    /// A subscriber leaves its seat once: one bump of the roster (one
    /// SeqCst RMW here, one rescan by the publisher), and the seat is free.
    #[test]
    fn a_subscriber_leaves_its_seat_once() {
        let name = ShmName::new(format!("/shmkit-unit-topic-leave-{}", std::process::id())).unwrap();
        let _ = crate::posix::remove(&name);
        let mut publisher = Publisher::connect(&name, &Options::new()).unwrap();
        let (shm, map) = crate::core::segment::open_for_info(&name, Kind::Topic, DATA_OFFSET).unwrap();
        let h = layout_of(&map);
        let changes = || h.roster.0.changes.load(Ordering::SeqCst);
        for (round, lossy) in [false, true, false].into_iter().enumerate() {
            let before = changes();
            let mut sub = Subscriber::connect(&name, &SubOptions::new().lossy(lossy)).unwrap();
            let joined = changes();
            // nothing overwritten under the join: it announces once
            assert_eq!(joined, before.wrapping_add(1), "round {round}: one join");
            let mode = &h.seats[sub.seat()].0.member.mode;
            let expected = if lossy { MODE_LOSSY } else { MODE_BLOCKING };
            assert_eq!(mode.load(Ordering::SeqCst), expected);
            publisher.send(b"one").unwrap();
            assert_eq!(sub.recv().unwrap(), b"one");
            assert_eq!(changes(), joined, "reading changes no membership");
            drop(sub);
            assert_eq!(changes(), joined.wrapping_add(1), "round {round}: one departure");
            assert_eq!(mode.load(Ordering::SeqCst), MODE_FREE);
        }
        // the publisher took note of every departure and waits for nobody
        for _ in 0..100 {
            publisher.send(&[7; 200]).unwrap();
        }
        drop(publisher);
        drop((map, shm));
        assert!(
            crate::posix::PosixShm::open(&name, &Default::default()).is_err(),
            "removed"
        );
    }
}
