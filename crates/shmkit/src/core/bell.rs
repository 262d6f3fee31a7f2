//! Bells: a FIFO per participant that waits through a descriptor.
//!
//! This module knows nothing of rings, events or roles: a [`Bell`] is the
//! read end of a FIFO in `/dev/shm`, which its owner polls; a [`Ringer`] is
//! another participant's hold on it, which writes one byte to *ring* it.
//! When to ring is `core::event`'s business (a poller's bit in an event's
//! `waiters`): a bell is rung only when its owner armed, never once per
//! message of a busy conversation.
//!
//! # Why a FIFO beside the object
//! The descriptor must work between processes that share nothing but
//! `/dev/shm`: other PID and network namespaces (no abstract Unix socket,
//! no `pidfd`), no `/proc` (no `/proc/PID/fd/N` to open an `eventfd` of
//! another process). An `eventfd` handed over `SCM_RIGHTS` would need a
//! socket to meet on, which is a name in the file system again; a FIFO *is*
//! that name, and nothing else. It is made with `mkfifoat` (atomic, mode
//! `0600` or the object's mode), beside the object:
//! `/dev/shm/<name>.bell<seat>.<inode of the object, hex>`. The object's
//! inode makes the name unique among live objects, so a new object under
//! an old name never meets an old object's bell, and a bell can be removed
//! by anyone who knows the object without asking whose it is.
//!
//! # The same guarantees as a segment
//! Opened with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`; `fstat` must show a
//! FIFO owned by this user with no permission bits beyond the object's
//! mode (unless the object is shared with another user on purpose:
//! `allow_foreign`), else it is refused as squatted
//! ([`Error::Untrusted`]). The segment code keeps refusing everything but
//! regular files for segments; `shmkit ls` lists regular files only, so
//! bells do not show there.
//!
//! # Peer death without a timer
//! A FIFO's reader gets `POLLHUP` once its last *writer* has closed — if
//! it ever had one: Linux's `pipe_poll` reports `EPOLLHUP` only when
//! `pipe->writers == 0` and the pipe's writer counter has moved since the
//! reader opened it (`filp->f_version != pipe->w_counter`, `f_pipe` in
//! newer kernels), so a reader that never had a writer sleeps for ever.
//! Each participant therefore holds its peer's bell open for writing for as
//! long as it takes part; when it leaves or dies (in any namespace, by any
//! signal) the kernel closes that descriptor and the owner's poll returns.
//! Two rules close the gaps: the participants meet (`connect`) only once
//! each has opened the other's bell and rung it once (the *hello*, which the
//! owner drains), so no participant polls a bell its peer has not opened
//! yet; and a participant whose peer left before that hangs its own bell up
//! ([`Bell::hang_up`]: open for writing, close), which makes `POLLHUP`
//! permanent.
//!
//! Ringers open the FIFO read-write (`O_RDWR`, which Linux allows on a FIFO
//! and never blocks): a ringer then never gets `EPIPE` (nor `SIGPIPE`, which
//! would kill a host that does not ignore it) when the owner has died, and
//! it still counts as a writer for the owner's `POLLHUP`.
//!
//! A process that forks while it takes part hands its child a copy of the
//! write end: the owner then sees the hang-up only once both have closed it.
//!
//! # Cleanup
//! A bell's name is needed only until its peers have opened it: a channel
//! removes both names once both sides have met, so a channel in use has no
//! bell in `/dev/shm` at all; every participant removes its own (and its
//! dead peer's) when it leaves. Bells left by participants that were killed
//! while they met are removed by the next process that creates an object
//! under the same name ([`remove_stale`]).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

use super::segment::Segment;
use crate::error::{Error, Result, Target};
use crate::posix::{ShmName, SHM_DIR};

/// The longest file name (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// The longest suffix a bell's (or life's) name gets: `.bell<seat>.<ino hex>`.
const MAX_SUFFIX: usize = ".bell".len() + 10 + 1 + 16;

/// The two kinds of FIFO kept beside an object: bells (rung by peers, read
/// by their owner) and lives (held by their owner, watched by peers; see
/// `core::doorbell`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fifo {
    /// `<name>.bell<seat>.<ino hex>`.
    Bell,
    /// `<name>.life<seat>.<ino hex>`.
    Life,
}

impl Fifo {
    fn tag(self) -> &'static str {
        match self {
            Fifo::Bell => "bell",
            Fifo::Life => "life",
        }
    }
}

/// A bell's file name in `/dev/shm`: `<name>.bell<seat>.<ino hex>`; a name
/// too long for that is shortened and made unique again with a hash of it.
#[cfg(test)]
pub(crate) fn file_name(object: &ShmName, ino: u64, seat: usize) -> String {
    fifo_name(Fifo::Bell, object, ino, seat)
}

/// A bell's or a life's file name (see [`file_name`]).
pub(crate) fn fifo_name(fifo: Fifo, object: &ShmName, ino: u64, seat: usize) -> String {
    format!("{}.{}{seat}.{ino:x}", prefix_of(object), fifo.tag())
}

/// The part of a bell's name that comes from the object's name.
fn prefix_of(object: &ShmName) -> String {
    let name = object.file_name();
    if name.len() + MAX_SUFFIX <= NAME_MAX {
        return name.to_owned();
    }
    let hash = format!("~{:016x}", fnv1a(name.as_bytes()));
    let mut keep = NAME_MAX - MAX_SUFFIX - hash.len();
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{hash}", &name[..keep])
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn path_of(file: &str) -> String {
    format!("{SHM_DIR}/{file}")
}

/// Where a bell lives and who may use it.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// The object the bell belongs to (its errors name it).
    pub target: Target,
    /// The object's name.
    pub object: ShmName,
    /// The object's inode.
    pub ino: u64,
    /// The object's permission bits: a bell gets the same.
    pub mode: u32,
    /// The object's owner (uid, gid) if it is not this user: a bell is
    /// given to it where this process may do that (root), so that the
    /// object's owner can open it as it can open the object.
    pub owner: Option<(u32, u32)>,
    /// Accept a bell of another user, or with wider permissions.
    pub allow_foreign: bool,
}

impl Place {
    /// Where the bells of `object`, open as `seg`, live: the object's
    /// inode, access and owner, as `fstat` tells them now.
    ///
    /// # Errors
    /// The OS's error of `fstat`.
    pub(crate) fn of(object: &ShmName, seg: &Segment, allow_foreign: bool) -> Result<Place> {
        let st = fs::fstat(&seg.shm).map_err(|e| Error::from_errno("fstat", &seg.target, e))?;
        Ok(Place {
            target: seg.target.clone(),
            object: object.clone(),
            ino: st.st_ino,
            // the object's access, which may be wider than asked when foreign
            mode: st.st_mode & 0o777,
            owner: (st.st_uid != rustix::process::geteuid().as_raw()).then_some((st.st_uid, st.st_gid)),
            allow_foreign,
        })
    }

    fn path(&self, seat: usize) -> String {
        self.path_of(Fifo::Bell, seat)
    }

    pub(crate) fn path_of(&self, fifo: Fifo, seat: usize) -> String {
        path_of(&fifo_name(fifo, &self.object, self.ino, seat))
    }

    pub(crate) fn os(&self, op: &'static str, e: Errno) -> Error {
        Error::from_errno(op, &self.target, e)
    }

    /// The OS error `e` of `op` on a bell, as it is: not read as news of
    /// the object (`ENOENT` is not "no such segment" here).
    pub(crate) fn fifo_os(&self, op: &'static str, e: Errno) -> Error {
        Error::Os {
            target: self.target.clone(),
            op,
            source: e,
        }
    }

    /// Refuses a descriptor that is not a FIFO of ours (see the module docs).
    pub(crate) fn check(&self, fd: &OwnedFd) -> Result<()> {
        let st = fs::fstat(fd).map_err(|e| self.os("fstat(bell)", e))?;
        let mode = st.st_mode & 0o7777;
        let untrusted = |reason| Error::Untrusted {
            target: self.target.clone(),
            uid: st.st_uid,
            mode,
            reason,
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Fifo {
            return Err(untrusted("its bell is not a FIFO"));
        }
        if !self.allow_foreign {
            if st.st_uid != rustix::process::geteuid().as_raw() {
                return Err(untrusted("its bell belongs to another user"));
            }
            if mode & 0o777 & !self.mode != 0 {
                return Err(untrusted("its bell's permissions are wider than asked"));
            }
        }
        Ok(())
    }

    /// Refuses a bell a ringer should not write into: [`check`](Self::check),
    /// except that a bell of another user is accepted when the object is
    /// shared with other users on purpose (its mode gives group or others
    /// access) and the bell gives no more than the object does — a reader
    /// of another user polling a shared latest value, say, whose `fchown`
    /// to the object's owner is not allowed. One byte written into a FIFO
    /// under the object's exact bell name harms nobody; refusing it would
    /// leave that poller unrung.
    pub(crate) fn check_ringable(&self, fd: &OwnedFd) -> Result<()> {
        match self.check(fd) {
            Err(Error::Untrusted { mode, .. }) if self.mode & 0o066 != 0 && mode & !self.mode & 0o7777 == 0 => {
                let st = fs::fstat(fd).map_err(|e| self.os("fstat(bell)", e))?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Fifo {
                    Ok(())
                } else {
                    self.check(fd)
                }
            }
            other => other,
        }
    }

    /// Removes seat `seat`'s bell name, if it is there (ENOENT is fine).
    pub(crate) fn remove(&self, seat: usize) {
        let _ = fs::unlinkat(CWD, self.path(seat).as_str(), AtFlags::empty());
    }
}

/// The read end of this participant's bell: poll it, then
/// [`drain`](Bell::drain) it.
#[derive(Debug)]
pub(crate) struct Bell {
    fd: OwnedFd,
}

/// What [`Bell::drain`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Drained {
    /// At least one byte: somebody rang.
    pub rung: bool,
    /// End of file: no writer holds the bell now (the peer left or died, or
    /// has not opened it yet).
    pub hung_up: bool,
}

impl Bell {
    /// Makes seat `seat`'s bell (`mkfifoat`) and opens its read end. A
    /// FIFO of ours already under that name is left over from a participant
    /// of the same seat that died: it is replaced.
    ///
    /// # Errors
    /// [`Error::Untrusted`] if the name is taken by somebody else's file;
    /// the OS's errors (as `mkfifoat(bell)`, `open(bell)`).
    pub(crate) fn create(place: &Place, seat: usize) -> Result<Bell> {
        make(place, &place.path(seat), OFlags::RDONLY).map(|fd| Bell { fd })
    }

    /// Reads whatever rings are in the bell (non-blocking).
    pub(crate) fn drain(&self) -> Drained {
        let mut out = Drained::default();
        let mut buf = [0u8; 64];
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) => {
                    out.hung_up = true;
                    return out;
                }
                Ok(n) => {
                    out.rung = true;
                    if n < buf.len() {
                        return out;
                    }
                }
                Err(Errno::INTR) => {}
                // AGAIN: empty, with a writer; anything else: nothing to read
                Err(_) => return out,
            }
        }
    }

    /// Makes the bell hang up for good although nobody may ever have held
    /// it for writing (see the module docs): opens it for writing through
    /// seat `seat`'s name and closes it again. `false` if the name is gone.
    pub(crate) fn hang_up(&self, place: &Place, seat: usize) -> bool {
        match open(&place.path(seat), OFlags::WRONLY) {
            Ok(fd) => {
                let same = match (fs::fstat(&fd), fs::fstat(&self.fd)) {
                    (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
                    _ => false,
                };
                drop(fd);
                same
            }
            Err(_) => false,
        }
    }
}

impl AsFd for Bell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A hold on a peer's bell, to ring it.
#[derive(Debug)]
pub(crate) struct Ringer {
    fd: OwnedFd,
}

impl Ringer {
    /// Opens seat `seat`'s bell to ring it; `None` if it is not there (yet).
    ///
    /// # Errors
    /// [`Error::Untrusted`] if the name holds somebody else's file; the
    /// OS's errors (as `open(bell)`).
    pub(crate) fn open(place: &Place, seat: usize) -> Result<Option<Ringer>> {
        match open(&place.path(seat), OFlags::RDWR) {
            Ok(fd) => {
                place.check_ringable(&fd)?;
                Ok(Some(Ringer { fd }))
            }
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(place.os("open(bell)", e)),
        }
    }

    /// The descriptor held.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Rings: one byte, unless the bell holds one already (`EAGAIN`: it is
    /// full, so it is readable anyway).
    pub(crate) fn ring(&self) {
        loop {
            match rustix::io::write(&self.fd, &[1]) {
                Err(Errno::INTR) => {}
                _ => return,
            }
        }
    }
}

/// Makes the FIFO `path` (`mkfifoat`, the object's mode) and opens it with
/// `access`. A FIFO of ours already under that name is left over from a
/// participant of the same seat that died: it is replaced.
pub(crate) fn make(place: &Place, path: &str, access: OFlags) -> Result<OwnedFd> {
    let mode = Mode::from_raw_mode(place.mode & 0o777);
    for _ in 0..3 {
        match fs::mkfifoat(CWD, path, mode) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                // ours and a FIFO: left over, replace it; anything else
                // is squatted (and the check below refuses it)
                let fd = open(path, OFlags::RDONLY).map_err(|e| place.os("open(bell)", e))?;
                place.check(&fd)?;
                let _ = fs::unlinkat(CWD, path, AtFlags::empty());
                continue;
            }
            Err(e) => return Err(place.os("mkfifoat(bell)", e)),
        }
        let fd = match open(path, access) {
            Ok(fd) => fd,
            // a umask without the owner's read bit: give it back
            Err(Errno::ACCESS) => {
                fs::chmodat(CWD, path, mode, AtFlags::empty()).map_err(|e| place.os("chmod(bell)", e))?;
                open(path, access).map_err(|e| place.os("open(bell)", e))?
            }
            Err(e) => return Err(place.os("open(bell)", e)),
        };
        // the umask may have taken bits the object's mode gives
        let st = fs::fstat(&fd).map_err(|e| place.os("fstat(bell)", e))?;
        if st.st_mode & 0o777 != place.mode & 0o777 && st.st_uid == rustix::process::geteuid().as_raw() {
            let _ = fs::fchmod(&fd, mode);
        }
        if let Some((uid, gid)) = place.owner {
            let _ = fs::fchown(
                &fd,
                Some(rustix::process::Uid::from_raw(uid)),
                Some(rustix::process::Gid::from_raw(gid)),
            );
        }
        place.check(&fd)?;
        return Ok(fd);
    }
    // replaced three times, and made again by somebody each time
    Err(place.fifo_os("mkfifoat(bell)", Errno::EXIST))
}

pub(crate) fn open(path: &str, access: OFlags) -> rustix::io::Result<OwnedFd> {
    fs::openat(
        CWD,
        path,
        access | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
}

/// Removes the bells of earlier objects named `object` (any inode but
/// `keep`): FIFOs of this user left by participants killed while they met.
/// Call when creating a new object under the name: every earlier object of
/// that name is then gone from it, and its participants have met or died.
pub(crate) fn remove_stale(object: &ShmName, keep: u64) {
    remove_matching(object, |ino| ino != keep);
}

/// Removes the bells of the object named `object` whose inode was `ino`
/// (after the object itself was removed); returns how many.
pub(crate) fn remove_of(object: &ShmName, ino: u64) -> usize {
    remove_matching(object, |i| i == ino)
}

/// Removes this user's bell FIFOs of `object` whose object inode `pick`s.
fn remove_matching(object: &ShmName, pick: impl Fn(u64) -> bool) -> usize {
    let mut removed = 0;
    let prefix = format!("{}.", prefix_of(object));
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else { return 0 };
    let me = rustix::process::geteuid().as_raw();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(prefix.as_str()) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix("bell").or_else(|| rest.strip_prefix("life")) else {
            continue;
        };
        let Some((seat, ino)) = rest.split_once('.') else {
            continue;
        };
        let (Ok(_), Ok(ino)) = (seat.parse::<u32>(), u64::from_str_radix(ino, 16)) else {
            continue;
        };
        if !pick(ino) || seat.is_empty() || !seat.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let path = path_of(name);
        let Ok(st) = fs::statat(CWD, path.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Fifo
            && st.st_uid == me
            && fs::unlinkat(CWD, path.as_str(), AtFlags::empty()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn place(n: u32) -> Place {
        let object = ShmName::new(format!("/shmkit-bell-{}-{n}", std::process::id())).unwrap();
        Place {
            target: Target::Posix(object.clone()),
            object,
            ino: 0xabc + u64::from(n),
            mode: 0o600,
            owner: None,
            allow_foreign: false,
        }
    }

    #[test]
    #[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
    fn a_bell_of_another_user_is_rung_only_when_the_object_is_shared() {
        let mut p = place(7);
        let path = p.path(0);
        rustix::fs::mkfifoat(CWD, path.as_str(), Mode::from_raw_mode(0o660)).unwrap();
        let nobody = Some(rustix::process::Uid::from_raw(65534));
        rustix::fs::chmodat(CWD, path.as_str(), Mode::from_raw_mode(0o660), AtFlags::empty()).unwrap();
        rustix::fs::chownat(CWD, path.as_str(), nobody, None, AtFlags::empty()).unwrap();
        // a private object: somebody else's FIFO under its bell's name is squatted
        assert!(matches!(Ringer::open(&p, 0), Err(Error::Untrusted { .. })));
        // shared with the group: a member's bell, within the object's mode
        p.mode = 0o660;
        assert!(Ringer::open(&p, 0).unwrap().is_some());
        // but not one wider than the object
        p.mode = 0o640;
        assert!(matches!(Ringer::open(&p, 0), Err(Error::Untrusted { .. })));
        p.remove(0);
    }

    #[test]
    fn names_fit_and_stay_unique() {
        let short = ShmName::new("/chan").unwrap();
        assert_eq!(file_name(&short, 0x1f, 1), "chan.bell1.1f");
        let long_a = ShmName::new(format!("/{}a", "x".repeat(250))).unwrap();
        let long_b = ShmName::new(format!("/{}b", "x".repeat(250))).unwrap();
        let (a, b) = (file_name(&long_a, u64::MAX, 1), file_name(&long_b, u64::MAX, 1));
        assert!(a.len() <= NAME_MAX && b.len() <= NAME_MAX);
        assert_ne!(a, b);
        assert!(a.starts_with(&prefix_of(&long_a)));
    }

    #[test]
    fn a_ring_makes_the_bell_readable_and_a_closed_ringer_hangs_it_up() {
        let p = place(1);
        let bell = Bell::create(&p, 0).unwrap();
        let meta = std::fs::symlink_metadata(p.path(0)).unwrap();
        assert!(meta.file_type().is_fifo());
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600
        );
        // read(2) says end of file while no writer holds it (poll(2) does
        // not hang up a reader that never had a writer: see below)
        assert_eq!(
            bell.drain(),
            Drained {
                rung: false,
                hung_up: true
            }
        );
        let ringer = Ringer::open(&p, 0).unwrap().unwrap();
        ringer.ring();
        ringer.ring();
        assert_eq!(
            bell.drain(),
            Drained {
                rung: true,
                hung_up: false
            }
        );
        drop(ringer);
        assert_eq!(
            bell.drain(),
            Drained {
                rung: false,
                hung_up: true
            }
        );
        p.remove(0);
        assert!(Ringer::open(&p, 0).unwrap().is_none());
    }

    #[test]
    fn a_bell_nobody_opened_can_hang_itself_up() {
        let p = place(2);
        let bell = Bell::create(&p, 1).unwrap();
        let mut fds = [rustix::event::PollFd::new(&bell, rustix::event::PollFlags::IN)];
        let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
        assert_eq!(rustix::event::poll(&mut fds, Some(&zero)).unwrap(), 0);
        assert!(bell.hang_up(&p, 1));
        let mut fds = [rustix::event::PollFd::new(&bell, rustix::event::PollFlags::IN)];
        assert_eq!(rustix::event::poll(&mut fds, Some(&zero)).unwrap(), 1);
        assert!(fds[0].revents().contains(rustix::event::PollFlags::HUP));
        p.remove(1);
    }

    #[test]
    fn leftovers_are_replaced_and_removed_and_strangers_refused() {
        let p = place(3);
        let old = Bell::create(&p, 0).unwrap();
        // a participant of the same seat died: the new one replaces it
        let new = Bell::create(&p, 0).unwrap();
        let ringer = Ringer::open(&p, 0).unwrap().unwrap();
        ringer.ring();
        assert!(new.drain().rung && !old.drain().rung);
        // an older object's bells go, this object's stay
        let older = Place { ino: 7, ..p.clone() };
        drop(Bell::create(&older, 1).unwrap());
        remove_stale(&p.object, p.ino);
        assert!(std::fs::symlink_metadata(older.path(1)).is_err());
        assert!(std::fs::symlink_metadata(p.path(0)).is_ok());
        p.remove(0);
        // a regular file under a bell's name is refused, not replaced
        std::fs::write(p.path(1), b"x").unwrap();
        assert!(matches!(Bell::create(&p, 1), Err(Error::Untrusted { .. })));
        assert!(matches!(Ringer::open(&p, 1), Err(Error::Untrusted { .. })));
        std::fs::remove_file(p.path(1)).unwrap();
    }
}
