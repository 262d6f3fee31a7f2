//! The server.

use std::cell::RefCell;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::core::event::{self, Stop};
use crate::core::ring::RingError;
use crate::core::slots::Presence;
use crate::core::sync::Ordering;
use crate::error::{Error, Result, Role};
use crate::many_to_one::connect::{self, Link};
use crate::many_to_one::receiver::{look, release, Pace};
use crate::many_to_one::seats::{Collector, Incoming};
use crate::many_to_one::sender::ring_error;
use crate::map::View;
use crate::posix::ShmName;

use super::wire;
use super::{ClientId, Options, RecvTimeoutError, TryRecvError, TrySendError};

/// A request and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The client, to pass to [`Server::respond`].
    pub client: ClientId,
    /// The client's number for the request, to pass to `respond`.
    pub id: u64,
    /// The request's bytes.
    pub body: Vec<u8>,
}

/// The server of a service. See the [module docs](super).
#[derive(Debug)]
pub struct Server {
    col: Collector,
    link: Link,
    spin: Duration,
    respond_timeout: Duration,
    pace: Pace,
}

impl Server {
    /// Connects to `name` as its server, creating the service if no client
    /// has yet. Waits for nobody.
    ///
    /// # Errors
    /// [`Error::Busy`] if another process is the server (or was, and died
    /// while clients still finish); [`Error::InvalidArgument`] if the
    /// service exists with another number of seats than
    /// [`Options::clients`]; [`Error::CapacityMismatch`];
    /// [`Error::Corrupt`] if `name` is not a service; the errors of
    /// creating a POSIX object.
    pub fn connect(name: &ShmName, opts: &Options) -> Result<Server> {
        let link = connect::join(name, &opts.want(true), Role::Client)?;
        let col = Collector::new(link.region, link.registered());
        for s in 0..link.region.geo().seats {
            link.region.ctl(s).space.notify_always();
        }
        Ok(Server {
            col,
            link,
            spin: opts.spin,
            respond_timeout: opts.respond_timeout,
            pace: Pace::default(),
        })
    }

    /// The next request, waiting for one, however clients come and go (a
    /// server serves until it is stopped: use
    /// [`recv_request_timeout`](Server::recv_request_timeout) or
    /// [`Options::interrupt`]). Malformed requests (a hostile client's) are
    /// dropped.
    ///
    /// # Errors
    /// [`Error::Interrupted`]; [`Error::Corrupt`]; [`Error::Truncated`].
    pub fn recv_request(&mut self) -> Result<Request> {
        self.recv_until(None).map_err(|stop| match stop {
            Stop::Failed(e) => e,
            Stop::TimedOut => unreachable!("no deadline"),
        })
    }

    /// The next request, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or the errors of
    /// [`recv_request`](Server::recv_request).
    pub fn recv_request_timeout(&mut self, timeout: Duration) -> std::result::Result<Request, RecvTimeoutError> {
        match self.recv_until(event::deadline(timeout)) {
            Ok(r) => Ok(r),
            Err(Stop::TimedOut) => Err(RecvTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(RecvTimeoutError::from(e)),
        }
    }

    /// The next request if there is one now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or the errors of
    /// [`recv_request`](Server::recv_request).
    pub fn try_recv_request(&mut self) -> std::result::Result<Request, TryRecvError> {
        match self.try_next()? {
            Some(found) => Ok(self.take(found)?),
            None => Err(TryRecvError::Empty),
        }
    }

    /// The next request in place, waiting for one: zero-copy. Its body is a
    /// [`View`] into the client's request ring (the guard derefs to it);
    /// the space goes back to the client when the guard is dropped, or
    /// answered with [`RequestRef::respond`]. As
    /// [`channel::Receiver::recv_ref`](crate::channel::Receiver::recv_ref),
    /// a hostile client can still change the bytes while they are read.
    ///
    /// # Errors
    /// As [`recv_request`](Server::recv_request).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::service::{Client, Options, Server};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-svc-ref-{}", std::process::id()))?;
    /// let mut server = Server::connect(&name, &Options::new().clients(1))?;
    /// let mut client = Client::connect(&name, &Options::new())?;
    /// let id = client.send_request(b"ping")?;
    /// let req = server.recv_request_ref()?;
    /// assert_eq!((req.to_vec(), req.id()), (b"ping".to_vec(), id));
    /// req.respond(b"pong").unwrap(); // answers, then frees the request's space
    /// assert_eq!(client.receive_response(id)?.body, b"pong");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn recv_request_ref(&mut self) -> Result<RequestRef<'_>> {
        let found = self.next(None).map_err(|stop| match stop {
            Stop::Failed(e) => e,
            Stop::TimedOut => unreachable!("no deadline"),
        })?;
        self.guard(found)
    }

    /// Like [`recv_request_ref`](Server::recv_request_ref), waiting at most
    /// `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or the errors of
    /// [`recv_request`](Server::recv_request).
    pub fn recv_request_ref_timeout(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<RequestRef<'_>, RecvTimeoutError> {
        match self.next(event::deadline(timeout)) {
            Ok(found) => self.guard(found).map_err(RecvTimeoutError::from),
            Err(Stop::TimedOut) => Err(RecvTimeoutError::Timeout),
            Err(Stop::Failed(e)) => Err(RecvTimeoutError::from(e)),
        }
    }

    /// Like [`recv_request_ref`](Server::recv_request_ref) if a request is
    /// there now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or the errors of
    /// [`recv_request`](Server::recv_request).
    pub fn try_recv_request_ref(&mut self) -> std::result::Result<RequestRef<'_>, TryRecvError> {
        match self.try_next()? {
            Some(found) => Ok(self.guard(found)?),
            None => Err(TryRecvError::Empty),
        }
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> std::result::Result<Request, Stop<Error>> {
        let found = self.next(deadline)?;
        Ok(self.take(found)?)
    }

    /// The next well-formed request, waiting until `deadline`.
    fn next(&mut self, deadline: Option<Instant>) -> std::result::Result<Found, Stop<Error>> {
        loop {
            let inc = self.wait(deadline)?;
            if let Some(found) = self.check(inc)? {
                return Ok(found);
            }
        }
    }

    /// The next well-formed request if there is one now; arms the
    /// descriptor (when polled) if there is none.
    fn try_next(&mut self) -> Result<Option<Found>> {
        if let Some(found) = self.look_once()? {
            return Ok(Some(found));
        }
        if !self.link.poll.polled() {
            return Ok(None);
        }
        let region = self.link.region;
        let data = &region.top().data;
        self.link.arm(data)?;
        let found = self.look_once();
        if !matches!(found, Ok(None)) {
            self.link.poll.disarm(data);
        }
        found
    }

    /// The next well-formed request if there is one now.
    fn look_once(&mut self) -> Result<Option<Found>> {
        loop {
            let Some(inc) = look(&mut self.col, &self.link, &mut self.pace)? else {
                return Ok(None);
            };
            if let Some(found) = self.check(inc)? {
                return Ok(Some(found));
            }
        }
    }

    /// The request in frame `inc`, with its id; `None` if the frame is
    /// malformed (a hostile client's), which is dropped.
    #[inline]
    fn check(&mut self, inc: Incoming) -> Result<Option<Found>> {
        match wire::read(self.col.input_buf(inc.seat), inc.frame.at, inc.frame.len) {
            Some((id, wire::REQUEST)) => Ok(Some(Found { inc, id })),
            _ => {
                // (zeros where the header was: the object may have shrunk)
                self.link.check_intact()?;
                release(&mut self.col, &self.link, &inc);
                Ok(None)
            }
        }
    }

    fn wait(&mut self, deadline: Option<Instant>) -> std::result::Result<Incoming, Stop<Error>> {
        if let Some(inc) = look(&mut self.col, &self.link, &mut self.pace)? {
            return Ok(inc);
        }
        let Server {
            col, link, spin, pace, ..
        } = self;
        let link = &*link;
        let state = RefCell::new((col, pace));
        event::wait_for(
            &link.region.top().data,
            *spin,
            deadline,
            || {
                let (col, n) = &mut *state.borrow_mut();
                look(col, link, n)
            },
            || {
                link.member.check_interrupt()?;
                link.check_size()
            },
        )
    }

    /// Copies the request out and releases its frame.
    fn take(&mut self, found: Found) -> Result<Request> {
        let Found { inc, id } = found;
        let len = inc.frame.len - wire::HEADER;
        let mut body = Vec::with_capacity(len);
        self.col
            .input_buf(inc.seat)
            .append_to(inc.frame.at + wire::HEADER, len, &mut body);
        self.link.check_intact()?;
        release(&mut self.col, &self.link, &inc);
        Ok(Request {
            client: client_of(&self.link, &inc),
            id,
            body,
        })
    }

    /// Lends the request out, once checked against a shrink of the object.
    fn guard(&mut self, found: Found) -> Result<RequestRef<'_>> {
        self.link.check_intact()?;
        let Found { inc, id } = found;
        let Server {
            col,
            link,
            spin,
            respond_timeout,
            ..
        } = self;
        let link = &*link;
        let view = link.region.view(
            link,
            col.input_buf(inc.seat),
            inc.frame.at + wire::HEADER,
            inc.frame.len - wire::HEADER,
        );
        Ok(RequestRef {
            client: client_of(link, &inc),
            id,
            col,
            link,
            inc,
            view,
            spin: *spin,
            respond_timeout: *respond_timeout,
        })
    }

    /// Sends `body` as the answer to request `id` of `client`. A response
    /// to a client that has gone (or to a seat a new client took since) is
    /// dropped, and this returns `Ok`.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the client's response ring stayed full for
    /// [`Options::respond_timeout`] (the response is dropped: a slow
    /// client holds the server up no longer); `Failed` with
    /// [`Error::MessageTooLarge`], [`Error::Corrupt`], [`Error::InvalidArgument`]
    /// (no such seat).
    pub fn respond(&mut self, client: ClientId, id: u64, body: &[u8]) -> std::result::Result<(), TrySendError> {
        self.send_response(client, id, wire::OK, body, self.respond_timeout)
    }

    /// Sends `body` as an error response to request `id` of `client`: the
    /// client's [`Response`](super::Response) has [`Status::Error`](super::Status::Error).
    ///
    /// # Errors
    /// As [`respond`](Server::respond).
    pub fn respond_error(&mut self, client: ClientId, id: u64, body: &[u8]) -> std::result::Result<(), TrySendError> {
        self.send_response(client, id, wire::ERROR, body, self.respond_timeout)
    }

    /// Like [`respond`](Server::respond), never waiting. A client that has
    /// gone (left or died) gets nothing: `Ok`, as `respond` drops it.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the client's response ring has no room
    /// now, or the errors of `respond`.
    pub fn try_respond(&mut self, client: ClientId, id: u64, body: &[u8]) -> std::result::Result<(), TrySendError> {
        self.send_response(client, id, wire::OK, body, Duration::ZERO)
    }

    fn send_response(
        &mut self,
        client: ClientId,
        id: u64,
        status: u64,
        body: &[u8],
        patience: Duration,
    ) -> std::result::Result<(), TrySendError> {
        let Server { col, link, spin, .. } = self;
        send_response(col, link, *spin, client, id, status, body, patience)
    }

    /// The number of client seats (N).
    pub fn clients(&self) -> usize {
        self.col.seats()
    }

    /// The longest request or response body.
    pub fn max_message(&self) -> usize {
        self.link.max_message() - wire::HEADER
    }

    /// A snapshot of the service, as [`super::info`] gives for a name.
    pub fn info(&self) -> super::ServiceInfo {
        super::info::read(&self.link.region, &self.link.member.seg().shm, Some(0))
    }
}

/// # Polling
/// The server's descriptor (`AsFd`) is readable when a request came. Take
/// it and wait on it with `poll(2)`, `epoll`, a
/// [`WaitSet`](crate::wait::WaitSet) or an async runtime (it is
/// [`Pollable`](crate::wait::Pollable)); the server is then in poll mode:
/// [`try_recv_request`](Server::try_recv_request) and
/// [`try_recv_request_ref`](Server::try_recv_request_ref) arm it when they
/// return `Empty`. A readable descriptor may be a spurious wake-up: try
/// again, which arms it. The first time it is taken, the server makes its
/// doorbell (a FIFO beside the object in `/dev/shm`, removed when it
/// leaves). [`Server::try_respond`] does not arm it (a full response ring
/// is a slow client's: its response is dropped or retried later).
///
/// ```
/// use shmkit::service::{Client, Options, Server, TryRecvError};
/// use shmkit::wait::readable;
/// use std::time::Duration;
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-svc-spoll-{}", std::process::id()))?;
/// let mut server = Server::connect(&name, &Options::new().clients(1))?;
/// let (n2, o2) = (name.clone(), Options::new());
/// let client = std::thread::spawn(move || -> shmkit::Result<Vec<u8>> {
///     let mut client = Client::connect(&n2, &o2)?;
///     std::thread::sleep(Duration::from_millis(20));
///     Ok(client.call(b"hi")?.body)
/// });
/// loop {
///     match server.try_recv_request() {
///         Ok(req) => {
///             server.respond(req.client, req.id, b"hello").unwrap();
///             break;
///         }
///         Err(TryRecvError::Empty) => {
///             readable(&server, Some(Duration::from_secs(10)))?;
///         }
///         Err(e) => return Err(e.into_error().unwrap()),
///     }
/// }
/// assert_eq!(client.join().unwrap()?, b"hello");
/// # Ok::<(), shmkit::Error>(())
/// ```
impl AsFd for Server {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.link.poll.fd()
    }
}

impl AsRawFd for Server {
    fn as_raw_fd(&self) -> RawFd {
        self.link.poll.fd().as_raw_fd()
    }
}

/// Sends a response of `status` to request `id` of `client` (see
/// [`Server::respond`]), waiting at most `patience` for room.
#[allow(clippy::too_many_arguments)]
fn send_response(
    col: &mut Collector,
    link: &Link,
    spin: Duration,
    client: ClientId,
    id: u64,
    status: u64,
    body: &[u8],
    patience: Duration,
) -> std::result::Result<(), TrySendError> {
    let s = client.seat;
    if s >= col.seats() {
        return Err(TrySendError::Failed(Error::InvalidArgument {
            target: link.target().clone(),
            reason: format!("no client seat {s}"),
        }));
    }
    if col.gen(s) != client.generation {
        return Ok(()); // another client has the seat now
    }
    if id > wire::MAX_ID {
        return Err(TrySendError::Failed(Error::InvalidArgument {
            target: link.target().clone(),
            reason: format!("no request has id {id}"),
        }));
    }
    let len = wire::HEADER + body.len();
    let ring = col.output(s).expect("a service seat has two rings");
    let reserved = match ring.reserve(len) {
        Ok(r) => r,
        Err(RingError::Full) => {
            let deadline = event::deadline(patience);
            let gone = std::cell::Cell::new(false);
            let waited = event::wait_for(
                &link.region.ctl(s).out_space,
                spin,
                deadline,
                || match ring.reserve(len) {
                    Ok(r) => Ok(Some(r)),
                    Err(RingError::Full) => Ok(None),
                    Err(e) => Err(ring_error(link, e)),
                },
                || {
                    link.member.check_interrupt()?;
                    link.check_size()?;
                    if !matches!(link.member.presence(1 + s)?, Presence::Alive { .. }) {
                        gone.set(true);
                        return Err(Error::Closed {
                            target: link.target().clone(),
                            side: Role::Client,
                        });
                    }
                    Ok(())
                },
            );
            match waited {
                Ok(r) => r,
                Err(_) if gone.get() => return Ok(()), // dropped: the client has gone
                // A wait that timed out before it looked at the client (no
                // patience: `try_respond`): look once, so that a dead
                // client's full ring is not `Full` for ever.
                Err(Stop::TimedOut) if matches!(link.member.presence(1 + s), Ok(p) if !matches!(p, Presence::Alive { .. })) => {
                    return Ok(())
                }
                Err(Stop::TimedOut) => return Err(TrySendError::Full),
                Err(Stop::Failed(e)) => return Err(TrySendError::from(e)),
            }
        }
        Err(e) => return Err(TrySendError::Failed(ring_error(link, e))),
    };
    let buf = ring.buf();
    wire::write(buf, reserved.at, id, status);
    buf.write(reserved.at + wire::HEADER, body);
    ring.commit(reserved);
    let fenceless = col.fenceless_for(s);
    link.notify_spoke(s, &link.region.ctl(s).reply, fenceless);
    link.check_written(fenceless).map_err(TrySendError::Failed)
}

/// A request frame found and checked, and its id.
#[derive(Debug, Clone, Copy)]
struct Found {
    inc: Incoming,
    id: u64,
}

/// Who sent the request in `inc`.
fn client_of(link: &Link, inc: &Incoming) -> ClientId {
    ClientId {
        seat: inc.seat,
        generation: inc.gen,
        pid: link.region.ctl(inc.seat).pid.load(Ordering::Relaxed),
    }
}

/// A request in place; see [`Server::recv_request_ref`]. It derefs to a
/// [`View`] of the request's body; dropping it gives the space back to the
/// client (unanswered: answer later with [`Server::respond`] and
/// [`client`](RequestRef::client), [`id`](RequestRef::id)).
#[derive(Debug)]
pub struct RequestRef<'a> {
    col: &'a mut Collector,
    link: &'a Link,
    inc: Incoming,
    client: ClientId,
    id: u64,
    view: View<'a>,
    spin: Duration,
    respond_timeout: Duration,
}

impl RequestRef<'_> {
    /// The client, to pass to [`Server::respond`].
    pub fn client(&self) -> ClientId {
        self.client
    }

    /// The client's number for the request, to pass to `respond`.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Answers the request with `body` (as [`Server::respond`]), then gives
    /// its space back.
    ///
    /// # Errors
    /// As [`Server::respond`].
    pub fn respond(self, body: &[u8]) -> std::result::Result<(), TrySendError> {
        self.answer(wire::OK, body)
    }

    /// Answers the request with an error response (as
    /// [`Server::respond_error`]), then gives its space back.
    ///
    /// # Errors
    /// As [`Server::respond`].
    pub fn respond_error(self, body: &[u8]) -> std::result::Result<(), TrySendError> {
        self.answer(wire::ERROR, body)
    }

    fn answer(self, status: u64, body: &[u8]) -> std::result::Result<(), TrySendError> {
        let patience = self.respond_timeout;
        send_response(
            self.col,
            self.link,
            self.spin,
            self.client,
            self.id,
            status,
            body,
            patience,
        )
        // (dropping self releases the request)
    }
}

impl<'a> Deref for RequestRef<'a> {
    type Target = View<'a>;
    fn deref(&self) -> &View<'a> {
        &self.view
    }
}

impl Drop for RequestRef<'_> {
    fn drop(&mut self) {
        release(self.col, self.link, &self.inc);
    }
}
