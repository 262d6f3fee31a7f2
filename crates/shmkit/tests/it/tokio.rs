//! The async endpoints (feature `tokio`) between real processes and
//! threads: both runtimes, a killed peer wakes a task, and `recv` futures
//! dropped inside `select!` lose nothing.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use shmkit::channel::Options;
use shmkit::tokio::{Receiver, Sender};
use shmkit::{Error, Role};

use crate::common::{posix_name, LiveChild};

fn opts() -> Options {
    Options::new().timeout(Duration::from_secs(20))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Sends `count` sequence numbers over a small ring and receives them in
/// another task, checking order.
async fn conversation(count: u64) {
    let (name, _guard) = posix_name();
    let n2 = name.clone();
    let consumer = tokio::spawn(async move {
        let mut rx = Receiver::connect(&n2, &opts().capacity(4096)).await.unwrap();
        let mut next = 0u64;
        let mut buf = Vec::new();
        loop {
            match rx.recv_into(&mut buf).await {
                Ok(()) => {
                    assert_eq!(buf, next.to_le_bytes());
                    next += 1;
                }
                Err(Error::Closed { side: Role::Sender, .. }) => return next,
                Err(e) => panic!("{e}"),
            }
        }
    });
    let mut tx = Sender::connect(&name, &opts().capacity(4096)).await.unwrap();
    for i in 0..count {
        if i % 2 == 0 {
            tx.send(&i.to_le_bytes()).await.unwrap();
        } else {
            let mut grant = tx.reserve(8).await.unwrap();
            grant.copy_from_slice(&i.to_le_bytes()).unwrap();
            grant.commit().unwrap();
        }
    }
    drop(tx);
    assert_eq!(consumer.await.unwrap(), count);
}

#[test]
fn a_conversation_on_the_current_thread_runtime() {
    current_thread().block_on(conversation(50_000));
}

#[test]
fn a_conversation_on_the_multi_thread_runtime() {
    multi_thread().block_on(conversation(50_000));
}

#[test]
fn zero_copy_views_streams_and_sinks() {
    multi_thread().block_on(async {
        let (name, _guard) = posix_name();
        let n2 = name.clone();
        let consumer = tokio::spawn(async move {
            let mut rx = Receiver::connect(&n2, &opts()).await.unwrap();
            // the first in place, the rest as a stream
            let first = rx.recv_ref().await.unwrap().to_vec();
            let rest: Vec<Vec<u8>> = rx.map(|m| m.unwrap()).collect().await;
            (first, rest)
        });
        let mut tx = Sender::connect(&name, &opts()).await.unwrap();
        tx.send(b"first").await.unwrap();
        let mut items = futures_util::stream::iter((0..100u32).map(|i| Ok::<_, Error>(i.to_le_bytes())));
        tx.send_all(&mut items).await.unwrap();
        drop(tx);
        let (first, rest) = consumer.await.unwrap();
        assert_eq!(first, b"first");
        assert_eq!(rest.len(), 100);
        assert!(rest.iter().enumerate().all(|(i, m)| m == &(i as u32).to_le_bytes()));
    });
}

#[test]
fn a_killed_sender_wakes_a_waiting_task() {
    let (name, _guard) = posix_name();
    let mut sender = LiveChild::spawn("poll-send-hold", &[name.as_str(), "2"]);
    current_thread().block_on(async {
        let mut rx = Receiver::connect(&name, &opts()).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), 0u64.to_le_bytes());
        assert_eq!(rx.recv().await.unwrap(), 1u64.to_le_bytes());
        assert_eq!(sender.expect_line(), "sent 2");
        // the task waits; nothing comes
        assert!(tokio::time::timeout(Duration::from_millis(50), rx.recv())
            .await
            .is_err());
        let killed = Instant::now();
        sender.kill();
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Err(Error::PeerGone { side: Role::Sender, .. })) => {}
            other => panic!("{other:?}"),
        }
        println!("the task got PeerGone {:?} after the SIGKILL", killed.elapsed());
    });
}

/// The CPU time (user + system, in clock ticks) `/proc/PID/stat` shows.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // after the command's closing parenthesis: state is field 3, utime 14
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[test]
fn an_idle_async_receiver_uses_no_cpu() {
    let (name, _guard) = posix_name();
    let mut receiver = LiveChild::spawn("poll-async-idle", &[name.as_str()]);
    let mut tx = shmkit::channel::Sender::connect(&name, &opts()).unwrap();
    assert_eq!(receiver.expect_line(), "connected");
    std::thread::sleep(Duration::from_millis(100)); // parked by now
    let Some(before) = cpu_ticks(receiver.pid()) else {
        println!("skipped: /proc/{}/stat is not readable here", receiver.pid());
        return;
    };
    std::thread::sleep(Duration::from_secs(2));
    let after = cpu_ticks(receiver.pid()).expect("readable a moment ago");
    println!("the idle async receiver used {} ticks in 2 s", after - before);
    assert_eq!(after, before, "an idle receiver must sleep in the runtime, not spin");
    // it was waiting, not gone
    tx.send(b"wake").unwrap();
    assert_eq!(receiver.expect_line(), "got wake");
}

#[test]
fn recv_futures_dropped_in_select_lose_no_message() {
    const COUNT: u64 = 100_000;
    let (name, _guard) = posix_name();
    let n2 = name.clone();
    // the sender: another thread with a runtime of its own, bursty
    let sender = std::thread::spawn(move || {
        current_thread().block_on(async {
            let mut tx = Sender::connect(&n2, &opts().capacity(4096)).await.unwrap();
            let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
            for i in 0..COUNT {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                if rng % 512 == 0 {
                    tokio::time::sleep(Duration::from_micros(rng % 300)).await;
                }
                tx.send(&i.to_le_bytes()).await.unwrap();
            }
        })
    });
    current_thread().block_on(async {
        let mut rx = Receiver::connect(&name, &opts().capacity(4096)).await.unwrap();
        let mut next = 0u64;
        let (mut cancelled, mut rng) = (0u64, 0x2545_f491_4f6c_dd1d_u64);
        let mut ticks = tokio::time::interval(Duration::from_micros(50));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while next < COUNT {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let other = async {
                match rng % 3 {
                    0 => tokio::task::yield_now().await,
                    1 => {
                        ticks.tick().await;
                    }
                    _ => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => {
                    assert_eq!(msg.unwrap(), next.to_le_bytes(), "after {cancelled} cancelled receives");
                    next += 1;
                }
                () = other => cancelled += 1,
            }
        }
        println!("{COUNT} messages, {cancelled} recv futures dropped on the way");
        assert!(cancelled > 0);
        match rx.recv().await {
            Err(Error::Closed { .. }) => {}
            other => panic!("{other:?}"),
        }
    });
    sender.join().unwrap();
}

/// A future that ends now, soon or never (by `rng`): the other branch of
/// a `select!`, which drops the shmkit future when it wins.
async fn maybe_cancel(rng: u64, ticks: &mut tokio::time::Interval) {
    match rng % 3 {
        0 => tokio::task::yield_now().await,
        1 => {
            ticks.tick().await;
        }
        _ => std::future::pending::<()>().await,
    }
}

fn xorshift(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

fn ticker() -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(Duration::from_micros(50));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// The zero-copy calls, `recv_ref` and `reserve`, each dropped in
/// `select!` on both sides of a small ring that fills and empties: every
/// message arrives once, in order (a dropped `reserve` reserved nothing, a
/// dropped `recv_ref` took nothing).
#[test]
fn zero_copy_futures_dropped_in_select_lose_no_message() {
    const COUNT: u64 = 20_000;
    let (name, _guard) = posix_name();
    let n2 = name.clone();
    let sender = std::thread::spawn(move || {
        current_thread().block_on(async {
            let mut tx = Sender::connect(&n2, &opts().capacity(4096)).await.unwrap();
            let (mut i, mut cancelled, mut rng) = (0u64, 0u64, 0x9e37_79b9_7f4a_7c15_u64);
            let mut ticks = ticker();
            while i < COUNT {
                let r = xorshift(&mut rng);
                tokio::select! {
                    grant = tx.reserve(8) => {
                        let mut grant = grant.unwrap();
                        grant.copy_from_slice(&i.to_le_bytes()).unwrap();
                        grant.commit().unwrap();
                        i += 1;
                    }
                    () = maybe_cancel(r, &mut ticks) => cancelled += 1,
                }
            }
            cancelled
        })
    });
    current_thread().block_on(async {
        let mut rx = Receiver::connect(&name, &opts().capacity(4096)).await.unwrap();
        let (mut next, mut cancelled, mut rng) = (0u64, 0u64, 0x2545_f491_4f6c_dd1d_u64);
        let mut ticks = ticker();
        while next < COUNT {
            let r = xorshift(&mut rng);
            if r % 512 == 0 {
                // let the ring fill: the sender's reserve waits
                tokio::time::sleep(Duration::from_micros(r % 300)).await;
            }
            tokio::select! {
                msg = rx.recv_ref() => {
                    assert_eq!(msg.unwrap().to_vec(), next.to_le_bytes(), "after {cancelled} cancelled receives");
                    next += 1;
                }
                () = maybe_cancel(r, &mut ticks) => cancelled += 1,
            }
        }
        let sent_cancelled = sender.join().unwrap();
        println!("{COUNT} messages, {cancelled} recv_ref and {sent_cancelled} reserve futures dropped on the way");
        assert!(cancelled > 0 && sent_cancelled > 0);
        match rx.recv_ref().await {
            Err(Error::Closed { .. }) => {}
            other => panic!("{other:?}"),
        };
    });
}

#[test]
fn a_spinning_receiver_works_too() {
    multi_thread().block_on(async {
        let (name, _guard) = posix_name();
        let n2 = name.clone();
        let consumer = tokio::spawn(async move {
            let mut rx = Receiver::connect(&n2, &opts()).await.unwrap();
            rx.set_spin(Duration::from_micros(20));
            let mut n = 0;
            while let Some(m) = rx.recv_or_closed().await.unwrap() {
                assert_eq!(m, [n as u8; 64]);
                n += 1;
            }
            n
        });
        let mut tx = Sender::connect(&name, &opts()).await.unwrap();
        tx.set_spin(Duration::from_micros(20));
        for i in 0..10_000u32 {
            tx.send(&[i as u8; 64]).await.unwrap();
        }
        drop(tx);
        assert_eq!(consumer.await.unwrap(), 10_000);
    });
}
