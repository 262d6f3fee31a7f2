//! Polled latest-value readers (issue 14): a reader's descriptor through a
//! wait set, across processes and PID namespaces; descriptors and poll
//! roster words given back; nothing left in /dev/shm.

use std::process::Command;
use std::time::{Duration, Instant};

use shmkit::latest::{Options, Reader, Writer};
use shmkit::posix::ShmName;
use shmkit::wait::WaitSet;

use crate::common::{child, fifos_of, is_root, posix_name, LiveChild};

/// Value `n`: its number, then bytes made from it.
fn value(n: u64) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    v.extend((0..24).map(|i| (n as u8).wrapping_mul(7).wrapping_add(i)));
    v
}

fn check(v: &shmkit::latest::Value) {
    assert_eq!(
        v.as_bytes(),
        value(v.version()),
        "value {} is not as written",
        v.version()
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The roles of this file's children.
pub fn child_role(role: &str, args: &[String]) {
    let name = ShmName::new(args[0].as_str()).unwrap();
    match role {
        // latest-poll-writer NAME COUNT: writes values 1..=COUNT, pausing
        // 0 to 50 µs at random between them (now and then a millisecond),
        // once the parent has said go.
        "latest-poll-writer" => {
            let count: u64 = args[1].parse().unwrap();
            let mut w = Writer::open(&name, &Options::new()).unwrap();
            println!("@ready");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
            for n in 1..=count {
                assert_eq!(w.write(&value(n)).unwrap(), n);
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let pause = if rng % 97 == 0 { 1000 } else { rng % 51 };
                let until = Instant::now() + Duration::from_micros(pause);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            println!("@done");
        }
        // latest-poll-holder NAME: a reader that polls (holds a roster
        // word) until killed or stdin closes.
        "latest-poll-holder" => {
            let mut r = Reader::open(&name, &Options::new()).unwrap();
            assert_eq!(r.try_read_newer().unwrap().map(|v| v.version()), Some(1));
            assert!(r.try_read_newer().unwrap().is_none());
            println!("@polling");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        // latest-poll-cycles NAME: 1000 readers opened, polled (woken by
        // a write through a wait set) and dropped; reports the descriptors
        // open before and after.
        "latest-poll-cycles" => {
            let mut w = Writer::create(&name, &Options::new().max_size(64)).unwrap();
            w.write(&value(1)).unwrap();
            // one cycle first, so that whatever is made once per process
            // exists (the writer keeps the bell it last rang per roster
            // word open: at most 64, reopened when the word's nonce changes)
            let cycle = |n: u64, w: &mut Writer| {
                let mut r = Reader::open(&name, &Options::new()).unwrap();
                let mut set = WaitSet::new().unwrap();
                set.add(&r, 0).unwrap();
                assert_eq!(r.try_read_newer().unwrap().map(|v| v.version()), Some(n + 1));
                assert!(r.try_read_newer().unwrap().is_none());
                w.write(&value(n + 2)).unwrap();
                assert_eq!(set.wait(Some(Duration::from_secs(5))).unwrap(), &[0]);
            };
            cycle(0, &mut w);
            let before = open_fds();
            for n in 1..=1000u64 {
                cycle(n, &mut w);
            }
            println!("@fds {before} {}", open_fds());
        }
        // latest-poll-write-on-line NAME: create the value, write value 1,
        // report; write value 2 when a line comes, report; hold until
        // killed.
        "latest-poll-write-on-line" => {
            let mut w = Writer::create(&name, &Options::new().max_size(64)).unwrap();
            w.write(&value(1)).unwrap();
            println!("@wrote 1");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            w.write(&value(2)).unwrap();
            println!("@wrote 2");
            let _ = std::io::stdin().read_line(&mut line);
        }
        other => panic!("unknown role {other}"),
    }
}

/// The parent's side: a reader that waits through a wait set between its
/// reads until it has read `last`; no wait may take a second.
fn poll_until(r: &mut Reader, last: u64) -> (u64, u64) {
    let mut set = WaitSet::new().unwrap();
    set.add(&*r, 1).unwrap();
    let (mut reads, mut wakes, mut seen) = (0u64, 0u64, 0u64);
    loop {
        while let Some(v) = r.try_read_newer().unwrap() {
            check(&v);
            assert!(v.version() > seen, "version {} after {seen}", v.version());
            seen = v.version();
            reads += 1;
        }
        if seen == last {
            return (reads, wakes);
        }
        let ready = set.wait(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(
            ready,
            &[1],
            "no wake-up within a second: a missed one (read up to {seen} of {last})"
        );
        wakes += 1;
    }
}

#[test]
fn a_polled_reader_sees_every_new_version_it_waits_for() {
    let (name, _guard) = posix_name();
    let _w = Writer::create(&name, &Options::new().max_size(64).keep(false)).unwrap();
    drop(_w); // the writer is the child's; this reader keeps the object
    let mut r = Reader::open(&name, &Options::new());
    // the object went with its last participant: make it again, read it
    if r.is_err() {
        let w = Writer::create(&name, &Options::new().max_size(64)).unwrap();
        r = Reader::open(&name, &Options::new());
        drop(w);
    }
    let mut r = r.unwrap();
    let count = 50_000;
    let mut writer = LiveChild::spawn("latest-poll-writer", &[name.as_str(), &count.to_string()]);
    assert_eq!(writer.expect_line(), "ready");
    assert!(r.try_read_newer().unwrap().is_none());
    writer.send("go");
    let (reads, wakes) = poll_until(&mut r, count);
    assert_eq!(writer.expect_line(), "done");
    writer.finish();
    assert!(reads >= 1 && wakes >= 1, "reads {reads}, wakes {wakes}");
    drop(r);
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

#[test]
fn a_polled_reader_is_woken_across_pid_namespaces() {
    if !is_root() {
        println!("skipped: needs root for a new PID namespace");
        return;
    }
    let probe = Command::new("unshare").args(["--pid", "--fork", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("skipped: unshare --pid --fork does not run here");
        return;
    }
    let (name, _guard) = posix_name();
    let w = Writer::create(&name, &Options::new().max_size(64)).unwrap();
    let mut r = Reader::open(&name, &Options::new()).unwrap();
    drop(w);
    let inner = child("latest-poll-writer", &[name.as_str(), "2000"]);
    let mut outer = Command::new("unshare");
    outer
        .args(["--pid", "--fork", "--kill-child"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let mut writer = LiveChild::from_command(outer);
    assert_eq!(writer.expect_line(), "ready");
    assert!(r.try_read_newer().unwrap().is_none());
    writer.send("go");
    poll_until(&mut r, 2000);
    assert_eq!(writer.expect_line(), "done");
    writer.finish();
    drop(r);
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

/// In a child of its own, so that other tests' descriptors do not count.
#[test]
fn no_descriptor_leaks_over_1000_polled_readers() {
    let (name, _guard) = posix_name();
    let lines = crate::common::run_child("latest-poll-cycles", &[name.as_str()]);
    let fds: Vec<&str> = lines[0].strip_prefix("fds ").unwrap().split(' ').collect();
    assert_eq!(fds[0], fds[1], "descriptors leaked: {lines:?}");
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

#[test]
fn roster_words_of_killed_readers_are_taken_over() {
    let (name, _guard) = posix_name();
    let mut w = Writer::create(&name, &Options::new().max_size(64)).unwrap();
    w.write(&value(1)).unwrap();
    let mut holders: Vec<LiveChild> = (0..64)
        .map(|_| LiveChild::spawn("latest-poll-holder", &[name.as_str()]))
        .collect();
    for h in &mut holders {
        assert_eq!(h.expect_line(), "polling");
    }
    assert_eq!(shmkit::latest::info(&name).unwrap().pollers, 64);
    // the roster is full: a clear error, and a descriptor that says so
    let mut extra = Reader::open(&name, &Options::new()).unwrap();
    let _ = extra.try_read_newer().unwrap();
    let err = extra.try_read_newer().unwrap_err();
    assert!(err.to_string().contains("poll roster is full"), "{err}");
    assert!(shmkit::wait::readable(&extra, Some(Duration::ZERO)).unwrap());
    drop(extra);
    for h in &mut holders {
        h.kill();
    }
    drop(holders);
    assert_eq!(
        shmkit::latest::info(&name).unwrap().pollers,
        0,
        "the kernel dropped their locks"
    );
    // every killed reader's word is free again: 64 readers poll
    let mut readers: Vec<Reader> = (0..64).map(|_| Reader::open(&name, &Options::new()).unwrap()).collect();
    for r in &mut readers {
        assert_eq!(r.try_read_newer().unwrap().map(|v| v.version()), Some(1));
        assert!(r.try_read_newer().unwrap().is_none());
    }
    assert_eq!(shmkit::latest::info(&name).unwrap().pollers, 64);
    w.write(&value(2)).unwrap();
    for r in &mut readers {
        assert!(shmkit::wait::readable(&*r, Some(Duration::from_secs(5))).unwrap());
        assert_eq!(r.try_read_newer().unwrap().map(|v| v.version()), Some(2));
    }
    drop(readers);
    drop(w);
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

#[test]
fn a_killed_polling_readers_bell_goes_with_the_object() {
    let (name, _guard) = posix_name();
    let mut w = Writer::create(&name, &Options::new().max_size(64)).unwrap();
    w.write(&value(1)).unwrap();
    let mut holder = LiveChild::spawn("latest-poll-holder", &[name.as_str()]);
    assert_eq!(holder.expect_line(), "polling");
    assert_eq!(fifos_of(&name).len(), 2, "the writer's life, the reader's bell");
    holder.kill();
    drop(holder);
    // the writer rings the dead reader's bell (nobody reads it): no harm
    w.write(&value(2)).unwrap();
    drop(w); // the last participant: the object goes, and the bell with it
    assert!(shmkit::posix::PosixShm::open(&name, &Default::default()).is_err());
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

/// Under tokio (shmkit::tokio::Async): a reader task awaits each newer
/// value from a writer in another process, on a current-thread runtime.
#[test]
fn a_reader_awaits_newer_values_under_tokio() {
    let (name, _guard) = posix_name();
    let w = Writer::create(&name, &Options::new().max_size(64)).unwrap();
    let r = Reader::open(&name, &Options::new()).unwrap();
    drop(w);
    let count = 2000u64;
    let mut writer = LiveChild::spawn("latest-poll-writer", &[name.as_str(), &count.to_string()]);
    assert_eq!(writer.expect_line(), "ready");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen = rt.block_on(async {
        let mut r = shmkit::tokio::Async::new(r).unwrap();
        writer.send("go");
        let mut seen = 0u64;
        while seen < count {
            let v = tokio::time::timeout(Duration::from_secs(1), r.until(|r| r.try_read_newer()))
                .await
                .expect("no newer value within a second: a missed wake-up")
                .unwrap();
            check(&v);
            assert!(v.version() > seen);
            seen = v.version();
        }
        seen
    });
    assert_eq!(seen, count);
    assert_eq!(writer.expect_line(), "done");
    writer.finish();
    drop(rt);
    assert!(fifos_of(&name).is_empty(), "left: {:?}", fifos_of(&name));
}

#[test]
fn a_writer_killed_between_its_value_and_its_ring_still_wakes_a_polled_reader() {
    let (name, _guard) = posix_name();
    let mut writer = LiveChild::spawn("latest-poll-write-on-line", &[name.as_str()]);
    assert_eq!(writer.expect_line(), "wrote 1");
    let mut r = Reader::open(&name, &Options::new()).unwrap();
    let mut set = WaitSet::new().unwrap();
    set.add(&r, 0).unwrap();
    // read it, and arm with nothing left to wake the descriptor
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        while let Some(v) = r.try_read_newer().unwrap() {
            assert_eq!(v.version(), 1);
        }
        if set.wait(Some(Duration::ZERO)).unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the descriptor stays readable");
    }
    // Take the pollers' bit (`newer` at 256, its event's `waiters` at +4)
    // as a writer does just before it rings: the next write rings nobody,
    // as if the writer that took it had died there.
    {
        let map = shmkit::posix::PosixShm::open(&name, &shmkit::posix::Options::new())
            .unwrap()
            .map()
            .unwrap();
        assert!(map.len() > 264);
        // SAFETY: offset 260 is inside the mapping (checked) and 4-aligned
        // (the mapping is page-aligned); an atomic access to shared memory.
        let waiters = unsafe { &*(map.as_mut_ptr().add(260) as *const std::sync::atomic::AtomicU32) };
        assert_ne!(
            waiters.fetch_and(0xFFFF, std::sync::atomic::Ordering::SeqCst) & !0xFFFF,
            0,
            "armed"
        );
    }
    writer.send("go");
    assert_eq!(writer.expect_line(), "wrote 2");
    assert!(set.wait(Some(Duration::ZERO)).unwrap().is_empty(), "nobody rang");
    writer.kill();
    assert_eq!(
        set.wait(Some(Duration::from_secs(20))).unwrap(),
        &[0],
        "the writer's death woke nobody"
    );
    assert_eq!(r.try_read_newer().unwrap().map(|v| v.version()), Some(2));
    // the dead writer's watch goes: the descriptor is quiet again
    assert!(r.try_read_newer().unwrap().is_none());
    assert!(set.wait(Some(Duration::ZERO)).unwrap().is_empty(), "still readable");
    drop(r);
    assert!(fifos_of(&name).is_empty(), "{:?}", fifos_of(&name));
}
