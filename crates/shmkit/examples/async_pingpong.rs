//! Two processes ping-pong 100 000 messages of 64 bytes through a pair of
//! channels under tokio (current-thread runtimes), and print the round trip's
//! p50 and p99. The example starts its peer itself (the same executable with
//! the argument `peer`).
//!
//! ```sh
//! cargo run -p shmkit --release --features tokio --example async_pingpong
//! ```

use std::time::{Duration, Instant};

use shmkit::channel::Options;
use shmkit::posix::ShmName;
use shmkit::tokio::{Receiver, Sender};

const ROUNDS: usize = 100_000;
const SIZE: usize = 64;

fn names(tag: &str) -> shmkit::Result<(ShmName, ShmName)> {
    Ok((
        ShmName::new(format!("/shmkit-async-ping-{tag}"))?,
        ShmName::new(format!("/shmkit-async-pong-{tag}"))?,
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("peer") {
        return rt.block_on(peer(&args[2]));
    }
    let tag = std::process::id().to_string();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["peer", &tag])
        .spawn()?;
    let result = rt.block_on(lead(&tag));
    let status = child.wait()?;
    result?;
    if !status.success() {
        return Err(format!("the peer failed: {status}").into());
    }
    Ok(())
}

/// Sends each ping, waits for its pong, times the round trip.
async fn lead(tag: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (ping, pong) = names(tag)?;
    let opts = Options::new().timeout(Duration::from_secs(10));
    let mut tx = Sender::connect(&ping, &opts).await?;
    let mut rx = Receiver::connect(&pong, &opts).await?;
    let mut msg = [0u8; SIZE];
    let mut buf = Vec::with_capacity(SIZE);
    let mut rtts = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS + ROUNDS / 10 {
        msg[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let start = Instant::now();
        tx.send(&msg).await?;
        rx.recv_into(&mut buf).await?;
        let rtt = start.elapsed();
        if buf != msg {
            return Err(format!("round {i}: the pong differs from the ping").into());
        }
        if i >= ROUNDS / 10 {
            rtts.push(rtt); // after a warm-up of a tenth
        }
    }
    rtts.sort();
    let pct = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)];
    println!(
        "{ROUNDS} round trips of {SIZE} bytes under tokio: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        rtts[rtts.len() - 1]
    );
    Ok(())
}

/// Answers every ping with the same bytes until the leader closes.
async fn peer(tag: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (ping, pong) = names(tag)?;
    let opts = Options::new().timeout(Duration::from_secs(10));
    let mut rx = Receiver::connect(&ping, &opts).await?;
    let mut tx = Sender::connect(&pong, &opts).await?;
    let mut buf = Vec::with_capacity(SIZE);
    loop {
        match rx.recv_into(&mut buf).await {
            Ok(()) => tx.send(&buf).await?,
            Err(shmkit::Error::Closed { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
