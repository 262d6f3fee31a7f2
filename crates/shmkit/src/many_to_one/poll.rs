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
//! doorbell. A sender that dies by `SIGKILL` rings nobody: a polled
//! receiver learns that the stream has ended (every seat used, every
//! sender gone) when the last sender leaves in order, or at its next call.

use std::cell::{Cell, OnceCell, RefCell};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::core::bell::{Place, Ringer};
use crate::core::doorbell::{Doorbell, Life, PollSet, Ringers, Watch};
use crate::core::event::{Event, POLLER};
use crate::core::sync::{AtomicU32, Ordering};
use crate::error::{Error, Result};

/// The hub's participant slot (and doorbell and life seat).
pub(crate) const HUB: usize = 0;

/// `PollSet` tokens.
const TOKEN_BELL: u64 = 1;
const TOKEN_HUB: u64 = 2;
const TOKEN_FAILED: u64 = 3;

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
    /// The hub's life, held while it takes part.
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
}

impl Polling {
    /// The machinery of the participant in `slot` of an object of `seats`
    /// seats; the hub (slot 0) makes its life now.
    ///
    /// # Errors
    /// The OS's errors of `epoll_create1` and of making the life.
    pub(crate) fn new(place: Place, slot: usize, seats: usize) -> Result<Polling> {
        let set = PollSet::new(&place)?;
        let hub = slot == HUB;
        let life = if hub { Some(Life::create(&place, HUB)?) } else { None };
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
                self.set.add(w.as_fd(), TOKEN_HUB)?;
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
    /// nonce) and removes its doorbell's name, and the hub's life's name
    /// (the life closes, and watchers hang up, when this value drops).
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
