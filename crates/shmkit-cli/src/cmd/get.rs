//! `shmkit get`: prints a latest value, or waits for the next one.

use std::io::Write;
use std::time::{Duration, Instant};

use shmkit::latest::{Options, Reader, Value};
use shmkit::posix::ShmName;

use crate::exit::{Failure, Result};
use crate::units::parse_duration;

const EXAMPLES: &str = "\
Examples:
  shmkit get /robot/mode                     the value `shmkit put` wrote
  shmkit get /robot/mode --wait              the next value written (waits for the
                                             object too, if nobody made it yet)
  shmkit get /robot/mode --wait --timeout 5s exit 9 if nothing new comes in 5 seconds
  shmkit get /pose --raw > pose.bin          the bytes exactly, no newline added

Exits 3 if the value does not exist or was never written, 9 on --timeout.";

/// Arguments of `shmkit get`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The latest value, `/name`.
    #[arg(value_parser = crate::target::posix_name)]
    name: ShmName,
    /// Wait for the next value, newer than the one there now (and for the
    /// object to be created, if it does not exist yet).
    #[arg(long)]
    wait: bool,
    /// How long to wait at most: for the next value with --wait; without
    /// it, for a first value if none was written yet (default: for ever
    /// with --wait, not at all without).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Print the bytes exactly as written; by default a newline follows a
    /// value that does not end with one.
    #[arg(long)]
    raw: bool,
    /// Accept an existing object owned by another user or with permissions
    /// wider than 0600 (refused by default: whoever made it can change it).
    #[arg(long)]
    allow_foreign: bool,
}

/// Runs `shmkit get`.
pub fn run(args: Args) -> Result {
    let deadline = args.timeout.and_then(|t| Instant::now().checked_add(t));
    // What is left of the time asked for (`Duration::MAX`: for ever).
    let left = || deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
    let waits = args.wait || args.timeout.is_some();
    // Ctrl-C (or SIGTERM, SIGHUP) ends a wait, with the status of the signal.
    crate::signals::install()?;
    let mut opts = Options::new().allow_foreign(args.allow_foreign);
    if waits {
        opts = opts.timeout(left());
    }
    if let Some(stop) = crate::signals::stop_flag() {
        opts = opts.interrupt(stop);
    }
    let timed_out = |waiting_for| {
        Failure::Shm(shmkit::Error::TimedOut {
            target: shmkit::Target::Posix(args.name.clone()),
            waiting_for,
        })
    };
    let mut reader = match Reader::open(&args.name, &opts) {
        Err(shmkit::Error::NotFound { .. }) if waits => return Err(timed_out("a writer to create it")),
        other => other?,
    };
    let value: Value = if args.wait {
        let now = reader.version()?;
        reader.wait_newer(now, left())?
    } else {
        match reader.read()? {
            Some(value) => value,
            None if args.timeout.is_some() => reader.wait_newer(0, left())?,
            None => {
                return Err(Failure::Message(
                    format!("{}: no value has been written yet", args.name),
                    3,
                ))
            }
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&value)?;
    if !args.raw && value.last() != Some(&b'\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
