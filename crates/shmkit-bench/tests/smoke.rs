//! A very short `shmkit bench --json` end to end: every transport, one
//! size, a few milliseconds each; checks the JSON's shape (never a timing)
//! and that no shared-memory object is left behind.
//!
//! `harness = false`: this binary is also the benchmark (`bench …`) and its
//! second process (`bench-peer …`), as the `shmkit` binary is.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::process::{Command, ExitCode, Stdio};

use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
struct Bench {
    #[command(flatten)]
    args: shmkit_bench::Args,
}

#[derive(Parser)]
struct Peer {
    #[command(flatten)]
    args: shmkit_bench::PeerArgs,
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let role = argv.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let result = if role == shmkit_bench::PEER_SUBCOMMAND {
        shmkit_bench::run_peer(Peer::parse_from(&argv[1..]).args).map_err(|e| e.to_string())
    } else if role == "bench" {
        shmkit_bench::run(Bench::parse_from(&argv[1..]).args).map_err(|e| e.to_string())
    } else {
        json_shape()
    };
    match result {
        Ok(()) => {
            if role.is_empty() || role.starts_with('-') {
                println!("test smoke::json_shape ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{role}: {e}");
            if role.is_empty() || role.starts_with('-') {
                println!("test smoke::json_shape ... FAILED\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored");
            }
            ExitCode::FAILURE
        }
    }
}

fn json_shape() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = Command::new(exe)
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
            if !r[*f].as_f64().is_some_and(|x| x > 0.0) {
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
