//! POSIX objects: the entries of `/dev/shm`.

use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use super::accounts::Accounts;
use super::escape::escape_name;
use super::lease::{probe_use, Usage};
use super::pattern::ShmkitHeader;
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
    /// The name as `shm_open` takes it: `/` and the file's name, with a
    /// backslash shown as `\\` and each byte that is not valid UTF-8 or is
    /// part of a control character as `\xNN` (see [`escape_name`], and
    /// [`unescape_name`](super::unescape_name) for the way back);
    /// [`file_name`] has the exact bytes. [`shm_name`] is `None` for a name
    /// that is not UTF-8 (which no shmkit call can create).
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
    /// The owner's user name, from the system's name service
    /// (`getpwuid_r`: `/etc/passwd`, LDAP, SSSD, … as `/etc/nsswitch.conf`
    /// says); `None` when it knows none.
    pub owner: Option<String>,
    /// The group's name, from the name service (`getgrgid_r`).
    pub group: Option<String>,
    /// When its data last changed (`st_mtime`).
    pub modified: Option<SystemTime>,
    /// When its data or metadata last changed (`st_ctime`).
    pub changed: Option<SystemTime>,
    /// The device of the file system it is on.
    pub dev: u64,
    /// Its inode number, which identifies it in `/proc/PID/maps`.
    pub inode: u64,
    /// The processes that map it or hold it open, as far as `/proc` shows
    /// them.
    pub users: Users,
    /// What the write-lease probe said (see [`probe_use`]): whether any
    /// process, in any namespace, has it open or mapped. `None` for entries
    /// that are not regular files, which are not probed.
    pub usage: Option<Usage>,
    /// Whether nobody maps or holds it: `Some(false)` when the probe or
    /// `/proc` sees a user, `Some(true)` when the probe says unused (or, when
    /// the probe could not be made, the scan was complete and saw nobody),
    /// `None` when neither can tell, and for entries other than regular
    /// files.
    pub stale: Option<bool>,
    /// What its header says, if it is a shmkit object (a channel, a topic,
    /// …) that this process may read.
    pub shmkit: Option<ShmkitHeader>,
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

    /// The entry `file_name` with metadata `meta` (from `lstat`), probed
    /// for users.
    fn probed(file_name: OsString, meta: &Metadata, scan: &ProcessScan, accounts: &Accounts) -> PosixObject {
        let usage = match EntryKind::of(&file_name, meta) {
            EntryKind::SharedMemory | EntryKind::Semaphore => {
                Some(probe_use(&file_name, Some((meta.dev(), meta.ino()))))
            }
            _ => None,
        };
        PosixObject::new(file_name, meta, scan, accounts, usage)
    }

    fn new(
        file_name: OsString,
        meta: &Metadata,
        scan: &ProcessScan,
        accounts: &Accounts,
        usage: Option<Usage>,
    ) -> PosixObject {
        let kind = EntryKind::of(&file_name, meta);
        let users = scan.posix_users(meta.dev(), meta.ino());
        let stale = stale(kind, &users, usage);
        // Read after the probe, which must not see this descriptor.
        let shmkit = (kind == EntryKind::SharedMemory)
            .then(|| super::pattern::read_header(&file_name))
            .flatten();
        PosixObject {
            shmkit,
            name: escape_name(&file_name),
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
            usage,
            stale,
            file_name,
        }
    }
}

/// Whether an entry is stale, from what `/proc` and the probe say. A user
/// either sees wins; then the probe's "unused"; then a complete scan's.
fn stale(kind: EntryKind, users: &Users, usage: Option<Usage>) -> Option<bool> {
    if !matches!(kind, EntryKind::SharedMemory | EntryKind::Semaphore) {
        return None;
    }
    match usage {
        _ if !users.is_empty() => Some(false),
        Some(Usage::InUse) => Some(false),
        Some(Usage::Unused) => Some(true),
        _ if users.complete => Some(true),
        _ => None,
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
        all.push(PosixObject::probed(entry.file_name(), &meta, scan, &accounts));
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
    entry(OsStr::new(name.file_name()), Target::Posix(name.clone()), scan)
}

/// The entry of `/dev/shm` whose file name is exactly `file_name` (any
/// bytes, UTF-8 or not: see [`unescape_name`](super::unescape_name) to get
/// it from a shown name), whatever its kind. A symbolic link is described,
/// not followed.
///
/// # Errors
/// [`Error::NotFound`] when there is no such entry (the target is the path
/// in `/dev/shm`); [`Error::InvalidName`] for a name with a `/`, or empty,
/// `.` or `..`; other errors of `lstat` as [`Error::Os`] or
/// [`Error::PermissionDenied`].
///
/// # Examples
/// ```
/// use shmkit::inspect::{self, ProcessScan};
///
/// let scan = ProcessScan::new()?;
/// let file = inspect::unescape_name(r"/shmkit-doc-surely-missing-\xff")?;
/// let err = inspect::dev_shm_entry(&file, &scan).unwrap_err();
/// assert!(matches!(err, shmkit::Error::NotFound { .. }));
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn dev_shm_entry(file_name: &OsStr, scan: &ProcessScan) -> Result<PosixObject> {
    let bytes = file_name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(Error::InvalidName {
            name: escape_name(file_name),
            reason: "is not the name of a file in /dev/shm",
        });
    }
    entry(file_name, Target::Path(Path::new(DEV_SHM).join(file_name)), scan)
}

fn entry(file_name: &OsStr, target: Target, scan: &ProcessScan) -> Result<PosixObject> {
    let path = Path::new(DEV_SHM).join(file_name);
    let meta = std::fs::symlink_metadata(&path).map_err(|e| {
        let errno = Errno::from_io_error(&e).unwrap_or(Errno::IO);
        Error::from_errno("lstat", &target, errno)
    })?;
    Ok(PosixObject::probed(
        file_name.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::WhyUnknown;

    #[test]
    fn stale_weighs_the_probe_and_the_scan() {
        let dir = std::env::temp_dir().join(format!("shmkit-stale-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, sem) = (dir.join("obj"), dir.join("sem.x"));
        std::fs::write(&file, b"x").unwrap();
        std::fs::write(&sem, b"x").unwrap();
        let meta = std::fs::symlink_metadata(&file).unwrap();
        let key = (meta.dev(), meta.ino());
        let accounts = Accounts::default();
        let not_owner = Some(Usage::Unknown(WhyUnknown::NotPermitted));
        let obj = |scan: &ProcessScan, usage| PosixObject::new("obj".into(), &meta, scan, &accounts, usage);

        let unused = ProcessScan::fake(&[(1, "init", None)], &[], &[]);
        let used = ProcessScan::fake(&[(9, "user", None)], &[(key, 9)], &[1]);
        let unknown = ProcessScan::fake(&[(1, "init", None)], &[], &[1]);
        // the probe could not be made: the scan decides, if complete
        assert_eq!(obj(&unused, not_owner).stale, Some(true));
        assert_eq!(obj(&used, not_owner).stale, Some(false));
        assert_eq!(obj(&used, not_owner).users.pids().collect::<Vec<_>>(), [9]);
        assert_eq!(obj(&unknown, not_owner).stale, None);
        // the probe's answer stands where the scan cannot tell
        assert_eq!(obj(&unknown, Some(Usage::Unused)).stale, Some(true));
        assert_eq!(obj(&unknown, Some(Usage::InUse)).stale, Some(false));
        // a user in another pid namespace: the scan sees nobody, the probe someone
        assert_eq!(obj(&unused, Some(Usage::InUse)).stale, Some(false));
        // a user /proc names is a user, whatever the probe says
        assert_eq!(obj(&used, Some(Usage::Unused)).stale, Some(false));

        let sem_meta = std::fs::symlink_metadata(&sem).unwrap();
        let sem_obj = PosixObject::new("sem.x".into(), &sem_meta, &unknown, &accounts, Some(Usage::Unused));
        assert_eq!((sem_obj.kind, sem_obj.stale), (EntryKind::Semaphore, Some(true)));
        let dir_meta = std::fs::symlink_metadata(&dir).unwrap();
        let dir_obj = PosixObject::new("d".into(), &dir_meta, &unused, &accounts, None);
        assert_eq!((dir_obj.kind, dir_obj.stale), (EntryKind::Directory, None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
