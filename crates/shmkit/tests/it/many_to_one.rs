//! Many senders, one receiver, between real processes: order per sender,
//! no loss, no duplicate, senders killed at random moments, a killed
//! receiver, and cleanup.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmkit::many_to_one::{self, Options, Receiver, Sender, SenderId};
use shmkit::posix::{PosixShm, ShmName};
use shmkit::Error;

use crate::common::{posix_name, LiveChild};

fn opts(senders: usize) -> Options {
    Options::new()
        .senders(senders)
        .capacity(4096)
        .timeout(Duration::from_secs(20))
}

fn gone(name: &ShmName) -> bool {
    matches!(PosixShm::open(name, &Default::default()), Err(Error::NotFound { .. }))
}

/// A message: the sender's pid, then its sequence number.
fn message(seq: u64) -> [u8; 12] {
    let mut m = [0u8; 12];
    m[..4].copy_from_slice(&std::process::id().to_le_bytes());
    m[4..].copy_from_slice(&seq.to_le_bytes());
    m
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::Closed { .. } => "closed",
        Error::PeerGone { .. } => "peer-gone",
        Error::Corrupt { .. } => "corrupt",
        Error::TimedOut { .. } => "timed-out",
        _ => "other",
    }
}

/// Child roles; `child::main` hands roles starting with `m2o-` here.
pub fn child_role(role: &str, args: &[String]) {
    let name = ShmName::new(args[0].as_str()).unwrap();
    let report = |line: String| println!("@{line}");
    match role {
        // m2o-send NAME SEATS COUNT: send COUNT numbered messages, then leave.
        "m2o-send" => {
            let count: u64 = args[2].parse().unwrap();
            let mut tx = Sender::connect(&name, &opts(args[1].parse().unwrap())).unwrap();
            report(format!("connected {}", tx.id().seat));
            for i in 0..count {
                tx.send(&message(i)).unwrap();
            }
            report(format!("sent {count}"));
        }
        // m2o-send-hold NAME SEATS COUNT: send COUNT numbered messages,
        // report, and wait (to be killed) until stdin closes.
        "m2o-send-hold" => {
            let count: u64 = args[2].parse().unwrap();
            let mut tx = Sender::connect(&name, &opts(args[1].parse().unwrap())).unwrap();
            for i in 0..count {
                tx.send(&message(i)).unwrap();
            }
            report(format!("sent {count}"));
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
        }
        // m2o-send-until-eof NAME SEATS: send numbered messages (a short
        // pause every 32) until a line comes or stdin closes, or sending fails; report how
        // many, or the error.
        "m2o-send-until-eof" => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
                flag.store(true, Ordering::Relaxed);
            });
            let mut tx = Sender::connect(&name, &opts(args[1].parse().unwrap())).unwrap();
            report(format!("connected {}", tx.id().seat));
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = tx.send(&message(i)) {
                    return report(format!("error {}", kind(&e)));
                }
                i += 1;
                if i % 32 == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            report(format!("sent {i}"));
        }
        // m2o-recv-hold NAME SEATS: be the receiver, receive nothing, wait
        // to be killed.
        "m2o-recv-hold" => {
            let _rx = Receiver::connect(&name, &opts(args[1].parse().unwrap())).unwrap();
            report("connected".into());
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown many-to-one role {other:?}"),
    }
}

/// What a receiver saw: per sender (seat and generation), the pid its
/// messages carry and how many arrived, each checked to be the next number.
#[derive(Debug, Default)]
struct Seen {
    per_sender: HashMap<(usize, u32), (u32, u64)>,
}

impl Seen {
    fn add(&mut self, from: SenderId, bytes: &[u8]) {
        assert_eq!(bytes.len(), 12, "from {from:?}");
        let pid = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let seq = u64::from_le_bytes(bytes[4..].try_into().unwrap());
        let entry = self.per_sender.entry((from.seat, from.generation)).or_insert((pid, 0));
        assert_eq!(entry.0, pid, "one sender per seat and generation: {from:?}");
        assert_eq!(seq, entry.1, "in order, none lost, none twice: {from:?}");
        entry.1 += 1;
    }

    fn of_pid(&self, pid: u32) -> u64 {
        self.per_sender
            .values()
            .filter(|(p, _)| *p == pid)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Receives until the stream ends; returns what came and how it ended.
fn receive_all(rx: &mut Receiver) -> (Seen, Error) {
    let mut seen = Seen::default();
    let mut buf = Vec::new();
    loop {
        match rx.recv_into(&mut buf) {
            Ok(from) => seen.add(from, &buf),
            Err(e) => return (seen, e),
        }
    }
}

#[test]
fn two_sender_processes_nothing_lost_nothing_twice_order_kept() {
    let (name, _guard) = posix_name();
    let mut rx = Receiver::connect(&name, &opts(2)).unwrap();
    let a = LiveChild::spawn("m2o-send", &[name.as_str(), "2", "20000"]);
    let b = LiveChild::spawn("m2o-send", &[name.as_str(), "2", "20000"]);
    let (pa, pb) = (a.pid(), b.pid());
    let (seen, end) = receive_all(&mut rx);
    assert!(matches!(end, Error::Closed { .. }), "{end}");
    assert_eq!((seen.of_pid(pa), seen.of_pid(pb)), (20000, 20000));
    a.finish();
    b.finish();
    drop(rx);
    assert!(gone(&name));
}

#[test]
fn a_dead_senders_messages_come_first_and_its_successor_is_told_apart() {
    let (name, _guard) = posix_name();
    let mut rx = Receiver::connect(&name, &opts(1)).unwrap();
    let mut a = LiveChild::spawn("m2o-send-hold", &[name.as_str(), "1", "100"]);
    assert_eq!(a.expect_line(), "sent 100");
    let pid_a = a.pid();
    a.kill();
    // the successor takes the seat and waits for fresh rings (the receiver
    // has not taken anything yet)
    let mut b = LiveChild::spawn("m2o-send", &[name.as_str(), "1", "50"]);
    let pid_b = b.pid();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !many_to_one::info(&name).unwrap().seats[0].waiting {
        assert!(Instant::now() < deadline, "the successor never asked for the seat");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut buf = Vec::new();
    let mut seen = Seen::default();
    let mut order = Vec::new();
    for _ in 0..150 {
        let from = rx.recv_into(&mut buf).unwrap();
        seen.add(from, &buf);
        order.push(from.generation);
    }
    assert_eq!(b.expect_line(), "connected 0");
    assert_eq!(
        seen.per_sender.get(&(0, 0)),
        Some(&(pid_a, 100)),
        "all the dead sender's, as its own"
    );
    assert_eq!(
        seen.per_sender.get(&(0, 1)),
        Some(&(pid_b, 50)),
        "then the new sender's, as its own"
    );
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "the old generation first");
    let (more, end) = receive_all(&mut rx);
    assert!(more.per_sender.is_empty());
    assert!(matches!(end, Error::Closed { .. }), "{end}");
    b.finish();
    drop(rx);
    assert!(gone(&name));
}

#[test]
fn a_sender_may_start_first_and_waits_for_the_receiver() {
    let (name, _guard) = posix_name();
    let mut s = LiveChild::spawn("m2o-send", &[name.as_str(), "1", "100"]);
    // the sender made the object and waits in connect
    let deadline = Instant::now() + Duration::from_secs(10);
    while gone(&name) {
        assert!(Instant::now() < deadline, "the sender did not create the object");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut rx = Receiver::connect(&name, &Options::new()).unwrap();
    assert_eq!(rx.senders(), 1, "the opener learns the number of seats");
    assert_eq!(s.expect_line(), "connected 0");
    let (seen, end) = receive_all(&mut rx);
    assert!(matches!(end, Error::Closed { .. }), "{end}");
    assert_eq!(seen.of_pid(s.pid()), 100);
    s.finish();
    drop(rx);
    assert!(gone(&name));
}

#[test]
fn busy_seats_mismatched_seats_and_info() {
    let (name, _guard) = posix_name();
    let rx = Receiver::connect(&name, &opts(1)).unwrap();
    assert!(matches!(
        Receiver::connect(&name, &opts(1)),
        Err(Error::Busy { alive: true, .. })
    ));
    assert!(matches!(
        Sender::connect(&name, &opts(3)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        Sender::connect(&name, &Options::new().capacity(8192)),
        Err(Error::CapacityMismatch { .. })
    ));
    let mut tx = Sender::connect(&name, &Options::new()).unwrap();
    assert!(matches!(
        Sender::connect(&name, &Options::new()),
        Err(Error::Busy { alive: true, .. })
    ));
    tx.send(b"x").unwrap();
    let info = many_to_one::info(&name).unwrap();
    assert_eq!((info.capacity, info.seats.len(), info.backlog()), (4096, 1, 1));
    let seat = &info.seats[0];
    assert!(seat.participant.as_ref().unwrap().alive && !seat.waiting);
    assert!(matches!(shmkit::channel::info(&name), Err(Error::Corrupt { .. })));
    drop((tx, rx));
    assert!(gone(&name));
}

#[test]
fn an_abandoned_object_of_another_size_is_taken_over() {
    let (name, _guard) = posix_name();
    let mut r = LiveChild::spawn("m2o-recv-hold", &[name.as_str(), "2"]);
    assert_eq!(r.expect_line(), "connected");
    r.kill();
    // two seats, nobody alive: a receiver that asks for three starts anew
    let rx = Receiver::connect(&name, &opts(3)).unwrap();
    assert_eq!(rx.senders(), 3);
    drop(rx);
    assert!(gone(&name));
}

#[test]
fn a_killed_receiver_makes_every_sender_fail_with_peer_gone() {
    let (name, _guard) = posix_name();
    let mut r = LiveChild::spawn("m2o-recv-hold", &[name.as_str(), "2"]);
    assert_eq!(r.expect_line(), "connected");
    let mut senders: Vec<LiveChild> = (0..2)
        .map(|_| LiveChild::spawn("m2o-send-until-eof", &[name.as_str(), "2"]))
        .collect();
    for s in &mut senders {
        assert!(s.expect_line().starts_with("connected"));
    }
    r.kill();
    for mut s in senders {
        // each fills its ring, then notices the receiver is gone
        assert_eq!(s.expect_line(), "error peer-gone");
        s.finish();
    }
    assert!(gone(&name), "the last sender removed the name");
}

#[test]
fn senders_killed_at_random_moments_200_times() {
    const KILLS: usize = 200;
    let (name, _guard) = posix_name();
    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let started = Instant::now();
    let mut rx = Receiver::connect(&name, &opts(2)).unwrap();
    let receiver = std::thread::spawn(move || receive_all(&mut rx));
    let mut survivor = LiveChild::spawn("m2o-send-until-eof", &[name.as_str(), "2"]);
    assert!(survivor.expect_line().starts_with("connected"));
    for _ in 0..KILLS {
        let mut victim = LiveChild::spawn("m2o-send-until-eof", &[name.as_str(), "2"]);
        // joined, and the previous victim's seat handed over
        assert!(victim.expect_line().starts_with("connected"));
        std::thread::sleep(Duration::from_micros(next() % 10_000));
        victim.kill();
    }
    survivor.send("stop");
    let sent: u64 = survivor.expect_line().strip_prefix("sent ").unwrap().parse().unwrap();
    let survivor_pid = survivor.pid();
    survivor.finish();
    let (seen, end) = receiver.join().unwrap();
    // the last victim died in its seat: the stream ends with PeerGone
    assert!(matches!(end, Error::PeerGone { .. }), "{end}");
    assert_eq!(seen.of_pid(survivor_pid), sent, "the survivor lost nothing");
    let victims = seen.per_sender.len() - 1;
    eprintln!(
        "{KILLS} kills in {:?}; {victims} victims sent something, {} messages in all",
        started.elapsed(),
        seen.per_sender.values().map(|(_, n)| n).sum::<u64>()
    );
    assert!(gone(&name));
}
