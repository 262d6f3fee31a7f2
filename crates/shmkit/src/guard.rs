//! [`RemoveOnDrop`]: the explicit choice to remove an object when its handle
//! goes away.
//!
//! Dropping a plain handle unmaps and closes; it never removes the object,
//! because other processes may still need it. Wrap a handle with
//! `remove_on_drop()` when this process owns the object's lifetime.

use std::fmt;
use std::ops::Deref;

use crate::error::Result;

/// A handle to an object that can be removed from the system (unlinked or
/// marked for destruction).
pub trait Removable {
    /// Removes the object this handle refers to.
    ///
    /// # Errors
    /// As the kind's own removal ([`crate::posix::remove`],
    /// [`crate::sysv::SysvShm::remove`]).
    fn remove(&self) -> Result<()>;
}

/// A handle that removes its object when dropped, unless disarmed with
/// [`keep`](RemoveOnDrop::keep). It dereferences to the handle.
///
/// # Examples
///
/// ```
/// use shmkit::posix::{Options, PosixShm, ShmName};
///
/// let name = ShmName::new(format!("/shmkit-doc-guard-{}", std::process::id()))?;
/// {
///     let shm = PosixShm::create(&name, &Options::new().size(64))?.remove_on_drop();
///     assert_eq!(shm.size()?, 64); // derefs to PosixShm
/// } // removed here
/// assert!(PosixShm::open(&name, &Options::new()).is_err());
///
/// let shm = PosixShm::create(&name, &Options::new().size(64))?.remove_on_drop();
/// let shm = shm.keep(); // disarmed: the object outlives the handle
/// drop(shm);
/// shmkit::posix::remove(&name)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct RemoveOnDrop<T: Removable> {
    inner: Option<T>,
}

impl<T: Removable> RemoveOnDrop<T> {
    /// Wraps `handle`.
    pub fn new(handle: T) -> Self {
        RemoveOnDrop { inner: Some(handle) }
    }

    /// Disarms the guard and returns the handle: the object stays.
    pub fn keep(mut self) -> T {
        self.inner.take().expect("the handle is present until drop or keep")
    }

    /// Removes the object now and returns the handle (still usable: the
    /// object lives on until its last user is done), so that the error
    /// that `Drop` would have to ignore can be seen.
    ///
    /// # Errors
    /// As [`Removable::remove`]; the handle is dropped then.
    pub fn remove(self) -> Result<T> {
        let handle = self.keep();
        handle.remove()?;
        Ok(handle)
    }
}

impl<T: Removable> Deref for RemoveOnDrop<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_ref().expect("the handle is present until drop or keep")
    }
}

impl<T: Removable> Drop for RemoveOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.inner.take() {
            let _ = handle.remove();
        }
    }
}

impl<T: Removable + fmt::Debug> fmt::Debug for RemoveOnDrop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RemoveOnDrop").field(&self.inner).finish()
    }
}
