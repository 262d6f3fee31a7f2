//! System V shared memory with real segments and processes.

use shmkit::sysv::{self, Key, Mapping, Options, SysvShm};
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
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
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

#[test]
fn attach_after_rmid_while_attached_elsewhere_is_the_same_segment() {
    let (shm, _guard) = create(4096);
    let by_id = SysvShm::from_id(shm.id()).unwrap();
    let mut holder = LiveChild::spawn("sysv-attach-hold", &[&shm.id().to_string()]);
    holder.expect_line();
    shm.remove().unwrap();
    assert!(shm.stat().unwrap().marked_for_removal);

    // marked for removal, its key now IPC_PRIVATE, but still the segment
    // both handles were made for: attaching works, at its full size
    let map = shm.attach().unwrap();
    assert_eq!(map.len(), 4096);
    assert_eq!(by_id.attach_read_only().unwrap().len(), 4096);
    holder.send("go");
    assert_eq!(holder.expect_line(), "read held");
    assert_eq!(map.read_cstr(0).unwrap(), b"held", "the child's segment");
    holder.finish();
    drop(map);

    // the last detach destroyed it: now it is gone for both handles
    let err = shm.attach().unwrap_err();
    assert_eq!(err.to_string(), format!("key:{}: no such segment", shm.key()));
    let err = by_id.attach().unwrap_err();
    assert_eq!(err.to_string(), format!("id:{}: no such segment", shm.id()));
}

/// A segment removed after its handles were made, and a new one given the
/// very same id before they attach: attaching must not map the new one.
///
/// Ids are `seq << 15 | index`, and the kernel moves `seq` on each time the
/// index wraps round, so an id comes back only after millions of segments, not
/// something to loop for on a shared machine. Instead the child enters a new
/// IPC namespace of its own and writes the id it wants next into
/// `/proc/sys/kernel/shm_next_id` (CONFIG_CHECKPOINT_RESTORE, the knob CRIU
/// uses to restore ids): the next segment gets exactly that id, every time,
/// and nobody else's segments can take it or be disturbed. Everything the
/// child creates lives in its namespace, which the kernel destroys, segments
/// and all, when the child exits, even if it fails.
#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn attach_refuses_a_segment_that_got_the_id_since() {
    let (k1, k2) = (unique_key(), unique_key());
    let lines = run_child("sysv-reuse-id", &[&k1.to_string(), &k2.to_string()]);
    if let Some(reason) = lines.first().and_then(|l| l.strip_prefix("skipped: ")) {
        eprintln!("skipped: {reason}");
        return;
    }
    let get = |what: &str| -> String {
        let prefix = format!("{what}: ");
        let line = lines.iter().find(|l| l.starts_with(&prefix));
        line.unwrap_or_else(|| panic!("no {what:?} in {lines:?}"))[prefix.len()..].to_owned()
    };
    let id = get("id");
    // the new segment (key k2, three times the size) has the old one's id
    assert_eq!(get("reused"), "true", "{lines:?}");
    let gone_key = format!("NotFound | key:{k1}: no such segment");
    let gone_id = format!("NotFound | id:{id}: no such segment");
    assert_eq!(get("created attach"), gone_key);
    assert_eq!(get("created attach_read_only"), gone_key);
    assert_eq!(get("opened attach"), gone_key);
    assert_eq!(get("by id attach"), gone_id);
    // what the refused attaches attached was detached again
    assert_eq!(get("new nattch"), "0");
    // a handle made after the reuse names the new segment, and maps all of it
    assert_eq!(get("new by id attach"), "mapped 12288, reads B");

    // again, the id now going to a segment under the first key with the
    // second one's size: each differs from one of the old in one field only
    assert_eq!(get("reused again"), "true", "{lines:?}");
    assert_eq!(get("same key attach"), gone_key, "the size tells");
    assert_eq!(
        get("same size attach"),
        format!("NotFound | key:{k2}: no such segment"),
        "the key tells"
    );
    assert_eq!(get("third by key attach"), "mapped 12288, reads C");

    // and once more, to a segment with the same key and size that another
    // process created
    assert_eq!(get("reused by another process"), "true", "{lines:?}");
    assert_eq!(get("other creator attach"), gone_key, "the creator tells");
    assert_eq!(get("fourth by key attach"), "mapped 12288, reads D");
}

/// The child roles of this file (see `child.rs`).
pub fn child_role(role: &str, args: &[String]) {
    let report = |line: String| println!("@{line}");
    match role {
        // sysv-reuse-id K1 K2: in a new IPC namespace, make handles to a
        // segment, replace it by another with the same id, and report what
        // attaching through each handle gives.
        "sysv-reuse-id" => {
            let k1: Key = args[0].parse().unwrap();
            let k2: Key = args[1].parse().unwrap();
            // SAFETY: unshare takes no pointers; CLONE_NEWIPC moves only this
            // thread, which does all of this role, into a new IPC namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWIPC) } != 0 {
                let err = std::io::Error::last_os_error();
                return report(format!("skipped: unshare(CLONE_NEWIPC) failed: {err}"));
            }
            const NEXT_ID: &str = "/proc/sys/kernel/shm_next_id";
            let next_id = |id: i32| std::fs::write(NEXT_ID, id.to_string());
            // a probe, harmless in a namespace of our own: the first segment
            // gets id 0
            if let Err(e) = next_id(0) {
                return report(format!(
                    "skipped: cannot write {NEXT_ID} (needs CONFIG_CHECKPOINT_RESTORE and CAP_CHECKPOINT_RESTORE): {e}"
                ));
            }
            let outcome = |r: shmkit::Result<Mapping>, letter: u8| match r {
                Ok(map) => {
                    let mut byte = [0];
                    map.read_at(0, &mut byte).unwrap();
                    let reads = if byte[0] == letter { letter as char } else { '?' };
                    format!("mapped {}, reads {reads}", map.len())
                }
                Err(e) => {
                    let debug = format!("{e:?}");
                    let variant = debug.split([' ', '{']).next().unwrap_or_default();
                    format!("{variant} | {e}")
                }
            };

            let a = SysvShm::create(k1, &Options::new().size(4096)).unwrap();
            let _ga = SysvGuard(a.id());
            a.attach().unwrap().write_at(0, b"A").unwrap();
            let opened = SysvShm::open(k1, &Options::new()).unwrap();
            let by_id = SysvShm::from_id(a.id()).unwrap();
            report(format!("id: {}", a.id()));

            a.remove().unwrap();
            next_id(a.id()).unwrap();
            let b = SysvShm::create(k2, &Options::new().size(3 * 4096)).unwrap();
            let _gb = SysvGuard(b.id());
            b.attach().unwrap().write_at(0, b"B").unwrap();
            report(format!("reused: {}", b.id() == a.id()));
            report(format!("created attach: {}", outcome(a.attach(), b'A')));
            report(format!(
                "created attach_read_only: {}",
                outcome(a.attach_read_only(), b'A')
            ));
            report(format!("opened attach: {}", outcome(opened.attach(), b'A')));
            report(format!("by id attach: {}", outcome(by_id.attach(), b'A')));
            report(format!("new nattch: {}", b.stat().unwrap().nattch));
            let new_by_id = SysvShm::from_id(a.id()).unwrap();
            report(format!("new by id attach: {}", outcome(new_by_id.attach(), b'B')));

            b.remove().unwrap();
            next_id(a.id()).unwrap();
            let c = SysvShm::create(k1, &Options::new().size(3 * 4096)).unwrap();
            let _gc = SysvGuard(c.id());
            c.attach().unwrap().write_at(0, b"C").unwrap();
            report(format!("reused again: {}", c.id() == a.id()));
            report(format!("same key attach: {}", outcome(opened.attach(), b'A')));
            report(format!("same size attach: {}", outcome(b.attach(), b'B')));
            let third = SysvShm::open(k1, &Options::new()).unwrap();
            report(format!("third by key attach: {}", outcome(third.attach(), b'C')));

            c.remove().unwrap();
            // the harness runs this role on a thread of its own, and only
            // this thread moved: /proc/self/ns is the main thread's
            let ns = std::fs::read_link("/proc/thread-self/ns/ipc").unwrap();
            let id = a.id().to_string();
            let ns = ns.to_str().unwrap();
            let lines = crate::common::run_child("sysv-reuse-create", &[&args[0], "12288", &id, "D", ns]);
            report(format!(
                "reused by another process: {}",
                lines == [format!("created {id}")]
            ));
            report(format!("other creator attach: {}", outcome(third.attach(), b'C')));
            let fourth = SysvShm::open(k1, &Options::new()).unwrap();
            let _gd = SysvGuard(fourth.id());
            report(format!("fourth by key attach: {}", outcome(fourth.attach(), b'D')));
        }
        // sysv-reuse-create KEY SIZE ID LETTER NS: in the IPC namespace NS
        // (inherited from the parent, checked), create a segment with id ID,
        // write LETTER at its start, and leave it there.
        "sysv-reuse-create" => {
            let key: Key = args[0].parse().unwrap();
            let size: u64 = args[1].parse().unwrap();
            let ns = std::fs::read_link("/proc/thread-self/ns/ipc").unwrap();
            // never set the next id of a namespace others use
            assert_eq!(ns.to_str(), Some(args[4].as_str()), "not in the parent's IPC namespace");
            std::fs::write("/proc/sys/kernel/shm_next_id", &args[2]).unwrap();
            let shm = SysvShm::create(key, &Options::new().size(size)).unwrap();
            shm.attach().unwrap().write_at(0, args[3].as_bytes()).unwrap();
            report(format!("created {}", shm.id()));
        }
        other => panic!("unknown child role {other:?}"),
    }
}
