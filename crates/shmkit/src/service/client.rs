//! A client.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::core::event::{self, Stop};
use crate::core::ring::{Consumer, Producer, Reservation, RingError};
use crate::error::{Error, Result, Role};
use crate::many_to_one::connect::{self, Link};
use crate::many_to_one::seats;
use crate::many_to_one::sender::ring_error;
use crate::posix::ShmName;

use super::wire;
use super::{Options, Response, Status, TryRecvError, TrySendError};

/// A client of a service. See the [module docs](super).
#[derive(Debug)]
pub struct Client {
    requests: Producer,
    responses: Consumer,
    link: Link,
    gen: u32,
    next_id: u64,
    /// Requests sent whose responses have not been taken, in ascending
    /// order (ids only grow): usually one, so a sorted `Vec` beats hashing.
    pending: Vec<u64>,
    /// Responses that came while another was awaited (out of order: rare).
    stash: Vec<(u64, Response)>,
    timeout: Option<Duration>,
    spin: Duration,
    /// Which of its two events a polled client has armed and not seen
    /// rung since: room (`space`) and responses (`reply`). Both ring one
    /// doorbell, which each arming drains (see [`Client::rearmed`]).
    armed: Armed,
}

/// The events a polled client has armed (see [`Client::rearmed`]).
#[derive(Debug, Default, Clone, Copy)]
struct Armed {
    space: bool,
    reply: bool,
}

impl Client {
    /// Connects to the service `name` as one of its clients, creating the
    /// object if it does not exist, and waits for the server (at most
    /// [`Options::timeout`]).
    ///
    /// # Errors
    /// [`Error::Busy`] if every seat is taken; [`Error::TimedOut`] if no
    /// server came in time; [`Error::Closed`] or [`Error::PeerGone`] if the
    /// server has left or died; [`Error::InvalidArgument`] if the service
    /// exists with another number of seats than [`Options::clients`];
    /// [`Error::CapacityMismatch`]; [`Error::Corrupt`] if `name` is not a
    /// service.
    pub fn connect(name: &ShmName, opts: &Options) -> Result<Client> {
        let mut link = connect::join(name, &opts.want(false), Role::Server)?;
        let s = link.seat();
        let fresh = link.member.previous() == crate::core::slots::Presence::Empty;
        let gen = seats::claim_ring(&link.region, s, fresh);
        link.ring_hub(); // a polled server settles the seats too
        link.wait_for_ring(gen, connect::deadline_of(opts.timeout), "a server")?;
        Ok(Client {
            requests: seats::sender_half(&link.region, s),
            responses: seats::client_half(&link.region, s),
            link,
            gen,
            next_id: 1,
            pending: Vec::new(),
            stash: Vec::new(),
            armed: Armed::default(),
            timeout: opts.timeout,
            spin: opts.spin,
        })
    }

    /// Sends `request` and waits for the server's response to it (at most
    /// [`Options::timeout`]).
    ///
    /// # Errors
    /// [`Error::TimedOut`] (the request is abandoned: a late response is
    /// dropped); [`Error::PeerGone`] if the server died, [`Error::Closed`]
    /// if it left; [`Error::MessageTooLarge`]; [`Error::Corrupt`];
    /// [`Error::Interrupted`].
    pub fn call(&mut self, request: &[u8]) -> Result<Response> {
        let deadline = connect::deadline_of(self.timeout);
        let id = self.send_until(request, deadline)?;
        self.receive_until(id, deadline)
    }

    /// Like [`call`](Client::call), waiting at most `timeout` in all.
    ///
    /// # Errors
    /// As [`call`](Client::call).
    pub fn call_timeout(&mut self, request: &[u8], timeout: Duration) -> Result<Response> {
        let deadline = event::deadline(timeout);
        let id = self.send_until(request, deadline)?;
        self.receive_until(id, deadline)
    }

    /// Sends `request` without waiting for its response; returns its id,
    /// for [`receive_response`](Client::receive_response). Waits (at most
    /// [`Options::timeout`]) only while the request ring is full.
    ///
    /// # Examples
    /// ```
    /// # use shmkit::service::{Client, Options, Server};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-svc-many-{}", std::process::id()))?;
    /// # let mut server = Server::connect(&name, &Options::new().clients(1))?;
    /// let mut client = Client::connect(&name, &Options::new())?;
    /// let a = client.send_request(b"a")?;
    /// let b = client.send_request(b"b")?;
    /// # for _ in 0..2 { let r = server.recv_request()?; server.respond(r.client, r.id, &r.body.repeat(2)).unwrap(); }
    /// assert_eq!(client.receive_response(b)?.body, b"bb");
    /// assert_eq!(client.receive_response(a)?.body, b"aa");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`call`](Client::call).
    pub fn send_request(&mut self, request: &[u8]) -> Result<u64> {
        self.send_until(request, connect::deadline_of(self.timeout))
    }

    /// Like [`send_request`](Client::send_request), waiting at most
    /// `timeout` (instead of [`Options::timeout`]) while the request ring is
    /// full. A time-out sends nothing, so that a caller can wait in slices
    /// (checking for other things in between) and try again.
    ///
    /// # Errors
    /// [`Error::TimedOut`] if the ring stayed full (nothing was sent, no
    /// id taken: [`pending`](Client::pending) is unchanged); the others of
    /// [`call`](Client::call).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::service::{Client, Options, Server};
    /// # use std::time::Duration;
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-svc-sendto-{}", std::process::id()))?;
    /// // rings of 64 bytes: a few requests fill one
    /// let mut server = Server::connect(&name, &Options::new().clients(1).capacity(64))?;
    /// let mut client = Client::connect(&name, &Options::new())?;
    /// let mut sent = 0;
    /// let err = loop {
    ///     match client.send_request_timeout(b"ping", Duration::from_millis(10)) {
    ///         Ok(_) => sent += 1,
    ///         Err(e) => break e, // the server takes nothing: full
    ///     }
    /// };
    /// assert!(matches!(err, shmkit::Error::TimedOut { .. }));
    /// assert_eq!(client.pending(), sent); // the one that timed out was not sent
    /// for _ in 0..sent {
    ///     server.recv_request()?; // the server takes them: room again
    /// }
    /// client.send_request_timeout(b"ping", Duration::from_secs(10))?;
    /// assert_eq!(client.pending(), sent + 1);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn send_request_timeout(&mut self, request: &[u8], timeout: Duration) -> Result<u64> {
        self.send_until(request, event::deadline(timeout))
    }

    /// Waits for the response to request `id` (at most
    /// [`Options::timeout`]); responses to other pending requests that come
    /// first are kept for their own `receive_response`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `id` is not pending; the errors of
    /// [`call`](Client::call). After [`Error::TimedOut`] the request is
    /// abandoned.
    pub fn receive_response(&mut self, id: u64) -> Result<Response> {
        self.receive_until(id, connect::deadline_of(self.timeout))
    }

    /// Like [`receive_response`](Client::receive_response), waiting at most
    /// `timeout` — but a time-out leaves the request pending, so that a
    /// caller can wait in slices (checking for other things in between)
    /// and [`abandon`](Client::abandon) it when it gives up.
    ///
    /// # Errors
    /// As `receive_response`; after [`Error::TimedOut`] the request is
    /// still pending.
    ///
    /// # Examples
    /// ```
    /// # use shmkit::service::{Client, Options, Server};
    /// # use std::time::Duration;
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-svc-slices-{}", std::process::id()))?;
    /// # let mut server = Server::connect(&name, &Options::new())?;
    /// let mut client = Client::connect(&name, &Options::new())?;
    /// let id = client.send_request(b"slow")?;
    /// assert!(client.receive_response_timeout(id, Duration::from_millis(10)).is_err());
    /// assert_eq!(client.pending(), 1); // still waiting for it
    /// # let r = server.recv_request()?; server.respond(r.client, r.id, b"done").unwrap();
    /// assert_eq!(client.receive_response_timeout(id, Duration::from_secs(10))?.body, b"done");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn receive_response_timeout(&mut self, id: u64, timeout: Duration) -> Result<Response> {
        self.receive_until_keeping(id, event::deadline(timeout), true)
    }

    /// Gives up on request `id`: its response will be dropped.
    pub fn abandon(&mut self, id: u64) {
        self.forget(id);
        if let Some(i) = self.stash.iter().position(|(k, _)| *k == id) {
            self.stash.swap_remove(i);
        }
    }

    /// Takes `id` off the pending requests.
    #[inline]
    fn forget(&mut self, id: u64) {
        if let Ok(i) = self.pending.binary_search(&id) {
            self.pending.remove(i);
        }
    }

    /// The requests sent whose responses have not been received.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn send_until(&mut self, request: &[u8], deadline: Option<Instant>) -> Result<u64> {
        if self.link.collector_closed() {
            self.link.collector_present()?;
        }
        let len = wire::HEADER + request.len();
        let Client {
            requests, link, spin, ..
        } = self;
        let link = &*link;
        let r = match requests.reserve(len) {
            Ok(r) => r,
            Err(RingError::Full) => event::wait_for(
                &link.region.ctl(link.seat()).space,
                *spin,
                deadline,
                || match requests.reserve(len) {
                    Ok(r) => Ok(Some(r)),
                    Err(RingError::Full) => Ok(None),
                    Err(e) => Err(too_large(link, e)),
                },
                || link.check_wait(),
            )
            .map_err(|stop| self.stop_error(stop, "room for the request"))?,
            Err(e) => return Err(too_large(link, e)),
        };
        self.commit_request(r, request)
    }

    /// Writes `request` into the reservation `r`, publishes it and tells
    /// the server; returns its id.
    #[inline(always)]
    fn commit_request(&mut self, r: Reservation, request: &[u8]) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let buf = self.requests.buf();
        wire::write(buf, r.at, id, wire::REQUEST);
        buf.write(r.at + wire::HEADER, request);
        self.requests.commit(r);
        let fenceless = self.link.fenceless();
        self.link.notify_hub(&self.link.region.top().data, fenceless);
        self.link.check_written(fenceless)?;
        self.pending.push(id);
        Ok(id)
    }

    fn receive_until(&mut self, id: u64, deadline: Option<Instant>) -> Result<Response> {
        self.receive_until_keeping(id, deadline, false)
    }

    /// The response to `id` if it was stashed (taking it off the pending
    /// requests); `InvalidArgument` if `id` is not pending.
    #[inline(always)]
    fn stashed(&mut self, id: u64) -> Result<Option<Response>> {
        if !self.stash.is_empty() {
            if let Some(i) = self.stash.iter().position(|(k, _)| *k == id) {
                self.forget(id);
                return Ok(Some(self.stash.swap_remove(i).1));
            }
        }
        if self.pending.binary_search(&id).is_err() {
            return Err(Error::InvalidArgument {
                target: self.link.target().clone(),
                reason: format!("request {id} is not pending"),
            });
        }
        Ok(None)
    }

    /// Waits for the response to `id` until `deadline`; after a time-out
    /// the request is abandoned unless `keep`.
    fn receive_until_keeping(&mut self, id: u64, deadline: Option<Instant>, keep: bool) -> Result<Response> {
        if let Some(r) = self.stashed(id)? {
            return Ok(r);
        }
        let Client {
            responses,
            link,
            pending,
            stash,
            spin,
            ..
        } = self;
        let link = &*link;
        let got = event::wait_for(
            &link.region.ctl(link.seat()).reply,
            *spin,
            deadline,
            || next_response(responses, link, pending, stash, id),
            || link.check_wait(),
        );
        match got {
            Ok(r) => {
                self.forget(id);
                Ok(r)
            }
            Err(stop) => {
                if matches!(stop, Stop::TimedOut) && !keep {
                    self.abandon(id);
                }
                Err(self.stop_error(stop, "the server's response"))
            }
        }
    }

    /// The response to request `id` if it is there now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] (the request stays pending);
    /// `Failed` with [`Error::InvalidArgument`] if `id` is not pending;
    /// `Disconnected` once the server is gone and the response with it;
    /// the errors of [`call`](Client::call).
    ///
    /// Once the client's [descriptor](Client#polling) has been taken, an
    /// `Empty` result also arms it: it becomes readable when a response
    /// comes (or the server leaves, or dies).
    pub fn try_receive_response(&mut self, id: u64) -> std::result::Result<Response, TryRecvError> {
        if let Some(r) = self.stashed(id)? {
            return Ok(r);
        }
        let polled = self.link.poll.polled();
        let region = self.link.region;
        let reply = &region.ctl(self.link.seat()).reply;
        for attempt in 0..2 {
            let Client {
                responses,
                link,
                pending,
                stash,
                ..
            } = self;
            let got = next_response(responses, link, pending, stash, id);
            if attempt == 1 && !matches!(got, Ok(None)) {
                self.link.poll.disarm(reply);
                self.armed.reply = false;
            }
            if let Some(r) = got? {
                self.forget(id);
                return Ok(r);
            }
            if attempt == 1 || !polled {
                break;
            }
            let drained = self.link.arm(reply)?;
            self.armed.reply = true;
            self.rearmed(drained, true);
        }
        self.link.member.check_interrupt()?;
        self.link.check_size()?;
        if polled {
            self.link.check_hub_polled()?;
        } else {
            self.link.collector_present()?;
        }
        Err(TryRecvError::Empty)
    }

    /// Sends `request` if there is room now; returns its id, for
    /// [`receive_response`](Client::receive_response) or
    /// [`try_receive_response`](Client::try_receive_response).
    ///
    /// # Errors
    /// [`TrySendError::Full`], or the errors of [`call`](Client::call).
    ///
    /// Once the client's [descriptor](Client#polling) has been taken, a
    /// `Full` result also arms it: it becomes readable when the server
    /// makes room (or leaves, or dies).
    pub fn try_send_request(&mut self, request: &[u8]) -> std::result::Result<u64, TrySendError> {
        if self.link.collector_closed() {
            self.link.collector_present()?;
        }
        let len = wire::HEADER + request.len();
        let r = match self.requests.reserve(len) {
            Ok(r) => r,
            Err(RingError::Full) => self.when_full(len)?,
            Err(e) => return Err(TrySendError::from(too_large(&self.link, e))),
        };
        Ok(self.commit_request(r, request)?)
    }

    /// After arming one of its two events (`reply`: responses, else room),
    /// which drained the doorbell (`drained`: it held a ring): if the
    /// *other* event is armed and its poller bit is gone, a notifier
    /// consumed the bit and rang for it — the ring just drained — so the
    /// doorbell is rung again, and that event no longer counts as armed
    /// (its bit is this client's alone). Without this, a client that looks
    /// for a response after `Full` would wait for room that already came.
    fn rearmed(&mut self, drained: bool, reply: bool) {
        let other_armed = if reply { self.armed.space } else { self.armed.reply };
        if !drained || !other_armed {
            return;
        }
        let ctl = self.link.region.ctl(self.link.seat());
        let other = if reply { &ctl.space } else { &ctl.reply };
        if other.waiters.load(std::sync::atomic::Ordering::Relaxed) & crate::core::event::POLLERS == 0 {
            if reply {
                self.armed.space = false;
            } else {
                self.armed.reply = false;
            }
            self.link.poll.ring_self();
        }
    }

    /// The request ring was full at the first look: arm (when polled) and
    /// look once more; `Full` unless the server is gone.
    #[cold]
    fn when_full(&mut self, len: usize) -> std::result::Result<Reservation, TrySendError> {
        let polled = self.link.poll.polled();
        if polled {
            let region = self.link.region;
            let space = &region.ctl(self.link.seat()).space;
            let drained = self.link.arm(space)?;
            self.armed.space = true;
            self.rearmed(drained, false);
            let again = self.requests.reserve(len);
            if !matches!(again, Err(RingError::Full)) {
                self.link.poll.disarm(space);
                self.armed.space = false;
            }
            match again {
                Ok(r) => return Ok(r),
                Err(RingError::Full) => {}
                Err(e) => return Err(TrySendError::from(too_large(&self.link, e))),
            }
        }
        self.link.member.check_interrupt()?;
        self.link.check_size()?;
        if polled {
            self.link.check_hub_polled()?;
        } else {
            self.link.collector_present()?;
        }
        Err(TrySendError::Full)
    }

    fn stop_error(&self, stop: Stop<Error>, waiting_for: &'static str) -> Error {
        match stop {
            Stop::Failed(e) => e,
            Stop::TimedOut => Error::TimedOut {
                target: self.link.target().clone(),
                waiting_for,
            },
        }
    }

    /// The longest request (or response) body.
    pub fn max_message(&self) -> usize {
        self.link.max_message() - wire::HEADER
    }

    /// This client's identity, as the server sees it.
    pub fn id(&self) -> super::ClientId {
        super::ClientId {
            seat: self.link.seat(),
            generation: self.gen,
            pid: std::process::id(),
        }
    }
}

/// # Polling
/// The client's descriptor (`AsFd`) is readable when it may make progress:
/// a response came, the server made room for a request, or the server left
/// or died. Take it and wait on it with `poll(2)`, `epoll`, a
/// [`WaitSet`](crate::wait::WaitSet) or an async runtime (it is
/// [`Pollable`](crate::wait::Pollable)); the client is then in poll mode:
/// [`try_receive_response`](Client::try_receive_response) (`Empty`) and
/// [`try_send_request`](Client::try_send_request) (`Full`) arm it. A
/// readable descriptor may be a spurious wake-up: try again, which arms it.
/// The first time it is taken, the client makes its doorbell (a FIFO beside
/// the object in `/dev/shm`, removed when it leaves) and watches the
/// server's *life*, a FIFO the server holds open while it serves: its
/// hang-up tells the server's death in any PID namespace, without a timer.
///
/// ```
/// use shmkit::service::{Client, Options, Server, TryRecvError};
/// use shmkit::wait::WaitSet;
/// use std::time::Duration;
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-svc-poll-{}", std::process::id()))?;
/// let mut server = Server::connect(&name, &Options::new().clients(1))?;
/// let mut client = Client::connect(&name, &Options::new())?;
/// let id = client.try_send_request(b"ping").unwrap();
/// let answer = std::thread::spawn(move || -> shmkit::Result<()> {
///     let req = server.recv_request()?;
///     std::thread::sleep(Duration::from_millis(20));
///     server.respond(req.client, req.id, b"pong").unwrap();
///     Ok(())
/// });
/// let mut set = WaitSet::new()?;
/// set.add(&client, 7)?;
/// let response = loop {
///     match client.try_receive_response(id) {
///         Ok(r) => break r,
///         Err(TryRecvError::Empty) => {
///             set.wait(Some(Duration::from_secs(10)))?;
///         }
///         Err(e) => return Err(e.into_error().unwrap()),
///     }
/// };
/// assert_eq!(response.body, b"pong");
/// answer.join().unwrap()?;
/// # Ok::<(), shmkit::Error>(())
/// ```
impl AsFd for Client {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.link.poll.fd()
    }
}

impl AsRawFd for Client {
    fn as_raw_fd(&self) -> RawFd {
        self.link.poll.fd().as_raw_fd()
    }
}

/// A ring error of a request: a request too large is reported with the
/// body's sizes.
fn too_large(link: &Link, e: RingError) -> Error {
    match e {
        RingError::TooLarge { len, max } => Error::MessageTooLarge {
            target: link.target().clone(),
            len: len - wire::HEADER as u64,
            max: max - wire::HEADER as u64,
        },
        e => ring_error(link, e),
    }
}

/// Takes the responses there now until the one to `id` (returned); others
/// to pending requests go to `stash`, the rest (abandoned) are dropped.
#[inline]
fn next_response(
    responses: &mut Consumer,
    link: &Link,
    pending: &[u64],
    stash: &mut Vec<(u64, Response)>,
    id: u64,
) -> Result<Option<Response>> {
    loop {
        let frame = match responses.peek() {
            Ok(f) => f,
            Err(RingError::Empty) => return Ok(None),
            Err(e) => return Err(ring_error(link, e)),
        };
        let buf = responses.buf();
        let head = wire::read(buf, frame.at, frame.len);
        let body = match head {
            Some(_) => {
                let mut body = Vec::with_capacity(frame.len - wire::HEADER);
                buf.append_to(frame.at + wire::HEADER, frame.len - wire::HEADER, &mut body);
                body
            }
            None => Vec::new(),
        };
        link.check_intact()?;
        responses.release(frame);
        link.region.ctl(link.seat()).out_space.notify(link.fenceless());
        let (got, kind) = head.ok_or_else(|| link.member.corrupt("a response shorter than its header"))?;
        let status = match kind {
            wire::OK => Status::Ok,
            wire::ERROR => Status::Error,
            other => return Err(link.member.corrupt(format!("a response of unknown kind {other}"))),
        };
        let response = Response { status, body };
        if got == id {
            return Ok(Some(response));
        }
        // (a second response to one request, a hostile server's, is
        // dropped: the stash stays as small as the pending set)
        if pending.binary_search(&got).is_ok() && !stash.iter().any(|(k, _)| *k == got) {
            stash.push((got, response));
        } // else: abandoned, dropped
    }
}
