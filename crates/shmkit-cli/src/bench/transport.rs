//! What is measured: transports and patterns.

use std::fmt;

/// A way to move messages between the two processes (or, for `memcpy`,
/// within one), named in the output exactly as [`Transport::name`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// `shmkit-spin`: a shmkit channel whose waiting side only spins
    /// (`Options::spin(Duration::MAX)`): least latency, a busy core per
    /// waiting side.
    ShmkitSpin,
    /// `shmkit`: a shmkit channel as users get it by default: spins briefly,
    /// then sleeps on a futex.
    Shmkit,
    /// `shmkit-sleep`: a shmkit channel that sleeps at once
    /// (`Options::spin(Duration::ZERO)`): every message wakes a sleeping
    /// side, the case to compare with `eventfd` (ping-pong only).
    ShmkitSleep,
    /// `raw-spin`: the practical lower bound: the bytes copied into a
    /// shared page and one atomic word bounced between the processes,
    /// nothing else (ping-pong only).
    RawSpin,
    /// `eventfd`: the wake-up bound: as `raw-spin`, but each side sleeps in
    /// `read(2)` on an eventfd and is woken by the other's `write(2)`, once
    /// per message (ping-pong only).
    Eventfd,
    /// `pipe`: two pipes.
    Pipe,
    /// `uds`: a Unix stream socket pair.
    Uds,
    /// `tcp`: a TCP connection over loopback (127.0.0.1), `TCP_NODELAY`.
    Tcp,
    /// `shmkit-async`: a shmkit channel through `shmkit::tokio` on both
    /// sides, each on a current-thread runtime, waiting as the blocking
    /// `shmkit` does: spin up to `DEFAULT_SPIN` (20 µs), then yield to the
    /// runtime (`set_spin`).
    ShmkitAsync,
    /// `shmkit-async-yield`: as `shmkit-async` with `shmkit::tokio`'s
    /// default: no spinning, every wait yields to the runtime at once (and
    /// so costs the other side a ring of its bell and this one a wake-up).
    ShmkitAsyncYield,
    /// `uds-async`: a Unix stream socket pair through tokio's `UnixStream`
    /// on both sides, each on a current-thread runtime.
    UdsAsync,
    /// `memcpy`: one thread copying between two buffers of the message
    /// size: the bandwidth bound (stream only).
    Memcpy,
}

impl Transport {
    /// Every transport, in the order of the output.
    pub const ALL: [Transport; 12] = [
        Transport::ShmkitSpin,
        Transport::Shmkit,
        Transport::ShmkitSleep,
        Transport::RawSpin,
        Transport::Eventfd,
        Transport::Pipe,
        Transport::Uds,
        Transport::Tcp,
        Transport::ShmkitAsync,
        Transport::ShmkitAsyncYield,
        Transport::UdsAsync,
        Transport::Memcpy,
    ];

    /// The name in the output and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Transport::ShmkitSpin => "shmkit-spin",
            Transport::Shmkit => "shmkit",
            Transport::ShmkitSleep => "shmkit-sleep",
            Transport::RawSpin => "raw-spin",
            Transport::Eventfd => "eventfd",
            Transport::Pipe => "pipe",
            Transport::Uds => "uds",
            Transport::Tcp => "tcp",
            Transport::ShmkitAsync => "shmkit-async",
            Transport::ShmkitAsyncYield => "shmkit-async-yield",
            Transport::UdsAsync => "uds-async",
            Transport::Memcpy => "memcpy",
        }
    }

    /// The transport called `name`.
    pub fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether this transport is measured in `pattern`.
    pub fn measures(self, pattern: Pattern) -> bool {
        match self {
            Transport::ShmkitSleep | Transport::RawSpin | Transport::Eventfd => pattern == Pattern::PingPong,
            Transport::Memcpy => pattern == Pattern::Stream,
            _ => true,
        }
    }

    /// Whether a waiting side of this transport keeps a core busy.
    pub(crate) fn spins(self) -> bool {
        matches!(self, Transport::ShmkitSpin | Transport::RawSpin)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How messages flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// One side sends, the other answers with a message of the same size:
    /// round-trip times.
    PingPong,
    /// One side sends as fast as it can, the other receives and checks:
    /// messages and bytes per second.
    Stream,
}

impl Pattern {
    /// The name in the output (`"pingpong"`, `"stream"`).
    pub fn name(self) -> &'static str {
        match self {
            Pattern::PingPong => "pingpong",
            Pattern::Stream => "stream",
        }
    }

    /// The pattern called `name`.
    pub fn from_name(name: &str) -> Option<Pattern> {
        match name {
            "pingpong" => Some(Pattern::PingPong),
            "stream" => Some(Pattern::Stream),
            _ => None,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
