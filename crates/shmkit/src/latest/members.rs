//! Who takes part: every participant, writer or reader, holds an
//! open-file-description *read* lock on one byte of the object's file
//! ([`MEMBERS_BYTE`]) for as long as it takes part. Read locks of different
//! descriptions do not conflict, so there may be any number; the kernel
//! drops each when its description closes (its process dies, in any
//! namespace); and a description asking whether a *write* lock could be
//! taken learns whether anybody else holds one. That is how the last
//! participant to leave knows it is the last.
//!
//! `crate::sys::ofd` has write locks only (the slots'); these two calls are
//! its read-lock counterparts, kept here with the one pattern that uses
//! them.

use std::os::fd::{AsFd, AsRawFd};

use rustix::io::Errno;

use super::layout::MEMBERS_BYTE;

/// A `struct flock` for [`MEMBERS_BYTE`].
fn members_byte(kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers; all zeros is valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = MEMBERS_BYTE as libc::off_t;
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
        Err(crate::sys::last_errno())
    } else {
        Ok(())
    }
}

/// Takes this description's read lock on the members' byte (nothing if it
/// holds it already). Nobody takes a write lock there, so it does not wait.
pub(crate) fn join(fd: impl AsFd) -> Result<(), Errno> {
    let mut fl = members_byte(libc::F_RDLCK as libc::c_short);
    fcntl(fd, libc::F_OFD_SETLK, &mut fl)
}

/// Whether another open file description holds a lock on the members'
/// byte: whether anybody else takes part. Works on a read-only descriptor.
pub(crate) fn others(fd: impl AsFd) -> Result<bool, Errno> {
    let mut fl = members_byte(libc::F_WRLCK as libc::c_short);
    fcntl(fd, libc::F_OFD_GETLK, &mut fl)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{memfd_create, MemfdFlags};

    fn reopen(fd: &std::os::fd::OwnedFd, flags: rustix::fs::OFlags) -> std::os::fd::OwnedFd {
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        rustix::fs::open(path.as_str(), flags, rustix::fs::Mode::empty()).unwrap()
    }

    #[test]
    fn any_number_of_members_each_seen_by_the_others() {
        let a = memfd_create("shmkit-members-test", MemfdFlags::CLOEXEC).unwrap();
        let b = reopen(&a, rustix::fs::OFlags::RDWR);
        let c = reopen(&a, rustix::fs::OFlags::RDWR);
        let outsider = reopen(&a, rustix::fs::OFlags::RDONLY);
        assert!(!others(&outsider).unwrap());
        join(&a).unwrap();
        join(&a).unwrap(); // again: nothing changes
        assert!(!others(&a).unwrap(), "its own lock is not another's");
        assert!(others(&outsider).unwrap());
        join(&b).unwrap();
        join(&c).unwrap();
        assert!(others(&a).unwrap() && others(&b).unwrap());
        drop(b);
        drop(c);
        assert!(!others(&a).unwrap(), "closing a description ends its membership");
        // a slot's write lock (on another byte) is not membership
        let d = reopen(&a, rustix::fs::OFlags::RDWR);
        assert!(crate::sys::ofd::try_lock(&d, 0).unwrap());
        assert!(!others(&a).unwrap());
        drop(a);
        assert!(!others(&outsider).unwrap());
    }
}
