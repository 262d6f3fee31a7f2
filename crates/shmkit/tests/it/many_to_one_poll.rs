//! Pollable many-to-one endpoints between real processes: a polled
//! receiver misses no wake-up from two jittery senders, a killed receiver
//! makes a polled sender's descriptor readable (also across PID
//! namespaces), no descriptor, doorbell or life is left behind.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use shmkit::many_to_one::{Options, Receiver, Sender, TryRecvError, TrySendError};
use shmkit::posix::ShmName;
use shmkit::wait::WaitSet;
use shmkit::{Error, Role};

use crate::common::{fifos_of, is_root, posix_name, LiveChild};

/// No wake-up may take longer (issue 14): reaching it means one was lost.
const LOST: Duration = Duration::from_secs(1);
/// How long a test waits for something that must come (a child's start).
const LONG: Duration = Duration::from_secs(20);

fn opts(senders: usize) -> Options {
    Options::new()
        .senders(senders)
        .capacity(4096)
        .timeout(Duration::from_secs(20))
}

/// Child roles for these tests (`m2opoll-*`).
pub fn child_role(role: &str, args: &[String]) {
    let report = |line: String| println!("@{line}");
    let name = ShmName::new(args[0].as_str()).unwrap();
    match role {
        // m2opoll-send-jitter NAME COUNT SEED: send COUNT sequence numbers,
        // pausing 0-50 µs (pseudo-random, spinning) before each, then leave.
        "m2opoll-send-jitter" => {
            let count: u64 = args[1].parse().unwrap();
            let mut rng: u64 = args[2].parse().unwrap();
            let mut tx = Sender::connect(&name, &opts(2)).unwrap();
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
        // m2opoll-recv-hold NAME: connect as the receiver, report, receive
        // nothing, hold until killed.
        "m2opoll-recv-hold" => {
            let _rx = Receiver::connect(&name, &opts(1)).unwrap();
            report("connected".into());
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
        }
        // m2opoll-send-fill-hold NAME: connect as a sender, take the
        // descriptor, fill the ring (which arms it), report, hold until
        // killed.
        "m2opoll-send-fill-hold" => {
            let mut tx = Sender::connect(&name, &opts(1)).unwrap();
            let _ = std::os::fd::AsFd::as_fd(&tx);
            while tx.try_send(&[3; 100]).is_ok() {}
            report("full".into());
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
        }
        // m2opoll-fd-cycles PREFIX N: N cycles of a polled receiver (a
        // thread) and a polled sender that send one message and leave;
        // report the open descriptors before and after.
        "m2opoll-fd-cycles" => {
            let prefix = &args[0];
            let n: u32 = args[1].parse().unwrap();
            let before = open_fds();
            for i in 0..n {
                let name = ShmName::new(format!("{prefix}-{i}")).unwrap();
                let mut rx = Receiver::connect(&name, &opts(1)).unwrap();
                let n2 = name.clone();
                let t = std::thread::spawn(move || {
                    let mut tx = Sender::connect(&n2, &opts(1)).unwrap();
                    let _ = std::os::fd::AsRawFd::as_raw_fd(&tx); // poll mode
                    tx.try_send(b"x").unwrap();
                });
                let mut set = WaitSet::new().unwrap();
                set.add(&rx, 0).unwrap();
                let got = loop {
                    match rx.try_recv() {
                        Ok(m) => break m.bytes,
                        Err(TryRecvError::Empty) => assert_eq!(set.wait(Some(LONG)).unwrap(), &[0]),
                        Err(e) => panic!("{e}"),
                    }
                };
                assert_eq!(got, b"x");
                t.join().unwrap();
            }
            report(format!("fds {before} {}", open_fds()));
        }
        // m2opoll-send-on-line NAME: connect as a sender, report, send
        // "last" when a line comes, report, hold until killed.
        "m2opoll-send-on-line" => {
            let mut tx = Sender::connect(&name, &opts(1)).unwrap();
            report("connected".into());
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
            tx.send(b"last").unwrap();
            report("sent".into());
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
        }
        // m2opoll-send-leave-forked NAME: connect as a sender, send "last",
        // fork a child that keeps copies of every descriptor (as a process
        // another thread spawns does until it execs), leave in order,
        // report; the child closes its copy of the life first, then, 200 ms
        // later, the rest (the lock goes last).
        "m2opoll-send-leave-forked" => {
            let mut tx = Sender::connect(&name, &opts(1)).unwrap();
            tx.send(b"last").unwrap();
            // SAFETY: the child closes descriptors, sleeps and calls _exit
            // (async-signal-safe calls only); the parent waits for it.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork");
            if pid == 0 {
                for entry in std::fs::read_dir("/proc/self/fd").into_iter().flatten().flatten() {
                    let is_life = std::fs::read_link(entry.path()).is_ok_and(|t| t.to_string_lossy().contains(".life"));
                    if let (true, Ok(fd)) = (is_life, entry.file_name().to_string_lossy().parse::<i32>()) {
                        // SAFETY: closes this child's copy of a descriptor.
                        unsafe { libc::close(fd) };
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
                // SAFETY: ends the child without running the parent's
                // destructors.
                unsafe { libc::_exit(0) };
            }
            drop(tx);
            report("left".into());
            let mut status = 0;
            // SAFETY: waitpid on our own child with a valid pointer.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        }
        other => panic!("unknown role {other}"),
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Whether a new PID namespace can be made here (root, `unshare`);
/// prints why not.
pub(crate) fn can_unshare() -> bool {
    if !is_root() {
        println!("skipped: needs root for a new PID namespace");
        return false;
    }
    match Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output()
    {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            println!(
                "skipped: no new PID namespace here: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
        Err(e) => {
            println!("skipped: cannot run unshare: {e}");
            false
        }
    }
}

/// Runs child `role` under `unshare --pid --fork` (killing unshare kills it).
pub(crate) fn spawn_unshared(role: &str, args: &[&str]) -> LiveChild {
    let inner = crate::common::child(role, args);
    let mut outer = Command::new("unshare");
    outer
        .args(["--pid", "--fork", "--kill-child", "--mount-proc"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    LiveChild::from_command(outer)
}

#[test]
fn a_polled_receiver_gets_every_message_from_two_jittery_senders() {
    let (name, _guard) = posix_name();
    let per_sender: u64 = 50_000;
    let mut rx = Receiver::connect(&name, &opts(2)).unwrap();
    let mut set = WaitSet::new().unwrap();
    set.add(&rx, 0).unwrap();
    let seed = u64::from(std::process::id()) | 1;
    let mut senders: Vec<LiveChild> = (0..2)
        .map(|i| {
            LiveChild::spawn(
                "m2opoll-send-jitter",
                &[name.as_str(), &per_sender.to_string(), &(seed * (i + 3)).to_string()],
            )
        })
        .collect();
    // per sender (seat and generation): the next sequence number
    let mut next: HashMap<(usize, u32), u64> = HashMap::new();
    let (mut total, mut waits, mut longest) = (0u64, 0u64, Duration::ZERO);
    let mut buf = Vec::new();
    let started = Instant::now();
    let end = loop {
        match rx.try_recv_into(&mut buf) {
            Ok(from) => {
                let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
                let want = next.entry((from.seat, from.generation)).or_insert(0);
                assert_eq!(seq, *want, "from {from:?}: order kept, nothing lost or repeated");
                *want += 1;
                total += 1;
            }
            Err(TryRecvError::Empty) => {
                let t = Instant::now();
                let ready = set.wait(Some(LOST)).unwrap().to_vec();
                let waited = t.elapsed();
                assert_eq!(
                    ready,
                    [0],
                    "no wake-up within {LOST:?} after {total} messages: one was lost"
                );
                waits += 1;
                longest = longest.max(waited);
            }
            // both senders came, both left: the end of the stream
            Err(e) => break e,
        }
    };
    assert!(
        matches!(end, TryRecvError::Disconnected(Error::Closed { .. })),
        "{end:?}"
    );
    println!(
        "{total} messages in {:?}, {waits} waits on the descriptor, the longest {longest:?}",
        started.elapsed()
    );
    assert_eq!(total, 2 * per_sender);
    assert_eq!(next.len(), 2);
    assert!(next.values().all(|&n| n == per_sender));
    assert!(waits > 0, "the senders' pauses never let the receiver wait");
    assert!(rx.info().receiver_polling);
    for s in senders.iter_mut() {
        assert_eq!(s.expect_line(), "done");
    }
    for s in senders {
        s.finish();
    }
    drop(set);
    drop(rx);
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

/// A killed receiver: the polled sender's descriptor becomes readable and
/// its next call fails with `PeerGone`; returns how long that took.
fn killed_receiver_wakes_the_sender(name: &ShmName, mut receiver: LiveChild) -> Duration {
    assert_eq!(receiver.expect_line(), "connected");
    let mut tx = Sender::connect(name, &opts(1)).unwrap();
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
    // the first take of the descriptor rang it once; armed since
    while !set.wait(Some(Duration::from_millis(50))).unwrap().is_empty() {
        assert!(matches!(tx.try_send(&[0; 100]), Err(TrySendError::Full)));
    }
    let killed = Instant::now();
    receiver.kill();
    assert_eq!(set.wait(Some(LONG)).unwrap(), &[1], "the kill did not wake the poller");
    let result = tx.try_send(&[0; 100]);
    let took = killed.elapsed();
    match result {
        Err(TrySendError::Disconnected(Error::PeerGone {
            side: Role::Receiver, ..
        })) => {}
        other => panic!("{other:?}"),
    }
    took
}

#[test]
fn a_killed_receiver_makes_a_polled_senders_descriptor_readable() {
    let (name, _guard) = posix_name();
    let receiver = LiveChild::spawn("m2opoll-recv-hold", &[name.as_str()]);
    let took = killed_receiver_wakes_the_sender(&name, receiver);
    println!("readable and PeerGone {took:?} after the SIGKILL");
    // the sender, last to leave, removes the object and the receiver's life
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn a_receiver_killed_in_another_pid_namespace_wakes_a_polled_sender() {
    if !can_unshare() {
        return;
    }
    let (name, _guard) = posix_name();
    let receiver = spawn_unshared("m2opoll-recv-hold", &[name.as_str()]);
    let took = killed_receiver_wakes_the_sender(&name, receiver);
    println!("across PID namespaces: readable and PeerGone {took:?} after the SIGKILL");
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

#[test]
fn a_receiver_that_leaves_makes_a_polled_senders_descriptor_readable() {
    let (name, _guard) = posix_name();
    let rx = Receiver::connect(&name, &opts(1)).unwrap();
    let mut tx = Sender::connect(&name, &opts(1)).unwrap();
    let _ = std::os::fd::AsFd::as_fd(&tx); // poll mode (rung once)
    while tx.try_send(&[1; 200]).is_ok() {}
    while shmkit::wait::readable(&tx, Some(Duration::ZERO)).unwrap() {
        assert!(matches!(tx.try_send(&[1; 200]), Err(TrySendError::Full)));
    }
    drop(rx);
    assert!(shmkit::wait::readable(&tx, Some(LONG)).unwrap());
    match tx.try_send(&[1; 200]) {
        Err(TrySendError::Disconnected(Error::Closed { .. })) => {}
        other => panic!("{other:?}"),
    }
    drop(tx);
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

#[test]
fn a_killed_polled_senders_doorbell_is_replaced_then_removed_with_the_object() {
    let (name, _guard) = posix_name();
    let mut rx = Receiver::connect(&name, &opts(1)).unwrap();
    let mut sender = LiveChild::spawn("m2opoll-send-fill-hold", &[name.as_str()]);
    assert_eq!(sender.expect_line(), "full");
    let before = fifos_of(&name);
    assert_eq!(
        before.len(),
        3,
        "the receiver's life, the sender's life and doorbell: {before:?}"
    );
    let info = shmkit::many_to_one::info(&name).unwrap();
    assert!(info.seats[0].polling && !info.receiver_polling, "{info:?}");
    sender.kill();
    // its frames are still delivered
    let mut n = 0;
    while let Ok(m) = rx.try_recv() {
        assert_eq!(m.bytes, [3; 100]);
        n += 1;
    }
    assert!(n > 0);
    // a new sender in the seat, polling: its doorbell replaces the dead one's
    let n2 = name.clone();
    let t = std::thread::spawn(move || {
        let mut tx = Sender::connect(&n2, &opts(1)).unwrap();
        let _ = std::os::fd::AsFd::as_fd(&tx);
        while tx.try_send(&[4; 100]).is_ok() {}
        fifos_of(&n2)
    });
    // settles the seat (fresh rings for the new sender) while it waits
    let deadline = Instant::now() + LONG;
    while !t.is_finished() {
        assert!(Instant::now() < deadline, "the new sender never got its ring");
        let _ = rx.recv_timeout(Duration::from_millis(10));
    }
    let during = t.join().unwrap();
    assert_eq!(during.len(), 3, "one life and one doorbell for the seat: {during:?}");
    assert!(
        !rx.info().seats[0].polling,
        "the new sender left: its poll word is cleared"
    );
    drop(rx);
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

#[test]
fn no_descriptor_is_leaked_over_a_thousand_connections() {
    let (name, _guard) = posix_name();
    crate::common::check_descriptor_cycles("m2opoll-fd-cycles", &name);
}

#[test]
fn a_receiver_and_a_client_made_async_with_tokio() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // many-to-one: a receiver task, two sender threads
    let (name, _guard) = posix_name();
    let rx = Receiver::connect(&name, &opts(2)).unwrap();
    let senders: Vec<_> = (0..2u8)
        .map(|w| {
            let n2 = name.clone();
            std::thread::spawn(move || {
                let mut tx = Sender::connect(&n2, &opts(2)).unwrap();
                for i in 0..1000u32 {
                    if i % 100 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    tx.send(&[w]).unwrap();
                }
            })
        })
        .collect();
    let counts = rt.block_on(async {
        let mut rx = shmkit::tokio::Async::new(rx).unwrap();
        let mut counts = [0u32; 2];
        loop {
            let got = rx
                .until(|rx| match rx.try_recv() {
                    Ok(m) => Ok(Some(Some(m))),
                    Err(TryRecvError::Empty) => Ok(None),
                    Err(TryRecvError::Disconnected(Error::Closed { .. })) => Ok(Some(None)),
                    Err(e) => Err(e.into_error().unwrap()),
                })
                .await
                .unwrap();
            match got {
                Some(m) => counts[usize::from(m.bytes[0])] += 1,
                None => break counts,
            }
        }
    });
    assert_eq!(counts, [1000, 1000]);
    for s in senders {
        s.join().unwrap();
    }
    // service: a client task, a server thread
    use shmkit::service;
    let (svc, _guard2) = posix_name();
    let sopts = service::Options::new().clients(1).timeout(Duration::from_secs(20));
    let mut server = service::Server::connect(&svc, &sopts).unwrap();
    let serving = std::thread::spawn(move || {
        for _ in 0..100 {
            let req = server.recv_request().unwrap();
            std::thread::sleep(Duration::from_micros(200));
            server.respond(req.client, req.id, &req.body).unwrap();
        }
    });
    let client = service::Client::connect(&svc, &sopts).unwrap();
    rt.block_on(async {
        let mut client = shmkit::tokio::Async::new(client).unwrap();
        for i in 0..100u32 {
            let id = client.get_mut().try_send_request(&i.to_le_bytes()).unwrap();
            let r = client
                .until(|c| match c.try_receive_response(id) {
                    Ok(r) => Ok(Some(r)),
                    Err(shmkit::service::TryRecvError::Empty) => Ok(None),
                    Err(e) => Err(e.into_error().unwrap()),
                })
                .await
                .unwrap();
            assert_eq!(r.body, i.to_le_bytes());
        }
    });
    serving.join().unwrap();
    assert!(fifos_of(&name).is_empty() && fifos_of(&svc).is_empty());
}

#[test]
fn a_hostile_scribbler_cannot_crash_or_hang_polled_endpoints() {
    let (name, _guard) = posix_name();
    let mut rx = Receiver::connect(&name, &opts(2)).unwrap();
    let senders: Vec<Sender> = (0..2).map(|_| Sender::connect(&name, &opts(2)).unwrap()).collect();
    // random words into the header (poll words, events, seats) and the rings
    let mut scribbler = LiveChild::spawn("chan-scribble", &[name.as_str(), "500"]);
    assert_eq!(scribbler.expect_line(), "scribbling");
    let slice = Duration::from_millis(50);
    let threads: Vec<_> = senders
        .into_iter()
        .map(|mut tx| {
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_secs(1);
                while Instant::now() < end {
                    match tx.try_send(&[5; 64]) {
                        Ok(()) => {}
                        Err(TrySendError::Full) => {
                            shmkit::wait::readable(&tx, Some(slice)).unwrap();
                        }
                        Err(TrySendError::Failed(Error::Corrupt { .. })) => return "corrupt",
                        Err(e) if e.is_disconnected() => return "disconnected",
                        Err(e) => panic!("sender: unexpected {e}"),
                    }
                }
                "ok"
            })
        })
        .collect();
    let mut outcomes = std::collections::BTreeMap::new();
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        let what = match rx.try_recv() {
            Ok(m) => {
                assert!(m.bytes.len() <= rx.max_message());
                "ok"
            }
            Err(TryRecvError::Empty) => {
                shmkit::wait::readable(&rx, Some(slice)).unwrap();
                "empty"
            }
            Err(TryRecvError::Failed(Error::Corrupt { .. })) => "corrupt",
            Err(e) if e.is_disconnected() => "disconnected",
            Err(e) => panic!("receiver: unexpected {e}"),
        };
        *outcomes.entry(what).or_insert(0u32) += 1;
        if matches!(what, "corrupt" | "disconnected") {
            break; // a corrupt object stays corrupt: stop, as a user would
        }
    }
    let sent: Vec<&str> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    eprintln!("senders: {sent:?}; receiver: {outcomes:?}");
    let landed = scribbler.expect_line();
    let n: u64 = landed.strip_prefix("landed ").unwrap().parse().unwrap();
    assert!(n > 1000, "only {n} scribbles landed");
    scribbler.finish();
}

/// Takes a polled hub's poller bits from `data` as a notifier does just
/// before it rings (`Top` at 128, `data.waiters` at +4, in many-to-one
/// objects and services): a notifier killed there leaves the hub armed
/// without a bit.
pub(crate) fn take_the_hubs_bit(name: &ShmName) {
    let map = shmkit::posix::PosixShm::open(name, &shmkit::posix::Options::new())
        .unwrap()
        .map()
        .unwrap();
    assert!(map.len() > 136);
    // SAFETY: offset 132 is inside the mapping (checked) and 4-aligned (the
    // mapping is page-aligned); an atomic access to shared memory.
    let waiters = unsafe { &*(map.as_mut_ptr().add(132) as *const std::sync::atomic::AtomicU32) };
    let taken = waiters.fetch_and(0xFFFF, std::sync::atomic::Ordering::SeqCst);
    assert_ne!(taken & !0xFFFF, 0, "the hub had armed");
}

/// Calls `try_recv` until it reports `Empty` with nothing left to wake the
/// descriptor (a ring from a sender's joining is drained).
fn settle_armed(rx: &mut Receiver, set: &mut WaitSet) {
    let deadline = Instant::now() + LONG;
    loop {
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        if set.wait(Some(Duration::ZERO)).unwrap().is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "the descriptor stays readable");
    }
}

#[test]
fn a_sender_killed_between_its_frame_and_its_ring_still_wakes_a_polled_receiver() {
    let (name, _guard) = posix_name();
    let mut rx = Receiver::connect(&name, &opts(1)).unwrap();
    let mut set = WaitSet::new().unwrap();
    set.add(&rx, 0).unwrap();
    let mut sender = LiveChild::spawn("m2opoll-send-on-line", &[name.as_str()]);
    assert_eq!(sender.expect_line(), "connected");
    settle_armed(&mut rx, &mut set);
    // the sender's ring will find no bit: as if another notifier had taken
    // it and died before ringing
    take_the_hubs_bit(&name);
    sender.send("go");
    assert_eq!(sender.expect_line(), "sent");
    assert!(set.wait(Some(Duration::ZERO)).unwrap().is_empty(), "nobody rang");
    sender.kill();
    // its life hangs up: the receiver wakes, gets the frame, then the end
    assert_eq!(set.wait(Some(LONG)).unwrap(), &[0], "the sender's death woke nobody");
    let got = rx.try_recv().unwrap();
    assert_eq!(got.bytes, b"last");
    let deadline = Instant::now() + LONG;
    let end = loop {
        match rx.try_recv() {
            Err(TryRecvError::Empty) => {
                assert_eq!(set.wait(Some(LOST)).unwrap(), &[0], "the end of the stream woke nobody");
            }
            Err(e) => break e,
            Ok(m) => panic!("unexpected {:?}", m.bytes),
        }
        assert!(Instant::now() < deadline);
    };
    assert!(
        matches!(
            end,
            TryRecvError::Disconnected(Error::PeerGone { side: Role::Sender, .. })
        ),
        "{end}"
    );
    drop(rx);
    assert!(fifos_of(&name).is_empty(), "{:?}", fifos_of(&name));
}

#[test]
fn a_sender_whose_descriptors_outlive_its_leaving_still_ends_a_polled_stream() {
    let (name, _guard) = posix_name();
    let mut rx = Receiver::connect(&name, &opts(1)).unwrap();
    let mut set = WaitSet::new().unwrap();
    set.add(&rx, 0).unwrap();
    let mut sender = LiveChild::spawn("m2opoll-send-leave-forked", &[name.as_str()]);
    let deadline = Instant::now() + LONG;
    let mut got = Vec::new();
    let end = loop {
        match rx.try_recv() {
            Ok(m) => got.push(m.bytes),
            Err(TryRecvError::Empty) => {
                assert_eq!(set.wait(Some(LOST)).unwrap(), &[0], "the end of the stream woke nobody");
            }
            Err(e) => break e,
        }
        assert!(Instant::now() < deadline);
    };
    assert_eq!(got, [b"last".to_vec()]);
    assert!(
        matches!(
            end,
            TryRecvError::Disconnected(Error::Closed { side: Role::Sender, .. })
        ),
        "{end}"
    );
    assert_eq!(sender.expect_line(), "left");
    sender.finish();
}
