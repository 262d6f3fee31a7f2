//! `shmkit.PosixShm`, `shmkit.SysvShm`, `shmkit.remove`, `shmkit.ftok`.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use shmkit::map::Mapping;
use shmkit::posix::{self, PosixShm, ShmName};
use shmkit::sysv::{self, Key, SysvShm};

use crate::buffer::{self, RegionSpec};
use crate::errors::IntoPy;

/// A `memoryview` of `mapping`, counted in `exports`.
pub(crate) fn view_of(py: Python<'_>, mapping: Mapping, exports: &Arc<AtomicUsize>) -> PyResult<Py<PyAny>> {
    let ptr = NonNull::new(mapping.as_mut_ptr()).unwrap_or(NonNull::dangling());
    let spec = RegionSpec {
        ptr,
        len: mapping.len(),
        readonly: !mapping.is_writable(),
        keep: Box::new(mapping),
        keep_py: None,
        valid: Arc::new(AtomicBool::new(true)),
        exports: exports.clone(),
    };
    Ok(buffer::memoryview(py, spec)?.unbind())
}

fn busy(name: &str, exports: &AtomicUsize) -> PyErr {
    PyBufferError::new_err(format!(
        "{name}: cannot close: {} view(s) of its memory are still in use; delete them or call their release() first",
        exports.load(Ordering::Acquire)
    ))
}

/// A POSIX shared-memory object (`shm_open`), as `shmkit::posix::PosixShm`.
#[pyclass(module = "shmkit", name = "PosixShm")]
pub(crate) struct PyPosixShm {
    shm: Option<PosixShm>,
    name: String,
    created: bool,
    exports: Arc<AtomicUsize>,
}

impl PyPosixShm {
    fn new(shm: PosixShm, created: bool) -> PyPosixShm {
        PyPosixShm {
            name: shm.name().as_str().to_owned(),
            shm: Some(shm),
            created,
            exports: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn get(&self) -> PyResult<&PosixShm> {
        self.shm
            .as_ref()
            .ok_or_else(|| PyValueError::new_err(format!("{}: the segment is closed", self.name)))
    }
}

fn shm_name(py: Python<'_>, name: &str) -> PyResult<ShmName> {
    ShmName::new(name).py_err(py)
}

#[pymethods]
impl PyPosixShm {
    /// Creates the object `name` of `size` bytes (it must not exist), with
    /// permission bits `mode` whatever the umask.
    #[staticmethod]
    #[pyo3(signature = (name, size, mode = 0o600))]
    fn create(py: Python<'_>, name: &str, size: u64, mode: u32) -> PyResult<PyPosixShm> {
        let name = shm_name(py, name)?;
        let opts = posix::Options::new().size(size).mode(mode);
        let shm = py.detach(|| PosixShm::create(&name, &opts)).py_err(py)?;
        Ok(PyPosixShm::new(shm, true))
    }

    /// Opens the existing object `name`.
    #[staticmethod]
    #[pyo3(signature = (name, read_only = false))]
    fn open(py: Python<'_>, name: &str, read_only: bool) -> PyResult<PyPosixShm> {
        let name = shm_name(py, name)?;
        let opts = posix::Options::new().read_only(read_only);
        let shm = PosixShm::open(&name, &opts).py_err(py)?;
        Ok(PyPosixShm::new(shm, false))
    }

    /// Opens `name`, or creates it with `size` bytes if it does not exist,
    /// without a race; `created` says which happened.
    #[staticmethod]
    #[pyo3(signature = (name, size, mode = 0o600))]
    fn open_or_create(py: Python<'_>, name: &str, size: u64, mode: u32) -> PyResult<PyPosixShm> {
        let name = shm_name(py, name)?;
        let opts = posix::Options::new().size(size).mode(mode);
        let (shm, created) = py.detach(|| PosixShm::open_or_create(&name, &opts)).py_err(py)?;
        Ok(PyPosixShm::new(shm, created))
    }

    /// The object's name, `/name`.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Whether this handle created the object.
    #[getter]
    fn created(&self) -> bool {
        self.created
    }

    /// The object's size in bytes now.
    #[getter]
    fn size(&self, py: Python<'_>) -> PyResult<u64> {
        self.get()?.size().py_err(py)
    }

    /// Whether `close()` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.shm.is_none()
    }

    /// A `memoryview` of the whole object (read-only if opened so). The
    /// mapping lives as long as the view or anything made from it.
    fn map(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mapping = self.get()?.map().py_err(py)?;
        view_of(py, mapping, &self.exports)
    }

    /// Removes the object's name (`shm_unlink`); this handle and mappings stay valid.
    fn unlink(&self, py: Python<'_>) -> PyResult<()> {
        self.get()?.unlink().py_err(py)
    }

    /// Closes the descriptor. Raises `BufferError` while views of the
    /// memory are alive. Closing twice does nothing.
    fn close(&mut self) -> PyResult<()> {
        if self.exports.load(Ordering::Acquire) > 0 {
            return Err(busy(&self.name, &self.exports));
        }
        self.shm = None;
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&mut self, _t: Py<PyAny>, _v: Py<PyAny>, _tb: Py<PyAny>) -> PyResult<bool> {
        self.close()?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "shmkit.PosixShm({:?}{})",
            self.name,
            if self.shm.is_none() { ", closed" } else { "" }
        )
    }
}

/// `shm_unlink(name)`: removes the object's name; its memory goes when the
/// last process unmaps and closes it.
#[pyfunction]
pub(crate) fn remove(py: Python<'_>, name: &str) -> PyResult<()> {
    let name = shm_name(py, name)?;
    posix::remove(&name).py_err(py)
}

/// `ftok(path, id)`: the System V key C programs derive from a file and a
/// project id (1 to 255).
#[pyfunction]
pub(crate) fn ftok(py: Python<'_>, path: std::path::PathBuf, id: u8) -> PyResult<i32> {
    Key::ftok(path, id).map(Key::raw).py_err(py)
}

/// A System V segment (`shmget`), as `shmkit::sysv::SysvShm`.
#[pyclass(module = "shmkit", name = "SysvShm")]
pub(crate) struct PySysvShm {
    shm: SysvShm,
    read_only: bool,
    exports: Arc<AtomicUsize>,
}

impl PySysvShm {
    fn new(shm: SysvShm, read_only: bool) -> PySysvShm {
        PySysvShm {
            shm,
            read_only,
            exports: Arc::new(AtomicUsize::new(0)),
        }
    }
}

#[pymethods]
impl PySysvShm {
    /// Creates a segment for `key` (it must not exist).
    #[staticmethod]
    #[pyo3(signature = (key, size, mode = 0o600))]
    fn create(py: Python<'_>, key: i32, size: u64, mode: u32) -> PyResult<PySysvShm> {
        let opts = sysv::Options::new().size(size).mode(mode);
        Ok(PySysvShm::new(SysvShm::create(Key::new(key), &opts).py_err(py)?, false))
    }

    /// Opens the existing segment of `key`.
    #[staticmethod]
    #[pyo3(signature = (key, read_only = false))]
    fn open(py: Python<'_>, key: i32, read_only: bool) -> PyResult<PySysvShm> {
        let opts = sysv::Options::new().read_only(read_only);
        Ok(PySysvShm::new(
            SysvShm::open(Key::new(key), &opts).py_err(py)?,
            read_only,
        ))
    }

    /// The existing segment with this id (as `ipcs -m` shows it).
    #[staticmethod]
    fn from_id(py: Python<'_>, id: i32) -> PyResult<PySysvShm> {
        Ok(PySysvShm::new(SysvShm::from_id(id).py_err(py)?, false))
    }

    /// A new `IPC_PRIVATE` segment, found only by its id.
    #[staticmethod]
    #[pyo3(signature = (size, mode = 0o600))]
    fn private(py: Python<'_>, size: u64, mode: u32) -> PyResult<PySysvShm> {
        let opts = sysv::Options::new().size(size).mode(mode);
        Ok(PySysvShm::new(SysvShm::create(Key::PRIVATE, &opts).py_err(py)?, false))
    }

    /// The segment id.
    #[getter]
    fn id(&self) -> i32 {
        self.shm.id()
    }

    /// The key it was created or opened with.
    #[getter]
    fn key(&self) -> i32 {
        self.shm.key().raw()
    }

    /// Its size in bytes.
    #[getter]
    fn size(&self, py: Python<'_>) -> PyResult<u64> {
        self.shm.size().py_err(py)
    }

    /// `shmat`: a `memoryview` of the segment; detached when the view and
    /// everything made from it are gone.
    #[pyo3(signature = (read_only = false))]
    fn attach(&self, py: Python<'_>, read_only: bool) -> PyResult<Py<PyAny>> {
        let mapping = if read_only || self.read_only {
            self.shm.attach_read_only()
        } else {
            self.shm.attach()
        }
        .py_err(py)?;
        view_of(py, mapping, &self.exports)
    }

    /// `shmctl(IPC_STAT)`.
    fn stat(&self, py: Python<'_>) -> PyResult<SysvStat> {
        let s = self.shm.stat().py_err(py)?;
        let secs = |t: Option<SystemTime>| {
            t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64())
        };
        Ok(SysvStat {
            key: s.key.raw(),
            id: s.id,
            size: s.size,
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            cuid: s.cuid,
            cgid: s.cgid,
            cpid: s.cpid,
            lpid: s.lpid,
            nattch: s.nattch,
            atime: secs(s.atime),
            dtime: secs(s.dtime),
            ctime: secs(s.ctime),
            marked_for_removal: s.marked_for_removal,
            locked: s.locked,
        })
    }

    /// `shmctl(IPC_RMID)`: the segment goes when the last attachment does.
    fn remove(&self, py: Python<'_>) -> PyResult<()> {
        self.shm.remove().py_err(py)
    }

    fn __repr__(&self) -> String {
        format!("shmkit.SysvShm(id={}, key={})", self.shm.id(), self.shm.key())
    }
}

/// What `shmctl(IPC_STAT)` says of a segment; times are seconds since the
/// epoch, `None` for never.
#[pyclass(module = "shmkit", name = "SysvStat", get_all, frozen)]
pub(crate) struct SysvStat {
    key: i32,
    id: i32,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    cuid: u32,
    cgid: u32,
    cpid: i32,
    lpid: i32,
    nattch: u64,
    atime: Option<f64>,
    dtime: Option<f64>,
    ctime: Option<f64>,
    marked_for_removal: bool,
    locked: bool,
}

#[pymethods]
impl SysvStat {
    fn __repr__(&self) -> String {
        format!(
            "shmkit.SysvStat(id={}, key=0x{:08x}, size={}, nattch={}, mode=0o{:o}, cpid={}, lpid={})",
            self.id, self.key as u32, self.size, self.nattch, self.mode, self.cpid, self.lpid
        )
    }
}
