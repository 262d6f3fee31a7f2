//! `shmkit sub`: a topic's messages to standard output, one per line (or
//! NUL-terminated).

use std::io::Write;
use std::time::Duration;

use shmkit::posix::ShmName;
use shmkit::topic::{RecvTimeoutError, SubOptions, Subscriber};

use crate::exit::{Failure, Result};
use crate::units::parse_duration;

const EXAMPLES: &str = "\
Examples:
  shmkit sub /log                      every line `shmkit pub /log` publishes, as it comes
  shmkit sub /ticks --lossy            never holds the publisher up; says on stderr what it missed
  shmkit sub /jobs --count 1 --timeout 5s

Exits 0 when the publisher has closed the topic (or after --count messages),
8 if the publisher died, 9 if --timeout passed without a message.";

/// Arguments of `shmkit sub`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The topic, `/name`.
    #[arg(value_parser = crate::target::posix_name)]
    pub name: ShmName,
    /// Never hold the publisher up: when this subscriber falls behind, it
    /// loses messages (and says how many on standard error).
    #[arg(long)]
    pub lossy: bool,
    /// Exit after this many messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// How long to wait for the publisher to come, then for each message
    /// (default: for ever).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// End each message with a NUL byte instead of a newline.
    #[arg(short = '0', long = "null")]
    pub null: bool,
    /// Accept an existing topic owned by another user or with wider
    /// permissions than 0600.
    #[arg(long)]
    pub allow_foreign: bool,
}

/// Runs `shmkit sub`.
pub fn run(args: Args) -> Result {
    crate::signals::install()?;
    let mut opts = SubOptions::new().lossy(args.lossy).allow_foreign(args.allow_foreign);
    if let Some(t) = args.timeout {
        opts = opts.timeout(t);
    }
    if let Some(stop) = crate::signals::stop_flag() {
        opts = opts.interrupt(stop);
    }
    let mut sub = Subscriber::connect(&args.name, &opts)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 << 10, stdout.lock());
    let end = if args.null { b'\0' } else { b'\n' };
    let mut msg = Vec::new();
    let mut got = 0u64;
    while args.count.is_none_or(|c| got < c) {
        let received = match args.timeout {
            Some(t) => sub.recv_timeout(t),
            None => sub
                .recv_into(&mut msg)
                .map(|()| std::mem::take(&mut msg))
                .map_err(Into::into),
        };
        match received {
            Ok(m) => {
                out.write_all(&m)?;
                out.write_all(&[end])?;
                got += 1;
                msg = m;
                // Nothing more now: let the reader see what came.
                if sub.is_empty() {
                    out.flush()?;
                }
            }
            Err(RecvTimeoutError::Lagged { missed }) => {
                out.flush()?;
                crate::exit::warn(format!(
                    "{}: missed {missed} messages (this lossy subscriber fell behind the publisher)",
                    args.name
                ));
            }
            Err(RecvTimeoutError::Disconnected(shmkit::Error::Closed { .. })) => break,
            Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => {
                out.flush()?;
                return Err(Failure::Shm(e));
            }
            Err(RecvTimeoutError::Timeout) => {
                out.flush()?;
                return Err(Failure::Shm(shmkit::Error::TimedOut {
                    target: shmkit::Target::Posix(args.name.clone()),
                    waiting_for: "a message from the publisher",
                }));
            }
        }
    }
    out.flush()?;
    Ok(())
}
