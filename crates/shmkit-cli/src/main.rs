//! `shmkit`: create, inspect and remove POSIX and System V shared memory.
//!
//! This file parses the command line, dispatches to `cmd/<subcommand>.rs`
//! and turns errors into one line on standard error and an exit code.

#![forbid(unsafe_code)]

#[cfg(feature = "bench")]
mod bench;
mod channel_args;
mod cmd;
mod exit;
mod pattern_view;
mod progress;
mod reported;
mod segment;
// Wired into send and recv with the channel rewrite; until then only its
// tests use it.
#[cfg_attr(not(test), allow(dead_code))]
mod signals;
mod table;
mod target;
mod time;
mod units;
mod view;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

const AFTER_HELP: &str = "\
Targets:
  /name           a POSIX object (a file in /dev/shm)
  key:0x1234      a System V segment by key (or key:4660)
  id:7            a System V segment by id, as ipcs -m shows it

Examples:
  shmkit demo                                       the classic writer/reader demos
  shmkit write /shared --create --size 4K \"hello\"   create and write a C string
  shmkit read /shared --unlink                      print it, then remove it
  shmkit create --sysv --key 0x1234 --size 1M       a System V segment
  shmkit ls                                         both kinds, with the processes using them
  shmkit stat /shared --json                        everything known about one segment
  shmkit rm --stale --dry-run                       what no process uses any more
  shmkit limits; shmkit doctor                      the kernel's limits; what breaks shared memory
  shmkit bench --quick                              shmkit vs pipes, sockets, eventfd, raw bounds
  tar c dir | shmkit send /x    and elsewhere    shmkit recv /x | tar x
  tail -f log | shmkit pub /log; shmkit sub /log    a topic: every subscriber gets every line
  shmkit put /mode auto; shmkit get /mode           a latest value, kept; get --wait: the next
  shmkit serve /up -- tr a-z A-Z; shmkit call /up hi   a service answered by a command
  shmkit completions bash; shmkit man > shmkit.1    shell completions; the manual page

Exit status:
  0 success, 1 other error, 2 usage, 3 not found, 4 already exists,
  5 permission denied, 6 no space or too large, 7 corrupt, unreadable or shrunk data,
  8 the other side of a channel died, 9 timed out,
  129, 130, 143 ended by SIGHUP, SIGINT (Ctrl-C), SIGTERM";

/// Shared memory for people: POSIX and System V, in one tool.
#[derive(Debug, Parser)]
#[command(name = "shmkit", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a POSIX object or a System V segment.
    Create(cmd::create::Args),
    /// Write text, a file or standard input into a segment.
    Write(cmd::write::Args),
    /// Print a segment's bytes (a C string by default).
    Read(cmd::read::Args),
    /// Send standard input (or a file) through a channel.
    Send(cmd::send::Args),
    /// Receive a channel's stream to standard output (or a file).
    Recv(cmd::recv::Args),
    /// Publish each line of standard input to a topic's subscribers.
    #[command(name = "pub")]
    Pub(cmd::publish::Args),
    /// Print each message a topic's publisher publishes.
    #[command(name = "sub")]
    Sub(cmd::subscribe::Args),
    /// Write a latest value (text, or standard input), kept for `get`.
    Put(cmd::put::Args),
    /// Print a latest value, or wait for the next one.
    Get(cmd::get::Args),
    /// Answer a service's requests by running a command for each.
    Serve(cmd::serve::Args),
    /// Send one request to a service and print its response.
    Call(cmd::call::Args),
    /// Show everything known about one segment, and who uses it.
    Stat(cmd::stat::Args),
    /// List the segments of both kinds, with the processes that use them.
    Ls(cmd::ls::Args),
    /// Remove segments, or every one that no process uses (--stale).
    Rm(cmd::rm::Args),
    /// Print the System V key that ftok(PATH, ID) gives.
    Ftok(cmd::ftok::Args),
    /// Show the kernel's limits on shared memory and how much is used.
    Limits(cmd::limits::Args),
    /// Check this machine for what breaks shared memory, and say what to do.
    Doctor(cmd::doctor::Args),
    /// Measure shmkit against pipes, sockets, eventfd and the hardware bounds.
    #[cfg(feature = "bench")]
    Bench(bench::Args),
    /// The second process of `shmkit bench`.
    #[cfg(feature = "bench")]
    #[command(name = bench::PEER_SUBCOMMAND, hide = true)]
    BenchPeer(bench::PeerArgs),
    /// Run the classic demos: a writer process and a reader process, for
    /// POSIX and for System V shared memory.
    Demo(cmd::demo::Args),
    /// Print a shell's completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::Args),
    /// Print the manual page, shmkit(1), in roff.
    Man(cmd::man::Args),
    /// One side of a demo, run by `shmkit demo` in a process of its own.
    #[command(hide = true, name = "demo-step")]
    DemoStep(cmd::demo::StepArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Create(args) => cmd::create::run(args),
        Command::Write(args) => cmd::write::run(args),
        Command::Read(args) => cmd::read::run(args),
        Command::Stat(args) => cmd::stat::run(args),
        Command::Ls(args) => cmd::ls::run(args),
        Command::Rm(args) => cmd::rm::run(args),
        Command::Ftok(args) => cmd::ftok::run(args),
        Command::Limits(args) => cmd::limits::run(args),
        Command::Doctor(args) => cmd::doctor::run(args),
        Command::Send(args) => cmd::send::run(args),
        Command::Recv(args) => cmd::recv::run(args),
        Command::Pub(args) => cmd::publish::run(args),
        Command::Sub(args) => cmd::subscribe::run(args),
        Command::Put(args) => cmd::put::run(args),
        Command::Get(args) => cmd::get::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Call(args) => cmd::call::run(args),
        #[cfg(feature = "bench")]
        Command::Bench(args) => bench::run(args).map_err(exit::Failure::from),
        #[cfg(feature = "bench")]
        Command::BenchPeer(args) => bench::run_peer(args).map_err(exit::Failure::from),
        Command::Demo(args) => cmd::demo::run(args),
        Command::DemoStep(args) => cmd::demo::run_step(args),
        Command::Completions(args) => cmd::completions::run(args, Cli::command()),
        Command::Man(args) => cmd::man::run(args, Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report(),
    }
}
