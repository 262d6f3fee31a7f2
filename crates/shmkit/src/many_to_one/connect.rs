//! Joining a many-to-one object or a service: the seat count, the ring
//! size, the participant's seat, the mapping, and leaving.
//!
//! Shared by both kinds: the receiver (server) holds slot 0, one-shot; the
//! senders (clients) hold slots 1..=N, reusable.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::event::{self, LIVENESS_INTERVAL};
use crate::core::participant::{self, Member, Plan};
use crate::core::ring;
use crate::core::segment::{self, Kind, Spec};
use crate::core::slots::{self, Presence};
use crate::error::{Error, Result, Role, Target};
use crate::posix::ShmName;

use super::layout::{Geometry, Region, MAX_SEATS, SLOTS_AT};
use super::poll::{Polling, HUB};
use crate::core::bell::{self, Place, Ringer};
use crate::core::event::Event;

/// What a participant asks for.
#[derive(Debug, Clone)]
pub(crate) struct Want {
    pub kind: Kind,
    /// Rings per seat.
    pub rings: usize,
    /// The receiver's (server's) role, or the senders' (clients').
    pub role: Role,
    /// Whether `role` is the one receiver (server).
    pub collector: bool,
    pub seats: Option<usize>,
    pub default_seats: usize,
    pub capacity: Option<u64>,
    pub default_capacity: u64,
    pub mode: u32,
    pub allow_foreign: bool,
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// A participant's hold on the object: its seat and the memory.
#[derive(Debug)]
pub(crate) struct Link {
    pub region: Region,
    pub member: Member,
    /// Whether this side is the receiver (server).
    collector: bool,
    /// The other side's role (for errors).
    pub peer_role: Role,
    /// This process is registered for global expedited membarriers (see
    /// `core::event`).
    registered: bool,
    /// A sender (client): it notifies without a fence — it is registered,
    /// and so is the receiver (server), which sleeps on what it notifies.
    /// The receiver decides per seat (`Collector::fenceless_for`).
    fenceless: bool,
    /// The descriptor, doorbells and lives (see `poll`): boxed, off the
    /// lines the busy path reads.
    pub poll: Box<Polling>,
    /// A spoke's last ring to the hub, when it leaves: declared after
    /// `member`, so it rings once the slot's lock is gone (see `Drop`).
    farewell: Farewell,
}

/// Rings the hub's doorbell, if it has one, when dropped: opened only
/// then, after the leaver's lock is gone, so that a hub whose doorbell is
/// made before that is rung, and one made after it finds the leaver gone
/// when it arms.
#[derive(Debug, Default)]
struct Farewell(Option<Place>);

impl Drop for Farewell {
    fn drop(&mut self) {
        if let Some(place) = &self.0 {
            if let Ok(Some(ringer)) = Ringer::open(place, HUB) {
                ringer.ring();
            }
        }
    }
}

/// Joins `name` as `want` says: learns the number of seats of an existing
/// object (or makes one with the asked or default number), claims a seat,
/// and maps the rings.
pub(crate) fn join(name: &ShmName, want: &Want, peer_role: Role) -> Result<Link> {
    let target = Target::Posix(name.clone());
    let invalid = |reason: String| Error::InvalidArgument {
        target: target.clone(),
        reason,
    };
    if let Some(cap) = want.capacity {
        if !ring::valid_capacity(cap) {
            return Err(invalid(format!(
                "capacity {cap} is not a power of two from {} to {} bytes",
                ring::MIN_CAPACITY,
                ring::MAX_CAPACITY
            )));
        }
    }
    if let Some(n) = want.seats {
        if !(1..=MAX_SEATS).contains(&n) {
            return Err(invalid(format!("{n} seats: from 1 to {MAX_SEATS} are possible")));
        }
    }
    let mut existing = existing_seats(name, want.kind)?;
    if let (Some(n), Some(m)) = (existing, want.seats) {
        // An abandoned object of another size is taken over (the join below
        // could not: it refuses a header of another size before it looks).
        if n != m && take_over_if_abandoned(name, want, n)? {
            existing = None;
        }
    }
    let seats = match existing {
        Some(n) => {
            if want.seats.is_some_and(|m| m != n) {
                return Err(invalid(format!(
                    "it has {n} seats for {}s, not {}",
                    peer_or_self(want),
                    want.seats.unwrap_or(0)
                )));
            }
            n
        }
        None => want.seats.unwrap_or(want.default_seats),
    };
    let per_ring = want.capacity.unwrap_or(want.default_capacity);
    let mut geo = Geometry {
        seats,
        rings: want.rings,
        cap: per_ring,
    };
    let total = geo.data_len().ok_or_else(|| {
        invalid(format!(
            "{seats} × {} rings of {per_ring} bytes is too large",
            want.rings
        ))
    })?;
    let plan = Plan {
        spec: Spec {
            kind: want.kind,
            slots: geo.slots(),
            data_offset: geo.data_offset() as u64,
            capacity: Some(total),
            mode: want.mode,
            allow_foreign: want.allow_foreign,
        },
        slots_at: SLOTS_AT,
        seats: if want.collector { 0..1 } else { 1..1 + seats },
        reusable: !want.collector,
        takeover: true,
        role: want.role,
        interrupt: want.interrupt.clone(),
    };
    let mut decided = 0;
    let registered = event::membarrier::registered();
    let mut member = participant::join(name, &plan, |seg| {
        if registered {
            announce_fenceless(seg, geo, want.collector);
        }
        // The creator decided the ring size; an opener learns it (or
        // insists on the one it asked for).
        let total = seg.meta().capacity.load(Ordering::Acquire);
        let rings = (seats * want.rings) as u64;
        let per = total / rings;
        if total % rings != 0 || !ring::valid_capacity(per) {
            return Err(seg.corrupt(format!("invalid capacity {total} for {rings} rings")));
        }
        if let Some(asked) = want.capacity.filter(|&c| c != per) {
            return Err(Error::CapacityMismatch {
                target: seg.target.clone(),
                actual: per,
                expected: asked,
            });
        }
        decided = per;
        Ok(())
    })?;
    geo.cap = decided;
    let total = geo.data_len().expect("checked by the creator's size");
    member.seg_mut().map_all(total)?;
    let map = &member.seg().map;
    // SAFETY: the mapping holds the header and every ring (`map_all`), is
    // page-aligned, and lives in `member`, which the link owns: the link
    // (and every ring half made from its region, which live beside it in the
    // same endpoint) goes with it.
    let region = unsafe { Region::new(NonNull::new(map.as_mut_ptr()).expect("mapped"), map.len(), geo) };
    let place = Place::of(name, member.seg(), want.allow_foreign)?;
    let poll = Box::new(Polling::new(place, member.index(), seats)?);
    let link = Link {
        region,
        member,
        collector: want.collector,
        peer_role,
        registered,
        fenceless: false,
        poll,
        farewell: Farewell::default(),
    };
    if want.collector {
        // Spokes that polled before our life existed add their watch now.
        for s in 0..seats {
            link.poll.ring(1 + s, link.region.ctl(s).poll.load(Ordering::Relaxed));
        }
    }
    if !want.collector {
        // Before this sender's first frame: the receiver learns from the
        // seat whether it may notify this sender without a fence. The
        // client also notifies the seat's `out_space`, which a server may
        // sleep on: announced (and fenced, as taking part would) before.
        let ctl = link.region.ctl(link.seat());
        // a killed predecessor's doorbell is not ours
        ctl.poll.store(0, Ordering::Relaxed);
        ctl.fenceless.store(u32::from(registered), Ordering::Release);
        if registered {
            ctl.out_space.announce_fenceless();
            std::sync::atomic::fence(Ordering::SeqCst);
        }
        link.region.top().joined.fetch_add(1, Ordering::AcqRel);
        // A polled hub that looked for new spokes' lives before the count
        // moved looks again (see `poll`). Its bit is left set: were this
        // process killed before its ring, the next notifier still rings
        // (taking the bit, it would leave the hub unrung by anybody).
        if link.region.top().data.pollers_armed() {
            link.ring_hub();
        }
    }
    link.region.top().peers.notify_always();
    Ok(link)
}

/// Says, before this participant takes part, that it notifies without a
/// fence (see `core::event`): a sender (client) on the event it notifies
/// for every seat, the receiver's `data`; the receiver (server) on the
/// events of every seat, which only it notifies. A sleeper that sees the
/// word set supplies the barrier with a membarrier.
#[allow(unsafe_code)]
fn announce_fenceless(seg: &segment::Segment, geo: Geometry, collector: bool) {
    let map = &seg.map;
    // SAFETY: the segment maps its header (`data_offset` bytes), which
    // `Region::new` checks against `geo`, page-aligned; the region is used
    // only in this function, while `seg` holds the mapping.
    let region = unsafe { Region::new(NonNull::new(map.as_mut_ptr()).expect("mapped"), map.len(), geo) };
    if collector {
        for s in 0..geo.seats {
            let ctl = region.ctl(s);
            ctl.space.announce_fenceless();
            ctl.reply.announce_fenceless();
        }
    } else {
        region.top().data.announce_fenceless();
    }
}

fn peer_or_self(want: &Want) -> &'static str {
    if want.collector {
        match want.kind {
            Kind::Service => "client",
            _ => "sender",
        }
    } else {
        want.role.name()
    }
}

/// Removes `name`, an object of `n` seats, if nobody takes part in it any
/// more and somebody did (under its exclusive `flock`, if it still names the
/// same object and is still abandoned). Whether it did.
fn take_over_if_abandoned(name: &ShmName, want: &Want, n: usize) -> Result<bool> {
    let geo = Geometry {
        seats: n,
        rings: want.rings,
        cap: 0,
    };
    let spec = Spec {
        kind: want.kind,
        slots: geo.slots(),
        data_offset: geo.data_offset() as u64,
        capacity: None,
        mode: want.mode,
        allow_foreign: want.allow_foreign,
    };
    let seg = segment::Segment::create_or_open(name, &spec)?;
    let all = seg.slots(SLOTS_AT, geo.slots() as usize);
    let abandoned = || {
        let mut used = seg.created; // made just now, by this call: nobody's
        for (i, slot) in all.iter().enumerate() {
            match slots::presence(&seg.shm, i, slot) {
                Ok(p) if p.is_alive() => return false,
                Ok(p) => used |= p.is_used(),
                Err(_) => return false,
            }
        }
        used
    };
    Ok(abandoned() && seg.unlink_if(abandoned))
}

/// The number of seats of the existing object `name`, if there is one.
fn existing_seats(name: &ShmName, kind: Kind) -> Result<Option<usize>> {
    match segment::open_for_info(name, kind, 4096) {
        Ok((_shm, map)) => {
            let slots = segment::meta_of(&map).slots.load(Ordering::Relaxed) as usize;
            if !(2..=1 + MAX_SEATS).contains(&slots) {
                return Err(Error::Corrupt {
                    target: Target::Posix(name.clone()),
                    reason: format!("{slots} participant slots"),
                });
            }
            Ok(Some(slots - 1))
        }
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Link {
    /// The object, for errors.
    pub(crate) fn target(&self) -> &Target {
        self.member.target()
    }

    /// This sender's (client's) seat.
    pub(crate) fn seat(&self) -> usize {
        self.member.index() - 1
    }

    /// `Err(Closed)` if the receiver (server) has left, `Err(PeerGone)` if
    /// it died, `Ok(true)` while it takes part, `Ok(false)` before it came.
    pub(crate) fn collector_present(&self) -> Result<bool> {
        match self.member.presence(0)? {
            Presence::Alive { .. } => Ok(true),
            Presence::Empty => Ok(false),
            Presence::Closed { .. } => Err(Error::Closed {
                target: self.target().clone(),
                side: self.peer_role,
            }),
            Presence::Dead { pid } => Err(Error::PeerGone {
                target: self.target().clone(),
                side: self.peer_role,
                pid,
            }),
        }
    }

    /// Whether the receiver (server) has left in order: a cheap load.
    #[inline]
    pub(crate) fn collector_closed(&self) -> bool {
        self.region.slot(0).state.load(Ordering::Acquire) == slots::CLOSED
    }

    /// Whether the participant in slot `i` has left in order (its slot
    /// says so; its lock may still be held by copies of its descriptors).
    pub(crate) fn has_left(&self, i: usize) -> bool {
        self.region.slot(i).state.load(Ordering::Acquire) == slots::CLOSED
    }

    /// `Err(Truncated)` if the object shrank.
    pub(crate) fn check_size(&self) -> Result<()> {
        let g = self.region.geo();
        self.member
            .seg()
            .check_size(g.data_offset() as u64 + g.data_len().unwrap_or(u64::MAX))
    }

    /// `Err(Truncated)` if the mapping lost its pages (no system call).
    #[inline]
    pub(crate) fn check_intact(&self) -> Result<()> {
        self.member.seg().map.check_intact()
    }

    /// [`check_intact`](Self::check_intact) after this side wrote a ring
    /// and notified, as `channel::connect::Endpoint::check_written`: a
    /// fenceless notifier needs no fence before the check on x86-64 (see
    /// there), elsewhere it fences.
    #[inline]
    pub(crate) fn check_written(&self, fenceless: bool) -> Result<()> {
        if fenceless && cfg!(not(target_arch = "x86_64")) {
            self.member.seg().map.check_intact_after_writes()
        } else {
            self.member.seg().map.check_intact()
        }
    }

    /// Notifies `event`, which the hub sleeps on or polls (`data`): rings
    /// its doorbell if it armed.
    #[inline]
    pub(crate) fn notify_hub(&self, event: &Event, fenceless: bool) {
        event.notify_or_ring(fenceless, || self.ring_hub());
    }

    /// Rings the hub's doorbell, if it has one.
    #[cold]
    pub(crate) fn ring_hub(&self) -> bool {
        self.poll.ring(HUB, self.region.top().poll.load(Ordering::Relaxed))
    }

    /// Notifies `event` of seat `s` (`space`, `reply`), which its spoke
    /// sleeps on or polls: rings its doorbell if it armed.
    #[inline]
    pub(crate) fn notify_spoke(&self, s: usize, event: &Event, fenceless: bool) {
        event.notify_or_ring(fenceless, || {
            self.poll.ring(1 + s, self.region.ctl(s).poll.load(Ordering::Relaxed))
        });
    }

    /// For a polled spoke that found nothing to do: `collector_present`'s
    /// errors, once the hub is gone — waiting a moment for its slot to say
    /// so if its life has hung up (see `participant::confirm_gone`).
    pub(crate) fn check_hub_polled(&self) -> Result<()> {
        self.collector_present()?;
        if self.poll.hub_hung_up() {
            participant::confirm_gone(|| self.collector_present().map(|_| ()))?;
        }
        Ok(())
    }

    /// Arms this side on `event` (see `poll`); `Ok` at once if it was never
    /// polled.
    #[inline]
    pub(crate) fn arm(&self, event: &Event) -> Result<bool> {
        if !self.poll.polled() {
            return Ok(false);
        }
        if self.collector {
            let top = self.region.top();
            let rung = self.poll.arm(&top.poll, event, false)?;
            self.poll.watch_spokes(&top.joined, self.region.geo().seats, |slot| {
                matches!(self.member.presence(slot), Ok(Presence::Alive { .. })) && !self.has_left(slot)
            });
            Ok(rung)
        } else {
            self.poll.arm(&self.region.ctl(self.seat()).poll, event, true)
        }
    }

    /// Whether a sender (client) notifies the receiver (server) without a
    /// fence (see the field).
    #[inline]
    pub(crate) fn fenceless(&self) -> bool {
        self.fenceless
    }

    /// Whether this side, the receiver (server), is registered for
    /// membarriers: it then notifies a seat's events without a fence when
    /// the seat's sender is registered too (`Collector::fenceless_for`).
    #[inline]
    pub(crate) fn registered(&self) -> bool {
        self.registered
    }

    /// What a waiting sender (client) checks: the interrupt, the object's
    /// size, the receiver (server).
    pub(crate) fn check_wait(&self) -> Result<()> {
        self.member.check_interrupt()?;
        self.check_size()?;
        self.collector_present().map(|_| ())
    }

    /// A sender (client) waits until the receiver (server) takes part and
    /// has started generation `gen` of its seat (see `seats`), at most until
    /// `deadline`.
    pub(crate) fn wait_for_ring(
        &mut self,
        gen: u32,
        deadline: Option<Instant>,
        waiting_for: &'static str,
    ) -> Result<()> {
        let s = self.seat();
        let region = self.region;
        let space = &region.ctl(s).space;
        loop {
            let seen = space.seq.load(Ordering::Acquire);
            self.member.check_interrupt()?;
            self.check_size()?;
            if self.collector_present()? && super::seats::ring_ready(&self.region, s, gen, std::process::id()) {
                // The receiver, present, announced itself before it took
                // part: skip the fence only if it can supply the barrier.
                self.fenceless = self.registered && space.fenceless.load(Ordering::Acquire) != 0;
                return Ok(());
            }
            let mut slice = LIVENESS_INTERVAL;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::TimedOut {
                        target: self.target().clone(),
                        waiting_for,
                    });
                }
                slice = slice.min(d - now);
            }
            event::sleep_on(space, seen, slice);
        }
    }

    /// For the receiver (server): `Ok` until N senders (clients) have
    /// joined (N = the seats) and all have gone; then `Err(PeerGone)` if
    /// one of the last in their seats died, else `Err(Closed)`.
    ///
    /// A sender that has left in order (its slot says `CLOSED`) has gone,
    /// whether or not its lock is still held: a process forked by another
    /// thread holds copies of the leaver's descriptors until it `exec`s,
    /// and the lock's going wakes no poller (the leaver's last ring came
    /// before it).
    pub(crate) fn check_ended(&self) -> Result<()> {
        let seats = self.region.geo().seats;
        if (self.region.top().joined.load(Ordering::Acquire) as usize) < seats {
            return Ok(());
        }
        let mut dead = None;
        for i in 1..=seats {
            match self.member.presence(i)? {
                Presence::Alive { .. } if !self.has_left(i) => return Ok(()),
                Presence::Alive { .. } => {}
                Presence::Empty => {}
                Presence::Dead { pid } => {
                    dead.get_or_insert(pid);
                }
                Presence::Closed { .. } => {}
            }
        }
        Err(match dead {
            Some(pid) => Error::PeerGone {
                target: self.target().clone(),
                side: self.peer_role,
                pid,
            },
            None => Error::Closed {
                target: self.target().clone(),
                side: self.peer_role,
            },
        })
    }

    /// The largest message a ring carries.
    pub(crate) fn max_message(&self) -> usize {
        ring::max_message(self.region.geo().cap) as usize
    }
}

/// A timeout's deadline, if any.
pub(crate) fn deadline_of(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(event::deadline)
}

impl Drop for Link {
    fn drop(&mut self) {
        if !self.member.is_owner() {
            // A forked child's copy: nothing to leave.
            return;
        }
        self.member.leave();
        let top = self.region.top();
        top.data.notify_always();
        top.peers.notify_always();
        let removed = if self.collector {
            self.poll.leave(&top.poll);
            for s in 0..self.region.geo().seats {
                let ctl = self.region.ctl(s);
                ctl.space.notify_always();
                ctl.reply.notify_always();
            }
            // The receiver's seat is never taken again: the object is
            // finished, and its name has no use any more.
            self.member.unlink_if(|| true)
        } else {
            let ctl = self.region.ctl(self.seat());
            self.poll.leave(&ctl.poll);
            ctl.out_space.notify_always();
            // A polled receiver learns the end of the stream: rung once
            // this participant's lock is gone too (a leaver's slot shows
            // it alive until then), when the fields drop after this —
            // whether it polls now or not: it may make its doorbell
            // meanwhile (one open(2) when a sender leaves).
            self.farewell.0 = Some(self.poll.place().clone());
            // The last to leave, once the receiver is gone, removes the name.
            let member = &self.member;
            let receiver_gone = !matches!(member.presence(0), Ok(Presence::Alive { .. }));
            receiver_gone
                && !member.anyone_else_alive().unwrap_or(true)
                && member.unlink_if(|| !member.anyone_else_alive().unwrap_or(true))
        };
        if removed {
            // doorbells and lives that killed participants left beside it
            let place = self.poll.place();
            bell::remove_of(&place.object, place.ino);
        }
    }
}

/// Opens the existing object `name` of `kind` read-only and runs `f` over
/// its header (for `info`); `f` must not keep the region.
pub(crate) fn with_header<T>(
    name: &ShmName,
    kind: Kind,
    rings: usize,
    f: impl FnOnce(&Region, &crate::posix::PosixShm) -> T,
) -> Result<T> {
    let target = Target::Posix(name.clone());
    let corrupt = |reason: String| Error::Corrupt {
        target: target.clone(),
        reason,
    };
    let (shm, first) = segment::open_for_info(name, kind, 4096)?;
    let meta = segment::meta_of(&first);
    let slots = meta.slots.load(Ordering::Relaxed) as usize;
    if !(2..=1 + MAX_SEATS).contains(&slots) {
        return Err(corrupt(format!("{slots} participant slots")));
    }
    let total = meta.capacity.load(Ordering::Acquire);
    let seats = slots - 1;
    let per = total / (seats * rings) as u64;
    if total % (seats * rings) as u64 != 0 || !ring::valid_capacity(per) {
        return Err(corrupt(format!("invalid capacity {total} for {} rings", seats * rings)));
    }
    let geo = Geometry { seats, rings, cap: per };
    if shm.size()? < geo.data_offset() as u64 {
        return Err(corrupt("too small for its header".into()));
    }
    let map = shm.map_range(0, geo.data_offset(), crate::map::Access::ReadOnly)?;
    // SAFETY: the read-only mapping holds the header (mapped with its
    // size), page-aligned, and outlives `f`, which only loads (the caller's
    // contract: it keeps no copy of the region).
    let region = unsafe { Region::new(NonNull::new(map.as_mut_ptr()).expect("mapped"), map.len(), geo) };
    let out = f(&region, &shm);
    map.check_intact()?;
    Ok(out)
}
