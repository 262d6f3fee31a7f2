//! Pollable channel endpoints between real processes: no missed wake-up
//! under a jittery sender, a killed peer hangs the descriptor up, no
//! descriptor or bell is left behind, and it all works across PID
//! namespaces.

use std::process::Command;
use std::time::{Duration, Instant};

use shmkit::channel::{Options, Receiver, Sender, TryRecvError, TrySendError};
use shmkit::posix::ShmName;
use shmkit::wait::{self, WaitSet};
use shmkit::{Error, Role};

use crate::common::{is_root, posix_name, LiveChild};

/// Longer than any wake-up can take; reaching it means a wake-up was lost.
const LOST: Duration = Duration::from_secs(10);

fn opts() -> Options {
    Options::new().timeout(Duration::from_secs(20))
}

/// Child roles for these tests; `child::main` hands roles starting with
/// `poll-` here.
pub fn child_role(role: &str, args: &[String]) {
    let report = |line: String| println!("@{line}");
    match role {
        // poll-send-jitter NAME COUNT SEED: send COUNT sequence numbers,
        // pausing 0-50 µs (pseudo-random, spinning) before each, then close.
        "poll-send-jitter" => {
            let name = ShmName::new(args[0].as_str()).unwrap();
            let count: u64 = args[1].parse().unwrap();
            let mut rng: u64 = args[2].parse().unwrap();
            let mut tx = Sender::connect(&name, &opts()).unwrap();
            for i in 0..count {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let pause = Duration::from_nanos(rng % 50_001);
                let start = Instant::now();
                while start.elapsed() < pause {
                    std::hint::spin_loop();
                }
                tx.send(&i.to_le_bytes()).unwrap();
            }
            report("done".into());
        }
        // poll-send-hold NAME COUNT: send COUNT sequence numbers, report,
        // and hold until killed (or stdin closes).
        "poll-send-hold" => {
            let name = ShmName::new(args[0].as_str()).unwrap();
            let count: u64 = args[1].parse().unwrap();
            let mut tx = Sender::connect(&name, &opts()).unwrap();
            for i in 0..count {
                tx.send(&i.to_le_bytes()).unwrap();
            }
            report(format!("sent {count}"));
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
        }
        // poll-recv-hold NAME CAPACITY: connect as the receiver, report,
        // receive nothing, hold until killed.
        "poll-recv-hold" => {
            let name = ShmName::new(args[0].as_str()).unwrap();
            let cap: u64 = args[1].parse().unwrap();
            let _rx = Receiver::connect(&name, &opts().capacity(cap)).unwrap();
            report("connected".into());
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
        }
        // poll-async-idle NAME: a tokio receiver (current-thread runtime)
        // that reports once connected, waits for one message, reports it.
        "poll-async-idle" => {
            let name = ShmName::new(args[0].as_str()).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut rx = shmkit::tokio::Receiver::connect(&name, &opts()).await.unwrap();
                report("connected".into());
                let msg = rx.recv().await.unwrap();
                report(format!("got {}", String::from_utf8_lossy(&msg)));
            });
        }
        // poll-fd-cycles PREFIX N: N connect/poll/close cycles between two
        // threads; report the open descriptors before and after.
        "poll-fd-cycles" => {
            let prefix = &args[0];
            let n: u32 = args[1].parse().unwrap();
            let before = open_fds();
            for i in 0..n {
                let name = ShmName::new(format!("{prefix}-{i}")).unwrap();
                let n2 = name.clone();
                let t = std::thread::spawn(move || {
                    let mut rx = Receiver::connect(&n2, &opts()).unwrap();
                    let mut set = WaitSet::new().unwrap();
                    set.add(&rx, 0).unwrap();
                    loop {
                        match rx.try_recv() {
                            Ok(m) => return m,
                            Err(TryRecvError::Empty) => assert_eq!(set.wait(Some(LOST)).unwrap(), &[0]),
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
                let mut tx = Sender::connect(&name, &opts()).unwrap();
                let _ = std::os::fd::AsRawFd::as_raw_fd(&tx); // poll mode
                tx.send(b"x").unwrap();
                assert_eq!(t.join().unwrap(), b"x");
            }
            report(format!("fds {before} {}", open_fds()));
        }
        other => panic!("unknown role {other}"),
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The bells of `name` in `/dev/shm` now.
fn bells_of(name: &ShmName) -> Vec<String> {
    let prefix = format!("{}.bell", name.file_name());
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Receives `count` sequence numbers, waiting on the descriptor whenever
/// there is nothing; returns the number of waits and the longest.
fn receive_polling(rx: &mut Receiver, set: &mut WaitSet, count: u64) -> (u64, Duration) {
    let mut buf = Vec::new();
    let (mut waits, mut longest) = (0u64, Duration::ZERO);
    let mut next = 0u64;
    while next < count {
        match rx.try_recv_into(&mut buf) {
            Ok(()) => {
                assert_eq!(buf, next.to_le_bytes(), "message {next}");
                next += 1;
            }
            Err(TryRecvError::Empty) => {
                let started = Instant::now();
                let ready = set.wait(Some(LOST)).unwrap().to_vec();
                let waited = started.elapsed();
                assert_eq!(
                    ready,
                    [0],
                    "no wake-up within {LOST:?} after message {next}: one was lost"
                );
                waits += 1;
                longest = longest.max(waited);
            }
            Err(e) => panic!("after {next} messages: {e}"),
        }
    }
    (waits, longest)
}

#[test]
fn a_poller_misses_no_wake_up_from_a_jittery_sender() {
    let (name, _guard) = posix_name();
    let count: u64 = 1_000_000;
    let seed = u64::from(std::process::id()) | 1;
    let mut sender = LiveChild::spawn(
        "poll-send-jitter",
        &[name.as_str(), &count.to_string(), &seed.to_string()],
    );
    let mut rx = Receiver::connect(&name, &opts()).unwrap();
    let mut set = WaitSet::new().unwrap();
    set.add(&rx, 0).unwrap();
    let started = Instant::now();
    let (waits, longest) = receive_polling(&mut rx, &mut set, count);
    println!(
        "{count} messages in {:?}, {waits} waits on the descriptor, the longest {longest:?}",
        started.elapsed()
    );
    assert!(waits > 0, "the sender's pauses never let the receiver wait");
    assert_eq!(sender.expect_line(), "done");
    // the sender closes: the descriptor says so, and the channel is drained
    loop {
        match rx.try_recv() {
            Err(TryRecvError::Empty) => assert_eq!(set.wait(Some(LOST)).unwrap(), &[0]),
            Err(TryRecvError::Disconnected(Error::Closed { side: Role::Sender, .. })) => break,
            other => panic!("{other:?}"),
        }
    }
    sender.finish();
}

#[test]
fn a_killed_sender_makes_the_receivers_descriptor_readable() {
    let (name, _guard) = posix_name();
    let mut sender = LiveChild::spawn("poll-send-hold", &[name.as_str(), "3"]);
    let mut rx = Receiver::connect(&name, &opts()).unwrap();
    assert_eq!(sender.expect_line(), "sent 3");
    let mut set = WaitSet::new().unwrap();
    set.add(&rx, 7).unwrap();
    let (waits, _) = receive_polling(&mut rx, &mut set, 3);
    assert!(
        matches!(rx.try_recv(), Err(TryRecvError::Empty)),
        "armed, nothing there"
    );
    assert!(
        set.wait(Some(Duration::from_millis(50))).unwrap().is_empty(),
        "nothing happened yet"
    );
    let killed = Instant::now();
    sender.kill();
    assert_eq!(set.wait(Some(LOST)).unwrap(), &[7], "the kill did not wake the poller");
    let woken = killed.elapsed();
    match rx.try_recv() {
        Err(TryRecvError::Disconnected(Error::PeerGone { side: Role::Sender, .. })) => {}
        other => panic!("{other:?}"),
    }
    println!("readable and PeerGone {woken:?} after the SIGKILL (and {waits} waits before)");
}

#[test]
fn a_killed_receiver_makes_the_senders_descriptor_readable() {
    let (name, _guard) = posix_name();
    let mut receiver = LiveChild::spawn("poll-recv-hold", &[name.as_str(), "4096"]);
    let mut tx = Sender::connect(&name, &opts().capacity(4096)).unwrap();
    assert_eq!(receiver.expect_line(), "connected");
    let mut set = WaitSet::new().unwrap();
    set.add(&tx, 1).unwrap();
    let mut sent = 0;
    loop {
        match tx.try_send(&[0; 100]) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent > 0);
    assert!(
        set.wait(Some(Duration::from_millis(50))).unwrap().is_empty(),
        "still full"
    );
    let killed = Instant::now();
    receiver.kill();
    assert_eq!(set.wait(Some(LOST)).unwrap(), &[1], "the kill did not wake the poller");
    let woken = killed.elapsed();
    match tx.try_send(&[0; 100]) {
        Err(TrySendError::Disconnected(Error::PeerGone {
            side: Role::Receiver, ..
        })) => {}
        other => panic!("{other:?}"),
    }
    println!("readable and PeerGone {woken:?} after the SIGKILL");
}

#[test]
fn a_polling_sender_is_woken_when_room_is_made() {
    let (name, _guard) = posix_name();
    let n2 = name.clone();
    let consumer = std::thread::spawn(move || {
        let mut rx = Receiver::connect(&n2, &opts().capacity(4096)).unwrap();
        let mut n = 0u64;
        // slow at first, so that the sender fills the ring and waits
        std::thread::sleep(Duration::from_millis(20));
        while let Ok(m) = rx.recv() {
            assert_eq!(m, n.to_le_bytes());
            n += 1;
        }
        n
    });
    let mut tx = Sender::connect(&name, &opts().capacity(4096)).unwrap();
    let (mut sent, mut waits) = (0u64, 0);
    while sent < 20_000 {
        match tx.try_send(&sent.to_le_bytes()) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full) => {
                assert!(
                    wait::readable(&tx, Some(LOST)).unwrap(),
                    "no room came: a wake-up was lost"
                );
                waits += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    drop(tx);
    assert_eq!(consumer.join().unwrap(), 20_000);
    assert!(waits > 0);
}

#[test]
fn no_descriptor_is_leaked_over_a_thousand_connections() {
    let (name, _guard) = posix_name();
    crate::common::check_descriptor_cycles("poll-fd-cycles", &name);
}

#[test]
fn bells_go_when_the_sides_meet_and_leftovers_when_a_new_pair_takes_over() {
    let (name, _guard) = posix_name();
    // both sides killed after meeting: no bell left (their names went at
    // the meeting), the object is stale
    let mut sender = LiveChild::spawn("poll-send-hold", &[name.as_str(), "1"]);
    let mut receiver = LiveChild::spawn("poll-recv-hold", &[name.as_str(), "4096"]);
    assert_eq!(sender.expect_line(), "sent 1");
    assert_eq!(receiver.expect_line(), "connected");
    assert!(
        bells_of(&name).is_empty(),
        "bells of a channel in use: {:?}",
        bells_of(&name)
    );
    sender.kill();
    receiver.kill();
    assert!(bells_of(&name).is_empty());
    // a bell left by a participant killed while meeting (made by hand here,
    // for an older object's inode)
    let leftover = format!("/dev/shm/{}.bell1.12345", name.file_name());
    let c = std::ffi::CString::new(leftover.clone()).unwrap();
    // SAFETY: a valid C string; mkfifo takes no other pointer.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // a new pair takes the name over
    let n2 = name.clone();
    let t = std::thread::spawn(move || Receiver::connect(&n2, &opts()).unwrap().recv().unwrap());
    let mut tx = Sender::connect(&name, &opts()).unwrap();
    tx.send(b"new").unwrap();
    assert_eq!(t.join().unwrap(), b"new");
    drop(tx);
    assert!(bells_of(&name).is_empty(), "left: {:?}", bells_of(&name));
    assert!(std::fs::symlink_metadata(&leftover).is_err());
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn the_descriptor_works_across_pid_namespaces() {
    if !is_root() {
        println!("skipped: needs root for a new PID namespace");
        return;
    }
    match Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!(
                "skipped: no new PID namespace here: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        Err(e) => {
            println!("skipped: cannot run unshare: {e}");
            return;
        }
    }
    let (name, _guard) = posix_name();
    let inner = crate::common::child("poll-send-hold", &[name.as_str(), "1000"]);
    let mut outer = Command::new("unshare");
    outer
        .args(["--pid", "--fork", "--kill-child", "--mount-proc"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let mut sender = LiveChild::from_command(outer);
    let mut rx = Receiver::connect(&name, &opts()).unwrap();
    let mut set = WaitSet::new().unwrap();
    set.add(&rx, 0).unwrap();
    receive_polling(&mut rx, &mut set, 1000);
    assert_eq!(sender.expect_line(), "sent 1000");
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    // killing unshare kills the sender (--kill-child), in its namespace
    sender.kill();
    assert_eq!(set.wait(Some(LOST)).unwrap(), &[0], "the kill did not wake the poller");
    match rx.try_recv() {
        Err(TryRecvError::Disconnected(Error::PeerGone { .. })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_wait_set_waits_on_several_receivers_and_other_descriptors() {
    let (a, _ga) = posix_name();
    let (b, _gb) = posix_name();
    let (na, nb) = (a.clone(), b.clone());
    let ta = std::thread::spawn(move || Sender::connect(&na, &opts()).unwrap());
    let tb = std::thread::spawn(move || Sender::connect(&nb, &opts()).unwrap());
    let mut ra = Receiver::connect(&a, &opts()).unwrap();
    let mut rb = Receiver::connect(&b, &opts()).unwrap();
    let (mut sa, mut sb) = (ta.join().unwrap(), tb.join().unwrap());
    let (sock, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut set = WaitSet::new().unwrap();
    set.add(&ra, 1).unwrap();
    set.add(&rb, 2).unwrap();
    set.add(&sock, 3).unwrap();
    assert_eq!(set.len(), 3);
    // arm both, then nothing is ready
    assert!(ra.try_recv().unwrap_err().is_empty() && rb.try_recv().unwrap_err().is_empty());
    assert!(set.wait(Some(Duration::from_millis(20))).unwrap().is_empty());
    sb.send(b"to b").unwrap();
    assert_eq!(set.wait(Some(LOST)).unwrap(), &[2]);
    assert_eq!(rb.try_recv().unwrap(), b"to b");
    assert!(rb.try_recv().unwrap_err().is_empty());
    std::io::Write::write_all(&mut peer, b"!").unwrap();
    sa.send(b"to a").unwrap();
    let mut ready = set.wait(Some(LOST)).unwrap().to_vec();
    ready.sort();
    assert_eq!(ready, [1, 3]);
    assert_eq!(ra.try_recv().unwrap(), b"to a");
    set.remove(&sock).unwrap();
    // a wait set is a descriptor too
    let mut outer = WaitSet::new().unwrap();
    outer.add(&set, 9).unwrap();
    assert!(ra.try_recv().unwrap_err().is_empty());
    drop(sa); // the sender leaves: a's descriptor hangs up
    assert_eq!(outer.wait(Some(LOST)).unwrap(), &[9]);
    assert_eq!(set.wait(Some(LOST)).unwrap(), &[1]);
    assert!(ra.try_recv().unwrap_err().is_disconnected());
    drop(sb);
}
