//! The measurements: one body per pattern, for every transport.
//!
//! Each message carries its sequence number in its first eight bytes and,
//! from 16 bytes on, in its last eight; the receiver checks both. The last
//! message of a run carries [`END`] instead.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::error::{Error, Result};
use super::link::Link;

/// The sequence number of the message that ends a run.
pub(crate) const END: u64 = u64::MAX;

/// How many messages pass between two looks at the clock in a stream: at
/// most 64, and about 4 KiB of them, so that reading the clock (some 20 ns)
/// costs little even for the smallest messages.
fn stride(size: usize) -> u64 {
    (4096 / size.max(1)).clamp(1, 64) as u64
}

/// Writes `seq` into the message.
#[inline]
pub(crate) fn stamp(msg: &mut [u8], seq: u64) {
    let b = seq.to_le_bytes();
    msg[..8].copy_from_slice(&b);
    let n = msg.len();
    if n >= 16 {
        msg[n - 8..].copy_from_slice(&b);
    }
}

/// Reads and checks a message's sequence number.
#[inline]
pub(crate) fn read_stamp(msg: &[u8], size: usize) -> Result<u64> {
    if msg.len() != size {
        return Err(Error::Check(format!(
            "a message of {} bytes, expected {size}",
            msg.len()
        )));
    }
    let front = u64::from_le_bytes(msg[..8].try_into().expect("8 bytes"));
    if size >= 16 {
        let back = u64::from_le_bytes(msg[size - 8..].try_into().expect("8 bytes"));
        if back != front {
            return Err(Error::Check(format!("message {front} ends with {back}")));
        }
    }
    Ok(front)
}

/// Round-trip times of one ping-pong run.
#[derive(Debug, Clone)]
pub(crate) struct PingPong {
    pub hist: Histogram<u64>,
}

/// Throughput of one stream run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stream {
    pub messages: u64,
    pub elapsed: Duration,
}

pub(crate) fn histogram() -> Histogram<u64> {
    // 1 ns to 100 s, three significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// The leader's side of ping-pong: sends, waits for the echo, times the
/// round trip; records after `warmup`, for `duration`; then sends [`END`].
pub(crate) fn ping_pong<L: Link>(link: &mut L, size: usize, warmup: Duration, duration: Duration) -> Result<PingPong> {
    let mut out = vec![0xa5u8; size];
    let mut back = vec![0u8; size];
    let mut hist = histogram();
    let start = Instant::now();
    let record_from = start + warmup;
    let end = record_from + duration;
    let mut seq: u64 = 0;
    loop {
        stamp(&mut out, seq);
        let t0 = Instant::now();
        link.send(&out)?;
        if !link.recv(&mut back)? {
            return Err(Error::Peer("closed in the middle of the run".into()));
        }
        let t1 = Instant::now();
        let got = read_stamp(&back, size)?;
        if got != seq {
            return Err(Error::Check(format!("answer {got} to message {seq}")));
        }
        if t0 >= record_from {
            let ns = (t1 - t0).as_nanos().clamp(1, u128::from(hist.high())) as u64;
            hist.record(ns).expect("within the bounds");
        }
        // At least one round trip is measured: on a busy machine one may
        // start in the warm-up and end after the planned end (the peer was
        // not scheduled meanwhile). The watchdog still bounds the run.
        if t1 >= end && !hist.is_empty() {
            break;
        }
        seq += 1;
    }
    stamp(&mut out, END);
    link.send(&out)?;
    Ok(PingPong { hist })
}

/// The peer's side of ping-pong: answers every message with its bytes
/// until [`END`] or the leader closes.
pub(crate) fn echo<L: Link>(link: &mut L, size: usize) -> Result<()> {
    let mut buf = vec![0u8; size];
    loop {
        if !link.recv(&mut buf)? || read_stamp(&buf, size)? == END {
            return Ok(());
        }
        link.send(&buf)?;
    }
}

/// The leader's side of a stream: receives and checks every message until
/// [`END`]; counts from `warmup` after the first message.
pub(crate) fn receive_stream<L: Link>(link: &mut L, size: usize, warmup: Duration) -> Result<Stream> {
    let mut buf = vec![0u8; size];
    let stride = stride(size);
    let mut next: u64 = 0;
    // From the first message; from the end of the warm-up once it is over.
    let mut count_from: Option<(Instant, u64)> = None;
    let mut warm_until: Option<Instant> = None;
    loop {
        if !link.recv(&mut buf)? {
            return Err(Error::Peer("closed the stream without ending it".into()));
        }
        let got = read_stamp(&buf, size)?;
        if got == END {
            let now = Instant::now();
            let (t0, n0) = count_from.ok_or_else(|| Error::Peer("ended its stream at once".into()))?;
            return Ok(Stream {
                messages: next - n0,
                elapsed: now - t0,
            });
        }
        if got != next {
            return Err(Error::Check(format!("message {got} where {next} was due")));
        }
        next += 1;
        if next == 1 {
            let now = Instant::now();
            warm_until = Some(now + warmup);
            count_from = Some((now, next));
        } else if next % stride == 0 {
            if let Some(w) = warm_until {
                let now = Instant::now();
                if now >= w {
                    warm_until = None;
                    count_from = Some((now, next));
                }
            }
        }
    }
}

/// The peer's side of a stream: sends numbered messages for `send_for`,
/// then [`END`].
pub(crate) fn send_stream<L: Link>(link: &mut L, size: usize, send_for: Duration) -> Result<()> {
    let mut msg = vec![0x5au8; size];
    let stride = stride(size);
    let end = Instant::now() + send_for;
    let mut seq: u64 = 0;
    loop {
        stamp(&mut msg, seq);
        link.send(&msg)?;
        seq += 1;
        if seq % stride == 0 && Instant::now() >= end {
            break;
        }
    }
    stamp(&mut msg, END);
    link.send(&msg)
}

/// `memcpy`: one thread copying a buffer of `size` bytes into another, as
/// fast as it can: the bandwidth bound of a stream.
pub(crate) fn memcpy(size: usize, warmup: Duration, duration: Duration) -> Stream {
    let src = vec![0x5au8; size];
    let mut dst = vec![0u8; size];
    let stride = stride(size);
    let start = Instant::now();
    let (mut t0, mut counted) = (start, 0u64);
    let mut warm = true;
    let mut n: u64 = 0;
    loop {
        std::hint::black_box(&mut dst).copy_from_slice(std::hint::black_box(&src));
        n += 1;
        if n % stride == 0 {
            let now = Instant::now();
            if warm && now - start >= warmup {
                warm = false;
                (t0, counted) = (now, n);
            } else if !warm && now - t0 >= duration {
                return Stream {
                    messages: n - counted,
                    elapsed: now - t0,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        for size in [8, 15, 16, 4096] {
            let mut m = vec![0u8; size];
            stamp(&mut m, 7);
            assert_eq!(read_stamp(&m, size).unwrap(), 7);
            assert!(read_stamp(&m, size + 1).is_err());
            if size >= 16 {
                m[size - 1] ^= 1;
                assert!(read_stamp(&m, size).is_err());
            }
        }
    }

    #[test]
    fn memcpy_counts() {
        let s = memcpy(64, Duration::from_millis(1), Duration::from_millis(5));
        assert!(s.messages > 0);
        assert!(s.elapsed >= Duration::from_millis(5));
    }
}
