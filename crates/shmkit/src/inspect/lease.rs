//! Whether anybody uses a POSIX object, asked of the kernel: the write-lease
//! probe (see [`probe_use`]).

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
#[cfg(test)]
use std::path::Path;
use std::time::Duration;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

use super::posix::DEV_SHM;
use crate::sys::lease::{self, Disposition, LeaseKind};

/// `TMPFS_MAGIC`, the `f_type` of a tmpfs in `statfs`.
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// The signals the probe may have the kernel send on a lease break, in order
/// of preference: both are ignored unless a handler is installed.
const BREAK_SIGNALS: [libc::c_int; 2] = [libc::SIGURG, libc::SIGWINCH];

/// What the write-lease probe says of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Usage {
    /// Some other open file description of it exists: a process (in any
    /// namespace) has it open or mapped.
    InUse,
    /// No other open file description exists: nobody has it open or mapped.
    Unused,
    /// The lease could not be asked.
    Unknown(WhyUnknown),
}

/// Why the probe could not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhyUnknown {
    /// The object belongs to another user and this process lacks
    /// `CAP_LEASE`, or may not even open it for reading.
    NotPermitted,
    /// Not a regular file on a tmpfs (a symbolic link, a directory, a FIFO;
    /// or `/dev/shm` is not a tmpfs).
    NotTmpfsFile,
    /// Leases are turned off (`fs.leases-enable = 0`) or not supported.
    Unsupported,
    /// The program handles both `SIGURG` and `SIGWINCH`, one of which a
    /// lease break would send it (see [`probe_use`]).
    SignalsHandled,
    /// The name names nothing any more: it was removed meanwhile.
    Gone,
    /// The name names another file than the one expected: it was removed
    /// and made again meanwhile.
    Replaced,
    /// Another error of `open`, `fstat` or `fcntl`.
    Os(Errno),
}

impl Usage {
    /// `Some(true)` for in use, `Some(false)` for unused, `None` when unknown.
    pub fn in_use(self) -> Option<bool> {
        match self {
            Usage::InUse => Some(true),
            Usage::Unused => Some(false),
            Usage::Unknown(_) => None,
        }
    }
}

/// Whether any process has the object `file_name` of `/dev/shm` open or
/// mapped, asked of the kernel with a write lease.
///
/// `/proc` names the processes that map or hold an object, but only those it
/// can show: not other users' processes without root, not processes that
/// even root cannot read (a sandbox's init), not processes in other pid
/// namespaces. The kernel knows more. A write lease
/// (`fcntl(F_SETLEASE, F_WRLCK)`) on a tmpfs file is granted only while no
/// other open file description of it exists — in any process, in any
/// namespace, including one kept alive by a mapping after its descriptor was
/// closed, and a read-only one. So the probe opens the object read-only,
/// asks for a write lease, and gives it back at once:
///
/// - refused with `EAGAIN`: somebody else has it open or mapped — [`Usage::InUse`];
/// - granted: nobody else has — [`Usage::Unused`];
/// - the lease cannot be asked — [`Usage::Unknown`] and [`WhyUnknown`]: it is
///   granted only to the file's owner or with `CAP_LEASE` (root has it), and
///   only on regular files.
///
/// # The lease-break signal
///
/// A process that opens the object while the probe holds the lease does not
/// fail: its `open` waits until the lease is given back (the probe gives it
/// back at once, so the wait is the probe's few system calls), and the kernel
/// sends the lease holder a signal. That signal is `SIGIO` unless
/// `F_SETSIG` names another, and `SIGIO`'s default action is to terminate
/// the process. Changing `SIGIO`'s disposition would change the calling
/// program's, from a library, and race with its threads; so the probe names
/// another signal with `F_SETSIG` on its own open file description (nobody
/// else's): `SIGURG`, whose default action is to ignore it, or `SIGWINCH`
/// (also ignored by default) when the program has a handler for `SIGURG`.
/// When the program handles both, no lease is asked ([`WhyUnknown::SignalsHandled`]):
/// a handler never gets a signal it did not expect. (Only a real-time
/// signal whose queue is full falls back to `SIGIO`; these are not
/// real-time signals.)
///
/// An opener that passes `O_NONBLOCK` gets `EWOULDBLOCK` instead of
/// waiting during that instant (`shm_open` callers do not pass it). Two
/// probes at the same instant may each see the other's descriptor and say
/// "in use": a probe may err towards "in use", never towards "unused".
///
/// `expected` is the `(device, inode)` the caller saw under that name: when
/// given and the name now names another file, the answer is
/// [`WhyUnknown::Replaced`]. The calling process counts like any other: an
/// object it has open itself is in use.
///
/// The object is opened read-only with `O_NOFOLLOW | O_NONBLOCK` (a symbolic
/// link is never followed) and checked to be a regular file on a tmpfs
/// before the lease is asked; the lease is given back before this returns.
///
/// # Examples
/// ```
/// use shmkit::inspect::{probe_use, Usage};
/// use shmkit::posix::{Options, PosixShm, ShmName};
///
/// let name = ShmName::new(format!("/shmkit-doc-probe-{}", std::process::id()))?;
/// let shm = PosixShm::create(&name, &Options::new().size(4096))?.remove_on_drop();
/// let file = std::ffi::OsStr::new(name.file_name());
/// assert_eq!(probe_use(file, None), Usage::InUse); // `shm` holds it open
/// let map = shm.map()?;
/// drop(shm.keep()); // close the descriptor; the mapping stays
/// assert_eq!(probe_use(file, None), Usage::InUse);
/// drop(map);
/// assert_eq!(probe_use(file, None), Usage::Unused); // as root, or as its owner
/// shmkit::posix::remove(&name)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn probe_use(file_name: &OsStr, expected: Option<(u64, u64)>) -> Usage {
    match Lease::take(file_name, expected) {
        Ok(lease) => {
            drop(lease);
            Usage::Unused
        }
        Err(NotTaken::InUse) => Usage::InUse,
        Err(NotTaken::Unknown(why)) => Usage::Unknown(why),
    }
}

/// Why [`Lease::take`] did not take the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotTaken {
    /// Somebody else has the object open or mapped.
    InUse,
    /// The lease could not be asked.
    Unknown(WhyUnknown),
}

/// A write lease held on an object of `/dev/shm`: while it lives, nobody
/// else has the object open or mapped, and anybody who opens it waits.
/// Dropping it gives the lease back (closing the descriptor would too).
#[derive(Debug)]
pub(crate) struct Lease {
    dir: OwnedFd,
    fd: OwnedFd,
    dev: u64,
    ino: u64,
}

impl Lease {
    /// Takes the lease, or says why not. "In use" is asked again twice, a
    /// moment apart: another probe (a second `shmkit ls`, say) holds the
    /// object open for an instant too, and two probes at once would each
    /// see the other. A real user keeps it open, and is still seen.
    pub(crate) fn take(file_name: &OsStr, expected: Option<(u64, u64)>) -> Result<Lease, NotTaken> {
        // a little jitter, so that two probes do not retry in step
        let jitter = u64::from(std::process::id() % 7) * 100;
        for pause in [
            Duration::from_micros(500 + jitter),
            Duration::from_micros(2000 + jitter),
        ] {
            match Self::take_once(file_name, expected) {
                Err(NotTaken::InUse) => std::thread::sleep(pause),
                other => return other,
            }
        }
        Self::take_once(file_name, expected)
    }

    fn take_once(file_name: &OsStr, expected: Option<(u64, u64)>) -> Result<Lease, NotTaken> {
        let unknown = NotTaken::Unknown;
        let bytes = file_name.as_bytes();
        if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
            return Err(unknown(WhyUnknown::Gone));
        }
        let dir = rustix::fs::openat(
            CWD,
            DEV_SHM,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| unknown(WhyUnknown::Os(e)))?;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&dir, file_name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // someone holds a write lease, which needs it open: in use
            Err(Errno::AGAIN) => return Err(NotTaken::InUse),
            Err(Errno::NOENT) => return Err(unknown(WhyUnknown::Gone)),
            Err(Errno::LOOP) => return Err(unknown(WhyUnknown::NotTmpfsFile)),
            Err(Errno::ACCESS | Errno::PERM) => return Err(unknown(WhyUnknown::NotPermitted)),
            Err(e) => return Err(unknown(WhyUnknown::Os(e))),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| unknown(WhyUnknown::Os(e)))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(unknown(WhyUnknown::NotTmpfsFile));
        }
        let (dev, ino) = (st.st_dev, st.st_ino);
        if expected.is_some_and(|e| e != (dev, ino)) {
            return Err(unknown(WhyUnknown::Replaced));
        }
        let fs = rustix::fs::fstatfs(&fd).map_err(|e| unknown(WhyUnknown::Os(e)))?;
        // f_type is a signed word of varying width; the magic fits in 32 bits.
        if fs.f_type as u64 & 0xffff_ffff != TMPFS_MAGIC {
            return Err(unknown(WhyUnknown::NotTmpfsFile));
        }
        let signal = break_signal().ok_or(unknown(WhyUnknown::SignalsHandled))?;
        lease::set_signal(fd.as_fd(), signal).map_err(|e| unknown(WhyUnknown::Os(e)))?;
        match lease::set_lease(fd.as_fd(), LeaseKind::Write) {
            Ok(()) => Ok(Lease { dir, fd, dev, ino }),
            Err(Errno::AGAIN) => Err(NotTaken::InUse),
            Err(Errno::ACCESS | Errno::PERM) => Err(unknown(WhyUnknown::NotPermitted)),
            Err(Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => Err(unknown(WhyUnknown::Unsupported)),
            Err(e) => Err(unknown(WhyUnknown::Os(e))),
        }
    }

    /// Removes the name while the lease is held, so that no process has
    /// the object open or mapped when its name goes; first checks that the
    /// name still names the leased file.
    pub(crate) fn unlink(self, file_name: &OsStr) -> Result<(), Errno> {
        let st = rustix::fs::statat(&self.dir, file_name, AtFlags::SYMLINK_NOFOLLOW)?;
        if (st.st_dev, st.st_ino) != (self.dev, self.ino) {
            return Err(Errno::STALE);
        }
        rustix::fs::unlinkat(&self.dir, file_name, AtFlags::empty())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // An error leaves the lease to the close that follows, which ends it.
        let _ = lease::set_lease(self.fd.as_fd(), LeaseKind::Unlock);
    }
}

/// The first of [`BREAK_SIGNALS`] that the program leaves at its default
/// action or ignores.
fn break_signal() -> Option<libc::c_int> {
    BREAK_SIGNALS
        .into_iter()
        .find(|&s| matches!(lease::disposition(s), Ok(Disposition::Default | Disposition::Ignore)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Someone opens the object while the probe holds its lease: the kernel
    /// starts breaking the lease and signals this process. The process must
    /// survive that signal (not SIGIO, whose default action would kill it),
    /// and the opener must go on as soon as the lease is given back.
    #[test]
    fn an_opener_during_the_probe_neither_kills_us_nor_waits_longer() {
        let file = format!("shmkit-lease-test-{}", std::process::id());
        let path = Path::new(DEV_SHM).join(&file);
        std::fs::write(&path, [0u8; 16]).unwrap();
        struct Remove<'a>(&'a Path);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(self.0);
            }
        }
        let _remove = Remove(&path);

        let lease = Lease::take(OsStr::new(&file), None).unwrap();
        let opener = {
            let path = path.clone();
            std::thread::spawn(move || std::fs::File::open(path).map(drop))
        };
        // the opener is blocked once the kernel breaks the lease, which
        // F_GETLEASE shows as the downgrade it waits for (F_RDLCK)
        let deadline = Instant::now() + Duration::from_secs(30);
        while lease::get_lease(lease.fd.as_fd()).unwrap() != libc::F_RDLCK as libc::c_int {
            assert!(Instant::now() < deadline, "the opener never reached the lease");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(lease);
        opener.join().unwrap().unwrap();
        // the break signal was sent and this process is still here
        assert_eq!(probe_use(OsStr::new(&file), None), Usage::Unused);
    }

    #[test]
    fn the_break_signal_is_one_ignored_by_default() {
        // neither is handled in the test binary
        assert_eq!(break_signal(), Some(libc::SIGURG));
    }
}
