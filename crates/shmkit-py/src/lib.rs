//! The Python module `shmkit._shmkit`, wrapped by the package `shmkit`
//! (`python/shmkit/__init__.py`): POSIX and System V segments and channels
//! over the public API of the `shmkit` crate. Only `buffer.rs` has `unsafe`
//! code: the buffer protocol, which PyO3 does not offer to an abi3 build for
//! Python 3.9.

#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod buffer;
#[allow(unsafe_code)] // one `unsafe impl Send` for an address
mod channel;
mod errors;
mod kept;
mod latest;
mod many;
mod poll;
mod segment;
mod service;
mod stream_end;
mod topic;
mod wait;

use pyo3::prelude::*;

/// Shared memory and channels for Linux (the native part of `shmkit`).
#[pymodule]
fn _shmkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    buffer::init(m)?;
    m.add_class::<segment::PyPosixShm>()?;
    m.add_class::<segment::PySysvShm>()?;
    m.add_class::<segment::SysvStat>()?;
    m.add_class::<channel::PySender>()?;
    m.add_class::<channel::PyReceiver>()?;
    m.add_class::<channel::RecvView>()?;
    m.add_class::<latest::PyLatestValue>()?;
    m.add_class::<many::PyManySender>()?;
    m.add_class::<many::PyManyReceiver>()?;
    m.add_class::<service::PyServer>()?;
    m.add_class::<service::PyClient>()?;
    m.add_class::<service::PyRequest>()?;
    m.add_class::<topic::PyPublisher>()?;
    m.add_class::<topic::PySubscriber>()?;
    m.add_function(wrap_pyfunction!(segment::remove, m)?)?;
    m.add_function(wrap_pyfunction!(segment::ftok, m)?)?;
    m.add("MAX_CAPACITY", shmkit::channel::MAX_CAPACITY)?;
    Ok(())
}
