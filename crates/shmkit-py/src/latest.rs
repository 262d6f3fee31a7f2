//! `shmkit.LatestValue`: a latest value ("blackboard"), as its writer or as
//! one of its readers.
//!
//! Writes never wait. Reads copy the newest complete value out (a torn one
//! is never returned: the Rust reader checks the copy). `wait_newer` sleeps
//! without the GIL in slices of at most `wait::SLICE`, checking for signals
//! between them. A reader has `fileno()` and `try_read_newer` for event
//! loops (see `poll`); the writer never waits, so it has no descriptor.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmkit::latest::{Options, Reader, Writer};
use shmkit::posix::ShmName;

use crate::buffer::Borrowed;
use crate::errors::IntoPy;
use crate::poll::fileno;
use crate::wait::{closed_err, connect, deadline_of, in_slices, lock};

enum Side {
    Writer(Writer),
    Reader(Reader),
}

/// A latest value: its writer (`LatestValue.writer`) or a reader
/// (`LatestValue.reader`).
#[pyclass(module = "shmkit", name = "LatestValue", frozen)]
pub(crate) struct PyLatestValue {
    name: String,
    max_size: u64,
    side: Mutex<Option<Side>>,
}

fn shm_name(py: Python<'_>, name: &str) -> PyResult<ShmName> {
    ShmName::new(name).py_err(py)
}

impl PyLatestValue {
    fn with_reader<T>(&self, py: Python<'_>, f: impl FnOnce(&mut Reader) -> PyResult<T>) -> PyResult<T> {
        let mut g = lock(py, &self.side)?;
        match g.as_mut() {
            Some(Side::Reader(r)) => f(r),
            Some(Side::Writer(_)) => Err(PyValueError::new_err(format!(
                "{}: this is the writer; open a LatestValue.reader to read",
                self.name
            ))),
            None => Err(closed_err(&self.name)),
        }
    }
}

#[pymethods]
impl PyLatestValue {
    /// Opens the latest value `name` as its one writer, creating it (holding
    /// values of up to `max_size` bytes, default 4096) if it does not exist.
    /// With `keep`, the object stays after the last participant has left,
    /// until it is removed (`shmkit.remove`, `shmkit rm`). Raises `Busy` if
    /// another writer takes part.
    #[staticmethod]
    #[pyo3(signature = (name, max_size = None, keep = false, mode = 0o600))]
    fn writer(py: Python<'_>, name: &str, max_size: Option<u64>, keep: bool, mode: u32) -> PyResult<PyLatestValue> {
        let shm_name = shm_name(py, name)?;
        let mut opts = Options::new().keep(keep).mode(mode);
        if let Some(m) = max_size {
            opts = opts.max_size(m);
        }
        let w = connect(py, move |flag| Writer::open_or_create(&shm_name, &opts.interrupt(flag)))?;
        Ok(PyLatestValue {
            name: name.to_owned(),
            max_size: w.max_size(),
            side: Mutex::new(Some(Side::Writer(w))),
        })
    }

    /// Opens the latest value `name` as a reader; waits at most `timeout`
    /// seconds for its writer to create it (`None`: raise `NotFound` at once
    /// if it does not exist).
    #[staticmethod]
    #[pyo3(signature = (name, timeout = None))]
    fn reader(py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<PyLatestValue> {
        let shm_name = shm_name(py, name)?;
        let mut opts = Options::new();
        if let Some(t) = timeout {
            deadline_of(Some(t))?;
            opts = opts.timeout(Duration::from_secs_f64(t.min(1e9)));
        }
        let r = connect(py, move |flag| Reader::open(&shm_name, &opts.interrupt(flag)))?;
        Ok(PyLatestValue {
            name: name.to_owned(),
            max_size: r.max_size(),
            side: Mutex::new(Some(Side::Reader(r))),
        })
    }

    /// The object's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The longest value it holds, in bytes.
    #[getter]
    fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Whether this is the writer.
    #[getter]
    fn is_writer(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(matches!(lock(py, &self.side)?.as_ref(), Some(Side::Writer(_))))
    }

    /// The newest version published: the number of values written, 0
    /// before the first.
    #[getter]
    fn version(&self, py: Python<'_>) -> PyResult<u64> {
        let mut g = lock(py, &self.side)?;
        match g.as_mut() {
            Some(Side::Writer(w)) => Ok(w.version()),
            Some(Side::Reader(r)) => r.version().py_err(py),
            None => Err(closed_err(&self.name)),
        }
    }

    /// Writes `data` (any bytes-like object) as the new value and returns
    /// its version. Never waits. Raises `ValueError` on a reader, and
    /// `Error` (too large) for more than `max_size` bytes.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<u64> {
        let data = Borrowed::new(data, false)?;
        let mut g = lock(py, &self.side)?;
        match g.as_mut() {
            Some(Side::Writer(w)) => {
                let bytes = data.as_slice();
                py.detach(|| w.write(bytes)).py_err(py)
            }
            Some(Side::Reader(_)) => Err(PyValueError::new_err(format!(
                "{}: this is a reader; open LatestValue.writer to write",
                self.name
            ))),
            None => Err(closed_err(&self.name)),
        }
    }

    /// The newest value as `bytes`, or `None` if none was ever written.
    fn read(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        Ok(self.read_versioned(py)?.map(|(_, b)| b))
    }

    /// The newest value and its version, `(version, bytes)`, or `None` if
    /// none was ever written.
    fn read_versioned(&self, py: Python<'_>) -> PyResult<Option<(u64, Py<PyBytes>)>> {
        let got = self.with_reader(py, |r| py.detach(|| r.read()).py_err(py))?;
        Ok(got.map(|v| (v.version(), PyBytes::new(py, v.as_bytes()).unbind())))
    }

    /// Copies the newest value into `buffer` (any writable bytes-like
    /// object) and returns `(version, length)`, or `None` if none was ever
    /// written. A value longer than the buffer raises `ValueError`.
    fn read_into(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>) -> PyResult<Option<(u64, usize)>> {
        let mut out = Borrowed::new(buffer, true)?;
        let room = out.len();
        let dst = out.as_mut_slice();
        let got = self.with_reader(py, |r| {
            py.detach(|| {
                r.read_with(|view| {
                    let n = view.len();
                    if n <= room {
                        let _ = view.read_at(0, &mut dst[..n]);
                    }
                    n
                })
            })
            .py_err(py)
        })?;
        match got {
            Some((_, n)) if n > room => Err(PyValueError::new_err(format!(
                "{}: a value of {n} bytes does not fit into a buffer of {room} bytes",
                self.name
            ))),
            Some((version, n)) => Ok(Some((version, n))),
            None => Ok(None),
        }
    }

    /// Waits for a value newer than `version` (0: the first ever), at most
    /// `timeout` seconds (`None`: for ever), and returns `(version, bytes)`
    /// of the newest then. Raises `Timeout` at the deadline. Sleeps without
    /// the GIL; Ctrl-C raises `KeyboardInterrupt` within 50 ms.
    #[pyo3(signature = (version = 0, timeout = None))]
    fn wait_newer(&self, py: Python<'_>, version: u64, timeout: Option<f64>) -> PyResult<(u64, Py<PyBytes>)> {
        let deadline = deadline_of(timeout)?;
        let v = self.with_reader(py, |r| {
            in_slices(py, &self.name, "a newer value", deadline, |slice| {
                match r.wait_newer(version, slice) {
                    Ok(v) => Ok(Some(v)),
                    Err(shmkit::Error::TimedOut { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
        })?;
        Ok((v.version(), PyBytes::new(py, v.as_bytes()).unbind()))
    }

    /// The newest value as `(version, bytes)` if one newer than this
    /// reader last read (by any read) was written, else `None` (which arms
    /// the descriptor). Never waits. Raises `ValueError` on the writer.
    fn try_read_newer(&self, py: Python<'_>) -> PyResult<Option<(u64, Py<PyBytes>)>> {
        let got = self.with_reader(py, |r| py.detach(|| r.try_read_newer()).py_err(py))?;
        Ok(got.map(|v| (v.version(), PyBytes::new(py, v.as_bytes()).unbind())))
    }

    /// A reader's descriptor, for `selectors` or asyncio's
    /// `loop.add_reader`: readable when a value newer than the one this
    /// reader last read may have been written, or the writer left or died
    /// (it watches the writer's life) — call `try_read_newer`
    /// until it returns `None`, which arms it again. Taking it makes the
    /// reader a poller (a bell beside the object in `/dev/shm`, removed
    /// when it closes); it is readable once at first. Take it off the event
    /// loop before `close()`. The writer never waits: on it this raises
    /// `io.UnsupportedOperation`.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        let g = lock(py, &self.side)?;
        match g.as_ref() {
            Some(Side::Reader(r)) => fileno(Some(r), &self.name),
            Some(Side::Writer(_)) => Err(PyErr::from_value(
                py.import("io")?.getattr("UnsupportedOperation")?.call1((format!(
                    "{}: the writer never waits, so it has no descriptor; a LatestValue.reader has one",
                    self.name
                ),))?,
            )),
            None => Err(closed_err(&self.name)),
        }
    }

    /// Leaves: a value that is not kept is removed with its last
    /// participant. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let side = lock(py, &self.side)?.take();
        py.detach(|| drop(side));
        Ok(())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(lock(py, &self.side)?.is_none())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, py: Python<'_>, _t: Py<PyAny>, _v: Py<PyAny>, _tb: Py<PyAny>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let role = match lock(py, &self.side).ok().as_deref() {
            Some(Some(Side::Writer(_))) => "writer",
            Some(Some(Side::Reader(_))) => "reader",
            _ => "closed",
        };
        format!("<shmkit.LatestValue {} {role}, max_size={}>", self.name, self.max_size)
    }
}
