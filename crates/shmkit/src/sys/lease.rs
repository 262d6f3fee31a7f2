//! `fcntl(F_SETLEASE)`, `fcntl(F_SETSIG)` and a look at a signal's
//! disposition (`sigaction` with no new action).

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

use super::cvt;

/// `F_SETSIG` from `<fcntl.h>` (10 on every Linux architecture), which the
/// `libc` crate does not define.
const F_SETSIG: libc::c_int = 10;

/// What a lease asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseKind {
    /// `F_WRLCK`: granted only while no other open file description of the
    /// file exists.
    Write,
    /// `F_UNLCK`: gives a lease back.
    Unlock,
}

/// `fcntl(fd, F_SETLEASE, kind)`.
pub(crate) fn set_lease(fd: BorrowedFd<'_>, kind: LeaseKind) -> Result<(), Errno> {
    let arg = match kind {
        LeaseKind::Write => libc::F_WRLCK,
        LeaseKind::Unlock => libc::F_UNLCK,
    };
    // SAFETY: F_SETLEASE takes an integer argument, no pointer; `fd` is a
    // descriptor this process holds open for the duration of the call.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLEASE, libc::c_int::from(arg)) }).map(drop)
}

/// `fcntl(fd, F_SETSIG, signal)`: the signal sent when a lease on this
/// open file description is broken (instead of `SIGIO`).
pub(crate) fn set_signal(fd: BorrowedFd<'_>, signal: libc::c_int) -> Result<(), Errno> {
    // SAFETY: F_SETSIG takes an integer argument, no pointer; `fd` is a
    // descriptor this process holds open for the duration of the call.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), F_SETSIG, signal) }).map(drop)
}

/// What a signal does when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// `SIG_DFL`: the signal's default action.
    Default,
    /// `SIG_IGN`: discarded.
    Ignore,
    /// A handler the program installed.
    Handler,
}

/// The current disposition of `signal` (`sigaction(signal, NULL, &old)`).
pub(crate) fn disposition(signal: libc::c_int) -> Result<Disposition, Errno> {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one; `old` is valid
    // for writes of one `sigaction`, which the call fills in.
    cvt(unsafe { libc::sigaction(signal, std::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: zero is a valid value of every field (integers, a handler
    // address, a signal set), and the call succeeded, so the kernel filled
    // it in.
    let old = unsafe { old.assume_init() };
    Ok(match old.sa_sigaction {
        libc::SIG_DFL => Disposition::Default,
        libc::SIG_IGN => Disposition::Ignore,
        _ => Disposition::Handler,
    })
}

/// `fcntl(fd, F_GETLEASE)`: the lease held, or while it is being broken,
/// the type it is to be downgraded to (`F_RDLCK` for a reader's open).
#[cfg(test)]
pub(crate) fn get_lease(fd: BorrowedFd<'_>) -> Result<libc::c_int, Errno> {
    // SAFETY: F_GETLEASE takes no argument; `fd` is a descriptor this
    // process holds open for the duration of the call.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETLEASE) })
}
