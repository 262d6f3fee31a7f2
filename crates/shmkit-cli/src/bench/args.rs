//! The command lines: `shmkit bench` and the hidden peer's.

use std::time::Duration;

use super::transport::{Pattern, Transport};
use crate::units;

/// The name of the hidden subcommand that runs the second process: the
/// leader starts `current_exe() PEER_SUBCOMMAND <PeerArgs>`, and the
/// executable hands those arguments to [`run_peer`](super::run_peer).
pub const PEER_SUBCOMMAND: &str = "bench-peer";

/// How many times a round that other processes disturbed is tried.
pub(crate) const ATTEMPTS: u32 = 3;
/// The sizes measured unless `--sizes` says otherwise.
pub(crate) const DEFAULT_SIZES: [usize; 5] = [8, 64, 4 << 10, 64 << 10, 1 << 20];
/// The sizes `--quick` measures.
pub(crate) const QUICK_SIZES: [usize; 2] = [64, 1 << 20];
/// How long each measurement lasts, after its warm-up.
pub(crate) const DEFAULT_DURATION: Duration = Duration::from_secs(1);
/// As [`DEFAULT_DURATION`], with `--quick`.
pub(crate) const QUICK_DURATION: Duration = Duration::from_millis(250);
/// Rounds per case unless `--rounds` says otherwise.
pub(crate) const DEFAULT_ROUNDS: u32 = 3;
/// The longest warm-up; shorter durations get a quarter of themselves.
pub(crate) const MAX_WARMUP: Duration = Duration::from_millis(200);
/// The largest message: the channel's ring must hold a few.
pub(crate) const MAX_SIZE: usize = 64 << 20;
/// The smallest message: room for its sequence number.
pub(crate) const MIN_SIZE: usize = 8;

/// `shmkit bench`: measures shmkit's channel against pipes, Unix sockets,
/// TCP, eventfd wake-ups and the hardware bounds, between two processes.
///
/// Each measurement runs between this process and a second one, the same
/// executable started for it. Spinning transports keep both cores busy
/// while they run; nothing is left running afterwards.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// A short run: sizes 64 and 1M, 250 ms per measurement, every transport
    /// (about 10 s on two cores), the pattern cases at 64 B only (a few
    /// seconds more).
    #[arg(long)]
    pub quick: bool,

    /// Print one JSON object: {"machine": {...}, "results": [...]}.
    #[arg(long)]
    pub json: bool,

    /// Message sizes, comma-separated, in bytes or with K, M, G (powers of
    /// 1024) [default: 8,64,4K,64K,1M; with --quick: 64,1M].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_size)]
    pub sizes: Vec<usize>,

    /// Transports, comma-separated [default: all]: shmkit-spin, shmkit,
    /// shmkit-sleep, raw-spin, eventfd, pipe, uds, tcp, shmkit-async,
    /// shmkit-async-yield, uds-async (both sides tokio), memcpy.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_transport)]
    pub transports: Vec<Transport>,

    /// How long each measurement lasts after its warm-up, e.g. 2s, 500ms, up
    /// to 1h
    /// [default: 1s; with --quick: 250ms].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Measure each case in N rounds of DUR/N, taking turns with the other
    /// transports of its size, so that a machine whose speed drifts affects
    /// them all alike [default: 3; with --quick: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: Option<u32>,

    /// Pin this process to one CPU and the second process to another (the
    /// first two this process may run on).
    #[arg(long)]
    pub pin: bool,

    /// Patterns, comma-separated [default: all; with --quick the pattern
    /// cases are measured at 64 B only, unless --sizes says otherwise]:
    /// pingpong and stream (the channel against the other transports), and
    /// shmkit's patterns: pubsub1, pubsub2 (round trips through a topic
    /// with one or two subscribers), many2 (two senders streaming to one
    /// receiver), reqresp (`Client::call` round trips), latest (writes and
    /// reads per second of a latest value).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = super::patterns::parse_choice)]
    pub patterns: Vec<super::patterns::Choice>,
}

/// The arguments of the hidden [`PEER_SUBCOMMAND`]:
/// what the second process does, set by the first. Not for people.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerArgs {
    /// The transport's name.
    #[arg(long)]
    transport: String,
    /// `pingpong` or `stream`.
    #[arg(long)]
    pattern: String,
    /// The message size in bytes.
    #[arg(long)]
    size: usize,
    /// The base name of the shared-memory objects.
    #[arg(long)]
    name: String,
    /// The channel's capacity in bytes.
    #[arg(long)]
    capacity: u64,
    /// Stream: how long to send, in nanoseconds.
    #[arg(long, default_value_t = 0)]
    send_for_ns: u64,
    /// The first process's pid: the second dies with it.
    #[arg(long)]
    parent: u32,
    /// Pin to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
}

/// The peer's arguments as given: the pattern cases ([`super::patterns`])
/// read their own meaning into them (`--pattern` names a case and a role).
#[derive(Debug, Clone)]
pub(crate) struct RawPeer {
    pub transport: String,
    pub pattern: String,
    pub size: usize,
    pub name: String,
    pub capacity: u64,
    pub send_for: Duration,
    pub parent: u32,
    pub cpu: Option<usize>,
}

impl PeerArgs {
    /// The arguments as given.
    pub(crate) fn raw(&self) -> RawPeer {
        RawPeer {
            transport: self.transport.clone(),
            pattern: self.pattern.clone(),
            size: self.size,
            name: self.name.clone(),
            capacity: self.capacity,
            send_for: Duration::from_nanos(self.send_for_ns),
            parent: self.parent,
            cpu: self.cpu,
        }
    }
}

/// What a peer must do, decoded.
#[derive(Debug, Clone)]
pub(crate) struct PeerPlan {
    pub transport: Transport,
    pub pattern: Pattern,
    pub size: usize,
    pub name: String,
    pub capacity: u64,
    pub send_for: Duration,
    pub parent: u32,
    pub cpu: Option<usize>,
}

impl PeerPlan {
    /// The command-line arguments that say this plan, after the subcommand.
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "--transport".into(),
            self.transport.name().into(),
            "--pattern".into(),
            self.pattern.name().into(),
            "--size".into(),
            self.size.to_string(),
            "--name".into(),
            self.name.clone(),
            "--capacity".into(),
            self.capacity.to_string(),
            "--send-for-ns".into(),
            self.send_for.as_nanos().min(u128::from(u64::MAX)).to_string(),
            "--parent".into(),
            self.parent.to_string(),
        ];
        if let Some(cpu) = self.cpu {
            v.push("--cpu".into());
            v.push(cpu.to_string());
        }
        v
    }
}

impl TryFrom<PeerArgs> for PeerPlan {
    type Error = super::Error;
    fn try_from(a: PeerArgs) -> Result<PeerPlan, super::Error> {
        let bad = |what: &str| super::Error::Usage(format!("{}: invalid {what}", PEER_SUBCOMMAND));
        Ok(PeerPlan {
            transport: Transport::from_name(&a.transport).ok_or_else(|| bad("transport"))?,
            pattern: Pattern::from_name(&a.pattern).ok_or_else(|| bad("pattern"))?,
            size: a.size,
            name: a.name,
            capacity: a.capacity,
            send_for: Duration::from_nanos(a.send_for_ns),
            parent: a.parent,
            cpu: a.cpu,
        })
    }
}

/// Parses a message size: a size in the CLI's one grammar
/// ([`units::parse_size`]), from [`MIN_SIZE`] to [`MAX_SIZE`].
pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    match units::parse_size(s)? {
        n if (MIN_SIZE as u64..=MAX_SIZE as u64).contains(&n) => Ok(n as usize),
        _ => Err(format!(
            "{s:?}: message sizes go from {MIN_SIZE} bytes (room for a sequence number) to 64M"
        )),
    }
}

/// Parses how long a measurement lasts: a duration in the CLI's one
/// grammar ([`units::parse_duration`]), from 1ns to an hour.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    match units::parse_duration(s)? {
        d if !d.is_zero() && d <= Duration::from_secs(3600) => Ok(d),
        _ => Err(format!("{s:?}: a measurement lasts from 1ns to an hour")),
    }
}

fn parse_transport(s: &str) -> Result<Transport, String> {
    Transport::from_name(s.trim()).ok_or_else(|| {
        let names: Vec<_> = Transport::ALL.iter().map(|t| t.name()).collect();
        format!("unknown transport {s:?}: one of {}", names.join(", "))
    })
}

/// The whole run, decoded from [`Args`].
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub sizes: Vec<usize>,
    pub transports: Vec<Transport>,
    /// Measuring time per case, all rounds together.
    pub duration: Duration,
    pub rounds: u32,
    /// Measuring time per round.
    pub round: Duration,
    /// Warm-up per round.
    pub warmup: Duration,
    pub json: bool,
    pub pin: bool,
    pub quick: bool,
}

impl From<&Args> for Plan {
    fn from(a: &Args) -> Plan {
        let mut sizes = if !a.sizes.is_empty() {
            a.sizes.clone()
        } else if a.quick {
            QUICK_SIZES.to_vec()
        } else {
            DEFAULT_SIZES.to_vec()
        };
        sizes.dedup();
        let transports = if a.transports.is_empty() {
            Transport::ALL.to_vec()
        } else {
            // in the output's order, once each
            Transport::ALL
                .into_iter()
                .filter(|t| a.transports.contains(t))
                .collect()
        };
        let duration = a
            .duration
            .unwrap_or(if a.quick { QUICK_DURATION } else { DEFAULT_DURATION });
        let rounds = a.rounds.unwrap_or(if a.quick { 1 } else { DEFAULT_ROUNDS });
        let round = duration / rounds;
        Plan {
            sizes,
            transports,
            duration,
            rounds,
            round,
            warmup: (round / 4).min(MAX_WARMUP),
            json: a.json,
            pin: a.pin,
            quick: a.quick,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8"), Ok(8));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1mib"), Ok(1 << 20));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert!(parse_size("4").is_err());
        assert!(parse_size("65M").is_err());
        assert!(parse_size("4KB").unwrap_err().contains("write 4K or 4KiB"));
        assert!(parse_size("1T").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("1G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("1.5").is_err());
        assert!(parse_duration("61m").is_err());
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn peer_args_round_trip() {
        use clap::Parser;
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            a: PeerArgs,
        }
        let plan = PeerPlan {
            transport: Transport::RawSpin,
            pattern: Pattern::Stream,
            size: 64,
            name: "/x".into(),
            capacity: 1 << 20,
            send_for: Duration::from_millis(3),
            parent: 42,
            cpu: Some(1),
        };
        let mut argv = vec!["peer".to_string()];
        argv.extend(plan.to_args());
        let back = PeerPlan::try_from(P::parse_from(argv).a).unwrap();
        assert_eq!(back.transport, Transport::RawSpin);
        assert_eq!(back.pattern, Pattern::Stream);
        assert_eq!(back.send_for, Duration::from_millis(3));
        assert_eq!(back.cpu, Some(1));
    }
}
