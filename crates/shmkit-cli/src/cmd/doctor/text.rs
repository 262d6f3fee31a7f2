//! The doctor's sentences: what each finding means and what to do about it,
//! written from the facts the library returns.

use shmkit::inspect::{Facts, Finding, MemoryLimit, StaleCounts, Status};

/// One line saying what was found, with the numbers.
pub fn message(f: &Finding) -> String {
    match &f.facts {
        Facts::DevShmMount { examined: false, .. } => "/dev/shm does not exist or cannot be examined".into(),
        Facts::DevShmMount { tmpfs: false, .. } => {
            "/dev/shm is not a tmpfs: objects are kept on disk, or in a ramfs that has no size limit".into()
        }
        Facts::DevShmMount { mode: Some(mode), .. } if mode & 0o1777 != 0o1777 => {
            format!("/dev/shm is a tmpfs with mode {mode:04o}, not 1777: other users cannot create objects in it")
        }
        Facts::DevShmMount { .. } => "/dev/shm is a tmpfs".into(),
        Facts::DevShmSpace { examined: false, .. } | Facts::DevShmSize { examined: false, .. } => {
            "/dev/shm cannot be examined".into()
        }
        Facts::DevShmSpace {
            total: Some(total),
            available: Some(available),
            ..
        } => format!(
            "/dev/shm: {} of {} free ({}% used)",
            bytes(*available),
            bytes(*total),
            percent(total.saturating_sub(*available), *total)
        ),
        Facts::DevShmSpace { .. } | Facts::DevShmSize { total: None, .. } => "/dev/shm has no size limit".into(),
        Facts::DevShmSize {
            total: Some(total),
            small_below,
            ..
        } if total < small_below => format!(
            "/dev/shm is only {} (less than {}): programs that share large buffers fail or get SIGBUS",
            bytes(*total),
            bytes(*small_below)
        ),
        Facts::DevShmSize { total: Some(total), .. } => format!("/dev/shm is {}", bytes(*total)),
        Facts::CgroupMemoryLimit { limit: None, .. } => "the cgroup memory limit cannot be read".into(),
        Facts::CgroupMemoryLimit {
            limit: Some(MemoryLimit::None),
            ..
        } => "no cgroup memory limit applies".into(),
        Facts::CgroupMemoryLimit {
            limit: Some(MemoryLimit::Bytes { limit, file, usage }),
            dev_shm_total,
        } => {
            let used = usage.map(|u| format!(", {} in use", bytes(u))).unwrap_or_default();
            let at = format!("{} ({}{used})", bytes(*limit), file.display());
            if f.status == Status::Warning {
                let shm =
                    dev_shm_total.map_or_else(|| "has no size limit".to_owned(), |t| format!("holds {}", bytes(t)));
                format!("shared memory counts against a cgroup memory limit of {at}, while /dev/shm {shm}")
            } else {
                format!("cgroup memory limit {at} is larger than /dev/shm; shared memory counts against it")
            }
        }
        Facts::LogindRemoveIpc {
            remove_ipc,
            set_in,
            systemd_running,
        } => {
            let source = match set_in {
                Some(file) => format!("set in {}", file.display()),
                None => "not set: systemd's default".to_owned(),
            };
            let value = if *remove_ipc { "yes" } else { "no" };
            if !systemd_running {
                format!("systemd is not running here, so logind removes nothing (RemoveIPC={value}, {source})")
            } else if !remove_ipc {
                format!("RemoveIPC=no ({source})")
            } else {
                format!(
                    "RemoveIPC=yes ({source}): systemd-logind removes all shared memory of a regular user \
                     (uid above SYS_UID_MAX, usually 999) when that user's last session ends"
                )
            }
        }
        Facts::ShmRmidForced { value: None } => "/proc/sys/kernel/shm_rmid_forced cannot be read".into(),
        Facts::ShmRmidForced { value: Some(0) } => "kernel.shm_rmid_forced = 0: segments outlive their users".into(),
        Facts::ShmRmidForced { value: Some(v) } => format!(
            "kernel.shm_rmid_forced = {v}: a System V segment is destroyed when its last process detaches, \
             and one never attached when its creator exits"
        ),
        Facts::SysvSegmentCount {
            segments: Some(n),
            shmmni: Some(max),
        } => format!(
            "System V segments: {n} of SHMMNI = {max} ({}%)",
            percent(*n as u64, *max)
        ),
        Facts::SysvSegmentCount { .. } => "the System V segments or SHMMNI cannot be read".into(),
        Facts::SysvTotalPages {
            pages: Some(pages),
            shmall: Some(max),
            page_size,
        } => format!(
            "System V segments take {pages} pages ({}) of SHMALL = {max} pages ({}%)",
            bytes(pages.saturating_mul(*page_size)),
            percent(*pages, *max)
        ),
        Facts::SysvTotalPages { .. } => "the System V segments or SHMALL cannot be read".into(),
        Facts::StaleObjects(None) => "the processes in /proc cannot be listed".into(),
        Facts::StaleObjects(Some(c)) => stale_message(c),
        other => format!("{other:?}"),
    }
}

fn stale_message(c: &StaleCounts) -> String {
    let unknown = if c.posix_unknown > 0 {
        let proc = match c.unreadable.as_slice() {
            [] => "/proc hides other users' processes".to_owned(),
            [pid] => format!("process {pid} could not be read"),
            [pid, ..] => format!("{} processes such as {pid} could not be read", c.unreadable.len()),
        };
        format!(
            "; unknown for {}: only their owners or root may ask the kernel, and {proc}",
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
        format!("no stale objects{unknown}")
    } else {
        format!("no process uses {}{unknown}", stale.join(" and "))
    }
}

/// What to do about it; `None` when there is nothing to do.
pub fn advice(f: &Finding) -> Option<String> {
    if matches!(f.status, Status::Ok | Status::Unknown) {
        return None;
    }
    let mount = "mount a tmpfs there: `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm` \
                 (and add it to /etc/fstab)";
    let space = "remove what is no longer needed (`shmkit ls --stale`, `shmkit rm --stale`), or make /dev/shm \
                 larger: `mount -o remount,size=2G /dev/shm`, or `docker run --shm-size=2g`";
    let sysv = |raise: &str| {
        format!(
            "creating System V segments fails with ENOSPC at the limit: remove unused ones \
             (`shmkit ls --stale --sysv`), or {raise} and put it in /etc/sysctl.d/"
        )
    };
    Some(match &f.facts {
        Facts::DevShmMount { examined: false, .. } => format!("POSIX shared memory (shm_open) needs /dev/shm: {mount}"),
        Facts::DevShmMount { tmpfs: false, .. } => mount.to_owned(),
        Facts::DevShmMount { .. } => "`chmod 1777 /dev/shm`, and mount it with mode=1777".to_owned(),
        Facts::DevShmSpace { available: Some(0), .. } => {
            format!("creating or growing objects fails, and writing to sparse ones gives SIGBUS: {space}")
        }
        Facts::DevShmSpace { .. } => space.to_owned(),
        Facts::DevShmSize { .. } => "in a container, start it with a larger /dev/shm: `docker run --shm-size=1g`, \
                                     `shm_size: 1g` in Compose, or a memory-backed emptyDir at /dev/shm in \
                                     Kubernetes; elsewhere `mount -o remount,size=1G /dev/shm`"
            .to_owned(),
        Facts::CgroupMemoryLimit { .. } => "pages of /dev/shm and of System V segments are charged to the cgroup \
                                            that first touches them: filling them past the limit gets processes \
                                            OOM-killed before /dev/shm is full; raise the limit (`docker run \
                                            --memory`, `MemoryMax=`) or make /dev/shm smaller than it"
            .to_owned(),
        Facts::LogindRemoveIpc { .. } => "run services that keep shared memory as a system user, or set \
                                          RemoveIPC=no in /etc/systemd/logind.conf.d/shmkit.conf under [Login] \
                                          and restart systemd-logind"
            .to_owned(),
        Facts::ShmRmidForced { .. } => "keep one process attached while the segment is needed, or `sysctl \
                                        kernel.shm_rmid_forced=0` (and a line in /etc/sysctl.d/) if programs \
                                        expect segments to persist between runs"
            .to_owned(),
        Facts::SysvSegmentCount { .. } => sysv("`sysctl kernel.shmmni=8192`"),
        Facts::SysvTotalPages { .. } => sysv("raise `kernel.shmall` (in pages)"),
        Facts::StaleObjects(_) => "a program that crashed or forgot to remove them left them behind, and their \
                                   memory stays in use: list them with `shmkit ls --stale` and remove them with \
                                   `shmkit rm --stale` (some programs keep data between runs on purpose)"
            .to_owned(),
        _ => return None,
    })
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
    use shmkit::inspect::{Check, SMALL_DEV_SHM};

    fn finding(check: Check, status: Status, facts: Facts) -> Finding {
        Finding { check, status, facts }
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes(u64::MAX), "16 EiB");
    }

    #[test]
    fn dev_shm_sentences() {
        let mount = |examined, tmpfs, mode| Facts::DevShmMount { examined, tmpfs, mode };
        let f = finding(Check::DevShmMount, Status::Warning, mount(true, true, Some(0o755)));
        assert!(message(&f).contains("mode 0755, not 1777"), "{}", message(&f));
        assert!(advice(&f).unwrap().contains("chmod 1777"));
        let f = finding(Check::DevShmMount, Status::Problem, mount(false, false, None));
        assert!(advice(&f)
            .unwrap()
            .starts_with("POSIX shared memory (shm_open) needs /dev/shm"));
        let f = finding(Check::DevShmMount, Status::Ok, mount(true, true, Some(0o1777)));
        assert_eq!((message(&f).as_str(), advice(&f)), ("/dev/shm is a tmpfs", None));

        let space = |total, available| Facts::DevShmSpace {
            examined: true,
            total,
            available,
        };
        let f = finding(Check::DevShmSpace, Status::Ok, space(Some(1 << 30), Some(1 << 29)));
        assert_eq!(message(&f), "/dev/shm: 512 MiB of 1 GiB free (50% used)");
        let f = finding(Check::DevShmSpace, Status::Problem, space(Some(64 << 20), Some(0)));
        assert!(advice(&f).unwrap().contains("SIGBUS"));
        let f = finding(Check::DevShmSpace, Status::Ok, space(None, None));
        assert_eq!(message(&f), "/dev/shm has no size limit");

        let size = Facts::DevShmSize {
            examined: true,
            total: Some(64 << 20),
            small_below: SMALL_DEV_SHM,
        };
        let f = finding(Check::DevShmSize, Status::Warning, size);
        assert!(
            message(&f).contains("only 64 MiB (less than 256 MiB)"),
            "{}",
            message(&f)
        );
        assert!(advice(&f).unwrap().contains("--shm-size"));
    }

    #[test]
    fn cgroup_and_logind_sentences() {
        let facts = Facts::CgroupMemoryLimit {
            limit: Some(MemoryLimit::Bytes {
                limit: 512 << 20,
                file: "/sys/fs/cgroup/app/memory.max".into(),
                usage: Some(100 << 20),
            }),
            dev_shm_total: Some(1 << 30),
        };
        let f = finding(Check::CgroupMemoryLimit, Status::Warning, facts);
        assert!(
            message(&f).contains("512 MiB (/sys/fs/cgroup/app/memory.max, 100 MiB in use), while /dev/shm holds 1 GiB"),
            "{}",
            message(&f)
        );
        let logind = |remove_ipc, set_in: Option<&str>, systemd_running| Facts::LogindRemoveIpc {
            remove_ipc,
            set_in: set_in.map(Into::into),
            systemd_running,
        };
        let f = finding(
            Check::LogindRemoveIpc,
            Status::Ok,
            logind(false, Some("/etc/systemd/logind.conf"), true),
        );
        assert_eq!(message(&f), "RemoveIPC=no (set in /etc/systemd/logind.conf)");
        let f = finding(Check::LogindRemoveIpc, Status::Warning, logind(true, None, true));
        assert!(message(&f).starts_with("RemoveIPC=yes (not set: systemd's default)"));
        assert!(advice(&f).unwrap().contains("RemoveIPC=no"));
        let f = finding(Check::LogindRemoveIpc, Status::Ok, logind(true, None, false));
        assert!(message(&f).contains("not running"));
    }

    #[test]
    fn kernel_sentences() {
        let f = finding(
            Check::SysvSegmentCount,
            Status::Ok,
            Facts::SysvSegmentCount {
                segments: Some(10),
                shmmni: Some(4096),
            },
        );
        assert_eq!(message(&f), "System V segments: 10 of SHMMNI = 4096 (0%)");
        let f = finding(
            Check::SysvTotalPages,
            Status::Warning,
            Facts::SysvTotalPages {
                pages: Some(950),
                shmall: Some(1000),
                page_size: 4096,
            },
        );
        assert_eq!(
            message(&f),
            "System V segments take 950 pages (3.7 MiB) of SHMALL = 1000 pages (95%)"
        );
        assert!(advice(&f).unwrap().contains("kernel.shmall"));
        let f = finding(
            Check::ShmRmidForced,
            Status::Unknown,
            Facts::ShmRmidForced { value: None },
        );
        assert_eq!(
            (message(&f).as_str(), advice(&f)),
            ("/proc/sys/kernel/shm_rmid_forced cannot be read", None)
        );
    }

    #[test]
    fn stale_sentences() {
        let mut c = StaleCounts::default();
        c.posix = 2;
        c.posix_bytes = 8192;
        c.sysv = 1;
        c.sysv_bytes = 4096;
        let f = finding(Check::StaleObjects, Status::Warning, Facts::StaleObjects(Some(c)));
        assert_eq!(
            message(&f),
            "no process uses 2 POSIX objects (8 KiB) and 1 System V segment (4 KiB)"
        );
        assert!(advice(&f).unwrap().contains("shmkit rm --stale"));
        let mut c = StaleCounts::default();
        c.posix_unknown = 4;
        c.unreadable = vec![1];
        let f = finding(Check::StaleObjects, Status::Ok, Facts::StaleObjects(Some(c)));
        assert_eq!(
            message(&f),
            "no stale objects; unknown for 4 POSIX objects: only their owners or root may ask the kernel, \
             and process 1 could not be read"
        );
    }
}
