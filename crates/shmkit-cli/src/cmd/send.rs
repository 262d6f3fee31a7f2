//! `shmkit send`: standard input (or a file) into a channel.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use shmkit::channel::{Options, Sender};
use shmkit::posix::ShmName;

use crate::exit::{Failure, Result};
use crate::progress::ProgressArgs;
use crate::units::{parse_capacity, parse_duration};

const EXAMPLES: &str = "\
Examples:
  tar c dir | shmkit send /backup          with `shmkit recv /backup | tar x` elsewhere
  shmkit send /frames --file video.raw --capacity 16M --progress
  shmkit send /jobs --timeout 10s < jobs.ndjson

Either side may start first; the channel's object is removed when both are done.
The stream ends with an empty message: `recv` exits 0 only when it has seen it.";

/// Arguments of `shmkit send`.
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
    /// Send this file instead of standard input.
    #[arg(long, short)]
    file: Option<PathBuf>,
    /// How long to wait for the receiver to connect, and then for it to
    /// take the last bytes (default: for ever).
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

/// Runs `shmkit send`.
pub fn run(args: Args) -> Result {
    let (mut input, total): (Box<dyn Read>, Option<u64>) = match &args.file {
        Some(path) => {
            let file =
                std::fs::File::open(path).map_err(|e| Failure::Message(format!("{}: {e}", path.display()), 1))?;
            let len = file.metadata().ok().map(|m| m.len());
            (Box::new(file), len)
        }
        None => (Box::new(std::io::stdin().lock()), None),
    };
    let mut opts = Options::new();
    if let Some(cap) = args.capacity {
        opts = opts.capacity(cap);
    }
    if let Some(t) = args.timeout {
        opts = opts.timeout(t);
    }
    opts = opts.allow_foreign(args.allow_foreign);
    let mut tx = Sender::connect(&args.name, &opts)?;
    // A quarter of the ring: several chunks in flight at once.
    let chunk = (tx.capacity() / 4).min(tx.max_message()).max(1);
    let bar = args.progress.bar(total, "send");
    loop {
        let mut grant = tx.reserve(chunk)?;
        let n = read_some(&mut input, &mut grant).map_err(|e| {
            Failure::Message(
                format!(
                    "{}: reading the input: {e}",
                    args.file.as_ref().map_or("stdin".into(), |p| p.display().to_string())
                ),
                1,
            )
        })?;
        if n == 0 {
            break; // the grant is dropped: nothing sent
        }
        grant.truncate(n);
        grant.commit();
        bar.inc(n as u64);
    }
    tx.send(&[])?; // end of stream
                   // Exit only once the receiver has everything (or is gone).
    if !tx.flush(args.timeout)? {
        return Err(Failure::Shm(shmkit::Error::TimedOut {
            target: shmkit::Target::Posix(args.name.clone()),
            waiting_for: "the receiver to take the last bytes",
        }));
    }
    bar.finish();
    Ok(())
}

/// One read into `buf` (retried only when interrupted): whatever the input
/// has now goes out now, so a slow stream (`tail -f log | shmkit send`) is
/// not held back until a whole chunk has gathered. 0 at the end of input.
fn read_some(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}
