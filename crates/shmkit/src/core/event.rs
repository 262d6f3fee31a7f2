//! Events: a futex sequence word and a count of the processes asleep on it.
//!
//! This module knows nothing of rings, roles or files: an [`Event`] is two
//! 32-bit words in shared memory, and [`wait_for`] is a loop that spins, then
//! sleeps on one, calling back to see whether the wait is over.
//!
//! # The protocol
//! A waiter adds itself to `waiters`, reads `seq`, issues a `SeqCst` fence,
//! then looks at its condition once more before it sleeps on `seq`. A
//! notifier first makes the condition true (publishes a frame, frees room),
//! issues a `SeqCst` fence, then loads `waiters`, and only if somebody may
//! sleep bumps `seq` and makes the `futex(FUTEX_WAKE)` system call. The two
//! fences order each side's store before its load, so at least one side sees
//! the other's: either the waiter finds the condition true and does not
//! sleep, or the notifier finds the waiter and bumps `seq` — which the
//! waiter read before its check, so its `futex(FUTEX_WAIT)` returns at once.
//! A busy conversation therefore costs no system calls, and several
//! sleepers can share one word (N subscribers, N senders).
//!
//! # Fenceless notifiers
//! A `SeqCst` fence costs a notifier several nanoseconds on every message.
//! A process that registers for `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`
//! notifies without it (a compiler fence only) and says so in the event's
//! `fenceless` word, before it takes part; a sleeper that sees the word set
//! calls `membarrier(GLOBAL_EXPEDITED)` instead of its own fence. That call
//! makes every CPU running a registered process execute a full barrier
//! before it returns, so the notifier's load of `waiters` either comes after
//! that barrier (and sees the sleeper's increment, made before the call) or
//! before it (and then the notifier's earlier store of the condition is
//! visible to the sleeper's check, made after the call): the asymmetric form
//! of the same argument, with the cost moved to the side that is about to
//! sleep anyway (about 0.4 µs here). A notifier skips its fence only if
//! the sleepers registered too (so that they can issue the membarrier); the
//! channel learns that from the word its peer sets on the event the peer
//! notifies. Where registration fails (an old kernel, a seccomp filter),
//! the process fences as before.
//!
//! A peer may write any of the words at any time. Garbage in `waiters` costs
//! wake-ups that nobody needed; a zero written under a sleeper costs that
//! sleeper at most one [`LIVENESS_INTERVAL`], because every sleep is that
//! long at most, after which the condition and the peer's liveness are
//! checked again.

use std::time::{Duration, Instant};

use super::sync::{compiler_fence, fence, AtomicU32, Ordering};

/// The longest sleep between two looks at the peer's liveness.
pub(crate) const LIVENESS_INTERVAL: Duration = Duration::from_millis(50);

/// A futex word and its sleepers, in shared memory (12 bytes, `repr(C)`).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Event {
    /// Bumped by every notification that may wake somebody.
    pub seq: AtomicU32,
    /// How many processes are (about to be) asleep on `seq`.
    pub waiters: AtomicU32,
    /// Non-zero once a notifier that skips its fence takes part (see the
    /// module docs).
    pub fenceless: AtomicU32,
}

impl Event {
    /// A new event (heap memory, tests).
    #[cfg(any(test, loom))]
    pub(crate) fn new() -> Event {
        Event {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            fenceless: AtomicU32::new(0),
        }
    }

    /// Wakes the sleepers, if the count says there may be any. Call after
    /// making the condition true; the fence orders that store before the
    /// count's load (see the module docs). `fenceless`: this process is
    /// registered for global expedited membarriers and has announced it
    /// with [`announce_fenceless`](Self::announce_fenceless), so sleepers
    /// supply the barrier.
    /// (For an event that pollers may arm, use
    /// [`notify_or_ring`](Self::notify_or_ring): this wakes sleepers only.)
    #[inline]
    pub(crate) fn notify(&self, fenceless: bool) {
        if fenceless {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        // sleepers only: an armed poller's bit alone is no reason for a
        // futex call
        if self.waiters.load(Ordering::Relaxed) & SLEEPERS != 0 {
            self.notify_always();
        }
    }

    /// Says that a notifier of this event skips its fence; call before
    /// taking part (before claiming a slot), so that a sleeper that has seen
    /// the participant also sees this.
    pub(crate) fn announce_fenceless(&self) {
        self.fenceless.store(1, Ordering::SeqCst);
    }

    /// Wakes every sleeper, count or not (rare events: joining, leaving).
    pub(crate) fn notify_always(&self) {
        // Release: whatever the notifier wrote before is visible to a
        // sleeper that Acquire-loads the new value.
        self.seq.fetch_add(1, Ordering::Release);
        #[cfg(not(loom))]
        futex::wake(&self.seq);
    }

    /// Counts this process among the sleepers; [`Registration`]'s drop
    /// takes it off again.
    pub(crate) fn register(&self) -> Registration<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        Registration { event: self }
    }
}

/// The half of [`Event::waiters`] that counts sleepers (on the futex).
pub(crate) const SLEEPERS: u32 = 0xFFFF;

/// The half of [`Event::waiters`] in which pollers say that they are armed,
/// one bit each (a channel's side uses [`POLLER`]; a kind with several
/// pollers on one event gives each its own bit, or each its own event).
pub(crate) const POLLERS: u32 = !SLEEPERS;

/// The poller bit of a channel's side.
pub(crate) const POLLER: u32 = 1 << 16;

/// Pollers: waiting through a descriptor instead of a futex (see
/// `core::bell` for the descriptor).
///
/// A poller *arms* like a sleeper counts itself: it sets its bit in the
/// high half of `waiters`, fences (or issues the membarrier a fenceless
/// notifier relies on), and looks at its condition once more before it
/// reports "would block" and waits for its descriptor. A notifier that
/// uses [`notify_or_ring`](Event::notify_or_ring) finds the bit with the
/// same one load of `waiters` after its fence that it makes today,
/// clears the poller half and, if it was the one to clear a set bit,
/// *rings*: writes a byte into the poller's bell. The argument is the
/// sleepers' (module docs): either the poller's last look sees the
/// condition, or the notifier sees the bit. The bit is consumed by the
/// ring (one ring per arming, however many notifiers), so a busy
/// conversation with a poller that is not waiting costs no system call;
/// a poller that finds its condition true after arming clears its bit
/// itself ([`disarm_poll`](Event::disarm_poll)).
impl Event {
    /// [`notify`](Self::notify), ringing the pollers' bells too: `ring` is
    /// called (at most once) if a poller armed and this call is the one
    /// that consumes its bit. The busy path is `notify`'s: one fence (or
    /// none, fenceless) and one load.
    ///
    /// `ring` may say that a ring could not be delivered (it returns
    /// `false`: a bell could not be opened, out of descriptors): the bits
    /// it consumed are set again, so that the next notification rings
    /// again rather than leaving the poller unrung for good.
    #[inline]
    pub(crate) fn notify_or_ring<R: Delivered>(&self, fenceless: bool, ring: impl FnOnce() -> R) {
        if fenceless {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        let seen = self.waiters.load(Ordering::Relaxed);
        if seen != 0 {
            self.wake_or_ring(seen, ring);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_or_ring<R: Delivered>(&self, seen: u32, ring: impl FnOnce() -> R) {
        if seen & SLEEPERS != 0 {
            self.notify_always();
        }
        // Acquire, pairing with the poller's SeqCst arming: what the poller
        // did before it armed — drain its bell — happens before this ring,
        // so the ring is never drained away unseen (the loom model with two
        // notifiers finds that interleaving with Relaxed). The ring itself
        // (a write to a pipe) carries the condition to the poller.
        if seen & POLLERS != 0 {
            let taken = self.waiters.fetch_and(SLEEPERS, Ordering::Acquire) & POLLERS;
            if taken != 0 && !ring().delivered() {
                self.waiters.fetch_or(taken, Ordering::Relaxed);
            }
        }
    }

    /// Whether a poller has armed, after a fence that orders the caller's
    /// earlier stores before the load (as in `notify`): for a ring that
    /// must not consume the bit — a participant's hello, which, if its
    /// process dies before the ring, must leave the bit to the next
    /// notifier.
    pub(crate) fn pollers_armed(&self) -> bool {
        fence(Ordering::SeqCst);
        self.waiters.load(Ordering::Relaxed) & POLLERS != 0
    }

    /// Arms the poller `bit`: sets it, then orders that store before the
    /// caller's last look at its condition (as [`Registration::arm`]).
    pub(crate) fn arm_poll(&self, bit: u32) {
        self.waiters.fetch_or(bit & POLLERS, Ordering::SeqCst);
        if self.fenceless.load(Ordering::Relaxed) == 0 || !membarrier::global() {
            fence(Ordering::SeqCst);
        }
    }

    /// Clears the poller `bit` (its condition turned out true after
    /// arming). A notifier may have rung meanwhile: the poller then finds
    /// a byte in its bell later, a spurious wake-up, never a lost one.
    pub(crate) fn disarm_poll(&self, bit: u32) {
        self.waiters.fetch_and(!(bit & POLLERS), Ordering::Relaxed);
    }
}

/// What a ring closure of [`Event::notify_or_ring`] returns: whether every
/// ring it owed was delivered (`()`: always).
pub(crate) trait Delivered {
    /// `false` if a ring could not be delivered.
    fn delivered(self) -> bool;
}

impl Delivered for () {
    fn delivered(self) -> bool {
        true
    }
}

impl Delivered for bool {
    fn delivered(self) -> bool {
        self
    }
}

/// One sleeper counted in an [`Event`]; dropping it uncounts it.
#[derive(Debug)]
pub(crate) struct Registration<'a> {
    event: &'a Event,
}

impl Registration<'_> {
    /// The sequence value to sleep on, read before the condition's last
    /// check; the fence orders the count's increment (and this load)
    /// before that check.
    pub(crate) fn arm(&self) -> u32 {
        let seen = self.event.seq.load(Ordering::Acquire);
        if self.event.fenceless.load(Ordering::Relaxed) == 0 || !membarrier::global() {
            fence(Ordering::SeqCst);
        }
        seen
    }

    /// Sleeps while `seq` still holds `seen`, at most `timeout`.
    #[cfg(not(loom))]
    pub(crate) fn sleep(&self, seen: u32, timeout: Duration) {
        futex::wait(&self.event.seq, seen, timeout.min(LIVENESS_INTERVAL));
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        // A peer may have zeroed the count meanwhile: never wrap below zero
        // (a wrapped count would only cost wake-ups, but needlessly).
        let _ = self
            .event
            .waiters
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// The instant `timeout` from now; `None` (no deadline) when that is too far
/// to represent, as `Duration::MAX` is.
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Why a wait ended without a value.
#[derive(Debug)]
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

/// How long [`wait_for`] spins before it starts offering its core to other
/// processes between looks (`sched_yield`): a busy conversation's waits are
/// far shorter, so they never make the system call.
#[cfg(not(loom))]
pub(crate) const SPIN_ALONE: Duration = Duration::from_micros(4);

/// Calls `attempt` until it gives a value, spinning for `spin` (offering
/// the core to other processes after [`SPIN_ALONE`]), then sleeping on
/// `event` in between.
///
/// `check` runs before each sleep and at least every [`LIVENESS_INTERVAL`]
/// while spinning; an error from it ends the wait, after one last `attempt`
/// (a peer may commit its last message and then close or die).
#[cfg(not(loom))]
pub(crate) fn wait_for<T, E>(
    event: &Event,
    spin: Duration,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Result<Option<T>, E>,
    mut check: impl FnMut() -> Result<(), E>,
) -> Result<T, Stop<E>> {
    // The clock is first read after 64 looks: a wait that ends sooner (a
    // busy conversation) costs no clock read at all.
    let mut start: Option<Instant> = None;
    let mut last_check = None;
    let mut spins: u32 = 0;
    // Spin: cheap while the peer runs on another core.
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
        let start = *start.get_or_insert(now);
        let last_check = last_check.get_or_insert(now);
        if deadline.is_some_and(|d| now >= d) {
            return Err(Stop::TimedOut);
        }
        if now.duration_since(*last_check) >= LIVENESS_INTERVAL {
            *last_check = now;
            if let Err(e) = check() {
                return last_attempt(&mut attempt, e);
            }
        }
        let waited = now.duration_since(start);
        if waited >= spin {
            break;
        }
        if waited >= SPIN_ALONE {
            // A long wait: perhaps for a process that has no core, because
            // we spin on it (three processes on two cores). Offer the core
            // between looks; with nobody else to run, this returns at once.
            std::thread::yield_now();
        }
    }
    // Sleep: be counted, look once more, then sleep on the sequence word.
    let registration = event.register();
    loop {
        let seen = registration.arm();
        if let Some(v) = attempt()? {
            return Ok(v);
        }
        if let Err(e) = check() {
            drop(registration);
            return last_attempt(&mut attempt, e);
        }
        let mut slice = LIVENESS_INTERVAL;
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                return Err(Stop::TimedOut);
            }
            slice = slice.min(d - now);
        }
        registration.sleep(seen, slice);
    }
}

#[cfg(not(loom))]
fn last_attempt<T, E>(attempt: &mut impl FnMut() -> Result<Option<T>, E>, e: E) -> Result<T, Stop<E>> {
    match attempt()? {
        Some(v) => Ok(v),
        None => Err(Stop::Failed(e)),
    }
}

/// Sleeps on `event` for at most `timeout` (capped at
/// [`LIVENESS_INTERVAL`]) unless it is notified meanwhile; for waits on
/// rare events, which poll their condition around it. Returns at once if
/// `seen` is stale.
#[cfg(not(loom))]
pub(crate) fn sleep_on(event: &Event, seen: u32, timeout: Duration) {
    let registration = event.register();
    registration.sleep(seen, timeout);
}

/// Global expedited membarriers (see the module docs).
pub(crate) mod membarrier {
    /// Whether this process is registered for global expedited membarriers,
    /// registering it the first time (per process: a forked child asks
    /// again). Under loom, never.
    pub(crate) fn registered() -> bool {
        #[cfg(loom)]
        return false;
        #[cfg(not(loom))]
        {
            use rustix::thread::{membarrier, MembarrierCommand};
            use std::sync::atomic::{AtomicU64, Ordering};
            // pid << 1 | registered, for the process that asked; 0: nobody yet
            static STATE: AtomicU64 = AtomicU64::new(0);
            let pid = u64::from(std::process::id());
            let state = STATE.load(Ordering::Acquire);
            if state >> 1 == pid {
                return state & 1 == 1;
            }
            let ok = membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok();
            STATE.store(pid << 1 | u64::from(ok), Ordering::Release);
            ok
        }
    }

    /// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`: a full barrier on every
    /// CPU that runs a registered process. `false` if it failed (then the
    /// caller fences itself; a notifier that announced itself fenceless has
    /// registered, so the command exists).
    pub(crate) fn global() -> bool {
        #[cfg(loom)]
        return false;
        #[cfg(not(loom))]
        {
            use rustix::thread::{membarrier, MembarrierCommand};
            membarrier(MembarrierCommand::GlobalExpedited).is_ok()
        }
    }
}

#[cfg(not(loom))]
mod futex {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    use rustix::thread::futex;

    /// `futex(FUTEX_WAIT)` on shared memory for at most `timeout`, if `word`
    /// still holds `expected`. Spurious returns are fine: callers loop.
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        // Not FUTEX_PRIVATE: the word is shared between processes.
        let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
    }

    /// Wakes every sleeper on `word`.
    pub(super) fn wake(word: &AtomicU32) {
        // Every sleeper: the kernel reads the count as an `int`, so
        // `u32::MAX` would be -1 and wake just one (several subscribers,
        // senders or clients sleep on one word).
        let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn a_ring_that_could_not_be_delivered_is_owed_to_the_next_notification() {
        let e = Event::new();
        e.arm_poll(POLLER);
        let mut rings = 0;
        e.notify_or_ring(false, || {
            rings += 1;
            false // out of descriptors, say
        });
        assert_eq!(e.waiters.load(Ordering::Relaxed) & POLLERS, POLLER, "the bit is back");
        e.notify_or_ring(false, || {
            rings += 1;
            true
        });
        assert_eq!(rings, 2, "the next notification rang again");
        assert_eq!(e.waiters.load(Ordering::Relaxed), 0);
        e.notify_or_ring(false, || -> bool { panic!("nobody armed") });
    }

    #[test]
    fn one_notification_wakes_every_sleeper() {
        // Each sleeps up to a minute; one wake must end every sleep (a
        // wake count the kernel read as -1 woke only one of them).
        let word = Arc::new(AtomicU32::new(0));
        let (done, finished) = std::sync::mpsc::channel();
        let sleepers: Vec<_> = (0..3)
            .map(|_| {
                let (word, done) = (word.clone(), done.clone());
                std::thread::spawn(move || {
                    super::futex::wait(&word, 0, Duration::from_secs(60));
                    done.send(()).unwrap();
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100)); // let them fall asleep
        word.store(1, Ordering::Release);
        super::futex::wake(&word);
        for _ in 0..3 {
            finished
                .recv_timeout(Duration::from_secs(20))
                .expect("a sleeper was not woken");
        }
        for s in sleepers {
            s.join().unwrap();
        }
    }

    #[test]
    fn a_sleeper_is_woken_by_a_notification() {
        let event = Arc::new(Event::new());
        let flag = Arc::new(AtomicBool::new(false));
        let (e2, f2) = (event.clone(), flag.clone());
        let waiter = std::thread::spawn(move || {
            wait_for::<(), ()>(
                &e2,
                Duration::ZERO,
                deadline(Duration::from_secs(10)),
                || Ok(f2.load(Ordering::Acquire).then_some(())),
                || Ok(()),
            )
            .is_ok()
        });
        while event.waiters.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        flag.store(true, Ordering::Release);
        event.notify(false);
        assert!(waiter.join().unwrap());
        assert_eq!(event.waiters.load(Ordering::Relaxed), 0, "the sleeper uncounted itself");
    }

    #[test]
    fn a_zeroed_count_does_not_wrap() {
        let event = Event::new();
        let r = event.register();
        event.waiters.store(0, Ordering::Relaxed); // a peer scribbles
        drop(r);
        assert_eq!(event.waiters.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_wait_ends_at_its_deadline_and_on_a_failed_check() {
        let event = Event::new();
        let r = wait_for::<(), ()>(
            &event,
            Duration::ZERO,
            deadline(Duration::from_millis(20)),
            || Ok(None),
            || Ok(()),
        );
        assert!(matches!(r, Err(Stop::TimedOut)));
        let r = wait_for::<(), &str>(&event, Duration::ZERO, None, || Ok(None), || Err("gone"));
        assert!(matches!(r, Err(Stop::Failed("gone"))));
    }
}

/// The waiter-count protocol under the loom model checker: in every
/// interleaving, a waiter that goes to sleep with the condition false is
/// woken (the sequence word it armed has moved), so no wake-up is lost,
/// with one or two sleepers sharing the word.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;

    fn model(sleepers: usize) {
        loom::model(move || {
            let event = Arc::new(Event::new());
            let cond = Arc::new(AtomicBool::new(false));
            let waiters: Vec<_> = (0..sleepers)
                .map(|_| {
                    let (e, c) = (event.clone(), cond.clone());
                    loom::thread::spawn(move || {
                        let r = e.register();
                        let seen = r.arm();
                        let cond_now = c.load(Ordering::Relaxed);
                        std::mem::forget(r);
                        (seen, cond_now)
                    })
                })
                .collect();
            cond.store(true, Ordering::Relaxed);
            event.notify(false);
            for w in waiters {
                let (seen, cond_now) = w.join().unwrap();
                if !cond_now {
                    assert_ne!(event.seq.load(Ordering::Relaxed), seen, "a sleeper missed its wake-up");
                }
            }
        });
    }

    /// A poller that drains, arms and looks, against `notifiers` threads
    /// that each make one condition true and notify: whenever the poller
    /// ends up waiting with a condition it has not seen, its bell holds a
    /// ring. Two rounds, so that a disarm after finding one condition and
    /// the arming after it are checked too.
    fn poll_model(notifiers: usize, sleeper: bool) {
        // Bounded preemptions (as loom advises for CI): the wider models
        // would otherwise take many minutes; 3 covers every interleaving
        // of the arm/notify pairs that the argument is about.
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            let event = Arc::new(Event::new());
            let conds: Arc<Vec<AtomicBool>> = Arc::new((0..notifiers).map(|_| AtomicBool::new(false)).collect());
            let bell = Arc::new(AtomicBool::new(false));
            let poller = {
                let (e, c, b) = (event.clone(), conds.clone(), bell.clone());
                loom::thread::spawn(move || {
                    let mut seen = vec![false; c.len()];
                    for _round in 0..2 {
                        // drain, then arm, then look (never drain after arming)
                        b.store(false, Ordering::Relaxed);
                        e.arm_poll(POLLER);
                        let mut new = false;
                        for (i, cond) in c.iter().enumerate() {
                            if !seen[i] && cond.load(Ordering::Relaxed) {
                                seen[i] = true;
                                new = true;
                            }
                        }
                        if !new {
                            return seen; // waits on the bell now
                        }
                        e.disarm_poll(POLLER);
                    }
                    seen
                })
            };
            let sleeper = sleeper.then(|| {
                let (e, c) = (event.clone(), conds.clone());
                loom::thread::spawn(move || {
                    let r = e.register();
                    let seen = r.arm();
                    let cond_now = c[0].load(Ordering::Relaxed);
                    std::mem::forget(r);
                    (seen, cond_now)
                })
            });
            let ns: Vec<_> = (0..notifiers)
                .map(|i| {
                    let (e, c, b) = (event.clone(), conds.clone(), bell.clone());
                    loom::thread::spawn(move || {
                        c[i].store(true, Ordering::Relaxed);
                        e.notify_or_ring(false, || b.store(true, Ordering::Release));
                    })
                })
                .collect();
            for n in ns {
                n.join().unwrap();
            }
            let seen = poller.join().unwrap();
            if seen.iter().any(|s| !s) {
                assert!(bell.load(Ordering::Acquire), "a poller missed its ring");
            }
            if let Some(s) = sleeper {
                let (armed, cond_now) = s.join().unwrap();
                if !cond_now {
                    assert_ne!(
                        event.seq.load(Ordering::Relaxed),
                        armed,
                        "a sleeper beside a poller missed its wake-up"
                    );
                }
            }
        });
    }

    #[test]
    fn loom_event_poller_never_misses_a_ring() {
        poll_model(1, false);
    }

    #[test]
    fn loom_event_poller_with_two_notifiers_never_misses_a_ring() {
        poll_model(2, false);
    }

    #[test]
    fn loom_event_poller_beside_a_sleeper_never_misses() {
        poll_model(1, true);
    }

    #[test]
    fn loom_event_one_sleeper_never_misses_a_wake() {
        model(1);
    }

    #[test]
    fn loom_event_two_sleepers_never_miss_a_wake() {
        model(2);
    }
}
