//! Who is on the other side, and whether it still runs.
//!
//! A process is named by its pid and its start time (clock ticks after boot,
//! field 22 of `/proc/PID/stat`): a pid can be reused, the pair cannot. To
//! watch a peer we open a pidfd for its pid and then check the start time
//! again, so the descriptor refers to the very process that joined; the pidfd
//! becomes readable when that process exits (even by SIGKILL).

use std::cell::Cell;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags};

/// This process: its pid and start time.
pub(crate) fn me() -> (u32, u64) {
    let pid = std::process::id();
    (pid, start_time(pid).unwrap_or(0))
}

/// The start time of `pid` (field 22 of `/proc/PID/stat`), or `None` if it
/// does not run (or is a zombie).
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = procfs::process::Process::new(i32::try_from(pid).ok()?)
        .ok()?
        .stat()
        .ok()?;
    if matches!(stat.state, 'Z' | 'X') {
        return None;
    }
    Some(stat.starttime)
}

/// A process on the other side of a channel.
#[derive(Debug)]
pub(crate) struct Peer {
    pid: u32,
    start: u64,
    /// Readable once the process has exited; `None` when pidfds are not
    /// supported (then `/proc` is asked each time) or it was gone already.
    pidfd: Option<OwnedFd>,
    /// Once gone, always gone (no need to ask again).
    gone: Cell<bool>,
}

impl Peer {
    /// Starts watching the process `pid` that started at `start`.
    pub(crate) fn watch(pid: u32, start: u64) -> Peer {
        let pidfd = Pid::from_raw(pid as i32).and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok());
        // After opening: is it still the process that joined?
        let gone = start_time(pid) != Some(start);
        Peer {
            pid,
            start,
            pidfd: if gone { None } else { pidfd },
            gone: Cell::new(gone),
        }
    }

    /// The peer's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the peer still runs.
    pub(crate) fn is_alive(&self) -> bool {
        if self.gone.get() {
            return false;
        }
        let alive = match &self.pidfd {
            Some(fd) => {
                let fd = fd.as_fd();
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
                !matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
            }
            None => start_time(self.pid) == Some(self.start),
        };
        self.gone.set(!alive);
        alive
    }
}

/// Whether the process `pid` that started at `start` still runs (a one-off
/// check, for `stat`).
pub(crate) fn is_running(pid: u32, start: u64) -> bool {
    pid != 0 && start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        let (pid, start) = me();
        assert!(start > 0);
        assert!(Peer::watch(pid, start).is_alive());
        assert!(
            !Peer::watch(pid, start + 1).is_alive(),
            "another start time is another process"
        );

        let mut child = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        let cpid = child.id();
        let cstart = start_time(cpid).unwrap();
        let peer = Peer::watch(cpid, cstart);
        assert!(peer.is_alive());
        child.kill().unwrap();
        // dead as soon as it exits, before it is reaped
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while peer.is_alive() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.wait().unwrap();
        assert!(!is_running(cpid, cstart));
    }

    #[test]
    fn impossible_pids_have_no_start_time() {
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(0), None);
        assert_eq!(start_time(u32::MAX), None); // not a pid_t
    }
}
