//! The child side of multi-process tests: this test binary re-run with
//! `SHMKIT_TEST_ROLE` set runs one role here, reports with `@` lines on
//! stdout, and panics (so exits non-zero) on failure.

use std::io::BufRead;

use shmkit::posix::{Options, PosixShm, ShmName};
use shmkit::sysv::{self, SysvShm};

use crate::common::{ARGS_ENV, ROLE_ENV};

/// Prints one report line for the parent.
macro_rules! report {
    ($($arg:tt)*) => { println!("@{}", format!($($arg)*)) };
}

/// Waits until the parent closes our stdin (or sends a line).
fn wait_for_parent() {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

/// Drops to uid/gid 65534 ("nobody") for the whole process.
pub(crate) fn become_nobody() {
    // SAFETY: these calls take no pointers (setgroups gets a null list of
    // length 0); glibc applies setgid/setuid to every thread of the process.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups");
        assert_eq!(libc::setgid(65534), 0, "setgid");
        assert_eq!(libc::setuid(65534), 0, "setuid");
    }
}

/// The entry point of every child: not a test, so it is ignored in a plain
/// run (and listed as such); `common::child` runs it with `--ignored`.
#[test]
#[ignore = "helper: the child side of the multi-process tests, run by them"]
fn main() {
    let Ok(role) = std::env::var(ROLE_ENV) else { return };
    let args: Vec<String> = std::env::var(ARGS_ENV)
        .unwrap_or_default()
        .split('\x1f')
        .map(str::to_owned)
        .collect();
    let arg = |i: usize| args[i].as_str();
    match role.as_str() {
        // open_or_create NAME SIZE: report whether this process created it.
        "posix-open-or-create" => {
            let name = ShmName::new(arg(0)).unwrap();
            let size: u64 = arg(1).parse().unwrap();
            let (_shm, created) = PosixShm::open_or_create(&name, &Options::new().size(size)).unwrap();
            report!("created={created}");
        }
        // sysv-open-or-create KEY SIZE
        "sysv-open-or-create" => {
            let key: sysv::Key = arg(0).parse().unwrap();
            let size: u64 = arg(1).parse().unwrap();
            let (shm, created) = SysvShm::open_or_create(key, &sysv::Options::new().size(size)).unwrap();
            report!("created={created} id={}", shm.id());
        }
        // posix-map-hold NAME: map it, report, hold until stdin closes.
        "posix-map-hold" => {
            let name = ShmName::new(arg(0)).unwrap();
            let map = PosixShm::open(&name, &Options::new()).unwrap().map().unwrap();
            report!("mapped {}", map.len());
            wait_for_parent();
        }
        // sysv-attach-hold ID: attach, report, hold until stdin closes, then
        // write "held" at offset 0 (works even after IPC_RMID).
        "sysv-attach-hold" => {
            let id: i32 = arg(0).parse().unwrap();
            let map = SysvShm::from_id(id).unwrap().attach().unwrap();
            report!("attached pid={}", std::process::id());
            wait_for_parent();
            map.write_at(0, b"held\0").unwrap();
            report!("read {}", String::from_utf8_lossy(&map.read_cstr(0).unwrap()));
        }
        // posix-write-read-only NAME: open read-only, map it, and write
        // through the raw pointer: the kernel must kill us with SIGSEGV.
        "posix-write-read-only" => {
            let name = ShmName::new(arg(0)).unwrap();
            let map = PosixShm::open(&name, &Options::new().read_only(true))
                .unwrap()
                .map()
                .unwrap();
            report!("about to write");
            // SAFETY: deliberately writes to a read-only mapping to show the
            // kernel refuses it; the parent expects this process to die.
            unsafe { map.as_mut_ptr().write_volatile(1) };
            report!("write went through");
        }
        // posix-open-as-nobody NAME: report what opening gives as uid 65534.
        "posix-open-as-nobody" => {
            become_nobody();
            let name = ShmName::new(arg(0)).unwrap();
            match PosixShm::open(&name, &Options::new().read_only(true)) {
                Ok(_) => report!("opened"),
                Err(e) => report!("error {e:?} | {e}"),
            }
        }
        // sysv-open-as-nobody KEY
        "sysv-open-as-nobody" => {
            become_nobody();
            let key: sysv::Key = arg(0).parse().unwrap();
            match SysvShm::open(key, &sysv::Options::new().read_only(true)) {
                Ok(shm) => match shm.attach_read_only() {
                    Ok(_) => report!("attached"),
                    Err(e) => report!("error {e:?} | {e}"),
                },
                Err(e) => report!("error {e:?} | {e}"),
            }
        }
        // squat-as-nobody NAME KEY: as uid 65534, pre-create a POSIX object
        // and a System V segment with mode 0666; report the segment's id.
        "squat-as-nobody" => {
            become_nobody();
            let name = ShmName::new(arg(0)).unwrap();
            let key: sysv::Key = arg(1).parse().unwrap();
            PosixShm::create(&name, &Options::new().size(4096).mode(0o666)).unwrap();
            let seg = SysvShm::create(key, &sysv::Options::new().size(4096).mode(0o666)).unwrap();
            report!("sysv {}", seg.id());
        }
        // create-under-umask NAME KEY MODE: set a strict umask, create one
        // object of each kind with MODE, and report the modes they got.
        "create-under-umask" => {
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
            let name = ShmName::new(arg(0)).unwrap();
            let key: sysv::Key = arg(1).parse().unwrap();
            let mode = u32::from_str_radix(arg(2), 8).unwrap();
            let posix = PosixShm::create(&name, &Options::new().size(1).mode(mode)).unwrap();
            report!("posix {:o}", posix.metadata().unwrap().mode);
            let sysv = SysvShm::create(key, &sysv::Options::new().size(1).mode(mode)).unwrap();
            report!("sysv {} {:o}", sysv.id(), sysv.stat().unwrap().mode);
        }
        // inspect-*: the roles of inspect.rs, in `inspect_role` below.
        r if r.starts_with("inspect-") => inspect_role(r, &args),
        // chan-*: the roles of channel.rs.
        r if r.starts_with("chan-") => crate::channel::child_role(r, &args),
        // core-*: the roles of channel_core.rs.
        r if r.starts_with("core-") => crate::channel_core::child_role(r, &args),
        // latest-*: the roles of latest.rs.
        r if r.starts_with("latest-") => crate::latest::child_role(r, &args),
        // m2o-*: the roles of many_to_one.rs.
        r if r.starts_with("m2o-") => crate::many_to_one::child_role(r, &args),
        // m2opoll-*: the roles of many_to_one_poll.rs.
        r if r.starts_with("m2opoll-") => crate::many_to_one_poll::child_role(r, &args),
        // svcpoll-*: the roles of service_poll.rs.
        r if r.starts_with("svcpoll-") => crate::service_poll::child_role(r, &args),
        // poll-*: the roles of poll.rs.
        r if r.starts_with("poll-") => crate::poll::child_role(r, &args),
        // memfd-*: the roles of memfd.rs.
        r if r.starts_with("memfd-") => crate::memfd::child_role(r, &args),
        // svc-*: the roles of service.rs.
        r if r.starts_with("svc-") => crate::service::child_role(r, &args),
        // shrink-*: the roles of shrink.rs.
        r if r.starts_with("shrink-") => crate::shrink::child_role(r, &args),
        // sysv-reuse-*: the roles of sysv.rs that need an IPC namespace.
        r if r.starts_with("sysv-reuse-") => crate::sysv::child_role(r, &args),
        r if r.starts_with("topic-") => crate::topic::child_role(r, &args),
        // tpoll-*: the roles of topic_poll.rs.
        r if r.starts_with("tpoll-") => crate::topic_poll::child_role(r, &args),
        other => panic!("unknown child role {other:?}"),
    }
}

/// The child roles of `inspect.rs`.
fn inspect_role(role: &str, args: &[String]) {
    use shmkit::inspect::{self, ProcessScan};

    let arg = |i: usize| args[i].as_str();
    match role {
        // inspect-open-hold NAME: open it without mapping it, report, and
        // hold the descriptor until stdin closes.
        "inspect-open-hold" => {
            let name = ShmName::new(arg(0)).unwrap();
            let shm = PosixShm::open(&name, &Options::new()).unwrap();
            report!("open");
            wait_for_parent();
            drop(shm);
        }
        // inspect-sysv-create-attach-hold KEY: create a 4096-byte segment,
        // attach it, report its id, and hold it until stdin closes (or the
        // parent kills us).
        "inspect-sysv-create-attach-hold" => {
            let key: sysv::Key = arg(0).parse().unwrap();
            let shm = SysvShm::create(key, &sysv::Options::new().size(4096)).unwrap();
            let map = shm.attach().unwrap();
            report!("id={}", shm.id());
            wait_for_parent();
            drop(map);
        }
        // inspect-mmap-path HEX: map the first 4096 bytes of the file whose
        // path is HEX (hex-encoded bytes: the path need not be UTF-8), shared,
        // report, and hold the mapping until stdin closes.
        "inspect-mmap-path" => {
            use std::os::fd::AsRawFd;
            use std::os::unix::ffi::OsStrExt;
            let hex = arg(0);
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&bytes));
            let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
            // SAFETY: a new shared mapping at an address the kernel chooses,
            // which aliases no Rust object; it is never unmapped or touched.
            let addr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            assert_ne!(addr, libc::MAP_FAILED, "mmap");
            drop(file);
            report!("mapped");
            wait_for_parent();
        }
        // inspect-map-read-only NAME: open it read-only, map it read-only,
        // close the descriptor, report, and hold the mapping until stdin closes.
        "inspect-map-read-only" => {
            let name = ShmName::new(arg(0)).unwrap();
            let map = PosixShm::open(&name, &Options::new().read_only(true))
                .unwrap()
                .map()
                .unwrap();
            report!("mapped {}", map.len());
            wait_for_parent();
        }
        // inspect-probe-as-nobody NAME: as uid 65534, report what the lease
        // probe says of NAME.
        "inspect-probe-as-nobody" => {
            become_nobody();
            let name = ShmName::new(arg(0)).unwrap();
            report!("{:?}", inspect::probe_use(std::ffi::OsStr::new(name.file_name()), None));
        }
        // inspect-look-from-pidns NAME: run in a new pid namespace with its
        // own /proc; report what the scan and the probe say of NAME.
        "inspect-look-from-pidns" => {
            let name = ShmName::new(arg(0)).unwrap();
            let scan = ProcessScan::new().unwrap();
            let obj = inspect::posix_object(&name, &scan).unwrap();
            report!(
                "complete={} users={} usage={:?} stale={:?}",
                scan.is_complete(),
                obj.users.len(),
                obj.usage,
                obj.stale
            );
        }
        // inspect-scan-as-nobody NAME: as uid 65534, scan and report what the
        // scan says of NAME.
        "inspect-scan-as-nobody" => {
            become_nobody();
            let name = ShmName::new(arg(0)).unwrap();
            let scan = ProcessScan::new().unwrap();
            let obj = inspect::posix_object(&name, &scan).unwrap();
            report!(
                "complete={} unreadable={} users={} stale={:?}",
                scan.is_complete(),
                !scan.unreadable().is_empty(),
                obj.users.len(),
                obj.stale
            );
        }
        other => panic!("unknown child role {other:?}"),
    }
}
