//! System V segments: the table of `/proc/sysvipc/shm`.
//!
//! The table lists every segment of this IPC namespace, whatever its
//! permissions (`IPC_STAT` needs read permission; this does not).

use std::time::SystemTime;

use super::accounts::Accounts;
use super::procs::{ProcessScan, Users};
use super::sysvipc::{self, Row, SHM_DEST, SHM_LOCKED};
use crate::error::{Error, Result, Target};
use crate::key::Key;
use crate::posix::system_time;

/// Where the kernel lists System V segments.
const SYSVIPC_SHM: &str = "/proc/sysvipc/shm";

/// A System V segment, as `/proc/sysvipc/shm` lists it, with the processes
/// that have it attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysvSegment {
    /// Its key; [`Key::PRIVATE`] (0) for a segment made with `IPC_PRIVATE`,
    /// and for every segment once it is marked for removal.
    pub key: Key,
    /// Its id (`shmid`).
    pub id: i32,
    /// The nine permission bits.
    pub mode: u32,
    /// Its size in bytes.
    pub size: u64,
    /// The pid of the process that created it (0 when that process is not
    /// visible in this pid namespace).
    pub cpid: i32,
    /// The pid of the last process to attach or detach it.
    pub lpid: i32,
    /// How many attachments it has, across all processes (the kernel's own
    /// count, complete whatever the scan could read).
    pub nattch: u64,
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
    /// The creator's user id.
    pub cuid: u32,
    /// The creator's group id.
    pub cgid: u32,
    /// The owner's user name, from `/etc/passwd`.
    pub owner: Option<String>,
    /// The group's name, from `/etc/group`.
    pub group: Option<String>,
    /// When it was last attached, if ever.
    pub atime: Option<SystemTime>,
    /// When it was last detached, if ever.
    pub dtime: Option<SystemTime>,
    /// When it was created, or last changed by `IPC_SET`.
    pub ctime: Option<SystemTime>,
    /// The bytes of it resident in memory (`None` on kernels before 4.x,
    /// which do not say).
    pub rss: Option<u64>,
    /// The bytes of it in swap (`None` on kernels before 4.x).
    pub swap: Option<u64>,
    /// Whether `IPC_RMID` marked it for removal: it is destroyed when the
    /// last attachment goes, and its key is 0 meanwhile.
    pub marked_for_removal: bool,
    /// Whether it is locked in memory (`SHM_LOCK`).
    pub locked: bool,
    /// Whether its creator (`cpid`) still runs: `None` when unknown (`cpid`
    /// is 0, or `/proc` hides processes). A process that has the creator's
    /// pid but started after `ctime` is taken for another process reusing
    /// the pid (best effort: `IPC_SET` moves `ctime` later).
    pub creator_alive: Option<bool>,
    /// The processes that have it attached. The list is
    /// [complete](Users::complete) when the scan read every process, or when
    /// it found as many processes as the kernel counts attachments (each
    /// process seen holds at least one).
    pub users: Users,
    /// Whether nothing has it attached (`nattch == 0`): nobody uses it, and
    /// unless removed it stays until reboot.
    pub stale: bool,
}

impl SysvSegment {
    fn new(row: &Row, scan: &ProcessScan, accounts: &Accounts) -> SysvSegment {
        let key = Key::new(row.key);
        let ctime = system_time(row.ctime, 0);
        SysvSegment {
            key,
            id: row.shmid,
            mode: row.perms & 0o777,
            size: row.size,
            cpid: row.cpid,
            lpid: row.lpid,
            nattch: row.nattch,
            uid: row.uid,
            gid: row.gid,
            cuid: row.cuid,
            cgid: row.cgid,
            owner: accounts.user(row.uid),
            group: accounts.group(row.gid),
            atime: system_time(row.atime, 0),
            dtime: system_time(row.dtime, 0),
            ctime,
            rss: row.rss,
            swap: row.swap,
            marked_for_removal: row.perms & SHM_DEST != 0,
            locked: row.perms & SHM_LOCKED != 0,
            creator_alive: scan.creator_alive(row.cpid, ctime),
            users: {
                let mut users = scan.sysv_users(row.shmid, key);
                users.complete |= users.len() as u64 >= row.nattch;
                users
            },
            stale: row.nattch == 0,
        }
    }
}

/// Every System V segment of this IPC namespace, by id.
///
/// # Errors
/// [`Error::Os`] (or [`Error::PermissionDenied`]) naming
/// `/proc/sysvipc/shm` when it cannot be read (a kernel without System V
/// IPC has none).
///
/// # Examples
/// ```
/// use shmkit::inspect::{self, ProcessScan};
/// use shmkit::sysv::{Key, Options, SysvShm};
///
/// let shm = SysvShm::create(Key::PRIVATE, &Options::new().size(4096))?.remove_on_drop();
/// let map = shm.attach()?;
/// let scan = ProcessScan::new()?;
/// let seg = inspect::sysv_segments(&scan)?.into_iter().find(|s| s.id == shm.id()).unwrap();
/// assert_eq!((seg.size, seg.nattch, seg.stale), (4096, 1, false));
/// assert_eq!(seg.users.pids().collect::<Vec<_>>(), [std::process::id() as i32]);
/// assert_eq!(seg.creator_alive, Some(true));
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn sysv_segments(scan: &ProcessScan) -> Result<Vec<SysvSegment>> {
    let accounts = Accounts::load();
    let mut all: Vec<SysvSegment> = read_table()?
        .iter()
        .map(|row| SysvSegment::new(row, scan, &accounts))
        .collect();
    all.sort_by_key(|s| s.id);
    Ok(all)
}

/// The segment with id `id`.
///
/// # Errors
/// [`Error::NotFound`] when there is none; as [`sysv_segments`] when the
/// table cannot be read.
///
/// # Examples
/// ```
/// let scan = shmkit::inspect::ProcessScan::new()?;
/// let err = shmkit::inspect::sysv_segment(i32::MAX, &scan).unwrap_err();
/// assert_eq!(err.to_string(), format!("id:{}: no such segment", i32::MAX));
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn sysv_segment(id: i32, scan: &ProcessScan) -> Result<SysvSegment> {
    let row = read_table()?.into_iter().find(|r| r.shmid == id);
    let row = row.ok_or(Error::NotFound {
        target: Target::SysvId(id),
    })?;
    Ok(SysvSegment::new(&row, scan, &Accounts::load()))
}

/// The segment with key `key`. A segment marked for removal has key 0 and
/// is found by id only.
///
/// # Errors
/// [`Error::NotFound`] when no segment has this key;
/// [`Error::InvalidArgument`] for [`Key::PRIVATE`], which names no single
/// segment; as [`sysv_segments`] when the table cannot be read.
///
/// # Examples
/// ```
/// use shmkit::sysv::Key;
/// let scan = shmkit::inspect::ProcessScan::new()?;
/// assert!(matches!(
///     shmkit::inspect::sysv_segment_by_key(Key::PRIVATE, &scan),
///     Err(shmkit::Error::InvalidArgument { .. })
/// ));
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn sysv_segment_by_key(key: Key, scan: &ProcessScan) -> Result<SysvSegment> {
    let target = Target::SysvKey(key);
    if key.is_private() {
        return Err(Error::InvalidArgument {
            target,
            reason: "IPC_PRIVATE names no single segment: look it up by id".into(),
        });
    }
    let row = read_table()?.into_iter().find(|r| r.key == key.raw());
    let row = row.ok_or(Error::NotFound { target })?;
    Ok(SysvSegment::new(&row, scan, &Accounts::load()))
}

/// The number of segments and the pages they take together (what `SHMALL`
/// limits), without a scan.
pub(crate) fn usage(page_size: u64) -> Result<(usize, u64)> {
    let rows = read_table()?;
    let pages = rows.iter().map(|r| r.size.div_ceil(page_size.max(1))).sum();
    Ok((rows.len(), pages))
}

fn read_table() -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(SYSVIPC_SHM).map_err(|e| super::io_error(SYSVIPC_SHM, "read", &e))?;
    Ok(sysvipc::parse(&text))
}
