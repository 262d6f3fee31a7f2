//! `shmkit.Server`, `shmkit.Client` and `shmkit.Request`: request/response.
//!
//! Waits run without the GIL in slices of at most `wait::SLICE`, with
//! `check_signals` between them: an interrupted `call` leaves its request
//! abandoned (a late response is dropped), an interrupted `recv_request`
//! took nothing, an interrupted send of a request sent nothing. A client's
//! wait for room in its own request ring (only when the server does not
//! take requests) is bounded by the call's `timeout`, or else the client's.
//! Both ends have `fileno()` and `try_*` calls for event loops (see
//! `poll`).

use std::sync::Mutex;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmkit::posix::ShmName;
use shmkit::service::{Client, ClientId, Options, RecvTimeoutError, Response, Server, TryRecvError, TrySendError};

use crate::buffer::Borrowed;
use crate::errors::{self, IntoPy};
use crate::poll::{fileno, sent_now};
use crate::wait::{closed_err, connect, deadline_of, in_slices, lock};

fn options(clients: Option<usize>, capacity: Option<u64>, timeout: Option<f64>) -> PyResult<Options> {
    let mut opts = Options::new();
    if let Some(n) = clients {
        opts = opts.clients(n);
    }
    if let Some(c) = capacity {
        opts = opts.capacity(c);
    }
    if let Some(d) = deadline_of(timeout)? {
        opts = opts.timeout(d.saturating_duration_since(Instant::now()));
    }
    Ok(opts)
}

/// A request as the server received it.
#[pyclass(module = "shmkit", name = "Request", frozen)]
pub(crate) struct PyRequest {
    client: ClientId,
    /// The client's number for the request.
    #[pyo3(get)]
    id: u64,
    /// The request's bytes.
    #[pyo3(get)]
    body: Py<PyBytes>,
}

#[pymethods]
impl PyRequest {
    /// `(seat, generation, pid)`: the client that sent it.
    #[getter]
    fn client(&self) -> (usize, u32, u32) {
        (self.client.seat, self.client.generation, self.client.pid)
    }

    fn __repr__(&self) -> String {
        format!("shmkit.Request(client={:?}, id={})", self.client(), self.id)
    }
}

/// A received request for Python.
fn request(py: Python<'_>, r: shmkit::service::Request) -> PyRequest {
    PyRequest {
        client: r.client,
        id: r.id,
        body: PyBytes::new(py, &r.body).unbind(),
    }
}

/// The one server of a service.
#[pyclass(module = "shmkit", name = "Server", frozen)]
pub(crate) struct PyServer {
    name: String,
    server: Mutex<Option<Server>>,
}

impl PyServer {
    fn answer(&self, py: Python<'_>, request: &PyRequest, data: &Bound<'_, PyAny>, error: bool) -> PyResult<()> {
        let data = Borrowed::new(data, false)?;
        let mut g = lock(py, &self.server)?;
        let server = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let body = data.as_slice();
        let sent = py.detach(|| {
            if error {
                server.respond_error(request.client, request.id, body)
            } else {
                server.respond(request.client, request.id, body)
            }
        });
        match sent {
            Ok(()) => Ok(()),
            Err(TrySendError::Full) => Err(errors::timeout(py, &self.name, "room in the client's response ring")),
            Err(TrySendError::Disconnected(e) | TrySendError::Failed(e)) => Err(errors::to_py(py, e)),
        }
    }
}

#[pymethods]
impl PyServer {
    /// Opens the service `name` as its one server, creating it (with
    /// `clients` seats, default 16, and rings of `capacity` bytes) if no
    /// client has. Raises `Busy` if another server takes part.
    #[new]
    #[pyo3(signature = (name, clients = None, capacity = None))]
    fn new(py: Python<'_>, name: &str, clients: Option<usize>, capacity: Option<u64>) -> PyResult<PyServer> {
        let shm_name = ShmName::new(name).py_err(py)?;
        let opts = options(clients, capacity, None)?;
        let server = connect(py, move |flag| Server::connect(&shm_name, &opts.interrupt(flag)))?;
        Ok(PyServer {
            name: name.to_owned(),
            server: Mutex::new(Some(server)),
        })
    }

    /// The service's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The next request from any client (round robin), waiting at most
    /// `timeout` seconds (`None`: for ever).
    #[pyo3(signature = (timeout = None))]
    fn recv_request(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyRequest> {
        let deadline = deadline_of(timeout)?;
        let mut g = lock(py, &self.server)?;
        let server = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let r = in_slices(py, &self.name, "a request", deadline, |slice| {
            match server.recv_request_timeout(slice) {
                Ok(r) => Ok(Some(r)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected(e) | RecvTimeoutError::Failed(e)) => Err(e),
            }
        })?;
        Ok(request(py, r))
    }

    /// The next request if there is one now, else `None` (which arms the
    /// descriptor once it was taken). Never waits.
    fn try_recv_request(&self, py: Python<'_>) -> PyResult<Option<PyRequest>> {
        let mut g = lock(py, &self.server)?;
        let server = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        match server.try_recv_request() {
            Ok(r) => Ok(Some(request(py, r))),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected(e) | TryRecvError::Failed(e)) => Err(errors::to_py(py, e)),
        }
    }

    /// Answers `request` with `data` if the client's response ring has room
    /// now: `True` if answered (or the client has gone: dropped), `False`
    /// if full (nothing sent; the descriptor is not armed by this: a full
    /// ring is a slow client's, retry later or give up). Never waits.
    fn try_respond(&self, py: Python<'_>, request: &PyRequest, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let data = Borrowed::new(data, false)?;
        let mut g = lock(py, &self.server)?;
        let server = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        sent_now(py, server.try_respond(request.client, request.id, data.as_slice()))
    }

    /// The server's descriptor, for `selectors` or asyncio's
    /// `loop.add_reader`: readable when `try_recv_request` may find a
    /// request. Taking it puts the server in poll mode, where a
    /// `try_recv_request` that returns `None` arms it; it is readable once
    /// at first. Take it off the event loop before `close()`.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        fileno(lock(py, &self.server)?.as_ref(), &self.name)
    }

    /// Answers `request` with `data` (any bytes-like object). A client that
    /// has gone is skipped silently; one whose response ring stays full
    /// for a second raises `Timeout`.
    fn respond(&self, py: Python<'_>, request: &PyRequest, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.answer(py, request, data, false)
    }

    /// Answers `request` with an error: the client's `call` raises
    /// `shmkit.ServiceError` carrying `data`.
    fn respond_error(&self, py: Python<'_>, request: &PyRequest, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.answer(py, request, data, true)
    }

    /// Leaves: pending and later calls fail with `Closed`; the name goes.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let s = lock(py, &self.server)?.take();
        py.detach(|| drop(s));
        Ok(())
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<PyRequest> {
        self.recv_request(py, None)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, py: Python<'_>, _t: Py<PyAny>, _v: Py<PyAny>, _tb: Py<PyAny>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("shmkit.Server({:?})", self.name)
    }
}

/// A client of a service.
#[pyclass(module = "shmkit", name = "Client", frozen)]
pub(crate) struct PyClient {
    name: String,
    /// How long a send waits for room when its call gives no timeout.
    timeout: Option<f64>,
    client: Mutex<Option<Client>>,
}

impl PyClient {
    /// Sends `bytes` in slices, waiting for room until `deadline` (`None`:
    /// the client's timeout); a wait that ends sends nothing.
    fn send_in_slices(
        &self,
        py: Python<'_>,
        client: &mut Client,
        bytes: &[u8],
        deadline: Option<Instant>,
    ) -> PyResult<u64> {
        let deadline = match deadline {
            Some(d) => Some(d),
            None => deadline_of(self.timeout)?,
        };
        in_slices(py, &self.name, "room for the request", deadline, |slice| {
            match client.send_request_timeout(bytes, slice) {
                Ok(id) => Ok(Some(id)),
                Err(shmkit::Error::TimedOut { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Waits for the response to `id` in slices; gives the request up when
    /// the wait ends without it.
    fn wait_response(
        &self,
        py: Python<'_>,
        client: &mut Client,
        id: u64,
        deadline: Option<Instant>,
    ) -> PyResult<Response> {
        let got = in_slices(py, &self.name, "the server's response", deadline, |slice| match client
            .receive_response_timeout(id, slice)
        {
            Ok(r) => Ok(Some(r)),
            Err(shmkit::Error::TimedOut { .. }) => Ok(None),
            Err(e) => Err(e),
        });
        if got.is_err() {
            client.abandon(id);
        }
        got
    }

    fn body(&self, py: Python<'_>, r: Response) -> PyResult<Py<PyBytes>> {
        match r.into_result() {
            Ok(body) => Ok(PyBytes::new(py, &body).unbind()),
            Err(body) => Err(errors::service_error(py, &self.name, &body)),
        }
    }
}

#[pymethods]
impl PyClient {
    /// Connects to the service `name` as a client, creating it if the
    /// server has not; waits for the server at most `timeout` seconds (and
    /// that long for room when sending a request).
    #[new]
    #[pyo3(signature = (name, timeout = None))]
    fn new(py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<PyClient> {
        let shm_name = ShmName::new(name).py_err(py)?;
        let opts = options(None, None, timeout)?;
        let client = connect(py, move |flag| Client::connect(&shm_name, &opts.interrupt(flag)))?;
        Ok(PyClient {
            name: name.to_owned(),
            timeout,
            client: Mutex::new(Some(client)),
        })
    }

    /// The service's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Requests sent whose responses have not been received.
    #[getter]
    fn pending(&self, py: Python<'_>) -> PyResult<usize> {
        let g = lock(py, &self.client)?;
        Ok(g.as_ref().ok_or_else(|| closed_err(&self.name))?.pending())
    }

    /// Sends `request` (any bytes-like object) and returns the server's
    /// response to it, waiting at most `timeout` seconds in all (for room
    /// to send, then for the response; without `timeout`, for room at most
    /// the client's `timeout`, for the response for ever). An error
    /// response raises `shmkit.ServiceError`; a dead server `PeerGone`.
    /// Ctrl-C raises `KeyboardInterrupt` within 50 ms: a request not yet
    /// sent is not sent, one sent is given up.
    #[pyo3(signature = (request, timeout = None))]
    fn call(&self, py: Python<'_>, request: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<Py<PyBytes>> {
        let deadline = deadline_of(timeout)?;
        let data = Borrowed::new(request, false)?;
        let mut g = lock(py, &self.client)?;
        let client = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let id = self.send_in_slices(py, client, data.as_slice(), deadline)?;
        let r = self.wait_response(py, client, id, deadline)?;
        self.body(py, r)
    }

    /// Sends `request` without waiting for the response; returns its id for
    /// `receive_response`. Several may be in flight. Waits for room in the
    /// request ring (only while the server takes none) at most `timeout`
    /// seconds (`None`: the client's `timeout`), then raises `Timeout`
    /// having sent nothing; Ctrl-C likewise sends nothing.
    #[pyo3(signature = (request, timeout = None))]
    fn send_request(&self, py: Python<'_>, request: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<u64> {
        let deadline = deadline_of(timeout)?;
        let data = Borrowed::new(request, false)?;
        let mut g = lock(py, &self.client)?;
        let client = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        self.send_in_slices(py, client, data.as_slice(), deadline)
    }

    /// The response to request `id`, waiting at most `timeout` seconds;
    /// responses to other pending requests that come first are kept for
    /// them. A wait that ends without it gives the request up.
    #[pyo3(signature = (id, timeout = None))]
    fn receive_response(&self, py: Python<'_>, id: u64, timeout: Option<f64>) -> PyResult<Py<PyBytes>> {
        let deadline = deadline_of(timeout)?;
        let mut g = lock(py, &self.client)?;
        let client = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        let r = self.wait_response(py, client, id, deadline)?;
        self.body(py, r)
    }

    /// Sends `request` if the request ring has room now: its id, or `None`
    /// if full (nothing sent; the descriptor is armed once it was taken).
    /// Never waits.
    fn try_send_request(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let data = Borrowed::new(request, false)?;
        let mut g = lock(py, &self.client)?;
        let client = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        match client.try_send_request(data.as_slice()) {
            Ok(id) => Ok(Some(id)),
            Err(TrySendError::Full) => Ok(None),
            Err(TrySendError::Disconnected(e) | TrySendError::Failed(e)) => Err(errors::to_py(py, e)),
        }
    }

    /// The response to request `id` if it is there now, else `None` (the
    /// request stays pending; the descriptor is armed once it was taken).
    /// Never waits; raises as `receive_response` does.
    fn try_receive_response(&self, py: Python<'_>, id: u64) -> PyResult<Option<Py<PyBytes>>> {
        let mut g = lock(py, &self.client)?;
        let client = g.as_mut().ok_or_else(|| closed_err(&self.name))?;
        match client.try_receive_response(id) {
            Ok(r) => Ok(Some(self.body(py, r)?)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected(e) | TryRecvError::Failed(e)) => Err(errors::to_py(py, e)),
        }
    }

    /// The client's descriptor, for `selectors` or asyncio's
    /// `loop.add_reader`: readable when a response came, when the server
    /// made room for a request, or when it left or died — try
    /// `try_receive_response` (and `try_send_request`) again. Taking it
    /// puts the client in poll mode, where those calls arm it when they
    /// return `None`; it is readable once at first. Take it off the event
    /// loop before `close()`.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        fileno(lock(py, &self.client)?.as_ref(), &self.name)
    }

    /// Leaves: the seat is free again; responses not yet received are
    /// dropped.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let c = lock(py, &self.client)?.take();
        py.detach(|| drop(c));
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
        format!("shmkit.Client({:?})", self.name)
    }
}
