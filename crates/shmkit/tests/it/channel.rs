//! Channels between real processes: order, sizes, start-up, crashes, a
//! hostile peer, and cleanup.

use std::time::{Duration, Instant};

use shmkit::channel::{self, Options, Receiver, Sender};
use shmkit::posix::{PosixShm, ShmName};
use shmkit::{Error, Role};

use crate::common::{posix_name, LiveChild};

/// Child roles for these tests; `child::main` hands roles starting with
/// `chan-` here.
pub fn child_role(role: &str, args: &[String]) {
    let name = ShmName::new(args[0].as_str()).unwrap();
    let report = |line: String| println!("@{line}");
    match role {
        // chan-send-seq NAME COUNT: send COUNT sequence numbers, then close.
        "chan-send-seq" => {
            let count: u64 = args[1].parse().unwrap();
            let mut tx = Sender::connect(&name, &opts()).unwrap();
            report(format!("connected {}", std::process::id()));
            for i in 0..count {
                tx.send(&i.to_le_bytes()).unwrap();
            }
        }
        // chan-send-hold NAME COUNT: send COUNT sequence numbers, report,
        // and close only when the parent closes our stdin.
        "chan-send-hold" => {
            let count: u64 = args[1].parse().unwrap();
            let mut tx = Sender::connect(&name, &opts()).unwrap();
            for i in 0..count {
                tx.send(&i.to_le_bytes()).unwrap();
            }
            report(format!("sent {count}"));
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
        }
        // chan-send-forever NAME: send sequence numbers until killed (or
        // until the channel fails, which it reports).
        "chan-send-forever" => {
            let mut tx = Sender::connect(&name, &opts()).unwrap();
            report("connected".into());
            let mut i = 0u64;
            loop {
                if let Err(e) = tx.send(&i.to_le_bytes()) {
                    report(format!("error {e}"));
                    return;
                }
                i += 1;
            }
        }
        // chan-send-sizes NAME: one message of every size from 0 to the max.
        "chan-send-sizes" => {
            let mut tx = Sender::connect(&name, &opts()).unwrap();
            for len in 0..=tx.max_message() {
                let msg: Vec<u8> = (0..len).map(|i| (i + len) as u8).collect();
                tx.send(&msg).unwrap();
            }
        }
        // chan-recv-count NAME: receive until closed, report the count.
        "chan-recv-count" => {
            let mut rx = Receiver::connect(&name, &opts()).unwrap();
            let mut n = 0u64;
            let mut buf = Vec::new();
            loop {
                match rx.recv_into(&mut buf) {
                    Ok(()) => {
                        assert_eq!(buf, n.to_le_bytes());
                        n += 1;
                    }
                    Err(Error::Closed { .. }) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            report(format!("received {n}"));
        }
        // chan-recv-hold NAME: connect as receiver, report, then hold until
        // killed without receiving.
        "chan-recv-hold" => {
            let _rx = Receiver::connect(&name, &opts()).unwrap();
            report("connected".into());
            std::thread::sleep(Duration::from_secs(60));
        }
        // chan-scribble NAME MILLIS: write random bytes at random places in
        // the object for MILLIS milliseconds.
        "chan-scribble" => {
            let millis: u64 = args[1].parse().unwrap();
            let shm = PosixShm::open(&name, &Default::default()).unwrap();
            let map = shm.map().unwrap();
            report("scribbling".into());
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
            let end = Instant::now() + Duration::from_millis(millis);
            let mut landed = 0u64;
            while Instant::now() < end {
                for _ in 0..64 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // mostly the header, sometimes the ring
                    let at = if rng % 4 == 0 {
                        (rng >> 8) as usize % map.len()
                    } else {
                        (rng >> 8) as usize % 4096
                    };
                    if map.write_at(at & !7, &rng.to_le_bytes()).is_ok() {
                        landed += 1;
                    }
                }
                std::thread::yield_now();
            }
            report(format!("landed {landed}"));
        }
        // chan-create-fault NAME STEP: connect as sender, stopping (for the
        // test to kill us) at STEP of creating the channel.
        "chan-create-fault" => {
            std::env::set_var("SHMKIT_FAULT", &args[1]);
            let _tx = Sender::connect(&name, &opts()).unwrap();
            report("connected: the fault was not reached".into());
        }
        // chan-recv-as-nobody NAME: as uid 65534, create the channel as its
        // receiver and receive until closed.
        "chan-recv-as-nobody" => {
            crate::child::become_nobody();
            // generous: a loaded machine may take seconds to get the
            // parent's sender here (the test then fails with Closed)
            let opts = opts().timeout(Duration::from_secs(30));
            let mut rx = match Receiver::connect(&name, &opts) {
                Ok(rx) => rx,
                Err(e) => return report(format!("error {e}")),
            };
            report(format!(
                "received {:?}",
                rx.recv().map(|m| m.len()).map_err(|e| e.to_string())
            ));
        }
        // chan-stress-send NAME MILLIS: send sequence numbers for MILLIS ms,
        // then close; report how it ended.
        "chan-stress-send" => {
            let millis: u64 = args[1].parse().unwrap();
            let mut tx = Sender::connect(&name, &opts()).unwrap();
            report("connected".into());
            let end = Instant::now() + Duration::from_millis(millis);
            let mut i = 0u64;
            while Instant::now() < end {
                if let Err(e) = tx.send(&i.to_le_bytes()) {
                    return report(format!("sender-error {}", kind(&e)));
                }
                i += 1;
            }
            report(format!("sent {i}"));
        }
        // chan-stress-recv NAME: receive in order until the end; report how
        // it ended and whether everything committed arrived.
        "chan-stress-recv" => {
            let mut rx = Receiver::connect(&name, &opts()).unwrap();
            report("connected".into());
            let mut n = 0u64;
            let mut buf = Vec::new();
            let end = loop {
                match rx.recv_into(&mut buf) {
                    Ok(()) => {
                        assert_eq!(buf, n.to_le_bytes(), "message {n} out of order");
                        n += 1;
                    }
                    Err(e) => break e,
                }
            };
            let committed = rx.info().messages_sent;
            report(format!(
                "receiver-end {} received {n} committed {committed}",
                kind(&end)
            ));
        }
        other => panic!("unknown channel role {other:?}"),
    }
}

/// The options every test uses: a small ring (so it wraps often) and a
/// connect timeout (so a broken test fails instead of hanging).
fn opts() -> Options {
    Options::new().capacity(64 * 1024).timeout(Duration::from_secs(20))
}

/// Whether the channel object is gone.
fn gone(name: &ShmName) -> bool {
    matches!(PosixShm::open(name, &Default::default()), Err(Error::NotFound { .. }))
}

#[test]
fn ten_million_messages_in_order_none_lost() {
    let (name, _guard) = posix_name();
    let count: u64 = 10_000_000;
    let mut sender = LiveChild::spawn("chan-send-seq", &[name.as_str(), &count.to_string()]);
    let mut rx = Receiver::connect(&name, &opts()).unwrap();
    sender.expect_line();
    let mut buf = Vec::new();
    for i in 0..count {
        rx.recv_into(&mut buf).unwrap();
        assert_eq!(buf, i.to_le_bytes(), "message {i}");
    }
    assert!(matches!(rx.recv(), Err(Error::Closed { .. })));
    let info = rx.info();
    assert_eq!((info.messages_sent, info.messages_received), (count, count));
    sender.finish();
    drop(rx);
    assert!(gone(&name), "both sides done: the object is removed");
}

#[test]
fn every_size_from_zero_to_the_maximum() {
    let (name, _guard) = posix_name();
    let sender = LiveChild::spawn("chan-send-sizes", &[name.as_str()]);
    let mut rx = Receiver::connect(&name, &opts()).unwrap();
    let max = rx.max_message();
    assert_eq!(max, 32 * 1024 - 8);
    for len in 0..=max {
        let msg = rx.recv().unwrap();
        assert_eq!(msg.len(), len);
        assert!(
            msg.iter().enumerate().all(|(i, &b)| b == (i + len) as u8),
            "message of {len} bytes"
        );
    }
    assert!(matches!(rx.recv(), Err(Error::Closed { .. })));
    sender.finish();
}

#[test]
fn receiver_first_and_sender_first() {
    for receiver_first in [true, false] {
        let (name, _guard) = posix_name();
        let n = "1000";
        let (mut first, mut second) = if receiver_first {
            let r = LiveChild::spawn("chan-recv-count", &[name.as_str()]);
            std::thread::sleep(Duration::from_millis(50));
            (r, LiveChild::spawn("chan-send-seq", &[name.as_str(), n]))
        } else {
            let s = LiveChild::spawn("chan-send-seq", &[name.as_str(), n]);
            std::thread::sleep(Duration::from_millis(50));
            (s, LiveChild::spawn("chan-recv-count", &[name.as_str()]))
        };
        let (sender, receiver) = if receiver_first {
            (&mut second, &mut first)
        } else {
            (&mut first, &mut second)
        };
        assert!(sender.expect_line().starts_with("connected"));
        assert_eq!(receiver.expect_line(), "received 1000");
        first.finish();
        second.finish();
        assert!(gone(&name), "receiver_first={receiver_first}: object left behind");
    }
}

#[test]
fn sigkill_of_the_sender_drains_then_peer_gone() {
    let (name, _guard) = posix_name();
    let mut sender = LiveChild::spawn("chan-send-forever", &[name.as_str()]);
    let mut rx = Receiver::connect(&name, &opts()).unwrap();
    assert_eq!(sender.expect_line(), "connected");
    let mut next = 0u64;
    let mut buf = Vec::new();
    // let it stream a while, then kill it mid-stream
    while next < 100_000 {
        rx.recv_into(&mut buf).unwrap();
        assert_eq!(buf, next.to_le_bytes());
        next += 1;
    }
    let killed_at = Instant::now();
    sender.kill();
    let err = loop {
        match rx.recv_into(&mut buf) {
            Ok(()) => {
                assert_eq!(buf, next.to_le_bytes(), "no loss, duplicate or reordering");
                next += 1;
            }
            Err(e) => break e,
        }
    };
    let took = killed_at.elapsed();
    assert!(matches!(err, Error::PeerGone { side: Role::Sender, .. }), "{err}");
    assert!(took < Duration::from_secs(1), "PeerGone took {took:?}");
    // everything the sender committed was received
    let info = rx.info();
    assert_eq!(
        info.messages_sent, next,
        "received all {} committed messages",
        info.messages_sent
    );
    assert!(!info.sender.unwrap().alive);
    drop(rx);
    assert!(gone(&name), "the survivor removes the object");
}

#[test]
fn sigkill_of_the_receiver_makes_send_fail() {
    let (name, _guard) = posix_name();
    let mut receiver = LiveChild::spawn("chan-recv-hold", &[name.as_str()]);
    let mut tx = Sender::connect(&name, &opts()).unwrap();
    assert_eq!(receiver.expect_line(), "connected");
    receiver.kill();
    let started = Instant::now();
    let err = loop {
        if let Err(e) = tx.send(&[0; 1000]) {
            break e;
        }
    };
    assert!(
        matches!(
            err,
            Error::PeerGone {
                side: Role::Receiver,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    drop(tx);
    assert!(gone(&name));
}

#[test]
fn a_second_sender_is_busy_and_a_plain_segment_is_not_a_channel() {
    let (name, _guard) = posix_name();
    let mut receiver = LiveChild::spawn("chan-recv-count", &[name.as_str()]);
    let tx = Sender::connect(&name, &opts()).unwrap();
    match Sender::connect(&name, &opts()) {
        Err(
            e @ Error::Busy {
                side: Role::Sender,
                alive: true,
                ..
            },
        ) => {
            assert!(e.to_string().contains(&format!("pid {}", std::process::id())), "{e}");
        }
        other => panic!("second sender: {other:?}"),
    }
    match Receiver::connect(&name, &opts()) {
        Err(Error::Busy {
            side: Role::Receiver,
            pid,
            ..
        }) => assert_eq!(pid, receiver.pid()),
        other => panic!("second receiver: {other:?}"),
    }
    // an opener that insists on another capacity
    assert!(matches!(
        Sender::connect(&name, &Options::new().capacity(4096)),
        Err(Error::CapacityMismatch {
            actual: 65536,
            expected: 4096,
            ..
        })
    ));
    drop(tx);
    assert_eq!(receiver.expect_line(), "received 0");
    receiver.finish();

    let (plain, _plain_guard) = posix_name();
    let _shm = PosixShm::create(&plain, &shmkit::posix::Options::new().size(1 << 20)).unwrap();
    let started = Instant::now();
    match Receiver::connect(&plain, &opts()) {
        Err(e @ Error::Corrupt { .. }) => assert!(e.to_string().contains("not a shmkit channel"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn dropping_the_receiver_closes_for_the_sender() {
    let (name, _guard) = posix_name();
    let name2 = name.clone();
    let t = std::thread::spawn(move || {
        let mut rx = Receiver::connect(&name2, &opts()).unwrap();
        rx.recv().unwrap()
    });
    let mut tx = Sender::connect(&name, &opts()).unwrap();
    tx.send(b"one").unwrap();
    assert_eq!(t.join().unwrap(), b"one");
    // the receiver is gone in order now
    let err = loop {
        if let Err(e) = tx.send(b"more") {
            break e;
        }
    };
    assert!(
        matches!(
            err,
            Error::Closed {
                side: Role::Receiver,
                ..
            }
        ),
        "{err}"
    );
    drop(tx);
    assert!(gone(&name));
}

#[test]
fn connect_times_out_and_leaves_nothing() {
    let (name, _guard) = posix_name();
    let started = Instant::now();
    let err = Sender::connect(&name, &Options::new().timeout(Duration::from_millis(200))).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TimedOut {
                waiting_for: "a receiver",
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(gone(&name));
}

#[test]
fn try_and_timeout_variants() {
    let (name, _guard) = posix_name();
    let name2 = name.clone();
    let small = Options::new().capacity(64).timeout(Duration::from_secs(20));
    let small2 = small.clone();
    let t = std::thread::spawn(move || Receiver::connect(&name2, &small2).unwrap());
    let mut tx = Sender::connect(&name, &small).unwrap();
    let mut rx = t.join().unwrap();
    assert!(rx.try_recv().unwrap_err().is_empty());
    assert!(rx.recv_timeout(Duration::from_millis(20)).unwrap_err().is_timeout());
    tx.try_send(&[1; 16]).unwrap();
    tx.try_send(&[2; 16]).unwrap();
    // 48 bytes of frames, and 8 for the next frame's end mark
    assert!(tx.try_send(&[3; 1]).unwrap_err().is_full());
    assert!(tx
        .send_timeout(&[3; 1], Duration::from_millis(20))
        .unwrap_err()
        .is_timeout());
    assert!(matches!(
        tx.try_send(&[0; 25]),
        Err(channel::TrySendError::Failed(Error::MessageTooLarge { max: 24, .. }))
    ));
    assert_eq!(rx.try_recv().unwrap(), [1; 16]);
    {
        let guard = rx.recv_ref().unwrap();
        assert_eq!(guard.to_vec(), [2; 16]);
        assert_eq!(guard.load_u64(8).unwrap(), u64::from_ne_bytes([2; 8]));
    }
    let mut grant = tx.reserve(3).unwrap();
    grant.copy_from_slice(b"abc").unwrap();
    assert!(grant.copy_from_slice(b"abcd").is_err(), "a grant is bounds-checked");
    grant.commit().unwrap();
    {
        let _unsent = tx.reserve(5).unwrap(); // dropped: nothing sent
    }
    assert!(
        tx.flush_timeout(Duration::from_millis(10)).unwrap_err().is_timeout(),
        "abc is not received yet"
    );
    assert_eq!(rx.recv().unwrap(), b"abc");
    tx.flush_timeout(Duration::from_secs(5)).unwrap();
    drop(tx);
    assert!(matches!(
        rx.try_recv(),
        Err(channel::TryRecvError::Disconnected(Error::Closed {
            side: Role::Sender,
            ..
        }))
    ));
    assert!(rx.iter().next().is_none());
}

#[test]
fn a_hostile_scribbler_causes_errors_not_crashes() {
    for round in 0..3 {
        let (name, _guard) = posix_name();
        let mut sender = LiveChild::spawn("chan-send-forever", &[name.as_str()]);
        let mut rx = Receiver::connect(&name, &opts()).unwrap();
        assert_eq!(sender.expect_line(), "connected");
        let mut scribbler = LiveChild::spawn("chan-scribble", &[name.as_str(), "500"]);
        assert_eq!(scribbler.expect_line(), "scribbling");
        let end = Instant::now() + Duration::from_secs(2);
        let mut outcomes = [0u32; 4]; // ok, corrupt, disconnected, timeout
        while Instant::now() < end {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(msg) => {
                    assert!(msg.len() <= rx.max_message());
                    outcomes[0] += 1;
                }
                Err(channel::RecvTimeoutError::Failed(Error::Corrupt { .. })) => {
                    outcomes[1] += 1;
                    break; // a corrupt channel stays corrupt: stop, as a user would
                }
                Err(e) if e.is_disconnected() => {
                    outcomes[2] += 1;
                    break;
                }
                Err(e) if e.is_timeout() => outcomes[3] += 1,
                Err(e) => panic!("round {round}: unexpected {e}"),
            }
        }
        eprintln!(
            "round {round}: ok {} corrupt {} disconnected {} timeout {}",
            outcomes[0], outcomes[1], outcomes[2], outcomes[3]
        );
        // the scribbles must have landed, or the test tested nothing
        let landed = scribbler.expect_line();
        let n: u64 = landed.strip_prefix("landed ").unwrap().parse().unwrap();
        assert!(n > 1000, "round {round}: only {n} scribbles landed");
        scribbler.finish();
        sender.kill();
    }
}

#[test]
fn info_describes_a_live_channel() {
    let (name, _guard) = posix_name();
    let mut sender = LiveChild::spawn("chan-send-hold", &[name.as_str(), "10"]);
    let mut rx = Receiver::connect(&name, &opts()).unwrap();
    assert_eq!(sender.expect_line(), "sent 10");
    rx.recv().unwrap();
    // while both are connected, the name shows the channel
    let by_name = channel::info(&name).unwrap();
    assert_eq!(
        (by_name.capacity, by_name.messages_sent, by_name.messages_received),
        (65536, 10, 1)
    );
    let s = by_name.sender.unwrap();
    assert!(s.alive && !s.closed && s.pid == sender.pid());
    sender.finish(); // the sender closes: the name is gone, the mapping stays
    assert!(gone(&name), "the first side to leave removes the name");
    let info = rx.info();
    assert_eq!(info.capacity, 65536);
    assert_eq!(info.messages_sent, 10);
    assert_eq!(info.bytes_sent, 80);
    assert_eq!(info.messages_received, 1);
    assert_eq!(info.bytes_in_flight, Some(9 * 16));
    let s = info.sender.unwrap();
    assert!(s.closed && !s.alive);
    let r = info.receiver.unwrap();
    assert!(!r.closed && r.alive && r.pid == std::process::id());
    // the rest still arrives
    assert_eq!(rx.iter().count(), 9);
}

/// Runs a sender child and a receiver child over `name` to the end.
fn run_pair(name: &ShmName) {
    let mut receiver = LiveChild::spawn("chan-recv-count", &[name.as_str()]);
    let mut sender = LiveChild::spawn("chan-send-seq", &[name.as_str(), "100"]);
    assert!(sender.expect_line().starts_with("connected"));
    assert_eq!(receiver.expect_line(), "received 100");
    sender.finish();
    receiver.finish();
    assert!(gone(name));
}

#[test]
fn a_creator_killed_at_any_step_leaves_nothing() {
    for step in ["opened", "sized", "initialised"] {
        let (name, _guard) = posix_name();
        let mut creator = LiveChild::spawn("chan-create-fault", &[name.as_str(), step]);
        assert_eq!(creator.expect_line(), format!("shmkit-fault {step}"));
        // the name appears only fully made: not yet
        assert!(gone(&name), "{step}: the half-made channel is visible");
        creator.kill();
        assert!(gone(&name), "{step}: left behind");
        // and the name works at once for a new pair
        let started = Instant::now();
        run_pair(&name);
        assert!(started.elapsed() < Duration::from_secs(10), "{step}");
    }
}

#[test]
fn a_channel_whose_processes_all_died_is_taken_over() {
    let (name, _guard) = posix_name();
    let mut receiver = LiveChild::spawn("chan-recv-hold", &[name.as_str()]);
    let mut sender = LiveChild::spawn("chan-send-forever", &[name.as_str()]);
    assert_eq!(receiver.expect_line(), "connected");
    assert_eq!(sender.expect_line(), "connected");
    sender.kill();
    receiver.kill();
    assert!(!gone(&name), "both died: the object stays");
    run_pair(&name); // a new pair takes it over
}

#[test]
fn a_dead_sender_with_a_live_receiver_is_reported_not_taken_over() {
    let (name, _guard) = posix_name();
    let mut receiver = LiveChild::spawn("chan-recv-hold", &[name.as_str()]);
    let mut sender = LiveChild::spawn("chan-send-forever", &[name.as_str()]);
    assert_eq!(receiver.expect_line(), "connected");
    assert_eq!(sender.expect_line(), "connected");
    let dead = sender.pid();
    sender.kill();
    match Sender::connect(&name, &opts()) {
        Err(e @ Error::Busy { alive: false, .. }) => {
            assert!(
                e.to_string()
                    .contains(&format!("pid {dead}, which is no longer running")),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    receiver.kill();
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn a_channel_made_by_another_user_is_refused_unless_allowed() {
    if !crate::common::is_root() {
        eprintln!("skipped: needs root to drop a child to uid 65534");
        return;
    }
    let (name, _guard) = posix_name();
    let mut squatter = LiveChild::spawn("chan-recv-as-nobody", &[name.as_str()]);
    // wait until the squatter's channel exists
    let deadline = Instant::now() + Duration::from_secs(30);
    while gone(&name) {
        assert!(Instant::now() < deadline, "the squatter never created it");
        std::thread::sleep(Duration::from_millis(5));
    }
    match Sender::connect(&name, &opts()) {
        Err(e @ Error::Untrusted { uid: 65534, .. }) => {
            assert!(e.to_string().contains("belongs to another user"), "{e}");
            assert!(e.to_string().contains("owner uid 65534, mode 0600"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // explicitly allowed: it works
    let mut tx = Sender::connect(&name, &opts().allow_foreign(true)).unwrap();
    tx.send(b"hello").unwrap();
    drop(tx);
    assert_eq!(squatter.expect_line(), "received Ok(5)");
    squatter.finish();
}

#[test]
fn a_channel_with_wider_permissions_is_refused() {
    let (name, _guard) = posix_name();
    let name2 = name.clone();
    let wide =
        std::thread::spawn(move || Receiver::connect(&name2, &opts().mode(0o666).timeout(Duration::from_secs(30))));
    let deadline = Instant::now() + Duration::from_secs(30);
    while gone(&name) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    match Sender::connect(&name, &opts()) {
        Err(e @ Error::Untrusted { mode: 0o666, .. }) => assert!(e.to_string().contains("wider than asked"), "{e}"),
        other => panic!("{other:?}"),
    }
    // asking for that mode accepts it
    let tx = Sender::connect(&name, &opts().mode(0o666)).unwrap();
    let rx = wide.join().unwrap().unwrap();
    drop((tx, rx));
    assert!(gone(&name));
}

/// A short name for how a channel call ended.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::Closed { .. } => "closed",
        Error::PeerGone { .. } => "peer-gone",
        Error::Corrupt { .. } => "corrupt",
        _ => "other",
    }
}

#[test]
fn stress_64_pairs_with_random_kills() {
    const PAIRS: usize = 64;
    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let names: Vec<_> = (0..PAIRS).map(|_| posix_name()).collect();
    let mut pairs: Vec<(LiveChild, LiveChild)> = names
        .iter()
        .map(|(name, _)| {
            let millis = (1500 + next() % 1000).to_string();
            let r = LiveChild::spawn("chan-stress-recv", &[name.as_str()]);
            let s = LiveChild::spawn("chan-stress-send", &[name.as_str(), &millis]);
            (s, r)
        })
        .collect();
    for (s, r) in &mut pairs {
        assert_eq!(s.expect_line(), "connected");
        assert_eq!(r.expect_line(), "connected");
    }
    std::thread::sleep(Duration::from_millis(300));
    // 0: leave alone, 1: kill the sender, 2: kill the receiver, 3: kill both
    let fates: Vec<u64> = (0..PAIRS).map(|_| next() % 4).collect();
    // SIGKILL every victim first, then reap: "both killed" means together
    for ((s, r), fate) in pairs.iter().zip(&fates) {
        for (child, bit) in [(s, 1), (r, 2)] {
            if fate & bit != 0 {
                // SAFETY: kill(2) takes no pointers; the pid is our unreaped child.
                unsafe { libc::kill(child.pid() as i32, libc::SIGKILL) };
            }
        }
    }
    for ((s, r), fate) in pairs.iter_mut().zip(&fates) {
        if fate & 1 != 0 {
            s.kill();
        }
        if fate & 2 != 0 {
            r.kill();
        }
    }
    let mut left_behind = 0;
    for (((mut s, mut r), fate), (name, _)) in pairs.into_iter().zip(&fates).zip(&names) {
        match fate {
            0 => {
                assert!(s.expect_line().starts_with("sent "));
                let end = r.expect_line();
                assert!(end.starts_with("receiver-end closed"), "{end}");
                let words: Vec<&str> = end.split(' ').collect();
                assert_eq!(words[3], words[5], "received all that was committed: {end}");
            }
            1 => {
                // the sender may have finished before the kill reached it
                let end = r.expect_line();
                assert!(
                    end.starts_with("receiver-end peer-gone") || end.starts_with("receiver-end closed"),
                    "{end}"
                );
                let words: Vec<&str> = end.split(' ').collect();
                let (received, counted): (u64, u64) = (words[3].parse().unwrap(), words[5].parse().unwrap());
                // A message is committed when its header is published; the
                // sender's count follows it, so a kill in between leaves the
                // count one short of what arrived, never more.
                assert!(
                    received == counted || received == counted + 1,
                    "nothing committed before the kill was lost: {end}"
                );
            }
            2 => {
                let end = s.expect_line();
                assert!(end == "sender-error peer-gone" || end.starts_with("sent "), "{end}");
            }
            _ => {}
        }
        if fate & 1 == 0 {
            s.finish();
        }
        if fate & 2 == 0 {
            r.finish();
        }
        if *fate == 3 {
            // both killed: the object stays (unless a side saw the other die
            // first and finished), and nobody uses it
            let scan = shmkit::inspect::ProcessScan::new().unwrap();
            match shmkit::inspect::posix_object(name, &scan) {
                Ok(obj) => {
                    assert!(obj.users.is_empty(), "{:?}", obj.users);
                    assert_ne!(obj.stale, Some(false));
                    left_behind += 1;
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        } else {
            assert!(gone(name), "fate {fate}: {name} left behind");
        }
    }
    eprintln!("fates (0 none, 1 sender, 2 receiver, 3 both killed): {fates:?}; {left_behind} stale objects");
}
