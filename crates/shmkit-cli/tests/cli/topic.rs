//! `shmkit pub` and `shmkit sub` between real processes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use shmkit::posix::ShmName;

use crate::common::*;

fn gone(name: &str) -> bool {
    !std::path::Path::new(&format!("/dev/shm{name}")).exists()
}

/// A running `shmkit` process, its output read as it comes (so that a full
/// pipe never holds it up); killed if the test fails first.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = shmkit()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let out = std::thread::spawn(move || {
            let mut all = String::new();
            for line in stdout.split(b'\n') {
                let line = String::from_utf8_lossy(&line.unwrap()).into_owned();
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
            all
        });
        let mut stderr = child.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all);
            all
        });
        Proc {
            child,
            lines,
            out: Some(out),
            err: Some(err),
        }
    }

    fn stdin(&mut self) -> &mut ChildStdin {
        self.child.stdin.as_mut().unwrap()
    }

    /// The next line it printed (without its newline).
    fn next_line(&self) -> String {
        self.lines.recv_timeout(Duration::from_secs(30)).expect("a line")
    }

    fn signal(&self, sig: Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
    }

    /// Closes stdin, waits (at most a minute: a hang fails the test) and
    /// returns (status code, stdout, stderr).
    fn finish(mut self) -> (Option<i32>, String, String) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let out = self.out.take().unwrap().join().unwrap();
                let err = self.err.take().unwrap().join().unwrap();
                return (status.code(), out, err);
            }
            assert!(Instant::now() < deadline, "shmkit did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until the topic has `n` live subscribers.
fn wait_for_subscribers(name: &str, n: usize) {
    let name = ShmName::new(name).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(info) = shmkit::topic::info(&name) {
            if info.subscribers.iter().filter(|s| s.alive).count() >= n {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the subscribers did not come");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn lines(n: usize) -> String {
    (0..n).map(|i| format!("line {i}\n")).collect()
}

#[test]
fn two_subscribers_print_the_same_lines_from_one_publisher() {
    let (name, _guard) = posix_name();
    // subscribers first: they make the topic and wait
    let a = Proc::spawn(&["sub", &name]);
    let b = Proc::spawn(&["sub", &name, "--lossy"]);
    wait_for_subscribers(&name, 2);
    let input = lines(1000);
    let mut publisher = Proc::spawn(&["pub", &name]);
    publisher.stdin().write_all(input.as_bytes()).unwrap();
    let (code, _, err) = publisher.finish();
    assert_eq!(code, Some(0), "{err}");
    for sub in [a, b] {
        let (code, out, err) = sub.finish();
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out, input);
    }
    assert!(gone(&name));
}

#[test]
fn nul_separated_records_count_and_history() {
    let (name, _guard) = posix_name();
    let mut publisher = Proc::spawn(&["pub", &name, "-0", "--history", "2", "--capacity", "64K"]);
    publisher.stdin().write_all(b"a\nb\0c\0d\0").unwrap();
    publisher.stdin().flush().unwrap();
    // the publisher holds them as history: a subscriber gets the last two
    let name2 = ShmName::new(name.as_str()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while shmkit::topic::info(&name2).map_or(true, |i| i.messages_published < 3) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = run(&["sub", &name, "-0", "--count", "2"]);
    assert_code(&out, 0);
    assert_eq!(out.stdout, b"c\0d\0");
    let (code, _, err) = publisher.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(gone(&name));
}

#[test]
fn killing_one_subscriber_stops_neither_the_other_nor_the_publisher() {
    let (name, _guard) = posix_name();
    let mut publisher = Proc::spawn(&["pub", &name, "--capacity", "4K"]);
    let victim = Proc::spawn(&["sub", &name]);
    let survivor = Proc::spawn(&["sub", &name]);
    wait_for_subscribers(&name, 2);
    publisher.stdin().write_all(b"first\n").unwrap();
    publisher.stdin().flush().unwrap();
    assert_eq!(survivor.next_line(), "first");
    victim.signal(Signal::KILL);
    // far more than the ring holds: the dead blocking subscriber would
    // hold the publisher up, were it not noticed
    let input = lines(20_000);
    publisher.stdin().write_all(input.as_bytes()).unwrap();
    let (code, _, err) = publisher.finish();
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = survivor.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("first\n{input}"));
    drop(victim);
    assert!(gone(&name));
}

#[test]
fn a_stopped_lossy_subscriber_does_not_hold_up_the_publisher() {
    let (name, _guard) = posix_name();
    let lossy = Proc::spawn(&["sub", &name, "--lossy"]);
    let blocking = Proc::spawn(&["sub", &name]);
    wait_for_subscribers(&name, 2);
    lossy.signal(Signal::STOP);
    const N: usize = 20_000;
    let input = lines(N);
    let mut publisher = Proc::spawn(&["pub", &name, "--capacity", "4K"]);
    publisher.stdin().write_all(input.as_bytes()).unwrap();
    let (code, _, err) = publisher.finish();
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = blocking.finish();
    assert_eq!((code, out.as_str()), (Some(0), input.as_str()), "{err}");
    lossy.signal(Signal::CONT);
    let (code, out, err) = lossy.finish();
    assert_eq!(code, Some(0), "{err}");
    // what it printed, in order, plus what it says it missed, is everything
    let got: Vec<usize> = out
        .lines()
        .map(|l| l.strip_prefix("line ").unwrap().parse().unwrap())
        .collect();
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, no duplicate");
    let missed: usize = err
        .lines()
        .map(|l| {
            let n = l.split("missed ").nth(1).expect(l).split(' ').next().unwrap();
            n.parse::<usize>().unwrap()
        })
        .sum();
    assert!(missed > 0, "it was lapped while stopped: {err}");
    assert_eq!(got.len() + missed, N, "{err}");
    assert!(gone(&name));
}

#[test]
fn exit_codes_timeout_and_a_dead_publisher() {
    let (name, _guard) = posix_name();
    // nobody publishes: 9, and nothing left behind
    let out = run(&["sub", &name, "--timeout", "200ms"]);
    assert_code(&out, 9);
    assert!(gone(&name));
    // the publisher dies: the subscriber prints everything, then exits 8
    let mut publisher = Proc::spawn(&["pub", &name]);
    let sub = Proc::spawn(&["sub", &name]);
    wait_for_subscribers(&name, 1);
    publisher.stdin().write_all(b"one\ntwo\n").unwrap();
    publisher.stdin().flush().unwrap();
    let name2 = ShmName::new(name.as_str()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while shmkit::topic::info(&name2).map_or(true, |i| i.messages_published < 2) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    publisher.signal(Signal::KILL);
    let (code, out, err) = sub.finish();
    assert_eq!((code, out.as_str()), (Some(8), "one\ntwo\n"), "{err}");
    assert!(err.contains("publisher"), "{err}");
    drop(publisher);
    assert!(gone(&name), "the last subscriber out removed it");
}
