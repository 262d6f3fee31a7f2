//! The reading end.

use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::core::event::{self, Stop};
use crate::core::segment::Segment;
use crate::core::sync::Ordering;
use crate::error::{Error, Result, Target};
use crate::map::View;
use crate::posix::{PosixShm, ShmName};

use super::endpoint::{self, header};
use super::poll::Polling;
use super::seqlock;
use super::Options;

/// How often [`Reader::open`] looks for a missing object while it waits.
const OPEN_POLL: Duration = Duration::from_millis(10);

/// How many times in a row a polled reader that cannot issue membarriers
/// rings its own bell before a writer has promised to fence.
const SELF_RINGS: u32 = 4;

/// The longest sleep of a reader that cannot issue membarriers until a
/// writer has promised to fence (see `Reader::sleeps_safely`).
const FENCE_SLICE: Duration = Duration::from_millis(1);

/// A value as one `write` wrote it, with its version.
///
/// It derefs to its bytes (a private copy).
///
/// ```
/// # use shmkit::latest::{Options, Reader, Writer};
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-value-{}", std::process::id()))?;
/// # let mut w = Writer::create(&name, &Options::new())?;
/// w.write(b"hello")?;
/// let v = Reader::open(&name, &Options::new())?.read()?.unwrap();
/// assert_eq!((v.version(), v.len(), &v[..2]), (1, 5, &b"he"[..]));
/// assert_eq!(v.into_bytes(), b"hello");
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    version: u64,
    bytes: Vec<u8>,
}

impl Value {
    /// Its version: 1 for the first value ever written, then one more for
    /// each write.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl Deref for Value {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A reader of a latest value; there may be any number. See the
/// [module docs](super).
///
/// Dropping it leaves: unless the object is kept, the object is removed if
/// nobody else takes part.
#[derive(Debug)]
pub struct Reader {
    seg: Segment,
    max: u64,
    /// The newest version this reader has seen: versions never go back.
    seen: u64,
    interrupt: Option<Arc<AtomicBool>>,
    /// The process that opened it: only it leaves (not a forked child).
    owner: u32,
    /// This process can issue the membarrier a fenceless writer relies on.
    can_membarrier: bool,
    /// It may sleep as `core::event` says (see `sleeps_safely`).
    sleeps_safely: bool,
    /// The version of the value this reader last read (0: none yet).
    last_read: u64,
    /// How often `try_read_newer` rang its own bell since it last found a
    /// value (see there).
    self_rings: u32,
    /// The object's name and whether foreign bells are accepted: where
    /// this reader's doorbell goes when it polls.
    name: ShmName,
    allow_foreign: bool,
    /// Made the first time the descriptor is taken.
    poll: OnceLock<PollState>,
}

/// A reader's polling, once its descriptor was taken.
#[derive(Debug)]
enum PollState {
    /// Its roster word and doorbell.
    Ready(Polling),
    /// Polling failed (the roster is full, ...): the descriptor is always
    /// readable (an eventfd that holds 1, or the object's own descriptor if
    /// even that failed), and `try_read_newer` says why.
    Failed(String, Option<OwnedFd>),
}

impl Reader {
    /// Opens the latest value `name` to read it. If it does not exist,
    /// waits up to [`Options::timeout`] for a writer to create it (by
    /// default not at all).
    ///
    /// # Errors
    /// [`Error::NotFound`] if it does not exist (in time);
    /// [`Error::Corrupt`] if `name` is not a latest value;
    /// [`Error::Untrusted`] for another user's object (see
    /// [`Options::allow_foreign`]); [`Error::Interrupted`].
    ///
    /// # Examples
    /// ```
    /// use shmkit::latest::{Options, Reader, Writer};
    /// use std::time::Duration;
    /// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-reader-{}", std::process::id()))?;
    /// assert!(matches!(Reader::open(&name, &Options::new()), Err(shmkit::Error::NotFound { .. })));
    /// let n2 = name.clone();
    /// let writer = std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(50));
    ///     Writer::create(&n2, &Options::new())
    /// });
    /// // either side may start first: this waits for the writer
    /// let reader = Reader::open(&name, &Options::new().timeout(Duration::from_secs(10)))?;
    /// let _w = writer.join().unwrap()?;
    /// assert_eq!(reader.max_size(), shmkit::latest::DEFAULT_MAX_SIZE);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn open(name: &ShmName, opts: &Options) -> Result<Reader> {
        let target = Target::Posix(name.clone());
        let deadline = opts.timeout.and_then(event::deadline);
        loop {
            endpoint::check_interrupt(&opts.interrupt, &target)?;
            if let Some(reader) = open_once(name, opts)? {
                return Ok(reader);
            }
            let now = Instant::now();
            match (opts.timeout, deadline) {
                (Some(_), None) => {}
                (Some(_), Some(d)) if now < d => {}
                _ => return Err(Error::NotFound { target }),
            }
            let slice = deadline.map_or(OPEN_POLL, |d| OPEN_POLL.min(d - now));
            std::thread::sleep(slice);
        }
    }

    /// The newest value, or `None` if nothing was ever written.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the header breaks the protocol;
    /// [`Error::Truncated`] if the object shrank; [`Error::TimedOut`] if
    /// for a second every copy was overwritten before it was complete;
    /// [`Error::Interrupted`].
    ///
    /// # Examples
    /// ```
    /// # use shmkit::latest::{Options, Reader, Writer};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-read-{}", std::process::id()))?;
    /// let mut w = Writer::create(&name, &Options::new())?;
    /// let mut r = Reader::open(&name, &Options::new())?;
    /// assert_eq!(r.read()?, None);
    /// w.write(b"on")?;
    /// assert_eq!(r.read()?.unwrap().as_bytes(), b"on");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn read(&mut self) -> Result<Option<Value>> {
        let mut bytes = Vec::new();
        Ok(self.read_into(&mut bytes)?.map(|version| Value { version, bytes }))
    }

    /// Like [`read`](Reader::read), into `buf` (replacing its contents, so
    /// a loop can reuse one allocation); returns the value's version, or
    /// `None` (and `buf` empty) if nothing was ever written.
    ///
    /// # Errors
    /// As [`read`](Reader::read).
    pub fn read_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<u64>> {
        let got = self.stable(|src| {
            src.read_to_vec(buf);
        })?;
        if got.is_none() {
            buf.clear();
        }
        Ok(got.map(|(v, ())| v))
    }

    /// Zero-copy: calls `f` with a [`View`] of the newest value in shared
    /// memory and returns its result with the value's version (`None` if
    /// nothing was ever written).
    ///
    /// `f` may be called more than once: a call during which the writer
    /// came round to the value's buffer is thrown away, and `f` is called
    /// again on the newest value. So `f` may see bytes that are being
    /// overwritten (never out of bounds): it must not trust them — only the
    /// result of the call that counts was made from one whole value.
    ///
    /// # Errors
    /// As [`read`](Reader::read).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::latest::{Options, Reader, Writer};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-with-{}", std::process::id()))?;
    /// let mut w = Writer::create(&name, &Options::new())?;
    /// let mut r = Reader::open(&name, &Options::new())?;
    /// let mut pose = [0u8; 16];
    /// pose[8..].copy_from_slice(&7u64.to_ne_bytes());
    /// w.write(&pose)?;
    /// let (version, y) = r.read_with(|view| view.load_u64(8).ok())?.unwrap();
    /// assert_eq!((version, y), (1, Some(7)));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn read_with<T>(&mut self, mut f: impl FnMut(View<'_>) -> T) -> Result<Option<(u64, T)>> {
        self.stable(|src| f(src.view()))
    }

    /// The newest version published (0: nothing yet), without reading the
    /// value: one load, to see whether there is news.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a version out of range, or one older than
    /// this reader has seen; [`Error::Truncated`].
    ///
    /// # Examples
    /// ```
    /// # use shmkit::latest::{Options, Reader, Writer};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-version-{}", std::process::id()))?;
    /// let mut w = Writer::create(&name, &Options::new())?;
    /// let mut r = Reader::open(&name, &Options::new())?;
    /// assert_eq!(r.version()?, 0);
    /// w.write(b"a")?;
    /// w.write(b"b")?;
    /// assert_eq!(r.version()?, 2); // news: read it
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn version(&mut self) -> Result<u64> {
        let v = seqlock::version(header(&self.seg).words(self.max)).map_err(|why| self.seg.corrupt(why))?;
        self.seg.map.check_intact()?;
        self.saw(v)?;
        Ok(v)
    }

    /// Waits until a value newer than `version` is published, at most
    /// `timeout` (`Duration::MAX`: for ever), and returns it (the newest
    /// then, which may be several versions on). With `version` 0, the
    /// first value ever. Sleeps on a futex: no CPU while nothing happens.
    ///
    /// A writer that leaves or dies does not end the wait: another may come
    /// (a kept value, or readers still there) and write.
    ///
    /// # Errors
    /// [`Error::TimedOut`] at the deadline; [`Error::Interrupted`]; as
    /// [`read`](Reader::read).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::latest::{Options, Reader, Writer};
    /// # use std::time::Duration;
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-wait-{}", std::process::id()))?;
    /// let mut w = Writer::create(&name, &Options::new())?;
    /// let mut r = Reader::open(&name, &Options::new())?;
    /// let err = r.wait_newer(0, Duration::from_millis(20)).unwrap_err();
    /// assert!(matches!(err, shmkit::Error::TimedOut { .. }));
    /// w.write(b"now")?;
    /// assert_eq!(r.wait_newer(0, Duration::from_secs(5))?.version(), 1);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn wait_newer(&mut self, version: u64, timeout: Duration) -> Result<Value> {
        let deadline = event::deadline(timeout);
        let got = loop {
            // A process that cannot issue the membarrier sleeps in short
            // slices until every writer fences (see `sleeps_safely`).
            let until = match self.sleeps_safely() {
                true => deadline,
                false => Some(deadline.map_or(Instant::now() + FENCE_SLICE, |d| d.min(Instant::now() + FENCE_SLICE))),
            };
            match self.wait_until(version, until) {
                Err(Stop::TimedOut) if until != deadline && deadline.is_none_or(|d| Instant::now() < d) => {}
                other => break other,
            }
        };
        match got {
            Ok(value) => {
                self.saw(value.version)?;
                self.last_read = value.version;
                Ok(value)
            }
            Err(Stop::TimedOut) => Err(Error::TimedOut {
                target: self.seg.target.clone(),
                waiting_for: "a newer value",
            }),
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    /// [`wait_newer`](Reader::wait_newer) until `deadline`.
    fn wait_until(&self, version: u64, deadline: Option<Instant>) -> std::result::Result<Value, Stop<Error>> {
        let Reader {
            seg, max, interrupt, ..
        } = self;
        let newer = &header(seg).newer.0.event;
        let words = header(seg).words(*max);
        event::wait_for(
            newer,
            Duration::ZERO,
            deadline,
            || {
                let v = seqlock::version(words).map_err(|why| seg.corrupt(why))?;
                if v <= version {
                    return Ok(None);
                }
                let mut bytes = Vec::new();
                let got = endpoint::read_stable(seg, *max, interrupt, |src| {
                    src.read_to_vec(&mut bytes);
                })?;
                Ok(got
                    .filter(|&(v, ())| v > version)
                    .map(|(version, ())| Value { version, bytes }))
            },
            || {
                endpoint::check_interrupt(interrupt, &seg.target)?;
                seg.check_size(endpoint_need(*max))
            },
        )
    }

    /// Whether this reader may sleep as `core::event` says. A writer
    /// registered for global expedited membarriers skips its fence after a
    /// write, and a sleeper issues `membarrier` in its place; a process
    /// that cannot (a seccomp filter forbids it) asks every writer to fence
    /// again (`Newer::fence_asks`) and, until a writer has answered after a
    /// fenced write (`fence_acked`), sleeps in slices of [`FENCE_SLICE`],
    /// so that a wake-up the writer skipped is late by that much at most.
    fn sleeps_safely(&mut self) -> bool {
        if !self.sleeps_safely {
            let newer = &header(&self.seg).newer.0;
            if self.can_membarrier {
                self.sleeps_safely = true;
            } else {
                newer.fence_asks.fetch_or(1, Ordering::SeqCst);
                self.sleeps_safely = newer.fence_acked.load(Ordering::Acquire) != 0;
            }
        }
        self.sleeps_safely
    }

    /// The newest value if it is newer than the one this reader last read
    /// (by any of its reads), else `None` — and then, for a reader whose
    /// descriptor ([`AsFd`]) was taken, the descriptor is armed: it becomes
    /// readable when the writer next writes. Never waits (but as
    /// [`read`](Reader::read) does for a copy the writer overwrote).
    /// Call it when the descriptor is readable, until it returns `None`.
    ///
    /// A reader's first call takes the descriptor if nobody did.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if this reader could not become a poller
    /// (the value's 64 poll roster words are all held by live readers;
    /// its bell could not be made); as [`read`](Reader::read).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::latest::{Options, Reader, Writer};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-trynewer-{}", std::process::id()))?;
    /// let mut w = Writer::create(&name, &Options::new())?;
    /// let mut r = Reader::open(&name, &Options::new())?;
    /// w.write(b"a")?;
    /// w.write(b"b")?;
    /// assert_eq!(r.try_read_newer()?.unwrap().version(), 2);
    /// assert_eq!(r.try_read_newer()?, None); // nothing newer: armed
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn try_read_newer(&mut self) -> Result<Option<Value>> {
        if let Some(v) = self.read_if_newer()? {
            self.self_rings = 0;
            return Ok(Some(v));
        }
        let polling = match self.polling() {
            PollState::Ready(p) => p,
            PollState::Failed(why, _) => {
                return Err(Error::InvalidArgument {
                    target: self.seg.target.clone(),
                    reason: why.clone(),
                })
            }
        };
        // Arm as the channel does: drain earlier rings, set the poller bit
        // (shared by every polling reader: it is never cleared by a reader,
        // only consumed by the writer, which then rings every bell), look
        // once more.
        let rung = polling.bell().drain().rung;
        header(&self.seg).newer.0.event.arm_poll(event::POLLER);
        polling.watch_writer(rung);
        if !self.sleeps_safely() && self.self_rings < SELF_RINGS {
            // This process cannot issue the membarrier a fenceless writer
            // relies on and no writer has promised to fence yet: a write
            // racing with this arming may not ring (its version still on
            // its way to memory). Ring ourselves so that the caller looks
            // again, a few times (each a round of system calls, long
            // enough for such a store to land); later writes see the
            // request, fence, answer and ring.
            self.self_rings += 1;
            self.ring_self();
        }
        let got = self.read_if_newer()?;
        if got.is_some() {
            self.self_rings = 0;
        }
        Ok(got)
    }

    /// The newest value if newer than the last read.
    fn read_if_newer(&mut self) -> Result<Option<Value>> {
        let v = seqlock::version(header(&self.seg).words(self.max)).map_err(|why| self.seg.corrupt(why))?;
        if v <= self.last_read {
            self.seg.map.check_intact()?;
            return Ok(None);
        }
        let value = self.read()?;
        Ok(value.filter(|v| v.version() > 0))
    }

    /// Makes this reader's descriptor readable now (see `try_read_newer`).
    #[cold]
    fn ring_self(&self) {
        if let Ok(place) = crate::core::bell::Place::of(&self.name, &self.seg, self.allow_foreign) {
            if let Ok(Some(ringer)) = crate::core::bell::Ringer::open(&place, self.roster_idx()) {
                ringer.ring();
            }
        }
    }

    fn roster_idx(&self) -> usize {
        match self.poll.get() {
            Some(PollState::Ready(p)) => p.idx(),
            _ => 0,
        }
    }

    /// The polling state, made the first time.
    fn polling(&self) -> &PollState {
        self.poll.get_or_init(|| {
            let made = crate::core::bell::Place::of(&self.name, &self.seg, self.allow_foreign).and_then(|place| {
                let p = Polling::claim(&self.seg, &place)?;
                // readable once at first, as every endpoint's descriptor:
                // a poller that waits before its first try_read_newer (which
                // arms) finds out at once
                if let Ok(Some(own)) = crate::core::bell::Ringer::open(&place, p.idx()) {
                    own.ring();
                }
                Ok(p)
            });
            match made {
                Ok(p) => PollState::Ready(p),
                Err(e) => {
                    let always = rustix::event::eventfd(1, rustix::event::EventfdFlags::CLOEXEC).ok();
                    PollState::Failed(format!("cannot poll: {e}"), always)
                }
            }
        })
    }

    /// The longest value this object holds, in bytes.
    pub fn max_size(&self) -> u64 {
        self.max
    }

    /// The object.
    pub fn target(&self) -> &Target {
        &self.seg.target
    }

    /// What the header says now, through this reader's mapping (`in_use`
    /// is true: this reader takes part).
    ///
    /// ```
    /// # use shmkit::latest::{Options, Reader, Writer};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-rinfo-{}", std::process::id()))?;
    /// let w = Writer::create(&name, &Options::new())?;
    /// let r = Reader::open(&name, &Options::new())?;
    /// drop(w);
    /// let info = r.info();
    /// assert!(info.writer.unwrap().closed && info.in_use);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn info(&self) -> super::LatestInfo {
        let mut info = super::info::read(header(&self.seg), &self.seg.shm);
        info.in_use = true;
        info
    }

    /// A bounded read through `f`, checked against the versions seen.
    fn stable<T>(&mut self, f: impl FnMut(seqlock::Source<'_>) -> T) -> Result<Option<(u64, T)>> {
        let got = endpoint::read_stable(&self.seg, self.max, &self.interrupt, f)?;
        if let Some((v, _)) = &got {
            self.saw(*v)?;
            self.last_read = *v;
        } else {
            self.saw(0)?;
        }
        Ok(got)
    }

    /// Records that version `v` was published: `Corrupt` if it is older
    /// than one seen before (versions only grow).
    fn saw(&mut self, v: u64) -> Result<()> {
        if v < self.seen {
            return Err(self
                .seg
                .corrupt(format!("the version went back from {} to {v}", self.seen)));
        }
        self.seen = v;
        Ok(())
    }
}

/// The object's size with its buffers.
fn endpoint_need(max: u64) -> u64 {
    super::layout::DATA_OFFSET + super::layout::capacity_for(max)
}

// The descriptor, once taken, stays the same for the reader's life: what
// a reactor that registers it needs (`shmkit::tokio::Async`, whose
// `until(|r| r.try_read_newer())` awaits a newer value); `crate::wait`
// makes it `Pollable`.

/// One look for the object: `None` if it is missing, or is being removed
/// or made right now (look again).
fn open_once(name: &ShmName, opts: &Options) -> Result<Option<Reader>> {
    // Readers never make an object for good: look first.
    match PosixShm::open(name, &crate::posix::Options::new().read_only(true)) {
        Ok(_) => {}
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    }
    let seg = Segment::create_or_open(name, &endpoint::spec(opts.mode, opts.allow_foreign, None))?;
    // a member before looking whether the name still names the object
    endpoint::join_members(&seg)?;
    if seg.created {
        // It went between the look and the open, and this made a new one
        // (with no capacity: a writer coming now would settle it). Gone
        // again, unless somebody came meanwhile.
        seg.unlink_if(|| !endpoint::others(&seg));
        return Ok(None);
    }
    if seg.while_named(|| ()).is_none() {
        return Ok(None); // its last participant removed it meanwhile
    }
    let capacity = header(&seg).meta.capacity.load(Ordering::Acquire);
    if capacity == 0 {
        return Ok(None); // another reader's placeholder, about to go
    }
    let max = endpoint::max_size(&seg, capacity)?;
    let mut reader = Reader {
        seg,
        max,
        seen: 0,
        interrupt: opts.interrupt.clone(),
        owner: std::process::id(),
        can_membarrier: event::membarrier::registered(),
        sleeps_safely: false,
        last_read: 0,
        self_rings: 0,
        name: name.clone(),
        allow_foreign: opts.allow_foreign,
        poll: OnceLock::new(),
    };
    // dropped on failure from here: it leaves as a reader does
    reader.seg.map_all(capacity)?;
    Ok(Some(reader))
}

impl Drop for Reader {
    fn drop(&mut self) {
        if self.owner == std::process::id() {
            if let Some(PollState::Ready(polling)) = self.poll.get() {
                polling.leave(&self.seg);
            }
            endpoint::leave(&self.seg);
        }
    }
}

/// The descriptor to poll: readable once a value newer than the one this
/// reader last read may have been written (then call
/// [`Reader::try_read_newer`], which also re-arms it). Taking it the first
/// time makes this reader a poller: it claims one of the value's 64 poll
/// roster words and makes its bell beside the object (`<name>.bell<i>.<ino>`
/// in `/dev/shm`, 0600, removed when the reader is dropped; a killed
/// reader's word and bell are taken over by the next poller). If that
/// fails — 64 readers poll already, or the bell cannot be made — the
/// descriptor is always readable and `try_read_newer` returns the error.
/// The descriptor also watches the writer's life (`<name>.life0.<ino>`,
/// which the writer holds): a writer killed between a write and its ring
/// makes it readable too.
///
/// The writer never waits, so it has no descriptor.
///
/// ```
/// use shmkit::latest::{Options, Reader, Writer};
/// use shmkit::wait::WaitSet;
/// use std::time::Duration;
/// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-asfd-{}", std::process::id()))?;
/// let mut w = Writer::create(&name, &Options::new())?;
/// let mut r = Reader::open(&name, &Options::new())?;
/// let mut set = WaitSet::new()?;
/// set.add(&r, 7)?;
/// assert_eq!(r.try_read_newer()?, None); // nothing yet: armed
/// w.write(b"news")?;
/// assert_eq!(set.wait(Some(Duration::from_secs(5)))?, &[7]);
/// assert_eq!(r.try_read_newer()?.unwrap().as_bytes(), b"news");
/// # Ok::<(), shmkit::Error>(())
/// ```
impl AsFd for Reader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self.polling() {
            PollState::Ready(p) => p.fd(),
            PollState::Failed(_, Some(fd)) => fd.as_fd(),
            PollState::Failed(_, None) => self.seg.shm.as_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::seqlock;
    use super::*;
    use crate::latest::Writer;

    /// A reader whose process may not issue membarriers (forced here) asks
    /// the writers to fence: its first waits sleep in slices and still see
    /// the value; the writer's next write fences and answers; later writers
    /// fence from the start.
    #[test]
    fn a_reader_without_membarriers_has_writers_fence() {
        let name = ShmName::new(format!("/shmkit-unit-latest-fence-{}", std::process::id())).unwrap();
        let _ = crate::posix::remove(&name);
        let opts = Options::new().max_size(8);
        let mut w = Writer::create(&name, &opts).unwrap();
        let mut r = Reader::open(&name, &opts).unwrap();
        r.can_membarrier = false;
        assert!(!r.sleeps_safely(), "no writer has answered yet");
        let asks = |r: &Reader| header(&r.seg).newer.0.fence_asks.load(Ordering::Relaxed);
        let acked = |r: &Reader| header(&r.seg).newer.0.fence_acked.load(Ordering::Relaxed);
        assert_eq!((asks(&r), acked(&r)), (1, 0));
        // a wait in slices, woken by a write from another thread
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            w.write(b"one").unwrap();
            w
        });
        let v = r.wait_newer(0, Duration::from_secs(10)).unwrap();
        assert_eq!((v.version(), v.as_bytes()), (1, &b"one"[..]));
        let mut w = writer.join().unwrap();
        assert!(!w.is_fenceless(), "asked to fence");
        assert_eq!(acked(&r), 1);
        assert!(r.sleeps_safely());
        w.write(b"two").unwrap();
        drop(w);
        let w2 = Writer::open(&name, &Options::new()).unwrap();
        assert!(!w2.is_fenceless(), "a later writer fences too");
        drop(w2);
        drop(r);
        assert!(
            crate::posix::PosixShm::open(&name, &Default::default()).is_err(),
            "removed"
        );
    }

    /// The same for a polled reader: until a writer answers, its
    /// descriptor is rung by itself a few times after arming (so a write
    /// racing with the arming is looked for again), then only by writes;
    /// the next write answers and rings it.
    #[test]
    fn a_polled_reader_without_membarriers_looks_again() {
        let name = ShmName::new(format!("/shmkit-unit-latest-pollfence-{}", std::process::id())).unwrap();
        let _ = crate::posix::remove(&name);
        let mut w = Writer::create(&name, &Options::new().max_size(8)).unwrap();
        let mut r = Reader::open(&name, &Options::new()).unwrap();
        r.can_membarrier = false;
        let readable = |r: &Reader| crate::wait::readable(r, Some(Duration::ZERO)).unwrap();
        for _ in 0..SELF_RINGS {
            assert_eq!(r.try_read_newer().unwrap(), None);
            assert!(readable(&r), "rung by itself");
        }
        assert_eq!(r.try_read_newer().unwrap(), None);
        assert!(!readable(&r), "then only by writes");
        w.write(b"v").unwrap();
        assert!(readable(&r));
        assert_eq!(r.try_read_newer().unwrap().unwrap().as_bytes(), b"v");
        assert_eq!(header(&r.seg).newer.0.fence_acked.load(Ordering::Relaxed), 1);
        assert_eq!(r.try_read_newer().unwrap(), None);
        assert!(!readable(&r), "a writer answered: no more rings of its own");
        w.write(b"w").unwrap();
        assert!(readable(&r));
        drop(r);
        drop(w);
    }

    /// A writer killed after it took the pollers' bit (`notify_or_ring`)
    /// and before it rang them (emulated: the publish and the bit's
    /// consumption, then the seat given up) must not strand them: the next
    /// writer rings every poller when it takes the seat (found by review).
    #[test]
    fn a_writer_dead_between_taking_the_bit_and_ringing_strands_no_poller() {
        let name = ShmName::new(format!("/shmkit-unit-latest-deadring-{}", std::process::id())).unwrap();
        let _ = crate::posix::remove(&name);
        let opts = Options::new().max_size(8);
        let w = Writer::create(&name, &opts).unwrap();
        let mut r = Reader::open(&name, &opts).unwrap();
        let readable = |r: &Reader| crate::wait::readable(r, Some(Duration::from_millis(500))).unwrap();
        assert_eq!(r.try_read_newer().unwrap(), None); // armed
        assert!(!readable(&r));
        {
            // what the writer did before SIGKILL: seqlock write of version 1,
            // then notify_or_ring's fetch_and of the poller half
            let h = header(&r.seg);
            let area = endpoint::area(&r.seg, 8);
            seqlock::write(h.words(8), &area, 1, b"one");
            h.newer.0.event.waiters.fetch_and(event::SLEEPERS, Ordering::Acquire);
        }
        drop(w); // its seat is free (a killed writer's lock goes with it)
        let mut w2 = Writer::open(&name, &Options::new()).unwrap();
        assert_eq!(w2.write(b"two").unwrap(), 2);
        assert_eq!(w2.write(b"three").unwrap(), 3);
        let woke = readable(&r);
        let got = r.try_read_newer().unwrap().map(|v| v.version());
        drop(r);
        drop(w2);
        assert!(woke, "versions 1..3 written, the polled reader was never woken (try_read_newer now gives {got:?}): the next writer must ring every poller");
    }

    /// A descriptor waited on before any `try_read_newer` (which arms) is
    /// readable once at first (found by review).
    #[test]
    fn a_descriptor_waited_on_before_any_try_read_newer_wakes() {
        let name = ShmName::new(format!("/shmkit-unit-latest-firstwait-{}", std::process::id())).unwrap();
        let _ = crate::posix::remove(&name);
        let mut w = Writer::create(&name, &Options::new().max_size(8)).unwrap();
        let r = Reader::open(&name, &Options::new()).unwrap();
        w.write(b"a").unwrap();
        let mut set = crate::wait::WaitSet::new().unwrap();
        set.add(&r, 7).unwrap();
        w.write(b"b").unwrap();
        let woke = set.wait(Some(Duration::from_millis(500))).unwrap().to_vec();
        drop(set);
        drop(r);
        drop(w);
        assert_eq!(woke, vec![7], "readable once at first, as every endpoint's descriptor");
    }
}
