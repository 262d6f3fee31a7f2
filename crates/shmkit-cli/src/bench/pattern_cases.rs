//! The pattern cases' two sides: what the leader does ([`lead`]) and what
//! each peer does ([`follow`]), over the library's endpoints.
//!
//! Every message carries its sequence number in its first and last eight
//! bytes ([`measure::stamp`]), which the receiving side checks; the last
//! one of a run carries [`END`].

use std::time::{Duration, Instant};

use shmkit::posix::ShmName;
use shmkit::{latest, many_to_one, service, topic};

use super::child::PeerProcess;
use super::error::{Error, Result};
use super::link::CONNECT_TIMEOUT;
use super::measure::{self, read_stamp, stamp, PingPong, Stream, END};
use super::patterns::Case;
use super::report::Outcome;
use super::transport::Transport;

/// One round of a case, as both sides know it.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub transport: Transport,
    pub size: usize,
    /// The base name of the shared-memory objects.
    pub base: String,
    /// Each ring's capacity in bytes.
    pub capacity: u64,
    pub warmup: Duration,
    pub round: Duration,
    /// How long a streaming or writing peer sends.
    pub send_for: Duration,
}

impl Setup {
    fn name(&self, suffix: &str) -> Result<ShmName> {
        Ok(ShmName::new(format!("{}{suffix}", self.base))?)
    }

    /// How long a waiting side spins before it sleeps.
    fn spin(&self) -> Option<Duration> {
        match self.transport {
            Transport::ShmkitSpin => Some(Duration::MAX),
            Transport::ShmkitSleep => Some(Duration::ZERO),
            // the library's default
            _ => None,
        }
    }
}

/// The suffixes of every object a case may name after its base.
const SUFFIXES: [&str; 5] = ["", "-ab", "-ba", "-b0", "-b1"];

/// The capacity of each ring for messages of `size` bytes: room for at
/// least three with their headers (a request's or a topic frame's), and
/// never less than 64 KiB.
pub(crate) fn capacity(size: usize) -> u64 {
    (4 * (size as u64 + 64)).next_power_of_two().max(64 << 10)
}

/// Removes whatever objects a case named `base` may have left (after every
/// process is done with them): normally nothing is left.
pub(crate) fn remove_leftovers(base: &str) {
    for suffix in SUFFIXES {
        if let Ok(name) = ShmName::new(format!("{base}{suffix}")) {
            let _ = shmkit::posix::remove(&name);
        }
    }
}

/// The leader's side of `case`, with its peers started: the rows it
/// measured, each with its `pattern` value.
pub(crate) fn lead(case: Case, setup: &Setup, peers: &[PeerProcess]) -> Result<Vec<(&'static str, Outcome)>> {
    match case {
        Case::ReqResp => Ok(vec![("reqresp", Outcome::PingPong(lead_reqresp(setup, peers)?))]),
        Case::Many2 => Ok(vec![("many2", Outcome::Stream(vec![lead_many(setup, peers)?]))]),
        Case::Latest => {
            let (writes, reads) = lead_latest(setup, peers)?;
            Ok(vec![
                ("latest-write", Outcome::Stream(vec![writes])),
                ("latest-read", Outcome::Stream(vec![reads])),
            ])
        }
        Case::PubSub1 | Case::PubSub2 => Ok(vec![(
            case.name(),
            Outcome::PingPong(lead_pubsub(setup, case.peers(), peers)?),
        )]),
    }
}

/// Peer `role`'s side of `case`.
pub(crate) fn follow(case: Case, role: usize, setup: &Setup) -> Result<()> {
    match case {
        Case::ReqResp => follow_reqresp(setup),
        Case::Many2 => follow_many(setup),
        Case::Latest => follow_latest(setup),
        Case::PubSub1 | Case::PubSub2 => follow_pubsub(setup, case.peers(), role),
    }
}

/// Times round trips, each made by `trip` (which sends the message and
/// waits for every answer, checking it), after `warmup`, for `duration`.
/// At least one round trip is recorded (the watchdog bounds the run).
fn round_trips(
    size: usize,
    warmup: Duration,
    duration: Duration,
    mut trip: impl FnMut(&[u8], u64) -> Result<()>,
) -> Result<PingPong> {
    let mut out = vec![0xa5u8; size];
    let mut hist = measure::histogram();
    let start = Instant::now();
    let record_from = start + warmup;
    let end = record_from + duration;
    let mut seq: u64 = 0;
    loop {
        stamp(&mut out, seq);
        let t0 = Instant::now();
        trip(&out, seq)?;
        let t1 = Instant::now();
        if t0 >= record_from {
            let ns = (t1 - t0).as_nanos().clamp(1, u128::from(hist.high())) as u64;
            hist.record(ns).expect("within the bounds");
        }
        if t1 >= end && !hist.is_empty() {
            return Ok(PingPong { hist });
        }
        seq += 1;
    }
}

/// Checks that `msg` is the answer to message `seq`.
fn check_answer(msg: &[u8], size: usize, seq: u64) -> Result<()> {
    match read_stamp(msg, size)? {
        got if got == seq => Ok(()),
        got => Err(Error::Check(format!("answer {got} to message {seq}"))),
    }
}

/// A message that ends the run.
fn end_message(size: usize) -> Vec<u8> {
    stamped(size, END)
}

/// A pub/sub follower's first message on its reply topic: it has subscribed.
const READY: u64 = END - 1;

/// A message of `size` bytes stamped with `value`.
fn stamped(size: usize, value: u64) -> Vec<u8> {
    let mut m = vec![0u8; size];
    stamp(&mut m, value);
    m
}

// ------------------------------------------------------ publish/subscribe

fn topic_options(setup: &Setup, subscribers: usize) -> topic::Options {
    let opts = topic::Options::new()
        .capacity(setup.capacity)
        .max_subscribers(subscribers);
    match setup.spin() {
        Some(spin) => opts.spin(spin),
        None => opts,
    }
}

fn sub_options(setup: &Setup) -> topic::SubOptions {
    let opts = topic::SubOptions::new().timeout(CONNECT_TIMEOUT);
    match setup.spin() {
        Some(spin) => opts.spin(spin),
        None => opts,
    }
}

/// The topic subscriber `i` of `n` answers on.
fn reply_suffix(n: usize, i: usize) -> String {
    if n == 1 {
        "-ba".into()
    } else {
        format!("-b{i}")
    }
}

fn recv_error(e: topic::RecvError) -> Error {
    match e {
        topic::RecvError::Disconnected(e) | topic::RecvError::Failed(e) => Error::Shmkit(e),
        topic::RecvError::Lagged { missed } => Error::Check(format!("a blocking subscriber lost {missed} messages")),
    }
}

/// The publisher: publishes on `-ab` to `n` subscribers (the peers), each
/// of which answers on a topic of its own; a round trip ends when every
/// answer is in.
fn lead_pubsub(setup: &Setup, n: usize, peers: &[PeerProcess]) -> Result<PingPong> {
    let size = setup.size;
    // Publishers first: a subscriber waits for its publisher.
    let mut publisher = topic::Publisher::connect(&setup.name("-ab")?, &topic_options(setup, n))?;
    // Each waits for its follower's publisher, or for its process to end.
    let mut replies = (0..n)
        .map(|i| {
            Ok(topic::Subscriber::connect(
                &setup.name(&reply_suffix(n, i))?,
                &sub_options(setup).interrupt(peers[i].dead_flag()),
            )?)
        })
        .collect::<Result<Vec<_>>>()?;
    // A subscriber gets the messages published after it joined, and its
    // seat shows alive before it has chosen where it starts: wait for each
    // peer's word that it has (a message on its reply topic, which keeps one
    // message of history, so a reply subscriber that joined late still gets
    // it).
    let mut back = Vec::with_capacity(size);
    for r in &mut replies {
        r.recv_into(&mut back).map_err(recv_error)?;
        if read_stamp(&back, size)? != READY {
            return Err(Error::Check("a follower's first message was not its ready word".into()));
        }
    }
    let pp = round_trips(size, setup.warmup, setup.round, |msg, seq| {
        publisher.send(msg)?;
        for r in &mut replies {
            r.recv_into(&mut back).map_err(recv_error)?;
            check_answer(&back, size, seq)?;
        }
        Ok(())
    })?;
    publisher.send(&end_message(size))?;
    Ok(pp)
}

/// Subscriber `role` of `n`: answers each message on its own topic until
/// [`END`].
fn follow_pubsub(setup: &Setup, n: usize, role: usize) -> Result<()> {
    let mut answer = topic::Publisher::connect(
        &setup.name(&reply_suffix(n, role))?,
        &topic_options(setup, 1).history(1),
    )?;
    let mut sub = topic::Subscriber::connect(&setup.name("-ab")?, &sub_options(setup))?;
    // Subscribed, from the next message on: say so (see `lead_pubsub`).
    answer.send(&stamped(setup.size, READY))?;
    let mut buf = Vec::with_capacity(setup.size);
    loop {
        sub.recv_into(&mut buf).map_err(recv_error)?;
        if read_stamp(&buf, setup.size)? == END {
            return Ok(());
        }
        answer.send(&buf)?;
    }
}

// ------------------------------------------------------- request/response

fn service_options(setup: &Setup) -> service::Options {
    let opts = service::Options::new().clients(1).capacity(setup.capacity);
    match setup.spin() {
        Some(spin) => opts.spin(spin),
        None => opts,
    }
}

/// The client: `call` round trips, then a request that ends the run (not
/// waited for).
fn lead_reqresp(setup: &Setup, peers: &[PeerProcess]) -> Result<PingPong> {
    let name = setup.name("")?;
    // Waits for the server, or for its process to end.
    let opts = service_options(setup).interrupt(peers[0].dead_flag());
    let mut client = service::Client::connect(&name, &opts)?;
    let size = setup.size;
    let pp = round_trips(size, setup.warmup, setup.round, |msg, seq| {
        let response = client.call(msg)?;
        if !response.is_ok() {
            return Err(Error::Check(format!("an error response to request {seq}")));
        }
        check_answer(&response.body, size, seq)
    })?;
    client.send_request(&end_message(size))?;
    Ok(pp)
}

/// The server: answers each request with its bytes until [`END`]. It reads
/// each request in place ([`service::Server::recv_request_ref`]) and copies
/// it once, into memory reused for every request (as the channel's peer
/// receives into one buffer), then answers from there.
fn follow_reqresp(setup: &Setup) -> Result<()> {
    let mut server = service::Server::connect(&setup.name("")?, &service_options(setup))?;
    let mut body = Vec::new();
    loop {
        let req = server.recv_request_ref()?;
        body.resize(req.len(), 0);
        req.copy_to_slice(&mut body)
            .map_err(|e| Error::Check(format!("a request's view: {e}")))?;
        if read_stamp(&body, setup.size)? == END {
            return Ok(());
        }
        req.respond(&body)
            .map_err(|e| Error::Peer(format!("could not respond: {e}")))?;
    }
}

// ------------------------------------------------------------ many-to-one

fn many_options(setup: &Setup) -> many_to_one::Options {
    let opts = many_to_one::Options::new().senders(2).capacity(setup.capacity);
    match setup.spin() {
        Some(spin) => opts.spin(spin),
        None => opts,
    }
}

/// How many messages pass between two looks at the clock (as the channel's
/// stream does).
fn stride(size: usize) -> u64 {
    (4096 / size.max(1)).clamp(1, 64) as u64
}

/// Tells the peers to start, once they are all there: on a latest value
/// of the leader's, `-ba` (kept open by the leader until the end).
fn tell_go(setup: &Setup) -> Result<latest::Writer> {
    let mut go = latest::Writer::create(&setup.name("-ba")?, &latest::Options::new().max_size(8))?;
    go.write(b"go")?;
    Ok(go)
}

/// Waits for the leader's word to start ([`tell_go`]).
fn wait_go(setup: &Setup) -> Result<()> {
    let opts = latest::Options::new().timeout(CONNECT_TIMEOUT);
    latest::Reader::open(&setup.name("-ba")?, &opts)?.wait_newer(0, CONNECT_TIMEOUT)?;
    Ok(())
}

/// The receiver: waits until both senders have joined and tells them to
/// start (so that they send at the same time); checks every message's
/// number per sender; counts both senders' messages from the end of the
/// warm-up (after the first message) to the first sender's end, then waits
/// for the second's.
fn lead_many(setup: &Setup, peers: &[PeerProcess]) -> Result<Stream> {
    let size = setup.size;
    // A sender that dies ends the stream with `PeerGone` once both are gone.
    let mut rx = many_to_one::Receiver::connect(&setup.name("")?, &many_options(setup))?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let joined = |rx: &many_to_one::Receiver| {
        rx.info()
            .seats
            .iter()
            .filter(|s| s.participant.as_ref().is_some_and(|p| p.alive && !p.closed))
            .count()
    };
    while joined(&rx) < 2 {
        if peers.iter().any(PeerProcess::is_dead) || Instant::now() > deadline {
            return Err(Error::Peer("did not join as a sender".into()));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _go = tell_go(setup)?;
    let mut buf = Vec::with_capacity(size);
    let stride = stride(size);
    // Each sender's next number, by seat and generation (a sender that
    // left frees its seat for another).
    let mut next: Vec<((usize, u32), u64)> = Vec::new();
    let mut total: u64 = 0;
    let mut ended = 0;
    let mut warm_until: Option<Instant> = None;
    let mut count_from: Option<(Instant, u64)> = None;
    let mut counted: Option<Stream> = None;
    while ended < 2 {
        let from = rx.recv_into(&mut buf)?;
        let seat = from.seat;
        if seat >= 2 {
            return Err(Error::Check(format!("a message from seat {seat} of 2")));
        }
        let key = (seat, from.generation);
        let at = match next.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None if next.len() < 2 => {
                next.push((key, 0));
                next.len() - 1
            }
            None => return Err(Error::Check(format!("a third sender, {from:?}"))),
        };
        let got = read_stamp(&buf, size)?;
        if got == END {
            ended += 1;
            if counted.is_none() {
                let (t0, n0) = count_from.ok_or_else(|| Error::Peer("ended its stream at once".into()))?;
                counted = Some(Stream {
                    messages: total - n0,
                    elapsed: t0.elapsed(),
                });
            }
            continue;
        }
        if got != next[at].1 {
            return Err(Error::Check(format!(
                "message {got} of seat {seat} where {} was due",
                next[at].1
            )));
        }
        next[at].1 += 1;
        total += 1;
        if total == 1 {
            let now = Instant::now();
            warm_until = Some(now + setup.warmup);
            count_from = Some((now, total));
        } else if total % stride == 0 {
            if let Some(w) = warm_until {
                let now = Instant::now();
                if now >= w {
                    warm_until = None;
                    count_from = Some((now, total));
                }
            }
        }
    }
    counted.ok_or_else(|| Error::Peer("ended without a message".into()))
}

/// A sender: numbered messages for the planned time, then [`END`].
fn follow_many(setup: &Setup) -> Result<()> {
    let mut tx = many_to_one::Sender::connect(&setup.name("")?, &many_options(setup))?;
    wait_go(setup)?;
    let size = setup.size;
    let mut msg = vec![0x5au8; size];
    let stride = stride(size);
    let end = Instant::now() + setup.send_for;
    let mut seq: u64 = 0;
    loop {
        stamp(&mut msg, seq);
        tx.send(&msg)?;
        seq += 1;
        if seq % stride == 0 && Instant::now() >= end {
            break;
        }
    }
    tx.send(&end_message(size))?;
    tx.flush()?;
    Ok(())
}

// ----------------------------------------------------------- latest value

/// The reader: reads back to back, checks that each value is whole and is
/// the one its version says; counts whole values read, and the versions
/// published (one load of the version word, whether a read succeeds or
/// not), from the end of the warm-up to the writer's [`END`].
///
/// A writer that never waits is the readers' worst case: a copy it laps
/// is retried (with short sleeps, the library's way); at large sizes few
/// reads may succeed while it writes flat out, and a read that found no
/// whole value for a second ([`shmkit::Error::TimedOut`]) counts as none.
fn lead_latest(setup: &Setup, peers: &[PeerProcess]) -> Result<(Stream, Stream)> {
    let size = setup.size;
    let opts = latest::Options::new().timeout(CONNECT_TIMEOUT);
    let mut reader = latest::Reader::open(&setup.name("")?, &opts)?;
    // The writer never waits: it starts once this reader is there.
    let _go = tell_go(setup)?;
    let mut buf = Vec::with_capacity(size);
    let stride = stride(size);
    let start = Instant::now();
    let mut reads: u64 = 0;
    let mut version: u64 = 0;
    let mut tries: u64 = 0;
    // (when, reads, version) at the start of the count
    let mut count_from: Option<(Instant, u64, u64)> = None;
    loop {
        tries += 1;
        if tries % stride == 0 {
            if count_from.is_none() {
                let now = Instant::now();
                if now - start >= setup.warmup {
                    count_from = Some((now, reads, reader.version()?));
                }
            }
            // A writer that died without ending: no news for a while.
            if peers[0].is_dead() && tries % (4096 * stride) == 0 && reader.version()? == version {
                return Err(Error::Peer("stopped writing without ending".into()));
            }
        }
        let v = match reader.read_into(&mut buf) {
            Ok(Some(v)) => v,
            // nothing written yet, or no whole value for a second
            Ok(None) | Err(shmkit::Error::TimedOut { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let got = read_stamp(&buf, size)?;
        if got == END {
            let now = Instant::now();
            // A reader kept in one long read past the warm-up (lapped, see
            // above) counts the whole run.
            let (t0, r0, v0) = count_from.unwrap_or((start, 0, 0));
            let elapsed = now - t0;
            // The versions before the end's.
            let writes = (v - 1).saturating_sub(v0);
            return Ok((
                Stream {
                    messages: writes,
                    elapsed,
                },
                Stream {
                    messages: reads - r0,
                    elapsed,
                },
            ));
        }
        // One writer that made the object: its n-th value is version n + 1.
        if got + 1 != v {
            return Err(Error::Check(format!("value {got} as version {v}")));
        }
        if v < version {
            return Err(Error::Check(format!("version {v} after {version}")));
        }
        version = v;
        reads += 1;
    }
}

/// The writer: numbered values back to back for the planned time, then
/// [`END`].
fn follow_latest(setup: &Setup) -> Result<()> {
    let size = setup.size;
    let opts = latest::Options::new().max_size(size as u64);
    let mut writer = latest::Writer::create(&setup.name("")?, &opts)?;
    // Until the reader is there.
    wait_go(setup)?;
    let mut value = vec![0x5au8; size];
    let stride = stride(size);
    let end = Instant::now() + setup.send_for;
    let mut seq: u64 = 0;
    loop {
        stamp(&mut value, seq);
        writer.write(&value)?;
        seq += 1;
        if seq % stride == 0 && Instant::now() >= end {
            break;
        }
    }
    writer.write(&end_message(size))?;
    // The reader may not have seen the end yet: the object stays while it
    // has it open (the last participant out removes it).
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities() {
        assert_eq!(capacity(8), 64 << 10);
        assert_eq!(capacity(64 << 10), 512 << 10);
        assert!(capacity(1 << 20) >= 4 * ((1 << 20) + 64));
        assert!(capacity(1 << 20).is_power_of_two());
    }
}
