//! The second process: what it runs, after the leader started it with
//! [`PEER_SUBCOMMAND`](super::PEER_SUBCOMMAND).

use rustix::process::Signal;

use super::args::{PeerArgs, PeerPlan};
use super::error::{Error, Result};
use super::link::{peer_link, with_link};
use super::measure;
use super::pin::pin_to;
use super::transport::Pattern;

/// The second process: does what the first asked in `args`, then exits.
/// Dies with the first process (`PR_SET_PDEATHSIG`).
///
/// # Errors
/// If the first process is gone, the transport cannot be set up, or the
/// first process's messages are wrong.
pub fn run_peer(args: PeerArgs) -> Result<(), Error> {
    if let Some(done) = super::patterns::run_peer(&args.raw()) {
        return done;
    }
    let plan = PeerPlan::try_from(args)?;
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| Error::io("PR_SET_PDEATHSIG", e))?;
    // The leader may have died before that took effect.
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(plan.parent) {
        return Err(Error::Peer("lost its first process".into()));
    }
    if let Some(cpu) = plan.cpu {
        pin_to(cpu)?;
    }
    let mut link = peer_link(&plan)?;
    with_link!(&mut link, l => match plan.pattern {
        Pattern::PingPong => measure::echo(l, plan.size),
        Pattern::Stream => measure::send_stream(l, plan.size, plan.send_for),
    })
}
