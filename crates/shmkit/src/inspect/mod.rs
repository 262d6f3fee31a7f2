//! Inspection: what shared memory exists, who uses it, what is left over, and
//! what limits the machine sets.
//!
//! Nothing here creates an object, and only [`remove_if_unused`] and
//! [`remove_entry`] remove one: everything is read from `/dev/shm` (without
//! following symbolic links), `/proc/sysvipc/shm`, `/proc/PID/{stat,maps,fd}`,
//! `/proc/sys/kernel/shm*` and a few files of `/sys` and `/etc`, and each
//! POSIX object is opened read-only for an instant to ask the kernel whether
//! anybody else has it open ([`probe_use`]). The `shmkit` command line's
//! `stat`, `ls`, `rm`, `limits` and `doctor` are thin views of this module.
//!
//! | question | call |
//! |---|---|
//! | which processes map or hold what? | [`ProcessScan::new`], once, then pass it to the calls below |
//! | the POSIX objects in `/dev/shm` | [`posix_objects`]; every entry, semaphores too: [`dev_shm_entries`] |
//! | one POSIX object | [`posix_object`]; by its exact file name, UTF-8 or not: [`dev_shm_entry`] |
//! | does anybody, in any namespace, have it open or mapped? | [`probe_use`] |
//! | remove it only if nobody does | [`remove_if_unused`] |
//! | show a file name, and read it back | [`escape_name`], [`unescape_name`] |
//! | the System V segments | [`sysv_segments`], [`sysv_segment`] (by id), [`sysv_segment_by_key`] |
//! | SHMMAX, SHMALL, SHMMNI, page sizes, `/dev/shm` space | [`limits()`](limits()) |
//! | what on this machine breaks shared memory (facts and verdicts; `shmkit doctor` words them) | [`doctor()`](doctor()) |
//!
//! # Who uses an object
//!
//! A [`ProcessScan`] reads every `/proc/PID` once. A POSIX object is used by a
//! process that maps it (it appears in `/proc/PID/maps`) or holds an open file
//! descriptor to it (`/proc/PID/fd`); objects are matched by device and inode,
//! so an object that was removed and created again under the same name is not
//! confused with the old one. A System V segment is used by a process that has
//! it attached (`/SYSV<key> (deleted)` in `/proc/PID/maps`, whose inode column
//! is the segment id).
//!
//! Without root, the maps and descriptors of other users' processes cannot be
//! read, and some processes cannot be read even by root (a sandbox's init);
//! processes in other pid namespaces are not seen at all. The scan then says
//! it is not [complete](ProcessScan::is_complete), and every [`Users`] list
//! carries that flag. Whether a POSIX object is used at all is still exact:
//! the write-lease probe ([`probe_use`], in [`PosixObject::usage`]) asks the
//! kernel, which knows every open file description in every namespace. Only
//! where the kernel will not answer (another user's object, without
//! `CAP_LEASE`) and the scan is incomplete is [`stale`](PosixObject::stale)
//! unknown (`None`) rather than a guess. System V segments need neither: the
//! kernel counts their attachments (`nattch`).
//!
//! # Examples
//!
//! ```
//! use shmkit::inspect::{self, ProcessScan};
//! use shmkit::posix::{Options, PosixShm, ShmName};
//!
//! let name = ShmName::new(format!("/shmkit-doc-inspect-{}", std::process::id()))?;
//! let shm = PosixShm::create(&name, &Options::new().size(4096))?.remove_on_drop();
//! let map = shm.map()?;
//!
//! let scan = ProcessScan::new()?;
//! let obj = inspect::posix_object(&name, &scan)?;
//! assert_eq!((obj.size, obj.mode), (4096, 0o600));
//! let me = obj.users.processes.iter().find(|u| u.pid == std::process::id() as i32).unwrap();
//! assert!(me.mapped && me.holds_fd);
//! assert_eq!(obj.stale, Some(false));
//!
//! for seg in inspect::sysv_segments(&scan)? {
//!     println!("{} {} {} bytes, {} attached", seg.key, seg.id, seg.size, seg.nattch);
//! }
//! # Ok::<(), shmkit::Error>(())
//! ```

mod accounts;
mod cgroup;
mod doctor;
mod escape;
mod lease;
mod limits;
mod logind;
mod maps;
mod pattern;
mod posix;
mod procs;
mod remove;
mod sysv;
mod sysvipc;

pub use cgroup::MemoryLimit;
pub use doctor::{doctor, Check, Facts, Finding, StaleCounts, Status, NEARLY_EXHAUSTED_PERCENT, SMALL_DEV_SHM};
pub use escape::{escape_name, unescape_name};
pub use lease::{probe_use, Usage, WhyUnknown};
pub use limits::{limits, DevShmSpace, Limits, SHMMIN};
pub use pattern::{Pattern, ShmkitHeader};
pub use posix::{dev_shm_entries, dev_shm_entry, posix_object, posix_objects, EntryKind, PosixObject, DEV_SHM};
pub use procs::{ProcessInfo, ProcessScan, User, Users};
pub use remove::{remove_entry, remove_if_unused, remove_leftovers_of, Removal};
pub use sysv::{sysv_segment, sysv_segment_by_key, sysv_segments, SysvSegment};

use std::path::Path;

use crate::error::{Errno, Error, Target};

/// An I/O error reading `path`, as the library's error.
fn io_error(path: &str, op: &'static str, e: &std::io::Error) -> Error {
    let target = Target::Path(Path::new(path).to_owned());
    let errno = Errno::from_io_error(e).unwrap_or(Errno::IO);
    match errno {
        Errno::ACCESS | Errno::PERM => Error::PermissionDenied {
            target,
            op,
            source: errno,
        },
        _ => Error::Os {
            target,
            op,
            source: errno,
        },
    }
}

/// Reads a small text file, `None` when it cannot be read.
fn read_text(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// A number from a small text file (surrounding white space ignored).
fn read_number(path: impl AsRef<Path>) -> Option<u64> {
    read_text(path)?.trim().parse().ok()
}
