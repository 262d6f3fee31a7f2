//! The end of a stream: a receiving endpoint's `Closed` (the sending side
//! left in order and everything was received) ends a Python `for` loop
//! over it; any other error is raised as it is.

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;

/// Whether `e` is `shmkit.Closed`.
pub(crate) fn is_closed(py: Python<'_>, e: &PyErr) -> PyResult<bool> {
    Ok(e.is_instance(py, &py.import("shmkit._errors")?.getattr("Closed")?))
}

/// `__next__`'s result from a receive's: `Closed` becomes `StopIteration`.
pub(crate) fn next_item<T>(py: Python<'_>, received: PyResult<T>) -> PyResult<T> {
    match received {
        Err(e) if is_closed(py, &e)? => Err(PyStopIteration::new_err(())),
        other => other,
    }
}
