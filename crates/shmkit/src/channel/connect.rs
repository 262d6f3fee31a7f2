//! Meeting the other side: the segment, the slot, the capacity, the wait
//! for the peer, and leaving.

use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::core::bell::{Bell, Place, Ringer};
use crate::core::event::{self, Event, LIVENESS_INTERVAL, POLLER};
use crate::core::participant::{self, Member, Plan};
use crate::core::ring::{self, Buf, CounterRef};
use crate::core::segment::{Kind, Segment, Spec};
use crate::core::slots::{self, Presence};
use crate::error::{Error, Result, Role, Target};
use crate::posix::ShmName;

use super::layout::{slot_index, Header, DATA_OFFSET, SLOTS, SLOTS_AT};
use super::Options;

/// One side's hold on a channel: the object, its seat, and the ring's
/// memory.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub role: Role,
    pub capacity: u64,
    pub spin: std::time::Duration,
    /// This process notifies without a fence (see `core::event`): it and
    /// its peer both registered for global expedited membarriers.
    pub fenceless: bool,
    /// The peer's pid as its slot records it (display only).
    pub peer_pid: Option<u32>,
    hdr: NonNull<Header>,
    /// Where the bells are (see `core::bell`).
    place: Place,
    /// This side's bell: the descriptor a poller waits on. Always there
    /// once connected.
    bell: Option<Bell>,
    /// The peer's bell, rung when the peer polls and this side notifies it;
    /// `None` if the peer left before the two met.
    ringer: Option<Ringer>,
    /// Both bells' names are removed (the sides have met).
    met: bool,
    /// Somebody took the descriptor: `try_*` calls that cannot proceed arm
    /// the bell (see [`Endpoint::arm`]).
    polled: Cell<bool>,
    /// The bell said that nobody holds it for writing any more: the peer
    /// has left or died.
    hung_up: Cell<bool>,
    /// A hold on this side's own bell until the descriptor is first taken,
    /// which rings it once: a `try_*` call made before that did not arm the
    /// bell, so the first wait must end at once, and the next call arms it.
    /// Closed then, so that only the peer's hold remains (the hang-up).
    self_ringer: std::cell::RefCell<Option<Ringer>>,
    member: Member,
}

// SAFETY: the header pointer points into the member's mapping, which the
// endpoint owns and which lives as long as it; the header is atomics only.
unsafe impl Send for Endpoint {}

/// Connects as `role` to the channel `name`, creating it if it does not
/// exist, and waits for the other side to join.
pub(crate) fn connect(name: &ShmName, opts: &Options, role: Role) -> Result<Endpoint> {
    let target = Target::Posix(name.clone());
    if let Some(cap) = opts.capacity {
        if !ring::valid_capacity(cap) {
            return Err(Error::InvalidArgument {
                target,
                reason: format!(
                    "capacity {cap} is not a power of two from {} to {} bytes",
                    ring::MIN_CAPACITY,
                    ring::MAX_CAPACITY
                ),
            });
        }
    }
    let deadline = opts.timeout.and_then(event::deadline);
    let index = slot_index(role);
    let plan = Plan {
        spec: Spec {
            kind: Kind::Channel,
            slots: SLOTS,
            data_offset: DATA_OFFSET,
            capacity: opts.capacity,
            mode: opts.mode,
            allow_foreign: opts.allow_foreign,
        },
        slots_at: SLOTS_AT,
        seats: index..index + 1,
        reusable: false,
        takeover: true,
        role,
        interrupt: opts.interrupt.clone(),
    };
    // The capacity is settled before the claim, so that a side seen in its
    // slot has agreed to it; a notifier that will skip its fence says so
    // before it takes part.
    let mut capacity = None;
    let mut fenceless = false;
    let member = participant::join(name, &plan, |seg| {
        capacity = negotiate(seg, opts, role)?;
        fenceless = event::membarrier::registered();
        if fenceless {
            let events = &super::layout_of(&seg.map).events.0;
            match role {
                Role::Sender => events.data.announce_fenceless(),
                _ => events.space.announce_fenceless(),
            }
        }
        Ok(())
    })?;
    let place = Place::of(name, member.seg(), opts.allow_foreign)?;
    let mut end = Endpoint {
        role,
        capacity: 0,
        spin: opts.spin,
        fenceless,
        peer_pid: None,
        hdr: NonNull::from(super::layout_of(&member.seg().map)),
        place,
        bell: None,
        ringer: None,
        met: false,
        polled: Cell::new(false),
        hung_up: Cell::new(false),
        self_ringer: std::cell::RefCell::new(None),
        member,
    };
    // The bell is made after the claim (only the seat's holder makes it)
    // and before the peer is told, so a peer that sees us finds it.
    end.bell = Some(Bell::create(&end.place, index)?);
    // (held from now on: the peer removes our bell's name once it has met us)
    *end.self_ringer.get_mut() = Ringer::open(&end.place, index)?;
    end.header().events.0.peers.notify_always();
    end.wait_for_peer(deadline, capacity)?;
    end.meet(deadline)?;
    // Skip the fence only if the peer, which sleeps on our event, can issue
    // the membarrier in our place: it registered too (and announced so on
    // the event it notifies, before it took part).
    if end.fenceless {
        let events = &end.header().events.0;
        let peer_registered = match role {
            Role::Sender => &events.space,
            _ => &events.data,
        };
        end.fenceless = peer_registered.fenceless.load(Ordering::Acquire) != 0;
    }
    Ok(end)
}

/// Settles the capacity with the other side (see `core::segment`). On a
/// conflict, records it for the side that waits — unless this side's slot
/// is taken anyway (a second sender is not the peer) — and fails.
fn negotiate(seg: &Segment, opts: &Options, role: Role) -> Result<Option<u64>> {
    match seg.negotiate(opts.capacity, super::DEFAULT_CAPACITY, ring::valid_capacity)? {
        Ok(cap) => Ok(cap),
        Err(theirs) => {
            let ours = opts.capacity.unwrap_or(0);
            let index = slot_index(role);
            let mine = slots::presence(&seg.shm, index, &seg.slots(SLOTS_AT, SLOTS as usize)[index])
                .map_err(|e| Error::from_errno("fcntl(F_OFD_GETLK)", &seg.target, e))?;
            if mine == Presence::Empty {
                seg.record_conflict(ours);
                super::layout_of(&seg.map).events.0.peers.notify_always();
            }
            Err(Error::CapacityMismatch {
                target: seg.target.clone(),
                actual: theirs,
                expected: ours,
            })
        }
    }
}

impl Endpoint {
    /// The channel's header.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `hdr` points at the start of `seg.map` (page-aligned, at
        // least DATA_OFFSET bytes: checked by `layout_of`), which lives as
        // long as `self`; the header is atomics only. The one place that
        // replaces the mapping (`map_all`, in `wait_for_peer`) re-points
        // `hdr` right after, failed or not.
        unsafe { self.hdr.as_ref() }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.member.seg().target
    }

    /// Who is in the other side's slot.
    pub(crate) fn peer_presence(&self) -> Result<Presence> {
        self.member.presence(slot_index(other(self.role)))
    }

    /// Waits until the other side has joined and the capacity is decided,
    /// then maps the ring.
    fn wait_for_peer(&mut self, deadline: Option<Instant>, mut capacity: Option<u64>) -> Result<()> {
        loop {
            let peers = &self.header().events.0.peers;
            let seen = peers.seq.load(Ordering::Acquire);
            self.check_interrupt()?;
            self.member.seg().check_size(DATA_OFFSET)?;
            if let Some(theirs) = self.member.seg().conflict() {
                return Err(Error::CapacityMismatch {
                    target: self.member.seg().target.clone(),
                    actual: theirs,
                    expected: capacity.unwrap_or(0),
                });
            }
            if capacity.is_none() {
                let decided = self.header().meta.capacity.load(Ordering::Acquire);
                if decided != 0 {
                    if !ring::valid_capacity(decided) {
                        return Err(self.member.seg().corrupt(format!("invalid capacity {decided}")));
                    }
                    capacity = Some(decided);
                }
            }
            let peer = self.peer_presence()?;
            if let (Some(cap), true) = (capacity, peer.is_used()) {
                self.peer_pid = peer.pid();
                self.capacity = cap;
                let mapped = self.member.seg_mut().map_all(cap);
                // Re-pointed whatever `map_all` says: it may have replaced
                // the mapping before failing, and `Drop` reads the header.
                self.hdr = NonNull::from(super::layout_of(&self.member.seg().map));
                mapped?;
                return Ok(());
            }
            if let Presence::Dead { pid } = peer {
                return Err(Error::PeerGone {
                    target: self.member.seg().target.clone(),
                    side: other(self.role),
                    pid,
                });
            }
            let mut slice = LIVENESS_INTERVAL;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::TimedOut {
                        target: self.member.seg().target.clone(),
                        waiting_for: match self.role {
                            Role::Sender => "a receiver",
                            _ => "a sender",
                        },
                    });
                }
                slice = slice.min(d - now);
            }
            event::sleep_on(peers, seen, slice);
        }
    }

    /// Opens the peer's bell and rings it once (the *hello*), and waits for
    /// the peer's hello in this side's bell: after that each side holds
    /// the other's bell for writing, so that its leaving or death hangs
    /// the bell up (`core::bell`). A peer that left or died first gets no
    /// hello; this side's bell is hung up instead. Then neither bell needs
    /// its name any more.
    fn meet(&mut self, deadline: Option<Instant>) -> Result<()> {
        let mine = slot_index(self.role);
        let theirs = slot_index(other(self.role));
        let mut hello = false;
        loop {
            let peers = &self.header().events.0.peers;
            let seen = peers.seq.load(Ordering::Acquire);
            self.check_interrupt()?;
            if self.ringer.is_none() {
                if let Some(ringer) = Ringer::open(&self.place, theirs)? {
                    ringer.ring();
                    self.ringer = Some(ringer);
                    self.header().events.0.peers.notify_always();
                }
            }
            hello = hello || self.bell().drain().rung;
            if hello && self.ringer.is_some() {
                break;
            }
            if !self.peer_presence()?.is_alive() {
                // it left or died before meeting: nobody will ever close a
                // write end of our bell, so close one ourselves (our own
                // hold, or one opened for the purpose)
                if self.self_ringer.get_mut().take().is_none() {
                    self.bell().hang_up(&self.place, mine);
                }
                break;
            }
            let mut slice = LIVENESS_INTERVAL;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::TimedOut {
                        target: self.member.seg().target.clone(),
                        waiting_for: match self.role {
                            Role::Sender => "the receiver to finish connecting",
                            _ => "the sender to finish connecting",
                        },
                    });
                }
                slice = slice.min(d - now);
            }
            let peers = &self.header().events.0.peers;
            event::sleep_on(peers, seen, slice);
        }
        self.place.remove(mine);
        self.place.remove(theirs);
        self.met = true;
        Ok(())
    }

    /// This side's bell (there from `connect` on).
    fn bell(&self) -> &Bell {
        self.bell.as_ref().expect("made in connect")
    }

    /// The descriptor a poller waits on; taking it puts the endpoint in
    /// poll mode (see [`arm`](Self::arm)).
    pub(crate) fn poll_fd(&self) -> BorrowedFd<'_> {
        if !self.polled.replace(true) {
            if let Some(own) = self.self_ringer.borrow_mut().take() {
                own.ring();
            }
        }
        self.bell().as_fd()
    }

    /// Whether somebody took the descriptor.
    #[inline]
    pub(crate) fn polled(&self) -> bool {
        self.polled.get()
    }

    /// Makes the descriptor become readable when `event` is next notified:
    /// drains the bell of an earlier ring (only before arming: a ring after
    /// it must stay), then arms this side's poller bit. The caller looks at
    /// its condition once more after this and calls
    /// [`disarm`](Self::disarm) if it holds after all.
    pub(crate) fn arm(&self, event: &Event) {
        if self.bell().drain().hung_up {
            self.hung_up.set(true);
        }
        event.arm_poll(POLLER);
    }

    /// [`check_peer`](Self::check_peer) for a polled side that found
    /// nothing to do. Once the bell has hung up, the peer has left or is
    /// dying: the kernel closes a dying process's descriptors one by one, so
    /// the hang-up may come a moment before the slot's lock goes. Returning
    /// "nothing to do" then would leave an edge-triggered poller (tokio)
    /// waiting for an edge that never comes; so wait (at most a second) for
    /// the lock to go too.
    pub(crate) fn check_peer_polled(&self) -> Result<()> {
        self.check_peer()?;
        if self.hung_up.get() {
            participant::confirm_gone(|| self.check_peer())?;
        }
        Ok(())
    }

    /// Clears this side's poller bit on `event` (see [`arm`](Self::arm)).
    pub(crate) fn disarm(&self, event: &Event) {
        event.disarm_poll(POLLER);
    }

    /// Rings the peer's bell (the peer armed and this side notifies it).
    #[cold]
    pub(crate) fn ring_peer(&self) {
        if let Some(ringer) = &self.ringer {
            ringer.ring();
        }
    }

    /// Notifies `event`, ringing the peer's bell if the peer polls (the
    /// busy path costs what `Event::notify` costs).
    #[inline]
    pub(crate) fn notify(&self, event: &Event) {
        event.notify_or_ring(self.fenceless, || self.ring_peer());
    }

    /// The ring's bytes (after `connect`, the whole object is mapped).
    pub(crate) fn buf(&self) -> Buf {
        let len = usize::try_from(self.capacity).expect("mapped, so it fits");
        assert!(self.member.seg().map.len() as u64 >= DATA_OFFSET + self.capacity);
        // SAFETY: the mapping holds DATA_OFFSET + capacity bytes (asserted),
        // page-aligned; the endpoint keeps it alive as long as the ring that
        // holds this buffer (both live in the same Sender or Receiver).
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

    /// A writable view of `len` bytes of the ring at `at`.
    /// The ring's protocol gives those bytes to one writer (the holder of
    /// the reservation) at a time.
    pub(crate) fn view_mut(&self, buf: &Buf, at: usize, len: usize) -> crate::map::ViewMut<'_> {
        // SAFETY: as in `view`: the writable mapping lives as long as
        // `self`, which the view borrows. A view makes no reference to the
        // bytes, so two views of them would not be unsound either.
        unsafe { crate::map::ViewMut::new(buf.range(at, len), len) }
    }

    /// The producer's and the consumer's counters.
    pub(crate) fn counters(&self) -> (CounterRef, CounterRef) {
        let h = self.header();
        // SAFETY: both lie in the header, which the mapping keeps alive as
        // long as the endpoint, and the endpoint outlives the ring halves
        // that hold these (both live in the same Sender or Receiver).
        unsafe {
            (
                CounterRef::new(NonNull::from(&h.producer.0)),
                CounterRef::new(NonNull::from(&h.consumer.0)),
            )
        }
    }

    /// A snapshot of the header, through this side's own mapping.
    pub(crate) fn info(&self) -> super::ChannelInfo {
        let mut info = super::info::read(self.header(), &self.member.seg().shm);
        // Our own lock does not conflict with our own description, so the
        // kernel does not report it: this side is alive while it asks.
        let mine = match self.role {
            Role::Sender => &mut info.sender,
            _ => &mut info.receiver,
        };
        if let Some(me) = mine.as_mut().filter(|me| !me.closed) {
            me.alive = true;
        }
        info
    }

    /// `Err(Truncated)` if the object shrank under the mapping: the ring
    /// then reads as zeros, so every operation checks this after touching
    /// it, before trusting the result.
    pub(crate) fn check_intact(&self) -> Result<()> {
        self.member.seg().map.check_intact()
    }

    /// [`check_intact`](Self::check_intact) after this side wrote the ring
    /// and notified. `map::sigbus` orders writes before the check's load with
    /// a `SeqCst` fence; a notifier that fences has just issued one. A
    /// fenceless one does not need it on x86-64: a write can land on the zero
    /// pages only after the TLB shootdown of the replacement reached this
    /// CPU, an interrupt, which is serializing and comes after the handler
    /// set the mark; so the load after the write sees the mark. (A fence here
    /// would also wait for the stores into lines the receiver is reading,
    /// and cost a stream two thirds of its rate.) Elsewhere, where TLB
    /// invalidation needs no interrupt, it fences.
    #[inline]
    pub(crate) fn check_written(&self) -> Result<()> {
        if self.fenceless && cfg!(not(target_arch = "x86_64")) {
            self.member.seg().map.check_intact_after_writes()
        } else {
            self.member.seg().map.check_intact()
        }
    }

    /// [`check_intact`](Self::check_intact), and `Err(Truncated)` if the
    /// object is smaller now than the channel needs (by `fstat`).
    pub(crate) fn check_size(&self) -> Result<()> {
        self.member.seg().check_size(DATA_OFFSET + self.capacity)
    }

    /// `Err(Truncated)` if the object shrank, `Err(Closed)` if the peer has
    /// left in order, `Err(PeerGone)` if it died; `Ok` while it takes part.
    /// Asks the kernel (the slot's lock), not `/proc`.
    pub(crate) fn check_peer(&self) -> Result<()> {
        self.check_size()?;
        match self.peer_presence()? {
            Presence::Closed { .. } => Err(Error::Closed {
                target: self.member.seg().target.clone(),
                side: other(self.role),
            }),
            Presence::Dead { pid } => Err(Error::PeerGone {
                target: self.member.seg().target.clone(),
                side: other(self.role),
                pid,
            }),
            Presence::Alive { .. } | Presence::Empty => Ok(()),
        }
    }

    /// `Err(Interrupted)` once the caller's interrupt flag is set.
    pub(crate) fn check_interrupt(&self) -> Result<()> {
        self.member.check_interrupt()
    }

    /// What a waiting side checks between looks at the ring: the caller's
    /// interrupt, then the peer.
    pub(crate) fn check_wait(&self) -> Result<()> {
        self.check_interrupt()?;
        self.check_peer()
    }

    /// Whether the peer has left in order (a cheap load, for every send).
    pub(crate) fn peer_closed(&self) -> bool {
        self.header().slot(other(self.role)).state.load(Ordering::Acquire) == slots::CLOSED
    }

    /// A [`Error::Corrupt`] about this channel, or [`Error::Truncated`] if
    /// what looked corrupt is the zero pages of a shrunk object.
    pub(crate) fn corrupt_error(&self, reason: String) -> Error {
        self.member.seg().corrupt(reason)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if !self.member.is_owner() {
            // Not ours to close: a forked child drops its copy of the
            // mapping and the descriptor, nothing else. (The slot's lock
            // belongs to the open file description, which the parent keeps.)
            return;
        }
        self.member.leave();
        let hdr = self.header();
        // Whoever sleeps waiting for us should notice now.
        let events = &hdr.events.0;
        events.data.notify_always();
        events.space.notify_always();
        events.peers.notify_always();
        // A side that has left is never claimed again, so nobody can join
        // this channel any more: its name has no use. The first side to
        // leave removes it (the other keeps its mapping until it leaves
        // too); a survivor removes it after the other died.
        self.member.unlink_if(|| true);
        if !self.met {
            // this side never met its peer: both bells' names (a dead
            // peer's too) are this object's, so nobody else's
            self.place.remove(slot_index(self.role));
            self.place.remove(slot_index(other(self.role)));
        }
    }
}

/// The other side.
pub(crate) fn other(role: Role) -> Role {
    match role {
        Role::Sender => Role::Receiver,
        _ => Role::Sender,
    }
}
