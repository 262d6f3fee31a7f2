//! Issue 13's patterns, shmkit's and iceoryx2's, measured by one harness in
//! one run, between real processes (this executable started as the others):
//!
//! - `pubsub1`: round trips through publish/subscribe, a service each way:
//!   the leader publishes, its one subscriber (the peer) publishes the same
//!   bytes back on a second service, to which the leader subscribes.
//! - `pubsub2`: the same with two subscribers (two peers): the leader's one
//!   message goes to both; each answers on its own service; a round trip
//!   ends when the leader has both answers.
//! - `reqresp`: request/response round trips: the leader is the client, the
//!   peer the server, which answers each request with its bytes.
//! - `latest`: a latest value (shmkit's `latest`, iceoryx2's blackboard):
//!   the peer writes back to back, the leader reads back to back; writes
//!   per second (the writer's numbers the reader saw go by) and reads per
//!   second. iceoryx2's blackboard holds values of a fixed `Copy` type: it
//!   is measured at 8, 64 and 4096 bytes (`[u8; N]`), other sizes are
//!   skipped.
//!
//! How each side waits (the machine has two cores: three processes that
//! spin measure the scheduler):
//! - `shmkit-spin` (shmkit, `spin(Duration::MAX)`) and `iceoryx2` (its
//!   ports are polled: `receive()` in a loop, as iceoryx2 does unless one
//!   adds events and a WaitSet) only spin: two-process cases only
//!   (`pubsub1`, `reqresp`).
//! - `shmkit` (the library's default: spin 20 µs, then sleep on a futex,
//!   woken only if somebody sleeps) and `iceoryx2-event` (the same for
//!   iceoryx2: poll `receive()` for 20 µs, then sleep on an event
//!   `Listener`; every message is followed by `Notifier::notify`, which
//!   iceoryx2 makes a system call whether anybody sleeps or not):
//!   `pubsub1` and `pubsub2`.
//! - `latest`: neither side waits (`shmkit` and `iceoryx2`: the writer
//!   writes back to back, the reader reads back to back).
//!
//! Both sides use each library zero-copy where it offers it: shmkit's
//! `reserve`/`recv_ref`, iceoryx2's `loan_slice_uninit`/`write_from_slice`
//! and in-place payloads (a pub/sub peer copies the message out to send it
//! back, on both sides); a latest value is copied in and out whole by both
//! (shmkit's `write`/`read_into`, iceoryx2's `update_with_copy` and a copy of
//! `get()`'s value).

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher as IoxPublisher;
use iceoryx2::port::subscriber::Subscriber as IoxSubscriber;
use iceoryx2::prelude::*;
use shmkit::posix::ShmName;

use crate::{fmt_ns, read_stamp, size_label, stamp, Result, END, PATIENCE};

/// The cases, in the order of the output.
pub const CASES: [&str; 4] = ["pubsub1", "pubsub2", "reqresp", "latest"];

/// The transports each case is measured with, shmkit's first, each
/// followed by its iceoryx2 counterpart.
pub fn transports(case: &str) -> &'static [&'static str] {
    match case {
        "pubsub1" => &["shmkit-spin", "iceoryx2", "shmkit", "iceoryx2-event"],
        "pubsub2" => &["shmkit", "iceoryx2-event"],
        "reqresp" => &["shmkit-spin", "iceoryx2"],
        "latest" => &["shmkit", "iceoryx2"],
        _ => &[],
    }
}

/// The iceoryx2 counterpart of a shmkit transport in `case`.
pub fn counterpart(case: &str, transport: &str) -> Option<&'static str> {
    match transport {
        "shmkit-spin" => Some("iceoryx2"),
        "shmkit" if case == "latest" => Some("iceoryx2"),
        "shmkit" => Some("iceoryx2-event"),
        _ => None,
    }
}

/// Runs `cases` at `sizes` with the transports `wanted` accepts and prints
/// a table per case, each figure with its ratio to the iceoryx2
/// counterpart; returns how many measurements failed. `n` numbers the
/// objects' names.
pub fn run_all(
    cases: &[&str],
    sizes: &[usize],
    wanted: &dyn Fn(&str) -> bool,
    n: &mut usize,
    warmup: Duration,
    duration: Duration,
) -> usize {
    let mut failed = 0;
    for &case in cases {
        match case {
            "latest" => println!(
                "\n{case}: writes and reads per second (÷ iceoryx2: time per operation over the counterpart's)\n{:>7}  {:<15}{:>12}{:>12}{:>11}{:>11}",
                "size", "transport", "writes/s", "reads/s", "write ÷", "read ÷"
            ),
            _ => println!(
                "\n{case}: round-trip time (÷ iceoryx2: p50 over the counterpart's)\n{:>7}  {:<15}{:>10}{:>10}{:>10}{:>10}{:>11}",
                "size", "transport", "p50", "p99", "p99.9", "max", "p50 ÷"
            ),
        }
        for &size in sizes {
            let mut results: Vec<(&str, Found)> = Vec::new();
            for &t in transports(case).iter().filter(|t| wanted(t)) {
                if case == "latest" && t == "iceoryx2" && !blackboard_fits(size) {
                    eprintln!(
                        "peers: {case} {t} {}: skipped (a blackboard value is a [u8; N] of 8, 64 or 4096 bytes here)",
                        size_label(size)
                    );
                    continue;
                }
                *n += 1;
                match run_case(case, t, size, *n, warmup, duration) {
                    Ok(f) => results.push((t, f)),
                    Err(e) => {
                        failed += 1;
                        eprintln!("peers: {case} {t} {}: {e}", size_label(size));
                    }
                }
            }
            let of = |t: &str| results.iter().find(|(x, _)| *x == t).map(|(_, f)| f);
            for (t, f) in &results {
                let other = counterpart(case, t).and_then(&of);
                match f {
                    Found::Trips(h) => {
                        let p50 = h.value_at_quantile(0.5);
                        let ratio = match other {
                            Some(Found::Trips(o)) => format!("{:.2}×", p50 as f64 / o.value_at_quantile(0.5) as f64),
                            _ => "-".into(),
                        };
                        println!(
                            "{:>7}  {:<15}{:>10}{:>10}{:>10}{:>10}{:>11}",
                            size_label(size),
                            t,
                            fmt_ns(p50),
                            fmt_ns(h.value_at_quantile(0.99)),
                            fmt_ns(h.value_at_quantile(0.999)),
                            fmt_ns(h.max()),
                            ratio
                        );
                    }
                    Found::Rates { writes, reads } => {
                        let per_s = |(n, d): (u64, Duration)| n as f64 / d.as_secs_f64().max(1e-9);
                        let (w, r) = (per_s(*writes), per_s(*reads));
                        // time per operation over the counterpart's
                        let (wr, rr) = match other {
                            Some(Found::Rates { writes: ow, reads: or }) => {
                                (format!("{:.2}×", per_s(*ow) / w), format!("{:.2}×", per_s(*or) / r))
                            }
                            _ => ("-".into(), "-".into()),
                        };
                        println!(
                            "{:>7}  {:<15}{:>12}{:>12}{:>11}{:>11}",
                            size_label(size),
                            t,
                            format!("{:.2} M", w / 1e6),
                            format!("{:.2} M", r / 1e6),
                            wr,
                            rr
                        );
                    }
                }
            }
        }
    }
    failed
}

fn peer_count(case: &str) -> usize {
    if case == "pubsub2" {
        2
    } else {
        1
    }
}

/// What one case measured.
pub enum Found {
    /// Round-trip times.
    Trips(Histogram<u64>),
    /// Writes and reads, each counted over the same time.
    /// Writes (counted by the writer) and reads (by the reader), each
    /// with the time it counted over.
    Rates {
        writes: (u64, Duration),
        reads: (u64, Duration),
    },
}

/// How many operations pass between two looks at the clock.
fn stride(size: usize) -> u64 {
    (4096 / size.max(1)).clamp(1, 64) as u64
}

fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 100_000_000_000, 3)?)
}

// ------------------------------------------------------------------ harness

/// The peers of one case: killed unless they finished.
struct Peers(Vec<Child>);

impl Drop for Peers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// Sets a flag at a deadline, unless dropped first: ends shmkit's waits
/// (`interrupt`) and iceoryx2's polls if a peer never comes.
struct Alarm {
    flag: Arc<AtomicBool>,
    done: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Alarm {
    fn at(deadline: Instant) -> Alarm {
        let flag = Arc::new(AtomicBool::new(false));
        let (done, rx) = std::sync::mpsc::channel::<()>();
        let f = flag.clone();
        let thread = std::thread::spawn(move || {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(left) {
                f.store(true, Ordering::Release);
            }
        });
        Alarm {
            flag,
            done: Some(done),
            thread: Some(thread),
        }
    }

    fn check(&self) -> Result<()> {
        if self.flag.load(Ordering::Acquire) {
            return Err("the measurement overran".into());
        }
        Ok(())
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Everything one side knows of a case.
struct Plan {
    case: String,
    transport: String,
    size: usize,
    base: String,
}

impl Plan {
    fn shm(&self, suffix: &str) -> Result<ShmName> {
        Ok(ShmName::new(format!("{}{suffix}", self.base))?)
    }

    fn iox(&self, suffix: &str) -> Result<ServiceName> {
        Ok(ServiceName::new(&format!("{}{suffix}", self.base))?)
    }

    fn capacity(&self) -> u64 {
        (4 * (self.size as u64 + 64)).next_power_of_two().max(64 << 10)
    }
}

/// Runs one case as the leader: starts its peers, connects, tells them to
/// go once all are ready, measures, and checks that they succeeded.
pub fn run_case(
    case: &str,
    transport: &str,
    size: usize,
    n: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Found> {
    let base = format!("/shmkit-peers-{}-{n}", std::process::id());
    let send_for = warmup + duration;
    let plan = Plan {
        case: case.into(),
        transport: transport.into(),
        size,
        base,
    };
    let alarm = Alarm::at(Instant::now() + send_for + PATIENCE);
    let mut peers = Peers(Vec::new());
    for role in 0..peer_count(case) {
        peers.0.push(
            Command::new(std::env::current_exe()?)
                .arg("--peer")
                .args([
                    transport,
                    &format!("{case}:{role}"),
                    &size.to_string(),
                    &plan.base,
                    &send_for.as_nanos().to_string(),
                    &std::process::id().to_string(),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?,
        );
    }
    let result = lead(&plan, &mut peers, &alarm, warmup, duration);
    let result = result.and_then(|found| {
        for c in &mut peers.0 {
            let status = c.wait()?;
            if !status.success() {
                return Err(format!("a second process failed ({status})").into());
            }
        }
        Ok(found)
    });
    drop(peers);
    for suffix in ["", "-ab", "-ba", "-b0", "-b1"] {
        if let Ok(name) = plan.shm(suffix) {
            let _ = shmkit::posix::remove(&name);
        }
    }
    result
}

/// Waits for every peer's "ready", then tells each to go.
fn start(peers: &mut Peers) -> Result<()> {
    wait_ready(peers)?;
    go(peers)
}

fn wait_ready(peers: &mut Peers) -> Result<()> {
    for c in &mut peers.0 {
        let mut ready = [0u8; 1];
        c.stdout.as_mut().ok_or("no pipe")?.read_exact(&mut ready)?;
    }
    Ok(())
}

fn go(peers: &mut Peers) -> Result<()> {
    for c in &mut peers.0 {
        c.stdin.as_mut().ok_or("no pipe")?.write_all(b"g")?;
    }
    Ok(())
}

/// A peer: says it is ready, waits for "go".
fn ready() -> Result<()> {
    std::io::stdout().write_all(b"r")?;
    std::io::stdout().flush()?;
    let mut go = [0u8; 1];
    std::io::stdin().read_exact(&mut go)?;
    Ok(())
}

fn lead(plan: &Plan, peers: &mut Peers, alarm: &Alarm, warmup: Duration, duration: Duration) -> Result<Found> {
    match plan.case.as_str() {
        "pubsub1" | "pubsub2" => {
            let mut ends = PubSub::connect(plan, None, alarm)?;
            start(peers)?;
            let hist = round_trips(plan.size, warmup, duration, |msg, seq| {
                ends.publish(msg, alarm)?;
                for i in 0..ends.replies() {
                    let got = ends.receive(i, plan.size, alarm)?;
                    if got != seq {
                        return Err(format!("answer {got} to {seq}").into());
                    }
                }
                Ok(())
            })?;
            let mut end = vec![0u8; plan.size];
            stamp(&mut end, END);
            ends.publish(&end, alarm)?;
            Ok(Found::Trips(hist))
        }
        "reqresp" => {
            let mut client = ReqClient::connect(plan, alarm)?;
            start(peers)?;
            let hist = round_trips(plan.size, warmup, duration, |msg, seq| {
                let got = client.call(msg, plan.size, alarm)?;
                if got != seq {
                    return Err(format!("answer {got} to {seq}").into());
                }
                Ok(())
            })?;
            let mut end = vec![0u8; plan.size];
            stamp(&mut end, END);
            client.send_only(&end)?;
            Ok(Found::Trips(hist))
        }
        "latest" => {
            // The writer makes the value, then waits for the reader.
            wait_ready(peers)?;
            let mut reader = LatestReader::open(plan, alarm)?;
            go(peers)?;
            let (reads, read_for) = read_latest(&mut reader, plan.size, warmup, alarm)?;
            drop(reader);
            // The writer's own count: "WRITES NANOSECONDS\n".
            let mut line = String::new();
            peers.0[0].stdout.as_mut().ok_or("no pipe")?.read_to_string(&mut line)?;
            let mut f = line.split_whitespace().map(str::parse::<u64>);
            match (f.next(), f.next()) {
                (Some(Ok(writes)), Some(Ok(ns))) => Ok(Found::Rates {
                    writes: (writes, Duration::from_nanos(ns)),
                    reads: (reads, read_for),
                }),
                _ => Err(format!("the writer's count {line:?}").into()),
            }
        }
        other => Err(format!("unknown case {other:?}").into()),
    }
}

/// A peer of a case: `pattern` is `CASE:ROLE`.
pub fn run_peer(transport: &str, pattern: &str, size: usize, base: &str, send_for: Duration) -> Result<()> {
    let (case, role) = pattern.split_once(':').ok_or("no role")?;
    let role: usize = role.parse()?;
    let plan = Plan {
        case: case.into(),
        transport: transport.into(),
        size,
        base: base.into(),
    };
    let alarm = Alarm::at(Instant::now() + send_for + 2 * PATIENCE);
    match case {
        "pubsub1" | "pubsub2" => {
            let mut ends = PubSub::connect(&plan, Some(role), &alarm)?;
            ready()?;
            loop {
                let (seq, msg) = ends.receive_copy(size, &alarm)?;
                if seq == END {
                    return Ok(());
                }
                ends.publish(&msg, &alarm)?;
            }
        }
        "reqresp" => {
            let mut server = ReqServer::connect(&plan, &alarm)?;
            ready()?;
            while server.answer(size, &alarm)? {}
            Ok(())
        }
        "latest" => {
            let mut writer = LatestWriter::create(&plan)?;
            ready()?;
            let mut value = vec![0x5au8; size];
            let stride = stride(size);
            let start = Instant::now();
            let end = start + send_for;
            // The leader's warm-up is a fifth of the time at most.
            let count_at = start + send_for / 5;
            let mut count_from: Option<(Instant, u64)> = None;
            let mut seq: u64 = 1;
            loop {
                stamp(&mut value, seq);
                writer.write(&value)?;
                seq += 1;
                if seq.is_multiple_of(stride) {
                    let now = Instant::now();
                    if count_from.is_none() && now >= count_at {
                        count_from = Some((now, seq));
                    }
                    if now >= end {
                        break;
                    }
                }
            }
            let (t0, s0) = count_from.unwrap_or((start, 1));
            let (writes, elapsed) = (seq - s0, t0.elapsed());
            stamp(&mut value, END);
            writer.write(&value)?;
            // Until the reader has seen the end (it holds the value open).
            writer.linger(&alarm)?;
            println!("{writes} {}", elapsed.as_nanos());
            Ok(())
        }
        other => Err(format!("unknown case {other:?}").into()),
    }
}

/// Times round trips made by `trip` after `warmup`, for `duration`.
fn round_trips(
    size: usize,
    warmup: Duration,
    duration: Duration,
    mut trip: impl FnMut(&[u8], u64) -> Result<()>,
) -> Result<Histogram<u64>> {
    let mut msg = vec![0xa5u8; size];
    let mut hist = histogram()?;
    let start = Instant::now();
    let (record_from, end) = (start + warmup, start + warmup + duration);
    let mut seq = 0;
    loop {
        stamp(&mut msg, seq);
        let t0 = Instant::now();
        trip(&msg, seq)?;
        let t1 = Instant::now();
        if t0 >= record_from {
            hist.record((t1 - t0).as_nanos().max(1) as u64)?;
        }
        if t1 >= end && !hist.is_empty() {
            return Ok(hist);
        }
        seq += 1;
    }
}

// -------------------------------------------------------- publish/subscribe

/// One side's ends of the pub/sub cases: the leader publishes on `-ab` and
/// subscribes to `-ba` (one subscriber) or `-b0` and `-b1` (two); peer `i`
/// subscribes to `-ab` and publishes on `-ba` or `-b{i}`.
#[allow(clippy::large_enum_variant)] // one per measurement, never moved in a loop
enum PubSub {
    Shmkit {
        publisher: shmkit::topic::Publisher,
        subscribers: Vec<shmkit::topic::Subscriber>,
    },
    Iox(Box<IoxPubSub>),
}

struct IoxPubSub {
    // Ports before the services and the node they come from.
    publisher: IoxPublisher<ipc::Service, [u8], ()>,
    subscribers: Vec<IoxSubscriber<ipc::Service, [u8], ()>>,
    /// iceoryx2-event: wakes the other side after each message; its
    /// listeners, one per subscriber.
    notifier: Option<Notifier<ipc::Service>>,
    listeners: Vec<Listener<ipc::Service>>,
    _services: Vec<iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>>,
    _events: Vec<iceoryx2::service::port_factory::event::PortFactory<ipc::Service>>,
    _node: Node<ipc::Service>,
}

/// How long a sleeping side polls before it sleeps: shmkit's default.
const SPIN: Duration = Duration::from_micros(20);

impl PubSub {
    fn connect(plan: &Plan, role: Option<usize>, alarm: &Alarm) -> Result<PubSub> {
        let subs = peer_count(&plan.case);
        let reply = |i: usize| if subs == 1 { "-ba".to_string() } else { format!("-b{i}") };
        // (out, in…)
        let (out, ins): (String, Vec<String>) = match role {
            None => ("-ab".into(), (0..subs).map(reply).collect()),
            Some(i) => (reply(i), vec!["-ab".into()]),
        };
        match plan.transport.as_str() {
            "shmkit-spin" | "shmkit" => {
                let spin = if plan.transport == "shmkit-spin" {
                    Duration::MAX
                } else {
                    shmkit::topic::DEFAULT_SPIN
                };
                let opts = shmkit::topic::Options::new()
                    .capacity(plan.capacity())
                    .max_subscribers(if out == "-ab" { subs } else { 1 })
                    .spin(spin)
                    .interrupt(alarm.flag.clone());
                // Publishers first: a subscriber waits for its publisher.
                let publisher = shmkit::topic::Publisher::connect(&plan.shm(&out)?, &opts)?;
                let sub_opts = shmkit::topic::SubOptions::new()
                    .spin(spin)
                    .timeout(PATIENCE)
                    .interrupt(alarm.flag.clone());
                let subscribers = ins
                    .iter()
                    .map(|s| Ok(shmkit::topic::Subscriber::connect(&plan.shm(s)?, &sub_opts)?))
                    .collect::<Result<Vec<_>>>()?;
                Ok(PubSub::Shmkit { publisher, subscribers })
            }
            "iceoryx2" | "iceoryx2-event" => {
                let events = plan.transport == "iceoryx2-event";
                let node = NodeBuilder::new().create::<ipc::Service>()?;
                let service = |suffix: &str| -> Result<_> {
                    let max_subscribers = if suffix == "-ab" { subs } else { 1 };
                    Ok(node
                        .service_builder(&plan.iox(suffix)?)
                        .publish_subscribe::<[u8]>()
                        .max_publishers(1)
                        .max_subscribers(max_subscribers)
                        .history_size(0)
                        .subscriber_max_buffer_size(1)
                        .enable_safe_overflow(true)
                        .open_or_create()?)
                };
                let event = |suffix: &str| -> Result<_> {
                    Ok(node
                        .service_builder(&plan.iox(&format!("{suffix}-ev"))?)
                        .event()
                        .open_or_create()?)
                };
                let out_svc = service(&out)?;
                let publisher = out_svc
                    .publisher_builder()
                    .initial_max_slice_len(plan.size)
                    .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                    .create()?;
                let mut services = vec![out_svc];
                let mut subscribers = Vec::new();
                for s in &ins {
                    let svc = service(s)?;
                    subscribers.push(svc.subscriber_builder().create()?);
                    services.push(svc);
                }
                let (mut notifier, mut listeners, mut evs) = (None, Vec::new(), Vec::new());
                if events {
                    let ev = event(&out)?;
                    notifier = Some(ev.notifier_builder().create()?);
                    evs.push(ev);
                    for s in &ins {
                        let ev = event(s)?;
                        listeners.push(ev.listener_builder().create()?);
                        evs.push(ev);
                    }
                }
                // Every port of every service there before the first
                // message: a sample sent before its subscriber exists is lost.
                let deadline = Instant::now() + PATIENCE;
                while !services.iter().all(|svc| {
                    let d = svc.dynamic_config();
                    let want = if svc.name().as_str().ends_with("-ab") { subs } else { 1 };
                    d.number_of_publishers() == 1 && d.number_of_subscribers() == want
                }) {
                    alarm.check()?;
                    if Instant::now() > deadline {
                        return Err("the other processes did not connect".into());
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
                // A subscriber connects to the publisher's data on its
                // first `receive()`.
                for s in &subscribers {
                    if s.receive()?.is_some() {
                        return Err("a message before the start".into());
                    }
                }
                Ok(PubSub::Iox(Box::new(IoxPubSub {
                    publisher,
                    subscribers,
                    notifier,
                    listeners,
                    _services: services,
                    _events: evs,
                    _node: node,
                })))
            }
            other => Err(format!("unknown transport {other:?}").into()),
        }
    }

    fn replies(&self) -> usize {
        match self {
            PubSub::Shmkit { subscribers, .. } => subscribers.len(),
            PubSub::Iox(x) => x.subscribers.len(),
        }
    }

    fn publish(&mut self, msg: &[u8], _alarm: &Alarm) -> Result<()> {
        match self {
            PubSub::Shmkit { publisher, .. } => {
                let mut loan = publisher.reserve(msg.len())?;
                loan.copy_from_slice(msg)?;
                loan.commit()?;
            }
            PubSub::Iox(x) => {
                let sample = x.publisher.loan_slice_uninit(msg.len())?;
                sample.write_from_slice(msg).send()?;
                if let Some(n) = &x.notifier {
                    n.notify()?;
                }
            }
        }
        Ok(())
    }

    /// Waits for the next message from subscriber `i`; its checked number.
    fn receive(&mut self, i: usize, size: usize, alarm: &Alarm) -> Result<u64> {
        match self {
            PubSub::Shmkit { subscribers, .. } => {
                let msg = subscribers[i].recv_ref().map_err(|e| e.to_string())?;
                if msg.len() != size {
                    return Err(format!("a message of {} bytes, expected {size}", msg.len()).into());
                }
                let front = u64::from_le(msg.load_u64(0)?);
                if size >= 16 && u64::from_le(msg.load_u64(size - 8)?) != front {
                    return Err(format!("message {front} is torn").into());
                }
                Ok(front)
            }
            PubSub::Iox(x) => x.wait(i, alarm, |payload| read_stamp(payload, size)),
        }
    }

    /// As [`receive`](Self::receive), with a copy of the message (to send
    /// back).
    fn receive_copy(&mut self, size: usize, alarm: &Alarm) -> Result<(u64, Vec<u8>)> {
        match self {
            PubSub::Shmkit { subscribers, .. } => {
                let mut buf = Vec::with_capacity(size);
                subscribers[0].recv_into(&mut buf).map_err(|e| e.to_string())?;
                Ok((read_stamp(&buf, size)?, buf))
            }
            PubSub::Iox(x) => x.wait(0, alarm, |payload| Ok((read_stamp(payload, size)?, payload.to_vec()))),
        }
    }
}

impl IoxPubSub {
    /// Polls subscriber `i` (iceoryx2: only that; iceoryx2-event: for
    /// [`SPIN`], then sleeps on its listener) and reads the sample in
    /// place with `f`.
    fn wait<T>(&mut self, i: usize, alarm: &Alarm, mut f: impl FnMut(&[u8]) -> Result<T>) -> Result<T> {
        let sub = &self.subscribers[i];
        let mut spins: u32 = 0;
        let mut since = Instant::now();
        loop {
            if let Some(sample) = sub.receive()? {
                return f(sample.payload());
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) {
                alarm.check()?;
                if let Some(l) = self.listeners.get(i) {
                    if since.elapsed() >= SPIN {
                        // Woken by the notify that follows the sample (or a
                        // stale one: then poll again).
                        l.timed_wait(|_| {}, Duration::from_millis(10))?;
                        since = Instant::now();
                    }
                }
            }
        }
    }
}

// --------------------------------------------------------- request/response

/// iceoryx2's request-response service of `[u8]` requests and responses.
type ReqRespService = iceoryx2::service::port_factory::request_response::PortFactory<ipc::Service, [u8], (), [u8], ()>;

#[allow(clippy::large_enum_variant)] // one per measurement, never moved in a loop
enum ReqClient {
    Shmkit(shmkit::service::Client),
    Iox(Box<IoxClient>),
}

struct IoxClient {
    client: iceoryx2::port::client::Client<ipc::Service, [u8], (), [u8], ()>,
    _service: ReqRespService,
    _node: Node<ipc::Service>,
}

fn iox_reqresp(node: &Node<ipc::Service>, plan: &Plan) -> Result<ReqRespService> {
    Ok(node
        .service_builder(&plan.iox("")?)
        .request_response::<[u8], [u8]>()
        .max_clients(1)
        .max_servers(1)
        .open_or_create()?)
}

fn iox_wait_connected(svc: &ReqRespService, alarm: &Alarm) -> Result<()> {
    while !(svc.dynamic_config().number_of_clients() == 1 && svc.dynamic_config().number_of_servers() == 1) {
        alarm.check()?;
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok(())
}

fn service_options(plan: &Plan, alarm: &Alarm) -> shmkit::service::Options {
    shmkit::service::Options::new()
        .clients(1)
        .capacity(plan.capacity())
        .spin(Duration::MAX)
        .interrupt(alarm.flag.clone())
}

impl ReqClient {
    fn connect(plan: &Plan, alarm: &Alarm) -> Result<ReqClient> {
        match plan.transport.as_str() {
            "shmkit-spin" => Ok(ReqClient::Shmkit(shmkit::service::Client::connect(
                &plan.shm("")?,
                &service_options(plan, alarm),
            )?)),
            "iceoryx2" => {
                let node = NodeBuilder::new().create::<ipc::Service>()?;
                let service = iox_reqresp(&node, plan)?;
                let client = service.client_builder().initial_max_slice_len(plan.size).create()?;
                iox_wait_connected(&service, alarm)?;
                Ok(ReqClient::Iox(Box::new(IoxClient {
                    client,
                    _service: service,
                    _node: node,
                })))
            }
            other => Err(format!("unknown transport {other:?}").into()),
        }
    }

    /// One round trip; the answer's checked number.
    fn call(&mut self, msg: &[u8], size: usize, alarm: &Alarm) -> Result<u64> {
        match self {
            ReqClient::Shmkit(c) => {
                let response = c.call(msg)?;
                read_stamp(&response.body, size)
            }
            ReqClient::Iox(x) => {
                let request = x.client.loan_slice_uninit(msg.len())?;
                let pending = request.write_from_slice(msg).send()?;
                let mut spins: u32 = 0;
                loop {
                    if let Some(response) = pending.receive()? {
                        return read_stamp(response.payload(), size);
                    }
                    std::hint::spin_loop();
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(4096) {
                        alarm.check()?;
                    }
                }
            }
        }
    }

    /// Sends a request whose answer is not awaited (the end).
    fn send_only(&mut self, msg: &[u8]) -> Result<()> {
        match self {
            ReqClient::Shmkit(c) => {
                c.send_request(msg)?;
            }
            ReqClient::Iox(x) => {
                let request = x.client.loan_slice_uninit(msg.len())?;
                let _pending = request.write_from_slice(msg).send()?;
            }
        }
        Ok(())
    }
}

#[allow(clippy::large_enum_variant)] // one per measurement, never moved in a loop
enum ReqServer {
    /// The server, and memory reused for every request's copy.
    Shmkit(shmkit::service::Server, Vec<u8>),
    Iox(Box<IoxServer>),
}

struct IoxServer {
    server: iceoryx2::port::server::Server<ipc::Service, [u8], (), [u8], ()>,
    _service: ReqRespService,
    _node: Node<ipc::Service>,
}

impl ReqServer {
    fn connect(plan: &Plan, alarm: &Alarm) -> Result<ReqServer> {
        match plan.transport.as_str() {
            "shmkit-spin" => Ok(ReqServer::Shmkit(
                shmkit::service::Server::connect(&plan.shm("")?, &service_options(plan, alarm))?,
                Vec::new(),
            )),
            "iceoryx2" => {
                let node = NodeBuilder::new().create::<ipc::Service>()?;
                let service = iox_reqresp(&node, plan)?;
                let server = service.server_builder().initial_max_slice_len(plan.size).create()?;
                iox_wait_connected(&service, alarm)?;
                Ok(ReqServer::Iox(Box::new(IoxServer {
                    server,
                    _service: service,
                    _node: node,
                })))
            }
            other => Err(format!("unknown transport {other:?}").into()),
        }
    }

    /// Answers the next request with its bytes; `false` at the end.
    fn answer(&mut self, size: usize, alarm: &Alarm) -> Result<bool> {
        match self {
            ReqServer::Shmkit(s, body) => {
                // in place, copied once into reused memory (as iceoryx2's
                // side copies the loaned request into the loaned response)
                let req = s.recv_request_ref()?;
                body.resize(req.len(), 0);
                req.copy_to_slice(body).map_err(|e| format!("request: {e}"))?;
                if read_stamp(body, size)? == END {
                    return Ok(false);
                }
                req.respond(body).map_err(|e| format!("respond: {e}"))?;
                Ok(true)
            }
            ReqServer::Iox(x) => {
                let mut spins: u32 = 0;
                loop {
                    if let Some(active) = x.server.receive()? {
                        if read_stamp(active.payload(), size)? == END {
                            return Ok(false);
                        }
                        let response = active.loan_slice_uninit(size)?;
                        response.write_from_slice(active.payload()).send()?;
                        return Ok(true);
                    }
                    std::hint::spin_loop();
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(4096) {
                        alarm.check()?;
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------- latest value

/// The sizes iceoryx2's blackboard is measured at (a value is a `[u8; N]`).
pub fn blackboard_fits(size: usize) -> bool {
    matches!(size, 8 | 64 | 4096)
}

/// An iceoryx2 blackboard of one `[u8; N]` entry, key 0.
type Board = iceoryx2::service::port_factory::blackboard::PortFactory<ipc::Service, u64>;

enum LatestWriter {
    Shmkit(shmkit::latest::Writer),
    Iox8(IoxWriter<8>),
    Iox64(IoxWriter<64>),
    Iox4k(IoxWriter<4096>),
}

struct IoxWriter<const N: usize> {
    entry: iceoryx2::port::writer::EntryHandleMut<ipc::Service, u64, [u8; N]>,
    _writer: iceoryx2::port::writer::Writer<ipc::Service, u64>,
    service: Board,
    _node: Node<ipc::Service>,
}

impl<const N: usize> IoxWriter<N> {
    fn create(plan: &Plan) -> Result<Self> {
        let node = NodeBuilder::new().create::<ipc::Service>()?;
        let mut first = [0u8; N];
        stamp(&mut first, 0);
        let service = node
            .service_builder(&plan.iox("")?)
            .blackboard_creator::<u64>()
            .max_readers(1)
            .add::<[u8; N]>(0, first)
            .create()?;
        let writer = service.writer_builder().create()?;
        let entry = writer.entry::<[u8; N]>(&0)?;
        Ok(IoxWriter {
            entry,
            _writer: writer,
            service,
            _node: node,
        })
    }

    fn write(&mut self, value: &[u8]) -> Result<()> {
        let v: [u8; N] = value.try_into()?;
        self.entry.update_with_copy(v);
        Ok(())
    }

    fn linger(&self, alarm: &Alarm) -> Result<()> {
        while self.service.dynamic_config().number_of_readers() > 0 {
            alarm.check()?;
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }
}

impl LatestWriter {
    fn create(plan: &Plan) -> Result<LatestWriter> {
        match (plan.transport.as_str(), plan.size) {
            ("shmkit", _) => {
                let opts = shmkit::latest::Options::new().max_size(plan.size as u64);
                let mut w = shmkit::latest::Writer::create(&plan.shm("")?, &opts)?;
                let mut first = vec![0u8; plan.size];
                stamp(&mut first, 0);
                w.write(&first)?;
                Ok(LatestWriter::Shmkit(w))
            }
            ("iceoryx2", 8) => Ok(LatestWriter::Iox8(IoxWriter::create(plan)?)),
            ("iceoryx2", 64) => Ok(LatestWriter::Iox64(IoxWriter::create(plan)?)),
            ("iceoryx2", 4096) => Ok(LatestWriter::Iox4k(IoxWriter::create(plan)?)),
            (t, s) => Err(format!("no latest value for {t} at {s} bytes").into()),
        }
    }

    fn write(&mut self, value: &[u8]) -> Result<()> {
        match self {
            LatestWriter::Shmkit(w) => {
                w.write(value)?;
                Ok(())
            }
            LatestWriter::Iox8(w) => w.write(value),
            LatestWriter::Iox64(w) => w.write(value),
            LatestWriter::Iox4k(w) => w.write(value),
        }
    }

    /// Stays until the reader has gone (iceoryx2 removes a blackboard with
    /// its creator; shmkit's value stays while a reader has it open).
    fn linger(&self, alarm: &Alarm) -> Result<()> {
        match self {
            LatestWriter::Shmkit(_) => Ok(()),
            LatestWriter::Iox8(w) => w.linger(alarm),
            LatestWriter::Iox64(w) => w.linger(alarm),
            LatestWriter::Iox4k(w) => w.linger(alarm),
        }
    }
}

#[allow(clippy::large_enum_variant)] // one per measurement, never moved in a loop
enum LatestReader {
    /// With a buffer to copy into.
    Shmkit(shmkit::latest::Reader, Vec<u8>),
    Iox8(IoxReader<8>),
    Iox64(IoxReader<64>),
    Iox4k(IoxReader<4096>),
}

struct IoxReader<const N: usize> {
    entry: iceoryx2::port::reader::EntryHandle<ipc::Service, u64, [u8; N]>,
    _reader: iceoryx2::port::reader::Reader<ipc::Service, u64>,
    _service: Board,
    _node: Node<ipc::Service>,
}

impl<const N: usize> IoxReader<N> {
    fn open(plan: &Plan) -> Result<Self> {
        let node = NodeBuilder::new().create::<ipc::Service>()?;
        let service = node
            .service_builder(&plan.iox("")?)
            .blackboard_opener::<u64>()
            .max_readers(1)
            .open()?;
        let reader = service.reader_builder().create()?;
        let entry = reader.entry::<[u8; N]>(&0)?;
        Ok(IoxReader {
            entry,
            _reader: reader,
            _service: service,
            _node: node,
        })
    }

    /// The value's number.
    fn read(&self) -> Result<u64> {
        // The whole value, copied out (as shmkit's `read_into` does).
        let v: [u8; N] = std::hint::black_box(*self.entry.get());
        read_stamp(&v, N)
    }
}

impl LatestReader {
    fn open(plan: &Plan, alarm: &Alarm) -> Result<LatestReader> {
        // The writer said it is ready: its value exists.
        let _ = alarm;
        match (plan.transport.as_str(), plan.size) {
            ("shmkit", _) => Ok(LatestReader::Shmkit(
                shmkit::latest::Reader::open(
                    &plan.shm("")?,
                    &shmkit::latest::Options::new().interrupt(alarm.flag.clone()),
                )?,
                Vec::with_capacity(plan.size),
            )),
            ("iceoryx2", 8) => Ok(LatestReader::Iox8(IoxReader::open(plan)?)),
            ("iceoryx2", 64) => Ok(LatestReader::Iox64(IoxReader::open(plan)?)),
            ("iceoryx2", 4096) => Ok(LatestReader::Iox4k(IoxReader::open(plan)?)),
            (t, s) => Err(format!("no latest value for {t} at {s} bytes").into()),
        }
    }

    /// Reads the whole value; its number.
    fn read(&mut self, size: usize) -> Result<u64> {
        match self {
            LatestReader::Shmkit(r, buf) => match r.read_into(buf)? {
                Some(_) => read_stamp(buf, size),
                None => Err("no value".into()),
            },
            LatestReader::Iox8(r) => r.read(),
            LatestReader::Iox64(r) => r.read(),
            LatestReader::Iox4k(r) => r.read(),
        }
    }
}

/// The reader's side: reads back to back until the writer's end; counts
/// whole values read from the end of the warm-up (or from the start, if one
/// read lasted past it: a reader that a writer laps all the time retries,
/// and one that found no whole value for a second counts none).
fn read_latest(reader: &mut LatestReader, size: usize, warmup: Duration, alarm: &Alarm) -> Result<(u64, Duration)> {
    let stride = stride(size);
    let start = Instant::now();
    let (mut tries, mut reads, mut last) = (0u64, 0u64, 0u64);
    let mut count_from: Option<(Instant, u64)> = None;
    loop {
        tries += 1;
        if tries % stride == 0 {
            alarm.check()?;
            if count_from.is_none() {
                let now = Instant::now();
                if now - start >= warmup {
                    count_from = Some((now, reads));
                }
            }
        }
        let seq = match reader.read(size) {
            Ok(seq) => seq,
            Err(e)
                if e.downcast_ref::<shmkit::Error>()
                    .is_some_and(|e| matches!(e, shmkit::Error::TimedOut { .. })) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        if seq == END {
            let (t0, r0) = count_from.unwrap_or((start, 0));
            return Ok((reads - r0, t0.elapsed()));
        }
        if seq < last {
            return Err(format!("value {seq} after {last}").into());
        }
        last = seq;
        reads += 1;
    }
}
