//! `shmkit recv`: a channel's stream to standard output (or a file).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use shmkit::channel::{Options, Receiver, RecvTimeoutError};
use shmkit::posix::ShmName;

use crate::exit::{Failure, Result};
use crate::progress::ProgressArgs;
use crate::units::{parse_capacity, parse_duration};

const EXAMPLES: &str = "\
Examples:
  shmkit recv /backup | tar x              with `tar c dir | shmkit send /backup` elsewhere
  shmkit recv /frames --output video.raw --progress
  shmkit recv /jobs --timeout 30s          exit 9 if nothing comes for 30 seconds

Exits 0 once the sender has sent everything and closed; 8 if the sender died,
1 if it closed before the end of its stream.";

/// Arguments of `shmkit recv`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The channel, `/name`.
    #[arg(value_parser = |s: &str| ShmName::new(s).map_err(|e| e.to_string()))]
    name: ShmName,
    /// The ring's size if this side creates the channel (default 1M); if the
    /// channel exists, it must have this capacity.
    #[arg(long, value_parser = parse_capacity)]
    capacity: Option<u64>,
    /// Write to this file (created or truncated) instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// How long to wait for the sender to connect, and then for each piece
    /// of data (default: for ever).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Accept an existing object owned by another user or with wider
    /// permissions than the mode asked for (refused by default: whoever made
    /// it first can read and change what goes through it).
    #[arg(long)]
    allow_foreign: bool,
    #[command(flatten)]
    progress: ProgressArgs,
}

/// Runs `shmkit recv`.
pub fn run(args: Args) -> Result {
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(std::fs::File::create(path).map_err(|e| Failure::Message(format!("{}: {e}", path.display()), 1))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut opts = Options::new();
    if let Some(cap) = args.capacity {
        opts = opts.capacity(cap);
    }
    if let Some(t) = args.timeout {
        opts = opts.timeout(t);
    }
    opts = opts.allow_foreign(args.allow_foreign);
    let mut rx = Receiver::connect(&args.name, &opts)?;
    let bar = args.progress.bar(None, "recv");
    let mut ended = false;
    loop {
        let next = match args.timeout {
            Some(t) => rx.recv_ref_timeout(t),
            None => rx.recv_ref().map_err(RecvTimeoutError::Failed),
        };
        let msg = match next {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Failed(shmkit::Error::Closed { .. })) if ended => break,
            Err(RecvTimeoutError::Failed(shmkit::Error::Closed { .. })) => {
                return Err(Failure::Message(
                    format!(
                        "{}: the sender closed the channel before the end of its stream",
                        args.name
                    ),
                    1,
                ))
            }
            Err(RecvTimeoutError::Failed(e)) => return Err(e.into()),
            Err(RecvTimeoutError::Timeout) => {
                return Err(Failure::Shm(shmkit::Error::TimedOut {
                    target: shmkit::Target::Posix(args.name.clone()),
                    waiting_for: "data from the sender",
                }))
            }
        };
        if msg.is_empty() {
            ended = true; // the end-of-stream mark; the sender closes next
            continue;
        }
        out.write_all(&msg)?;
        bar.inc(msg.len() as u64);
    }
    out.flush()?;
    bar.finish();
    Ok(())
}
