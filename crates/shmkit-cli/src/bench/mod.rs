//! `shmkit bench`: shmkit's channel measured side by side with pipes,
//! sockets, eventfd wake-ups and the hardware's bounds, between two real
//! processes, in one run.
//!
//! The first process (the *leader*, which [`run`] runs) starts the second
//! (the *peer*) as the same executable with the hidden subcommand
//! [`PEER_SUBCOMMAND`] followed by [`PeerArgs`], which the executable hands to
//! [`run_peer`]. For each message size and each transport it measures:
//!
//! - **ping-pong**: the leader sends a message, the peer answers with the
//!   same bytes; the leader times every round trip and keeps a histogram
//!   (p50, p99, p99.9, max) after a warm-up;
//! - **stream**: the peer sends as fast as it can, the leader receives,
//!   checks every message's sequence number and counts messages and bytes
//!   per second after a warm-up.
//!
//! Clocks are read inside the processes, never around them. Every message
//! goes from a private buffer of one process into a private buffer of the
//! other, whatever the transport, and carries its sequence number in its
//! first and last eight bytes, which the receiver checks.
//!
//! Then the patterns of issue 13 (publish/subscribe, many-to-one,
//! request/response, latest value), with as many second processes as each
//! needs: see `patterns.rs` for what each measures and how it waits.
//!
//! Transports (see [`Transport`](transport::Transport)): `shmkit-spin`, `shmkit`, `shmkit-sleep`,
//! `raw-spin`, `eventfd`, `pipe`, `uds`, `tcp`, `shmkit-async`,
//! `shmkit-async-yield` and `uds-async` (both sides tokio, on
//! current-thread runtimes), and for streams `memcpy`.
//!
//! Nothing is left behind: the peer dies with the leader (a parent-death
//! signal), a watchdog thread kills it if a measurement overruns, the
//! leader kills it on any error, and every shared-memory object is removed
//! by name once both processes are done with it, on error too.
//!
//! `main.rs` wires [`run`] to `shmkit bench` and [`run_peer`] to the hidden
//! [`PEER_SUBCOMMAND`]. All of it is behind the `bench` cargo feature (on by
//! default).
//!
//! Modules, each using only those listed before it: `transport` and
//! `error` (leaves), `args` (the command lines and the plan), `pin` (CPU
//! affinity), `child` (the second process as the leader starts, watches and
//! ends it), `link` (the transports' two ends), `measure`, `load`,
//! `report`, and at the top the two mains, `leader` and `peer`.

mod args;
mod child;
mod error;
mod leader;
mod link;
mod load;
mod measure;
mod pattern_cases;
mod pattern_report;
mod patterns;
mod peer;
mod pin;
mod report;
mod transport;

pub use args::{Args, PeerArgs, PEER_SUBCOMMAND};
pub use error::Error;
pub use leader::run;
pub use peer::run_peer;
