//! `shmkit::Error` as Python exceptions. The classes live in
//! `shmkit/_errors.py` (multiple inheritance from the built-ins is plain
//! Python there); this module picks the class for each error and keeps the
//! Rust message, which names the object.

use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use shmkit::Error;

/// The name of the exception class for `e`.
fn class_of(e: &Error) -> &'static str {
    match e {
        Error::InvalidName { .. } => "InvalidName",
        Error::NotFound { .. } => "NotFound",
        Error::KeyPath { source, .. } if *source == shmkit::error::Errno::NOENT => "NotFound",
        Error::AlreadyExists { .. } => "AlreadyExists",
        Error::PermissionDenied { .. } | Error::Untrusted { .. } | Error::ReadOnly { .. } => "PermissionDenied",
        Error::TimedOut { .. } => "Timeout",
        Error::PeerGone { .. } => "PeerGone",
        Error::Busy { .. } => "Busy",
        Error::Corrupt { .. } | Error::Incompatible { .. } => "Corrupt",
        Error::Truncated { .. } => "Truncated",
        Error::Closed { .. } => "Closed",
        Error::InvalidArgument { .. }
        | Error::TooLarge { .. }
        | Error::SizeMismatch { .. }
        | Error::OutOfRange { .. }
        | Error::MessageTooLarge { .. }
        | Error::CapacityMismatch { .. } => "InvalidArgument",
        _ => "Error",
    }
}

/// An instance of `shmkit.<class>` with `message`; `errno` and `target` set
/// as attributes when known.
pub(crate) fn new_err(
    py: Python<'_>,
    class: &str,
    message: String,
    errno: Option<i32>,
    target: Option<String>,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = py.import("shmkit._errors")?.getattr(class)?;
        let exc = cls.call1(PyTuple::new(py, [message.clone()])?)?;
        exc.setattr("errno", errno)?;
        exc.setattr("target", target.clone())?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

/// The Python exception for a Rust error.
pub(crate) fn to_py(py: Python<'_>, e: Error) -> PyErr {
    if let Error::Interrupted { .. } = e {
        return PyKeyboardInterrupt::new_err(e.to_string());
    }
    let target = e.target().map(ToString::to_string);
    new_err(
        py,
        class_of(&e),
        e.to_string(),
        e.errno().map(|n| n.raw_os_error()),
        target,
    )
}

/// `shmkit.Timeout` for a wait on `target` that reached its deadline.
pub(crate) fn timeout(py: Python<'_>, target: &str, waiting_for: &str) -> PyErr {
    new_err(
        py,
        "Timeout",
        format!("{target}: timed out waiting for {waiting_for}"),
        None,
        Some(target.to_owned()),
    )
}

/// Converts a `shmkit::Result` with the GIL at hand.
pub(crate) trait IntoPy<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T, E: Into<Error>> IntoPy<T> for Result<T, E> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e.into()))
    }
}

/// `shmkit.ServiceError` for an error response from `target`'s server,
/// carrying its body (as text in the message, as bytes in `body`).
pub(crate) fn service_error(py: Python<'_>, target: &str, body: &[u8]) -> PyErr {
    let err = new_err(
        py,
        "ServiceError",
        format!(
            "{target}: the server answered with an error: {}",
            String::from_utf8_lossy(body).trim_end()
        ),
        None,
        Some(target.to_owned()),
    );
    let _ = err.value(py).setattr("body", pyo3::types::PyBytes::new(py, body));
    err
}
