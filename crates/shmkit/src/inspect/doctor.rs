//! Checks for what breaks shared memory in practice, each with what to do.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::cgroup::{self, MemoryLimit};
use super::limits::{limits, DevShmSpace, Limits};
use super::logind::{self, Setting};
use super::posix::{posix_objects, DEV_SHM};
use super::procs::ProcessScan;
use super::sysv::sysv_segments;

/// `/dev/shm` smaller than this is reported as small.
const SMALL_DEV_SHM: u64 = 256 << 20;
/// Usage above this share (in percent) of a limit is a warning.
const NEARLY_EXHAUSTED: u64 = 90;

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
    /// The check could not be made (a file could not be read); the message
    /// says what is missing.
    Unknown,
    /// Works now, but is likely to break something: read the advice.
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

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which check this is.
    pub check: Check,
    /// How it came out.
    pub status: Status,
    /// One line saying what was found, with the numbers.
    pub message: String,
    /// What to do about it; `None` when there is nothing to do.
    pub advice: Option<String>,
}

impl Finding {
    fn new(check: Check, status: Status, message: impl Into<String>) -> Finding {
        Finding {
            check,
            status,
            message: message.into(),
            advice: None,
        }
    }

    fn advice(mut self, advice: impl Into<String>) -> Finding {
        self.advice = Some(advice.into());
        self
    }
}

/// Checks this machine for what breaks shared memory in practice: one
/// [`Finding`] for each [`Check`], in the order of [`Check::ALL`]. A check
/// that cannot be made says so ([`Status::Unknown`]); this never fails.
///
/// # Examples
/// ```
/// use shmkit::inspect::{doctor, Status};
///
/// let findings = doctor();
/// for f in &findings {
///     println!("{:8} {}: {}", f.status, f.check, f.message);
///     if let Some(advice) = &f.advice {
///         println!("         {advice}");
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
        cgroup_memory_limit(cgroup::memory_limit().as_ref(), dev_shm.and_then(|s| s.total)),
        logind_remove_ipc(remove_ipc.as_ref(), logind::systemd_running()),
        shm_rmid_forced(super::read_number("/proc/sys/kernel/shm_rmid_forced")),
        sysv_segment_count(&limits),
        sysv_total_pages(&limits),
        stale_objects(stale_counts()),
    ]
}

pub(crate) fn dev_shm_mount(space: Option<&DevShmSpace>, mode: Option<u32>) -> Finding {
    let check = Check::DevShmMount;
    let mount = "mount a tmpfs there: `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm` \
                 (and add it to /etc/fstab)";
    let Some(space) = space else {
        return Finding::new(check, Status::Problem, "/dev/shm does not exist or cannot be examined")
            .advice(format!("POSIX shared memory (shm_open) needs /dev/shm: {mount}"));
    };
    if !space.tmpfs {
        return Finding::new(
            check,
            Status::Warning,
            "/dev/shm is not a tmpfs: objects are kept on disk, or in a ramfs that has no size limit",
        )
        .advice(mount);
    }
    match mode {
        Some(mode) if mode & 0o1777 != 0o1777 => Finding::new(
            check,
            Status::Warning,
            format!("/dev/shm is a tmpfs with mode {mode:04o}, not 1777: other users cannot create objects in it"),
        )
        .advice("`chmod 1777 /dev/shm`, and mount it with mode=1777"),
        _ => Finding::new(check, Status::Ok, "/dev/shm is a tmpfs"),
    }
}

pub(crate) fn dev_shm_space(space: Option<&DevShmSpace>) -> Finding {
    let check = Check::DevShmSpace;
    let Some(space) = space else {
        return Finding::new(check, Status::Unknown, "/dev/shm cannot be examined");
    };
    let (Some(total), Some(available)) = (space.total, space.available) else {
        return Finding::new(check, Status::Ok, "/dev/shm has no size limit");
    };
    let used = total.saturating_sub(available);
    let pct = percent(used, total);
    let message = format!("/dev/shm: {} of {} free ({pct}% used)", bytes(available), bytes(total));
    let advice = "remove what is no longer needed (`shmkit ls --stale`, `shmkit rm --stale`), or make /dev/shm \
                  larger: `mount -o remount,size=2G /dev/shm`, or `docker run --shm-size=2g`";
    if available == 0 {
        Finding::new(check, Status::Problem, message).advice(format!(
            "creating or growing objects fails, and writing to sparse ones gives SIGBUS: {advice}"
        ))
    } else if pct > NEARLY_EXHAUSTED {
        Finding::new(check, Status::Warning, message).advice(advice)
    } else {
        Finding::new(check, Status::Ok, message)
    }
}

pub(crate) fn dev_shm_size(space: Option<&DevShmSpace>) -> Finding {
    let check = Check::DevShmSize;
    let Some(space) = space else {
        return Finding::new(check, Status::Unknown, "/dev/shm cannot be examined");
    };
    let Some(total) = space.total else {
        return Finding::new(check, Status::Ok, "/dev/shm has no size limit");
    };
    if total < SMALL_DEV_SHM {
        Finding::new(
            check,
            Status::Warning,
            format!(
                "/dev/shm is only {} (less than {}): programs that share large buffers fail or get SIGBUS",
                bytes(total),
                bytes(SMALL_DEV_SHM)
            ),
        )
        .advice(
            "in a container, start it with a larger /dev/shm: `docker run --shm-size=1g`, `shm_size: 1g` in \
             Compose, or a memory-backed emptyDir at /dev/shm in Kubernetes; elsewhere \
             `mount -o remount,size=1G /dev/shm`",
        )
    } else {
        Finding::new(check, Status::Ok, format!("/dev/shm is {}", bytes(total)))
    }
}

pub(crate) fn cgroup_memory_limit(limit: Option<&MemoryLimit>, dev_shm_total: Option<u64>) -> Finding {
    let check = Check::CgroupMemoryLimit;
    match limit {
        None => Finding::new(check, Status::Unknown, "the cgroup memory limit cannot be read"),
        Some(MemoryLimit::None) => Finding::new(check, Status::Ok, "no cgroup memory limit applies"),
        Some(MemoryLimit::Bytes { limit, file, usage }) => {
            let used = usage.map(|u| format!(", {} in use", bytes(u))).unwrap_or_default();
            let at = format!("{} ({}{used})", bytes(*limit), file.display());
            if dev_shm_total.is_none_or(|total| *limit < total) {
                let shm =
                    dev_shm_total.map_or_else(|| "has no size limit".to_owned(), |t| format!("holds {}", bytes(t)));
                Finding::new(
                    check,
                    Status::Warning,
                    format!("shared memory counts against a cgroup memory limit of {at}, while /dev/shm {shm}"),
                )
                .advice(
                    "pages of /dev/shm and of System V segments are charged to the cgroup that first touches \
                     them: filling them past the limit gets processes OOM-killed before /dev/shm is full; raise \
                     the limit (`docker run --memory`, `MemoryMax=`) or make /dev/shm smaller than it",
                )
            } else {
                Finding::new(
                    check,
                    Status::Ok,
                    format!("cgroup memory limit {at} is larger than /dev/shm; shared memory counts against it"),
                )
            }
        }
    }
}

pub(crate) fn logind_remove_ipc(setting: Option<&Setting>, systemd_running: bool) -> Finding {
    let check = Check::LogindRemoveIpc;
    let (remove, source) = match setting {
        Some(s) => (s.remove_ipc, format!("set in {}", s.file.display())),
        None => (true, "not set: systemd's default".to_owned()),
    };
    let value = if remove { "yes" } else { "no" };
    if !systemd_running {
        return Finding::new(
            check,
            Status::Ok,
            format!("systemd is not running here, so logind removes nothing (RemoveIPC={value}, {source})"),
        );
    }
    if !remove {
        return Finding::new(check, Status::Ok, format!("RemoveIPC=no ({source})"));
    }
    Finding::new(
        check,
        Status::Warning,
        format!(
            "RemoveIPC=yes ({source}): systemd-logind removes all shared memory of a regular user \
             (uid above SYS_UID_MAX, usually 999) when that user's last session ends"
        ),
    )
    .advice(
        "run services that keep shared memory as a system user, or set RemoveIPC=no in \
         /etc/systemd/logind.conf.d/shmkit.conf under [Login] and restart systemd-logind",
    )
}

pub(crate) fn shm_rmid_forced(value: Option<u64>) -> Finding {
    let check = Check::ShmRmidForced;
    match value {
        None => Finding::new(
            check,
            Status::Unknown,
            "/proc/sys/kernel/shm_rmid_forced cannot be read",
        ),
        Some(0) => Finding::new(
            check,
            Status::Ok,
            "kernel.shm_rmid_forced = 0: segments outlive their users",
        ),
        Some(v) => Finding::new(
            check,
            Status::Warning,
            format!(
                "kernel.shm_rmid_forced = {v}: a System V segment is destroyed when its last process detaches, \
                 and one never attached when its creator exits"
            ),
        )
        .advice(
            "keep one process attached while the segment is needed, or `sysctl kernel.shm_rmid_forced=0` \
             (and a line in /etc/sysctl.d/) if programs expect segments to persist between runs",
        ),
    }
}

pub(crate) fn sysv_segment_count(limits: &Limits) -> Finding {
    let check = Check::SysvSegmentCount;
    let (Some(n), Some(max)) = (limits.sysv_segments, limits.shmmni) else {
        return Finding::new(check, Status::Unknown, "the System V segments or SHMMNI cannot be read");
    };
    let message = format!("System V segments: {n} of SHMMNI = {max} ({}%)", percent(n as u64, max));
    near_limit(check, n as u64, max, message, "`sysctl kernel.shmmni=8192`")
}

pub(crate) fn sysv_total_pages(limits: &Limits) -> Finding {
    let check = Check::SysvTotalPages;
    let (Some(pages), Some(max)) = (limits.sysv_pages, limits.shmall) else {
        return Finding::new(check, Status::Unknown, "the System V segments or SHMALL cannot be read");
    };
    let message = format!(
        "System V segments take {pages} pages ({}) of SHMALL = {max} pages ({}%)",
        bytes(pages.saturating_mul(limits.page_size)),
        percent(pages, max)
    );
    near_limit(check, pages, max, message, "raise `kernel.shmall` (in pages)")
}

fn near_limit(check: Check, used: u64, max: u64, message: String, raise: &str) -> Finding {
    let advice = format!(
        "creating System V segments fails with ENOSPC at the limit: remove unused ones (`shmkit ls --stale --sysv`), \
         or {raise} and put it in /etc/sysctl.d/"
    );
    if used >= max {
        Finding::new(check, Status::Problem, message).advice(advice)
    } else if percent(used, max) > NEARLY_EXHAUSTED {
        Finding::new(check, Status::Warning, message).advice(advice)
    } else {
        Finding::new(check, Status::Ok, message)
    }
}

/// What the stale check counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StaleCounts {
    /// POSIX objects nobody maps or holds, and their allocated bytes.
    pub posix: usize,
    pub posix_bytes: u64,
    /// POSIX objects nobody was seen using, while the scan was incomplete.
    pub posix_unknown: usize,
    /// The processes that could not be read: how many, and the first one's
    /// pid and command name.
    pub unreadable: usize,
    pub first_unreadable: Option<(i32, String)>,
    /// System V segments with no attachment, and their sizes.
    pub sysv: usize,
    pub sysv_bytes: u64,
}

fn stale_counts() -> Option<StaleCounts> {
    let scan = ProcessScan::new().ok()?;
    let mut c = StaleCounts {
        unreadable: scan.unreadable().len(),
        first_unreadable: scan
            .unreadable()
            .first()
            .map(|&pid| (pid, scan.process(pid).map(|p| p.comm.clone()).unwrap_or_default())),
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
    let check = Check::StaleObjects;
    let Some(c) = counts else {
        return Finding::new(check, Status::Unknown, "the processes in /proc cannot be listed");
    };
    let unknown = if c.posix_unknown > 0 {
        let who = match &c.first_unreadable {
            Some((pid, comm)) if c.unreadable > 1 => format!("{} processes such as {pid} ({comm})", c.unreadable),
            Some((pid, comm)) => format!("process {pid} ({comm})"),
            None => "processes that /proc hides".to_owned(),
        };
        format!(
            "; unknown for {}, since {who} could not be read",
            plural(c.posix_unknown, "POSIX object")
        )
    } else {
        String::new()
    };
    let mut stale = Vec::new();
    if c.posix > 0 {
        stale.push(format!(
            "{} ({})",
            plural(c.posix, "POSIX object"),
            bytes(c.posix_bytes)
        ));
    }
    if c.sysv > 0 {
        stale.push(format!(
            "{} ({})",
            plural(c.sysv, "System V segment"),
            bytes(c.sysv_bytes)
        ));
    }
    if stale.is_empty() {
        return Finding::new(check, Status::Ok, format!("no stale objects{unknown}"));
    }
    Finding::new(
        check,
        Status::Warning,
        format!("no process uses {}{unknown}", stale.join(" and ")),
    )
    .advice(
        "a program that crashed or forgot to remove them left them behind, and their memory stays in use: \
         list them with `shmkit ls --stale` and remove them with `shmkit rm --stale` (some programs keep data \
         between runs on purpose)",
    )
}

/// `1 object`, `2 objects`.
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `part` as a whole percentage of `whole`, rounded down.
fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 100;
    }
    (u128::from(part) * 100 / u128::from(whole)) as u64
}

/// Bytes in the largest binary unit that keeps the number at least 1:
/// `64 MiB`, `1.5 GiB`, `512 B`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn space(total: Option<u64>, available: Option<u64>) -> DevShmSpace {
        DevShmSpace {
            tmpfs: true,
            total,
            free: available,
            available,
        }
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes(u64::MAX), "16 EiB");
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
        assert!(f.message.contains("0755"), "{}", f.message);

        assert_eq!(
            dev_shm_space(Some(&ok)).message,
            "/dev/shm: 512 MiB of 1 GiB free (50% used)"
        );
        assert_eq!(dev_shm_space(Some(&ok)).status, Status::Ok);
        let nearly = space(Some(1000 << 20), Some(50 << 20));
        assert_eq!(dev_shm_space(Some(&nearly)).status, Status::Warning);
        let full = space(Some(64 << 20), Some(0));
        assert_eq!(dev_shm_space(Some(&full)).status, Status::Problem);
        assert!(dev_shm_space(Some(&full)).advice.unwrap().contains("SIGBUS"));
        assert_eq!(dev_shm_space(Some(&space(None, None))).status, Status::Ok);
        assert_eq!(dev_shm_space(None).status, Status::Unknown);

        let small = dev_shm_size(Some(&full));
        assert_eq!(small.status, Status::Warning);
        assert!(small.message.contains("only 64 MiB"), "{}", small.message);
        assert!(small.advice.unwrap().contains("--shm-size"));
        assert_eq!(dev_shm_size(Some(&ok)).status, Status::Ok);
    }

    #[test]
    fn cgroup_check() {
        assert_eq!(cgroup_memory_limit(None, Some(1 << 30)).status, Status::Unknown);
        assert_eq!(
            cgroup_memory_limit(Some(&MemoryLimit::None), Some(1 << 30)).status,
            Status::Ok
        );
        let limit = MemoryLimit::Bytes {
            limit: 512 << 20,
            file: PathBuf::from("/sys/fs/cgroup/app/memory.max"),
            usage: Some(100 << 20),
        };
        let f = cgroup_memory_limit(Some(&limit), Some(1 << 30));
        assert_eq!(f.status, Status::Warning);
        assert!(
            f.message
                .contains("512 MiB (/sys/fs/cgroup/app/memory.max, 100 MiB in use), while /dev/shm holds 1 GiB"),
            "{}",
            f.message
        );
        assert_eq!(cgroup_memory_limit(Some(&limit), None).status, Status::Warning);
        assert_eq!(cgroup_memory_limit(Some(&limit), Some(64 << 20)).status, Status::Ok);
    }

    #[test]
    fn logind_check() {
        let no = Setting {
            remove_ipc: false,
            file: "/etc/systemd/logind.conf".into(),
        };
        let f = logind_remove_ipc(Some(&no), true);
        assert_eq!(
            (f.status, f.message.as_str()),
            (Status::Ok, "RemoveIPC=no (set in /etc/systemd/logind.conf)")
        );
        let unset = logind_remove_ipc(None, true);
        assert_eq!(unset.status, Status::Warning);
        assert!(
            unset.message.starts_with("RemoveIPC=yes (not set: systemd's default)"),
            "{}",
            unset.message
        );
        let off = logind_remove_ipc(None, false);
        assert_eq!(off.status, Status::Ok);
        assert!(off.message.contains("not running"), "{}", off.message);
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
            sysv_segment_count(&l).message,
            "System V segments: 10 of SHMMNI = 4096 (0%)"
        );
        assert_eq!(sysv_total_pages(&l).status, Status::Ok);
        l.sysv_segments = Some(4000);
        l.sysv_pages = Some(950);
        assert_eq!(sysv_segment_count(&l).status, Status::Warning);
        assert_eq!(sysv_total_pages(&l).status, Status::Warning);
        assert_eq!(
            sysv_total_pages(&l).message,
            "System V segments take 950 pages (3.7 MiB) of SHMALL = 1000 pages (95%)"
        );
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
            sysv: 1,
            sysv_bytes: 4096,
            ..StaleCounts::default()
        };
        let f = stale_objects(Some(c));
        assert_eq!(f.status, Status::Warning);
        assert_eq!(
            f.message,
            "no process uses 2 POSIX objects (8 KiB) and 1 System V segment (4 KiB)"
        );
        let one = StaleCounts {
            sysv: 1,
            sysv_bytes: 5000,
            ..StaleCounts::default()
        };
        assert_eq!(
            stale_objects(Some(one)).message,
            "no process uses 1 System V segment (4.9 KiB)"
        );
        let unknown = StaleCounts {
            posix_unknown: 4,
            unreadable: 1,
            first_unreadable: Some((1, "init".into())),
            ..StaleCounts::default()
        };
        assert_eq!(
            stale_objects(Some(unknown)).message,
            "no stale objects; unknown for 4 POSIX objects, since process 1 (init) could not be read"
        );
    }

    #[test]
    fn doctor_reports_every_check_once() {
        let findings = doctor();
        let checks: Vec<Check> = findings.iter().map(|f| f.check).collect();
        assert_eq!(checks, Check::ALL);
        for f in &findings {
            assert!(!f.message.is_empty());
            if f.status > Status::Unknown {
                assert!(f.advice.is_some(), "{f:?}");
            }
        }
    }
}
