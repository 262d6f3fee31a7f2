//! Waiting for the other side: spin briefly, then sleep on a futex.
//!
//! The side that waits raises its waiter flag and sleeps on a sequence word;
//! the other side makes the wake-up system call only when it sees the flag,
//! so a busy channel costs no system calls. Both sides put a `SeqCst` fence
//! between their store (flag, or counter) and their load (counter, or flag),
//! so at least one of them sees the other's store: either the waiter finds
//! the data before sleeping, or the waker finds the flag. The sleeper reads
//! the sequence word before checking, so a wake-up between its check and its
//! sleep makes the sleep return at once. Sleeps last at most
//! [`LIVENESS_INTERVAL`], after which the peer's liveness is checked, so no
//! wait outlives a dead peer by more than that.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rustix::thread::futex;

/// The longest sleep between checks that the peer still runs.
pub(crate) const LIVENESS_INTERVAL: Duration = Duration::from_millis(50);

/// The instant `timeout` from now; `None` (no deadline) when that is too far
/// to represent, as `Duration::MAX` is.
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// `futex(FUTEX_WAIT)` on shared memory for at most `timeout`, if `word`
/// still holds `expected`. Spurious returns are fine: callers loop.
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    // Not FUTEX_PRIVATE: the word is shared between processes.
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes whoever sleeps on `seq` if `flag` says somebody may.
pub(crate) fn wake(seq: &AtomicU32, flag: &AtomicU32) {
    // Orders the caller's counter store before the flag load (see the module
    // docs).
    fence(Ordering::SeqCst);
    if flag.load(Ordering::Relaxed) != 0 {
        force_wake(seq);
    }
}

/// Wakes whoever sleeps on `seq`, flag or not (for rare events: joining,
/// leaving).
pub(crate) fn force_wake(seq: &AtomicU32) {
    seq.fetch_add(1, Ordering::Release);
    let _ = futex::wake(seq, futex::Flags::empty(), u32::MAX);
}

/// How to wait: the words to sleep on and how long to spin first.
pub(crate) struct Waiter<'a> {
    pub seq: &'a AtomicU32,
    pub flag: &'a AtomicU32,
    /// How long to spin before sleeping; `Duration::MAX` never sleeps.
    pub spin: Duration,
}

/// Why a wait ended without a value.
pub(crate) enum Stop<E> {
    /// The deadline passed.
    TimedOut,
    /// `check` or `attempt` failed.
    Failed(E),
}

impl<E> From<E> for Stop<E> {
    fn from(e: E) -> Self {
        Stop::Failed(e)
    }
}

/// Calls `attempt` until it gives a value, waiting in between.
///
/// `check` runs before each sleep and at least every [`LIVENESS_INTERVAL`]
/// while spinning; an error from it ends the wait, after one last `attempt`
/// (a peer may commit its last message and then close or die).
pub(crate) fn wait_for<T, E>(
    w: &Waiter<'_>,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Result<Option<T>, E>,
    mut check: impl FnMut() -> Result<(), E>,
) -> Result<T, Stop<E>> {
    let start = Instant::now();
    let mut last_check = start;
    let mut spins: u32 = 0;
    // Spin: cheap while the peer is running on another core.
    loop {
        if let Some(v) = attempt()? {
            return Ok(v);
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins % 64 != 0 {
            continue;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(Stop::TimedOut);
        }
        if now.duration_since(last_check) >= LIVENESS_INTERVAL {
            last_check = now;
            if let Err(e) = check() {
                return last_attempt(&mut attempt, e);
            }
        }
        if now.duration_since(start) >= w.spin {
            break;
        }
    }
    // Sleep: announce it, look once more, then sleep on the sequence word.
    loop {
        let seq = w.seq.load(Ordering::Acquire);
        w.flag.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        match attempt() {
            Ok(Some(v)) => {
                w.flag.store(0, Ordering::Relaxed);
                return Ok(v);
            }
            Ok(None) => {}
            Err(e) => {
                w.flag.store(0, Ordering::Relaxed);
                return Err(Stop::Failed(e));
            }
        }
        if let Err(e) = check() {
            w.flag.store(0, Ordering::Relaxed);
            return last_attempt(&mut attempt, e);
        }
        let mut slice = LIVENESS_INTERVAL;
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                w.flag.store(0, Ordering::Relaxed);
                return Err(Stop::TimedOut);
            }
            slice = slice.min(d - now);
        }
        futex_wait(w.seq, seq, slice);
    }
}

fn last_attempt<T, E>(attempt: &mut impl FnMut() -> Result<Option<T>, E>, e: E) -> Result<T, Stop<E>> {
    match attempt()? {
        Some(v) => Ok(v),
        None => Err(Stop::Failed(e)),
    }
}

/// Sleeps on `seq` for at most `timeout` unless it has moved on from
/// `expected` (for waits on rare events, which poll their condition).
pub(crate) fn sleep_on(seq: &AtomicU32, expected: u32, timeout: Duration) {
    futex_wait(seq, expected, timeout.min(LIVENESS_INTERVAL));
}
