//! Participant slots: who takes part in a shared object, and whether they
//! still do.
//!
//! This module knows nothing of rings or roles. A slot is eight bytes in
//! shared memory (a state and a pid) plus one byte of the object's *file*
//! that the participant keeps locked with an open-file-description lock
//! (`crate::sys::ofd`) for as long as it takes part. **Liveness comes from the
//! kernel, not from pids:** the lock disappears when the participant's
//! process dies, whatever its PID namespace, and asking for it needs no
//! `/proc`. The pid is kept only to show it (`shmkit stat`); in another PID
//! namespace it is that namespace's number.
//!
//! States: [`EMPTY`] until claimed, [`CLAIMED`] while in use, [`CLOSED`]
//! once its participant has left in order. A participant that dies leaves
//! its slot `CLAIMED` and unlocked: that is what "dead" means. A claim takes
//! the lock first, then moves the state from `EMPTY`; a departure stores
//! `CLOSED` before the lock goes (with the descriptor), so a reader that
//! asks for the lock first and then reads the state never mistakes a
//! departure for a death; and it asks for the lock once more before it
//! calls a claimed slot dead, so that a claim made between its two looks is
//! not mistaken for one either ([`presence`]).

use std::os::fd::AsFd;

use rustix::io::Errno;

use super::sync::{AtomicU32, Ordering};
use crate::sys::ofd as lock;

/// Nobody has claimed the slot.
pub(crate) const EMPTY: u32 = 0;
/// A participant has claimed it (and is alive while it holds the lock).
pub(crate) const CLAIMED: u32 = 1;
/// Its participant has left in order.
pub(crate) const CLOSED: u32 = 2;

/// One slot in shared memory.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Slot {
    /// [`EMPTY`], [`CLAIMED`] or [`CLOSED`] (anything else is corrupt).
    pub state: AtomicU32,
    /// The participant's pid in its own PID namespace, for display.
    pub pid: AtomicU32,
}

/// What a slot says about its participant, with the lock asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Never claimed.
    Empty,
    /// Claimed, and its participant holds the lock.
    Alive { pid: u32 },
    /// Its participant left in order.
    Closed { pid: u32 },
    /// Claimed, but nobody holds the lock: the participant died (or the
    /// state was scribbled on).
    Dead { pid: u32 },
}

impl Presence {
    /// Whether somebody takes part through this slot now.
    pub(crate) fn is_alive(self) -> bool {
        matches!(self, Presence::Alive { .. })
    }

    /// Whether the slot was ever claimed.
    pub(crate) fn is_used(self) -> bool {
        !matches!(self, Presence::Empty)
    }

    /// The pid recorded, if any.
    pub(crate) fn pid(self) -> Option<u32> {
        match self {
            Presence::Empty => None,
            Presence::Alive { pid } | Presence::Closed { pid } | Presence::Dead { pid } => Some(pid),
        }
    }
}

/// The file byte that slot `index` is locked on.
fn lock_byte(index: usize) -> u64 {
    index as u64
}

/// Asks who is in slot `index`: the lock first, then the state (see the
/// module docs for why in that order). A lock held with the state still
/// `EMPTY` is a claim in progress, reported as alive.
///
/// A claim can also happen *between* the two looks: the lock was free when
/// asked, then a participant took it and stored `CLAIMED`, which the state
/// shows. So a claimed state without a lock is only called dead once the
/// lock, asked again after the state was read, is still free: a live
/// claimant took it before it stored the state, and holds it still.
/// (Without this second look, a participant joining at that moment was
/// reported dead to a peer that was connecting, which then failed with
/// `PeerGone` — or could judge a new object abandoned.)
pub(crate) fn presence(fd: impl AsFd, index: usize, slot: &Slot) -> Result<Presence, Errno> {
    let fd = fd.as_fd();
    let locked = lock::is_locked(fd, lock_byte(index))?;
    let state = slot.state.load(Ordering::Acquire);
    let pid = slot.pid.load(Ordering::Relaxed);
    Ok(match (state, locked) {
        (_, true) => Presence::Alive { pid },
        (EMPTY, false) => Presence::Empty,
        (CLOSED, false) => Presence::Closed { pid },
        (_, false) if lock::is_locked(fd, lock_byte(index))? => Presence::Alive {
            pid: slot.pid.load(Ordering::Relaxed),
        },
        (_, false) => Presence::Dead { pid },
    })
}

/// Why a claim failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The slot is in use by a live participant.
    Taken { pid: u32 },
    /// The slot was used before: its participant left or died.
    Used(Presence),
}

/// Claims slot `index` through `fd` (a read-write descriptor of this
/// participant's own open file description), recording `pid`.
pub(crate) fn claim(fd: impl AsFd, index: usize, slot: &Slot, pid: u32) -> Result<Result<(), Refusal>, Errno> {
    let fd = fd.as_fd();
    if !lock::try_lock(fd, lock_byte(index))? {
        return Ok(Err(Refusal::Taken {
            pid: slot.pid.load(Ordering::Relaxed),
        }));
    }
    // The pid is stored after the state (a reader may see CLAIMED with the
    // old pid, 0, for an instant; it is for display only), so that a
    // refused claim never overwrites the pid of the slot's real owner.
    match slot
        .state
        .compare_exchange(EMPTY, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => {
            slot.pid.store(pid, Ordering::Relaxed);
            Ok(Ok(()))
        }
        Err(state) => {
            let _ = lock::unlock(fd, lock_byte(index));
            let pid = slot.pid.load(Ordering::Relaxed);
            Ok(Err(Refusal::Used(if state == CLOSED {
                Presence::Closed { pid }
            } else {
                Presence::Dead { pid }
            })))
        }
    }
}

/// Claims slot `index` whatever it held before, unless a live participant
/// holds it: for seats that are used again and again (subscribers, clients,
/// the senders of a many-to-one). Returns who had it before — `Empty`, or
/// `Closed`/`Dead` with the old pid — so that the claimant can reset what
/// the seat's previous participant left behind.
pub(crate) fn claim_again(
    fd: impl AsFd,
    index: usize,
    slot: &Slot,
    pid: u32,
) -> Result<Result<Presence, Refusal>, Errno> {
    if !lock::try_lock(fd.as_fd(), lock_byte(index))? {
        return Ok(Err(Refusal::Taken {
            pid: slot.pid.load(Ordering::Relaxed),
        }));
    }
    // Acquire: what the previous participant wrote before it left (its
    // Release store of CLOSED) is visible to this claimant.
    let before = slot.state.swap(CLAIMED, Ordering::AcqRel);
    let old = slot.pid.swap(pid, Ordering::Relaxed);
    Ok(Ok(match before {
        EMPTY => Presence::Empty,
        CLOSED => Presence::Closed { pid: old },
        _ => Presence::Dead { pid: old },
    }))
}

/// Marks slot `index` as left in order. The lock goes with the descriptor.
pub(crate) fn leave(slot: &Slot) {
    // Release: everything this participant wrote before leaving is visible
    // to whoever sees CLOSED.
    slot.state.store(CLOSED, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{memfd_create, MemfdFlags};
    use std::os::fd::AsRawFd;

    fn reopen(fd: &std::os::fd::OwnedFd) -> std::os::fd::OwnedFd {
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        rustix::fs::open(path.as_str(), rustix::fs::OFlags::RDWR, rustix::fs::Mode::empty()).unwrap()
    }

    #[test]
    fn claim_presence_and_leave() {
        let a = memfd_create("shmkit-slots-test", MemfdFlags::CLOEXEC).unwrap();
        let b = reopen(&a);
        let slot = Slot {
            state: AtomicU32::new(EMPTY),
            pid: AtomicU32::new(0),
        };
        assert_eq!(presence(&b, 1, &slot).unwrap(), Presence::Empty);
        assert_eq!(claim(&a, 1, &slot, 42).unwrap(), Ok(()));
        assert_eq!(presence(&b, 1, &slot).unwrap(), Presence::Alive { pid: 42 });
        assert_eq!(claim(&b, 1, &slot, 43).unwrap(), Err(Refusal::Taken { pid: 42 }));
        // dies: its description closes without leaving
        drop(a);
        assert_eq!(presence(&b, 1, &slot).unwrap(), Presence::Dead { pid: 42 });
        assert_eq!(
            claim(&b, 1, &slot, 43).unwrap(),
            Err(Refusal::Used(Presence::Dead { pid: 42 })),
            "a used slot is not claimed again"
        );
        assert_eq!(
            presence(&b, 1, &slot).unwrap(),
            Presence::Dead { pid: 42 },
            "the refused claim let go"
        );
        let c = reopen(&b);
        let slot2 = Slot {
            state: AtomicU32::new(EMPTY),
            pid: AtomicU32::new(0),
        };
        assert_eq!(claim(&c, 2, &slot2, 44).unwrap(), Ok(()));
        leave(&slot2);
        drop(c);
        assert_eq!(presence(&b, 2, &slot2).unwrap(), Presence::Closed { pid: 44 });
    }

    #[test]
    fn a_seat_is_claimed_again_after_its_participant_left_or_died() {
        let a = memfd_create("shmkit-slots-test", MemfdFlags::CLOEXEC).unwrap();
        let b = reopen(&a);
        let slot = Slot {
            state: AtomicU32::new(EMPTY),
            pid: AtomicU32::new(0),
        };
        assert_eq!(claim_again(&a, 3, &slot, 42).unwrap(), Ok(Presence::Empty));
        assert_eq!(claim_again(&b, 3, &slot, 43).unwrap(), Err(Refusal::Taken { pid: 42 }));
        drop(a); // dies
        assert_eq!(claim_again(&b, 3, &slot, 43).unwrap(), Ok(Presence::Dead { pid: 42 }));
        leave(&slot);
        drop(b); // left in order
        let c = memfd_create("shmkit-slots-test", MemfdFlags::CLOEXEC).unwrap();
        assert_eq!(claim_again(&c, 3, &slot, 44).unwrap(), Ok(Presence::Closed { pid: 43 }));
        assert_eq!(slot.state.load(Ordering::Relaxed), CLAIMED);
    }
}
