//! A message longer than the caller's buffer stays for the next receive.
//!
//! `recv_into` never loses a message that does not fit, and never lets
//! another Python thread's receive overtake it: the whole receive — taking
//! the kept message or a new one, measuring it, keeping it again — runs
//! under the endpoint's lock, so a kept message is the next one that any
//! thread receives. The channel keeps it in place (at the ring's head,
//! where its next receive finds it); endpoints whose Rust receive copies
//! the message out (topic, many-to-one) keep the copy in a [`Kept`].

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The `ValueError` for a message of `len` bytes and a buffer of `room`.
pub(crate) fn too_long(name: &str, len: usize, room: usize) -> PyErr {
    PyValueError::new_err(format!(
        "{name}: a message of {len} bytes does not fit into a buffer of {room} bytes; it stays for the next receive"
    ))
}

/// `Err(too_long)` when `len` exceeds `room` (`None`: no limit).
pub(crate) fn check(name: &str, len: usize, room: Option<usize>) -> PyResult<()> {
    match room {
        Some(room) if len > room => Err(too_long(name, len, room)),
        _ => Ok(()),
    }
}

/// A copied-out message (of type `M`) that a `recv_into` could not take.
/// Lives in the endpoint's locked state.
pub(crate) struct Kept<M> {
    msg: Option<M>,
}

impl<M> Kept<M> {
    pub(crate) fn new() -> Self {
        Kept { msg: None }
    }

    /// The kept message, if any: the next one to return.
    pub(crate) fn take(&mut self) -> Option<M> {
        self.msg.take()
    }

    /// `m` if its `len` fits `room` bytes (`None`: no limit); otherwise
    /// keeps it and raises `ValueError`. Call `take`, the receive and this
    /// with the endpoint's lock held throughout (it is: `self` lives in the
    /// state that lock guards).
    pub(crate) fn fit(&mut self, name: &str, m: M, len: usize, room: Option<usize>) -> PyResult<M> {
        if let Err(e) = check(name, len, room) {
            self.msg = Some(m);
            return Err(e);
        }
        Ok(m)
    }
}
