//! System V shared memory with real segments and processes.

use shmkit::sysv::{self, Key, Options, SysvShm};
use shmkit::Error;

use crate::common::{at_lines, child, is_root, run_child, unique_key, LiveChild, SysvGuard};

/// Creates a segment under a unique key, with its cleanup guard.
fn create(size: u64) -> (SysvShm, SysvGuard) {
    let shm = SysvShm::create(unique_key(), &Options::new().size(size)).unwrap();
    let guard = SysvGuard(shm.id());
    (shm, guard)
}

#[test]
fn create_open_and_exclusive() {
    let key = unique_key();
    assert!(matches!(
        SysvShm::open(key, &Options::new()),
        Err(Error::NotFound { .. })
    ));
    let shm = SysvShm::create(key, &Options::new().size(4096)).unwrap();
    let _guard = SysvGuard(shm.id());
    assert_eq!(shm.key(), key);
    match SysvShm::create(key, &Options::new().size(4096)) {
        Err(Error::AlreadyExists { target }) => assert_eq!(target.to_string(), format!("key:{key}")),
        other => panic!("second create: {other:?}"),
    }
    let opened = SysvShm::open(key, &Options::new()).unwrap();
    assert_eq!(opened.id(), shm.id());
    assert_eq!(opened.size().unwrap(), 4096);
    match SysvShm::open(key, &Options::new().size(8192)) {
        Err(Error::SizeMismatch {
            actual: 4096,
            expected: 8192,
            ..
        }) => {}
        other => panic!("open bigger: {other:?}"),
    }

    shm.attach().unwrap().write_at(10, b"via key\0").unwrap();
    assert_eq!(
        SysvShm::from_id(shm.id())
            .unwrap()
            .attach()
            .unwrap()
            .read_cstr(10)
            .unwrap(),
        b"via key"
    );
    assert_eq!(SysvShm::from_id(shm.id()).unwrap().key(), key);
}

#[test]
fn private_keys_always_create() {
    let a = SysvShm::create(Key::PRIVATE, &Options::new().size(10))
        .unwrap()
        .remove_on_drop();
    let b = SysvShm::create(Key::PRIVATE, &Options::new().size(10))
        .unwrap()
        .remove_on_drop();
    assert_ne!(a.id(), b.id());
    assert!(matches!(
        SysvShm::open(Key::PRIVATE, &Options::new()),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn racing_processes_create_exactly_once() {
    let key = unique_key();
    let children: Vec<_> = (0..8)
        .map(|_| {
            child("sysv-open-or-create", &[&key.to_string(), "4096"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut guard = None;
    let mut creators = 0;
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let lines = at_lines(&String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success(), "{}", crate::common::describe(&out));
        let (created, id) = lines[0].split_once(" id=").unwrap();
        let id: i32 = id.parse().unwrap();
        guard.get_or_insert_with(|| SysvGuard(id));
        ids.push(id);
        creators += usize::from(created == "created=true");
    }
    assert_eq!(creators, 1, "exactly one process creates");
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "all found the same segment: {ids:?}"
    );
}

#[test]
fn stat_counts_attachments_across_processes() {
    let (shm, _guard) = create(4096);
    let before = shm.stat().unwrap();
    let me = std::process::id() as i32;
    assert_eq!(
        (before.nattch, before.cpid, before.size, before.mode),
        (0, me, 4096, 0o600)
    );
    assert_eq!(before.uid, rustix::process::geteuid().as_raw());
    assert_eq!(before.cuid, before.uid);
    assert!(before.ctime.is_some() && before.atime.is_none() && before.dtime.is_none());
    assert!(!before.marked_for_removal);

    let id = shm.id().to_string();
    let mut a = LiveChild::spawn("sysv-attach-hold", &[&id]);
    a.expect_line();
    let mut b = LiveChild::spawn("sysv-attach-hold", &[&id]);
    b.expect_line();
    let mine = shm.attach_read_only().unwrap();
    let st = shm.stat().unwrap();
    assert_eq!(st.nattch, 3);
    assert_eq!(st.lpid, me, "the last to attach was this process");
    assert_eq!(st.cpid, me);
    assert!(st.atime.is_some());

    let b_pid = b.pid() as i32;
    b.finish();
    let st = shm.stat().unwrap();
    assert_eq!(st.nattch, 2);
    assert_eq!(st.lpid, b_pid, "the last to detach was the child");
    assert!(st.dtime.is_some());
    a.finish();
    drop(mine);
    assert_eq!(shm.stat().unwrap().nattch, 0);
}

#[test]
fn rmid_while_attached_keeps_it_usable() {
    let (shm, _guard) = create(4096);
    let mut holder = LiveChild::spawn("sysv-attach-hold", &[&shm.id().to_string()]);
    holder.expect_line();
    let map = shm.attach().unwrap();
    shm.remove().unwrap();

    let st = shm.stat().unwrap();
    assert!(st.marked_for_removal);
    assert_eq!(st.nattch, 2);
    assert!(st.key.is_private(), "the key is released at once");
    assert!(matches!(
        SysvShm::open(shm.key(), &Options::new()),
        Err(Error::NotFound { .. })
    ));

    // the child writes after the removal; we still see it
    holder.send("go");
    assert_eq!(holder.expect_line(), "read held");
    assert_eq!(map.read_cstr(0).unwrap(), b"held");
    holder.finish();
    drop(map);
    // last detach destroys it
    assert!(matches!(shm.stat(), Err(Error::NotFound { .. })));
    assert!(matches!(shm.remove(), Err(Error::NotFound { .. })));
}

#[test]
fn read_only_attachment_refuses_writes() {
    let (shm, _guard) = create(4096);
    let map = shm.attach_read_only().unwrap();
    assert!(matches!(map.write_at(0, b"x"), Err(Error::ReadOnly { .. })));
    let ro = SysvShm::open(shm.key(), &Options::new().read_only(true)).unwrap();
    assert!(!ro.attach().unwrap().is_writable());
}

#[test]
fn set_mode_and_owner() {
    let (shm, _guard) = create(64);
    shm.set_mode(0o640).unwrap();
    assert_eq!(shm.stat().unwrap().mode, 0o640);
    assert!(matches!(shm.set_mode(0o1000), Err(Error::InvalidArgument { .. })));
    if is_root() {
        shm.set_owner(65534, 65534).unwrap();
        let st = shm.stat().unwrap();
        assert_eq!((st.uid, st.gid), (65534, 65534));
        assert_eq!(st.cuid, 0, "the creator stays");
    }
}

#[test]
fn sizes_outside_the_limits_name_the_limit() {
    match SysvShm::create(unique_key(), &Options::new().size(0)) {
        Err(e @ Error::TooLarge { .. }) => assert!(e.to_string().contains("SHMMIN"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_segments_are_not_found() {
    let key = unique_key();
    let err = SysvShm::open(key, &Options::new()).unwrap_err();
    assert_eq!(err.to_string(), format!("key:{key}: no such segment"));
    // an id that is surely not in use
    assert!(matches!(SysvShm::from_id(i32::MAX), Err(Error::NotFound { .. })));
    assert!(matches!(sysv::remove_id(i32::MAX), Err(Error::NotFound { .. })));
}

#[test]
fn remove_on_drop_marks_for_removal() {
    let shm = SysvShm::create(unique_key(), &Options::new().size(64)).unwrap();
    let id = shm.id();
    let _guard = SysvGuard(id);
    drop(shm.clone().remove_on_drop());
    assert!(matches!(SysvShm::from_id(id), Err(Error::NotFound { .. })));
}

#[test]
fn permission_denied_for_another_user() {
    if !is_root() {
        eprintln!("skipped: needs root to drop a child to uid 65534");
        return;
    }
    let (shm, _guard) = create(4096);
    let key = shm.key();
    let lines = run_child("sysv-open-as-nobody", &[&key.to_string()]);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("error PermissionDenied"), "{lines:?}");
    assert!(
        lines[0].ends_with(&format!("| key:{key}: permission denied (shmget)")),
        "{lines:?}"
    );
}
