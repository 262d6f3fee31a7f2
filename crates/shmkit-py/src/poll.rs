//! Event loops: `fileno()`, and the `try_*` calls that arm it.
//!
//! Every endpoint that can wait (`shmkit::wait::Pollable` in Rust) gives its
//! descriptor to Python as `fileno()`, so that `selectors`, `select.poll`
//! and asyncio's `loop.add_reader` can wait on many endpoints (and
//! sockets) in one thread. Readable means "try the non-blocking call
//! again": each endpoint's `try_*` methods never wait, return `None` (or
//! `False`) when there is nothing to do — which arms the descriptor, so it
//! becomes readable when there may be — and raise what the blocking call
//! raises (`Closed`, `PeerGone`, `Lagged`, …). Readiness may be spurious,
//! never lost.
//!
//! Taking the descriptor the first time puts the endpoint in poll mode (it
//! makes its bell beside the object in `/dev/shm`) and makes it readable
//! once, because a `try_*` call made before armed nothing. The descriptor
//! stays the same until `close()`, which closes it: take it off the event
//! loop first. Do not read from it.

use std::os::fd::{AsFd, AsRawFd};

use pyo3::prelude::*;

use crate::errors;
use crate::wait::closed_err;

/// The descriptor of `endpoint`, or `ValueError` once it is closed (as a
/// closed file's `fileno()`).
pub(crate) fn fileno<T: AsFd>(endpoint: Option<&T>, name: &str) -> PyResult<i32> {
    Ok(endpoint.ok_or_else(|| closed_err(name))?.as_fd().as_raw_fd())
}

/// What a `try_*` send tells Python: `True` if sent, `False` if there was
/// no room (nothing sent; the descriptor armed once taken), or the error
/// raised.
pub(crate) fn sent_now(py: Python<'_>, sent: Result<(), shmkit::channel::TrySendError>) -> PyResult<bool> {
    use shmkit::channel::TrySendError;
    match sent {
        Ok(()) => Ok(true),
        Err(TrySendError::Full) => Ok(false),
        Err(TrySendError::Disconnected(e) | TrySendError::Failed(e)) => Err(errors::to_py(py, e)),
    }
}
