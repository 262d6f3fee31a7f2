//! Pollable endpoints: the descriptor of a many-to-one or service endpoint,
//! on `core::doorbell`.
//!
//! The receiver (server) is the *hub*, participant slot 0; each sender
//! (client) a *spoke*, slot 1 + its seat. Each side's descriptor is an
//! `epoll` set ([`PollSet`]) made at connect; the first time it is taken
//! the side makes its [`Doorbell`] (named by its slot), adds it, and rings
//! it once (a `try_*` call made before armed nothing: the first poll
//! returns at once, and the call after it arms). A spoke also watches the
//! hub's [`Life`], which the hub makes when it joins and holds while it
//! takes part: the watch hangs up when the hub leaves or dies.
//!
//! Arming (a `try_*` call that found nothing, [`Polling::arm`]) drains the
//! doorbell, publishes its nonce in the side's poll word (once: the hub's
//! in `Top::poll`, a spoke's in its seat's `SeatCtl::poll`), sets the
//! event's poller bit ([`POLLER`]), and the caller looks once more,
//! disarming if it finds something after all. A notifier notifies with
//! `Event::notify_or_ring`, whose closure rings the poll word's doorbell —
//! only when the bit is set, so the busy path without pollers costs what
//! it cost (one fence or none, and one load):
//! - a spoke rings the hub when it commits a frame (`data`), asks for a
//!   fresh ring, or leaves (the receiver's end of the stream);
//! - the hub rings seat s when it frees room in s's request ring (`space`)
//!   and when it commits a response for s (`reply`);
//! - a hub that joins rings every spoke that has a poll word (one that
//!   polled before the hub's life existed then adds its watch).
//!
//! Only one participant polls each event (the hub `data`; seat s's spoke
//! its seat's events), so one poller bit suffices and a ring goes to one
//! doorbell.
//!
//! Every participant holds a life while it takes part, spokes too: a spoke
//! killed between committing a frame and ringing (or after taking the
//! hub's bit, before its ring reached the bell) rings nobody, and other
//! spokes find no bit to ring for. A polled hub therefore watches its
//! spokes' lives ([`watch_spokes`](Polling::watch_spokes)): each arming
//! takes out the watches that hung up (waiting until the leaver's slot
//! says so) and, when `Top::joined` moved since the last look, adds the
//! lives of spokes that joined. A spoke that joins after that look finds
//! the hub's bit (set before it, the store-buffer argument of
//! `core::event`) and rings the hub once it has joined, so the hub looks
//! again. A polled receiver so learns both a dead sender's last frames and
//! the end of the stream (every seat used, every sender gone) as they
//! happen.

use std::cell::{Cell, OnceCell, RefCell};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::core::bell::{Place, Ringer};
use crate::core::doorbell::{Doorbell, Life, PollSet, Ringers, Watch};
use crate::core::event::{Event, POLLER};
use crate::core::participant;
use crate::core::sync::{AtomicU32, Ordering};
use crate::error::{Error, Result};

/// The hub's participant slot (and doorbell and life seat).
pub(crate) const HUB: usize = 0;

/// `PollSet` tokens.
const TOKEN_BELL: u64 = 1;
const TOKEN_HUB: u64 = 2;
const TOKEN_FAILED: u64 = 3;
/// The watch on seat s's spoke: `TOKEN_SPOKE + s`.
const TOKEN_SPOKE: u64 = 16;

/// One side's polling machinery (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct Polling {
    place: Place,
    /// This side's participant slot.
    slot: usize,
    set: PollSet,
    /// Made the first time the descriptor is taken.
    parts: OnceCell<Parts>,
    /// The doorbells this side rings: the hub's (a spoke), the spokes' (the
    /// hub).
    ringers: RefCell<Ringers>,
    /// This participant's life, held while it takes part (`None`: a
    /// spoke's could not be made; the hub cannot watch that spoke).
    life: Option<Life>,
}

#[derive(Debug)]
struct Parts {
    /// `None` if it could not be made (`failed` says why).
    bell: Option<Doorbell>,
    /// Why the descriptor could not be set up: returned once by the next
    /// `try_*` call (which the descriptor, readable, invites), then its text.
    failed: RefCell<Option<Error>>,
    failed_text: String,
    /// An `eventfd` that keeps a descriptor that failed readable.
    _failed_fd: Option<OwnedFd>,
    /// Whether this side's poll word holds the doorbell's nonce.
    word_set: Cell<bool>,
    /// A spoke's watch on the hub's life.
    watch: RefCell<Option<Watch>>,
    /// A hub's watches on its spokes' lives.
    spokes: RefCell<Spokes>,
}

/// A hub's watches on its spokes' lives (see [`Polling::watch_spokes`]).
#[derive(Debug, Default)]
struct Spokes {
    /// `Top::joined` at the last look for new spokes (`None`: none yet).
    joined: Option<u32>,
    /// Seat s's watch.
    watches: Vec<Option<Watch>>,
    /// How many seats are watched.
    count: usize,
    /// `epoll_wait`'s buffer.
    ready: Vec<u64>,
}

impl Polling {
    /// The machinery of the participant in `slot` of an object of `seats`
    /// seats; makes its life now (before a spoke counts itself in
    /// `Top::joined`, so that a hub that sees the count sees the life).
    ///
    /// # Errors
    /// The OS's errors of `epoll_create1` and of making the hub's life. A
    /// spoke whose life cannot be made (out of descriptors, a name taken by
    /// somebody else's file) takes part without: its hub does not learn of
    /// its death until its next call.
    pub(crate) fn new(place: Place, slot: usize, seats: usize) -> Result<Polling> {
        let set = PollSet::new(&place)?;
        let hub = slot == HUB;
        let life = if hub {
            Some(Life::create(&place, HUB)?)
        } else {
            Life::create(&place, slot).ok()
        };
        let ringers = Ringers::new(place.clone(), if hub { 1 + seats } else { 1 });
        Ok(Polling {
            place,
            slot,
            set,
            parts: OnceCell::new(),
            ringers: RefCell::new(ringers),
            life,
        })
    }

    /// The descriptor: readable when this side may make progress (once
    /// armed). Makes the doorbell the first time.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.parts.get_or_init(|| self.make_parts());
        self.set.as_fd()
    }

    fn make_parts(&self) -> Parts {
        let made = Doorbell::create(&self.place, self.slot).and_then(|bell| {
            let ready = self.set.add(bell.as_fd(), TOKEN_BELL).and_then(|()| {
                // one ring of our own: the first poll returns at once
                if let Some(own) = Ringer::open(&self.place, self.slot)? {
                    own.ring();
                }
                Ok(())
            });
            match ready {
                Ok(()) => Ok(bell),
                Err(e) => {
                    // no descriptor after all: its name goes too
                    bell.remove_name();
                    Err(e)
                }
            }
        });
        match made {
            Ok(bell) => Parts {
                bell: Some(bell),
                failed: RefCell::new(None),
                failed_text: String::new(),
                _failed_fd: None,
                word_set: Cell::new(false),
                watch: RefCell::new(None),
                spokes: RefCell::default(),
            },
            Err(e) => {
                // Readable for ever, so that the next call reports it.
                let fd = rustix::event::eventfd(1, rustix::event::EventfdFlags::CLOEXEC).ok();
                if let Some(fd) = &fd {
                    let _ = self.set.add(fd.as_fd(), TOKEN_FAILED);
                }
                Parts {
                    bell: None,
                    failed_text: e.to_string(),
                    failed: RefCell::new(Some(e)),
                    _failed_fd: fd,
                    word_set: Cell::new(false),
                    watch: RefCell::new(None),
                    spokes: RefCell::default(),
                }
            }
        }
    }

    /// Where the doorbells and lives are.
    pub(crate) fn place(&self) -> &Place {
        &self.place
    }

    /// Whether the descriptor has been taken: `try_*` calls arm it.
    #[inline]
    pub(crate) fn polled(&self) -> bool {
        self.parts.get().is_some()
    }

    /// Arms this side on `event` (see the [module docs](self)): `word` is
    /// its poll word. A spoke (`watch_hub`) also makes sure it watches the
    /// hub's life. The caller looks at its condition once more afterwards
    /// and [`disarm`](Self::disarm)s if it holds. Nothing if the descriptor
    /// was never taken.
    ///
    /// # Errors
    /// Why the descriptor could not be set up; the OS's errors of watching
    /// the hub.
    ///
    /// Returns whether the doorbell held a ring, which this arming drained:
    /// a side that waits on two events through one doorbell (a client:
    /// room, responses) must not lose the other event's ring with it (see
    /// [`ring_self`](Self::ring_self)).
    pub(crate) fn arm(&self, word: &AtomicU32, event: &Event, watch_hub: bool) -> Result<bool> {
        let Some(parts) = self.parts.get() else {
            return Ok(false);
        };
        let Some(bell) = &parts.bell else {
            if let Some(e) = parts.failed.borrow_mut().take() {
                return Err(e);
            }
            return Err(Error::InvalidArgument {
                target: self.place.target.clone(),
                reason: format!("its descriptor could not be set up: {}", parts.failed_text),
            });
        };
        let rung = bell.drain().rung;
        if watch_hub && parts.watch.borrow().is_none() {
            // None: no life there (yet: the hub rings every doorbell when
            // it makes it; or no more: its slot says so)
            if let Some(w) = Watch::open(&self.place, HUB)? {
                self.set.add_watch(w.as_fd(), TOKEN_HUB)?;
                *parts.watch.borrow_mut() = Some(w);
            }
        }
        // Release: the doorbell exists before a notifier that reads the
        // word opens it.
        if !parts.word_set.get() || word.load(Ordering::Relaxed) != bell.nonce() {
            word.store(bell.nonce(), Ordering::Release);
            parts.word_set.set(true);
        }
        event.arm_poll(POLLER);
        Ok(rung)
    }

    /// For a hub that has armed: stops watching the spokes whose lives hung
    /// up, and, if `joined` (`Top::joined`, loaded now: after arming) moved
    /// since the last look — or a watch went, or a watch could not be made
    /// — starts watching the lives of the seats that are not watched.
    ///
    /// A life that hung up (one watched, or one found hung up: a holder
    /// that came and went between two looks) is waited for, at most a
    /// second, until `alive(slot)` says that its holder is gone — a dying
    /// process's descriptors close a moment before the kernel drops its
    /// lock, and the caller's last look must find it gone; so may a
    /// leaver's in order, when a process forked by another thread holds
    /// copies of its descriptors until it `exec`s — unless the life's name
    /// now names a new holder's (the slot is then somebody else's). A life whose holder is gone is not watched: it
    /// would keep the descriptor readable.
    ///
    /// Watches are registered for hang-ups only, so bytes written into a
    /// life (by anybody who may write the object) wake nobody. Every
    /// arming with watches asks the set which hung up (one `epoll_wait`),
    /// so that an edge-triggered poller (tokio), whose readiness is cleared
    /// when it wakes, never misses one. Nothing if the descriptor was never
    /// taken.
    pub(crate) fn watch_spokes(&self, joined: &AtomicU32, seats: usize, mut alive: impl FnMut(usize) -> bool) {
        let Some(parts) = self.parts.get().filter(|p| p.bell.is_some()) else {
            return;
        };
        let mut guard = parts.spokes.borrow_mut();
        let spokes = &mut *guard;
        if spokes.watches.len() != seats {
            spokes.watches.resize_with(seats, || None);
        }
        let mut wait_gone = |s: usize, w: &Watch| {
            // as `participant::confirm_gone`, looking first
            let deadline = Instant::now() + participant::GONE_PATIENCE;
            while alive(1 + s) && !w.is_replaced(&self.place, 1 + s) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
        };
        if spokes.count > 0 {
            self.set.ready_into(&mut spokes.ready, spokes.count + 2);
            for &token in &spokes.ready {
                let Some(s) = token
                    .checked_sub(TOKEN_SPOKE)
                    .map(|s| s as usize)
                    .filter(|&s| s < seats)
                else {
                    continue;
                };
                if let Some(w) = spokes.watches[s].take() {
                    self.set.remove(w.as_fd());
                    spokes.count -= 1;
                    wait_gone(s, &w);
                    // a new holder of the seat may have counted itself
                    // while this one's life was still open
                    spokes.joined = None;
                }
            }
        }
        // Acquire: a spoke's life is made before it counts itself.
        let now = joined.load(Ordering::Acquire);
        if spokes.joined == Some(now) {
            return;
        }
        let mut complete = true;
        for s in 0..seats {
            if spokes.watches[s].is_some() {
                continue;
            }
            let w = match Watch::open(&self.place, 1 + s) {
                Ok(Some(w)) => w,
                // nobody there; or a name taken by somebody else's file
                Ok(None) | Err(Error::Untrusted { .. }) => continue,
                // out of descriptors, of memory: the next arming tries again
                Err(_) => {
                    complete = false;
                    continue;
                }
            };
            if w.hung_up() {
                wait_gone(s, &w);
            } else if self.set.add_watch(w.as_fd(), TOKEN_SPOKE + s as u64).is_ok() {
                spokes.watches[s] = Some(w);
                spokes.count += 1;
            } else {
                complete = false;
            }
        }
        spokes.joined = complete.then_some(now);
    }

    /// Rings this side's own doorbell: the descriptor becomes readable (a
    /// ring drained by an arming for another event is given back).
    #[cold]
    pub(crate) fn ring_self(&self) {
        if self.parts.get().is_some_and(|p| p.bell.is_some()) {
            if let Ok(Some(own)) = Ringer::open(&self.place, self.slot) {
                own.ring();
            }
        }
    }

    /// Clears this side's poller bit on `event` (its condition held after
    /// arming).
    #[inline]
    pub(crate) fn disarm(&self, event: &Event) {
        event.disarm_poll(POLLER);
    }

    /// Whether a spoke's watch on the hub's life has hung up: the hub is
    /// leaving or dying.
    pub(crate) fn hub_hung_up(&self) -> bool {
        self.parts
            .get()
            .is_some_and(|p| p.watch.borrow().as_ref().is_some_and(Watch::hung_up))
    }

    /// Rings the doorbell of participant `slot`, whose poll word reads
    /// `nonce` (0: nobody polls there).
    #[cold]
    pub(crate) fn ring(&self, slot: usize, nonce: u32) -> bool {
        self.ringers.borrow_mut().ring(slot, nonce)
    }

    /// This side leaves: clears its poll word (if it still holds our
    /// nonce) and removes its doorbell's name, and its life's name (the
    /// life closes, and watchers hang up, when this value drops).
    pub(crate) fn leave(&self, word: &AtomicU32) {
        if let Some(bell) = self.parts.get().and_then(|p| p.bell.as_ref()) {
            let _ = word.compare_exchange(bell.nonce(), 0, Ordering::Relaxed, Ordering::Relaxed);
            bell.remove_name();
        }
        if let Some(life) = &self.life {
            life.remove_name();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Target;
    use crate::posix::ShmName;

    fn place(n: u32) -> Place {
        let object = ShmName::new(format!("/shmkit-m2o-poll-{}-{n}", std::process::id())).unwrap();
        Place {
            target: Target::Posix(object.clone()),
            object,
            ino: 0xe00 + u64::from(n),
            mode: 0o600,
            owner: None,
            allow_foreign: false,
        }
    }

    /// Removes the place's FIFOs when dropped, even if the test fails.
    struct Clean(Place);

    impl Drop for Clean {
        fn drop(&mut self) {
            crate::core::bell::remove_of(&self.0.object, self.0.ino);
        }
    }

    fn readable(fd: BorrowedFd<'_>) -> bool {
        let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
        rustix::event::poll(&mut fds, Some(&rustix::time::Timespec::default())).unwrap() > 0
    }

    fn watched(hub: &Polling) -> usize {
        hub.parts.get().unwrap().spokes.borrow().count
    }

    /// A hub (two seats) whose descriptor was taken.
    fn hub(p: &Place) -> Polling {
        let hub = Polling::new(p.clone(), HUB, 2).unwrap();
        let _ = hub.fd();
        hub.parts.get().unwrap().bell.as_ref().unwrap().drain();
        hub
    }

    #[test]
    fn a_hub_watches_spokes_that_join_and_drops_those_that_go() {
        let p = place(1);
        let _clean = Clean(p.clone());
        let hub = hub(&p);
        let joined = AtomicU32::new(0);
        hub.watch_spokes(&joined, 2, |_| true);
        // a spoke in seat 0 (slot 1): watched once the count moves
        let first = Life::create(&p, 1).unwrap();
        hub.watch_spokes(&joined, 2, |_| true);
        assert_eq!(watched(&hub), 0, "the count did not move");
        joined.store(1, Ordering::Relaxed);
        hub.watch_spokes(&joined, 2, |_| true);
        assert_eq!(watched(&hub), 1);
        assert!(!readable(hub.fd()));
        // bytes written into its life wake nobody and drop nothing
        let w = rustix::fs::open(
            p.path_of(crate::core::bell::Fifo::Life, 1).as_str(),
            rustix::fs::OFlags::WRONLY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        rustix::io::write(&w, b"junk").unwrap();
        drop(w);
        assert!(!readable(hub.fd()), "a byte in a life is no hang-up");
        hub.watch_spokes(&joined, 2, |_| panic!("nobody hung up"));
        assert_eq!(watched(&hub), 1);
        // it dies: the descriptor is readable until an arming drops the watch
        drop(first);
        assert!(readable(hub.fd()));
        let mut looks = 0;
        hub.watch_spokes(&joined, 2, |slot| {
            assert_eq!(slot, 1);
            looks += 1;
            looks < 3 // its lock goes a moment after its descriptors
        });
        // (its leftover name is looked at once more, by the look for new
        // spokes that a dropped watch starts)
        assert_eq!((looks, watched(&hub)), (4, 0));
        assert!(!readable(hub.fd()));
        // a killed holder's name left behind is not watched (always readable)
        joined.store(2, Ordering::Relaxed);
        hub.watch_spokes(&joined, 2, |_| false);
        assert_eq!(watched(&hub), 0);
        assert!(!readable(hub.fd()));
        // a new spoke replaced a dead one before the hub looked: no waiting
        // for the slot, which the new one holds
        let second = Life::create(&p, 1).unwrap();
        joined.store(3, Ordering::Relaxed);
        hub.watch_spokes(&joined, 2, |_| true);
        assert_eq!(watched(&hub), 1);
        drop(second);
        let third = Life::create(&p, 1).unwrap();
        joined.store(4, Ordering::Relaxed);
        let mut looks = 0;
        hub.watch_spokes(&joined, 2, |_| {
            looks += 1;
            true
        });
        assert!(looks <= 1, "waited {looks} looks for a slot a new spoke holds");
        assert_eq!(watched(&hub), 1, "the new spoke is watched");
        third.remove_name();
        drop(third);
        hub.leave(&AtomicU32::new(0));
    }

    #[test]
    fn a_seat_taken_again_is_watched_again_however_the_events_fall() {
        let p = place(2);
        let _clean = Clean(p.clone());
        let hub = hub(&p);
        let joined = AtomicU32::new(1);
        let a = Life::create(&p, 1).unwrap();
        hub.watch_spokes(&joined, 2, |_| true);
        assert_eq!(watched(&hub), 1);
        // A leaves in order and B takes the seat, both before the hub looks
        a.remove_name();
        drop(a);
        let b = Life::create(&p, 1).unwrap();
        joined.store(2, Ordering::Relaxed);
        hub.watch_spokes(&joined, 2, |_| false);
        assert_eq!(watched(&hub), 1, "B is watched");
        drop(b);
        assert!(readable(hub.fd()), "B's death is seen");
        hub.watch_spokes(&joined, 2, |_| false);
        assert_eq!(watched(&hub), 0);
        // D takes the seat while C's life is still open (a leaver's lock
        // goes before its life closes): D's life replaces C's name, and
        // the count moves, before C's life closes
        let c = Life::create(&p, 1).unwrap();
        joined.store(3, Ordering::Relaxed);
        hub.watch_spokes(&joined, 2, |_| true);
        assert_eq!(watched(&hub), 1);
        let d = Life::create(&p, 1).unwrap();
        joined.store(4, Ordering::Relaxed);
        hub.watch_spokes(&joined, 2, |_| true);
        drop(c);
        hub.watch_spokes(&joined, 2, |_| true);
        assert_eq!(watched(&hub), 1, "D is watched once C's life closed");
        drop(d);
        assert!(readable(hub.fd()), "D's death is seen");
        hub.watch_spokes(&joined, 2, |_| false);
        assert_eq!(watched(&hub), 0);
        hub.leave(&AtomicU32::new(0));
    }

    #[test]
    fn a_spoke_that_came_and_went_between_two_looks_is_waited_for() {
        let p = place(3);
        let _clean = Clean(p.clone());
        let hub = hub(&p);
        let joined = AtomicU32::new(0);
        hub.watch_spokes(&joined, 2, |_| true);
        // it joined, sent, and is dying: life closed, lock still held
        drop(Life::create(&p, 2).unwrap());
        joined.store(1, Ordering::Relaxed);
        let mut looks = 0;
        hub.watch_spokes(&joined, 2, |slot| {
            assert_eq!(slot, 2);
            looks += 1;
            looks < 4
        });
        assert_eq!((looks, watched(&hub)), (4, 0), "waited until its slot said so");
        assert!(!readable(hub.fd()));
        hub.leave(&AtomicU32::new(0));
    }
}
