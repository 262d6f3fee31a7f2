//! The writing end.

use crate::core::bell::Place;
use crate::core::doorbell::{Life, Ringers};
use crate::core::event;
use crate::core::participant::{self, Member, Plan};
use crate::core::segment::Segment;
use crate::core::sync::Ordering;
use crate::error::{Error, Result, Role, Target};
use crate::map::ViewMut;
use crate::posix::ShmName;

use super::area::Area;
use super::endpoint::{self, header};
use super::layout::{capacity_for, max_size_of, KEEP_NO, KEEP_UNSET, KEEP_YES, SLOTS_AT};
use super::poll::ROSTER;
use super::seqlock::{self, MAX_VERSION};
use super::{Options, DEFAULT_MAX_SIZE, MAX_SIZE};

/// The one writer of a latest value. See the [module docs](super).
///
/// Dropping it leaves: its seat is free for the next writer, the value
/// stays readable, and — unless the object is kept — the object is removed
/// if nobody else takes part.
#[derive(Debug)]
pub struct Writer {
    member: Member,
    max: u64,
    /// The version last published (this writer's or its predecessor's).
    version: u64,
    /// This writer skips the fence after a write: it is registered for
    /// global expedited membarriers and announced so on the `newer` event
    /// before it took the seat; sleeping readers issue the membarrier
    /// instead (`core::event`).
    fenceless: bool,
    /// It has answered a reader's request to fence (`Newer::fence_acked`).
    acked: bool,
    /// Where polling readers' bells are, and those opened (made the first
    /// time a poller armed).
    place: Place,
    ringers: Option<Ringers>,
    /// Held while this writer takes part: polling readers watch it (see
    /// `poll`). `None` if it could not be made (they then learn of a death
    /// between a write and its ring only from the next writer).
    life: Option<Life>,
}

/// What the caller wants of the object's existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Create,
    Open,
    Either,
}

impl Writer {
    /// Creates the latest value `name` (mode [`Options::mode`], values of
    /// up to [`Options::max_size`] bytes, kept or not as [`Options::keep`]
    /// says) and takes its writer's seat.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if `name` exists; [`Error::InvalidArgument`]
    /// for a maximum size of 0 or over [`MAX_SIZE`](super::MAX_SIZE);
    /// [`Error::NoSpace`] when `/dev/shm` cannot hold it.
    ///
    /// # Examples
    /// ```
    /// use shmkit::latest::{Options, Writer};
    /// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-create-{}", std::process::id()))?;
    /// let mut w = Writer::create(&name, &Options::new().max_size(16))?;
    /// assert_eq!(w.write(b"first")?, 1);
    /// assert!(matches!(Writer::create(&name, &Options::new()), Err(shmkit::Error::AlreadyExists { .. })));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn create(name: &ShmName, opts: &Options) -> Result<Writer> {
        join(name, opts, How::Create)
    }

    /// Takes the writer's seat of the existing latest value `name`: a kept
    /// one whose writer has gone, or one whose readers came first. If
    /// [`Options::max_size`] is given, the object must have that size.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Busy`] if a live writer has the seat;
    /// [`Error::CapacityMismatch`] for another maximum size;
    /// [`Error::Corrupt`] if `name` is not a latest value;
    /// [`Error::Untrusted`] for another user's object (see
    /// [`Options::allow_foreign`]).
    ///
    /// # Examples
    /// ```
    /// use shmkit::latest::{Options, Reader, Writer};
    /// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-open-{}", std::process::id()))?;
    /// let keep = Options::new().keep(true);
    /// Writer::create(&name, &keep)?.write(b"v1")?; // dropped: the value stays
    /// let mut again = Writer::open(&name, &Options::new())?; // a later writer
    /// assert_eq!(again.write(b"v2")?, 2);
    /// assert_eq!(Reader::open(&name, &Options::new())?.read()?.unwrap().as_bytes(), b"v2");
    /// shmkit::posix::remove(&name)?; // kept values go only when removed
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn open(name: &ShmName, opts: &Options) -> Result<Writer> {
        join(name, opts, How::Open)
    }

    /// Opens the latest value `name` as its writer, creating it if it does
    /// not exist (then as [`create`](Writer::create) does).
    ///
    /// # Errors
    /// As [`create`](Writer::create) and [`open`](Writer::open).
    ///
    /// # Examples
    /// ```
    /// use shmkit::latest::{Options, Writer};
    /// let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-ooc-{}", std::process::id()))?;
    /// let opts = Options::new().max_size(32).keep(true);
    /// Writer::open_or_create(&name, &opts)?.write(b"made")?;
    /// let w = Writer::open_or_create(&name, &opts)?; // opened this time
    /// assert_eq!((w.version(), w.max_size(), w.keeps()), (1, 32, true));
    /// # drop(w);
    /// shmkit::posix::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn open_or_create(name: &ShmName, opts: &Options) -> Result<Writer> {
        join(name, opts, How::Either)
    }

    /// Publishes `value` as the newest value and returns its version (one
    /// more than the last). Never waits: readers copying an older value are
    /// not disturbed unless this writer comes round to their buffer (after
    /// all the others: see the [module docs](super)), and then they copy
    /// again.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] if `value` is longer than
    /// [`max_size`](Writer::max_size) (nothing is written);
    /// [`Error::Truncated`] if another process shrank the object.
    ///
    /// # Examples
    /// ```
    /// # use shmkit::latest::{Options, Writer};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-write-{}", std::process::id()))?;
    /// let mut w = Writer::create(&name, &Options::new().max_size(4))?;
    /// assert_eq!(w.write(b"1234")?, 1);
    /// assert!(matches!(w.write(b"12345"), Err(shmkit::Error::MessageTooLarge { len: 5, max: 4, .. })));
    /// assert_eq!(w.version(), 1);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn write(&mut self, value: &[u8]) -> Result<u64> {
        self.publish(value.len(), |area, b| area.write(b, value))
    }

    /// Zero-copy: publishes a value of `len` bytes that `fill` writes in
    /// place, through a [`ViewMut`] of the buffer (which holds whatever it
    /// held before: write every byte), and returns its version. Readers see
    /// nothing of it until `fill` returns; if `fill` panics, nothing is
    /// published (as if this writer had died mid-write).
    ///
    /// # Errors
    /// As [`write`](Writer::write).
    ///
    /// # Examples
    /// ```
    /// # use shmkit::latest::{Options, Reader, Writer};
    /// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-latest-wwith-{}", std::process::id()))?;
    /// let mut w = Writer::create(&name, &Options::new())?;
    /// let v = w.write_with(16, |view| {
    ///     view.store_u64(0, 42).unwrap();
    ///     view.write_at(8, b"position").unwrap();
    /// })?;
    /// let got = Reader::open(&name, &Options::new())?.read()?.unwrap();
    /// assert_eq!((got.version(), &got[8..]), (v, &b"position"[..]));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn write_with(&mut self, len: usize, fill: impl FnOnce(&mut ViewMut<'_>)) -> Result<u64> {
        self.publish(len, |area, b| fill(&mut area.view_mut(b, len)))
    }

    /// Publishes the next version, of `len` bytes that `fill` puts in
    /// buffer `b` of the area.
    fn publish(&mut self, len: usize, fill: impl FnOnce(&Area<'_>, usize)) -> Result<u64> {
        if len as u64 > self.max {
            return Err(Error::MessageTooLarge {
                target: self.target().clone(),
                len: len as u64,
                max: self.max,
            });
        }
        let next = self.version + 1;
        if next > MAX_VERSION {
            return Err(self.member.corrupt("the version is at its maximum"));
        }
        let seg = self.member.seg();
        let area = endpoint::area(seg, self.max);
        let h = header(seg);
        seqlock::write_with(h.words(self.max), &area, next, len, |b| fill(&area, b));
        self.version = next;
        let newer = &h.newer.0;
        // A reader that cannot issue the membarrier asked for fences: from
        // now on, and say so once a write has fenced (the same line as the
        // waiters' count, which `notify` loads anyway).
        let asked = !self.acked && newer.fence_asks.load(Ordering::Relaxed) != 0;
        if asked {
            self.fenceless = false;
        }
        let (place, ringers) = (&self.place, &mut self.ringers);
        // a reader polls: ring every polling reader's bell
        newer
            .event
            .notify_or_ring(self.fenceless, || ring_pollers(seg, place, ringers));
        if asked {
            newer.fence_acked.store(1, Ordering::Release);
            self.acked = true;
        }
        // `map::sigbus` orders writes before the check with a SeqCst fence,
        // which `notify` has just issued unless fenceless. On x86-64 the
        // fenceless writer needs none: a write can land on the replacement
        // pages only after the TLB shootdown reached this CPU, an interrupt,
        // which is serializing and comes after the mark was set (as
        // `channel::connect::Endpoint::check_written` says).
        if self.fenceless && cfg!(not(target_arch = "x86_64")) {
            seg.map.check_intact_after_writes()?;
        } else {
            seg.map.check_intact()?;
        }
        Ok(next)
    }

    /// The version last published: 0 if nothing was ever written, else the
    /// number of values written (by this writer and those before it).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether this writer skips its fence now (tests).
    #[cfg(test)]
    pub(crate) fn is_fenceless(&self) -> bool {
        self.fenceless
    }

    /// The longest value this object holds, in bytes.
    pub fn max_size(&self) -> u64 {
        self.max
    }

    /// Whether the object stays after its last participant has left (the
    /// first writer's choice, read from the header).
    pub fn keeps(&self) -> bool {
        super::info::snapshot(header(self.member.seg())).keep
    }

    /// The object.
    pub fn target(&self) -> &Target {
        self.member.target()
    }
}

fn join(name: &ShmName, opts: &Options, how: How) -> Result<Writer> {
    let target = Target::Posix(name.clone());
    if let Some(max) = opts.max_size {
        if !(1..=MAX_SIZE).contains(&max) {
            return Err(Error::InvalidArgument {
                target,
                reason: format!("a latest value's maximum size is 1 to {MAX_SIZE} bytes, not {max}"),
            });
        }
    }
    if how == How::Open {
        // Look first, so that a missing object is not made and removed
        // again (joining creates; `prepare` below undoes that in a race).
        crate::posix::PosixShm::open(name, &crate::posix::Options::new().read_only(true))?;
    }
    let want = opts.max_size.map(capacity_for);
    let plan = Plan {
        spec: endpoint::spec(
            opts.mode,
            opts.allow_foreign,
            Some(want.unwrap_or(capacity_for(DEFAULT_MAX_SIZE))),
        ),
        slots_at: SLOTS_AT,
        seats: 0..1,
        // the seat is free again once its writer left or died
        reusable: true,
        // the value outlives its writer: an object whose participants are
        // all gone is used again, never made anew (see `endpoint::leave`)
        takeover: false,
        role: Role::Writer,
        interrupt: opts.interrupt.clone(),
    };
    let mut capacity = 0;
    let mut fenceless = false;
    let mut place = None;
    let member = participant::join(name, &plan, |seg| {
        match how {
            How::Create if !seg.created => {
                return Err(Error::AlreadyExists {
                    target: seg.target.clone(),
                })
            }
            How::Open if seg.created => {
                // made here for nothing: gone again, unless somebody came
                seg.unlink_if(|| !endpoint::others(seg));
                return Err(Error::NotFound {
                    target: seg.target.clone(),
                });
            }
            _ => {}
        }
        // a member before the claim (see the module docs, "Who is there")
        endpoint::join_members(seg)?;
        capacity = settle(seg, want)?;
        let keep = if opts.keep { KEEP_YES } else { KEEP_NO };
        // The first writer's choice stands.
        let _ = header(seg)
            .control
            .0
            .keep
            .compare_exchange(KEEP_UNSET, keep, Ordering::AcqRel, Ordering::Relaxed);
        // A writer that will skip its fence says so before it takes part
        // (`core::event`); unless a reader has asked for fences.
        let newer = &header(seg).newer.0;
        fenceless = event::membarrier::registered() && newer.fence_asks.load(Ordering::SeqCst) == 0;
        if fenceless {
            newer.event.announce_fenceless();
        }
        place = Some(Place::of(name, seg, opts.allow_foreign)?);
        Ok(())
    })?;
    let max = max_size_of(capacity).expect("settled");
    let place = place.expect("set by the closure");
    let mut writer = Writer {
        member,
        max,
        version: 0,
        fenceless,
        acked: false,
        place,
        ringers: None,
        life: None,
    };
    // Dropped on failure from here: it leaves as a writer does.
    writer.member.seg_mut().map_all(capacity)?;
    // The seat is ours: the published version moves no more but by us.
    let v = seqlock::version(header(writer.member.seg()).words(max)).map_err(|why| writer.member.corrupt(why))?;
    writer.version = v;
    // Its life first, so that a reader woken by the rings below finds it.
    writer.life = Life::create(&writer.place, super::poll::WRITER_LIFE).ok();
    // A writer that appears rings every polling reader: a writer killed
    // after it took the pollers' bit and before it rang them all would
    // otherwise leave them waiting for good (no later write finds the bit).
    let Writer {
        member, place, ringers, ..
    } = &mut writer;
    if !ring_pollers(member.seg(), place, ringers) {
        // owed still: the next write rings again
        header(member.seg())
            .newer
            .0
            .event
            .waiters
            .fetch_or(crate::core::event::POLLER, Ordering::Relaxed);
    }
    Ok(writer)
}

/// Rings the bell of every reader whose roster word names one.
#[cold]
fn ring_pollers(seg: &Segment, place: &Place, ringers: &mut Option<Ringers>) -> bool {
    let ringers = ringers.get_or_insert_with(|| Ringers::new(place.clone(), ROSTER));
    let mut delivered = true;
    for (idx, word) in header(seg).roster.0.iter().enumerate() {
        delivered &= ringers.ring(idx, word.load(Ordering::Relaxed));
    }
    delivered
}

/// The object's capacity, decided now if a reader made it: an explicit
/// maximum size must match.
fn settle(seg: &Segment, want: Option<u64>) -> Result<u64> {
    let valid = |c: u64| max_size_of(c).is_some();
    match seg.negotiate(want, capacity_for(DEFAULT_MAX_SIZE), valid)? {
        Ok(Some(cap)) => Ok(cap),
        Ok(None) => Err(seg.corrupt("no capacity in a latest value made by a writer")),
        Err(theirs) => Err(Error::CapacityMismatch {
            target: seg.target.clone(),
            actual: max_size_of(theirs).unwrap_or(0),
            expected: want.and_then(max_size_of).unwrap_or(0),
        }),
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.member.is_owner() {
            // a forked child's copy: nothing of the parent's to leave
            return;
        }
        if let Some(life) = &self.life {
            life.remove_name();
        }
        self.member.leave();
        endpoint::leave(self.member.seg());
    }
}
