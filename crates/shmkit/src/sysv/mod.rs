//! System V shared memory: segments found by a [`Key`], made with `shmget`.
//!
//! A [`SysvShm`] names a segment by its id; [`SysvShm::attach`] maps it
//! (`shmat`), and the [`Mapping`] detaches (`shmdt`) when dropped. Creating,
//! opening and removing are separate acts, as for POSIX objects:
//! [`SysvShm::create`] (`IPC_CREAT | IPC_EXCL`), [`SysvShm::open`] (existing
//! only), [`SysvShm::open_or_create`], [`SysvShm::from_id`], and
//! [`SysvShm::remove`] (`IPC_RMID`). A removed segment lives on until its last
//! attachment is gone; [`SysvShm::stat`] then says `marked_for_removal`.
//!
//! Permission bits are applied exactly: System V IPC ignores the umask.
//!
//! The kernel gives the id of a destroyed segment to a new one sooner or
//! later, so a handle remembers more than the id: the key, size and creator
//! it found. [`SysvShm::attach`] attaches first, then asks what it attached,
//! and hands out nothing but the segment the handle was made for (a segment
//! that now has its id is [`Error::NotFound`]).
//!
//! # Examples
//!
//! ```
//! use shmkit::sysv::{Key, Options, SysvShm};
//!
//! // writer: a new segment under a private key, 4096 bytes, mode 0600
//! let shm = SysvShm::create(Key::PRIVATE, &Options::new().size(4096))?.remove_on_drop();
//! shm.attach()?.write_at(0, b"This is writer!!!\0")?;
//!
//! // reader (usually another process, finding it by key or id)
//! let reader = SysvShm::from_id(shm.id())?;
//! let map = reader.attach_read_only()?;
//! assert_eq!(map.read_cstr(0)?, b"This is writer!!!");
//! assert_eq!(reader.stat()?.nattch, 1);
//! # Ok::<(), shmkit::Error>(())
//! ```

pub(crate) mod ffi;

use std::ffi::c_void;
use std::ptr::NonNull;
use std::time::SystemTime;

use rustix::io::Errno;

pub use crate::key::{Key, KeyError};
pub use crate::map::{Access, Mapping};

use crate::error::{Error, Limit, Result, Target};
use crate::guard::{Removable, RemoveOnDrop};
use crate::posix::system_time;

/// The mode segments are created with unless asked otherwise: owner
/// read/write.
pub const DEFAULT_MODE: u32 = 0o600;

/// How to create or open a segment: a plain value, reusable for many calls.
///
/// ```
/// let opts = shmkit::sysv::Options::new().size(4096).mode(0o640);
/// assert_eq!(opts.get_size(), 4096);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    size: u64,
    mode: u32,
    access: Access,
    allow_foreign: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            size: 0,
            mode: DEFAULT_MODE,
            access: Access::ReadWrite,
            allow_foreign: false,
        }
    }
}

impl Options {
    /// The defaults: size 0, mode `0600`, read-write.
    pub fn new() -> Self {
        Self::default()
    }

    /// When creating: the segment's size (at least 1 byte). When opening:
    /// the smallest size accepted ([`Error::SizeMismatch`] otherwise).
    pub fn size(mut self, bytes: u64) -> Self {
        self.size = bytes;
        self
    }

    /// The nine permission bits a new segment gets (default `0600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Opens for reading only: the open checks read permission only, and
    /// [`SysvShm::attach`] attaches with `SHM_RDONLY`.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.access = if yes { Access::ReadOnly } else { Access::ReadWrite };
        self
    }

    /// Lets [`SysvShm::open_or_create`] use an existing segment owned by
    /// another user or with wider permissions than [`mode`](Options::mode);
    /// by default that is [`Error::Untrusted`]. Keys are one namespace for
    /// the whole machine: anyone can create a segment under yours first.
    pub fn allow_foreign(mut self, yes: bool) -> Self {
        self.allow_foreign = yes;
        self
    }

    /// The size set with [`size`](Options::size).
    pub fn get_size(&self) -> u64 {
        self.size
    }

    /// The mode set with [`mode`](Options::mode).
    pub fn get_mode(&self) -> u32 {
        self.mode
    }
}

/// What `shmctl(IPC_STAT)` says of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The key (`IPC_PRIVATE` once the segment is marked for removal).
    pub key: Key,
    /// The segment id.
    pub id: i32,
    /// Its size in bytes.
    pub size: u64,
    /// The nine permission bits.
    pub mode: u32,
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
    /// The creator's user id.
    pub cuid: u32,
    /// The creator's group id.
    pub cgid: u32,
    /// The pid of the process that created it.
    pub cpid: i32,
    /// The pid of the last process to attach or detach.
    pub lpid: i32,
    /// How many attachments it has now, across all processes.
    pub nattch: u64,
    /// When it was last attached, if ever.
    pub atime: Option<SystemTime>,
    /// When it was last detached, if ever.
    pub dtime: Option<SystemTime>,
    /// When it was created or last changed by `IPC_SET`.
    pub ctime: Option<SystemTime>,
    /// Whether `IPC_RMID` has marked it for removal: it goes away when the
    /// last attachment does.
    pub marked_for_removal: bool,
    /// Whether it is locked in memory (`SHM_LOCK`).
    pub locked: bool,
}

impl Stat {
    fn from_raw(id: i32, ds: &libc::shmid_ds) -> Stat {
        let mode = u32::from(ds.shm_perm.mode);
        Stat {
            key: Key::new(ds.shm_perm.__key),
            id,
            size: ds.shm_segsz as u64,
            mode: mode & 0o777,
            uid: ds.shm_perm.uid,
            gid: ds.shm_perm.gid,
            cuid: ds.shm_perm.cuid,
            cgid: ds.shm_perm.cgid,
            cpid: ds.shm_cpid,
            lpid: ds.shm_lpid,
            // shmatt_t is u64 here but narrower on other targets
            #[allow(clippy::unnecessary_cast)]
            nattch: ds.shm_nattch as u64,
            atime: system_time(ds.shm_atime, 0),
            dtime: system_time(ds.shm_dtime, 0),
            ctime: system_time(ds.shm_ctime, 0),
            marked_for_removal: mode & ffi::SHM_DEST != 0,
            locked: mode & ffi::SHM_LOCKED != 0,
        }
    }
}

/// A System V shared-memory segment, known by its id.
///
/// The handle holds no resource: dropping it does nothing (use
/// [`remove_on_drop`](SysvShm::remove_on_drop) to remove the segment then).
/// Attachments are [`Mapping`]s and detach on their own drop.
///
/// Besides the id, which the kernel reuses once the segment is gone, the
/// handle remembers what the segment was when it was created or opened (key,
/// size, creator): [`attach`](SysvShm::attach) maps that segment or none.
#[derive(Debug, Clone)]
pub struct SysvShm {
    id: i32,
    key: Key,
    access: Access,
    /// How errors name it: by key when it was found by one, else by id.
    target: Target,
    /// What the segment was when this handle was made.
    origin: Origin,
}

/// What tells a segment apart from a later one that got the same id: the
/// fields of `IPC_STAT` that stay as they were at creation while it exists.
///
/// Not `ctime`: `IPC_SET` ([`SysvShm::set_mode`], [`SysvShm::set_owner`])
/// moves it, so it would refuse the very segment after a `chmod`, and at a
/// resolution of seconds it would not tell apart two segments made in the
/// same second anyway. The key is the one field `IPC_RMID` changes (to
/// `IPC_PRIVATE`), see [`Origin::is`]. Not the creator's uid and gid
/// either: the kernel shows them through the caller's user namespace, which
/// a process may leave (`unshare(CLONE_NEWUSER)`), and another creator
/// almost always means another creator pid too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Origin {
    key: Key,
    size: u64,
    /// The creator's pid as `IPC_STAT` showed it to process `viewer`: it is
    /// translated into the caller's PID namespace (0 if the creator is not
    /// visible there). A process never changes its own PID namespace, but a
    /// child it forks may be in another one.
    cpid: i32,
    /// The process that saw `cpid`.
    viewer: i32,
}

impl Origin {
    /// The segment `st` describes, under the key it was found by.
    fn of(key: Key, st: &Stat) -> Origin {
        Origin {
            key,
            size: st.size,
            cpid: st.cpid,
            viewer: this_pid(),
        }
    }

    /// A segment this process has just created under `key` with `size`
    /// bytes: the kernel records the caller as its creator.
    fn created_here(key: Key, size: u64) -> Origin {
        Origin {
            key,
            size,
            cpid: this_pid(),
            viewer: this_pid(),
        }
    }

    /// Whether `st` may describe this segment: the same size, the same key
    /// (`IPC_RMID` turns the key into `IPC_PRIVATE` while the segment lives
    /// on until its last detach, so a private key counts as the same once the
    /// segment is marked for removal), and, where comparable (in the process
    /// that made the handle, not in a child that inherited it), the same
    /// creator pid.
    ///
    /// A segment created again with the same key, size and creator passes:
    /// nothing the kernel reports tells the two apart, and being of the same
    /// size it is mapped exactly as large as it is.
    fn is(&self, st: &Stat) -> bool {
        let key = st.key == self.key || (st.marked_for_removal && st.key.is_private());
        let creator = st.cpid == self.cpid || this_pid() != self.viewer;
        key && st.size == self.size && creator
    }
}

/// `getpid()`, as `IPC_STAT` reports a creator that is this process.
fn this_pid() -> i32 {
    rustix::process::getpid().as_raw_nonzero().get()
}

impl SysvShm {
    /// `shmget(key, size, IPC_CREAT | IPC_EXCL | mode)`—creates a new
    /// segment of `opts.size` bytes. With [`Key::PRIVATE`] it always makes a
    /// new one.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if a segment has `key`;
    /// [`Error::TooLarge`] outside `SHMMIN..=SHMMAX` (the limit and its
    /// value named); [`Error::NoSpace`] when `SHMMNI` or `SHMALL` is
    /// exhausted or memory is short; [`Error::InvalidArgument`] for a mode
    /// beyond `0o777`.
    ///
    /// # Examples
    /// ```
    /// use shmkit::sysv::{Key, Options, SysvShm};
    /// let shm = SysvShm::create(Key::PRIVATE, &Options::new().size(100).mode(0o640))?.remove_on_drop();
    /// let st = shm.stat()?;
    /// assert_eq!((st.size, st.mode, st.cpid), (100, 0o640, std::process::id() as i32));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[doc(alias = "shmget")]
    pub fn create(key: Key, opts: &Options) -> Result<SysvShm> {
        let target = key_target(key);
        if opts.mode & !0o777 != 0 {
            return Err(Error::InvalidArgument {
                target,
                reason: format!("mode {:#o} has bits beyond 0o777", opts.mode),
            });
        }
        let size = usize::try_from(opts.size).map_err(|_| too_large(&target, opts.size))?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | opts.mode as libc::c_int;
        let id = ffi::shmget(key.raw(), size, flags).map_err(|e| match e {
            Errno::INVAL => too_large(&target, opts.size),
            Errno::NOSPC => Error::no_space(&target, opts.size, Some(exhausted_limit()), e),
            Errno::NOMEM => Error::no_space(&target, opts.size, None, e),
            _ => Error::from_errno("shmget", &target, e),
        })?;
        Ok(SysvShm::new(id, key, opts.access, Origin::created_here(key, opts.size)))
    }

    /// `shmget(key, 0, 0)`—finds the existing segment with `key`, checking
    /// that the caller may read it (and write it, unless
    /// [`Options::read_only`]).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::PermissionDenied`];
    /// [`Error::SizeMismatch`] if it is smaller than `opts.size`.
    #[doc(alias = "shmget")]
    pub fn open(key: Key, opts: &Options) -> Result<SysvShm> {
        let target = key_target(key);
        if key.is_private() {
            return Err(Error::InvalidArgument {
                target,
                reason: "IPC_PRIVATE names no existing segment: open it by id".into(),
            });
        }
        // shmget checks these permission bits against the segment's mode.
        let wanted = match opts.access {
            Access::ReadOnly => 0o400,
            Access::ReadWrite => 0o600,
        };
        let id = ffi::shmget(key.raw(), 0, wanted).map_err(|e| match e {
            Errno::IDRM => Error::NotFound { target: target.clone() },
            _ => Error::from_errno("shmget", &target, e),
        })?;
        let ds = ffi::stat(id).map_err(|e| stat_error(&target, e))?;
        let st = Stat::from_raw(id, &ds);
        // The id may have changed hands between shmget and IPC_STAT.
        if !(st.key == key || (st.marked_for_removal && st.key.is_private())) {
            return Err(Error::NotFound { target });
        }
        if st.size < opts.size {
            return Err(Error::SizeMismatch {
                target,
                actual: st.size,
                expected: opts.size,
            });
        }
        Ok(SysvShm::new(id, key, opts.access, Origin::of(key, &st)))
    }

    /// Opens the segment with `key` if there is one, or else creates it,
    /// without a race: when several processes call this at once, exactly one
    /// creates. Returns the handle and whether this call created it. An
    /// existing segment owned by another user, or with wider permissions than
    /// `opts.mode`, is refused unless [`Options::allow_foreign`].
    ///
    /// # Errors
    /// As [`create`](SysvShm::create) and [`open`](SysvShm::open), and
    /// [`Error::Untrusted`].
    pub fn open_or_create(key: Key, opts: &Options) -> Result<(SysvShm, bool)> {
        for _ in 0..100 {
            match SysvShm::create(key, opts) {
                Ok(shm) => return Ok((shm, true)),
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            match SysvShm::open(key, opts) {
                Ok(shm) => {
                    if !opts.allow_foreign {
                        shm.check_trusted(opts.mode)?;
                    }
                    return Ok((shm, false));
                }
                Err(Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Os {
            target: key_target(key),
            op: "shmget",
            source: Errno::AGAIN,
        })
    }

    /// The segment with id `id`, as `ipcs -m` lists it.
    ///
    /// # Errors
    /// [`Error::NotFound`] if no segment has this id;
    /// [`Error::PermissionDenied`] without read permission on it (see
    /// [`remove_id`] to remove one anyway).
    ///
    /// # Examples
    /// ```
    /// use shmkit::sysv::{Key, Options, SysvShm};
    /// let shm = SysvShm::create(Key::PRIVATE, &Options::new().size(64))?.remove_on_drop();
    /// assert_eq!(SysvShm::from_id(shm.id())?.id(), shm.id());
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn from_id(id: i32) -> Result<SysvShm> {
        let target = Target::SysvId(id);
        let ds = ffi::stat(id).map_err(|e| stat_error(&target, e))?;
        let st = Stat::from_raw(id, &ds);
        let mut shm = SysvShm::new(id, st.key, Access::ReadWrite, Origin::of(st.key, &st));
        shm.target = target;
        Ok(shm)
    }

    fn new(id: i32, key: Key, access: Access, origin: Origin) -> SysvShm {
        let target = if key.is_private() {
            Target::SysvId(id)
        } else {
            Target::SysvKey(key)
        };
        SysvShm {
            id,
            key,
            access,
            target,
            origin,
        }
    }

    /// Fails with [`Error::Untrusted`] if another user owns the segment or
    /// its permissions are wider than `mode`.
    fn check_trusted(&self, mode: u32) -> Result<()> {
        let st = self.stat()?;
        let untrusted = |reason| Error::Untrusted {
            target: self.target.clone(),
            uid: st.uid,
            mode: st.mode,
            reason,
        };
        if st.uid != rustix::process::geteuid().as_raw() {
            return Err(untrusted("it belongs to another user"));
        }
        if st.mode & !mode != 0 {
            return Err(untrusted("its permissions are wider than asked"));
        }
        Ok(())
    }

    /// The segment id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was found or created with.
    pub fn key(&self) -> Key {
        self.key
    }

    /// `shmctl(IPC_STAT)`—everything the kernel keeps about the segment.
    ///
    /// # Errors
    /// [`Error::NotFound`] once it is gone; [`Error::PermissionDenied`]
    /// without read permission.
    #[doc(alias = "IPC_STAT")]
    pub fn stat(&self) -> Result<Stat> {
        let ds = ffi::stat(self.id).map_err(|e| stat_error(&self.target, e))?;
        Ok(Stat::from_raw(self.id, &ds))
    }

    /// The size in bytes, from `IPC_STAT`.
    ///
    /// # Errors
    /// As [`stat`](SysvShm::stat).
    pub fn size(&self) -> Result<u64> {
        Ok(self.stat()?.size)
    }

    /// `shmat`—attaches the whole segment, read-write unless the handle was
    /// opened read-only.
    ///
    /// It attaches first and then asks the kernel (`IPC_STAT`) what it
    /// attached: the mapping is as long as that segment, and only the segment
    /// this handle was made for is handed out. A segment marked for removal
    /// that is still attached elsewhere is still that segment, and attaches.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`]; [`Error::NotFound`] if the segment is
    /// gone, also when its id now names another segment (the kernel gives
    /// the id of a destroyed segment to a new one): that one is detached
    /// again at once; [`Error::NoSpace`] if the address space is exhausted.
    ///
    /// # Examples
    /// ```
    /// use shmkit::sysv::{Key, Options, SysvShm};
    /// let shm = SysvShm::create(Key::PRIVATE, &Options::new().size(100))?;
    /// let map = shm.attach()?;
    /// assert_eq!(map.len(), 100);
    /// shm.remove()?; // marked for removal; lives on while `map` is attached
    /// assert_eq!(shm.attach()?.len(), 100);
    /// drop(map);
    /// assert!(matches!(shm.attach(), Err(shmkit::Error::NotFound { .. })));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[doc(alias = "shmat")]
    pub fn attach(&self) -> Result<Mapping> {
        self.attach_with(self.access)
    }

    /// `shmat(SHM_RDONLY)`—attaches read-only: writes through the mapping
    /// are refused by the API and would fault if forced.
    ///
    /// # Errors
    /// As [`attach`](SysvShm::attach).
    #[doc(alias = "shmat")]
    pub fn attach_read_only(&self) -> Result<Mapping> {
        self.attach_with(Access::ReadOnly)
    }

    fn attach_with(&self, access: Access) -> Result<Mapping> {
        if access.is_writable() && !self.access.is_writable() {
            return Err(Error::ReadOnly {
                target: self.target.clone(),
            });
        }
        let flags = match access {
            Access::ReadOnly => libc::SHM_RDONLY,
            Access::ReadWrite => 0,
        };
        let gone = || Error::NotFound {
            target: self.target.clone(),
        };
        // Attach first: whatever segment has the id now, call it S.
        let attached = Attached(ffi::shmat(self.id, flags).map_err(|e| match e {
            Errno::INVAL | Errno::IDRM => gone(),
            Errno::NOMEM => Error::no_space(&self.target, self.origin.size, None, e),
            _ => Error::from_errno("shmat", &self.target, e),
        })?);
        // Then ask what S is. Our attachment keeps S, and with it the id
        // (see the SAFETY comment below), so this IPC_STAT describes S: the
        // check below compares the segment actually attached, with no window
        // between the two in which the id could change hands. A segment that
        // took the id at any time before our shmat fails it (unless nothing
        // the kernel shows tells it apart, see `Origin::is`); none can take
        // it after, while we hold S.
        let ds = ffi::stat(self.id).map_err(|e| stat_error(&self.target, e))?;
        let st = Stat::from_raw(self.id, &ds);
        if !self.origin.is(&st) {
            // Another segment got the id since this handle was made: detach
            // it (dropping `attached`) and say that ours is gone.
            return Err(gone());
        }
        let len = usize::try_from(st.size).map_err(|_| too_large(&self.target, st.size))?;
        // SAFETY: `attached` is the attachment `shmat` made just now of the
        // segment S that had the id at that instant, read-only unless
        // `access` is `ReadWrite`. While an attachment of S exists, S is not
        // destroyed: IPC_RMID only marks it (SHM_DEST, key set to
        // IPC_PRIVATE) and the kernel frees it, and releases its id, at the
        // last detach. So from our shmat to our IPC_STAT the id names S and
        // nothing else (ids belong to an IPC namespace, and only this thread
        // could move itself to another one), `st` describes S, and `len` is
        // S's size. The kernel attached S's whole file, `shm_segsz` rounded
        // up to (huge) pages, so at least `len` bytes, and a segment's size
        // never changes. The length thus comes from the segment actually
        // attached, never from a stat taken before (which may describe a
        // segment that has since been destroyed and whose id was reused, as
        // the old code did). The identity check above does not make this
        // sound; it makes S the segment this handle names, marked for removal
        // or not. `into_raw` disarms the guard: the mapping detaches it.
        Ok(unsafe { Mapping::from_shmat(attached.into_raw(), len, access, self.target.clone()) })
    }

    /// `shmctl(IPC_SET)`—changes the permission bits.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] unless the caller owns or created the
    /// segment (or is privileged); [`Error::InvalidArgument`] for bits beyond
    /// `0o777`.
    #[doc(alias = "IPC_SET")]
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        if mode & !0o777 != 0 {
            return Err(Error::InvalidArgument {
                target: self.target.clone(),
                reason: format!("mode {mode:#o} has bits beyond 0o777"),
            });
        }
        self.set(|ds| ds.shm_perm.mode = mode as libc::c_ushort)
    }

    /// `shmctl(IPC_SET)`—changes the owner's user and group ids.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] unless the caller owns or created the
    /// segment (or is privileged).
    #[doc(alias = "IPC_SET")]
    pub fn set_owner(&self, uid: u32, gid: u32) -> Result<()> {
        self.set(|ds| {
            ds.shm_perm.uid = uid;
            ds.shm_perm.gid = gid;
        })
    }

    fn set(&self, change: impl FnOnce(&mut libc::shmid_ds)) -> Result<()> {
        let mut ds = ffi::stat(self.id).map_err(|e| stat_error(&self.target, e))?;
        change(&mut ds);
        ffi::set(self.id, &mut ds).map_err(|e| Error::from_errno("shmctl(IPC_SET)", &self.target, e))
    }

    /// `shmctl(IPC_RMID)`—marks the segment for removal. Processes attached
    /// to it keep using it; it is destroyed when the last one detaches.
    ///
    /// # Errors
    /// [`Error::NotFound`] if it is gone already; [`Error::PermissionDenied`]
    /// unless the caller owns or created it (or is privileged).
    #[doc(alias = "IPC_RMID")]
    pub fn remove(&self) -> Result<()> {
        ffi::rmid(self.id).map_err(|e| rmid_error(&self.target, e))
    }

    /// Wraps the handle so that dropping it also removes the segment.
    pub fn remove_on_drop(self) -> RemoveOnDrop<SysvShm> {
        RemoveOnDrop::new(self)
    }
}

impl Removable for SysvShm {
    fn remove(&self) -> Result<()> {
        SysvShm::remove(self)
    }
}

/// An attachment not handed to a [`Mapping`] yet: detached when dropped.
struct Attached(NonNull<c_void>);

impl Attached {
    /// The address, for the mapping that takes over detaching it.
    fn into_raw(self) -> NonNull<c_void> {
        let base = self.0;
        std::mem::forget(self);
        base
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `shmat` and was given to nothing else
        // (`into_raw` forgets the guard instead); nothing was read through
        // it, and nothing uses it after this.
        let _ = unsafe { ffi::shmdt(self.0) };
    }
}

/// `shmctl(id, IPC_RMID)`—marks the segment with this id for removal, even
/// when the caller may not read it (the owner of a `0200` segment, say).
///
/// # Errors
/// As [`SysvShm::remove`].
#[doc(alias = "IPC_RMID")]
pub fn remove_id(id: i32) -> Result<()> {
    ffi::rmid(id).map_err(|e| rmid_error(&Target::SysvId(id), e))
}

fn key_target(key: Key) -> Target {
    Target::SysvKey(key)
}

/// `IPC_STAT` says `EINVAL`/`EIDRM` for an id that is not (or no longer) in
/// use.
fn stat_error(target: &Target, e: Errno) -> Error {
    match e {
        Errno::INVAL | Errno::IDRM => Error::NotFound { target: target.clone() },
        _ => Error::from_errno("shmctl(IPC_STAT)", target, e),
    }
}

fn rmid_error(target: &Target, e: Errno) -> Error {
    match e {
        Errno::INVAL | Errno::IDRM => Error::NotFound { target: target.clone() },
        _ => Error::from_errno("shmctl(IPC_RMID)", target, e),
    }
}

/// A size `shmget` refuses: above `SHMMAX`, or below `SHMMIN` (1).
fn too_large(target: &Target, requested: u64) -> Error {
    let limit = if requested < 1 {
        Limit {
            name: "SHMMIN",
            value: Some(1),
        }
    } else {
        Limit {
            name: "SHMMAX",
            value: kernel_limit("shmmax"),
        }
    };
    Error::TooLarge {
        target: target.clone(),
        requested,
        limit: Some(limit),
    }
}

/// Which limit an `ENOSPC` from `shmget` ran into: the number of segments
/// (`SHMMNI`) if that many exist, else the total pages (`SHMALL`).
fn exhausted_limit() -> Limit {
    let shmmni = kernel_limit("shmmni");
    let in_use = std::fs::read_to_string("/proc/sysvipc/shm")
        .ok()
        .map(|table| table.lines().count().saturating_sub(1) as u64);
    match (shmmni, in_use) {
        (Some(max), Some(n)) if n >= max => Limit {
            name: "SHMMNI",
            value: Some(max),
        },
        _ => Limit {
            name: "SHMALL",
            value: kernel_limit("shmall"),
        },
    }
}

/// A number from `/proc/sys/kernel/<name>`.
pub(crate) fn kernel_limit(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
