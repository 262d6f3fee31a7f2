//! `shmkit send`: standard input (or a file) into a channel.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use shmkit::channel::{SendTimeoutError, Sender};

use crate::channel_args::ChannelArgs;
use crate::exit::{Failure, Result};
use crate::progress::ProgressArgs;

const EXAMPLES: &str = "\
Examples:
  tar c dir | shmkit send /backup          with `shmkit recv /backup | tar x` elsewhere
  shmkit send /frames --file video.raw --capacity 16M --progress
  shmkit send /jobs --timeout 10s < jobs.ndjson

Either side may start first; the channel's object is removed when both are done.
The stream ends with an empty message: `recv` exits 0 only when it has seen it.

Many senders, one receiver: `shmkit recv /log --senders 3` collects from three
`shmkit send /log` processes. Into such an object (found by its kind, or made
with `send --senders N` when this side starts first) each line is one message,
so lines of different senders interleave but never mix.";

/// Arguments of `shmkit send`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    chan: ChannelArgs,
    /// Send this file instead of standard input.
    #[arg(long, short)]
    file: Option<PathBuf>,
    #[command(flatten)]
    progress: ProgressArgs,
    /// Send into a many-to-one object with N seats (creating it if this side
    /// starts first), line by line. Without it, `send` joins an existing
    /// many-to-one object as one of its senders, and otherwise makes or joins
    /// a channel.
    #[arg(long, value_name = "N")]
    senders: Option<usize>,
}

/// Runs `shmkit send`.
pub fn run(args: Args) -> Result {
    // A descriptor, not a `Read`: each read goes straight into the ring.
    let (input, total): (OwnedFd, Option<u64>) = match &args.file {
        Some(path) => {
            let file =
                std::fs::File::open(path).map_err(|e| Failure::Message(format!("{}: {e}", path.display()), 1))?;
            let len = file.metadata().ok().map(|m| m.len());
            (file.into(), len)
        }
        None => (
            std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Failure::Message(format!("stdin: {e}"), 1))?,
            None,
        ),
    };
    crate::signals::install()?;
    if args.senders.is_some() || many::exists(&args.chan.name) {
        return many::send(&args, input, total);
    }
    let opts = args.chan.options();
    let mut tx = Sender::connect(&args.chan.name, &opts)?;
    // A quarter of the ring: several chunks in flight at once.
    let chunk = (tx.capacity() / 4).min(tx.max_message()).max(1);
    let bar = args.progress.bar(total, "send");
    loop {
        // Wait for input before taking room, so that a signal ends the wait
        // for input too (the handlers restart a blocked read).
        if wait_for_input(&input)? {
            return Err(interrupted(&args.chan.name));
        }
        let mut grant = tx.reserve(chunk)?;
        let n = match read_some(&input, &mut grant) {
            Ok(n) => n,
            Err(e) => {
                // The read goes straight into the channel's memory: if
                // another process shrank the object, the kernel says EFAULT.
                tx.check_intact()?;
                return Err(Failure::Message(
                    format!(
                        "{}: reading the input: {e}",
                        args.file.as_ref().map_or("stdin".into(), |p| p.display().to_string())
                    ),
                    1,
                ));
            }
        };
        if n == 0 {
            break; // the grant is dropped: nothing sent
        }
        grant.truncate(n);
        grant.commit()?;
        bar.inc(n as u64);
    }
    tx.send(&[])?; // end of stream
                   // Exit only once the receiver has everything (or is gone).
    let flushed = match args.chan.timeout {
        Some(t) => tx.flush_timeout(t),
        None => tx.flush().map_err(SendTimeoutError::from),
    };
    match flushed {
        Ok(()) => {}
        Err(SendTimeoutError::Timeout) => {
            return Err(Failure::Shm(shmkit::Error::TimedOut {
                target: shmkit::Target::Posix(args.chan.name.clone()),
                waiting_for: "the receiver to take the last bytes",
            }))
        }
        Err(SendTimeoutError::Disconnected(e) | SendTimeoutError::Failed(e)) => return Err(e.into()),
    }
    bar.finish();
    Ok(())
}

/// Waits until `input` has something (or its end) to read; `true` if a
/// signal came first.
fn wait_for_input(input: &OwnedFd) -> std::io::Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags};
    let Some(wake) = crate::signals::wake_fd() else {
        return Ok(false);
    };
    loop {
        let mut fds = [PollFd::new(input, PollFlags::IN), PollFd::new(&wake, PollFlags::IN)];
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
fn interrupted(name: &shmkit::posix::ShmName) -> Failure {
    Failure::Shm(shmkit::Error::Interrupted {
        target: shmkit::Target::Posix(name.clone()),
    })
}

/// One read into the grant (retried only when interrupted): whatever the
/// input has now goes out now, so a slow stream (`tail -f log | shmkit
/// send`) is not held back until a whole chunk has gathered. 0 at the end of
/// input.
fn read_some(input: &OwnedFd, grant: &mut shmkit::map::ViewMut<'_>) -> std::io::Result<usize> {
    loop {
        match grant.read_from_fd(input) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// `send` into a many-to-one object: one message per line.
mod many {
    use std::os::fd::OwnedFd;

    use shmkit::many_to_one::{self, SendTimeoutError, Sender};
    use shmkit::posix::ShmName;

    use super::{interrupted, wait_for_input, Args};
    use crate::exit::{Failure, Result};

    /// Whether `name` is a many-to-one object now.
    pub(super) fn exists(name: &ShmName) -> bool {
        many_to_one::info(name).is_ok()
    }

    /// The library's options for a sender (or receiver) with these arguments.
    pub(crate) fn options(chan: &crate::channel_args::ChannelArgs, senders: Option<usize>) -> many_to_one::Options {
        let mut opts = many_to_one::Options::new().allow_foreign(chan.allow_foreign);
        if let Some(n) = senders {
            opts = opts.senders(n);
        }
        if let Some(cap) = chan.capacity {
            opts = opts.capacity(cap);
        }
        if let Some(t) = chan.timeout {
            opts = opts.timeout(t);
        }
        if let Some(stop) = crate::signals::stop_flag() {
            opts = opts.interrupt(stop);
        }
        opts
    }

    /// Sends `input` line by line (a line longer than the largest message
    /// goes in pieces), then the end-of-stream mark, and waits until the
    /// receiver has everything.
    pub(super) fn send(args: &Args, input: OwnedFd, total: Option<u64>) -> Result {
        let name = &args.chan.name;
        let mut tx = Sender::connect(name, &options(&args.chan, args.senders))?;
        let max = tx.max_message().max(1);
        let bar = args.progress.bar(total, "send");
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if wait_for_input(&input)? {
                return Err(interrupted(name));
            }
            let n = match rustix::io::read(&input, &mut chunk) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Failure::Message(format!("reading the input: {e}"), 1)),
            };
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&chunk[..n]);
            let mut start = 0;
            while let Some(i) = pending[start..].iter().position(|&b| b == b'\n') {
                let end = start + i + 1;
                for piece in pending[start..end].chunks(max) {
                    tx.send(piece)?;
                }
                start = end;
            }
            pending.drain(..start);
            while pending.len() >= max {
                tx.send(&pending[..max])?;
                pending.drain(..max);
            }
            bar.inc(n as u64);
        }
        if !pending.is_empty() {
            tx.send(&pending)?;
        }
        tx.send(&[])?; // this sender's end of stream
        let flushed = match args.chan.timeout {
            Some(t) => tx.flush_timeout(t),
            None => tx.flush().map_err(SendTimeoutError::from),
        };
        match flushed {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout) => {
                return Err(Failure::Shm(shmkit::Error::TimedOut {
                    target: shmkit::Target::Posix(name.clone()),
                    waiting_for: "the receiver to take the last lines",
                }))
            }
            Err(SendTimeoutError::Disconnected(e) | SendTimeoutError::Failed(e)) => return Err(e.into()),
        }
        bar.finish();
        Ok(())
    }
}

/// The library's options for a many-to-one sender or receiver with these
/// arguments (shared with `recv`).
pub(crate) fn many_options(
    chan: &crate::channel_args::ChannelArgs,
    senders: Option<usize>,
) -> shmkit::many_to_one::Options {
    many::options(chan, senders)
}
