//! POSIX shared memory: objects named `/name`, made with `shm_open`.
//!
//! On Linux such an object is a file in the `/dev/shm` tmpfs. A
//! [`PosixShm`] owns the open file descriptor; [`PosixShm::map`] maps it.
//! Creating, opening and removing are separate acts:
//!
//! | call | if the object exists | if it does not |
//! |---|---|---|
//! | [`PosixShm::create`] | [`Error::AlreadyExists`] | creates it |
//! | [`PosixShm::open`] | opens it | [`Error::NotFound`] |
//! | [`PosixShm::open_or_create`] | opens it | creates it |
//! | [`remove`] | unlinks the name | [`Error::NotFound`] |
//!
//! Dropping a handle closes it and never removes the object; use
//! [`PosixShm::remove_on_drop`] for that.
//!
//! # Examples
//!
//! The classic writer and reader, in one process here (see `examples/` for
//! the two-process version):
//!
//! ```
//! use shmkit::posix::{self, Options, PosixShm, ShmName};
//!
//! let name = ShmName::new(format!("/shmkit-doc-posix-{}", std::process::id()))?;
//!
//! // writer: create, size to 4096 bytes, write a C string
//! let writer = PosixShm::create(&name, &Options::new().size(4096))?;
//! writer.map()?.write_at(0, b"This is writer!!!\0")?;
//! drop(writer); // closes; the object stays
//!
//! // reader: open, map, read up to the NUL, remove
//! let reader = PosixShm::open(&name, &Options::new().read_only(true))?;
//! assert_eq!(reader.size()?, 4096);
//! let text = reader.map()?.read_cstr(0)?;
//! assert_eq!(text, b"This is writer!!!");
//! posix::remove(&name)?;
//! # Ok::<(), shmkit::Error>(())
//! ```

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::{FallocateFlags, FileType, Mode};
use rustix::io::Errno;
use rustix::shm;

pub use crate::map::{Access, Mapping};
pub use crate::name::{InvalidName, ShmName, MAX_NAME_LEN};

use crate::error::{Error, Limit, Result, Target};
use crate::guard::{Removable, RemoveOnDrop};
use crate::map::out_of_range;

/// Where Linux keeps POSIX shared-memory objects (as `shm_open` does).
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// The mode objects are created with unless asked otherwise: owner read/write.
pub const DEFAULT_MODE: u32 = 0o600;

/// How long [`PosixShm::open_or_create`] waits for a creator that won the
/// race to size the object.
const SIZING_GRACE: Duration = Duration::from_secs(1);

/// How to create or open an object: a plain value, reusable for many calls.
///
/// ```
/// let opts = shmkit::posix::Options::new().size(4096).mode(0o640);
/// assert_eq!(opts.get_mode(), 0o640);
/// assert_eq!(shmkit::posix::Options::default().get_mode(), 0o600);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    size: u64,
    mode: u32,
    access: Access,
    sparse: bool,
    allow_foreign: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            size: 0,
            mode: DEFAULT_MODE,
            access: Access::ReadWrite,
            sparse: false,
            allow_foreign: false,
        }
    }
}

impl Options {
    /// The defaults: size 0, mode `0600`, read-write, memory reserved.
    pub fn new() -> Self {
        Self::default()
    }

    /// When creating: the size to give the object. When opening: the
    /// smallest size accepted (an existing object that is smaller is an
    /// [`Error::SizeMismatch`], not a silently short mapping). `0` asks for
    /// nothing.
    pub fn size(mut self, bytes: u64) -> Self {
        self.size = bytes;
        self
    }

    /// The permission bits a new object gets, exactly, whatever the umask
    /// (default `0600`). Only the nine `rwx` bits are allowed.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Opens read-only (`O_RDONLY`): maps cannot be written. Creating
    /// needs read-write, so this applies to [`PosixShm::open`] only.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.access = if yes { Access::ReadOnly } else { Access::ReadWrite };
        self
    }

    /// Leaves a new object sparse (`ftruncate` only) instead of reserving
    /// its memory (`fallocate`). A sparse object can be larger than the free
    /// space of `/dev/shm`, and touching a page that cannot be backed then
    /// raises `SIGBUS`: through a shmkit [`Mapping`] that is
    /// [`Error::Truncated`] (the mapping is lost), elsewhere a crash.
    pub fn sparse(mut self, yes: bool) -> Self {
        self.sparse = yes;
        self
    }

    /// Lets [`PosixShm::open_or_create`] use an existing object owned by
    /// another user or with wider permissions than [`mode`](Options::mode).
    /// By default that is [`Error::Untrusted`]: whoever made the object
    /// first can read and change what you put in it.
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

    /// The access set with [`read_only`](Options::read_only).
    pub fn get_access(&self) -> Access {
        self.access
    }
}

/// What `fstat` says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Its size in bytes.
    pub size: u64,
    /// The bytes of memory it occupies now (`st_blocks * 512`): less than
    /// `size` when sparse.
    pub allocated: u64,
    /// The permission bits (`0o777` at most, plus any special bits).
    pub mode: u32,
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
    /// When its data last changed.
    pub modified: Option<SystemTime>,
    /// When its data or metadata last changed.
    pub changed: Option<SystemTime>,
}

/// An open POSIX shared-memory object: a file descriptor from `shm_open`.
///
/// Dropping it closes the descriptor; mappings made from it stay valid, and
/// the object stays until it is [removed](remove).
#[derive(Debug)]
pub struct PosixShm {
    fd: OwnedFd,
    name: ShmName,
    access: Access,
    sparse: bool,
}

/// `shm_open` flags every call adds: never follow a symbolic link planted in
/// `/dev/shm`, and never block opening something that is not a regular file
/// (a FIFO would).
fn safety_flags() -> shm::OFlags {
    shm::OFlags::from_bits_retain((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits())
}

impl PosixShm {
    /// `shm_open(name, O_CREAT | O_EXCL | O_RDWR, mode)`, then `fchmod` and
    /// `fallocate`—creates a new object of `opts.size` bytes.
    ///
    /// The mode is set exactly as asked, whatever the umask. The memory is
    /// reserved now (unless [`Options::sparse`]), so a full `/dev/shm` fails
    /// here rather than with `SIGBUS` on a later write. If sizing fails, the
    /// new object is removed again.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if `name` exists; [`Error::NoSpace`] when
    /// `/dev/shm` cannot hold `opts.size` bytes; [`Error::PermissionDenied`];
    /// [`Error::InvalidArgument`] for a mode beyond `0o777` or read-only
    /// options.
    ///
    /// # Examples
    /// ```
    /// use shmkit::posix::{Options, PosixShm, ShmName};
    /// let name = ShmName::new(format!("/shmkit-doc-create-{}", std::process::id()))?;
    /// let shm = PosixShm::create(&name, &Options::new().size(4096).mode(0o640))?.remove_on_drop();
    /// assert_eq!(shm.metadata()?.mode & 0o777, 0o640);
    /// assert!(matches!(PosixShm::create(&name, &Options::new()), Err(shmkit::Error::AlreadyExists { .. })));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[doc(alias = "shm_open")]
    pub fn create(name: &ShmName, opts: &Options) -> Result<PosixShm> {
        let target = Target::Posix(name.clone());
        if !opts.access.is_writable() {
            return Err(read_only_create(target));
        }
        check_mode(&target, opts.mode)?;
        let fd = shm::open(
            name.as_str(),
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR | safety_flags(),
            Mode::from_raw_mode(opts.mode),
        )
        .map_err(|e| Error::from_errno("shm_open", &target, e))?;
        let shm = PosixShm {
            fd,
            name: name.clone(),
            access: Access::ReadWrite,
            sparse: opts.sparse,
        };
        // From here on the object is ours: remove it again if it cannot be
        // made what was asked.
        let shm = RemoveOnDrop::new(shm);
        rustix::fs::fchmod(&shm.fd, Mode::from_raw_mode(opts.mode))
            .map_err(|e| Error::from_errno("fchmod", &target, e))?;
        shm.grow(0, opts.size)?;
        Ok(shm.keep())
    }

    /// Creates `name` fully made before anyone can open it: the object is
    /// created unnamed (`O_TMPFILE` in `/dev/shm`), given its mode and size,
    /// mapped and handed to `init`, and only then linked under its name
    /// (`linkat`), which fails if the name exists. So no other process ever
    /// sees it half-initialised, and if this process dies before the link,
    /// nothing is left behind. Returns the handle and the mapping `init`
    /// wrote through.
    ///
    /// Where `O_TMPFILE` is not supported, it falls back to
    /// [`create`](PosixShm::create) then `init`: the name then exists
    /// while `init` runs.
    ///
    /// # Errors
    /// As [`create`](PosixShm::create), and whatever `init` returns (then
    /// nothing is created).
    ///
    /// # Examples
    /// ```
    /// use shmkit::posix::{Options, PosixShm, ShmName};
    /// let name = ShmName::new(format!("/shmkit-doc-with-{}", std::process::id()))?;
    /// let (shm, map) = PosixShm::create_with(&name, &Options::new().size(4096), |map| {
    ///     map.write_at(0, b"ready\0") // before anyone can see the name
    /// })?;
    /// let shm = shm.remove_on_drop();
    /// let other = PosixShm::open(&name, &Options::new().read_only(true))?;
    /// assert_eq!(other.map()?.read_cstr(0)?, b"ready");
    /// # drop(map);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn create_with(
        name: &ShmName,
        opts: &Options,
        init: impl FnOnce(&Mapping) -> Result<()>,
    ) -> Result<(PosixShm, Mapping)> {
        let target = Target::Posix(name.clone());
        if !opts.access.is_writable() {
            return Err(read_only_create(target));
        }
        check_mode(&target, opts.mode)?;
        let tmp = rustix::fs::open(
            SHM_DIR,
            rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            Mode::from_raw_mode(opts.mode),
        );
        let fd = match tmp {
            Ok(fd) => {
                fault_point("opened");
                fd
            }
            // No O_TMPFILE here: create under the name, then initialise.
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {
                let shm = Self::create(name, opts)?.remove_on_drop();
                let map = shm.map()?;
                init(&map)?;
                return Ok((shm.keep(), map));
            }
            Err(e) => return Err(Error::from_errno("open(O_TMPFILE)", &target, e)),
        };
        let shm = PosixShm {
            fd,
            name: name.clone(),
            access: Access::ReadWrite,
            sparse: opts.sparse,
        };
        rustix::fs::fchmod(&shm.fd, Mode::from_raw_mode(opts.mode))
            .map_err(|e| Error::from_errno("fchmod", &target, e))?;
        shm.grow(0, opts.size)?;
        fault_point("sized");
        let map = shm.map()?;
        init(&map)?;
        fault_point("initialised");
        // Publish: the name appears, fully made, or not at all.
        let proc_path = format!("/proc/self/fd/{}", shm.fd.as_raw_fd());
        let path = format!("{SHM_DIR}/{}", name.file_name());
        let linked = rustix::fs::linkat(
            rustix::fs::CWD,
            proc_path.as_str(),
            rustix::fs::CWD,
            path.as_str(),
            rustix::fs::AtFlags::SYMLINK_FOLLOW,
        );
        let linked = match linked {
            // No /proc here (a container may have none): link the
            // descriptor itself, which needs CAP_DAC_READ_SEARCH.
            Err(Errno::NOENT) => rustix::fs::linkat(
                &shm.fd,
                "",
                rustix::fs::CWD,
                path.as_str(),
                rustix::fs::AtFlags::EMPTY_PATH,
            ),
            other => other,
        };
        match linked {
            Ok(()) => Ok((shm, map)),
            // Neither works: create under the name, then initialise (the
            // name then exists while `init` runs; openers wait for it).
            Err(Errno::NOENT | Errno::PERM | Errno::ACCESS) => {
                let named = Self::create(name, opts)?.remove_on_drop();
                let named_map = named.map()?;
                // What `init` wrote, copied over (zero chunks are skipped:
                // the new object is zeroed already).
                let mut chunk = vec![0u8; 64 << 10];
                let mut at = 0;
                while at < map.len() {
                    let n = chunk.len().min(map.len() - at);
                    map.read_at(at, &mut chunk[..n])?;
                    if chunk[..n].iter().any(|&b| b != 0) {
                        named_map.write_at(at, &chunk[..n])?;
                    }
                    at += n;
                }
                Ok((named.keep(), named_map))
            }
            Err(e) => Err(Error::from_errno("linkat", &target, e)),
        }
    }

    /// `shm_open(name, O_RDONLY or O_RDWR)`—opens an existing object.
    ///
    /// # Errors
    /// [`Error::NotFound`] if it does not exist; [`Error::PermissionDenied`];
    /// [`Error::SizeMismatch`] if it is smaller than `opts.size`;
    /// [`Error::InvalidArgument`] if the name in `/dev/shm` is not a regular
    /// file (nothing is followed or waited for).
    ///
    /// # Examples
    /// ```
    /// use shmkit::posix::{Options, PosixShm, ShmName};
    /// let name = ShmName::new(format!("/shmkit-doc-open-{}", std::process::id()))?;
    /// assert!(matches!(PosixShm::open(&name, &Options::new()), Err(shmkit::Error::NotFound { .. })));
    /// let _owner = PosixShm::create(&name, &Options::new().size(100))?.remove_on_drop();
    /// let ro = PosixShm::open(&name, &Options::new().read_only(true))?;
    /// assert!(!ro.map()?.is_writable());
    /// assert!(matches!(PosixShm::open(&name, &Options::new().size(200)), Err(shmkit::Error::SizeMismatch { .. })));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[doc(alias = "shm_open")]
    pub fn open(name: &ShmName, opts: &Options) -> Result<PosixShm> {
        let shm = Self::open_existing(name, opts)?;
        shm.check_size(opts.size)?;
        Ok(shm)
    }

    /// Opens `name` if it exists, or else creates it, without a race: when
    /// several processes call this at once, exactly one creates. Returns the
    /// handle and whether this call created the object (that side should
    /// initialise its contents).
    ///
    /// An opener that finds an empty object while `opts.size` asks for more
    /// waits up to a second for the creator to size it. An existing object
    /// that another user owns, or whose permissions are wider than
    /// `opts.mode`, is refused unless [`Options::allow_foreign`]: someone may
    /// have created the name first to read what you write.
    ///
    /// # Errors
    /// As [`create`](PosixShm::create) and [`open`](PosixShm::open), and
    /// [`Error::Untrusted`].
    ///
    /// # Examples
    /// ```
    /// use shmkit::posix::{Options, PosixShm, ShmName};
    /// let name = ShmName::new(format!("/shmkit-doc-ooc-{}", std::process::id()))?;
    /// let opts = Options::new().size(4096);
    /// let (first, created) = PosixShm::open_or_create(&name, &opts)?;
    /// assert!(created);
    /// let first = first.remove_on_drop();
    /// let (_second, created) = PosixShm::open_or_create(&name, &opts)?;
    /// assert!(!created);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn open_or_create(name: &ShmName, opts: &Options) -> Result<(PosixShm, bool)> {
        // Bounded: each round needs another process to create *and* remove
        // the object between our two calls.
        for _ in 0..100 {
            match Self::create(name, opts) {
                Ok(shm) => return Ok((shm, true)),
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            match Self::open_existing(name, opts) {
                Ok(shm) => {
                    if !opts.allow_foreign {
                        shm.check_trusted(opts.mode)?;
                    }
                    shm.wait_for_size(opts.size)?;
                    return Ok((shm, false));
                }
                Err(Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Os {
            target: Target::Posix(name.clone()),
            op: "shm_open",
            source: Errno::AGAIN,
        })
    }

    fn open_existing(name: &ShmName, opts: &Options) -> Result<PosixShm> {
        let target = Target::Posix(name.clone());
        let access_flag = match opts.access {
            Access::ReadOnly => shm::OFlags::RDONLY,
            Access::ReadWrite => shm::OFlags::RDWR,
        };
        let fd = shm::open(name.as_str(), access_flag | safety_flags(), Mode::empty()).map_err(|e| match e {
            // O_NOFOLLOW on a symbolic link
            Errno::LOOP => not_regular(&target, "a symbolic link"),
            _ => Error::from_errno("shm_open", &target, e),
        })?;
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::from_errno("fstat", &target, e))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(not_regular(&target, "a directory")),
            FileType::Fifo => return Err(not_regular(&target, "a FIFO")),
            _ => return Err(not_regular(&target, "not a regular file")),
        }
        Ok(PosixShm {
            fd,
            name: name.clone(),
            access: opts.access,
            sparse: opts.sparse,
        })
    }

    /// Fails with [`Error::Untrusted`] if another user owns the object or its
    /// permissions are wider than `mode`.
    pub(crate) fn check_trusted(&self, mode: u32) -> Result<()> {
        let meta = self.metadata()?;
        let untrusted = |reason| Error::Untrusted {
            target: self.target(),
            uid: meta.uid,
            mode: meta.mode,
            reason,
        };
        if meta.uid != rustix::process::geteuid().as_raw() {
            return Err(untrusted("it belongs to another user"));
        }
        if meta.mode & 0o777 & !mode != 0 {
            return Err(untrusted("its permissions are wider than asked"));
        }
        Ok(())
    }

    /// Fails with [`Error::SizeMismatch`] if the object is smaller than
    /// `wanted` bytes.
    fn check_size(&self, wanted: u64) -> Result<()> {
        let actual = self.size()?;
        if actual < wanted {
            return Err(Error::SizeMismatch {
                target: self.target(),
                actual,
                expected: wanted,
            });
        }
        Ok(())
    }

    /// As `check_size`, but gives a creator that is still sizing an empty
    /// object a moment to finish.
    fn wait_for_size(&self, wanted: u64) -> Result<()> {
        let deadline = Instant::now() + SIZING_GRACE;
        while wanted > 0 && self.size()? == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.check_size(wanted)
    }

    /// The object's name.
    pub fn name(&self) -> &ShmName {
        &self.name
    }

    /// Whether this handle was opened read-only or read-write.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The size in bytes, from `fstat`.
    ///
    /// # Errors
    /// [`Error::Os`] if `fstat` fails.
    #[doc(alias = "fstat")]
    pub fn size(&self) -> Result<u64> {
        Ok(self.metadata()?.size)
    }

    /// Size, owner, mode and times, from `fstat`.
    ///
    /// # Errors
    /// [`Error::Os`] if `fstat` fails.
    #[doc(alias = "fstat")]
    pub fn metadata(&self) -> Result<Metadata> {
        let st = rustix::fs::fstat(&self.fd).map_err(|e| Error::from_errno("fstat", &self.target(), e))?;
        Ok(Metadata {
            size: st.st_size as u64,
            allocated: (st.st_blocks as u64).saturating_mul(512),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            modified: system_time(st.st_mtime as i64, st.st_mtime_nsec as i64),
            changed: system_time(st.st_ctime as i64, st.st_ctime_nsec as i64),
        })
    }

    /// `ftruncate`, and `fallocate` when growing—sets the size to `bytes`.
    ///
    /// Growing reserves the new memory (unless the handle was opened with
    /// [`Options::sparse`]). Mappings made before keep their length: a
    /// process that shrinks an object under another's mapping makes the
    /// other's next access to the lost pages fail (with [`Error::Truncated`]
    /// through shmkit, with `SIGBUS` elsewhere), so shrink only when nobody
    /// maps the tail.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] for a read-only handle; [`Error::NoSpace`] when
    /// `/dev/shm` cannot hold the new size.
    ///
    /// # Examples
    /// ```
    /// use shmkit::posix::{Options, PosixShm, ShmName};
    /// let name = ShmName::new(format!("/shmkit-doc-resize-{}", std::process::id()))?;
    /// let shm = PosixShm::create(&name, &Options::new().size(4096))?.remove_on_drop();
    /// shm.resize(8192)?;
    /// assert_eq!(shm.size()?, 8192);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[doc(alias = "ftruncate")]
    pub fn resize(&self, bytes: u64) -> Result<()> {
        if !self.access.is_writable() {
            return Err(Error::ReadOnly { target: self.target() });
        }
        let current = self.size()?;
        if bytes <= current {
            return rustix::fs::ftruncate(&self.fd, bytes)
                .map_err(|e| Error::from_errno("ftruncate", &self.target(), e));
        }
        self.grow(current, bytes)
    }

    /// Grows the object from `current` to `bytes`, reserving the memory
    /// unless sparse.
    fn grow(&self, current: u64, bytes: u64) -> Result<()> {
        if bytes <= current {
            return Ok(());
        }
        let sized = if self.sparse {
            rustix::fs::ftruncate(&self.fd, bytes)
        } else {
            match rustix::fs::fallocate(&self.fd, FallocateFlags::empty(), current, bytes - current) {
                // A file system without fallocate: size it sparse.
                Err(Errno::OPNOTSUPP) => rustix::fs::ftruncate(&self.fd, bytes),
                other => other,
            }
        };
        sized.map_err(|e| match e {
            Errno::NOSPC | Errno::NOMEM | Errno::FBIG => {
                Error::no_space(&self.target(), bytes, self.free_space_limit(), e)
            }
            _ => Error::from_errno("fallocate", &self.target(), e),
        })
    }

    /// The free space of the file system holding the object, as a limit.
    fn free_space_limit(&self) -> Option<Limit> {
        let vfs = rustix::fs::fstatvfs(&self.fd).ok()?;
        Some(Limit {
            name: "free space in /dev/shm",
            value: Some(vfs.f_bavail.saturating_mul(vfs.f_frsize)),
        })
    }

    /// `mmap(MAP_SHARED)`—maps the whole object, with this handle's access.
    ///
    /// # Errors
    /// [`Error::NoSpace`] if the address space is exhausted, other OS errors
    /// as [`Error::Os`].
    #[doc(alias = "mmap")]
    pub fn map(&self) -> Result<Mapping> {
        let size = self.size()?;
        let len = usize::try_from(size).map_err(|_| out_of_range(&self.target(), 0, size, size))?;
        self.map_range(0, len, self.access)
    }

    /// `mmap(MAP_SHARED)`—maps `len` bytes from `offset` (any offset: the
    /// page alignment `mmap` needs is handled here).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] if the range is not inside the object;
    /// [`Error::ReadOnly`] for a writable mapping of a read-only handle.
    ///
    /// # Examples
    /// ```
    /// use shmkit::posix::{Access, Options, PosixShm, ShmName};
    /// let name = ShmName::new(format!("/shmkit-doc-range-{}", std::process::id()))?;
    /// let shm = PosixShm::create(&name, &Options::new().size(8192))?.remove_on_drop();
    /// shm.map()?.write_at(5000, b"xyz")?;
    /// let part = shm.map_range(5000, 3, Access::ReadOnly)?;
    /// assert_eq!(part.read_vec(0, 3)?, b"xyz");
    /// assert!(shm.map_range(8000, 500, Access::ReadOnly).is_err());
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[doc(alias = "mmap")]
    pub fn map_range(&self, offset: u64, len: usize, access: Access) -> Result<Mapping> {
        if access.is_writable() && !self.access.is_writable() {
            return Err(Error::ReadOnly { target: self.target() });
        }
        let size = self.size()?;
        if offset.checked_add(len as u64).is_none_or(|end| end > size) {
            return Err(out_of_range(&self.target(), offset, len as u64, size));
        }
        Mapping::map_fd(self.fd.as_fd(), offset, len, access, self.target())
    }

    /// `shm_unlink`—removes this object's name (see [`remove`]).
    ///
    /// # Errors
    /// As [`remove`].
    pub fn unlink(&self) -> Result<()> {
        remove(&self.name)
    }

    /// Wraps the handle so that dropping it also removes the object.
    pub fn remove_on_drop(self) -> RemoveOnDrop<PosixShm> {
        RemoveOnDrop::new(self)
    }

    fn target(&self) -> Target {
        Target::Posix(self.name.clone())
    }
}

impl Removable for PosixShm {
    fn remove(&self) -> Result<()> {
        self.unlink()
    }
}

impl AsFd for PosixShm {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PosixShm {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<PosixShm> for OwnedFd {
    fn from(shm: PosixShm) -> OwnedFd {
        shm.fd
    }
}

/// `shm_unlink(name)`—removes the name. Processes that have the object open
/// or mapped keep using it; its memory is freed when the last one is done.
///
/// # Errors
/// [`Error::NotFound`] if there is no such object;
/// [`Error::PermissionDenied`] if `/dev/shm` does not let the caller remove
/// it (another user's object: `/dev/shm` is sticky).
///
/// # Examples
/// ```
/// use shmkit::posix::{self, Options, PosixShm, ShmName};
/// let name = ShmName::new(format!("/shmkit-doc-remove-{}", std::process::id()))?;
/// PosixShm::create(&name, &Options::new())?;
/// posix::remove(&name)?;
/// assert!(matches!(posix::remove(&name), Err(shmkit::Error::NotFound { .. })));
/// # Ok::<(), shmkit::Error>(())
/// ```
#[doc(alias = "shm_unlink")]
pub fn remove(name: &ShmName) -> Result<()> {
    shm::unlink(name.as_str()).map_err(|e| Error::from_errno("shm_unlink", &Target::Posix(name.clone()), e))
}

/// Test hook (feature `fault-injection`): when `SHMKIT_FAULT` names `step`,
/// says so on standard output (`@shmkit-fault <step>`) and stops there, so a
/// test can kill the process at that step of creation.
#[cfg(feature = "fault-injection")]
fn fault_point(step: &str) {
    if std::env::var("SHMKIT_FAULT").as_deref() == Ok(step) {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "@shmkit-fault {step}");
        let _ = std::io::stdout().flush();
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
fn fault_point(_step: &str) {}

fn read_only_create(target: Target) -> Error {
    Error::InvalidArgument {
        target,
        reason: "cannot create an object read-only: create it read-write, then open it read-only".into(),
    }
}

/// Whether [`PosixShm::create_with`] can publish objects atomically here
/// (`O_TMPFILE` works in `/dev/shm`). Asked of the kernel once.
pub(crate) fn atomic_create_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        rustix::fs::open(
            SHM_DIR,
            rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .is_ok()
    })
}

fn check_mode(target: &Target, mode: u32) -> Result<()> {
    if mode & !0o777 != 0 {
        return Err(Error::InvalidArgument {
            target: target.clone(),
            reason: format!("mode {mode:#o} has bits beyond 0o777"),
        });
    }
    Ok(())
}

fn not_regular(target: &Target, what: &str) -> Error {
    Error::InvalidArgument {
        target: target.clone(),
        reason: format!("not a shared memory object ({what})"),
    }
}

/// Seconds and nanoseconds since the epoch as a time, `None` for 0.
pub(crate) fn system_time(secs: i64, nanos: i64) -> Option<SystemTime> {
    if secs <= 0 {
        return None;
    }
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos.clamp(0, 999_999_999) as u32))
}
