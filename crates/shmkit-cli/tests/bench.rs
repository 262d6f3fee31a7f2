//! A very short `shmkit bench --json` end to end: every transport and
//! every pattern case (issue 13's publish/subscribe, many-to-one,
//! request/response, latest value), one size, a few milliseconds each;
//! checks the JSON's shape (never a timing) and that no shared-memory
//! object is left behind; and that `--patterns` selects. (Without the `bench`
//! feature the subcommand does not exist, and neither does this test.)
//!
//! A test binary of its own, not one of tests/cli: cargo runs test binaries
//! one after another, so the spinning transports get both cores, as they
//! did when this was the bench crate's own smoke test; beside the CLI
//! tests' processes a 20 ms measurement may see no round trip at all.

#![cfg(feature = "bench")]

use std::collections::BTreeSet;
use std::process::Stdio;

use serde_json::Value;

use assert_cmd::cargo::CommandCargoExt;

fn shmkit() -> std::process::Command {
    std::process::Command::cargo_bin("shmkit").unwrap()
}

#[test]
fn json_shape_and_nothing_left() {
    if let Err(e) = json_shape() {
        panic!("{e}");
    }
}

/// The `pattern` values that carry round-trip times.
const TRIPS: [&str; 4] = ["pingpong", "pubsub1", "pubsub2", "reqresp"];
/// Those that carry rates.
const RATES: [&str; 4] = ["stream", "many2", "latest-write", "latest-read"];

/// The pattern cases' rows of a full run: pattern and transport.
const PATTERN_ROWS: [&str; 8] = [
    "pubsub1 shmkit-spin",
    "pubsub1 shmkit",
    "pubsub2 shmkit",
    "many2 shmkit",
    "reqresp shmkit-spin",
    "reqresp shmkit",
    "latest-write shmkit",
    "latest-read shmkit",
];

fn json_shape() -> Result<(), String> {
    let v = bench(&["--sizes", "64", "--duration", "20ms"])?;
    let mut want = BTreeSet::new();
    // every transport but the ping-pong-only and stream-only ones
    let both = [
        "shmkit-spin",
        "shmkit",
        "pipe",
        "uds",
        "tcp",
        "shmkit-async",
        "shmkit-async-yield",
        "uds-async",
    ];
    for t in both.iter().chain(&["shmkit-sleep", "raw-spin", "eventfd"]) {
        want.insert(format!("pingpong {t}"));
    }
    for t in both.iter().chain(&["memcpy"]) {
        want.insert(format!("stream {t}"));
    }
    want.extend(PATTERN_ROWS.iter().map(|r| r.to_string()));
    check_rows(&v, &want)
}

#[test]
fn patterns_select() {
    // Only the pattern cases asked for, and none of the channel's rows; a
    // size that is not 64 with --quick (which measures the cases at 64 B
    // unless --sizes says otherwise).
    let run = || -> Result<(), String> {
        let v = bench(&[
            "--quick",
            "--sizes",
            "4K",
            "--duration",
            "20ms",
            "--patterns",
            "reqresp,latest",
        ])?;
        let want: BTreeSet<String> = [
            "reqresp shmkit-spin",
            "reqresp shmkit",
            "latest-write shmkit",
            "latest-read shmkit",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if v["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["size"] != 4096))
        {
            return Err(format!("a size other than 4096 in {v}"));
        }
        check_rows(&v, &want)
    };
    if let Err(e) = run() {
        panic!("{e}");
    }
    let out = shmkit()
        .args(["bench", "--patterns", "pubsub3"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("pubsub1"));
}

/// One run at a time: spinning measurements need both cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `shmkit bench --json ARGS`, checks the machine and that nothing
/// is left in /dev/shm, and returns the JSON.
fn bench(args: &[&str]) -> Result<Value, String> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let child = shmkit()
        .args(["bench", "--json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let leader = out.status.code();
    if !out.status.success() {
        return Err(format!("bench exited with {leader:?}"));
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("not JSON: {e}"))?;
    let m = &v["machine"];
    if !(m["cpu"].is_string() && m["cores"].as_u64().is_some_and(|n| n >= 1) && m["kernel"].is_string()) {
        return Err(format!("bad machine: {m}"));
    }
    // The leader named its objects after its pid: none may be left.
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!("shmkit-bench-{pid}-")))
        .collect();
    if !left.is_empty() {
        return Err(format!("left behind in /dev/shm: {left:?}"));
    }
    Ok(v)
}

/// Checks every row's fields (those of its kind present and positive, the
/// others absent) and that the rows are exactly `want` ("pattern
/// transport").
fn check_rows(v: &Value, want: &BTreeSet<String>) -> Result<(), String> {
    let results = v["results"].as_array().ok_or("no results array")?;
    let mut seen = BTreeSet::new();
    for r in results {
        let transport = r["transport"].as_str().ok_or("no transport")?;
        let pattern = r["pattern"].as_str().ok_or("no pattern")?;
        if r["size"].as_u64().is_none_or(|s| s < 8) {
            return Err(format!("bad size in {r}"));
        }
        let latency = ["p50_ns", "p99_ns", "p999_ns", "max_ns"];
        let rate = ["msgs_per_s", "bytes_per_s"];
        let (present, absent) = if TRIPS.contains(&pattern) {
            (latency.as_slice(), rate.as_slice())
        } else if RATES.contains(&pattern) {
            (rate.as_slice(), latency.as_slice())
        } else {
            return Err(format!("bad pattern in {r}"));
        };
        for f in present {
            // A rate's median round may be 0 on a busy machine (a 20 ms
            // round in which the spinning peer got no CPU); a stream must
            // still have moved messages over all its rounds. A reader of a
            // latest value that a writer laps all the time may read
            // nothing whole in a short round: its count is there, maybe 0.
            let positive = r[*f].as_f64().is_some_and(|x| x > 0.0);
            let progressed = RATES.contains(&pattern) && r[*f].as_f64().is_some() && r["messages"].as_u64() > Some(0);
            let counted = pattern == "latest-read" && r[*f].as_f64().is_some() && r["messages"].as_u64().is_some();
            if !(positive || progressed || counted) {
                return Err(format!("{f} missing or not positive in {r}"));
            }
        }
        for f in absent {
            if r.get(*f).is_some() {
                return Err(format!("{f} does not apply to {r}"));
            }
        }
        if !seen.insert(format!("{pattern} {transport}")) {
            return Err(format!("{pattern} {transport} twice"));
        }
    }
    if &seen != want {
        return Err(format!("measured {seen:?}, expected {want:?}"));
    }
    Ok(())
}
