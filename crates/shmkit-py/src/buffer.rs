//! The buffer protocol, both ways: `Region`, a Python object that lends
//! shared memory to `memoryview` with a lifetime it tracks, and `Borrowed`,
//! a bytes-like object's memory borrowed for one call.
//!
//! PyO3 offers neither for an abi3 build below Python 3.11 (`Py_buffer`
//! entered the limited API in 3.11), so this module declares the three
//! functions and the struct itself. They are CPython's stable buffer API,
//! unchanged since 3.3, which 3.11 only promised to keep; the type slots
//! `Py_bf_getbuffer`/`Py_bf_releasebuffer` are accepted by `PyType_FromSpec`
//! since 3.9 (bpo-40724). This is the only module with `unsafe` code.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// CPython's `Py_buffer` (stable ABI since 3.11, the same layout since 3.3).
#[repr(C)]
#[allow(non_camel_case_types)]
struct Py_buffer {
    buf: *mut c_void,
    obj: *mut ffi::PyObject,
    len: ffi::Py_ssize_t,
    itemsize: ffi::Py_ssize_t,
    readonly: c_int,
    ndim: c_int,
    format: *mut c_char,
    shape: *mut ffi::Py_ssize_t,
    strides: *mut ffi::Py_ssize_t,
    suboffsets: *mut ffi::Py_ssize_t,
    internal: *mut c_void,
}

const PYBUF_SIMPLE: c_int = 0;
const PYBUF_WRITABLE: c_int = 0x0001;
/// `typeslots.h`: the buffer slots' numbers.
const PY_BF_GETBUFFER: c_int = 1;
const PY_BF_RELEASEBUFFER: c_int = 2;

extern "C" {
    fn PyObject_GetBuffer(obj: *mut ffi::PyObject, view: *mut Py_buffer, flags: c_int) -> c_int;
    fn PyBuffer_Release(view: *mut Py_buffer);
    fn PyBuffer_FillInfo(
        view: *mut Py_buffer,
        obj: *mut ffi::PyObject,
        buf: *mut c_void,
        len: ffi::Py_ssize_t,
        readonly: c_int,
        flags: c_int,
    ) -> c_int;
}

/// What a `Region` needs to know and keep alive.
pub(crate) struct RegionSpec {
    /// The first byte lent out; valid for `len` bytes while `keep` lives.
    pub ptr: NonNull<u8>,
    pub len: usize,
    pub readonly: bool,
    /// Owns the memory (a `Mapping`): held only to be dropped with the
    /// region, after the last buffer lent out is released.
    #[allow(dead_code)]
    pub keep: Box<dyn Send + Sync>,
    /// A Python object to keep alive as long (the endpoint holding a
    /// message), if any.
    #[allow(dead_code)]
    pub keep_py: Option<Py<PyAny>>,
    /// Cleared when the memory must no longer be lent (a message's block
    /// ended): new requests then fail with `BufferError`.
    pub valid: Arc<AtomicBool>,
    /// How many buffers are lent out now; the owner refuses to close while
    /// it is not zero.
    pub exports: Arc<AtomicUsize>,
}

/// The object behind a `Region`.
#[repr(C)]
struct RawRegion {
    ob_base: ffi::PyObject,
    spec: *mut RegionSpec,
}

/// The `_Region` type, made once by [`init`].
static REGION_TYPE: OnceLock<Py<PyType>> = OnceLock::new();

/// Makes the `_Region` type and adds it to the module.
pub(crate) fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let mut slots = [
        ffi::PyType_Slot {
            slot: PY_BF_GETBUFFER,
            pfunc: region_getbuffer as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: PY_BF_RELEASEBUFFER,
            pfunc: region_releasebuffer as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_dealloc,
            pfunc: region_dealloc as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: c"Shared memory lent to memoryview (internal).".as_ptr() as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: ptr::null_mut(),
        },
    ];
    let mut spec = ffi::PyType_Spec {
        name: c"shmkit._shmkit._Region".as_ptr(),
        basicsize: std::mem::size_of::<RawRegion>() as c_int,
        itemsize: 0,
        flags: ffi::Py_TPFLAGS_DEFAULT as _,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: `spec` and `slots` are complete and outlive the call, which
    // copies what it keeps (the name and doc are 'static); the functions
    // have the signatures their slots expect.
    let ty = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&mut spec))? };
    let ty = ty.cast_into::<PyType>()?;
    m.add("_Region", &ty)?;
    let _ = REGION_TYPE.set(ty.unbind());
    Ok(())
}

/// A new `memoryview` of the region described by `spec`: read-only if the
/// spec says so, and lent out through a `_Region` that keeps the memory
/// alive as long as any view of it, derived ones (slices, NumPy arrays)
/// included.
pub(crate) fn memoryview(py: Python<'_>, spec: RegionSpec) -> PyResult<Bound<'_, PyAny>> {
    let ty = REGION_TYPE
        .get()
        .ok_or_else(|| PyTypeError::new_err("shmkit._shmkit is not initialised"))?
        .bind(py);
    let spec = Box::into_raw(Box::new(spec));
    // SAFETY: the type is a heap type with the default allocator; the new
    // object is ours until handed out, and its `spec` field is set before
    // anything (dealloc included) can read it. On failure the box is freed
    // here, on success the object owns it.
    unsafe {
        let obj = ffi::PyType_GenericAlloc(ty.as_ptr().cast(), 0);
        if obj.is_null() {
            drop(Box::from_raw(spec));
            return Err(PyErr::fetch(py));
        }
        (*obj.cast::<RawRegion>()).spec = spec;
        let region = Bound::from_owned_ptr(py, obj);
        Bound::from_owned_ptr_or_err(py, ffi::PyMemoryView_FromObject(region.as_ptr()))
    }
}

unsafe extern "C" fn region_getbuffer(obj: *mut ffi::PyObject, view: *mut Py_buffer, flags: c_int) -> c_int {
    // SAFETY: CPython calls this with a live `_Region` (whose `spec` was set
    // at allocation) and the GIL held; `PyBuffer_FillInfo` takes a new
    // reference to `obj`, which keeps `spec` and the memory alive until the
    // matching release.
    unsafe {
        let spec = &*(*obj.cast::<RawRegion>()).spec;
        if !spec.valid.load(Ordering::Acquire) {
            let msg: &CStr =
                c"this view of a message was used after its `with` block: copy what you need inside the block";
            ffi::PyErr_SetString(ffi::PyExc_BufferError, msg.as_ptr());
            return -1;
        }
        let rc = PyBuffer_FillInfo(
            view,
            obj,
            spec.ptr.as_ptr().cast(),
            spec.len as ffi::Py_ssize_t,
            c_int::from(spec.readonly),
            flags,
        );
        if rc == 0 {
            spec.exports.fetch_add(1, Ordering::AcqRel);
        }
        rc
    }
}

unsafe extern "C" fn region_releasebuffer(obj: *mut ffi::PyObject, _view: *mut Py_buffer) {
    // SAFETY: as in `region_getbuffer`: a live `_Region`.
    let spec = unsafe { &*(*obj.cast::<RawRegion>()).spec };
    spec.exports.fetch_sub(1, Ordering::AcqRel);
}

unsafe extern "C" fn region_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: CPython calls this once, with the GIL held, when the last
    // reference is gone (so no buffer is lent out: each holds a reference);
    // the spec box is ours to free, and the object is freed with its type's
    // allocator, after which the heap type's reference is dropped.
    unsafe {
        let tp = ffi::Py_TYPE(obj);
        let spec = (*obj.cast::<RawRegion>()).spec;
        if !spec.is_null() {
            drop(Box::from_raw(spec));
        }
        let free = ffi::PyType_GetSlot(tp, ffi::Py_tp_free);
        if !free.is_null() {
            let free: ffi::freefunc = std::mem::transmute(free);
            free(obj.cast());
        }
        ffi::Py_DECREF(tp.cast());
    }
}

/// A bytes-like object's memory, borrowed for one call (`PyObject_GetBuffer`
/// with `PyBUF_SIMPLE`: contiguous bytes).
pub(crate) struct Borrowed {
    view: Box<Py_buffer>,
}

// SAFETY: the buffer is only read or written through `as_slice`/`as_mut_slice`
// while its owner keeps the exporter alive; moving the handle to a thread
// that runs without the GIL (`Python::detach`) changes nothing of that, and
// it is released with the GIL held (`Drop`).
unsafe impl Send for Borrowed {}

impl Borrowed {
    /// Borrows `obj`'s bytes, writable ones if `writable`.
    pub(crate) fn new(obj: &Bound<'_, PyAny>, writable: bool) -> PyResult<Borrowed> {
        let mut view = Box::new(Py_buffer {
            buf: ptr::null_mut(),
            obj: ptr::null_mut(),
            len: 0,
            itemsize: 0,
            readonly: 0,
            ndim: 0,
            format: ptr::null_mut(),
            shape: ptr::null_mut(),
            strides: ptr::null_mut(),
            suboffsets: ptr::null_mut(),
            internal: ptr::null_mut(),
        });
        let flags = if writable { PYBUF_WRITABLE } else { PYBUF_SIMPLE };
        // SAFETY: `view` is a valid, boxed `Py_buffer` (its address stays put
        // until released); the GIL is held.
        let rc = unsafe { PyObject_GetBuffer(obj.as_ptr(), &mut *view, flags) };
        if rc != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        let borrowed = Borrowed { view };
        if borrowed.view.len < 0 || (borrowed.view.buf.is_null() && borrowed.view.len > 0) {
            return Err(PyBufferError::new_err("the object lent an invalid buffer"));
        }
        Ok(borrowed)
    }

    pub(crate) fn len(&self) -> usize {
        self.view.len as usize
    }

    /// The bytes. As every Python extension that reads a buffer, this trusts
    /// that no other thread resizes or frees the exporter's memory meanwhile
    /// (exporters refuse to while a buffer is lent out).
    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.len() == 0 {
            return &[];
        }
        // SAFETY: the exporter lent `len` contiguous bytes at `buf` until the
        // release in `Drop`.
        unsafe { std::slice::from_raw_parts(self.view.buf.cast::<u8>(), self.len()) }
    }

    /// The bytes, writable (only for a buffer borrowed with `writable`).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.len() == 0 || self.view.readonly != 0 {
            return &mut [];
        }
        // SAFETY: as in `as_slice`; the exporter lent them writable
        // (`PyBUF_WRITABLE` succeeded), and `&mut self` excludes other uses.
        unsafe { std::slice::from_raw_parts_mut(self.view.buf.cast::<u8>(), self.len()) }
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        Python::attach(|_| {
            // SAFETY: obtained by a successful `PyObject_GetBuffer`, released
            // once, with the GIL held.
            unsafe { PyBuffer_Release(&mut *self.view) }
        });
    }
}

/// The address of a received message's first byte, to lend out after its
/// guard is forgotten (see `channel.rs`: the frame stays held in the ring,
/// so the sender does not reuse it, until the receiver releases it).
pub(crate) fn message_ptr(view: &shmkit::map::View<'_>) -> NonNull<u8> {
    // SAFETY: only the address is taken here. It stays valid for `len`
    // bytes while the receiver's mapping lives and the frame is not
    // released, which the `_Region` lending it ensures (it keeps the
    // receiver alive, and the receiver releases the frame only when no
    // buffer is lent out). Python reads it with plain copies, never through
    // a Rust reference; the buffer is read-only.
    NonNull::new(unsafe { view.as_ptr() }.cast_mut()).unwrap_or(NonNull::dangling())
}
