//! A very short `shmkit bench --json` end to end: every transport, one
//! size, a few milliseconds each; checks the JSON's shape (never a timing)
//! and that no shared-memory object is left behind. (Without the `bench`
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

fn json_shape() -> Result<(), String> {
    let child = shmkit()
        .args(["bench", "--json", "--sizes", "64", "--duration", "20ms"])
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
    let results = v["results"].as_array().ok_or("no results array")?;
    let mut seen = BTreeSet::new();
    for r in results {
        let transport = r["transport"].as_str().ok_or("no transport")?;
        let pattern = r["pattern"].as_str().ok_or("no pattern")?;
        if r["size"].as_u64() != Some(64) {
            return Err(format!("bad size in {r}"));
        }
        let latency = ["p50_ns", "p99_ns", "p999_ns", "max_ns"];
        let rate = ["msgs_per_s", "bytes_per_s"];
        let (present, absent) = match pattern {
            "pingpong" => (latency.as_slice(), rate.as_slice()),
            "stream" => (rate.as_slice(), latency.as_slice()),
            _ => return Err(format!("bad pattern in {r}")),
        };
        for f in present {
            // A rate's median round may be 0 on a busy machine (a 20 ms
            // round in which the spinning peer got no CPU); a stream must
            // still have moved messages over all its rounds.
            let positive = r[*f].as_f64().is_some_and(|x| x > 0.0);
            let progressed = pattern == "stream" && r[*f].as_f64().is_some() && r["messages"].as_u64() > Some(0);
            if !(positive || progressed) {
                return Err(format!("{f} missing or not positive in {r}"));
            }
        }
        for f in absent {
            if r.get(*f).is_some() {
                return Err(format!("{f} does not apply to {r}"));
            }
        }
        seen.insert(format!("{pattern} {transport}"));
    }
    let mut want = BTreeSet::new();
    for t in [
        "shmkit-spin",
        "shmkit",
        "shmkit-sleep",
        "raw-spin",
        "eventfd",
        "pipe",
        "uds",
        "tcp",
    ] {
        want.insert(format!("pingpong {t}"));
    }
    for t in ["shmkit-spin", "shmkit", "pipe", "uds", "tcp", "memcpy"] {
        want.insert(format!("stream {t}"));
    }
    if seen != want {
        return Err(format!("measured {seen:?}, expected {want:?}"));
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
    Ok(())
}
