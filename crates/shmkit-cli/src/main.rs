//! `shmkit`: create, inspect and remove POSIX and System V shared memory.
//!
//! This file parses the command line, dispatches to `cmd/<subcommand>.rs`
//! and turns errors into one line on standard error and an exit code.

mod cmd;
mod exit;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Examples:
  shmkit demo                  run the classic writer/reader demos, POSIX and System V

Exit status:
  0 success, 1 other error, 2 usage, 3 not found, 4 already exists,
  5 permission denied, 6 no space or too large, 7 corrupt or unreadable data";

/// Shared memory for people: POSIX and System V, in one tool.
#[derive(Debug, Parser)]
#[command(name = "shmkit", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the classic demos: a writer process and a reader process, for
    /// POSIX and for System V shared memory.
    Demo(cmd::demo::Args),
    /// One side of a demo, run by `shmkit demo` in a process of its own.
    #[command(hide = true, name = "demo-step")]
    DemoStep(cmd::demo::StepArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::DemoStep(args) => cmd::demo::run_step(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report(),
    }
}
