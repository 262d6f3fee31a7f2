//! The kernel's limits on shared memory and the space of `/dev/shm`.

use std::path::Path;

use super::posix::DEV_SHM;

/// `SHMMIN`, the smallest System V segment: 1 byte on Linux, a constant of
/// the kernel with no file in `/proc`.
pub const SHMMIN: u64 = 1;

/// `TMPFS_MAGIC`, the `f_type` of a tmpfs in `statfs`.
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// The limits and usage of shared memory on this machine. Anything that
/// cannot be read is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `SHMMAX`: the largest System V segment, in bytes
    /// (`/proc/sys/kernel/shmmax`).
    pub shmmax: Option<u64>,
    /// `SHMALL`: the most memory all System V segments together may take,
    /// in pages (`/proc/sys/kernel/shmall`).
    pub shmall: Option<u64>,
    /// `SHMMNI`: the most System V segments there may be
    /// (`/proc/sys/kernel/shmmni`).
    pub shmmni: Option<u64>,
    /// `SHMMIN`: the smallest System V segment, always [`SHMMIN`] (1 byte)
    /// on Linux, which has no file for it.
    pub shmmin: u64,
    /// The page size in bytes: what `SHMALL` counts, and the unit memory is
    /// given in.
    pub page_size: u64,
    /// The huge page sizes the kernel offers, in bytes, smallest first
    /// (`/sys/kernel/mm/hugepages/hugepages-*kB`).
    pub huge_page_sizes: Vec<u64>,
    /// Size and free space of `/dev/shm`; `None` when it cannot be examined
    /// (for example, it does not exist).
    pub dev_shm: Option<DevShmSpace>,
    /// How many POSIX shared-memory objects `/dev/shm` holds (semaphores
    /// and other entries not counted).
    pub posix_objects: Option<usize>,
    /// How many System V segments exist.
    pub sysv_segments: Option<usize>,
    /// How many pages the System V segments take together, rounding each up
    /// to whole pages, as the kernel counts them against `SHMALL`.
    pub sysv_pages: Option<u64>,
}

impl Limits {
    /// `SHMALL` in bytes, when known.
    pub fn shmall_bytes(&self) -> Option<u64> {
        Some(self.shmall?.saturating_mul(self.page_size))
    }
}

/// The space of the file system at `/dev/shm` (`statvfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevShmSpace {
    /// Whether it is a tmpfs, as it should be.
    pub tmpfs: bool,
    /// Its size in bytes; `None` when it has no size limit (a tmpfs mounted
    /// with `size=0`, or a ramfs).
    pub total: Option<u64>,
    /// The bytes free, for root (`f_bfree`); `None` without a size limit.
    pub free: Option<u64>,
    /// The bytes free for other users (`f_bavail`; the same on a tmpfs);
    /// `None` without a size limit.
    pub available: Option<u64>,
}

impl DevShmSpace {
    /// Reads the file system at `path`.
    fn of(path: &Path) -> Option<DevShmSpace> {
        let vfs = rustix::fs::statvfs(path).ok()?;
        // f_type is a signed word of varying width; the magic fits in 32 bits.
        #[allow(clippy::unnecessary_cast)]
        let tmpfs = rustix::fs::statfs(path).is_ok_and(|fs| fs.f_type as u64 & 0xffff_ffff == TMPFS_MAGIC);
        let bytes = |blocks: u64| (vfs.f_blocks > 0).then(|| blocks.saturating_mul(vfs.f_frsize));
        Some(DevShmSpace {
            tmpfs,
            total: bytes(vfs.f_blocks),
            free: bytes(vfs.f_bfree),
            available: bytes(vfs.f_bavail),
        })
    }

    /// The bytes in use, when it has a size limit.
    pub fn used(&self) -> Option<u64> {
        Some(self.total?.saturating_sub(self.free?))
    }
}

/// Reads the limits and counts of shared memory.
///
/// # Examples
/// ```
/// let limits = shmkit::inspect::limits();
/// assert_eq!(limits.shmmin, 1);
/// assert!(limits.page_size >= 4096);
/// if let Some(shm) = limits.dev_shm {
///     println!("/dev/shm: {:?} bytes, {:?} free", shm.total, shm.available);
/// }
/// ```
pub fn limits() -> Limits {
    let page_size = rustix::param::page_size() as u64;
    let kernel = crate::sysv::kernel_limit;
    let sysv = super::sysv::usage(page_size).ok();
    Limits {
        shmmax: kernel("shmmax"),
        shmall: kernel("shmall"),
        shmmni: kernel("shmmni"),
        shmmin: SHMMIN,
        page_size,
        huge_page_sizes: huge_page_sizes(Path::new("/sys/kernel/mm/hugepages")),
        dev_shm: DevShmSpace::of(Path::new(DEV_SHM)),
        posix_objects: super::posix::count_objects().ok(),
        sysv_segments: sysv.map(|(n, _)| n),
        sysv_pages: sysv.map(|(_, pages)| pages),
    }
}

/// The sizes named by the `hugepages-<N>kB` entries of `dir`.
fn huge_page_sizes(dir: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut sizes: Vec<u64> = entries
        .flatten()
        .filter_map(|e| huge_page_size(e.file_name().to_str()?))
        .collect();
    sizes.sort_unstable();
    sizes
}

/// `hugepages-2048kB` → 2 MiB.
fn huge_page_size(name: &str) -> Option<u64> {
    let kib: u64 = name.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_page_names() {
        assert_eq!(huge_page_size("hugepages-2048kB"), Some(2 << 20));
        assert_eq!(huge_page_size("hugepages-1048576kB"), Some(1 << 30));
        assert_eq!(huge_page_size("hugepages-kB"), None);
        assert_eq!(huge_page_size("other"), None);
    }
}
