//! POSIX objects: the entries of `/dev/shm`.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use super::accounts::Accounts;
use super::procs::{ProcessScan, Users};
use crate::error::{Errno, Error, Result, Target};
use crate::name::ShmName;
use crate::posix::system_time;

/// Where Linux keeps POSIX shared-memory objects (and named semaphores), one
/// file each.
pub const DEV_SHM: &str = "/dev/shm";

/// What an entry of `/dev/shm` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file: a shared-memory object (`shm_open`).
    SharedMemory,
    /// A regular file named `sem.*`: a named semaphore (`sem_open`), which
    /// glibc keeps in `/dev/shm` too.
    Semaphore,
    /// A symbolic link. `shm_open` as shmkit calls it refuses to follow one,
    /// and inspection never does: the size and owner are the link's own.
    Symlink,
    /// A directory.
    Directory,
    /// Anything else: a FIFO, a socket, a device.
    Other,
}

impl EntryKind {
    /// A short lowercase name: `shm`, `semaphore`, `symlink`, `directory`,
    /// `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::SharedMemory => "shm",
            EntryKind::Semaphore => "semaphore",
            EntryKind::Symlink => "symlink",
            EntryKind::Directory => "directory",
            EntryKind::Other => "other",
        }
    }

    fn of(file_name: &OsStr, meta: &Metadata) -> EntryKind {
        let ft = meta.file_type();
        if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_dir() {
            EntryKind::Directory
        } else if !ft.is_file() {
            EntryKind::Other
        } else if file_name.as_bytes().starts_with(b"sem.") {
            EntryKind::Semaphore
        } else {
            EntryKind::SharedMemory
        }
    }
}

/// An entry of `/dev/shm`: usually a POSIX shared-memory object. Read with
/// `lstat`: a symbolic link is described, never followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosixObject {
    /// The name as `shm_open` takes it: `/` and the file's name. A file
    /// name that is not UTF-8 (which no shmkit call can create) shows each
    /// byte that is not part of valid UTF-8 as `\xNN`; [`file_name`] has
    /// the exact bytes, and [`shm_name`] is `None` then.
    ///
    /// [`file_name`]: PosixObject::file_name
    /// [`shm_name`]: PosixObject::shm_name
    pub name: String,
    /// The exact name of the file in `/dev/shm`, without a slash.
    pub file_name: OsString,
    /// What kind of entry it is.
    pub kind: EntryKind,
    /// Its size in bytes (`st_size`).
    pub size: u64,
    /// The memory it occupies now (`st_blocks * 512`): less than `size`
    /// when sparse, and what counts against the size of `/dev/shm`.
    pub allocated: u64,
    /// The permission bits, special bits included (`st_mode & 0o7777`).
    pub mode: u32,
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
    /// The owner's user name, from `/etc/passwd`.
    pub owner: Option<String>,
    /// The group's name, from `/etc/group`.
    pub group: Option<String>,
    /// When its data last changed (`st_mtime`).
    pub modified: Option<SystemTime>,
    /// When its data or metadata last changed (`st_ctime`).
    pub changed: Option<SystemTime>,
    /// The device of the file system it is on.
    pub dev: u64,
    /// Its inode number, which identifies it in `/proc/PID/maps`.
    pub inode: u64,
    /// The processes that map it or hold it open.
    pub users: Users,
    /// Whether nobody maps or holds it: `Some(true)` when no process does,
    /// `Some(false)` when one does, `None` when none was seen but the scan
    /// was incomplete (see [`ProcessScan::is_complete`]), and for entries
    /// other than regular files.
    pub stale: Option<bool>,
}

impl PosixObject {
    /// The name as a [`ShmName`], when it is one (it is valid UTF-8).
    ///
    /// ```
    /// # let scan = shmkit::inspect::ProcessScan::new()?;
    /// for obj in shmkit::inspect::posix_objects(&scan)? {
    ///     match obj.shm_name() {
    ///         Some(name) => assert_eq!(name.as_str(), obj.name),
    ///         None => println!("{} cannot be opened by name", obj.name),
    ///     }
    /// }
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn shm_name(&self) -> Option<ShmName> {
        ShmName::new(self.file_name.to_str().map(|s| format!("/{s}"))?).ok()
    }

    fn new(file_name: OsString, meta: &Metadata, scan: &ProcessScan, accounts: &Accounts) -> PosixObject {
        let kind = EntryKind::of(&file_name, meta);
        let users = scan.posix_users(meta.dev(), meta.ino());
        let stale = match kind {
            EntryKind::SharedMemory | EntryKind::Semaphore if !users.is_empty() => Some(false),
            EntryKind::SharedMemory | EntryKind::Semaphore if users.complete => Some(true),
            _ => None,
        };
        PosixObject {
            name: display_name(&file_name),
            kind,
            size: meta.size(),
            allocated: meta.blocks().saturating_mul(512),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            owner: accounts.user(meta.uid()),
            group: accounts.group(meta.gid()),
            modified: system_time(meta.mtime(), meta.mtime_nsec()),
            changed: system_time(meta.ctime(), meta.ctime_nsec()),
            dev: meta.dev(),
            inode: meta.ino(),
            users,
            stale,
            file_name,
        }
    }
}

/// The shared-memory objects in `/dev/shm` (entries of kind
/// [`EntryKind::SharedMemory`]), by name. Semaphores, links and other
/// entries are left out: see [`dev_shm_entries`].
///
/// # Errors
/// As [`dev_shm_entries`].
///
/// # Examples
/// ```
/// use shmkit::inspect::{self, ProcessScan};
/// use shmkit::posix::{Options, PosixShm, ShmName};
///
/// let name = ShmName::new(format!("/shmkit-doc-posix-objects-{}", std::process::id()))?;
/// let _shm = PosixShm::create(&name, &Options::new().size(100))?.remove_on_drop();
/// let scan = ProcessScan::new()?;
/// let all = inspect::posix_objects(&scan)?;
/// let obj = all.iter().find(|o| o.name == name.as_str()).unwrap();
/// assert_eq!(obj.size, 100);
/// assert!(obj.users.contains(std::process::id() as i32)); // _shm holds it open
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn posix_objects(scan: &ProcessScan) -> Result<Vec<PosixObject>> {
    let mut all = dev_shm_entries(scan)?;
    all.retain(|o| o.kind == EntryKind::SharedMemory);
    Ok(all)
}

/// Every entry of `/dev/shm`, whatever its kind, by name. Entries removed
/// while the directory is read are left out.
///
/// # Errors
/// [`Error::Os`] (or [`Error::PermissionDenied`]) naming `/dev/shm` when the
/// directory cannot be read, for example because it does not exist.
pub fn dev_shm_entries(scan: &ProcessScan) -> Result<Vec<PosixObject>> {
    let accounts = Accounts::load();
    let mut all = Vec::new();
    for entry in read_dev_shm()? {
        // Gone meanwhile, or unreadable: skip it.
        let Ok(entry) = entry else { continue };
        // DirEntry::metadata does not follow symbolic links.
        let Ok(meta) = entry.metadata() else { continue };
        all.push(PosixObject::new(entry.file_name(), &meta, scan, &accounts));
    }
    all.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(all)
}

/// The entry of `/dev/shm` for `name`, whatever its kind (check
/// [`PosixObject::kind`]). A symbolic link is described, not followed.
///
/// # Errors
/// [`Error::NotFound`] when there is no such entry; other errors of
/// `lstat` as [`Error::Os`] or [`Error::PermissionDenied`].
///
/// # Examples
/// ```
/// use shmkit::inspect::{self, ProcessScan};
/// use shmkit::posix::ShmName;
///
/// let scan = ProcessScan::new()?;
/// let name = ShmName::new("/shmkit-doc-surely-missing")?;
/// let err = inspect::posix_object(&name, &scan).unwrap_err();
/// assert!(matches!(err, shmkit::Error::NotFound { .. }));
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn posix_object(name: &ShmName, scan: &ProcessScan) -> Result<PosixObject> {
    let path = format!("{DEV_SHM}/{}", name.file_name());
    let meta = std::fs::symlink_metadata(&path).map_err(|e| {
        let errno = Errno::from_io_error(&e).unwrap_or(Errno::IO);
        Error::from_errno("lstat", &Target::Posix(name.clone()), errno)
    })?;
    Ok(PosixObject::new(
        OsString::from(name.file_name()),
        &meta,
        scan,
        &Accounts::load(),
    ))
}

/// How many shared-memory objects `/dev/shm` holds, without a scan.
pub(crate) fn count_objects() -> Result<usize> {
    let mut n = 0;
    for entry in read_dev_shm()?.flatten() {
        if let Ok(meta) = entry.metadata() {
            if EntryKind::of(&entry.file_name(), &meta) == EntryKind::SharedMemory {
                n += 1;
            }
        }
    }
    Ok(n)
}

fn read_dev_shm() -> Result<std::fs::ReadDir> {
    std::fs::read_dir(DEV_SHM).map_err(|e| super::io_error(DEV_SHM, "read_dir", &e))
}

/// `/` and the file name, with bytes that are not valid UTF-8 as `\xNN`.
fn display_name(file_name: &OsStr) -> String {
    let mut name = String::from("/");
    for chunk in file_name.as_bytes().utf8_chunks() {
        name.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(name, "\\x{b:02x}");
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_utf8_are_escaped() {
        assert_eq!(display_name(OsStr::new("plain")), "/plain");
        assert_eq!(display_name(OsStr::new("ünï")), "/ünï");
        assert_eq!(display_name(OsStr::from_bytes(b"a\xffb\xc3")), "/a\\xffb\\xc3");
    }

    #[test]
    fn stale_needs_a_complete_scan() {
        let dir = std::env::temp_dir().join(format!("shmkit-stale-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, sem) = (dir.join("obj"), dir.join("sem.x"));
        std::fs::write(&file, b"x").unwrap();
        std::fs::write(&sem, b"x").unwrap();
        let meta = std::fs::symlink_metadata(&file).unwrap();
        let key = (meta.dev(), meta.ino());
        let accounts = Accounts::default();
        let obj = |scan: &ProcessScan| PosixObject::new("obj".into(), &meta, scan, &accounts);

        let unused = ProcessScan::fake(&[(1, "init", None)], &[], &[]);
        assert_eq!(obj(&unused).stale, Some(true));
        let used = ProcessScan::fake(&[(9, "user", None)], &[(key, 9)], &[1]);
        assert_eq!(obj(&used).stale, Some(false));
        assert_eq!(obj(&used).users.pids().collect::<Vec<_>>(), [9]);
        let unknown = ProcessScan::fake(&[(1, "init", None)], &[], &[1]);
        assert_eq!(obj(&unknown).stale, None);

        let sem_meta = std::fs::symlink_metadata(&sem).unwrap();
        let sem_obj = PosixObject::new("sem.x".into(), &sem_meta, &unused, &accounts);
        assert_eq!((sem_obj.kind, sem_obj.stale), (EntryKind::Semaphore, Some(true)));
        let dir_meta = std::fs::symlink_metadata(&dir).unwrap();
        let dir_obj = PosixObject::new("d".into(), &dir_meta, &unused, &accounts);
        assert_eq!((dir_obj.kind, dir_obj.stale), (EntryKind::Directory, None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
