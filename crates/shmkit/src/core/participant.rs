//! Joining a shared object as one of its participants, and leaving it.
//!
//! Every pattern meets its peers the same way: create the object or open
//! it (atomically published, validated, trusted: `core::segment`), take over
//! one that everybody abandoned, settle what must be settled before taking
//! part (a capacity, say), then claim a *seat* — a slot of `core::slots`,
//! whose liveness is a lock the kernel holds — and, at the end, leave it.
//! This module does exactly that and knows nothing of rings, events or what
//! a role does; the pattern decides what leaving means (whom to wake, when
//! the name goes).
//!
//! # Seats
//! A kind's header holds an array of slots; each role may claim seats from a
//! range of it (a channel's sender seat 0, a topic's subscribers seats
//! 1..=N, ...). A *one-shot* seat is never claimed again once used: a
//! channel whose side has left is finished, and its name is about to go. A
//! *reusable* seat is claimed again after its participant left or died (a
//! subscriber, a client); the claimant learns who had it before
//! ([`Member::previous`]) and resets what was left behind.
//!
//! # Taking over an abandoned object
//! An object in which nobody is alive and somebody was is abandoned (every
//! participant died, or left while others were dead). Unless the kind keeps
//! such objects (a kept latest value), a joiner removes the name — under the
//! object's exclusive `flock`, only if it still names the same object and it
//! is still abandoned — and starts anew. A claim happens under the shared
//! `flock` while the name still names the object, so a claim and a takeover
//! never miss each other.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::segment::{Segment, Spec};
use super::slots::{self, Presence, Refusal, Slot};
use crate::error::{Error, Result, Role, Target};
use crate::posix::ShmName;

/// How a role joins a kind's object.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The segment: kind, number of slots, data offset, capacity asked for,
    /// mode, trust.
    pub spec: Spec,
    /// Where the `[Slot; spec.slots]` array lies in the header, in bytes.
    pub slots_at: usize,
    /// The seats this role may claim; the lowest claimable one is taken.
    pub seats: Range<usize>,
    /// Whether a seat whose participant left or died may be claimed again.
    pub reusable: bool,
    /// Whether an abandoned object is removed and made anew.
    pub takeover: bool,
    /// The role, for errors.
    pub role: Role,
    /// Ends waits when set (`Error::Interrupted`).
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// A participant: the open object and the seat it holds.
#[derive(Debug)]
pub(crate) struct Member {
    seg: Segment,
    index: usize,
    previous: Presence,
    slots_at: usize,
    slots: usize,
    role: Role,
    interrupt: Option<Arc<AtomicBool>>,
    /// The process that claimed the seat: only it may leave (a forked
    /// child's copy leaves nothing).
    owner: u32,
    left: AtomicBool,
}

/// Why one attempt to join did not.
enum Attempt {
    /// The object was abandoned, or is finishing: try again.
    Again,
    Failed(Error),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Attempt::Failed(e)
    }
}

/// Joins `name` as `plan` says: creates or opens it, takes it over if it
/// was abandoned (and `plan.takeover`), runs `prepare` on the segment (to
/// settle what must be settled before a participant shows up in its seat),
/// then claims a seat.
///
/// # Errors
/// [`Error::Busy`] if every seat is taken (by a live participant, or, for
/// one-shot seats, by a dead one whose peers still finish with it); the
/// segment's errors (`NotFound` never: it creates), `prepare`'s, and
/// `Os { op: "join", source: EAGAIN }` if other processes keep abandoning
/// the name under it.
pub(crate) fn join(name: &ShmName, plan: &Plan, mut prepare: impl FnMut(&Segment) -> Result<()>) -> Result<Member> {
    // An abandoned object is removed and made anew; racing takers retry.
    // Bounded, unless other processes keep abandoning this name.
    for attempt in 0..20 {
        if attempt > 0 {
            // the process that removes the old object needs a moment
            std::thread::sleep(Duration::from_millis(1));
        }
        match join_once(name, plan, &mut prepare) {
            Ok(member) => return Ok(member),
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Again) => {}
        }
    }
    Err(Error::Os {
        target: Target::Posix(name.clone()),
        op: "join",
        source: rustix::io::Errno::AGAIN,
    })
}

fn join_once(
    name: &ShmName,
    plan: &Plan,
    prepare: &mut impl FnMut(&Segment) -> Result<()>,
) -> std::result::Result<Member, Attempt> {
    assert!(plan.seats.end <= plan.spec.slots as usize && !plan.seats.is_empty());
    let seg = Segment::create_or_open(name, &plan.spec)?;
    let mut member = Member {
        seg,
        index: usize::MAX,
        previous: Presence::Empty,
        slots_at: plan.slots_at,
        slots: plan.spec.slots as usize,
        role: plan.role,
        interrupt: plan.interrupt.clone(),
        owner: 0,
        left: AtomicBool::new(false),
    };
    if plan.takeover && !member.seg.created && member.abandoned()? {
        member.seg.unlink_if(|| member.abandoned().unwrap_or(false));
        return Err(Attempt::Again);
    }
    if member.seg.created {
        // bells and lives of earlier objects under this name, whose
        // participants were killed (core::bell, core::doorbell)
        if let Ok(st) = rustix::fs::fstat(&member.seg.shm) {
            super::bell::remove_stale(name, st.st_ino);
        }
    }
    prepare(&member.seg)?;
    let me = std::process::id();
    // Claimed under the object's shared flock, while its name still names
    // it: a taker that judged it abandoned either sees this claim or has
    // removed the name already, and then this side starts anew.
    let claimed = member
        .seg
        .while_named(|| member.claim_a_seat(plan, me))
        .ok_or(Attempt::Again)?;
    match claimed.map_err(|e| member.os("fcntl(F_OFD_SETLK)", e))? {
        Ok((index, previous)) => {
            member.index = index;
            member.previous = previous;
            member.owner = me;
            Ok(member)
        }
        Err(refusal) => Err(member.refused(refusal)),
    }
}

impl Member {
    /// Tries the plan's seats in order: the first claimed, or the most
    /// telling refusal (a finished one-shot seat, then a live holder, then
    /// a dead one).
    fn claim_a_seat(
        &self,
        plan: &Plan,
        me: u32,
    ) -> std::result::Result<std::result::Result<(usize, Presence), Refusal>, rustix::io::Errno> {
        let mut refusal: Option<Refusal> = None;
        for index in plan.seats.clone() {
            let slot = self.slot(index);
            let got = if plan.reusable {
                slots::claim_again(&self.seg.shm, index, slot, me)?
            } else {
                slots::claim(&self.seg.shm, index, slot, me)?.map(|()| Presence::Empty)
            };
            match got {
                Ok(previous) => return Ok(Ok((index, previous))),
                Err(r) => {
                    let rank = |r: &Refusal| match r {
                        Refusal::Used(Presence::Closed { .. }) => 0,
                        Refusal::Taken { .. } => 1,
                        Refusal::Used(_) => 2,
                    };
                    if refusal.as_ref().is_none_or(|old| rank(&r) < rank(old)) {
                        refusal = Some(r);
                    }
                }
            }
        }
        Ok(Err(refusal.expect("at least one seat")))
    }

    fn refused(&self, refusal: Refusal) -> Attempt {
        let busy = |pid, alive| {
            Attempt::Failed(Error::Busy {
                target: self.seg.target.clone(),
                side: self.role,
                pid,
                alive,
            })
        };
        match refusal {
            Refusal::Taken { pid } => busy(pid, true),
            // Its participant left in order: the object is finished (its
            // name is removed, or about to be), while its other side may
            // still drain it. Start a new one under the name.
            Refusal::Used(Presence::Closed { .. }) => Attempt::Again,
            // Its participant died while a peer still finishes with it: the
            // peer removes the name when done.
            Refusal::Used(p) => busy(p.pid().unwrap_or(0), false),
        }
    }

    /// The open segment.
    pub(crate) fn seg(&self) -> &Segment {
        &self.seg
    }

    /// The open segment, to grow its mapping (`Segment::map_all`).
    pub(crate) fn seg_mut(&mut self) -> &mut Segment {
        &mut self.seg
    }

    /// The seat this participant holds.
    #[allow(dead_code)] // for the patterns
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Who had the seat before: `Empty`, or — for a reusable seat —
    /// `Closed`/`Dead` with the old pid.
    #[allow(dead_code)] // for the patterns
    pub(crate) fn previous(&self) -> Presence {
        self.previous
    }

    /// Seat `i`'s slot.
    pub(crate) fn slot(&self, i: usize) -> &Slot {
        &self.seg.slots(self.slots_at, self.slots)[i]
    }

    /// Who is in seat `i`, asked of the kernel (the lock), then the state.
    /// This participant's own seat is `Alive` until it leaves (the kernel
    /// does not report a lock to the description that holds it).
    pub(crate) fn presence(&self, i: usize) -> Result<Presence> {
        if i == self.index && self.is_owner() && !self.left.load(Ordering::Relaxed) {
            return Ok(Presence::Alive { pid: self.owner });
        }
        slots::presence(&self.seg.shm, i, self.slot(i)).map_err(|e| self.os("fcntl(F_OFD_GETLK)", e))
    }

    /// Whether anybody but this participant takes part now.
    #[allow(dead_code)] // for the patterns
    pub(crate) fn anyone_else_alive(&self) -> Result<bool> {
        for i in (0..self.slots).filter(|&i| i != self.index) {
            if self.presence(i)?.is_alive() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether nobody takes part and somebody did.
    fn abandoned(&self) -> Result<bool> {
        let mut used = false;
        for i in 0..self.slots {
            let p = self.presence(i)?;
            if p.is_alive() {
                return Ok(false);
            }
            used |= p.is_used();
        }
        Ok(used)
    }

    /// Whether this process is the one that claimed the seat (not a child
    /// that inherited the member through `fork`).
    pub(crate) fn is_owner(&self) -> bool {
        self.owner != 0 && self.owner == std::process::id()
    }

    /// `Err(Interrupted)` once the caller's interrupt flag is set.
    pub(crate) fn check_interrupt(&self) -> Result<()> {
        match &self.interrupt {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(Error::Interrupted {
                target: self.seg.target.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Marks the seat as left in order (once, and only in the process that
    /// claimed it). Its lock goes when the member is dropped, so nobody
    /// claims the seat in between.
    pub(crate) fn leave(&self) {
        if self.is_owner() && !self.left.swap(true, Ordering::Relaxed) {
            slots::leave(self.slot(self.index));
        }
    }

    /// Removes the name if it still names this object and `still()` holds
    /// (under the object's exclusive `flock`). Whether it removed it.
    pub(crate) fn unlink_if(&self, still: impl FnOnce() -> bool) -> bool {
        self.seg.unlink_if(still)
    }

    /// The object, for errors.
    #[allow(dead_code)] // for the patterns
    pub(crate) fn target(&self) -> &Target {
        &self.seg.target
    }

    /// A `Corrupt` error about the object (or `Truncated` if it shrank).
    #[allow(dead_code)] // for the patterns
    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> Error {
        self.seg.corrupt(reason)
    }

    /// An OS error about the object.
    pub(crate) fn os(&self, op: &'static str, e: rustix::io::Errno) -> Error {
        Error::from_errno(op, &self.seg.target, e)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.index != usize::MAX {
            self.leave();
        }
    }
}

/// How long [`confirm_gone`] waits for a peer whose descriptor hung up to
/// leave its seat too.
pub(crate) const GONE_PATIENCE: Duration = Duration::from_secs(1);

/// For a polled side that found nothing to do and whose peer's descriptor
/// (bell, life) has hung up: the peer has left or is dying, and the kernel
/// closes a dying process's descriptors one by one, so the hang-up may come
/// a moment before its seat's lock goes. Returning "nothing to do" then
/// would leave an edge-triggered poller (tokio) waiting for an edge that
/// never comes; so this calls `present` (which returns the error that says
/// the peer is gone, `Ok` while it is there) every 200 µs, at most
/// [`GONE_PATIENCE`] long, and returns its first error — or `Ok` if the
/// peer is still there then (it holds its seat without its descriptor).
#[cold]
pub(crate) fn confirm_gone(mut present: impl FnMut() -> Result<()>) -> Result<()> {
    let deadline = std::time::Instant::now() + GONE_PATIENCE;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
        present()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::segment::Kind;

    fn name(n: u32) -> ShmName {
        ShmName::new(format!("/shmkit-participant-{}-{n}", std::process::id())).unwrap()
    }

    fn plan(seats: Range<usize>, reusable: bool) -> Plan {
        Plan {
            spec: Spec {
                kind: Kind::Topic,
                slots: 4,
                data_offset: 4096,
                capacity: Some(4096),
                mode: 0o600,
                allow_foreign: false,
            },
            slots_at: 512,
            seats,
            reusable,
            takeover: true,
            role: Role::Subscriber,
            interrupt: None,
        }
    }

    #[test]
    fn reusable_seats_are_taken_lowest_first_and_again_after_leaving() {
        let name = name(1);
        let mut prepared = 0;
        let a = join(&name, &plan(1..3, true), |_| {
            prepared += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((a.index(), a.previous(), prepared), (1, Presence::Empty, 1));
        let b = join(&name, &plan(1..3, true), |_| Ok(())).unwrap();
        assert_eq!(b.index(), 2);
        assert!(matches!(a.presence(2).unwrap(), Presence::Alive { .. }));
        assert!(matches!(a.presence(1).unwrap(), Presence::Alive { .. }), "own seat");
        assert!(a.anyone_else_alive().unwrap());
        match join(&name, &plan(1..3, true), |_| Ok(())) {
            Err(Error::Busy {
                side: Role::Subscriber,
                alive: true,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        drop(a);
        let c = join(&name, &plan(1..3, true), |_| Ok(())).unwrap();
        assert_eq!(c.index(), 1);
        assert!(matches!(c.previous(), Presence::Closed { .. }));
        drop(b);
        assert!(!c.anyone_else_alive().unwrap());
        assert!(c.unlink_if(|| true));
    }

    #[test]
    fn a_finished_one_shot_object_is_made_anew() {
        let name = name(2);
        let a = join(&name, &plan(0..1, false), |_| Ok(())).unwrap();
        match join(&name, &plan(0..1, false), |_| Ok(())) {
            Err(Error::Busy { alive: true, .. }) => {}
            other => panic!("{other:?}"),
        }
        // left in order, name still there: the next joiner starts anew
        // (the object is abandoned: nobody alive, somebody was)
        drop(a);
        let b = join(&name, &plan(0..1, false), |_| Ok(())).unwrap();
        assert!(b.seg().created);
        assert_eq!(b.previous(), Presence::Empty);
        assert!(b.unlink_if(|| true));
    }

    #[test]
    fn a_forked_copy_does_not_leave() {
        let name = name(3);
        let mut a = join(&name, &plan(1..2, true), |_| Ok(())).unwrap();
        // as a forked child sees it: another pid claimed the seat
        let owner = a.owner;
        a.owner = owner + 1;
        a.leave();
        a.owner = owner;
        assert_eq!(a.slot(1).state.load(Ordering::Relaxed), slots::CLAIMED);
        a.leave();
        assert_eq!(a.slot(1).state.load(Ordering::Relaxed), slots::CLOSED);
        assert!(a.unlink_if(|| true));
    }
}
