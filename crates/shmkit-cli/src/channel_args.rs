//! The arguments `send` and `recv` share: which channel, and how to join it.

use std::time::Duration;

use shmkit::channel::Options;
use shmkit::posix::ShmName;

use crate::units::{parse_capacity, parse_duration};

/// The channel and how to connect to it.
#[derive(Debug, clap::Args)]
pub struct ChannelArgs {
    /// The channel, `/name`.
    #[arg(value_parser = crate::target::posix_name)]
    pub name: ShmName,
    /// The ring's size if this side creates the channel (default 1M); if the
    /// channel exists, it must have this capacity.
    #[arg(long, value_parser = parse_capacity)]
    pub capacity: Option<u64>,
    /// How long to wait for the other side to connect, and then for each
    /// step of the transfer (default: for ever).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Accept an existing channel owned by another user or with wider
    /// permissions than 0600 (refused by default: whoever made it first can
    /// read and change what goes through it).
    #[arg(long)]
    pub allow_foreign: bool,
}

impl ChannelArgs {
    /// The library's options for these arguments.
    pub fn options(&self) -> Options {
        let mut opts = Options::new().allow_foreign(self.allow_foreign);
        if let Some(cap) = self.capacity {
            opts = opts.capacity(cap);
        }
        if let Some(t) = self.timeout {
            opts = opts.timeout(t);
        }
        // SIGINT, SIGTERM, SIGHUP end a wait, so the command closes its side
        // (the peer sees a close, not a death) and removes what it made.
        if let Some(stop) = crate::signals::stop_flag() {
            opts = opts.interrupt(stop);
        }
        opts
    }
}
