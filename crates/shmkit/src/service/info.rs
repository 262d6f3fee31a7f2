//! What a service's header says, for `shmkit stat`.

use std::os::fd::AsFd;

use crate::channel::SideInfo;
use crate::core::segment::Kind;
use crate::core::sync::Ordering;
use crate::error::Result;
use crate::many_to_one::layout::Region;
use crate::many_to_one::SeatInfo;
use crate::posix::ShmName;

/// A snapshot of a service's header. Another process may change any of it
/// at any time; every field was read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Each ring's size in bytes.
    pub capacity: u64,
    /// The longest request or response body.
    pub max_message: u64,
    /// The server, once one has joined.
    pub server: Option<SideInfo>,
    /// Whether the server waits through a descriptor (see
    /// [`Server#polling`](super::Server#polling)).
    pub server_polling: bool,
    /// Every client seat, used or not; its rings are the requests, then the
    /// responses.
    pub seats: Vec<SeatInfo>,
}

impl ServiceInfo {
    /// Requests sent and not yet taken by the server, over every seat.
    pub fn backlog(&self) -> u64 {
        self.seats
            .iter()
            .filter_map(|s| s.rings.first())
            .map(|r| r.backlog)
            .sum()
    }
}

/// Reads the header of the service `name` without joining it.
///
/// # Errors
/// [`crate::Error::NotFound`]; [`crate::Error::Corrupt`] if `name` is not a
/// service; [`crate::Error::PermissionDenied`].
///
/// # Examples
/// ```
/// use shmkit::service::{info, Options, Server};
/// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-svc-info-{}", std::process::id()))?;
/// let server = Server::connect(&name, &Options::new().clients(2))?;
/// let i = info(&name)?;
/// assert_eq!((i.seats.len(), i.seats[0].rings.len()), (2, 2));
/// assert!(i.server.unwrap().alive);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn info(name: &ShmName) -> Result<ServiceInfo> {
    crate::many_to_one::connect::with_header(name, Kind::Service, 2, |region, shm| read(region, shm, None))
}

pub(crate) fn read(region: &Region, fd: impl AsFd, own: Option<usize>) -> ServiceInfo {
    let (seats, server) = crate::many_to_one::info::read_seats(region, fd, own);
    let cap = region.geo().cap;
    ServiceInfo {
        capacity: cap,
        max_message: crate::core::ring::max_message(cap) - super::wire::HEADER as u64,
        server,
        server_polling: region.top().poll.load(Ordering::Relaxed) != 0,
        seats,
    }
}
