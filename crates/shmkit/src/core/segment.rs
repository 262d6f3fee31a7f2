//! Segments: the shared object every pattern lives in, and its header.
//!
//! This module knows nothing of rings or roles. It makes and finds the POSIX
//! object, treats its first 128 bytes as a file format ([`Meta`]: magic,
//! layout version, a *kind*, the number of participant slots, sizes), and
//! owns the rules every kind shares:
//!
//! - **Atomic publication.** The creator makes the object with `O_TMPFILE`,
//!   sizes it, writes the header, sets `ready`, and only then links it under
//!   its name: nobody ever sees a half-made segment (where `O_TMPFILE` is
//!   missing, openers give the creator a grace period).
//! - **Validation.** An opener checks magic, version and kind before it
//!   trusts anything else; an object of another shmkit version gets a clear
//!   error.
//! - **Trust.** An existing object owned by another user, or with wider
//!   permissions than asked, is refused unless allowed.
//! - **Sizes meet whoever starts first.** A participant that did not choose
//!   a capacity takes the other's choice: the first explicit choice (or the
//!   default, chosen by the first opener that has none) is stored with a
//!   compare-and-swap, and the object grows to fit. Two explicit, different
//!   choices are a conflict, recorded in the header so that the participant
//!   already waiting learns it too.
//! - **Exclusive removal.** The name is removed only under an exclusive
//!   `flock` of the object, after checking that the name still names *this*
//!   object: racing removers (two takers of an abandoned object, a taker and
//!   a leaver) never remove each other's new objects, and never wait on
//!   each other for long.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;

use super::slots::Slot;
use crate::error::{Error, Result, Target};
use crate::map::{Access, Mapping};
use crate::posix::{self, PosixShm, ShmName};

use std::sync::atomic::{AtomicU32, AtomicU64};

pub(crate) use super::kind::{Kind, MAGIC, READY, VERSION};

/// The name of a kind number read from a segment, for messages.
fn kind_name(kind: u32) -> String {
    match Kind::from_number(kind) {
        Some(k) => k.name().into(),
        None => format!("kind {kind}"),
    }
}

/// Where creation is not atomic (no `O_TMPFILE`), how long an opener gives a
/// creator to size the object and publish its header.
const CREATOR_GRACE: Duration = Duration::from_secs(2);

/// How long a remover tries to get the object's `flock` before it leaves
/// the name alone (someone holding it longer is not following the protocol).
const FLOCK_PATIENCE: Duration = Duration::from_secs(1);

/// The segment header's first line: written once by the creator, then
/// published with `ready`; `capacity` and `conflict` change once each later.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Meta {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub ready: AtomicU32,
    pub kind: AtomicU32,
    /// How many participant slots the kind's layout has.
    pub slots: AtomicU32,
    /// The data area's size in bytes (a ring's capacity); 0 until a
    /// participant has decided it.
    pub capacity: AtomicU64,
    /// Where the data area starts.
    pub data_offset: AtomicU64,
    /// A capacity asked for by a participant that conflicted with the one
    /// decided (0: none).
    pub conflict: AtomicU64,
    /// The creator's pid (in its PID namespace), for display.
    pub creator_pid: AtomicU32,
    pub _pad: AtomicU32,
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<Meta>() == 128);
    assert!(offset_of!(Meta, magic) == 0);
    assert!(offset_of!(Meta, version) == 8);
    assert!(offset_of!(Meta, ready) == 12);
    assert!(offset_of!(Meta, kind) == 16);
    assert!(offset_of!(Meta, slots) == 20);
    assert!(offset_of!(Meta, capacity) == 24);
    assert!(offset_of!(Meta, data_offset) == 32);
    assert!(offset_of!(Meta, conflict) == 40);
    assert!(offset_of!(Meta, creator_pid) == 48);
};

/// What a kind's layout needs of a new or existing segment.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub kind: Kind,
    pub slots: u32,
    /// Where the data area starts (the header's size, page-aligned).
    pub data_offset: u64,
    /// The capacity this participant asks for, if it chose one.
    pub capacity: Option<u64>,
    /// Permission bits of a new object; an existing one may not be wider.
    pub mode: u32,
    pub allow_foreign: bool,
}

/// An open segment: the object, and a mapping of at least its header.
#[derive(Debug)]
pub(crate) struct Segment {
    pub target: Target,
    pub name: ShmName,
    pub shm: PosixShm,
    /// The header page, or the whole object once sized.
    pub map: Mapping,
    /// Whether this process created it.
    pub created: bool,
}

impl Segment {
    /// Creates the segment (exclusively, published whole) or opens the
    /// existing one, validated and trusted.
    pub(crate) fn create_or_open(name: &ShmName, spec: &Spec) -> Result<Segment> {
        let target = Target::Posix(name.clone());
        for _ in 0..100 {
            let size = spec.data_offset + spec.capacity.unwrap_or(0);
            let created = PosixShm::create_with(name, &posix::Options::new().size(size).mode(spec.mode), |map| {
                publish(meta_of(map), spec);
                Ok(())
            });
            match created {
                Ok((shm, map)) => {
                    return Ok(Segment {
                        target,
                        name: name.clone(),
                        shm,
                        map,
                        created: true,
                    })
                }
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            let shm = match PosixShm::open(name, &posix::Options::new()) {
                Ok(shm) => shm,
                Err(Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            if !spec.allow_foreign {
                shm.check_trusted(spec.mode)?;
            }
            let map = map_header(&shm, &target, spec.data_offset)?;
            let seg = Segment {
                target,
                name: name.clone(),
                shm,
                map,
                created: false,
            };
            seg.validate(spec)?;
            return Ok(seg);
        }
        Err(Error::Os {
            target,
            op: "shm_open",
            source: rustix::io::Errno::AGAIN,
        })
    }

    /// The header's first line.
    pub(crate) fn meta(&self) -> &Meta {
        meta_of(&self.map)
    }

    /// The `n` participant slots at byte `at` of the header.
    ///
    /// # Panics
    /// If they do not lie in the mapped header or `at` is not a multiple
    /// of 8: the kind's layout (a constant) is wrong.
    pub(crate) fn slots(&self, at: usize, n: usize) -> &[Slot] {
        let size = std::mem::size_of::<Slot>();
        assert!(at % size == 0 && at + n * size <= self.map.len() && at >= std::mem::size_of::<Meta>());
        // SAFETY: the slots lie inside the mapping (asserted), which is
        // page-aligned, so `at` (a multiple of 8) is aligned for `Slot`
        // (atomics only: any bit pattern is valid, and sharing them with
        // other processes is what they are for); they do not overlap the
        // meta line; the slice borrows `self`, which owns the mapping.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(at).cast::<Slot>(), n) }
    }

    /// An opener waits for the header to be published, then checks it.
    fn validate(&self, spec: &Spec) -> Result<()> {
        let meta = self.meta();
        let grace = Instant::now() + creator_grace();
        loop {
            let magic = meta.magic.load(Ordering::Relaxed);
            if magic != 0 && magic != MAGIC {
                return Err(self.corrupt(format!(
                    "not a shmkit {} (its first bytes are not the shmkit magic)",
                    spec.kind.name()
                )));
            }
            if meta.ready.load(Ordering::Acquire) == READY {
                break;
            }
            self.map.check_intact()?;
            if Instant::now() >= grace {
                return Err(self.corrupt(format!(
                    "not a shmkit {}, or its creator died before publishing the header",
                    spec.kind.name()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let version = meta.version.load(Ordering::Relaxed);
        if meta.magic.load(Ordering::Relaxed) != MAGIC {
            return Err(self.corrupt(format!(
                "not a shmkit {} (ready without the shmkit magic)",
                spec.kind.name()
            )));
        }
        if version != VERSION {
            return Err(Error::Incompatible {
                target: self.target.clone(),
                version,
                supported: VERSION,
            });
        }
        let kind = meta.kind.load(Ordering::Relaxed);
        if kind != spec.kind as u32 {
            return Err(self.corrupt(format!("a shmkit {}, not a {}", kind_name(kind), spec.kind.name())));
        }
        if meta.slots.load(Ordering::Relaxed) != spec.slots
            || meta.data_offset.load(Ordering::Relaxed) != spec.data_offset
        {
            return Err(self.corrupt("a header with another number of slots or data offset than its kind has"));
        }
        Ok(())
    }

    /// Decides the capacity, or learns it: the first explicit choice wins,
    /// else the first opener's default; `None` while the creator has not
    /// chosen and nobody else has come (only the creator sees that).
    ///
    /// `valid` judges a capacity read from the header.
    pub(crate) fn negotiate(
        &self,
        want: Option<u64>,
        default: u64,
        valid: impl Fn(u64) -> bool,
    ) -> Result<std::result::Result<Option<u64>, u64>> {
        let meta = self.meta();
        let mut current = meta.capacity.load(Ordering::Acquire);
        if current == 0 && !self.created {
            let choice = want.unwrap_or(default);
            match meta
                .capacity
                .compare_exchange(0, choice, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => current = choice,
                Err(now) => current = now,
            }
        }
        if current == 0 {
            return Ok(Ok(None));
        }
        if !valid(current) {
            return Err(self.corrupt(format!("invalid capacity {current}")));
        }
        match want {
            Some(w) if w != current => Ok(Err(current)),
            _ => Ok(Ok(Some(current))),
        }
    }

    /// Records that a participant asked for `capacity`, which conflicts
    /// with the decided one, so that whoever waits learns it.
    pub(crate) fn record_conflict(&self, capacity: u64) {
        // Release: pairs with the Acquire in `conflict`.
        self.meta().conflict.store(capacity, Ordering::Release);
    }

    /// A conflicting capacity recorded by another participant, if any.
    pub(crate) fn conflict(&self) -> Option<u64> {
        Some(self.meta().conflict.load(Ordering::Acquire)).filter(|&c| c != 0)
    }

    /// Maps the whole object once it holds `data_offset + capacity` bytes,
    /// growing it first if it is smaller (growing is idempotent: every
    /// participant grows to the same decided size).
    pub(crate) fn map_all(&mut self, capacity: u64) -> Result<()> {
        let need = self.meta().data_offset.load(Ordering::Relaxed) + capacity;
        if self.shm.size()? < need {
            self.shm.resize(need)?;
        }
        if (self.map.len() as u64) < need {
            self.map = self.shm.map_range(
                0,
                usize::try_from(need).map_err(|_| self.corrupt("too large"))?,
                Access::ReadWrite,
            )?;
        }
        self.check_size(need)
    }

    /// `Err(Truncated)` if the object shrank under the mapping, or is smaller
    /// than `need` bytes now (by `fstat`, without touching the memory).
    pub(crate) fn check_size(&self, need: u64) -> Result<()> {
        self.map.check_intact()?;
        if self.shm.size()? < need {
            return Err(Error::Truncated {
                target: self.target.clone(),
            });
        }
        Ok(())
    }

    /// Runs `f` under a shared `flock` of the object, if the name still
    /// names it: `None` if it does not (a taker removed it), or if the lock
    /// could not be had. A claim made in `f` and a taker's check-then-remove
    /// (under the exclusive lock) then happen one before the other: either
    /// the taker sees the claim, or the claimer sees the name gone.
    pub(crate) fn while_named<T>(&self, f: impl FnOnce() -> T) -> Option<T> {
        if !self.flock(FlockOperation::NonBlockingLockShared) {
            return None;
        }
        let result = self.names_this_object().then(f);
        let _ = rustix::fs::flock(self.shm.as_fd(), FlockOperation::Unlock);
        result
    }

    /// Takes `op` (a non-blocking `flock`), retrying for at most
    /// [`FLOCK_PATIENCE`].
    fn flock(&self, op: FlockOperation) -> bool {
        let deadline = Instant::now() + FLOCK_PATIENCE;
        loop {
            match rustix::fs::flock(self.shm.as_fd(), op) {
                Ok(()) => return true,
                Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(_) => return false,
            }
        }
    }

    /// Removes the name if it still names this object and `still()` holds,
    /// under the object's exclusive `flock` (see the module docs). Returns
    /// whether it removed the name.
    pub(crate) fn unlink_if(&self, still: impl FnOnce() -> bool) -> bool {
        if !self.flock(FlockOperation::NonBlockingLockExclusive) {
            return false;
        }
        let removed = self.names_this_object() && still() && posix::remove(&self.name).is_ok();
        let _ = rustix::fs::flock(self.shm.as_fd(), FlockOperation::Unlock);
        removed
    }

    /// Whether `/dev/shm/NAME` is this object (and not a new one made under
    /// the same name since), without following a link.
    fn names_this_object(&self) -> bool {
        let ours = rustix::fs::fstat(&self.shm);
        let path = format!("{}/{}", posix::SHM_DIR, self.name.file_name());
        let theirs = rustix::fs::statat(rustix::fs::CWD, path.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
        matches!((ours, theirs), (Ok(a), Ok(b)) if a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    }

    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> Error {
        // What a shrink made look corrupt is reported as the shrink.
        if let Err(lost) = self.map.check_intact() {
            return lost;
        }
        Error::Corrupt {
            target: self.target.clone(),
            reason: reason.into(),
        }
    }
}

/// How long an opener waits for a creator to finish: not at all where
/// creation is atomic, else [`CREATOR_GRACE`].
fn creator_grace() -> Duration {
    if posix::atomic_create_supported() {
        Duration::ZERO
    } else {
        CREATOR_GRACE
    }
}

/// Maps the header page of an existing object, once its creator has sized
/// it (at once where creation is atomic).
fn map_header(shm: &PosixShm, target: &Target, data_offset: u64) -> Result<Mapping> {
    let grace = Instant::now() + creator_grace();
    while shm.size()? < data_offset {
        if Instant::now() >= grace {
            return Err(Error::Corrupt {
                target: target.clone(),
                reason: "not a shmkit object: too small for its header".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    shm.map_range(0, data_offset as usize, Access::ReadWrite)
}

/// Maps the header of an existing object read-only, for inspection, and
/// checks that it is a published segment of `kind` in this version.
pub(crate) fn open_for_info(name: &ShmName, kind: Kind, data_offset: u64) -> Result<(PosixShm, Mapping)> {
    let target = Target::Posix(name.clone());
    let shm = PosixShm::open(name, &posix::Options::new().read_only(true))?;
    if shm.size()? < data_offset {
        return Err(Error::Corrupt {
            target,
            reason: format!("not a shmkit {}: too small for its header", kind.name()),
        });
    }
    let map = shm.map_range(0, data_offset as usize, Access::ReadOnly)?;
    let meta = meta_of(&map);
    let corrupt = |reason: String| Error::Corrupt {
        target: target.clone(),
        reason,
    };
    if meta.magic.load(Ordering::Relaxed) != MAGIC || meta.ready.load(Ordering::Acquire) != READY {
        map.check_intact()?;
        return Err(corrupt(format!("not a shmkit {}", kind.name())));
    }
    let version = meta.version.load(Ordering::Relaxed);
    if version != VERSION {
        return Err(Error::Incompatible {
            target,
            version,
            supported: VERSION,
        });
    }
    let found = meta.kind.load(Ordering::Relaxed);
    if found != kind as u32 {
        return Err(corrupt(format!("a shmkit {}, not a {}", kind_name(found), kind.name())));
    }
    Ok((shm, map))
}

/// The meta line at the start of `map`.
pub(crate) fn meta_of(map: &Mapping) -> &Meta {
    assert!(map.len() >= std::mem::size_of::<Meta>() && (map.as_ptr() as usize) % 128 == 0);
    let ptr = map.as_ptr();
    // SAFETY: the mapping starts on a page boundary (128-aligned) and holds
    // at least 128 bytes (asserted); `Meta` is made of atomics only, for
    // which any bit pattern is valid and which may be shared with other
    // processes; the reference borrows `map`, so it cannot outlive it.
    unsafe { &*ptr.cast::<Meta>() }
}

/// The creator writes the meta fields, then publishes them with `ready`.
fn publish(meta: &Meta, spec: &Spec) {
    meta.magic.store(MAGIC, Ordering::Relaxed);
    meta.version.store(VERSION, Ordering::Relaxed);
    meta.kind.store(spec.kind as u32, Ordering::Relaxed);
    meta.slots.store(spec.slots, Ordering::Relaxed);
    meta.capacity.store(spec.capacity.unwrap_or(0), Ordering::Relaxed);
    meta.data_offset.store(spec.data_offset, Ordering::Relaxed);
    meta.creator_pid.store(std::process::id(), Ordering::Relaxed);
    // Release: everything above is visible to whoever Acquire-loads `ready`.
    meta.ready.store(READY, Ordering::Release);
}
