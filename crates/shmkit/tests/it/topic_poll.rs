//! Pollable topic endpoints between real processes: a polled subscriber
//! misses no message from a publisher that pauses at random; a killed
//! publisher makes a subscriber's descriptor readable (also across PID
//! namespaces); a polled publisher held up by a blocking subscriber wakes
//! when it reads and when it is killed; no descriptor and no file is left
//! behind.

use std::process::Command;
use std::time::{Duration, Instant};

use shmkit::posix::ShmName;
use shmkit::topic::{Options, Publisher, SubOptions, Subscriber, TryRecvError, TrySendError};
use shmkit::wait::{self, WaitSet};
use shmkit::{Error, Role};

use crate::common::{is_root, posix_name, LiveChild};

/// The longest a wake-up may take: reaching it means one was lost.
const LOST: Duration = Duration::from_secs(1);

fn sub_opts() -> SubOptions {
    SubOptions::new().timeout(Duration::from_secs(20))
}

/// Message `n`: its number, then `n % 23` bytes that depend on it.
fn message(n: u64) -> Vec<u8> {
    let mut m = n.to_le_bytes().to_vec();
    m.extend((0..n % 23).map(|i| (n as u8) ^ (i as u8)));
    m
}

/// Child roles for these tests; `child::main` hands roles starting with
/// `tpoll-` here.
pub fn child_role(role: &str, args: &[String]) {
    let report = |line: String| println!("@{line}");
    let name = ShmName::new(args[0].as_str()).unwrap();
    match role {
        // tpoll-pub-jitter NAME COUNT SEED: wait for a line (a subscriber
        // has joined), publish COUNT messages, pausing 0-50 µs
        // (pseudo-random, spinning) before each, then close.
        "tpoll-pub-jitter" => {
            let count: u64 = args[1].parse().unwrap();
            let mut rng: u64 = args[2].parse().unwrap();
            let mut p = Publisher::connect(&name, &Options::new().capacity(1 << 16)).unwrap();
            report("connected".into());
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
            for n in 0..count {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let pause = Duration::from_nanos(rng % 50_001);
                let start = Instant::now();
                while start.elapsed() < pause {
                    std::hint::spin_loop();
                }
                p.send(&message(n)).unwrap();
            }
            report("done".into());
        }
        // tpoll-pub-hold NAME: connect, report, then on each line publish
        // the next message and report it; hold until killed.
        "tpoll-pub-hold" => {
            let mut p = Publisher::connect(&name, &Options::new()).unwrap();
            report("connected".into());
            let mut n = 0;
            loop {
                let mut line = String::new();
                if std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line).unwrap() == 0 {
                    return;
                }
                p.send(&message(n)).unwrap();
                report(format!("sent {n}"));
                n += 1;
            }
        }
        // tpoll-sub NAME COUNT DELAY_MS: a blocking subscriber that reports
        // once joined, sleeps DELAY_MS, then reads COUNT messages (checking
        // each) and reports; then holds until killed (or stdin closes).
        "tpoll-sub" => {
            let count: u64 = args[1].parse().unwrap();
            let delay: u64 = args[2].parse().unwrap();
            let mut sub = Subscriber::connect(&name, &sub_opts()).unwrap();
            report("joined".into());
            std::thread::sleep(Duration::from_millis(delay));
            for n in 0..count {
                assert_eq!(sub.recv().unwrap(), message(n), "message {n}");
            }
            report(format!("read {count}"));
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
        }
        // tpoll-fd-cycles NAME N: a polled publisher; N times a polled
        // subscriber joins, is woken for one message, leaves. Reports the
        // open descriptors before and after.
        "tpoll-fd-cycles" => {
            let n: u32 = args[1].parse().unwrap();
            let mut p = Publisher::connect(&name, &Options::new()).unwrap();
            let mut pset = WaitSet::new().unwrap();
            pset.add(&p, 0).unwrap();
            // measured after the first cycle: the publisher keeps the
            // doorbell of a seat it rang open until it rings that seat again
            let mut before = 0;
            for i in 0..n {
                if i == 1 {
                    before = open_fds();
                }
                let mut sub = Subscriber::connect(&name, &sub_opts()).unwrap();
                let mut set = WaitSet::new().unwrap();
                set.add(&sub, 1).unwrap();
                // the first readiness after taking the descriptor: spurious
                assert_eq!(set.wait(Some(LOST)).unwrap(), &[1]);
                assert!(matches!(sub.try_recv(), Err(TryRecvError::Empty)), "armed");
                p.try_send(&message(u64::from(i))).unwrap();
                assert_eq!(set.wait(Some(LOST)).unwrap(), &[1], "cycle {i}: not woken");
                assert_eq!(sub.try_recv().unwrap(), message(u64::from(i)));
            }
            report(format!("fds {before} {}", open_fds()));
        }
        other => panic!("unknown role {other}"),
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Everything of `name` in `/dev/shm`: the object, its doorbells, lives.
fn files_of(name: &ShmName) -> Vec<String> {
    let object = name.file_name();
    let prefix = format!("{object}.");
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n == object || n.starts_with(&prefix))
        .collect()
}

/// Receives messages `0..count` polling; returns the number of waits and
/// the longest.
fn receive_polling(sub: &mut Subscriber, set: &mut WaitSet, count: u64) -> (u64, Duration) {
    let mut buf = Vec::new();
    let (mut waits, mut longest) = (0u64, Duration::ZERO);
    let mut next = 0u64;
    while next < count {
        match sub.try_recv_into(&mut buf) {
            Ok(()) => {
                assert_eq!(buf, message(next), "message {next}");
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

/// Waits for the publisher's end through the descriptor: `Closed` or
/// `PeerGone`, and how long it took.
fn wait_for_end(sub: &mut Subscriber, set: &mut WaitSet) -> (Error, Duration) {
    let started = Instant::now();
    loop {
        match sub.try_recv() {
            Err(TryRecvError::Empty) => assert_eq!(set.wait(Some(LOST)).unwrap(), &[0], "the end did not wake"),
            Err(TryRecvError::Disconnected(e)) => return (e, started.elapsed()),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_polled_subscriber_gets_every_message_of_a_jittery_publisher() {
    let (name, _guard) = posix_name();
    let count: u64 = 100_000;
    let seed = u64::from(std::process::id()) | 1;
    let mut publisher = LiveChild::spawn(
        "tpoll-pub-jitter",
        &[name.as_str(), &count.to_string(), &seed.to_string()],
    );
    assert_eq!(publisher.expect_line(), "connected");
    let mut sub = Subscriber::connect(&name, &sub_opts()).unwrap();
    let mut set = WaitSet::new().unwrap();
    set.add(&sub, 0).unwrap();
    publisher.send("go");
    let started = Instant::now();
    let (waits, longest) = receive_polling(&mut sub, &mut set, count);
    println!(
        "{count} messages in {:?}, {waits} waits on the descriptor, the longest {longest:?}",
        started.elapsed()
    );
    assert!(waits > 0, "the publisher's pauses never let the subscriber wait");
    let info = sub.info();
    let me = info.subscribers.iter().find(|s| s.seat == sub.seat()).unwrap();
    assert!(me.polling, "stat shows the polling subscriber");
    assert!(
        !info.publisher.unwrap().polling,
        "a publisher that never waited does not poll"
    );
    assert_eq!(publisher.expect_line(), "done");
    let (end, _) = wait_for_end(&mut sub, &mut set);
    assert!(
        matches!(
            end,
            Error::Closed {
                side: Role::Publisher,
                ..
            }
        ),
        "{end:?}"
    );
    publisher.finish();
    drop(sub);
    assert!(files_of(&name).is_empty(), "left: {:?}", files_of(&name));
}

/// A publisher (started by `cmd`) publishes two messages, which the polled
/// subscriber gets; then it is killed: the descriptor is readable and the
/// next call says `PeerGone`.
fn killed_publisher_wakes_the_subscriber(cmd: Command, name: &ShmName) {
    let mut publisher = LiveChild::from_command(cmd);
    assert_eq!(publisher.expect_line(), "connected");
    let mut sub = Subscriber::connect(name, &sub_opts()).unwrap();
    let mut set = WaitSet::new().unwrap();
    set.add(&sub, 0).unwrap();
    for n in 0..2 {
        publisher.send("next");
        assert_eq!(publisher.expect_line(), format!("sent {n}"));
    }
    receive_polling(&mut sub, &mut set, 2);
    assert!(
        matches!(sub.try_recv(), Err(TryRecvError::Empty)),
        "armed, nothing there"
    );
    assert!(
        set.wait(Some(Duration::from_millis(50))).unwrap().is_empty(),
        "nothing happened yet"
    );
    let killed = Instant::now();
    publisher.kill();
    assert_eq!(set.wait(Some(LOST)).unwrap(), &[0], "the kill did not wake the poller");
    let (end, _) = wait_for_end(&mut sub, &mut set);
    let woken = killed.elapsed();
    assert!(
        matches!(
            end,
            Error::PeerGone {
                side: Role::Publisher,
                ..
            }
        ),
        "{end:?}"
    );
    println!("readable and PeerGone {woken:?} after the SIGKILL");
    drop(sub);
    // the last one out removes the object and what the killed one left
    assert!(files_of(name).is_empty(), "left: {:?}", files_of(name));
}

#[test]
fn a_killed_publisher_makes_the_subscribers_descriptor_readable() {
    let (name, _guard) = posix_name();
    killed_publisher_wakes_the_subscriber(crate::common::child("tpoll-pub-hold", &[name.as_str()]), &name);
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn a_killed_publisher_in_another_pid_namespace_makes_the_descriptor_readable() {
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
    let inner = crate::common::child("tpoll-pub-hold", &[name.as_str()]);
    let mut outer = Command::new("unshare");
    // killing unshare kills the publisher (--kill-child), in its namespace
    outer
        .args(["--pid", "--fork", "--kill-child", "--mount-proc"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    killed_publisher_wakes_the_subscriber(outer, &name);
}

/// Publishes messages `from..` with `try_send` until the ring is full.
fn fill(p: &mut Publisher, from: u64) -> u64 {
    let mut n = from;
    loop {
        match p.try_send(&message(n)) {
            Ok(()) => n += 1,
            Err(TrySendError::Full) => return n,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_polled_publisher_wakes_when_its_blocking_subscriber_reads() {
    let (name, _guard) = posix_name();
    let count: u64 = 20_000;
    let mut p = Publisher::connect(&name, &Options::new().capacity(4096)).unwrap();
    // slow at first, so that the publisher fills the ring and waits
    let mut sub = LiveChild::spawn("tpoll-sub", &[name.as_str(), &count.to_string(), "20"]);
    assert_eq!(sub.expect_line(), "joined");
    let (mut sent, mut waits) = (0u64, 0u64);
    while sent < count {
        match p.try_send(&message(sent)) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full) => {
                assert!(
                    wait::readable(&p, Some(LOST)).unwrap(),
                    "no room came: a wake-up was lost"
                );
                waits += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(sub.expect_line(), format!("read {count}"));
    assert!(waits > 0, "the ring never filled");
    println!("{count} messages, {waits} waits for room");
    sub.finish();
    drop(p);
    assert!(files_of(&name).is_empty(), "left: {:?}", files_of(&name));
}

#[test]
fn a_polled_publisher_wakes_when_its_blocking_subscriber_is_killed() {
    let (name, _guard) = posix_name();
    let mut p = Publisher::connect(&name, &Options::new().capacity(4096)).unwrap();
    let mut set = WaitSet::new().unwrap();
    set.add(&p, 0).unwrap();
    // it reads nothing (it sleeps far longer than the test)
    let mut sub = LiveChild::spawn("tpoll-sub", &[name.as_str(), "1", "600000"]);
    assert_eq!(sub.expect_line(), "joined");
    let sent = fill(&mut p, 0);
    assert!(sent > 0);
    // the spurious readiness of the first take, then armed and quiet
    let _ = set.wait(Some(Duration::from_millis(1))).unwrap();
    assert!(matches!(p.try_send(&message(sent)), Err(TrySendError::Full)));
    assert!(
        set.wait(Some(Duration::from_millis(50))).unwrap().is_empty(),
        "still full"
    );
    assert!(p.info().publisher.unwrap().polling, "stat shows the polling publisher");
    let killed = Instant::now();
    sub.kill();
    assert_eq!(set.wait(Some(LOST)).unwrap(), &[0], "the kill did not wake the poller");
    // the dead subscriber no longer holds it up
    p.try_send(&message(sent)).unwrap();
    println!("readable and room {:?} after the SIGKILL", killed.elapsed());
    drop(p);
    assert!(files_of(&name).is_empty(), "left: {:?}", files_of(&name));
}

#[test]
fn no_descriptor_is_leaked_over_a_thousand_polled_subscriptions() {
    let (name, _guard) = posix_name();
    crate::common::check_descriptor_cycles("tpoll-fd-cycles", &name);
}

#[test]
fn a_subscriber_and_a_publisher_under_tokio() {
    let (name, _guard) = posix_name();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let count = 5_000u64;
    rt.block_on(async {
        let p = Publisher::connect(&name, &Options::new().capacity(4096)).unwrap();
        let sub = Subscriber::connect(&name, &sub_opts()).unwrap();
        let mut p = shmkit::tokio::Async::new(p).unwrap();
        let mut sub = shmkit::tokio::Async::new(sub).unwrap();
        // the publisher fills the ring and waits for room on the reactor;
        // the subscriber waits for messages on it: one thread, both tasks
        let publishing = async {
            for n in 0..count {
                let m = message(n);
                p.until(|p| match p.try_send(&m) {
                    Ok(()) => Ok(Some(())),
                    Err(TrySendError::Full) => Ok(None),
                    Err(e) => Err(e.into_error().unwrap()),
                })
                .await
                .unwrap();
            }
            drop(p); // close
        };
        let receiving = async {
            let mut next = 0;
            loop {
                let got = sub
                    .until(|s| match s.try_recv() {
                        Ok(m) => Ok(Some(Some(m))),
                        Err(TryRecvError::Empty) => Ok(None),
                        Err(TryRecvError::Disconnected(Error::Closed { .. })) => Ok(Some(None)),
                        Err(e) => panic!("{e}"),
                    })
                    .await
                    .unwrap();
                match got {
                    Some(m) => {
                        assert_eq!(m, message(next));
                        next += 1;
                    }
                    None => return next,
                }
            }
        };
        let ((), got) = tokio::join!(publishing, receiving);
        assert_eq!(got, count);
    });
    assert!(files_of(&name).is_empty(), "left: {:?}", files_of(&name));
}

#[test]
fn a_hostile_scribbler_cannot_crash_or_hang_polled_endpoints() {
    let (name, _guard) = posix_name();
    let mut p = Publisher::connect(&name, &Options::new().capacity(4096)).unwrap();
    let mut subs = vec![
        Subscriber::connect(&name, &sub_opts()).unwrap(),
        Subscriber::connect(&name, &sub_opts().lossy(true)).unwrap(),
    ];
    // random words into the header (poll words, events, seats) and the ring
    let mut scribbler = LiveChild::spawn("chan-scribble", &[name.as_str(), "500"]);
    assert_eq!(scribbler.expect_line(), "scribbling");
    let slice = Duration::from_millis(50);
    let publisher = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(1);
        let mut n = 0u64;
        while Instant::now() < end {
            match p.try_send(&message(n)) {
                Ok(()) => n += 1,
                Err(TrySendError::Full) => {
                    wait::readable(&p, Some(slice)).unwrap();
                }
                Err(TrySendError::Failed(Error::Corrupt { .. })) => return "corrupt",
                Err(e) => panic!("publisher: unexpected {e}"),
            }
        }
        "ok"
    });
    let mut outcomes = std::collections::BTreeMap::new();
    for sub in &mut subs {
        let end = Instant::now() + Duration::from_millis(500);
        while Instant::now() < end {
            let what = match sub.try_recv() {
                Ok(m) => {
                    assert!(m.len() <= sub.max_message());
                    "ok"
                }
                Err(TryRecvError::Empty) => {
                    wait::readable(&*sub, Some(slice)).unwrap();
                    "empty"
                }
                Err(TryRecvError::Lagged { .. }) => "lagged",
                Err(TryRecvError::Failed(Error::Corrupt { .. })) => "corrupt",
                Err(e) if e.is_disconnected() => "disconnected",
                Err(e) => panic!("subscriber: unexpected {e}"),
            };
            *outcomes.entry(what).or_insert(0u32) += 1;
            if matches!(what, "corrupt" | "disconnected") {
                break; // a corrupt topic stays corrupt: stop, as a user would
            }
        }
    }
    let published = publisher.join().unwrap();
    eprintln!("publisher: {published}; subscribers: {outcomes:?}");
    let landed = scribbler.expect_line();
    let n: u64 = landed.strip_prefix("landed ").unwrap().parse().unwrap();
    assert!(n > 1000, "only {n} scribbles landed");
    scribbler.finish();
}
