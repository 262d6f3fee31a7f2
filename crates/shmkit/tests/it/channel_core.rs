//! The channel core between real processes: liveness across PID and mount
//! namespaces and without `/proc`, capacities that meet whoever starts
//! first, takeover races, and handles inherited through `fork`.

use std::io::BufRead;
use std::process::Command;
use std::time::{Duration, Instant};

use shmkit::channel::{Options, Receiver, RecvTimeoutError, Sender};
use shmkit::posix::{PosixShm, ShmName};
use shmkit::{Error, Role};

use crate::common::{is_root, posix_name, LiveChild};

fn opts() -> Options {
    Options::new().capacity(64 * 1024).timeout(Duration::from_secs(20))
}

fn gone(name: &ShmName) -> bool {
    matches!(PosixShm::open(name, &Default::default()), Err(Error::NotFound { .. }))
}

/// Waits (bounded) until the object is gone: the survivor removes it when
/// it drops its end.
fn wait_gone(name: &ShmName) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(name) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

fn report(line: String) {
    println!("@{line}");
}

fn read_line() -> String {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim().to_owned()
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::Closed { .. } => "closed",
        Error::PeerGone { .. } => "peer-gone",
        Error::Corrupt { .. } => "corrupt",
        _ => "other",
    }
}

/// Child roles for these tests; `child::main` hands roles starting with
/// `core-` here.
pub fn child_role(role: &str, args: &[String]) {
    let name = ShmName::new(args[0].as_str()).unwrap();
    match role {
        // core-send NAME COUNT: send COUNT sequence numbers, report, then on
        // each line "more N" wait a little and send N more; hold until killed.
        "core-send" => {
            let count: u64 = args[1].parse().unwrap();
            let mut tx = Sender::connect(&name, &opts()).unwrap();
            for i in 0..count {
                tx.send(&i.to_le_bytes()).unwrap();
            }
            report(format!("sent {count} as pid {}", std::process::id()));
            let mut next = count;
            loop {
                let line = read_line();
                let Some(n) = line.strip_prefix("more ") else {
                    std::thread::sleep(Duration::from_secs(60));
                    continue;
                };
                // long enough for the receiver to be asleep on its futex
                std::thread::sleep(Duration::from_millis(200));
                for _ in 0..n.parse::<u64>().unwrap() {
                    tx.send(&next.to_le_bytes()).unwrap();
                    next += 1;
                }
                report(format!("sent {next}"));
            }
        }
        // core-recv-hold NAME: connect as the receiver, report, receive
        // nothing; hold until killed.
        "core-recv-hold" => {
            let _rx = Receiver::connect(&name, &opts()).unwrap();
            report(format!("connected as pid {}", std::process::id()));
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        // core-recv-all NAME: receive sequence numbers until the channel
        // ends; report how, and how many arrived.
        "core-recv-all" => {
            let procs = std::fs::read_dir("/proc").map(|d| d.count()).unwrap_or(0);
            let mut rx = Receiver::connect(&name, &opts()).unwrap();
            report(format!("connected; /proc has {procs} entries"));
            let mut n = 0u64;
            let mut buf = Vec::new();
            let end = loop {
                match rx.recv_into(&mut buf) {
                    Ok(()) => {
                        assert_eq!(buf, n.to_le_bytes(), "message {n}");
                        n += 1;
                    }
                    Err(e) => break e,
                }
            };
            report(format!("end {} after {n}", kind(&end)));
        }
        // core-abandon NAME: take both sides (two threads, two open file
        // descriptions), report, and hold until killed.
        "core-abandon" => {
            let n2 = name.clone();
            let t = std::thread::spawn(move || Receiver::connect(&n2, &opts()).unwrap());
            let _tx = Sender::connect(&name, &opts()).unwrap();
            let _rx = t.join().unwrap();
            report("ready".into());
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        // core-race NAME ROLE: on each line "go", connect as ROLE, move one
        // message, leave, and report; end on "quit".
        "core-race" => loop {
            match read_line().as_str() {
                "go" => {
                    if args[1] == "sender" {
                        let mut tx = until_not_busy(|| Sender::connect(&name, &opts()));
                        tx.send(b"ping").unwrap();
                        tx.flush_timeout(Duration::from_secs(20)).unwrap();
                    } else {
                        let mut rx = until_not_busy(|| Receiver::connect(&name, &opts()));
                        assert_eq!(rx.recv().unwrap(), b"ping");
                    }
                    report("done".into());
                }
                _ => return,
            }
        },
        // core-fork-drop NAME ROLE: connect as ROLE; fork a child that drops
        // the inherited end and exits; then use the end in this process.
        "core-fork-drop" => {
            if args[1] == "sender" {
                let mut tx = Sender::connect(&name, &opts()).unwrap();
                fork_and_drop(Inherited::Tx(&mut tx));
                tx.send(b"after the fork").unwrap();
                report("sent".into());
                tx.flush_timeout(Duration::from_secs(20)).unwrap();
            } else {
                let mut rx = Receiver::connect(&name, &opts()).unwrap();
                fork_and_drop(Inherited::Rx(&mut rx));
                report(format!("received {}", String::from_utf8_lossy(&rx.recv().unwrap())));
            }
        }
        other => panic!("unknown core role {other:?}"),
    }
}

/// Connects, again while the seat is `Busy` with a live holder, for at most
/// five seconds: a killed and reaped process's lock can outlive it for a
/// moment — its mapping holds the object's open file description until
/// the last reference to its memory goes, and a concurrent reader of its
/// `/proc/<pid>/maps` (another test's scan) holds one.
fn until_not_busy<T>(mut connect: impl FnMut() -> shmkit::Result<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match connect() {
            Err(Error::Busy { alive: true, .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other.unwrap(),
        }
    }
}

/// What the forked child drops: its copy of the whole end (moved out by
/// `ptr::read`, which only the child does).
enum Inherited<'a> {
    Tx(&'a mut Sender),
    Rx(&'a mut Receiver),
}

/// Forks; the child drops its copy of the end and exits at once; the
/// parent waits for it.
fn fork_and_drop(end: Inherited<'_>) {
    // SAFETY: the child only drops its copy of the end (unmapping, closing
    // descriptors, and — were it the owner — writing shared memory) and
    // calls _exit; the parent waits for it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: the child owns its copy of the process's memory; reading
        // the end out of the reference moves it, and the parent's copy is
        // untouched (separate address spaces).
        unsafe {
            match end {
                Inherited::Tx(tx) => drop(std::ptr::read(tx)),
                Inherited::Rx(rx) => drop(std::ptr::read(rx)),
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
}

/// `cmd` (a child of this test binary) in a new PID namespace and a new
/// mount namespace, as a container sees the host: its own `/proc` (or
/// none, with `no_proc`), and `/dev/shm` a bind mount of the host's.
/// `None`, with a printed reason, where that cannot be done.
fn in_container(cmd: Command, no_proc: bool) -> Option<Command> {
    if !is_root() {
        println!("skipped: needs root for new PID and mount namespaces");
        return None;
    }
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount", "true"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!(
                "skipped: no new namespaces here: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Err(e) => {
            println!("skipped: cannot run unshare: {e}");
            return None;
        }
    }
    let proc_mount = if no_proc {
        "mount -t tmpfs shmkit-no-proc /proc"
    } else {
        "mount -t proc proc /proc"
    };
    let script = format!(
        "set -e; d=$(mktemp -d); mount --bind /dev/shm \"$d\"; mount -t tmpfs shmkit-hidden /dev/shm; \
         mount --bind \"$d\" /dev/shm; umount \"$d\"; rmdir \"$d\"; {proc_mount}; exec \"$@\""
    );
    let mut outer = Command::new("unshare");
    outer
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
        ])
        .arg(script)
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
    Some(outer)
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn a_sender_in_a_container_killed_while_the_receiver_sleeps() {
    let (name, _guard) = posix_name();
    let Some(cmd) = in_container(crate::common::child("core-send", &[name.as_str(), "1000"]), false) else {
        return;
    };
    let mut sender = LiveChild::from_command(cmd);
    // sleep at once: no spinning, so only a futex wake-up (or the liveness
    // check) can end a wait
    let mut rx = Receiver::connect(&name, &opts().spin(Duration::ZERO)).unwrap();
    let line = sender.expect_line();
    assert!(line.starts_with("sent 1000 as pid "), "{line}");
    let mut buf = Vec::new();
    for i in 0..1000u64 {
        rx.recv_into(&mut buf).unwrap();
        assert_eq!(buf, i.to_le_bytes());
    }
    // The receiver sleeps in the host's namespaces; the sender, in its
    // own, wakes it with three more messages after 200 ms.
    sender.send("more 3");
    let started = Instant::now();
    for i in 1000..1003u64 {
        rx.recv_into(&mut buf).unwrap();
        assert_eq!(buf, i.to_le_bytes());
    }
    println!(
        "woken across namespaces after {:?} (the sender waited 200 ms)",
        started.elapsed()
    );
    assert_eq!(sender.expect_line(), "sent 1003");
    // Killed while the receiver sleeps: it learns within a second, from the
    // kernel's lock, though the sender's pid means nothing here.
    sender.kill();
    let killed = Instant::now();
    match rx.recv_timeout(Duration::from_secs(1)) {
        Err(RecvTimeoutError::Disconnected(e @ Error::PeerGone { side: Role::Sender, .. })) => {
            println!("{e} ({:?} after the kill)", killed.elapsed())
        }
        other => panic!("{other:?}"),
    }
    drop(rx);
    assert!(wait_gone(&name), "the survivor removed the object");
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn a_receiver_in_a_container_killed_while_the_sender_waits_for_room() {
    let (name, _guard) = posix_name();
    let Some(cmd) = in_container(crate::common::child("core-recv-hold", &[name.as_str()]), false) else {
        return;
    };
    let mut receiver = LiveChild::from_command(cmd);
    let mut tx = Sender::connect(&name, &opts().spin(Duration::ZERO)).unwrap();
    let line = receiver.expect_line();
    assert!(line.starts_with("connected as pid "), "{line}");
    // fill the ring: the receiver takes nothing
    while tx.try_send(&[7; 1000]).is_ok() {}
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        receiver.kill();
        Instant::now()
    });
    let err = tx
        .send_timeout(&[7; 1000], Duration::from_secs(20))
        .expect_err("nobody takes it");
    let killed = killer.join().unwrap();
    println!("{err} ({:?} after the kill)", killed.elapsed());
    assert!(
        matches!(
            err,
            shmkit::channel::SendTimeoutError::Disconnected(Error::PeerGone {
                side: Role::Receiver,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(killed.elapsed() < Duration::from_secs(1), "noticed within a second");
    drop(tx);
    assert!(wait_gone(&name));
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn liveness_needs_no_proc() {
    // The receiver runs where /proc is empty; the sender is killed.
    let (name, _guard) = posix_name();
    let Some(cmd) = in_container(crate::common::child("core-recv-all", &[name.as_str()]), true) else {
        return;
    };
    let mut receiver = LiveChild::from_command(cmd);
    let mut sender = LiveChild::spawn("core-send", &[name.as_str(), "500"]);
    assert_eq!(receiver.expect_line(), "connected; /proc has 0 entries");
    assert!(sender.expect_line().starts_with("sent 500"));
    sender.kill();
    assert_eq!(receiver.expect_line(), "end peer-gone after 500");
    receiver.finish();
    assert!(wait_gone(&name));
}

/// Connects both ends in two threads with the given capacities.
fn pair(
    name: &ShmName,
    rx_cap: Option<u64>,
    tx_cap: Option<u64>,
    receiver_first: bool,
) -> (Result<Sender, Error>, Result<Receiver, Error>) {
    let with = |cap: Option<u64>| match cap {
        Some(c) => opts_without_capacity().capacity(c),
        None => opts_without_capacity(),
    };
    let (rx_opts, tx_opts) = (with(rx_cap), with(tx_cap));
    let n2 = name.clone();
    if receiver_first {
        let rx = std::thread::spawn(move || Receiver::connect(&n2, &rx_opts));
        // let the receiver create it first
        while gone(name) {
            std::thread::yield_now();
        }
        let tx = Sender::connect(name, &tx_opts);
        (tx, rx.join().unwrap())
    } else {
        let tx = std::thread::spawn(move || Sender::connect(&n2, &tx_opts));
        while gone(name) {
            std::thread::yield_now();
        }
        let rx = Receiver::connect(name, &rx_opts);
        (tx.join().unwrap(), rx)
    }
}

fn opts_without_capacity() -> Options {
    Options::new().timeout(Duration::from_secs(20))
}

#[test]
fn capacities_meet_whoever_starts_first() {
    for receiver_first in [true, false] {
        // one side chose, the other did not: the choice stands, either order
        for (rx_cap, tx_cap) in [(None, Some(256 << 10)), (Some(256 << 10), None), (None, None)] {
            let (name, _guard) = posix_name();
            let (tx, rx) = pair(&name, rx_cap, tx_cap, receiver_first);
            let (mut tx, mut rx) = (tx.unwrap(), rx.unwrap());
            let want = rx_cap.or(tx_cap).unwrap_or(shmkit::channel::DEFAULT_CAPACITY) as usize;
            assert_eq!(
                (tx.capacity(), rx.capacity()),
                (want, want),
                "{rx_cap:?} {tx_cap:?} {receiver_first}"
            );
            tx.send(b"moved").unwrap();
            assert_eq!(rx.recv().unwrap(), b"moved");
            drop((tx, rx));
            assert!(gone(&name));
        }
        // two different choices: both sides learn it, nothing is left
        let (name, _guard) = posix_name();
        let (tx, rx) = pair(&name, Some(1 << 20), Some(256 << 10), receiver_first);
        for e in [tx.map(drop).unwrap_err(), rx.map(drop).unwrap_err()] {
            assert!(matches!(e, Error::CapacityMismatch { .. }), "{e}");
            assert!(
                e.to_string().contains("1048576") && e.to_string().contains("262144"),
                "{e}"
            );
        }
        assert!(gone(&name));
    }
}

#[test]
fn two_processes_racing_to_take_over_an_abandoned_channel() {
    let (name, _guard) = posix_name();
    let rounds = 200;
    let mut sender = LiveChild::spawn("core-race", &[name.as_str(), "sender"]);
    let mut receiver = LiveChild::spawn("core-race", &[name.as_str(), "receiver"]);
    for round in 0..rounds {
        // Both sides die without leaving: an abandoned channel.
        let mut abandon = LiveChild::spawn("core-abandon", &[name.as_str()]);
        assert_eq!(abandon.expect_line(), "ready");
        abandon.kill();
        assert!(!gone(&name), "round {round}: the abandoned object stays");
        // Two processes arrive at once: exactly one takes it over (removes
        // it and creates anew), the other joins the new one; neither hangs.
        sender.send("go");
        receiver.send("go");
        assert_eq!(sender.expect_line(), "done", "round {round}");
        assert_eq!(receiver.expect_line(), "done", "round {round}");
        assert!(wait_gone(&name), "round {round}: nothing is left");
    }
    sender.send("quit");
    receiver.send("quit");
    sender.finish();
    receiver.finish();
}

#[test]
fn a_forked_child_dropping_an_inherited_end_leaves_the_channel_working() {
    for role in ["sender", "receiver"] {
        let (name, _guard) = posix_name();
        let mut child = LiveChild::spawn("core-fork-drop", &[name.as_str(), role]);
        if role == "sender" {
            let mut rx = Receiver::connect(&name, &opts()).unwrap();
            assert_eq!(child.expect_line(), "sent");
            assert_eq!(rx.recv().unwrap(), b"after the fork");
            child.finish();
            assert!(matches!(rx.recv(), Err(Error::Closed { .. })));
        } else {
            let mut tx = Sender::connect(&name, &opts()).unwrap();
            // the receiver's child has dropped its copy (the receiver waits
            // for it before receiving); the message still reaches the parent
            tx.send(b"after the fork").unwrap();
            assert_eq!(child.expect_line(), "received after the fork");
            child.finish();
        }
        assert!(wait_gone(&name));
    }
}
