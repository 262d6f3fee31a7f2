//! The first process: runs every measurement and prints the results.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::{Args, PeerPlan, Plan, ATTEMPTS};
use super::child::PeerProcess;
use super::error::{Error, Result};
use super::link::{self, with_link, Wiring};
use super::load;
use super::measure;
use super::pattern_report;
use super::patterns;
use super::pin::{allowed_cpus, pin_to};
use super::report::{self, Machine, Outcome, Row};
use super::transport::{Pattern, Transport};

/// How much longer than planned a measurement may take before its second
/// process is killed (start-up, connecting, ending).
const GRACE: Duration = Duration::from_secs(20);

/// One measurement to make.
#[derive(Debug, Clone, Copy)]
struct Case {
    pattern: Pattern,
    transport: Transport,
    size: usize,
}

impl Case {
    fn label(&self) -> String {
        format!("{} {} {}", self.pattern, self.transport, report::size_label(self.size))
    }
}

/// `shmkit bench`: runs every measurement `args` asks for, each between
/// this process and a second one (this executable, started with
/// [`PEER_SUBCOMMAND`](super::PEER_SUBCOMMAND)), and prints tables, or one
/// JSON object with `--json`.
///
/// A measurement that fails is reported on stderr and the others go on.
///
/// # Errors
/// [`Error::Usage`] if the arguments cannot be used (`--pin` with fewer
/// than two CPUs); [`Error::SomeFailed`] if any measurement failed (the
/// others' results are printed first).
pub fn run(args: Args) -> Result<(), Error> {
    let plan = Plan::from(&args);
    // Before pinning, which narrows what this process may use.
    let machine = Machine::detect();
    let cpus = if plan.pin {
        let cpus = allowed_cpus()?;
        if cpus.len() < 2 {
            return Err(Error::Usage("--pin needs two CPUs to run on".into()));
        }
        pin_to(cpus[0])?;
        Some((cpus[0], cpus[1]))
    } else {
        None
    };
    if machine.cores < 2 && plan.transports.iter().any(|t| t.spins()) {
        eprintln!("shmkit bench: warning: one CPU: spinning transports will wait for the scheduler");
    }

    // Pattern by pattern, size by size: each round of a size measures each
    // of its transports once, so that they take turns.
    let mut cases: Vec<Case> = Vec::new();
    for pattern in [Pattern::PingPong, Pattern::Stream]
        .into_iter()
        .filter(|&p| patterns::wants_channel(&args, p))
    {
        for &size in &plan.sizes {
            for _ in 0..plan.rounds {
                for &transport in plan.transports.iter().filter(|t| t.measures(pattern)) {
                    cases.push(Case {
                        pattern,
                        transport,
                        size,
                    });
                }
            }
        }
    }

    let progress = progress_bar(cases.len() as u64, plan.round + plan.warmup);
    let mut rows: Vec<Row> = Vec::new();
    let mut failed: Vec<(Pattern, Transport, usize)> = Vec::new();
    let mut retried = 0;
    for (n, case) in cases.iter().enumerate() {
        let key = (case.pattern, case.transport, case.size);
        if failed.contains(&key) {
            progress.inc(1);
            continue;
        }
        progress.set_message(case.label());
        // A round that other processes disturbed runs again (a few times).
        let mut attempt = 0;
        let (result, disturbed) = loop {
            let (before, start) = (load::sample(), Instant::now());
            let result = measure_case(&plan, case, &format!("{n}-{attempt}"), cpus.map(|c| c.1));
            let disturbed = load::disturbed(load::others(before, load::sample()), start.elapsed());
            attempt += 1;
            if result.is_err() || !disturbed || attempt == ATTEMPTS {
                break (result, disturbed);
            }
            retried += 1;
        };
        match result {
            Ok(outcome) => match rows.iter_mut().find(|r| (r.pattern, r.transport, r.size) == key) {
                Some(row) => {
                    row.outcome.merge(outcome);
                    row.disturbed += u32::from(disturbed);
                }
                None => rows.push(Row {
                    pattern: case.pattern,
                    transport: case.transport,
                    size: case.size,
                    outcome,
                    disturbed: u32::from(disturbed),
                }),
            },
            Err(e) => {
                failed.push(key);
                rows.retain(|r| (r.pattern, r.transport, r.size) != key);
                progress.suspend(|| eprintln!("shmkit bench: {e}"));
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    // Issue 13's patterns, after the channel's comparison.
    let found = patterns::run(&args, &plan, cpus.map(|c| c.1));

    let out = if plan.json {
        report::json(&machine, &plan, &rows, retried)
    } else {
        report::tables(&machine, &plan, &rows, retried)
    };
    let out = pattern_report::add_to_output(out, plan.json, &rows, &found);
    report::print(&out)?;
    if !failed.is_empty() || found.failed > 0 {
        return Err(Error::SomeFailed {
            failed: failed.len() + found.failed,
            total: failed.len() + rows.len() + found.failed + found.rows.len(),
        });
    }
    Ok(())
}

fn progress_bar(len: u64, per_case: Duration) -> ProgressBar {
    // Only for a person watching a run long enough to wonder; drawn between
    // measurements only (no ticking thread to disturb them).
    let long = per_case.saturating_mul(len as u32) > Duration::from_secs(3);
    if !long || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}, about {eta} left]")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()).with_style(style)
}

/// Runs one measurement, with a second process unless it is `memcpy`.
fn measure_case(plan: &Plan, case: &Case, tag: &str, peer_cpu: Option<usize>) -> Result<Outcome> {
    if case.transport == Transport::Memcpy {
        return Ok(Outcome::Stream(vec![measure::memcpy(
            case.size,
            plan.warmup,
            plan.round,
        )]));
    }
    let base = format!("/shmkit-bench-{}-{tag}", std::process::id());
    let result = measure_with_peer(plan, case, &base, peer_cpu);
    // Both processes are done with them now: normally already gone.
    link::remove_leftovers(case.transport, &base);
    result.map_err(|e| Error::Case {
        case: case.label(),
        source: Box::new(e),
    })
}

fn measure_with_peer(plan: &Plan, case: &Case, base: &str, peer_cpu: Option<usize>) -> Result<Outcome> {
    let peer_plan = PeerPlan {
        transport: case.transport,
        pattern: case.pattern,
        size: case.size,
        name: base.to_string(),
        capacity: link::channel_capacity(case.size),
        // The peer's stream outlasts the leader's warm-up and measurement.
        send_for: plan.warmup + plan.round,
        parent: std::process::id(),
        cpu: peer_cpu,
    };
    let mut wiring = Wiring::prepare(&peer_plan)?;
    let deadline = Instant::now() + plan.warmup + plan.round + GRACE;
    let mut peer = PeerProcess::spawn(&peer_plan, wiring.take_inherit(), deadline)?;
    let mut link = match wiring.connect(&mut peer) {
        Ok(link) => link,
        Err(e) => {
            peer.kill();
            return Err(e);
        }
    };
    let measured = with_link!(&mut link, l => match case.pattern {
        Pattern::PingPong => measure::ping_pong(l, case.size, plan.warmup, plan.round).map(Outcome::PingPong),
        Pattern::Stream => measure::receive_stream(l, case.size, plan.warmup).map(|s| Outcome::Stream(vec![s])),
    });
    match measured {
        Ok(outcome) => {
            drop(link);
            peer.finish()?;
            Ok(outcome)
        }
        Err(e) => {
            // Kill first: a channel is removed by the side that leaves last
            // when the other has died.
            peer.kill();
            drop(link);
            Err(e)
        }
    }
}
