//! The value's bytes: `buffers` buffers of `max` bytes each, back to back,
//! in memory that other processes write at any time.
//!
//! Nothing here makes a Rust reference to the bytes: values are copied
//! through [`View`]s and [`ViewMut`]s (raw, bounds-checked copies). Under
//! loom the bytes are 8-byte atomic words instead, so that the model checker
//! sees every access.

#[cfg(not(loom))]
pub(crate) use real::Area;

#[cfg(loom)]
pub(crate) use model::Area;

#[cfg(not(loom))]
mod real {
    use std::marker::PhantomData;
    use std::ptr::NonNull;

    use crate::map::{View, ViewMut};

    /// `buffers * max` bytes at `ptr`, shared with other processes, valid
    /// for `'a` (the mapping's borrow).
    #[derive(Debug)]
    pub(crate) struct Area<'a> {
        ptr: NonNull<u8>,
        buffers: usize,
        max: usize,
        _mapping: PhantomData<&'a [u8]>,
    }

    // SAFETY: the bytes are shared memory, accessed only by copies within
    // bounds (see the module docs); moving or sharing the pointer between
    // threads adds nothing another process could not do to them.
    unsafe impl Send for Area<'_> {}
    // SAFETY: as for Send.
    unsafe impl Sync for Area<'_> {}

    impl<'a> Area<'a> {
        /// # Safety
        /// `ptr` must be valid for reads and writes of `buffers * max` bytes
        /// (which must not overflow) for `'a`.
        pub(crate) unsafe fn new(ptr: NonNull<u8>, buffers: usize, max: usize) -> Area<'a> {
            debug_assert!(buffers.checked_mul(max).is_some());
            Area {
                ptr,
                buffers,
                max,
                _mapping: PhantomData,
            }
        }

        /// The buffers of a latest value's segment, mapped whole for values
        /// of `max` bytes.
        pub(crate) fn of_segment(seg: &'a crate::core::segment::Segment, max: u64) -> Area<'a> {
            use super::super::layout::{buffers_for, capacity_for, DATA_OFFSET};
            let need = DATA_OFFSET + capacity_for(max);
            assert!(seg.map.len() as u64 >= need, "a shmkit bug: the buffers are not mapped");
            // SAFETY: the mapping holds the header and the capacity after
            // it, at least buffers_for(max) * max bytes (asserted; they fit
            // in usize because the mapping does), and lives as long as
            // `seg`, which the area borrows.
            unsafe {
                Area::new(
                    NonNull::new(seg.map.as_mut_ptr().add(DATA_OFFSET as usize)).expect("mapping is not null"),
                    buffers_for(max),
                    max as usize,
                )
            }
        }

        /// The largest value a buffer holds.
        pub(crate) fn max(&self) -> usize {
            self.max
        }

        /// The number of buffers.
        pub(crate) fn buffers(&self) -> usize {
            self.buffers
        }

        /// The first `len` bytes of buffer `b`.
        fn at(&self, b: usize, len: usize) -> NonNull<u8> {
            assert!(
                b < self.buffers && len <= self.max,
                "latest-value access out of bounds: a shmkit bug"
            );
            // SAFETY: `b * max + len <= buffers * max`: inside the area.
            unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(b * self.max)) }
        }

        /// A view of the first `len` bytes of buffer `b`.
        pub(crate) fn view(&self, b: usize, len: usize) -> View<'a> {
            // SAFETY: in bounds (checked by `at`) of memory valid for 'a
            // (contract of `new`).
            unsafe { View::new(self.at(b, len), len) }
        }

        /// A writable view of the first `len` bytes of buffer `b`.
        pub(crate) fn view_mut(&self, b: usize, len: usize) -> ViewMut<'a> {
            // SAFETY: as in `view`; the memory is valid for writes. A view
            // makes no reference, so two of one buffer would be sound too.
            unsafe { ViewMut::new(self.at(b, len), len) }
        }

        /// Copies `data` to the start of buffer `b`.
        pub(crate) fn write(&self, b: usize, data: &[u8]) {
            self.view_mut(b, data.len())
                .copy_from_slice(data)
                .expect("a view of exactly its length");
        }
    }
}

#[cfg(loom)]
mod model {
    use std::sync::Arc;

    use crate::core::sync::{AtomicU64, Ordering};

    /// Under loom: the bytes as 8-byte atomic words, accessed Relaxed (the
    /// seqlock's fences order them), `max` a multiple of 8.
    #[derive(Debug)]
    pub(crate) struct Area<'a> {
        words: Arc<[AtomicU64]>,
        buffers: usize,
        max: usize,
        _unused: std::marker::PhantomData<&'a ()>,
    }

    impl Area<'static> {
        pub(crate) fn new_loom(buffers: usize, max: usize) -> Area<'static> {
            assert!(max % 8 == 0);
            Area {
                words: (0..buffers * max / 8).map(|_| AtomicU64::new(0)).collect(),
                buffers,
                max,
                _unused: std::marker::PhantomData,
            }
        }
    }

    impl Area<'_> {
        pub(crate) fn max(&self) -> usize {
            self.max
        }

        pub(crate) fn buffers(&self) -> usize {
            self.buffers
        }

        fn word(&self, b: usize, i: usize) -> &AtomicU64 {
            assert!(b < self.buffers && i < self.max);
            &self.words[(b * self.max + i) / 8]
        }

        /// One Relaxed store per word (the last one zero-padded): the model
        /// stays small enough to search, and a mix of two writes still shows
        /// as words of two values.
        pub(crate) fn write(&self, b: usize, data: &[u8]) {
            for (w, chunk) in data.chunks(8).enumerate() {
                let mut bytes = [0u8; 8];
                bytes[..chunk.len()].copy_from_slice(chunk);
                self.word(b, w * 8).store(u64::from_le_bytes(bytes), Ordering::Relaxed);
            }
        }

        pub(crate) fn read(&self, b: usize, out: &mut [u8]) {
            for (w, chunk) in out.chunks_mut(8).enumerate() {
                let bytes = self.word(b, w * 8).load(Ordering::Relaxed).to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
        }
    }
}

/// A latest value's header and bytes in ordinary memory (unit tests,
/// fuzzing): the same layout as in a shared object.
#[cfg(all(any(test, feature = "fuzz"), not(loom)))]
pub(crate) mod heap {
    use std::alloc::{alloc_zeroed, dealloc, Layout};
    use std::ptr::NonNull;

    use super::super::layout::{buffers_for, Header, DATA_OFFSET};
    use super::super::seqlock::Words;
    use super::Area;

    /// A zeroed header page and `buffers` buffers of `max` bytes.
    pub(crate) struct HeapValue {
        ptr: NonNull<u8>,
        layout: Layout,
        max: usize,
        buffers: usize,
    }

    impl HeapValue {
        /// Zeroed memory for a value of at most `max` bytes.
        pub(crate) fn new(max: usize) -> HeapValue {
            Self::with_buffers(max, buffers_for(max as u64))
        }

        /// Zeroed memory for `buffers` buffers (2 to 64) of `max` bytes.
        pub(crate) fn with_buffers(max: usize, buffers: usize) -> HeapValue {
            assert!((2..=super::super::layout::MAX_BUFFERS).contains(&buffers));
            let size = DATA_OFFSET as usize + buffers * max;
            let layout = Layout::from_size_align(size, 4096).unwrap();
            // SAFETY: the layout's size is at least DATA_OFFSET, not zero.
            let ptr = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("out of memory");
            HeapValue {
                ptr,
                layout,
                max,
                buffers,
            }
        }

        /// Every byte, header and buffers, for a "peer" that scribbles.
        pub(crate) fn len(&self) -> usize {
            self.layout.size()
        }

        /// The header.
        pub(crate) fn header(&self) -> &Header {
            // SAFETY: page-aligned, at least DATA_OFFSET >= size_of::<Header>()
            // bytes, alive as long as `self`; a header of atomics takes any bits.
            unsafe { self.ptr.cast::<Header>().as_ref() }
        }

        /// The protocol's shared words, in the header.
        pub(crate) fn words(&self) -> Words<'_> {
            let mut words = self.header().words(self.max as u64);
            words.heads = &self.header().heads.0[..self.buffers];
            words
        }

        /// The buffers.
        pub(crate) fn area(&self) -> Area<'_> {
            // SAFETY: the allocation holds buffers * max bytes after the
            // header, and lives as long as `self`, which the area borrows.
            unsafe {
                Area::new(
                    NonNull::new_unchecked(self.ptr.as_ptr().add(DATA_OFFSET as usize)),
                    self.buffers,
                    self.max,
                )
            }
        }

        /// Writes `byte` at `at` (modulo the length), as a peer could.
        pub(crate) fn scribble(&self, at: usize, byte: u8) {
            let at = at % self.len();
            // SAFETY: in bounds; a volatile byte store makes no reference,
            // and the harness runs in one thread.
            unsafe { self.ptr.as_ptr().add(at).write_volatile(byte) };
        }
    }

    impl Drop for HeapValue {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout, freed once.
            unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
        }
    }
}
