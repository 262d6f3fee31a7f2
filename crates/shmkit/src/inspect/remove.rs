//! The two calls of `inspect` that remove: an entry of `/dev/shm` by its
//! exact file name (which need not be UTF-8, so [`crate::posix::remove`]
//! cannot take it), and an object only if nobody uses it, decided and done
//! under a write lease (see [`probe_use`](super::probe_use)).

use std::ffi::OsStr;
use std::path::Path;

use rustix::io::Errno;

use super::lease::{Lease, NotTaken, WhyUnknown};
use super::posix::DEV_SHM;
use crate::error::{Error, Result, Target};

/// What [`remove_if_unused`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removal {
    /// Nobody had it open or mapped, and its name is gone.
    Removed,
    /// Somebody has it open or mapped: left alone.
    InUse,
    /// The lease could not be asked (or the name changed meanwhile): left
    /// alone.
    Unknown(WhyUnknown),
}

/// Removes the object `file_name` of `/dev/shm` only if no process has it
/// open or mapped: takes a write lease (which is granted only then), checks
/// that the name still names the file with `(device, inode)` `expected`,
/// unlinks it while the lease is held, and gives the lease back. A process
/// that opens the object meanwhile waits for the lease, and then has the
/// object it asked for, removed.
///
/// # Errors
/// When the unlink itself fails: [`Error::PermissionDenied`] (the
/// directory's sticky bit: only the owner or root may remove it), or
/// [`Error::Os`]; the target is the path in `/dev/shm`.
///
/// # Examples
/// ```
/// use shmkit::inspect::{remove_if_unused, Removal};
/// use shmkit::posix::{Options, PosixShm, ShmName};
/// use std::os::unix::fs::MetadataExt;
///
/// let name = ShmName::new(format!("/shmkit-doc-remove-{}", std::process::id()))?;
/// let shm = PosixShm::create(&name, &Options::new().size(4096))?;
/// let meta = std::fs::metadata(format!("/dev/shm/{}", name.file_name())).unwrap();
/// let file = std::ffi::OsStr::new(name.file_name());
/// assert_eq!(remove_if_unused(file, (meta.dev(), meta.ino()))?, Removal::InUse);
/// drop(shm);
/// assert_eq!(remove_if_unused(file, (meta.dev(), meta.ino()))?, Removal::Removed);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn remove_if_unused(file_name: &OsStr, expected: (u64, u64)) -> Result<Removal> {
    let lease = match Lease::take(file_name, Some(expected)) {
        Ok(lease) => lease,
        Err(NotTaken::InUse) => return Ok(Removal::InUse),
        Err(NotTaken::Unknown(why)) => return Ok(Removal::Unknown(why)),
    };
    match lease.unlink(file_name) {
        Ok(()) => Ok(Removal::Removed),
        Err(Errno::STALE) => Ok(Removal::Unknown(WhyUnknown::Replaced)),
        Err(Errno::NOENT) => Ok(Removal::Unknown(WhyUnknown::Gone)),
        Err(e) => Err(Error::from_errno("unlink", &path_target(file_name), e)),
    }
}

/// `unlink("/dev/shm/<file_name>")`: what `shm_unlink` does, for any file
/// name (a symbolic link is removed, not followed).
///
/// # Errors
/// [`Error::NotFound`], [`Error::PermissionDenied`] or [`Error::Os`], with
/// the path in `/dev/shm` as the target; [`Error::InvalidName`] for a name
/// with a `/`, or empty, `.` or `..`.
///
/// # Examples
/// ```
/// use shmkit::inspect::{remove_entry, unescape_name};
///
/// let shown = format!(r"/shmkit-doc-entry-{}-\xff", std::process::id());
/// let file = unescape_name(&shown)?;
/// std::fs::write(std::path::Path::new("/dev/shm").join(&file), b"")?;
/// remove_entry(&file)?;
/// assert!(matches!(remove_entry(&file), Err(shmkit::Error::NotFound { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn remove_entry(file_name: &OsStr) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = file_name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(Error::InvalidName {
            name: super::escape_name(file_name),
            reason: "is not the name of a file in /dev/shm",
        });
    }
    let path = Path::new(DEV_SHM).join(file_name);
    rustix::fs::unlink(&path).map_err(|e| Error::from_errno("unlink", &Target::Path(path), e))
}

/// Removes what a removed shmkit object of `/dev/shm/<file_name>` with
/// inode `inode` may have left beside it: the bells (FIFOs) of a channel
/// whose participants were killed while they met (`shmkit rm` calls this
/// after removing an object). Only this user's FIFOs of exactly that object
/// go; returns how many.
///
/// ```
/// let gone = shmkit::inspect::remove_leftovers_of(std::ffi::OsStr::new("no-such-object"), 1);
/// assert_eq!(gone, 0);
/// ```
pub fn remove_leftovers_of(file_name: &OsStr, inode: u64) -> usize {
    #[cfg(not(loom))]
    if let Some(Ok(name)) = file_name.to_str().map(|s| crate::posix::ShmName::new(format!("/{s}"))) {
        return crate::core::bell::remove_of(&name, inode);
    }
    let _ = (file_name, inode);
    0
}

fn path_target(file_name: &OsStr) -> Target {
    Target::Path(Path::new(DEV_SHM).join(file_name))
}
