//! `shmkit.ManyToOneSender` and `shmkit.ManyToOneReceiver`: several
//! processes send to one.
//!
//! Waits run without the GIL in slices of at most `wait::SLICE`, with
//! `check_signals` between them (an interrupted receive took nothing, an
//! interrupted send sent nothing). A message too long for `recv_into`'s
//! buffer is kept, not lost: the next receive returns it first.

use std::sync::Mutex;
use std::time::Instant;

use pyo3::exceptions::{PyStopIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmkit::many_to_one::{Options, Receiver, RecvTimeoutError, SendTimeoutError, Sender, SenderId};
use shmkit::posix::ShmName;

use crate::buffer::Borrowed;
use crate::errors::IntoPy;
use crate::wait::{closed_err, connect, deadline_of, in_slices, lock};

fn options(senders: Option<usize>, capacity: Option<u64>, timeout: Option<f64>) -> PyResult<Options> {
    let mut opts = Options::new();
    if let Some(n) = senders {
        opts = opts.senders(n);
    }
    if let Some(c) = capacity {
        opts = opts.capacity(c);
    }
    if let Some(d) = deadline_of(timeout)? {
        opts = opts.timeout(d.saturating_duration_since(Instant::now()));
    }
    Ok(opts)
}

/// `(seat, generation, pid)`: who sent a message.
fn sender_tuple(id: SenderId) -> (usize, u32, u32) {
    (id.seat, id.generation, id.pid)
}

/// One of the sending ends of a many-to-one object.
#[pyclass(module = "shmkit", name = "ManyToOneSender", frozen)]
pub(crate) struct PyManySender {
    name: String,
    tx: Mutex<Option<Sender>>,
}

#[pymethods]
impl PyManySender {
    /// Joins `name` as one of its senders, creating it (with `senders` seats
    /// and rings of `capacity` bytes each) if nobody has; waits for the
    /// receiver at most `timeout` seconds. Raises `Busy` when every seat is
    /// taken.
    #[new]
    #[pyo3(signature = (name, senders = None, capacity = None, timeout = None))]
    fn new(
        py: Python<'_>,
        name: &str,
        senders: Option<usize>,
        capacity: Option<u64>,
        timeout: Option<f64>,
    ) -> PyResult<PyManySender> {
        let shm_name = ShmName::new(name).py_err(py)?;
        let opts = options(senders, capacity, timeout)?;
        let tx = connect(py, move |flag| Sender::connect(&shm_name, &opts.interrupt(flag)))?;
        Ok(PyManySender {
            name: name.to_owned(),
            tx: Mutex::new(Some(tx)),
        })
    }

    /// The object's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// `(seat, generation, pid)`: how the receiver sees this sender.
    #[getter]
    fn id(&self, py: Python<'_>) -> PyResult<(usize, u32, u32)> {
        let g = lock(py, &self.tx)?;
        Ok(sender_tuple(g.as_ref().ok_or_else(|| closed_err(&self.name))?.id()))
    }

    /// The longest message it carries.
    #[getter]
    fn max_message(&self, py: Python<'_>) -> PyResult<usize> {
        let g = lock(py, &self.tx)?;
        Ok(g.as_ref().ok_or_else(|| closed_err(&self.name))?.max_message())
    }

    /// Sends `data` (any bytes-like object), waiting while this sender's
    /// ring is full, at most `timeout` seconds.
    #[pyo3(signature = (data, timeout = None))]
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let deadline = deadline_of(timeout)?;
        let data = Borrowed::new(data, false)?;
        let mut g = lock(py, &self.tx)?;
        let tx = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let bytes = data.as_slice();
        in_slices(py, &self.name, "room in the ring", deadline, |slice| {
            match tx.send_timeout(bytes, slice) {
                Ok(()) => Ok(Some(())),
                Err(SendTimeoutError::Timeout) => Ok(None),
                Err(SendTimeoutError::Disconnected(e) | SendTimeoutError::Failed(e)) => Err(e),
            }
        })
    }

    /// Leaves: the receiver gets what was sent; the seat is free again.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let tx = lock(py, &self.tx)?.take();
        py.detach(|| drop(tx));
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, py: Python<'_>, _t: Py<PyAny>, _v: Py<PyAny>, _tb: Py<PyAny>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("shmkit.ManyToOneSender({:?})", self.name)
    }
}

struct RxState {
    rx: Option<Receiver>,
    /// A message that did not fit `recv_into`'s buffer, returned next.
    kept: Option<(SenderId, Vec<u8>)>,
}

/// The receiving end of a many-to-one object.
#[pyclass(module = "shmkit", name = "ManyToOneReceiver", frozen)]
pub(crate) struct PyManyReceiver {
    name: String,
    state: Mutex<RxState>,
}

impl PyManyReceiver {
    /// The next message (a kept one first), waiting in slices.
    fn next_message(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<(SenderId, Vec<u8>)> {
        let deadline = deadline_of(timeout)?;
        let mut st = lock(py, &self.state)?;
        if let Some(kept) = st.kept.take() {
            return Ok(kept);
        }
        let rx = st.rx.as_mut().ok_or_else(|| closed_err(&self.name))?;
        in_slices(py, &self.name, "a message", deadline, |slice| {
            match rx.recv_timeout(slice) {
                Ok(m) => Ok(Some((m.sender, m.bytes))),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => Err(e),
            }
        })
    }
}

#[pymethods]
impl PyManyReceiver {
    /// Connects to `name` as its one receiver, creating it (with `senders`
    /// seats, default 16, and rings of `capacity` bytes each) if no sender
    /// has. Does not wait for senders.
    #[new]
    #[pyo3(signature = (name, senders = None, capacity = None, timeout = None))]
    fn new(
        py: Python<'_>,
        name: &str,
        senders: Option<usize>,
        capacity: Option<u64>,
        timeout: Option<f64>,
    ) -> PyResult<PyManyReceiver> {
        let shm_name = ShmName::new(name).py_err(py)?;
        let opts = options(senders, capacity, timeout)?;
        let rx = connect(py, move |flag| Receiver::connect(&shm_name, &opts.interrupt(flag)))?;
        Ok(PyManyReceiver {
            name: name.to_owned(),
            state: Mutex::new(RxState {
                rx: Some(rx),
                kept: None,
            }),
        })
    }

    /// The object's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The number of sender seats.
    #[getter]
    fn senders(&self, py: Python<'_>) -> PyResult<usize> {
        let g = lock(py, &self.state)?;
        Ok(g.rx.as_ref().ok_or_else(|| closed_err(&self.name))?.senders())
    }

    /// The next message as `bytes`, from whichever sender is next in turn
    /// (round robin), waiting at most `timeout` seconds. Raises `Closed`
    /// once every seat has had a sender, none is left and all is received.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyBytes>> {
        let (_, bytes) = self.next_message(py, timeout)?;
        Ok(PyBytes::new(py, &bytes).unbind())
    }

    /// The next message and its sender: `((seat, generation, pid), bytes)`.
    #[pyo3(signature = (timeout = None))]
    fn recv_from(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<((usize, u32, u32), Py<PyBytes>)> {
        let (id, bytes) = self.next_message(py, timeout)?;
        Ok((sender_tuple(id), PyBytes::new(py, &bytes).unbind()))
    }

    /// Receives the next message into `buffer` (any writable bytes-like
    /// object) and returns `(length, (seat, generation, pid))`. A message
    /// longer than the buffer raises `ValueError` and is kept for the next
    /// receive.
    #[pyo3(signature = (buffer, timeout = None))]
    fn recv_into(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<(usize, (usize, u32, u32))> {
        let mut out = Borrowed::new(buffer, true)?;
        let (id, bytes) = self.next_message(py, timeout)?;
        if bytes.len() > out.len() {
            let (n, room) = (bytes.len(), out.len());
            lock(py, &self.state)?.kept = Some((id, bytes));
            return Err(PyValueError::new_err(format!(
                "{}: a message of {n} bytes does not fit into a buffer of {room} bytes; it is kept for the next receive",
                self.name
            )));
        }
        let dst = &mut out.as_mut_slice()[..bytes.len()];
        py.detach(|| dst.copy_from_slice(&bytes));
        Ok((bytes.len(), sender_tuple(id)))
    }

    /// Leaves: senders get `Closed`; the name is removed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let rx = lock(py, &self.state)?.rx.take();
        py.detach(|| drop(rx));
        Ok(())
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        match self.next_message(py, None) {
            Ok((_, bytes)) => Ok(PyBytes::new(py, &bytes).unbind()),
            Err(e) if e.is_instance(py, &py.import("shmkit._errors")?.getattr("Closed")?) => {
                Err(PyStopIteration::new_err(()))
            }
            Err(e) => Err(e),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, py: Python<'_>, _t: Py<PyAny>, _v: Py<PyAny>, _tb: Py<PyAny>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("shmkit.ManyToOneReceiver({:?})", self.name)
    }
}
