//! Doorbells: waiting through a descriptor among many participants.
//!
//! A channel's two sides meet and hold each other's bell (`core::bell`).
//! The patterns have one *hub* (a publisher, a many-to-one receiver, a
//! server, a latest value's writer) and *spokes* that join and leave at
//! any time, so nobody can wait for everybody to meet. This module gives
//! them three pieces, each a FIFO beside the object with a segment's
//! guarantees (`core::bell`: `mkfifoat`, the object's mode, owner checked,
//! no symlink followed, squatters refused):
//!
//! - A [`Doorbell`]: the bell of a participant that polls, made the first
//!   time its descriptor is taken. It holds its own bell open for writing
//!   too, so it never hangs up: a doorbell says "somebody rang", never
//!   "somebody died" (lives do that). Its **nonce** (non-zero, from the
//!   FIFO's inode) is what the pattern stores in the participant's *poll
//!   word* in shared memory: 0 = no bell, anything else = ring this one.
//!   The name stays while its owner takes part, since ringers open it when
//!   they first need to.
//! - [`Ringers`]: a notifier's cache of opened bells, one per seat, keyed
//!   by the nonce it last read: a new nonce (a new holder of the seat)
//!   reopens; a bell that is gone or not ours is skipped. A notifier uses
//!   it inside `Event::notify_or_ring`'s closure, so it runs only when a
//!   poller armed (the busy path stays one fence and one load), and rings
//!   *every* seat with a non-zero poll word: pollers that were not armed
//!   find a spurious byte, which they drain before they next arm.
//! - A [`Life`] and its [`Watch`]es: death without a timer. A participant
//!   whose leaving a poller must notice holds its life — a FIFO it keeps
//!   open read-write — for as long as it takes part. A watcher opens it
//!   read-only and gets `POLLHUP` when the holder's descriptor is closed,
//!   by leaving or by dying, in any namespace. Linux reports `POLLHUP` on a
//!   FIFO's read end only once the pipe's writer counter moved after that
//!   read end was opened (`pipe_poll`: `filp->f_version != w_counter`), and
//!   the holder opened it before the watcher: so the watcher opens and
//!   closes a write end once ("touches" it) right after, checking the
//!   inode, so that a name replaced in between is never half-watched. If
//!   the holder is gone already, the touch makes the hang-up show at once.
//!
//! A [`PollSet`] (an `epoll` instance) puts a doorbell and watches behind
//! one descriptor: what a pattern's endpoint hands out as its `AsFd`.
//!
//! # How a pattern uses them
//! The waiting side arms as the channel does: drains its doorbell, makes
//! sure its poll word holds the nonce, `Event::arm_poll(POLLER)`, then
//! looks at its condition once more (and disarms if it holds). The
//! notifier makes the condition true, then `notify_or_ring(false, || for
//! each seat: ringers.ring(seat, poll word))`. A hub that appears rings
//! every doorbell, so spokes that polled before it existed add their watch.
//! A dying process's descriptors may close a moment before the kernel
//! drops its lock: a watch that hung up is confirmed with the seat's
//! presence (waiting a little for it), so that an edge-triggered poller is
//! never left without an edge.
//!
//! # Cleanup
//! An owner removes its doorbell's and life's names when it leaves; a
//! killed participant's are replaced by the next holder of its seat, and
//! removed with the object (`bell::remove_of`, `bell::remove_stale` match
//! both kinds).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::fs::{self, AtFlags, OFlags, CWD};
use rustix::io::Errno;

use super::bell::{self, Bell, Drained, Fifo, Place, Ringer};
use crate::error::{Error, Result};

/// A nonce from a FIFO's inode: never 0, which means "no bell".
fn nonce_of(fd: &OwnedFd) -> u32 {
    fs::fstat(fd)
        .map_or(1, |st| (st.st_ino ^ (st.st_ino >> 32)) as u32)
        .max(1)
}

/// Removes `path` if it still names the FIFO `fd` is open on (a later
/// holder of the seat may have replaced it).
fn remove_if_same(path: &str, fd: &OwnedFd) {
    if let (Ok(named), Ok(mine)) = (fs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW), fs::fstat(fd)) {
        if named.st_dev == mine.st_dev && named.st_ino == mine.st_ino {
            let _ = fs::unlinkat(CWD, path, AtFlags::empty());
        }
    }
}

/// A polling participant's bell (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct Doorbell {
    bell: Bell,
    /// Our own write end: the bell never hangs up.
    _hold: Ringer,
    nonce: u32,
    path: String,
}

impl Doorbell {
    /// Makes seat `seat`'s bell (replacing a dead holder's) and holds it.
    ///
    /// # Errors
    /// [`Error::Untrusted`] if the name holds somebody else's file; the
    /// OS's errors (as `mkfifoat(bell)`, `open(bell)`).
    pub(crate) fn create(place: &Place, seat: usize) -> Result<Doorbell> {
        let bell = Bell::create(place, seat)?;
        let path = place.path_of(Fifo::Bell, seat);
        let hold = Ringer::open(place, seat)?.ok_or_else(|| place.fifo_os("open(bell)", Errno::NOENT))?;
        let nonce = nonce_of(hold.fd());
        Ok(Doorbell {
            bell,
            _hold: hold,
            nonce,
            path,
        })
    }

    /// What goes into this participant's poll word: never 0.
    pub(crate) fn nonce(&self) -> u32 {
        self.nonce
    }

    /// Reads the rings so far (non-blocking); `hung_up` is never set.
    pub(crate) fn drain(&self) -> Drained {
        self.bell.drain()
    }

    /// Removes the bell's name (leaving; the descriptor stays usable).
    pub(crate) fn remove_name(&self) {
        remove_if_same(&self.path, self._hold.fd());
    }
}

impl AsFd for Doorbell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.bell.as_fd()
    }
}

/// A notifier's opened bells, one per seat (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct Ringers {
    place: Place,
    /// Per seat: the nonce last seen and the bell opened for it (`None`:
    /// not there or not ours, so not rung until the nonce changes).
    cache: Vec<Option<(u32, Option<Ringer>)>>,
}

impl Ringers {
    /// No bell opened yet; seats `0..seats` (more grow the cache).
    pub(crate) fn new(place: Place, seats: usize) -> Ringers {
        Ringers {
            place,
            cache: (0..seats).map(|_| None).collect(),
        }
    }

    /// Rings seat `seat`'s bell if `nonce` (its poll word, as read from
    /// shared memory: any value) is not 0. A bell that is gone belongs to a
    /// participant that left, and one that is not ours is not rung: both
    /// count as done. `false` only if the bell could not be opened for
    /// another reason (out of descriptors): the ring is owed still.
    pub(crate) fn ring(&mut self, seat: usize, nonce: u32) -> bool {
        if nonce == 0 {
            return true;
        }
        if seat >= self.cache.len() {
            if seat > u16::MAX as usize * 16 {
                return true; // not a seat any object has
            }
            self.cache.resize_with(seat + 1, || None);
        }
        let Ringers { place, cache } = self;
        ring_cached(cache, seat, nonce, || Ringer::open(place, seat))
    }

    /// [`ring`](Self::ring) with `open` instead of opening the bell.
    #[cfg(test)]
    fn ring_with(&mut self, seat: usize, nonce: u32, open: impl FnOnce() -> Result<Option<Ringer>>) -> bool {
        ring_cached(&mut self.cache, seat, nonce, open)
    }

    /// Closes seat `seat`'s bell, if open (its holder left).
    pub(crate) fn forget(&mut self, seat: usize) {
        if let Some(entry) = self.cache.get_mut(seat) {
            *entry = None;
        }
    }
}

/// Rings seat `seat` through `cache`, opening its bell with `open` when the
/// cache has none for `nonce`. Only a definite answer is cached: the bell
/// is not there (`Ok(None)`: its owner left) or not ours (`Untrusted`). Any
/// other failure (out of descriptors, of memory) is not: the next ring
/// tries again — cached, it would leave the poller unrung for as long as
/// its endpoint lives.
fn ring_cached(
    cache: &mut [Option<(u32, Option<Ringer>)>],
    seat: usize,
    nonce: u32,
    open: impl FnOnce() -> Result<Option<Ringer>>,
) -> bool {
    let stale = !matches!(&cache[seat], Some((n, _)) if *n == nonce);
    if stale {
        let opened = match open() {
            Ok(opened) => opened,
            Err(Error::Untrusted { .. }) => None,
            Err(_) => return false,
        };
        cache[seat] = Some((nonce, opened));
    }
    if let Some((_, Some(ringer))) = &cache[seat] {
        ringer.ring();
    }
    true
}

/// A participant's life: a FIFO held open while it takes part (see the
/// [module docs](self)).
#[derive(Debug)]
pub(crate) struct Life {
    fd: OwnedFd,
    path: String,
}

impl Life {
    /// Makes seat `seat`'s life (replacing a dead holder's) and holds it.
    ///
    /// # Errors
    /// As [`Doorbell::create`].
    pub(crate) fn create(place: &Place, seat: usize) -> Result<Life> {
        let path = place.path_of(Fifo::Life, seat);
        let fd = bell::make(place, &path, OFlags::RDWR)?;
        Ok(Life { fd, path })
    }

    /// Removes the life's name (leaving; watchers see the hang-up when the
    /// life is dropped).
    pub(crate) fn remove_name(&self) {
        remove_if_same(&self.path, &self.fd);
    }
}

/// A watch on another participant's [`Life`]: readable (`POLLHUP`) once
/// its holder has left or died.
#[derive(Debug)]
pub(crate) struct Watch {
    fd: OwnedFd,
}

impl Watch {
    /// Watches seat `seat`'s life; `None` if there is none (nobody holds
    /// that seat, or its holder is leaving).
    ///
    /// # Errors
    /// [`Error::Untrusted`] if the name holds somebody else's file; the
    /// OS's errors (as `open(life)`).
    pub(crate) fn open(place: &Place, seat: usize) -> Result<Option<Watch>> {
        let path = place.path_of(Fifo::Life, seat);
        for _ in 0..8 {
            let fd = match bell::open(&path, OFlags::RDONLY) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(place.os("open(life)", e)),
            };
            place.check(&fd)?;
            // The touch: a write end opened and closed after our read end,
            // on the same FIFO (a reader is there: us, so no ENXIO unless
            // the name was replaced by one without readers).
            match bell::open(&path, OFlags::WRONLY) {
                Ok(w) => {
                    let same = match (fs::fstat(&w), fs::fstat(&fd)) {
                        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
                        _ => false,
                    };
                    drop(w);
                    if same {
                        return Ok(Some(Watch { fd }));
                    }
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::NXIO) => {}
                Err(e) => return Err(place.os("open(life)", e)),
            }
        }
        // the name keeps changing under us: its holders keep leaving
        Ok(None)
    }

    /// Whether seat `seat`'s life is now another one than the one
    /// watched: a new holder of the seat has made its own. (A holder that
    /// leaves in order removes the name: not replaced.)
    pub(crate) fn is_replaced(&self, place: &Place, seat: usize) -> bool {
        let named = fs::statat(CWD, place.path_of(Fifo::Life, seat), AtFlags::SYMLINK_NOFOLLOW);
        match (named, fs::fstat(&self.fd)) {
            (Ok(a), Ok(b)) => a.st_dev != b.st_dev || a.st_ino != b.st_ino,
            _ => false,
        }
    }

    /// Whether the holder has left or died (a poll that does not wait).
    pub(crate) fn hung_up(&self) -> bool {
        let mut fds = [rustix::event::PollFd::new(&self.fd, rustix::event::PollFlags::IN)];
        matches!(rustix::event::poll(&mut fds, Some(&rustix::time::Timespec::default())), Ok(n) if n > 0)
            && fds[0]
                .revents()
                .intersects(rustix::event::PollFlags::HUP | rustix::event::PollFlags::ERR)
    }
}

impl AsFd for Watch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// One descriptor for a doorbell and watches: an `epoll` instance,
/// readable when any of them is (level-triggered).
#[derive(Debug)]
pub(crate) struct PollSet {
    epoll: OwnedFd,
    target: crate::error::Target,
}

impl PollSet {
    /// An empty set.
    ///
    /// # Errors
    /// The OS's error of `epoll_create1`.
    pub(crate) fn new(place: &Place) -> Result<PollSet> {
        let epoll = epoll::create(CreateFlags::CLOEXEC).map_err(|e| place.os("epoll_create1", e))?;
        Ok(PollSet {
            epoll,
            target: place.target.clone(),
        })
    }

    /// Adds `fd` (readable or hung up makes the set readable); `token` is
    /// reported by [`ready`](Self::ready).
    ///
    /// # Errors
    /// The OS's error of `epoll_ctl`.
    pub(crate) fn add(&self, fd: BorrowedFd<'_>, token: u64) -> Result<()> {
        epoll::add(&self.epoll, fd, EventData::new_u64(token), EventFlags::IN)
            .map_err(|e| Error::from_errno("epoll_ctl", &self.target, e))
    }

    /// Adds a [`Watch`]'s descriptor for its hang-up only (`POLLHUP`,
    /// which epoll always reports): bytes written into the watched life
    /// (anybody who may write the object may write it) leave the set as it
    /// was.
    ///
    /// # Errors
    /// The OS's error of `epoll_ctl`.
    pub(crate) fn add_watch(&self, fd: BorrowedFd<'_>, token: u64) -> Result<()> {
        epoll::add(&self.epoll, fd, EventData::new_u64(token), EventFlags::empty())
            .map_err(|e| Error::from_errno("epoll_ctl", &self.target, e))
    }

    /// Removes `fd` (if it is there).
    pub(crate) fn remove(&self, fd: BorrowedFd<'_>) {
        let _ = epoll::delete(&self.epoll, fd);
    }

    /// The tokens of the members that are ready now (no waiting).
    #[cfg(test)]
    pub(crate) fn ready(&self) -> Vec<u64> {
        let mut tokens = Vec::new();
        self.ready_into(&mut tokens, 8);
        tokens
    }

    /// Replaces `tokens` with those of up to `max` members that are ready
    /// now (no waiting; none if the call fails).
    pub(crate) fn ready_into(&self, tokens: &mut Vec<u64>, max: usize) {
        tokens.clear();
        let mut events = Vec::with_capacity(max);
        if epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut events),
            Some(&rustix::time::Timespec::default()),
        )
        .is_ok()
        {
            tokens.extend(events.iter().map(|e| e.data.u64()));
        }
    }
}

impl AsFd for PollSet {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Target;
    use crate::posix::ShmName;

    fn place(n: u32) -> Place {
        let object = ShmName::new(format!("/shmkit-doorbell-{}-{n}", std::process::id())).unwrap();
        Place {
            target: Target::Posix(object.clone()),
            object,
            ino: 0xd00 + u64::from(n),
            mode: 0o600,
            owner: None,
            allow_foreign: false,
        }
    }

    fn readable(fd: BorrowedFd<'_>) -> bool {
        let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
        rustix::event::poll(&mut fds, Some(&rustix::time::Timespec::default())).unwrap() > 0
    }

    #[test]
    fn a_ring_through_the_cache_wakes_the_doorbell_which_never_hangs_up() {
        let p = place(1);
        let bell = Doorbell::create(&p, 3).unwrap();
        assert_ne!(bell.nonce(), 0);
        assert!(!readable(bell.as_fd()));
        let mut ringers = Ringers::new(p.clone(), 2);
        ringers.ring(3, 0); // no poll word: nothing
        assert!(!readable(bell.as_fd()));
        ringers.ring(3, bell.nonce());
        assert!(readable(bell.as_fd()));
        assert!(bell.drain().rung);
        assert!(!readable(bell.as_fd()));
        // the ringer goes: still no hang-up (the doorbell holds itself)
        ringers.forget(3);
        drop(ringers);
        assert!(!readable(bell.as_fd()));
        assert!(!bell.drain().hung_up);
        // a new holder of the seat: a new nonce, and the cache reopens
        let mut ringers = Ringers::new(p.clone(), 4);
        ringers.ring(3, bell.nonce());
        bell.remove_name();
        drop(bell);
        let again = Doorbell::create(&p, 3).unwrap();
        ringers.ring(3, again.nonce());
        assert!(again.drain().rung, "the new holder is rung, not the old FIFO");
        again.remove_name();
        assert_eq!(bell::remove_of(&p.object, p.ino), 0, "nothing left");
    }

    #[test]
    fn a_bell_that_could_not_be_opened_once_is_rung_later() {
        let p = place(5);
        let bell = Doorbell::create(&p, 2).unwrap();
        let mut ringers = Ringers::new(p.clone(), 4);
        // out of descriptors at the first ring: nothing rung, nothing cached
        assert!(!ringers.ring_with(2, bell.nonce(), || Err(p.os("open(bell)", Errno::MFILE))));
        assert!(!bell.drain().rung);
        ringers.ring(2, bell.nonce());
        assert!(bell.drain().rung, "rung once descriptors are there again");
        // a bell that is not there is remembered as such until the nonce changes
        let mut other = Ringers::new(p.clone(), 4);
        other.ring_with(3, 7, || Ok(None));
        other.ring_with(3, 7, || panic!("asked again for a nonce known to have no bell"));
        bell.remove_name();
    }

    #[test]
    fn a_watch_hangs_up_when_its_life_goes_even_if_that_was_before() {
        let p = place(2);
        assert!(Watch::open(&p, 0).unwrap().is_none(), "no life yet");
        let life = Life::create(&p, 0).unwrap();
        let watch = Watch::open(&p, 0).unwrap().expect("a life to watch");
        let second = Watch::open(&p, 0).unwrap().expect("watchers do not disturb each other");
        assert!(!watch.hung_up() && !second.hung_up());
        assert!(!readable(watch.as_fd()));
        drop(life); // its holder dies (the kernel closes the descriptor)
        assert!(watch.hung_up() && second.hung_up());
        assert!(readable(watch.as_fd()));
        // a watch opened after the holder died (its name left behind)
        let late = Watch::open(&p, 0).unwrap().expect("the name is still there");
        assert!(late.hung_up(), "the touch makes a dead holder's hang-up show");
        // the next holder of the seat replaces the leftover
        let next = Life::create(&p, 0).unwrap();
        let w = Watch::open(&p, 0).unwrap().unwrap();
        assert!(!w.hung_up());
        next.remove_name();
        assert!(Watch::open(&p, 0).unwrap().is_none(), "a leaving holder's name is gone");
        drop(next);
        assert!(w.hung_up());
    }

    #[test]
    fn a_poll_set_says_which_member_is_ready() {
        let p = place(3);
        let bell = Doorbell::create(&p, 1).unwrap();
        let life = Life::create(&p, 0).unwrap();
        let watch = Watch::open(&p, 0).unwrap().unwrap();
        let set = PollSet::new(&p).unwrap();
        set.add(bell.as_fd(), 1).unwrap();
        set.add(watch.as_fd(), 2).unwrap();
        assert!(!readable(set.as_fd()));
        Ringers::new(p.clone(), 2).ring(1, bell.nonce());
        assert!(readable(set.as_fd()));
        assert_eq!(set.ready(), vec![1]);
        bell.drain();
        assert!(set.ready().is_empty());
        drop(life);
        assert_eq!(set.ready(), vec![2]);
        set.remove(watch.as_fd());
        assert!(set.ready().is_empty() && !readable(set.as_fd()));
        // both kinds are removed with the object
        assert_eq!(bell::remove_of(&p.object, p.ino), 2);
    }

    #[test]
    fn strangers_are_refused() {
        let p = place(4);
        let path = p.path_of(Fifo::Life, 0);
        std::fs::write(&path, b"not a fifo").unwrap();
        let refused = Watch::open(&p, 0);
        assert!(matches!(refused, Err(Error::Untrusted { .. })), "{refused:?}");
        assert!(matches!(Life::create(&p, 0), Err(Error::Untrusted { .. })));
        std::fs::remove_file(&path).unwrap();
    }
}
