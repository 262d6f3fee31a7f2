//! Views: zero-copy access to memory that another process may write at any
//! moment, without a Rust reference to it.
//!
//! A `&[u8]` promises the compiler that the bytes do not change while it
//! lives, so it may read a checked value twice and find it different — a
//! reference into memory a peer can write is undefined behaviour, whatever
//! the peer is meant to do. A [`View`] (read) or [`ViewMut`] (read and
//! write) is a pointer and a length instead, in the spirit of vm-memory's
//! `VolatileSlice`: it copies in and out with bounds checks, loads and
//! stores integers with one volatile access each, and gives a slice only
//! through an `unsafe` method whose contract the caller must keep.
//!
//! What a hostile peer can still do: change the bytes between two of your
//! reads (copy what must not change, then validate the copy), or shrink the
//! object, after which the view reads zeros and the owner of the view
//! (a channel's grant or guard) reports [`Error::Truncated`](crate::Error::Truncated).

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::ptr::NonNull;

/// A read-only view of `len` bytes of shared memory: copies and single
/// volatile loads, never a reference (see [`crate::map`] for why).
///
/// ```
/// # use shmkit::channel::{Options, Receiver, Sender};
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-view-{}", std::process::id()))?;
/// # let n2 = name.clone();
/// # let t = std::thread::spawn(move || Sender::connect(&n2, &Options::new()).unwrap().send(b"pong!").unwrap());
/// let mut rx = Receiver::connect(&name, &Options::new())?;
/// let msg = rx.recv_ref()?; // a guard: derefs to a View
/// assert_eq!(msg.len(), 5);
/// assert_eq!(msg.to_vec(), b"pong!");
/// let mut first = [0u8; 4];
/// msg.read_at(0, &mut first)?;
/// assert_eq!(&first, b"pong");
/// # drop(msg);
/// # t.join().unwrap();
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct View<'a> {
    ptr: NonNull<u8>,
    len: usize,
    _borrow: PhantomData<&'a [u8]>,
}

/// A writable view of `len` bytes of shared memory (see [`crate::map`]
/// for why a view). Everything a [`View`] does, through
/// [`as_view`](ViewMut::as_view) or directly, and writing.
///
/// ```
/// # use shmkit::channel::{Options, Receiver, Sender};
/// # let name = shmkit::posix::ShmName::new(format!("/shmkit-doc-viewmut-{}", std::process::id()))?;
/// # let n2 = name.clone();
/// # let t = std::thread::spawn(move || Receiver::connect(&n2, &Options::new()).unwrap().recv().unwrap());
/// let mut tx = Sender::connect(&name, &Options::new())?;
/// let mut grant = tx.reserve(12)?; // a grant: derefs to a ViewMut
/// grant.write_at(0, b"seq ")?;
/// grant.store_u64(4, 42)?;
/// grant.commit()?;
/// # let got = t.join().unwrap();
/// # assert_eq!(&got[..4], b"seq ");
/// # assert_eq!(u64::from_ne_bytes(got[4..].try_into().unwrap()), 42);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct ViewMut<'a> {
    ptr: NonNull<u8>,
    len: usize,
    _borrow: PhantomData<&'a mut [u8]>,
}

// SAFETY: a view is a pointer and a length into memory shared with other
// processes anyway; it is accessed only by copies and volatile accesses,
// which are sound from any thread.
unsafe impl Send for View<'_> {}
// SAFETY: as for Send.
unsafe impl Sync for View<'_> {}
// SAFETY: as for View; `ViewMut` is not Clone, so one thread writes
// through it at a time.
unsafe impl Send for ViewMut<'_> {}
// SAFETY: `&ViewMut` only reads.
unsafe impl Sync for ViewMut<'_> {}

/// The error of an access outside a view: its length, and what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes at offset {offset} are outside a view of {size} bytes")]
pub struct OutOfBounds {
    /// The offset asked for.
    pub offset: usize,
    /// The number of bytes asked for.
    pub len: usize,
    /// The view's length.
    pub size: usize,
}

impl From<OutOfBounds> for crate::Error {
    fn from(e: OutOfBounds) -> Self {
        crate::Error::OutOfRange {
            target: crate::Target::Memory,
            offset: e.offset as u64,
            len: e.len as u64,
            size: e.size as u64,
        }
    }
}

fn check(offset: usize, len: usize, size: usize) -> Result<(), OutOfBounds> {
    if offset <= size && len <= size - offset {
        Ok(())
    } else {
        Err(OutOfBounds { offset, len, size })
    }
}

macro_rules! read_methods {
    () => {
        /// The view's length in bytes.
        pub fn len(&self) -> usize {
            self.len
        }

        /// Whether the view has no bytes.
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }

        /// Copies the first `dst.len()` bytes into `dst`.
        ///
        /// # Errors
        /// [`OutOfBounds`] if `dst` is longer than the view.
        pub fn copy_to_slice(&self, dst: &mut [u8]) -> Result<(), OutOfBounds> {
            self.read_at(0, dst)
        }

        /// Copies `dst.len()` bytes from `offset` into `dst`.
        ///
        /// # Errors
        /// [`OutOfBounds`] if they are not all inside the view.
        pub fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
            check(offset, dst.len(), self.len)?;
            // SAFETY: in bounds (checked) of memory valid for the view's
            // lifetime (contract of `new`); `dst` is private memory, so the
            // two cannot overlap. A copy makes no reference to the source.
            unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(offset), dst.as_mut_ptr(), dst.len()) };
            Ok(())
        }

        /// The bytes, copied into a new vector.
        pub fn to_vec(&self) -> Vec<u8> {
            let mut out = Vec::new();
            self.read_to_vec(&mut out);
            out
        }

        /// Replaces `out`'s contents with a copy of the view's bytes (into its
        /// spare capacity: no zero-fill first).
        pub(crate) fn read_to_vec(&self, out: &mut Vec<u8>) {
            out.clear();
            out.reserve(self.len);
            // SAFETY: the source is valid for `len` bytes (contract of `new`);
            // `out` has room for them (reserved) and is private memory, so the
            // two cannot overlap; the bytes are initialized before `set_len`.
            unsafe {
                std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), out.as_mut_ptr(), self.len);
                out.set_len(self.len);
            }
        }

        /// Reads one byte with a volatile load.
        ///
        /// # Errors
        /// [`OutOfBounds`] past the view's end.
        pub fn load_u8(&self, offset: usize) -> Result<u8, OutOfBounds> {
            check(offset, 1, self.len)?;
            // SAFETY: in bounds (checked); a volatile read of a byte makes
            // no reference and is read exactly once.
            Ok(unsafe { self.ptr.as_ptr().add(offset).read_volatile() })
        }

        /// Reads a native-endian `u32` at `offset` (any alignment), once.
        ///
        /// # Errors
        /// [`OutOfBounds`] if its four bytes are not inside the view.
        pub fn load_u32(&self, offset: usize) -> Result<u32, OutOfBounds> {
            Ok(u32::from_ne_bytes(self.load_array::<4>(offset)?))
        }

        /// Reads a native-endian `u64` at `offset` (any alignment), once.
        ///
        /// # Errors
        /// [`OutOfBounds`] if its eight bytes are not inside the view.
        pub fn load_u64(&self, offset: usize) -> Result<u64, OutOfBounds> {
            Ok(u64::from_ne_bytes(self.load_array::<8>(offset)?))
        }

        fn load_array<const N: usize>(&self, offset: usize) -> Result<[u8; N], OutOfBounds> {
            check(offset, N, self.len)?;
            // SAFETY: in bounds (checked); an unaligned volatile read of an
            // array of bytes, once.
            Ok(unsafe { self.ptr.as_ptr().add(offset).cast::<[u8; N]>().read_volatile() })
        }

        /// Writes the bytes to `fd` with one `write(2)`, straight from the
        /// shared memory; returns how many were written.
        ///
        /// If the object shrank under the view, the kernel answers
        /// `EFAULT` ("Bad address"): ask the view's owner (e.g.
        /// [`Receiver::check_intact`](crate::channel::Receiver::check_intact)).
        ///
        /// # Errors
        /// The error of `write(2)`.
        pub fn write_to_fd(&self, fd: impl AsFd) -> io::Result<usize> {
            // SAFETY: the slice goes straight to the kernel, which copies
            // from the memory whatever a peer does meanwhile; no Rust code
            // reads through it, and it does not outlive this call.
            let bytes = unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) };
            Ok(rustix::io::write(fd, bytes)?)
        }

        /// The bytes as a slice.
        ///
        /// # Safety
        /// For as long as the slice lives, no process (this one included)
        /// may write these bytes, and the object may not shrink: a change
        /// under a `&[u8]` is undefined behaviour. The ring's protocol keeps
        /// a well-behaved peer off them; a hostile one can break that, so
        /// call this only when you trust every process that can write the
        /// object.
        pub unsafe fn as_slice(&self) -> &[u8] {
            // SAFETY: valid for `len` bytes for the view's lifetime; the
            // caller promises that nobody writes them meanwhile.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
        }

        /// The first byte's address.
        ///
        /// # Safety
        /// Reading or writing through it is subject to the contract of
        /// [`as_slice`](Self::as_slice) for every access that makes a
        /// reference; volatile and copying accesses within `len` bytes are
        /// sound while the view lives.
        pub unsafe fn as_ptr(&self) -> *const u8 {
            self.ptr.as_ptr()
        }
    };
}

impl<'a> View<'a> {
    /// A view of `len` bytes at `ptr`.
    ///
    /// # Safety
    /// `ptr` must be valid for reads of `len` bytes for `'a` (it may be
    /// written by others meanwhile: that is the point).
    pub unsafe fn new(ptr: NonNull<u8>, len: usize) -> View<'a> {
        View {
            ptr,
            len,
            _borrow: PhantomData,
        }
    }

    read_methods!();

    /// The `len` bytes at `offset`, as a view of their own.
    ///
    /// # Errors
    /// [`OutOfBounds`] if they are not all inside this view.
    pub fn sub(&self, offset: usize, len: usize) -> Result<View<'a>, OutOfBounds> {
        check(offset, len, self.len)?;
        // SAFETY: in bounds (checked) of memory valid for 'a.
        Ok(unsafe { View::new(NonNull::new_unchecked(self.ptr.as_ptr().add(offset)), len) })
    }
}

impl<'a> ViewMut<'a> {
    /// A writable view of `len` bytes at `ptr`.
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` bytes for `'a` (it
    /// may be read and written by others meanwhile: that is the point).
    pub unsafe fn new(ptr: NonNull<u8>, len: usize) -> ViewMut<'a> {
        ViewMut {
            ptr,
            len,
            _borrow: PhantomData,
        }
    }

    read_methods!();

    /// This view, read-only.
    pub fn as_view(&self) -> View<'_> {
        View {
            ptr: self.ptr,
            len: self.len,
            _borrow: PhantomData,
        }
    }

    /// Copies `src` to the start of the view.
    ///
    /// # Errors
    /// [`OutOfBounds`] if `src` is longer than the view.
    pub fn copy_from_slice(&mut self, src: &[u8]) -> Result<(), OutOfBounds> {
        self.write_at(0, src)
    }

    /// Copies `src` to `offset`.
    ///
    /// # Errors
    /// [`OutOfBounds`] if the bytes would not all be inside the view.
    pub fn write_at(&mut self, offset: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        check(offset, src.len(), self.len)?;
        // SAFETY: in bounds (checked) of memory valid for writes for the
        // view's lifetime; `src` is private memory, so no overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(offset), src.len()) };
        Ok(())
    }

    /// Sets every byte to `byte`.
    pub fn fill(&mut self, byte: u8) {
        // SAFETY: valid for writes of `len` bytes (contract of `new`).
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr(), byte, self.len) };
    }

    /// Writes one byte with a volatile store.
    ///
    /// # Errors
    /// [`OutOfBounds`] past the view's end.
    pub fn store_u8(&mut self, offset: usize, value: u8) -> Result<(), OutOfBounds> {
        check(offset, 1, self.len)?;
        // SAFETY: in bounds (checked); one volatile store.
        unsafe { self.ptr.as_ptr().add(offset).write_volatile(value) };
        Ok(())
    }

    /// Writes a native-endian `u32` at `offset` (any alignment).
    ///
    /// # Errors
    /// [`OutOfBounds`] if its four bytes are not inside the view.
    pub fn store_u32(&mut self, offset: usize, value: u32) -> Result<(), OutOfBounds> {
        self.store_array(offset, value.to_ne_bytes())
    }

    /// Writes a native-endian `u64` at `offset` (any alignment).
    ///
    /// # Errors
    /// [`OutOfBounds`] if its eight bytes are not inside the view.
    pub fn store_u64(&mut self, offset: usize, value: u64) -> Result<(), OutOfBounds> {
        self.store_array(offset, value.to_ne_bytes())
    }

    fn store_array<const N: usize>(&mut self, offset: usize, bytes: [u8; N]) -> Result<(), OutOfBounds> {
        check(offset, N, self.len)?;
        // SAFETY: in bounds (checked); an unaligned volatile store of an
        // array of bytes.
        unsafe { self.ptr.as_ptr().add(offset).cast::<[u8; N]>().write_volatile(bytes) };
        Ok(())
    }

    /// Reads from `fd` into the view with one `read(2)`, straight into the
    /// shared memory; returns how many bytes came.
    ///
    /// If the object shrank under the view, the kernel answers `EFAULT`
    /// ("Bad address"): ask the view's owner (e.g.
    /// [`Sender::check_intact`](crate::channel::Sender::check_intact)).
    ///
    /// # Errors
    /// The error of `read(2)`.
    pub fn read_from_fd(&mut self, fd: impl AsFd) -> io::Result<usize> {
        // SAFETY: the slice goes straight to the kernel, which copies into
        // the memory whatever a peer does meanwhile; no Rust code reads
        // through it, and it does not outlive this call.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) };
        Ok(rustix::io::read(fd, bytes)?)
    }

    /// The bytes as a mutable slice.
    ///
    /// # Safety
    /// For as long as the slice lives, no other process or thread may read
    /// or write these bytes, and the object may not shrink.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: valid for `len` bytes; the caller promises exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

impl fmt::Debug for ViewMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewMut")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_integers_and_bounds() {
        let mut mem = [0u64; 4];
        let ptr = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `mem` outlives the views, 32 bytes.
        let mut w = unsafe { ViewMut::new(ptr, 32) };
        w.write_at(3, b"abc").unwrap();
        w.store_u64(8, 0x0102_0304_0506_0708).unwrap();
        w.store_u32(17, 7).unwrap(); // unaligned
        assert_eq!(w.load_u64(8).unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(w.load_u32(17).unwrap(), 7);
        assert_eq!(w.load_u8(4).unwrap(), b'b');
        assert_eq!(
            w.write_at(30, b"abc"),
            Err(OutOfBounds {
                offset: 30,
                len: 3,
                size: 32
            })
        );
        assert!(w.load_u64(25).is_err());
        assert!(w.read_at(usize::MAX, &mut [0; 2]).is_err());
        let r = w.as_view();
        let mut out = [0u8; 3];
        r.read_at(3, &mut out).unwrap();
        assert_eq!(&out, b"abc");
        assert_eq!(r.to_vec().len(), 32);
        w.fill(9);
        assert_eq!(w.load_u8(31).unwrap(), 9);
    }
}
