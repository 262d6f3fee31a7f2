//! `shmkit recv`: a channel's stream to standard output (or a file).

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use shmkit::channel::{Receiver, RecvGuard, RecvTimeoutError};

use crate::channel_args::ChannelArgs;
use crate::exit::{Failure, Result};
use crate::progress::ProgressArgs;

const EXAMPLES: &str = "\
Examples:
  shmkit recv /backup | tar x              with `tar c dir | shmkit send /backup` elsewhere
  shmkit recv /frames --output video.raw --progress
  shmkit recv /jobs --timeout 30s          exit 9 if nothing comes for 30 seconds

Exits 0 once the sender has sent everything and closed; 8 if the sender died,
1 if it closed before the end of its stream.

Many senders, one receiver:
  shmkit recv /log --senders 3             collect the lines of three `shmkit send /log`
With --senders N (or on an existing many-to-one object) `recv` writes whole
lines as they come from N senders, and exits 0 once N senders have sent their
streams and left (8 if one of them died).";

/// Arguments of `shmkit recv`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    chan: ChannelArgs,
    /// Write to this file (created or truncated) instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    progress: ProgressArgs,
    /// Collect from N senders through a many-to-one object with N seats
    /// (created if it does not exist): whole lines, interleaved as they come.
    /// Without it, `recv` collects from an existing many-to-one object, and
    /// otherwise makes or joins a channel.
    #[arg(long, value_name = "N")]
    senders: Option<usize>,
}

/// Runs `shmkit recv`.
pub fn run(args: Args) -> Result {
    // A descriptor, not a `Write`: each message goes out straight from the
    // ring, with nothing buffered here.
    let out: OwnedFd = match &args.output {
        Some(path) => std::fs::File::create(path)
            .map_err(|e| Failure::Message(format!("{}: {e}", path.display()), 1))?
            .into(),
        None => std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Failure::Message(format!("stdout: {e}"), 1))?,
    };
    crate::signals::install()?;
    if args.senders.is_some() || shmkit::many_to_one::info(&args.chan.name).is_ok() {
        return many(&args, &out);
    }
    let opts = args.chan.options();
    let mut rx = Receiver::connect(&args.chan.name, &opts)?;
    let bar = args.progress.bar(None, "recv");
    let mut ended = false;
    loop {
        // Received in the scrutinee: a local would keep the guard's borrow
        // of `rx` alive to the end of the loop body, where an error below
        // needs `rx` again.
        let msg = match receive(&mut rx, args.chan.timeout) {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Disconnected(shmkit::Error::Closed { .. })) if ended => break,
            Err(RecvTimeoutError::Disconnected(shmkit::Error::Closed { .. })) => {
                return Err(Failure::Message(
                    format!(
                        "{}: the sender closed the channel before the end of its stream",
                        args.chan.name
                    ),
                    1,
                ))
            }
            Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => return Err(e.into()),
            Err(RecvTimeoutError::Timeout) => {
                return Err(Failure::Shm(shmkit::Error::TimedOut {
                    target: shmkit::Target::Posix(args.chan.name.clone()),
                    waiting_for: "data from the sender",
                }))
            }
        };
        if msg.is_empty() {
            ended = true; // the end-of-stream mark; the sender closes next
            continue;
        }
        let len = msg.len() as u64;
        let written = write_all(&out, &msg);
        if let Err(e) = written {
            drop(msg);
            // The write reads straight from the channel's memory: if another
            // process shrank the object, the kernel says EFAULT.
            rx.check_intact()?;
            return Err(e.into());
        }
        bar.inc(len);
    }
    bar.finish();
    Ok(())
}

/// The next message in place, waiting at most `timeout` when there is one.
fn receive(rx: &mut Receiver, timeout: Option<Duration>) -> std::result::Result<RecvGuard<'_>, RecvTimeoutError> {
    match timeout {
        Some(t) => rx.recv_ref_timeout(t),
        None => rx.recv_ref().map_err(RecvTimeoutError::from),
    }
}

/// Writes the whole message to `out`, straight from shared memory, in as
/// many `write(2)` calls as it takes.
fn write_all(out: &OwnedFd, msg: &shmkit::map::View<'_>) -> std::io::Result<()> {
    let mut done = 0;
    while done < msg.len() {
        let rest = msg.sub(done, msg.len() - done).expect("in bounds");
        match rest.write_to_fd(out) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `recv` from a many-to-one object: each message (a line) as it comes, from
/// whichever sender; each sender ends its stream with an empty message.
fn many(args: &Args, out: &OwnedFd) -> Result {
    use shmkit::many_to_one::{Receiver, SenderId};
    let name = &args.chan.name;
    let opts = super::send::many_options(&args.chan, args.senders);
    let mut rx = Receiver::connect(name, &opts)?;
    let bar = args.progress.bar(None, "recv");
    let mut open: std::collections::HashMap<SenderId, ()> = std::collections::HashMap::new();
    loop {
        // Received in the scrutinee, as in `run`.
        let msg = match receive_many(&mut rx, args.chan.timeout) {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Disconnected(shmkit::Error::Closed { .. })) => break,
            Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => return Err(e.into()),
            Err(RecvTimeoutError::Timeout) => {
                return Err(Failure::Shm(shmkit::Error::TimedOut {
                    target: shmkit::Target::Posix(name.clone()),
                    waiting_for: "data from the senders",
                }))
            }
        };
        let from = msg.sender();
        if msg.is_empty() {
            open.remove(&from); // that sender's end of stream
            continue;
        }
        open.insert(from, ());
        let len = msg.len() as u64;
        if let Err(e) = write_all(out, &msg) {
            drop(msg);
            rx.check_intact()?;
            return Err(e.into());
        }
        bar.inc(len);
    }
    if let Some(from) = open.keys().next() {
        return Err(Failure::Message(
            format!(
                "{name}: a sender (pid {}) closed before the end of its stream",
                from.pid
            ),
            1,
        ));
    }
    bar.finish();
    Ok(())
}

/// The next message of a many-to-one object in place, waiting at most
/// `timeout` when there is one.
fn receive_many(
    rx: &mut shmkit::many_to_one::Receiver,
    timeout: Option<Duration>,
) -> std::result::Result<shmkit::many_to_one::RecvGuard<'_>, RecvTimeoutError> {
    match timeout {
        Some(t) => rx.recv_ref_timeout(t),
        None => rx.recv_ref().map_err(RecvTimeoutError::from),
    }
}
