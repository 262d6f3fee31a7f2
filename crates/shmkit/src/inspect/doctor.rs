//! Checks for what breaks shared memory in practice: facts and a verdict for
//! each, no prose. The `shmkit doctor` command turns them into sentences and
//! advice; a program gets the numbers.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::cgroup::{self, MemoryLimit};
use super::limits::{limits, DevShmSpace, Limits};
use super::logind::{self, Setting};
use super::posix::{posix_objects, DEV_SHM};
use super::procs::ProcessScan;
use super::sysv::sysv_segments;

/// `/dev/shm` smaller than this is a warning of [`Check::DevShmSize`]: too
/// small for programs that share large buffers (a container's 64 MiB
/// default is).
pub const SMALL_DEV_SHM: u64 = 256 << 20;
/// Usage above this share (in percent) of a limit is a warning.
pub const NEARLY_EXHAUSTED_PERCENT: u64 = 90;

/// One of the checks [`doctor`] makes, with a stable id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Check {
    /// `dev_shm_mount`: `/dev/shm` exists, is a tmpfs, and anyone may create
    /// objects in it (mode `1777`).
    DevShmMount,
    /// `dev_shm_space`: `/dev/shm` is not full or nearly full.
    DevShmSpace,
    /// `dev_shm_size`: `/dev/shm` is not small (under 256 MiB, such as a
    /// container's 64 MiB default).
    DevShmSize,
    /// `cgroup_memory_limit`: the cgroup memory limit that tmpfs pages count
    /// against.
    CgroupMemoryLimit,
    /// `logind_remove_ipc`: systemd-logind's `RemoveIPC=`, which removes a
    /// user's objects when the user's last session ends.
    LogindRemoveIpc,
    /// `shm_rmid_forced`: `kernel.shm_rmid_forced`, which destroys System V
    /// segments nobody has attached.
    ShmRmidForced,
    /// `sysv_segment_count`: System V segments against `SHMMNI`.
    SysvSegmentCount,
    /// `sysv_total_pages`: the pages of all System V segments against
    /// `SHMALL`.
    SysvTotalPages,
    /// `stale_objects`: objects of either kind that no process uses.
    StaleObjects,
}

impl Check {
    /// Every check, in the order [`doctor`] reports them.
    pub const ALL: [Check; 9] = [
        Check::DevShmMount,
        Check::DevShmSpace,
        Check::DevShmSize,
        Check::CgroupMemoryLimit,
        Check::LogindRemoveIpc,
        Check::ShmRmidForced,
        Check::SysvSegmentCount,
        Check::SysvTotalPages,
        Check::StaleObjects,
    ];

    /// The stable snake_case id, for scripts.
    ///
    /// ```
    /// use shmkit::inspect::Check;
    /// assert_eq!(Check::LogindRemoveIpc.id(), "logind_remove_ipc");
    /// assert_eq!(Check::StaleObjects.to_string(), "stale_objects");
    /// ```
    pub fn id(self) -> &'static str {
        match self {
            Check::DevShmMount => "dev_shm_mount",
            Check::DevShmSpace => "dev_shm_space",
            Check::DevShmSize => "dev_shm_size",
            Check::CgroupMemoryLimit => "cgroup_memory_limit",
            Check::LogindRemoveIpc => "logind_remove_ipc",
            Check::ShmRmidForced => "shm_rmid_forced",
            Check::SysvSegmentCount => "sysv_segment_count",
            Check::SysvTotalPages => "sysv_total_pages",
            Check::StaleObjects => "stale_objects",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.id())
    }
}

/// How a check came out, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// The check could not be made (a file could not be read): the facts
    /// have `None` where it is missing.
    Unknown,
    /// Works now, but is likely to break something.
    Warning,
    /// Shared memory is broken or about to fail.
    Problem,
}

impl Status {
    /// `ok`, `unknown`, `warning` or `problem`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warning => "warning",
            Status::Problem => "problem",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The result of one check: its verdict and the facts it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which check this is.
    pub check: Check,
    /// How it came out.
    pub status: Status,
    /// What was found, with the numbers.
    pub facts: Facts,
}

/// What one check found: one variant per [`Check`], with the numbers it
/// judged. `None` marks what could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Facts {
    /// [`Check::DevShmMount`].
    DevShmMount {
        /// Whether `/dev/shm` exists and `statfs` could examine it.
        examined: bool,
        /// Whether it is a tmpfs.
        tmpfs: bool,
        /// Its permission bits, special bits included (`1777` expected).
        mode: Option<u32>,
    },
    /// [`Check::DevShmSpace`].
    DevShmSpace {
        /// Whether `/dev/shm` could be examined.
        examined: bool,
        /// Its size in bytes; `None` when it has no size limit.
        total: Option<u64>,
        /// The bytes still free for users.
        available: Option<u64>,
    },
    /// [`Check::DevShmSize`].
    DevShmSize {
        /// Whether `/dev/shm` could be examined.
        examined: bool,
        /// Its size in bytes; `None` when it has no size limit.
        total: Option<u64>,
        /// The size below which it is small ([`SMALL_DEV_SHM`]).
        small_below: u64,
    },
    /// [`Check::CgroupMemoryLimit`].
    CgroupMemoryLimit {
        /// The limit in force; `None` when it cannot be read.
        limit: Option<MemoryLimit>,
        /// The size of `/dev/shm`, to compare with (`None`: no size limit,
        /// or unknown).
        dev_shm_total: Option<u64>,
    },
    /// [`Check::LogindRemoveIpc`].
    LogindRemoveIpc {
        /// The value of `RemoveIPC=` in force (systemd's default: yes).
        remove_ipc: bool,
        /// The file that sets it; `None`: not set, the default applies.
        set_in: Option<PathBuf>,
        /// Whether systemd runs here (if not, logind removes nothing).
        systemd_running: bool,
    },
    /// [`Check::ShmRmidForced`].
    ShmRmidForced {
        /// `kernel.shm_rmid_forced`; `None` when it cannot be read.
        value: Option<u64>,
    },
    /// [`Check::SysvSegmentCount`].
    SysvSegmentCount {
        /// System V segments that exist.
        segments: Option<usize>,
        /// `kernel.shmmni`, the most there may be.
        shmmni: Option<u64>,
    },
    /// [`Check::SysvTotalPages`].
    SysvTotalPages {
        /// Pages all System V segments take.
        pages: Option<u64>,
        /// `kernel.shmall`, the most they may take, in pages.
        shmall: Option<u64>,
        /// The size of a page in bytes.
        page_size: u64,
    },
    /// [`Check::StaleObjects`]; `None` when `/proc` cannot be listed.
    StaleObjects(Option<StaleCounts>),
}

/// What the stale check counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StaleCounts {
    /// POSIX objects nobody has open or mapped.
    pub posix: usize,
    /// The memory they occupy (`st_blocks * 512`).
    pub posix_bytes: u64,
    /// POSIX objects whose use could not be told: the kernel would not
    /// answer (another user's object, without `CAP_LEASE`) and `/proc` was
    /// incomplete.
    pub posix_unknown: usize,
    /// The processes whose maps or descriptors could not be read.
    pub unreadable: Vec<i32>,
    /// Whether `/proc` hides other users' processes (`hidepid`).
    pub processes_hidden: bool,
    /// System V segments with no attachment.
    pub sysv: usize,
    /// Their size in bytes.
    pub sysv_bytes: u64,
}

impl Finding {
    fn new(check: Check, status: Status, facts: Facts) -> Finding {
        Finding { check, status, facts }
    }
}

/// Checks this machine for what breaks shared memory in practice: one
/// [`Finding`] for each [`Check`], in the order of [`Check::ALL`]. A check
/// that cannot be made says so ([`Status::Unknown`]); this never fails.
///
/// # Examples
/// ```
/// use shmkit::inspect::{doctor, Facts, Status};
///
/// let findings = doctor();
/// for f in &findings {
///     println!("{:8} {}: {:?}", f.status, f.check, f.facts);
///     if let Facts::StaleObjects(Some(c)) = &f.facts {
///         println!("{} POSIX objects and {} System V segments nobody uses", c.posix, c.sysv);
///     }
/// }
/// let worst = findings.iter().map(|f| f.status).max().unwrap();
/// println!("worst: {worst}");
/// # assert_eq!(findings.len(), shmkit::inspect::Check::ALL.len());
/// ```
pub fn doctor() -> Vec<Finding> {
    let limits = limits();
    let dev_shm = limits.dev_shm.as_ref();
    let dev_shm_mode = std::fs::metadata(DEV_SHM).ok().map(|m| m.permissions().mode() & 0o7777);
    let remove_ipc = logind::remove_ipc(&logind::config_files(Path::new("/")));
    vec![
        dev_shm_mount(dev_shm, dev_shm_mode),
        dev_shm_space(dev_shm),
        dev_shm_size(dev_shm),
        cgroup_memory_limit(cgroup::memory_limit(), dev_shm.and_then(|s| s.total)),
        logind_remove_ipc(remove_ipc, logind::systemd_running()),
        shm_rmid_forced(super::read_number("/proc/sys/kernel/shm_rmid_forced")),
        sysv_segment_count(&limits),
        sysv_total_pages(&limits),
        stale_objects(stale_counts()),
    ]
}

pub(crate) fn dev_shm_mount(space: Option<&DevShmSpace>, mode: Option<u32>) -> Finding {
    let facts = Facts::DevShmMount {
        examined: space.is_some(),
        tmpfs: space.is_some_and(|s| s.tmpfs),
        mode,
    };
    let status = match space {
        None => Status::Problem,
        Some(s) if !s.tmpfs => Status::Warning,
        Some(_) if mode.is_some_and(|m| m & 0o1777 != 0o1777) => Status::Warning,
        Some(_) => Status::Ok,
    };
    Finding::new(Check::DevShmMount, status, facts)
}

pub(crate) fn dev_shm_space(space: Option<&DevShmSpace>) -> Finding {
    let facts = Facts::DevShmSpace {
        examined: space.is_some(),
        total: space.and_then(|s| s.total),
        available: space.and_then(|s| s.available),
    };
    let status = match space.map(|s| (s.total, s.available)) {
        None => Status::Unknown,
        Some((Some(total), Some(available))) => {
            if available == 0 {
                Status::Problem
            } else if percent(total.saturating_sub(available), total) > NEARLY_EXHAUSTED_PERCENT {
                Status::Warning
            } else {
                Status::Ok
            }
        }
        Some(_) => Status::Ok, // no size limit
    };
    Finding::new(Check::DevShmSpace, status, facts)
}

pub(crate) fn dev_shm_size(space: Option<&DevShmSpace>) -> Finding {
    let total = space.and_then(|s| s.total);
    let status = match (space, total) {
        (None, _) => Status::Unknown,
        (Some(_), Some(total)) if total < SMALL_DEV_SHM => Status::Warning,
        _ => Status::Ok,
    };
    let facts = Facts::DevShmSize {
        examined: space.is_some(),
        total,
        small_below: SMALL_DEV_SHM,
    };
    Finding::new(Check::DevShmSize, status, facts)
}

pub(crate) fn cgroup_memory_limit(limit: Option<MemoryLimit>, dev_shm_total: Option<u64>) -> Finding {
    let status = match &limit {
        None => Status::Unknown,
        Some(MemoryLimit::None) => Status::Ok,
        Some(MemoryLimit::Bytes { limit, .. }) if dev_shm_total.is_none_or(|total| *limit < total) => Status::Warning,
        Some(MemoryLimit::Bytes { .. }) => Status::Ok,
    };
    let facts = Facts::CgroupMemoryLimit { limit, dev_shm_total };
    Finding::new(Check::CgroupMemoryLimit, status, facts)
}

pub(crate) fn logind_remove_ipc(setting: Option<Setting>, systemd_running: bool) -> Finding {
    let (remove_ipc, set_in) = match setting {
        Some(s) => (s.remove_ipc, Some(s.file)),
        None => (true, None),
    };
    let status = if systemd_running && remove_ipc {
        Status::Warning
    } else {
        Status::Ok
    };
    let facts = Facts::LogindRemoveIpc {
        remove_ipc,
        set_in,
        systemd_running,
    };
    Finding::new(Check::LogindRemoveIpc, status, facts)
}

pub(crate) fn shm_rmid_forced(value: Option<u64>) -> Finding {
    let status = match value {
        None => Status::Unknown,
        Some(0) => Status::Ok,
        Some(_) => Status::Warning,
    };
    Finding::new(Check::ShmRmidForced, status, Facts::ShmRmidForced { value })
}

pub(crate) fn sysv_segment_count(limits: &Limits) -> Finding {
    let (segments, shmmni) = (limits.sysv_segments, limits.shmmni);
    let status = match (segments, shmmni) {
        (Some(n), Some(max)) => near_limit(n as u64, max),
        _ => Status::Unknown,
    };
    Finding::new(
        Check::SysvSegmentCount,
        status,
        Facts::SysvSegmentCount { segments, shmmni },
    )
}

pub(crate) fn sysv_total_pages(limits: &Limits) -> Finding {
    let (pages, shmall) = (limits.sysv_pages, limits.shmall);
    let status = match (pages, shmall) {
        (Some(n), Some(max)) => near_limit(n, max),
        _ => Status::Unknown,
    };
    let facts = Facts::SysvTotalPages {
        pages,
        shmall,
        page_size: limits.page_size,
    };
    Finding::new(Check::SysvTotalPages, status, facts)
}

/// At the limit: a problem; past [`NEARLY_EXHAUSTED_PERCENT`] of it: a warning.
fn near_limit(used: u64, max: u64) -> Status {
    if used >= max {
        Status::Problem
    } else if percent(used, max) > NEARLY_EXHAUSTED_PERCENT {
        Status::Warning
    } else {
        Status::Ok
    }
}

fn stale_counts() -> Option<StaleCounts> {
    let scan = ProcessScan::new().ok()?;
    let mut c = StaleCounts {
        unreadable: scan.unreadable().to_vec(),
        processes_hidden: scan.processes_hidden(),
        ..StaleCounts::default()
    };
    for o in posix_objects(&scan).unwrap_or_default() {
        match o.stale {
            Some(true) => {
                c.posix += 1;
                c.posix_bytes += o.allocated;
            }
            None => c.posix_unknown += 1,
            Some(false) => {}
        }
    }
    for s in sysv_segments(&scan).unwrap_or_default() {
        if s.stale {
            c.sysv += 1;
            c.sysv_bytes += s.size;
        }
    }
    Some(c)
}

pub(crate) fn stale_objects(counts: Option<StaleCounts>) -> Finding {
    let status = match &counts {
        None => Status::Unknown,
        Some(c) if c.posix > 0 || c.sysv > 0 => Status::Warning,
        Some(_) => Status::Ok,
    };
    Finding::new(Check::StaleObjects, status, Facts::StaleObjects(counts))
}

/// `part` as a whole percentage of `whole`, rounded down.
fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 100;
    }
    (u128::from(part) * 100 / u128::from(whole)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(total: Option<u64>, available: Option<u64>) -> DevShmSpace {
        DevShmSpace {
            tmpfs: true,
            total,
            free: available,
            available,
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(9, 10), 90);
        assert_eq!(percent(1, 0), 100);
        assert_eq!(percent(u64::MAX, u64::MAX), 100);
    }

    #[test]
    fn dev_shm_checks() {
        assert_eq!(dev_shm_mount(None, None).status, Status::Problem);
        let disk = DevShmSpace {
            tmpfs: false,
            ..space(Some(1 << 30), Some(1 << 30))
        };
        assert_eq!(dev_shm_mount(Some(&disk), Some(0o1777)).status, Status::Warning);
        let ok = space(Some(1 << 30), Some(1 << 29));
        assert_eq!(dev_shm_mount(Some(&ok), Some(0o1777)).status, Status::Ok);
        let f = dev_shm_mount(Some(&ok), Some(0o755));
        assert_eq!(f.status, Status::Warning);
        assert_eq!(
            f.facts,
            Facts::DevShmMount {
                examined: true,
                tmpfs: true,
                mode: Some(0o755)
            }
        );

        let f = dev_shm_space(Some(&ok));
        assert_eq!(f.status, Status::Ok);
        assert_eq!(
            f.facts,
            Facts::DevShmSpace {
                examined: true,
                total: Some(1 << 30),
                available: Some(1 << 29)
            }
        );
        let nearly = space(Some(1000 << 20), Some(50 << 20));
        assert_eq!(dev_shm_space(Some(&nearly)).status, Status::Warning);
        let full = space(Some(64 << 20), Some(0));
        assert_eq!(dev_shm_space(Some(&full)).status, Status::Problem);
        assert_eq!(dev_shm_space(Some(&space(None, None))).status, Status::Ok);
        assert_eq!(dev_shm_space(None).status, Status::Unknown);

        assert_eq!(dev_shm_size(Some(&full)).status, Status::Warning);
        assert_eq!(dev_shm_size(Some(&ok)).status, Status::Ok);
        assert_eq!(dev_shm_size(None).status, Status::Unknown);
    }

    #[test]
    fn cgroup_check() {
        assert_eq!(cgroup_memory_limit(None, Some(1 << 30)).status, Status::Unknown);
        assert_eq!(
            cgroup_memory_limit(Some(MemoryLimit::None), Some(1 << 30)).status,
            Status::Ok
        );
        let limit = MemoryLimit::Bytes {
            limit: 512 << 20,
            file: PathBuf::from("/sys/fs/cgroup/app/memory.max"),
            usage: Some(100 << 20),
        };
        let f = cgroup_memory_limit(Some(limit.clone()), Some(1 << 30));
        assert_eq!(f.status, Status::Warning);
        assert_eq!(
            f.facts,
            Facts::CgroupMemoryLimit {
                limit: Some(limit.clone()),
                dev_shm_total: Some(1 << 30)
            }
        );
        assert_eq!(cgroup_memory_limit(Some(limit.clone()), None).status, Status::Warning);
        assert_eq!(cgroup_memory_limit(Some(limit), Some(64 << 20)).status, Status::Ok);
    }

    #[test]
    fn logind_check() {
        let no = Setting {
            remove_ipc: false,
            file: "/etc/systemd/logind.conf".into(),
        };
        let f = logind_remove_ipc(Some(no), true);
        assert_eq!(f.status, Status::Ok);
        assert_eq!(
            f.facts,
            Facts::LogindRemoveIpc {
                remove_ipc: false,
                set_in: Some("/etc/systemd/logind.conf".into()),
                systemd_running: true
            }
        );
        assert_eq!(logind_remove_ipc(None, true).status, Status::Warning);
        assert_eq!(logind_remove_ipc(None, false).status, Status::Ok);
    }

    #[test]
    fn kernel_checks() {
        assert_eq!(shm_rmid_forced(Some(0)).status, Status::Ok);
        assert_eq!(shm_rmid_forced(Some(1)).status, Status::Warning);
        assert_eq!(shm_rmid_forced(None).status, Status::Unknown);

        let mut l = Limits {
            shmmax: Some(1 << 40),
            shmall: Some(1000),
            shmmni: Some(4096),
            shmmin: 1,
            page_size: 4096,
            huge_page_sizes: vec![],
            dev_shm: None,
            posix_objects: Some(0),
            sysv_segments: Some(10),
            sysv_pages: Some(500),
        };
        assert_eq!(sysv_segment_count(&l).status, Status::Ok);
        assert_eq!(
            sysv_segment_count(&l).facts,
            Facts::SysvSegmentCount {
                segments: Some(10),
                shmmni: Some(4096)
            }
        );
        assert_eq!(sysv_total_pages(&l).status, Status::Ok);
        l.sysv_segments = Some(4000);
        l.sysv_pages = Some(950);
        assert_eq!(sysv_segment_count(&l).status, Status::Warning);
        assert_eq!(sysv_total_pages(&l).status, Status::Warning);
        l.sysv_segments = Some(4096);
        l.sysv_pages = Some(1000);
        assert_eq!(sysv_segment_count(&l).status, Status::Problem);
        assert_eq!(sysv_total_pages(&l).status, Status::Problem);
        l.shmmni = None;
        assert_eq!(sysv_segment_count(&l).status, Status::Unknown);
    }

    #[test]
    fn stale_check() {
        assert_eq!(stale_objects(None).status, Status::Unknown);
        assert_eq!(stale_objects(Some(StaleCounts::default())).status, Status::Ok);
        let c = StaleCounts {
            posix: 2,
            posix_bytes: 8192,
            ..StaleCounts::default()
        };
        assert_eq!(stale_objects(Some(c)).status, Status::Warning);
        let unknown = StaleCounts {
            posix_unknown: 4,
            unreadable: vec![1],
            ..StaleCounts::default()
        };
        assert_eq!(stale_objects(Some(unknown)).status, Status::Ok);
    }

    #[test]
    fn doctor_reports_every_check_once() {
        let findings = doctor();
        let checks: Vec<Check> = findings.iter().map(|f| f.check).collect();
        assert_eq!(checks, Check::ALL);
    }
}
