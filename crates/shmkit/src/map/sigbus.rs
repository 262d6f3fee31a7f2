//! Surviving `SIGBUS` when a mapped object shrinks.
//!
//! Touching a page of a shared file mapping that lies past the file's end
//! raises `SIGBUS` (`si_code` `BUS_ADRERR`), and so does touching a hole of
//! a sparse tmpfs file when tmpfs has no page left to give. Its default
//! action kills the process. Any process that can write a POSIX object can
//! `ftruncate` it, so without a defence a hostile or buggy peer could kill
//! every process that has the object mapped.
//!
//! The defence is the one `libwayland-server` uses for client memory pools.
//! Every mapping of a POSIX object is registered here, and a process-wide
//! `SIGBUS` handler (installed the first time a mapping is registered) looks
//! the faulting address up. When it lies in a registered mapping, the handler
//! maps private zero pages over the whole mapping (`MAP_FIXED`) and marks it
//! lost; the faulting instruction then runs again and succeeds against the
//! zero page. [`Mapping`](super::Mapping)'s accessors check the mark after
//! every access and report [`Error::Truncated`](crate::Error::Truncated), so
//! no data from the replacement pages reaches the caller as if it were real.
//!
//! Any other `SIGBUS` (not in a registered mapping, a machine-check error, a
//! `kill`) goes to the handler that was there before, or gets the default
//! action (the process dies, as it would have without shmkit).
//!
//! # Ordering
//! The handler stores `REPLACING` before its `mmap` call and `LOST` after.
//! An accessor that read (or wrote) a replacement page therefore finds the
//! state changed when it checks afterwards: the kernel orders the state store
//! before the page-table change that made the zero page visible. Reads need
//! only an Acquire fence before the check; a check after *writes* needs a
//! `SeqCst` fence ([`Registration::is_lost_after_writes`]), since a store
//! may otherwise be translated after the check's load.
//!
//! # Limits
//! - A program that installs its own `SIGBUS` handler after this one
//!   replaces it (one installed before is chained to, and if a chained
//!   handler resets the action, this one puts itself back).
//! - If replacing fails (`mmap` refuses, e.g. under strict overcommit for a
//!   very large writable mapping), the signal gets the previous action.
//! - A `fork` while another thread is in the middle of replacing leaves the
//!   child's copy of that slot `REPLACING`; dropping that mapping in the
//!   child then waits forever. The window is one system call.
//!
//! # Async-signal safety
//! The handler only loads and compare-exchanges atomics in memory that is
//! never freed (chunks of slots, leaked once allocated), and makes the `mmap`,
//! `sigaction`, `sched_yield` and `raise` system calls, keeping `errno` as it
//! found it. It takes no lock and allocates nothing, and runs with every
//! other signal blocked.
//!
//! # Slots
//! Each slot holds one word of state (state, writability and a generation
//! counter that changes whenever the slot is freed), the mapping's start and
//! its length. Start and length are written only while the slot is claimed
//! by its owner, so a handler that sees `ACTIVE` and then succeeds in a
//! compare-exchange from the word it saw knows that the range it read
//! belongs to that registration.

use std::ffi::c_void;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;

use rustix::mm::{MapFlags, ProtFlags};

/// Free to take.
const FREE: u64 = 0;
/// Taken by its owner, who is filling it in or giving it back; the handler
/// skips it.
const CLAIMED: u64 = 1;
/// A live mapping.
const ACTIVE: u64 = 2;
/// The handler is mapping zero pages over it.
const REPLACING: u64 = 3;
/// Zero pages have replaced it: the object's memory is no longer mapped.
const LOST: u64 = 4;

const STATE_BITS: u64 = 0b111;
/// Set if the mapping is writable (the zero pages get the same protection).
const WRITABLE: u64 = 0b1000;
/// The generation counter starts above the state and writability bits.
const GENERATION_ONE: u64 = 0b1_0000;

const SLOTS_PER_CHUNK: usize = 64;

struct Slot {
    word: AtomicU64,
    start: AtomicUsize,
    len: AtomicUsize,
}

struct Chunk {
    slots: [Slot; SLOTS_PER_CHUNK],
    next: AtomicPtr<Chunk>,
}

impl Chunk {
    const fn new() -> Chunk {
        #[allow(clippy::declare_interior_mutable_const)] // used only to fill the array
        const EMPTY: Slot = Slot {
            word: AtomicU64::new(FREE),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
        };
        Chunk {
            slots: [EMPTY; SLOTS_PER_CHUNK],
            next: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

/// The first chunk; more are linked on (and never freed) when it is full.
static FIRST: Chunk = Chunk::new();

/// The `SIGBUS` handler that was in place before ours (`SIG_DFL`,
/// `SIG_IGN` or a function's address)...
static PREVIOUS_HANDLER: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
/// ...and whether it takes three arguments (`SA_SIGINFO`).
static PREVIOUS_SIGINFO: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// How many chunks of slots are linked (for tests of reuse).
#[cfg(test)]
pub(crate) fn chunk_count() -> usize {
    slots().count() / SLOTS_PER_CHUNK
}

/// Every slot, in every chunk linked so far.
fn slots() -> impl Iterator<Item = &'static Slot> {
    let mut chunk: Option<&'static Chunk> = Some(&FIRST);
    std::iter::from_fn(move || {
        let c = chunk?;
        let next = c.next.load(Ordering::Acquire);
        // SAFETY: chunks are leaked boxes, never freed, so a non-null `next`
        // stays valid for the rest of the process.
        chunk = unsafe { next.as_ref() };
        Some(c)
    })
    .flat_map(|c| c.slots.iter())
}

/// A registered mapping: say [`Registration::is_lost`] to learn whether the
/// object's memory was replaced, and [`Registration::release`] to unmap.
#[derive(Debug)]
pub(crate) struct Registration {
    slot: &'static Slot,
    /// The slot's word as registered (state `ACTIVE`).
    word: u64,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("word", &self.word.load(Ordering::Relaxed))
            .finish()
    }
}

/// Registers the mapping of `len` bytes at `start`, installing the handler
/// first if this is the first registration.
pub(crate) fn register(start: *mut c_void, len: usize, writable: bool) -> Registration {
    install();
    loop {
        for slot in slots() {
            let seen = slot.word.load(Ordering::Relaxed);
            if seen & STATE_BITS != FREE {
                continue;
            }
            let generation = seen & !(STATE_BITS | WRITABLE);
            if slot
                .word
                .compare_exchange(seen, generation | CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            slot.start.store(start as usize, Ordering::Relaxed);
            slot.len.store(len, Ordering::Relaxed);
            let word = generation | ACTIVE | if writable { WRITABLE } else { 0 };
            // Release: start and len are visible to whoever sees ACTIVE.
            slot.word.store(word, Ordering::Release);
            return Registration { slot, word };
        }
        grow();
    }
}

/// Links one more chunk at the end of the list.
fn grow() {
    let fresh: &'static Chunk = Box::leak(Box::new(Chunk::new()));
    let mut last = &FIRST;
    loop {
        match last.next.compare_exchange(
            std::ptr::null_mut(),
            std::ptr::from_ref(fresh).cast_mut(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return,
            // SAFETY: as in `slots`: linked chunks are never freed.
            Err(next) => last = unsafe { &*next },
        }
    }
}

impl Registration {
    /// Whether the object's memory has been replaced by zero pages.
    ///
    /// Call it after reading: the Acquire fence keeps the reads before this
    /// check, so data read from the zero pages is never taken for the
    /// object's (see the module docs on ordering).
    pub(crate) fn is_lost(&self) -> bool {
        fence(Ordering::Acquire);
        self.state_is_lost()
    }

    /// As [`is_lost`](Registration::is_lost), after writing: the `SeqCst`
    /// fence keeps the stores before the check's load.
    pub(crate) fn is_lost_after_writes(&self) -> bool {
        fence(Ordering::SeqCst);
        self.state_is_lost()
    }

    fn state_is_lost(&self) -> bool {
        let state = self.slot.word.load(Ordering::Acquire) & STATE_BITS;
        state == REPLACING || state == LOST
    }

    /// Takes the slot back from the handler, runs `unmap`, and frees the
    /// slot for reuse under a new generation.
    pub(crate) fn release(self, unmap: impl FnOnce()) {
        let base = self.word & !(STATE_BITS | WRITABLE);
        loop {
            let seen = self.slot.word.load(Ordering::Acquire);
            match seen & STATE_BITS {
                // A handler is replacing it this moment: that takes one
                // system call.
                REPLACING => std::thread::yield_now(),
                _ => {
                    if self
                        .slot
                        .word
                        .compare_exchange(seen, base | CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        break;
                    }
                }
            }
        }
        unmap();
        self.slot
            .word
            .store(base.wrapping_add(GENERATION_ONE) | FREE, Ordering::Release);
    }
}

/// Installs [`on_sigbus`] once per process, keeping the previous action to
/// pass on what is not ours.
fn install() {
    INSTALL.call_once(|| {
        // SAFETY: see `put_back`.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: `sigaction` with no new action only writes `old`, a valid
        // struct on this stack.
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) } != 0 {
            return; // no handler: a shrink crashes, as without shmkit
        }
        remember(&old);
        if let Some(changed) = put_back() {
            // someone changed it between the two calls: chain to theirs
            remember(&changed);
        }
    });
}

/// Records `action` as the one to pass foreign signals on to.
fn remember(action: &libc::sigaction) {
    PREVIOUS_SIGINFO.store(action.sa_flags & libc::SA_SIGINFO != 0, Ordering::Relaxed);
    PREVIOUS_HANDLER.store(action.sa_sigaction, Ordering::Release);
}

/// Installs [`on_sigbus`] as the `SIGBUS` action and returns the action it
/// replaced, unless that was already ours (or the call failed).
/// Async-signal-safe.
fn put_back() -> Option<libc::sigaction> {
    // SAFETY: all-zero is a valid value of the plain C struct; `sigaction`
    // only reads `new` and writes `old`, both valid structs on this stack.
    // `on_sigbus` is async-signal-safe (module docs); while it runs every
    // signal is blocked (`sa_mask` full), so nothing can interrupt it between
    // marking a slot REPLACING and finishing.
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_sigbus as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigfillset(&mut new.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, &new, &mut old) != 0 || old.sa_sigaction == new.sa_sigaction {
            return None;
        }
        Some(old)
    }
}

/// Whether a `SIGBUS` with this `si_code` comes from an instruction that
/// runs again when the handler returns (a fault), rather than from `kill`,
/// the kernel's own notices (`SI_KERNEL`) or an asynchronous machine-check
/// warning (`BUS_MCEERR_AO`).
fn is_fault(code: libc::c_int) -> bool {
    matches!(
        code,
        libc::BUS_ADRALN | libc::BUS_ADRERR | libc::BUS_OBJERR | libc::BUS_MCEERR_AR
    )
}

/// The `SIGBUS` handler.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid `siginfo_t`; for a
    // fault its address field is the faulting address (and is not used
    // otherwise).
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // A page past the end of the file, or one tmpfs could not allocate.
    if code == libc::BUS_ADRERR && replace(addr) {
        return;
    }
    // SAFETY: `__errno_location` gives this thread's errno, valid for the
    // thread's lifetime; the calls below may change it, and the interrupted
    // code must find it as it was.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { errno.read() };
    // SAFETY: the arguments are the kernel's, passed on unchanged.
    unsafe { forward(sig, info, ctx, is_fault(code)) };
    // SAFETY: as above.
    unsafe { errno.write(saved) };
}

/// If `addr` lies in a registered mapping, makes sure zero pages replace it
/// and returns true (the faulting access may run again).
fn replace(addr: usize) -> bool {
    for slot in slots() {
        loop {
            let seen = slot.word.load(Ordering::Acquire);
            let state = seen & STATE_BITS;
            if !matches!(state, ACTIVE | REPLACING | LOST) {
                break;
            }
            let start = slot.start.load(Ordering::Relaxed);
            let len = slot.len.load(Ordering::Relaxed);
            if addr < start || addr - start >= len {
                break;
            }
            match state {
                ACTIVE => {
                    let mine = (seen & !STATE_BITS) | REPLACING;
                    if slot
                        .word
                        .compare_exchange(seen, mine, Ordering::AcqRel, Ordering::Relaxed)
                        .is_err()
                    {
                        continue; // changed under us: look again
                    }
                    let prot = if seen & WRITABLE != 0 {
                        ProtFlags::READ | ProtFlags::WRITE
                    } else {
                        ProtFlags::READ
                    };
                    // SAFETY: `start..start + len` is exactly the mapping
                    // registered under this generation, which its owner
                    // cannot unmap while the slot is REPLACING (`release`
                    // waits); replacing it with private zero pages only
                    // changes what its bytes read as, which the owner checks
                    // with `is_lost` after every access.
                    let mapped = unsafe {
                        rustix::mm::mmap_anonymous(
                            start as *mut c_void,
                            len,
                            prot,
                            MapFlags::PRIVATE | MapFlags::FIXED | MapFlags::NORESERVE,
                        )
                    };
                    let done = mapped.is_ok();
                    let next = (seen & !STATE_BITS) | if done { LOST } else { ACTIVE };
                    slot.word.store(next, Ordering::Release);
                    return done;
                }
                // Another thread faulted in the same mapping and is replacing
                // it: once it is done, the access can run again.
                REPLACING => std::thread::yield_now(),
                _ => return true,
            }
        }
    }
    false
}

/// Hands a `SIGBUS` that is not ours to the previous handler, or gives it
/// the default action.
///
/// # Safety
/// The arguments must be the ones the kernel passed to [`on_sigbus`].
unsafe fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void, fault: bool) {
    let handler = PREVIOUS_HANDLER.load(Ordering::Acquire);
    if handler == libc::SIG_IGN && !fault {
        return; // a signal sent to a program that ignores it
    }
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: setting the default action is async-signal-safe. A fault
        // then happens again when the handler returns and kills the process
        // as it would have without us; any other SIGBUS is raised again (it
        // stays pending until the handler returns).
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            if !fault {
                libc::raise(libc::SIGBUS);
            }
        }
        return;
    }
    if PREVIOUS_SIGINFO.load(Ordering::Relaxed) {
        // SAFETY: the previous action was installed as a three-argument
        // handler (SA_SIGINFO), so that is its type.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) = unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without SA_SIGINFO the previous action is a one-argument
        // handler.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
    // A handler may reset the action to let a fault kill the process on its
    // second run (the Rust runtime's does). For a fault that is what must
    // happen; for a signal sent by a process the runtime has swallowed it,
    // and without us back in place the next shrink would kill the process.
    if !fault {
        if let Some(theirs) = put_back() {
            remember(&theirs);
        }
    }
}
