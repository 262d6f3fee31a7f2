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
