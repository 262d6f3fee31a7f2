//! The System V calls rustix does not have, each a thin wrapper that turns
//! the C return convention into `Result<_, Errno>`.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use rustix::io::Errno;

/// `shm_perm.mode` bit: the segment is marked for removal.
pub(super) const SHM_DEST: u32 = 0o1000;
/// `shm_perm.mode` bit: the segment is locked in memory.
pub(super) const SHM_LOCKED: u32 = 0o2000;

use crate::sys::{cvt, last_errno};

/// `ftok(path, proj_id)`.
pub(crate) fn ftok(path: &std::ffi::CStr, proj_id: u8) -> Result<i32, Errno> {
    // SAFETY: `path` is a valid NUL-terminated string that outlives the
    // call; ftok only reads it.
    cvt(unsafe { libc::ftok(path.as_ptr(), libc::c_int::from(proj_id)) })
}

/// `shmget(key, size, flags)`.
pub(super) fn shmget(key: i32, size: usize, flags: libc::c_int) -> Result<i32, Errno> {
    // SAFETY: shmget takes no pointers; any argument values are sound.
    cvt(unsafe { libc::shmget(key, size, flags) })
}

/// `shmat(id, NULL, flags)`: attaches at an address the kernel picks.
pub(super) fn shmat(id: i32, flags: libc::c_int) -> Result<NonNull<c_void>, Errno> {
    // SAFETY: a NULL address lets the kernel choose a free range, so the new
    // attachment overlaps no memory Rust knows of.
    let ptr = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if ptr as isize == -1 {
        return Err(last_errno());
    }
    NonNull::new(ptr).ok_or(Errno::FAULT)
}

/// `shmdt(addr)`: detaches an attachment.
///
/// # Safety
/// `addr` must be the start of an attachment that `shmat` returned, which
/// nothing else detaches and nothing uses after this call.
pub(super) unsafe fn shmdt(addr: NonNull<c_void>) -> Result<(), Errno> {
    // SAFETY: the caller promises `addr` is an attachment of its own that
    // nobody uses any more.
    cvt(unsafe { libc::shmdt(addr.as_ptr()) }).map(drop)
}

/// `shmctl(id, IPC_STAT, &buf)`.
pub(super) fn stat(id: i32) -> Result<libc::shmid_ds, Errno> {
    let mut buf = MaybeUninit::<libc::shmid_ds>::zeroed();
    // SAFETY: `buf` is valid for writes of one `shmid_ds`, which IPC_STAT
    // fills.
    cvt(unsafe { libc::shmctl(id, libc::IPC_STAT, buf.as_mut_ptr()) })?;
    // SAFETY: zero is a valid value for every field (integers), and the
    // kernel has filled it in.
    Ok(unsafe { buf.assume_init() })
}

/// `shmctl(id, IPC_SET, &buf)`: sets `uid`, `gid` and the mode's low 9 bits.
pub(super) fn set(id: i32, buf: &mut libc::shmid_ds) -> Result<(), Errno> {
    // SAFETY: `buf` is a valid `shmid_ds` that IPC_SET only reads.
    cvt(unsafe { libc::shmctl(id, libc::IPC_SET, buf) }).map(drop)
}

/// `shmctl(id, IPC_RMID, NULL)`.
pub(super) fn rmid(id: i32) -> Result<(), Errno> {
    // SAFETY: IPC_RMID ignores the buffer argument, so NULL is fine.
    cvt(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}
