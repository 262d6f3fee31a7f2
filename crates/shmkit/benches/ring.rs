//! The channel's in-process cost: one message sent and received by one
//! thread over a real channel object (both ends in this process), so the
//! figures are the CPU cost of the hot path without any cross-core
//! hand-off; `shmkit bench` measures that between two processes.
//!
//! ```text
//! cargo bench -p shmkit --bench ring              # full
//! cargo bench -p shmkit --bench ring -- --quick   # a few seconds
//! ```
//!
//! Three ways through the same channel, for 8 B, 64 B, 4 KiB and 64 KiB:
//! - `copy`: `send(&msg)` then `recv_into(&mut buf)`: a copy in, a copy out;
//! - `copy-in/ref-out`: `send(&msg)` then `recv_ref()`, reading its first
//!   eight bytes in place;
//! - `zero-copy`: `reserve(len)`, write a sequence number in place,
//!   `commit()`, then `recv_ref()` and read it: the protocol's own cost.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shmkit::channel::{Options, Receiver, Sender};
use shmkit::posix::ShmName;

const SIZES: [usize; 4] = [8, 64, 4 << 10, 64 << 10];

/// A connected channel, both ends in this thread. The object is removed
/// when both are dropped.
fn pair(tag: &str) -> (Sender, Receiver) {
    let name = ShmName::new(format!("/shmkit-bench-ring-{}-{tag}", std::process::id())).unwrap();
    let _ = shmkit::posix::remove(&name);
    let opts = Options::new().timeout(Duration::from_secs(10));
    let (rx_name, rx_opts) = (name.clone(), opts.clone());
    let rx = std::thread::spawn(move || Receiver::connect(&rx_name, &rx_opts).unwrap());
    let tx = Sender::connect(&name, &opts).unwrap();
    (tx, rx.join().unwrap())
}

/// One benchmark group for one way through the channel: `body` sends and
/// receives one message; every size, the same body.
fn way(c: &mut Criterion, name: &str, mut body: impl FnMut(&mut Sender, &mut Receiver, &[u8], &mut Vec<u8>)) {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for size in SIZES {
        let (mut tx, mut rx) = pair(&format!("{}-{size}", name.replace('/', "-")));
        let msg = vec![0x5au8; size];
        let mut buf = Vec::with_capacity(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| body(&mut tx, &mut rx, black_box(&msg), &mut buf))
        });
    }
    group.finish();
}

fn ring(c: &mut Criterion) {
    way(c, "copy", |tx, rx, msg, buf| {
        tx.send(msg).unwrap();
        rx.recv_into(buf).unwrap();
        black_box(&buf[..]);
    });
    way(c, "copy-in/ref-out", |tx, rx, msg, _| {
        tx.send(msg).unwrap();
        let got = rx.recv_ref().unwrap();
        black_box(got.load_u64(0).unwrap());
    });
    way(c, "zero-copy", |tx, rx, msg, _| {
        let mut grant = tx.reserve(msg.len()).unwrap();
        grant.store_u64(0, black_box(7u64)).unwrap();
        grant.commit().unwrap();
        let got = rx.recv_ref().unwrap();
        black_box(got.load_u64(0).unwrap());
    });
}

criterion_group!(benches, ring);
criterion_main!(benches);
