//! `shmkit pub`: standard input into a topic, one message per line (or
//! NUL-separated record, or chunk as read).

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd};

use shmkit::posix::ShmName;
use shmkit::topic::{Options, Publisher};

use crate::exit::{Failure, Result};
use crate::units::parse_capacity;

const EXAMPLES: &str = "\
Examples:
  tail -f app.log | shmkit pub /log                 and, in any number of terminals,  shmkit sub /log
  shmkit pub /ticks --history 100 --capacity 4M     a new subscriber starts with the last 100 messages
  find / -print0 | shmkit pub /files -0             NUL-separated records

Either side may start first. Blocking subscribers (the default) hold the publisher
up when they fall a ring behind; `sub --lossy` ones never do. At the end of the
input the topic closes: subscribers print what is left and exit 0.";

/// Arguments of `shmkit pub`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The topic, `/name`.
    #[arg(value_parser = crate::target::posix_name)]
    pub name: ShmName,
    /// How many past messages a new subscriber starts with (default 0:
    /// it starts with the next one).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub history: u64,
    /// How many subscribers may take part at once (1 to 64).
    #[arg(long, value_name = "N", default_value_t = shmkit::topic::DEFAULT_MAX_SUBSCRIBERS)]
    pub max_subscribers: usize,
    /// The ring's size (default 1M); if subscribers made the topic first,
    /// it gets this size.
    #[arg(long, value_parser = parse_capacity)]
    pub capacity: Option<u64>,
    /// Records are separated by NUL bytes, not newlines.
    #[arg(short = '0', long = "null", conflicts_with = "raw")]
    pub null: bool,
    /// Publish each chunk of input as read, whatever it holds.
    #[arg(long)]
    pub raw: bool,
    /// Accept an existing topic owned by another user or with wider
    /// permissions than 0600.
    #[arg(long)]
    pub allow_foreign: bool,
}

/// Runs `shmkit pub`.
pub fn run(args: Args) -> Result {
    crate::signals::install()?;
    let mut opts = Options::new()
        .history(args.history)
        .max_subscribers(args.max_subscribers)
        .allow_foreign(args.allow_foreign);
    if let Some(cap) = args.capacity {
        opts = opts.capacity(cap);
    }
    if let Some(stop) = crate::signals::stop_flag() {
        opts = opts.interrupt(stop);
    }
    let mut publisher = Publisher::connect(&args.name, &opts)?;
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let mut input = BufReader::with_capacity(64 << 10, stdin.lock());
    let sep = if args.null { b'\0' } else { b'\n' };
    let mut record = Vec::new();
    loop {
        // Wait for input before reading, so that a signal ends the wait too
        // (the handlers restart a blocked read); buffered input needs none.
        if input.buffer().is_empty() && wait_for_input(fd)? {
            return Err(interrupted(&args.name));
        }
        record.clear();
        let n = if args.raw {
            record.resize(publisher.max_message().min(64 << 10), 0);
            let n = read_retrying(&mut input, &mut record)?;
            record.truncate(n);
            n
        } else {
            let n = input.read_until(sep, &mut record)?;
            if record.last() == Some(&sep) {
                record.pop();
            }
            n
        };
        if n == 0 {
            break;
        }
        publisher.send(&record)?;
    }
    // Dropping the publisher closes the topic: subscribers drain, then end.
    Ok(())
}

fn read_retrying(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Waits until `input` has something (or its end) to read; `true` if a
/// signal came first.
fn wait_for_input(input: BorrowedFd<'_>) -> std::io::Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags};
    let Some(wake) = crate::signals::wake_fd() else {
        return Ok(false);
    };
    loop {
        let mut fds = [PollFd::new(&input, PollFlags::IN), PollFd::new(&wake, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) => {
                if !fds[1].revents().is_empty() {
                    return Ok(true);
                }
                if !fds[0].revents().is_empty() {
                    return Ok(false);
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The error that ends a command a signal interrupted.
fn interrupted(name: &ShmName) -> Failure {
    Failure::Shm(shmkit::Error::Interrupted {
        target: shmkit::Target::Posix(name.clone()),
    })
}
