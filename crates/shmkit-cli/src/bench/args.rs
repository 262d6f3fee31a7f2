//! The command lines: `shmkit bench` and the hidden peer's.

use std::time::Duration;

use super::transport::{Pattern, Transport};

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
    /// (about 10 s on two cores).
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
    /// shmkit-sleep, raw-spin, eventfd, pipe, uds, tcp, memcpy.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_transport)]
    pub transports: Vec<Transport>,

    /// How long each measurement lasts after its warm-up, e.g. 2s, 500ms
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
}

/// The arguments of the hidden [`PEER_SUBCOMMAND`](PEER_SUBCOMMAND):
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

/// Parses `4096`, `4K`, `4KiB`, `1M`, `1MiB`, `2G` (powers of 1024).
pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (try 64, 4K, 1M)"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("{s:?} is not a size (try 64, 4K, 1M)")),
    };
    let bytes = n.checked_mul(1 << shift).ok_or_else(|| format!("{s:?} is too large"))?;
    if !(MIN_SIZE..=MAX_SIZE).contains(&bytes) {
        return Err(format!(
            "{s:?}: message sizes go from {MIN_SIZE} bytes (room for a sequence number) to 64M"
        ));
    }
    Ok(bytes)
}

/// Parses `1s`, `1.5s`, `500ms`, `100us`, `2m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 1s, 500ms)"))?;
    let secs = match unit.trim() {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("{s:?} is not a duration (try 1s, 500ms)")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
        return Err(format!("{s:?}: a duration from 1ns to an hour, please"));
    }
    Ok(Duration::from_secs_f64(secs))
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
        assert!(parse_size("4").is_err());
        assert!(parse_size("1T").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("1G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
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
