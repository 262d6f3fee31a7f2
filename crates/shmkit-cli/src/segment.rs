//! Opening what a [`Target`] names, whichever kind it is.

use shmkit::map::{Access, Mapping};
use shmkit::posix::{self, PosixShm};
use shmkit::sysv::{self, SysvShm};

use crate::target::Target;

/// An open segment of either kind.
#[derive(Debug)]
pub enum Segment {
    /// A POSIX object.
    Posix(PosixShm),
    /// A System V segment.
    Sysv(SysvShm),
}

impl Segment {
    /// Opens the existing object `target` names.
    pub fn open(target: &Target, access: Access) -> shmkit::Result<Segment> {
        let read_only = !access.is_writable();
        Ok(match target {
            Target::Posix(name) => Segment::Posix(PosixShm::open(name, &posix::Options::new().read_only(read_only))?),
            Target::PosixFile(_) => {
                return Err(shmkit::Error::InvalidName {
                    name: target.to_string(),
                    reason: crate::target::NOT_UTF8,
                })
            }
            Target::SysvKey(key) => Segment::Sysv(SysvShm::open(*key, &sysv::Options::new().read_only(read_only))?),
            Target::SysvId(id) => Segment::Sysv(SysvShm::from_id(*id)?),
        })
    }

    /// Removes the segment: `shm_unlink` its name, or `IPC_RMID` (freed at
    /// the last detach).
    pub fn remove(&self) -> shmkit::Result<()> {
        match self {
            Segment::Posix(shm) => posix::remove(shm.name()),
            Segment::Sysv(shm) => shm.remove(),
        }
    }

    /// Maps (or attaches) the whole segment.
    pub fn map(&self, access: Access) -> shmkit::Result<Mapping> {
        match self {
            Segment::Posix(shm) => {
                let size = shm.size()?;
                let len = usize::try_from(size).unwrap_or(usize::MAX);
                shm.map_range(0, len, access)
            }
            Segment::Sysv(shm) if access.is_writable() => shm.attach(),
            Segment::Sysv(shm) => shm.attach_read_only(),
        }
    }
}
