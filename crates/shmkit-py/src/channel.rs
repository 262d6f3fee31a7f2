//! `shmkit.Sender`, `shmkit.Receiver` and the `recv_view()` block.
//!
//! Every wait runs without the GIL in slices of at most `wait::SLICE`, with
//! `check_signals` between them, so Ctrl-C ends it within a slice and the
//! endpoint stays usable (an interrupted receive took nothing, an
//! interrupted send sent nothing). Connecting runs on a helper thread whose
//! wait an interrupt flag ends.
//!
//! Zero-copy receiving: the Rust guard of a message borrows the receiver, so
//! it cannot outlive a Python call. Instead the guard is forgotten, which
//! leaves the frame at the ring's head (nothing is released, so the sender
//! cannot reuse its bytes), and the same frame is taken again and released
//! when the last view of it is gone. A message too long for `recv_into`'s
//! buffer stays at the head the same way, for the next receive (see
//! `kept`); the receiver's lock is held from the wait to the copy, so no
//! other thread's receive overtakes it.
//!
//! Both ends have `fileno()` and `try_*` calls for event loops (see
//! `poll`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmkit::channel::{Options, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError};
use shmkit::posix::ShmName;

use crate::buffer::{self, Borrowed, RegionSpec};
use crate::errors::{self, IntoPy};
use crate::kept;
use crate::poll::{fileno, sent_now};
use crate::stream_end::next_item;
use crate::wait::{closed_err, connect, deadline_of, in_slices, lock};

/// The sending end of a channel.
#[pyclass(module = "shmkit", name = "Sender", frozen)]
pub(crate) struct PySender {
    name: String,
    tx: Mutex<Option<Sender>>,
}

#[pymethods]
impl PySender {
    /// Connects to channel `name` as its sender, creating it if the receiver
    /// has not; waits for the receiver (at most `timeout` seconds).
    #[new]
    #[pyo3(signature = (name, capacity = 1 << 20, timeout = None))]
    fn new(py: Python<'_>, name: &str, capacity: u64, timeout: Option<f64>) -> PyResult<PySender> {
        let shm_name = ShmName::new(name).py_err(py)?;
        let mut opts = Options::new().capacity(capacity);
        if let Some(d) = deadline_of(timeout)? {
            opts = opts.timeout(d.saturating_duration_since(Instant::now()));
        }
        let tx = connect(py, move |flag| Sender::connect(&shm_name, &opts.interrupt(flag)))?;
        Ok(PySender {
            name: name.to_owned(),
            tx: Mutex::new(Some(tx)),
        })
    }

    /// The channel's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The longest message this channel carries.
    #[getter]
    fn max_message(&self, py: Python<'_>) -> PyResult<usize> {
        let g = lock(py, &self.tx)?;
        Ok(g.as_ref().ok_or_else(|| closed_err(&self.name))?.max_message())
    }

    /// The ring's size in bytes.
    #[getter]
    fn capacity(&self, py: Python<'_>) -> PyResult<usize> {
        let g = lock(py, &self.tx)?;
        Ok(g.as_ref().ok_or_else(|| closed_err(&self.name))?.capacity())
    }

    /// Sends `data` (any bytes-like object), waiting while the channel is
    /// full, at most `timeout` seconds.
    #[pyo3(signature = (data, timeout = None))]
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let deadline = deadline_of(timeout)?;
        let data = Borrowed::new(data, false)?;
        let mut g = lock(py, &self.tx)?;
        let tx = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let bytes = data.as_slice();
        in_slices(py, &self.name, "room in the channel", deadline, |slice| {
            match tx.send_timeout(bytes, slice) {
                Ok(()) => Ok(Some(())),
                Err(SendTimeoutError::Timeout) => Ok(None),
                Err(SendTimeoutError::Disconnected(e) | SendTimeoutError::Failed(e)) => Err(e),
            }
        })
    }

    /// Sends `data` if the channel has room now: `True` if sent, `False`
    /// if full (nothing sent; once `fileno()` was taken, the descriptor is
    /// armed). Never waits.
    fn try_send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let data = Borrowed::new(data, false)?;
        let mut g = lock(py, &self.tx)?;
        let tx = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        sent_now(py, tx.try_send(data.as_slice()))
    }

    /// The sender's descriptor, for `selectors` or asyncio's
    /// `loop.add_reader`: readable when `try_send` may succeed again (the
    /// receiver made room, or left, or died). Taking it puts the sender in
    /// poll mode, where a `try_send` that returns `False` arms it; it is
    /// readable once at first. Take it off the event loop before `close()`.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        fileno(lock(py, &self.tx)?.as_ref(), &self.name)
    }

    /// Closes this side: the receiver gets what was sent, then the end.
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
        format!("shmkit.Sender({:?})", self.name)
    }
}

/// A message lent to Python through `recv_view()`.
struct Held {
    valid: Arc<AtomicBool>,
    exports: Arc<AtomicUsize>,
}

struct RxState {
    rx: Option<Receiver>,
    /// The message at the ring's head that a view lends out, if any.
    held: Option<Held>,
}

impl RxState {
    /// Releases the held message if no view of it is left; `BufferError`
    /// otherwise.
    fn release_held(&mut self, py: Python<'_>, name: &str) -> PyResult<()> {
        let Some(held) = &self.held else { return Ok(()) };
        held.valid.store(false, Ordering::Release);
        let n = held.exports.load(Ordering::Acquire);
        if n > 0 {
            return Err(PyBufferError::new_err(format!(
                "{name}: {n} view(s) of the message from recv_view() are still in use (e.g. a NumPy array made from it); delete them, or copy the data inside the `with` block"
            )));
        }
        self.held = None;
        if let Some(rx) = self.rx.as_mut() {
            // The same frame, still at the head: take it and give it back.
            match rx.recv_ref_timeout(Duration::ZERO) {
                Ok(guard) => drop(guard),
                Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => {
                    return Err(errors::to_py(py, e))
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        Ok(())
    }

    fn receiver(&mut self, py: Python<'_>, name: &str) -> PyResult<&mut Receiver> {
        self.release_held(py, name)?;
        self.rx.as_mut().ok_or_else(|| closed_err(name))
    }
}

/// Waits (in slices) for the next message and leaves it at the ring's head;
/// returns its address and length.
fn wait_message(
    py: Python<'_>,
    rx: &mut Receiver,
    name: &str,
    deadline: Option<Instant>,
) -> PyResult<(std::ptr::NonNull<u8>, usize)> {
    let (at, len) = in_slices(py, name, "a message", deadline, |slice| {
        match rx.recv_ref_timeout(slice) {
            Ok(guard) => {
                let at = buffer::message_ptr(&guard);
                let len = guard.len();
                // Keep the frame: it is released by `take` or `release_held`.
                std::mem::forget(guard);
                Ok(Some((SendPtr(at), len)))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => Err(e),
        }
    })?;
    Ok((at.0, len))
}

/// The length of the message at the ring's head if there is one now, left
/// there as `wait_message` leaves it; `None` (which arms the descriptor
/// once it was taken) otherwise.
fn try_message(py: Python<'_>, rx: &mut Receiver) -> PyResult<Option<usize>> {
    match rx.try_recv_ref() {
        Ok(guard) => {
            let len = guard.len();
            // Keep the frame: it is released by `take`.
            std::mem::forget(guard);
            Ok(Some(len))
        }
        Err(TryRecvError::Empty) => Ok(None),
        Err(TryRecvError::Disconnected(e) | TryRecvError::Failed(e)) => Err(errors::to_py(py, e)),
    }
}

/// An address that crosses into `Python::detach`.
struct SendPtr(std::ptr::NonNull<u8>);
// SAFETY: only the address travels; nothing is read through it on the way.
unsafe impl Send for SendPtr {}

/// Copies the message at the head (found by `wait_message`) into `out` and
/// releases it.
fn take(rx: &mut Receiver, name: &str, out: &mut [u8]) -> shmkit::Result<()> {
    match rx.recv_ref_timeout(Duration::ZERO) {
        Ok(guard) if guard.len() == out.len() => {
            guard.read_at(0, out).map_err(shmkit::Error::from)?;
            Ok(())
        }
        Ok(guard) => Err(shmkit::Error::Corrupt {
            target: shmkit::Target::Posix(ShmName::new(name)?),
            reason: format!(
                "a message changed length from {} to {} bytes while held",
                out.len(),
                guard.len()
            ),
        }),
        Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => Err(e),
        Err(RecvTimeoutError::Timeout) => Err(shmkit::Error::Corrupt {
            target: shmkit::Target::Posix(ShmName::new(name)?),
            reason: "a held message vanished".to_owned(),
        }),
    }
}

/// The receiving end of a channel.
#[pyclass(module = "shmkit", name = "Receiver", frozen)]
pub(crate) struct PyReceiver {
    name: String,
    state: Mutex<RxState>,
}

impl PyReceiver {
    fn recv_bytes(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyBytes>> {
        let deadline = deadline_of(timeout)?;
        let mut st = lock(py, &self.state)?;
        let rx = st.receiver(py, &self.name)?;
        let (_, len) = wait_message(py, rx, &self.name, deadline)?;
        self.take_bytes(py, rx, len)
    }

    /// The message at the head (`len` bytes) as `bytes`, released.
    fn take_bytes(&self, py: Python<'_>, rx: &mut Receiver, len: usize) -> PyResult<Py<PyBytes>> {
        let name = &self.name;
        let bytes = PyBytes::new_with(py, len, |out| py.detach(|| take(rx, name, out)).py_err(py))?;
        Ok(bytes.unbind())
    }

    /// Copies the message at the head (`len` bytes) into `out` and
    /// releases it; a message longer than `out` stays where it is.
    fn take_into(&self, py: Python<'_>, rx: &mut Receiver, len: usize, out: &mut Borrowed) -> PyResult<usize> {
        kept::check(&self.name, len, Some(out.len()))?;
        let name = &self.name;
        let dst = &mut out.as_mut_slice()[..len];
        py.detach(|| take(rx, name, dst)).py_err(py)?;
        Ok(len)
    }
}

#[pymethods]
impl PyReceiver {
    /// Connects to channel `name` as its receiver, creating it if the sender
    /// has not; waits for the sender (at most `timeout` seconds).
    #[new]
    #[pyo3(signature = (name, timeout = None))]
    fn new(py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<PyReceiver> {
        let shm_name = ShmName::new(name).py_err(py)?;
        let mut opts = Options::new();
        if let Some(d) = deadline_of(timeout)? {
            opts = opts.timeout(d.saturating_duration_since(Instant::now()));
        }
        let rx = connect(py, move |flag| Receiver::connect(&shm_name, &opts.interrupt(flag)))?;
        Ok(PyReceiver {
            name: name.to_owned(),
            state: Mutex::new(RxState {
                rx: Some(rx),
                held: None,
            }),
        })
    }

    /// The channel's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The longest message this channel carries.
    #[getter]
    fn max_message(&self, py: Python<'_>) -> PyResult<usize> {
        let g = lock(py, &self.state)?;
        Ok(g.rx.as_ref().ok_or_else(|| closed_err(&self.name))?.max_message())
    }

    /// The next message as `bytes`, waiting at most `timeout` seconds.
    /// Raises `Closed` once the sender has closed and everything is received.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyBytes>> {
        self.recv_bytes(py, timeout)
    }

    /// Receives the next message into `buffer` (any writable bytes-like
    /// object) and returns its length. A message longer than the buffer
    /// raises `ValueError` and stays in the channel: the next receive, in
    /// any thread, returns it first.
    #[pyo3(signature = (buffer, timeout = None))]
    fn recv_into(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<usize> {
        let deadline = deadline_of(timeout)?;
        let mut out = Borrowed::new(buffer, true)?;
        let mut st = lock(py, &self.state)?;
        let rx = st.receiver(py, &self.name)?;
        let (_, len) = wait_message(py, rx, &self.name, deadline)?;
        self.take_into(py, rx, len, &mut out)
    }

    /// The next message as `bytes` if there is one now, else `None`.
    /// Never waits; raises as `recv` does (`Closed` at the end).
    fn try_recv(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        let mut st = lock(py, &self.state)?;
        let rx = st.receiver(py, &self.name)?;
        match try_message(py, rx)? {
            Some(len) => Ok(Some(self.take_bytes(py, rx, len)?)),
            None => Ok(None),
        }
    }

    /// As `recv_into` if there is a message now, else `None`.
    fn try_recv_into(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        let mut out = Borrowed::new(buffer, true)?;
        let mut st = lock(py, &self.state)?;
        let rx = st.receiver(py, &self.name)?;
        match try_message(py, rx)? {
            Some(len) => Ok(Some(self.take_into(py, rx, len, &mut out)?)),
            None => Ok(None),
        }
    }

    /// The receiver's descriptor, for `selectors` or asyncio's
    /// `loop.add_reader`: readable when a `try_*` receive may find
    /// something (a message came, or the sender left or died). Taking it
    /// puts the receiver in poll mode, where a `try_*` receive that returns
    /// `None` arms it; it is readable once at first. Take it off the event
    /// loop before `close()`.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        fileno(lock(py, &self.state)?.rx.as_ref(), &self.name)
    }

    /// A context manager: `with rx.recv_view() as view:` gives a read-only
    /// `memoryview` of the next message in shared memory, valid inside the
    /// block.
    #[pyo3(signature = (timeout = None))]
    fn recv_view(slf: Py<Self>, timeout: Option<f64>) -> RecvView {
        RecvView {
            rx: slf,
            timeout,
            view: Mutex::new(None),
        }
    }

    /// Closes this side. Raises `BufferError` while a view of a message is
    /// in use.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let mut st = lock(py, &self.state)?;
        st.release_held(py, &self.name)?;
        let rx = st.rx.take();
        drop(st);
        py.detach(|| drop(rx));
        Ok(())
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        next_item(py, self.recv_bytes(py, None))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, py: Python<'_>, _t: Py<PyAny>, _v: Py<PyAny>, _tb: Py<PyAny>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("shmkit.Receiver({:?})", self.name)
    }
}

/// The context manager of `Receiver.recv_view()`.
#[pyclass(module = "shmkit", name = "RecvView", frozen)]
pub(crate) struct RecvView {
    rx: Py<PyReceiver>,
    timeout: Option<f64>,
    view: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl RecvView {
    fn __enter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let deadline = deadline_of(self.timeout)?;
        let receiver = self.rx.get();
        let mut st = lock(py, &receiver.state)?;
        let rx = st.receiver(py, &receiver.name)?;
        let (ptr, len) = wait_message(py, rx, &receiver.name, deadline)?;
        let held = Held {
            valid: Arc::new(AtomicBool::new(true)),
            exports: Arc::new(AtomicUsize::new(0)),
        };
        let spec = RegionSpec {
            ptr,
            len,
            readonly: true,
            keep: Box::new(()),
            keep_py: Some(self.rx.clone_ref(py).into_any()),
            valid: held.valid.clone(),
            exports: held.exports.clone(),
        };
        st.held = Some(held);
        let view = buffer::memoryview(py, spec)?.unbind();
        *lock(py, &self.view)? = Some(view.clone_ref(py));
        Ok(view)
    }

    fn __exit__(&self, py: Python<'_>, _t: Py<PyAny>, _v: Py<PyAny>, _tb: Py<PyAny>) -> PyResult<bool> {
        let receiver = self.rx.get();
        let view = lock(py, &self.view)?.take();
        let mut st = lock(py, &receiver.state)?;
        if let Some(held) = &st.held {
            held.valid.store(false, Ordering::Release);
        }
        if let Some(view) = view {
            // Fails while something made from the view (a NumPy array)
            // still uses it: the message then stays held until it goes.
            if view.bind(py).call_method0("release").is_err() {
                return Ok(false);
            }
        }
        if st.held.as_ref().is_some_and(|h| h.exports.load(Ordering::Acquire) == 0) {
            st.release_held(py, &receiver.name)?;
        }
        Ok(false)
    }
}
