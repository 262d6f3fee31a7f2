//! Open-file-description locks on single bytes of a file (`F_OFD_SETLK`,
//! `F_OFD_GETLK`): the kernel's record of which participant is alive.
//!
//! This module knows nothing of slots, segments or roles: it locks byte `n` of a file
//! through one open file description, and asks whether anybody holds byte
//! `n`. An OFD lock belongs to the open file description, not to a process:
//! it is released when the last descriptor referring to it is closed, which
//! happens when its process dies in any way (SIGKILL included), in any PID or
//! mount namespace, and asking needs no `/proc`. Two descriptions of the same
//! file conflict even within one process (unlike classic `F_SETLK` locks).
//! Locks are advisory and lie in the file's offset space, not in its memory:
//! locking byte 3 does not touch byte 3 of the object's contents.
//!
//! rustix offers whole-file OFD locks only, so this is one of the crate's
//! few `libc` calls.

use std::os::fd::{AsFd, AsRawFd};

use rustix::io::Errno;

/// A `struct flock` for one byte.
fn one_byte(kind: libc::c_short, byte: u64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers; all zeros is valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    // l_pid must be 0 for OFD locks.
    fl.l_pid = 0;
    fl
}

fn fcntl(fd: impl AsFd, cmd: libc::c_int, fl: &mut libc::flock) -> Result<(), Errno> {
    // SAFETY: `fl` is a valid, exclusively borrowed `struct flock` for the
    // duration of the call, which is what F_OFD_SETLK/F_OFD_GETLK read and
    // (for GETLK) write; the descriptor is borrowed, so it stays open.
    let r = unsafe { libc::fcntl(fd.as_fd().as_raw_fd(), cmd, fl as *mut libc::flock) };
    if r == -1 {
        Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ))
    } else {
        Ok(())
    }
}

/// Takes a write lock on `byte` through `fd`'s open file description,
/// without waiting. `Ok(false)` if another description holds it.
///
/// `fd` must be open for writing.
pub(crate) fn try_lock(fd: impl AsFd, byte: u64) -> Result<bool, Errno> {
    let mut fl = one_byte(libc::F_WRLCK as libc::c_short, byte);
    match fcntl(fd, libc::F_OFD_SETLK, &mut fl) {
        Ok(()) => Ok(true),
        Err(Errno::AGAIN | Errno::ACCESS) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases the lock this description holds on `byte` (nothing if none).
pub(crate) fn unlock(fd: impl AsFd, byte: u64) -> Result<(), Errno> {
    let mut fl = one_byte(libc::F_UNLCK as libc::c_short, byte);
    fcntl(fd, libc::F_OFD_SETLK, &mut fl)
}

/// Whether some *other* open file description holds a lock on `byte`. Works
/// on a read-only descriptor (it asks whether a read lock could be taken,
/// which only a writer's lock prevents).
pub(crate) fn is_locked(fd: impl AsFd, byte: u64) -> Result<bool, Errno> {
    let mut fl = one_byte(libc::F_RDLCK as libc::c_short, byte);
    fcntl(fd, libc::F_OFD_GETLK, &mut fl)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{memfd_create, MemfdFlags};

    /// Two open file descriptions of one file, as two participants have.
    fn two_descriptions() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
        let a = memfd_create("shmkit-lock-test", MemfdFlags::CLOEXEC).unwrap();
        let path = format!("/proc/self/fd/{}", a.as_raw_fd());
        let b = rustix::fs::open(path.as_str(), rustix::fs::OFlags::RDWR, rustix::fs::Mode::empty()).unwrap();
        (a, b)
    }

    #[test]
    fn a_lock_is_seen_by_another_description_and_released_by_closing() {
        let (a, b) = two_descriptions();
        assert!(!is_locked(&b, 3).unwrap());
        assert!(try_lock(&a, 3).unwrap());
        assert!(is_locked(&b, 3).unwrap(), "b sees a's lock");
        assert!(!is_locked(&a, 3).unwrap(), "a's own lock does not conflict with a");
        assert!(!try_lock(&b, 3).unwrap(), "the same byte is refused to b");
        assert!(try_lock(&b, 4).unwrap(), "another byte is free");
        unlock(&a, 3).unwrap();
        assert!(!is_locked(&b, 3).unwrap());
        assert!(try_lock(&a, 3).unwrap());
        drop(a);
        assert!(!is_locked(&b, 3).unwrap(), "closing the description releases its locks");
    }
}
