//! SIGINT, SIGTERM and SIGHUP for the commands that block (`send`, `recv`):
//! instead of dying at once, with its objects left behind and its peer
//! seeing a death instead of a close, such a command notices the signal,
//! ends properly, and exits with the status shells give a process killed
//! by it: 130, 143 or 129 (README, "Errors and exit status").
//!
//! After [`install`], the first of these signals only sets a flag:
//! [`interrupted`] says which arrived, and [`wake_fd`] becomes readable, for
//! a wait that polls descriptors. A second one ends the process at once
//! with the same exit status, for a command that did not get out of a wait
//! (the user who presses Ctrl-C twice means it).
//!
//! Handlers are installed with `SA_RESTART` (signal-hook always sets it): a
//! blocking `read` or futex wait is resumed after the handler, not ended
//! with `EINTR`. So a command must wait in bounded steps and look at
//! [`interrupted`] between them, or poll [`wake_fd`] beside its own
//! descriptors (standard input, say).
//!
//! Commands that do not call [`install`] keep the default actions: they
//! die of the signal.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::flag;
use signal_hook::low_level::pipe;

/// A signal that asks a command to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGHUP`: the terminal went away. Exit status 129.
    Hangup,
    /// `SIGINT`: Ctrl-C. Exit status 130.
    Interrupt,
    /// `SIGTERM`: `kill`, a service manager stopping it. Exit status 143.
    Terminate,
}

impl Signal {
    /// The three, in the order of their numbers.
    pub const ALL: [Signal; 3] = [Signal::Hangup, Signal::Interrupt, Signal::Terminate];

    /// The signal's number: 1, 2 or 15.
    pub fn number(self) -> i32 {
        match self {
            Signal::Hangup => SIGHUP,
            Signal::Interrupt => SIGINT,
            Signal::Terminate => SIGTERM,
        }
    }

    /// The exit status for a command it ended: 128 + its number, as
    /// shells report a process killed by it (129, 130, 143).
    pub fn exit_code(self) -> u8 {
        // 128 + 15 at most: fits
        (128 + self.number()) as u8
    }

    /// `SIGHUP`, `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hangup => "SIGHUP",
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    fn from_number(n: usize) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.number() as usize == n)
    }
}

/// The number of the last of the signals that arrived; 0 before any.
static LAST: AtomicUsize = AtomicUsize::new(0);
/// Set by the first signal: the next one ends the process.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Set by the first signal, for the library's waits (`channel::Options::interrupt`).
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
/// The read end of the socket pair the handlers write a byte to.
static WAKE: OnceLock<UnixStream> = OnceLock::new();
/// Makes [`install`] run once, even from two threads.
static INSTALLING: Mutex<()> = Mutex::new(());

/// Installs the handlers of SIGINT, SIGTERM and SIGHUP for this process.
/// Calling it again does nothing.
///
/// # Errors
/// If a handler or the wake-up socket pair cannot be set up (then some of
/// the handlers may be installed).
pub fn install() -> io::Result<()> {
    let _once = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
    if WAKE.get().is_some() {
        return Ok(());
    }
    let (reader, writer) = UnixStream::pair()?;
    // The handler's write must never block (signal-hook sends with
    // MSG_DONTWAIT too); the reader is for poll, never drained.
    reader.set_nonblocking(true)?;
    writer.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in Signal::ALL {
        let n = signal.number();
        flag::register(n, stop.clone())?;
        // Run in this order (signal-hook runs a signal's actions in the order
        // they were registered): a second signal finds ARMED set and ends the
        // process before anything else; the first one arms it.
        flag::register_conditional_shutdown(n, i32::from(signal.exit_code()), &ARMED)?;
        flag::register(n, &ARMED)?;
        flag::register_usize(n, &LAST, n as usize)?;
        pipe::register(n, writer.try_clone()?)?;
    }
    let _ = STOP.set(stop);
    let _ = WAKE.set(reader);
    Ok(())
}

/// A flag the first of the signals sets, to hand to a library wait
/// (`channel::Options::interrupt`), which then ends within a twentieth of a
/// second with `Error::Interrupted`; `None` before [`install`].
pub fn stop_flag() -> Option<Arc<AtomicBool>> {
    STOP.get().cloned()
}

/// The last of SIGINT, SIGTERM and SIGHUP that arrived since [`install`],
/// if any. Once set it stays set: the command is to end.
pub fn interrupted() -> Option<Signal> {
    Signal::from_number(LAST.load(Ordering::SeqCst))
}

/// A descriptor that becomes readable (and stays so) once one of the
/// signals has arrived, to poll beside the descriptors a command waits on;
/// `None` before [`install`].
pub fn wake_fd() -> Option<BorrowedFd<'static>> {
    WAKE.get().map(|s| s.as_fd())
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use rustix::event::{poll, PollFd, PollFlags};

    use super::*;

    /// Which signal the child process (below) is to send itself.
    const CHILD_ENV: &str = "SHMKIT_SIGNALS_TEST_CHILD";

    #[test]
    fn exit_codes_are_128_plus_the_number() {
        let codes: Vec<_> = Signal::ALL.iter().map(|s| (s.name(), s.exit_code())).collect();
        assert_eq!(codes, [("SIGHUP", 129), ("SIGINT", 130), ("SIGTERM", 143)]);
        assert_eq!(Signal::from_number(0), None);
        assert_eq!(Signal::from_number(15), Some(Signal::Terminate));
    }

    /// For each signal: a process that installs the handlers and sends it
    /// to itself sees the flag and the wake-up descriptor, and survives;
    /// the same signal again ends it with 128 + the number.
    #[test]
    fn first_signal_sets_the_flag_second_one_ends_the_process() {
        let exe = std::env::current_exe().unwrap();
        for signal in Signal::ALL {
            let out = Command::new(&exe)
                .args([
                    "--exact",
                    "signals::tests::child",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, signal.name())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let what = format!(
                "{}: {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
                signal.name(),
                out.status
            );
            assert!(stdout.contains(&format!("flag: {}", signal.name())), "{what}");
            assert!(stdout.contains("woken"), "{what}");
            assert_eq!(out.status.code(), Some(i32::from(signal.exit_code())), "{what}");
        }
    }

    /// Not a test: the child process of the test above (ignored unless that
    /// test runs it, with `--ignored` and the signal in its environment).
    #[test]
    #[ignore = "helper process of first_signal_sets_the_flag_second_one_ends_the_process"]
    fn child() {
        let Ok(name) = std::env::var(CHILD_ENV) else {
            panic!("run by first_signal_sets_the_flag_second_one_ends_the_process only");
        };
        let signal = Signal::ALL.into_iter().find(|s| s.name() == name).unwrap();
        let raw = match signal {
            Signal::Hangup => rustix::process::Signal::HUP,
            Signal::Interrupt => rustix::process::Signal::INT,
            Signal::Terminate => rustix::process::Signal::TERM,
        };
        assert_eq!(interrupted(), None);
        assert!(wake_fd().is_none());
        install().unwrap();
        install().unwrap(); // a second call does nothing

        let me = rustix::process::getpid();
        rustix::process::kill_process(me, raw).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while interrupted().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        println!("flag: {}", interrupted().map_or("none", Signal::name));
        let wake = wake_fd().unwrap();
        let mut fds = [PollFd::new(&wake, PollFlags::IN)];
        let ten_s = rustix::time::Timespec { tv_sec: 10, tv_nsec: 0 };
        if poll(&mut fds, Some(&ten_s)) == Ok(1) {
            println!("woken");
        }

        // The second one ends the process with 128 + its number.
        rustix::process::kill_process(me, raw).unwrap();
        std::thread::sleep(Duration::from_secs(10));
        println!("still alive after the second {name}");
    }
}
