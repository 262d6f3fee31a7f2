//! `shmkit send` and `shmkit recv` between real processes.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use shmkit::posix::{Options, PosixShm, ShmName};

use crate::common::*;

fn gone(name: &str) -> bool {
    !std::path::Path::new(&format!("/dev/shm{name}")).exists()
}

/// `head -c SIZE /dev/urandom | tee >(sha256sum) | shmkit send` against
/// `shmkit recv | sha256sum`, the receiver started first or second.
fn transfer(receiver_first: bool, size: &str) {
    let (name, _guard) = posix_name();
    let dir = TempDir::new();
    let bin = assert_cmd::cargo::cargo_bin("shmkit");
    let sent = dir.path().join("sent.sha");
    let send = format!(
        "head -c {size} /dev/urandom | tee >(sha256sum > {}) | {} send {name}",
        sent.display(),
        bin.display()
    );
    let recv = format!("{} recv {name} | sha256sum", bin.display());
    let spawn = |script: &str| {
        Command::new("bash")
            .args(["-o", "pipefail", "-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = if receiver_first { (&recv, &send) } else { (&send, &recv) };
    let a = spawn(first);
    std::thread::sleep(Duration::from_millis(100));
    let b = spawn(second);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_code(&a, 0);
    assert_code(&b, 0);
    let received = if receiver_first { stdout(&a) } else { stdout(&b) };
    // the process substitution may finish just after the pipeline
    let mut sent_sum = String::new();
    for _ in 0..100 {
        sent_sum = std::fs::read_to_string(&sent).unwrap_or_default();
        if !sent_sum.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        received.split_whitespace().next(),
        sent_sum.split_whitespace().next(),
        "SHA-256 differs"
    );
    assert!(gone(&name), "{name} left behind");
}

#[test]
fn one_gib_receiver_first() {
    if !have("sha256sum") {
        return;
    }
    transfer(true, "1G");
}

#[test]
fn one_gib_sender_first() {
    if !have("sha256sum") {
        return;
    }
    transfer(false, "1G");
}

#[test]
fn small_streams_with_a_file_and_an_output_file() {
    let (name, _guard) = posix_name();
    let dir = TempDir::new();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&input, &data).unwrap();
    let recv = shmkit()
        .args(["recv", &name, "--output", output.to_str().unwrap(), "--capacity", "64K"])
        .spawn()
        .unwrap();
    let out = run(&["send", &name, "--file", input.to_str().unwrap(), "--capacity", "64K"]);
    assert_code(&out, 0);
    assert!(recv.wait_with_output().unwrap().status.success());
    assert_eq!(std::fs::read(&output).unwrap(), data);
    assert!(gone(&name));

    // an empty stream is a stream too
    let (name, _guard) = posix_name();
    let recv = shmkit().args(["recv", &name]).stdout(Stdio::piped()).spawn().unwrap();
    let mut send = shmkit().args(["send", &name]).stdin(Stdio::piped()).spawn().unwrap();
    drop(send.stdin.take());
    assert!(send.wait().unwrap().success());
    let out = recv.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert!(out.stdout.is_empty());
}

#[test]
fn recv_times_out_with_9_and_leaves_nothing() {
    let (name, _guard) = posix_name();
    let out = run(&["recv", &name, "--timeout", "200ms"]);
    assert_code(&out, 9);
    assert_eq!(
        stderr(&out),
        format!("shmkit: {name}: timed out waiting for a sender\n")
    );
    assert!(gone(&name));
    let out = run(&["send", &name, "--timeout", "200ms"]);
    assert_code(&out, 9);
    assert!(gone(&name));
}

#[test]
fn recv_exits_8_when_the_sender_is_killed() {
    let (name, _guard) = posix_name();
    let mut send = shmkit().args(["send", &name]).stdin(Stdio::piped()).spawn().unwrap();
    let mut recv = shmkit()
        .args(["recv", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = send.stdin.take().unwrap();
    // written from a thread: the pipes fill up while nobody reads them
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&[7u8; 1 << 20]);
        std::thread::sleep(Duration::from_secs(2)); // keep stdin open
    });
    let mut got = [0u8; 1000];
    recv.stdout.as_mut().unwrap().read_exact(&mut got).unwrap();
    assert_eq!(got, [7u8; 1000]);
    send.kill().unwrap();
    send.wait().unwrap();
    let out = recv.wait_with_output().unwrap(); // drains the rest of its output
    writer.join().unwrap();
    assert_code(&out, 8);
    assert!(stderr(&out).contains("the sender (pid "), "{}", stderr(&out));
    assert!(gone(&name));
}

#[test]
fn send_and_recv_exit_7_when_a_third_process_shrinks_the_channel() {
    let (name, _guard) = posix_name();
    let mut send = shmkit()
        .args(["send", &name])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut recv = shmkit()
        .args(["recv", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = send.stdin.take().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&[7u8; 1 << 20]);
        let _ = done_rx.recv_timeout(Duration::from_secs(20)); // keep stdin open
    });
    let mut got = [0u8; 1000];
    recv.stdout.as_mut().unwrap().read_exact(&mut got).unwrap();
    assert_eq!(got, [7u8; 1000]);
    // The attack: anyone who can write the object can ftruncate it.
    let shm = PosixShm::open(&ShmName::new(name.as_str()).unwrap(), &Options::new()).unwrap();
    shm.resize(0).unwrap();
    let out = recv.wait_with_output().unwrap();
    assert_code(&out, 7);
    assert!(
        stderr(&out).starts_with(&format!("shmkit: {name}: the object shrank while mapped here")),
        "{}",
        stderr(&out)
    );
    done_tx.send(()).unwrap();
    writer.join().unwrap();
    let out = send.wait_with_output().unwrap();
    assert_code(&out, 7);
    assert!(stderr(&out).contains("the object shrank"), "{}", stderr(&out));
}

#[test]
fn recv_exits_1_when_the_stream_stops_early() {
    let (name, _guard) = posix_name();
    let recv = shmkit()
        .args(["recv", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        // a sender that closes without the end-of-stream mark
        let mut tx =
            shmkit::channel::Sender::connect(&ShmName::new(name.as_str()).unwrap(), &Default::default()).unwrap();
        tx.send(b"partial").unwrap();
    }
    let out = recv.wait_with_output().unwrap();
    assert_code(&out, 1);
    assert_eq!(out.stdout, b"partial");
    assert!(
        stderr(&out).contains("before the end of its stream"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_plain_segment_is_corrupt_7_and_a_second_receiver_is_busy() {
    let (plain, _guard) = posix_name();
    let _shm = PosixShm::create(&ShmName::new(plain.as_str()).unwrap(), &Options::new().size(1 << 20)).unwrap();
    let out = run(&["recv", &plain]);
    assert_code(&out, 7);
    assert!(stderr(&out).contains("not a shmkit channel"), "{}", stderr(&out));

    let (name, _guard2) = posix_name();
    let mut first = shmkit().args(["recv", &name]).stdout(Stdio::null()).spawn().unwrap();
    let mut send = shmkit().args(["send", &name]).stdin(Stdio::piped()).spawn().unwrap();
    // once both are connected (as the channel's header says), a second
    // receiver is refused
    let chan = ShmName::new(name.as_str()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(info) = shmkit::channel::info(&chan) {
            if info.sender.is_some() && info.receiver.is_some() {
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "the pair never connected");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = run(&["recv", &name, "--timeout", "2s"]);
    assert_code(&second, 1);
    assert!(
        stderr(&second).contains(&format!("already has a receiver (pid {})", first.id())),
        "{}",
        stderr(&second)
    );
    drop(send.stdin.take());
    assert!(send.wait().unwrap().success());
    assert!(first.wait().unwrap().success());
    assert!(gone(&name));
}

#[test]
fn capacity_must_be_a_power_of_two() {
    let out = run(&["send", "/x", "--capacity", "1000"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("power of two"));
}

/// Runs `shmkit ARGS` with piped stdin, stdout and stderr.
fn spawn_shmkit(args: &[&str]) -> std::process::Child {
    shmkit()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until the channel object exists, so that a second
/// command surely finds it.
fn wait_for_object(name: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while gone(name) {
        assert!(std::time::Instant::now() < deadline, "{name} never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn capacities_meet_whoever_starts_first_and_a_conflict_fails_both() {
    for receiver_first in [true, false] {
        // one side chose, the other takes its choice
        let (name, _guard) = posix_name();
        let recv_args = ["recv", &name, "--timeout", "20s"];
        let send_args = ["send", &name, "--capacity", "256K", "--timeout", "20s"];
        let (first, second) = if receiver_first {
            (&recv_args[..], &send_args[..])
        } else {
            (&send_args[..], &recv_args[..])
        };
        let mut a = spawn_shmkit(first);
        wait_for_object(&name);
        let mut b = spawn_shmkit(second);
        let tx = if receiver_first { &mut b } else { &mut a };
        tx.stdin.take().unwrap().write_all(b"moved with 256K").unwrap();
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let (rx, tx) = if receiver_first { (a, b) } else { (b, a) };
        assert_code(&tx, 0);
        assert_code(&rx, 0);
        assert_eq!(stdout(&rx), "moved with 256K");
        assert!(gone(&name));

        // two different choices: both fail with one clear error
        let (name, _guard) = posix_name();
        let recv_args = ["recv", &name, "--capacity", "1M", "--timeout", "20s"];
        let send_args = ["send", &name, "--capacity", "256K", "--timeout", "20s"];
        let (first, second) = if receiver_first {
            (&recv_args[..], &send_args[..])
        } else {
            (&send_args[..], &recv_args[..])
        };
        let a = spawn_shmkit(first);
        wait_for_object(&name);
        let b = spawn_shmkit(second);
        for out in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
            assert_code(&out, 1);
            let err = stderr(&out);
            assert!(
                err.contains("capacity conflict") && err.contains("1048576") && err.contains("262144"),
                "{err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        assert!(gone(&name));
    }
}

/// Sends `signal` to `child` (our own, unreaped).
fn signal(child: &std::process::Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

#[test]
fn a_signal_ends_a_waiting_send_or_recv_with_its_status_and_nothing_left() {
    use rustix::process::Signal;
    for (sig, code) in [(Signal::INT, 130), (Signal::TERM, 143), (Signal::HUP, 129)] {
        // recv waits for a sender that never comes
        let (name, _guard) = posix_name();
        let recv = spawn_shmkit(&["recv", &name]);
        wait_for_object(&name);
        std::thread::sleep(Duration::from_millis(100));
        signal(&recv, sig);
        let out = recv.wait_with_output().unwrap();
        assert_code(&out, code);
        assert_eq!(stderr(&out), "", "a signal the user sent needs no message");
        assert!(gone(&name), "{name} left behind after signal {sig:?}");

        // send waits for input with the receiver connected: the receiver
        // sees a close (exit 1: no end-of-stream mark), not a death (8)
        let (name, _guard) = posix_name();
        let recv = spawn_shmkit(&["recv", &name]);
        let mut send = spawn_shmkit(&["send", &name]);
        let mut stdin = send.stdin.take().unwrap();
        stdin.write_all(b"partial").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        signal(&send, sig);
        let out = send.wait_with_output().unwrap();
        drop(stdin);
        assert_code(&out, code);
        let out = recv.wait_with_output().unwrap();
        assert_code(&out, 1);
        assert_eq!(stdout(&out), "partial");
        assert!(
            stderr(&out).contains("closed the channel before the end"),
            "{}",
            stderr(&out)
        );
        assert!(gone(&name));
    }
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn a_sender_in_a_container_killed_makes_recv_exit_8() {
    if !is_root() || !have("unshare") {
        println!("skipped: needs root and unshare for new PID and mount namespaces");
        return;
    }
    let (name, _guard) = posix_name();
    let bin = assert_cmd::cargo::cargo_bin("shmkit");
    // the sender in its own PID and mount namespaces, /dev/shm bind-mounted
    // from the host's, as a container sharing it would have
    let script = "set -e; d=$(mktemp -d); mount --bind /dev/shm \"$d\"; mount -t tmpfs hidden /dev/shm; \
                  mount --bind \"$d\" /dev/shm; umount \"$d\"; rmdir \"$d\"; mount -t proc proc /proc; exec \"$@\"";
    let mut send = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&bin)
        .args(["send", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut recv = spawn_shmkit(&["recv", &name]);
    let mut stdin = send.stdin.take().unwrap();
    stdin.write_all(b"committed before the kill").unwrap();
    let mut got = [0u8; 25];
    recv.stdout.as_mut().unwrap().read_exact(&mut got).unwrap();
    assert_eq!(&got, b"committed before the kill");
    send.kill().unwrap(); // unshare, and with it (--kill-child) the sender
    send.wait().unwrap();
    let out = recv.wait_with_output().unwrap();
    assert_code(&out, 8);
    assert!(stderr(&out).contains("(pid 1) is gone"), "{}", stderr(&out));
    drop(stdin);
    assert!(gone(&name));
}
