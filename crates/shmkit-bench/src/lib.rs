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
//! Transports (see [`Transport`]): `shmkit-spin`, `shmkit`, `shmkit-sleep`,
//! `raw-spin`, `eventfd`, `pipe`, `uds`, `tcp`, and for streams `memcpy`.
//!
//! Nothing is left behind: the peer dies with the leader (a parent-death
//! signal), a watchdog thread kills it if a measurement overruns, the
//! leader kills it on any error, and every shared-memory object is removed
//! by name once both processes are done with it, on error too.
//!
//! # Wiring it into a binary
//!
//! ```no_run
//! use clap::{Parser, Subcommand};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     cmd: Cmd,
//! }
//!
//! #[derive(Subcommand)]
//! enum Cmd {
//!     /// Measure shmkit against pipes, sockets and the hardware bounds.
//!     Bench(shmkit_bench::Args),
//!     #[command(name = shmkit_bench::PEER_SUBCOMMAND, hide = true)]
//!     BenchPeer(shmkit_bench::PeerArgs),
//! }
//!
//! fn main() -> Result<(), shmkit_bench::Error> {
//!     match Cli::parse().cmd {
//!         Cmd::Bench(args) => shmkit_bench::run(args),
//!         Cmd::BenchPeer(args) => shmkit_bench::run_peer(args),
//!     }
//! }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod error;
mod leader;
mod link;
mod load;
mod measure;
mod peer;
mod report;
mod transport;

pub use args::{Args, PeerArgs};
pub use error::Error;
pub use leader::run;
pub use peer::run_peer;
pub use transport::{Pattern, Transport};

/// The name of the hidden subcommand that runs the second process: the
/// leader starts `current_exe() PEER_SUBCOMMAND <PeerArgs>`, and the
/// executable must hand those arguments to [`run_peer`].
pub const PEER_SUBCOMMAND: &str = "bench-peer";
