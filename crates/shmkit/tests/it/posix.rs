//! POSIX shared memory with real objects and processes.

use shmkit::posix::{self, Access, Options, PosixShm, ShmName};
use shmkit::Error;

use crate::common::{at_lines, child, is_root, posix_name, run_child, LiveChild};

#[test]
fn create_open_and_exclusive() {
    let (name, _guard) = posix_name();
    let opts = Options::new().size(4096);
    assert!(matches!(PosixShm::open(&name, &opts), Err(Error::NotFound { .. })));

    let created = PosixShm::create(&name, &opts).unwrap();
    assert_eq!(created.size().unwrap(), 4096);
    assert_eq!(created.name(), &name);
    match PosixShm::create(&name, &opts) {
        Err(Error::AlreadyExists { target }) => assert_eq!(target.to_string(), name.as_str()),
        other => panic!("second create: {other:?}"),
    }

    created.map().unwrap().write_at(100, b"shared").unwrap();
    let opened = PosixShm::open(&name, &Options::new()).unwrap();
    assert_eq!(opened.map().unwrap().read_vec(100, 6).unwrap(), b"shared");

    // an existing object smaller than asked is an error, not a short mapping
    match PosixShm::open(&name, &Options::new().size(8192)) {
        Err(Error::SizeMismatch { actual, expected, .. }) => assert_eq!((actual, expected), (4096, 8192)),
        other => panic!("open bigger: {other:?}"),
    }
}

#[test]
fn open_or_create_reports_who_created() {
    let (name, _guard) = posix_name();
    let opts = Options::new().size(64);
    let (a, created_a) = PosixShm::open_or_create(&name, &opts).unwrap();
    let (b, created_b) = PosixShm::open_or_create(&name, &opts).unwrap();
    assert!(created_a && !created_b);
    a.map().unwrap().write_at(0, b"x").unwrap();
    assert_eq!(b.map().unwrap().read_vec(0, 1).unwrap(), b"x");
}

#[test]
fn racing_processes_create_exactly_once() {
    for _round in 0..3 {
        let (name, _guard) = posix_name();
        let children: Vec<_> = (0..8)
            .map(|_| {
                child("posix-open-or-create", &[name.as_str(), "4096"])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut creators = 0;
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", crate::common::describe(&out));
            let lines = at_lines(&String::from_utf8_lossy(&out.stdout));
            if lines == ["created=true"] {
                creators += 1;
            } else {
                assert_eq!(lines, ["created=false"]);
            }
        }
        assert_eq!(creators, 1, "exactly one process creates");
        assert_eq!(PosixShm::open(&name, &Options::new()).unwrap().size().unwrap(), 4096);
    }
}

#[test]
fn mode_is_exact_whatever_the_umask() {
    let (name, _guard) = posix_name();
    let key = crate::common::unique_key();
    let lines = run_child("create-under-umask", &[name.as_str(), &key.to_string(), "666"]);
    let sysv_id: i32 = lines[1].split(' ').nth(1).unwrap().parse().unwrap();
    let _sysv_guard = crate::common::SysvGuard(sysv_id);
    assert_eq!(lines[0], "posix 666");
    assert_eq!(lines[1], format!("sysv {sysv_id} 666"));

    // and the default is 0600
    let (name2, _guard2) = posix_name();
    let shm = PosixShm::create(&name2, &Options::new()).unwrap();
    assert_eq!(shm.metadata().unwrap().mode, 0o600);
    assert!(matches!(
        PosixShm::create(&name2, &Options::new().mode(0o4755)),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn read_only_refuses_writes() {
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &Options::new().size(4096)).unwrap();
    shm.map().unwrap().write_at(0, b"keep").unwrap();

    let ro = PosixShm::open(&name, &Options::new().read_only(true)).unwrap();
    let map = ro.map().unwrap();
    assert!(!map.is_writable());
    assert!(matches!(map.write_at(0, b"lost"), Err(Error::ReadOnly { .. })));
    assert!(matches!(map.fill(0, 1, 0), Err(Error::ReadOnly { .. })));
    assert!(matches!(map.atomic_u32(0), Err(Error::ReadOnly { .. })));
    assert!(matches!(
        ro.map_range(0, 10, Access::ReadWrite),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(ro.resize(1), Err(Error::ReadOnly { .. })));
    assert_eq!(map.read_vec(0, 4).unwrap(), b"keep");

    // Forcing a write through the raw pointer is stopped by the kernel.
    let out = child("posix-write-read-only", &[name.as_str()]).output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        crate::common::describe(&out)
    );
    assert_eq!(at_lines(&String::from_utf8_lossy(&out.stdout)), ["about to write"]);
    assert_eq!(map.read_vec(0, 4).unwrap(), b"keep");
}

#[test]
fn resize_grows_and_shrinks() {
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &Options::new().size(4096)).unwrap();
    assert_eq!(shm.metadata().unwrap().allocated, 4096, "memory reserved at creation");
    shm.resize(3 * 4096).unwrap();
    assert_eq!(shm.size().unwrap(), 3 * 4096);
    assert_eq!(shm.metadata().unwrap().allocated, 3 * 4096);
    let map = shm.map().unwrap();
    assert_eq!(map.len(), 3 * 4096);
    map.write_at(3 * 4096 - 1, b"z").unwrap();
    drop(map);
    shm.resize(100).unwrap();
    assert_eq!(shm.size().unwrap(), 100);
    assert_eq!(shm.map().unwrap().len(), 100);
}

#[test]
fn sparse_objects_reserve_nothing() {
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &Options::new().size(1 << 20).sparse(true)).unwrap();
    let meta = shm.metadata().unwrap();
    assert_eq!((meta.size, meta.allocated), (1 << 20, 0));
}

#[test]
fn ranges_are_checked() {
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &Options::new().size(10_000)).unwrap();
    shm.map().unwrap().write_at(9_000, b"tail").unwrap();
    let part = shm.map_range(9_000, 1_000, Access::ReadOnly).unwrap();
    assert_eq!(part.read_vec(0, 4).unwrap(), b"tail");
    match shm.map_range(9_000, 1_001, Access::ReadOnly) {
        Err(Error::OutOfRange { offset, len, size, .. }) => assert_eq!((offset, len, size), (9_000, 1_001, 10_000)),
        other => panic!("{other:?}"),
    }
    assert!(shm.map_range(u64::MAX, 2, Access::ReadOnly).is_err());
}

#[test]
fn empty_object_maps_to_nothing() {
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &Options::new()).unwrap();
    let map = shm.map().unwrap();
    assert!(map.is_empty());
    assert!(map.write_at(0, b"x").is_err());
}

#[test]
fn unlink_while_mapped_keeps_the_mapping() {
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &Options::new().size(4096)).unwrap();
    let map = shm.map().unwrap();
    posix::remove(&name).unwrap();
    assert!(matches!(
        PosixShm::open(&name, &Options::new()),
        Err(Error::NotFound { .. })
    ));
    map.write_at(0, b"still here\0").unwrap();
    assert_eq!(map.read_cstr(0).unwrap(), b"still here");
    // the name is free again for a new, different object
    let fresh = PosixShm::create(&name, &Options::new().size(4096)).unwrap();
    assert_eq!(fresh.map().unwrap().read_cstr(0).unwrap(), b"");
    assert!(matches!(shm.unlink(), Ok(())), "unlinks the new object of that name");
}

#[test]
fn remove_on_drop_removes_and_keep_disarms() {
    let (name, _guard) = posix_name();
    drop(PosixShm::create(&name, &Options::new()).unwrap().remove_on_drop());
    assert!(matches!(
        PosixShm::open(&name, &Options::new()),
        Err(Error::NotFound { .. })
    ));
    let kept = PosixShm::create(&name, &Options::new())
        .unwrap()
        .remove_on_drop()
        .keep();
    drop(kept);
    assert!(
        PosixShm::open(&name, &Options::new()).is_ok(),
        "a plain drop never removes"
    );
}

#[test]
fn other_process_sees_the_mapping_and_holds_it() {
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &Options::new().size(8192)).unwrap();
    let mut holder = LiveChild::spawn("posix-map-hold", &[name.as_str()]);
    assert_eq!(holder.expect_line(), "mapped 8192");
    holder.finish();
    drop(shm);
}

#[test]
fn invalid_names_fail_before_any_call() {
    for bad in ["", "noslash", "/", "/.", "/..", "/a/b", "/a\0b"] {
        assert!(
            matches!(ShmName::new(bad), Err(shmkit::posix::InvalidName { .. })),
            "{bad:?}"
        );
    }
    let long = format!("/{}", "n".repeat(255));
    assert!(matches!(ShmName::new(long), Err(shmkit::posix::InvalidName { .. })));
}

#[test]
fn missing_objects_are_not_found() {
    let name = crate::common::unique_name();
    let err = PosixShm::open(&name, &Options::new()).unwrap_err();
    assert_eq!(err.to_string(), format!("{name}: no such segment"));
    assert!(matches!(posix::remove(&name), Err(Error::NotFound { .. })));
}

#[test]
fn symlinks_and_fifos_in_dev_shm_are_refused() {
    let (name, _guard) = posix_name();
    let path = format!("/dev/shm/{}", name.file_name());
    std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
    assert!(matches!(
        PosixShm::open(&name, &Options::new().read_only(true)),
        Err(Error::InvalidArgument { .. })
    ));
    std::fs::remove_file(&path).unwrap();

    rustix::fs::mknodat(
        rustix::fs::CWD,
        path.as_str(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    // would block forever without O_NONBLOCK
    let err = PosixShm::open(&name, &Options::new().read_only(true)).unwrap_err();
    assert!(err.to_string().contains("FIFO"), "{err}");
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn permission_denied_for_another_user() {
    if !is_root() {
        eprintln!("skipped: needs root to drop a child to uid 65534");
        return;
    }
    let (name, _guard) = posix_name();
    let _shm = PosixShm::create(&name, &Options::new().size(4096)).unwrap(); // root, 0600
    let lines = run_child("posix-open-as-nobody", &[name.as_str()]);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("error PermissionDenied"), "{lines:?}");
    assert!(
        lines[0].ends_with(&format!("| {name}: permission denied (shm_open)")),
        "{lines:?}"
    );
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn squatted_names_are_refused_by_open_or_create() {
    if !is_root() {
        eprintln!("skipped: needs root to drop a child to uid 65534");
        return;
    }
    let (name, _guard) = posix_name();
    let key = crate::common::unique_key();
    let lines = run_child("squat-as-nobody", &[name.as_str(), &key.to_string()]);
    let id: i32 = lines[0].strip_prefix("sysv ").unwrap().parse().unwrap();
    let _sysv_guard = crate::common::SysvGuard(id);

    match PosixShm::open_or_create(&name, &Options::new().size(4096)) {
        Err(
            e @ Error::Untrusted {
                uid: 65534,
                mode: 0o666,
                ..
            },
        ) => {
            assert_eq!(
                e.to_string(),
                format!("{name}: refused: it belongs to another user (owner uid 65534, mode 0666); if this is expected, allow it explicitly")
            );
        }
        other => panic!("{other:?}"),
    }
    let (_shm, created) = PosixShm::open_or_create(&name, &Options::new().size(4096).allow_foreign(true)).unwrap();
    assert!(!created);

    let opts = shmkit::sysv::Options::new().size(4096);
    assert!(matches!(
        shmkit::sysv::SysvShm::open_or_create(key, &opts),
        Err(Error::Untrusted {
            uid: 65534,
            mode: 0o666,
            ..
        })
    ));
    let (seg, created) = shmkit::sysv::SysvShm::open_or_create(key, &opts.allow_foreign(true)).unwrap();
    assert_eq!((seg.id(), created), (id, false));
}

#[test]
fn wider_permissions_are_refused_by_open_or_create() {
    let (name, _guard) = posix_name();
    PosixShm::create(&name, &Options::new().size(64).mode(0o644)).unwrap();
    assert!(matches!(
        PosixShm::open_or_create(&name, &Options::new()),
        Err(Error::Untrusted {
            mode: 0o644,
            reason: "its permissions are wider than asked",
            ..
        })
    ));
    // asking for those permissions (or fewer bits than the object has) is fine
    assert!(PosixShm::open_or_create(&name, &Options::new().mode(0o644)).is_ok());
    // plain open does not judge: the caller chose this object by name
    assert!(PosixShm::open(&name, &Options::new()).is_ok());
}
