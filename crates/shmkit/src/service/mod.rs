//! Request/response: one server answers many clients through one shared
//! object.
//!
//! The object holds N client *seats* ([`Options::clients`]), each with a
//! request ring (client → server) and a response ring (server → client).
//! The server sleeps on one event for every request, as the
//! [many-to-one](crate::many_to_one) receiver does (it is the same code),
//! and takes requests round robin.
//!
//! - **Correlated.** [`Client::call`] returns exactly the server's response
//!   to that request: each request carries the client's number for it, and
//!   each client reads only its own seat's response ring, which is reset
//!   whenever a new client takes the seat. A client may have several
//!   requests in flight ([`Client::send_request`], then
//!   [`Client::receive_response`]); responses to requests it abandoned (a
//!   timeout) are dropped.
//! - **Errors are answers too.** [`Server::respond_error`] sends an error
//!   response; the client gets a [`Response`] whose [`Status`] says so.
//! - **Either side may start first.** A client waits for the server in
//!   [`Client::connect`] (at most [`Options::timeout`]); the server waits for
//!   nobody, and serves until it is stopped (clients come and go).
//! - **The server dies:** every pending and later call fails with
//!   [`Error::PeerGone`](crate::Error::PeerGone) within a tenth of a second
//!   ([`Error::Closed`](crate::Error::Closed) if it left in order). A response
//!   it sent before dying is still delivered.
//! - **A client dies:** its pending responses are dropped (a response to a
//!   client that has gone is discarded, `respond` returns `Ok`), its seat is
//!   free for a new client once its last requests are taken, and nothing
//!   leaks.
//! - **A slow client cannot stall the server** beyond its own buffer: when
//!   a client's response ring is full, [`Server::respond`] waits at most
//!   [`Options::respond_timeout`] (default 1 s; zero: not at all) and then
//!   fails with [`TrySendError::Full`], dropping the response;
//!   [`Server::try_respond`] never waits.
//! - **Zero-copy and pollable.** [`Server::recv_request_ref`] lends a
//!   request in place; [`Server`] and [`Client`] are file descriptors
//!   (`AsFd`, [`Pollable`](crate::wait::Pollable)) that their `try_*`
//!   calls arm (see [`Client`'s polling](Client#polling)).
//! - **Cleanup** as for many-to-one: the server removes the name when it
//!   leaves; after it died, the last client to leave does.
//!
//! # Examples
//!
//! ```
//! use shmkit::service::{Client, Options, Server};
//! use shmkit::posix::ShmName;
//!
//! let name = ShmName::new(format!("/shmkit-doc-svc-{}", std::process::id()))?;
//! let opts = Options::new().clients(1);
//! let mut server = Server::connect(&name, &opts)?;
//! // usually another process; a thread here
//! let (n2, o2) = (name.clone(), opts.clone());
//! let client = std::thread::spawn(move || -> shmkit::Result<Vec<u8>> {
//!     let mut client = Client::connect(&n2, &o2)?;
//!     Ok(client.call(b"hello")?.body)
//! });
//! let req = server.recv_request()?;
//! let upper = req.body.to_ascii_uppercase();
//! server.respond(req.client, req.id, &upper).unwrap();
//! assert_eq!(client.join().unwrap()?, b"HELLO");
//! # Ok::<(), shmkit::Error>(())
//! ```

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

mod client;
mod info;
mod server;
mod wire;

pub use crate::channel::{RecvTimeoutError, TryRecvError, TrySendError};
pub use client::Client;
pub use info::{info, ServiceInfo};
pub use server::{Request, RequestRef, Server};

/// How many client seats a new service gets unless asked otherwise.
pub const DEFAULT_CLIENTS: usize = 16;

/// Each ring's size unless asked otherwise: 64 KiB.
pub const DEFAULT_CAPACITY: u64 = 64 << 10;

/// How long `respond` waits for room in a client's response ring unless
/// asked otherwise.
pub const DEFAULT_RESPOND_TIMEOUT: Duration = Duration::from_secs(1);

/// A client, as the server sees it: a seat, and which of the clients that
/// held it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId {
    /// The seat, from 0 to N − 1.
    pub seat: usize,
    /// The seat's generation (each new client in a seat starts one).
    pub generation: u32,
    /// The client's pid as it recorded it (display only).
    pub pid: u32,
}

/// Whether the server answered or reported a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// An answer ([`Server::respond`]).
    Ok,
    /// A failure ([`Server::respond_error`]).
    Error,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Answer or failure.
    pub status: Status,
    /// The bytes the server sent.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether it is an answer (not an error response).
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The body, as `Ok` for an answer and `Err` for an error response.
    ///
    /// ```
    /// use shmkit::service::{Response, Status};
    /// let r = Response { status: Status::Error, body: b"no such user".to_vec() };
    /// assert_eq!(r.into_result(), Err(b"no such user".to_vec()));
    /// ```
    pub fn into_result(self) -> std::result::Result<Vec<u8>, Vec<u8>> {
        match self.status {
            Status::Ok => Ok(self.body),
            Status::Error => Err(self.body),
        }
    }
}

/// How to connect: a plain value, reusable for many calls.
///
/// ```
/// use std::time::Duration;
/// let opts = shmkit::service::Options::new().clients(8).timeout(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    clients: Option<usize>,
    capacity: Option<u64>,
    timeout: Option<Duration>,
    respond_timeout: Duration,
    spin: Duration,
    mode: u32,
    allow_foreign: bool,
    interrupt: Option<Arc<AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clients: None,
            capacity: None,
            timeout: None,
            respond_timeout: DEFAULT_RESPOND_TIMEOUT,
            spin: crate::channel::DEFAULT_SPIN,
            mode: 0o600,
            allow_foreign: false,
            interrupt: None,
        }
    }
}

impl Options {
    /// The defaults: [`DEFAULT_CLIENTS`] seats, [`DEFAULT_CAPACITY`] per
    /// ring, no timeout, [`DEFAULT_RESPOND_TIMEOUT`], mode `0600`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of client seats (1 to [`MAX_CLIENTS`]) if this side
    /// creates the service; if it exists, it must have this many.
    pub fn clients(mut self, n: usize) -> Self {
        self.clients = Some(n);
        self
    }

    /// Each ring's size (requests and responses alike), a power of two from
    /// 64 bytes, if this side creates the service; if it exists, it must
    /// have this size.
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = Some(bytes);
        self
    }

    /// How long a client waits: in [`Client::connect`] for the server, and
    /// in [`Client::call`], [`Client::send_request`] and
    /// [`Client::receive_response`]. Default: for ever.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long [`Server::respond`] waits for room in a slow client's
    /// response ring before it drops the response.
    pub fn respond_timeout(mut self, timeout: Duration) -> Self {
        self.respond_timeout = timeout;
        self
    }

    /// How long a waiting side spins before sleeping on a futex.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// The permission bits of a new service (default `0600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Accepts an existing service owned by another user or with wider
    /// permissions than [`mode`](Options::mode).
    pub fn allow_foreign(mut self, yes: bool) -> Self {
        self.allow_foreign = yes;
        self
    }

    /// A flag that ends any wait with [`Error::Interrupted`](crate::Error::Interrupted)
    /// once set.
    pub fn interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    fn want(&self, server: bool) -> crate::many_to_one::connect::Want {
        crate::many_to_one::connect::Want {
            kind: crate::core::segment::Kind::Service,
            rings: 2,
            role: if server {
                crate::Role::Server
            } else {
                crate::Role::Client
            },
            collector: server,
            seats: self.clients,
            default_seats: DEFAULT_CLIENTS,
            capacity: self.capacity,
            default_capacity: DEFAULT_CAPACITY,
            mode: self.mode,
            allow_foreign: self.allow_foreign,
            interrupt: self.interrupt.clone(),
        }
    }
}

/// The most client seats a service may have.
pub const MAX_CLIENTS: usize = crate::many_to_one::MAX_SENDERS;
