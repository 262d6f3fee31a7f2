//! The process scan: one pass over `/proc` that records which processes map
//! or hold which shared-memory objects.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use procfs::process::{FDTarget, Process};
use procfs::ProcError;

use super::maps::{self, Mapped};
use super::posix::DEV_SHM;
use crate::error::{Errno, Error, Result, Target};
use crate::key::Key;

/// How much later than a System V segment's `ctime` a process with the
/// creator's pid may have started and still be taken for the creator:
/// process start times are computed from the boot time, which is known to
/// the second only.
const START_TIME_SLACK: Duration = Duration::from_secs(2);

/// A process seen by the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its process id.
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`: at most 15 bytes, set by the
    /// program; any bytes that are not UTF-8 replaced). Empty when it could
    /// not be read.
    pub comm: String,
    /// When it started, if known.
    pub start_time: Option<SystemTime>,
    /// Whether it has exited and waits to be reaped by its parent (a zombie
    /// maps and holds nothing).
    pub zombie: bool,
}

/// A process that uses a shared-memory object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its process id.
    pub pid: i32,
    /// Its command name, as in [`ProcessInfo::comm`].
    pub comm: String,
    /// Whether it has the object mapped (System V: attached).
    pub mapped: bool,
    /// Whether it holds an open file descriptor to it (POSIX objects only: a
    /// System V segment has no descriptor).
    pub holds_fd: bool,
}

/// The processes that use an object, as far as the scan could tell.
///
/// ```
/// let users = shmkit::inspect::Users::default();
/// assert!(users.is_empty() && !users.complete); // nothing known
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Users {
    /// The processes seen using it, by pid.
    pub processes: Vec<User>,
    /// Whether the list is complete: `false` when the maps or descriptors of
    /// some processes could not be read (see [`ProcessScan::is_complete`]),
    /// so that more processes may use the object than are listed.
    pub complete: bool,
}

impl Users {
    /// Whether no process was seen using the object (which means unused only
    /// when [`complete`](Users::complete)).
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    /// How many processes were seen using it.
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    /// Their process ids, in increasing order.
    pub fn pids(&self) -> impl Iterator<Item = i32> + '_ {
        self.processes.iter().map(|u| u.pid)
    }

    /// Whether the process `pid` was seen using it.
    pub fn contains(&self, pid: i32) -> bool {
        self.processes.iter().any(|u| u.pid == pid)
    }
}

/// One process's use of one object, before the names are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Use {
    pid: i32,
    mapped: bool,
    holds_fd: bool,
}

/// A System V attachment: the use and the key in the mapping's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SysvUse {
    usage: Use,
    key: i32,
}

/// Which processes map or hold which shared-memory objects: one pass over
/// every `/proc/PID`, reading `stat`, `maps` and `fd`.
///
/// Take one scan and pass it to [`posix_objects`](super::posix_objects),
/// [`sysv_segments`](super::sysv_segments) and the lookups: the scan is the
/// expensive part (a few milliseconds for a few hundred processes).
/// Processes that exit during the scan are left out. Processes whose maps or
/// descriptors cannot be read (other users' processes, without root) are
/// listed by [`unreadable`](ProcessScan::unreadable), and make the scan and
/// every [`Users`] list incomplete.
///
/// Limits: only processes visible in this `/proc` (this pid namespace) are
/// seen, and System V attachments count only for processes in this IPC
/// namespace (another namespace's segment ids mean other segments).
///
/// # Examples
/// ```
/// let scan = shmkit::inspect::ProcessScan::new()?;
/// let me = scan.process(std::process::id() as i32).unwrap();
/// assert!(!me.comm.is_empty());
/// println!("complete: {}, unreadable: {:?}", scan.is_complete(), scan.unreadable());
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProcessScan {
    processes: BTreeMap<i32, ProcessInfo>,
    /// POSIX objects by (device, inode).
    posix: HashMap<(u64, u64), Vec<Use>>,
    /// System V attachments by segment id.
    sysv: HashMap<i32, Vec<SysvUse>>,
    unreadable: Vec<i32>,
    hidden: bool,
    clock: Clock,
}

/// What reading a process's file gave when it did not give data.
enum Failure {
    /// The process is gone: leave it out.
    Vanished,
    /// It exists but cannot be read: the scan is incomplete.
    Unreadable,
}

impl From<ProcError> for Failure {
    fn from(e: ProcError) -> Failure {
        match e {
            ProcError::NotFound(_) => Failure::Vanished,
            _ => Failure::Unreadable,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        match Errno::from_io_error(&e) {
            Some(Errno::SRCH | Errno::NOENT) => Failure::Vanished,
            _ => Failure::Unreadable,
        }
    }
}

/// What the scan needs to know before reading processes.
struct Context {
    /// The device of the file system `/dev/shm` is on.
    shm_dev: Option<u64>,
    /// Prefixes of file descriptor targets that can be in `/dev/shm`.
    shm_prefixes: Vec<Vec<u8>>,
    /// The inode of this process's IPC namespace.
    ipc_ns: Option<u64>,
    clock: Clock,
}

/// Turns process start times (clock ticks after boot) into times.
#[derive(Debug, Clone, Copy)]
struct Clock {
    boot_time: Option<u64>,
    ticks_per_second: u64,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            boot_time: procfs::boot_time_secs().ok(),
            ticks_per_second: procfs::ticks_per_second().max(1),
        }
    }

    fn start_time(self, ticks: u64) -> Option<SystemTime> {
        let after_boot = Duration::from_millis(ticks.saturating_mul(1000) / self.ticks_per_second);
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(self.boot_time?) + after_boot)
    }

    /// What `/proc/PID/stat` says of a process.
    fn info(self, pid: i32, stat: procfs::process::Stat) -> ProcessInfo {
        ProcessInfo {
            pid,
            comm: stat.comm,
            start_time: self.start_time(stat.starttime),
            zombie: matches!(stat.state, 'Z' | 'X'),
        }
    }
}

/// What one process uses.
struct Found {
    pid: i32,
    posix: HashMap<(u64, u64), Use>,
    sysv: HashMap<i32, SysvUse>,
    unreadable: bool,
}

impl ProcessScan {
    /// Reads every process in `/proc`.
    ///
    /// # Errors
    /// [`Error::Os`] or [`Error::PermissionDenied`] (naming `/proc`) only when
    /// `/proc` itself cannot be listed; problems with single processes make
    /// the scan incomplete instead.
    pub fn new() -> Result<ProcessScan> {
        let ctx = Context::new();
        let all = procfs::process::all_processes().map_err(|e| Error::Os {
            target: Target::Path("/proc".into()),
            op: "read_dir",
            source: proc_errno(&e),
        })?;
        let mut scan = ProcessScan {
            processes: BTreeMap::new(),
            posix: HashMap::new(),
            sysv: HashMap::new(),
            unreadable: Vec::new(),
            hidden: proc_hides_processes(),
            clock: ctx.clock,
        };
        let mut buf = Vec::new();
        for process in all {
            // An error here is a process that exited since /proc was listed.
            let Ok(process) = process else { continue };
            let _ = scan.add(&ctx, &process, &mut buf);
        }
        scan.unreadable.sort_unstable();
        Ok(scan)
    }

    /// Reads one process; `Err` when it vanished (it is then left out).
    fn add(&mut self, ctx: &Context, process: &Process, buf: &mut Vec<u8>) -> std::result::Result<(), Failure> {
        let pid = process.pid;
        let info = match process.stat() {
            Ok(stat) => ctx.clock.info(pid, stat),
            Err(e) => match Failure::from(e) {
                Failure::Vanished => return Err(Failure::Vanished),
                Failure::Unreadable => ProcessInfo {
                    pid,
                    comm: String::new(),
                    start_time: None,
                    zombie: false,
                },
            },
        };
        let mut found = Found {
            pid,
            posix: HashMap::new(),
            sysv: HashMap::new(),
            unreadable: false,
        };
        match read_maps(process, buf) {
            Ok(()) => found.add_maps(ctx, buf),
            Err(Failure::Vanished) => return Err(Failure::Vanished),
            Err(Failure::Unreadable) => found.unreadable = true,
        }
        match found.add_fds(ctx, process) {
            Ok(()) => {}
            Err(Failure::Vanished) => return Err(Failure::Vanished),
            Err(Failure::Unreadable) => found.unreadable = true,
        }
        // Segment ids are per IPC namespace: another namespace's id 5 is not ours.
        if !found.sysv.is_empty() && ctx.ipc_ns.is_some() && ns_inode(&format!("/proc/{pid}/ns/ipc")) != ctx.ipc_ns {
            found.sysv.clear();
        }
        if found.unreadable && !info.zombie {
            self.unreadable.push(pid);
        }
        for (k, u) in found.posix {
            self.posix.entry(k).or_default().push(u);
        }
        for (id, u) in found.sysv {
            self.sysv.entry(id).or_default().push(u);
        }
        self.processes.insert(pid, info);
        Ok(())
    }

    /// Whether every process's maps and descriptors could be read, so that
    /// every [`Users`] list is complete. Usually `true` for root only.
    pub fn is_complete(&self) -> bool {
        self.unreadable.is_empty() && !self.hidden
    }

    /// The processes whose maps or descriptors could not be read (usually
    /// for lack of permission), in increasing order.
    pub fn unreadable(&self) -> &[i32] {
        &self.unreadable
    }

    /// Whether `/proc` is mounted with `hidepid`, so that other users'
    /// processes may not be listed at all (this also makes the scan
    /// incomplete; root sees them all).
    pub fn processes_hidden(&self) -> bool {
        self.hidden
    }

    /// The process `pid`, if it was running at the time of the scan.
    pub fn process(&self, pid: i32) -> Option<&ProcessInfo> {
        self.processes.get(&pid)
    }

    /// Every process seen, by pid.
    pub fn processes(&self) -> impl Iterator<Item = &ProcessInfo> + '_ {
        self.processes.values()
    }

    /// The users of the file with device `dev` and inode `ino` in `/dev/shm`.
    pub(crate) fn posix_users(&self, dev: u64, ino: u64) -> Users {
        let uses = self.posix.get(&(dev, ino)).map(Vec::as_slice).unwrap_or_default();
        self.users(uses.iter().copied())
    }

    /// The processes that have segment `shmid` attached. `key` is the
    /// segment's key now: a mapping named after another key is not this
    /// segment, unless the key was reset to 0 by `IPC_RMID`.
    pub(crate) fn sysv_users(&self, shmid: i32, key: Key) -> Users {
        let uses = self.sysv.get(&shmid).map(Vec::as_slice).unwrap_or_default();
        self.users(
            uses.iter()
                .filter(|u| key.is_private() || u.key == key.raw())
                .map(|u| u.usage),
        )
    }

    fn users(&self, uses: impl Iterator<Item = Use>) -> Users {
        let mut processes: Vec<User> = uses
            .map(|u| User {
                pid: u.pid,
                comm: self.processes.get(&u.pid).map(|p| p.comm.clone()).unwrap_or_default(),
                mapped: u.mapped,
                holds_fd: u.holds_fd,
            })
            .collect();
        processes.sort_by_key(|u| u.pid);
        Users {
            processes,
            complete: self.is_complete(),
        }
    }

    /// Whether the process that created a System V segment (`cpid`) still
    /// runs: `None` when unknown (pid 0: the creator is in another pid
    /// namespace; or `/proc` hides processes). A process with that pid that
    /// started after the segment's `ctime` reuses the pid: the creator is gone.
    pub(crate) fn creator_alive(&self, cpid: i32, ctime: Option<SystemTime>) -> Option<bool> {
        if cpid <= 0 {
            return None;
        }
        // A segment read after the scan may have a creator that started since.
        let Some(p) = self.processes.get(&cpid).cloned().or_else(|| self.look_up(cpid)) else {
            return if self.hidden { None } else { Some(false) };
        };
        if p.zombie {
            return Some(false);
        }
        match (p.start_time, ctime) {
            (Some(start), Some(ctime)) if start > ctime + START_TIME_SLACK => Some(false),
            _ => Some(true),
        }
    }

    /// Reads one process that the scan did not see.
    fn look_up(&self, pid: i32) -> Option<ProcessInfo> {
        let stat = Process::new(pid).and_then(|p| p.stat()).ok()?;
        Some(self.clock.info(pid, stat))
    }
}

impl Context {
    fn new() -> Context {
        let shm_dev = std::fs::metadata(DEV_SHM).ok().map(|m| m.dev());
        let mut shm_prefixes = vec![format!("{DEV_SHM}/").into_bytes()];
        if let Ok(real) = std::fs::canonicalize(DEV_SHM) {
            let mut p = real.into_os_string().into_vec();
            p.push(b'/');
            if !shm_prefixes.contains(&p) {
                shm_prefixes.push(p);
            }
        }
        Context {
            shm_dev,
            shm_prefixes,
            ipc_ns: ns_inode("/proc/self/ns/ipc"),
            clock: Clock::new(),
        }
    }
}

impl Found {
    fn add_maps(&mut self, ctx: &Context, maps: &[u8]) {
        for line in maps.split(|&b| b == b'\n') {
            match maps::parse_line(line) {
                Some(Mapped::Sysv { key, shmid }) => {
                    let u = self.sysv.entry(shmid).or_insert(SysvUse {
                        usage: Use::new(self.pid),
                        key,
                    });
                    u.usage.mapped = true;
                }
                Some(Mapped::File { dev, ino, .. }) if Some(dev) == ctx.shm_dev => {
                    self.posix.entry((dev, ino)).or_insert(Use::new(self.pid)).mapped = true;
                }
                _ => {}
            }
        }
    }

    fn add_fds(&mut self, ctx: &Context, process: &Process) -> std::result::Result<(), Failure> {
        let Some(shm_dev) = ctx.shm_dev else { return Ok(()) };
        // Entries that fail are descriptors closed meanwhile.
        for fd in process.fd()?.flatten() {
            let FDTarget::Path(path) = &fd.target else { continue };
            let bytes = path.as_os_str().as_bytes();
            if !ctx.shm_prefixes.iter().any(|p| bytes.starts_with(p)) {
                continue;
            }
            // The target itself (the link is followed), for its device and inode.
            let Ok(meta) = std::fs::metadata(format!("/proc/{}/fd/{}", process.pid, fd.fd)) else {
                continue;
            };
            if meta.dev() == shm_dev {
                self.posix
                    .entry((meta.dev(), meta.ino()))
                    .or_insert(Use::new(self.pid))
                    .holds_fd = true;
            }
        }
        Ok(())
    }
}

impl Use {
    fn new(pid: i32) -> Use {
        Use {
            pid,
            mapped: false,
            holds_fd: false,
        }
    }
}

/// Reads `/proc/PID/maps` into `buf`.
fn read_maps(process: &Process, buf: &mut Vec<u8>) -> std::result::Result<(), Failure> {
    buf.clear();
    let mut file = process.open_relative("maps")?;
    file.read_to_end(buf)?;
    Ok(())
}

/// The inode of a namespace link such as `/proc/self/ns/ipc`.
fn ns_inode(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Whether `/proc` hides other users' processes from this one (`hidepid`,
/// and not root).
fn proc_hides_processes() -> bool {
    if rustix::process::geteuid().is_root() {
        return false;
    }
    let Ok(mounts) = Process::myself().and_then(|p| p.mountinfo()) else {
        return false;
    };
    mounts.into_iter().any(|m| {
        m.fs_type == "proc"
            && m.mount_point == Path::new("/proc")
            && matches!(m.super_options.get("hidepid"), Some(Some(v)) if v != "0" && v != "off")
    })
}

fn proc_errno(e: &ProcError) -> Errno {
    match e {
        ProcError::PermissionDenied(_) => Errno::ACCESS,
        ProcError::NotFound(_) => Errno::NOENT,
        ProcError::Io(io, _) => Errno::from_io_error(io).unwrap_or(Errno::IO),
        _ => Errno::IO,
    }
}

#[cfg(test)]
impl ProcessScan {
    /// A scan of made-up processes: `(pid, comm, start)` each, the POSIX
    /// objects (device, inode) each maps, and the pids that were unreadable.
    pub(crate) fn fake(
        processes: &[(i32, &str, Option<SystemTime>)],
        posix: &[((u64, u64), i32)],
        unreadable: &[i32],
    ) -> ProcessScan {
        let mut scan = ProcessScan {
            processes: BTreeMap::new(),
            posix: HashMap::new(),
            sysv: HashMap::new(),
            unreadable: unreadable.to_vec(),
            hidden: false,
            clock: Clock {
                boot_time: None,
                ticks_per_second: 100,
            },
        };
        for &(pid, comm, start_time) in processes {
            let zombie = false;
            let comm = comm.to_owned();
            scan.processes.insert(
                pid,
                ProcessInfo {
                    pid,
                    comm,
                    start_time,
                    zombie,
                },
            );
        }
        for &(k, pid) in posix {
            let mut u = Use::new(pid);
            u.mapped = true;
            scan.posix.entry(k).or_default().push(u);
        }
        scan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn users_carry_names_and_completeness() {
        let scan = ProcessScan::fake(&[(20, "b", None), (10, "a", None)], &[((1, 2), 20), ((1, 2), 10)], &[]);
        let users = scan.posix_users(1, 2);
        assert!(users.complete);
        assert_eq!(users.pids().collect::<Vec<_>>(), [10, 20]);
        assert_eq!(users.processes[0].comm, "a");
        assert!(users.processes[0].mapped && !users.processes[0].holds_fd);
        assert!(scan.posix_users(1, 3).is_empty());

        let partial = ProcessScan::fake(&[(1, "init", None)], &[], &[1]);
        assert!(!partial.is_complete());
        assert_eq!(partial.unreadable(), [1]);
        assert!(!partial.posix_users(1, 2).complete);
    }

    #[test]
    fn creator_alive_sees_reused_pids() {
        let scan = ProcessScan::fake(
            &[(100, "old", at(1000)), (200, "new", at(5000)), (300, "?", None)],
            &[],
            &[],
        );
        assert_eq!(scan.creator_alive(0, at(2000)), None); // other pid namespace
        assert_eq!(scan.creator_alive(100, at(2000)), Some(true));
        assert_eq!(scan.creator_alive(100, at(999)), Some(true)); // within the slack
        assert_eq!(scan.creator_alive(200, at(2000)), Some(false)); // pid reused
        assert_eq!(scan.creator_alive(300, at(2000)), Some(true)); // start unknown
        assert_eq!(scan.creator_alive(i32::MAX - 1, at(2000)), Some(false)); // gone (above any pid_max)
    }

    #[test]
    fn sysv_users_match_the_key() {
        let mut scan = ProcessScan::fake(&[(5, "x", None)], &[], &[]);
        let usage = Use {
            pid: 5,
            mapped: true,
            holds_fd: false,
        };
        scan.sysv.insert(7, vec![SysvUse { usage, key: 0x1234 }]);
        assert_eq!(scan.sysv_users(7, Key::new(0x1234)).pids().collect::<Vec<_>>(), [5]);
        // removed: the key is 0 now, the mapping keeps the old one
        assert_eq!(scan.sysv_users(7, Key::PRIVATE).len(), 1);
        // a mapping named after another key is not this segment
        assert!(scan.sysv_users(7, Key::new(0x9999)).is_empty());
    }
}
