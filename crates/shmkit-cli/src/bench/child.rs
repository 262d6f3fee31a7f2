//! The second process seen from the leader: how it is started, watched and
//! ended. Knows nothing of transports beyond the descriptors it hands over
//! ([`Inherit`]), nor of what the second process runs ([`super::peer`]).

use std::os::fd::OwnedFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use super::args::{PeerPlan, PEER_SUBCOMMAND};
use super::error::{Error, Result};

/// What the second process inherits from the leader for one measurement.
#[derive(Debug)]
pub(crate) struct Inherit {
    /// Its standard input and output (a pipe, a socket, an eventfd, or
    /// nothing).
    pub stdin: Stdio,
    pub stdout: Stdio,
    /// For the watchdog to wake the leader if it sleeps on an eventfd.
    pub poke: Option<OwnedFd>,
}

/// The running second process, seen from the leader. Dropping it kills the
/// process (if it still runs) and reaps it, so none outlives a failed
/// measurement.
#[derive(Debug)]
pub(crate) struct PeerProcess {
    child: Child,
    /// Set once the process has exited or been killed.
    dead: Arc<AtomicBool>,
    /// Set if the watchdog killed it for overrunning its deadline.
    overran: Arc<AtomicBool>,
    pidfd: Arc<OwnedFd>,
    watchdog: Option<JoinHandle<()>>,
    reaped: bool,
}

impl PeerProcess {
    /// Starts `current_exe() PEER_SUBCOMMAND plan…` with `inherit`'s
    /// standard input and output, and a watchdog thread that notices its
    /// end, and kills it at `deadline`.
    pub(crate) fn spawn(plan: &PeerPlan, inherit: Inherit, deadline: Instant) -> Result<PeerProcess> {
        PeerProcess::spawn_args(plan.to_args(), inherit, deadline)
    }

    /// As [`spawn`](PeerProcess::spawn), with the arguments after the
    /// subcommand given as they are (the pattern cases' peers).
    pub(crate) fn spawn_args(args: Vec<String>, inherit: Inherit, deadline: Instant) -> Result<PeerProcess> {
        let exe = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
        let child = Command::new(&exe)
            .arg(PEER_SUBCOMMAND)
            .args(args)
            .stdin(inherit.stdin)
            .stdout(inherit.stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", exe.display()), e))?;
        // From here on, a failure must not leave the child behind.
        let pidfd = match Pid::from_raw(child.id() as i32)
            .ok_or(rustix::io::Errno::SRCH)
            .and_then(|pid| pidfd_open(pid, PidfdFlags::empty()))
        {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::io("pidfd_open", e));
            }
        };
        let dead = Arc::new(AtomicBool::new(false));
        let overran = Arc::new(AtomicBool::new(false));
        let poke = inherit.poke;
        let watchdog = {
            let (pidfd, dead, overran) = (pidfd.clone(), dead.clone(), overran.clone());
            std::thread::Builder::new()
                .name("bench-watchdog".into())
                .spawn(move || watch(&pidfd, deadline, &dead, &overran, poke))
        };
        let mut me = PeerProcess {
            child,
            dead,
            overran,
            pidfd,
            watchdog: None,
            reaped: false,
        };
        match watchdog {
            Ok(handle) => me.watchdog = Some(handle),
            // `me` drops here: killed and reaped.
            Err(e) => return Err(Error::io("starting the watchdog thread", e)),
        }
        Ok(me)
    }

    /// Whether the process has ended (or been killed).
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// A flag that becomes true when the process has ended, for loops that
    /// cannot otherwise notice.
    pub(crate) fn dead_flag(&self) -> Arc<AtomicBool> {
        self.dead.clone()
    }

    pub(crate) fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    pub(crate) fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Kills the process now (a failed measurement) and reaps it.
    pub(crate) fn kill(mut self) {
        self.end(true);
    }

    /// Waits for the process to finish by itself (the watchdog kills it at
    /// the deadline) and checks that it succeeded.
    pub(crate) fn finish(mut self) -> Result<()> {
        let status = self.end(false);
        if self.overran.load(Ordering::Acquire) {
            return Err(Error::Peer("did not finish in time and was killed".into()));
        }
        match status {
            Some(s) if s.success() => Ok(()),
            Some(s) => Err(Error::Peer(format!("failed ({s})"))),
            None => Err(Error::Peer("could not be waited for".into())),
        }
    }

    fn end(&mut self, kill: bool) -> Option<std::process::ExitStatus> {
        if self.reaped {
            return None;
        }
        if kill {
            // Not reaped yet, so the pidfd still names our child.
            let _ = pidfd_send_signal(&*self.pidfd, Signal::KILL);
        }
        // The watchdog returns once the process has ended: only then may it
        // be reaped (the watchdog may still signal it until then).
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        self.reaped = true;
        self.child.wait().ok()
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.end(true);
    }
}

/// The watchdog: waits for the process to end, or kills it at `deadline`;
/// either way marks it dead and wakes the leader if it sleeps on an eventfd.
fn watch(pidfd: &OwnedFd, deadline: Instant, dead: &AtomicBool, overran: &AtomicBool, poke: Option<OwnedFd>) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            overran.store(true, Ordering::Release);
            let _ = pidfd_send_signal(pidfd, Signal::KILL);
            // Now wait for it to be gone.
            let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
            let _ = poll(&mut fds, None);
            break;
        }
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => break,
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            // Cannot watch: at least do not let it outlive the deadline.
            Err(_) => std::thread::sleep(left.min(std::time::Duration::from_millis(10))),
        }
    }
    dead.store(true, Ordering::Release);
    if let Some(fd) = poke {
        let _ = rustix::io::write(&fd, &1u64.to_ne_bytes());
    }
}
