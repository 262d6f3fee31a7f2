//! Polling readers: the poll roster and each polling reader's doorbell.
//!
//! Readers have no seats, so a reader that polls claims one of the
//! [`ROSTER`] words of the header's roster: it takes an
//! open-file-description write lock on the word's file byte
//! ([`lock_byte`]), which the kernel drops when the reader's process dies
//! (in any namespace), makes its doorbell for that seat
//! (`core::doorbell`, replacing a dead holder's) and stores the bell's
//! nonce in the word. A word whose lock nobody holds is free, whatever it
//! says: a killed reader's word is taken over by the next polling reader
//! (the lock rather than a look at the bell's readers, so that two
//! readers claiming at once never share a word). The writer, after a
//! write that found a poller armed, rings every non-zero word's bell
//! (`Writer::publish`).
//!
//! The writer holds a life (`core::doorbell`) while it takes part, and a
//! polling reader's descriptor is an `epoll` set of its doorbell and a
//! watch on that life: a writer killed between publishing a value and
//! ringing (or after taking the pollers' bit) makes the descriptor readable
//! all the same, so no polling reader misses the last value of a writer
//! that died ([`Polling::watch_writer`]).

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, PoisonError};

use crate::core::bell::Place;
use crate::core::doorbell::{Doorbell, PollSet, Watch};
use crate::core::segment::Segment;
use crate::core::sync::Ordering;
use crate::error::{Error, Result};

use super::layout::{layout_of, MEMBERS_BYTE};

/// How many readers may poll one value at a time.
pub(crate) const ROSTER: usize = 64;

/// The file byte whose lock says that roster word `idx` is taken.
pub(crate) fn lock_byte(idx: usize) -> u64 {
    MEMBERS_BYTE + 1 + idx as u64
}

/// The writer's life's seat.
pub(crate) const WRITER_LIFE: usize = 0;

/// `PollSet` tokens.
const TOKEN_BELL: u64 = 1;
const TOKEN_WRITER: u64 = 2;

/// A polling reader's roster word, doorbell, and watch on the writer.
#[derive(Debug)]
pub(crate) struct Polling {
    idx: usize,
    bell: Doorbell,
    place: Place,
    /// The descriptor: the doorbell and the watch.
    set: PollSet,
    /// The watch on the writer's life, if it has one (see `watch_writer`).
    watch: Mutex<Option<Watch>>,
    /// Whether this reader has armed before.
    armed_before: AtomicBool,
}

impl Polling {
    /// Claims a free roster word of the object open as `seg` and makes its
    /// doorbell.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if all [`ROSTER`] words are held by live
    /// readers; the OS's errors (locks, the bell's FIFO).
    pub(crate) fn claim(seg: &Segment, place: &Place) -> Result<Polling> {
        let roster = &layout_of(&seg.map).roster.0;
        for (idx, word) in roster.iter().enumerate() {
            let ours = crate::sys::ofd::try_lock(&seg.shm, lock_byte(idx))
                .map_err(|e| Error::from_errno("fcntl(F_OFD_SETLK)", &seg.target, e))?;
            if !ours {
                continue;
            }
            let made = Doorbell::create(place, idx).and_then(|bell| {
                let set = PollSet::new(place).and_then(|set| {
                    set.add(bell.as_fd(), TOKEN_BELL)?;
                    Ok(set)
                });
                match set {
                    Ok(set) => Ok((bell, set)),
                    Err(e) => {
                        bell.remove_name();
                        Err(e)
                    }
                }
            });
            match made {
                Ok((bell, set)) => {
                    // SeqCst: before this reader arms, so a writer that
                    // sees the arming sees the word.
                    word.store(bell.nonce(), Ordering::SeqCst);
                    return Ok(Polling {
                        idx,
                        bell,
                        place: place.clone(),
                        set,
                        watch: Mutex::new(None),
                        armed_before: AtomicBool::new(false),
                    });
                }
                Err(e) => {
                    word.store(0, Ordering::Relaxed);
                    let _ = crate::sys::ofd::unlock(&seg.shm, lock_byte(idx));
                    return Err(e);
                }
            }
        }
        Err(Error::InvalidArgument {
            target: seg.target.clone(),
            reason: format!("the poll roster is full: {ROSTER} readers poll this value already"),
        })
    }

    /// Its roster word (the bell's seat).
    pub(crate) fn idx(&self) -> usize {
        self.idx
    }

    /// The doorbell.
    pub(crate) fn bell(&self) -> &Doorbell {
        &self.bell
    }

    /// The descriptor to poll.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.set.as_fd()
    }

    /// After arming (`rung`: the arming drained a ring): stops watching a
    /// writer whose life hung up — it left or died, and its watch would
    /// keep the descriptor readable — and watches the writer's life if
    /// this is the first arming, a ring came (a writer that appears rings
    /// every polling reader), or the old watch just went. A life whose
    /// holder is already gone (a killed writer's name) is not watched.
    /// A watched life is looked at on every arming (one `poll`), so that
    /// an edge-triggered poller (tokio), whose readiness is cleared when it
    /// wakes, never keeps a dead writer's watch. It is registered for its
    /// hang-up only: bytes written into it wake nobody.
    pub(crate) fn watch_writer(&self, rung: bool) {
        let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        let mut look = rung || !self.armed_before.swap(true, Ordering::Relaxed);
        if let Some(w) = &*watch {
            if !w.hung_up() {
                return;
            }
            self.set.remove(w.as_fd());
            *watch = None;
            look = true;
        }
        if !look {
            return;
        }
        // errors (a squatted name, out of descriptors): unwatched until
        // the next ring
        if let Ok(Some(w)) = Watch::open(&self.place, WRITER_LIFE) {
            if !w.hung_up() && self.set.add_watch(w.as_fd(), TOKEN_WRITER).is_ok() {
                *watch = Some(w);
            }
        }
    }

    /// Gives the word back: zero, the bell's name removed, the lock dropped.
    pub(crate) fn leave(&self, seg: &Segment) {
        layout_of(&seg.map).roster.0[self.idx].store(0, Ordering::Relaxed);
        self.bell.remove_name();
        let _ = crate::sys::ofd::unlock(&seg.shm, lock_byte(self.idx));
    }
}
