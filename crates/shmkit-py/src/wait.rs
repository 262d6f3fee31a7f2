//! Waiting from Python: deadlines, slices between signal checks, connecting
//! on a helper thread, and endpoint locks that never block the interpreter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::IntoPy;

/// The longest stretch without checking for signals.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

pub(crate) fn deadline_of(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(Instant::now() + Duration::from_secs_f64(t.min(1e9)))),
        Some(t) => Err(PyValueError::new_err(format!(
            "timeout must be a non-negative number of seconds or None, not {t}"
        ))),
    }
}

/// The next slice to wait: [`SLICE`], or what is left before the
/// deadline (zero once it has passed).
pub(crate) fn slice_until(deadline: Option<Instant>) -> Duration {
    match deadline {
        None => SLICE,
        Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
    }
}

/// Calls `attempt(slice)` without the GIL until it gives a value, checking
/// for signals between calls (`KeyboardInterrupt` within a slice); raises
/// `Timeout` ("`name`: timed out waiting for `waiting_for`") at the
/// deadline. `attempt` waits at most `slice` and says `Ok(None)` when that
/// was not enough. It is always called once, with a zero slice if the
/// deadline has already passed (a zero timeout still takes what is there).
pub(crate) fn in_slices<T: Send>(
    py: Python<'_>,
    name: &str,
    waiting_for: &str,
    deadline: Option<Instant>,
    mut attempt: impl FnMut(Duration) -> shmkit::Result<Option<T>> + Send,
) -> PyResult<T> {
    loop {
        let slice = slice_until(deadline);
        match py.detach(|| attempt(slice)) {
            Ok(Some(v)) => return Ok(v),
            Ok(None) if slice.is_zero() && deadline.is_some() => {
                return Err(crate::errors::timeout(py, name, waiting_for))
            }
            Ok(None) => py.check_signals()?,
            Err(e) => return Err(crate::errors::to_py(py, e)),
        }
    }
}

/// Connects on a helper thread, checking for signals every slice; a signal
/// sets the interrupt flag (which `connect` passes to its options), which
/// ends the connect with nothing left behind.
pub(crate) fn connect<T: Send + 'static>(
    py: Python<'_>,
    connect: impl FnOnce(Arc<AtomicBool>) -> shmkit::Result<T> + Send + 'static,
) -> PyResult<T> {
    let flag = Arc::new(AtomicBool::new(false));
    let interrupt = flag.clone();
    let (tx, mut rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("shmkit-connect".into())
        .spawn(move || {
            let _ = tx.send(connect(interrupt));
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a thread to connect: {e}")))?;
    loop {
        let (back, got) = py.detach(move || {
            let got = rx.recv_timeout(SLICE);
            (rx, got)
        });
        rx = back;
        match got {
            Ok(result) => return result.py_err(py),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    flag.store(true, Ordering::Release);
                    // Wait for the helper to give up; an endpoint that
                    // connected meanwhile is dropped, which closes it.
                    let _ = py.detach(move || rx.recv());
                    return Err(e);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err("the thread connecting the channel ended early"))
            }
        }
    }
}

/// Takes `m` without blocking the interpreter: waits for it without the GIL
/// when another thread uses the endpoint.
pub(crate) fn lock<'a, T>(py: Python<'_>, m: &'a Mutex<T>) -> PyResult<MutexGuard<'a, T>> {
    loop {
        match m.try_lock() {
            Ok(g) => return Ok(g),
            Err(TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => {
                py.detach(|| std::thread::sleep(Duration::from_micros(200)));
                py.check_signals()?;
            }
        }
    }
}

pub(crate) fn closed_err(name: &str) -> PyErr {
    PyValueError::new_err(format!("{name}: the endpoint is closed"))
}
