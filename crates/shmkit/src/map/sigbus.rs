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
//! # Async-signal safety
//! The handler only loads and compare-exchanges atomics in memory that is
//! never freed (chunks of slots, leaked once allocated), and makes the `mmap`
//! and `sigaction` system calls. It takes no lock and allocates nothing.
//!
//! # Slots
//! Each slot holds one word of state (state, writability and a generation
//! counter that changes whenever the slot is freed), the mapping's start and
//! its length. Start and length are written only while the slot is claimed
//! by its owner, so a handler that sees `ACTIVE` and then succeeds in a
//! compare-exchange from the word it saw knows that the range it read
//! belongs to that registration.

use std::ffi::c_void;
use std::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

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

/// `si_code` of a `SIGBUS` for an address with no backing (past the end of
/// the file, or a page tmpfs could not allocate); from the kernel's
/// `asm-generic/siginfo.h`, which the `libc` crate does not export for Linux.
const BUS_ADRERR: libc::c_int = 2;

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

/// The `SIGBUS` action that was in place before ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
static INSTALL: Once = Once::new();

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
    /// Call it after an access: the Acquire fence keeps the access's loads
    /// before this check, so data read from the zero pages is never taken
    /// for the object's.
    pub(crate) fn is_lost(&self) -> bool {
        fence(Ordering::Acquire);
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
                REPLACING => std::hint::spin_loop(),
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
        // SAFETY: `sigaction` only reads `new` and writes `old`, both valid
        // `sigaction` structs on this stack; all-zero is a valid value of the
        // plain C struct. The handler is async-signal-safe (module docs).
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                return;
            }
            let _ = PREVIOUS.set(old);
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigbus as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut());
        }
    });
}

/// The `SIGBUS` handler.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid `siginfo_t`; for a
    // fault (`si_code > 0`) its address field is the faulting address.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if code == BUS_ADRERR && replace(addr) {
        return;
    }
    // SAFETY: as above; the arguments are passed on unchanged.
    unsafe { forward(sig, info, ctx, code) };
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
                REPLACING => std::hint::spin_loop(),
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
unsafe fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void, code: libc::c_int) {
    let previous = PREVIOUS.get();
    let handler = previous.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        if handler == libc::SIG_IGN && code <= 0 {
            return; // a signal sent by a process, which the program ignores
        }
        // SAFETY: restoring the default action is async-signal-safe. A fault
        // then happens again when the handler returns, and kills the process
        // as it would have without us; a signal sent by a process is raised
        // again (it stays pending until the handler returns).
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            if code <= 0 {
                libc::raise(libc::SIGBUS);
            }
        }
        return;
    }
    let flags = previous.map_or(0, |p| p.sa_flags);
    if flags & libc::SA_SIGINFO != 0 {
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
}
