//! `shmkit bench` as an example binary, for working on the benchmark
//! without the CLI:
//!
//! ```text
//! cargo run -p shmkit-bench --release --example bench -- --quick --json
//! ```
//!
//! It is also its own second process: `bench bench-peer …`.

use clap::Parser;

/// Measure shmkit against pipes, sockets, eventfd and the hardware bounds.
#[derive(Parser)]
#[command(name = "bench")]
struct Bench {
    #[command(flatten)]
    args: shmkit_bench::Args,
}

/// The second process.
#[derive(Parser)]
#[command(name = shmkit_bench::PEER_SUBCOMMAND)]
struct Peer {
    #[command(flatten)]
    args: shmkit_bench::PeerArgs,
}

fn main() -> std::process::ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let result = if argv.get(1).is_some_and(|a| a == shmkit_bench::PEER_SUBCOMMAND) {
        shmkit_bench::run_peer(Peer::parse_from(&argv[1..]).args)
    } else {
        shmkit_bench::run(Bench::parse_from(&argv).args)
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
