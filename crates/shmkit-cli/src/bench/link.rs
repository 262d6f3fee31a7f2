//! The two ends of every transport, and how each process sets up its end.
//!
//! The leader prepares what the peer inherits ([`Wiring`]: its standard
//! input and output, which carry the pipe, the socket or the eventfds), starts
//! it, and connects ([`Wiring::connect`]); the peer connects from its side
//! ([`peer_link`]). Shared-memory objects are named `/shmkit-bench-<pid>-<n>…`
//! after the leader's pid and a counter.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmkit::channel::{Options, Receiver, Sender};
use shmkit::map::Mapping;
use shmkit::posix::{PosixShm, ShmName};

use super::args::PeerPlan;
use super::child::{Inherit, PeerProcess};
use super::error::{Error, Result};
use super::transport::{Pattern, Transport};

/// How long either side waits for the other to connect.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One end of a transport: sends and receives whole messages.
pub(crate) trait Link {
    /// Sends `msg`, waiting for room.
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// Receives the next message into `buf`, whose length is the message
    /// size (a channel sets it to the message's). `Ok(false)`: the other
    /// side has closed in order.
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool>;
}

/// Any transport's end, for dispatch without a virtual call per message.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per measurement, never moved in a loop
pub(crate) enum AnyLink {
    Channel(ChannelLink),
    Shared(SharedLink),
    Fd(FdLink),
    Async(AsyncLink),
}

/// Runs `$body` with `$l` bound to the concrete link inside `$link`.
macro_rules! with_link {
    ($link:expr, $l:ident => $body:expr) => {
        match $link {
            $crate::bench::link::AnyLink::Channel($l) => $body,
            $crate::bench::link::AnyLink::Shared($l) => $body,
            $crate::bench::link::AnyLink::Fd($l) => $body,
            $crate::bench::link::AnyLink::Async($l) => $body,
        }
    };
}
pub(crate) use with_link;

/// The channel's options for `transport`.
fn channel_options(transport: Transport, capacity: u64) -> Options {
    let opts = Options::new().capacity(capacity).timeout(CONNECT_TIMEOUT);
    match transport {
        Transport::ShmkitSpin => opts.spin(Duration::MAX),
        Transport::ShmkitSleep => opts.spin(Duration::ZERO),
        _ => opts,
    }
}

/// How long an async side of `transport` spins before it yields to its
/// runtime: `shmkit-async` as the blocking `shmkit`, `shmkit-async-yield`
/// not at all (`shmkit::tokio`'s default).
fn async_spin(transport: Transport) -> Duration {
    match transport {
        Transport::ShmkitAsync => shmkit::channel::DEFAULT_SPIN,
        _ => Duration::ZERO,
    }
}

/// The capacity of a channel that carries messages of `size` bytes: room
/// for at least three, and never less than the default.
pub(crate) fn channel_capacity(size: usize) -> u64 {
    let frame = (size as u64 + 8 + 7) & !7;
    (4 * frame).next_power_of_two().max(shmkit::channel::DEFAULT_CAPACITY)
}

/// The names of the two channels, leader to peer and back.
pub(crate) fn channel_names(base: &str) -> Result<(ShmName, ShmName)> {
    Ok((ShmName::new(format!("{base}-ab"))?, ShmName::new(format!("{base}-ba"))?))
}

/// A shmkit channel each way (ping-pong), or one from the peer (stream).
#[derive(Debug)]
pub(crate) struct ChannelLink {
    tx: Option<Sender>,
    rx: Option<Receiver>,
}

impl Link for ChannelLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        match &mut self.tx {
            Some(tx) => Ok(tx.send(msg)?),
            None => Err(Error::Usage("this side does not send".into())),
        }
    }

    #[inline]
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        match &mut self.rx {
            Some(rx) => match rx.recv_into(buf) {
                Ok(()) => Ok(true),
                Err(shmkit::Error::Closed { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            },
            None => Err(Error::Usage("this side does not receive".into())),
        }
    }
}

/// `shmkit-async` and `uds-async`: each call runs the async operation to
/// completion on this side's current-thread runtime (`block_on`), so a
/// message that is not there yet parks the runtime in `epoll_wait` until the
/// other side's wake-up, as an async program's task would.
pub(crate) struct AsyncLink {
    rt: tokio::runtime::Runtime,
    ends: AsyncEnds,
}

#[allow(clippy::large_enum_variant)] // one per measurement, never moved in a loop
enum AsyncEnds {
    Channel {
        tx: Option<shmkit::tokio::Sender>,
        rx: Option<shmkit::tokio::Receiver>,
    },
    Uds(tokio::net::UnixStream),
}

impl std::fmt::Debug for AsyncLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.ends {
            AsyncEnds::Channel { .. } => "AsyncLink(shmkit-async)",
            AsyncEnds::Uds(_) => "AsyncLink(uds-async)",
        })
    }
}

fn async_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))
}

impl AsyncLink {
    /// Channels each way (ping-pong) or one from the peer (stream);
    /// `leader`: which side this is.
    fn channel(
        names: &(ShmName, ShmName),
        opts: &Options,
        pattern: Pattern,
        leader: bool,
        spin: Duration,
    ) -> Result<AsyncLink> {
        let rt = async_runtime()?;
        let mut ends = rt.block_on(async {
            use shmkit::tokio::{Receiver, Sender};
            Ok::<_, Error>(match (pattern, leader) {
                (Pattern::PingPong, true) => AsyncEnds::Channel {
                    tx: Some(Sender::connect(&names.0, opts).await?),
                    rx: Some(Receiver::connect(&names.1, opts).await?),
                },
                (Pattern::PingPong, false) => {
                    let rx = Receiver::connect(&names.0, opts).await?;
                    AsyncEnds::Channel {
                        tx: Some(Sender::connect(&names.1, opts).await?),
                        rx: Some(rx),
                    }
                }
                (Pattern::Stream, true) => AsyncEnds::Channel {
                    tx: None,
                    rx: Some(Receiver::connect(&names.1, opts).await?),
                },
                (Pattern::Stream, false) => AsyncEnds::Channel {
                    tx: Some(Sender::connect(&names.1, opts).await?),
                    rx: None,
                },
            })
        })?;
        if let AsyncEnds::Channel { tx, rx } = &mut ends {
            if let Some(tx) = tx {
                tx.set_spin(spin);
            }
            if let Some(rx) = rx {
                rx.set_spin(spin);
            }
        }
        Ok(AsyncLink { rt, ends })
    }

    /// A connected Unix stream socket.
    fn uds(sock: OwnedFd) -> Result<AsyncLink> {
        let rt = async_runtime()?;
        let std = UnixStream::from(sock);
        std.set_nonblocking(true).map_err(|e| Error::io("O_NONBLOCK", e))?;
        let stream = {
            let _in = rt.enter();
            tokio::net::UnixStream::from_std(std).map_err(|e| Error::io("tokio UnixStream", e))?
        };
        Ok(AsyncLink {
            rt,
            ends: AsyncEnds::Uds(stream),
        })
    }
}

impl Link for AsyncLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let AsyncLink { rt, ends } = self;
        match ends {
            AsyncEnds::Channel { tx: Some(tx), .. } => Ok(rt.block_on(tx.send(msg))?),
            AsyncEnds::Uds(s) => rt.block_on(s.write_all(msg)).map_err(|e| Error::io("write", e)),
            AsyncEnds::Channel { tx: None, .. } => Err(Error::Usage("this side does not send".into())),
        }
    }

    #[inline]
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        use tokio::io::AsyncReadExt;
        let AsyncLink { rt, ends } = self;
        match ends {
            AsyncEnds::Channel { rx: Some(rx), .. } => match rt.block_on(rx.recv_into(buf)) {
                Ok(()) => Ok(true),
                Err(shmkit::Error::Closed { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            },
            AsyncEnds::Uds(s) => rt.block_on(async {
                let mut got = 0;
                while got < buf.len() {
                    match s.read(&mut buf[got..]).await {
                        Ok(0) if got == 0 => return Ok(false),
                        Ok(0) => return Err(Error::Peer("closed in the middle of a message".into())),
                        Ok(n) => got += n,
                        Err(e) => return Err(Error::io("read", e)),
                    }
                }
                Ok(true)
            }),
            AsyncEnds::Channel { rx: None, .. } => Err(Error::Usage("this side does not receive".into())),
        }
    }
}

// The shared page of `raw-spin` and `eventfd`: a word each way on its own
// cache line (pair), then a payload slot each way.
const WORD_AB: usize = 0;
const WORD_BA: usize = 128;
const JOINED: usize = 256;
const DATA: usize = 4096;

fn slot_len(size: usize) -> usize {
    size.div_ceil(4096) * 4096
}

/// `raw-spin` and `eventfd`: the payload copied through a shared page, a
/// sequence word each way published with release and observed with
/// acquire; `eventfd` adds a wake-up per message.
#[derive(Debug)]
pub(crate) struct SharedLink {
    map: Mapping,
    out_word: usize,
    in_word: usize,
    out_data: usize,
    in_data: usize,
    sent: u64,
    received: u64,
    /// `eventfd`: the other side's eventfd (to wake it) and ours (to sleep).
    wake: Option<(OwnedFd, OwnedFd)>,
    /// The leader's: set by its watchdog when the peer has died.
    dead: Option<Arc<AtomicBool>>,
}

impl SharedLink {
    fn peer_died(&self) -> bool {
        self.dead.as_ref().is_some_and(|d| d.load(Ordering::Acquire))
    }

    fn wait_word(&self, word: &AtomicU64, expected: u64) -> Result<()> {
        let gone = || Error::Peer("died".into());
        let bad = |v: u64| Error::Check(format!("sequence word {v}, expected {expected}"));
        match &self.wake {
            None => {
                let mut spins: u32 = 0;
                loop {
                    let v = word.load(Ordering::Acquire);
                    if v == expected {
                        return Ok(());
                    }
                    if v != self.received {
                        return Err(bad(v));
                    }
                    std::hint::spin_loop();
                    spins = spins.wrapping_add(1);
                    if spins % 1024 == 0 && self.peer_died() {
                        return if word.load(Ordering::Acquire) == expected {
                            Ok(())
                        } else {
                            Err(gone())
                        };
                    }
                }
            }
            Some((_, mine)) => loop {
                let mut count = [0u8; 8];
                match rustix::io::read(mine, &mut count) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(Error::io("eventfd read", e)),
                }
                let v = word.load(Ordering::Acquire);
                if v == expected {
                    return Ok(());
                }
                if v != self.received {
                    return Err(bad(v));
                }
                if self.peer_died() {
                    return Err(gone());
                }
            },
        }
    }
}

impl Link for SharedLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.map.write_at(self.out_data, msg)?;
        self.sent += 1;
        // Release: the payload written above is visible to whoever
        // Acquire-loads this value.
        self.map.atomic_u64(self.out_word)?.store(self.sent, Ordering::Release);
        if let Some((theirs, _)) = &self.wake {
            rustix::io::write(theirs, &1u64.to_ne_bytes()).map_err(|e| Error::io("eventfd write", e))?;
        }
        Ok(())
    }

    #[inline]
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let expected = self.received + 1;
        self.wait_word(self.map.atomic_u64(self.in_word)?, expected)?;
        self.received = expected;
        self.map.read_at(self.in_data, buf)?;
        Ok(true)
    }
}

/// `pipe`, `uds`, `tcp`: a file descriptor each way, plain `read(2)` and
/// `write(2)` (no buffering in between).
#[derive(Debug)]
pub(crate) struct FdLink {
    r: File,
    w: File,
}

impl Link for FdLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.w.write_all(msg).map_err(|e| Error::io("write", e))
    }

    #[inline]
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(Error::Peer("closed in the middle of a message".into())),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read", e)),
            }
        }
        Ok(true)
    }
}

fn fd_link(sock: OwnedFd) -> Result<FdLink> {
    let r = sock.try_clone().map_err(|e| Error::io("dup", e))?;
    Ok(FdLink {
        r: File::from(r),
        w: File::from(sock),
    })
}

/// What the leader prepared for one measurement, before the peer starts.
#[derive(Debug)]
pub(crate) struct Wiring {
    /// What the peer inherits; taken by [`Wiring::take_inherit`].
    inherit: Option<Inherit>,
    pending: Pending,
}

#[derive(Debug)]
enum Pending {
    Channel {
        names: (ShmName, ShmName),
        opts: Options,
        pattern: Pattern,
    },
    Shared {
        shm: shmkit::RemoveOnDrop<PosixShm>,
        size: usize,
        wake: Option<(OwnedFd, OwnedFd)>,
    },
    Pipe,
    Socket(OwnedFd),
    AsyncChannel {
        names: (ShmName, ShmName),
        opts: Options,
        pattern: Pattern,
        spin: Duration,
    },
    AsyncSocket(OwnedFd),
}

impl Wiring {
    /// Prepares `plan` on the leader's side.
    pub(crate) fn prepare(plan: &PeerPlan) -> Result<Wiring> {
        let null = || (Stdio::null(), Stdio::null());
        let (stdin, stdout, poke, pending) = match plan.transport {
            Transport::ShmkitSpin | Transport::Shmkit | Transport::ShmkitSleep => {
                let (i, o) = null();
                let pending = Pending::Channel {
                    names: channel_names(&plan.name)?,
                    opts: channel_options(plan.transport, plan.capacity),
                    pattern: plan.pattern,
                };
                (i, o, None, pending)
            }
            Transport::RawSpin | Transport::Eventfd => {
                let name = ShmName::new(plan.name.clone())?;
                let len = (DATA + 2 * slot_len(plan.size)) as u64;
                let shm = PosixShm::create(&name, &shmkit::posix::Options::new().size(len))?.remove_on_drop();
                if plan.transport == Transport::Eventfd {
                    let efd = || {
                        rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)
                            .map_err(|e| Error::io("eventfd", e))
                    };
                    let (to_peer, to_me) = (efd()?, efd()?);
                    let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| Error::io("dup", e));
                    let (i, o, poke) = (Stdio::from(dup(&to_peer)?), Stdio::from(dup(&to_me)?), dup(&to_me)?);
                    let pending = Pending::Shared {
                        shm,
                        size: plan.size,
                        wake: Some((to_peer, to_me)),
                    };
                    (i, o, Some(poke), pending)
                } else {
                    let (i, o) = null();
                    let pending = Pending::Shared {
                        shm,
                        size: plan.size,
                        wake: None,
                    };
                    (i, o, None, pending)
                }
            }
            Transport::Pipe => (Stdio::piped(), Stdio::piped(), None, Pending::Pipe),
            Transport::Uds => {
                let (mine, theirs) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
                let (i, o) = socket_stdio(theirs.into())?;
                (i, o, None, Pending::Socket(mine.into()))
            }
            Transport::ShmkitAsync | Transport::ShmkitAsyncYield => {
                let (i, o) = null();
                let pending = Pending::AsyncChannel {
                    names: channel_names(&plan.name)?,
                    opts: channel_options(plan.transport, plan.capacity),
                    pattern: plan.pattern,
                    spin: async_spin(plan.transport),
                };
                (i, o, None, pending)
            }
            Transport::UdsAsync => {
                let (mine, theirs) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
                let (i, o) = socket_stdio(theirs.into())?;
                (i, o, None, Pending::AsyncSocket(mine.into()))
            }
            Transport::Tcp => {
                let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| Error::io("tcp bind", e))?;
                let addr = listener.local_addr().map_err(|e| Error::io("tcp address", e))?;
                let mine = TcpStream::connect(addr).map_err(|e| Error::io("tcp connect", e))?;
                let (theirs, _) = listener.accept().map_err(|e| Error::io("tcp accept", e))?;
                for s in [&mine, &theirs] {
                    s.set_nodelay(true).map_err(|e| Error::io("TCP_NODELAY", e))?;
                }
                let (i, o) = socket_stdio(theirs.into())?;
                (i, o, None, Pending::Socket(mine.into()))
            }
            Transport::Memcpy => return Err(Error::Usage("memcpy needs no second process".into())),
        };
        Ok(Wiring {
            inherit: Some(Inherit { stdin, stdout, poke }),
            pending,
        })
    }

    /// What the peer inherits (its standard input and output, and the
    /// watchdog's way to wake the leader), to start it with. Once: the
    /// second call gives nothing to inherit.
    pub(crate) fn take_inherit(&mut self) -> Inherit {
        self.inherit.take().unwrap_or_else(|| Inherit {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            poke: None,
        })
    }

    /// Connects to the started `peer`.
    pub(crate) fn connect(self, peer: &mut PeerProcess) -> Result<AnyLink> {
        match self.pending {
            Pending::Channel { names, opts, pattern } => {
                let link = match pattern {
                    Pattern::PingPong => {
                        let tx = Sender::connect(&names.0, &opts)?;
                        let rx = Receiver::connect(&names.1, &opts)?;
                        ChannelLink {
                            tx: Some(tx),
                            rx: Some(rx),
                        }
                    }
                    Pattern::Stream => ChannelLink {
                        tx: None,
                        rx: Some(Receiver::connect(&names.1, &opts)?),
                    },
                };
                // Both processes have mapped the channels: their names have
                // no more use, and without them nothing can leak, even if
                // both processes are killed (Ctrl-C).
                for name in [&names.0, &names.1] {
                    let _ = shmkit::posix::remove(name);
                }
                Ok(AnyLink::Channel(link))
            }
            Pending::Shared { shm, size, wake } => {
                let map = shm.map()?;
                // Wait for the peer to map the page, then remove its name:
                // from now on nothing can leak it.
                let joined = map.atomic_u64(JOINED)?;
                let deadline = Instant::now() + CONNECT_TIMEOUT;
                while joined.load(Ordering::Acquire) == 0 {
                    if peer.is_dead() || Instant::now() > deadline {
                        return Err(Error::Peer("did not open the shared page".into()));
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                shm.remove()?;
                let slot = slot_len(size);
                Ok(AnyLink::Shared(SharedLink {
                    map,
                    out_word: WORD_AB,
                    in_word: WORD_BA,
                    out_data: DATA,
                    in_data: DATA + slot,
                    sent: 0,
                    received: 0,
                    wake,
                    dead: Some(peer.dead_flag()),
                }))
            }
            Pending::Pipe => {
                let w = peer.take_stdin().ok_or_else(|| Error::Peer("has no stdin".into()))?;
                let r = peer.take_stdout().ok_or_else(|| Error::Peer("has no stdout".into()))?;
                Ok(AnyLink::Fd(FdLink {
                    r: File::from(OwnedFd::from(r)),
                    w: File::from(OwnedFd::from(w)),
                }))
            }
            Pending::Socket(sock) => Ok(AnyLink::Fd(fd_link(sock)?)),
            Pending::AsyncChannel {
                names,
                opts,
                pattern,
                spin,
            } => {
                let link = AsyncLink::channel(&names, &opts, pattern, true, spin)?;
                for name in [&names.0, &names.1] {
                    let _ = shmkit::posix::remove(name);
                }
                Ok(AnyLink::Async(link))
            }
            Pending::AsyncSocket(sock) => Ok(AnyLink::Async(AsyncLink::uds(sock)?)),
        }
    }
}

/// A connected socket as the peer's standard input and output.
fn socket_stdio(sock: OwnedFd) -> Result<(Stdio, Stdio)> {
    let other = sock.try_clone().map_err(|e| Error::io("dup", e))?;
    Ok((Stdio::from(sock), Stdio::from(other)))
}

/// Removes whatever objects a measurement named `base` may have left (after
/// both processes are done with them): normally nothing is left.
pub(crate) fn remove_leftovers(transport: Transport, base: &str) {
    let names: Vec<String> = match transport {
        Transport::ShmkitSpin
        | Transport::Shmkit
        | Transport::ShmkitSleep
        | Transport::ShmkitAsync
        | Transport::ShmkitAsyncYield => {
            vec![format!("{base}-ab"), format!("{base}-ba")]
        }
        Transport::RawSpin | Transport::Eventfd => vec![base.to_string()],
        _ => Vec::new(),
    };
    for name in names {
        if let Ok(name) = ShmName::new(name) {
            let _ = shmkit::posix::remove(&name);
        }
    }
}

/// The peer's end of the transport `plan` names.
pub(crate) fn peer_link(plan: &PeerPlan) -> Result<AnyLink> {
    let stdio = |out: bool| -> Result<OwnedFd> {
        let fd = if out {
            std::io::stdout().as_fd().try_clone_to_owned()
        } else {
            std::io::stdin().as_fd().try_clone_to_owned()
        };
        fd.map_err(|e| Error::io("dup", e))
    };
    match plan.transport {
        Transport::ShmkitSpin | Transport::Shmkit | Transport::ShmkitSleep => {
            let (ab, ba) = channel_names(&plan.name)?;
            let opts = channel_options(plan.transport, plan.capacity);
            Ok(AnyLink::Channel(match plan.pattern {
                Pattern::PingPong => {
                    let rx = Receiver::connect(&ab, &opts)?;
                    let tx = Sender::connect(&ba, &opts)?;
                    ChannelLink {
                        tx: Some(tx),
                        rx: Some(rx),
                    }
                }
                Pattern::Stream => ChannelLink {
                    tx: Some(Sender::connect(&ba, &opts)?),
                    rx: None,
                },
            }))
        }
        Transport::RawSpin | Transport::Eventfd => {
            let name = ShmName::new(plan.name.clone())?;
            let len = (DATA + 2 * slot_len(plan.size)) as u64;
            let map = PosixShm::open(&name, &shmkit::posix::Options::new().size(len))?.map()?;
            map.atomic_u64(JOINED)?.store(1, Ordering::Release);
            let wake = if plan.transport == Transport::Eventfd {
                // stdin: ours to sleep on; stdout: the leader's to wake it.
                Some((stdio(true)?, stdio(false)?))
            } else {
                None
            };
            let slot = slot_len(plan.size);
            Ok(AnyLink::Shared(SharedLink {
                map,
                out_word: WORD_BA,
                in_word: WORD_AB,
                out_data: DATA + slot,
                in_data: DATA,
                sent: 0,
                received: 0,
                wake,
                dead: None,
            }))
        }
        Transport::ShmkitAsync | Transport::ShmkitAsyncYield => {
            let names = channel_names(&plan.name)?;
            let opts = channel_options(plan.transport, plan.capacity);
            let spin = async_spin(plan.transport);
            Ok(AnyLink::Async(AsyncLink::channel(
                &names,
                &opts,
                plan.pattern,
                false,
                spin,
            )?))
        }
        // stdin and stdout are both the socket
        Transport::UdsAsync => Ok(AnyLink::Async(AsyncLink::uds(stdio(false)?)?)),
        Transport::Pipe | Transport::Uds | Transport::Tcp => Ok(AnyLink::Fd(FdLink {
            r: File::from(stdio(false)?),
            w: File::from(stdio(true)?),
        })),
        Transport::Memcpy => Err(Error::Usage("memcpy needs no second process".into())),
    }
}
