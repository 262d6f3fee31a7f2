//! Sealed anonymous shared memory: a `memfd` that nobody can shrink.
//!
//! A POSIX object can be shrunk by anyone who may write it; shmkit survives
//! that (see [`Mapping`](crate::map::Mapping#when-the-object-shrinks-under-the-mapping)),
//! but the mapping is lost. A [`Memfd`] cannot shrink at all: it is made
//! with `memfd_create`, sized, its memory reserved, and then sealed
//! (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`), so its size is fixed for
//! every process that will ever hold it. It has no name: it reaches another
//! process as a file descriptor over a Unix socket ([`Memfd::send`],
//! [`Memfd::receive`]), and the receiver checks the seals before using it,
//! so a peer cannot hand over memory it could still shrink.
//!
//! Use it when both programs are yours to write and can share a socket;
//! use [`posix`](crate::posix) objects when a name must be found by others
//! (`shmkit ls`, other languages, `ipcs`-style tools).
//!
//! # Examples
//!
//! ```
//! use std::os::unix::net::UnixStream;
//! use shmkit::memfd::Memfd;
//!
//! let (here, there) = UnixStream::pair().unwrap();
//! let shm = Memfd::create(4096)?;
//! shm.map()?.write_at(0, b"This is writer!!!\0")?;
//! shm.send(&here)?;
//!
//! // in the other process, at the other end of the socket:
//! let received = Memfd::receive(&there)?;
//! let text = received.map()?.read_cstr(0)?;
//! assert_eq!(text, b"This is writer!!!");
//! // sealed: nobody can shrink it
//! assert!(rustix::fs::ftruncate(&received, 0).is_err());
//! # Ok::<(), shmkit::Error>(())
//! ```

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::fs::{FallocateFlags, MemfdFlags, SealFlags};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

use crate::error::{Error, Limit, Result, Target};
use crate::map::{Access, Mapping};

/// The seals every [`Memfd`] has, and [`Memfd::from_fd`] insists on.
const SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW).union(SealFlags::SEAL);

/// Sealed anonymous shared memory of a fixed size; see the [module
/// docs](self).
#[derive(Debug)]
pub struct Memfd {
    fd: OwnedFd,
    size: u64,
}

impl Memfd {
    /// `memfd_create`, `ftruncate`, `fallocate`, then the seals: new memory
    /// of `size` bytes whose size can never change.
    ///
    /// Unlike a POSIX object, whose size `/dev/shm`'s limit bounds, a memfd
    /// is bounded only by memory: a request for more than is available
    /// (`MemAvailable + SwapFree` in `/proc/meminfo`) is refused before
    /// anything is allocated. Memory cgroup limits are not consulted.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a size of 0; [`Error::NoSpace`] when
    /// the memory is not available or cannot be reserved.
    pub fn create(size: u64) -> Result<Memfd> {
        let target = Target::Memory;
        if size == 0 {
            return Err(Error::InvalidArgument {
                target,
                reason: "a size of 0 bytes cannot be mapped".into(),
            });
        }
        // A memfd has no file system size to stop `fallocate`: asking for
        // more than the machine can give would wake the OOM killer.
        check_available(size, available_memory())?;
        let fd = rustix::fs::memfd_create("shmkit", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|e| Error::from_errno("memfd_create", &target, e))?;
        let no_space = |e: Errno| match e {
            Errno::NOSPC | Errno::NOMEM | Errno::FBIG => Error::no_space(&target, size, None, e),
            _ => Error::from_errno("ftruncate", &target, e),
        };
        rustix::fs::ftruncate(&fd, size).map_err(no_space)?;
        // Reserve the memory now, so a shortage is an error here and not a
        // SIGBUS at the first write.
        match rustix::fs::fallocate(&fd, FallocateFlags::empty(), 0, size) {
            Ok(()) | Err(Errno::OPNOTSUPP) => {}
            Err(e) => return Err(no_space(e)),
        }
        rustix::fs::fcntl_add_seals(&fd, SEALS).map_err(|e| Error::from_errno("fcntl(F_ADD_SEALS)", &target, e))?;
        Ok(Memfd { fd, size })
    }

    /// Takes a descriptor received from elsewhere, after checking that it
    /// is sealed against shrinking and growing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if it is not a sealed memfd (a file, a
    /// POSIX object, a memfd without the seals: memory someone could shrink).
    pub fn from_fd(fd: OwnedFd) -> Result<Memfd> {
        let target = Target::Memory;
        let seals = rustix::fs::fcntl_get_seals(&fd).map_err(|_| refused("not a memfd"))?;
        if !seals.contains(SealFlags::SHRINK | SealFlags::GROW) {
            return Err(refused("it is not sealed against shrinking and growing"));
        }
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::from_errno("fstat", &target, e))?;
        let size = u64::try_from(st.st_size).map_err(|_| refused("negative size"))?;
        if size == 0 {
            return Err(refused("it is empty"));
        }
        Ok(Memfd { fd, size })
    }

    /// Its size in bytes (fixed by the seals).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Maps all of it, read-write.
    ///
    /// # Errors
    /// [`Error::NoSpace`] when the address space is exhausted; [`Error::Os`].
    pub fn map(&self) -> Result<Mapping> {
        self.map_with(Access::ReadWrite)
    }

    /// Maps all of it, read-only.
    ///
    /// # Errors
    /// As [`map`](Memfd::map).
    pub fn map_read_only(&self) -> Result<Mapping> {
        self.map_with(Access::ReadOnly)
    }

    fn map_with(&self, access: Access) -> Result<Mapping> {
        let len = usize::try_from(self.size).map_err(|_| Error::TooLarge {
            target: Target::Memory,
            requested: self.size,
            limit: None,
        })?;
        Mapping::map_fd(self.fd.as_fd(), 0, len, access, Target::Memory)
    }

    /// Hands a duplicate of the descriptor to the process at the other end
    /// of `socket` (`sendmsg` with `SCM_RIGHTS`; the size goes along as the
    /// message's bytes, for the receiver to check); that process calls
    /// [`Memfd::receive`].
    ///
    /// # Errors
    /// [`Error::Os`] naming `sendmsg` when the socket fails.
    pub fn send(&self, socket: &UnixStream) -> Result<()> {
        let fds = [self.fd.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            unreachable!("the buffer is sized for one descriptor");
        }
        let size = self.size.to_le_bytes();
        let sent = rustix::net::sendmsg(socket, &[IoSlice::new(&size)], &mut control, SendFlags::NOSIGNAL)
            .map_err(|e| Error::from_errno("sendmsg", &Target::Memory, e))?;
        if sent != size.len() {
            return Err(Error::from_errno("sendmsg", &Target::Memory, Errno::MSGSIZE));
        }
        Ok(())
    }

    /// Receives memory that [`Memfd::send`] handed over at the other end of
    /// `socket`, waiting for it, and checks it with [`Memfd::from_fd`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if no descriptor came, or one that is not
    /// sealed memory of the size announced; [`Error::Os`] naming `recvmsg`.
    pub fn receive(socket: &UnixStream) -> Result<Memfd> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut size = [0u8; 8];
        let got = rustix::net::recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut size)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| Error::from_errno("recvmsg", &Target::Memory, e))?;
        let mut fds: Vec<OwnedFd> = control
            .drain()
            .filter_map(|m| match m {
                RecvAncillaryMessage::ScmRights(fds) => Some(fds),
                _ => None,
            })
            .flatten()
            .collect();
        if fds.len() != 1 || got.bytes != size.len() {
            return Err(refused("expected one descriptor and its size"));
        }
        let shm = Memfd::from_fd(fds.remove(0))?;
        if shm.size != u64::from_le_bytes(size) {
            return Err(refused("its size is not the one announced"));
        }
        Ok(shm)
    }
}

/// The error for memory handed over that cannot be used.
fn refused(why: &str) -> Error {
    Error::InvalidArgument {
        target: Target::Memory,
        reason: format!("refused the memory handed over: {why}"),
    }
}

/// `MemAvailable + SwapFree`, when `/proc/meminfo` says.
fn available_memory() -> Option<u64> {
    use procfs::Current;
    let m = procfs::Meminfo::current().ok()?;
    Some(m.mem_available?.saturating_add(m.swap_free))
}

/// `Err(NoSpace)` if `size` is more than `available`.
fn check_available(size: u64, available: Option<u64>) -> Result<()> {
    match available {
        Some(free) if size > free => Err(Error::no_space(
            &Target::Memory,
            size,
            Some(Limit {
                name: "MemAvailable + SwapFree",
                value: Some(free),
            }),
            Errno::NOMEM,
        )),
        _ => Ok(()),
    }
}

impl AsFd for Memfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_is_available_is_refused_before_allocating() {
        assert!(check_available(10, Some(10)).is_ok());
        assert!(check_available(u64::MAX, None).is_ok()); // unknown: let the kernel say
        let err = check_available(11, Some(10)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "memory: not enough space for 11 bytes (MemAvailable + SwapFree = 10): {}",
                Errno::NOMEM
            )
        );
        assert!(
            available_memory().is_some_and(|m| m > 0),
            "this machine has /proc/meminfo"
        );
    }
}
