//! The results: tables for people, one JSON object for programs.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::{json, Map, Value};

use super::args::{Plan, ATTEMPTS};
use super::error::{Error, Result};
use super::measure::{PingPong, Stream};
use super::transport::{Pattern, Transport};

/// The machine the numbers belong to.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
}

impl Machine {
    pub(crate) fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
        }
    }
}

/// What one measurement found.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    PingPong(PingPong),
    /// One entry per round.
    Stream(Vec<Stream>),
}

impl Outcome {
    /// Adds another round of the same measurement.
    pub(crate) fn merge(&mut self, other: Outcome) {
        match (self, other) {
            (Outcome::PingPong(a), Outcome::PingPong(b)) => {
                // Same bounds, so adding cannot fail.
                let _ = a.hist.add(&b.hist);
            }
            (Outcome::Stream(a), Outcome::Stream(b)) => a.extend(b),
            _ => {}
        }
    }
}

/// One measurement and what it found.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub pattern: Pattern,
    pub transport: Transport,
    pub size: usize,
    pub outcome: Outcome,
    /// Rounds that other processes disturbed even when run again.
    pub disturbed: u32,
}

/// Round-trip percentiles, in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latency {
    pub(crate) p50: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
    pub(crate) mean: f64,
    pub(crate) samples: u64,
}

impl From<&PingPong> for Latency {
    fn from(p: &PingPong) -> Latency {
        let h = &p.hist;
        Latency {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
            samples: h.len(),
        }
    }
}

/// Messages and bytes per second: the median of the rounds' rates (a
/// round that another process disturbed does not drag it down), and the
/// messages counted in all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    pub(crate) msgs: f64,
    pub(crate) bytes: f64,
    pub(crate) messages: u64,
}

pub(crate) fn rate(rounds: &[Stream], size: usize) -> Rate {
    let mut rates: Vec<f64> = rounds
        .iter()
        .map(|s| s.messages as f64 / s.elapsed.as_secs_f64().max(1e-9))
        .collect();
    rates.sort_by(f64::total_cmp);
    let n = rates.len();
    let msgs = match n {
        0 => 0.0,
        _ if n % 2 == 1 => rates[n / 2],
        _ => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
    };
    Rate {
        msgs,
        bytes: msgs * size as f64,
        messages: rounds.iter().map(|s| s.messages).sum(),
    }
}

impl Row {
    fn latency(&self) -> Option<Latency> {
        match &self.outcome {
            Outcome::PingPong(p) => Some(p.into()),
            Outcome::Stream(_) => None,
        }
    }

    fn rate(&self) -> Option<Rate> {
        match &self.outcome {
            Outcome::Stream(s) => Some(rate(s, self.size)),
            Outcome::PingPong(_) => None,
        }
    }
}

fn find(rows: &[Row], pattern: Pattern, transport: Transport, size: usize) -> Option<&Row> {
    rows.iter()
        .find(|r| r.pattern == pattern && r.transport == transport && r.size == size)
}

pub(crate) fn p50(rows: &[Row], transport: Transport, size: usize) -> Option<f64> {
    find(rows, Pattern::PingPong, transport, size)
        .and_then(Row::latency)
        .map(|l| l.p50 as f64)
}

fn messages(rows: &[Row], transport: Transport, size: usize) -> Option<f64> {
    find(rows, Pattern::Stream, transport, size)
        .and_then(Row::rate)
        .map(|r| r.msgs)
}

fn bandwidth(rows: &[Row], transport: Transport, size: usize) -> Option<f64> {
    find(rows, Pattern::Stream, transport, size)
        .and_then(Row::rate)
        .map(|r| r.bytes)
}

/// The one JSON object of `--json`.
pub(crate) fn json(machine: &Machine, plan: &Plan, rows: &[Row], retried: u32) -> String {
    let results: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut o = Map::new();
            o.insert("transport".into(), r.transport.name().into());
            o.insert("pattern".into(), r.pattern.name().into());
            o.insert("size".into(), r.size.into());
            if let Some(l) = r.latency() {
                o.insert("p50_ns".into(), l.p50.into());
                o.insert("p99_ns".into(), l.p99.into());
                o.insert("p999_ns".into(), l.p999.into());
                o.insert("max_ns".into(), l.max.into());
                o.insert("mean_ns".into(), json!((l.mean * 10.0).round() / 10.0));
                o.insert("samples".into(), l.samples.into());
            }
            if let Some(x) = r.rate() {
                o.insert("msgs_per_s".into(), json!(x.msgs.round() as u64));
                o.insert("bytes_per_s".into(), json!(x.bytes.round() as u64));
                o.insert("messages".into(), x.messages.into());
            }
            if r.disturbed > 0 {
                o.insert("disturbed_rounds".into(), r.disturbed.into());
            }
            Value::Object(o)
        })
        .collect();
    let v = json!({
        "machine": {
            "cpu": machine.cpu,
            "cores": machine.cores,
            "kernel": machine.kernel,
        },
        "config": {
            "quick": plan.quick,
            "pinned": plan.pin,
            "duration_s": plan.duration.as_secs_f64(),
            "rounds": plan.rounds,
            "rounds_run_again": retried,
            "warmup_s": plan.warmup.as_secs_f64(),
        },
        "results": results,
    });
    let mut s = serde_json::to_string_pretty(&v).expect("JSON values always serialise");
    s.push('\n');
    s
}

/// The tables for people.
pub(crate) fn tables(machine: &Machine, plan: &Plan, rows: &[Row], retried: u32) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "shmkit bench: {}, {} cores, Linux {}; {} per measurement in {} round{} (each after {} of warm-up){}",
        machine.cpu,
        machine.cores,
        machine.kernel,
        fmt_secs(plan.duration.as_secs_f64()),
        plan.rounds,
        if plan.rounds == 1 { "" } else { "s" },
        fmt_secs(plan.warmup.as_secs_f64()),
        if plan.pin { ", pinned" } else { "" }
    );
    let ping: Vec<&Row> = rows.iter().filter(|r| r.pattern == Pattern::PingPong).collect();
    if !ping.is_empty() {
        let _ = writeln!(s, "\nping-pong: round-trip time (ratios of p50)");
        let _ = writeln!(
            s,
            "{:>7}  {:<20}{:>10}{:>10}{:>10}{:>10}{:>11}{:>8}",
            "size", "transport", "p50", "p99", "p99.9", "max", "×raw-spin", "×pipe"
        );
        let mut last_size = None;
        for r in ping {
            let Some(l) = r.latency() else { continue };
            if last_size.is_some() && last_size != Some(r.size) {
                s.push('\n');
            }
            last_size = Some(r.size);
            let ratio = |t| ratio(Some(l.p50 as f64), p50(rows, t, r.size));
            let _ = writeln!(
                s,
                "{:>7}  {:<20}{:>10}{:>10}{:>10}{:>10}{:>11}{:>8}",
                size_label(r.size),
                marked(r),
                fmt_ns(l.p50),
                fmt_ns(l.p99),
                fmt_ns(l.p999),
                fmt_ns(l.max),
                ratio(Transport::RawSpin),
                ratio(Transport::Pipe)
            );
        }
    }
    let stream: Vec<&Row> = rows.iter().filter(|r| r.pattern == Pattern::Stream).collect();
    if !stream.is_empty() {
        let _ = writeln!(s, "\nstream: throughput (ratios of bytes/s)");
        let _ = writeln!(
            s,
            "{:>7}  {:<20}{:>12}{:>13}{:>9}{:>8}",
            "size", "transport", "msgs/s", "bytes/s", "×memcpy", "×pipe"
        );
        let mut last_size = None;
        for r in stream {
            let Some(x) = r.rate() else { continue };
            if last_size.is_some() && last_size != Some(r.size) {
                s.push('\n');
            }
            last_size = Some(r.size);
            let ratio = |t| ratio(Some(x.bytes), bandwidth(rows, t, r.size));
            let _ = writeln!(
                s,
                "{:>7}  {:<20}{:>12}{:>13}{:>9}{:>8}",
                size_label(r.size),
                marked(r),
                fmt_count(x.msgs),
                fmt_bytes(x.bytes),
                ratio(Transport::Memcpy),
                ratio(Transport::Pipe)
            );
        }
    }
    if retried > 0 || rows.iter().any(|r| r.disturbed > 0) {
        let _ = writeln!(
            s,
            "\nother processes took CPU time during {retried} round(s), which were run again; \
             * marks figures with a round disturbed all {} times",
            ATTEMPTS
        );
    }
    let targets = targets(rows);
    if !targets.is_empty() {
        let _ = writeln!(s, "\ntargets (measured, not judged by this run):");
        for t in targets {
            let _ = writeln!(s, "  {t}");
        }
    }
    s
}

/// The project's performance targets, where this run measured both sides.
fn targets(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |what: &str, a: Option<f64>, b: Option<f64>, goal: &str| {
        if let (Some(a), Some(b)) = (a, b) {
            if b > 0.0 {
                out.push(format!("{what}: {:.2} ({goal})", a / b));
            }
        }
    };
    use Transport::*;
    let s = 64;
    add(
        "64 B ping-pong p50, shmkit-spin / raw-spin",
        p50(rows, ShmkitSpin, s),
        p50(rows, RawSpin, s),
        "goal ≤ 1.5",
    );
    add(
        "64 B ping-pong p50, shmkit / pipe",
        p50(rows, Shmkit, s),
        p50(rows, Pipe, s),
        "goal ≤ 0.1",
    );
    add(
        "64 B ping-pong p50, shmkit / uds",
        p50(rows, Shmkit, s),
        p50(rows, Uds, s),
        "goal ≤ 0.1",
    );
    add(
        "64 B ping-pong p50, both sides sleeping, shmkit-sleep / eventfd",
        p50(rows, ShmkitSleep, s),
        p50(rows, Eventfd, s),
        "goal ≤ 1.2",
    );
    add(
        "64 B ping-pong p50, both sides tokio, shmkit-async / uds-async",
        p50(rows, ShmkitAsync, s),
        p50(rows, UdsAsync, s),
        "goal ≤ 0.5",
    );
    add(
        "64 B ping-pong p50, tokio without spinning, shmkit-async-yield / uds-async",
        p50(rows, ShmkitAsyncYield, s),
        p50(rows, UdsAsync, s),
        "no goal: every wait pays a wake-up",
    );
    add(
        "64 B stream, messages per second, shmkit-async / uds-async",
        messages(rows, ShmkitAsync, s),
        messages(rows, UdsAsync, s),
        "goal ≥ 5",
    );
    let m = 1 << 20;
    add(
        "1 MiB stream, shmkit / memcpy",
        bandwidth(rows, Shmkit, m),
        bandwidth(rows, Memcpy, m),
        "goal ≥ 0.5",
    );
    add(
        "1 MiB stream, shmkit-spin / memcpy",
        bandwidth(rows, ShmkitSpin, m),
        bandwidth(rows, Memcpy, m),
        "goal ≥ 0.5",
    );
    out
}

/// The transport's name, with `*` if a round of it was disturbed.
fn marked(r: &Row) -> String {
    if r.disturbed > 0 {
        format!("{}*", r.transport.name())
    } else {
        r.transport.name().to_string()
    }
}

pub(crate) fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            if r >= 100.0 {
                format!("{r:.0}×")
            } else if r >= 10.0 {
                format!("{r:.1}×")
            } else {
                format!("{r:.2}×")
            }
        }
        _ => "-".into(),
    }
}

/// `8 B`, `4 KiB`, `1 MiB`.
pub(crate) fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size % (1 << 20) == 0 {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 && size % (1 << 10) == 0 {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

/// Three significant digits.
fn sig3(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

pub(crate) fn fmt_ns(ns: u64) -> String {
    let x = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{} µs", sig3(x / 1e3))
    } else if ns < 1_000_000_000 {
        format!("{} ms", sig3(x / 1e6))
    } else {
        format!("{} s", sig3(x / 1e9))
    }
}

fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{} s", sig3(s))
    } else {
        format!("{} ms", sig3(s * 1e3))
    }
}

pub(crate) fn fmt_count(x: f64) -> String {
    if x >= 1e9 {
        format!("{} G", sig3(x / 1e9))
    } else if x >= 1e6 {
        format!("{} M", sig3(x / 1e6))
    } else if x >= 1e3 {
        format!("{} k", sig3(x / 1e3))
    } else {
        sig3(x)
    }
}

pub(crate) fn fmt_bytes(x: f64) -> String {
    const K: f64 = 1024.0;
    if x >= K * K * K {
        format!("{} GiB/s", sig3(x / (K * K * K)))
    } else if x >= K * K {
        format!("{} MiB/s", sig3(x / (K * K)))
    } else {
        format!("{} KiB/s", sig3(x / K))
    }
}

/// Writes `out` to stdout; a closed stdout (`| head`) is no error.
pub(crate) fn print(out: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("writing the results", e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(size_label(8), "8 B");
        assert_eq!(size_label(4096), "4 KiB");
        assert_eq!(size_label(1 << 20), "1 MiB");
        assert_eq!(size_label(1000), "1000 B");
        assert_eq!(fmt_ns(950), "950 ns");
        assert_eq!(fmt_ns(12_345), "12.3 µs");
        assert_eq!(fmt_ns(1_234_567), "1.23 ms");
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50×");
        assert_eq!(ratio(Some(3.0), None), "-");
    }
}
