//! The pattern cases' results, added to the channel's: the same JSON
//! fields with a `pattern` value for each, and tables of their own.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::args::ATTEMPTS;
use super::patterns::{Case, Found, Row};
use super::report::{self, fmt_bytes, fmt_count, fmt_ns, ratio, Latency, Outcome, Rate};
use super::transport::{Pattern, Transport};

impl Row {
    fn latency(&self) -> Option<Latency> {
        match &self.outcome {
            Outcome::PingPong(p) => Some(p.into()),
            Outcome::Stream(_) => None,
        }
    }

    fn rate(&self) -> Option<Rate> {
        match &self.outcome {
            Outcome::Stream(s) => Some(report::rate(s, self.size)),
            Outcome::PingPong(_) => None,
        }
    }

    fn marked(&self) -> String {
        if self.disturbed > 0 {
            format!("{}*", self.transport.name())
        } else {
            self.transport.name().to_string()
        }
    }
}

/// A row as `--json` reports it: the fields of the channel's rows.
fn json_row(r: &Row) -> Value {
    let mut o = Map::new();
    o.insert("transport".into(), r.transport.name().into());
    o.insert("pattern".into(), r.pattern.into());
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
}

/// Adds the pattern cases' results to the channel's output `out` (one JSON
/// object with `json`, else tables): their rows after the channel's in
/// `results`, or their tables after the channel's. `channel` are the
/// channel's rows, for the ratios.
pub(crate) fn add_to_output(out: String, json: bool, channel: &[report::Row], found: &Found) -> String {
    if found.rows.is_empty() && found.retried == 0 {
        return out;
    }
    if json {
        let Ok(mut v) = serde_json::from_str::<Value>(&out) else {
            return out;
        };
        if let Some(results) = v["results"].as_array_mut() {
            results.extend(found.rows.iter().map(json_row));
        }
        if let Some(n) = v["config"]["rounds_run_again"].as_u64() {
            v["config"]["rounds_run_again"] = (n + u64::from(found.retried)).into();
        }
        let mut s = serde_json::to_string_pretty(&v).expect("JSON values always serialise");
        s.push('\n');
        return s;
    }
    let mut s = out;
    s.push_str(&tables(channel, found));
    s
}

/// The channel's ping-pong p50 of `transport` at `size`, if measured.
fn pingpong_p50(channel: &[report::Row], transport: Transport, size: usize) -> Option<f64> {
    report::p50(channel, transport, size)
}

fn find<'a>(found: &'a Found, pattern: &str, transport: Transport, size: usize) -> Option<&'a Row> {
    found
        .rows
        .iter()
        .find(|r| r.pattern == pattern && r.transport == transport && r.size == size)
}

fn tables(channel: &[report::Row], found: &Found) -> String {
    let mut s = String::new();
    let trips: Vec<&Row> = found.rows.iter().filter(|r| r.latency().is_some()).collect();
    if !trips.is_empty() {
        let _ = writeln!(
            s,
            "\npatterns: round-trip time (×pingpong: p50 over the channel's, same transport)"
        );
        let _ = writeln!(
            s,
            "{:>7}  {:<9}{:<13}{:>10}{:>10}{:>10}{:>10}{:>11}",
            "size", "pattern", "transport", "p50", "p99", "p99.9", "max", "×pingpong"
        );
        for r in trips {
            let Some(l) = r.latency() else { continue };
            let _ = writeln!(
                s,
                "{:>7}  {:<9}{:<13}{:>10}{:>10}{:>10}{:>10}{:>11}",
                report::size_label(r.size),
                r.pattern,
                r.marked(),
                fmt_ns(l.p50),
                fmt_ns(l.p99),
                fmt_ns(l.p999),
                fmt_ns(l.max),
                ratio(Some(l.p50 as f64), pingpong_p50(channel, r.transport, r.size)),
            );
        }
    }
    let rates: Vec<&Row> = found.rows.iter().filter(|r| r.rate().is_some()).collect();
    if !rates.is_empty() {
        let _ = writeln!(s, "\npatterns: throughput");
        let _ = writeln!(
            s,
            "{:>7}  {:<14}{:<13}{:>12}{:>13}",
            "size", "pattern", "transport", "msgs/s", "bytes/s"
        );
        for r in rates {
            let Some(x) = r.rate() else { continue };
            let _ = writeln!(
                s,
                "{:>7}  {:<14}{:<13}{:>12}{:>13}",
                report::size_label(r.size),
                r.pattern,
                r.marked(),
                fmt_count(x.msgs),
                fmt_bytes(x.bytes),
            );
        }
    }
    let mut cases: Vec<Case> = Vec::new();
    for r in &found.rows {
        if !cases.contains(&r.case) {
            cases.push(r.case);
        }
    }
    if !cases.is_empty() {
        let _ = writeln!(s, "\nhow each pattern waits:");
        for c in cases {
            let _ = writeln!(s, "  {:<9}{}", c.name(), c.waits());
        }
    }
    if found.retried > 0 || found.rows.iter().any(|r| r.disturbed > 0) {
        let _ = writeln!(
            s,
            "\nother processes took CPU time during {} pattern round(s), which were run again; \
             * marks figures with a round disturbed all {ATTEMPTS} times",
            found.retried
        );
    }
    let targets = targets(channel, found);
    if !targets.is_empty() {
        let _ = writeln!(s, "\npattern targets (measured, not judged by this run):");
        for t in targets {
            let _ = writeln!(s, "  {t}");
        }
    }
    s
}

/// Issue 13's targets that compare with the channel, where this run
/// measured both sides (the iceoryx2 ones: `benchmarks/peers`).
fn targets(channel: &[report::Row], found: &Found) -> Vec<String> {
    let mut out = Vec::new();
    let size = 64;
    for (pattern, goal) in [("reqresp", "goal ≤ 1.1"), ("pubsub1", "goal ≤ 1.2")] {
        for t in [Transport::ShmkitSpin, Transport::Shmkit] {
            let a = find(found, pattern, t, size)
                .and_then(Row::latency)
                .map(|l| l.p50 as f64);
            let b = pingpong_p50(channel, t, size);
            if let (Some(a), Some(b)) = (a, b) {
                if b > 0.0 {
                    out.push(format!(
                        "64 B {pattern} p50 / {} p50, {t}: {:.2} ({goal})",
                        Pattern::PingPong,
                        a / b
                    ));
                }
            }
        }
    }
    out
}
