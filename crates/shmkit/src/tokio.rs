//! Async channel endpoints for tokio (feature `tokio`).
//!
//! [`Sender`] and [`Receiver`] wrap the blocking endpoints of
//! [`crate::channel`] in tokio's [`AsyncFd`]: the endpoint's descriptor
//! (its bell, see [`crate::wait`]) is registered with the runtime's reactor,
//! and every async method is a `try_*` call in a loop that waits for the
//! descriptor when the call finds nothing to do — which arms it, so the
//! other side rings only then. A busy conversation never reaches the
//! reactor: each call finds its message (or room) at once. A dead or
//! departed peer hangs the descriptor up, which wakes the task, and the next
//! call returns [`Error::PeerGone`] or [`Error::Closed`].
//!
//! Works on the current-thread and the multi-thread runtime, with
//! `tokio::time::timeout` and `tokio::select!` (see each method's
//! `# Cancel safety`). An endpoint may spin briefly before it yields to the
//! runtime ([`Receiver::set_spin`], [`Sender::set_spin`]; off by default):
//! a fast conversation then does not pay a wake-up per message, at the price
//! of the spinning thread.
//!
//! # Examples
//! ```
//! use shmkit::channel::Options;
//! use shmkit::tokio::{Receiver, Sender};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> shmkit::Result<()> {
//! let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-tokio-{}", std::process::id()))?;
//! let n2 = name.clone();
//! let consumer = tokio::spawn(async move {
//!     let mut rx = Receiver::connect(&n2, &Options::new()).await?;
//!     let mut n = 0;
//!     while let Some(msg) = rx.recv_or_closed().await? {
//!         assert_eq!(msg, format!("message {n}").as_bytes());
//!         n += 1;
//!     }
//!     Ok::<_, shmkit::Error>(n)
//! });
//! let mut tx = Sender::connect(&name, &Options::new()).await?;
//! for i in 0..1000 {
//!     tx.send(format!("message {i}").as_bytes()).await?;
//! }
//! drop(tx);
//! assert_eq!(consumer.await.unwrap()?, 1000);
//! # Ok(()) }
//! ```

use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::Interest;

use crate::channel::{self, Grant, Options, RecvGuard, TryRecvError, TrySendError};
use crate::error::{Error, Result, Target};
use crate::posix::ShmName;
use crate::wait::Pollable;

fn reactor_error(target: &Target, e: io::Error) -> Error {
    let errno = rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO);
    Error::Os {
        target: target.clone(),
        op: "tokio reactor",
        source: errno,
    }
}

/// Runs a blocking `connect` on tokio's blocking pool.
async fn connect_blocking<T: Send + 'static>(
    name: &ShmName,
    opts: &Options,
    connect: fn(&ShmName, &Options) -> Result<T>,
) -> Result<T> {
    let target = Target::Posix(name.clone());
    let (name, opts) = (name.clone(), opts.clone());
    match ::tokio::task::spawn_blocking(move || connect(&name, &opts)).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // the runtime is shutting down
        Err(_) => Err(Error::Interrupted { target }),
    }
}

/// Registers an endpoint's descriptor with the runtime's reactor, for
/// readability (a bell is never writable).
fn register<T: AsRawFd>(inner: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T` is a channel endpoint, whose descriptor is its bell's read
    // end: made in `connect`, never replaced and closed only when the
    // endpoint is dropped, so it stays open and the same for as long as the
    // `AsyncFd` owns the endpoint, and `as_raw_fd` returns it every time;
    // or a `ByFd` of a `Pollable` endpoint, whose trait (sealed: shmkit's
    // endpoints only) promises the same.
    unsafe { AsyncFd::register_with_interest(inner, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

/// Spins until `ready()` or `spin` has passed.
fn spin_until(spin: Duration, mut ready: impl FnMut() -> bool) {
    if spin.is_zero() || ready() {
        return;
    }
    let start = Instant::now();
    let mut n: u32 = 0;
    while !ready() {
        std::hint::spin_loop();
        n = n.wrapping_add(1);
        if n % 64 == 0 {
            let waited = start.elapsed();
            if waited >= spin {
                return;
            }
            // as the blocking wait does (core::event::wait_for): a long
            // wait offers the core to a process that may need it
            if waited >= crate::core::event::SPIN_ALONE {
                std::thread::yield_now();
            }
        }
    }
}

/// A `try_*` call that lends part of its endpoint out — a message in
/// place, room reserved — and whose error borrows nothing.
trait TryLend: AsRawFd {
    /// What the call takes besides the endpoint.
    type Arg: Copy;
    /// What it lends: borrows the endpoint.
    type Lent<'a>
    where
        Self: 'a;
    /// Its error: "nothing yet" or a failure; borrows nothing (`'static`).
    type Error: 'static;

    /// The call: lends, or says why not (arming the descriptor when there
    /// is nothing yet).
    fn try_lend(&mut self, arg: Self::Arg) -> std::result::Result<Self::Lent<'_>, Self::Error>;

    /// The failure, or `None` for "nothing yet" (the call armed the
    /// descriptor).
    fn failure(e: Self::Error) -> Option<Error>;

    /// The object, for the reactor's errors.
    fn target(&self) -> &Target;
}

impl TryLend for channel::Receiver {
    type Arg = ();
    type Lent<'a> = RecvGuard<'a>;
    type Error = TryRecvError;

    fn try_lend(&mut self, (): ()) -> std::result::Result<RecvGuard<'_>, TryRecvError> {
        self.try_recv_ref()
    }

    fn failure(e: TryRecvError) -> Option<Error> {
        e.into_error()
    }

    fn target(&self) -> &Target {
        channel::Receiver::target(self)
    }
}

impl TryLend for channel::Sender {
    type Arg = usize;
    type Lent<'a> = Grant<'a>;
    type Error = TrySendError;

    fn try_lend(&mut self, len: usize) -> std::result::Result<Grant<'_>, TrySendError> {
        self.try_reserve(len)
    }

    fn failure(e: TrySendError) -> Option<Error> {
        e.into_error()
    }

    fn target(&self) -> &Target {
        channel::Sender::target(self)
    }
}

/// One `try_lend` on the endpoint in `fd`: what it lent, borrowing the
/// endpoint for all of `'a`; or its error, and `fd` back to wait on.
fn try_lend<'a, T: TryLend>(
    fd: &'a mut AsyncFd<T>,
    arg: T::Arg,
) -> std::result::Result<T::Lent<'a>, (T::Error, &'a mut AsyncFd<T>)> {
    let inner: *mut T = fd.get_mut();
    // SAFETY: `inner` is the endpoint `fd` holds, reborrowed for `'a`, and
    // `fd` is not touched while that borrow may live. On `Ok` the lent value
    // holds the borrow for the rest of `'a`, and `fd` is dropped unused. On
    // `Err` nothing holds it any more: `try_lend` is generic over its
    // borrow's lifetime, so it can keep the borrow only in what it lends,
    // and its error is `'static` — so `fd` is free to use again. This is a
    // borrow returned on one branch only, which is sound but which the
    // borrow checker cannot prove yet (NLL "problem case #3",
    // rust-lang/rust#54663; Polonius accepts it).
    let endpoint: &'a mut T = unsafe { &mut *inner };
    match endpoint.try_lend(arg) {
        Ok(lent) => Ok(lent),
        Err(e) => Err((e, fd)),
    }
}

/// Lends what the endpoint in `fd` has to lend, waiting for it: as
/// [`Async::until`], a `try_*` call, and when it found nothing (and armed
/// the descriptor) a wait for the descriptor on the reactor, then the call
/// again. What the call that succeeds lends is what is returned: looked at
/// once, lent in the same poll (so cancel safe: a future dropped between
/// polls took nothing).
async fn lend<'a, T: TryLend>(mut fd: &'a mut AsyncFd<T>, arg: T::Arg) -> Result<T::Lent<'a>> {
    loop {
        fd = match try_lend(fd, arg) {
            Ok(lent) => return Ok(lent),
            Err((e, fd)) => match T::failure(e) {
                Some(e) => return Err(e),
                None => fd,
            },
        };
        poll_fn(|cx| poll_rearmed(fd, cx)).await?;
    }
}

/// After a `try_*` call that found nothing to do (and armed the
/// descriptor): `Ready` to call again, or `Pending` until the descriptor is
/// readable. A ring (or the peer's departure) after the call makes it
/// readable; the readiness is cleared before the next call, which sees
/// whatever caused it. Every wait in this module has this shape — call,
/// then wait — so no call ever waits for a readiness that another one
/// cleared while there was something to do.
fn poll_rearmed<T: TryLend>(fd: &mut AsyncFd<T>, cx: &mut Context<'_>) -> Poll<Result<()>> {
    match ready!(fd.poll_read_ready_mut(cx)) {
        Ok(mut ready) => {
            ready.clear_ready();
            Poll::Ready(Ok(()))
        }
        Err(e) => Poll::Ready(Err(reactor_error(fd.get_ref().target(), e))),
    }
}

/// The receiving end of a channel, for async code. See the
/// [module docs](self).
#[derive(Debug)]
pub struct Receiver {
    fd: AsyncFd<channel::Receiver>,
    spin: Duration,
    done: bool,
}

impl Receiver {
    /// Connects as the channel's receiver (as [`channel::Receiver::connect`],
    /// on tokio's blocking pool, since it waits for the sender).
    ///
    /// # Errors
    /// As [`channel::Receiver::connect`].
    ///
    /// # Cancel safety
    /// Not cancel safe: a dropped `connect` still joins the channel in the
    /// background (unless [`Options::timeout`] or [`Options::interrupt`] ends
    /// it) and then leaves it at once, which the sender sees as closed. Set
    /// an interrupt flag to stop it.
    pub async fn connect(name: &ShmName, opts: &Options) -> Result<Receiver> {
        Receiver::new(connect_blocking(name, opts, channel::Receiver::connect).await?)
    }

    /// Wraps a connected blocking receiver; must be called within a tokio
    /// runtime (with its I/O driver enabled).
    ///
    /// # Errors
    /// [`Error::Os`] if the reactor refuses the descriptor.
    pub fn new(inner: channel::Receiver) -> Result<Receiver> {
        let target = inner.target().clone();
        let fd = register(inner).map_err(|e| reactor_error(&target, e))?;
        Ok(Receiver {
            fd,
            spin: Duration::ZERO,
            done: false,
        })
    }

    /// How long a receive spins, looking at the ring, before it yields to
    /// the runtime (default: not at all). The spinning blocks the thread
    /// that runs the task.
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// The next message, waiting for one.
    ///
    /// # Errors
    /// As [`channel::Receiver::recv`]: [`Error::Closed`] once the sender
    /// has left and everything is received, [`Error::PeerGone`] if it died.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is taken from the ring only in the poll that
    /// returns it, so a `recv` dropped (in `select!`, by a timeout) before
    /// it completed took nothing, and the message is there for the next
    /// call.
    pub async fn recv(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.recv_into(&mut out).await?;
        Ok(out)
    }

    /// The next message, or `None` once the sender has closed the channel
    /// and every message is received.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), less [`Error::Closed`].
    ///
    /// # Cancel safety
    /// Cancel safe, as [`recv`](Self::recv).
    pub async fn recv_or_closed(&mut self) -> Result<Option<Vec<u8>>> {
        match self.recv().await {
            Ok(m) => Ok(Some(m)),
            Err(Error::Closed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next message into `buf` (replacing its contents).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    /// Cancel safe, as [`recv`](Self::recv); `buf` is changed only by the
    /// poll that completes.
    pub async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        let Receiver { fd, spin, .. } = self;
        spin_until(*spin, || fd.get_mut().has_message());
        poll_fn(|cx| self.poll_recv_into(cx, buf)).await
    }

    /// The next message in place, zero-copy (see
    /// [`channel::Receiver::recv_ref`]): its space goes back to the sender
    /// when the guard is dropped.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    /// Cancel safe: the message is lent out only by the poll that
    /// completes.
    pub async fn recv_ref(&mut self) -> Result<RecvGuard<'_>> {
        let Receiver { fd, spin, .. } = self;
        spin_until(*spin, || fd.get_mut().has_message());
        lend(fd, ()).await
    }

    /// The next message if there is one now (see
    /// [`channel::Receiver::try_recv`]).
    ///
    /// # Errors
    /// As [`channel::Receiver::try_recv`].
    pub fn try_recv(&mut self) -> std::result::Result<Vec<u8>, TryRecvError> {
        self.fd.get_mut().try_recv()
    }

    /// Receives into `buf` when a message is there, else registers the task
    /// to be woken (the building block of [`recv_into`](Self::recv_into)).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn poll_recv_into(&mut self, cx: &mut Context<'_>, buf: &mut Vec<u8>) -> Poll<Result<()>> {
        loop {
            match self.fd.get_mut().try_recv_into(buf) {
                Ok(()) => return Poll::Ready(Ok(())),
                // armed: wait for the bell
                Err(TryRecvError::Empty) => {}
                Err(e) => return Poll::Ready(Err(e.into_error().expect("not Empty"))),
            }
            ready!(poll_rearmed(&mut self.fd, cx))?;
        }
    }

    /// The blocking receiver inside (for `len`, `info`, `peer_pid`, ...).
    pub fn get_ref(&self) -> &channel::Receiver {
        self.fd.get_ref()
    }

    /// The blocking receiver inside, mutably. Its blocking calls block the
    /// runtime's thread; its `try_*` calls are fine.
    pub fn get_mut(&mut self) -> &mut channel::Receiver {
        self.fd.get_mut()
    }

    /// Takes the blocking receiver back out of the reactor.
    pub fn into_inner(self) -> channel::Receiver {
        self.fd.into_inner()
    }
}

/// Messages until the sender closes the channel (then `None`); an error
/// (the sender died, corruption) is yielded once, then the stream ends.
///
/// ```
/// # use shmkit::channel::Options;
/// use futures_util::StreamExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> shmkit::Result<()> {
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-stream-{}", std::process::id()))?;
/// # let n2 = name.clone();
/// # let t = tokio::spawn(async move {
/// #     let mut tx = shmkit::tokio::Sender::connect(&n2, &Options::new()).await.unwrap();
/// #     for i in 0..10u8 { tx.send(&[i]).await.unwrap(); }
/// # });
/// let rx = shmkit::tokio::Receiver::connect(&name, &Options::new()).await?;
/// let all: Vec<_> = rx.map(|m| m.unwrap()[0]).collect().await;
/// assert_eq!(all, (0..10).collect::<Vec<u8>>());
/// # t.await.unwrap();
/// # Ok(()) }
/// ```
impl futures_core::Stream for Receiver {
    type Item = Result<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut out = Vec::new();
        match ready!(this.poll_recv_into(cx, &mut out)) {
            Ok(()) => Poll::Ready(Some(Ok(out))),
            Err(Error::Closed { .. }) => {
                this.done = true;
                Poll::Ready(None)
            }
            Err(e) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl futures_core::FusedStream for Receiver {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

/// The sending end of a channel, for async code. See the
/// [module docs](self).
#[derive(Debug)]
pub struct Sender {
    fd: AsyncFd<channel::Sender>,
    spin: Duration,
    /// A message the [`Sink`](futures_sink::Sink) accepted while the ring
    /// was full.
    pending: Option<Vec<u8>>,
}

impl Sender {
    /// Connects as the channel's sender (as [`channel::Sender::connect`],
    /// on tokio's blocking pool, since it waits for the receiver).
    ///
    /// # Errors
    /// As [`channel::Sender::connect`].
    ///
    /// # Cancel safety
    /// Not cancel safe, as [`Receiver::connect`].
    pub async fn connect(name: &ShmName, opts: &Options) -> Result<Sender> {
        Sender::new(connect_blocking(name, opts, channel::Sender::connect).await?)
    }

    /// Wraps a connected blocking sender; must be called within a tokio
    /// runtime (with its I/O driver enabled).
    ///
    /// # Errors
    /// [`Error::Os`] if the reactor refuses the descriptor.
    pub fn new(inner: channel::Sender) -> Result<Sender> {
        let target = inner.target().clone();
        let fd = register(inner).map_err(|e| reactor_error(&target, e))?;
        Ok(Sender {
            fd,
            spin: Duration::ZERO,
            pending: None,
        })
    }

    /// How long a send spins, waiting for room, before it yields to the
    /// runtime (default: not at all).
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// Sends `msg`, waiting while the channel is full.
    ///
    /// # Errors
    /// As [`channel::Sender::send`]: [`Error::Closed`] if the receiver has
    /// left, [`Error::PeerGone`] if it died, [`Error::MessageTooLarge`].
    ///
    /// # Cancel safety
    /// Cancel safe: the message is written and committed in the poll that
    /// completes the future, all at once; a `send` dropped before it
    /// completed sent nothing. (A `send` that completed sent it whole.)
    pub async fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.spin_for(msg.len());
        poll_fn(|cx| self.poll_send(cx, msg)).await
    }

    /// Reserves room for `len` bytes, waiting while the channel is full,
    /// and lends it out to be written in place (zero-copy, see
    /// [`channel::Sender::reserve`]); [`Grant::commit`] sends it.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is reserved until the poll that completes; a
    /// grant dropped without `commit` sends nothing.
    pub async fn reserve(&mut self, len: usize) -> Result<Grant<'_>> {
        self.spin_for(len);
        lend(&mut self.fd, len).await
    }

    /// Sends `msg` if there is room now (see [`channel::Sender::try_send`]).
    ///
    /// # Errors
    /// As [`channel::Sender::try_send`].
    pub fn try_send(&mut self, msg: &[u8]) -> std::result::Result<(), TrySendError> {
        self.fd.get_mut().try_send(msg)
    }

    fn spin_for(&mut self, len: usize) {
        let Sender { fd, spin, .. } = self;
        spin_until(*spin, || fd.get_mut().has_room(len));
    }

    /// Sends `msg` when there is room, else registers the task to be woken
    /// (the building block of [`send`](Self::send)).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn poll_send(&mut self, cx: &mut Context<'_>, msg: &[u8]) -> Poll<Result<()>> {
        loop {
            match self.fd.get_mut().try_send(msg) {
                Ok(()) => return Poll::Ready(Ok(())),
                // armed: wait for the bell
                Err(TrySendError::Full) => {}
                Err(e) => return Poll::Ready(Err(e.into_error().expect("not Full"))),
            }
            ready!(poll_rearmed(&mut self.fd, cx))?;
        }
    }

    /// Sends the message the sink holds, if any.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(msg) = self.pending.take() {
            match self.poll_send(cx, &msg) {
                Poll::Ready(r) => return Poll::Ready(r),
                Poll::Pending => {
                    self.pending = Some(msg);
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// The blocking sender inside (for `len`, `info`, `peer_pid`, ...).
    pub fn get_ref(&self) -> &channel::Sender {
        self.fd.get_ref()
    }

    /// The blocking sender inside, mutably. Its blocking calls block the
    /// runtime's thread; its `try_*` calls are fine.
    pub fn get_mut(&mut self) -> &mut channel::Sender {
        self.fd.get_mut()
    }

    /// Takes the blocking sender back out of the reactor (a message the
    /// sink still holds is lost: flush first).
    pub fn into_inner(self) -> channel::Sender {
        self.fd.into_inner()
    }
}

/// Messages of any `AsRef<[u8]>`. `start_send` sends at once when the ring
/// has room, and otherwise holds a copy of the message, which
/// `poll_ready`/`poll_flush` send first; "flushed" means committed to the
/// ring, not received. Dropping the sender closes the channel.
///
/// ```
/// use futures_util::SinkExt;
/// # use shmkit::channel::Options;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> shmkit::Result<()> {
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-sink-{}", std::process::id()))?;
/// # let n2 = name.clone();
/// # let t = tokio::spawn(async move {
/// #     let mut rx = shmkit::tokio::Receiver::connect(&n2, &Options::new()).await.unwrap();
/// #     rx.recv().await.unwrap()
/// # });
/// let mut tx = shmkit::tokio::Sender::connect(&name, &Options::new()).await?;
/// tx.send(b"via the sink".as_slice()).await?; // SinkExt::send: sends and flushes
/// # assert_eq!(t.await.unwrap(), b"via the sink");
/// # Ok(()) }
/// ```
impl<T: AsRef<[u8]>> futures_sink::Sink<T> for Sender {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<()> {
        let this = self.get_mut();
        debug_assert!(this.pending.is_none(), "start_send without poll_ready");
        match this.fd.get_mut().try_send(item.as_ref()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full) => {
                this.pending = Some(item.as_ref().to_vec());
                Ok(())
            }
            Err(e) => Err(e.into_error().expect("not Full")),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_pending(cx)
    }
}

/// Any pollable shmkit endpoint made async: a publisher or subscriber, a
/// many-to-one sender or receiver, a server or client, a latest value's
/// reader — every [`Pollable`] endpoint: it has a descriptor and
/// non-blocking `try_*` calls that arm it when they find nothing to do.
///
/// [`until`](Self::until) calls such a `try_*` call until it gives a
/// value, and in between waits — without a thread — for the endpoint's
/// descriptor on the runtime's reactor. The channel has its own
/// [`Sender`] and [`Receiver`] with the whole vocabulary (`Stream`,
/// `Sink`, spinning); this is the one adapter for the rest.
///
/// # Examples
/// ```
/// use shmkit::channel::{self, Options, TryRecvError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> shmkit::Result<()> {
/// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-async-{}", std::process::id()))?;
/// let n2 = name.clone();
/// let sender = std::thread::spawn(move || -> shmkit::Result<()> {
///     let mut tx = channel::Sender::connect(&n2, &Options::new())?;
///     tx.send(b"hello")
/// });
/// let rx = tokio::task::spawn_blocking(move || channel::Receiver::connect(&name, &Options::new()))
///     .await
///     .unwrap()?;
/// let mut rx = shmkit::tokio::Async::new(rx)?;
/// let msg = rx
///     .until(|rx| match rx.try_recv() {
///         Ok(m) => Ok(Some(m)),
///         Err(TryRecvError::Empty) => Ok(None),
///         Err(e) => Err(e.into_error().expect("not Empty")),
///     })
///     .await?;
/// assert_eq!(msg, b"hello");
/// sender.join().unwrap()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Async<E: Pollable> {
    fd: AsyncFd<ByFd<E>>,
}

/// An endpoint seen through its descriptor (what `AsyncFd` asks for).
#[derive(Debug)]
struct ByFd<E>(E);

impl<E: Pollable> AsRawFd for ByFd<E> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl<E: Pollable> Async<E> {
    /// Registers `endpoint`'s descriptor with the current runtime's reactor.
    ///
    /// # Errors
    /// [`Error::Os`] (`op: "tokio reactor"`) if the reactor refuses it.
    ///
    /// # Panics
    /// Outside a tokio runtime with I/O enabled (as `AsyncFd::new`).
    pub fn new(endpoint: E) -> Result<Async<E>> {
        match register(ByFd(endpoint)) {
            Ok(fd) => Ok(Async { fd }),
            Err(e) => Err(reactor_error(&Target::Memory, e)),
        }
    }

    /// The endpoint.
    pub fn get_ref(&self) -> &E {
        &self.fd.get_ref().0
    }

    /// The endpoint, for calls that do not wait.
    pub fn get_mut(&mut self) -> &mut E {
        &mut self.fd.get_mut().0
    }

    /// The endpoint again, deregistered from the reactor.
    pub fn into_inner(self) -> E {
        self.fd.into_inner().0
    }

    /// Calls `attempt` until it returns a value (`Ok(Some)`) or an error,
    /// waiting for the descriptor whenever it returns `Ok(None)` ("nothing
    /// yet": a `try_*` call that found nothing, and armed the descriptor).
    ///
    /// # Errors
    /// `attempt`'s, and [`Error::Os`] if the reactor fails.
    ///
    /// # Cancel safety
    /// Cancel safe if `attempt` is (every shmkit `try_*` call takes a
    /// message, or room, only in the call that returns it): dropped between
    /// attempts, nothing was taken.
    pub async fn until<T>(&mut self, mut attempt: impl FnMut(&mut E) -> Result<Option<T>>) -> Result<T> {
        loop {
            if let Some(v) = attempt(&mut self.fd.get_mut().0)? {
                return Ok(v);
            }
            // Armed: a ring (or a peer's death) after the attempt makes the
            // descriptor readable, an edge the reactor keeps for us. The
            // readiness is cleared before the next attempt, which sees
            // whatever caused it.
            let mut guard = match self.fd.readable_mut().await {
                Ok(g) => g,
                Err(e) => return Err(reactor_error(&Target::Memory, e)),
            };
            guard.clear_ready();
        }
    }
}
