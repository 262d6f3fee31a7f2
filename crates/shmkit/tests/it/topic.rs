//! Topics between real processes: sequence-numbered messages to blocking
//! and lossy subscribers, subscribers killed at random while the publisher
//! goes on, a killed publisher, limits, history, and cleanup.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shmkit::posix::{PosixShm, ShmName};
use shmkit::topic::{self, Options, Publisher, RecvError, SubOptions, Subscriber};
use shmkit::{Error, Role};

use crate::common::{posix_name, LiveChild};

/// A message: its number, then `n % 61` bytes that depend on it.
fn message(n: u64) -> Vec<u8> {
    let mut m = n.to_le_bytes().to_vec();
    m.extend((0..n % 61).map(|i| (n as u8).wrapping_add(i as u8)));
    m
}

/// The number of a message, checked against its bytes.
fn number(m: &[u8]) -> u64 {
    let n = u64::from_le_bytes(m[..8].try_into().unwrap());
    assert_eq!(m, message(n), "message {n}'s bytes");
    n
}

fn sub_opts(lossy: bool) -> SubOptions {
    SubOptions::new().lossy(lossy).timeout(Duration::from_secs(20))
}

/// Whether the topic object is gone.
fn gone(name: &ShmName) -> bool {
    matches!(PosixShm::open(name, &Default::default()), Err(Error::NotFound { .. }))
}

/// What a subscriber saw, checked as it went: no duplicate, no step back,
/// and (blocking) no gap; a lossy one's gaps equal its `Lagged` reports.
#[derive(Debug, Default)]
struct Tally {
    /// The first message it was owed.
    first: Option<u64>,
    next: Option<u64>,
    got: u64,
    lost: u64,
}

impl Tally {
    fn take(&mut self, m: &[u8], lossy: bool, pending_loss: &mut u64) {
        let n = number(m);
        if let Some(next) = self.next {
            if lossy {
                assert_eq!(n, next + *pending_loss, "a gap other than the loss reported");
            } else {
                assert_eq!(n, next, "a blocking subscriber lost or repeated messages");
            }
        }
        // Where it started: its first message, or the losses reported
        // before it (a subscriber announced from the first message on).
        self.first.get_or_insert(n - *pending_loss);
        self.lost += *pending_loss;
        *pending_loss = 0;
        self.next = Some(n + 1);
        self.got += 1;
    }

    /// Reads until the publisher is gone; returns how it ended.
    fn run(sub: &mut Subscriber, lossy: bool, slow: bool) -> (Tally, Error) {
        let mut t = Tally::default();
        let mut pending = 0;
        let mut buf = Vec::new();
        loop {
            match sub.recv_into(&mut buf) {
                Ok(()) => {
                    t.take(&buf, lossy, &mut pending);
                    if slow && t.got % 512 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                Err(RecvError::Lagged { missed }) => {
                    assert!(lossy, "a blocking subscriber lagged");
                    // (lapped again before it got the next one: reported again)
                    assert!(missed > 0, "a loss of nothing reported");
                    pending += missed;
                }
                Err(RecvError::Disconnected(e)) => return (t, e),
                Err(e) => panic!("{e}"),
            }
        }
    }
}

/// Child roles for these tests; `child::main` hands roles starting with
/// `topic-` here.
pub fn child_role(role: &str, args: &[String]) {
    let name = ShmName::new(args[0].as_str()).unwrap();
    let report = |line: String| println!("@{line}");
    match role {
        // topic-sub NAME lossy|blocking slow|fast: read until the publisher
        // is gone, checking every message; report the tally and the end.
        "topic-sub" => {
            let lossy = args[1] == "lossy";
            let mut sub = Subscriber::connect(&name, &sub_opts(lossy)).unwrap();
            report("ready".into());
            let (t, end) = Tally::run(&mut sub, lossy, args[2] == "slow");
            let how = match end {
                Error::Closed { .. } => "closed",
                Error::PeerGone { .. } => "peer-gone",
                e => panic!("{e}"),
            };
            report(format!(
                "end {how} got={} lost={} first={} next={}",
                t.got,
                t.lost,
                t.first.unwrap_or(0),
                t.next.unwrap_or(0)
            ));
        }
        // topic-pub-hold NAME COUNT: connect, report, wait for a line, then
        // publish COUNT messages, report, and hold until killed (or the
        // parent closes stdin).
        "topic-pub-hold" => {
            let count: u64 = args[1].parse().unwrap();
            let mut p = Publisher::connect(&name, &Options::new().capacity(1 << 20)).unwrap();
            report("connected".into());
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
            for n in 0..count {
                p.send(&message(n)).unwrap();
            }
            report(format!("sent {count}"));
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
        }
        other => panic!("unknown topic role {other:?}"),
    }
}

/// Parses `end HOW got=.. lost=.. first=.. next=..`.
fn parse_end(line: &str) -> (String, u64, u64, u64, u64) {
    let mut parts = line.split_whitespace();
    assert_eq!(parts.next(), Some("end"), "{line}");
    let how = parts.next().unwrap().to_owned();
    let mut field = || parts.next().unwrap().split_once('=').unwrap().1.parse::<u64>().unwrap();
    (how, field(), field(), field(), field())
}

#[test]
fn blocking_and_lossy_subscribers_in_other_processes() {
    let (name, _guard) = posix_name();
    const N: u64 = 200_000;
    // subscribers first: they make the topic and wait for the publisher
    let mut blocking = LiveChild::spawn("topic-sub", &[name.as_str(), "blocking", "fast"]);
    let mut lossy = LiveChild::spawn("topic-sub", &[name.as_str(), "lossy", "slow"]);
    std::thread::sleep(Duration::from_millis(50));
    let mut p = Publisher::connect(&name, &Options::new().capacity(16 << 10)).unwrap();
    assert_eq!(blocking.expect_line(), "ready");
    assert_eq!(lossy.expect_line(), "ready");
    for n in 0..N {
        p.send(&message(n)).unwrap();
    }
    drop(p); // close: the end of the stream
    let (how, got, lost, first, next) = parse_end(&blocking.expect_line());
    assert_eq!((how.as_str(), got, lost, first, next), ("closed", N, 0, 0, N));
    let (how, got, lost, first, next) = parse_end(&lossy.expect_line());
    assert_eq!(how, "closed");
    assert_eq!(next, N, "the lossy subscriber reached the end");
    assert_eq!(
        got + lost,
        N - first,
        "what it got and what it was told it lost is everything"
    );
    assert!(lost > 0, "the slow lossy subscriber was lapped (got {got} of {N})");
    blocking.finish();
    lossy.finish();
    assert!(gone(&name));
}

#[test]
fn subscribers_killed_at_random_do_not_stop_the_publisher() {
    const KILLS: usize = 200;
    const LIVE: usize = 3;
    let (name, _guard) = posix_name();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let opts = Options::new().capacity(8 << 10).max_subscribers(LIVE + 2);
    let mut p = Publisher::connect(&name, &opts).unwrap();
    // a survivor, never killed: it must get every message, in order
    let mut survivor = LiveChild::spawn("topic-sub", &[name.as_str(), "blocking", "fast"]);
    assert_eq!(survivor.expect_line(), "ready");
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match p.send_timeout(&message(n), Duration::from_secs(10)) {
                    Ok(()) => n += 1,
                    Err(e) => panic!("the publisher was held up: {e}"),
                }
            }
            n
        })
    };
    let mut victims: Vec<LiveChild> = Vec::new();
    for kill in 0..KILLS {
        while victims.len() < LIVE {
            let lossy = if next() % 2 == 0 { "lossy" } else { "blocking" };
            let mut v = LiveChild::spawn("topic-sub", &[name.as_str(), lossy, "fast"]);
            assert_eq!(v.expect_line(), "ready", "kill {kill}");
            victims.push(v);
        }
        std::thread::sleep(Duration::from_micros(next() % 3000));
        let i = (next() % victims.len() as u64) as usize;
        victims.swap_remove(i).kill();
    }
    for mut v in victims {
        v.kill();
    }
    stop.store(true, Ordering::Relaxed);
    let sent = publisher.join().unwrap(); // drops the publisher: closed
    let (how, got, lost, first, next) = parse_end(&survivor.expect_line());
    assert_eq!((how.as_str(), got, lost, first, next), ("closed", sent, 0, 0, sent));
    survivor.finish();
    assert!(gone(&name), "the publisher removed the name");
    eprintln!("{KILLS} subscribers killed while {sent} messages were published");
}

#[test]
fn a_killed_publisher_leaves_everything_then_peer_gone() {
    let (name, _guard) = posix_name();
    const N: u64 = 10_000;
    let mut publisher = LiveChild::spawn("topic-pub-hold", &[name.as_str(), &N.to_string()]);
    assert_eq!(publisher.expect_line(), "connected");
    let mut blocking = Subscriber::connect(&name, &sub_opts(false)).unwrap();
    let mut lossy = LiveChild::spawn("topic-sub", &[name.as_str(), "lossy", "fast"]);
    assert_eq!(lossy.expect_line(), "ready");
    publisher.send("go");
    assert_eq!(publisher.expect_line(), format!("sent {N}"));
    publisher.kill();
    let (t, end) = Tally::run(&mut blocking, false, false);
    assert_eq!((t.got, t.first, t.next), (N, Some(0), Some(N)), "everything published");
    assert!(
        matches!(
            end,
            Error::PeerGone {
                side: Role::Publisher,
                ..
            }
        ),
        "{end}"
    );
    let (how, ..) = parse_end(&lossy.expect_line());
    assert_eq!(how, "peer-gone");
    lossy.finish();
    drop(blocking); // the last one out removes the name
    assert!(gone(&name));
}

#[test]
fn limits_history_and_info() {
    let (name, _guard) = posix_name();
    let opts = Options::new().capacity(4096).max_subscribers(2).history(3);
    let mut p = Publisher::connect(&name, &opts).unwrap();
    assert!(matches!(
        Publisher::connect(&name, &opts),
        Err(Error::Busy {
            side: Role::Publisher,
            alive: true,
            ..
        })
    ));
    for n in 0..10 {
        p.send(&message(n)).unwrap();
    }
    // history: the last three
    let mut a = Subscriber::connect(&name, &sub_opts(false)).unwrap();
    for n in 7..10 {
        assert_eq!(number(&a.recv().unwrap()), n);
    }
    assert!(matches!(a.try_recv(), Err(topic::TryRecvError::Empty)));
    let mut b = Subscriber::connect(&name, &sub_opts(true)).unwrap();
    assert!(matches!(
        Subscriber::connect(&name, &sub_opts(false)),
        Err(Error::Busy {
            side: Role::Subscriber,
            ..
        })
    ));
    p.send(&message(10)).unwrap();
    // The refused subscriber has let go of its seat; a child that another
    // test thread spawns meanwhile may hold a copy of its descriptor (and
    // with it the seat's lock) until it execs: give that a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let info = loop {
        let info = topic::info(&name).unwrap();
        if info.subscribers.iter().filter(|s| s.alive).count() == 2 || std::time::Instant::now() > deadline {
            break info;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!((info.capacity, info.max_subscribers, info.history), (4096, 2, 3));
    assert_eq!(info.messages_published, 11);
    assert!(info.publisher.as_ref().unwrap().alive);
    // (the refused third subscriber's seat shows as left)
    assert_eq!(info.subscribers.iter().filter(|s| s.alive).count(), 2, "{info:?}");
    let (sa, sb) = (&info.subscribers[0], &info.subscribers[1]);
    assert!(sa.alive && !sa.lossy && sa.lag_messages == 1, "{sa:?}");
    assert!(sb.alive && sb.lossy && sb.lag_messages == 4, "{sb:?}");
    assert_eq!(number(&a.recv().unwrap()), 10);
    assert_eq!(number(&b.recv().unwrap()), 7);
    // a seat is free again once its subscriber leaves
    drop(a);
    let mut c = Subscriber::connect(&name, &sub_opts(false)).unwrap();
    assert_eq!(number(&c.recv().unwrap()), 8, "history again");
    // a recv with a deadline, and the end of the stream
    assert!(c.recv_timeout(Duration::from_millis(1)).is_ok());
    assert!(c.recv_timeout(Duration::from_millis(1)).is_ok());
    assert!(matches!(
        c.recv_timeout(Duration::from_millis(20)),
        Err(topic::RecvTimeoutError::Timeout)
    ));
    drop(p);
    assert!(gone(&name), "the publisher removed the name");
    assert!(matches!(c.recv(), Err(RecvError::Disconnected(Error::Closed { .. }))));
    assert_eq!(b.iter().count(), 3, "8, 9, 10, then the end");
}

#[test]
fn a_subscriber_waits_for_a_publisher_or_times_out_leaving_nothing() {
    let (name, _guard) = posix_name();
    let err = Subscriber::connect(&name, &SubOptions::new().timeout(Duration::from_millis(100))).unwrap_err();
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");
    assert!(gone(&name));
    // a flag ends the wait too
    let flag = Arc::new(AtomicBool::new(true));
    let err = Subscriber::connect(&name, &SubOptions::new().interrupt(flag)).unwrap_err();
    assert!(matches!(err, Error::Interrupted { .. }), "{err}");
    assert!(gone(&name));
}

#[test]
fn zero_copy_loans_and_guards() {
    let (name, _guard) = posix_name();
    let mut p = Publisher::connect(&name, &Options::new().capacity(4096)).unwrap();
    let mut blocking = Subscriber::connect(&name, &sub_opts(false)).unwrap();
    let mut lossy = Subscriber::connect(&name, &sub_opts(true)).unwrap();
    let mut loan = p.reserve(64).unwrap();
    loan.store_u64(0, 0xfeed).unwrap();
    loan.truncate(8);
    loan.commit().unwrap();
    let g = blocking.recv_ref().unwrap();
    assert_eq!((g.len(), g.load_u64(0).unwrap(), g.seq()), (8, 0xfeed, 0));
    assert!(g.is_intact());
    drop(g);
    let g = lossy.recv_ref().unwrap();
    assert_eq!(g.load_u64(0).unwrap(), 0xfeed);
    assert!(g.is_intact());
    drop(g);
    // a lossy guard held while the publisher laps it says so
    p.send(&[1; 100]).unwrap();
    blocking.recv().unwrap();
    let g = lossy.recv_ref().unwrap();
    drop(blocking); // only the lossy one is left: the publisher never waits
    for _ in 0..100 {
        p.send(&[2; 100]).unwrap();
    }
    assert!(!g.is_intact());
    drop(g);
    match lossy.recv() {
        Err(RecvError::Lagged { missed }) => assert!(missed > 0),
        other => panic!("{other:?}"),
    }
    assert_eq!(lossy.recv().unwrap(), [2; 100]);
}

#[test]
fn a_hostile_scribbler_causes_errors_not_crashes_or_hangs() {
    let (name, _guard) = posix_name();
    let mut p = Publisher::connect(&name, &Options::new().capacity(4096)).unwrap();
    let mut subs = vec![
        Subscriber::connect(&name, &sub_opts(false)).unwrap(),
        Subscriber::connect(&name, &sub_opts(true)).unwrap(),
    ];
    let mut scribbler = LiveChild::spawn("chan-scribble", &[name.as_str(), "500"]);
    assert_eq!(scribbler.expect_line(), "scribbling");
    let publisher = std::thread::spawn(move || {
        let end = std::time::Instant::now() + Duration::from_secs(1);
        let mut n = 0u64;
        while std::time::Instant::now() < end {
            match p.send_timeout(&message(n), Duration::from_millis(50)) {
                Ok(()) => n += 1,
                Err(topic::SendTimeoutError::Timeout) => {}
                Err(topic::SendTimeoutError::Failed(Error::Corrupt { .. })) => return "corrupt",
                Err(e) => panic!("publisher: unexpected {e}"),
            }
        }
        "ok"
    });
    let end = std::time::Instant::now() + Duration::from_secs(1);
    let mut outcomes = std::collections::BTreeMap::new();
    for sub in &mut subs {
        while std::time::Instant::now() < end {
            let what = match sub.recv_timeout(Duration::from_millis(50)) {
                Ok(m) => {
                    assert!(m.len() <= sub.max_message());
                    "ok"
                }
                Err(topic::RecvTimeoutError::Timeout) => "timeout",
                Err(topic::RecvTimeoutError::Lagged { .. }) => "lagged",
                Err(topic::RecvTimeoutError::Failed(Error::Corrupt { .. })) => "corrupt",
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
