//! Latest values between real processes: whole values under a busy
//! writer, a writer killed at random moments, keep or remove, wake-ups,
//! one writer at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmkit::latest::{self, Options, Reader, Writer};
use shmkit::posix::{PosixShm, ShmName};
use shmkit::{Error, Role};

use crate::common::{posix_name, LiveChild};

/// The largest value the tests write: big enough that a copy takes a while
/// (a torn copy would have a chance to show).
const MAX: u64 = 8192;

/// Value `n`: its length and every byte are a function of `n`, so a mix of
/// two writes (or a value with the wrong version) is detected.
fn value(n: u64) -> Vec<u8> {
    let len = 8 + (n.wrapping_mul(7919) % (MAX - 8 + 1)) as usize;
    let mut v: Vec<u8> = (0..len).map(|i| (n.wrapping_mul(131) as usize + i * 7) as u8).collect();
    v[..8].copy_from_slice(&n.to_le_bytes());
    v
}

fn exists(name: &ShmName) -> bool {
    PosixShm::open(name, &Default::default()).is_ok()
}

/// A flag set when the parent closes our standard input.
fn stop_on_stdin_close() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
        s.store(true, Ordering::Relaxed);
    });
    stop
}

/// Child roles for these tests; `child::main` hands roles starting with
/// `latest-` here.
pub fn child_role(role: &str, args: &[String]) {
    let name = ShmName::new(args[0].as_str()).unwrap();
    let report = |line: String| println!("@{line}");
    if role.starts_with("latest-poll-") {
        return crate::latest_poll::child_role(role, args);
    }
    match role {
        // latest-writer NAME MILLIS: write value(n) for MILLIS ms (0: until
        // killed), in bursts of 64 with a 1 ms pause between; report after
        // the first write.
        "latest-writer" => {
            let millis: u64 = args[1].parse().unwrap();
            let mut w = Writer::open_or_create(&name, &Options::new().max_size(MAX)).unwrap();
            let first = w.version() + 1;
            w.write(&value(first)).unwrap();
            report(format!("writing from {first}"));
            let end = (millis > 0).then(|| Instant::now() + Duration::from_millis(millis));
            loop {
                for _ in 0..64 {
                    let n = w.version() + 1;
                    w.write(&value(n)).unwrap();
                }
                if end.is_some_and(|e| Instant::now() >= e) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            report(format!("wrote up to {}", w.version()));
        }
        // latest-reader NAME: read every value it can until stdin closes,
        // checking each; report how many, how many versions, the last.
        "latest-reader" => {
            let stop = stop_on_stdin_close();
            let opts = Options::new().timeout(Duration::from_secs(20));
            let mut r = Reader::open(&name, &opts).unwrap();
            report("reading".into());
            let (mut reads, mut versions, mut last) = (0u64, 0u64, 0u64);
            let mut buf = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // one plain read, then a wait for the next version
                if let Some(v) = r.read_into(&mut buf).unwrap() {
                    assert_eq!(buf, value(v), "version {v}: not the value written as it");
                    assert!(v >= last, "versions went back: {last} then {v}");
                    reads += 1;
                }
                match r.wait_newer(last, Duration::from_millis(100)) {
                    Ok(got) => {
                        assert_eq!(got.as_bytes(), value(got.version()), "version {}", got.version());
                        assert!(got.version() > last);
                        last = got.version();
                        reads += 1;
                        versions += 1;
                    }
                    Err(Error::TimedOut { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            // the last word: one more read, of the value that stays
            if let Some(v) = r.read_into(&mut buf).unwrap() {
                assert_eq!(buf, value(v), "version {v}");
                last = v;
            }
            report(format!("reads {reads} versions {versions} last {last}"));
        }
        // latest-write-once NAME TEXT KEEP: write TEXT (creating the value,
        // kept if KEEP is "keep"), then exit.
        "latest-write-once" => {
            let opts = Options::new().keep(args[2] == "keep");
            let mut w = Writer::open_or_create(&name, &opts).unwrap();
            report(format!("version {}", w.write(args[1].as_bytes()).unwrap()));
        }
        // latest-hold-writer NAME: take the writer's seat and hold it until
        // killed or stdin closes.
        "latest-hold-writer" => {
            let stop = stop_on_stdin_close();
            let _w = Writer::open_or_create(&name, &Options::new()).unwrap();
            report(format!("holding {}", std::process::id()));
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // latest-write-when-told NAME: take the writer's seat, report, and
        // write each line the parent sends.
        "latest-write-when-told" => {
            let mut w = Writer::open_or_create(&name, &Options::new()).unwrap();
            report("ready".into());
            let mut line = String::new();
            while std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line).unwrap() > 0 {
                report(format!("wrote {}", w.write(line.trim_end().as_bytes()).unwrap()));
                line.clear();
            }
        }
        other => panic!("unknown child role {other:?}"),
    }
}

fn parse_report(line: &str) -> (u64, u64, u64) {
    let w: Vec<u64> = line.split(' ').skip(1).step_by(2).map(|n| n.parse().unwrap()).collect();
    (w[0], w[1], w[2])
}

/// A writer process writes values of up to 8 KiB as fast as it can (in
/// bursts) while two reader processes read and check every one: no read
/// ever returns a mix of two writes, or a value under another's version.
#[test]
fn two_reader_processes_never_see_a_torn_value() {
    let (name, _guard) = posix_name();
    let mut readers: Vec<LiveChild> = (0..2)
        .map(|_| LiveChild::spawn("latest-reader", &[name.as_str()]))
        .collect();
    let mut writer = LiveChild::spawn("latest-writer", &[name.as_str(), "1500"]);
    assert!(writer.expect_line().starts_with("writing"));
    for r in &mut readers {
        assert_eq!(r.expect_line(), "reading");
    }
    let done = writer.expect_line();
    let written: u64 = done.rsplit(' ').next().unwrap().parse().unwrap();
    writer.finish();
    for mut r in readers {
        r.send("stop");
        let (reads, versions, last) = parse_report(&r.expect_line());
        println!("reads {reads}, versions {versions}, last {last} of {written}");
        assert_eq!(last, written, "the reader ends on the last value");
        assert!(versions > 1 && reads >= versions);
        r.finish();
    }
    assert!(!exists(&name), "the last reader to leave removed it");
}

/// A writer process is killed (SIGKILL) at a random moment of its writing,
/// 200 times, a new one continuing each time, while two reader processes
/// read: they never see a torn value, and the value stays the last one
/// completed.
#[test]
fn a_writer_killed_200_times_never_leaves_a_torn_value() {
    let (name, _guard) = posix_name();
    let mut readers: Vec<LiveChild> = (0..2)
        .map(|_| LiveChild::spawn("latest-reader", &[name.as_str()]))
        .collect();
    let mut rng = 0x853c_49e6_748f_ea9bu64 ^ u64::from(std::process::id());
    let mut first_versions = Vec::new();
    let started = Instant::now();
    for kill in 0..200 {
        let mut writer = LiveChild::spawn("latest-writer", &[name.as_str(), "0"]);
        let line = writer.expect_line();
        let from: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        first_versions.push(from);
        if kill == 0 {
            for r in &mut readers {
                assert_eq!(r.expect_line(), "reading");
            }
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 3000));
        writer.kill();
    }
    println!("200 kills in {:?}", started.elapsed());
    // Each writer continued from the last complete version its
    // predecessor published (so versions kept growing across the kills).
    assert!(first_versions.windows(2).all(|w| w[1] > w[0]), "{first_versions:?}");
    // What a fresh reader sees is a whole value (and the object is there:
    // the readers still hold it).
    let mut r = Reader::open(&name, &Options::new()).unwrap();
    let v = r.read().unwrap().expect("values were written");
    assert_eq!(v.as_bytes(), value(v.version()));
    let info = latest::info(&name).unwrap();
    let w = info.writer.unwrap();
    assert!(!w.alive && !w.closed, "the last writer died: {w:?}");
    assert_eq!(info.version, v.version());
    drop(r);
    for mut r in readers {
        r.send("stop");
        let (reads, versions, last) = parse_report(&r.expect_line());
        println!("reads {reads}, versions {versions}, last {last}");
        assert_eq!(last, v.version(), "the reader ends on the last complete value");
        r.finish();
    }
    assert!(!exists(&name), "the last reader to leave removed it");
}

/// A value that is not kept goes with its last participant, writer or
/// reader; a kept one outlives its writer's process, is read afterwards,
/// written again by a later writer, and goes only when removed.
#[test]
fn keep_or_remove() {
    // not kept: the reader outlives the writer, then removes it
    let (name, _guard) = posix_name();
    let mut w = Writer::create(&name, &Options::new()).unwrap();
    w.write(b"transient").unwrap();
    let mut r = Reader::open(&name, &Options::new()).unwrap();
    drop(w);
    assert!(exists(&name), "a reader still takes part");
    assert_eq!(r.read().unwrap().unwrap().as_bytes(), b"transient");
    drop(r);
    assert!(!exists(&name), "the last participant removed it");

    // not kept, writer process exits alone: gone
    let lines = crate::common::run_child("latest-write-once", &[name.as_str(), "gone", "no"]);
    assert_eq!(lines, ["version 1"]);
    assert!(!exists(&name));

    // kept: written by a process that exits, read afterwards
    let lines = crate::common::run_child("latest-write-once", &[name.as_str(), "state 1", "keep"]);
    assert_eq!(lines, ["version 1"]);
    assert!(exists(&name), "kept after its writer exited");
    let info = latest::info(&name).unwrap();
    assert!(info.keep && !info.in_use);
    assert!(info.writer.unwrap().closed);
    let mut r = Reader::open(&name, &Options::new()).unwrap();
    let v = r.read().unwrap().unwrap();
    assert_eq!((v.version(), v.as_bytes()), (1, &b"state 1"[..]));
    // a later writer (asking for no keeping: the first one's choice stands)
    let lines = crate::common::run_child("latest-write-once", &[name.as_str(), "state 2", "no"]);
    assert_eq!(lines, ["version 2"]);
    assert_eq!(r.read().unwrap().unwrap().as_bytes(), b"state 2");
    drop(r);
    assert!(exists(&name), "still kept");
    shmkit::posix::remove(&name).unwrap();
    assert!(!exists(&name));
}

/// A reader asleep in `wait_newer` is woken by a write in another process,
/// and a reader that waits for the object finds it once a writer makes it.
#[test]
fn wait_newer_wakes_across_processes() {
    let (name, _guard) = posix_name();
    let mut writer = LiveChild::spawn("latest-write-when-told", &[name.as_str()]);
    // either side first: the reader may ask before the writer made it
    let mut r = Reader::open(&name, &Options::new().timeout(Duration::from_secs(20))).unwrap();
    assert_eq!(writer.expect_line(), "ready");
    assert_eq!(r.read().unwrap(), None);
    let name2 = name.clone();
    let waiter = std::thread::spawn(move || {
        let got = r.wait_newer(0, Duration::from_secs(20));
        (got, r)
    });
    // let the waiter fall asleep (not required for the outcome)
    std::thread::sleep(Duration::from_millis(100));
    writer.send("hello across");
    assert_eq!(writer.expect_line(), "wrote 1");
    let (got, mut r) = waiter.join().unwrap();
    let got = got.unwrap();
    assert_eq!((got.version(), got.as_bytes()), (1, &b"hello across"[..]));
    // and a timeout when nothing comes
    match r.wait_newer(1, Duration::from_millis(50)) {
        Err(Error::TimedOut { .. }) => {}
        other => panic!("{other:?}"),
    }
    writer.finish();
    drop(r);
    assert!(!exists(&name2));
}

/// A second writer is `Busy` while the first lives; after the first is
/// killed the seat is free, and the new writer continues its versions.
#[test]
fn a_second_writer_is_busy_until_the_first_is_gone() {
    let (name, _guard) = posix_name();
    let mut holder = LiveChild::spawn("latest-hold-writer", &[name.as_str()]);
    let pid: u32 = holder.expect_line().rsplit(' ').next().unwrap().parse().unwrap();
    let mut r = Reader::open(&name, &Options::new()).unwrap();
    match Writer::open_or_create(&name, &Options::new()) {
        Err(Error::Busy {
            side: Role::Writer,
            pid: p,
            alive: true,
            ..
        }) => assert_eq!(p, pid),
        other => panic!("{other:?}"),
    }
    holder.kill();
    let info = r.info();
    assert!(!info.writer.as_ref().unwrap().alive, "{info:?}");
    let mut w = Writer::open(&name, &Options::new()).unwrap();
    assert_eq!(w.write(b"mine now").unwrap(), 1);
    assert_eq!(r.read().unwrap().unwrap().as_bytes(), b"mine now");
    // an explicit, different maximum size is refused
    drop(w);
    match Writer::open(&name, &Options::new().max_size(10)) {
        Err(Error::CapacityMismatch { actual, expected, .. }) => {
            assert_eq!((actual, expected), (latest::DEFAULT_MAX_SIZE, 10))
        }
        other => panic!("{other:?}"),
    }
    drop(r);
    assert!(!exists(&name));
}

/// Not a latest value, or not there: clear errors.
#[test]
fn missing_and_foreign_objects() {
    let (name, _guard) = posix_name();
    assert!(matches!(
        Reader::open(&name, &Options::new()),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        Writer::open(&name, &Options::new()),
        Err(Error::NotFound { .. })
    ));
    assert!(!exists(&name), "a failed open leaves nothing");
    assert!(matches!(latest::info(&name), Err(Error::NotFound { .. })));
    let _plain = PosixShm::create(&name, &shmkit::posix::Options::new().size(8192)).unwrap();
    assert!(matches!(
        Reader::open(&name, &Options::new()),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(latest::info(&name), Err(Error::Corrupt { .. })));
    shmkit::posix::remove(&name).unwrap();
}

/// A third process writes random words over the object (mostly its header)
/// while a writer writes and a reader reads: every call ends, with a value,
/// `Corrupt` or `TimedOut` — never a panic, a crash or a hang.
#[test]
fn a_scribbling_peer_never_crashes_or_hangs_a_reader() {
    let (name, _guard) = posix_name();
    let mut w = Writer::create(&name, &Options::new().max_size(1024)).unwrap();
    w.write(b"start").unwrap();
    let mut r = Reader::open(&name, &Options::new()).unwrap();
    let mut scribbler = LiveChild::spawn("chan-scribble", &[name.as_str(), "1000"]);
    assert_eq!(scribbler.expect_line(), "scribbling");
    let end = Instant::now() + Duration::from_millis(1000);
    let writer = std::thread::spawn(move || {
        let mut n = 0u64;
        while Instant::now() < end {
            n += 1;
            w.write(&n.to_le_bytes().repeat(16)).unwrap();
            std::thread::sleep(Duration::from_micros(50));
        }
        w
    });
    let (mut values, mut errors) = (0u64, 0u64);
    let mut last = 0;
    while Instant::now() < end {
        let outcomes = [
            r.read().map(|v| v.map(|v| v.version())),
            r.wait_newer(last, Duration::from_millis(10)).map(|v| Some(v.version())),
            r.version().map(Some),
        ];
        for outcome in outcomes {
            match outcome {
                Ok(v) => {
                    values += 1;
                    last = v.unwrap_or(last);
                }
                Err(Error::Corrupt { .. } | Error::TimedOut { .. }) => errors += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    println!("{values} values, {errors} errors; {}", scribbler.expect_line());
    scribbler.finish();
    drop(writer.join().unwrap());
    drop(r);
    assert!(values + errors > 0);
}

/// A zero-copy write whose filler panics publishes nothing: readers keep
/// the last value, and the next write takes the version it did not.
#[test]
fn a_panicking_zero_copy_write_publishes_nothing() {
    let (name, _guard) = posix_name();
    let mut w = Writer::create(&name, &Options::new().max_size(64)).unwrap();
    let mut r = Reader::open(&name, &Options::new()).unwrap();
    w.write_with(5, |view| view.write_at(0, b"whole").unwrap()).unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        w.write_with(64, |view| {
            view.write_at(0, b"half of a").unwrap();
            panic!("the filler fails half-way");
        })
    }));
    assert!(panicked.is_err());
    let v = r.read().unwrap().unwrap();
    assert_eq!((v.version(), v.as_bytes()), (1, &b"whole"[..]));
    assert_eq!(w.write(b"next").unwrap(), 2);
    assert_eq!(r.read().unwrap().unwrap().as_bytes(), b"next");
    assert!(matches!(
        w.write_with(65, |_| unreachable!()),
        Err(Error::MessageTooLarge { len: 65, max: 64, .. })
    ));
}
