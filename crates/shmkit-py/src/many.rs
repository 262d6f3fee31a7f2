//! `shmkit.ManyToOneSender` and `shmkit.ManyToOneReceiver`: several
//! processes send to one.
//!
//! Waits run without the GIL in slices of at most `wait::SLICE`, with
//! `check_signals` between them (an interrupted receive took nothing, an
//! interrupted send sent nothing). A message too long for `recv_into`'s
//! buffer is kept, not lost: the next receive, in whichever thread,
//! returns it first (see `kept`). Both ends have `fileno()` and `try_*`
//! calls for event loops (see `poll`).

use std::sync::Mutex;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmkit::many_to_one::{
    Message, Options, Receiver, RecvTimeoutError, SendTimeoutError, Sender, SenderId, TryRecvError,
};
use shmkit::posix::ShmName;

use crate::buffer::Borrowed;
use crate::errors::{self, IntoPy};
use crate::kept::Kept;
use crate::poll::{fileno, sent_now};
use crate::stream_end::next_item;
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

/// `(seat, generation, pid)` for Python.
type PySenderId = (usize, u32, u32);

/// `(seat, generation, pid)`: who sent a message.
fn sender_tuple(id: SenderId) -> PySenderId {
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

    /// Sends `data` if this sender's ring has room now: `True` if sent,
    /// `False` if full (nothing sent; once `fileno()` was taken, the
    /// descriptor is armed). Never waits.
    fn try_send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let data = Borrowed::new(data, false)?;
        let mut g = lock(py, &self.tx)?;
        let tx = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        sent_now(py, tx.try_send(data.as_slice()))
    }

    /// The sender's descriptor, for `selectors` or asyncio's
    /// `loop.add_reader`: readable when `try_send` may succeed again (the
    /// receiver made room in this sender's ring, or left, or died). Taking
    /// it puts the sender in poll mode, where a `try_send` that returns
    /// `False` arms it; it is readable once at first. Take it off the event
    /// loop before `close()`.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        fileno(lock(py, &self.tx)?.as_ref(), &self.name)
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
    kept: Kept<Message>,
}

/// The receiving end of a many-to-one object.
#[pyclass(module = "shmkit", name = "ManyToOneReceiver", frozen)]
pub(crate) struct PyManyReceiver {
    name: String,
    state: Mutex<RxState>,
}

impl PyManyReceiver {
    /// The next message (a kept one first), waiting in slices; one longer
    /// than `room` is kept and raises `ValueError`. The lock is held
    /// throughout, so no other thread's receive overtakes a kept message.
    fn next_message(&self, py: Python<'_>, timeout: Option<f64>, room: Option<usize>) -> PyResult<Message> {
        let deadline = deadline_of(timeout)?;
        let mut st = lock(py, &self.state)?;
        let RxState { rx, kept } = &mut *st;
        let rx = rx.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let m = match kept.take() {
            Some(m) => m,
            None => in_slices(py, &self.name, "a message", deadline, |slice| {
                match rx.recv_timeout(slice) {
                    Ok(m) => Ok(Some(m)),
                    Err(RecvTimeoutError::Timeout) => Ok(None),
                    Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => Err(e),
                }
            })?,
        };
        let len = m.bytes.len();
        kept.fit(&self.name, m, len, room)
    }

    /// The next message if there is one now (a kept one first); `None`
    /// otherwise, which arms the descriptor once it was taken.
    fn try_message(&self, py: Python<'_>, room: Option<usize>) -> PyResult<Option<Message>> {
        let mut st = lock(py, &self.state)?;
        let RxState { rx, kept } = &mut *st;
        let rx = rx.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let m = match kept.take() {
            Some(m) => m,
            None => match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected(e) | TryRecvError::Failed(e)) => return Err(errors::to_py(py, e)),
            },
        };
        let len = m.bytes.len();
        kept.fit(&self.name, m, len, room).map(Some)
    }
}

/// Copies `m` into `out` (it fits: `Kept::fit` checked) and returns
/// `(length, sender)`.
fn copy_out(py: Python<'_>, m: Message, out: &mut Borrowed) -> (usize, PySenderId) {
    let n = m.bytes.len();
    let dst = &mut out.as_mut_slice()[..n];
    py.detach(|| dst.copy_from_slice(&m.bytes));
    (n, sender_tuple(m.sender))
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
                kept: Kept::new(),
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
        let m = self.next_message(py, timeout, None)?;
        Ok(PyBytes::new(py, &m.bytes).unbind())
    }

    /// The next message and its sender: `((seat, generation, pid), bytes)`.
    #[pyo3(signature = (timeout = None))]
    fn recv_from(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<((usize, u32, u32), Py<PyBytes>)> {
        let m = self.next_message(py, timeout, None)?;
        Ok((sender_tuple(m.sender), PyBytes::new(py, &m.bytes).unbind()))
    }

    /// Receives the next message into `buffer` (any writable bytes-like
    /// object) and returns `(length, (seat, generation, pid))`. A message
    /// longer than the buffer raises `ValueError` and is kept: the next
    /// receive, in any thread, returns it first.
    #[pyo3(signature = (buffer, timeout = None))]
    fn recv_into(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<(usize, (usize, u32, u32))> {
        let mut out = Borrowed::new(buffer, true)?;
        let m = self.next_message(py, timeout, Some(out.len()))?;
        Ok(copy_out(py, m, &mut out))
    }

    /// The next message as `bytes` if there is one now, else `None`.
    /// Never waits; raises as `recv` does.
    fn try_recv(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        Ok(self.try_message(py, None)?.map(|m| PyBytes::new(py, &m.bytes).unbind()))
    }

    /// `((seat, generation, pid), bytes)` of the next message if there is
    /// one now, else `None`.
    fn try_recv_from(&self, py: Python<'_>) -> PyResult<Option<(PySenderId, Py<PyBytes>)>> {
        Ok(self
            .try_message(py, None)?
            .map(|m| (sender_tuple(m.sender), PyBytes::new(py, &m.bytes).unbind())))
    }

    /// As `recv_into` if there is a message now, else `None`.
    fn try_recv_into(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>) -> PyResult<Option<(usize, PySenderId)>> {
        let mut out = Borrowed::new(buffer, true)?;
        Ok(self
            .try_message(py, Some(out.len()))?
            .map(|m| copy_out(py, m, &mut out)))
    }

    /// The receiver's descriptor, for `selectors` or asyncio's
    /// `loop.add_reader`: readable when a `try_*` receive may find
    /// something (a message came, or a sender left). Taking it puts the
    /// receiver in poll mode, where a `try_*` receive that returns `None`
    /// arms it; it is readable once at first. Take it off the event loop
    /// before `close()`.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        fileno(lock(py, &self.state)?.rx.as_ref(), &self.name)
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
        format!("shmkit.ManyToOneReceiver({:?})", self.name)
    }
}
