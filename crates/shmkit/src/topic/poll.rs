//! Waiting through a descriptor (`core::doorbell`): what a topic's
//! endpoint keeps for it.
//!
//! Every endpoint has an `epoll` set (made at connect, so that its
//! descriptor is the same for its whole life). The first time the
//! descriptor is taken, the endpoint makes its *doorbell* (a FIFO beside
//! the object, named by its seat) and puts it in the set; from then on its
//! `try_*` calls *arm* when they find nothing to do: drain the doorbell,
//! publish its nonce in the endpoint's poll word, watch the lives of those
//! it waits for, set the poller bit of the event it waits on, look once
//! more. Whoever makes the condition true rings the doorbells of every
//! seat whose poll word is set, once per arming (`Event::notify_or_ring`).
//!
//! - A **subscriber** waits on `data`; the publisher rings it after a
//!   commit. It watches the publisher's life: the set is readable (hung
//!   up) once the publisher has closed or died.
//! - A **publisher** waits on `space` when the ring is full; a blocking
//!   subscriber rings it after a release (and when it joins or leaves). It
//!   watches the lives of the blocking subscribers that hold it up: one
//!   that dies makes the set readable.
//!
//! Every subscriber shares one poller bit on `data` (64 seats, 16 bits):
//! the publisher consumes it and rings every polling subscriber. So a
//! subscriber that finds a message after arming does **not** clear the bit
//! (another may have set it too): the next commit rings every polling
//! subscriber once, a spurious wake-up at worst, never a lost one.

use std::cell::{OnceCell, RefCell};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::core::bell::Place;
use crate::core::doorbell::{Doorbell, PollSet, Ringers, Watch};
use crate::error::Result;

/// The set's token for the doorbell (watches use their seat).
const BELL: u64 = u64::MAX;
/// The set's token for the stand-in of a doorbell that could not be made.
const BROKEN: u64 = u64::MAX - 1;
/// How long a poller waits for a dying peer's lock to go after its life
/// hung up, or for a starting publisher's life to appear.
pub(crate) const CONFIRM: Duration = Duration::from_secs(1);

/// A watch on another participant's life.
#[derive(Debug)]
struct Watched {
    seat: usize,
    /// The seat's generation when the watch was opened (a subscriber's
    /// `gen`; 0 for the publisher's seat).
    gen: u64,
    watch: Watch,
}

/// One endpoint's polling state (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct Polling {
    place: Place,
    /// This participant's seat (0: the publisher).
    seat: usize,
    set: PollSet,
    /// Made when the descriptor is first taken.
    bell: OnceCell<Doorbell>,
    /// A readable stand-in while the doorbell could not be made, so that
    /// the caller's next `try_*` call reports why.
    broken: RefCell<Option<OwnedFd>>,
    watches: RefCell<Vec<Watched>>,
    ringers: RefCell<Ringers>,
}

impl Polling {
    /// The state of the participant in `seat` of the object at `place`.
    ///
    /// # Errors
    /// The OS's error of `epoll_create1`.
    pub(crate) fn new(place: Place, seat: usize, seats: usize) -> Result<Polling> {
        let set = PollSet::new(&place)?;
        Ok(Polling {
            ringers: RefCell::new(Ringers::new(place.clone(), seats)),
            place,
            seat,
            set,
            bell: OnceCell::new(),
            broken: RefCell::new(None),
            watches: RefCell::new(Vec::new()),
        })
    }

    /// The descriptor (the set); taking it puts the endpoint in poll mode.
    /// The first time, the doorbell is made and rung once: a `try_*` call
    /// made before armed nothing, so the caller is told to try again.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        if self.bell.get().is_none() && self.broken.borrow().is_none() {
            match self.make_bell() {
                Ok(bell) => {
                    self.ringers.borrow_mut().ring(self.seat, bell.nonce());
                }
                Err(_) => self.stand_in(),
            }
        }
        self.set.as_fd()
    }

    /// Whether the descriptor was taken.
    #[inline]
    pub(crate) fn polled(&self) -> bool {
        self.bell.get().is_some() || self.broken.borrow().is_some()
    }

    fn make_bell(&self) -> Result<&Doorbell> {
        if let Some(bell) = self.bell.get() {
            return Ok(bell);
        }
        let bell = Doorbell::create(&self.place, self.seat)?;
        if let Err(e) = self.set.add(bell.as_fd(), BELL) {
            bell.remove_name();
            return Err(e);
        }
        if let Some(fd) = self.broken.borrow_mut().take() {
            self.set.remove(fd.as_fd());
        }
        Ok(self.bell.get_or_init(|| bell))
    }

    /// Makes the set readable without a doorbell (see `broken`).
    fn stand_in(&self) {
        let fd = rustix::event::eventfd(1, rustix::event::EventfdFlags::CLOEXEC);
        if let Ok(fd) = fd {
            if self.set.add(fd.as_fd(), BROKEN).is_ok() {
                *self.broken.borrow_mut() = Some(fd);
            }
        }
    }

    /// The first half of arming: the doorbell (made now if it could not
    /// be before), drained of earlier rings. Returns its nonce, for the
    /// poll word.
    ///
    /// # Errors
    /// Why the doorbell cannot be made.
    pub(crate) fn drain(&self) -> Result<u32> {
        let bell = self.make_bell()?;
        bell.drain();
        Ok(bell.nonce())
    }

    /// Watches seat `seat`'s life (holder generation `gen`), replacing a
    /// watch on an earlier holder. `false` if the seat has no life now.
    ///
    /// # Errors
    /// [`Error::Untrusted`] if the life's name holds somebody else's file;
    /// the OS's errors.
    pub(crate) fn watch(&self, seat: usize, gen: u64) -> Result<bool> {
        let mut watches = self.watches.borrow_mut();
        if let Some(i) = watches.iter().position(|w| w.seat == seat) {
            if watches[i].gen == gen {
                return Ok(true);
            }
            let old = watches.swap_remove(i);
            self.set.remove(old.watch.as_fd());
        }
        let Some(watch) = Watch::open(&self.place, seat)? else {
            return Ok(false);
        };
        self.set.add_watch(watch.as_fd(), seat as u64)?;
        watches.push(Watched { seat, gen, watch });
        Ok(true)
    }

    /// Stops watching the seats `keep` says no to.
    pub(crate) fn retain(&self, mut keep: impl FnMut(usize) -> bool) {
        self.watches.borrow_mut().retain(|w| {
            let kept = keep(w.seat);
            if !kept {
                self.set.remove(w.watch.as_fd());
            }
            kept
        });
    }

    /// Whether seat `seat` is watched.
    pub(crate) fn watches(&self, seat: usize) -> bool {
        self.watches.borrow().iter().any(|w| w.seat == seat)
    }

    /// The watched seats whose holder has left or died: `(seat, gen)`.
    pub(crate) fn hung_up(&self) -> Vec<(usize, u64)> {
        self.watches
            .borrow()
            .iter()
            .filter(|w| w.watch.hung_up())
            .map(|w| (w.seat, w.gen))
            .collect()
    }

    /// Stops watching seat `seat`.
    pub(crate) fn unwatch(&self, seat: usize) {
        let mut watches = self.watches.borrow_mut();
        if let Some(i) = watches.iter().position(|w| w.seat == seat) {
            let old = watches.swap_remove(i);
            self.set.remove(old.watch.as_fd());
        }
    }

    /// Rings seat `seat`'s doorbell if `nonce` (its poll word) says it has
    /// one; closes the one held for it if not (its holder left).
    pub(crate) fn ring(&self, seat: usize, nonce: u32) -> bool {
        let mut ringers = self.ringers.borrow_mut();
        if nonce == 0 {
            ringers.forget(seat);
            true
        } else {
            ringers.ring(seat, nonce)
        }
    }

    /// Makes the descriptor readable now (a spurious wake-up: the caller
    /// tries again, and arms then).
    pub(crate) fn ring_self(&self) {
        if let Some(bell) = self.bell.get() {
            let _ = self.ring(self.seat, bell.nonce());
        }
    }

    /// Removes the doorbell's name (leaving).
    pub(crate) fn leave(&self) {
        if let Some(bell) = self.bell.get() {
            bell.remove_name();
        }
    }
}

/// Waits (at most [`CONFIRM`]) until `done` says so, looking every 200 µs;
/// for a poller that saw a life hang up a moment before the holder's lock
/// went (the kernel closes a dying process's descriptors first), or a
/// publisher between taking its seat and making its life.
pub(crate) fn confirm(mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + CONFIRM;
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
