//! `shmkit.Publisher` and `shmkit.Subscriber`: publish/subscribe.
//!
//! Waits run without the GIL in slices of at most `wait::SLICE`, with
//! `check_signals` between them. A lossy subscriber that fell behind gets
//! `shmkit.Lagged` once (with `missed`, the exact number lost); the next
//! receive continues with the oldest message still available. A message too
//! long for `recv_into`'s buffer is kept for the next receive.

use std::sync::Mutex;
use std::time::Instant;

use pyo3::exceptions::{PyStopIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmkit::posix::ShmName;
use shmkit::topic::{Options, Publisher, RecvTimeoutError, SendTimeoutError, SubOptions, Subscriber};

use crate::buffer::Borrowed;
use crate::errors::{self, IntoPy};
use crate::wait::{closed_err, connect, deadline_of, in_slices, lock};

/// The one publisher of a topic.
#[pyclass(module = "shmkit", name = "Publisher", frozen)]
pub(crate) struct PyPublisher {
    name: String,
    tx: Mutex<Option<Publisher>>,
}

#[pymethods]
impl PyPublisher {
    /// Opens the topic `name` as its one publisher, creating it if no
    /// subscriber has: a ring of `capacity` bytes, up to `max_subscribers`
    /// (default 16), keeping the last `history` messages for subscribers
    /// that join later. Does not wait for subscribers. Raises `Busy` if
    /// another publisher takes part.
    #[new]
    #[pyo3(signature = (name, capacity = None, max_subscribers = None, history = None))]
    fn new(
        py: Python<'_>,
        name: &str,
        capacity: Option<u64>,
        max_subscribers: Option<usize>,
        history: Option<u64>,
    ) -> PyResult<PyPublisher> {
        let shm_name = ShmName::new(name).py_err(py)?;
        let mut opts = Options::new();
        if let Some(c) = capacity {
            opts = opts.capacity(c);
        }
        if let Some(n) = max_subscribers {
            opts = opts.max_subscribers(n);
        }
        if let Some(k) = history {
            opts = opts.history(k);
        }
        let tx = connect(py, move |flag| Publisher::connect(&shm_name, &opts.interrupt(flag)))?;
        Ok(PyPublisher {
            name: name.to_owned(),
            tx: Mutex::new(Some(tx)),
        })
    }

    /// The topic's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The longest message it carries.
    #[getter]
    fn max_message(&self, py: Python<'_>) -> PyResult<usize> {
        let g = lock(py, &self.tx)?;
        Ok(g.as_ref().ok_or_else(|| closed_err(&self.name))?.max_message())
    }

    /// Messages published so far.
    #[getter]
    fn published(&self, py: Python<'_>) -> PyResult<u64> {
        let g = lock(py, &self.tx)?;
        Ok(g.as_ref().ok_or_else(|| closed_err(&self.name))?.published())
    }

    /// Publishes `data` (any bytes-like object) to every subscriber, one
    /// copy however many there are; waits while a blocking subscriber has
    /// not read what it would overwrite, at most `timeout` seconds.
    #[pyo3(signature = (data, timeout = None))]
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let deadline = deadline_of(timeout)?;
        let data = Borrowed::new(data, false)?;
        let mut g = lock(py, &self.tx)?;
        let tx = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let bytes = data.as_slice();
        in_slices(py, &self.name, "room in the topic", deadline, |slice| {
            match tx.send_timeout(bytes, slice) {
                Ok(()) => Ok(Some(())),
                Err(SendTimeoutError::Timeout) => Ok(None),
                Err(SendTimeoutError::Failed(e)) => Err(e),
            }
        })
    }

    /// Closes the topic: subscribers receive what was published, then the
    /// end of the stream.
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
        format!("shmkit.Publisher({:?})", self.name)
    }
}

struct SubState {
    rx: Option<Subscriber>,
    /// A message that did not fit `recv_into`'s buffer, returned next.
    kept: Option<Vec<u8>>,
}

/// One of a topic's subscribers.
#[pyclass(module = "shmkit", name = "Subscriber", frozen)]
pub(crate) struct PySubscriber {
    name: String,
    lossy: bool,
    state: Mutex<SubState>,
}

/// What one slice of a receive gave.
enum Got {
    Message(Vec<u8>),
    Lagged(u64),
}

impl PySubscriber {
    fn next_message(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Vec<u8>> {
        let deadline = deadline_of(timeout)?;
        let mut st = lock(py, &self.state)?;
        if let Some(kept) = st.kept.take() {
            return Ok(kept);
        }
        let rx = st.rx.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let got = in_slices(py, &self.name, "a message", deadline, |slice| {
            match rx.recv_timeout(slice) {
                Ok(m) => Ok(Some(Got::Message(m))),
                Err(RecvTimeoutError::Lagged { missed }) => Ok(Some(Got::Lagged(missed))),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => Err(e),
            }
        })?;
        match got {
            Got::Message(m) => Ok(m),
            Got::Lagged(missed) => Err(errors::lagged(py, &self.name, missed)),
        }
    }
}

#[pymethods]
impl PySubscriber {
    /// Joins the topic `name` as a subscriber, creating it if no publisher
    /// has; waits at most `timeout` seconds for a publisher to set it up.
    /// A `lossy` subscriber never holds the publisher up: when it falls
    /// behind it loses messages and is told how many (`Lagged`).
    #[new]
    #[pyo3(signature = (name, lossy = false, timeout = None))]
    fn new(py: Python<'_>, name: &str, lossy: bool, timeout: Option<f64>) -> PyResult<PySubscriber> {
        let shm_name = ShmName::new(name).py_err(py)?;
        let mut opts = SubOptions::new().lossy(lossy);
        if let Some(d) = deadline_of(timeout)? {
            opts = opts.timeout(d.saturating_duration_since(Instant::now()));
        }
        let rx = connect(py, move |flag| Subscriber::connect(&shm_name, &opts.interrupt(flag)))?;
        Ok(PySubscriber {
            name: name.to_owned(),
            lossy,
            state: Mutex::new(SubState {
                rx: Some(rx),
                kept: None,
            }),
        })
    }

    /// The topic's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Whether the publisher does not wait for this subscriber.
    #[getter]
    fn lossy(&self) -> bool {
        self.lossy
    }

    /// The next message as `bytes`, waiting at most `timeout` seconds.
    /// Raises `Closed` at the publisher's end of stream, `PeerGone` after
    /// everything a dead publisher published, `Lagged` once when a lossy
    /// subscriber lost messages.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyBytes>> {
        let m = self.next_message(py, timeout)?;
        Ok(PyBytes::new(py, &m).unbind())
    }

    /// Receives the next message into `buffer` (any writable bytes-like
    /// object) and returns its length. A message longer than the buffer
    /// raises `ValueError` and is kept for the next receive.
    #[pyo3(signature = (buffer, timeout = None))]
    fn recv_into(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<usize> {
        let mut out = Borrowed::new(buffer, true)?;
        let m = self.next_message(py, timeout)?;
        if m.len() > out.len() {
            let (n, room) = (m.len(), out.len());
            lock(py, &self.state)?.kept = Some(m);
            return Err(PyValueError::new_err(format!(
                "{}: a message of {n} bytes does not fit into a buffer of {room} bytes; it is kept for the next receive",
                self.name
            )));
        }
        let dst = &mut out.as_mut_slice()[..m.len()];
        py.detach(|| dst.copy_from_slice(&m));
        Ok(m.len())
    }

    /// Leaves: the seat is free again.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let rx = lock(py, &self.state)?.rx.take();
        py.detach(|| drop(rx));
        Ok(())
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next message; the iteration ends at the publisher's end of
    /// stream (`Lagged` and `PeerGone` are raised).
    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        match self.next_message(py, None) {
            Ok(m) => Ok(PyBytes::new(py, &m).unbind()),
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
        format!(
            "shmkit.Subscriber({:?}, lossy={})",
            self.name,
            if self.lossy { "True" } else { "False" }
        )
    }
}
