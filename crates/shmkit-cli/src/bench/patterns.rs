//! The patterns of issue 13 in `shmkit bench`: publish/subscribe, many
//! senders to one receiver, request/response and latest values, measured
//! between real processes by the same harness as the channel, reported with
//! the same JSON fields and a `pattern` value for each:
//!
//! - `pubsub1`: round trips through topics: the leader publishes a message
//!   on a topic, the peer (its one subscriber) publishes the same bytes back
//!   on a second topic, to which the leader subscribes. As the channel's
//!   ping-pong, with a topic each way.
//! - `pubsub2`: the same with two subscribers (two peers): the leader's one
//!   message goes to both (one copy in the ring), each answers on a topic of
//!   its own, and a round trip ends when the leader has both answers.
//! - `many2`: two peers (two senders, each its own seat and ring) stream
//!   numbered messages to the leader (the receiver) as fast as they can;
//!   messages per second at the receiver, both senders together, from the
//!   end of the warm-up to the first sender's end.
//! - `reqresp`: round trips of [`Client::call`](shmkit::service::Client::call):
//!   the leader is the client, the peer the server, which answers each
//!   request with its bytes.
//! - `latest` (two rows, `latest-write` and `latest-read`): the peer writes
//!   a latest value of the message size back to back, the leader reads it
//!   back to back; writes per second (the versions published while the
//!   leader counted) and reads per second (every whole value read).
//!
//! # How each case waits
//!
//! The machine this is written for has two cores: more processes spinning
//! than cores would measure the scheduler. So:
//! - two-process round trips (`pubsub1`, `reqresp`) are measured with
//!   `shmkit-spin` (the waiting side only spins, as the channel's
//!   `shmkit-spin` ping-pong) and with `shmkit` (the library's default:
//!   spin 20 µs, then sleep on a futex);
//! - three-process cases (`pubsub2`, `many2`) only with `shmkit` (spin,
//!   then sleep);
//! - `latest` never waits: the writer never does by design, and the reader
//!   reads in a loop, so both processes keep their core busy; it is labelled
//!   `shmkit`.
//!
//! With `--pin`, the leader is pinned to one CPU and the peer of a
//! two-process case to the other; the two peers of a three-process case are
//! left to the scheduler.

use std::fmt;
use std::time::{Duration, Instant};

use super::args::{Args, Plan, RawPeer, ATTEMPTS};
use super::child::{Inherit, PeerProcess};
use super::error::{Error, Result};
use super::load;
use super::pattern_cases::{self, Setup};
use super::report::{self, Outcome};
use super::transport::{Pattern, Transport};

/// How much longer than planned a case may take before its peers are
/// killed (start-up, connecting, ending).
const GRACE: Duration = Duration::from_secs(20);

/// The size a pattern case is measured at with `--quick` (unless `--sizes`
/// says otherwise): `--quick` gains a few seconds, no more.
const QUICK_SIZE: usize = 64;

/// A pattern case of issue 13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Case {
    /// Round trips through topics, one subscriber.
    PubSub1,
    /// Round trips through topics, two subscribers.
    PubSub2,
    /// Two senders streaming to one receiver.
    Many2,
    /// Request/response round trips.
    ReqResp,
    /// Latest-value writes and reads per second.
    Latest,
}

impl Case {
    /// Every case, in the order of the output.
    pub const ALL: [Case; 5] = [Case::PubSub1, Case::PubSub2, Case::Many2, Case::ReqResp, Case::Latest];

    /// The name on the command line (`--patterns`).
    pub fn name(self) -> &'static str {
        match self {
            Case::PubSub1 => "pubsub1",
            Case::PubSub2 => "pubsub2",
            Case::Many2 => "many2",
            Case::ReqResp => "reqresp",
            Case::Latest => "latest",
        }
    }

    /// The case called `name`.
    pub fn from_name(name: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == name)
    }

    /// How many second processes it takes.
    pub(crate) fn peers(self) -> usize {
        match self {
            Case::PubSub2 | Case::Many2 => 2,
            _ => 1,
        }
    }

    /// The waiting modes it is measured with (see the module docs).
    pub(crate) fn transports(self) -> &'static [Transport] {
        match self {
            Case::PubSub1 | Case::ReqResp => &[Transport::ShmkitSpin, Transport::Shmkit],
            Case::PubSub2 | Case::Many2 | Case::Latest => &[Transport::Shmkit],
        }
    }

    /// How the case waits, for the tables.
    pub(crate) fn waits(self) -> &'static str {
        match self {
            Case::PubSub1 | Case::ReqResp => "2 processes; shmkit-spin: spin only; shmkit: spin 20 µs, then sleep",
            Case::PubSub2 | Case::Many2 => "3 processes; spin 20 µs, then sleep on a futex",
            Case::Latest => "2 processes; never waits: writes and reads back to back",
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One value of `--patterns`: a pattern of the channel's comparison, or a
/// pattern case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// `pingpong` or `stream`: the channel against the other transports.
    Channel(Pattern),
    /// A pattern case of issue 13.
    Case(Case),
}

/// Parses one value of `--patterns`.
pub(crate) fn parse_choice(s: &str) -> std::result::Result<Choice, String> {
    let s = s.trim();
    if let Some(p) = Pattern::from_name(s) {
        return Ok(Choice::Channel(p));
    }
    Case::from_name(s).map(Choice::Case).ok_or_else(|| {
        let names: Vec<&str> = ["pingpong", "stream"]
            .into_iter()
            .chain(Case::ALL.iter().map(|c| c.name()))
            .collect();
        format!("unknown pattern {s:?}: one of {}", names.join(", "))
    })
}

/// Whether `args` asks for the channel's `pattern` (all do by default).
pub(crate) fn wants_channel(args: &Args, pattern: Pattern) -> bool {
    args.patterns.is_empty() || args.patterns.contains(&Choice::Channel(pattern))
}

fn wants_case(args: &Args, case: Case) -> bool {
    args.patterns.is_empty() || args.patterns.contains(&Choice::Case(case))
}

/// One measured row of a pattern case.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The `pattern` value: the case's name, or `latest-write` and
    /// `latest-read`.
    pub pattern: &'static str,
    pub case: Case,
    pub transport: Transport,
    pub size: usize,
    pub outcome: Outcome,
    /// Rounds that other processes disturbed even when run again.
    pub disturbed: u32,
}

/// What the pattern cases found: their rows, and how many cases failed
/// (their errors were printed on stderr).
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub rows: Vec<Row>,
    pub failed: usize,
    pub retried: u32,
}

/// Runs every pattern case `args` asks for, after the channel's
/// measurements, size by size, each round of a size taking turns.
pub(crate) fn run(args: &Args, plan: &Plan, peer_cpu: Option<usize>) -> Found {
    let sizes: Vec<usize> = if args.sizes.is_empty() && plan.quick {
        vec![QUICK_SIZE]
    } else {
        plan.sizes.clone()
    };
    let mut cases: Vec<(Case, Transport, usize)> = Vec::new();
    for case in Case::ALL.into_iter().filter(|&c| wants_case(args, c)) {
        for &size in &sizes {
            for _ in 0..plan.rounds {
                for &t in case.transports().iter().filter(|t| plan.transports.contains(t)) {
                    cases.push((case, t, size));
                }
            }
        }
    }
    let mut found = Found::default();
    let mut failed: Vec<(Case, Transport, usize)> = Vec::new();
    for (n, &(case, transport, size)) in cases.iter().enumerate() {
        let key = (case, transport, size);
        if failed.contains(&key) {
            continue;
        }
        let label = format!("{case} {transport} {}", report::size_label(size));
        let mut attempt = 0;
        let (result, disturbed) = loop {
            let (before, start) = (load::sample(), Instant::now());
            let tag = format!("p{n}-{attempt}");
            let cpu = if case.peers() == 1 { peer_cpu } else { None };
            let result = measure(plan, case, transport, size, &tag, cpu);
            let disturbed = load::disturbed(load::others(before, load::sample()), start.elapsed());
            attempt += 1;
            if result.is_err() || !disturbed || attempt == ATTEMPTS {
                break (result, disturbed);
            }
            found.retried += 1;
        };
        match result {
            Ok(outcomes) => {
                for (pattern, outcome) in outcomes {
                    let same = |r: &&mut Row| r.pattern == pattern && r.transport == transport && r.size == size;
                    match found.rows.iter_mut().find(same) {
                        Some(row) => {
                            row.outcome.merge(outcome);
                            row.disturbed += u32::from(disturbed);
                        }
                        None => found.rows.push(Row {
                            pattern,
                            case,
                            transport,
                            size,
                            outcome,
                            disturbed: u32::from(disturbed),
                        }),
                    }
                }
            }
            Err(e) => {
                failed.push(key);
                found.rows.retain(|r| (r.case, r.transport, r.size) != key);
                eprintln!("shmkit bench: {label}: {e}");
            }
        }
    }
    found.failed = failed.len();
    found
}

/// Runs one round of a case: starts its peers, leads, checks they
/// finished, and removes whatever objects are left.
fn measure(
    plan: &Plan,
    case: Case,
    transport: Transport,
    size: usize,
    tag: &str,
    peer_cpu: Option<usize>,
) -> Result<Vec<(&'static str, Outcome)>> {
    let setup = Setup {
        transport,
        size,
        base: format!("/shmkit-bench-{}-{tag}", std::process::id()),
        capacity: pattern_cases::capacity(size),
        warmup: plan.warmup,
        round: plan.round,
        send_for: plan.warmup + plan.round,
    };
    let result = with_peers(case, &setup, peer_cpu);
    // Everybody is done with them now: normally already gone.
    pattern_cases::remove_leftovers(&setup.base);
    result
}

fn with_peers(case: Case, setup: &Setup, peer_cpu: Option<usize>) -> Result<Vec<(&'static str, Outcome)>> {
    let deadline = Instant::now() + setup.send_for + GRACE;
    let mut peers: Vec<PeerProcess> = Vec::new();
    for role in 0..case.peers() {
        let inherit = Inherit {
            stdin: std::process::Stdio::null(),
            stdout: std::process::Stdio::null(),
            poke: None,
        };
        // On an error the peers started so far drop: killed and reaped.
        peers.push(PeerProcess::spawn_args(
            peer_args(case, role, setup, peer_cpu),
            inherit,
            deadline,
        )?);
    }
    match pattern_cases::lead(case, setup, &peers) {
        Ok(outcomes) => {
            for peer in peers {
                peer.finish()?;
            }
            Ok(outcomes)
        }
        Err(e) => {
            for peer in peers {
                peer.kill();
            }
            Err(e)
        }
    }
}

/// The peer's command line after the subcommand: the channel's peer
/// arguments, with `--pattern CASE:ROLE`.
fn peer_args(case: Case, role: usize, setup: &Setup, cpu: Option<usize>) -> Vec<String> {
    let mut v = vec![
        "--transport".into(),
        setup.transport.name().into(),
        "--pattern".into(),
        format!("{}:{role}", case.name()),
        "--size".into(),
        setup.size.to_string(),
        "--name".into(),
        setup.base.clone(),
        "--capacity".into(),
        setup.capacity.to_string(),
        "--send-for-ns".into(),
        setup.send_for.as_nanos().min(u128::from(u64::MAX)).to_string(),
        "--parent".into(),
        std::process::id().to_string(),
    ];
    if let Some(cpu) = cpu {
        v.push("--cpu".into());
        v.push(cpu.to_string());
    }
    v
}

/// The second process of a pattern case, if `raw` names one (`--pattern
/// CASE:ROLE`); `None` for the channel's peers.
pub(crate) fn run_peer(raw: &RawPeer) -> Option<Result<()>> {
    let (case, role) = raw.pattern.split_once(':')?;
    let case = Case::from_name(case)?;
    Some(follow(case, role, raw))
}

fn follow(case: Case, role: &str, raw: &RawPeer) -> Result<()> {
    let bad = |what: &str| Error::Usage(format!("{}: invalid {what}", super::PEER_SUBCOMMAND));
    let role: usize = role.parse().map_err(|_| bad("role"))?;
    if role >= case.peers() {
        return Err(bad("role"));
    }
    let transport = Transport::from_name(&raw.transport).ok_or_else(|| bad("transport"))?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| Error::io("PR_SET_PDEATHSIG", e))?;
    // The leader may have died before that took effect.
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(raw.parent) {
        return Err(Error::Peer("lost its first process".into()));
    }
    if let Some(cpu) = raw.cpu {
        super::pin::pin_to(cpu)?;
    }
    let setup = Setup {
        transport,
        size: raw.size,
        base: raw.name.clone(),
        capacity: raw.capacity,
        warmup: Duration::ZERO,
        round: Duration::ZERO,
        send_for: raw.send_for,
    };
    pattern_cases::follow(case, role, &setup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices() {
        assert_eq!(parse_choice("pingpong"), Ok(Choice::Channel(Pattern::PingPong)));
        assert_eq!(parse_choice(" many2"), Ok(Choice::Case(Case::Many2)));
        for c in Case::ALL {
            assert_eq!(parse_choice(c.name()), Ok(Choice::Case(c)));
            assert!(!c.transports().is_empty());
        }
        assert!(parse_choice("pubsub3").unwrap_err().contains("reqresp"));
    }

    #[test]
    fn peer_roles() {
        let setup = Setup {
            transport: Transport::Shmkit,
            size: 64,
            base: "/x".into(),
            capacity: 1 << 16,
            warmup: Duration::ZERO,
            round: Duration::ZERO,
            send_for: Duration::from_millis(1),
        };
        let args = peer_args(Case::PubSub2, 1, &setup, None);
        let at = args.iter().position(|a| a == "--pattern").unwrap();
        assert_eq!(args[at + 1], "pubsub2:1");
        let raw = RawPeer {
            transport: "shmkit".into(),
            pattern: "stream".into(),
            size: 64,
            name: "/x".into(),
            capacity: 1 << 16,
            send_for: Duration::ZERO,
            parent: 1,
            cpu: None,
        };
        assert!(run_peer(&raw).is_none(), "a channel peer is not a pattern case's");
        let raw = RawPeer {
            pattern: "reqresp:1".into(),
            ..raw
        };
        assert!(
            matches!(run_peer(&raw), Some(Err(Error::Usage(_)))),
            "reqresp has one peer"
        );
    }
}
