//! The shrink attack (hardening item 3): another process `ftruncate`s an
//! object this process has mapped. Touching the lost pages would raise
//! `SIGBUS`; through shmkit's API it must be an `Error::Truncated` instead,
//! for plain segments and for channels, while a `SIGBUS` that is not about
//! a shmkit mapping must still kill the process.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use shmkit::channel::{self, Receiver};
use shmkit::map::Access;
use shmkit::posix::{Options, PosixShm, ShmName};
use shmkit::Error;

use crate::common::{at_lines, child, describe, posix_name, run_child, LiveChild};

const PAGE: usize = 4096;

/// Child roles for these tests; `child::main` hands roles starting with
/// `shrink-` here.
pub fn child_role(role: &str, args: &[String]) {
    let report = |line: &str| println!("@{line}");
    match role {
        // shrink-to NAME BYTES: the attacker. Opens the object read-write
        // (as any process with write permission can) and ftruncates it.
        "shrink-to" => {
            let name = ShmName::new(args[0].as_str()).unwrap();
            let bytes: u64 = args[1].parse().unwrap();
            let shm = PosixShm::open(&name, &Options::new()).unwrap();
            rustix::fs::ftruncate(&shm, bytes).unwrap();
            report(&format!("shrunk to {}", shm.size().unwrap()));
        }
        // shrink-foreign-sigbus NAME HOW: makes a shmkit mapping (so
        // shmkit's SIGBUS handler is installed), then touches a page past
        // the end of a memfd mapped by hand, or (HOW = "kill") is sent
        // SIGBUS by kill(2). That SIGBUS is not shmkit's business: the
        // process must die of it, as it would without shmkit. HOW starting
        // with "dfl-" first sets the default action, so shmkit's handler has
        // none to pass the signal on to (as in a C program); otherwise the
        // previous handler is the Rust runtime's.
        "shrink-foreign-sigbus" => {
            let name = ShmName::new(args[0].as_str()).unwrap();
            let how = args[1].as_str();
            // SAFETY: no memory involved; a hang ends with SIGALRM, which
            // the parent reports as the wrong signal.
            unsafe { libc::alarm(20) };
            if how == "mine-touch" {
                // SAFETY: installs `mine` (async-signal-safe: write(2) and
                // sigaction only) with a valid, otherwise all-zero struct.
                unsafe {
                    let mut act: libc::sigaction = std::mem::zeroed();
                    act.sa_sigaction = mine as *const () as usize;
                    act.sa_flags = libc::SA_SIGINFO;
                    assert_eq!(libc::sigaction(libc::SIGBUS, &act, std::ptr::null_mut()), 0);
                }
            }
            if let Some(rest) = how.strip_prefix("dfl-") {
                // SAFETY: sets the default action for SIGBUS; the struct is
                // a valid all-zero sigaction (SIG_DFL, empty mask).
                unsafe {
                    let dfl: libc::sigaction = std::mem::zeroed();
                    assert_eq!(libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut()), 0);
                }
                assert!(rest == "touch" || rest == "kill");
            }
            let shm = PosixShm::open(&name, &Options::new()).unwrap();
            let map = shm.map().unwrap();
            map.read_vec(0, 1).unwrap();
            let fd = rustix::fs::memfd_create("shmkit-test-foreign", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
            rustix::fs::ftruncate(&fd, 2 * PAGE as u64).unwrap();
            // SAFETY: a new shared mapping at an address the kernel picks,
            // aliasing nothing; it is only touched through volatile reads.
            let raw = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    2 * PAGE,
                    rustix::mm::ProtFlags::READ,
                    rustix::mm::MapFlags::SHARED,
                    &fd,
                    0,
                )
            }
            .unwrap();
            rustix::fs::ftruncate(&fd, 0).unwrap();
            if how.ends_with("kill") {
                report("killing");
                // SAFETY: sends a signal to this process; no memory involved.
                unsafe { libc::kill(libc::getpid(), libc::SIGBUS) };
                std::thread::sleep(Duration::from_millis(100));
                report("survived");
                return;
            }
            report("touching");
            // SAFETY: the address is inside the mapping made above; the read
            // faults (SIGBUS) because the memfd is now empty, which is what
            // this role is for.
            let byte = unsafe { raw.cast::<u8>().add(PAGE).read_volatile() };
            report(&format!("survived, read {byte}"));
        }
        // shrink-after-kill NAME: maps NAME, is sent SIGBUS by kill(2) (the
        // Rust runtime's handler swallows it and resets the action), then
        // shrinks NAME itself and reads past the end: shmkit's handler must
        // still be in place, so the read is an error, not a crash.
        "shrink-after-kill" => {
            let name = ShmName::new(args[0].as_str()).unwrap();
            // SAFETY: no memory involved.
            unsafe { libc::alarm(20) };
            let shm = PosixShm::open(&name, &Options::new()).unwrap();
            let map = shm.map().unwrap();
            map.read_vec(0, 1).unwrap();
            // SAFETY: sends a signal to this process; no memory involved.
            unsafe { libc::kill(libc::getpid(), libc::SIGBUS) };
            report("killed");
            rustix::fs::ftruncate(&shm, 0).unwrap();
            match map.read_vec(PAGE, 1) {
                Err(Error::Truncated { .. }) => report("truncated"),
                other => report(&format!("unexpected {other:?}")),
            }
        }
        other => panic!("unknown child role {other:?}"),
    }
}

/// A program's own SIGBUS handler, installed before shmkit's: says it ran,
/// then lets the fault kill the process.
extern "C" fn mine(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut std::ffi::c_void) {
    let line = b"@mine\n";
    // SAFETY: write(2) of a static buffer and sigaction with a valid
    // all-zero struct (SIG_DFL) are async-signal-safe.
    unsafe {
        libc::write(1, line.as_ptr().cast(), line.len());
        let dfl: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
    }
}

/// Shrinks `name` to `bytes` from another process.
fn shrink(name: &ShmName, bytes: u64) {
    assert_eq!(
        run_child("shrink-to", &[name.as_str(), &bytes.to_string()]),
        [format!("shrunk to {bytes}")]
    );
}

#[test]
fn a_segment_shrunk_by_another_process_gives_errors_not_sigbus() {
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &Options::new().size(4 * PAGE as u64)).unwrap();
    let map = shm.map().unwrap();
    map.write_at(0, b"first page").unwrap();
    map.write_at(3 * PAGE, b"last page").unwrap();
    let ro = shm.map_range(0, 4 * PAGE, Access::ReadOnly).unwrap();
    assert_eq!(ro.read_vec(3 * PAGE, 9).unwrap(), b"last page");

    shrink(&name, PAGE as u64);

    // The first page still exists: reading it is fine, and nothing faulted.
    assert_eq!(map.read_vec(0, 10).unwrap(), b"first page");
    assert!(map.is_intact());
    // The last page is gone: an error, not a SIGBUS.
    let err = map.read_vec(3 * PAGE, 9).unwrap_err();
    assert!(matches!(&err, Error::Truncated { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!("{name}: the object shrank")),
        "{err}"
    );
    // From then on the whole mapping is lost, and says so on every access.
    assert!(!map.is_intact());
    assert!(matches!(map.read_vec(0, 10), Err(Error::Truncated { .. })));
    assert!(matches!(map.write_at(0, b"lost"), Err(Error::Truncated { .. })));
    assert!(matches!(map.fill(0, 10, 0), Err(Error::Truncated { .. })));
    assert!(matches!(map.read_cstr(0), Err(Error::Truncated { .. })));
    assert!(matches!(
        map.load_u64(0, std::sync::atomic::Ordering::Acquire),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(map.atomic_u32(0), Err(Error::Truncated { .. })));
    // The read-only mapping of the same object is lost only once it faults.
    assert!(ro.is_intact());
    assert!(matches!(ro.read_vec(2 * PAGE, 1), Err(Error::Truncated { .. })));
    assert!(!ro.is_intact());

    // The writes above went to the zero pages, not to the object; a new
    // mapping sees the object as it is.
    let fresh = shm.map().unwrap();
    assert_eq!(fresh.len(), PAGE);
    assert_eq!(fresh.read_vec(0, 10).unwrap(), b"first page");
    assert!(fresh.is_intact());
    drop((map, ro));
    // Mappings are released and made again as usual afterwards.
    shm.resize(4 * PAGE as u64).unwrap();
    let again = shm.map().unwrap();
    again.write_at(3 * PAGE, b"x").unwrap();
    assert!(again.is_intact());
}

#[test]
fn threads_faulting_together_all_get_the_error() {
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &Options::new().size(64 * PAGE as u64)).unwrap();
    let map = shm.map().unwrap();
    // every page holds its number, so a read of the zero pages cannot pass
    for page in 0..64 {
        map.fill(page * PAGE, PAGE, page as u8 + 1).unwrap();
    }
    let go = std::sync::Barrier::new(3);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|t| {
                let (map, go) = (&map, &go);
                s.spawn(move || {
                    go.wait();
                    let mut buf = vec![0u8; PAGE];
                    let end = Instant::now() + Duration::from_secs(20);
                    let mut rounds = 0u64;
                    loop {
                        // walk every page, so the shrink lands mid-walk
                        for page in 0..64 {
                            if let Err(e) = map.read_at(page * PAGE, &mut buf) {
                                return (e, rounds);
                            }
                            let want = page as u8 + 1;
                            assert!(
                                buf.iter().all(|&b| b == want),
                                "thread {t}: page {page} read as Ok but wrong"
                            );
                        }
                        rounds += 1;
                        assert!(Instant::now() < end, "thread {t}: the shrink was never noticed");
                    }
                })
            })
            .collect();
        go.wait();
        std::thread::sleep(Duration::from_millis(20));
        shrink(&name, 0);
        for r in readers {
            let (err, rounds) = r.join().unwrap();
            assert!(matches!(err, Error::Truncated { .. }), "{err:?}");
            eprintln!("a reader noticed after {rounds} full rounds");
        }
    });
}

#[test]
fn a_sigbus_elsewhere_still_kills_the_process() {
    let (name, _guard) = posix_name();
    let _shm = PosixShm::create(&name, &Options::new().size(PAGE as u64)).unwrap();
    // A fault in memory that is not shmkit's, passed on to the Rust
    // runtime's handler or to the default action.
    for how in ["touch", "dfl-touch"] {
        let out = child("shrink-foreign-sigbus", &[name.as_str(), how]).output().unwrap();
        assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{how}: {}", describe(&out));
        assert_eq!(at_lines(&String::from_utf8_lossy(&out.stdout)), ["touching"], "{how}");
    }
    // The program's own handler, installed before shmkit's, gets it.
    let out = child("shrink-foreign-sigbus", &[name.as_str(), "mine-touch"])
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{}", describe(&out));
    assert_eq!(at_lines(&String::from_utf8_lossy(&out.stdout)), ["touching", "mine"]);
    // A SIGBUS sent with kill(2), where the default action was in place.
    // (The Rust runtime's own handler swallows one sent signal, with or
    // without shmkit, so that case is not ours to test.)
    let out = child("shrink-foreign-sigbus", &[name.as_str(), "dfl-kill"])
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{}", describe(&out));
    assert_eq!(at_lines(&String::from_utf8_lossy(&out.stdout)), ["killing"]);
}

#[test]
fn a_sigbus_sent_by_kill_does_not_disarm_the_defence() {
    let (name, _guard) = posix_name();
    let _shm = PosixShm::create(&name, &Options::new().size(2 * PAGE as u64)).unwrap();
    let out = child("shrink-after-kill", &[name.as_str()]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(at_lines(&String::from_utf8_lossy(&out.stdout)), ["killed", "truncated"]);
}

fn chan_opts() -> channel::Options {
    channel::Options::new()
        .capacity(64 * 1024)
        .timeout(Duration::from_secs(20))
}

#[test]
fn a_channel_shrunk_by_a_third_process_fails_both_sides() {
    let (name, _guard) = posix_name();
    // The sender sends until the channel fails, then reports the error.
    let mut sender = LiveChild::spawn("chan-send-forever", &[name.as_str()]);
    let mut rx = Receiver::connect(&name, &chan_opts()).unwrap();
    assert_eq!(sender.expect_line(), "connected");
    for i in 0..1000u64 {
        assert_eq!(
            rx.recv().unwrap(),
            i.to_le_bytes(),
            "before the shrink, nothing is lost"
        );
    }

    shrink(&name, 0);

    let end = Instant::now() + Duration::from_secs(20);
    let mut next = 1000u64;
    let err = loop {
        match rx.recv() {
            // messages copied before the shrink are real and in order
            Ok(msg) => {
                assert_eq!(msg, next.to_le_bytes());
                next += 1;
            }
            Err(e) => break e,
        }
        assert!(Instant::now() < end, "the receiver never noticed the shrink");
    };
    assert!(matches!(err, Error::Truncated { .. }), "receiver: {err:?}");
    // The sender noticed too, and ended in order (not killed by SIGBUS).
    let line = sender.expect_line();
    assert!(
        line.starts_with(&format!("error {name}: the object shrank")),
        "sender: {line}"
    );
    sender.finish();
}

#[test]
fn a_receiver_waiting_on_a_shrunk_channel_wakes_with_the_error() {
    // to nothing, and to the header page alone: the waiting receiver never
    // touches the lost ring then, and must notice by the object's size
    for size in [0, PAGE as u64] {
        receiver_waits_while_shrunk_to(size);
    }
}

fn receiver_waits_while_shrunk_to(size: u64) {
    let (name, _guard) = posix_name();
    // The sender sends nothing and holds the channel open.
    let mut sender = LiveChild::spawn("chan-send-hold", &[name.as_str(), "0"]);
    let mut rx = Receiver::connect(&name, &chan_opts()).unwrap();
    assert_eq!(sender.expect_line(), "sent 0");
    std::thread::scope(|s| {
        let waiting = s.spawn(|| rx.recv_timeout(Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(100));
        shrink(&name, size);
        match waiting.join().unwrap() {
            Err(shmkit::channel::RecvTimeoutError::Failed(Error::Truncated { .. })) => {}
            other => panic!("shrunk to {size}: expected Truncated, got {other:?}"),
        }
    });
    sender.finish();
}
