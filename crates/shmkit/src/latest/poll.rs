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

use crate::core::bell::Place;
use crate::core::doorbell::Doorbell;
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

/// A polling reader's roster word and doorbell.
#[derive(Debug)]
pub(crate) struct Polling {
    idx: usize,
    bell: Doorbell,
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
            match Doorbell::create(place, idx) {
                Ok(bell) => {
                    // SeqCst: before this reader arms, so a writer that
                    // sees the arming sees the word.
                    word.store(bell.nonce(), Ordering::SeqCst);
                    return Ok(Polling { idx, bell });
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

    /// Gives the word back: zero, the bell's name removed, the lock dropped.
    pub(crate) fn leave(&self, seg: &Segment) {
        layout_of(&seg.map).roster.0[self.idx].store(0, Ordering::Relaxed);
        self.bell.remove_name();
        let _ = crate::sys::ofd::unlock(&seg.shm, lock_byte(self.idx));
    }
}
