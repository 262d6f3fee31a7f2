//! The C calls that rustix does not have and that are not System V: file
//! leases and their signal, open-file-description locks on byte ranges, and
//! the name service. Each is a thin wrapper
//! that turns the C return convention into `Result<_, Errno>`; every
//! `unsafe` block of this module says why its contract holds.

pub(crate) mod lease;
pub(crate) mod nss;
pub(crate) mod ofd;

use rustix::io::Errno;

/// The `errno` of the call that just failed.
pub(crate) fn last_errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
}

/// `-1` becomes the error in `errno`.
pub(crate) fn cvt(ret: libc::c_int) -> Result<libc::c_int, Errno> {
    if ret == -1 {
        Err(last_errno())
    } else {
        Ok(ret)
    }
}
