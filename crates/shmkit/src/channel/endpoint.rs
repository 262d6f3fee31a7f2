//! Meeting the other side: creating or opening the object, publishing or
//! validating the header, claiming a side, waiting for the peer, and leaving.

use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, Target};
use crate::map::{Access, Mapping};
use crate::posix::{self, PosixShm, ShmName};

use super::layout::{self, side, Header, Side, DATA_OFFSET, MAGIC, READY, VERSION};
use super::peer::{self, Peer};
use super::ring::{Buf, HeaderRef};
use super::wait;
use super::Options;

/// Where creation is not atomic (no `O_TMPFILE`), how long an opener gives a
/// creator to size the object and publish its header before calling the
/// object broken.
const CREATOR_GRACE: Duration = Duration::from_secs(2);

/// How long an opener waits for a creator to finish: not at all where
/// creation is atomic (a channel's name appears with its header published),
/// else [`CREATOR_GRACE`].
fn creator_grace() -> Duration {
    if posix::atomic_create_supported() {
        Duration::ZERO
    } else {
        CREATOR_GRACE
    }
}

/// Which end of the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Sender,
    Receiver,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        }
    }

    pub(crate) fn side(self, hdr: &Header) -> &Side {
        match self {
            Role::Sender => &hdr.peers.0.sender,
            Role::Receiver => &hdr.peers.0.receiver,
        }
    }
}

/// One side's hold on a channel: the object, its mapping and the peer.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub target: Target,
    name: ShmName,
    shm: PosixShm,
    pub hdr: HeaderRef,
    pub buf: Buf,
    pub capacity: u64,
    pub role: Role,
    /// The other side, once it has joined.
    pub peer: Option<Peer>,
    pub spin: Duration,
    /// Whether this side has claimed its slot (and so must leave).
    claimed: bool,
    /// Keeps `hdr` and `buf` valid; dropped last.
    map: Mapping,
}

/// Connects as `role` to the channel `name`, creating it if it does not
/// exist, and waits for the other side to join.
pub(crate) fn connect(name: &ShmName, opts: &Options, role: Role) -> Result<Endpoint> {
    let deadline = opts.timeout.and_then(wait::deadline);
    // An abandoned channel (every process that joined it has died) is
    // removed and made anew; a second round is enough unless another
    // process keeps abandoning channels under this name.
    for _ in 0..3 {
        match connect_once(name, opts, role, deadline) {
            Err(Abandoned(_)) => {}
            Ok(end) => return Ok(end),
            Err(Failed(e)) => return Err(e),
        }
    }
    connect_once(name, opts, role, deadline).map_err(|e| match e {
        Failed(e) => e,
        Abandoned(pid) => Error::Busy {
            target: Target::Posix(name.clone()),
            side: role.name(),
            pid,
            alive: false,
        },
    })
}

/// Why one attempt to connect did not.
enum Attempt {
    /// Every process that joined the channel has died (the pid held this
    /// side): it was removed, try again.
    Abandoned(u32),
    /// Anything else.
    Failed(Error),
}
use Attempt::{Abandoned, Failed};

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Failed(e)
    }
}

fn connect_once(
    name: &ShmName,
    opts: &Options,
    role: Role,
    deadline: Option<Instant>,
) -> std::result::Result<Endpoint, Attempt> {
    let target = Target::Posix(name.clone());
    let want = opts.capacity;
    if let Some(cap) = want {
        if !layout::valid_capacity(cap) {
            return Err(Failed(Error::InvalidArgument {
                target,
                reason: format!(
                    "capacity {cap} is not a power of two from {} to {} bytes",
                    layout::MIN_CAPACITY,
                    layout::MAX_CAPACITY
                ),
            }));
        }
    }
    let (shm, map, created) = create_or_open(name, opts, deadline)?;
    let hdr = header_ref(&map);
    let capacity = if created {
        want.unwrap_or(super::DEFAULT_CAPACITY)
    } else {
        if !opts.allow_foreign {
            shm.check_trusted(opts.mode)?;
        }
        // What a shrink mid-way made look corrupt is reported as the shrink.
        validate(hdr.get(), &target, &shm, want).map_err(|e| map.check_intact().err().unwrap_or(e))?
    };
    // The data may not be mapped yet when we opened early: map it all now.
    let map = if map.len() as u64 >= DATA_OFFSET + capacity {
        map
    } else {
        shm.map()?
    };
    let hdr = header_ref(&map);
    if (map.len() as u64) < DATA_OFFSET + capacity {
        return Err(Failed(corrupt(&target, "the object is smaller than its header says")));
    }
    // SAFETY: the mapping holds `DATA_OFFSET + capacity` bytes (checked
    // above), page-aligned, and the endpoint keeps it alive as long as the
    // buffer is used.
    let buf = unsafe {
        Buf::new(
            NonNull::new(map.as_mut_ptr().add(DATA_OFFSET as usize)).expect("mapping is not null"),
            capacity as usize,
        )
    };
    let mut end = Endpoint {
        target,
        name: name.clone(),
        shm,
        hdr,
        buf,
        capacity,
        role,
        peer: None,
        spin: opts.spin,
        claimed: false,
        map,
    };
    match end.claim() {
        Ok(()) => {}
        Err(Error::Busy { alive: false, pid, .. }) if end.other_side_gone() => {
            remove_if_same(name, &end.shm);
            return Err(Abandoned(pid));
        }
        Err(e) => return Err(Failed(e)),
    }
    end.wait_for_peer(deadline)?;
    Ok(end)
}

/// Creates the object (exclusively) or opens the existing one; an opener
/// waits until the creator has sized it.
fn create_or_open(name: &ShmName, opts: &Options, deadline: Option<Instant>) -> Result<(PosixShm, Mapping, bool)> {
    let capacity = opts.capacity.unwrap_or(super::DEFAULT_CAPACITY);
    let size = DATA_OFFSET + capacity;
    for _ in 0..100 {
        // The name appears with the header already published (or, where
        // the kernel cannot do that, just before).
        let created = PosixShm::create_with(name, &posix::Options::new().size(size).mode(opts.mode), |map| {
            publish(header_ref(map).get(), capacity);
            Ok(())
        });
        match created {
            Ok((shm, map)) => return Ok((shm, map, true)),
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let shm = match PosixShm::open(name, &posix::Options::new()) {
            Ok(shm) => shm,
            Err(Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        // Where creation is not atomic, the creator sizes it right after.
        let grace = Instant::now() + creator_grace();
        while shm.size()? < DATA_OFFSET {
            if Instant::now() >= grace || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(corrupt(
                    &Target::Posix(name.clone()),
                    "not a shmkit channel: the object is too small for a channel header",
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let map = shm.map_range(0, DATA_OFFSET as usize, Access::ReadWrite)?;
        return Ok((shm, map, false));
    }
    Err(Error::Os {
        target: Target::Posix(name.clone()),
        op: "shm_open",
        source: rustix::io::Errno::AGAIN,
    })
}

/// The header at the start of `map`.
fn header_ref(map: &Mapping) -> HeaderRef {
    assert!(map.len() as u64 >= DATA_OFFSET && (map.as_ptr() as usize) % 128 == 0);
    // SAFETY: the mapping starts on a page boundary (128-aligned) and holds
    // at least `DATA_OFFSET >= size_of::<Header>()` bytes (asserted); the
    // header is made of atomics only, for which any bit pattern is valid;
    // every `Endpoint` or `ChannelInfo` keeps its mapping alive as long as
    // its `HeaderRef`s.
    unsafe { HeaderRef::new(NonNull::new(map.as_mut_ptr()).expect("mapping is not null").cast()) }
}

/// The creator writes the meta fields, then publishes them with `ready`.
fn publish(hdr: &Header, capacity: u64) {
    let meta = &hdr.meta.0;
    let (pid, start) = peer::me();
    meta.magic.store(MAGIC, Ordering::Relaxed);
    meta.version.store(VERSION, Ordering::Relaxed);
    meta.capacity.store(capacity, Ordering::Relaxed);
    meta.data_offset.store(DATA_OFFSET, Ordering::Relaxed);
    meta.creator_pid.store(pid, Ordering::Relaxed);
    meta.creator_start.store(start, Ordering::Relaxed);
    // Release: everything above is visible to whoever Acquire-loads `ready`.
    meta.ready.store(READY, Ordering::Release);
}

/// An opener waits for the header to be published, then checks every field.
fn validate(hdr: &Header, target: &Target, shm: &PosixShm, want: Option<u64>) -> Result<u64> {
    let meta = &hdr.meta.0;
    let grace = Instant::now() + creator_grace();
    loop {
        let magic = meta.magic.load(Ordering::Relaxed);
        if magic != 0 && magic != MAGIC {
            return Err(corrupt(
                target,
                "not a shmkit channel (its first bytes are not the channel magic)",
            ));
        }
        if meta.ready.load(Ordering::Acquire) == READY {
            break;
        }
        if Instant::now() >= grace {
            return Err(corrupt(
                target,
                "not a shmkit channel, or its creator died before publishing the header",
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if meta.magic.load(Ordering::Relaxed) != MAGIC {
        return Err(corrupt(
            target,
            "not a shmkit channel (ready without the channel magic)",
        ));
    }
    let version = meta.version.load(Ordering::Relaxed);
    if version != VERSION {
        return Err(corrupt(
            target,
            format!("channel layout version {version}; this shmkit reads version {VERSION}"),
        ));
    }
    let capacity = meta.capacity.load(Ordering::Relaxed);
    if !layout::valid_capacity(capacity) || meta.data_offset.load(Ordering::Relaxed) != DATA_OFFSET {
        return Err(corrupt(target, format!("invalid capacity {capacity} or data offset")));
    }
    if let Some(expected) = want {
        if expected != capacity {
            return Err(Error::CapacityMismatch {
                target: target.clone(),
                actual: capacity,
                expected,
            });
        }
    }
    let size = shm.size()?;
    if size < DATA_OFFSET + capacity {
        return Err(corrupt(
            target,
            format!("the object has {size} bytes, less than its {capacity}-byte ring needs"),
        ));
    }
    Ok(capacity)
}

fn corrupt(target: &Target, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        target: target.clone(),
        reason: reason.into(),
    }
}

impl Endpoint {
    /// Takes this side's slot, or says who has it.
    fn claim(&mut self) -> Result<()> {
        let hdr = self.hdr.get();
        let me = self.role.side(hdr);
        let (pid, start) = peer::me();
        match me.pid.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                me.start.store(start, Ordering::Relaxed);
                // Release: pid and start are visible to whoever sees CONNECTED.
                me.state.store(side::CONNECTED, Ordering::Release);
                self.claimed = true;
                wait::force_wake(&hdr.wake.0.peers_seq);
                Ok(())
            }
            Err(holder) => {
                if me.state.load(Ordering::Acquire) == side::CLOSED {
                    return Err(Error::Closed {
                        target: self.target.clone(),
                        side: self.role.name(),
                    });
                }
                let holder_start = me.start.load(Ordering::Relaxed);
                let alive = if holder_start == 0 {
                    // claiming right now, or died while claiming
                    peer::start_time(holder).is_some()
                } else {
                    peer::is_running(holder, holder_start)
                };
                Err(Error::Busy {
                    target: self.target.clone(),
                    side: self.role.name(),
                    pid: holder,
                    alive,
                })
            }
        }
    }

    /// Waits until the other side has joined (or joined and left already).
    fn wait_for_peer(&mut self, deadline: Option<Instant>) -> Result<()> {
        let hdr = self.hdr.get();
        let other = self.role.other().side(hdr);
        let seq = &hdr.wake.0.peers_seq;
        loop {
            self.check_size()?;
            let seen = seq.load(Ordering::Acquire);
            if other.state.load(Ordering::Acquire) != side::EMPTY {
                let pid = other.pid.load(Ordering::Relaxed);
                let start = other.start.load(Ordering::Relaxed);
                self.peer = Some(Peer::watch(pid, start));
                return Ok(());
            }
            let mut slice = wait::LIVENESS_INTERVAL;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::TimedOut {
                        target: self.target.clone(),
                        waiting_for: match self.role {
                            Role::Sender => "a receiver",
                            Role::Receiver => "a sender",
                        },
                    });
                }
                slice = slice.min(d - now);
            }
            wait::sleep_on(seq, seen, slice);
        }
    }

    /// Whether the other side never joined, has left, or died: with our
    /// side held by a dead process too, nobody can use the channel again.
    fn other_side_gone(&self) -> bool {
        let other = self.role.other().side(self.hdr.get());
        match other.state.load(Ordering::Acquire) {
            side::CONNECTED => {
                let pid = other.pid.load(Ordering::Relaxed);
                !peer::is_running(pid, other.start.load(Ordering::Relaxed))
            }
            // EMPTY: nobody else joined; CLOSED: it left; anything else is
            // not a state a live process writes.
            _ => true,
        }
    }

    /// The peer's state now.
    pub(crate) fn peer_state(&self) -> u32 {
        self.role.other().side(self.hdr.get()).state.load(Ordering::Acquire)
    }

    /// `Err(Truncated)` if the object shrank under the mapping (see
    /// [`Mapping::is_intact`]): the ring then reads as zeros, so every
    /// operation checks this after touching it, before trusting the result.
    pub(crate) fn check_intact(&self) -> Result<()> {
        self.map.check_intact()
    }

    /// [`Endpoint::check_intact`], and also `Err(Truncated)` if the object is
    /// smaller now than the channel needs (by `fstat`, so without touching
    /// the memory).
    pub(crate) fn check_size(&self) -> Result<()> {
        self.check_intact()?;
        if self.shm.size()? < DATA_OFFSET + self.capacity {
            return Err(Error::Truncated {
                target: self.target.clone(),
            });
        }
        Ok(())
    }

    /// `Err(Truncated)` if the object shrank, `Err(Closed)` if the peer has
    /// left in order, `Err(PeerGone)` if it died; `Ok` while it runs. The
    /// size is checked too: a shrink that spares the header page leaves a
    /// side that sleeps on the header intact, while its peer may have lost
    /// its ring and left in a way this side cannot see.
    pub(crate) fn check_peer(&self) -> Result<()> {
        self.check_size()?;
        if self.peer_state() == side::CLOSED {
            return Err(Error::Closed {
                target: self.target.clone(),
                side: self.role.other().name(),
            });
        }
        match &self.peer {
            Some(peer) if !peer.is_alive() => Err(Error::PeerGone {
                target: self.target.clone(),
                side: self.role.other().name(),
                pid: peer.pid(),
            }),
            _ => Ok(()),
        }
    }

    /// How this side waits on `hdr`: the sender for space, the receiver for
    /// data.
    pub(crate) fn waiter<'a>(&self, hdr: &'a Header) -> wait::Waiter<'a> {
        let w = &hdr.wake.0;
        let (seq, flag) = match self.role {
            Role::Sender => (&w.space_seq, &w.tx_waiting),
            Role::Receiver => (&w.data_seq, &w.rx_waiting),
        };
        wait::Waiter {
            seq,
            flag,
            spin: self.spin,
        }
    }

    /// A [`Error::Corrupt`] about this channel, or [`Error::Truncated`] if
    /// what looked corrupt is the zero pages of a shrunk object.
    pub(crate) fn corrupt_error(&self, reason: String) -> Error {
        match self.check_intact() {
            Err(lost) => lost,
            Ok(()) => corrupt(&self.target, reason),
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if !self.claimed {
            return;
        }
        let hdr = self.hdr.get();
        self.role.side(hdr).state.store(side::CLOSED, Ordering::Release);
        // Whoever sleeps waiting for us should notice now.
        let w = &hdr.wake.0;
        wait::force_wake(match self.role {
            Role::Sender => &w.data_seq,
            Role::Receiver => &w.space_seq,
        });
        wait::force_wake(&w.peers_seq);
        hdr.peers.0.left.fetch_add(1, Ordering::AcqRel);
        // A side that has left is never claimed again, so nobody can join
        // this channel any more: its name has no use. The first side to
        // leave removes it; the other keeps its mapping until it leaves too.
        // Only if both sides die without leaving does the object stay.
        remove_if_same(&self.name, &self.shm);
    }
}

/// Removes `name` if it still names the object `shm` holds (and not a new
/// one made under the same name since).
fn remove_if_same(name: &ShmName, shm: &PosixShm) {
    let ours = rustix::fs::fstat(shm);
    let path = format!("/dev/shm/{}", name.file_name());
    let theirs = rustix::fs::statat(rustix::fs::CWD, path.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
    if let (Ok(a), Ok(b)) = (ours, theirs) {
        if a.st_dev == b.st_dev && a.st_ino == b.st_ino {
            let _ = posix::remove(name);
        }
    }
}

/// What [`super::info`] reads: the mapping and header of any channel.
pub(crate) fn open_for_info(name: &ShmName) -> Result<(Mapping, HeaderRef, u64)> {
    let target = Target::Posix(name.clone());
    let shm = PosixShm::open(name, &posix::Options::new().read_only(true))?;
    if shm.size()? < DATA_OFFSET {
        return Err(corrupt(&target, "not a shmkit channel: too small for a channel header"));
    }
    let map = shm.map_range(0, DATA_OFFSET as usize, Access::ReadOnly)?;
    let hdr = header_ref(&map);
    let meta = &hdr.get().meta.0;
    if meta.magic.load(Ordering::Relaxed) != MAGIC || meta.ready.load(Ordering::Acquire) != READY {
        map.check_intact()?;
        return Err(corrupt(&target, "not a shmkit channel"));
    }
    let capacity = meta.capacity.load(Ordering::Relaxed);
    if !layout::valid_capacity(capacity) || meta.version.load(Ordering::Relaxed) != VERSION {
        return Err(corrupt(&target, "channel header with an invalid capacity or version"));
    }
    Ok((map, hdr, capacity))
}
