//! Inspection with real objects and real processes: who maps or holds what,
//! stale objects, odd entries of `/dev/shm`, limits and the doctor.
//!
//! The scan of `/proc` may be incomplete on the machine that runs them (a
//! process that even root cannot read, such as a sandbox's init), but
//! whether a POSIX object is used is still exact: the tests own their
//! objects, so the write-lease probe (`inspect::probe_use`) answers.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use shmkit::inspect::{self, Check, EntryKind, ProcessScan, Status, Usage};
use shmkit::posix::{Options, PosixShm, ShmName};
use shmkit::sysv::{self, Key, SysvShm};
use shmkit::Error;

use crate::common::{is_root, posix_name, unique_key, unique_name, LiveChild, PosixGuard, SysvGuard};

/// The command name of a child process: this test binary's file name, cut to
/// the 15 bytes the kernel keeps.
fn child_comm() -> String {
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().as_bytes();
    String::from_utf8_lossy(&name[..name.len().min(15)]).into_owned()
}

fn my_pid() -> i32 {
    std::process::id() as i32
}

/// Removes a file in `/dev/shm` given by its raw name, on failure too.
struct FileGuard(PathBuf);

impl FileGuard {
    fn new(file_name: &[u8]) -> FileGuard {
        let mut path = PathBuf::from("/dev/shm");
        path.push(OsStr::from_bytes(file_name));
        FileGuard(path)
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn posix_object_mapped_by_a_child_lists_the_child() {
    let (name, _guard) = posix_name();
    drop(PosixShm::create(&name, &Options::new().size(8192)).unwrap()); // we hold nothing

    let scan = ProcessScan::new().unwrap();
    let obj = inspect::posix_object(&name, &scan).unwrap();
    assert_eq!(
        (obj.kind, obj.size, obj.allocated, obj.mode),
        (EntryKind::SharedMemory, 8192, 8192, 0o600)
    );
    assert_eq!(obj.uid, rustix::process::geteuid().as_raw());
    assert_eq!(obj.name, name.as_str());
    assert_eq!(obj.shm_name(), Some(name.clone()));
    assert!(obj.modified.is_some() && obj.changed.is_some());
    assert!(obj.users.is_empty(), "{:?}", obj.users);
    assert_eq!((obj.usage, obj.stale), (Some(Usage::Unused), Some(true)));

    let mut holder = LiveChild::spawn("posix-map-hold", &[name.as_str()]);
    assert_eq!(holder.expect_line(), "mapped 8192");
    let scan = ProcessScan::new().unwrap();
    let obj = inspect::posix_object(&name, &scan).unwrap();
    assert_eq!(obj.users.len(), 1, "{:?}", obj.users);
    let user = &obj.users.processes[0];
    assert_eq!(user.pid, holder.pid() as i32);
    assert_eq!(user.comm, child_comm());
    assert!(user.mapped && !user.holds_fd, "{user:?}"); // the child closed its descriptor
    assert_eq!((obj.usage, obj.stale), (Some(Usage::InUse), Some(false)));
    // the listing says the same
    let listed = inspect::posix_objects(&scan).unwrap();
    let same = listed.iter().find(|o| o.name == name.as_str()).unwrap();
    assert_eq!(same, &obj);

    holder.finish();
    let scan = ProcessScan::new().unwrap();
    let obj = inspect::posix_object(&name, &scan).unwrap();
    assert!(obj.users.is_empty(), "{:?}", obj.users);
    assert_eq!((obj.usage, obj.stale), (Some(Usage::Unused), Some(true)));
}

#[test]
fn posix_object_held_only_by_a_descriptor_is_used() {
    let (name, _guard) = posix_name();
    drop(PosixShm::create(&name, &Options::new().size(4096)).unwrap());
    let mut holder = LiveChild::spawn("inspect-open-hold", &[name.as_str()]);
    assert_eq!(holder.expect_line(), "open");
    // and this process too, by a handle it keeps open without mapping
    let mine = PosixShm::open(&name, &Options::new().read_only(true)).unwrap();

    let scan = ProcessScan::new().unwrap();
    let obj = inspect::posix_object(&name, &scan).unwrap();
    assert_eq!(obj.users.pids().collect::<Vec<_>>(), {
        let mut pids = vec![my_pid(), holder.pid() as i32];
        pids.sort();
        pids
    });
    for user in &obj.users.processes {
        assert!(user.holds_fd && !user.mapped, "{user:?}");
    }
    assert_eq!(obj.stale, Some(false));
    drop(mine);
    holder.finish();
}

/// What the probe and the listing say of `name` now, in one scan.
fn usage_and_stale(name: &ShmName) -> (Option<Usage>, Option<bool>) {
    let scan = ProcessScan::new().unwrap();
    let obj = inspect::posix_object(name, &scan).unwrap();
    let listed = inspect::posix_objects(&scan).unwrap();
    let same = listed.iter().find(|o| o.name == name.as_str()).unwrap();
    assert_eq!((same.usage, same.stale), (obj.usage, obj.stale));
    (obj.usage, obj.stale)
}

#[test]
fn a_mapping_whose_descriptor_is_closed_keeps_an_object_in_use_until_its_process_is_killed() {
    let (name, _guard) = posix_name();
    drop(PosixShm::create(&name, &Options::new().size(4096)).unwrap());
    let file = OsStr::new(name.file_name());
    for role in ["posix-map-hold", "inspect-map-read-only"] {
        let mut holder = LiveChild::spawn(role, &[name.as_str()]);
        assert_eq!(holder.expect_line(), "mapped 4096", "{role}");
        assert_eq!(inspect::probe_use(file, None), Usage::InUse, "{role}");
        assert_eq!(usage_and_stale(&name), (Some(Usage::InUse), Some(false)), "{role}");

        holder.kill(); // SIGKILL: no chance to unmap or remove anything
        assert_eq!(inspect::probe_use(file, None), Usage::Unused, "{role}");
        // exact, even where /proc is incomplete (this machine: PID 1 cannot be read)
        let scan = ProcessScan::new().unwrap();
        let obj = inspect::posix_object(&name, &scan).unwrap();
        assert_eq!((obj.usage, obj.stale), (Some(Usage::Unused), Some(true)), "{role}");
        if !scan.is_complete() {
            println!(
                "the scan was incomplete ({:?} unreadable); the probe answered",
                scan.unreadable()
            );
        }
    }
}

#[test]
fn the_probe_sees_this_process_and_a_replaced_name() {
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &Options::new().size(4096)).unwrap();
    let file = OsStr::new(name.file_name());
    assert_eq!(inspect::probe_use(file, None), Usage::InUse); // our own descriptor
    let meta = std::fs::metadata(format!("/dev/shm/{}", name.file_name())).unwrap();
    use std::os::unix::fs::MetadataExt;
    let old = (meta.dev(), meta.ino());
    drop(shm);
    assert_eq!(inspect::probe_use(file, Some(old)), Usage::Unused);
    shmkit::posix::remove(&name).unwrap();
    assert_eq!(
        inspect::probe_use(file, Some(old)),
        Usage::Unknown(inspect::WhyUnknown::Gone)
    );
    drop(PosixShm::create(&name, &Options::new().size(4096)).unwrap());
    assert_eq!(
        inspect::probe_use(file, Some(old)),
        Usage::Unknown(inspect::WhyUnknown::Replaced)
    );
    assert_eq!(
        inspect::remove_if_unused(file, old).unwrap(),
        inspect::Removal::Unknown(inspect::WhyUnknown::Replaced)
    );
    assert!(std::path::Path::new(&format!("/dev/shm/{}", name.file_name())).exists());
}

#[test]
fn the_probe_refuses_symbolic_links_and_other_users_objects() {
    let name = unique_name();
    let _guard = PosixGuard(name.clone());
    std::os::unix::fs::symlink("/etc/passwd", format!("/dev/shm/{}", name.file_name())).unwrap();
    assert_eq!(
        inspect::probe_use(OsStr::new(name.file_name()), None),
        Usage::Unknown(inspect::WhyUnknown::NotTmpfsFile)
    );
    if !is_root() {
        println!("skipped (in part): needs root to probe as another user");
        return;
    }
    let (theirs, _guard) = posix_name();
    drop(PosixShm::create(&theirs, &Options::new().size(1).mode(0o644)).unwrap());
    let lines = crate::common::run_child("inspect-probe-as-nobody", &[theirs.as_str()]);
    assert_eq!(lines, ["Unknown(NotPermitted)"]);
}

/// `unshare --pid --fork --mount-proc` running this test binary as `role`:
/// a process whose `/proc` shows only its own new pid namespace, as in a
/// container. `None` (and a printed reason) when that cannot be done here.
fn run_in_new_pid_namespace(role: &str, args: &[&str]) -> Option<Vec<String>> {
    if !is_root() {
        eprintln!("skipped: needs root for a new pid namespace");
        return None;
    }
    let inner = crate::common::child(role, args);
    let out = match std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: cannot run unshare: {e}");
            return None;
        }
    };
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unshare failed") {
        eprintln!(
            "skipped: no new pid namespace here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    assert!(out.status.success(), "{}", crate::common::describe(&out));
    Some(crate::common::at_lines(&String::from_utf8_lossy(&out.stdout)))
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn a_user_that_proc_cannot_show_keeps_an_object_in_use() {
    let (name, _guard) = posix_name();
    drop(PosixShm::create(&name, &Options::new().size(4096)).unwrap());
    let mut holder = LiveChild::spawn("posix-map-hold", &[name.as_str()]);
    assert_eq!(holder.expect_line(), "mapped 4096");
    // Seen from a new pid namespace, the holder does not exist: that /proc is
    // complete and shows nobody using the object. The lease still knows.
    let Some(lines) = run_in_new_pid_namespace("inspect-look-from-pidns", &[name.as_str()]) else {
        return;
    };
    assert_eq!(lines, ["complete=true users=0 usage=Some(InUse) stale=Some(false)"]);
    holder.kill();
    let lines = run_in_new_pid_namespace("inspect-look-from-pidns", &[name.as_str()]).unwrap();
    assert_eq!(lines, ["complete=true users=0 usage=Some(Unused) stale=Some(true)"]);
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn a_user_in_another_pid_namespace_keeps_an_object_in_use() {
    let (name, _guard) = posix_name();
    drop(PosixShm::create(&name, &Options::new().size(4096)).unwrap());
    if !is_root() {
        eprintln!("skipped: needs root for a new pid namespace");
        return;
    }
    // the holder runs in its own pid namespace (pid 1 there)
    let inner = crate::common::child("posix-map-hold", &[name.as_str()]);
    let mut unshare = std::process::Command::new("unshare");
    unshare
        .args(["--pid", "--fork", "--kill-child"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let mut holder = LiveChild::from_command(unshare);
    assert_eq!(holder.expect_line(), "mapped 4096");
    assert_eq!(inspect::probe_use(OsStr::new(name.file_name()), None), Usage::InUse);
    assert_eq!(usage_and_stale(&name), (Some(Usage::InUse), Some(false)));
    holder.kill(); // unshare, and with it (--kill-child) the holder
                   // the holder dies with its namespace's init; wait until the kernel has
                   // let go of its mapping (bounded: no timing assertion, a deadline)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while inspect::probe_use(OsStr::new(name.file_name()), None) == Usage::InUse {
        assert!(
            std::time::Instant::now() < deadline,
            "the holder outlived its namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(usage_and_stale(&name), (Some(Usage::Unused), Some(true)));
}

#[test]
fn an_object_made_again_under_an_old_name_has_its_own_users() {
    let (name, _guard) = posix_name();
    drop(PosixShm::create(&name, &Options::new().size(4096)).unwrap());
    let mut holder = LiveChild::spawn("posix-map-hold", &[name.as_str()]);
    assert_eq!(holder.expect_line(), "mapped 4096");
    shmkit::posix::remove(&name).unwrap(); // the child maps "/dev/shm/NAME (deleted)" now
    drop(PosixShm::create(&name, &Options::new().size(4096)).unwrap());

    let scan = ProcessScan::new().unwrap();
    let obj = inspect::posix_object(&name, &scan).unwrap();
    assert!(!obj.users.contains(holder.pid() as i32), "{:?}", obj.users);
    holder.finish();
}

#[test]
fn sysv_segment_attached_by_a_child_lists_the_child() {
    let key = unique_key();
    let shm = SysvShm::create(key, &sysv::Options::new().size(16384)).unwrap();
    let _guard = SysvGuard(shm.id());
    {
        let map = shm.attach().unwrap();
        map.fill(0, 8192, 1).unwrap(); // two pages resident
    }
    let mut holder = LiveChild::spawn("sysv-attach-hold", &[&shm.id().to_string()]);
    assert_eq!(holder.expect_line(), format!("attached pid={}", holder.pid()));

    let scan = ProcessScan::new().unwrap();
    let seg = inspect::sysv_segment(shm.id(), &scan).unwrap();
    assert_eq!((seg.key, seg.id, seg.size, seg.mode), (key, shm.id(), 16384, 0o600));
    assert_eq!(seg.nattch, 1);
    assert_eq!(seg.users.pids().collect::<Vec<_>>(), [holder.pid() as i32]);
    // the one process seen accounts for the kernel's one attachment, even
    // where the scan could not read every process
    assert!(seg.users.complete);
    assert_eq!(seg.users.processes[0].comm, child_comm());
    assert!(seg.users.processes[0].mapped && !seg.users.processes[0].holds_fd);
    assert!(!seg.stale && !seg.marked_for_removal && !seg.locked);
    assert_eq!((seg.cpid, seg.lpid), (my_pid(), holder.pid() as i32));
    assert_eq!(seg.creator_alive, Some(true)); // this process
    assert_eq!(seg.uid, rustix::process::geteuid().as_raw());
    assert_eq!(seg.rss, Some(8192));
    assert!(seg.atime.is_some() && seg.ctime.is_some());
    assert_eq!(inspect::sysv_segment_by_key(key, &scan).unwrap(), seg);
    let listed = inspect::sysv_segments(&scan).unwrap();
    assert_eq!(listed.iter().find(|s| s.id == shm.id()), Some(&seg));

    // IPC_RMID while attached: marked, key reset to 0, still used
    shm.remove().unwrap();
    let scan = ProcessScan::new().unwrap();
    let seg = inspect::sysv_segment(shm.id(), &scan).unwrap();
    assert!(seg.marked_for_removal);
    assert_eq!(seg.key, Key::PRIVATE);
    assert_eq!(seg.users.pids().collect::<Vec<_>>(), [holder.pid() as i32]);
    assert!(matches!(
        inspect::sysv_segment_by_key(key, &scan),
        Err(Error::NotFound { .. })
    ));

    // the last detach destroys it
    holder.finish();
    let scan = ProcessScan::new().unwrap();
    assert!(matches!(
        inspect::sysv_segment(shm.id(), &scan),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn sysv_segment_whose_only_user_was_killed_is_stale() {
    let key = unique_key();
    let mut creator = LiveChild::spawn("inspect-sysv-create-attach-hold", &[&key.to_string()]);
    let line = creator.expect_line();
    let id: i32 = line.strip_prefix("id=").unwrap().parse().unwrap();
    let _guard = SysvGuard(id);
    let pid = creator.pid() as i32;

    let scan = ProcessScan::new().unwrap();
    let seg = inspect::sysv_segment(id, &scan).unwrap();
    assert_eq!((seg.cpid, seg.nattch, seg.stale), (pid, 1, false));
    assert_eq!(seg.creator_alive, Some(true));
    assert_eq!(seg.users.pids().collect::<Vec<_>>(), [pid]);

    creator.kill(); // SIGKILL, and reaped
    let rmid_forced = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let scan = ProcessScan::new().unwrap();
    if rmid_forced.trim() != "0" {
        // the kernel destroys it with its last user
        assert!(matches!(inspect::sysv_segment(id, &scan), Err(Error::NotFound { .. })));
        return;
    }
    let seg = inspect::sysv_segment(id, &scan).unwrap();
    assert_eq!((seg.nattch, seg.stale, seg.cpid), (0, true, pid));
    assert!(seg.users.is_empty(), "{:?}", seg.users);
    assert_eq!(seg.creator_alive, Some(false));
    assert!(seg.dtime.is_some());
    let stale: Vec<i32> = inspect::sysv_segments(&scan)
        .unwrap()
        .into_iter()
        .filter(|s| s.stale)
        .map(|s| s.id)
        .collect();
    assert!(stale.contains(&id));
}

#[test]
fn semaphores_are_not_shared_memory_objects() {
    let name = ShmName::new(format!("/sem.{}", unique_name().file_name())).unwrap();
    let _guard = PosixGuard(name.clone());
    std::fs::write(format!("/dev/shm/{}", name.file_name()), [0u8; 32]).unwrap();

    let scan = ProcessScan::new().unwrap();
    let objects = inspect::posix_objects(&scan).unwrap();
    assert!(objects.iter().all(|o| o.name != name.as_str()));
    assert!(objects.iter().all(|o| o.kind == EntryKind::SharedMemory));
    let entries = inspect::dev_shm_entries(&scan).unwrap();
    let sem = entries.iter().find(|o| o.name == name.as_str()).unwrap();
    assert_eq!((sem.kind, sem.size), (EntryKind::Semaphore, 32));
    assert_eq!(sem.kind.as_str(), "semaphore");
    assert_eq!(inspect::posix_object(&name, &scan).unwrap().kind, EntryKind::Semaphore);
}

#[test]
fn symbolic_links_in_dev_shm_are_not_followed() {
    let name = unique_name();
    let _guard = PosixGuard(name.clone());
    let path = format!("/dev/shm/{}", name.file_name());
    std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();

    let scan = ProcessScan::new().unwrap();
    let link = inspect::posix_object(&name, &scan).unwrap();
    assert_eq!(link.kind, EntryKind::Symlink);
    assert_eq!(link.size, "/etc/passwd".len() as u64); // the link's own size
    assert_ne!(link.size, std::fs::metadata("/etc/passwd").unwrap().len());
    assert_eq!(link.stale, None);
    assert!(inspect::posix_objects(&scan)
        .unwrap()
        .iter()
        .all(|o| o.name != name.as_str()));
    let listed = inspect::dev_shm_entries(&scan).unwrap();
    assert_eq!(
        listed.iter().find(|o| o.name == name.as_str()).map(|o| o.kind),
        Some(EntryKind::Symlink)
    );
}

#[test]
fn names_that_are_not_utf8_are_listed_and_their_users_found() {
    let mut raw = unique_name().file_name().as_bytes().to_vec();
    raw.extend_from_slice(b"-\xff\xfe");
    let guard = FileGuard::new(&raw);
    std::fs::File::create(&guard.0).unwrap().set_len(4096).unwrap();
    let hex: String = guard
        .0
        .as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut holder = LiveChild::spawn("inspect-mmap-path", &[&hex]);
    assert_eq!(holder.expect_line(), "mapped");

    let scan = ProcessScan::new().unwrap();
    let entries = inspect::dev_shm_entries(&scan).unwrap();
    let obj = entries
        .iter()
        .find(|o| o.file_name.as_bytes() == raw.as_slice())
        .unwrap();
    assert_eq!(obj.kind, EntryKind::SharedMemory);
    assert!(obj.name.ends_with("-\\xff\\xfe"), "{}", obj.name);
    assert_eq!(obj.shm_name(), None);
    assert_eq!(obj.users.pids().collect::<Vec<_>>(), [holder.pid() as i32]);
    // the child's maps hold a path that is not UTF-8, and it was still read
    assert!(!scan.unreadable().contains(&(holder.pid() as i32)));
    holder.finish();
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn owners_above_65535_are_read() {
    if !is_root() {
        eprintln!("skipped: needs root to give objects away");
        return;
    }
    let shm = SysvShm::create(Key::PRIVATE, &sysv::Options::new().size(4096))
        .unwrap()
        .remove_on_drop();
    shm.set_owner(100_000, 100_001).unwrap();
    let (name, _guard) = posix_name();
    drop(PosixShm::create(&name, &Options::new().size(1)).unwrap());
    std::os::unix::fs::chown(format!("/dev/shm/{}", name.file_name()), Some(100_000), Some(100_001)).unwrap();

    let scan = ProcessScan::new().unwrap();
    let seg = inspect::sysv_segment(shm.id(), &scan).unwrap();
    assert_eq!((seg.uid, seg.gid, seg.cuid), (100_000, 100_001, 0));
    assert_eq!((seg.owner.as_deref(), seg.group.as_deref()), (None, None));
    let obj = inspect::posix_object(&name, &scan).unwrap();
    assert_eq!((obj.uid, obj.gid), (100_000, 100_001));
    // and a name for root
    let mine = SysvShm::create(Key::PRIVATE, &sysv::Options::new().size(1))
        .unwrap()
        .remove_on_drop();
    assert_eq!(
        inspect::sysv_segment(mine.id(), &scan).unwrap().owner.as_deref(),
        Some("root")
    );
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn a_scan_without_root_says_it_is_incomplete() {
    if !is_root() {
        eprintln!("skipped: needs root to run a child as nobody");
        return;
    }
    let (name, _guard) = posix_name();
    drop(PosixShm::create(&name, &Options::new().size(1).mode(0o644)).unwrap());
    let lines = crate::common::run_child("inspect-scan-as-nobody", &[name.as_str()]);
    // root's processes (this one at least) cannot be read: unknown, not stale
    assert_eq!(lines, ["complete=false unreadable=true users=0 stale=None"]);
}

#[test]
fn lookups_of_missing_objects_fail_with_not_found() {
    let scan = ProcessScan::new().unwrap();
    let name = unique_name();
    match inspect::posix_object(&name, &scan) {
        Err(Error::NotFound { target }) => assert_eq!(target.to_string(), name.as_str()),
        other => panic!("{other:?}"),
    }
    let key = unique_key();
    match inspect::sysv_segment_by_key(key, &scan) {
        Err(Error::NotFound { target }) => assert_eq!(target.to_string(), format!("key:{key}")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(inspect::sysv_segment(-1, &scan), Err(Error::NotFound { .. })));
    assert!(matches!(
        inspect::sysv_segment_by_key(Key::PRIVATE, &scan),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn the_scan_knows_this_process() {
    let scan = ProcessScan::new().unwrap();
    let me = scan.process(my_pid()).unwrap();
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(me.comm, comm.trim_end());
    assert!(!me.zombie);
    let started = me.start_time.unwrap();
    assert!(started <= std::time::SystemTime::now() + std::time::Duration::from_secs(2));
    assert!(scan.processes().count() > 1);
    assert!(!scan.unreadable().contains(&my_pid()));
}

#[test]
fn limits_are_plausible() {
    let l = inspect::limits();
    assert_eq!(l.page_size, 4096);
    assert_eq!(l.shmmin, 1);
    assert!(l.shmmni.unwrap() > 0);
    assert!(l.shmmax.unwrap() > 0);
    assert!(l.shmall.unwrap() > 0);
    assert_eq!(l.shmall_bytes(), Some(l.shmall.unwrap().saturating_mul(4096)));
    for size in &l.huge_page_sizes {
        assert!(size.is_power_of_two() && *size > l.page_size, "{size}");
    }
    assert!(l.huge_page_sizes.windows(2).all(|w| w[0] < w[1]));
    let shm = l.dev_shm.unwrap();
    assert!(shm.tmpfs);
    let total = shm.total.unwrap();
    assert!(total >= shm.free.unwrap() && shm.free.unwrap() >= shm.available.unwrap());
    assert_eq!(shm.used(), Some(total - shm.free.unwrap()));
    assert!(l.posix_objects.is_some() && l.sysv_segments.is_some());

    // the counts see new objects
    let (name, _guard) = posix_name();
    drop(PosixShm::create(&name, &Options::new().size(1)).unwrap());
    let seg = SysvShm::create(Key::PRIVATE, &sysv::Options::new().size(4097))
        .unwrap()
        .remove_on_drop();
    let l = inspect::limits();
    assert!(l.posix_objects.unwrap() >= 1);
    assert!(l.sysv_segments.unwrap() >= 1);
    assert!(l.sysv_pages.unwrap() >= 2); // 4097 bytes take two pages
    drop(seg);
}

#[test]
fn doctor_reports_every_check_once() {
    let findings = inspect::doctor();
    let ids: Vec<&str> = findings.iter().map(|f| f.check.id()).collect();
    assert_eq!(ids, Check::ALL.map(Check::id));
    assert_eq!(
        ids,
        [
            "dev_shm_mount",
            "dev_shm_space",
            "dev_shm_size",
            "cgroup_memory_limit",
            "logind_remove_ipc",
            "shm_rmid_forced",
            "sysv_segment_count",
            "sysv_total_pages",
            "stale_objects"
        ]
    );
    // facts, not prose: each finding's facts belong to its check
    for f in &findings {
        let matches = matches!(
            (f.check, &f.facts),
            (Check::DevShmMount, inspect::Facts::DevShmMount { .. })
                | (Check::DevShmSpace, inspect::Facts::DevShmSpace { .. })
                | (Check::DevShmSize, inspect::Facts::DevShmSize { .. })
                | (Check::CgroupMemoryLimit, inspect::Facts::CgroupMemoryLimit { .. })
                | (Check::LogindRemoveIpc, inspect::Facts::LogindRemoveIpc { .. })
                | (Check::ShmRmidForced, inspect::Facts::ShmRmidForced { .. })
                | (Check::SysvSegmentCount, inspect::Facts::SysvSegmentCount { .. })
                | (Check::SysvTotalPages, inspect::Facts::SysvTotalPages { .. })
                | (Check::StaleObjects, inspect::Facts::StaleObjects(Some(_)))
        );
        assert!(matches, "{f:?}");
    }
    let Some(inspect::Facts::SysvSegmentCount { segments, shmmni }) = findings.iter().map(|f| &f.facts).nth(6).cloned()
    else {
        unreachable!()
    };
    assert_eq!(shmmni, inspect::limits().shmmni);
    assert!(segments.is_some());
    // this machine has a tmpfs at /dev/shm
    assert_eq!(findings[0].status, Status::Ok, "{:?}", findings[0]);
    assert!(matches!(
        findings[0].facts,
        inspect::Facts::DevShmMount {
            examined: true,
            tmpfs: true,
            ..
        }
    ));
}
