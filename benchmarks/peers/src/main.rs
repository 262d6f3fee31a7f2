//! shmkit and iceoryx2 side by side: the same ping-pong and stream, the
//! same sizes, the same harness, in one run, between two processes (this
//! executable starts itself as the second).
//!
//! ```text
//! cd benchmarks/peers && cargo run --release -- [--quick] [--sizes 8,64,4K,64K,1M] [--duration 1s]
//! ```
//!
//! Both transports are used zero-copy, as each recommends, and both wait
//! by spinning:
//! - `iceoryx2`: publish-subscribe over `ipc::Service`, a `[u8]` slice
//!   payload; the sender loans a sample (`loan_slice_uninit`), writes the
//!   message into it (`write_from_slice`) and sends it; the receiver
//!   busy-polls `receive()` and reads the sample in place. Ping-pong:
//!   history 0, a subscriber buffer of 1, safe overflow (as iceoryx2's own
//!   benchmark); stream: no overflow, the publisher retries until delivered.
//! - `shmkit-spin`: a channel each way with `spin(Duration::MAX)`; the
//!   sender reserves a grant (`reserve`), writes the message into it
//!   (`copy_from_slice` on the grant's view) and commits; the receiver
//!   reads the first and last eight bytes in place through the guard's view
//!   (`recv_ref`, `load_u64`).
//!
//! Each message is written whole by the sender and carries its sequence
//! number in its first and last eight bytes, which the receiver checks in
//! place. Round trips are timed by the first process; a stream's messages
//! are counted by the receiving first process after a warm-up.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use shmkit::channel::{Options, Receiver, Sender};
use shmkit::posix::ShmName;

mod patterns;

type Error = Box<dyn std::error::Error>;
type Result<T, E = Error> = std::result::Result<T, E>;

const END: u64 = u64::MAX;
const TRANSPORTS: [&str; 2] = ["shmkit-spin", "iceoryx2"];
/// How long a side waits for the other before giving up.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Parser, Debug)]
#[command(about = "shmkit and iceoryx2 measured by one harness in one run")]
struct Args {
    /// Sizes 64 and 1M, 250 ms per measurement.
    #[arg(long)]
    quick: bool,
    /// Message sizes, comma-separated (K, M: powers of 1024).
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Measuring time per case after the warm-up, in milliseconds.
    #[arg(long)]
    duration_ms: Option<u64>,
    /// Transports, comma-separated: shmkit-spin, iceoryx2 (and for the
    /// patterns shmkit, iceoryx2-event).
    #[arg(long, value_delimiter = ',')]
    transports: Vec<String>,
    /// Patterns, comma-separated [default: all]: pingpong, stream, and
    /// issue 13's pubsub1, pubsub2, reqresp, latest (see patterns.rs).
    #[arg(long, value_delimiter = ',')]
    patterns: Vec<String>,
    /// Internal: run as the second process.
    #[arg(long, hide = true, num_args = 6, value_names = ["TRANSPORT", "PATTERN", "SIZE", "NAME", "SEND_NS", "PARENT"])]
    peer: Vec<String>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_uppercase();
    let (num, shift) = match t.strip_suffix('K') {
        Some(n) => (n, 10),
        None => match t.strip_suffix('M') {
            Some(n) => (n, 20),
            None => (t.as_str(), 0),
        },
    };
    let n: usize = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let bytes = n << shift;
    if !(8..=(64 << 20)).contains(&bytes) {
        return Err(format!("size {s:?}: 8 bytes to 64M"));
    }
    Ok(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    PingPong,
    Stream,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::PingPong => "pingpong",
            Pattern::Stream => "stream",
        }
    }
}

// ---------------------------------------------------------------- harness

/// One end of a transport, used zero-copy.
trait Zc {
    /// Sends `msg`, written into shared memory in place.
    fn send(&mut self, msg: &[u8], alive: &mut dyn FnMut() -> Result<()>) -> Result<()>;
    /// Waits for the next message and returns its checked sequence number.
    fn recv(&mut self, size: usize, alive: &mut dyn FnMut() -> Result<()>) -> Result<u64>;
    /// Completes the connection before the first message is sent.
    fn prime(&mut self) -> Result<()> {
        Ok(())
    }
}

fn stamp(msg: &mut [u8], seq: u64) {
    let b = seq.to_le_bytes();
    let n = msg.len();
    msg[..8].copy_from_slice(&b);
    if n >= 16 {
        msg[n - 8..].copy_from_slice(&b);
    }
}

fn read_stamp(msg: &[u8], size: usize) -> Result<u64> {
    if msg.len() != size {
        return Err(format!("a message of {} bytes, expected {size}", msg.len()).into());
    }
    let front = u64::from_le_bytes(msg[..8].try_into()?);
    if size >= 16 && u64::from_le_bytes(msg[size - 8..].try_into()?) != front {
        return Err(format!("message {front} is torn").into());
    }
    Ok(front)
}

fn stride(size: usize) -> u64 {
    (65536 / size).max(1) as u64
}

enum Outcome {
    PingPong(Histogram<u64>),
    Stream { messages: u64, elapsed: Duration },
}

fn ping_pong(
    link: &mut dyn Zc,
    size: usize,
    warmup: Duration,
    duration: Duration,
    alive: &mut dyn FnMut() -> Result<()>,
) -> Result<Outcome> {
    let mut msg = vec![0xa5u8; size];
    let mut hist = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3)?;
    let start = Instant::now();
    let (record_from, end) = (start + warmup, start + warmup + duration);
    let mut seq = 0;
    loop {
        stamp(&mut msg, seq);
        let t0 = Instant::now();
        link.send(&msg, alive)?;
        let got = link.recv(size, alive)?;
        let t1 = Instant::now();
        if got != seq {
            return Err(format!("answer {got} to {seq}").into());
        }
        if t0 >= record_from {
            hist.record((t1 - t0).as_nanos().max(1) as u64)?;
        }
        if t1 >= end {
            break;
        }
        seq += 1;
    }
    stamp(&mut msg, END);
    link.send(&msg, alive)?;
    Ok(Outcome::PingPong(hist))
}

fn echo(link: &mut dyn Zc, size: usize, alive: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    let mut msg = vec![0x5au8; size];
    loop {
        let seq = link.recv(size, alive)?;
        if seq == END {
            return Ok(());
        }
        stamp(&mut msg, seq);
        link.send(&msg, alive)?;
    }
}

fn receive_stream(
    link: &mut dyn Zc,
    size: usize,
    warmup: Duration,
    alive: &mut dyn FnMut() -> Result<()>,
) -> Result<Outcome> {
    let stride = stride(size);
    let mut next = 0u64;
    let mut warm_until = None;
    let mut count_from: Option<(Instant, u64)> = None;
    loop {
        let got = link.recv(size, alive)?;
        if got == END {
            let (t0, n0) = count_from.ok_or("stream ended within the warm-up")?;
            return Ok(Outcome::Stream {
                messages: next - n0,
                elapsed: t0.elapsed(),
            });
        }
        if got != next {
            return Err(format!("message {got} where {next} was due").into());
        }
        next += 1;
        if next.is_multiple_of(stride) && count_from.is_none() {
            let now = Instant::now();
            match warm_until {
                None => warm_until = Some(now + warmup),
                Some(w) if now >= w => count_from = Some((now, next)),
                Some(_) => {}
            }
        }
    }
}

fn send_stream(
    link: &mut dyn Zc,
    size: usize,
    send_for: Duration,
    alive: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let mut msg = vec![0x5au8; size];
    let stride = stride(size);
    let end = Instant::now() + send_for;
    let mut seq = 0;
    loop {
        stamp(&mut msg, seq);
        link.send(&msg, alive)?;
        seq += 1;
        if seq % stride == 0 && Instant::now() >= end {
            break;
        }
    }
    stamp(&mut msg, END);
    link.send(&msg, alive)
}

// ---------------------------------------------------------------- shmkit

struct ShmkitLink {
    tx: Option<Sender>,
    rx: Option<Receiver>,
}

fn capacity(size: usize) -> u64 {
    let frame = (size as u64 + 15) & !7;
    (4 * frame).next_power_of_two().max(shmkit::channel::DEFAULT_CAPACITY)
}

impl ShmkitLink {
    fn connect(base: &str, pattern: Pattern, size: usize, leader: bool) -> Result<ShmkitLink> {
        let opts = Options::new()
            .capacity(capacity(size))
            .spin(Duration::MAX)
            .timeout(PATIENCE);
        let ab = ShmName::new(format!("{base}-ab"))?;
        let ba = ShmName::new(format!("{base}-ba"))?;
        Ok(match (pattern, leader) {
            (Pattern::PingPong, true) => {
                let tx = Sender::connect(&ab, &opts)?;
                let rx = Receiver::connect(&ba, &opts)?;
                ShmkitLink {
                    tx: Some(tx),
                    rx: Some(rx),
                }
            }
            (Pattern::PingPong, false) => {
                let rx = Receiver::connect(&ab, &opts)?;
                let tx = Sender::connect(&ba, &opts)?;
                ShmkitLink {
                    tx: Some(tx),
                    rx: Some(rx),
                }
            }
            (Pattern::Stream, true) => ShmkitLink {
                tx: None,
                rx: Some(Receiver::connect(&ba, &opts)?),
            },
            (Pattern::Stream, false) => ShmkitLink {
                tx: Some(Sender::connect(&ba, &opts)?),
                rx: None,
            },
        })
    }
}

impl Zc for ShmkitLink {
    fn send(&mut self, msg: &[u8], _alive: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        let tx = self.tx.as_mut().ok_or("not a sender")?;
        let mut grant = tx.reserve(msg.len())?;
        grant.copy_from_slice(msg)?;
        grant.commit()?;
        Ok(())
    }

    fn recv(&mut self, size: usize, _alive: &mut dyn FnMut() -> Result<()>) -> Result<u64> {
        // The channel spins and watches the other process itself.
        let rx = self.rx.as_mut().ok_or("not a receiver")?;
        let msg = rx.recv_ref()?;
        // In place, through the guard's view: its first and last eight
        // bytes, as iceoryx2's side reads its sample's.
        if msg.len() != size {
            return Err(format!("a message of {} bytes, expected {size}", msg.len()).into());
        }
        let front = u64::from_le(msg.load_u64(0)?);
        if size >= 16 && u64::from_le(msg.load_u64(size - 8)?) != front {
            return Err(format!("message {front} is torn").into());
        }
        Ok(front)
    }
}

// ---------------------------------------------------------------- iceoryx2

struct IoxLink {
    // Ports before the services and the node they come from.
    publisher: Option<Publisher<ipc::Service, [u8], ()>>,
    subscriber: Option<Subscriber<ipc::Service, [u8], ()>>,
    _services: Vec<iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>>,
    _node: Node<ipc::Service>,
}

impl IoxLink {
    fn connect(base: &str, pattern: Pattern, size: usize, leader: bool) -> Result<IoxLink> {
        let node = NodeBuilder::new().create::<ipc::Service>()?;
        let service = |dir: &str| -> Result<_> {
            let name = ServiceName::new(&format!("{base}/{dir}"))?;
            let b = node
                .service_builder(&name)
                .publish_subscribe::<[u8]>()
                .max_publishers(1)
                .max_subscribers(1)
                .history_size(0);
            let b = match pattern {
                Pattern::PingPong => b.subscriber_max_buffer_size(1).enable_safe_overflow(true),
                Pattern::Stream => b
                    .subscriber_max_buffer_size((capacity(size) as usize / size).clamp(4, 1024))
                    .enable_safe_overflow(false),
            };
            Ok(b.open_or_create()?)
        };
        let publisher = |svc: &iceoryx2::service::port_factory::publish_subscribe::PortFactory<
            ipc::Service,
            [u8],
            (),
        >|
         -> Result<_> {
            Ok(svc
                .publisher_builder()
                .initial_max_slice_len(size)
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()?)
        };
        let mut services = Vec::new();
        let (mut p, mut s) = (None, None);
        match (pattern, leader) {
            (Pattern::PingPong, _) => {
                let (out_dir, in_dir) = if leader { ("ab", "ba") } else { ("ba", "ab") };
                let out = service(out_dir)?;
                let inp = service(in_dir)?;
                p = Some(publisher(&out)?);
                s = Some(inp.subscriber_builder().create()?);
                services.push(out);
                services.push(inp);
            }
            (Pattern::Stream, true) => {
                let inp = service("ba")?;
                s = Some(inp.subscriber_builder().create()?);
                services.push(inp);
            }
            (Pattern::Stream, false) => {
                let out = service("ba")?;
                p = Some(publisher(&out)?);
                services.push(out);
            }
        }
        // Wait until the other process has its ports too: a sample sent
        // before its subscriber exists would be lost.
        let deadline = Instant::now() + PATIENCE;
        while !services.iter().all(|svc| {
            let d = svc.dynamic_config();
            d.number_of_publishers() == 1 && d.number_of_subscribers() == 1
        }) {
            if Instant::now() > deadline {
                return Err("the other process did not connect".into());
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        Ok(IoxLink {
            publisher: p,
            subscriber: s,
            _services: services,
            _node: node,
        })
    }
}

impl Zc for IoxLink {
    fn prime(&mut self) -> Result<()> {
        // A subscriber connects to the publisher's data on its first
        // `receive()`; until then a full buffer makes the publisher drop
        // samples rather than wait.
        if let Some(subscriber) = &self.subscriber {
            if subscriber.receive()?.is_some() {
                return Err("a message before the start".into());
            }
        }
        Ok(())
    }

    fn send(&mut self, msg: &[u8], _alive: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        let publisher = self.publisher.as_ref().ok_or("not a publisher")?;
        let sample = publisher.loan_slice_uninit(msg.len())?;
        let sample = sample.write_from_slice(msg);
        sample.send()?;
        Ok(())
    }

    fn recv(&mut self, size: usize, alive: &mut dyn FnMut() -> Result<()>) -> Result<u64> {
        let subscriber = self.subscriber.as_ref().ok_or("not a subscriber")?;
        let mut spins: u32 = 0;
        loop {
            if let Some(sample) = subscriber.receive()? {
                return read_stamp(sample.payload(), size);
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(4096) {
                alive()?;
            }
        }
    }
}

// ---------------------------------------------------------------- processes

fn connect(transport: &str, base: &str, pattern: Pattern, size: usize, leader: bool) -> Result<Box<dyn Zc>> {
    Ok(match transport {
        "shmkit-spin" => Box::new(ShmkitLink::connect(base, pattern, size, leader)?),
        "iceoryx2" => Box::new(IoxLink::connect(base, pattern, size, leader)?),
        other => return Err(format!("unknown transport {other:?}").into()),
    })
}

/// Kills the second process unless it has finished.
struct PeerGuard(Child);

impl Drop for PeerGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn run_case(
    transport: &str,
    pattern: Pattern,
    size: usize,
    n: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Outcome> {
    let base = format!("/shmkit-peers-{}-{n}", std::process::id());
    let send_for = warmup + duration;
    let child = Command::new(std::env::current_exe()?)
        .arg("--peer")
        .args([
            transport,
            pattern.name(),
            &size.to_string(),
            &base,
            &send_for.as_nanos().to_string(),
            &std::process::id().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut peer = PeerGuard(child);
    let mut to_peer = peer.0.stdin.take().ok_or("no pipe to the second process")?;
    let mut from_peer = peer.0.stdout.take().ok_or("no pipe from the second process")?;
    let deadline = Instant::now() + warmup + duration + PATIENCE;
    let mut alive = || -> Result<()> {
        if let Some(status) = peer.0.try_wait()? {
            return Err(format!("the second process ended early ({status})").into());
        }
        if Instant::now() > deadline {
            return Err("the measurement overran".into());
        }
        Ok(())
    };
    let outcome = {
        let mut link = connect(transport, &base, pattern, size, true)?;
        // Both sides ready (connected, primed) before the first message.
        link.prime()?;
        let mut ready = [0u8; 1];
        from_peer.read_exact(&mut ready)?;
        to_peer.write_all(b"g")?;
        match pattern {
            Pattern::PingPong => ping_pong(link.as_mut(), size, warmup, duration, &mut alive)?,
            Pattern::Stream => receive_stream(link.as_mut(), size, warmup, &mut alive)?,
        }
    };
    let status = peer.0.wait()?;
    if !status.success() {
        return Err(format!("the second process failed ({status})").into());
    }
    Ok(outcome)
}

fn run_peer(a: &[String]) -> Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    let parent: u32 = a[5].parse()?;
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(parent) {
        return Err("the first process is gone".into());
    }
    if a[1].contains(':') {
        // a pattern case's peer: CASE:ROLE
        return patterns::run_peer(&a[0], &a[1], a[2].parse()?, &a[3], Duration::from_nanos(a[4].parse()?));
    }
    let pattern = if a[1] == "stream" {
        Pattern::Stream
    } else {
        Pattern::PingPong
    };
    let size: usize = a[2].parse()?;
    let send_for = Duration::from_nanos(a[4].parse()?);
    let deadline = Instant::now() + send_for + 2 * PATIENCE;
    let mut alive = || -> Result<()> {
        if Instant::now() > deadline {
            return Err("the measurement overran".into());
        }
        Ok(())
    };
    let mut link = connect(&a[0], &a[3], pattern, size, false)?;
    link.prime()?;
    std::io::stdout().write_all(b"r")?;
    std::io::stdout().flush()?;
    let mut go = [0u8; 1];
    std::io::stdin().read_exact(&mut go)?;
    match pattern {
        Pattern::PingPong => echo(link.as_mut(), size, &mut alive),
        Pattern::Stream => send_stream(link.as_mut(), size, send_for, &mut alive),
    }
}

// ---------------------------------------------------------------- output

fn fmt_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.2} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    }
}

fn size_label(size: usize) -> String {
    if size >= 1 << 20 {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

/// What iceoryx2 leaves behind after any run, by design: its global
/// management object in `/dev/shm` (`iox2_*`) and `/tmp/iceoryx2/`. The
/// leader notes what was there before it began and removes, at the end,
/// what the run added — nothing another program had made before.
struct Iceoryx2Leftovers {
    shm_before: Vec<std::ffi::OsString>,
    tmp_existed: bool,
}

const IOX2_TMP: &str = "/tmp/iceoryx2";

fn iox2_shm_names() -> Vec<std::ffi::OsString> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().starts_with("iox2_"))
                .collect()
        })
        .unwrap_or_default()
}

impl Iceoryx2Leftovers {
    fn note() -> Iceoryx2Leftovers {
        Iceoryx2Leftovers {
            shm_before: iox2_shm_names(),
            tmp_existed: std::path::Path::new(IOX2_TMP).exists(),
        }
    }
}

impl Drop for Iceoryx2Leftovers {
    fn drop(&mut self) {
        for name in iox2_shm_names() {
            if !self.shm_before.contains(&name) {
                let _ = std::fs::remove_file(std::path::Path::new("/dev/shm").join(&name));
            }
        }
        if !self.tmp_existed {
            let _ = std::fs::remove_dir_all(IOX2_TMP);
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    iceoryx2::prelude::set_log_level(LogLevel::Error);
    if !args.peer.is_empty() {
        return match run_peer(&args.peer) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("peers (second process): {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Removed when `main` returns, after every second process has ended.
    let _leftovers = Iceoryx2Leftovers::note();
    let sizes = if !args.sizes.is_empty() {
        args.sizes.clone()
    } else if args.quick {
        vec![64, 1 << 20]
    } else {
        vec![8, 64, 4 << 10, 64 << 10, 1 << 20]
    };
    let duration = Duration::from_millis(args.duration_ms.unwrap_or(if args.quick { 250 } else { 1000 }));
    let warmup = (duration / 4).min(Duration::from_millis(200));
    let transports: Vec<&str> = TRANSPORTS
        .into_iter()
        .filter(|t| args.transports.is_empty() || args.transports.iter().any(|a| a == t))
        .collect();

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "shmkit vs iceoryx2: {cpu}, {cores} cores, Linux {}; {} ms per measurement after {} ms of warm-up",
        kernel.trim(),
        duration.as_millis(),
        warmup.as_millis()
    );

    let mut failed = 0;
    let mut n = 0;
    let wants = |p: &str| args.patterns.is_empty() || args.patterns.iter().any(|a| a == p);
    for pattern in [Pattern::PingPong, Pattern::Stream]
        .into_iter()
        .filter(|p| wants(p.name()))
    {
        match pattern {
            Pattern::PingPong => println!(
                "\nping-pong: round-trip time\n{:>7}  {:<12}{:>10}{:>10}{:>10}{:>10}{:>16}",
                "size", "transport", "p50", "p99", "p99.9", "max", "p50 ÷ iceoryx2"
            ),
            Pattern::Stream => println!(
                "\nstream: throughput\n{:>7}  {:<12}{:>12}{:>13}{:>18}",
                "size", "transport", "msgs/s", "bytes/s", "bytes/s ÷ iceoryx2"
            ),
        }
        for &size in &sizes {
            let mut results = Vec::new();
            for &t in &transports {
                n += 1;
                match run_case(t, pattern, size, n, warmup, duration) {
                    Ok(o) => results.push((t, o)),
                    Err(e) => {
                        failed += 1;
                        eprintln!("peers: {} {t} {}: {e}", pattern.name(), size_label(size));
                    }
                }
            }
            let iox = results.iter().find(|(t, _)| *t == "iceoryx2").map(|(_, o)| match o {
                Outcome::PingPong(h) => h.value_at_quantile(0.5) as f64,
                Outcome::Stream { messages, elapsed } => *messages as f64 / elapsed.as_secs_f64(),
            });
            for (t, o) in &results {
                match o {
                    Outcome::PingPong(h) => {
                        let p50 = h.value_at_quantile(0.5);
                        let ratio = iox.map_or("-".into(), |i| format!("{:.2}×", p50 as f64 / i));
                        println!(
                            "{:>7}  {:<12}{:>10}{:>10}{:>10}{:>10}{:>16}",
                            size_label(size),
                            t,
                            fmt_ns(p50),
                            fmt_ns(h.value_at_quantile(0.99)),
                            fmt_ns(h.value_at_quantile(0.999)),
                            fmt_ns(h.max()),
                            ratio
                        );
                    }
                    Outcome::Stream { messages, elapsed } => {
                        let rate = *messages as f64 / elapsed.as_secs_f64();
                        let ratio = iox.map_or("-".into(), |i| format!("{:.2}×", rate / i));
                        println!(
                            "{:>7}  {:<12}{:>12}{:>13}{:>18}",
                            size_label(size),
                            t,
                            format!("{:.3} M", rate / 1e6),
                            format!("{:.2} GiB/s", rate * size as f64 / (1u64 << 30) as f64),
                            ratio
                        );
                    }
                }
            }
        }
    }
    let cases: Vec<&str> = patterns::CASES.into_iter().filter(|c| wants(c)).collect();
    let wanted = |t: &str| args.transports.is_empty() || args.transports.iter().any(|a| a == t);
    failed += patterns::run_all(&cases, &sizes, &wanted, &mut n, warmup, duration);
    if failed > 0 {
        eprintln!("peers: {failed} measurements failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
