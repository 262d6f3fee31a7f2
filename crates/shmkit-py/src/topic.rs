//! `shmkit.Publisher` and `shmkit.Subscriber`: publish/subscribe.
//!
//! Waits run without the GIL in slices of at most `wait::SLICE`, with
//! `check_signals` between them. A lossy subscriber that fell behind gets
//! `shmkit.Lagged` once (with `missed`, the exact number lost); the next
//! receive continues with the oldest message still available. A message too
//! long for `recv_into`'s buffer is kept for the next receive, in whichever
//! thread (see `kept`). Both ends have `fileno()` and `try_*` calls for
//! event loops (see `poll`).

use std::sync::Mutex;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmkit::posix::ShmName;
use shmkit::topic::{
    Options, Publisher, RecvTimeoutError, SendTimeoutError, SubOptions, Subscriber, TryRecvError, TrySendError,
};

use crate::buffer::Borrowed;
use crate::errors::{self, IntoPy};
use crate::kept::Kept;
use crate::poll::fileno;
use crate::stream_end::next_item;
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

    /// Publishes `data` if there is room now: `True` if published, `False`
    /// if a blocking subscriber has not read what it would overwrite
    /// (nothing published; once `fileno()` was taken, the descriptor is
    /// armed). Never waits.
    fn try_send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let data = Borrowed::new(data, false)?;
        let mut g = lock(py, &self.tx)?;
        let tx = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        match tx.try_send(data.as_slice()) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full) => Ok(false),
            Err(TrySendError::Failed(e)) => Err(errors::to_py(py, e)),
        }
    }

    /// The publisher's descriptor, for `selectors` or asyncio's
    /// `loop.add_reader`: readable when `try_send` may succeed again (a
    /// blocking subscriber made room, or left, or died). Taking it puts the
    /// publisher in poll mode, where a `try_send` that returns `False` arms
    /// it; it is readable once at first. Take it off the event loop before
    /// `close()`.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        fileno(lock(py, &self.tx)?.as_ref(), &self.name)
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
    kept: Kept<Vec<u8>>,
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
    /// The next message (a kept one first), waiting in slices; one longer
    /// than `room` is kept and raises `ValueError`. The lock is held
    /// throughout, so no other thread's receive overtakes a kept message.
    fn next_message(&self, py: Python<'_>, timeout: Option<f64>, room: Option<usize>) -> PyResult<Vec<u8>> {
        let deadline = deadline_of(timeout)?;
        let mut st = lock(py, &self.state)?;
        let SubState { rx, kept } = &mut *st;
        let rx = rx.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let m = match kept.take() {
            Some(m) => m,
            None => {
                let got = in_slices(py, &self.name, "a message", deadline, |slice| {
                    match rx.recv_timeout(slice) {
                        Ok(m) => Ok(Some(Got::Message(m))),
                        Err(RecvTimeoutError::Lagged { missed }) => Ok(Some(Got::Lagged(missed))),
                        Err(RecvTimeoutError::Timeout) => Ok(None),
                        Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => Err(e),
                    }
                })?;
                match got {
                    Got::Message(m) => m,
                    Got::Lagged(missed) => return Err(errors::lagged(py, &self.name, missed)),
                }
            }
        };
        let len = m.len();
        kept.fit(&self.name, m, len, room)
    }

    /// The next message if there is one now (a kept one first); `None`
    /// otherwise, which arms the descriptor once it was taken.
    fn try_message(&self, py: Python<'_>, room: Option<usize>) -> PyResult<Option<Vec<u8>>> {
        let mut st = lock(py, &self.state)?;
        let SubState { rx, kept } = &mut *st;
        let rx = rx.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let m = match kept.take() {
            Some(m) => m,
            None => match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Lagged { missed }) => return Err(errors::lagged(py, &self.name, missed)),
                Err(TryRecvError::Disconnected(e) | TryRecvError::Failed(e)) => return Err(errors::to_py(py, e)),
            },
        };
        let len = m.len();
        kept.fit(&self.name, m, len, room).map(Some)
    }
}

/// Copies `m` into `out` (it fits: `Kept::fit` checked); its length.
fn copy_out(py: Python<'_>, m: &[u8], out: &mut Borrowed) -> usize {
    let dst = &mut out.as_mut_slice()[..m.len()];
    py.detach(|| dst.copy_from_slice(m));
    m.len()
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
                kept: Kept::new(),
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
        let m = self.next_message(py, timeout, None)?;
        Ok(PyBytes::new(py, &m).unbind())
    }

    /// Receives the next message into `buffer` (any writable bytes-like
    /// object) and returns its length. A message longer than the buffer
    /// raises `ValueError` and is kept: the next receive, in any thread,
    /// returns it first.
    #[pyo3(signature = (buffer, timeout = None))]
    fn recv_into(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<usize> {
        let mut out = Borrowed::new(buffer, true)?;
        let m = self.next_message(py, timeout, Some(out.len()))?;
        Ok(copy_out(py, &m, &mut out))
    }

    /// The next message as `bytes` if there is one now, else `None`.
    /// Never waits; raises as `recv` does (`Lagged`, `Closed`, …).
    fn try_recv(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        Ok(self.try_message(py, None)?.map(|m| PyBytes::new(py, &m).unbind()))
    }

    /// As `recv_into` if there is a message now, else `None`.
    fn try_recv_into(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        let mut out = Borrowed::new(buffer, true)?;
        Ok(self
            .try_message(py, Some(out.len()))?
            .map(|m| copy_out(py, &m, &mut out)))
    }

    /// The subscriber's descriptor, for `selectors` or asyncio's
    /// `loop.add_reader`: readable when a `try_*` receive may find
    /// something (a message was published, or the publisher left or
    /// died). Taking it puts the subscriber in poll mode, where a `try_*`
    /// receive that returns `None` arms it; it is readable once at first.
    /// Take it off the event loop before `close()`.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        fileno(lock(py, &self.state)?.rx.as_ref(), &self.name)
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
        next_item(py, self.recv(py, None))
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
